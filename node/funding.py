"""Angels Den, delivery and learning on a replica: pitches, pledges, projects, milestones,
lessons, measures and readings, and shares to a Social Value and Learning circle.

Same shape as :mod:`node.ideas`: ``draft_*`` reads and checks (the acting member's level,
the rules of :mod:`node.domain.governance.funding`) and returns a :class:`Draft`;
:func:`node.ideas.commit` signs it. Funding spans circles (a pitch in the proposal's
circle, pledges in the den), so everything is folded over all the circles held here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal, cast

from node.domain.auth import AuthState, Level
from node.domain.governance.funding import (
    COUNTED,
    MAX_SHARED,
    MILESTONE_MOVES,
    PLEDGE_MOVES,
    Assurance,
    FEntry,
    Funding,
    FundingRecord,
    LessonRec,
    MeasureRec,
    Milestone,
    MilestoneRec,
    MilestoneStatus,
    Pitch,
    PitchRec,
    Pledge,
    PledgeMove,
    PledgeRec,
    PledgeStateRec,
    Project,
    ProjectRec,
    ReadingRec,
    Seat,
    SharedItem,
    ShareRec,
    encode,
    learning,
    sources_of,
    target_met,
    team_problems,
    try_decode,
)
from node.domain.governance.records import parse_day
from node.errors import NodeError
from node.governance import find_proposal, valid_records
from node.ideas import (
    Draft,
    check_currency,
    check_money,
    entries_of,
    find_by_prefix,
    name_of,
    plain,
    require_level,
)
from node.replica import Replica

SHARE_BUDGET = 56 * 1024  # bytes of shared record bodies per share (ops are <= 64 KiB)
ASSURANCES = ("requirements", "design", "investment_benefits")
Direction = Literal["up", "down"]


@dataclass
class Held:
    """Funding folded over every circle held here, with each circle's auth state."""

    funding: Funding
    states: dict[bytes, AuthState]

    def name(self, member: bytes) -> str:
        for state in self.states.values():
            if member in state.members:
                return name_of(state, member)
        return member.hex()[:12]


def draft(circle: bytes, record: FundingRecord, **summary: Any) -> Draft:
    return Draft(circle, encode(record), {"circle": circle.hex(), **summary})


async def load_held(replica: Replica) -> Held:
    entries: list[FEntry] = []
    states: dict[bytes, AuthState] = {}
    for circle in sorted(await replica.circles()):
        states[circle] = await replica.auth_state(circle)
        entries += entries_of(await valid_records(replica, circle), circle, try_decode)
    return Held(Funding(entries, states), states)


async def find_pitch(replica: Replica, text: str) -> tuple[Held, Pitch]:
    held = await load_held(replica)
    hint = "`circle-node pitch list` shows the pitches held here"
    return held, find_by_prefix(held.funding.pitches, text, "pitch", hint)


async def find_project(replica: Replica, text: str) -> tuple[Held, Project]:
    held = await load_held(replica)
    hint = "`circle-node project list` shows the projects held here"
    return held, find_by_prefix(held.funding.projects, text, "project", hint)


# ---- Angels Den -------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """The business case of a pitch (money in integer minor units)."""

    costs: int
    currency: str
    benefits: str = ""
    roi: str = ""
    sustainability: str = ""


async def draft_pitch(
    replica: Replica, member: bytes, proposal_text: str, den_text: str, case: Case
) -> Draft:
    """A pitch for an agreed proposal, to the den circle ``den_text``."""
    cg, proposal = await find_proposal(replica, proposal_text)
    require_level(cg.log.full(), member, Level.WRITE, "a pitch")
    outcome = cg.outcome(proposal)
    if not outcome.agreed or outcome.decision is None:
        raise NodeError(
            f"proposal {proposal.id.hex()[:8]} is {outcome.state}: only an agreed proposal "
            "can be pitched"
        )
    den = await replica.resolve_circle(den_text)
    if den == cg.circle:
        raise NodeError("the den is the circle of social investors, not the proposal's own")
    held = await load_held(replica)
    for pitch in held.funding.pitches.values():
        if pitch.body.proposal == proposal.id and pitch.body.den == den:
            raise NodeError(f"this proposal is already pitched to that den: {pitch.entry.id.hex()}")
    record = PitchRec(
        proposal=proposal.id,
        version=outcome.version.hash,
        decision=outcome.decision.op_id,
        den=den,
        title=proposal.body.title,
        costs=check_money(case.costs, "--costs"),
        currency=check_currency(case.currency),
        benefits=case.benefits,
        roi=case.roi,
        sustainability=case.sustainability,
    )
    return draft(cg.circle, record, proposal=proposal.id.hex(), den=den.hex())


