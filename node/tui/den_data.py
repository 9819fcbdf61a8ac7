"""What the Angels Den and projects screen shows, read from a replica into plain values.

Funding spans circles (a pitch lives in its proposal's circle, its pledges in the den), so
this folds every circle held here, as ``circle-node pitch list`` / ``project show`` do
(:mod:`node.funding`). Money stays in integer minor units.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.domain.auth import Level
from node.domain.governance.funding import FundingStatus, Measure, Pitch, Project, ReadingRec
from node.funding import Held, load_held
from node.replica import Replica
from node.tui.data import circle_name


@dataclass(frozen=True, slots=True)
class PledgeItem:
    pledge: bytes
    pitch: bytes
    pitch_title: str
    name: str  # the pledger
    amount: int
    currency: str
    conditions: str
    state: str  # pledged, confirmed, fulfilled, withdrawn
    mine: bool


@dataclass(frozen=True)
class PitchItem:
    pitch: bytes
    title: str
    circle_name: str
    den_name: str
    status: FundingStatus
    benefits: str
    roi: str
    sustainability: str
    pledges: list[PledgeItem]
    projects: int
    can_pledge: bool  # the unlocked member writes in the den


@dataclass(frozen=True, slots=True)
class SeatItem:
    name: str
    circle_name: str
    assurance: str


@dataclass(frozen=True)
class MeasureItem:
    name: str
    unit: str
    target: int
    direction: str  # "up": more is better
    readings: list[tuple[str, int]]  # (day, value), in time order
    met: bool


@dataclass(frozen=True)
class ProjectItem:
    project: bytes
    title: str
    circle_name: str
    valid: bool
    problems: list[str]
    team: list[SeatItem]
    milestones: list[tuple[str, str | None, str]]  # title, due day, status; by due day
    lessons: list[tuple[str, str]]  # by, text
    measures: list[MeasureItem]


@dataclass(frozen=True)
class DenData:
    pitches: list[PitchItem]  # by title
    projects: list[ProjectItem]  # by title
    my_pledges: list[PledgeItem]


def _circle_label(held: Held, circle: bytes) -> str:
    state = held.states.get(circle)
    return circle_name(state) if state is not None else circle.hex()[:8]


def pitch_item(held: Held, pitch: Pitch, me: bytes) -> PitchItem:
    body = pitch.body
    pledges = [
        PledgeItem(
            pledge=p.entry.id,
            pitch=pitch.entry.id,
            pitch_title=body.title,
            name=held.name(p.entry.member),
            amount=p.body.amount,
            currency=p.body.currency,
            conditions=p.body.conditions,
            state=p.state,
            mine=p.entry.member == me,
        )
        for p in sorted(pitch.pledges, key=lambda p: (p.entry.ts, p.entry.op_id))
    ]
    den = held.states.get(body.den)
    info = den.current_members().get(me) if den is not None else None
    return PitchItem(
        pitch=pitch.entry.id,
        title=body.title,
        circle_name=_circle_label(held, pitch.entry.circle),
        den_name=_circle_label(held, body.den),
        status=pitch.status(),
        benefits=body.benefits,
        roi=body.roi,
        sustainability=body.sustainability,
        pledges=pledges,
        projects=len(pitch.projects),
        can_pledge=info is not None and info.level >= Level.WRITE,
    )


def measure_item(measure: Measure) -> MeasureItem:
    readings = []
    for entry in measure.readings:
        record = entry.record
        if isinstance(record, ReadingRec):
            readings.append((record.on, record.value))
    body = measure.body
    return MeasureItem(body.name, body.unit, body.target, body.direction, readings, measure.met)


def project_item(held: Held, project: Project) -> ProjectItem:
    return ProjectItem(
        project=project.entry.id,
        title=project.body.title,
        circle_name=_circle_label(held, project.entry.circle),
        valid=project.valid,
        problems=list(project.problems),
        team=[
            SeatItem(held.name(s.member), _circle_label(held, s.circle), s.assurance)
            for s in project.body.team
        ],
        milestones=sorted(
            ((m.body.title, m.body.due, m.status) for m in project.milestones),
            key=lambda m: (m[1] or "9999", m[0].casefold(), m[0]),
        ),
        lessons=[
            (held.name(e.member), str(getattr(e.record, "text", ""))) for e in project.lessons
        ],
        measures=[measure_item(m) for m in project.measures],
    )


def den_data(held: Held, me: bytes) -> DenData:
    pitches = [pitch_item(held, p, me) for p in held.funding.pitches.values()]
    pitches.sort(key=lambda p: (p.title.casefold(), p.pitch))
    projects = [project_item(held, p) for p in held.funding.projects.values()]
    projects.sort(key=lambda p: (p.title.casefold(), p.project))
    mine = [pledge for pitch in pitches for pledge in pitch.pledges if pledge.mine]
    return DenData(pitches, projects, mine)


async def load_den(replica: Replica, me: bytes) -> DenData:
    """Every pitch with its pledges, and every project, over the circles held here."""
    await replica.refresh()
    return den_data(await load_held(replica), me)
