"""Ideas, drivers, co-design notes, qualification, outline plans and join requests.

Record bodies (a msgspec tagged union, tag field ``t``; docs/ideas-and-funding.md):

- ``idea`` {text} and ``driver`` {what, need, why}: shared by anyone with read access;
- ``note`` {idea, text}: a co-design note on an idea (read access);
- ``qualify`` {idea, outcome, to, reason, after}: the circle's qualification (write);
- ``outline_plan`` {idea, scope, resources, cost_low, cost_high, currency, revises}:
  a technologists' outline plan (write), money in integer minor units;
- ``join_request`` {card, kind, message}: someone asks to join, by card (read access).

Invariants, all pure functions of the *set* of valid records (never of arrival order, never
of a clock):

- every reference is by id: an idea's id is the first 16 bytes of the op id that shared it;
  a record naming an idea of another circle, or one this circle does not have, is ignored;
- status changes form chains (:func:`follow`): each change names the change it follows
  (``after``, None for the first). From the current head, the change with the lowest op id
  among those that make an allowed transition is taken, then the walk goes on from it.
  Concurrent changes therefore resolve the same way on every replica, an invalid transition
  is ignored, and so is everything that follows it;
- a qualification moves an idea ``open -> accepted | passed_on | discarded``; a discarded
  idea may be reconsidered (``-> accepted | passed_on``); accepted and passed on are final.
  ``passed_on`` names the circle it is passed to; the other outcomes name none;
- an outline plan may revise an earlier plan of the same idea; the current plans are those
  no valid plan revises (normally one; concurrent revisions leave several, lowest op id first).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Generic, Literal, TypeVar

import msgspec

from node.domain.governance.codec import Codec
from node.domain.governance.records import Currency, Id16, Id32, Money, Short, Text, record_id

Filled = Annotated[str, msgspec.Meta(min_length=1, max_length=40_000)]
CardText = Annotated[str, msgspec.Meta(min_length=5, max_length=8_192)]
Outcome = Literal["accepted", "passed_on", "discarded"]
JoinKind = Literal["person", "investor", "innovator"]

QUALIFY_MOVES: Mapping[str, frozenset[str]] = {
    "open": frozenset({"accepted", "passed_on", "discarded"}),
    "discarded": frozenset({"accepted", "passed_on"}),
    "accepted": frozenset(),
    "passed_on": frozenset(),
}


class _Rec(msgspec.Struct, frozen=True, tag_field="t", forbid_unknown_fields=True):
    """Base of the ideas records."""


class IdeaRec(_Rec, frozen=True, tag="idea"):
    """An idea in free text."""

    text: Filled


class DriverRec(_Rec, frozen=True, tag="driver"):
    """An S3 driver statement: what is happening, what is needed, why it matters."""

    what: Filled
    need: Text = ""
    why: Text = ""


class NoteRec(_Rec, frozen=True, tag="note"):
    """A co-design note on an idea or driver."""

    idea: Id16
    text: Filled


class QualifyRec(_Rec, frozen=True, tag="qualify"):
    """The circle qualifies an idea: accepted as its driver, passed on, or discarded."""

    idea: Id16
    outcome: Outcome
    to: Id16 | None = None  # the circle it is passed on to
    reason: Short = ""
    after: Id32 | None = None  # the qualification this one follows

    def __post_init__(self) -> None:
        if (self.outcome == "passed_on") != (self.to is not None):
            raise ValueError("`to` names a circle exactly when the outcome is passed_on")


class OutlinePlanRec(_Rec, frozen=True, tag="outline_plan"):
    """Technologists' outline plan: scope, resource profile, cost estimate low..high."""

    idea: Id16
    scope: Filled
    resources: Text
    cost_low: Money
    cost_high: Money
    currency: Currency
    revises: Id32 | None = None  # the plan this one replaces

    def __post_init__(self) -> None:
        if self.cost_low > self.cost_high:
            raise ValueError("cost_low must not exceed cost_high")


class JoinRequestRec(_Rec, frozen=True, tag="join_request"):
    """Someone (by their member card) asks to join the circle."""

    card: CardText
    kind: JoinKind
    message: Short = ""


IdeasRecord = IdeaRec | DriverRec | NoteRec | QualifyRec | OutlinePlanRec | JoinRequestRec


CODEC: Codec[IdeasRecord] = Codec(IdeasRecord, "a valid ideas record")
encode, decode, try_decode = CODEC.encode, CODEC.decode, CODEC.try_decode


# ---- signed records and status chains (shared with funding) -----------------------------

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Entry(Generic[R]):
    """A valid record of a circle with who signed it (``member``: the member of the key)."""

    op_id: bytes
    circle: bytes
    author: bytes
    member: bytes
    seq: int
    ts: int
    record: R

    @property
    def id(self) -> bytes:
        return record_id(self.op_id)


@dataclass(frozen=True, slots=True)
class Step:
    """One status change: the op that made it, the change it follows, the new state."""

    op_id: bytes
    after: bytes | None
    state: str


