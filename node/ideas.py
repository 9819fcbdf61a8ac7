"""Ideas, drivers, outline plans and join requests on a replica.

Every action is two steps, so a command checks everything before asking for a passphrase:
a ``draft_*`` function reads the replica, checks the acting member's level and the rules,
and returns a :class:`Draft` (the circle and the record to sign); :func:`commit` signs it
with the member's key and ingests it. Refusals raise :class:`NodeError` subclasses that
say what to do. The views (``*_view``) are the JSON shapes the CLI prints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import msgspec

from node.crypto.card import MemberCard, parse_card
from node.crypto.ops import Signer
from node.domain.auth import AuthState, Level
from node.domain.governance.ideas import (
    QUALIFY_MOVES,
    DriverRec,
    Entry,
    Idea,
    IdeaBook,
    IdeaRec,
    IdeasRecord,
    JoinKind,
    JoinRequestRec,
    NoteRec,
    Outcome,
    OutlinePlanRec,
    QualifyRec,
    join_status,
)
from node.domain.governance.ideas import encode as encode_ideas
from node.domain.governance.ideas import try_decode as decode_ideas
from node.domain.governance.records import ProposalRec
from node.errors import AuthorizationError, CardError, NodeError, NotFound
from node.governance import RawRecord, load, valid_records
from node.local import add_member, author_record
from node.replica import Replica

R = TypeVar("R")
MIN_PREFIX = 6


@dataclass(frozen=True)
class Draft:
    """A record ready to be signed in ``circle`` (``encoded``: its checked body bytes)."""

    circle: bytes
    encoded: bytes
    summary: dict[str, Any]


async def commit(replica: Replica, key: Signer, draft: Draft) -> bytes:
    """Sign and ingest a draft as ``key``; returns the op id."""
    op = await author_record(replica, key, draft.circle, draft.encoded)
    return op.op_id


def ideas_draft(circle: bytes, record: IdeasRecord, **summary: Any) -> Draft:
    return Draft(circle, encode_ideas(record), {"circle": circle.hex(), **summary})


def entries_of(
    raws: Iterable[RawRecord], circle: bytes, decode: Callable[[bytes], R | None]
) -> list[Entry[R]]:
    """The records of one domain among a circle's valid records (``decode``: its try_decode)."""
    found: list[Entry[R]] = []
    for raw in raws:
        record = decode(raw.body)
        if record is not None:
            found.append(Entry(raw.op_id, circle, raw.author, raw.member, raw.seq, raw.ts, record))
    return found


def find_by_prefix(items: Mapping[bytes, R], text: str, what: str, hint: str) -> R:
    """One item by its hex id or a unique prefix of at least 6 digits."""
    prefix = text.strip().lower()
    if len(prefix) < MIN_PREFIX:
        raise NotFound(f"give at least {MIN_PREFIX} hex digits of the {what} id")
    found = [item for key, item in items.items() if key.hex().startswith(prefix)]
    if not found:
        raise NotFound(f"no {what} matches {text!r}: {hint}")
    if len(found) > 1:
        raise NotFound(f"{text!r} matches {len(found)} {what}s; give more of the id")
    return found[0]


def require_level(state: AuthState, member: bytes, level: Level, action: str) -> None:
    """Refuse unless ``member`` currently holds ``level`` in the circle of ``state``."""
    info = state.current_members().get(member)
    if info is None or info.level < level:
        held = info.level.name.lower() if info else "not a member"
        raise AuthorizationError(
            f"{action} needs {level.name.lower()} level in circle {state.circle.hex()[:8]} "
            f"(you: {held}); act as a member who has it with --as"
        )


def plain(value: Any, *leave: str) -> dict[str, Any]:
    """A record (msgspec struct) or a dataclass as a JSON-ready dict: bytes as hex, nested
    structs as dicts; fields named in ``leave`` left out."""
    fields = (
        msgspec.structs.asdict(value)
        if isinstance(value, msgspec.Struct)
        else dataclasses.asdict(value)
    )
    return {k: _plain(v) for k, v in fields.items() if k not in leave}


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, msgspec.Struct):
        return plain(value)
    return value


def name_of(state: AuthState, member: bytes) -> str:
    info = state.members.get(member)
    return info.name if info else member.hex()[:12]


