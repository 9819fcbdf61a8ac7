"""Tests for node.domain.governance.funding: pledge states, the funding threshold, project
validity, milestones, measures and learning shares, as pure functions of the records."""

from __future__ import annotations

import hashlib
import random
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.domain.governance.funding import (
    FEntry,
    Funding,
    FundingRecord,
    LessonRec,
    MeasureRec,
    MilestoneRec,
    PitchRec,
    PledgeRec,
    PledgeStateRec,
    ProjectRec,
    ReadingRec,
    Seat,
    SharedItem,
    ShareRec,
    decode,
    encode,
    funding_status,
    learning,
    target_met,
    team_problems,
)
from node.domain.governance.ideas import Entry
from node.errors import DecodeError

HOME, DEN, SVL, ELSEWHERE = (bytes([c]) * 16 for c in b"HDSE")
ALICE, BOB, CAROL = (bytes([c]) * 32 for c in b"ABC")
CIRCLES = (HOME, DEN, SVL)


class Log:
    """Funding entries with op ids that do not follow creation order."""

    def __init__(self) -> None:
        self.count = 0
        self.entries: list[FEntry] = []

    def add(
        self, record: FundingRecord, circle: bytes, member: bytes = ALICE, *, ts: int = 0
    ) -> FEntry:
        self.count += 1
        op_id = hashlib.blake2b(self.count.to_bytes(4, "big"), digest_size=32).digest()
        entry: FEntry = Entry(op_id, circle, member, member, self.count, ts, record)
        self.entries.append(entry)
        return entry

    def fold(self, circles: tuple[bytes, ...] = CIRCLES) -> Funding:
        return Funding(self.entries, circles)

    def pitch(self, costs: int = 1000, currency: str = "GBP") -> FEntry:
        record = PitchRec(
            proposal=b"p" * 16,
            version=b"v" * 32,
            decision=b"d" * 32,
            den=DEN,
            title="garden",
            costs=costs,
            currency=currency,
        )
        return self.add(record, HOME)

    def pledge(
        self,
        pitch: FEntry,
        amount: int,
        member: bytes = BOB,
        currency: str = "GBP",
        circle: bytes = DEN,
    ) -> FEntry:
        return self.add(PledgeRec(pitch=pitch.id, amount=amount, currency=currency), circle, member)

    def move(
        self, pledge: FEntry, state: str, after: FEntry | None = None, member: bytes | None = None
    ) -> FEntry:
        record = PledgeStateRec(
            pledge=pledge.id,
            state=state,  # type: ignore[arg-type]
            after=after.op_id if after else None,
        )
        return self.add(record, DEN, pledge.member if member is None else member)

    def moves(self, pledge: FEntry, *states: str) -> list[FEntry]:
        done: list[FEntry] = []
        for state in states:
            done.append(self.move(pledge, state, done[-1] if done else None))
        return done


# ---- funding threshold ------------------------------------------------------------------


def test_funding_figures() -> None:
    """pledged counts every live pledge, confirmed counts confirmed and fulfilled ones."""
    status = funding_status(
        1000,
        "GBP",
        [
            (300, "GBP", "pledged"),
            (400, "GBP", "confirmed"),
            (200, "GBP", "fulfilled"),
            (900, "GBP", "withdrawn"),
        ],
    )
    assert (status.pledged, status.confirmed, status.fulfilled, status.needed) == (
        900,
        600,
        200,
        400,
    )
    assert status.funded is False


def test_funded_exactly_at_the_cost() -> None:
    """Confirmed pledges equal to the cost fund the pitch; one minor unit short does not."""
    assert funding_status(1000, "GBP", [(1000, "GBP", "confirmed")]).funded
    assert not funding_status(1000, "GBP", [(999, "GBP", "confirmed")]).funded


def test_pledges_in_another_currency_never_count() -> None:
    """A confirmed EUR pledge does not fund a GBP pitch, whatever its amount."""
    status = funding_status(1000, "GBP", [(10**6, "EUR", "fulfilled"), (500, "GBP", "confirmed")])
    assert (status.confirmed, status.needed, status.funded, status.other_currency) == (
        500,
        500,
        False,
        1,
    )


