"""Tests for node.domain.governance.ideas: record bodies, status chains, qualification,
outline plans and join request status, as pure functions of the set of records."""

from __future__ import annotations

import hashlib
import random
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.domain.governance.ideas import (
    DriverRec,
    Entry,
    IdeaBook,
    IdeaRec,
    IdeasRecord,
    JoinRequestRec,
    NoteRec,
    OutlinePlanRec,
    QualifyRec,
    Step,
    decode,
    encode,
    follow,
    join_status,
    try_decode,
)
from node.domain.governance.records import ProposalRec, encode_record
from node.errors import DecodeError

CIRCLE, OTHER = b"c" * 16, b"o" * 16
ALICE, BOB = b"A" * 32, b"B" * 32
MOVES = {"a": frozenset({"b", "c"}), "b": frozenset({"a"}), "c": frozenset()}


class Log:
    """Entries with op ids that do not follow creation order (hashes of a counter)."""

    def __init__(self) -> None:
        self.count = 0
        self.entries: list[Entry[IdeasRecord]] = []

    def add(
        self, record: IdeasRecord, *, member: bytes = ALICE, circle: bytes = CIRCLE
    ) -> Entry[IdeasRecord]:
        self.count += 1
        op_id = hashlib.blake2b(self.count.to_bytes(4, "big"), digest_size=32).digest()
        entry: Entry[IdeasRecord] = Entry(op_id, circle, member, member, self.count, 0, record)
        self.entries.append(entry)
        return entry

    def book(self) -> IdeaBook:
        return IdeaBook(self.entries)


def _qualify(
    idea: Entry[Any], outcome: str, after: Entry[Any] | None = None, **kw: Any
) -> QualifyRec:
    return QualifyRec(
        idea=idea.id,
        outcome=outcome,
        after=after.op_id if after else None,
        **kw,
    )


# ---- record bodies ----------------------------------------------------------------------


def test_records_round_trip_with_their_tag() -> None:
    """Every ideas record encodes with its ``t`` tag and decodes to an equal value."""
    records: list[IdeasRecord] = [
        IdeaRec(text="a tool library"),
        DriverRec(what="tools sit unused", need="share them", why="cost and waste"),
        NoteRec(idea=b"i" * 16, text="ask the school"),
        QualifyRec(idea=b"i" * 16, outcome="passed_on", to=OTHER, reason="theirs"),
        OutlinePlanRec(
            idea=b"i" * 16, scope="s", resources="r", cost_low=1, cost_high=2, currency="GBP"
        ),
        JoinRequestRec(card="cn1:xxxx", kind="investor", message="hello"),
    ]
    for record in records:
        data = encode(record)
        assert msgspec.msgpack.decode(data)["t"] == record.__struct_config__.tag
        assert decode(data) == record


@pytest.mark.parametrize(
    "body",
    [
        {"t": "qualify", "idea": b"i" * 16, "outcome": "passed_on"},
        {"t": "qualify", "idea": b"i" * 16, "outcome": "accepted", "to": OTHER},
        {
            "t": "outline_plan",
            "idea": b"i" * 16,
            "scope": "s",
            "resources": "",
            "cost_low": 5,
            "cost_high": 4,
            "currency": "GBP",
        },
        {
            "t": "outline_plan",
            "idea": b"i" * 16,
            "scope": "s",
            "resources": "",
            "cost_low": 1,
            "cost_high": 4,
            "currency": "gbp",
        },
        {
            "t": "outline_plan",
            "idea": b"i" * 16,
            "scope": "s",
            "resources": "",
            "cost_low": 1.5,
            "cost_high": 4,
            "currency": "GBP",
        },
        {"t": "idea", "text": ""},
        {"t": "idea", "text": "x", "extra": 1},
        {"t": "note", "idea": b"short", "text": "x"},
        {"t": "join_request", "card": "cn1:xxxx", "kind": "robot"},
    ],
)
def test_malformed_bodies_are_refused(body: dict[str, Any]) -> None:
    """Broken rules, floats for money, bad ids and unknown fields do not decode."""
    with pytest.raises(DecodeError):
        decode(msgspec.msgpack.encode(body))
    assert try_decode(msgspec.msgpack.encode(body)) is None


def test_records_of_other_domains_are_not_ideas() -> None:
    """A proposal record is not an ideas record (each domain decodes its own types)."""
    proposal = encode_record(ProposalRec(title="t", driver="d", text="x"))
    assert try_decode(proposal) is None


# ---- status chains ----------------------------------------------------------------------


def test_follow_takes_the_lowest_op_id_among_concurrent_changes() -> None:
    """Two changes after the same head: the lower op id wins, and its successor follows."""
    steps = [Step(b"\x02", None, "b"), Step(b"\x01", None, "c"), Step(b"\x03", b"\x02", "a")]
    assert follow("a", steps, MOVES) == ("c", [steps[1]])
    steps = [Step(b"\x02", None, "b"), Step(b"\x03", b"\x02", "a"), Step(b"\x04", b"\x03", "c")]
    assert follow("a", steps, MOVES)[0] == "c"


def test_follow_ignores_invalid_moves_and_what_follows_them() -> None:
    """A change not allowed from the current state is skipped, with every change after it."""
    steps = [Step(b"\x01", None, "a"), Step(b"\x02", b"\x01", "b"), Step(b"\x05", None, "b")]
    state, taken = follow("a", steps, MOVES)
    assert (state, [s.op_id for s in taken]) == ("b", [b"\x05"])


