"""Angels Den, delivery and learning: pitches, pledges, projects, milestones, lessons,
benefit measures with readings, and what is shared with a Social Value and Learning circle.

Record bodies: a msgspec tagged union, tag field ``t`` (docs/ideas-and-funding.md); money
is always integer minor units with an ISO currency code. Where they live:
``pitch`` in the agreed proposal's circle, naming the den; ``pledge`` and ``pledge_state``
in the den (only its members can sign there: ingest refuses anyone else, ``restricted``);
``project``, ``milestone``, ``lesson``, ``measure``, ``reading`` in the pitch's circle;
``share`` in the SVL circle, carrying copies of lessons, measures and readings with their
op ids, so the SVL circle lists them and, holding the project's circle, checks each.

Rules, each a function of the set of valid records (order-free, clock-free):

- a pledge outside the pitch's den is ignored, and so is a pledge state not signed by the
  pledger; states ``pledged -> confirmed -> fulfilled``, ``pledged | confirmed ->
  withdrawn``, chained by ``after`` (:func:`node.domain.governance.ideas.follow`);
- a pitch is **funded** when its confirmed and fulfilled pledges in the pitch's currency
  add up to at least its costs; pledges in another currency never count;
- a project is valid when its team seats one representative per circle, including the
  pitch's circle and the den (seated for ``investment_benefits``), and the ``funding`` it
  cites (confirmed/fulfilled pledge states of this pitch, one per pledge) covers the
  costs; a later withdrawal does not undo a project that was funded;
- milestones: ``planned -> in_progress | blocked | done``, ``in_progress -> done |
  blocked | planned``, ``blocked -> in_progress | planned``; ``done`` is final;
- a measure's latest reading has the latest date, then signed time, then op id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Literal

import msgspec

from node.domain.governance.codec import Codec
from node.domain.governance.ideas import Entry, Step, follow
from node.domain.governance.records import Currency, Day, Id16, Id32, Short, Text, Title

Filled = Annotated[str, msgspec.Meta(min_length=1, max_length=40_000)]
Amount = Annotated[int, msgspec.Meta(ge=1, le=10**15)]
Figure = Annotated[int, msgspec.Meta(ge=-(10**15), le=10**15)]
Unit = Annotated[str, msgspec.Meta(max_length=40)]
Assurance = Literal["requirements", "design", "investment_benefits"]
PledgeMove = Literal["confirmed", "fulfilled", "withdrawn"]
MilestoneStatus = Literal["planned", "in_progress", "done", "blocked"]
MAX_SHARED = 2_000

PLEDGE_MOVES: Mapping[str, frozenset[str]] = {
    "pledged": frozenset({"confirmed", "withdrawn"}),
    "confirmed": frozenset({"fulfilled", "withdrawn"}),
    "fulfilled": frozenset(),
    "withdrawn": frozenset(),
}
MILESTONE_MOVES: Mapping[str, frozenset[str]] = {
    "planned": frozenset({"in_progress", "blocked", "done"}),
    "in_progress": frozenset({"done", "blocked", "planned"}),
    "blocked": frozenset({"in_progress", "planned"}),
    "done": frozenset(),
}
COUNTED = frozenset({"confirmed", "fulfilled"})


class _Rec(msgspec.Struct, frozen=True, tag_field="t", forbid_unknown_fields=True):
    """Base of the funding records."""


class PitchRec(_Rec, frozen=True, tag="pitch"):
    """A business case attached to an agreed proposal, pitched to an Angels Den circle."""

    proposal: Id16
    version: Id32  # the agreed version
    decision: Id32  # the decision record's op id
    den: Id16
    title: Title
    costs: Amount
    currency: Currency
    benefits: Text = ""
    roi: Text = ""
    sustainability: Text = ""


class PledgeRec(_Rec, frozen=True, tag="pledge"):
    """A social investor's pledge to a pitch."""

    pitch: Id16
    amount: Amount
    currency: Currency
    conditions: Short = ""


class PledgeStateRec(_Rec, frozen=True, tag="pledge_state"):
    """The pledger moves their pledge on: confirmed, fulfilled or withdrawn."""

    pledge: Id16
    state: PledgeMove
    after: Id32 | None = None


