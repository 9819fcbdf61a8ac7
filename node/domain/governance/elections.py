"""Role selection (S3 elections) and appointments: record types and pure rules.

An election is an ``election`` record (role + term) plus consent proposals that name it
(``ProposalRec.election``); docs/elections.md walks through it. The rules:

- **Role and term first.** The *term proposal* (``subject`` = :data:`TERM_SUBJECT`) must
  be agreed before nominations open (the service refuses earlier nominations).
- **Rounds.** Round ``n`` is open until an ``election_fail`` record closes it; the current
  round is the lowest round not closed. An ``election_fail`` with ``close`` ends the
  election as failed.
- **Nominations.** A member's nomination in a round is their latest ``nomination`` record
  of that round (per key the highest seq; across a member's keys the later record time,
  then the lower op id). A ``nominee`` of ``None`` is a pass. A member's latest
  ``election_change`` of the round (the change round) replaces their nomination.
- **Keeper proposals.** A nominee is proposed by a proposal whose ``subject`` is a
  :func:`keeper_subject` (keeper, role, term end, round): the signed text everyone consents
  to names all of them. Appointments (no election) use the same subject.
- **Results.** An ``election_result`` holds when its proposal's valid decision record is
  on the current version, the subject matches the result, the election's role and term
  match, and the decision lists a consent or concern *by the nominee*: a keeper proposal
  is never agreed without the nominee's own position (S3 asks the nominee first; an
  objection by the nominee blocks like any other). A ``representative`` needs a term end.

Pure: no I/O, no clock; "today" is always a parameter.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Annotated, Any, Generic, Protocol, TypeVar

import msgspec

from node.domain.governance.consent import Governance, Outcome, Proposal, Signed
from node.domain.governance.records import (
    Day,
    DecisionRec,
    Id16,
    Id32,
    PositionRec,
    Short,
    record_id,
)
from node.errors import NodeError

TERM_SUBJECT = "election-term"
LEADER = "leader"
REPRESENTATIVE = "representative"
LINK_ROLES = (LEADER, REPRESENTATIVE)
ROLE_NAME = r"^[a-z][a-z0-9_-]{0,39}$"

RoleName = Annotated[str, msgspec.Meta(pattern=ROLE_NAME)]
RoundNo = Annotated[int, msgspec.Meta(ge=1, le=1000)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=2_000)]
R = TypeVar("R")


class Consent(Protocol):
    """A circle's consent outcomes under its quorum policy: ``node.governance``'s
    ``CircleGovernance`` on a replica, :class:`~roles.EvidenceConsent` over evidence."""

    @property
    def gov(self) -> Governance: ...

    def outcome(self, proposal: Proposal) -> Outcome: ...

    def decision_problem(self, decision: Signed) -> str | None: ...


class SelectionBase(msgspec.Struct, frozen=True, tag_field="t", forbid_unknown_fields=True):
    """Base of every role and election record body."""


class ElectionRec(SelectionBase, frozen=True, tag="election"):
    """Select a keeper for ``role`` until ``term_end`` (inclusive); None: no end."""

    role: RoleName
    term_end: Day | None = None
    note: Short = ""


class NominationRec(SelectionBase, frozen=True, tag="nomination"):
    """A member nominates ``nominee`` (themself allowed), or passes (``nominee`` None)."""

    election: Id16
    round: RoundNo = 1
    nominee: Id32 | None = None
    reason: Short = ""


class ChangeRec(SelectionBase, frozen=True, tag="election_change"):
    """The change round: a member changes their nomination, with a reason."""

    election: Id16
    round: RoundNo
    nominee: Id32 | None
    reason: Reason


class FailRec(SelectionBase, frozen=True, tag="election_fail"):
    """Round ``round`` found no keeper; ``close`` ends the whole election as failed."""

    election: Id16
    round: RoundNo
    reason: Reason
    close: bool = False


class ResultRec(SelectionBase, frozen=True, tag="election_result"):
    """The keeper of ``role`` until ``term_end``, by the agreed keeper proposal.

    ``election`` is None for an appointment. ``supersedes`` names the result of the role's
    previous keeper, if any: that is how a new keeper ends the old one's tenure."""

    proposal: Id16
    decision: Id32
    keeper: Id32
    role: RoleName
    term_end: Day | None = None
    election: Id16 | None = None
    supersedes: Id32 | None = None


