"""The election state machine, as pure rules over hand-made records (no crypto, no store).

``Book`` stamps records with made-up op ids, seqs and times; ``Quorum`` judges consent
with a fixed set of required members, as a circle of write-level members would.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from node.domain.governance.consent import Governance, Outcome, Proposal, Signed
from node.domain.governance.elections import (
    TERM_SUBJECT,
    ChangeRec,
    ElectionRec,
    Elections,
    FailRec,
    KeeperSubject,
    NominationRec,
    ResultRec,
    SelectionBase,
    Stamped,
    check_term,
    holds_on,
    keeper_subject,
    latest_by_member,
    parse_keeper_subject,
    result_problem,
    term_for,
)
from node.domain.governance.records import (
    DecisionRec,
    PositionRec,
    ProposalRec,
    record_id,
    version_hash,
)
from node.domain.governance.roles import (
    RoleRec,
    decode_selection,
    encode_selection,
    try_decode_selection,
)
from node.errors import DecodeError, NodeError

ALICE, BOB, CAROL, DAVE = (bytes([n]) * 32 for n in (1, 2, 3, 4))
TERM_END = "2027-06-30"


@dataclass
class Quorum:
    """Consent where ``required`` members must consent (a fixed quorum)."""

    gov: Governance
    required: set[bytes]

    def outcome(self, proposal: Proposal) -> Outcome:
        return self.gov.outcome(proposal, lambda _op: self.required)

    def decision_problem(self, decision: Signed) -> str | None:
        return self.gov.decision_holds(decision, lambda _op: self.required)


@dataclass
class Book:
    """A circle's records, stamped in the order they are added."""

    required: set[bytes] = field(default_factory=lambda: {ALICE, BOB, CAROL})
    governance: list[Signed] = field(default_factory=list)
    selection: list[Stamped[Any]] = field(default_factory=list)
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    seqs: dict[bytes, int] = field(default_factory=dict)

    def add(self, member: bytes, record: Any, *, ts: int | None = None) -> bytes:
        n = next(self.counter)
        op_id = n.to_bytes(4, "big") * 8
        seq = self.seqs[member] = self.seqs.get(member, 0) + 1
        stamp = n if ts is None else ts
        if isinstance(record, SelectionBase):
            self.selection.append(Stamped(op_id, member, member, seq, stamp, record))
        else:
            self.governance.append(Signed(op_id, member, member, seq, stamp, record))
        return op_id

    def consent(self) -> Quorum:
        return Quorum(Governance(self.governance), self.required)

    def elections(self) -> Elections:
        return Elections(self.selection, self.consent())

    def propose(self, member: bytes, subject: str, election: bytes | None) -> bytes:
        body = ProposalRec(title="t", driver="d", text=subject, election=election, subject=subject)
        return record_id(self.add(member, body))

    def agree(self, pid: bytes, text: str, members: set[bytes]) -> bytes:
        """Everyone in ``members`` consents; a decision lists them. The decision's op id."""
        version = version_hash(pid, text)
        positions = [
            self.add(m, PositionRec(proposal=pid, version=version, position="consent"))
            for m in sorted(members)
        ]
        decision = DecisionRec(proposal=pid, version=version, positions=sorted(positions))
        return self.add(ALICE, decision)


def _started(book: Book, role: str = "representative", term: str | None = TERM_END) -> bytes:
    """An election whose role and term are agreed: its id."""
    eid = record_id(book.add(ALICE, ElectionRec(role=role, term_end=term)))
    pid = book.propose(ALICE, TERM_SUBJECT, eid)
    book.agree(pid, TERM_SUBJECT, book.required)
    return eid


def _keeper(book: Book, eid: bytes, nominee: bytes, number: int = 1) -> tuple[bytes, str]:
    subject = keeper_subject(KeeperSubject(nominee, "representative", TERM_END, number))
    return book.propose(ALICE, subject, eid), subject


def test_role_and_term_are_consented_before_nominations() -> None:
    """An election stays in ``term`` until its term proposal is agreed, then nominates."""
    book = Book()
    eid = record_id(book.add(ALICE, ElectionRec(role="representative", term_end=TERM_END)))
    pid = book.propose(ALICE, TERM_SUBJECT, eid)
    elections = book.elections()
    assert elections.phase(elections.elections[eid]) == "term"
    book.agree(pid, TERM_SUBJECT, book.required)
    elections = book.elections()
    assert elections.phase(elections.elections[eid]) == "nominating"
    assert elections.elections[eid].current_round == 1