async def draft_pledge(
    replica: Replica,
    member: bytes,
    pitch_text: str,
    amount: int,
    currency: str | None,
    conditions: str = "",
) -> Draft:
    held, pitch = await find_pitch(replica, pitch_text)
    den = pitch.body.den
    state = held.states.get(den)
    if state is None:
        raise NodeError(f"this node does not hold the den circle {den.hex()[:8]}")
    require_level(state, member, Level.WRITE, "a pledge (social investors of the den)")
    code = check_currency(currency or pitch.body.currency)
    if code != pitch.body.currency:
        raise NodeError(
            f"the pitch is in {pitch.body.currency}: a {code} pledge would not count toward it"
        )
    record = PledgeRec(
        pitch=pitch.entry.id,
        amount=check_money(amount, "--amount"),
        currency=code,
        conditions=conditions,
    )
    return draft(den, record, pitch=pitch.entry.id.hex())


async def draft_pledge_move(replica: Replica, member: bytes, pledge_text: str, to: str) -> Draft:
    """Move a pledge on (only its pledger may): confirmed, fulfilled or withdrawn."""
    held = await load_held(replica)
    hint = "`circle-node pitch show PITCH` lists its pledges"
    pledge: Pledge = find_by_prefix(held.funding.pledges, pledge_text, "pledge", hint)
    if member != pledge.entry.member:
        raise NodeError("only the pledger moves their own pledge")
    if to not in PLEDGE_MOVES[pledge.state]:
        raise NodeError(
            f"pledge {pledge.entry.id.hex()[:8]} is {pledge.state}: it cannot become {to} "
            "(pledged -> confirmed -> fulfilled, or withdrawn before it is fulfilled)"
        )
    after = pledge.steps[-1].op_id if pledge.steps else None
    move = cast(PledgeMove, to)  # checked against PLEDGE_MOVES above
    record = PledgeStateRec(pledge=pledge.entry.id, state=move, after=after)
    return draft(pledge.entry.circle, record, pledge=pledge.entry.id.hex(), state=to)


def funding_cited(pitch: Pitch) -> list[bytes]:
    """The latest confirming step of each counted pledge in the pitch's currency."""
    return sorted(
        p.steps[-1].op_id
        for p in pitch.pledges
        if p.state in COUNTED and p.body.currency == pitch.body.currency and p.steps
    )


# ---- projects ---------------------------------------------------------------------------


def _seat(held: Held, text: str, circles: list[bytes]) -> Seat:
    """``MEMBER:CIRCLE:ASSURANCE`` (member by name or id prefix; circle by id prefix)."""
    parts = text.rsplit(":", 2)
    if len(parts) != 3 or parts[2] not in ASSURANCES:
        raise NodeError(
            f"--team {text!r}: use MEMBER:CIRCLE:ASSURANCE, ASSURANCE one of "
            + ", ".join(ASSURANCES)
        )
    who, where, assurance = (p.strip() for p in parts)
    matches = [c for c in circles if c.hex().startswith(where.lower())] if len(where) >= 4 else []
    if len(matches) != 1:
        raise NodeError(f"--team {text!r}: {where!r} names no single circle held here")
    members = held.states[matches[0]].current_members()
    found = [
        m
        for m, info in members.items()
        if info.name.casefold() == who.casefold()
        or (len(who) >= 6 and m.hex().startswith(who.lower()))
    ]
    if len(found) != 1:
        raise NodeError(f"--team {text!r}: {who!r} is not one member of that circle")
    role = cast(Assurance, assurance)  # checked against ASSURANCES above
    return Seat(member=found[0], circle=matches[0], assurance=role)