def test_money_is_integer_minor_units() -> None:
    """A float amount or a lowercase currency does not decode; zero pledges are refused."""
    base = {"t": "pledge", "pitch": b"p" * 16, "currency": "GBP"}
    for body in (
        base | {"amount": 10.5},
        base | {"amount": 0},
        base | {"amount": 5, "currency": "gbp"},
    ):
        with pytest.raises(DecodeError):
            decode(msgspec.msgpack.encode(body))


# ---- pledge states ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chain", "final"),
    [
        ([], "pledged"),
        (["confirmed"], "confirmed"),
        (["confirmed", "fulfilled"], "fulfilled"),
        (["withdrawn"], "withdrawn"),
        (["confirmed", "withdrawn"], "withdrawn"),
        (["fulfilled"], "pledged"),
        (["confirmed", "fulfilled", "withdrawn"], "fulfilled"),
        (["withdrawn", "confirmed"], "withdrawn"),
        (["confirmed", "confirmed"], "confirmed"),
    ],
)
def test_pledge_state_machine(chain: list[str], final: str) -> None:
    """pledged -> confirmed -> fulfilled | withdrawn; anything else is ignored."""
    log = Log()
    pledge = log.pledge(log.pitch(), 100)
    log.moves(pledge, *chain)
    assert log.fold().pledges[pledge.id].state == final


def test_only_the_pledger_moves_a_pledge() -> None:
    """A confirmation signed by another den member is ignored."""
    log = Log()
    pitch = log.pitch(costs=100)
    pledge = log.pledge(pitch, 100, member=BOB)
    log.move(pledge, "confirmed", member=ALICE)
    funding = log.fold()
    assert funding.pledges[pledge.id].state == "pledged"
    assert not funding.pitches[pitch.id].status().funded


def test_pledges_outside_the_den_are_ignored() -> None:
    """A pledge signed in any circle but the pitch's den does not count."""
    log = Log()
    pitch = log.pitch(costs=100)
    stray = log.pledge(pitch, 100, circle=ELSEWHERE)
    log.moves(stray, "confirmed")
    funding = log.fold()
    assert stray.id not in funding.pledges
    assert funding.pitches[pitch.id].status().confirmed == 0


def test_withdrawal_after_confirmation_unfunds_the_pitch() -> None:
    """A withdrawn pledge no longer counts toward the pitch."""
    log = Log()
    pitch = log.pitch(costs=100)
    pledge = log.pledge(pitch, 100)
    log.moves(pledge, "confirmed", "withdrawn")
    status = log.fold().pitches[pitch.id].status()
    assert (status.pledged, status.confirmed, status.funded) == (0, 0, False)


pledge_plans = st.lists(
    st.tuples(
        st.integers(1, 500),
        st.sampled_from(["GBP", "GBP", "GBP", "EUR"]),
        st.sampled_from(
            [
                (),
                ("confirmed",),
                ("confirmed", "fulfilled"),
                ("withdrawn",),
                ("confirmed", "withdrawn"),
                ("fulfilled",),
            ]
        ),
        st.sampled_from([BOB, CAROL]),
    ),
    max_size=8,
)


@given(st.integers(1, 2000), pledge_plans, st.randoms())
@settings(max_examples=150, deadline=None)
def test_funded_iff_confirmed_pledges_cover_the_cost(
    costs: int, plans: list[tuple[int, str, tuple[str, ...], bytes]], rnd: random.Random
) -> None:
    """In any record order, funded iff confirmed pledges in its currency cover the cost."""
    log = Log()
    pitch = log.pitch(costs=costs)
    expected = 0
    for amount, currency, chain, member in plans:
        pledge = log.pledge(pitch, amount, member=member, currency=currency)
        log.moves(pledge, *chain)
        valid = chain in (("confirmed",), ("confirmed", "fulfilled"))
        expected += amount if valid and currency == "GBP" else 0
    shuffled = log.entries[:]
    rnd.shuffle(shuffled)
    for entries in (log.entries, shuffled):
        status = Funding(entries, CIRCLES).pitches[pitch.id].status()
        assert status.confirmed == expected
        assert status.funded == (expected >= costs)


# ---- projects ---------------------------------------------------------------------------


def _team(*seats: tuple[bytes, bytes, str]) -> list[Seat]:
    return [Seat(member=m, circle=c, assurance=a) for m, c, a in seats]  # type: ignore[arg-type]


