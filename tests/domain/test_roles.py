"""Roles, keepers, the mandate check and seat judgement as pure rules.

The mandate tests build a child circle's signed history with ``helpers.Author`` (real ops,
so op ids and deps are genuine) and hand the pure check ``EvidenceOp``s, as the service
does once it has verified the signatures.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field, replace

import msgspec
from helpers import HOME, Author

from node.crypto.ops import Op, OpKind
from node.domain.auth import Genesis, Level, MemberInfo, SetMember, encode_body
from node.domain.governance.elections import (
    KeeperSubject,
    ResultRec,
    Stamped,
    keeper_subject,
)
from node.domain.governance.records import (
    DecisionRec,
    GovernanceRecord,
    PositionRec,
    ProposalRec,
    encode_record,
    record_id,
    version_hash,
)
from node.domain.governance.roles import (
    EvidenceOp,
    MandateEntry,
    MandateRec,
    Problem,
    RoleRec,
    Seat,
    check_mandate,
    current_result,
    encode_selection,
    judge_seats,
    prunable,
    roles_of,
)

PARENT = b"P" * 16
TERM_END = "2027-06-30"
TODAY = "2026-12-01"


@dataclass
class Child:
    """A child circle where alice, bob and carol (write) selected carol as representative."""

    alice: Author = field(default_factory=Author)
    bob: Author = field(default_factory=Author)
    carol: Author = field(default_factory=Author)
    ops: dict[str, Op] = field(default_factory=dict)
    circle: bytes = b""

    def record(self, author: Author, name: str, body: GovernanceRecord | ResultRec) -> Op:
        data = encode_selection(body) if isinstance(body, ResultRec) else encode_record(body)
        op = author.make(OpKind.RECORD, self.circle, data, [self.ops["add_carol"].op_id])
        self.ops[name] = op
        return op

    def build(self, parent: bytes = PARENT, role: str = "representative") -> Child:
        genesis = Genesis(
            name="Garden",
            creator_name="alice",
            home=HOME,
            ycid=self.alice.ycid,
            nonce=os.urandom(16),
            parent=parent,
        )
        g = self.ops["genesis"] = self.alice.make(OpKind.GENESIS, bytes(16), encode_body(genesis))
        self.circle = g.op_id[:16]
        deps = [g.op_id]
        for name, who in (("bob", self.bob), ("carol", self.carol)):
            body = SetMember(
                member=who.public, level=Level.WRITE, name=name, home=HOME, ycid=who.ycid
            )
            op = self.alice.make(OpKind.AUTH, self.circle, encode_body(body), deps)
            self.ops[f"add_{name}"], deps = op, [op.op_id]
        subject = keeper_subject(KeeperSubject(self.carol.public, role, TERM_END, 1))
        text = "We select carol"
        body = ProposalRec(title="Select carol", driver="d", text=text, subject=subject)
        pid = record_id(self.record(self.alice, "proposal", body).op_id)
        version = version_hash(pid, text)
        positions = []
        for who in ("carol", "alice", "bob"):
            position = PositionRec(proposal=pid, version=version, position="consent")
            positions.append(self.record(getattr(self, who), f"pos_{who}", position).op_id)
        decision = DecisionRec(proposal=pid, version=version, positions=sorted(positions))
        d = self.record(self.alice, "decision", decision)
        result = ResultRec(
            proposal=pid, decision=d.op_id, keeper=self.carol.public, role=role, term_end=TERM_END
        )
        self.record(self.bob, "result", result)
        return self

    def evidence(self, *, without: tuple[str, ...] = ()) -> list[EvidenceOp]:
        return [_evidence(op) for name, op in self.ops.items() if name not in without]


def _evidence(op: Op) -> EvidenceOp:
    header = op.header
    return EvidenceOp(
        op.op_id, int(op.kind), op.circle, op.author, op.seq, tuple(header.deps), header.ts, op.body
    )


def test_evidence_proves_the_seat_and_its_term() -> None:
    """The child's signed history alone proves carol's representative seat until term end."""
    child = Child().build()
    seat = check_mandate(child.evidence(), child.circle, PARENT, TODAY)
    assert isinstance(seat, Seat), seat
    assert (seat.child_name, seat.role, seat.keeper_name) == ("Garden", "representative", "carol")
    assert (seat.keeper, seat.term_end, seat.holds) == (child.carol.public, TERM_END, True)
    assert seat.result == child.ops["result"].op_id
    later = check_mandate(child.evidence(), child.circle, PARENT, "2027-07-01")
    assert isinstance(later, Seat)
    assert later.holds is False


def test_evidence_for_another_parent_is_refused() -> None:
    """A child names its parent in its genesis; evidence shown to another circle fails."""
    child = Child().build(parent=b"Q" * 16)
    problem = check_mandate(child.evidence(), child.circle, PARENT, TODAY)
    assert problem == Problem("the child circle does not name this circle as its parent")


def test_evidence_missing_a_position_is_refused() -> None:
    """Without one listed position the decision, and so the seat, does not hold."""
    child = Child().build()
    problem = check_mandate(child.evidence(without=("pos_bob",)), child.circle, PARENT, TODAY)
    assert isinstance(problem, Problem)
    assert "not a known position record" in problem.reason


def test_evidence_missing_an_auth_op_is_refused() -> None:
    """Records rely on auth ops by their deps; a missing one is named, not guessed."""
    child = Child().build()
    problem = check_mandate(child.evidence(without=("add_carol",)), child.circle, PARENT, TODAY)
    assert isinstance(problem, Problem)
    assert "lacks auth op" in problem.reason


def test_a_decision_without_every_member_does_not_seat_anyone() -> None:
    """A result citing a decision that leaves out a required member is refused."""
    child = Child().build()
    decision = child.ops["decision"]
    partial = DecisionRec(
        proposal=record_id(child.ops["proposal"].op_id),
        version=version_hash(record_id(child.ops["proposal"].op_id), "We select carol"),
        positions=sorted([child.ops["pos_carol"].op_id, child.ops["pos_alice"].op_id]),
    )
    child.record(child.alice, "decision", partial)
    assert child.ops["decision"].op_id != decision.op_id
    result = ResultRec(
        proposal=partial.proposal,
        decision=child.ops["decision"].op_id,
        keeper=child.carol.public,
        role="representative",
        term_end=TERM_END,
    )
    child.record(child.bob, "result", result)
    problem = check_mandate(child.evidence(), child.circle, PARENT, TODAY)
    assert isinstance(problem, Problem)
    assert "was not agreed" in problem.reason


def test_a_record_by_an_outsider_is_refused() -> None:
    """A position signed by a key the child circle never admitted does not count."""
    child = Child().build()
    outsider = Author()
    pid = record_id(child.ops["proposal"].op_id)
    position = PositionRec(
        proposal=pid, version=version_hash(pid, "We select carol"), position="consent"
    )
    child.record(outsider, "pos_outsider", position)
    problem = check_mandate(child.evidence(), child.circle, PARENT, TODAY)
    assert isinstance(problem, Problem)
    assert "not signed by a writing member" in problem.reason


def test_a_role_that_sits_in_no_parent_carries_no_seat() -> None:
    """Only the leader and the representative sit in the parent circle."""
    child = Child().build(role="treasurer")
    problem = check_mandate(child.evidence(), child.circle, PARENT, TODAY)
    assert problem == Problem("role 'treasurer' carries no seat in the parent circle")


# ---- roles and keepers ------------------------------------------------------------------------


def _result(n: int, term_end: str | None, supersedes: bytes | None = None) -> Stamped[ResultRec]:
    record = ResultRec(
        proposal=bytes([n]) * 16,
        decision=bytes([n]) * 32,
        keeper=bytes([n]) * 32,
        role="leader",
        term_end=term_end,
        supersedes=supersedes,
    )
    return Stamped(bytes([n]) * 32, b"", b"", 1, n, record)


def test_a_new_keeper_supersedes_the_old_and_terms_end() -> None:
    """The result no other supersedes is current; its keeper holds through term end."""
    first = _result(1, "2026-06-30")
    second = _result(2, "2027-06-30", supersedes=first.op_id)
    assert current_result([first, second]) == second
    assert current_result([first]) == first
    fork = _result(3, None)  # a concurrent result without an end counts as the latest
    assert current_result([first, second, fork]) == fork
    roles = roles_of([], [first, second])
    assert set(roles) == {"leader", "representative"}
    assert roles["leader"].keeper_on("2027-06-30") == second
    assert roles["leader"].keeper_on("2027-07-01") is None


def test_role_definitions_first_by_op_id_and_builtins_always_exist() -> None:
    """Two definitions of one name: the lower op id wins; leader/representative are built in."""
    later = Stamped(b"\x09" * 32, b"", b"", 1, 0, RoleRec(name="treasurer", domain="later"))
    first = Stamped(b"\x01" * 32, b"", b"", 1, 0, RoleRec(name="treasurer", domain="money"))
    roles = roles_of([later, first], [])
    assert roles["treasurer"].domain == "money"
    assert roles["representative"].definition is None
    assert "voice" in roles["representative"].domain


# ---- seats in the parent -------------------------------------------------------------------------


def _seat(n: int, term_end: str, supersedes: bytes | None = None) -> Seat:
    return Seat(
        child=b"C" * 16,
        child_name="Garden",
        role="representative",
        keeper=bytes([n]) * 32,
        keeper_name=f"keeper{n}",
        keeper_home=HOME,
        term_end=term_end,
        result=bytes([n]) * 32,
        supersedes=supersedes,
        decision=bytes([n + 100]) * 32,
        proposal=bytes([n]) * 16,
        holds=True,
    )


def _entry(n: int, seat: Seat | Problem, signer_level: Level = Level.MANAGE) -> MandateEntry:
    keeper = seat.keeper if isinstance(seat, Seat) else b"k" * 32
    result = seat.result if isinstance(seat, Seat) else b"r" * 32
    term_end = seat.term_end if isinstance(seat, Seat) else None
    record = MandateRec(
        child=b"C" * 16,
        role="representative",
        keeper=keeper,
        result=result,
        evidence=[],
        term_end=term_end,
    )
    return MandateEntry(bytes([n]) * 32, b"m" * 32, signer_level, record, seat)


def test_seats_hold_end_or_are_superseded() -> None:
    """A seat holds within its term, ends after it, and a newer keeper supersedes it."""
    old, new = _seat(1, "2026-06-30"), _seat(2, "2027-06-30", supersedes=bytes([1]) * 32)
    views = judge_seats([_entry(10, old), _entry(11, new)], "2026-12-01")
    assert [v.status for v in views] == ["superseded", "holds"]
    views = judge_seats([_entry(11, new)], "2027-07-01")
    assert [v.status for v in views] == ["ended"]


def test_bad_mandates_are_refused_and_repeats_are_duplicates() -> None:
    """Evidence problems, a mismatching claim or a plain member's mandate never seat anyone."""
    seat = _seat(1, "2027-06-30")
    refused = _entry(12, Problem("an evidence op does not verify"))
    claim = msgspec.structs.replace(_entry(13, seat).record, term_end="2099-01-01")
    lying = replace(_entry(13, seat), record=claim)
    plain = _entry(14, seat, signer_level=Level.WRITE)
    views = judge_seats([_entry(10, seat), _entry(11, seat), refused, lying, plain], TODAY)
    assert [v.status for v in views] == ["holds", "duplicate", "refused", "refused", "refused"]
    assert views[3].problem == "the mandate does not match the result its evidence proves"
    assert "manager" in views[4].problem


def test_prune_removes_only_members_a_lapsed_mandate_seated() -> None:
    """A member seated by a mandate whose seat ended is prunable; others are left alone."""
    ended = _entry(10, _seat(1, "2026-06-30"))
    views = judge_seats([ended], TODAY)
    members = {
        bytes([1]) * 32: MemberInfo("keeper1", HOME, Level.WRITE, b"x", decision=ended.op_id),
        bytes([5]) * 32: MemberInfo("founder", HOME, Level.MANAGE, b"y"),
    }
    assert prunable(members, views) == [bytes([1]) * 32]
    holding = judge_seats([_entry(10, _seat(1, "2027-06-30"))], TODAY)
    assert prunable(members, holding) == []


def test_role_and_election_rules_import_no_io_or_crypto() -> None:
    """The pure modules load without nacl, aiohttp, aiosqlite or textual."""
    code = (
        "import sys, node.domain.governance.roles, node.domain.governance.elections\n"
        "print(sorted(m for m in ('nacl', 'aiohttp', 'aiosqlite', 'textual') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
