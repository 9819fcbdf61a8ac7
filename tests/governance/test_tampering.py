"""Hostile histories on a real replica: copied, replayed, forged and edited positions, and
decision records that do not hold, each refused at ingest or flagged by ``verify``."""

from __future__ import annotations

import msgspec
from gov_world import World
from helpers import resign

from node.crypto.keys import KeyPair
from node.crypto.ops import encode_wire
from node.domain.governance.records import DecisionRec, PositionRec, record_id
from node.governance import amend, find_proposal, load, take_position
from node.ingest import ingest_ops
from node.verify import verify_store


async def _current(world: World, pid: bytes) -> bytes:
    _cg, proposal = await find_proposal(world.replica, pid.hex())
    return proposal.current().hash


async def _position_op(world: World, key: KeyPair, pid: bytes, kind: str = "consent") -> bytes:
    await take_position(world.replica, key, pid.hex(), kind, "harm" if kind == "objection" else "")
    cg, proposal = await find_proposal(world.replica, pid.hex())
    member_positions = [s for s in proposal.positions if s.author == key.public]
    return max(member_positions, key=lambda s: s.seq).op_id


async def _decision_problems(world: World) -> list[dict[str, str]]:
    report = await verify_store(world.replica)
    return [p for p in report.problems if p["problem"] == "decision_does_not_hold"]


async def test_a_position_copied_to_another_proposal_does_not_count(world: World) -> None:
    """A decision on proposal B citing Bob's consent to proposal A does not hold."""
    first = await world.propose()
    second = await world.propose("a different text")
    bobs = await _position_op(world, world.bob, first)
    mine = [await _position_op(world, k, second) for k in (world.alice, world.carol)]
    version = await _current(world, second)
    record = DecisionRec(proposal=second, version=version, positions=sorted([bobs, *mine]))
    op, report = await world.craft(world.alice, record)
    assert report.added == 1
    cg, proposal = await find_proposal(world.replica, second.hex())
    assert cg.outcome(proposal).state == "consent_round"
    problems = await _decision_problems(world)
    assert [p["op"] for p in problems] == [op.op_id.hex()]
    assert "another proposal or version" in problems[0]["detail"]


async def test_a_position_edited_to_another_version_is_rejected(world: World) -> None:
    """Bob's signed position with its body changed to name another version: invalid."""
    pid = await world.propose()
    body = PositionRec(proposal=pid, version=await _current(world, pid), position="consent")
    op, report = await world.craft(world.bob, body)
    assert report.added == 1
    edited = msgspec.msgpack.encode(
        {"t": "position", "proposal": pid, "version": bytes(32), "position": "consent"}
    )
    hostile = await ingest_ops(world.replica, [encode_wire(op.header_bytes, op.sig, edited)])
    assert hostile.added == 0
    assert hostile.rejected == 1


async def test_a_position_on_an_old_version_does_not_count(world: World) -> None:
    """After an amendment Bob's earlier consent is not counted; he is missing again."""
    pid = await world.propose()
    await _position_op(world, world.bob, pid)
    await amend(world.replica, world.alice, "water every other day", pid.hex())
    cg, proposal = await find_proposal(world.replica, pid.hex())
    outcome = cg.outcome(proposal)
    assert world.bob.public in outcome.missing
    assert outcome.positions == {}


async def test_a_replayed_position_is_a_duplicate(world: World) -> None:
    """Ingesting Bob's position op again changes nothing: it is counted as a duplicate."""
    pid = await world.propose()
    body = PositionRec(proposal=pid, version=await _current(world, pid), position="consent")
    op, _ = await world.craft(world.bob, body)
    again = await ingest_ops(world.replica, [op.wire()])
    assert (again.duplicates, again.added, again.rejected) == (1, 0, 0)
    _cg, proposal = await find_proposal(world.replica, pid.hex())
    assert [s.op_id for s in proposal.positions] == [op.op_id]


