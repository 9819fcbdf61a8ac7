"""Helpers of the TUI tests: a real node home, waiting on conditions, reading the screen."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from textual.app import App
from textual.message import Message
from textual.notifications import Notify
from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from node.crypto.keys import KeyPair
from node.domain.auth import Level
from node.home import DEFAULT_LISTEN, MemberEntry, NodeHome
from node.local import add_member
from node.replica import Replica
from node.tui.actions import new_circle
from node.tui.screens.base import DataScreen

PASSPHRASE = "correct horse"


@dataclass
class Node:
    """An initialised home: alice's key in it, circle Garden; bob a write member whose key
    the test holds (he acts "from another process" through his own Replica)."""

    home: NodeHome
    alice: MemberEntry
    alice_key: KeyPair
    bob: KeyPair
    circle: bytes


async def make_node(path: Path, *, bob_in_home: bool = False) -> Node:
    home = NodeHome(path)
    home.init("test-node", DEFAULT_LISTEN, PASSPHRASE)
    alice_key = home.create_member("alice", PASSPHRASE)
    bob = home.create_member("bob", PASSPHRASE) if bob_in_home else KeyPair.generate()
    alice = home.members()[0]
    async with Replica.open(home.store_path) as replica:
        circle = await new_circle(replica, home, alice, alice_key, "Garden", "Grow food together")
        await add_member(
            replica,
            alice_key,
            circle,
            member=bob.public,
            name="bob",
            level=Level.WRITE,
            home=home.node_public,
        )
    return Node(home, alice, alice_key, bob, circle)


@dataclass
class Notes:
    """Every notification the app showed (a ``run_test`` message hook)."""

    seen: list[str] = field(default_factory=list)

    def __call__(self, message: Message) -> None:
        if isinstance(message, Notify):
            self.seen.append(message.notification.message)

    def any(self, *words: str) -> bool:
        return any(all(w in text for w in words) for text in self.seen)


async def wait_until(
    pilot: Pilot[None], condition: Callable[[], bool], what: str, within: float = 5.0
) -> float:
    """Pause the app until ``condition()``; the seconds it took. AssertionError on timeout."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not condition():
        if loop.time() - start > within:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await pilot.pause(0.05)
    return loop.time() - start


async def type_keys(pilot: Pilot[None], text: str) -> None:
    """Type ``text`` key by key (slow: about 0.1 s a key under Pilot)."""
    await pilot.press(*text)


async def type_text(pilot: Pilot[None], text: str) -> None:
    """Type ``text`` into the focused input or text area at once, as a paste would."""
    focused = pilot.app.focused
    if isinstance(focused, Input):
        focused.insert_text_at_cursor(text)
    elif isinstance(focused, TextArea):
        focused.insert(text)
    else:
        raise AssertionError(f"cannot type into {focused!r}")
    await pilot.pause()


def screen_text(app: App[None]) -> str:
    """What the terminal shows now, as plain text (one line per row)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system=None,
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    render = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    console.print(render)
    return console.export_text(styles=False)


def loaded(app: App[None], kind: type[DataScreen]) -> bool:
    """The app shows a ``kind`` screen and it has shown its data."""
    return isinstance(app.screen, kind) and app.screen.loaded


async def unlock(pilot: Pilot[None], passphrase: str = PASSPHRASE) -> None:
    """Type the passphrase on the unlock screen and wait for the loaded dashboard."""
    from node.tui.screens.dashboard import DashboardScreen

    await type_text(pilot, passphrase)
    await pilot.press("enter")
    await wait_until(pilot, lambda: loaded(pilot.app, DashboardScreen), "the dashboard")