async def draft_project(
    replica: Replica, member: bytes, pitch_text: str, team: list[str], title: str | None
) -> Draft:
    held, pitch = await find_pitch(replica, pitch_text)
    circle = pitch.entry.circle
    require_level(held.states[circle], member, Level.WRITE, "starting a project")
    status = pitch.status()
    if not status.funded:
        raise NodeError(
            f"pitch {pitch.entry.id.hex()[:8]} is not funded: confirmed "
            f"{status.confirmed} of {status.costs} {status.currency}"
        )
    if pitch.projects:
        raise NodeError(f"this pitch is already a project: {pitch.projects[0].hex()}")
    seats = [_seat(held, text, sorted(held.states)) for text in team]
    problems = team_problems(seats, circle, pitch.body.den)
    if problems:
        raise NodeError("the team is not complete: " + "; ".join(problems))
    record = ProjectRec(
        pitch=pitch.entry.id,
        title=(title or pitch.body.title).strip()[:200] or "project",
        team=seats,
        funding=funding_cited(pitch),
    )
    return draft(circle, record, pitch=pitch.entry.id.hex())


async def _live_project(replica: Replica, member: bytes, text: str, action: str) -> Project:
    held, project = await find_project(replica, text)
    require_level(held.states[project.entry.circle], member, Level.WRITE, action)
    if not project.valid:
        raise NodeError("this project does not hold: " + "; ".join(project.problems))
    return project


async def draft_milestone(
    replica: Replica, member: bytes, project_text: str, title: str, due: str | None
) -> Draft:
    project = await _live_project(replica, member, project_text, "a milestone")
    if not title.strip():
        raise NodeError("the milestone's --title is empty")
    day = parse_day(due) if due else None
    record = MilestoneRec(project=project.entry.id, title=title.strip()[:200], due=day)
    return draft(project.entry.circle, record, project=project.entry.id.hex())


async def draft_milestone_set(
    replica: Replica, member: bytes, milestone_text: str, status: str
) -> Draft:
    held = await load_held(replica)
    hint = "`circle-node project show PROJECT` lists its milestones"
    milestone: Milestone = find_by_prefix(
        held.funding.milestones, milestone_text, "milestone", hint
    )
    circle = milestone.entry.circle
    require_level(held.states[circle], member, Level.WRITE, "a milestone status")
    if status not in MILESTONE_MOVES[milestone.status]:
        raise NodeError(
            f"milestone {milestone.entry.id.hex()[:8]} is {milestone.status}: it cannot "
            f"become {status} (done is final)"
        )
    after = milestone.steps[-1].op_id if milestone.steps else None
    record = MilestoneRec(
        project=milestone.body.project,
        status=cast(MilestoneStatus, status),  # checked against MILESTONE_MOVES above
        of=milestone.entry.id,
        after=after,
    )
    return draft(circle, record, milestone=milestone.entry.id.hex(), status=status)


async def draft_lesson(replica: Replica, member: bytes, project_text: str, text: str) -> Draft:
    project = await _live_project(replica, member, project_text, "a lesson")
    if not text.strip():
        raise NodeError("the lesson's --text is empty")
    record = LessonRec(project=project.entry.id, text=text)
    return draft(project.entry.circle, record, project=project.entry.id.hex())


async def draft_measure(
    replica: Replica,
    member: bytes,
    project_text: str,
    *,
    name: str,
    target: int,
    unit: str,
    direction: str = "up",
) -> Draft:
    project = await _live_project(replica, member, project_text, "a benefit measure")
    if not name.strip() or len(name) > 200:
        raise NodeError("the measure's --name must be 1..200 characters")
    record = MeasureRec(
        project=project.entry.id,
        name=name.strip(),
        target=target,
        unit=unit,
        direction=cast(Direction, direction),  # an unknown one fails the encode check
    )
    return draft(project.entry.circle, record, project=project.entry.id.hex())


async def draft_reading(
    replica: Replica, member: bytes, measure_text: str, value: int, on: str, note: str
) -> Draft:
    held = await load_held(replica)
    hint = "`circle-node project show PROJECT` lists its measures"
    measure = find_by_prefix(held.funding.measures, measure_text, "measure", hint)
    circle = measure.entry.circle
    require_level(held.states[circle], member, Level.WRITE, "a measure reading")
    record = ReadingRec(measure=measure.entry.id, value=value, on=parse_day(on), note=note)
    return draft(circle, record, measure=measure.entry.id.hex())


@dataclass(frozen=True)
class Shares:
    project: bytes
    svl: bytes
    drafts: list[Draft]  # none when there is nothing new to share


