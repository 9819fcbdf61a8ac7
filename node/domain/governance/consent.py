"""Proposals, consent and decisions: pure rules over a circle's signed records.

The outcome of a proposal is a function of the *set* of valid records alone, never of the
order they arrived in or of any clock (docs/governance.md states every rule):

- **versions** form a tree by ``base``; a version's number is its depth. An amendment
  repeating the text of a version that already exists makes no new version. The
  **current version** is the deepest (ties: the lower op id).
- a member's **position** on a version is their latest position record on it: per key by
  seq; across a member's keys (devices) the later record time, then the lower op id.
  Only members the quorum policy requires can take part: other positions never count.
- an **objection** is open while it is its author's latest position and no valid test
  says it does not qualify. A test counts when the objector signed it, or when it cites
  an agreed proposal whose ``subject`` is ``objection:<op hex>`` of that objection.
- a **decision record** holds when every position it lists is a known position on exactly
  its proposal version, no listed objection is open, no member is listed twice, and every
  member required by the quorum policy has a listed position. The quorum is judged as of
  everything the decision rests on: the union of the ``deps`` of the decision, the
  proposal, the decided version and the listed positions.
- a proposal is **agreed** when a decision record on one of its versions holds (the
  deepest such version, then the lower op id). A decision closes the round: a position
  signed after it (or concurrently) does not reopen it; that goes through a review.
- otherwise its state is, in order: **withdrawn** (any withdraw record), **deferred** (the
  latest stage record), **integrating** (an open objection on the current version),
  **consent_round** (any position on the proposal), else the latest stage or **draft**.
Concerns never block; they stay with the evaluation criteria.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from node.domain.governance.records import (
    AmendRec,
    DecisionRec,
    GovernanceRecord,
    ObjectionTestRec,
    PositionRec,
    ProposalRec,
    QuestionRec,
    ReactionRec,
    ReviewRec,
    StageRec,
    record_id,
    version_hash,
)

STATES = (
    "draft",
    "clarifying",
    "reactions",
    "consent_round",
    "integrating",
    "agreed",
    "withdrawn",
    "deferred",
)
OPEN_STATES = frozenset({"draft", "clarifying", "reactions", "consent_round", "integrating"})
MAX_TEST_DEPTH = 8  # objection tests settled by decisions whose objections were tested...

RequiredAt = Callable[[bytes | None], set[bytes]]
"""Members the quorum requires as of one record's deps (``None``: as of now)."""
RequiredFor = Callable[[Sequence[bytes]], set[bytes]]
"""Members the quorum requires as of the union of several records' deps."""


def objection_subject(objection: bytes) -> str:
    """The ``subject`` of a proposal that tests one objection by consent."""
    return "objection:" + objection.hex()


@dataclass(frozen=True, slots=True)
class Signed:
    """A valid record with who signed it: the author key, and the member it belongs to."""

    op_id: bytes
    author: bytes
    member: bytes
    seq: int
    ts: int
    record: GovernanceRecord


@dataclass
class Version:
    hash: bytes
    text: str
    number: int
    op_id: bytes
    author: bytes
    base: bytes | None = None
    strategy: str = "original"
    resolves: list[bytes] = field(default_factory=list)
    note: str = ""
    ts: int = 0


@dataclass
class Proposal:
    id: bytes
    op_id: bytes
    author: bytes
    ts: int
    body: ProposalRec
    versions: dict[bytes, Version] = field(default_factory=dict)
    stages: list[Signed] = field(default_factory=list)
    questions: list[Signed] = field(default_factory=list)
    reactions: list[Signed] = field(default_factory=list)
    positions: list[Signed] = field(default_factory=list)
    decisions: list[Signed] = field(default_factory=list)

    def current(self) -> Version:
        """The deepest version; between equally deep ones, the lower op id."""
        return min(self.versions.values(), key=lambda v: (-v.number, v.op_id))

    def ordered_versions(self) -> list[Version]:
        return sorted(self.versions.values(), key=lambda v: (v.number, v.op_id))

    def latest_stage(self) -> StageRec | None:
        """The stage record with the latest time (ties: the higher op id)."""
        if not self.stages:
            return None
        last = max(self.stages, key=lambda s: (s.ts, s.op_id)).record
        assert isinstance(last, StageRec)
        return last


