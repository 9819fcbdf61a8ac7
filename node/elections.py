"""Roles, elections and double linking on a replica: load the signed records into the pure
rules (:mod:`node.domain.governance.elections`, :mod:`~node.domain.governance.roles`) and
sign new ones as the acting member. The CLI is a thin layer over this module.

Invariants:
- Only records stored as valid count (``node.governance.valid_records``).
- Every check a rule makes is made again before signing, so a refused action signs nothing.
- A mandate's evidence is re-verified here, signatures included, each time seats are
  judged: the parent's node trusts nothing the child's node says, only signed bytes.
- Nothing here reads the clock: ``today`` comes from the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from node.crypto.ops import Signer
from node.domain.auth import AuthState, Level
from node.domain.governance.consent import Proposal
from node.domain.governance.elections import (
    REPRESENTATIVE,
    ROLE_NAME,
    TERM_SUBJECT,
    ChangeRec,
    Election,
    ElectionRec,
    Elections,
    FailRec,
    KeeperSubject,
    NominationRec,
    ResultRec,
    Stamped,
    check_term,
    keeper_subject,
    keeper_text,
    parse_keeper_subject,
    term_for,
)
from node.domain.governance.logbook import LogEntry
from node.domain.governance.records import ProposalRec, record_id
from node.domain.governance.roles import (
    Role,
    RoleRec,
    SelectionRecord,
    encode_selection,
    require_level,
    resolve_member,
    roles_of,
    try_decode_selection,
)
from node.errors import ConfigError, NodeError, NotFound
from node.governance import (
    CircleGovernance,
    RawRecord,
    add_logbook_source,
    create_proposal,
    find_proposal,
    load,
    take_position,
    valid_records,
)
from node.local import author_record
from node.replica import Replica


@dataclass
class CircleRoles:
    """A circle's roles, elections and results as of now."""

    cg: CircleGovernance
    items: list[Stamped[Any]]
    elections: Elections

    @property
    def circle(self) -> bytes:
        return self.cg.circle

    @property
    def circle_name(self) -> str:
        genesis = self.cg.log.full().genesis
        return genesis.name if genesis else self.circle.hex()

    def roles(self) -> dict[str, Role]:
        definitions = [s for s in self.items if isinstance(s.record, RoleRec)]
        return roles_of(definitions, self.elections.valid_results())

    def role(self, name: str) -> Role:
        role = self.roles().get(name)
        if role is None:
            raise NotFound(f"circle {self.circle.hex()[:8]} has no role {name!r}: `role create`")
        return role

    def name_of(self, member: bytes) -> str:
        return self.cg.member_name(member)

    def actor(self, key: Signer, level: Level, what: str) -> AuthState:
        """The circle's auth state, once the acting member is known to hold ``level``."""
        state = self.cg.log.full()
        require_level(state, state.member_of(key.public) or key.public, level, what)
        return state


async def load_roles(replica: Replica, circle: bytes) -> CircleRoles:
    """Fold every valid role and election record of ``circle``."""
    cg = await load(replica, circle)
    return roles_from(cg, await valid_records(replica, circle))


def roles_from(cg: CircleGovernance, raws: Iterable[RawRecord]) -> CircleRoles:
    """The roles and elections of ``cg``'s circle from its valid records ``raws``."""
    items: list[Stamped[Any]] = []
    for raw in raws:
        record = try_decode_selection(raw.body)
        if record is not None:
            items.append(Stamped(raw.op_id, raw.author, raw.member, raw.seq, raw.ts, record))
    return CircleRoles(cg, items, Elections(items, cg))


async def find_election(replica: Replica, text: str) -> tuple[CircleRoles, Election]:
    """An election by its hex id or a unique prefix (at least 6 digits), in any circle."""
    prefix = text.strip().lower()
    if len(prefix) < 6:
        raise NotFound("give at least 6 hex digits of the election id")
    found: list[tuple[CircleRoles, Election]] = []
    for circle in sorted(await replica.circles()):
        cr = await load_roles(replica, circle)
        found += [
            (cr, e) for eid, e in cr.elections.elections.items() if eid.hex().startswith(prefix)
        ]
    if not found:
        raise NotFound(f"no election matches {text!r}: `circle-node election list CIRCLE`")
    if len(found) > 1:
        raise NotFound(f"{text!r} matches {len(found)} elections; give more of the id")
    return found[0]


