"""Hypothesis properties of the consent rules over random histories of one proposal:
positions, amendments, objection tests and decisions (honest and arbitrary)."""

from __future__ import annotations

import random
from typing import Any

from gov_book import ALICE, BOB, CAROL, MEMBERS, OUTSIDER, Book
from hypothesis import event, given, settings
from hypothesis import strategies as st

from node.domain.governance.consent import Governance, Outcome, Signed, latest_positions
from node.domain.governance.records import DecisionRec, ObjectionTestRec, PositionRec

KINDS = ("consent", "concern", "objection")
VOTERS = (ALICE, BOB, CAROL, OUTSIDER)
step = st.one_of(
    st.tuples(st.just("pos"), st.integers(0, 3), st.integers(0, 2), st.sampled_from(KINDS)),
    st.tuples(st.just("amend"), st.integers(0, 2), st.integers(0, 3)),
    st.tuples(st.just("test"), st.integers(0, 3), st.integers(0, 30), st.booleans()),
    st.tuples(st.just("decide"), st.integers(0, 2), st.lists(st.integers(0, 30), max_size=5)),
    st.tuples(st.just("honest"), st.integers(0, 2)),
    st.tuples(
        st.just("round"),
        st.integers(0, 2),
        st.lists(
            st.sampled_from(("consent", "consent", "concern", "objection")), min_size=3, max_size=3
        ),
    ),
)


def _history(steps: list[tuple[Any, ...]]) -> tuple[Book, bytes]:
    """A random history of one proposal: positions, amendments, tests and decisions."""
    book = Book()
    pid, v0 = book.propose()
    versions = [v0]
    positions: list[Signed] = []
    for item in steps:
        if item[0] == "pos":
            _, who, at, kind = item
            positions.append(book.pos(VOTERS[who], pid, versions[at % len(versions)], kind))
        elif item[0] == "amend":
            _, base, text = item
            versions.append(book.amend(pid, versions[base % len(versions)], f"text {text}"))
        elif item[0] == "test" and positions:
            _, who, which, qualifies = item
            book.test(VOTERS[who], positions[which % len(positions)], qualifies=qualifies)
        elif item[0] == "decide":
            _, at, picks = item
            listed = [positions[i % len(positions)] for i in picks] if positions else []
            book.decide(
                pid, versions[at % len(versions)], list({s.op_id: s for s in listed}.values())
            )
        elif item[0] == "round":  # every member takes a position on one version
            version = versions[item[1] % len(versions)]
            for member, kind in zip(sorted(MEMBERS), item[2], strict=True):
                positions.append(book.pos(member, pid, version, kind))
        elif item[0] == "honest":  # what take_position signs: everyone's latest positions
            version = versions[item[1] % len(versions)]
            book.decide(pid, version, list(latest_positions(positions, version).values()))
    return book, pid


def _acknowledged(book: Book, objection: Signed) -> bool:
    return any(
        isinstance(s.record, ObjectionTestRec)
        and s.record.objection == objection.op_id
        and not s.record.qualifies
        and s.member == objection.member
        for s in book.records
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=25))
def test_agreed_never_with_an_open_objection_or_a_missing_consent(steps: list[Any]) -> None:
    """Agreed implies a decision listing, on the agreed version, a consent or concern (or an
    objection its author acknowledged) of every required member; never otherwise."""
    book, pid = _history(steps)
    outcome = book.outcome(pid)
    event(f"state {outcome.state}")
    if not outcome.agreed:
        assert outcome.decision is None
        for member in MEMBERS:
            mine = [
                s
                for s in book.records
                if s.member == member
                and isinstance(s.record, PositionRec)
                and s.record.version == outcome.version.hash
            ]
            latest = mine[-1] if mine else None  # one key per member: creation order is seq
            blocking = latest is None or (
                isinstance(latest.record, PositionRec)
                and latest.record.position == "objection"
                and not _acknowledged(book, latest)
            )
            assert (member in outcome.missing) == blocking
        return
    assert outcome.decision is not None
    assert (outcome.missing, outcome.open_objections) == ([], [])
    record = outcome.decision.record
    assert isinstance(record, DecisionRec)
    assert record.version == outcome.version.hash
    listed = {s.op_id: s for s in book.records if s.op_id in record.positions}
    by_member = {s.member: s for s in listed.values()}
    assert MEMBERS <= set(by_member)
    for member in MEMBERS:
        position = by_member[member].record
        assert isinstance(position, PositionRec)
        assert position.proposal == pid
        assert position.version == record.version
        if position.position == "objection":
            assert _acknowledged(book, by_member[member])


def _summary(outcome: Outcome) -> tuple[Any, ...]:
    return (
        outcome.state,
        outcome.version.hash,
        sorted(s.op_id for s in outcome.positions.values()),
        outcome.missing,
        sorted(s.op_id for s in outcome.open_objections),
        sorted(s.op_id for s in outcome.concerns),
        outcome.decision.op_id if outcome.decision else None,
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(step, max_size=25), st.randoms(use_true_random=False))
def test_the_outcome_does_not_depend_on_record_order(steps: list[Any], rnd: random.Random) -> None:
    """Folding the same records in any order gives the same outcome."""
    book, pid = _history(steps)
    expected = _summary(book.outcome(pid))
    shuffled = list(book.records)
    rnd.shuffle(shuffled)
    gov = Governance(shuffled)
    assert _summary(gov.outcome(gov.proposals[pid], lambda _op: set(MEMBERS))) == expected
