"""Agreements, reviews and the logbook (node/domain/governance/agreements.py, logbook.py):
pure rules over folded records, ``today`` always given."""

from __future__ import annotations

import random

from governance.gov_book import ALICE, BOB, MEMBERS, Book

from node.domain.governance.agreements import (
    IN_FORCE,
    RETIRED,
    SUPERSEDED,
    Agreement,
    agreements,
    overdue,
)
from node.domain.governance.consent import Governance, Signed
from node.domain.governance.logbook import LogEntry, agreement_entries, day_of, logbook
from node.domain.governance.records import DecisionRec, ReviewRec


def _agree(book: Book, review_date: str | None = "2030-01-01", **kw: object) -> bytes:
    pid, v0 = book.propose(text=f"agreement {len(book.records)}", **kw)  # type: ignore[arg-type]
    ops = sorted(p.op_id for p in book.all_consent(pid, v0))
    book.add(ALICE, DecisionRec(proposal=pid, version=v0, positions=ops, review_date=review_date))
    return pid


def _review(book: Book, pid: bytes, outcome: str, **kw: object) -> Signed:
    return book.add(BOB, ReviewRec(agreement=pid, outcome=outcome, **kw))  # type: ignore[arg-type]


def _found(book: Book) -> dict[bytes, Agreement]:
    gov = Governance(book.records)
    return {a.id: a for a in agreements(gov, lambda p: gov.outcome(p, lambda _op: set(MEMBERS)))}


def test_only_agreed_proposals_are_agreements() -> None:
    """An open proposal is no agreement; reviews naming it are ignored."""
    book = Book()
    open_pid, _v0 = book.propose()
    _review(book, open_pid, "retire")
    pid = _agree(book)
    found = _found(book)
    assert list(found) == [pid]
    assert (found[pid].state, found[pid].review_date) == (IN_FORCE, "2030-01-01")


def test_the_last_keep_sets_the_review_date() -> None:
    """Keeps are ordered by record time: the latest one's next date counts."""
    book = Book()
    pid = _agree(book)
    book.add(BOB, ReviewRec(agreement=pid, outcome="keep", next_review="2032-01-01"), ts=200)
    book.add(BOB, ReviewRec(agreement=pid, outcome="keep", next_review="2031-01-01"), ts=100)
    assert _found(book)[pid].review_date == "2032-01-01"


def test_overdue_only_after_the_review_date() -> None:
    """On the review date itself a review is due, not overdue; the day after it is."""
    book = Book()
    pid = _agree(book)
    agreement = _found(book)[pid]
    assert not agreement.overdue("2030-01-01")
    assert agreement.overdue("2030-01-02")
    assert [a.id for a in overdue(list(_found(book).values()), "2030-01-02")] == [pid]


def test_an_agreement_without_a_review_date_is_never_overdue() -> None:
    """A decision record without a date (older records) is never listed as overdue."""
    book = Book()
    pid = _agree(book, review_date=None)
    assert not _found(book)[pid].overdue("2999-12-31")


def test_retire_is_final_and_never_overdue() -> None:
    """A retire review wins over any keep, even a later one; retired is never overdue."""
    book = Book()
    pid = _agree(book)
    _review(book, pid, "retire")
    _review(book, pid, "keep", next_review="2031-01-01")
    agreement = _found(book)[pid]
    assert (agreement.state, agreement.review_date) == (RETIRED, None)
    assert not agreement.overdue("2999-01-01")


def test_an_open_amendment_puts_the_agreement_under_review() -> None:
    """While a proposal amending it is open the agreement is under review, not overdue;
    once that proposal is withdrawn the review is overdue again."""
    book = Book()
    pid = _agree(book)
    amending, _a0 = book.propose(text="better", review_of=pid)
    agreement = _found(book)[pid]
    assert agreement.amending == [amending]
    assert not agreement.overdue("2031-01-01")
    book.stage(amending, "withdrawn")
    agreement = _found(book)[pid]
    assert (agreement.amending, agreement.overdue("2031-01-01")) == ([], True)


def test_an_agreed_amendment_supersedes_the_agreement() -> None:
    """When the amending proposal is agreed, the old agreement is superseded by it."""
    book = Book()
    pid = _agree(book)
    newer = _agree(book, review_of=pid)
    found = _found(book)
    assert (found[pid].state, found[pid].superseded_by) == (SUPERSEDED, newer)
    assert not found[pid].overdue("2999-01-01")
    assert found[newer].state == IN_FORCE


def test_agreements_are_listed_in_decision_order() -> None:
    """Agreements come in the order of their decisions (record time, then op id)."""
    book = Book()
    first, second = _agree(book), _agree(book)
    assert list(_found(book)) == [first, second]


# ---- logbook -------------------------------------------------------------------------------------


def test_the_logbook_lists_decisions_and_reviews_in_record_order() -> None:
    """Each decision and review appears once, ordered by record time then op id."""
    book = Book()
    pid = _agree(book)
    keep = _review(book, pid, "keep", next_review="2031-01-01")
    entries = logbook(agreement_entries(_found(book).values()))
    assert [e.kind for e in entries] == ["decision", "review"]
    assert entries[1].op == keep.op_id
    assert entries[1].detail["outcome"] == "keep"
    assert entries == sorted(entries, key=lambda e: (e.ts, e.op))


def test_a_decision_that_does_not_hold_is_not_in_the_logbook() -> None:
    """Only decisions that make an agreement are logged (verify reports the others)."""
    book = Book()
    pid, v0 = book.propose()
    lone = book.pos(ALICE, pid, v0, "consent")
    book.decide(pid, v0, [lone])
    assert logbook(agreement_entries(_found(book).values())) == []


def test_extra_entries_merge_in_order_and_duplicates_drop() -> None:
    """Other modules' entries merge by (time, op); an op listed twice appears once."""
    book = Book()
    _agree(book)
    ours = agreement_entries(_found(book).values())
    election = LogEntry("election", b"\x00" * 32, 0, "representative")
    merged = logbook(ours, [election, election], ours)
    assert [e.kind for e in merged] == ["election", "decision"]


def test_the_logbook_order_does_not_depend_on_input_order() -> None:
    """Shuffled sources give the same book."""
    entries = [LogEntry("review", bytes([n]) * 32, n % 3, "t") for n in range(10)]
    expected = logbook(entries)
    shuffled = list(entries)
    random.Random(1).shuffle(shuffled)
    assert logbook(shuffled) == expected


def test_entry_as_dict_is_json_ready() -> None:
    """Ids become hex, the date is the record time's UTC day, detail fields sit alongside."""
    entry = LogEntry("decision", b"\xab" * 32, 86_400, "Water", b"\x01" * 16, {"v": b"\x02"})
    data = entry.as_dict()
    assert data["op"] == "ab" * 32
    assert (data["date"], data["proposal"], data["v"]) == ("1970-01-02", "01" * 16, "02")
    assert day_of(0) == "1970-01-01"
