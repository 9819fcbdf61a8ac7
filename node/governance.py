"""Governance on a replica: load a circle's signed records into the pure rules, and sign
new ones as the acting member. The CLI and the TUI are thin layers over this module.

Only records stored as *valid* take part; soft-failed or equivocated ones never count.
The quorum policy is: every member with write level (as of what a decision rests on for a
decision, as of now for an open round). Every function that signs checks what it can
first and raises a :class:`NodeError` saying what to do instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from node.crypto.ops import OpKind, Signer, decode_header
from node.domain.auth import Level
from node.domain.authorize import AuthLog
from node.domain.governance.agreements import Agreement, agreements
from node.domain.governance.consent import (
    OPEN_STATES,
    Governance,
    Outcome,
    Proposal,
    Signed,
    objection_subject,
)
from node.domain.governance.logbook import LogEntry, agreement_entries, logbook
from node.domain.governance.records import (
    AmendRec,
    DecisionRec,
    GovernanceRecord,
    ObjectionTestRec,
    PositionRec,
    ProposalRec,
    ReviewRec,
    encode_record,
    record_id,
    try_decode,
    version_hash,
)
from node.errors import AuthorizationError, DecodeError, NodeError, NotFound
from node.local import author_record
from node.replica import Replica
from node.store.store import STATUS_VALID

DEFAULT_REVIEW_DAYS = 365  # an agreement whose proposal set no review tuner


@dataclass
class CircleGovernance:
    """A circle's governance as of now, with the auth log to judge quorums."""

    circle: bytes
    log: AuthLog
    gov: Governance
    deps: dict[bytes, tuple[bytes, ...]]
    _outcomes: dict[bytes, Outcome] = field(default_factory=dict)

    def required_at(self, op_id: bytes | None) -> set[bytes]:
        state = self.log.full() if op_id is None else self.log.as_of(self.deps.get(op_id, ()))
        return {m for m, info in state.members.items() if info.level >= Level.WRITE}

    def required_for(self, op_ids: Sequence[bytes]) -> set[bytes]:
        """Write-level members as of the union of these records' deps."""
        union = sorted({dep for op_id in op_ids for dep in self.deps.get(op_id, ())})
        state = self.log.as_of(tuple(union))
        return {m for m, info in state.members.items() if info.level >= Level.WRITE}

    def outcome(self, proposal: Proposal) -> Outcome:
        cached = self._outcomes.get(proposal.id)
        if cached is None:
            cached = self.gov.outcome(proposal, self.required_at, required_for=self.required_for)
            self._outcomes[proposal.id] = cached
        return cached

    def decision_problem(self, decision: Signed) -> str | None:
        """None when a decision record holds; otherwise why not."""
        return self.gov.decision_holds(decision, self.required_at, required_for=self.required_for)

    def objection_open(self, objection: Signed) -> bool:
        return self.gov.objection_open(objection, self.required_at, required_for=self.required_for)

    def agreements(self) -> list[Agreement]:
        return agreements(self.gov, self.outcome)

    def member_name(self, member: bytes) -> str:
        info = self.log.full().members.get(member)
        return info.name if info else member.hex()[:12]

    def require_writer(self, member: bytes) -> None:
        """Raise unless ``member`` (or the member whose device key it is) holds write level
        in this circle now."""
        state = self.log.full()
        info = state.members.get(state.member_of(member) or member)
        if info is None or info.level < Level.WRITE:
            held = info.level.name.lower() if info else "not a member"
            raise AuthorizationError(
                f"only members with write level take part in the governance of circle "
                f"{self.circle.hex()[:8]} ({held}): act as one with --as"
            )


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A valid record op of a circle, not yet decoded by any domain module."""

    op_id: bytes
    author: bytes  # the signing key
    member: bytes  # the member that key belongs to
    seq: int
    ts: int
    deps: tuple[bytes, ...]
    body: bytes


async def valid_records(replica: Replica, circle: bytes) -> list[RawRecord]:
    """Every record op of ``circle`` stored as valid, in local order. Each governance
    module (proposals, elections, ideas, funding) decodes the types it knows."""
    state = (await replica.auth_log(circle)).full()
    found: list[RawRecord] = []
    for row in await replica.store.ops_of_kind(circle, int(OpKind.RECORD)):
        if row.status != STATUS_VALID:
            continue
        try:
            header = decode_header(row.header)
        except DecodeError:
            continue  # a damaged stored header: `verify` names it; nothing can rest on it
        member = state.member_of(row.author) or row.author
        found.append(
            RawRecord(
                row.op_id, row.author, member, row.seq, header.ts, tuple(header.deps), row.body
            )
        )
    return found


async def load(replica: Replica, circle: bytes) -> CircleGovernance:
    """Fold every valid proposal-related record of ``circle``."""
    log = await replica.auth_log(circle)
    signed: list[Signed] = []
    deps: dict[bytes, tuple[bytes, ...]] = {}
    for raw in await valid_records(replica, circle):
        record = try_decode(raw.body)
        if record is None:
            continue
        signed.append(Signed(raw.op_id, raw.author, raw.member, raw.seq, raw.ts, record))
        deps[raw.op_id] = raw.deps
    return CircleGovernance(circle, log, Governance(signed), deps)


async def load_circle(replica: Replica, text: str) -> CircleGovernance:
    """A circle's governance by its hex id or a unique prefix."""
    return await load(replica, await replica.resolve_circle(text))


