"""The elections, Angels Den, ideas and join-request screens, driven through the UI on a
real store: an election run to its result by two members, a pledge moving the funding
bar, ideas shared and annotated, join requests listed and proposed."""

from __future__ import annotations

from gov_kit import (
    CAROL,
    TERM_END,
    bob_on_election,
    carol_asks_to_join,
    make_den,
    make_ideas,
    nominate,
)
from textual.pilot import Pilot
from tui_kit import Node, Notes, loaded, screen_text, type_text, unlock, wait_until

from node.domain.auth import Level
from node.elections import find_election
from node.governance import take_position
from node.ideas import join_requests
from node.replica import Replica
from node.tui.app import CircleNodeApp
from node.tui.screens.circle import CircleScreen
from node.tui.screens.den import DenScreen
from node.tui.screens.elections import ElectionsScreen
from node.tui.screens.gov_forms import FieldsScreen
from node.tui.screens.ideas import IdeasScreen
from node.tui.screens.joins import JoinsScreen
from node.tui.screens.proposal import ProposalScreen


def shown(app: CircleNodeApp, *words: str) -> bool:
    text = screen_text(app)
    return all(word in text for word in words)


async def open_circle_screen(pilot: Pilot[None], key: str, kind: type) -> None:
    """Unlock, open Garden (the first circle), then its ``key`` screen."""
    app = pilot.app
    await unlock(pilot)
    await pilot.press("enter")
    await wait_until(pilot, lambda: loaded(app, CircleScreen), "the circle")
    await pilot.press(key)
    await wait_until(pilot, lambda: loaded(app, kind), f"the {kind.__name__}")


async def fill(pilot: Pilot[None], *values: str) -> None:
    """Type each value into the dialog's next field; Enter after each (the last signs)."""
    assert isinstance(pilot.app.screen, FieldsScreen)
    for value in values:
        if value:
            await type_text(pilot, value)
        await pilot.press("enter")


async def test_run_an_election_through_the_ui(node: Node) -> None:
    """s starts an election; both consent to the term; nominations with reasons (one by
    bob from his own connection), a change, p proposes the nominee, both consent, and the
    screen shows bob as the keeper of the role."""
    app = CircleNodeApp(node.home)
    notes = Notes()
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await open_circle_screen(pilot, "e", ElectionsScreen)
        screen = app.screen
        assert isinstance(screen, ElectionsScreen)
        assert shown(app, "leader", "no keeper", "No elections yet")

        await pilot.press("s")
        await fill(pilot, "leader", TERM_END)
        await wait_until(pilot, lambda: shown(app, "term", "Role and term"), "the election")
        data = screen.data
        assert data is not None
        assert data.elections[0].phase == "term"
        eid = data.elections[0].election

        await pilot.press("c")  # alice consents to the role and term
        await wait_until(pilot, lambda: notes.any("Recorded your consent"), "alice's consent")
        assert await bob_on_election(node, eid, "consent") == "agreed"
        await wait_until(pilot, lambda: shown(app, "nominating"), "nominations to open")

        await pilot.press("n")
        await fill(pilot, "alice", "I have the time this year")
        await wait_until(pilot, lambda: shown(app, "alice nominates alice"), "her nomination")
        await nominate(node, node.bob, eid, "bob", "I know the beds")
        await wait_until(pilot, lambda: shown(app, "bob nominates bob"), "bob's nomination")

        await pilot.press("g")  # the change round: alice changes to bob
        await fill(pilot, "bob", "bob's reasons convinced me")
        await wait_until(pilot, lambda: shown(app, "alice changes to bob"), "her change")
        assert shown(app, "tally: bob 2")

        await pilot.press("p")  # the nominee with most nominations is offered
        assert isinstance(app.screen, FieldsScreen)
        await pilot.press("enter")
        await wait_until(pilot, lambda: shown(app, "Proposed bob", "consent"), "the proposal")
        assert screen.data is not None
        assert screen.data.elections[0].phase == "consent"

        await pilot.press("c")
        await wait_until(pilot, lambda: screen.data.elections[0].round == 1, "reload")
        assert await bob_on_election(node, eid, "consent") == "agreed"
        await wait_until(pilot, lambda: shown(app, "Result: bob keeps the role leader"), "result")
        assert shown(app, f"bob until {TERM_END}")
        assert screen.data.elections[0].phase == "elected"
    async with Replica.open(node.home.store_path) as replica:
        cr, election = await find_election(replica, eid.hex())
        result = cr.elections.valid_result(election)
        assert result is not None
        assert result.record.keeper == node.bob.public


async def test_election_refusals_are_notifications(node: Node) -> None:
    """Nominating before the term is consented, and an objection without a reason, are
    notifications that say what to do; nothing is signed."""
    app = CircleNodeApp(node.home)
    notes = Notes()
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await open_circle_screen(pilot, "e", ElectionsScreen)
        await pilot.press("n")
        assert not isinstance(app.screen, FieldsScreen)  # nothing to nominate in yet
        assert notes.any("Pick an election")
        await pilot.press("s")
        await fill(pilot, "leader", TERM_END)
        await wait_until(pilot, lambda: shown(app, "Role and term"), "the election")
        await pilot.press("n")
        await fill(pilot, "bob", "he knows the beds")
        await wait_until(pilot, lambda: notes.any("not consented yet"), "the refusal")
        await pilot.press("x")
        await pilot.press("enter")  # no reason
        assert isinstance(app.screen, FieldsScreen)
        assert notes.any("An objection needs a reason")
        await pilot.press("escape")
        screen = app.screen
        assert isinstance(screen, ElectionsScreen)
        assert screen.data is not None
        assert screen.data.elections[0].rounds[0].nominations == []
        assert screen.data.elections[0].term is not None
        assert [p.position for p in screen.data.elections[0].term.positions] == [
            "waiting",
            "waiting",
        ]


