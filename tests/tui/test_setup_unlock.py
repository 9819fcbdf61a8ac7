"""First run and unlock, driven through the TUI at 80x24."""

from __future__ import annotations

from pathlib import Path

from tui_kit import (
    PASSPHRASE,
    Node,
    Notes,
    loaded,
    make_node,
    screen_text,
    type_keys,
    type_text,
    unlock,
    wait_until,
)

from node.home import NodeHome
from node.replica import Replica
from node.tui.app import CircleNodeApp
from node.tui.data import load_circle_items
from node.tui.screens.dashboard import DashboardScreen
from node.tui.screens.setup import SetupScreen
from node.tui.screens.unlock import UnlockScreen


async def test_first_run_creates_node_member_and_circle(tmp_path: Path) -> None:
    """The setup form makes the node, the member (passphrase never shown) and a circle."""
    home = NodeHome(tmp_path / "home")
    app = CircleNodeApp(home)
    async with app.run_test(size=(80, 24)) as pilot:
        assert isinstance(app.screen, SetupScreen)
        assert app.focused is not None
        assert app.focused.id == "member-name"
        for text in ("alice", PASSPHRASE, PASSPHRASE, "Garden"):
            await type_text(pilot, text)
            await pilot.press("enter")
        assert PASSPHRASE not in screen_text(app)
        await type_text(pilot, "Grow food together")
        await pilot.press("enter")
        await wait_until(pilot, lambda: loaded(app, DashboardScreen), "the dashboard")
        assert "Garden" in screen_text(app)
    assert home.is_initialised()
    assert [m.name for m in home.members()] == ["alice"]
    home.unlock_member(home.members()[0], PASSPHRASE)  # sealed under the typed passphrase
    home.unlock_node(PASSPHRASE)
    async with Replica.open(home.store_path) as replica:
        circles = await load_circle_items(replica, home.members()[0].member)
        state = await replica.auth_state(circles[0].circle)
    assert [c.name for c in circles] == ["Garden"]
    assert state.genesis is not None
    assert state.genesis.purpose == "Grow food together"


async def test_first_run_refuses_mismatched_passphrases(tmp_path: Path) -> None:
    """Two different passphrases: a notification says so, and nothing is written."""
    home = NodeHome(tmp_path / "home")
    notes = Notes()
    app = CircleNodeApp(home)
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        for text in ("alice", "one", "two", "Garden"):
            await type_text(pilot, text)
            await pilot.press("enter")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: notes.any("passphrases differ"), "the notification")
        assert isinstance(app.screen, SetupScreen)
    assert not home.is_initialised()


async def test_unlock_wrong_then_right_passphrase(node: Node) -> None:
    """A wrong passphrase is a notification and the screen stays; the right one unlocks."""
    notes = Notes()
    app = CircleNodeApp(node.home)
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        assert isinstance(app.screen, UnlockScreen)
        await type_keys(pilot, "wrong guess")
        await pilot.press("enter")
        await wait_until(pilot, lambda: notes.any("Wrong passphrase", "alice"), "the error")
        assert isinstance(app.screen, UnlockScreen)
        assert "wrong guess" not in screen_text(app)
        await wait_until(pilot, lambda: not app.screen.query_one("#passphrase").disabled, "retry")
        await unlock(pilot)
        assert app.screen.sub_title.startswith("alice")


async def test_unlock_chooses_among_members(tmp_path: Path) -> None:
    """With several member keys, the member is chosen on the unlock screen."""
    node = await make_node(tmp_path / "home", bob_in_home=True)
    app = CircleNodeApp(node.home)
    async with app.run_test(size=(80, 24)) as pilot:
        select = app.screen.query_one("Select")
        select.value = node.bob.public.hex()  # type: ignore[attr-defined]
        app.screen.query_one("#passphrase").focus()
        await unlock(pilot)
        assert app.screen.sub_title.startswith("bob")
