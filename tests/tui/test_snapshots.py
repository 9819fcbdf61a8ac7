"""Snapshots (SVG) of every screen at 80x24 and 120x40, compared with the accepted ones in
``__snapshots__/``. Regenerate after a deliberate change with
``.venv/bin/pytest tests/tui/test_snapshots.py --snapshot-update`` and look at them.

Deterministic by construction: keys from fixed seeds, Yjs client ids and genesis nonces
from counters, every record signed at a fixed time, the app's clock fixed (so "today" and
"2 h ago" never move), text cursors not blinking, LAN discovery off, and the home given
as the relative path ``home`` (the unlock screen shows it) under a temporary directory.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input
from tui_kit import Node, loaded, make_node, type_text, wait_until

import node.governance
import node.local
import node.store.store
from node.crypto.keys import KeyPair
from node.domain.governance.records import ProposalRec
from node.governance import amend, create_proposal, take_position
from node.home import NodeHome
from node.local import create_circle
from node.replica import Replica
from node.store.peers import PeerBook
from node.tui.app import CircleNodeApp
from node.tui.screens.bundles import BundlesScreen
from node.tui.screens.circle import CircleScreen
from node.tui.screens.dashboard import DashboardScreen
from node.tui.screens.peers import PeersScreen
from node.tui.screens.proposal import ProposalScreen
from node.tui.session import Options
from node.tui.widgets.tables import ProposalsTable

NOW = 1_780_000_000  # 2026-05-28 20:26 UTC: the app's clock
SIGNED = NOW - 3 * 86_400  # every record: 2026-05-25
SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
Snap = Callable[..., bool]
Step = Callable[[Pilot[None]], Awaitable[None]]


class FixedDate(date):
    @classmethod
    def today(cls) -> FixedDate:
        return cls(2026, 5, 25)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> NodeHome:
    """The furnished node at ``./home``, built with every source of chance fixed."""
    monkeypatch.chdir(tmp_path)
    seeds = itertools.count(1)
    ycids = itertools.count(1001)
    nonces = itertools.count(1)

    def generate(cls: type[KeyPair]) -> KeyPair:
        return KeyPair.from_seed(next(seeds).to_bytes(32, "big"))

    monkeypatch.setattr(KeyPair, "generate", classmethod(generate))
    monkeypatch.setattr(node.local, "new_ycid", lambda: next(ycids))
    fixed_os = SimpleNamespace(urandom=lambda n: next(nonces).to_bytes(n, "big"))
    monkeypatch.setattr(node.local, "os", fixed_os)
    monkeypatch.setattr(node.local, "time", SimpleNamespace(time=lambda: SIGNED))
    monkeypatch.setattr(node.governance, "date", FixedDate)
    monkeypatch.setattr(node.store.store, "time", SimpleNamespace(time=lambda: SIGNED))
    built = asyncio.run(furnish(Path("home")))
    monkeypatch.undo()  # the app runs with the real modules; only its clock is fixed
    monkeypatch.chdir(tmp_path)
    return built.home


async def furnish(path: Path) -> Node:
    """Garden with a sub-circle, an amended proposal with an objection, an agreed one, and
    two peers: one synced two hours ago, one whose last contact failed."""
    node = await make_node(path)
    async with Replica.open(node.home.store_path) as replica:
        await create_circle(
            replica,
            node.alice_key,
            name="Watering",
            creator_name="alice",
            home=node.home.node_public,
            purpose="Keep the beds alive",
            parent=node.circle,
        )
        body = ProposalRec(title="Water the beds", driver="dry beds", text="Water daily.\nAt 8.")
        pid, _ = await create_proposal(replica, node.bob, node.circle, body)
        await take_position(replica, node.bob, pid.hex(), "objection", "wasteful at noon")
        await amend(replica, node.bob, "Water daily.\nAt 20.", pid.hex())
        body = ProposalRec(title="Buy hoses", driver="leaky cans", text="Two hoses.")
        done, _ = await create_proposal(replica, node.bob, node.circle, body)
        await take_position(replica, node.bob, done.hex(), "consent", "")
        await take_position(replica, node.alice_key, done.hex(), "consent", "")
        book = PeerBook(replica.store)
        await book.add("http://10.0.0.7:7400", "hall", now=NOW - 86_400)
        hall = KeyPair.from_seed(b"\x77" * 32).public
        await book.record_contact(
            "http://10.0.0.7:7400", node=hall, ops_sent=12, ops_received=5, now=NOW - 7200
        )
        await book.add("http://10.0.0.9:7400", "kitchen", now=NOW - 86_400)
        await book.record_contact(
            "http://10.0.0.9:7400", node=None, error="connection refused", now=NOW - 600
        )
    return node


def app_for(home: NodeHome) -> CircleNodeApp:
    return CircleNodeApp(NodeHome(home.path), Options(clock=lambda: NOW, lan=False))


async def unlocked(pilot: Pilot[None]) -> None:
    await type_text(pilot, "correct horse")
    await pilot.press("enter")
    await wait_until(pilot, lambda: loaded(pilot.app, DashboardScreen), "the dashboard", 20)
    await settle(pilot)


async def settle(pilot: Pilot[None]) -> None:
    """Let the screen finish drawing, and stop every text cursor blinking (a blink every
    0.5 s would make the picture depend on when it is taken)."""
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


async def open_screen(pilot: Pilot[None], keys: tuple[str, ...], kind: type[Any]) -> None:
    await unlocked(pilot)
    await pilot.press(*keys)
    await wait_until(pilot, lambda: loaded(pilot.app, kind), kind.__name__, 20)
    await settle(pilot)


async def to_proposal(pilot: Pilot[None]) -> None:
    await open_screen(pilot, ("t", "enter"), CircleScreen)
    table = pilot.app.screen.query_one(ProposalsTable)
    key = next(k for k in table.rows if str(table.get_row(k)[-1]) == "Water the beds")
    table.move_cursor(row=table.get_row_index(key))
    await pilot.press("enter")
    await wait_until(pilot, lambda: loaded(pilot.app, ProposalScreen), "the proposal", 20)
    await settle(pilot)


@pytest.mark.parametrize("size", SIZES)
def test_first_run(
    snap_compare: Snap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    """You should see the first-run form: "No node at fresh yet", then node name, your
    name, passphrase twice, the first circle's name and purpose, and a Create button."""
    monkeypatch.chdir(tmp_path)
    app = CircleNodeApp(NodeHome(Path("fresh")), Options(clock=lambda: NOW, lan=False))
    assert snap_compare(app, terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_unlock(snap_compare: Snap, home: NodeHome, size: tuple[int, int]) -> None:
    """You should see "Unlock node test-node", the home path `home`, a member chooser
    offering alice (the first of the node's member keys) and an empty passphrase field."""
    assert snap_compare(app_for(home), terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_dashboard(snap_compare: Snap, home: NodeHome, size: tuple[int, int]) -> None:
    """You should see the circle tree (Garden, manage, 1 open, with Watering under it),
    the inbox with one row "position v1  Garden  Water the beds" (versions count from 0),
    and the footer with Inbox, Decisions, Sync, Peers, Bundles, Quit and Help."""
    assert snap_compare(app_for(home), terminal_size=size, run_before=unlocked)


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_sync_panel(snap_compare: Snap, home: NodeHome, size: tuple[int, int]) -> None:
    """You should see the Sync tab: hall "ok", contacted "2 h ago", 12 sent and 5
    received; kitchen "error", never contacted; below, hall's URL, its node key and
    last contact."""

    async def run(pilot: Pilot[None]) -> None:
        await unlocked(pilot)
        await pilot.press("s")
        await settle(pilot)

    assert snap_compare(app_for(home), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_circle(snap_compare: Snap, home: NodeHome, size: tuple[int, int]) -> None:
    """You should see circle Garden, "Grow food together", and the Proposals tab: "Water
    the beds" in consent_round marked `*` (it awaits alice) and "Buy hoses" agreed, both
    created 2026-05-25."""

    async def run(pilot: Pilot[None]) -> None:
        await open_screen(pilot, ("t", "enter"), CircleScreen)

    assert snap_compare(app_for(home), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_proposal(snap_compare: Snap, home: NodeHome, size: tuple[int, int]) -> None:
    """You should see "Water the beds" by bob on 2026-05-25 in consent_round, its text at
    version 1 ("Water daily. At 20."), the diff against version 0 (-At 8. +At 20.), alice
    and bob waiting on version 1, "waiting for you", and under earlier versions bob's
    objection on v0, "wasteful at noon", which no longer counts."""
    assert snap_compare(app_for(home), terminal_size=size, run_before=to_proposal)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare: Snap, home: NodeHome, size: tuple[int, int]) -> None:
    """You should see the Keys dialog over the dashboard: first the keys that work
    everywhere (q, ?, f1, esc, ^p), then the dashboard's (i, d, s, t, p Peers, b Bundles,
    r), then the circle screen's heading, with a scroll bar for the rest."""

    async def run(pilot: Pilot[None]) -> None:
        await unlocked(pilot)
        await pilot.press("question_mark")
        await settle(pilot)

    assert snap_compare(app_for(home), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_peers(snap_compare: Snap, home: NodeHome, size: tuple[int, int]) -> None:
    """You should see the Peers screen: hall offline (its last contact, 2 h ago, is older
    than 5 min) with 0 new ops (all were stored before it), 12 sent, 5 received; kitchen
    offline (its contact failed), never contacted, every op new; hall's URL, node key and
    last contact below; then the empty LAN list and "LAN discovery is off."."""

    async def run(pilot: Pilot[None]) -> None:
        await open_screen(pilot, ("p",), PeersScreen)

    assert snap_compare(app_for(home), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_bundles(snap_compare: Snap, home: NodeHome, size: tuple[int, int]) -> None:
    """You should see the Bundles screen on its Export tab: the file field (focused), the
    circles Garden and Watering to tick (with short ids), the For and Since fields, and
    the "Replace an existing file" box beside the Export button."""

    async def run(pilot: Pilot[None]) -> None:
        await open_screen(pilot, ("b",), BundlesScreen)

    assert snap_compare(app_for(home), terminal_size=size, run_before=run)


def test_add_peer_dialog(snap_compare: Snap, home: NodeHome) -> None:
    """You should see the "Add a peer" dialog over the peers screen: URL and Name fields,
    the note that the node key is pinned on the first sync, Add and Cancel."""

    async def run(pilot: Pilot[None]) -> None:
        await open_screen(pilot, ("p",), PeersScreen)
        await pilot.press("n")
        await settle(pilot)

    assert snap_compare(app_for(home), terminal_size=(80, 24), run_before=run)
