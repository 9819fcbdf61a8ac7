"""Fixtures of the export tests: an organisation with every kind of record an export shows."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from helpers import HOME

from node import elections as svc
from node.crypto.keys import KeyPair
from node.domain.auth import Level
from node.domain.governance.records import ProposalRec
from node.funding import (
    Case,
    draft_measure,
    draft_pitch,
    draft_pledge,
    draft_pledge_move,
    draft_project,
    draft_reading,
)
from node.governance import amend, create_proposal, find_proposal, take_position
from node.ideas import commit
from node.local import add_member, create_circle
from node.replica import Replica

TODAY = "2026-11-28"


@dataclass
class Org:
    replica: Replica
    garden: bytes
    den: bytes
    alice: KeyPair
    bob: KeyPair
    carol: KeyPair
    proposal: bytes  # agreed on version 1, after bob's objection to version 0
    versions: tuple[bytes, bytes]
    decision: bytes
    election: bytes
    pitch: bytes
    pledge: bytes
    project: bytes
    measure: bytes


async def _decided(replica: Replica, alice: KeyPair, bob: KeyPair, carol: KeyPair, garden: bytes
) -> tuple[bytes, tuple[bytes, bytes], bytes]:  # fmt: skip
    body = ProposalRec(title="Watering", driver="the beds dry out", text="water daily")
    pid, first = await create_proposal(replica, alice, garden, body)
    await take_position(replica, alice, pid.hex(), "consent", "")
    await take_position(replica, bob, pid.hex(), "objection", "wastes water")
    _pid, second = await amend(replica, alice, "water every other day", pid.hex())
    for key, position, reason in (
        (alice, "consent", ""),
        (bob, "consent", ""),
        (carol, "concern", "the hose | is short\nby a metre"),
    ):
        outcome = await take_position(replica, key, pid.hex(), position, reason)
    assert outcome.agreed
    assert outcome.decision is not None
    return pid, (first, second), outcome.decision.op_id


async def _elected(replica: Replica, keys: list[KeyPair], garden: bytes) -> bytes:
    alice, bob, carol = keys
    eid, _pid, _v = await svc.start_election(
        replica, alice, garden, "representative", "2027-06-30", TODAY
    )
    for key in keys:
        await svc.election_position(replica, key, eid.hex(), "consent", "")
    await svc.nominate(replica, alice, eid.hex(), "bob", "listens to everyone")
    await svc.propose(replica, carol, eid.hex(), "bob")
    for key in keys:
        await svc.election_position(replica, key, eid.hex(), "consent", "")
    return eid


async def _funded(org_keys: tuple[KeyPair, KeyPair], replica: Replica, pid: bytes,
                  garden: bytes, den: bytes) -> tuple[bytes, bytes, bytes, bytes]:  # fmt: skip
    alice, bob = org_keys
    case = Case(100_000, "GBP", "fresh food", "3:1", "plot fees")
    pitch_draft = await draft_pitch(replica, alice.public, pid.hex(), den.hex(), case)
    pitch = (await commit(replica, alice, pitch_draft))[:16]
    pledge_draft = await draft_pledge(replica, bob.public, pitch.hex(), 100_000, "GBP", "match")
    pledge = (await commit(replica, bob, pledge_draft))[:16]
    await commit(
        replica, bob, await draft_pledge_move(replica, bob.public, pledge.hex(), "confirmed")
    )
    team = [f"alice:{garden.hex()[:8]}:requirements", f"bob:{den.hex()[:8]}:investment_benefits"]
    project_draft = await draft_project(replica, alice.public, pitch.hex(), team, None)
    project = (await commit(replica, alice, project_draft))[:16]
    measure_draft = await draft_measure(
        replica, alice.public, project.hex(), name="families fed", target=40, unit="families"
    )
    measure = (await commit(replica, alice, measure_draft))[:16]
    reading = await draft_reading(replica, alice.public, measure.hex(), 41, "2031-09-01", "harvest")
    await commit(replica, alice, reading)
    return pitch, pledge, project, measure


@pytest.fixture
async def org(replica: Replica) -> Org:
    """Garden (alice manages; bob, carol write) and Den (alice manages, bob writes): a
    proposal agreed on its second version, an election of bob, a funded pitch with bob's
    pledge, and a project with a measure read once."""
    alice, bob, carol = (KeyPair.generate() for _ in range(3))
    garden = await create_circle(replica, alice, name="Garden", creator_name="alice", home=HOME)
    den = await create_circle(replica, alice, name="Den", creator_name="alice", home=HOME)
    for circle, key, name in ((garden, bob, "bob"), (garden, carol, "carol"), (den, bob, "bob")):
        await add_member(
            replica, alice, circle, member=key.public, name=name, level=Level.WRITE, home=HOME
        )
    pid, versions, decision = await _decided(replica, alice, bob, carol, garden)
    election = await _elected(replica, [alice, bob, carol], garden)
    pitch, pledge, project, measure = await _funded((alice, bob), replica, pid, garden, den)
    _cg, proposal = await find_proposal(replica, pid.hex())
    assert proposal.current().hash == versions[1]
    return Org(replica, garden, den, alice, bob, carol, pid, versions, decision, election,
               pitch, pledge, project, measure)  # fmt: skip
