"""The seed organisation's story on a real replica, through node.ideas and node.funding.

alice founds Garden, Den (the Angels Den) and SVL (Social Value and Learning); erin writes
in Garden; bob reads Garden and invests in the Den; carol asks to join the Garden.
An idea becomes a qualified driver with an outline plan, a proposal agreed by every write
member is pitched, pledged, confirmed, funded and delivered; measures are read and lessons
reach SVL. Tamper tests: a non-investor's pledge is refused at ingest, a pledge moved by
someone other than its pledger is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from helpers import HOME, Author, ingest

from node.crypto.card import make_card
from node.crypto.keys import KeyPair
from node.crypto.ops import OpKind
from node.domain.auth import Level, SetMember, decode_auth_body
from node.domain.governance.funding import PledgeRec, PledgeStateRec
from node.domain.governance.funding import encode as encode_funding
from node.errors import AuthorizationError, NodeError
from node.funding import (
    Case,
    draft_lesson,
    draft_measure,
    draft_milestone,
    draft_milestone_set,
    draft_pitch,
    draft_pledge,
    draft_pledge_move,
    draft_project,
    draft_reading,
    draft_shares,
    learning_view,
    load_held,
    project_view,
)
from node.governance import create_proposal, take_position
from node.ideas import admit as sign_admission
from node.ideas import (
    commit,
    draft_admission,
    draft_idea_proposal,
    draft_join_proposal,
    draft_join_request,
    draft_note,
    draft_plan,
    draft_qualify,
    draft_share,
    find_idea,
    join_requests,
)
from node.local import add_member, author_record, create_circle
from node.replica import Replica


@dataclass
class Org:
    replica: Replica
    alice: KeyPair
    erin: KeyPair
    bob: KeyPair
    carol: KeyPair
    garden: bytes
    den: bytes
    svl: bytes


@pytest.fixture
async def org(replica: Replica) -> Org:
    """The three circles and their members."""
    alice, erin, bob, carol = (KeyPair.generate() for _ in range(4))
    circles = [
        await create_circle(replica, alice, name=name, creator_name="alice", home=HOME)
        for name in ("Garden", "Den", "SVL")
    ]
    garden, den, _svl = circles
    for circle, key, name, level in (
        (garden, erin, "erin", Level.WRITE),
        (garden, bob, "bob", Level.READ),
        (den, bob, "bob", Level.WRITE),
    ):
        await add_member(
            replica, alice, circle, member=key.public, name=name, level=level, home=HOME
        )
    return Org(replica, alice, erin, bob, carol, *circles)


async def _agree(org: Org, proposal: bytes) -> bytes:
    """Every write member of Garden consents; returns the decision record's op id."""
    for key in (org.alice, org.erin):
        outcome = await take_position(org.replica, key, proposal.hex(), "consent", "")
    assert outcome.agreed
    assert outcome.decision is not None
    return outcome.decision.op_id


async def _qualified_driver(org: Org) -> str:
    r = org.replica
    shared = await draft_share(
        r, org.bob.public, org.garden.hex(), what="the lot lies empty", need="food", why="health"
    )
    idea = (await commit(r, org.bob, shared))[:16].hex()
    await commit(r, org.bob, await draft_note(r, org.bob.public, idea, "raised beds"))
    with pytest.raises(AuthorizationError):
        await draft_qualify(r, org.bob.public, idea, "accepted")
    await commit(r, org.alice, await draft_qualify(r, org.alice.public, idea, "accepted"))
    plan = await draft_plan(
        r,
        org.erin.public,
        idea,
        scope="12 beds",
        resources="4 people",
        low=80_000,
        high=120_000,
        currency="GBP",
    )
    await commit(r, org.erin, plan)
    return idea


