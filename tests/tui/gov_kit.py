"""Governance data for the TUI tests of the elections, Angels Den, ideas and join-request
screens, signed through the same services the CLI uses, on a node from :func:`make_node`.

Everything a snapshot shows is fixed: names, texts, amounts and days; no id, no record
time (those differ on every run)."""

from __future__ import annotations

from dataclasses import dataclass

from tui_kit import Node

from node import elections, funding, ideas
from node.crypto.card import make_card
from node.crypto.keys import KeyPair
from node.crypto.ops import Signer
from node.domain.auth import Level
from node.domain.governance.records import ProposalRec
from node.governance import create_proposal, take_position
from node.local import add_member
from node.replica import Replica
from node.tui.actions import new_circle

TERM_END = "2099-12-31"
CAROL = KeyPair.from_seed(bytes(range(32)))  # a seeded key: her card is the same every run
CARD_NODE = bytes(32 * [7])


@dataclass
class Den:
    """The den circle Investors (alice manages, bob writes) and a pitch to it from Garden."""

    den: bytes
    proposal: bytes
    pitch: bytes


async def agreed_proposal(replica: Replica, node: Node, title: str, text: str) -> bytes:
    body = ProposalRec(title=title, driver="Our energy bills keep rising", text=text)
    pid, _version = await create_proposal(replica, node.alice_key, node.circle, body)
    for key in (node.alice_key, node.bob):
        await take_position(replica, key, pid.hex(), "consent", "")
    return pid


async def make_den(node: Node, costs: int = 100_000) -> Den:
    """A pitch of 1,000.00 GBP (by default) for an agreed proposal, to the den Investors."""
    async with Replica.open(node.home.store_path) as replica:
        den = await new_circle(
            replica, node.home, node.alice, node.alice_key, "Investors", "Fund local projects"
        )
        await add_member(
            replica,
            node.alice_key,
            den,
            member=node.bob.public,
            name="bob",
            level=Level.WRITE,
            home=node.home.node_public,
        )
        case = funding.Case(
            costs=costs,
            currency="GBP",
            benefits="Lower bills for the garden",
            roi="Pays back in 6 years",
            sustainability="Panels last 25 years",
        )
        pid, pitch = await pitch_to(replica, node, den, "Solar roof", case)
    return Den(den, pid, pitch)


async def pitch_to(
    replica: Replica, node: Node, den: bytes, title: str, case: funding.Case
) -> tuple[bytes, bytes]:
    """An agreed proposal ``title`` of Garden pitched to ``den``: ``(proposal, pitch)``."""
    pid = await agreed_proposal(replica, node, title, f"We do this: {title}.")
    draft = await funding.draft_pitch(replica, node.alice.member, pid.hex(), den.hex(), case)
    op = await ideas.commit(replica, node.alice_key, draft)
    return pid, op[:16]


async def second_pitch(node: Node, den: Den) -> bytes:
    """Compost bins, 300.00 GBP, with bob's pledge of 150.00 (not confirmed)."""
    case = funding.Case(costs=30_000, currency="GBP", benefits="Less waste", roi="Free compost")
    async with Replica.open(node.home.store_path) as replica:
        _pid, pitch = await pitch_to(replica, node, den.den, "Compost bins", case)
        draft = await funding.draft_pledge(
            replica, node.bob.public, pitch.hex(), 15_000, None, "if the council agrees"
        )
        await sign(replica, node.bob, draft)
    return pitch


async def sign(replica: Replica, key: Signer, draft: ideas.Draft) -> bytes:
    return await ideas.commit(replica, key, draft)


async def bob_pledges(node: Node, den: Den, amount: int, confirm: bool) -> None:
    async with Replica.open(node.home.store_path) as replica:
        member = node.bob.public
        draft = await funding.draft_pledge(replica, member, den.pitch.hex(), amount, None, "")
        op = await sign(replica, node.bob, draft)
        if confirm:
            move = await funding.draft_pledge_move(replica, member, op[:16].hex(), "confirmed")
            await sign(replica, node.bob, move)