async def find_proposal(replica: Replica, text: str) -> tuple[CircleGovernance, Proposal]:
    """A proposal by its hex id or a unique prefix (at least 6 digits), in any circle."""
    prefix = text.strip().lower()
    if len(prefix) < 6:
        raise NotFound("give at least 6 hex digits of the proposal id")
    await replica.refresh()
    found: list[tuple[CircleGovernance, Proposal]] = []
    # a proposal id is the start of its record's op id: only circles holding a record op
    # with that prefix can hold it, so the others are never loaded
    for circle in sorted(await replica.store.circles_with_record_prefix(prefix)):
        cg = await load(replica, circle)
        found += [(cg, p) for pid, p in cg.gov.proposals.items() if pid.hex().startswith(prefix)]
    if not found:
        raise NotFound(f"no proposal matches {text!r}: `circle-node proposal list CIRCLE`")
    if len(found) > 1:
        raise NotFound(f"{text!r} matches {len(found)} proposals; give more of the id")
    return found[0]


async def find_objection(replica: Replica, text: str) -> tuple[CircleGovernance, Signed]:
    """An objection (a position record) by its op id or a unique prefix (>= 6 digits)."""
    prefix = text.strip().lower()
    if len(prefix) < 6:
        raise NotFound("give at least 6 hex digits of the objection's op id")
    await replica.refresh()
    found: list[tuple[CircleGovernance, Signed]] = []
    for circle in sorted(await replica.circles()):
        cg = await load(replica, circle)
        found += [
            (cg, s)
            for op_id, s in cg.gov.by_op.items()
            if op_id.hex().startswith(prefix)
            and isinstance(s.record, PositionRec)
            and s.record.position == "objection"
        ]
    if not found:
        raise NotFound(f"no objection matches {text!r}: `circle-node proposal show ID` lists them")
    if len(found) > 1:
        raise NotFound(f"{text!r} matches {len(found)} objections; give more of the id")
    return found[0]


async def sign(replica: Replica, key: Signer, circle: bytes, record: GovernanceRecord) -> bytes:
    """Sign and ingest a governance record; returns its op id."""
    op = await author_record(replica, key, circle, encode_record(record))
    return op.op_id


async def create_proposal(
    replica: Replica, key: Signer, circle: bytes, body: ProposalRec
) -> tuple[bytes, bytes]:
    """Returns ``(proposal id, first version hash)``."""
    op_id = await sign(replica, key, circle, body)
    pid = record_id(op_id)
    return pid, version_hash(pid, body.text)


async def amend(
    replica: Replica, key: Signer, text: str, proposal_ref: str, **fields: Any
) -> tuple[bytes, bytes]:
    """Sign a new version of the proposal's current text; ``(proposal id, its hash)``."""
    cg, proposal = await find_proposal(replica, proposal_ref)
    require_open(cg, proposal)
    new_hash = version_hash(proposal.id, text)
    if new_hash in proposal.versions:
        number = proposal.versions[new_hash].number
        raise NodeError(f"that text is already version {number}: change the text to amend")
    record = AmendRec(proposal=proposal.id, base=proposal.current().hash, text=text, **fields)
    await sign(replica, key, cg.circle, record)
    return proposal.id, new_hash