@dataclass
class Outcome:
    state: str
    version: Version  # the agreed version, else the current one
    positions: dict[bytes, Signed]  # member -> the position that counts on ``version``
    required: set[bytes]
    missing: list[bytes]
    open_objections: list[Signed]
    concerns: list[Signed]
    decision: Signed | None
    ignored: list[Signed] = field(default_factory=list)  # by members who cannot take part

    @property
    def agreed(self) -> bool:
        return self.state == "agreed"


class Governance:
    """All proposals of one circle, folded from its valid records."""

    def __init__(self, records: Iterable[Signed]) -> None:
        self.proposals: dict[bytes, Proposal] = {}
        self.tests: dict[bytes, list[Signed]] = defaultdict(list)
        self.reviews: dict[bytes, list[Signed]] = defaultdict(list)
        self.decisions: list[Signed] = []  # every decision record, known proposal or not
        self.by_op: dict[bytes, Signed] = {}
        pending: list[Signed] = []
        for signed in sorted(records, key=lambda s: s.op_id):
            if signed.op_id in self.by_op:
                continue
            self.by_op[signed.op_id] = signed
            record = signed.record
            if isinstance(record, ProposalRec):
                pid = record_id(signed.op_id)
                proposal = Proposal(pid, signed.op_id, signed.member, signed.ts, record)
                first = Version(
                    version_hash(pid, record.text),
                    record.text,
                    0,
                    signed.op_id,
                    signed.member,
                    ts=signed.ts,
                )
                proposal.versions[first.hash] = first
                self.proposals[pid] = proposal
            else:
                pending.append(signed)
        self._add_versions([s for s in pending if isinstance(s.record, AmendRec)])
        for signed in pending:
            self._attach(signed)

    def _add_versions(self, amends: list[Signed]) -> None:
        """Grow each proposal's version tree level by level from its first version, so a
        version's number is its depth whatever order the amendments came in."""
        children: dict[tuple[bytes, bytes], list[Signed]] = defaultdict(list)
        for signed in amends:
            record = signed.record
            assert isinstance(record, AmendRec)
            children[(record.proposal, record.base)].append(signed)
        for proposal in self.proposals.values():
            frontier = list(proposal.versions.values())
            while frontier:
                level = sorted(
                    (s for v in frontier for s in children.get((proposal.id, v.hash), [])),
                    key=lambda s: s.op_id,
                )
                frontier = []
                for signed in level:
                    version = _version_of(proposal, signed)
                    if version.hash not in proposal.versions:
                        proposal.versions[version.hash] = version
                        frontier.append(version)

    def _attach(self, signed: Signed) -> None:
        record = signed.record
        if isinstance(record, ObjectionTestRec):
            self.tests[record.objection].append(signed)
            return
        if isinstance(record, ReviewRec):
            self.reviews[record.agreement].append(signed)
            return
        if isinstance(record, DecisionRec):
            self.decisions.append(signed)
        proposal_id = getattr(record, "proposal", None)
        proposal = self.proposals.get(proposal_id) if proposal_id else None
        if proposal is None:
            return
        if isinstance(record, StageRec):
            proposal.stages.append(signed)
        elif isinstance(record, QuestionRec):
            proposal.questions.append(signed)
        elif isinstance(record, ReactionRec):
            proposal.reactions.append(signed)
        elif isinstance(record, PositionRec) and record.version in proposal.versions:
            proposal.positions.append(signed)
        elif isinstance(record, DecisionRec) and record.version in proposal.versions:
            proposal.decisions.append(signed)

    # ---- outcomes -----------------------------------------------------------------------

    def outcome(
        self,
        proposal: Proposal,
        required_at: RequiredAt,
        _depth: int = 0,
        *,
        required_for: RequiredFor | None = None,
    ) -> Outcome:
        """The state of ``proposal``. ``required_at(None)`` gives the members the quorum
        policy requires today (for an open round); ``required_for(op_ids)`` those it
        required as of what a decision rests on (default: as of the decision alone)."""
        quorum = _Quorum(required_at, required_for)
        decision = self._valid_decision(proposal, quorum, _depth)
        if decision is not None:
            return self._agreed(proposal, decision, quorum)
        version = proposal.current()
        latest = latest_positions(proposal.positions, version.hash)
        required = required_at(None)
        counted = {m: s for m, s in latest.items() if m in required}
        ignored = [s for m, s in latest.items() if m not in required]
        objections = [
            s
            for s in counted.values()
            if _kind(s) == "objection" and self._objection_open(s, quorum, _depth)
        ]
        open_ids = {s.op_id for s in objections}
        consented = {m for m, s in counted.items() if s.op_id not in open_ids}
        return Outcome(
            _state(proposal, bool(counted) or bool(proposal.positions), bool(objections)),
            version,
            counted,
            required,
            sorted(required - consented),
            objections,
            [s for s in counted.values() if _kind(s) != "consent" and s.op_id not in open_ids],
            None,
            ignored,
        )

    def _agreed(self, proposal: Proposal, decision: Signed, quorum: _Quorum) -> Outcome:
        record = decision.record
        assert isinstance(record, DecisionRec)
        version = proposal.versions[record.version]
        required = quorum.for_decision(self, proposal, decision)
        listed = [self.by_op[op_id] for op_id in record.positions]
        counted = {s.member: s for s in listed if s.member in required}
        return Outcome(
            "agreed",
            version,
            counted,
            required,
            [],
            [],
            [s for s in counted.values() if _kind(s) != "consent"],
            decision,
            [s for s in listed if s.member not in required],
        )

    def _valid_decision(self, proposal: Proposal, quorum: _Quorum, depth: int) -> Signed | None:
        """The decision that makes ``proposal`` agreed: among those that hold, the one on
        the deepest version, then the lower op id."""
        holding = [d for d in proposal.decisions if self._problem(d, quorum, depth) is None]
        if not holding:
            return None

        def rank(decision: Signed) -> tuple[int, bytes]:
            record = decision.record
            assert isinstance(record, DecisionRec)
            return (-proposal.versions[record.version].number, decision.op_id)

        return min(holding, key=rank)

    def decision_holds(
        self,
        decision: Signed,
        required_at: RequiredAt,
        *,
        required_for: RequiredFor | None = None,
    ) -> str | None:
        """None when the decision record holds; otherwise why it does not."""
        return self._problem(decision, _Quorum(required_at, required_for), 0)

    def _problem(self, decision: Signed, quorum: _Quorum, depth: int) -> str | None:
        record = decision.record
        assert isinstance(record, DecisionRec)
        proposal = self.proposals.get(record.proposal)
        if proposal is None or record.version not in proposal.versions:
            return "it names a proposal version this circle does not have"
        by_member: dict[bytes, Signed] = {}
        for op_id in record.positions:
            name = op_id.hex()[:12]
            signed = self.by_op.get(op_id)
            position = signed.record if signed else None
            if signed is None or not isinstance(position, PositionRec):
                return f"position {name} is not a known position record"
            if position.proposal != record.proposal or position.version != record.version:
                return f"position {name} is on another proposal or version"
            if position.position == "objection" and self._objection_open(signed, quorum, depth):
                return f"position {name} is an objection that was not tested away"
            if signed.member in by_member:
                return f"it lists two positions of member {signed.member.hex()[:12]}"
            by_member[signed.member] = signed
        missing = quorum.for_decision(self, proposal, decision) - set(by_member)
        if missing:
            names = ", ".join(sorted(m.hex()[:12] for m in missing))
            return f"{len(missing)} required member(s) did not consent: {names}"
        return None

    def objection_open(
        self,
        objection: Signed,
        required_at: RequiredAt,
        depth: int = 0,
        *,
        required_for: RequiredFor | None = None,
    ) -> bool:
        """An objection is open unless a valid test says it does not qualify."""
        return self._objection_open(objection, _Quorum(required_at, required_for), depth)

    def _objection_open(self, objection: Signed, quorum: _Quorum, depth: int) -> bool:
        for test in self.tests.get(objection.op_id, []):
            if self._test_counts(test, objection, quorum, depth):
                return False
        return True

    def test_counts(
        self, test: Signed, required_at: RequiredAt, *, required_for: RequiredFor | None = None
    ) -> bool:
        """Whether a "does not qualify" test takes its objection out of the way."""
        record = test.record
        assert isinstance(record, ObjectionTestRec)
        objection = self.by_op.get(record.objection)
        if objection is None or not isinstance(objection.record, PositionRec):
            return False
        return self._test_counts(test, objection, _Quorum(required_at, required_for), 0)

    def _test_counts(self, test: Signed, objection: Signed, quorum: _Quorum, depth: int) -> bool:
        record = test.record
        assert isinstance(record, ObjectionTestRec)
        if record.qualifies:
            return False
        if test.member == objection.member:
            return True  # the objector's own signed acknowledgement
        settled = self.proposals.get(record.decision) if record.decision else None
        if settled is None or settled.body.subject != objection_subject(objection.op_id):
            return False
        if depth >= MAX_TEST_DEPTH:
            return False
        sub = self.outcome(settled, quorum.required_at, depth + 1, required_for=quorum.required_for)
        return sub.agreed