FULL_TEAM = _team((ALICE, HOME, "requirements"), (BOB, DEN, "investment_benefits"))


def test_team_problems() -> None:
    """One representative per circle, the proposal's circle and the den both seated."""
    assert team_problems(FULL_TEAM, HOME, DEN) == []
    assert team_problems(_team((ALICE, HOME, "requirements")), HOME, DEN) == [
        "the Angels Den circle has no representative"
    ]
    twice = FULL_TEAM + _team((CAROL, HOME, "design"))
    assert len(team_problems(twice, HOME, DEN)) == 1
    wrong = _team((ALICE, HOME, "requirements"), (BOB, DEN, "design"))
    assert team_problems(wrong, HOME, DEN) == [
        "the den's representative must hold investment_benefits"
    ]


def _funded(log: Log, costs: int = 100) -> tuple[FEntry, list[FEntry]]:
    pitch = log.pitch(costs=costs)
    steps = log.moves(log.pledge(pitch, costs), "confirmed")
    return pitch, steps


def test_a_project_holds_when_its_cited_funding_covers_the_cost() -> None:
    """A project citing the confirmations that funded it survives a later withdrawal."""
    log = Log()
    pitch, steps = _funded(log)
    project = log.add(
        ProjectRec(pitch=pitch.id, title="p", team=FULL_TEAM, funding=[steps[0].op_id]), HOME
    )
    assert log.fold().projects[project.id].valid
    pledge_id = log.fold().pitches[pitch.id].pledges[0].entry.id
    log.move(next(e for e in log.entries if e.id == pledge_id), "withdrawn", steps[-1])
    funding = log.fold()
    assert not funding.pitches[pitch.id].status().funded
    assert funding.projects[project.id].valid


@pytest.mark.parametrize("flaw", ["unconfirmed", "twice", "short", "den_unknown"])
def test_a_project_without_funding_does_not_hold(flaw: str) -> None:
    """Unconfirmed, repeated, short or uncheckable funding citations are a problem."""
    log = Log()
    pitch = log.pitch(costs=100)
    pledge = log.pledge(pitch, 60)
    confirm, fulfil = log.moves(pledge, "confirmed", "fulfilled")
    cited = {
        "unconfirmed": [pledge.op_id],
        "twice": [confirm.op_id, fulfil.op_id],
        "short": [fulfil.op_id],
        "den_unknown": [fulfil.op_id],
    }[flaw]
    project = log.add(ProjectRec(pitch=pitch.id, title="p", team=FULL_TEAM, funding=cited), HOME)
    circles = (HOME,) if flaw == "den_unknown" else CIRCLES
    found = log.fold(circles).projects[project.id]
    assert not found.valid
    assert len(found.problems) == 1


def test_a_project_outside_the_pitch_circle_is_ignored() -> None:
    """Projects live in the pitch's circle; one signed elsewhere is not a project."""
    log = Log()
    pitch, steps = _funded(log)
    stray = log.add(
        ProjectRec(pitch=pitch.id, title="p", team=FULL_TEAM, funding=[steps[0].op_id]), DEN
    )
    assert stray.id not in log.fold().projects


# ---- milestones -------------------------------------------------------------------------


def _project(log: Log) -> FEntry:
    pitch, steps = _funded(log)
    return log.add(
        ProjectRec(pitch=pitch.id, title="p", team=FULL_TEAM, funding=[steps[0].op_id]), HOME
    )


def _set(log: Log, milestone: FEntry, project: FEntry, status: str, after: FEntry | None) -> FEntry:
    record = MilestoneRec(
        project=project.id,
        status=status,  # type: ignore[arg-type]
        of=milestone.id,
        after=after.op_id if after else None,
    )
    return log.add(record, HOME)


@pytest.mark.parametrize(
    ("chain", "final"),
    [
        ([], "planned"),
        (["in_progress", "done"], "done"),
        (["blocked", "in_progress", "blocked", "planned"], "planned"),
        (["done"], "done"),
        (["done", "in_progress"], "done"),
        (["blocked", "done"], "blocked"),
        (["planned"], "planned"),
    ],
)
def test_milestone_state_machine(chain: list[str], final: str) -> None:
    """planned/in_progress/blocked move among themselves and to done; done is final."""
    log = Log()
    project = _project(log)
    milestone = log.add(MilestoneRec(project=project.id, title="beds", due="2031-05-01"), HOME)
    previous = None
    for status in chain:
        previous = _set(log, milestone, project, status, previous)
    found = log.fold().milestones[milestone.id]
    assert found.status == final