async def sign_selection(
    replica: Replica, key: Signer, circle: bytes, record: SelectionRecord
) -> bytes:
    """Sign and ingest a role or election record; its op id."""
    op = await author_record(replica, key, circle, encode_selection(record))
    return op.op_id


def check_role_name(name: str) -> None:
    if re.fullmatch(ROLE_NAME, name) is None:
        raise ConfigError(f"role name {name!r}: use lowercase letters, digits, - or _ (<= 40)")


# ---- roles -------------------------------------------------------------------------------


async def create_role(replica: Replica, key: Signer, circle: bytes, record: RoleRec) -> bytes:
    cr = await load_roles(replica, circle)
    cr.actor(key, Level.WRITE, "record roles")
    held = cr.roles().get(record.name)
    if held is not None and held.definition is not None:
        raise NodeError(f"role {record.name!r} is already defined in this circle")
    if record.proposal is not None:
        proposal = cr.cg.gov.proposals.get(record.proposal)
        if proposal is None or not cr.cg.outcome(proposal).agreed:
            raise NodeError("the proposal a role cites must be an agreed proposal of the circle")
    return await sign_selection(replica, key, circle, record)


# ---- elections ---------------------------------------------------------------------------


async def start_election(
    replica: Replica, key: Signer, circle: bytes, role_name: str, term_end: str | None, today: str
) -> tuple[bytes, bytes, bytes]:
    """Record the election and its term proposal; ``(election, proposal, version)``."""
    cr = await load_roles(replica, circle)
    cr.actor(key, Level.WRITE, "start elections")
    role = cr.role(role_name)
    term_end = term_for(term_end, role.term_days, today)
    if role_name == REPRESENTATIVE and term_end is None:
        raise NodeError("a representative is elected for a limited term: give --term-end")
    check_term(term_end, today)
    other = cr.elections.selecting(role_name)
    if other is not None:
        raise NodeError(f"election {other.id.hex()[:12]} is already selecting a {role_name}")
    eid = record_id(
        await sign_selection(replica, key, circle, ElectionRec(role=role_name, term_end=term_end))
    )
    until = term_end or "no set end"
    proposal = ProposalRec(
        title=f"Select a keeper for the role {role_name} until {until}",
        driver=f"The role {role_name} needs a keeper: {role.domain}".strip(),
        text=f"We select a keeper for the role {role_name} of circle {cr.circle_name} "
        f"for a term ending {until}.",
        election=eid,
        subject=TERM_SUBJECT,
        review_date=term_end,
    )
    pid, version = await create_proposal(replica, key, circle, proposal)
    return eid, pid, version


def _open_for_nominations(cr: CircleRoles, election: Election, number: int | None) -> int:
    phase = cr.elections.phase(election)
    if phase == "term":
        raise NodeError("the role and term are not consented yet: take positions on them first")
    if phase != "nominating":
        raise NodeError(f"election {election.id.hex()[:12]} is {phase}: nominations are closed")
    current = election.current_round
    if number is not None and number != current:
        raise NodeError(f"round {current} is the open round, not round {number}")
    return current


async def nominate(
    replica: Replica,
    key: Signer,
    election_ref: str,
    nominee_text: str | None,
    reason: str,
    *,
    round_no: int | None = None,
    change: bool = False,
) -> tuple[Election, int, bytes | None]:
    """Nominate (or pass, ``nominee_text`` None) or, with ``change``, change a nomination."""
    cr, election = await find_election(replica, election_ref)
    number = _open_for_nominations(cr, election, round_no)
    state = cr.actor(key, Level.WRITE, "nominate")
    nominee = None if nominee_text is None else resolve_member(state, nominee_text)
    if nominee is not None:
        require_level(state, nominee, Level.WRITE, "can keep a role")
    if (nominee is not None or change) and not reason.strip():
        raise NodeError("give the reasons for your choice: --reason '...'")
    record: SelectionRecord
    if change:
        record = ChangeRec(election=election.id, round=number, nominee=nominee, reason=reason)
    else:
        record = NominationRec(election=election.id, round=number, nominee=nominee, reason=reason)
    await sign_selection(replica, key, cr.circle, record)
    return election, number, nominee