async def test_pledge_moves_the_funding_bar(node: Node) -> None:
    """a opens the Angels Den from the dashboard; p pledges 400 to the pitch, c confirms
    it, and the funding bar and my pledges follow; a pledge in words is refused."""
    den = await make_den(node)
    app = CircleNodeApp(node.home)
    notes = Notes()
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await unlock(pilot)
        await pilot.press("a")
        await wait_until(pilot, lambda: loaded(app, DenScreen), "the den")
        screen = app.screen
        assert isinstance(screen, DenScreen)
        assert shown(app, "Solar roof", "needed 1,000.00 of 1,000.00 GBP", "my pledges: none")

        await pilot.press("p")
        await fill(pilot, "four hundred", "")
        assert notes.any("not an amount")
        assert isinstance(app.screen, DenScreen)

        await pilot.press("p")
        await fill(pilot, "400", "when the roof is fixed")
        await wait_until(pilot, lambda: shown(app, "pledged 400.00"), "the pledge")
        assert shown(app, "confirmed 0.00", "needed 1,000.00", "400.00 GBP to Solar roof")
        await pilot.press("c")
        await wait_until(pilot, lambda: shown(app, "confirmed 400.00"), "the confirmation")
        assert shown(app, "needed 600.00 of 1,000.00 GBP", "40%")
        status = screen.data.pitches[0].status
        assert (status.pledged, status.confirmed, status.needed) == (40_000, 40_000, 60_000)
        assert screen.data.my_pledges[0].state == "confirmed"
    assert den.pitch == screen.data.pitches[0].pitch


async def test_ideas_listed_shared_and_noted(node: Node) -> None:
    """i lists the circle's ideas with the current outline plan; n shares a new idea and m
    adds a co-design note to it."""
    await make_ideas(node)
    app = CircleNodeApp(node.home)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_circle_screen(pilot, "i", IdeasScreen)
        screen = app.screen
        assert isinstance(screen, IdeasScreen)
        assert shown(app, "A rain tank by the shed", "The beds dry out in July")
        titles = [i.title for i in screen.data.ideas]
        assert titles == ["A rain tank by the shed", "The beds dry out in July"]
        assert shown(app, "400.00 - 650.00 GBP", "Could feed the drip lines too")

        await pilot.press("n")
        await fill(pilot, "Bees for the orchard")
        await wait_until(pilot, lambda: len(screen.data.ideas) == 3, "the new idea")
        await wait_until(pilot, lambda: shown(app, "Bees for the orchard"), "it listed")
        key = next(i.idea for i in screen.data.ideas if i.title == "Bees for the orchard")
        while screen.selected != key.hex():
            await pilot.press("down")
        await pilot.press("m")
        await fill(pilot, "Ask the beekeepers' club")
        await wait_until(pilot, lambda: shown(app, "alice: Ask the beekeepers' club"), "note")
        idea = next(i for i in screen.data.ideas if i.idea == key)
        assert idea.notes == [("alice", "Ask the beekeepers' club")]


async def test_join_request_proposed_agreed_and_admitted(node: Node) -> None:
    """j lists Carol's join request; a (admit) before consent is refused; p opens the
    consent proposal admitting her, alice consents there and bob from his connection;
    back on the list the request is agreed, and a admits her with write level."""
    await carol_asks_to_join(node)
    app = CircleNodeApp(node.home)
    notes = Notes()
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await open_circle_screen(pilot, "j", JoinsScreen)
        screen = app.screen
        assert isinstance(screen, JoinsScreen)
        assert shown(app, "carol", "investor", "open", CAROL.public.hex()[:8])
        await pilot.press("a")
        await wait_until(pilot, lambda: notes.any("decides by consent first"), "refusal")
        await pilot.press("p")
        await wait_until(pilot, lambda: loaded(app, ProposalScreen), "the proposal")
        proposal = app.screen
        assert isinstance(proposal, ProposalScreen)
        assert shown(app, "Admit carol as investor")
        await pilot.press("c")
        await wait_until(pilot, lambda: shown(app, "alice", "consent", "waiting"), "alice")
        assert await bob_takes(node, proposal.proposal, "consent") == "agreed"
        await pilot.press("escape")
        await wait_until(pilot, lambda: shown(app, "agreed"), "the request agreed")
        await pilot.press("a")
        await wait_until(pilot, lambda: shown(app, "admitted"), "carol admitted")
    async with Replica.open(node.home.store_path) as replica:
        (request,) = await join_requests(replica, node.circle)
        assert request.status == "admitted"
        members = (await replica.auth_state(node.circle)).current_members()
        assert members[CAROL.public].level == Level.WRITE


async def bob_takes(node: Node, proposal: bytes, position: str) -> str:
    async with Replica.open(node.home.store_path) as replica:
        outcome = await take_position(replica, node.bob, proposal.hex(), position, "")
    return outcome.state