async def resolve_any_circle(replica: Replica, text: str) -> bytes:
    """A circle held here (by id prefix), else a full 32-hex-digit id of one elsewhere."""
    try:
        return await replica.resolve_circle(text)
    except NotFound:
        cleaned = text.strip().lower()
        if len(cleaned) == 32 and all(c in "0123456789abcdef" for c in cleaned):
            return bytes.fromhex(cleaned)
        raise NotFound(f"no circle here matches {text!r}: give its full 32-digit id") from None


# ---- ideas ------------------------------------------------------------------------------


@dataclass
class Ideas:
    """A circle's idea book with its auth state."""

    circle: bytes
    state: AuthState
    book: IdeaBook


async def load_ideas(replica: Replica, circle: bytes) -> Ideas:
    state = await replica.auth_state(circle)
    raws = await valid_records(replica, circle)
    return Ideas(circle, state, IdeaBook(entries_of(raws, circle, decode_ideas)))


async def find_idea(replica: Replica, text: str) -> tuple[Ideas, Idea]:
    """An idea or driver by id prefix, in any circle held here."""
    everything: dict[bytes, tuple[Ideas, Idea]] = {}
    for circle in sorted(await replica.circles()):
        ideas = await load_ideas(replica, circle)
        everything.update({i: (ideas, idea) for i, idea in ideas.book.ideas.items()})
    return find_by_prefix(everything, text, "idea", "`circle-node idea list CIRCLE`")


async def draft_share(
    replica: Replica,
    member: bytes,
    circle_text: str,
    *,
    text: str | None = None,
    what: str | None = None,
    need: str = "",
    why: str = "",
) -> Draft:
    """Share an idea (free ``text``) or a driver statement (``what``/``need``/``why``)."""
    circle = await replica.resolve_circle(circle_text)
    require_level(await replica.auth_state(circle), member, Level.READ, "sharing an idea")
    if (text is None) == (what is None):
        raise NodeError("give either --text, or a driver statement with --what/--need/--why")
    record: IdeasRecord
    if text is not None:
        if not text.strip():
            raise NodeError("the idea's --text is empty")
        record = IdeaRec(text=text)
    else:
        if not str(what).strip():
            raise NodeError("--what (what is happening) is empty")
        record = DriverRec(what=str(what), need=need, why=why)
    return ideas_draft(circle, record, kind=record.__struct_config__.tag)


async def draft_note(replica: Replica, member: bytes, idea_text: str, text: str) -> Draft:
    ideas, idea = await find_idea(replica, idea_text)
    require_level(ideas.state, member, Level.READ, "a co-design note")
    if not text.strip():
        raise NodeError("the note's --text is empty")
    return ideas_draft(ideas.circle, NoteRec(idea=idea.id, text=text), idea=idea.id.hex())


async def draft_qualify(
    replica: Replica,
    member: bytes,
    idea_text: str,
    outcome: str,
    to_text: str | None = None,
    reason: str = "",
) -> Draft:
    ideas, idea = await find_idea(replica, idea_text)
    require_level(ideas.state, member, Level.WRITE, "qualifying an idea")
    if outcome not in QUALIFY_MOVES[idea.state]:
        raise NodeError(
            f"idea {idea.id.hex()[:8]} is {idea.state}: it cannot become {outcome} "
            "(accepted and passed on are final; a discarded idea may be reconsidered)"
        )
    if (outcome == "passed_on") != (to_text is not None):
        raise NodeError("--to CIRCLE names the circle exactly when the idea is passed_on")
    to = await resolve_any_circle(replica, to_text) if to_text is not None else None
    if to == ideas.circle:
        raise NodeError("an idea cannot be passed on to its own circle")
    after = idea.qualifications[-1].op_id if idea.qualifications else None
    move = cast(Outcome, outcome)  # checked against QUALIFY_MOVES above
    record = QualifyRec(idea=idea.id, outcome=move, to=to, reason=reason, after=after)
    return ideas_draft(ideas.circle, record, idea=idea.id.hex(), state=outcome)


async def draft_plan(
    replica: Replica,
    member: bytes,
    idea_text: str,
    *,
    scope: str,
    resources: str,
    low: int,
    high: int,
    currency: str,
) -> Draft:
    ideas, idea = await find_idea(replica, idea_text)
    require_level(ideas.state, member, Level.WRITE, "an outline plan")
    if idea.state in ("discarded", "passed_on"):
        raise NodeError(f"idea {idea.id.hex()[:8]} is {idea.state}: plans go with live ideas")
    if not scope.strip():
        raise NodeError("the plan's --scope is empty")
    check_money(low, "--cost-low", minimum=0)
    check_money(high, "--cost-high", minimum=0)
    if low > high:
        raise NodeError("--cost-low must not exceed --cost-high")
    revises = idea.current_plans[0].op_id if idea.current_plans else None
    record = OutlinePlanRec(
        idea=idea.id,
        scope=scope,
        resources=resources,
        cost_low=low,
        cost_high=high,
        currency=check_currency(currency),
        revises=revises,
    )
    return ideas_draft(ideas.circle, record, idea=idea.id.hex())


