"""Every screen renders at 80x24 (and 120x40) without an exception, showing its key parts."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from tui_kit import Node, loaded, screen_text, unlock, wait_until

from node.domain.governance.records import ProposalRec
from node.governance import amend, create_proposal, take_position
from node.home import NodeHome
from node.replica import Replica
from node.store.peers import PeerBook
from node.tui.app import CircleNodeApp
from node.tui.screens.circle import CircleScreen
from node.tui.screens.help import HelpScreen
from node.tui.screens.proposal import ProposalScreen
from node.tui.widgets.tables import ProposalsTable


async def furnish(node: Node) -> None:
    """A peer that failed, an amended proposal with an objection, a decided one."""
    async with Replica.open(node.home.store_path) as replica:
        book = PeerBook(replica.store)
        await book.add("http://10.0.0.9:7400", "kitchen")
        await book.record_contact("http://10.0.0.9:7400", node=None, error="connection refused")
        body = ProposalRec(title="Water the beds", driver="dry beds", text="Water daily.\nAt 8.")
        pid, _ = await create_proposal(replica, node.bob, node.circle, body)
        await take_position(replica, node.bob, pid.hex(), "objection", "wasteful at noon")
        await amend(replica, node.bob, "Water daily.\nAt 20.", pid.hex())
        body = ProposalRec(title="Buy hoses", driver="none", text="Two hoses.")
        done, _ = await create_proposal(replica, node.bob, node.circle, body)
        await take_position(replica, node.bob, done.hex(), "consent", "")
        await take_position(replica, node.alice_key, done.hex(), "consent", "")


def show(app: CircleNodeApp, *words: str) -> str:
    text = screen_text(app)
    missing = [word for word in words if word not in text]
    assert not missing, f"{missing} not on screen:\n{text}"
    return text


async def press(pilot: Pilot[None], *keys: str) -> None:
    await pilot.press(*keys)
    await pilot.pause()


async def open_row(pilot: Pilot[None], title: str) -> None:
    """Enter on the circle screen's proposal row with this title."""
    table = pilot.app.screen.query_one(ProposalsTable)
    rows = [key.value for key in table.rows if str(table.get_row(key)[-1]) == title]
    table.move_cursor(row=table.get_row_index(rows[0]))
    await press(pilot, "enter")
    await wait_until(pilot, lambda: loaded(pilot.app, ProposalScreen), title)


async def test_every_screen_renders_at_80x24(node: Node) -> None:
    """Dashboard panels, circle tabs, proposal with diff, dialogs and help all draw."""
    await furnish(node)
    app = CircleNodeApp(node.home)
    async with app.run_test(size=(80, 24)) as pilot:
        show(app, "Unlock node test-node", "alice")
        await unlock(pilot)
        show(app, "Garden", "Inbox (1)", "Water the beds", "? Help")
        await press(pilot, "d")
        show(app, "Buy hoses")
        await press(pilot, "s")
        show(app, "kitchen", "error", "connection refused")
        await press(pilot, "t", "enter")
        await wait_until(pilot, lambda: loaded(app, CircleScreen), "the circle")
        show(app, "Grow food together", "consent_round", "agreed", "esc Back")
        for key, words in (("2", ("bob", "write")), ("3", ("decision",)), ("4", ("Hosts",))):
            await press(pilot, key)
            show(app, *words)
        await press(pilot, "1", "n")
        show(app, "New proposal in Garden", "Review date")
        await press(pilot, "escape")
        await open_row(pilot, "Buy hoses")
        show(app, "VERIFIED", "agreed")
        await press(pilot, "escape")
        await open_row(pilot, "Water the beds")
        show(app, "-At 8.", "+At 20.", "version 1")
        for key, words in (("a", ("Amend version 1",)), ("o", ("Concern",)), ("x", ("harm",))):
            await press(pilot, key)
            show(app, *words)
            await press(pilot, "escape")
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        show(app, "Keys", "Consent", "Objection")
        await press(pilot, "escape")
        assert isinstance(app.screen, ProposalScreen)


async def test_main_screens_render_at_120x40(node: Node) -> None:
    """A bigger terminal: the dashboard, the circle and the proposal use the room."""
    await furnish(node)
    app = CircleNodeApp(node.home)
    async with app.run_test(size=(120, 40)) as pilot:
        await unlock(pilot)
        show(app, "Garden", "Inbox (1)", "Water the beds")
        await press(pilot, "t", "enter")
        await wait_until(pilot, lambda: loaded(app, CircleScreen), "the circle")
        await open_row(pilot, "Water the beds")
        show(app, "-At 8.", "+At 20.", "wasteful at noon", "waiting")


async def test_first_run_screen_renders(tmp_path: Path) -> None:
    """The first-run form shows every field at 80x24."""
    app = CircleNodeApp(NodeHome(tmp_path / "home"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        show(app, "Node name", "Your name", "Passphrase", "Again", "First circle", "purpose")


async def test_help_lists_every_binding(node: Node) -> None:
    """The help screen names every key of the app and of every screen."""
    from node.tui.screens.help import SCREENS, bindings_of

    app = CircleNodeApp(node.home)
    async with app.run_test(size=(120, 60)) as pilot:
        await press(pilot, "f1")
        text = str(app.screen.query_one("#help-body Static").render())
        for _title, screen in SCREENS:
            for binding in bindings_of([*app.BINDINGS, *screen.BINDINGS]):
                assert app.get_key_display(binding) in text
                assert (binding.description or binding.action) in text


async def test_command_palette_opens_a_circle(node: Node) -> None:
    """ctrl+p offers "Open circle Garden"; choosing it opens the circle screen."""
    app = CircleNodeApp(node.home)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        await press(pilot, "ctrl+p")
        await pilot.press(*"garden")
        await wait_until(pilot, lambda: "Open circle Garden" in screen_text(app), "the hit")
        await press(pilot, "enter")
        await wait_until(pilot, lambda: loaded(app, CircleScreen), "the circle")


async def test_q_quits_from_the_dashboard(node: Node) -> None:
    """q ends the app (outside text fields, where it is just a letter)."""
    app = CircleNodeApp(node.home)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        await pilot.press("q")
        await wait_until(pilot, lambda: not app.is_running, "the app to end")


async def test_names_that_look_like_markup_are_shown_as_typed(node: Node) -> None:
    """Titles, reasons and circle names with square brackets are text, never markup."""
    title = "[b]Fix[/] the [red]roof"
    async with Replica.open(node.home.store_path) as replica:
        body = ProposalRec(title=title, driver="[/ oops", text="Use [tin].")
        pid, _ = await create_proposal(replica, node.bob, node.circle, body)
        await take_position(replica, node.bob, pid.hex(), "objection", "[link=x]no[/link]")
    app = CircleNodeApp(node.home)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        show(app, "[b]Fix[/] the")
        await press(pilot, "t", "enter")
        await wait_until(pilot, lambda: loaded(app, CircleScreen), "the circle")
        await open_row(pilot, title)
        show(app, "[/ oops", "Use [tin].", "[link=x]no[/link]")
