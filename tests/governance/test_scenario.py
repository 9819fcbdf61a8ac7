"""The garden circle lives one agreement from proposal to review, through node.governance
on a real replica: an objection integrated by amendment, a verified decision, the logbook,
overdue reviews, a keep, an amending review whose objection is tested by consent, and a
retirement."""

from __future__ import annotations

from datetime import date

from gov_world import World

from node.domain.governance.consent import objection_subject
from node.domain.governance.records import ProposalRec
from node.governance import (
    amend,
    circle_logbook,
    create_proposal,
    find_agreement,
    find_proposal,
    load,
    record_objection_test,
    record_position,
    review,
)
from node.verify import verify_store


async def _state(world: World, pid: bytes) -> str:
    cg, proposal = await find_proposal(world.replica, pid.hex())
    return cg.outcome(proposal).state


async def _overdue(world: World, today: str) -> list[bytes]:
    cg = await load(world.replica, world.circle)
    return [a.id for a in cg.agreements() if a.overdue(today)]


async def _integrate_an_objection(world: World) -> tuple[bytes, bytes]:
    """Bob objects; Alice's amendment integrates it; all consent. ``(proposal, decision)``."""
    replica, alice, bob, carol = world.replica, world.alice, world.bob, world.carol
    pid = await world.propose(review_date="2030-06-01", criteria=["beds stay moist"])
    await record_position(replica, alice, pid.hex(), "consent", "")
    objection = await record_position(replica, bob, pid.hex(), "objection", "wastes water")
    assert objection.outcome.state == "integrating"
    await amend(
        replica, alice, "water every other day", pid.hex(), resolves=[objection.op], note="less"
    )
    assert await _state(world, pid) == "consent_round"  # the old positions no longer count
    for key in (alice, bob):
        taken = await record_position(replica, key, pid.hex(), "consent", "")
    assert taken.decision is None
    taken = await record_position(replica, carol, pid.hex(), "concern", "the hose is short")
    assert taken.decision is not None
    assert taken.outcome.agreed
    cg, proposal = await find_proposal(replica, pid.hex())
    outcome = cg.outcome(proposal)
    assert outcome.version.text == "water every other day"
    assert outcome.decision is not None
    assert cg.decision_problem(outcome.decision) is None
    return pid, taken.decision


async def _amend_by_review(world: World, pid: bytes) -> tuple[bytes, bytes]:
    """A review opens an amending proposal; Carol's objection to it is tested away by a
    consent decision; it is agreed. ``(amending proposal, the test proposal)``."""
    replica, alice, bob, carol = world.replica, world.alice, world.bob, world.carol
    _agreement, _op, newer = await review(
        replica, alice, pid.hex(), "amend", text="water at dusk, every other day"
    )
    assert newer is not None
    _cg, amending = await find_proposal(replica, newer.hex())
    assert amending.body.review_of == pid
    assert await _overdue(world, "2031-06-02") == []  # under review, not overdue
    carols = await record_position(replica, carol, newer.hex(), "objection", "dusk is too late")
    test_body = ProposalRec(
        title="Does carol's objection qualify?",
        driver="an objection to test",
        text="it does not: dusk is when the beds need it",
        subject=objection_subject(carols.op),
    )
    test_pid, _ = await create_proposal(replica, alice, world.circle, test_body)
    for key in (alice, bob, carol):
        await record_position(replica, key, test_pid.hex(), "consent", "")
    await record_objection_test(replica, alice, carols.op.hex(), False, test_pid.hex(), "")
    for key in (alice, bob):
        final = await record_position(replica, key, newer.hex(), "consent", "")
    assert final.outcome.agreed
    assert [s.op_id for s in final.outcome.concerns] == [carols.op]  # tested away: a concern
    return newer, test_pid


async def test_an_agreement_from_objection_to_review(world: World) -> None:
    """Objection -> amendment -> agreed and verified -> logbook -> overdue -> keep ->
    amending review (objection tested by consent) -> superseded -> retired."""
    replica, bob = world.replica, world.bob
    pid, decision = await _integrate_an_objection(world)
    assert (await verify_store(replica)).ok
    book = await circle_logbook(replica, world.circle)
    assert [(e.kind, e.proposal, e.op) for e in book] == [("decision", pid, decision)]

    assert await _overdue(world, "2030-06-01") == []
    assert await _overdue(world, "2030-06-02") == [pid]
    await review(replica, bob, pid.hex(), "keep", next_review="2031-06-01", today=date(2030, 6, 2))
    assert await _overdue(world, "2030-06-03") == []
    assert await _overdue(world, "2031-06-02") == [pid]

    newer, test_pid = await _amend_by_review(world, pid)
    _cg, old = await find_agreement(replica, pid.hex())
    assert (old.state, old.superseded_by) == ("superseded", newer)
    _cg, current = await find_agreement(replica, newer.hex())
    assert current.state == "in_force"
    await review(replica, bob, newer.hex(), "retire", note="we installed drip irrigation")
    _cg, current = await find_agreement(replica, newer.hex())
    assert current.state == "retired"
    assert not current.overdue("2999-01-01")

    book = await circle_logbook(replica, world.circle)
    assert book == sorted(book, key=lambda e: (e.ts, e.op))  # same-second records: by op id
    expected = [
        ("decision", pid),
        ("review", pid),
        ("review", pid),
        ("decision", test_pid),
        ("decision", newer),
        ("review", newer),
    ]
    assert sorted((e.kind, e.proposal) for e in book) == sorted(expected)
    assert (await verify_store(replica)).ok
