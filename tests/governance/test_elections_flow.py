"""Role selection and double linking as the seed organisation lives them, on real replicas.

The Hall is the top circle (alice manages, dave writes); the Garden is its child (alice
manages, bob and carol write). The Garden elects its representative, who then sits in
the Hall; a node that holds only the Hall checks that seat from the mandate's evidence
alone, and the seat ends at term end or when a new representative is elected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import HOME, ingest, resign, stored_wires

from node import elections as svc
from node import linking
from node.crypto.keys import KeyPair
from node.crypto.ops import OpKind, decode_op, encode_wire
from node.domain.auth import Level
from node.domain.governance.elections import KeeperSubject, ResultRec, keeper_subject
from node.domain.governance.records import (
    DecisionRec,
    PositionRec,
    ProposalRec,
    try_decode,
    version_hash,
)
from node.domain.governance.roles import MandateRec, Problem, Seat
from node.errors import NodeError
from node.governance import create_proposal, sign, take_position
from node.local import add_member, create_circle
from node.replica import Replica

TODAY = "2026-11-28"
TERM_END = "2027-06-30"
AFTER_TERM = "2027-07-01"


@dataclass
class Org:
    replica: Replica
    hall: bytes
    garden: bytes
    alice: KeyPair
    bob: KeyPair
    carol: KeyPair
    dave: KeyPair

    @property
    def garden_writers(self) -> list[KeyPair]:
        return [self.alice, self.bob, self.carol]


@pytest.fixture
async def org(replica: Replica) -> Org:
    """The Hall and its child the Garden, on one node."""
    alice, bob, carol, dave = (KeyPair.generate() for _ in range(4))
    hall = await create_circle(replica, alice, name="Hall", creator_name="alice", home=HOME)
    await add_member(
        replica, alice, hall, member=dave.public, name="dave", level=Level.WRITE, home=HOME
    )
    garden = await create_circle(
        replica, alice, name="Garden", creator_name="alice", home=HOME, parent=hall
    )
    for key, name in ((bob, "bob"), (carol, "carol")):
        await add_member(
            replica, alice, garden, member=key.public, name=name, level=Level.WRITE, home=HOME
        )
    return Org(replica, hall, garden, alice, bob, carol, dave)


async def elect(
    org: Org, nominee: str, term_end: str = TERM_END, today: str = TODAY
) -> tuple[bytes, bytes]:
    """A whole election in the Garden, as its members would hold it: ``(election, result)``."""
    replica = org.replica
    eid, _pid, _v = await svc.start_election(
        replica, org.alice, org.garden, "representative", term_end, today
    )
    for key in org.garden_writers:  # role and term first
        await svc.election_position(replica, key, eid.hex(), "consent", "")
    await svc.nominate(replica, org.alice, eid.hex(), nominee, "listens to everyone")
    await svc.nominate(replica, org.bob, eid.hex(), None, "no view yet")
    await svc.nominate(replica, org.bob, eid.hex(), nominee, "heard the reasons", change=True)
    pid, _version, _who, _round = await svc.propose(replica, org.carol, eid.hex(), nominee)
    result = None
    for key in org.garden_writers:
        _pid, _state, result = await svc.election_position(replica, key, eid.hex(), "consent", "")
    assert result is not None, "the last consent records the keeper"
    return eid, result


async def seat_in_hall(org: Org, today: str = TODAY) -> list[linking.Linked]:
    proofs = await linking.child_evidence(org.replica, org.hall, org.garden, today)
    return await linking.link(org.replica, org.alice, org.hall, org.garden, proofs, today)


async def test_an_elected_representative_sits_in_the_parent_until_term_end(
    org: Org, tmp_path: Path
) -> None:
    """Carol, elected, joins the Hall; a Hall-only node verifies it and prunes at term end."""
    eid, result = await elect(org, "carol")
    cr, election = await svc.find_election(org.replica, eid.hex())
    assert cr.elections.phase(election) == "elected"
    [linked] = await seat_in_hall(org)
    assert (linked.seat.keeper, linked.seat.role, linked.seat.result) == (
        org.carol.public,
        "representative",
        result,
    )
    assert linked.member_op is not None
    async with Replica.open(tmp_path / "hall-only.db") as hall_node:
        report = await ingest(hall_node, await stored_wires(org.replica.store, org.hall))
        assert report.rejected == 0
        assert await hall_node.circles() == {org.hall}
        state, views = await linking.seat_views(hall_node, org.hall, TODAY)
        assert [v.status for v in views] == ["holds"]
        carol = state.current_members()[org.carol.public]
        assert (carol.name, carol.level, carol.decision) == ("carol", Level.WRITE, views[0].mandate)
        _state, ended = await linking.seat_views(hall_node, org.hall, AFTER_TERM)
        assert [v.status for v in ended] == ["ended"]
        assert await linking.prune(hall_node, org.alice, org.hall, TODAY) == []
        [(member, name, _op)] = await linking.prune(hall_node, org.alice, org.hall, AFTER_TERM)
        assert (member, name) == (org.carol.public, "carol")
        assert org.carol.public not in (await hall_node.auth_state(org.hall)).current_members()
        assert org.dave.public in (await hall_node.auth_state(org.hall)).current_members()


async def test_a_new_representative_supersedes_the_old_seat(org: Org) -> None:
    """Electing bob after carol ends carol's seat; prune removes her, bob stays."""
    _eid, first = await elect(org, "carol")
    await seat_in_hall(org)
    _eid, second = await elect(org, "bob", term_end="2028-06-30")
    roles = (await svc.load_roles(org.replica, org.garden)).roles()
    current = roles["representative"].current()
    assert current is not None
    assert (current.op_id, current.record.supersedes) == (second, first)
    [linked] = await seat_in_hall(org)
    assert linked.seat.keeper == org.bob.public
    _state, views = await linking.seat_views(org.replica, org.hall, TODAY)
    assert sorted(v.status for v in views) == ["holds", "superseded"]
    removed = await linking.prune(org.replica, org.alice, org.hall, TODAY)
    assert [name for _m, name, _op in removed] == ["carol"]
    members = (await org.replica.auth_state(org.hall)).current_members()
    assert org.bob.public in members
    assert org.carol.public not in members