async def draft_idea_proposal(
    replica: Replica, member: bytes, idea_text: str, title: str | None, text: str
) -> tuple[bytes, ProposalRec]:
    """A proposal answering an accepted idea (its driver statement becomes the driver)."""
    ideas, idea = await find_idea(replica, idea_text)
    require_level(ideas.state, member, Level.WRITE, "a proposal")
    if idea.state != "accepted":
        raise NodeError(
            f"idea {idea.id.hex()[:8]} is {idea.state}: qualify it as accepted first "
            f"(`circle-node idea qualify {idea.id.hex()[:8]} accepted`)"
        )
    if not text.strip():
        raise NodeError("the proposal's --text is empty")
    body = ProposalRec(
        title=(title or idea.title(200)).strip() or "proposal",
        driver=driver_text(idea),
        text=text,
        idea=idea.id,
    )
    return ideas.circle, body


def driver_text(idea: Idea) -> str:
    record = idea.entry.record
    if isinstance(record, DriverRec):
        parts = [record.what, record.need, record.why]
        return "\n".join(p for p in parts if p.strip())
    return str(getattr(record, "text", ""))


def check_money(value: int, flag: str, minimum: int = 1) -> int:
    if not minimum <= value <= 10**15:
        raise NodeError(f"{flag} is integer minor units, at least {minimum} (2500 is 25.00 in GBP)")
    return value


def check_currency(text: str) -> str:
    code = text.strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise NodeError(f"{text!r} is not a currency code: use three letters, e.g. GBP")
    return code


# ---- views ------------------------------------------------------------------------------


def idea_row(idea: Idea) -> dict[str, Any]:
    return {
        "idea": idea.id.hex(),
        "kind": idea.kind,
        "title": idea.title(),
        "state": idea.state,
        "notes": len(idea.notes),
        "plans": len(idea.plans),
    }


def idea_view(ideas: Ideas, idea: Idea, proposals: list[bytes]) -> dict[str, Any]:
    state = ideas.state
    qualification = idea.qualification
    current = {e.op_id for e in idea.current_plans}

    def signed(entry: Entry[IdeasRecord], *leave: str) -> dict[str, Any]:
        by = {"op": entry.op_id.hex(), "by": name_of(state, entry.member)}
        return by | plain(entry.record, "idea", *leave)

    plans = [signed(e) | {"current": e.op_id in current} for e in idea.plans]
    return {
        **idea_row(idea),
        "circle": ideas.circle.hex(),
        "author": idea.entry.member.hex(),
        "author_name": name_of(state, idea.entry.member),
        **plain(idea.entry.record),
        "passed_to": qualification.to.hex() if qualification and qualification.to else None,
        "reason": qualification.reason if qualification else "",
        "qualifications": [signed(e, "after") for e in idea.qualifications],
        "notes": [signed(e) for e in idea.notes],
        "plans": plans,
        "plan": next((p for p in plans if p["current"]), None),
        "proposals": [p.hex() for p in proposals],
    }


async def idea_proposals(replica: Replica, circle: bytes, idea: bytes) -> list[bytes]:
    cg = await load(replica, circle)
    return sorted(pid for pid, p in cg.gov.proposals.items() if p.body.idea == idea)


# ---- join requests ----------------------------------------------------------------------


async def draft_join_request(
    replica: Replica, member: bytes, circle_text: str, card_text: str, kind: str, message: str
) -> tuple[Draft, MemberCard]:
    circle = await replica.resolve_circle(circle_text)
    state = await replica.auth_state(circle)
    require_level(state, member, Level.READ, "recording a join request")
    card = parse_card(card_text)
    if card.member in state.current_members():
        raise NodeError(f"{card.name} is already a member of circle {circle.hex()[:8]}")
    as_kind = cast(JoinKind, kind)  # an unknown kind fails the encode check
    record = JoinRequestRec(card=card.to_text(), kind=as_kind, message=message)
    draft = ideas_draft(circle, record, member=card.member_id)
    return draft, card


