"""Proposals, consent and decisions: pure rules over a circle's signed records.

The outcome of a proposal is a function of the set of valid records alone, never of the
order they arrived in or of any clock:
- the **current version** is the deepest amendment (ties: the lower op id);
- a member's **position** on it is their latest position record on that version (per key
  by seq; across a member's devices the later record time, then the lower op id);
- an **objection** is open while its author's latest position on the version is that
  objection and no valid test says it does not qualify (a test counts when the objector
  signed it, or when it cites an agreed proposal that settled it);
- a proposal is **agreed** when a valid decision record exists for the current version;
  a decision record is valid when it lists, for every member required by the quorum
  policy as of the decision (default: every member with write level), a consent or
  concern by that member on exactly that version, and no objection.
Concerns never block; they stay with the evaluation criteria.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
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
_STAGE_RANK = {"draft": 0, "clarifying": 1, "reactions": 2, "consent_round": 3}


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


@dataclass
class Outcome:
    state: str
    version: Version
    positions: dict[bytes, Signed]  # member -> their position on the current version
    required: set[bytes]
    missing: list[bytes]
    open_objections: list[Signed]
    concerns: list[Signed]
    decision: Signed | None

    @property
    def agreed(self) -> bool:
        return self.state == "agreed"


class Governance:
    """All proposals of one circle, folded from its valid records."""

    def __init__(self, records: Iterable[Signed]) -> None:
        self.proposals: dict[bytes, Proposal] = {}
        self.tests: dict[bytes, list[Signed]] = defaultdict(list)
        self.reviews: dict[bytes, list[Signed]] = defaultdict(list)
        self.by_op: dict[bytes, Signed] = {}
        pending: list[Signed] = []
        for signed in sorted(records, key=lambda s: s.op_id):
            self.by_op[signed.op_id] = signed
            record = signed.record
            if isinstance(record, ProposalRec):
                pid = record_id(signed.op_id)
                proposal = Proposal(pid, signed.op_id, signed.member, signed.ts, record)
                first = Version(
                    version_hash(pid, record.text), record.text, 0, signed.op_id, signed.member
                )
                proposal.versions[first.hash] = first
                self.proposals[pid] = proposal
            else:
                pending.append(signed)
        amends = [s for s in pending if isinstance(s.record, AmendRec)]
        self._add_versions(amends)
        for signed in pending:
            self._attach(signed)

    def _add_versions(self, amends: list[Signed]) -> None:
        """Versions form a tree by ``base``; add amendments whose base is known, repeatedly."""
        remaining = amends
        while remaining:
            progressed = []
            for signed in remaining:
                record = signed.record
                assert isinstance(record, AmendRec)
                proposal = self.proposals.get(record.proposal)
                base = proposal.versions.get(record.base) if proposal and record.base else None
                if proposal is None or base is None:
                    continue
                version = Version(
                    version_hash(proposal.id, record.text),
                    record.text,
                    base.number + 1,
                    signed.op_id,
                    signed.member,
                    base.hash,
                    record.strategy,
                    list(record.resolves),
                )
                existing = proposal.versions.get(version.hash)
                if existing is None or (version.number, version.op_id) < (
                    existing.number,
                    existing.op_id,
                ):
                    proposal.versions[version.hash] = version
                progressed.append(signed)
            if not progressed:
                break
            remaining = [s for s in remaining if s not in progressed]

    def _attach(self, signed: Signed) -> None:
        record = signed.record
        if isinstance(record, ObjectionTestRec):
            self.tests[record.objection].append(signed)
            return
        if isinstance(record, ReviewRec):
            self.reviews[record.agreement].append(signed)
            return
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
        self, proposal: Proposal, required_at: Callable[[bytes | None], set[bytes]], _depth: int = 0
    ) -> Outcome:
        """The state of ``proposal``. ``required_at(op_id)`` gives the members whose consent
        the quorum policy requires as of that record's deps, ``required_at(None)`` as of now:
        a decision is judged by who was required when it was made, an open round by who is
        required today."""
        version = proposal.current()
        latest = latest_positions(proposal.positions, version.hash)
        decision = self._valid_decision(proposal, version.hash, required_at)
        required = required_at(decision.op_id if decision else None)
        objections = [
            s
            for s in latest.values()
            if _kind(s) == "objection" and self.objection_open(s, required_at, _depth)
        ]
        open_ids = {s.op_id for s in objections}
        # a tested objection that does not qualify no longer blocks: it counts as a concern
        concerns = [
            s
            for s in latest.values()
            if _kind(s) == "concern" or (_kind(s) == "objection" and s.op_id not in open_ids)
        ]
        consented = {m for m, s in latest.items() if s.op_id not in open_ids}
        missing = sorted(required - consented)
        return Outcome(
            _state(proposal, latest, objections, decision),
            version,
            latest,
            required,
            missing,
            objections,
            concerns,
            decision,
        )

    def _valid_decision(
        self, proposal: Proposal, version: bytes, required_at: Callable[[bytes | None], set[bytes]]
    ) -> Signed | None:
        valid = [
            d
            for d in proposal.decisions
            if self.decision_holds(d, required_at) is None
            and isinstance(d.record, DecisionRec)
            and d.record.version == version
        ]
        return min(valid, key=lambda d: d.op_id) if valid else None

    def decision_holds(
        self, decision: Signed, required_at: Callable[[bytes | None], set[bytes]]
    ) -> str | None:
        """None when the decision record holds; otherwise why it does not."""
        record = decision.record
        assert isinstance(record, DecisionRec)
        proposal = self.proposals.get(record.proposal)
        if proposal is None or record.version not in proposal.versions:
            return "it names a proposal version this circle does not have"
        by_member: dict[bytes, Signed] = {}
        for op_id in record.positions:
            signed = self.by_op.get(op_id)
            position = signed.record if signed else None
            if signed is None or not isinstance(position, PositionRec):
                return f"position {op_id.hex()[:12]} is not a known position record"
            if position.proposal != record.proposal or position.version != record.version:
                return f"position {op_id.hex()[:12]} is on another proposal or version"
            if position.position == "objection" and self.objection_open(signed, required_at):
                return f"position {op_id.hex()[:12]} is an objection that was not tested away"
            by_member[signed.member] = signed
        missing = required_at(decision.op_id) - set(by_member)
        if missing:
            return f"{len(missing)} required member(s) did not consent"
        return None

    def objection_open(
        self, objection: Signed, required_at: Callable[[bytes | None], set[bytes]], depth: int = 0
    ) -> bool:
        """An objection is open unless a valid test says it does not qualify."""
        for test in self.tests.get(objection.op_id, []):
            record = test.record
            assert isinstance(record, ObjectionTestRec)
            if record.qualifies:
                continue
            if test.member == objection.member:
                return False  # the objector's own signed acknowledgement
            settled = self.proposals.get(record.decision) if record.decision else None
            if settled is not None and depth < 8:
                if self.outcome(settled, required_at, depth + 1).agreed:
                    return False
        return True


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
        if held is None or signed.seq > held.seq:
            per_key[signed.author] = signed
    per_member: dict[bytes, Signed] = {}
    for signed in per_key.values():
        held = per_member.get(signed.member)
        if held is None or (signed.ts, held.op_id) > (held.ts, signed.op_id):
            per_member[signed.member] = signed
    return per_member


def _state(
    proposal: Proposal,
    latest: dict[bytes, Signed],
    objections: list[Signed],
    decision: Signed | None,
) -> str:
    stages = [s.record.stage for s in proposal.stages if isinstance(s.record, StageRec)]
    if "withdrawn" in stages:
        return "withdrawn"
    if decision is not None:
        return "agreed"
    if "deferred" in stages:
        return "deferred"
    if objections:
        return "integrating"
    if latest or "consent_round" in stages:
        return "consent_round"
    ranked = [_STAGE_RANK[s] for s in stages if s in _STAGE_RANK]
    top = max(ranked, default=0)
    return next(name for name, rank in _STAGE_RANK.items() if rank == top)