def follow(
    start: str, steps: Iterable[Step], moves: Mapping[str, frozenset[str]]
) -> tuple[str, list[Step]]:
    """Walk the chain of changes from ``start``; returns the state and the steps taken."""
    children: dict[bytes | None, list[Step]] = defaultdict(list)
    for step in steps:
        children[step.after].append(step)
    state: str = start
    head: bytes | None = None
    taken: list[Step] = []
    seen: set[bytes] = set()
    while True:
        allowed = moves.get(state, frozenset())
        options = [s for s in children.get(head, []) if s.state in allowed and s.op_id not in seen]
        if not options:
            return state, taken
        step = min(options, key=lambda s: s.op_id)
        seen.add(step.op_id)
        taken.append(step)
        state, head = step.state, step.op_id


# ---- the fold ---------------------------------------------------------------------------


@dataclass
class Idea:
    """An idea or driver with its notes, qualification and plans."""

    entry: Entry[IdeasRecord]
    notes: list[Entry[IdeasRecord]] = field(default_factory=list)
    qualifications: list[Entry[IdeasRecord]] = field(default_factory=list)  # the valid chain
    plans: list[Entry[IdeasRecord]] = field(default_factory=list)  # every plan, by op id
    current_plans: list[Entry[IdeasRecord]] = field(default_factory=list)
    state: str = "open"

    @property
    def id(self) -> bytes:
        return self.entry.id

    @property
    def kind(self) -> str:
        return "driver" if isinstance(self.entry.record, DriverRec) else "idea"

    @property
    def qualification(self) -> QualifyRec | None:
        """The qualification in force, if any."""
        if not self.qualifications:
            return None
        record = self.qualifications[-1].record
        assert isinstance(record, QualifyRec)
        return record

    @property
    def plan(self) -> OutlinePlanRec | None:
        """The current outline plan (the lowest op id when concurrent revisions exist)."""
        if not self.current_plans:
            return None
        record = self.current_plans[0].record
        assert isinstance(record, OutlinePlanRec)
        return record

    def title(self, width: int = 80) -> str:
        record = self.entry.record
        text = record.what if isinstance(record, DriverRec) else getattr(record, "text", "")
        line = " ".join(str(text).split())
        return line if len(line) <= width else line[: width - 3] + "..."


class IdeaBook:
    """Every idea and join request of one circle, folded from its valid records."""

    def __init__(self, entries: Iterable[Entry[IdeasRecord]]) -> None:
        self.ideas: dict[bytes, Idea] = {}
        self.join_requests: dict[bytes, Entry[IdeasRecord]] = {}
        rest: list[Entry[IdeasRecord]] = []
        for entry in sorted(entries, key=lambda e: e.op_id):
            if isinstance(entry.record, IdeaRec | DriverRec):
                self.ideas[entry.id] = Idea(entry)
            elif isinstance(entry.record, JoinRequestRec):
                self.join_requests[entry.id] = entry
            else:
                rest.append(entry)
        qualifications: dict[bytes, list[Entry[IdeasRecord]]] = defaultdict(list)
        for entry in rest:
            idea = self.ideas.get(getattr(entry.record, "idea", b""))
            if idea is None or idea.entry.circle != entry.circle:
                continue  # an unknown idea, or one of another circle
            if isinstance(entry.record, NoteRec):
                idea.notes.append(entry)
            elif isinstance(entry.record, QualifyRec):
                qualifications[idea.id].append(entry)
            elif isinstance(entry.record, OutlinePlanRec):
                idea.plans.append(entry)
        for idea in self.ideas.values():
            _qualify(idea, qualifications.get(idea.id, []))
            idea.current_plans = current_plans(idea.plans)

    def by_state(self, state: str) -> list[Idea]:
        return [i for i in self.ideas.values() if i.state == state]


def _qualify(idea: Idea, entries: list[Entry[IdeasRecord]]) -> None:
    by_op = {e.op_id: e for e in entries}
    steps = []
    for entry in entries:
        record = entry.record
        assert isinstance(record, QualifyRec)
        steps.append(Step(entry.op_id, record.after, record.outcome))
    idea.state, taken = follow("open", steps, QUALIFY_MOVES)
    idea.qualifications = [by_op[s.op_id] for s in taken]


def current_plans(plans: list[Entry[IdeasRecord]]) -> list[Entry[IdeasRecord]]:
    """Plans that no other plan of the same idea revises, lowest op id first."""
    ops = {p.op_id for p in plans}
    revised = {
        p.record.revises
        for p in plans
        if isinstance(p.record, OutlinePlanRec) and p.record.revises in ops
    }
    return sorted((p for p in plans if p.op_id not in revised), key=lambda p: p.op_id)


def join_status(proposal_states: Iterable[str], admitted: bool) -> str:
    """Where a join request stands: ``admitted``, ``agreed`` (awaiting the manager's auth
    op), ``proposed`` (a consent round is open), ``declined`` (every proposal withdrawn or
    deferred), else ``open``."""
    if admitted:
        return "admitted"
    states = list(proposal_states)
    if "agreed" in states:
        return "agreed"
    if any(s not in ("withdrawn", "deferred") for s in states):
        return "proposed"
    return "declined" if states else "open"