async def test_a_forged_position_is_rejected(world: World) -> None:
    """Bob's header signed by Mallory's key does not verify: nothing is stored."""
    pid = await world.propose()
    body = PositionRec(proposal=pid, version=await _current(world, pid), position="consent")
    op, _ = await world.craft(world.bob, body)
    forged_header = op  # same header bytes, signed by someone else
    report = await ingest_ops(world.replica, [resign(forged_header, KeyPair.generate())])
    assert report.rejected == 1
    assert report.problems[0]["reason"] == "bad_signature"


async def test_a_decision_that_lists_too_few_consents_is_flagged_by_verify(world: World) -> None:
    """Alice signs a decision listing only her own consent: verify names it, and the
    proposal is not agreed."""
    pid = await world.propose()
    alone = await _position_op(world, world.alice, pid)
    version = await _current(world, pid)
    op, report = await world.craft(
        world.alice, DecisionRec(proposal=pid, version=version, positions=[alone])
    )
    assert report.added == 1
    problems = await _decision_problems(world)
    assert [p["op"] for p in problems] == [op.op_id.hex()]
    assert problems[0]["circle"] == world.circle.hex()
    assert "did not consent" in problems[0]["detail"]
    cg, proposal = await find_proposal(world.replica, pid.hex())
    assert not cg.outcome(proposal).agreed


async def test_a_decision_listing_an_open_objection_is_flagged(world: World) -> None:
    """All three positions listed, but Bob's is an objection nobody tested: flagged."""
    pid = await world.propose()
    listed = [
        await _position_op(world, world.alice, pid),
        await _position_op(world, world.carol, pid),
        await _position_op(world, world.bob, pid, "objection"),
    ]
    version = await _current(world, pid)
    op, _ = await world.craft(
        world.alice, DecisionRec(proposal=pid, version=version, positions=sorted(listed))
    )
    problems = await _decision_problems(world)
    assert [p["op"] for p in problems] == [op.op_id.hex()]
    assert "not tested away" in problems[0]["detail"]


async def test_a_decision_citing_stale_deps_is_flagged(world: World) -> None:
    """A decision citing only the genesis (before Bob and Carol joined) still needs them:
    its quorum is judged over the deps of the proposal and positions it rests on."""
    pid = await world.propose()
    alone = await _position_op(world, world.alice, pid)
    version = await _current(world, pid)
    record = DecisionRec(proposal=pid, version=version, positions=[alone])
    op, report = await world.craft(world.alice, record, deps=[world.genesis])
    assert report.added == 1  # alice was a manager as of the genesis: the op is authorized
    problems = await _decision_problems(world)
    assert [p["op"] for p in problems] == [op.op_id.hex()]
    assert "2 required member(s)" in problems[0]["detail"]


async def test_a_read_level_members_position_is_refused_at_ingest(world: World) -> None:
    """Rita (read level) cannot take a position: the pipeline refuses it as restricted."""
    pid = await world.propose()
    body = PositionRec(proposal=pid, version=await _current(world, pid), position="objection")
    _op, report = await world.craft(world.rita, body)
    assert (report.added, report.rejected) == (0, 1)
    assert report.problems[0]["reason"] == "restricted"
    cg = await load(world.replica, world.circle)
    assert cg.gov.proposals[pid].positions == []


async def test_an_honest_decision_verifies(world: World) -> None:
    """Three consents through take_position: one decision record, and verify is clean."""
    pid = await world.propose()
    for key in (world.alice, world.bob, world.carol):
        await _position_op(world, key, pid)
    cg, proposal = await find_proposal(world.replica, pid.hex())
    outcome = cg.outcome(proposal)
    assert outcome.agreed
    assert outcome.decision is not None
    assert cg.decision_problem(outcome.decision) is None
    assert record_id(proposal.op_id) == pid
    report = await verify_store(world.replica)
    assert report.ok, report.problems