@dataclass(frozen=True, slots=True)
class Stamped(Generic[R]):
    """A valid record with who signed it: the author key and the member it belongs to."""

    op_id: bytes
    author: bytes
    member: bytes
    seq: int
    ts: int
    record: R


# ---- the keeper subject -------------------------------------------------------------------

_SUBJECT = re.compile(
    r"^keeper:(?P<keeper>[0-9a-f]{64}) role:(?P<role>[a-z][a-z0-9_-]{0,39})"
    r" until:(?P<until>\d{4}-\d{2}-\d{2}|-)(?: round:(?P<round>[1-9]\d{0,3}))?$"
)


@dataclass(frozen=True, slots=True)
class KeeperSubject:
    """What a keeper proposal decides: who keeps which role until when."""

    keeper: bytes
    role: str
    term_end: str | None
    round: int | None = None


def keeper_subject(subject: KeeperSubject) -> str:
    """The proposal ``subject`` string that binds keeper, role and term into the consent."""
    text = f"keeper:{subject.keeper.hex()} role:{subject.role} until:{subject.term_end or '-'}"
    return text + (f" round:{subject.round}" if subject.round is not None else "")


def parse_keeper_subject(text: str) -> KeeperSubject | None:
    match = _SUBJECT.match(text)
    if match is None:
        return None
    until, number = match["until"], match["round"]
    return KeeperSubject(
        bytes.fromhex(match["keeper"]),
        match["role"],
        None if until == "-" else until,
        int(number) if number else None,
    )


def holds_on(term_end: str | None, today: str) -> bool:
    """A term holds through its end day; ISO dates compare as strings."""
    return term_end is None or today <= term_end


def term_for(term_end: str | None, term_days: int | None, today: str) -> str | None:
    """The term end given, else ``today`` plus the role's usual term, else None."""
    if term_end is None and term_days is not None:
        return (date.fromisoformat(today) + timedelta(days=term_days)).isoformat()
    return term_end


def check_term(term_end: str | None, today: str) -> None:
    """A new term must end after ``today``."""
    if term_end is not None and term_end <= today:
        raise NodeError(f"the term end {term_end} is not after today ({today})")


def keeper_text(subject: KeeperSubject, keeper_name: str, circle_name: str) -> str:
    """The text members consent to when they select a keeper."""
    return (
        f"We select {keeper_name} (member {subject.keeper.hex()}) as keeper of the role "
        f"{subject.role} in circle {circle_name} until "
        f"{subject.term_end or 'a new keeper is selected'}."
    )


def latest_by_member(items: Iterable[Stamped[R]]) -> dict[bytes, Stamped[R]]:
    """Each member's latest record: per key the highest seq, across a member's keys the
    later record time, then the lower op id (the rule positions follow too)."""
    per_key: dict[bytes, Stamped[R]] = {}
    for item in items:
        held = per_key.get(item.author)
        if held is None or item.seq > held.seq:
            per_key[item.author] = item
    per_member: dict[bytes, Stamped[R]] = {}
    for item in per_key.values():
        held = per_member.get(item.member)
        if held is None or (item.ts, held.op_id) > (held.ts, item.op_id):
            per_member[item.member] = item
    return per_member


# ---- results --------------------------------------------------------------------------------


def result_problem(
    result: ResultRec, consent: Consent, election: ElectionRec | None = None
) -> str | None:
    """None when ``result`` holds by the circle's consent records; otherwise why not."""
    gov = consent.gov
    proposal = gov.proposals.get(result.proposal)
    if proposal is None:
        return "its keeper proposal is not known"
    subject = parse_keeper_subject(proposal.body.subject)
    if subject is None:
        return "its proposal does not name a keeper, role and term"
    claimed = (result.keeper, result.role, result.term_end, result.election)
    if (subject.keeper, subject.role, subject.term_end, proposal.body.election) != claimed:
        return "it does not match the keeper, role, term or election its proposal names"
    if election is not None and (election.role, election.term_end) != (
        result.role,
        result.term_end,
    ):
        return "it does not match the role and term of its election"
    if result.role == REPRESENTATIVE and result.term_end is None:
        return "a representative's term must end"
    decision = gov.by_op.get(result.decision)
    record = decision.record if decision else None
    if decision is None or not isinstance(record, DecisionRec) or record.proposal != proposal.id:
        return "its decision record is not known for that proposal"
    why = consent.decision_problem(decision)
    if why is not None:
        return f"its proposal was not agreed: {why}"
    if not _nominee_consented(gov, record, result.keeper):
        return "the nominee's own consent is not part of the decision"
    return None