@dataclass(frozen=True, slots=True)
class PositionTaken:
    op: bytes  # the position record
    outcome: Outcome  # the outcome after it (and after the decision record, if one)
    decision: bytes | None  # the decision record this position completed, if any


async def take_position(
    replica: Replica, key: Signer, proposal_ref: str, position: str, reason: str
) -> Outcome:
    """Record the acting member's position on the current version; when that completes
    consent, also sign the decision record. Returns the new outcome."""
    return (await record_position(replica, key, proposal_ref, position, reason)).outcome


async def record_position(
    replica: Replica, key: Signer, proposal_ref: str, position: str, reason: str
) -> PositionTaken:
    """:func:`take_position`, also naming the records it signed."""
    cg, proposal = await find_proposal(replica, proposal_ref)
    require_open(cg, proposal)
    if position not in ("consent", "concern", "objection"):
        raise NodeError(f"unknown position {position!r}: use consent, concern or objection")
    if position == "objection" and not reason.strip():
        raise NodeError("an objection must carry a reason: --reason 'what harm it would do'")
    member = cg.log.full().member_of(key.public)
    cg.require_writer(member or key.public)
    record = PositionRec(
        proposal=proposal.id,
        version=proposal.current().hash,
        position=position,  # type: ignore[arg-type]
        reason=reason,
    )
    op = await sign(replica, key, cg.circle, record)
    cg, proposal = await find_proposal(replica, proposal.id.hex())
    outcome = cg.outcome(proposal)
    decision = None
    if outcome.state != "agreed" and not outcome.missing and not outcome.open_objections:
        record_ = DecisionRec(
            proposal=proposal.id,
            version=outcome.version.hash,
            positions=sorted(s.op_id for s in outcome.positions.values()),
            review_date=first_review_date(proposal.body, date.today()),
        )
        decision = await sign(replica, key, cg.circle, record_)
        cg, proposal = await find_proposal(replica, proposal.id.hex())
        outcome = cg.outcome(proposal)
    return PositionTaken(op, outcome, decision)


def first_review_date(body: ProposalRec, today: date) -> str:
    """The review date a decision records: the proposal's own, else from its frequency
    (default :data:`DEFAULT_REVIEW_DAYS`) counted from the day of the decision."""
    if body.review_date is not None:
        return body.review_date
    days = body.review_every_days or DEFAULT_REVIEW_DAYS
    return (today + timedelta(days=days)).isoformat()


def require_open(cg: CircleGovernance, proposal: Proposal) -> None:
    """Raise unless the proposal's round is open (not agreed, withdrawn or deferred)."""
    state = cg.outcome(proposal).state
    if state == "deferred":
        raise NodeError(
            f"proposal {proposal.id.hex()[:12]} is deferred: resume it first with "
            f"`circle-node proposal stage {proposal.id.hex()[:12]} consent_round`"
        )
    if state not in OPEN_STATES:
        raise NodeError(
            f"proposal {proposal.id.hex()[:12]} is {state}; a change now goes through a review"
        )


async def record_objection_test(
    replica: Replica,
    key: Signer,
    objection_ref: str,
    qualifies: bool,
    decision: str | None,
    note: str,
) -> tuple[CircleGovernance, Signed, bytes]:
    """Record that an objection was tested; ``(circle, the objection, the test op id)``.

    "Does not qualify" counts only from the objector themself, or citing an agreed
    proposal whose subject is this objection; anything else is refused before signing."""
    cg, objection = await find_objection(replica, objection_ref)
    member = cg.log.full().member_of(key.public) or key.public
    cg.require_writer(member)
    settled: bytes | None = None
    if decision is not None:
        dcg, proposal = await find_proposal(replica, decision)
        subject = objection_subject(objection.op_id)
        if dcg.circle != cg.circle or proposal.body.subject != subject:
            raise NodeError(
                f"proposal {proposal.id.hex()[:12]} does not test this objection: create one "
                f"with `proposal create ... --tests-objection {objection.op_id.hex()[:12]}`"
            )
        if not dcg.outcome(proposal).agreed:
            raise NodeError(f"proposal {proposal.id.hex()[:12]} is not agreed (yet)")
        settled = proposal.id
    elif not qualifies and member != objection.member:
        raise AuthorizationError(
            "only the objector can acknowledge that their objection does not qualify; "
            "otherwise test it by consent: `proposal create ... --tests-objection OP`, then "
            "`objection test OP --qualifies no --decision PROPOSAL`"
        )
    body = ObjectionTestRec(
        objection=objection.op_id, qualifies=qualifies, decision=settled, note=note
    )
    return cg, objection, await sign(replica, key, cg.circle, body)