async def test_a_seat_outlives_the_manager_who_recorded_its_mandate(org: Org) -> None:
    """The mandate is judged by its signer's level when signed: alice stepping down as a
    manager of the Hall later leaves carol's seat holding, and prune removes nobody."""
    await elect(org, "carol")
    await seat_in_hall(org)
    hall, replica = org.hall, org.replica
    await add_member(
        replica, org.alice, hall, member=org.dave.public, name="dave", level=Level.MANAGE, home=HOME
    )
    await add_member(
        replica, org.dave, hall, member=org.alice.public, name="alice", level=Level.WRITE, home=HOME
    )
    _state, views = await linking.seat_views(replica, hall, TODAY)
    assert [v.status for v in views] == ["holds"]
    assert await linking.prune(replica, org.dave, hall, TODAY) == []


async def test_the_service_refuses_out_of_order_steps(org: Org) -> None:
    """No representative without a term; no nominations before the term is agreed; no
    result before the nominee's proposal is agreed."""
    replica = org.replica
    with pytest.raises(NodeError, match="limited term"):
        await svc.start_election(replica, org.alice, org.garden, "representative", None, TODAY)
    eid, _pid, _v = await svc.start_election(
        replica, org.alice, org.garden, "representative", TERM_END, TODAY
    )
    with pytest.raises(NodeError, match="not consented yet"):
        await svc.nominate(replica, org.bob, eid.hex(), "carol", "why not")
    for key in org.garden_writers:
        await svc.election_position(replica, key, eid.hex(), "consent", "")
    with pytest.raises(NodeError, match="nobody nominates"):
        await svc.propose(replica, org.alice, eid.hex(), "carol")
    await svc.nominate(replica, org.bob, eid.hex(), "carol", "steady")
    await svc.propose(replica, org.alice, eid.hex(), "carol")
    await svc.election_position(replica, org.carol, eid.hex(), "objection", "no time this year")
    with pytest.raises(NodeError, match="not agreed"):
        await svc.record_result(replica, org.alice, eid.hex())
    election, number = await svc.fail_round(replica, org.alice, eid.hex(), "carol objected", False)
    cr, election = await svc.find_election(replica, eid.hex())
    assert (number, election.current_round, cr.elections.phase(election)) == (1, 2, "nominating")


