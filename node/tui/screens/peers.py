"""The peers screen: every peer with its status, last contact and the ops new since; add,
remove (after a confirm) and "sync now"; and the nodes seen on the LAN, offered, never
trusted: adding one is the user's choice, and the first sync pins its node key.

"Sync now" runs the code behind ``circle-node sync --once``
(:func:`node.commands.sync_run.sync_and_record`) on the TUI's own replica, so the peers
table records the contact exactly as the CLI would.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, ProgressBar, Static

from node.crypto.keys import KeyPair
from node.errors import NodeError
from node.store.peers import PeerBook
from node.tui.ops_data import PeerRow, load_peer_rows
from node.tui.screens.base import DataScreen
from node.tui.screens.node_key import with_node_key
from node.tui.screens.ops_forms import AddPeerScreen, ConfirmScreen
from node.tui.session import Session
from node.tui.widgets.tables import Cell, RowTable, ago, peer_detail

if TYPE_CHECKING:
    from node.sync.discovery import Discovered

SYNC_SECONDS = 120.0  # as `sync --once`'s default --timeout

STATUS_STYLE = {"online": "bold green", "offline": "bold red", "never": "dim"}


@dataclass
class PeersLoaded(Message):
    rows: list[PeerRow]


@dataclass
class LanFound(Message):
    found: Discovered


@dataclass
class SyncDone(Message):
    url: str
    error: str | None
    text: str


class PeerRowsTable(RowTable):
    COLUMNS = (
        ("Status", 8),
        ("Peer", 18),
        ("Last contact", 12),
        ("New", 6),
        ("Sent", 6),
        ("Recv", None),
    )

    def show(self, rows: list[PeerRow], now: float) -> None:
        def cells(row: PeerRow) -> tuple[Cell, ...]:
            peer = row.peer
            return (
                Text(row.status, style=STATUS_STYLE[row.status]),
                peer.name or peer.url,
                ago(peer.last_contact, now),
                str(row.new_ops),
                str(peer.ops_sent),
                str(peer.ops_received),
            )

        self.fill((row.peer.url, cells(row)) for row in rows)


class LanTable(RowTable):
    COLUMNS = (("Node", 17), ("Name", 16), ("URL", None))

    def show(self, found: list[Discovered]) -> None:
        self.fill((d.url, (d.node_id, d.name or "-", d.url)) for d in found)


class PeersScreen(DataScreen):
    """Peers: who this node syncs with, and nodes on the LAN it could."""

    BINDINGS = [
        Binding("n", "add", "Add"),
        Binding("x", "remove", "Remove"),
        Binding("s", "sync", "Sync now"),
        Binding("l", "focus_lan", "LAN"),
        Binding("r", "refresh", "Refresh"),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.rows: dict[str, PeerRow] = {}
        self.found: dict[str, Discovered] = {}  # by node id, as announced (unverified)
        self.syncing: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="peers-screen"):
            yield Static("Peers", classes="pane-title")
            yield PeerRowsTable(id="peer-rows")
            yield Static(id="peer-info")
            yield Static(
                "No peers yet: press n to add one (its URL, http://HOST:PORT).",
                id="peers-empty",
                classes="hint",
            )
            yield ProgressBar(id="sync-progress", show_eta=False)
            yield Static("On the LAN (not trusted: Enter adds one)", classes="pane-title")
            yield LanTable(id="lan-table")
            yield Static("", id="lan-note", classes="hint")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.title = "circle-node"
        self.sub_title = "Peers"
        self.query_one("#peers-empty").display = False
        self.query_one("#sync-progress").display = False
        self.query_one(PeerRowsTable).focus()
        note = self.query_one("#lan-note", Static)
        if self.session.options.lan:
            note.update("Looking for nodes on the LAN…")
            self._browse()
        else:
            note.update("LAN discovery is off.")

    # ---- loading ------------------------------------------------------------------------

    def load(self) -> None:
        self._load()

    @work(exclusive=True, group="load")
    async def _load(self) -> None:
        try:
            rows = await load_peer_rows(self.session.replica, self.session.options.clock())
        except NodeError as exc:
            self.fail(exc)
            return
        self.post_message(PeersLoaded(rows))

    def on_peers_loaded(self, message: PeersLoaded) -> None:
        self.rows = {row.peer.url: row for row in message.rows}
        table = self.query_one(PeerRowsTable)
        table.show(message.rows, self.session.options.clock())
        self.query_one("#peers-empty").display = not message.rows
        self.show_info(table.selected_key)
        self.loaded = True

    @on(DataTable.RowHighlighted, "#peer-rows")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_info(event.row_key.value)

    def show_info(self, url: str | None) -> None:
        row = self.rows.get(url or "")
        info = self.query_one("#peer-info", Static)
        info.display = row is not None
        if row is not None:
            text = peer_detail(row.peer, self.session.options.clock())
            text.append(f"\n{row.new_ops} op(s) stored here since the last contact")
            info.update(text)

    # ---- LAN ----------------------------------------------------------------------------

    @work(group="lan")
    async def _browse(self) -> None:
        """Browse (never announce) until the screen goes; found nodes are only offered."""
        from node.sync.discovery import Discovery  # zeroconf: loaded when first used

        options = self.session.options

        def found(node: Discovered) -> None:
            self.post_message(LanFound(node))

        discovery = Discovery(
            self.session.home.node_public,
            0,
            interfaces=options.lan_interfaces,
            on_found=found,
            announce=False,
        )
        try:
            async with discovery:
                self.query_one("#lan-note", Static).update("Looking for nodes on the LAN…")
                await discovery_forever()
        except NodeError as exc:
            self.query_one("#lan-note", Static).update(str(exc))

    def on_lan_found(self, message: LanFound) -> None:
        self.found[message.found.node_id] = message.found
        found = sorted(self.found.values(), key=lambda d: (d.name, d.node_id))
        self.query_one(LanTable).show(found)
        self.query_one("#lan-note", Static).update(
            f"{len(found)} node(s) seen; nothing syncs with one until you add it."
        )

    @on(DataTable.RowSelected, "#lan-table")
    def add_found(self, event: DataTable.RowSelected) -> None:
        found = next((d for d in self.found.values() if d.url == event.row_key.value), None)
        if found is not None:
            self.app.push_screen(AddPeerScreen(found.url, found.name), self._added)

    # ---- actions ------------------------------------------------------------------------

    def action_add(self) -> None:
        self.app.push_screen(AddPeerScreen(), self._added)

    def _added(self, answer: tuple[str, str | None] | None) -> None:
        if answer is not None:
            self._add(*answer)

    @work(group="write")
    async def _add(self, url: str, name: str | None) -> None:
        try:
            peer = await PeerBook(self.session.replica.store).add(url, name)
        except NodeError as exc:
            self.fail(exc)
            return
        self.session.wrote()
        self.notify(f"Added peer {peer.name or peer.url}: press s to sync now.", markup=False)
        self.reload()

    def action_remove(self) -> None:
        url = self.query_one(PeerRowsTable).selected_key
        row = self.rows.get(url or "")
        if row is None:
            return
        label = row.peer.name or row.peer.url

        def answered(yes: bool | None) -> None:
            if yes:
                self._remove(row.peer.url)

        question = f"Remove peer {label}? This node stops syncing with it."
        self.app.push_screen(ConfirmScreen(question), answered)

    @work(group="write")
    async def _remove(self, url: str) -> None:
        try:
            peer = await PeerBook(self.session.replica.store).remove(url)
        except NodeError as exc:
            self.fail(exc)
            return
        self.session.wrote()
        self.notify(f"Removed peer {peer.name or peer.url}.", markup=False)
        self.reload()

    def action_sync(self) -> None:
        url = self.query_one(PeerRowsTable).selected_key
        row = self.rows.get(url or "")
        if row is None:
            self.notify("Choose a peer first (or add one with n).", severity="warning")
            return
        if self.syncing is not None:
            self.notify(f"Already syncing with {self.syncing}.", severity="warning")
            return
        why = "A sync proves this node's identity to the peer with the node key."
        with_node_key(self, why, lambda key: self._start_sync(row, key))

    def _start_sync(self, row: PeerRow, key: KeyPair) -> None:
        label = row.peer.name or row.peer.url
        self.syncing = label
        bar = self.query_one("#sync-progress", ProgressBar)
        bar.update(total=None, progress=0)  # indeterminate while it runs
        bar.display = True
        self.notify(f"Syncing with {label}…", markup=False)
        self._sync(row.peer.url, row.peer.node, label, key)

    @work(group="sync", exclusive=True)
    async def _sync(self, url: str, pin: bytes | None, label: str, key: KeyPair) -> None:
        from node.commands.sync_run import sync_and_record  # aiohttp: loaded when first used

        try:
            settings = self.session.home.settings()
            (result,) = await sync_and_record(
                self.session.replica,
                key,
                [(url, pin)],
                SYNC_SECONDS,
                settings.connect_timeout,
                settings.handshake_timeout,
            )
        except NodeError as exc:
            self.post_message(SyncDone(url, str(exc), ""))
            return
        stats = result.stats
        text = f"{label}: {stats.ops_sent} ops sent, {stats.ops_received} received."
        self.post_message(SyncDone(url, stats.error, text))

    def on_sync_done(self, message: SyncDone) -> None:
        self.syncing = None
        self.session.wrote()  # received ops and the contact were written through this replica
        bar = self.query_one("#sync-progress", ProgressBar)
        bar.update(total=1, progress=1)
        bar.display = False
        if message.error is not None:
            self.notify(message.error, title="Sync failed", severity="error", markup=False)
        else:
            self.notify(message.text, title="Synced", markup=False)
        self.reload()

    def action_focus_lan(self) -> None:
        self.query_one(LanTable).focus()

    def action_refresh(self) -> None:
        self.reload()


async def discovery_forever() -> None:
    """Keep browsing until the worker is cancelled (the screen is dismissed)."""
    await asyncio.Event().wait()