async def propose(
    replica: Replica, key: Signer, election_ref: str, nominee_text: str
) -> tuple[bytes, bytes, bytes, int]:
    """Propose a nominee on the strength of reasons: ``(proposal, version, nominee, round)``."""
    cr, election = await find_election(replica, election_ref)
    number = _open_for_nominations(cr, election, None)
    state = cr.actor(key, Level.WRITE, "propose keepers")
    nominee = resolve_member(state, nominee_text)
    require_level(state, nominee, Level.WRITE, "can keep a role")
    standing = election.round(number).standing().items()
    reasons = [f"{cr.name_of(m)}: {r.reason}" for m, r in standing if r.nominee == nominee]
    if not reasons:
        raise NodeError(f"nobody nominates {cr.name_of(nominee)} in round {number}")
    record = election.record
    subject = KeeperSubject(nominee, record.role, record.term_end, number)
    body = ProposalRec(
        title=f"Select {cr.name_of(nominee)} as {record.role} until {record.term_end or '-'}",
        driver=("Reasons given: " + "; ".join(reasons))[:4000],
        text=keeper_text(subject, cr.name_of(nominee), cr.circle_name),
        election=election.id,
        review_date=record.term_end,  # the agreement comes up for review at term end
        subject=keeper_subject(subject),
    )
    pid, version = await create_proposal(replica, key, cr.circle, body)
    return pid, version, nominee, number


async def fail_round(
    replica: Replica, key: Signer, election_ref: str, reason: str, close: bool
) -> tuple[Election, int]:
    cr, election = await find_election(replica, election_ref)
    phase = cr.elections.phase(election)
    if phase in ("elected", "failed"):
        raise NodeError(f"election {election.id.hex()[:12]} is already {phase}")
    cr.actor(key, Level.WRITE, "end rounds")
    if not reason.strip():
        raise NodeError("say why the selection failed: --reason '...'")
    number = election.current_round
    record = FailRec(election=election.id, round=number, reason=reason, close=close)
    await sign_selection(replica, key, cr.circle, record)
    return election, number


def election_proposal(cr: CircleRoles, election: Election) -> Proposal | None:
    """The proposal members take positions on now: the term, then the nominee."""
    phase = cr.elections.phase(election)
    if phase == "term":
        return cr.elections.term_proposal(election)
    return cr.elections.open_proposal(election) if phase == "consent" else None


async def sign_result(
    replica: Replica, key: Signer, cr: CircleRoles, proposal: Proposal
) -> tuple[bytes, ResultRec]:
    """Record the keeper an agreed keeper proposal selected (election or appointment)."""
    subject = parse_keeper_subject(proposal.body.subject)
    outcome = cr.cg.outcome(proposal)
    if subject is None:
        raise NodeError("that proposal does not select a keeper")
    if outcome.decision is None:
        raise NodeError(
            f"proposal {proposal.id.hex()[:12]} is {outcome.state}, not agreed: "
            f"{len(outcome.missing)} member(s) have not consented yet"
        )
    current = cr.roles().get(subject.role)
    previous = current.current() if current else None
    record = ResultRec(
        proposal=proposal.id,
        decision=outcome.decision.op_id,
        keeper=subject.keeper,
        role=subject.role,
        term_end=subject.term_end,
        election=proposal.body.election,
        supersedes=previous.op_id if previous else None,
    )
    why = cr.elections.result_problem(Stamped(b"", key.public, key.public, 0, 0, record))
    if why is not None:
        raise NodeError(f"no keeper can be recorded: {why}")
    return await sign_selection(replica, key, cr.circle, record), record