def test_latest_nomination_per_member_per_round_counts() -> None:
    """A member's later nomination in a round replaces their earlier one in that round."""
    book = Book()
    eid = _started(book)
    book.add(ALICE, NominationRec(election=eid, nominee=BOB, reason="steady"))
    book.add(ALICE, NominationRec(election=eid, nominee=CAROL, reason="on second thought"))
    book.add(BOB, NominationRec(election=eid, nominee=CAROL, reason="listens"))
    book.add(CAROL, NominationRec(election=eid, round=2, nominee=BOB, reason="next round"))
    election = book.elections().elections[eid]
    assert election.rounds[1].choices() == {ALICE: CAROL, BOB: CAROL}
    assert election.rounds[1].nominations[ALICE].record.reason == "on second thought"
    assert election.rounds[1].tally() == [(CAROL, 2)]
    assert election.rounds[2].choices() == {CAROL: BOB}


def test_change_round_replaces_a_nomination_and_pass_counts_for_nobody() -> None:
    """A change overrides the member's nomination; a pass nominates nobody."""
    book = Book()
    eid = _started(book)
    book.add(ALICE, NominationRec(election=eid, nominee=BOB, reason="steady"))
    book.add(BOB, NominationRec(election=eid, nominee=None, reason="no view yet"))
    book.add(CAROL, NominationRec(election=eid, nominee=CAROL, reason="I would like to"))
    assert book.elections().elections[eid].rounds[1].stage == "nominations"
    book.add(ALICE, ChangeRec(election=eid, round=1, nominee=CAROL, reason="her reasons"))
    current = book.elections().elections[eid].rounds[1]
    assert current.stage == "changes"
    assert current.choices() == {ALICE: CAROL, BOB: None, CAROL: CAROL}
    assert current.tally() == [(CAROL, 2)]


def test_latest_by_member_across_devices_uses_time_then_op_id() -> None:
    """Across a member's keys the later record time wins; per key, the higher seq."""
    one, two = b"k1" * 16, b"k2" * 16
    early = Stamped(b"\x02" * 32, one, ALICE, 5, 10, "early")
    late = Stamped(b"\x03" * 32, two, ALICE, 1, 20, "late")
    stale = Stamped(b"\x01" * 32, two, ALICE, 0, 99, "stale, lower seq of key two")
    assert latest_by_member([early, late, stale])[ALICE].record == "late"


def test_a_proposed_nominee_opens_the_consent_phase_and_the_result_elects() -> None:
    """Keeper proposal -> consent phase; agreed and recorded -> elected with a keeper."""
    book = Book()
    eid = _started(book)
    book.add(ALICE, NominationRec(election=eid, nominee=CAROL, reason="calm"))
    pid, subject = _keeper(book, eid, CAROL)
    elections = book.elections()
    election = elections.elections[eid]
    assert elections.phase(election) == "consent"
    assert elections.open_proposal(election) is not None
    assert election.rounds[1].stage == "proposed"
    decision = book.agree(pid, subject, book.required)
    result = _result(pid, decision, eid)
    assert result_problem(result, book.consent()) is None
    book.add(BOB, result)
    elections = book.elections()
    assert elections.phase(elections.elections[eid]) == "elected"
    assert elections.valid_result(elections.elections[eid]) is not None


def _result(pid: bytes, decision: bytes, eid: bytes, **changes: Any) -> ResultRec:
    fields = {
        "proposal": pid,
        "decision": decision,
        "keeper": CAROL,
        "role": "representative",
        "term_end": TERM_END,
        "election": eid,
    }
    return ResultRec(**{**fields, **changes})


def test_a_result_for_a_proposal_that_was_not_agreed_does_not_hold() -> None:
    """A decision missing a required member's consent makes no keeper."""
    book = Book()
    eid = _started(book)
    pid, subject = _keeper(book, eid, CAROL)
    decision = book.agree(pid, subject, {ALICE, CAROL})  # bob never consented
    why = result_problem(_result(pid, decision, eid), book.consent())
    assert why is not None
    assert "not agreed" in why
    book.add(ALICE, _result(pid, decision, eid))
    elections = book.elections()
    assert elections.phase(elections.elections[eid]) == "consent"


def test_the_nominee_must_consent_to_their_own_selection() -> None:
    """Even when the quorum does not require the nominee, their position must be there."""
    book = Book(required={ALICE, BOB})
    eid = _started(book)
    pid, subject = _keeper(book, eid, CAROL)
    decision = book.agree(pid, subject, {ALICE, BOB})
    assert book.consent().decision_problem(book.consent().gov.by_op[decision]) is None
    why = result_problem(_result(pid, decision, eid), book.consent())
    assert why == "the nominee's own consent is not part of the decision"