async def make_project(node: Node, den: Den) -> None:
    """Fund the pitch fully (alice 600.00 confirmed, bob 400.00 confirmed), start the
    project with its team, a milestone, a lesson and a measure with three readings."""
    await bob_pledges(node, den, 40_000, confirm=True)
    async with Replica.open(node.home.store_path) as replica:
        me = node.alice.member
        key = node.alice_key
        draft = await funding.draft_pledge(replica, me, den.pitch.hex(), 60_000, None, "")
        op = await sign(replica, key, draft)
        await sign(
            replica, key, await funding.draft_pledge_move(replica, me, op[:16].hex(), "confirmed")
        )
        team = [
            f"alice:{node.circle.hex()}:requirements",
            f"bob:{den.den.hex()}:investment_benefits",
        ]
        draft = await funding.draft_project(replica, me, den.pitch.hex(), team, None)
        project = (await sign(replica, key, draft))[:16].hex()
        for title, due in (("Order the panels", "2030-03-01"), ("Fit the panels", "2030-05-01")):
            await sign(
                replica, key, await funding.draft_milestone(replica, me, project, title, due)
            )
        lesson = "Order early: the supplier needs six weeks."
        await sign(replica, key, await funding.draft_lesson(replica, me, project, lesson))
        measure = await funding.draft_measure(
            replica, me, project, name="Power made", target=300, unit="kWh", direction="up"
        )
        mid = (await sign(replica, key, measure))[:16].hex()
        for day, value in (("2030-06-01", 120), ("2030-07-01", 250), ("2030-08-01", 340)):
            draft = await funding.draft_reading(replica, me, mid, value, day, "")
            await sign(replica, key, draft)


async def start_election(node: Node, today: str = "2030-01-01") -> bytes:
    """An election of a leader whose term both members consented to: nominations open."""
    async with Replica.open(node.home.store_path) as replica:
        eid, pid, _version = await elections.start_election(
            replica, node.alice_key, node.circle, "leader", TERM_END, today
        )
        for key in (node.alice_key, node.bob):
            await take_position(replica, key, pid.hex(), "consent", "")
    return eid


async def nominate(node: Node, key: Signer, election: bytes, nominee: str, reason: str) -> None:
    async with Replica.open(node.home.store_path) as replica:
        await elections.nominate(replica, key, election.hex(), nominee, reason)


async def bob_on_election(node: Node, election: bytes, position: str) -> str:
    """Bob's position on the election's open proposal, from his own connection."""
    async with Replica.open(node.home.store_path) as replica:
        _pid, state, _result = await elections.election_position(
            replica, node.bob, election.hex(), position, ""
        )
    return state


async def make_ideas(node: Node) -> None:
    """An idea with a note and an outline plan, and a driver statement."""
    async with Replica.open(node.home.store_path) as replica:
        me, key, circle = node.alice.member, node.alice_key, node.circle.hex()
        draft = await ideas.draft_share(replica, me, circle, text="A rain tank by the shed")
        idea = (await sign(replica, key, draft))[:16].hex()
        note = "Could feed the drip lines too"
        await sign(replica, node.bob, await ideas.draft_note(replica, node.bob.public, idea, note))
        plan = await ideas.draft_plan(
            replica,
            me,
            idea,
            scope="A 1,000 litre tank and a pump",
            resources="Two volunteers for a weekend",
            low=40_000,
            high=65_000,
            currency="GBP",
        )
        await sign(replica, key, plan)
        driver = await ideas.draft_share(
            replica, me, circle, what="The beds dry out in July", need="Water", why="Crops fail"
        )
        await sign(replica, key, driver)


async def carol_asks_to_join(node: Node) -> None:
    """Alice records Carol's join request (Carol's card: a seeded key, a fixed node)."""
    card = make_card(CAROL, "carol", CARD_NODE, None)
    async with Replica.open(node.home.store_path) as replica:
        draft, _card = await ideas.draft_join_request(
            replica,
            node.alice.member,
            node.circle.hex(),
            card.to_text(),
            "investor",
            "I would like to fund the garden's projects",
        )
        await sign(replica, node.alice_key, draft)