async def _funded_pitch(org: Org, proposal: bytes) -> tuple[str, str]:
    r = org.replica
    case = Case(100_000, "GBP", "fresh food", "3:1", "plot fees")
    pitch = (
        await commit(
            r,
            org.alice,
            await draft_pitch(r, org.alice.public, proposal.hex(), org.den.hex()[:8], case),
        )
    )[:16].hex()
    bobs = (await commit(r, org.bob, await draft_pledge(r, org.bob.public, pitch, 70_000, "GBP")))[
        :16
    ].hex()
    alices = (
        await commit(r, org.alice, await draft_pledge(r, org.alice.public, pitch, 30_000, None))
    )[:16].hex()
    await commit(r, org.bob, await draft_pledge_move(r, org.bob.public, bobs, "confirmed"))
    held = await load_held(r)
    assert not held.funding.pitches[bytes.fromhex(pitch)].status().funded
    await commit(r, org.alice, await draft_pledge_move(r, org.alice.public, alices, "confirmed"))
    await commit(r, org.bob, await draft_pledge_move(r, org.bob.public, bobs, "fulfilled"))
    return pitch, bobs


async def test_idea_to_delivery_and_learning(org: Org) -> None:
    """The whole path from a shared driver to lessons and measures received by SVL."""
    r = org.replica
    idea = await _qualified_driver(org)
    circle, body = await draft_idea_proposal(r, org.alice.public, idea, None, "Build the garden")
    proposal, _version = await create_proposal(r, org.alice, circle, body)
    with pytest.raises(NodeError, match="only an agreed proposal"):
        await draft_pitch(r, org.alice.public, proposal.hex(), org.den.hex(), Case(1, "GBP"))
    await _agree(org, proposal)
    ideas, found = await find_idea(r, idea)
    assert (found.state, found.plan and found.plan.cost_high) == ("accepted", 120_000)

    pitch, _bobs = await _funded_pitch(org, proposal)
    status = (await load_held(r)).funding.pitches[bytes.fromhex(pitch)].status()
    assert (status.confirmed, status.fulfilled, status.needed, status.funded) == (
        100_000,
        70_000,
        0,
        True,
    )

    team = [
        f"alice:{org.garden.hex()[:8]}:requirements",
        f"bob:{org.den.hex()[:8]}:investment_benefits",
    ]
    project = (
        await commit(r, org.alice, await draft_project(r, org.alice.public, pitch, team, None))
    )[:16].hex()
    milestone = (
        await commit(
            r, org.erin, await draft_milestone(r, org.erin.public, project, "beds", "2031-05-01")
        )
    )[:16].hex()
    for status_ in ("in_progress", "done"):
        await commit(r, org.erin, await draft_milestone_set(r, org.erin.public, milestone, status_))
    await commit(r, org.erin, await draft_lesson(r, org.erin.public, project, "order timber early"))
    measure = await draft_measure(
        r, org.alice.public, project, name="families fed", target=40, unit="families"
    )
    measure_id = (await commit(r, org.alice, measure))[:16].hex()
    for value, on in ((12, "2031-06-01"), (41, "2031-09-01")):
        await commit(
            r, org.alice, await draft_reading(r, org.alice.public, measure_id, value, on, "")
        )
    for draft in (await draft_shares(r, org.alice.public, project, org.svl.hex())).drafts:
        await commit(r, org.alice, draft)
    assert (await draft_shares(r, org.alice.public, project, org.svl.hex())).drafts == []

    held = await load_held(r)
    shown = project_view(held, held.funding.projects[bytes.fromhex(project)])
    assert (shown["valid"], [m["status"] for m in shown["milestones"]]) == (True, ["done"])
    assert (shown["measures"][0]["latest"], shown["measures"][0]["met"]) == (41, True)
    learned = await learning_view(r, org.svl.hex())
    assert [(x["text"], x["holds"]) for x in learned["lessons"]] == [("order timber early", True)]
    assert [x["value"] for x in learned["measures"][0]["readings"]] == [12, 41]


