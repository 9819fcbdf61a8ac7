"""What the proposal screen shows, read from a replica into plain values.

Every write member's position is the one that counts on the version the outcome is about
(the agreed version once agreed, else the current one): the same rules
``circle-node proposal show`` prints, from :mod:`node.governance`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from node.domain.governance.consent import (
    OPEN_STATES,
    Outcome,
    Proposal,
    Version,
    latest_positions,
)
from node.domain.governance.logbook import day_of
from node.domain.governance.records import PositionRec
from node.errors import NotFound
from node.governance import CircleGovernance, load
from node.replica import Replica
from node.tui.data import circle_name, short


@dataclass(frozen=True, slots=True)
class PositionItem:
    """One member's standing on the version: consent, concern, objection or waiting."""

    member: bytes
    name: str
    position: str  # "consent", "concern", "objection" or "waiting"
    reason: str
    counts: bool  # False for a member the quorum does not include (read level, removed)
    blocking: bool  # an objection still open


@dataclass(frozen=True)
class ProposalData:
    circle: bytes
    circle_name: str
    proposal: bytes
    title: str
    author: str
    created: str
    driver: str
    text: str  # of the version the outcome is about
    version_number: int
    versions: int
    diff: list[str]  # unified diff from the previous version; empty for version 0
    review: str  # the review tuner: a date, a frequency, or "-"
    criteria: list[str]
    stage: str
    deadline: str | None
    state: str
    positions: list[PositionItem]
    earlier: list[tuple[int, PositionItem]]  # (version number, position) on other versions
    open_objections: list[bytes]  # op ids, for an amendment to resolve
    decision: bytes | None
    verified: bool  # a decision record exists and holds
    problems: list[str]  # decision records that do not hold, and why
    my_position: str | None
    can_take_part: bool  # the unlocked member is required and the round is open

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


def version_diff(proposal: Proposal, version: Version) -> list[str]:
    """A unified diff of ``version`` against the version it amends."""
    if version.base is None or version.base not in proposal.versions:
        return []
    base = proposal.versions[version.base]
    return list(
        difflib.unified_diff(
            base.text.splitlines(),
            version.text.splitlines(),
            fromfile=f"version {base.number}",
            tofile=f"version {version.number}",
            lineterm="",
        )
    )


def review_tuner(proposal: Proposal) -> str:
    body = proposal.body
    if body.review_date is not None:
        return body.review_date
    if body.review_every_days is not None:
        return f"every {body.review_every_days} days"
    return "-"


def positions(cg: CircleGovernance, outcome: Outcome) -> list[PositionItem]:
    """Every required member (write level) by name, then anyone else whose position was
    recorded but does not count."""
    blocking = {s.op_id for s in outcome.open_objections}
    items = []
    for member in outcome.required:
        signed = outcome.positions.get(member)
        record = signed.record if signed else None
        if signed is None or not isinstance(record, PositionRec):
            items.append(PositionItem(member, cg.member_name(member), "waiting", "", True, False))
            continue
        is_blocking = signed.op_id in blocking
        name = cg.member_name(member)
        items.append(PositionItem(member, name, record.position, record.reason, True, is_blocking))
    items.sort(key=lambda p: (p.name.casefold(), p.member))
    for signed in outcome.ignored:
        record = signed.record
        if isinstance(record, PositionRec):
            name = cg.member_name(signed.member)
            items.append(
                PositionItem(signed.member, name, record.position, record.reason, False, False)
            )
    return items


def earlier_positions(
    cg: CircleGovernance, proposal: Proposal, version: Version
) -> list[tuple[int, PositionItem]]:
    """Each member's latest position on every other version (they no longer count)."""
    found = []
    for other in proposal.ordered_versions():
        if other.hash == version.hash:
            continue
        for member, signed in latest_positions(proposal.positions, other.hash).items():
            record = signed.record
            if isinstance(record, PositionRec):
                name = cg.member_name(member)
                item = PositionItem(member, name, record.position, record.reason, False, False)
                found.append((other.number, item))
    found.sort(key=lambda pair: (pair[0], pair[1].name.casefold()))
    return found


def proposal_data(cg: CircleGovernance, proposal: Proposal, me: bytes) -> ProposalData:
    outcome = cg.outcome(proposal)
    version = outcome.version
    stage = proposal.latest_stage()
    decision = outcome.decision
    mine = outcome.positions.get(me)
    my_record = mine.record if mine else None
    return ProposalData(
        circle=cg.circle,
        circle_name=circle_name(cg.log.full()),
        proposal=proposal.id,
        title=proposal.body.title,
        author=cg.member_name(proposal.author),
        created=day_of(proposal.ts),
        driver=proposal.body.driver,
        text=version.text,
        version_number=version.number,
        versions=len(proposal.versions),
        diff=version_diff(proposal, version),
        review=review_tuner(proposal),
        criteria=list(proposal.body.criteria),
        stage=stage.stage if stage else "draft",
        deadline=stage.deadline if stage else None,
        state=outcome.state,
        positions=positions(cg, outcome),
        earlier=earlier_positions(cg, proposal, version),
        open_objections=[s.op_id for s in outcome.open_objections],
        decision=decision.op_id if decision else None,
        verified=decision is not None and cg.decision_problem(decision) is None,
        problems=[
            f"decision {short(d.op_id)} does not hold: {why}"
            for d in proposal.decisions
            if (why := cg.decision_problem(d)) is not None
        ],
        my_position=my_record.position if isinstance(my_record, PositionRec) else None,
        can_take_part=outcome.state in OPEN_STATES and me in outcome.required,
    )


async def load_proposal(
    replica: Replica, circle: bytes, proposal: bytes, me: bytes
) -> ProposalData:
    """One proposal of one circle; NotFound if the circle does not hold it."""
    await replica.refresh()
    cg = await load(replica, circle)
    found = cg.gov.proposals.get(proposal)
    if found is None:
        raise NotFound(f"circle {short(circle)} holds no proposal {short(proposal)}")
    return proposal_data(cg, found, me)