async def draft_shares(replica: Replica, member: bytes, project_text: str, svl_text: str) -> Shares:
    """Shares carrying every lesson, measure and reading the SVL circle has not received
    yet (several when they would not fit one op)."""
    held, project = await find_project(replica, project_text)
    if not project.valid:
        raise NodeError("this project does not hold: " + "; ".join(project.problems))
    svl = await replica.resolve_circle(svl_text)
    if svl == project.entry.circle:
        raise NodeError("share with the Social Value and Learning circle, not the project's own")
    require_level(held.states[svl], member, Level.WRITE, "sharing with the SVL circle")
    received = learning([s for s in held.funding.shares if s.circle == svl], held.funding)
    new = [
        SharedItem(op, encode(record))
        for op, record in sources_of(project).items()
        if op not in received or not received[op].holds
    ]
    title = project.body.title
    batches: list[list[SharedItem]] = [[]]
    size = 0
    for item in new:
        if batches[-1] and (size + len(item.body) > SHARE_BUDGET or len(batches[-1]) >= MAX_SHARED):
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += len(item.body) + 40
    drafts = [
        draft(
            svl,
            ShareRec(project=project.entry.id, circle=project.entry.circle, title=title, items=b),
            project=project.entry.id.hex(),
            items=len(b),
        )
        for b in batches
        if b
    ]
    return Shares(project.entry.id, svl, drafts)


# ---- views ------------------------------------------------------------------------------


def pitch_view(held: Held, pitch: Pitch) -> dict[str, Any]:
    pledges = [
        {
            "pledge": p.entry.id.hex(),
            "member": p.entry.member.hex(),
            "name": held.name(p.entry.member),
        }
        | plain(p.body, "t", "pitch")
        | {"state": p.state}
        for p in pitch.pledges
    ]
    head = {"pitch": pitch.entry.id.hex(), "circle": pitch.entry.circle.hex()}
    projects = [p.hex() for p in pitch.projects]
    return (
        head
        | plain(pitch.body, "t")
        | plain(pitch.status())
        | {"pledges": pledges, "projects": projects}
    )


def project_view(held: Held, project: Project) -> dict[str, Any]:
    def by(entry: FEntry) -> dict[str, Any]:
        return {"op": entry.op_id.hex(), "by": held.name(entry.member)}

    team = [plain(s) | {"name": held.name(s.member)} for s in project.body.team]
    milestones = [
        {"milestone": m.entry.id.hex()}
        | plain(m.body, "t", "project", "of", "after", "status")
        | {"status": m.status}
        for m in project.milestones
    ]
    measures = [
        {"measure": m.entry.id.hex()}
        | plain(m.body, "t", "project")
        | {"latest": m.latest.value if m.latest else None, "met": m.met}
        | {"readings": [by(e) | plain(e.record, "t", "measure") for e in m.readings]}
        for m in project.measures
    ]
    return {
        "project": project.entry.id.hex(),
        "circle": project.entry.circle.hex(),
        **plain(project.body, "t", "team"),
        "valid": project.valid,
        "problems": project.problems,
        "team": team,
        "milestones": milestones,
        "lessons": [by(e) | plain(e.record, "t", "project") for e in project.lessons],
        "measures": measures,
    }


async def learning_view(replica: Replica, svl_text: str) -> dict[str, Any]:
    """Lessons and measures (with readings) an SVL circle has received, in share order."""
    svl = await replica.resolve_circle(svl_text)
    held = await load_held(replica)
    received = learning([s for s in held.funding.shares if s.circle == svl], held.funding)
    rows = sorted(received.items(), key=lambda kv: (kv[1].share.op_id, kv[0]))
    lessons, measures = [], []
    readings: dict[bytes, list[dict[str, Any]]] = defaultdict(list)
    for op, item in rows:
        record = item.record
        row = {"op": op.hex(), "project": item.project.hex(), "holds": item.holds}
        row |= {"shared_by": held.name(item.share.member)} | plain(record, "t", "project")
        if isinstance(record, LessonRec):
            lessons.append(row)
        elif isinstance(record, ReadingRec):
            readings[record.measure].append(row)
    for op, item in rows:
        if isinstance(item.record, MeasureRec):
            m = item.record
            found = sorted(readings.get(op[:16], []), key=lambda r: (r["on"], r["op"]))
            latest = found[-1]["value"] if found else None
            met = latest is not None and target_met(latest, m.target, m.direction)
            row = {"op": op.hex(), "project": item.project.hex(), "holds": item.holds}
            measures.append(
                row | plain(m, "t", "project") | {"readings": found, "latest": latest, "met": met}
            )
    return {"circle": svl.hex(), "lessons": lessons, "measures": measures}