def proof_records(gov: Governance, result: Stamped[ResultRec]) -> set[bytes]:
    """The op ids of the records that prove ``result``: itself, its keeper proposal and
    the amendments up to the decided version, the decision, its positions and the tests
    of any objection among them. (Their auth ops are the closure of their deps.)"""
    decision = gov.by_op[result.record.decision]
    assert isinstance(decision.record, DecisionRec)
    proposal = gov.proposals[result.record.proposal]
    needed = {result.op_id, proposal.op_id, decision.op_id}
    version = proposal.versions.get(decision.record.version)
    while version is not None and version.base is not None:
        needed.add(version.op_id)
        version = proposal.versions.get(version.base)
    for op_id in decision.record.positions:
        needed.add(op_id)
        needed.update(t.op_id for t in gov.tests.get(op_id, []))
    return needed


def _nominee_consented(gov: Governance, decision: DecisionRec, keeper: bytes) -> bool:
    for op_id in decision.positions:
        signed = gov.by_op.get(op_id)
        position = signed.record if signed else None
        if signed is not None and signed.member == keeper and isinstance(position, PositionRec):
            if position.position in ("consent", "concern"):
                return True
    return False


# ---- the election state machine ------------------------------------------------------------


@dataclass
class Round:
    """One selection round: nominations, the change round, keeper proposals, failure."""

    number: int
    nominations: dict[bytes, Stamped[NominationRec]] = field(default_factory=dict)
    changes: dict[bytes, Stamped[ChangeRec]] = field(default_factory=dict)
    proposals: list[Proposal] = field(default_factory=list)
    failure: Stamped[FailRec] | None = None

    def standing(self) -> dict[bytes, NominationRec | ChangeRec]:
        """Each member's standing record: their change if any, else their nomination."""
        chosen: dict[bytes, NominationRec | ChangeRec] = {
            m: s.record for m, s in self.nominations.items()
        }
        chosen.update({m: s.record for m, s in self.changes.items()})
        return chosen

    def choices(self) -> dict[bytes, bytes | None]:
        """Each member's standing choice of nominee (None: a pass)."""
        return {m: record.nominee for m, record in self.standing().items()}

    def tally(self) -> list[tuple[bytes, int]]:
        """Nominees by the number of standing nominations, most first (ties: lower id)."""
        counts = Counter(n for n in self.choices().values() if n is not None)
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))

    @property
    def stage(self) -> str:
        if self.failure is not None:
            return "failed"
        if self.proposals:
            return "proposed"
        return "changes" if self.changes else "nominations"


@dataclass
class Election:
    id: bytes
    op_id: bytes
    member: bytes
    ts: int
    record: ElectionRec
    term_proposals: list[Proposal] = field(default_factory=list)
    rounds: dict[int, Round] = field(default_factory=dict)
    fails: list[Stamped[FailRec]] = field(default_factory=list)
    results: list[Stamped[ResultRec]] = field(default_factory=list)

    def round(self, number: int) -> Round:
        return self.rounds.setdefault(number, Round(number))

    @property
    def current_round(self) -> int:
        """The lowest round that no ``election_fail`` closed."""
        number = 1
        while number in self.rounds and self.rounds[number].failure is not None:
            number += 1
        return number

    @property
    def closed(self) -> Stamped[FailRec] | None:
        closing = [f for f in self.fails if f.record.close]
        return min(closing, key=lambda f: f.op_id) if closing else None