class Seat(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A project team member representing one earlier circle in an assurance role."""

    member: Id32
    circle: Id16
    assurance: Assurance


class ProjectRec(_Rec, frozen=True, tag="project"):
    """A funded pitch becomes a delivery project."""

    pitch: Id16
    title: Title
    team: Annotated[list[Seat], msgspec.Meta(min_length=1, max_length=50)]
    funding: Annotated[list[Id32], msgspec.Meta(min_length=1, max_length=500)]


class MilestoneRec(_Rec, frozen=True, tag="milestone"):
    """A new milestone (``of`` None), or a status change of milestone ``of``."""

    project: Id16
    title: Annotated[str, msgspec.Meta(max_length=200)] = ""
    due: Day | None = None
    status: MilestoneStatus = "planned"
    of: Id16 | None = None
    after: Id32 | None = None

    def __post_init__(self) -> None:
        if self.of is None and (not self.title.strip() or self.status != "planned"):
            raise ValueError("a new milestone has a title and starts planned")
        if self.of is not None and (self.title or self.due is not None):
            raise ValueError("a status change carries only the status")
        if self.of is None and self.after is not None:
            raise ValueError("a new milestone follows no change")


class LessonRec(_Rec, frozen=True, tag="lesson"):
    project: Id16
    text: Filled


class MeasureRec(_Rec, frozen=True, tag="measure"):
    """A benefit measure with a target (integers: pick a unit that makes them whole)."""

    project: Id16
    name: Title
    target: Figure
    unit: Unit = ""
    direction: Literal["up", "down"] = "up"  # is more better, or less?


class ReadingRec(_Rec, frozen=True, tag="reading"):
    measure: Id16
    value: Figure
    on: Day
    note: Short = ""


class SharedItem(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A copy of a lesson, measure or reading: its op id and its record body."""

    op: Id32
    body: Annotated[bytes, msgspec.Meta(max_length=48_000)]


class ShareRec(_Rec, frozen=True, tag="share"):
    """A project's lessons and measures, signed into the SVL circle with their op ids."""

    project: Id16
    circle: Id16  # the project's circle
    title: Title
    items: Annotated[list[SharedItem], msgspec.Meta(max_length=MAX_SHARED)] = []


FundingRecord = (
    PitchRec
    | PledgeRec
    | PledgeStateRec
    | ProjectRec
    | MilestoneRec
    | LessonRec
    | MeasureRec
    | ReadingRec
    | ShareRec
)
FEntry = Entry[FundingRecord]

CODEC: Codec[FundingRecord] = Codec(FundingRecord, "a valid funding record")
encode, decode, try_decode = CODEC.encode, CODEC.decode, CODEC.try_decode


# ---- pure rules -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FundingStatus:
    """A pitch's figures, in its own currency (minor units)."""

    costs: int
    currency: str
    pledged: int  # every pledge not withdrawn
    confirmed: int  # confirmed or fulfilled
    fulfilled: int
    needed: int  # what confirmed pledges still lack
    funded: bool
    other_currency: int  # pledges in another currency (never counted)


def funding_status(
    costs: int, currency: str, pledges: Iterable[tuple[int, str, str]]
) -> FundingStatus:
    """Figures from ``(amount, currency, state)`` of each pledge to the pitch."""
    pledged = confirmed = fulfilled = other = 0
    for amount, pledge_currency, state in pledges:
        if pledge_currency != currency:
            other += 1
            continue
        if state != "withdrawn":
            pledged += amount
        if state in COUNTED:
            confirmed += amount
        if state == "fulfilled":
            fulfilled += amount
    needed = max(0, costs - confirmed)
    return FundingStatus(costs, currency, pledged, confirmed, fulfilled, needed, needed == 0, other)


def team_problems(team: Iterable[Seat], pitch_circle: bytes, den: bytes) -> list[str]:
    """Why a team does not seat one representative of each earlier circle (empty: it does)."""
    problems = []
    seats = list(team)
    circles = [s.circle for s in seats]
    for circle in sorted({c for c in circles if circles.count(c) > 1}):
        problems.append(f"circle {circle.hex()[:8]} has more than one representative")
    if pitch_circle not in circles:
        problems.append("the proposal's circle has no representative")
    if den not in circles:
        problems.append("the Angels Den circle has no representative")
    elif any(s.circle == den and s.assurance != "investment_benefits" for s in seats):
        problems.append("the den's representative must hold investment_benefits")
    return problems


def reading_key(entry: FEntry) -> tuple[str, int, bytes]:
    """Readings in time: by their date, then signed time, then op id."""
    record = entry.record
    assert isinstance(record, ReadingRec)
    return (record.on, entry.ts, entry.op_id)


def target_met(value: int, target: int, direction: str) -> bool:
    return value >= target if direction == "up" else value <= target


# ---- the fold ---------------------------------------------------------------------------


@dataclass
class Pledge:
    entry: FEntry
    body: PledgeRec
    state: str = "pledged"
    steps: list[FEntry] = field(default_factory=list)  # the valid chain of state changes


@dataclass
class Pitch:
    entry: FEntry
    body: PitchRec
    pledges: list[Pledge] = field(default_factory=list)
    projects: list[bytes] = field(default_factory=list)

    def status(self) -> FundingStatus:
        figures = ((p.body.amount, p.body.currency, p.state) for p in self.pledges)
        return funding_status(self.body.costs, self.body.currency, figures)


@dataclass
class Milestone:
    entry: FEntry
    body: MilestoneRec
    status: str = "planned"
    steps: list[FEntry] = field(default_factory=list)


@dataclass
class Measure:
    entry: FEntry
    body: MeasureRec
    readings: list[FEntry] = field(default_factory=list)  # in time order

    @property
    def latest(self) -> ReadingRec | None:
        record = self.readings[-1].record if self.readings else None
        return record if isinstance(record, ReadingRec) else None

    @property
    def met(self) -> bool:
        latest = self.latest
        return latest is not None and target_met(
            latest.value, self.body.target, self.body.direction
        )


@dataclass
class Project:
    entry: FEntry
    body: ProjectRec
    pitch: Pitch
    problems: list[str] = field(default_factory=list)
    milestones: list[Milestone] = field(default_factory=list)
    lessons: list[FEntry] = field(default_factory=list)
    measures: list[Measure] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems


def _new_state(record: FundingRecord) -> str:
    return record.state if isinstance(record, PledgeStateRec) else getattr(record, "status", "")


class Funding:
    """Pitches, pledges, projects and shares folded from the valid records of the circles
    in ``circles`` (those this node holds: a den it does not hold leaves a project's
    funding unverifiable, which counts as a problem)."""

    def __init__(self, entries: Iterable[FEntry], circles: Collection[bytes] = ()) -> None:
        by_type: dict[type, list[FEntry]] = defaultdict(list)
        for entry in sorted(entries, key=lambda e: e.op_id):
            by_type[type(entry.record)].append(entry)
        by_type[ReadingRec].sort(key=reading_key)
        self.circles = set(circles)
        self.pitches: dict[bytes, Pitch] = {}
        self.pledges: dict[bytes, Pledge] = {}
        self.projects: dict[bytes, Project] = {}
        self.milestones: dict[bytes, Milestone] = {}
        self.measures: dict[bytes, Measure] = {}
        self.shares: list[FEntry] = by_type[ShareRec]
        for entry in by_type[PitchRec]:
            assert isinstance(entry.record, PitchRec)
            self.pitches[entry.id] = Pitch(entry, entry.record)
        for entry in by_type[PledgeRec]:
            assert isinstance(entry.record, PledgeRec)
            pitch = self.pitches.get(entry.record.pitch)
            if pitch is not None and entry.circle == pitch.body.den:
                pitch.pledges.append(Pledge(entry, entry.record))
                self.pledges[entry.id] = pitch.pledges[-1]
        self._changes(by_type[PledgeStateRec])
        for entry in by_type[ProjectRec]:
            self._project(entry)
        for entry in by_type[MilestoneRec]:
            assert isinstance(entry.record, MilestoneRec)
            project = self._project_in(entry.record.project, entry)
            if entry.record.of is None and project is not None:
                project.milestones.append(Milestone(entry, entry.record))
                self.milestones[entry.id] = project.milestones[-1]
        for entry in by_type[LessonRec] + by_type[MeasureRec]:
            record = entry.record
            assert isinstance(record, LessonRec | MeasureRec)
            project = self._project_in(record.project, entry)
            if project is not None and isinstance(record, LessonRec):
                project.lessons.append(entry)
            elif project is not None and isinstance(record, MeasureRec):
                project.measures.append(Measure(entry, record))
                self.measures[entry.id] = project.measures[-1]
        self._changes(by_type[MilestoneRec])
        for entry in by_type[ReadingRec]:
            assert isinstance(entry.record, ReadingRec)
            measure = self.measures.get(entry.record.measure)
            if measure is not None and measure.entry.circle == entry.circle:
                measure.readings.append(entry)  # entries come sorted by reading_key

    def _changes(self, entries: list[FEntry]) -> None:
        """Walk the chain of state changes of every pledge and milestone. A change counts
        in the circle of what it changes; a pledge's, only when its pledger signed it."""
        changes: dict[bytes, list[FEntry]] = defaultdict(list)
        for entry in entries:
            record = entry.record
            if isinstance(record, PledgeStateRec):
                pledge = self.pledges.get(record.pledge)
                signer = (entry.circle, entry.member)
                if pledge is not None and signer == (pledge.entry.circle, pledge.entry.member):
                    changes[record.pledge].append(entry)
            elif isinstance(record, MilestoneRec) and record.of is not None:
                milestone = self.milestones.get(record.of)
                if milestone is not None and milestone.entry.circle == entry.circle:
                    changes[record.of].append(entry)
        for target, found in changes.items():
            by_op = {e.op_id: e for e in found}
            steps = [
                Step(e.op_id, getattr(e.record, "after", None), _new_state(e.record)) for e in found
            ]
            pledge = self.pledges.get(target)
            if pledge is not None:
                pledge.state, taken = follow("pledged", steps, PLEDGE_MOVES)
                pledge.steps = [by_op[s.op_id] for s in taken]
            else:
                milestone = self.milestones[target]
                milestone.status, taken = follow("planned", steps, MILESTONE_MOVES)
                milestone.steps = [by_op[s.op_id] for s in taken]

    def _project(self, entry: FEntry) -> None:
        record = entry.record
        assert isinstance(record, ProjectRec)
        pitch = self.pitches.get(record.pitch)
        if pitch is None or entry.circle != pitch.entry.circle:
            return
        project = Project(entry, record, pitch)
        project.problems = team_problems(record.team, pitch.entry.circle, pitch.body.den)
        funding = self.funding_problem(pitch, record.funding)
        if funding:
            project.problems.append(funding)
        pitch.projects.append(entry.id)
        self.projects[entry.id] = project

    def funding_problem(self, pitch: Pitch, cited: Iterable[bytes]) -> str | None:
        """None when the cited pledge states cover the pitch's costs; else why not."""
        if pitch.body.den not in self.circles:
            return "the den circle is not held here: its funding cannot be checked"
        counted = {
            s.op_id: p
            for p in pitch.pledges
            for s in p.steps
            if isinstance(s.record, PledgeStateRec) and s.record.state in COUNTED
        }
        total, used = 0, set()
        for op_id in cited:
            pledge = counted.get(op_id)
            if pledge is None:
                return f"{op_id.hex()[:12]} is not a confirmed pledge of this pitch"
            if pledge.entry.id in used:
                return f"pledge {pledge.entry.id.hex()[:12]} is cited twice"
            used.add(pledge.entry.id)
            if pledge.body.currency == pitch.body.currency:
                total += pledge.body.amount
        if total < pitch.body.costs:
            return f"the cited pledges cover {total} of {pitch.body.costs} {pitch.body.currency}"
        return None

    def _project_in(self, project_id: bytes, entry: FEntry) -> Project | None:
        project = self.projects.get(project_id)
        return project if project is not None and project.entry.circle == entry.circle else None


# ---- learning received by an SVL circle -------------------------------------------------

Shareable = LessonRec | MeasureRec | ReadingRec


def sources_of(project: Project) -> dict[bytes, Shareable]:
    """Every lesson, measure and reading of a project, by op id."""
    found: dict[bytes, Shareable] = {}
    for entry in project.lessons:
        if isinstance(entry.record, LessonRec):
            found[entry.op_id] = entry.record
    for measure in project.measures:
        found[measure.entry.op_id] = measure.body
        for entry in measure.readings:
            if isinstance(entry.record, ReadingRec):
                found[entry.op_id] = entry.record
    return found


@dataclass(frozen=True, slots=True)
class Received:
    """A shared item in an SVL circle, the share that brought it, and whether it matches
    its signed source (None: this node does not hold the project's circle)."""

    op: bytes
    record: Shareable
    share: FEntry
    project: bytes
    holds: bool | None


def learning(shares: Iterable[FEntry], sources: Funding | None = None) -> dict[bytes, Received]:
    """What an SVL circle received, by op id, each op once (the lowest share op id wins,
    unless its copy fails the check and a later one passes); each item is checked against
    ``sources`` when they hold the project's circle. Other kinds of items are ignored."""
    found: dict[bytes, Received] = {}
    for share in sorted(shares, key=lambda e: e.op_id):
        body = share.record
        if not isinstance(body, ShareRec):
            continue
        known: dict[bytes, Shareable] | None = None
        if sources is not None and body.circle in sources.circles:
            project = sources.projects.get(body.project)
            held = project is not None and project.entry.circle == body.circle
            known = sources_of(project) if held and project else {}
        for item in body.items:
            record = try_decode(item.body)
            holds = None if known is None else known.get(item.op) == record
            earlier = found.get(item.op)
            replace = earlier is None or (earlier.holds is False and holds is True)
            if isinstance(record, Shareable) and replace:
                found[item.op] = Received(item.op, record, share, body.project, holds)
    return found
