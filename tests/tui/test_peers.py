"""The peers screen under Pilot: add, sync now against a real node served over aiohttp on
loopback, remove after a confirm, and nodes found on the LAN offered but never trusted."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, ProgressBar
from tui_kit import PASSPHRASE, Node, Notes, loaded, screen_text, type_text, unlock, wait_until

from node.crypto.keys import KeyPair
from node.domain.auth import Level
from node.local import add_member
from node.replica import Replica
from node.service import NodeService, ServiceConfig
from node.store.peers import PeerBook
from node.sync.discovery import Discovery
from node.tui.app import CircleNodeApp
from node.tui.screens.ops_forms import AddPeerScreen, ConfirmScreen, NodePassphraseScreen
from node.tui.screens.peers import LanTable, PeerRowsTable, PeersScreen
from node.tui.session import Options

LOOPBACK = ["127.0.0.1"]


async def open_peers(pilot: Pilot[None]) -> PeersScreen:
    await unlock(pilot)
    await pilot.press("p")
    await wait_until(pilot, lambda: loaded(pilot.app, PeersScreen), "the peers screen")
    screen = pilot.app.screen
    assert isinstance(screen, PeersScreen)
    return screen


async def peers_of(node: Node) -> list[str]:
    async with Replica.open(node.home.store_path) as replica:
        return [p.url for p in await PeerBook(replica.store).all()]


async def test_add_sync_now_and_remove_a_peer(node: Node, tmp_path: Path) -> None:
    """Add node B by URL, sync now (B gets the circle it hosts, B's key is pinned, the row
    turns online), then remove it after answering yes."""
    b_key = KeyPair.generate()
    async with Replica.open(node.home.store_path) as replica:
        # a member homed on B makes B a host of Garden: a sync sends it the circle
        await add_member(
            replica,
            node.alice_key,
            node.circle,
            member=KeyPair.generate().public,
            name="carol",
            level=Level.WRITE,
            home=b_key.public,
        )
        a_heights = await replica.store.heights_for(node.circle)
    notes = Notes()
    async with (
        Replica.open(tmp_path / "b.db") as b_replica,
        NodeService(b_replica, b_key, ServiceConfig(listen="127.0.0.1:0")) as served,
    ):
        assert served.server is not None
        url = served.server.url
        app = CircleNodeApp(node.home, Options(lan=False))
        async with app.run_test(size=(100, 30), message_hook=notes) as pilot:
            screen = await open_peers(pilot)
            assert "No peers yet" in screen_text(app)
            await pilot.press("n")
            assert isinstance(app.screen, AddPeerScreen)
            await type_text(pilot, url)
            await pilot.press("enter")
            await type_text(pilot, "bee")
            await pilot.press("enter")
            table = screen.query_one(PeerRowsTable)
            await wait_until(pilot, lambda: table.row_count == 1, "the new peer's row")
            assert "never" in screen_text(app)

            await pilot.press("s")
            assert isinstance(app.screen, NodePassphraseScreen)
            await type_text(pilot, PASSPHRASE)
            await pilot.press("enter")
            bar = screen.query_one("#sync-progress", ProgressBar)
            await wait_until(pilot, lambda: notes.any("bee:", "ops sent"), "the sync", 30)
            assert not notes.any("Sync failed")
            await wait_until(pilot, lambda: "online" in screen_text(app), "the online row")
            assert not bar.display  # the bar is shown while the sync runs, then hidden
            assert "just now" in screen_text(app)
            assert await b_replica.store.heights_for(node.circle) == a_heights
            async with Replica.open(node.home.store_path) as replica:
                (peer,) = await PeerBook(replica.store).all()
            assert peer.node == b_key.public  # pinned on first contact
            assert peer.ops_sent > 0

            await pilot.press("x")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")  # no: nothing removed
            await pilot.pause()
            assert await peers_of(node) == [url]
            await pilot.press("x", "y")
            await wait_until(pilot, lambda: table.row_count == 0, "the row to go")
    assert await peers_of(node) == []


async def test_a_failed_sync_is_a_notification_and_marks_the_peer_offline(node: Node) -> None:
    """Nothing listens at the peer's address: the sync fails with a notification naming
    the problem, and the peer shows offline with the error."""
    async with Replica.open(node.home.store_path) as replica:
        await PeerBook(replica.store).add("http://127.0.0.1:9", "nobody")
    notes = Notes()
    app = CircleNodeApp(node.home, Options(lan=False))
    async with app.run_test(size=(100, 30), message_hook=notes) as pilot:
        await open_peers(pilot)
        await pilot.press("s")
        await type_text(pilot, "wrong passphrase")
        await pilot.press("enter")
        await wait_until(pilot, lambda: notes.any("Wrong passphrase"), "the refusal")
        await pilot.press("s")
        await type_text(pilot, PASSPHRASE)
        await pilot.press("enter")
        await wait_until(pilot, lambda: "offline" in screen_text(app), "the offline row", 30)
    assert notes.any("127.0.0.1:9")  # the error names the address


async def test_bad_url_in_the_add_dialog_is_refused(node: Node) -> None:
    """A URL the CLI would refuse is a notification; the dialog stays and nothing is added."""
    notes = Notes()
    app = CircleNodeApp(node.home, Options(lan=False))
    async with app.run_test(size=(100, 30), message_hook=notes) as pilot:
        await open_peers(pilot)
        await pilot.press("n")
        await type_text(pilot, "ftp://somewhere")
        await pilot.press("enter", "enter")
        await pilot.pause()
        assert isinstance(app.screen, AddPeerScreen)
        assert notes.seen
    assert await peers_of(node) == []


async def test_a_node_on_the_lan_is_offered_and_added_only_when_chosen(node: Node) -> None:
    """A node announcing itself on loopback appears in the LAN list, is not a peer until
    the user adds it, and Enter on it opens the add dialog with its URL filled in."""
    other = KeyPair.generate()
    app = CircleNodeApp(node.home, Options(lan=True, lan_interfaces=LOOPBACK))
    async with Discovery(other.public, 7409, name="kitchen", interfaces=LOOPBACK):
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await open_peers(pilot)
            lan = screen.query_one(LanTable)
            await wait_until(pilot, lambda: lan.row_count == 1, "the LAN offer", 20)
            assert "kitchen" in screen_text(app)
            await asyncio.sleep(0.2)
            assert await peers_of(node) == []  # seen, not trusted
            await pilot.press("l", "enter")
            assert isinstance(app.screen, AddPeerScreen)
            assert app.screen.query_one("#url", Input).value == "http://127.0.0.1:7409"
            await pilot.press("enter", "enter")
            await wait_until(pilot, lambda: screen.query_one(PeerRowsTable).row_count == 1, "add")
    assert await peers_of(node) == ["http://127.0.0.1:7409"]