def test_a_result_must_match_what_its_proposal_names() -> None:
    """Another keeper, role or term than the consented text names is refused."""
    book = Book()
    eid = _started(book)
    pid, subject = _keeper(book, eid, CAROL)
    decision = book.agree(pid, subject, book.required)
    for change in ({"keeper": BOB}, {"term_end": "2030-01-01"}, {"role": "leader"}):
        why = result_problem(_result(pid, decision, eid, **change), book.consent())
        assert why is not None
        assert "does not match" in why


def test_a_representative_without_a_term_is_refused() -> None:
    """The representative's term always ends: a result without one never holds."""
    book = Book()
    eid = _started(book, term=None)
    subject = keeper_subject(KeeperSubject(CAROL, "representative", None, 1))
    pid = book.propose(ALICE, subject, eid)
    decision = book.agree(pid, subject, book.required)
    result = _result(pid, decision, eid, term_end=None)
    assert result_problem(result, book.consent()) == "a representative's term must end"


def test_a_failed_round_opens_the_next_and_close_fails_the_election() -> None:
    """``election_fail`` closes the round (round 2 opens); with ``close`` the election."""
    book = Book()
    eid = _started(book)
    pid, _subject = _keeper(book, eid, CAROL)
    book.add(ALICE, FailRec(election=eid, round=1, reason="carol objected: no time"))
    elections = book.elections()
    election = elections.elections[eid]
    assert (election.current_round, elections.phase(election)) == (2, "nominating")
    assert election.rounds[1].stage == "failed"
    assert election.rounds[1].proposals[0].id == pid  # the history stays
    book.add(BOB, FailRec(election=eid, round=2, reason="nobody can", close=True))
    elections = book.elections()
    assert elections.phase(elections.elections[eid]) == "failed"


def test_the_fold_does_not_depend_on_record_order() -> None:
    """Shuffled records give the same rounds, choices and phase."""
    book = Book()
    eid = _started(book)
    book.add(ALICE, NominationRec(election=eid, nominee=BOB, reason="a"))
    book.add(ALICE, NominationRec(election=eid, nominee=CAROL, reason="b"))
    book.add(BOB, ChangeRec(election=eid, round=1, nominee=CAROL, reason="c"))
    _keeper(book, eid, CAROL)
    want = book.elections()
    for seed in range(5):
        items = list(book.selection)
        random.Random(seed).shuffle(items)
        got = Elections(items, book.consent())
        assert got.phase(got.elections[eid]) == want.phase(want.elections[eid])
        assert got.elections[eid].rounds[1].choices() == want.elections[eid].rounds[1].choices()


def test_keeper_subject_round_trips_and_refuses_anything_else() -> None:
    """The subject binds keeper, role, term and round; other strings are no subject."""
    subject = KeeperSubject(CAROL, "representative", TERM_END, 3)
    assert parse_keeper_subject(keeper_subject(subject)) == subject
    assert parse_keeper_subject(keeper_subject(KeeperSubject(BOB, "leader", None))) == (
        KeeperSubject(BOB, "leader", None, None)
    )
    for text in ("", TERM_SUBJECT, "keeper:zz role:leader until:-", keeper_subject(subject) + " x"):
        assert parse_keeper_subject(text) is None


def test_terms_hold_through_their_last_day() -> None:
    """A term holds on its end day and ends the day after; a role's usual term fills in."""
    assert holds_on(TERM_END, TERM_END)
    assert not holds_on(TERM_END, "2027-07-01")
    assert holds_on(None, "2999-01-01")
    assert term_for(None, 30, "2026-01-15") == "2026-02-14"
    assert term_for("2026-05-01", 30, "2026-01-15") == "2026-05-01"


def test_records_encode_and_decode_strictly() -> None:
    """Every record type round-trips; bad role names and unknown types are refused."""
    records = [
        RoleRec(name="treasurer", domain="money", accountabilities=["books"], term_days=365),
        ElectionRec(role="leader"),
        NominationRec(election=b"e" * 16, nominee=None, reason="pass"),
        ChangeRec(election=b"e" * 16, round=1, nominee=CAROL, reason="why"),
        FailRec(election=b"e" * 16, round=1, reason="none", close=True),
        _result(b"p" * 16, b"d" * 32, b"e" * 16),
    ]
    for record in records:
        assert decode_selection(encode_selection(record)) == record
    with pytest.raises(DecodeError):
        encode_selection(RoleRec(name="Bad Name", domain="x"))
    with pytest.raises(DecodeError):
        encode_selection(ChangeRec(election=b"e" * 16, round=1, nominee=None, reason=""))
    assert try_decode_selection(b"\x81\xa1t\xa8proposal") is None


def test_a_term_must_end_after_today() -> None:
    """``check_term`` refuses a term that ends today or earlier."""
    check_term("2026-01-02", "2026-01-01")
    check_term(None, "2026-01-01")
    with pytest.raises(NodeError):
        check_term("2026-01-01", "2026-01-01")