# ---- tampering ---------------------------------------------------------------------------------


async def _proof(org: Org) -> tuple[bytes, list[bytes]]:
    _eid, result = await elect(org, "carol")
    return result, await linking.build_evidence(org.replica, org.garden, result)


def _position_wires(wires: list[bytes]) -> list[int]:
    found = []
    for i, wire in enumerate(wires):
        op = decode_op(wire)
        if op.kind is OpKind.RECORD and isinstance(try_decode(op.body), PositionRec):
            found.append(i)
    return found


async def test_a_forged_position_in_the_evidence_is_refused(org: Org) -> None:
    """A position re-signed by another key fails verification: no seat."""
    result, wires = await _proof(org)
    assert isinstance(linking.verify_evidence(wires, org.garden, org.hall, TODAY), Seat)
    i = _position_wires(wires)[0]
    wires[i] = resign(decode_op(wires[i]), KeyPair.generate())
    problem = linking.verify_evidence(wires, org.garden, org.hall, TODAY, result)
    assert isinstance(problem, Problem)
    assert "does not verify" in problem.reason


async def test_a_missing_position_in_the_evidence_is_refused(org: Org) -> None:
    """Dropping one position leaves the decision short: no seat, and link refuses."""
    _result, wires = await _proof(org)
    del wires[_position_wires(wires)[-1]]
    problem = linking.verify_evidence(wires, org.garden, org.hall, TODAY)
    assert isinstance(problem, Problem)
    assert "not a known position record" in problem.reason
    with pytest.raises(NodeError, match="proves no seat"):
        await linking.link(org.replica, org.alice, org.hall, org.garden, [wires], TODAY)


async def test_a_result_for_a_proposal_that_was_not_agreed_is_refused(org: Org) -> None:
    """A hand-made decision without bob's consent and a result citing it seat nobody,
    even when a manager records the mandate by hand."""
    replica, garden = org.replica, org.garden
    subject = KeeperSubject(org.carol.public, "representative", TERM_END, None)
    body = ProposalRec(title="Carol", driver="d", text="carol", subject=keeper_subject(subject))
    pid, version = await create_proposal(replica, org.alice, garden, body)
    for key in (org.carol, org.alice):
        await take_position(replica, key, pid.hex(), "consent", "")
    positions = []
    for row in await replica.store.ops_of_kind(garden, int(OpKind.RECORD)):
        if b"position" in row.body:
            positions.append(row.op_id)
    assert version == version_hash(pid, "carol")
    decision = await sign(
        replica,
        org.alice,
        garden,
        DecisionRec(proposal=pid, version=version, positions=sorted(positions)),
    )
    record = ResultRec(
        proposal=pid,
        decision=decision,
        keeper=org.carol.public,
        role="representative",
        term_end=TERM_END,
    )
    result = await svc.sign_selection(replica, org.alice, garden, record)
    wires = [
        encode_wire(r.header, r.sig, r.body)
        for r in await replica.store.all_ops(garden)
        if r.kind != int(OpKind.Y)
    ]
    problem = linking.verify_evidence(wires, garden, org.hall, TODAY, result)
    assert isinstance(problem, Problem)
    assert "was not agreed" in problem.reason
    mandate = MandateRec(
        child=garden,
        role="representative",
        keeper=org.carol.public,
        result=result,
        evidence=wires,
        term_end=TERM_END,
    )
    await svc.sign_selection(replica, org.alice, org.hall, mandate)
    _state, views = await linking.seat_views(replica, org.hall, TODAY)
    assert [(v.status, "was not agreed" in v.problem) for v in views] == [("refused", True)]
    assert org.carol.public not in (await replica.auth_state(org.hall)).current_members()
