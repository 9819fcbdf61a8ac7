"""What the elections screen shows, read from a replica into plain values.

The same folds ``circle-node role list`` and ``election show`` print
(:mod:`node.elections`, :mod:`node.commands.election_views`): only valid records count,
and a term holds through its end day, judged on ``today`` (a parameter, never the clock
here, so a test can fix it).
"""

from __future__ import annotations

from dataclasses import dataclass

from node.domain.auth import Level
from node.domain.governance.consent import Proposal
from node.domain.governance.elections import Election, Round, parse_keeper_subject
from node.domain.governance.records import PositionRec
from node.elections import CircleRoles, election_proposal, load_roles
from node.replica import Replica
from node.tui.proposal_data import PositionItem, positions

PHASE_HINTS = {
    "term": "consent to the role and term first (c / o / x)",
    "nominating": "nominate with reason (n), change (g), propose a nominee (p)",
    "consent": "consent round on the nominee (c / o / x)",
    "elected": "the keeper is selected",
    "failed": "this election ended without a keeper",
}


@dataclass(frozen=True, slots=True)
class RoleItem:
    name: str
    domain: str
    keeper: str | None  # the current keeper's name
    term_end: str | None
    holds: bool  # the keeper's term holds on ``today``


@dataclass(frozen=True, slots=True)
class ChoiceItem:
    """A member's nomination (or change) in a round; ``nominee`` None is a pass."""

    name: str
    nominee: str | None
    reason: str


@dataclass(frozen=True)
class ConsentItem:
    """A term or keeper proposal: its state and every required member's position."""

    proposal: bytes
    title: str
    state: str
    nominee: str | None  # a keeper proposal's nominee
    nominee_position: str | None
    positions: list[PositionItem]


@dataclass(frozen=True)
class RoundItem:
    number: int
    stage: str  # nominations, changes, proposed, failed
    nominations: list[ChoiceItem]
    changes: list[ChoiceItem]
    tally: list[tuple[str, int]]  # nominee name, standing nominations
    passes: int
    proposals: list[ConsentItem]
    failed: str | None  # the reason the round failed


@dataclass(frozen=True)
class ElectionItem:
    election: bytes
    role: str
    term_end: str | None
    phase: str  # term, nominating, consent, elected, failed
    round: int
    term: ConsentItem | None
    rounds: list[RoundItem]
    keeper: str | None  # the result's keeper, once elected
    open_proposal: bytes | None  # what c / o / x take a position on now

    @property
    def hint(self) -> str:
        return PHASE_HINTS.get(self.phase, "")


@dataclass(frozen=True)
class ElectionsData:
    circle: bytes
    circle_name: str
    today: str
    my_level: Level | None
    roles: list[RoleItem]
    elections: list[ElectionItem]  # open ones first, then newest first
    members: list[str]  # names of write members: who can be nominated


def consent_item(cr: CircleRoles, proposal: Proposal) -> ConsentItem:
    outcome = cr.cg.outcome(proposal)
    subject = parse_keeper_subject(proposal.body.subject)
    nominee = subject.keeper if subject else None
    held = outcome.positions.get(nominee) if nominee else None
    record = held.record if held else None
    return ConsentItem(
        proposal=proposal.id,
        title=proposal.body.title,
        state=outcome.state,
        nominee=cr.name_of(nominee) if nominee else None,
        nominee_position=record.position if isinstance(record, PositionRec) else None,
        positions=positions(cr.cg, outcome),
    )


def round_item(cr: CircleRoles, found: Round) -> RoundItem:
    def choices(items: dict[bytes, object]) -> list[ChoiceItem]:
        out = []
        for member, stamped in items.items():
            record = getattr(stamped, "record", None)
            nominee = getattr(record, "nominee", None)
            reason = str(getattr(record, "reason", ""))
            out.append(
                ChoiceItem(cr.name_of(member), cr.name_of(nominee) if nominee else None, reason)
            )
        return sorted(out, key=lambda c: c.name.casefold())

    failure = found.failure
    return RoundItem(
        number=found.number,
        stage=found.stage,
        nominations=choices(dict(found.nominations)),
        changes=choices(dict(found.changes)),
        tally=[(cr.name_of(n), count) for n, count in found.tally()],
        passes=sum(1 for c in found.choices().values() if c is None),
        proposals=[consent_item(cr, p) for p in found.proposals],
        failed=failure.record.reason if failure else None,
    )


def election_item(cr: CircleRoles, election: Election) -> ElectionItem:
    elections = cr.elections
    election.round(election.current_round)  # the open round shows even when empty
    term = elections.term_proposal(election)
    result = elections.valid_result(election)
    open_now = election_proposal(cr, election)
    return ElectionItem(
        election=election.id,
        role=election.record.role,
        term_end=election.record.term_end,
        phase=elections.phase(election),
        round=election.current_round,
        term=consent_item(cr, term) if term else None,
        rounds=[round_item(cr, r) for _, r in sorted(election.rounds.items())],
        keeper=cr.name_of(result.record.keeper) if result else None,
        open_proposal=open_now.id if open_now else None,
    )


def elections_data(cr: CircleRoles, me: bytes, today: str) -> ElectionsData:
    state = cr.cg.log.full()
    roles = []
    for name, role in sorted(cr.roles().items()):
        current = role.current()
        record = current.record if current else None
        roles.append(
            RoleItem(
                name=name,
                domain=role.domain,
                keeper=cr.name_of(record.keeper) if record else None,
                term_end=record.term_end if record else None,
                holds=role.keeper_on(today) is not None,
            )
        )
    items = [election_item(cr, e) for e in cr.elections.elections.values()]
    ts = {e.id: e.ts for e in cr.elections.elections.values()}
    items.sort(key=lambda e: (e.phase in ("elected", "failed"), -ts[e.election], e.election))
    mine = state.current_members().get(me)
    writers = sorted(
        info.name for info in state.current_members().values() if info.level >= Level.WRITE
    )
    return ElectionsData(
        cr.circle, cr.circle_name, today, mine.level if mine else None, roles, items, writers
    )


async def load_elections(replica: Replica, circle: bytes, me: bytes, today: str) -> ElectionsData:
    """A circle's roles with their keepers, and every election with its rounds."""
    await replica.refresh()
    return elections_data(await load_roles(replica, circle), me, today)