async def record_result(
    replica: Replica, key: Signer, election_ref: str
) -> tuple[Election, bytes, ResultRec]:
    cr, election = await find_election(replica, election_ref)
    if cr.elections.valid_result(election) is not None:
        raise NodeError(f"election {election.id.hex()[:12]} already has its result")
    proposal = cr.elections.open_proposal(election)
    if proposal is None or cr.elections.phase(election) != "consent":
        raise NodeError("no nominee is proposed: `election propose ELECTION NOMINEE`")
    op_id, record = await sign_result(replica, key, cr, proposal)
    return election, op_id, record


async def election_position(
    replica: Replica, key: Signer, election_ref: str, position: str, reason: str
) -> tuple[bytes, str, bytes | None]:
    """A position on the election's open proposal (term, then nominee); when that agrees
    the nominee, the result is recorded too. ``(proposal, its state, result op or None)``."""
    cr, election = await find_election(replica, election_ref)
    proposal = election_proposal(cr, election)
    if proposal is None:
        phase = cr.elections.phase(election)
        raise NodeError(f"election {election.id.hex()[:12]} is {phase}: nothing to consent to")
    outcome = await take_position(replica, key, proposal.id.hex(), position, reason)
    result = None
    if outcome.agreed and parse_keeper_subject(proposal.body.subject) is not None:
        cr, election = await find_election(replica, election.id.hex())
        if cr.elections.valid_result(election) is None:
            result, _ = await sign_result(replica, key, cr, cr.cg.gov.proposals[proposal.id])
    return proposal.id, outcome.state, result


async def appoint(
    replica: Replica,
    key: Signer,
    circle: bytes,
    role_name: str,
    member_text: str,
    term_end: str | None,
    today: str,
) -> tuple[bytes, bytes, bytes]:
    """Open the consent proposal appointing a keeper: ``(proposal, version, keeper)``."""
    cr = await load_roles(replica, circle)
    state = cr.actor(key, Level.WRITE, "propose keepers")
    role = cr.role(role_name)
    term_end = term_for(term_end, role.term_days, today)
    if role_name == REPRESENTATIVE:
        raise NodeError("the representative is elected: `election start CIRCLE --role ...`")
    check_term(term_end, today)
    keeper = resolve_member(state, member_text)
    require_level(state, keeper, Level.WRITE, "can keep a role")
    subject = KeeperSubject(keeper, role_name, term_end)
    body = ProposalRec(
        title=f"Appoint {cr.name_of(keeper)} as {role_name} until {term_end or '-'}",
        driver=f"The role {role_name} needs a keeper: {role.domain}".strip(),
        text=keeper_text(subject, cr.name_of(keeper), cr.circle_name),
        subject=keeper_subject(subject),
        review_date=term_end,
    )
    pid, version = await create_proposal(replica, key, circle, body)
    return pid, version, keeper


async def confirm_appointment(
    replica: Replica, key: Signer, proposal_ref: str
) -> tuple[bytes, bytes, ResultRec]:
    cg, proposal = await find_proposal(replica, proposal_ref)
    if proposal.body.election is not None:
        raise NodeError("that proposal belongs to an election: `election result ELECTION`")
    cr = await load_roles(replica, cg.circle)
    op_id, record = await sign_result(replica, key, cr, cr.cg.gov.proposals[proposal.id])
    return cg.circle, op_id, record


def logbook_entries(circle: bytes, raw: list[RawRecord]) -> list[LogEntry]:
    """The circle's logbook gets each election started and each failed round; keepers
    appear there as the decisions on their keeper proposals."""
    entries: list[LogEntry] = []
    for item in raw:
        record = try_decode_selection(item.body)
        if isinstance(record, ElectionRec):
            title = f"Election of a {record.role} until {record.term_end or '-'}"
            detail: dict[str, object] = {"election": record_id(item.op_id), "member": item.member}
            entries.append(LogEntry("election", item.op_id, item.ts, title, None, detail))
        elif isinstance(record, FailRec):
            title = f"Election round {record.round} failed: {record.reason}"
            detail = {
                "election": record.election,
                "close": record.close,
                "member": item.member,
            }
            entries.append(LogEntry("election", item.op_id, item.ts, title, None, detail))
    return entries


add_logbook_source(logbook_entries)