@dataclass
class JoinRequest:
    """A join request with its parsed card and the proposals that decide it."""

    circle: bytes
    entry: Entry[IdeasRecord]
    body: JoinRequestRec
    card: MemberCard | None  # None: the card does not verify
    proposals: dict[bytes, str]  # proposal id -> its state
    decisions: list[bytes]  # decision op ids of agreed proposals
    status: str


async def join_requests(replica: Replica, circle: bytes) -> list[JoinRequest]:
    ideas = await load_ideas(replica, circle)
    cg = await load(replica, circle)
    found = []
    for rid, entry in sorted(ideas.book.join_requests.items()):
        body = entry.record
        assert isinstance(body, JoinRequestRec)
        try:
            card: MemberCard | None = parse_card(body.card)
        except CardError:
            card = None
        proposals, decisions = {}, []
        for pid, proposal in cg.gov.proposals.items():
            if proposal.body.join_request != rid:
                continue
            outcome = cg.outcome(proposal)
            proposals[pid] = outcome.state
            if outcome.agreed and outcome.decision is not None:
                decisions.append(outcome.decision.op_id)
        info = ideas.state.current_members().get(card.member) if card else None
        admitted = info is not None and info.decision in decisions
        status = join_status(proposals.values(), admitted)
        found.append(JoinRequest(circle, entry, body, card, proposals, decisions, status))
    return found


async def find_join_request(replica: Replica, text: str) -> JoinRequest:
    everything: dict[bytes, JoinRequest] = {}
    for circle in sorted(await replica.circles()):
        everything.update({r.entry.id: r for r in await join_requests(replica, circle)})
    return find_by_prefix(everything, text, "join request", "`circle-node join list CIRCLE`")


async def draft_join_proposal(
    replica: Replica, member: bytes, request_text: str
) -> tuple[bytes, ProposalRec]:
    request = await find_join_request(replica, request_text)
    require_level(await replica.auth_state(request.circle), member, Level.WRITE, "a proposal")
    if request.card is None:
        raise CardError("the join request's card does not verify: ask for the card again")
    if request.status in ("proposed", "agreed", "admitted"):
        raise NodeError(f"join request {request.entry.id.hex()[:8]} is already {request.status}")
    card = request.card
    body = ProposalRec(
        title=f"Admit {card.name} as {request.body.kind}"[:200],
        driver=request.body.message or f"{card.name} asks to join this circle",
        text=(
            f"Admit {card.name} (member {card.member_id}, home node {card.node.hex()}) "
            f"to this circle as a {request.body.kind}."
        ),
        join_request=request.entry.id,
    )
    return request.circle, body


@dataclass(frozen=True)
class Admission:
    request: bytes
    circle: bytes
    card: MemberCard
    level: Level
    decision: bytes  # the decision record's op id, cited by the auth op


async def draft_admission(
    replica: Replica, member: bytes, request_text: str, level: Level
) -> Admission:
    request = await find_join_request(replica, request_text)
    require_level(await replica.auth_state(request.circle), member, Level.MANAGE, "admitting")
    if request.card is None:
        raise CardError("the join request's card does not verify: ask for the card again")
    if request.status == "admitted":
        raise NodeError(f"{request.card.name} was already admitted")
    if not request.decisions:
        raise NodeError(
            f"join request {request.entry.id.hex()[:8]} is {request.status}: the circle "
            "decides by consent first (`circle-node join propose REQUEST`, then positions)"
        )
    decision = min(request.decisions)
    return Admission(request.entry.id, request.circle, request.card, level, decision)


async def admit(replica: Replica, key: Signer, admission: Admission) -> bytes:
    """Sign the auth op adding the member; it cites the consent decision."""
    card = admission.card
    op = await add_member(
        replica,
        key,
        admission.circle,
        member=card.member,
        name=card.name,
        level=admission.level,
        home=card.node,
        decision=admission.decision,
    )
    return op.op_id


def join_view(request: JoinRequest, state: AuthState) -> dict[str, Any]:
    card = request.card
    return {
        "request": request.entry.id.hex(),
        "circle": request.circle.hex(),
        "member": card.member_id if card else None,
        "name": card.name if card else None,
        "node": card.node.hex() if card else None,
        **plain(request.body, "card"),
        "recorded_by": name_of(state, request.entry.member),
        "status": request.status if card else "invalid_card",
        "proposals": {p.hex(): s for p, s in request.proposals.items()},
        "decisions": [d.hex() for d in request.decisions],
    }