# ---- agreements and reviews ---------------------------------------------------------------


async def find_agreement(replica: Replica, text: str) -> tuple[CircleGovernance, Agreement]:
    """An agreement by its id (the agreed proposal's id) or a unique prefix."""
    cg, proposal = await find_proposal(replica, text)
    for agreement in cg.agreements():
        if agreement.id == proposal.id:
            return cg, agreement
    state = cg.outcome(proposal).state
    raise NotFound(f"proposal {proposal.id.hex()[:12]} is {state}, not an agreement")


async def review(
    replica: Replica,
    key: Signer,
    agreement_ref: str,
    outcome: str,
    *,
    next_review: str | None = None,
    text: str | None = None,
    today: date | None = None,
    note: str = "",
) -> tuple[Agreement, bytes, bytes | None]:
    """Sign a review: ``keep`` (next date), ``amend`` (opens a proposal) or ``retire``.
    Returns ``(agreement, review op id, the amending proposal id or None)``."""
    cg, agreement = await find_agreement(replica, agreement_ref)
    cg.require_writer(cg.log.full().member_of(key.public) or key.public)
    if agreement.state != "in_force":
        raise NodeError(f"agreement {agreement.id.hex()[:12]} is {agreement.state}")
    day = today or date.today()
    opened: bytes | None = None
    if outcome == "keep":
        next_review = _next_review(agreement, next_review, day)
    elif outcome == "amend":
        if not text or not text.strip():
            raise NodeError("an amending review needs the new text: --text '...'")
        body = agreement.proposal.body
        opened, _ = await create_proposal(
            replica,
            key,
            cg.circle,
            ProposalRec(
                title=body.title,
                driver=body.driver,
                text=text,
                review_every_days=body.review_every_days,
                criteria=list(body.criteria),
                review_of=agreement.id,
            ),
        )
    record = ReviewRec(
        agreement=agreement.id,
        outcome=outcome,  # type: ignore[arg-type]
        next_review=next_review if outcome == "keep" else None,
        proposal=opened,
        note=note,
    )
    return agreement, await sign(replica, key, cg.circle, record), opened


def _next_review(agreement: Agreement, given: str | None, today: date) -> str:
    if given is None:
        every = agreement.proposal.body.review_every_days
        if every is None:
            raise NodeError("keeping an agreement needs its next review date: --next YYYY-MM-DD")
        return (today + timedelta(days=every)).isoformat()
    if given <= today.isoformat():
        raise NodeError(f"the next review date {given} must be after today ({today})")
    return given


# ---- the logbook and verify ---------------------------------------------------------------

LogbookSource = Callable[[bytes, list[RawRecord]], Iterable[LogEntry]]
_logbook_sources: list[LogbookSource] = []


def add_logbook_source(source: LogbookSource) -> None:
    """Let another governance area (elections, ...) add entries to every circle's logbook:
    ``source(circle, valid records)`` returns its entries. Idempotent."""
    if source not in _logbook_sources:
        _logbook_sources.append(source)


async def circle_logbook(
    replica: Replica, circle: bytes, extra: Iterable[LogEntry] = ()
) -> list[LogEntry]:
    """Decisions and reviews of ``circle``, the registered sources' entries and ``extra``."""
    cg = await load(replica, circle)
    raw = await valid_records(replica, circle) if _logbook_sources else []
    sources = [source(circle, raw) for source in _logbook_sources]
    return logbook(agreement_entries(cg.agreements()), extra, *sources)


async def verify_decisions(
    replica: Replica, circle: bytes, only: set[bytes] | None = None
) -> list[dict[str, str]]:
    """Every decision record of ``circle`` re-checked against the signed positions: one
    problem per decision that does not hold (``only``: the op ids to consider)."""
    cg = await load(replica, circle)
    problems: list[dict[str, str]] = []
    for decision in cg.gov.decisions:
        if only is not None and decision.op_id not in only:
            continue
        why = cg.decision_problem(decision)
        if why is not None:
            problems.append(
                {
                    "op": decision.op_id.hex(),
                    "circle": circle.hex(),
                    "problem": "decision_does_not_hold",
                    "detail": f"the decision record does not hold: {why}",
                }
            )
    return problems