@dataclass(frozen=True, slots=True)
class _Quorum:
    required_at: RequiredAt
    required_for: RequiredFor | None

    def for_decision(self, gov: Governance, proposal: Proposal, decision: Signed) -> set[bytes]:
        record = decision.record
        assert isinstance(record, DecisionRec)
        if self.required_for is None:
            return self.required_at(decision.op_id)
        version = proposal.versions[record.version]
        rests_on = [decision.op_id, proposal.op_id, version.op_id, *record.positions]
        return self.required_for([op for op in rests_on if op in gov.by_op])


def _version_of(proposal: Proposal, signed: Signed) -> Version:
    record = signed.record
    assert isinstance(record, AmendRec)
    base = proposal.versions[record.base]
    return Version(
        version_hash(proposal.id, record.text),
        record.text,
        base.number + 1,
        signed.op_id,
        signed.member,
        base.hash,
        record.strategy,
        list(record.resolves),
        record.note,
        signed.ts,
    )


def _kind(signed: Signed) -> str:
    record = signed.record
    assert isinstance(record, PositionRec)
    return record.position


def latest_positions(positions: list[Signed], version: bytes) -> dict[bytes, Signed]:
    """Each member's latest position on ``version``: per key the highest seq, across a
    member's keys the later record time, then the lower op id."""
    per_key: dict[bytes, Signed] = {}
    for signed in positions:
        record = signed.record
        if not isinstance(record, PositionRec) or record.version != version:
            continue
        held = per_key.get(signed.author)
        if held is None or (signed.seq, held.op_id) > (held.seq, signed.op_id):
            per_key[signed.author] = signed
    per_member: dict[bytes, Signed] = {}
    for signed in per_key.values():
        held = per_member.get(signed.member)
        if held is None or (signed.ts, held.op_id) > (held.ts, signed.op_id):
            per_member[signed.member] = signed
    return per_member


def _state(proposal: Proposal, has_positions: bool, has_objections: bool) -> str:
    """The state of a proposal without a decision that holds (see docs/governance.md)."""
    if any(
        isinstance(s.record, StageRec) and s.record.stage == "withdrawn" for s in proposal.stages
    ):
        return "withdrawn"
    latest = proposal.latest_stage()
    stage = latest.stage if latest else "draft"
    if stage == "deferred":
        return "deferred"
    if has_objections:
        return "integrating"
    if has_positions:
        return "consent_round"
    return stage
