"""What the ideas and the join-requests screens show, read from a replica into plain values,
by the folds ``circle-node idea list/show`` and ``join list`` print (:mod:`node.ideas`)."""

from __future__ import annotations

from dataclasses import dataclass

from node.domain.auth import Level
from node.domain.governance.ideas import DriverRec, Idea, IdeaRec, NoteRec, OutlinePlanRec
from node.ideas import Ideas, join_requests, load_ideas, name_of
from node.replica import Replica
from node.tui.data import circle_name


@dataclass(frozen=True, slots=True)
class PlanItem:
    scope: str
    resources: str
    cost_low: int
    cost_high: int
    currency: str
    by: str


@dataclass(frozen=True)
class IdeaItem:
    idea: bytes
    kind: str  # idea or driver
    title: str
    state: str  # open, accepted, passed_on, discarded
    author: str
    body: list[tuple[str, str]]  # (label, text): the idea's text, or what / need / why
    reason: str  # the qualification's reason
    notes: list[tuple[str, str]]  # (by, text)
    plan: PlanItem | None  # the current outline plan
    plans: int  # every plan, revisions included


@dataclass(frozen=True)
class IdeasData:
    circle: bytes
    circle_name: str
    my_level: Level | None
    ideas: list[IdeaItem]  # open first, then by title


def idea_item(ideas: Ideas, idea: Idea) -> IdeaItem:
    state = ideas.state
    record = idea.entry.record
    body: list[tuple[str, str]] = []
    if isinstance(record, DriverRec):
        body = [("What", record.what), ("Need", record.need), ("Why", record.why)]
        body = [(label, text) for label, text in body if text.strip()]
    elif isinstance(record, IdeaRec):
        body = [("Idea", record.text)]
    notes = [
        (name_of(state, e.member), e.record.text)
        for e in idea.notes
        if isinstance(e.record, NoteRec)
    ]
    plan = None
    if idea.current_plans:
        entry = idea.current_plans[0]
        found = entry.record
        if isinstance(found, OutlinePlanRec):
            plan = PlanItem(
                found.scope,
                found.resources,
                found.cost_low,
                found.cost_high,
                found.currency,
                name_of(state, entry.member),
            )
    qualification = idea.qualification
    return IdeaItem(
        idea=idea.id,
        kind=idea.kind,
        title=idea.title(200),
        state=idea.state,
        author=name_of(state, idea.entry.member),
        body=body,
        reason=qualification.reason if qualification else "",
        notes=notes,
        plan=plan,
        plans=len(idea.plans),
    )


async def load_ideas_data(replica: Replica, circle: bytes, me: bytes) -> IdeasData:
    """A circle's ideas and drivers with their notes and current outline plans."""
    await replica.refresh()
    ideas = await load_ideas(replica, circle)
    items = [idea_item(ideas, idea) for idea in ideas.book.ideas.values()]
    items.sort(key=lambda i: (i.state != "open", i.title.casefold(), i.idea))
    mine = ideas.state.current_members().get(me)
    return IdeasData(circle, circle_name(ideas.state), mine.level if mine else None, items)


# ---- join requests ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinItem:
    request: bytes
    name: str  # from the card; "(card does not verify)" when it does not
    member: str  # the card's member id, short
    kind: str  # person, investor, innovator
    message: str
    recorded_by: str
    status: str  # requested, proposed, agreed, admitted, declined... or invalid_card
    proposals: list[tuple[bytes, str]]  # (proposal id, its state)


@dataclass(frozen=True)
class JoinsData:
    circle: bytes
    circle_name: str
    my_level: Level | None
    requests: list[JoinItem]  # those still open first, then by name


CLOSED = ("admitted", "invalid_card")


async def load_joins(replica: Replica, circle: bytes, me: bytes) -> JoinsData:
    """The join requests recorded in a circle, each with the proposals that decide it."""
    await replica.refresh()
    state = await replica.auth_state(circle)
    items = []
    for request in await join_requests(replica, circle):
        card = request.card
        items.append(
            JoinItem(
                request=request.entry.id,
                name=card.name if card else "(card does not verify)",
                member=card.member_id[:8] if card else "-",
                kind=request.body.kind,
                message=request.body.message,
                recorded_by=name_of(state, request.entry.member),
                status=request.status if card else "invalid_card",
                proposals=sorted(request.proposals.items()),
            )
        )
    items.sort(key=lambda j: (j.status in CLOSED, j.name.casefold(), j.request))
    mine = state.current_members().get(me)
    return JoinsData(circle, circle_name(state), mine.level if mine else None, items)