async def test_join_request_decided_by_consent_admits_citing_the_decision(org: Org) -> None:
    """A reader records carol's request; after consent her auth op cites the decision."""
    r = org.replica
    card = make_card(org.carol, "carol", HOME, None).to_text()
    draft, _card = await draft_join_request(
        r, org.bob.public, org.garden.hex(), card, "innovator", "sensors"
    )
    request = (await commit(r, org.bob, draft))[:16].hex()
    with pytest.raises(NodeError, match="decides by consent"):
        await draft_admission(r, org.alice.public, request, Level.READ)
    circle, body = await draft_join_proposal(r, org.alice.public, request)
    assert body.join_request == bytes.fromhex(request)
    proposal, _version = await create_proposal(r, org.alice, circle, body)
    decision = await _agree(org, proposal)
    with pytest.raises(AuthorizationError):
        await draft_admission(r, org.erin.public, request, Level.READ)  # not a manager
    admission = await draft_admission(r, org.alice.public, request, Level.READ)
    op = await sign_admission(r, org.alice, admission)

    info = (await r.auth_state(org.garden)).members[org.carol.public]
    assert (info.level, info.decision) == (Level.READ, decision)
    stored = next(row for row in await r.store.all_ops(org.garden) if row.op_id == op)
    body_ = decode_auth_body(stored.body)
    assert isinstance(body_, SetMember)
    assert body_.decision == decision
    (listed,) = await join_requests(r, org.garden)
    assert (listed.status, listed.decisions) == ("admitted", [decision])


async def _open_pitch(org: Org) -> tuple[str, str]:
    """An agreed proposal pitched to the Den, with bob's pledge on it."""
    r = org.replica
    body = (await draft_idea_proposal(r, org.alice.public, await _qualified_driver(org), "t", "x"))[
        1
    ]
    proposal, _version = await create_proposal(r, org.alice, org.garden, body)
    await _agree(org, proposal)
    case = Case(50_000, "GBP")
    pitch = (
        await commit(
            r,
            org.alice,
            await draft_pitch(r, org.alice.public, proposal.hex(), org.den.hex(), case),
        )
    )[:16].hex()
    pledge = (
        await commit(r, org.bob, await draft_pledge(r, org.bob.public, pitch, 50_000, "GBP"))
    )[:16].hex()
    return pitch, pledge


async def test_pledge_by_a_non_investor_is_refused_at_ingest(org: Org) -> None:
    """carol is no Den member: her signed pledge is rejected at ingest as restricted."""
    r = org.replica
    pitch, _pledge = await _open_pitch(org)
    body = encode_funding(PledgeRec(pitch=bytes.fromhex(pitch), amount=50_000, currency="GBP"))
    deps = (await r.auth_log(org.den)).heads()
    forged = Author(key=org.carol).make(OpKind.RECORD, org.den, body, deps)
    report = await ingest(r, [forged])
    assert (report.added, report.rejected, dict(report.reasons)) == (0, 1, {"restricted": 1})
    with pytest.raises(AuthorizationError):
        await author_record(r, org.carol, org.den, body)
    with pytest.raises(AuthorizationError):
        await draft_pledge(r, org.carol.public, pitch, 50_000, "GBP")
    status = (await load_held(r)).funding.pitches[bytes.fromhex(pitch)].status()
    assert (status.pledged, status.confirmed) == (50_000, 0)


async def test_pledge_moved_by_someone_else_is_ignored(org: Org) -> None:
    """A Den manager's confirmation of bob's pledge is stored but ignored by the rules."""
    r = org.replica
    pitch, pledge = await _open_pitch(org)
    with pytest.raises(NodeError, match="only the pledger"):
        await draft_pledge_move(r, org.alice.public, pledge, "confirmed")
    body = encode_funding(PledgeStateRec(pledge=bytes.fromhex(pledge), state="confirmed"))
    await author_record(r, org.alice, org.den, body)  # valid at ingest: alice writes in Den
    held = await load_held(r)
    assert held.funding.pledges[bytes.fromhex(pledge)].state == "pledged"
    assert not held.funding.pitches[bytes.fromhex(pitch)].status().funded