class Elections:
    """Every election of one circle, folded from its valid records and proposals."""

    def __init__(self, records: Iterable[Stamped[Any]], consent: Consent) -> None:
        self.consent = consent
        self.elections: dict[bytes, Election] = {}
        self.results: list[Stamped[ResultRec]] = []  # claimed, elections and appointments
        nominations: dict[tuple[bytes, int], list[Stamped[Any]]] = defaultdict(list)
        changes: dict[tuple[bytes, int], list[Stamped[Any]]] = defaultdict(list)
        rest: list[Stamped[Any]] = []
        for item in sorted(records, key=lambda s: s.op_id):
            record = item.record
            if isinstance(record, ElectionRec):
                eid = record_id(item.op_id)
                self.elections[eid] = Election(eid, item.op_id, item.member, item.ts, record)
            elif isinstance(record, NominationRec):
                nominations[(record.election, record.round)].append(item)
            elif isinstance(record, ChangeRec):
                changes[(record.election, record.round)].append(item)
            else:
                rest.append(item)
        for (eid, number), items in nominations.items():
            if eid in self.elections:
                self.elections[eid].round(number).nominations = latest_by_member(items)
        for (eid, number), items in changes.items():
            if eid in self.elections:
                self.elections[eid].round(number).changes = latest_by_member(items)
        for item in rest:
            if isinstance(item.record, ResultRec):
                self.results.append(item)
            self._attach(item)
        for proposal in sorted(consent.gov.proposals.values(), key=lambda p: p.op_id):
            self._attach_proposal(proposal)

    def _attach(self, item: Stamped[Any]) -> None:
        record = item.record
        election = self.elections.get(getattr(record, "election", None) or b"")
        if election is None:
            return
        if isinstance(record, FailRec):
            election.fails.append(item)
            held = election.round(record.round).failure
            if held is None or item.op_id < held.op_id:
                election.round(record.round).failure = item
        elif isinstance(record, ResultRec):
            election.results.append(item)

    def _attach_proposal(self, proposal: Proposal) -> None:
        election = self.elections.get(proposal.body.election or b"")
        if election is None:
            return
        if proposal.body.subject == TERM_SUBJECT:
            election.term_proposals.append(proposal)
            return
        subject = parse_keeper_subject(proposal.body.subject)
        if subject is not None and subject.round is not None:
            election.round(subject.round).proposals.append(proposal)

    # ---- queries ----------------------------------------------------------------------------

    def state_of(self, proposal: Proposal) -> str:
        return self.consent.outcome(proposal).state

    def term_agreed(self, election: Election) -> bool:
        return any(self.state_of(p) == "agreed" for p in election.term_proposals)

    def result_problem(self, result: Stamped[ResultRec]) -> str | None:
        """None when a result holds in this circle (its election, if any, known here)."""
        election = None
        if result.record.election is not None:
            found = self.elections.get(result.record.election)
            if found is None:
                return "its election is not known in this circle"
            election = found.record
        return result_problem(result.record, self.consent, election)

    def valid_results(self) -> list[Stamped[ResultRec]]:
        return [r for r in self.results if self.result_problem(r) is None]

    def valid_result(self, election: Election) -> Stamped[ResultRec] | None:
        valid = [r for r in election.results if self.result_problem(r) is None]
        return min(valid, key=lambda r: r.op_id) if valid else None

    def term_proposal(self, election: Election) -> Proposal | None:
        """The term proposal still in play (agreed included)."""
        live = [
            p for p in election.term_proposals if self.state_of(p) not in ("withdrawn", "deferred")
        ]
        return min(live, key=lambda p: p.op_id) if live else None

    def selecting(self, role: str) -> Election | None:
        """An election for ``role`` that is neither elected nor failed."""
        return next(
            (
                e
                for _, e in sorted(self.elections.items())
                if e.record.role == role and self.phase(e) not in ("elected", "failed")
            ),
            None,
        )

    def open_proposal(self, election: Election) -> Proposal | None:
        """The current round's keeper proposal still in play (agreed included)."""
        live = [
            p
            for p in election.round(election.current_round).proposals
            if self.state_of(p) not in ("withdrawn", "deferred")
        ]
        return min(live, key=lambda p: p.op_id) if live else None

    def phase(self, election: Election) -> str:
        """``failed``, ``elected``, ``term`` (role and term not yet consented),
        ``consent`` (a nominee is proposed) or ``nominating``."""
        if election.closed is not None:
            return "failed"
        if self.valid_result(election) is not None:
            return "elected"
        if not self.term_agreed(election):
            return "term"
        return "consent" if self.open_proposal(election) is not None else "nominating"