def test_milestone_records_are_checked() -> None:
    """A new milestone needs a title and starts planned; a change carries only a status."""
    project = b"p" * 16
    bad = [
        {"t": "milestone", "project": project, "title": ""},
        {"t": "milestone", "project": project, "title": "x", "status": "done"},
        {"t": "milestone", "project": project, "title": "x", "of": b"m" * 16},
        {"t": "milestone", "project": project, "title": "x", "after": b"a" * 32},
    ]
    for body in bad:
        with pytest.raises(DecodeError):
            decode(msgspec.msgpack.encode(body))


# ---- measures ---------------------------------------------------------------------------


def test_latest_reading_is_by_date_then_signed_time() -> None:
    """Readings sort by their date, then signed time; met follows the direction."""
    log = Log()
    project = _project(log)
    measure = log.add(MeasureRec(project=project.id, name="families", target=40), HOME)
    log.add(ReadingRec(measure=measure.id, value=45, on="2031-09-01"), HOME, ts=5)
    log.add(ReadingRec(measure=measure.id, value=12, on="2031-06-01"), HOME, ts=9)
    log.add(ReadingRec(measure=measure.id, value=39, on="2031-09-01"), HOME, ts=7)
    log.add(ReadingRec(measure=measure.id, value=99, on="2031-12-01"), DEN)  # wrong circle
    found = log.fold().measures[measure.id]
    assert [getattr(e.record, "value", None) for e in found.readings] == [12, 45, 39]
    assert found.latest is not None
    assert (found.latest.value, found.met) == (39, False)


@pytest.mark.parametrize(
    ("value", "target", "direction", "met"),
    [(40, 40, "up", True), (39, 40, "up", False), (10, 12, "down", True), (13, 12, "down", False)],
)
def test_target_met(value: int, target: int, direction: str, met: bool) -> None:
    """More is better for ``up`` measures, less for ``down`` ones."""
    assert target_met(value, target, direction) is met


# ---- learning ---------------------------------------------------------------------------


def _share(log: Log, project: FEntry, items: list[tuple[bytes, Any]]) -> FEntry:
    body = ShareRec(
        project=project.id,
        circle=HOME,
        title="p",
        items=[SharedItem(op=op, body=encode(record)) for op, record in items],
    )
    return log.add(body, SVL)


def test_learning_lists_each_item_once_and_checks_it() -> None:
    """Each shared op is listed once and checked: holds, altered, or unknown (no source)."""
    log = Log()
    project = _project(log)
    lesson = log.add(LessonRec(project=project.id, text="order timber early"), HOME)
    measure = log.add(MeasureRec(project=project.id, name="fed", target=4), HOME)
    _share(log, project, [(lesson.op_id, lesson.record), (measure.op_id, measure.record)])
    _share(log, project, [(lesson.op_id, lesson.record)])
    forged = LessonRec(project=project.id, text="no lessons")
    _share(log, project, [(b"f" * 32, forged)])
    svl = [e for e in log.entries if e.circle == SVL]
    received = learning(svl, log.fold())
    assert len(received) == 3
    assert received[lesson.op_id].holds is True
    assert received[measure.op_id].holds is True
    assert received[b"f" * 32].holds is False
    assert {r.holds for r in learning(svl, log.fold((DEN, SVL))).values()} == {None}


def test_a_faithful_copy_replaces_an_altered_one() -> None:
    """Of two copies of one lesson op, the one matching its source counts, in any order."""
    for altered_first in (True, False):
        log = Log()
        project = _project(log)
        lesson = log.add(LessonRec(project=project.id, text="true words"), HOME)
        altered = (lesson.op_id, LessonRec(project=project.id, text="false words"))
        faithful = (lesson.op_id, lesson.record)
        for item in (altered, faithful) if altered_first else (faithful, altered):
            _share(log, project, [item])
        received = learning([e for e in log.entries if e.circle == SVL], log.fold())
        assert received[lesson.op_id].holds is True
        assert received[lesson.op_id].record == lesson.record