@given(st.lists(st.tuples(st.integers(0, 9), st.sampled_from("abc")), max_size=12), st.randoms())
@settings(max_examples=200)
def test_follow_is_independent_of_order(shape: list[tuple[int, str]], rnd: random.Random) -> None:
    """The same set of changes gives the same state and chain in any order."""
    steps = []
    for i, (parent, state) in enumerate(shape):
        after = steps[parent % len(steps)].op_id if steps and parent else None
        steps.append(Step(bytes([i + 1]) * 4, after, state))
    shuffled = steps[:]
    rnd.shuffle(shuffled)
    assert follow("a", steps, MOVES) == follow("a", shuffled, MOVES)


# ---- qualification ----------------------------------------------------------------------


def test_idea_starts_open_and_is_accepted() -> None:
    """A shared driver is open; a qualification makes it the circle's accepted driver."""
    log = Log()
    idea = log.add(DriverRec(what="w", need="n", why="y"), member=BOB)
    assert log.book().ideas[idea.id].state == "open"
    log.add(_qualify(idea, "accepted", reason="ours"))
    found = log.book().ideas[idea.id]
    assert (found.state, found.kind, found.qualification and found.qualification.reason) == (
        "accepted",
        "driver",
        "ours",
    )


@pytest.mark.parametrize(
    ("chain", "final"),
    [
        (["accepted"], "accepted"),
        (["discarded"], "discarded"),
        (["passed_on"], "passed_on"),
        (["discarded", "accepted"], "accepted"),
        (["discarded", "passed_on"], "passed_on"),
        (["accepted", "discarded"], "accepted"),
        (["passed_on", "accepted"], "passed_on"),
        (["accepted", "accepted"], "accepted"),
    ],
)
def test_qualification_state_machine(chain: list[str], final: str) -> None:
    """open -> accepted|passed_on|discarded, discarded -> reconsidered; later moves ignored."""
    log = Log()
    idea = log.add(IdeaRec(text="x"))
    previous = None
    for outcome in chain:
        extra = {"to": OTHER} if outcome == "passed_on" else {}
        previous = log.add(_qualify(idea, outcome, previous, **extra))
    assert log.book().ideas[idea.id].state == final


def test_passed_on_names_the_circle() -> None:
    """A passed-on idea keeps the circle it went to."""
    log = Log()
    idea = log.add(IdeaRec(text="x"))
    log.add(_qualify(idea, "passed_on", to=OTHER))
    qualification = log.book().ideas[idea.id].qualification
    assert qualification is not None
    assert qualification.to == OTHER


def test_records_on_foreign_or_unknown_ideas_are_ignored() -> None:
    """Notes, qualifications and plans count only in the idea's own circle."""
    log = Log()
    idea = log.add(IdeaRec(text="x"))
    log.add(NoteRec(idea=idea.id, text="elsewhere"), circle=OTHER)
    log.add(_qualify(idea, "discarded"), circle=OTHER)
    log.add(NoteRec(idea=b"u" * 16, text="lost"))
    log.add(NoteRec(idea=idea.id, text="here"), member=BOB)
    found = log.book().ideas[idea.id]
    assert found.state == "open"
    assert [n.record.text for n in found.notes if isinstance(n.record, NoteRec)] == ["here"]


# ---- outline plans ----------------------------------------------------------------------


def _plan(idea: Entry[Any], low: int, revises: Entry[Any] | None = None) -> OutlinePlanRec:
    return OutlinePlanRec(
        idea=idea.id,
        scope="scope",
        resources="two people",
        cost_low=low,
        cost_high=low * 2,
        currency="GBP",
        revises=revises.op_id if revises else None,
    )


def test_a_revised_plan_replaces_the_earlier_one() -> None:
    """The current plan is the one no other plan revises; money stays integer."""
    log = Log()
    idea = log.add(IdeaRec(text="x"))
    first = log.add(_plan(idea, 100))
    log.add(_plan(idea, 300, revises=first))
    found = log.book().ideas[idea.id]
    assert len(found.plans) == 2
    assert found.plan is not None
    assert (found.plan.cost_low, found.plan.cost_high) == (300, 600)


def test_concurrent_revisions_are_both_current_lowest_op_id_first() -> None:
    """Two revisions of the same plan are both current; ``plan`` is the lower op id."""
    log = Log()
    idea = log.add(IdeaRec(text="x"))
    first = log.add(_plan(idea, 100))
    one = log.add(_plan(idea, 200, revises=first))
    two = log.add(_plan(idea, 300, revises=first))
    found = log.book().ideas[idea.id]
    assert [p.op_id for p in found.current_plans] == sorted([one.op_id, two.op_id])
    assert found.plan == min(one, two, key=lambda e: e.op_id).record


# ---- join requests ----------------------------------------------------------------------


def test_join_requests_are_collected() -> None:
    """Join requests are kept by id, apart from ideas."""
    log = Log()
    request = log.add(JoinRequestRec(card="cn1:abcd", kind="innovator"), member=BOB)
    book = log.book()
    assert list(book.join_requests) == [request.id]
    assert not book.ideas


@pytest.mark.parametrize(
    ("states", "admitted", "status"),
    [
        ([], False, "open"),
        (["consent_round"], False, "proposed"),
        (["withdrawn"], False, "declined"),
        (["deferred", "withdrawn"], False, "declined"),
        (["withdrawn", "consent_round"], False, "proposed"),
        (["withdrawn", "agreed"], False, "agreed"),
        (["agreed"], True, "admitted"),
    ],
)
def test_join_status(states: list[str], admitted: bool, status: str) -> None:
    """A join request is open, proposed, declined, agreed, then admitted."""
    assert join_status(states, admitted) == status
