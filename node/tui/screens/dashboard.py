"""The dashboard: my circles as a tree, my inbox, recent decisions, sync status per peer.

It paints in two steps so a big store shows something at once: the circle tree and the
peers (auth logs and one small table), then every circle's governance (inbox, decisions,
open counts), reused from the session's summary cache for circles that did not change.
"""

from __future__ import annotations

import time

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane, Tree

from node.errors import NodeError
from node.store.peers import Peer
from node.tui.data import (
    CircleItem,
    CircleSummary,
    load_circle_items,
    load_peers,
    recent_decisions,
)
from node.tui.messages import CirclesLoaded, SummariesLoaded
from node.tui.screens.base import DataScreen
from node.tui.screens.circle import CircleScreen
from node.tui.screens.proposal import ProposalScreen
from node.tui.session import Session
from node.tui.widgets.circle_tree import CircleTree
from node.tui.widgets.tables import (
    DecisionsTable,
    InboxTable,
    PeersTable,
    parse_inbox_key,
    parse_proposal_key,
    peer_detail,
)

PROGRESS_SECONDS = 1.0  # on a first load, show the circles done so far this often


class DashboardScreen(DataScreen):
    """What needs the unlocked member, across every circle this node holds."""

    BINDINGS = [
        Binding("i", "panel('inbox')", "Inbox"),
        Binding("d", "panel('decisions')", "Decisions"),
        Binding("s", "panel('sync')", "Sync"),
        # t and r stay out of the footer, so it fits 80 columns (help lists every key)
        Binding("t", "focus_tree", "Circles", show=False),
        Binding("p", "peers", "Peers"),
        Binding("b", "bundles", "Bundles"),
        Binding("r", "refresh", "Refresh", show=False),
        Binding("a", "den", "Angels Den", show=False),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._circles: list[CircleItem] = []
        self._counts: dict[bytes, int] = {}
        self._peers: dict[str, Peer] = {}
        self._summaries: list[CircleSummary] = []  # what the inbox and decisions show

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="dashboard"):
            with Vertical(id="circles-pane"):
                yield Static("Circles", classes="pane-title")
                yield CircleTree(id="circles")
                yield Static(
                    "No circles yet: create one with `circle-node circle create`.",
                    id="no-circles",
                    classes="hint",
                )
            with TabbedContent(id="panels", initial="inbox"):
                with TabPane("Inbox", id="inbox"):
                    yield InboxTable(id="inbox-table")
                    yield Static("Loading…", id="inbox-note", classes="hint")
                with TabPane("Decisions", id="decisions"):
                    yield DecisionsTable(id="decisions-table")
                with TabPane("Sync", id="sync"):
                    yield PeersTable(id="peers-table")
                    yield Static(id="peer-detail")
                    yield Static(
                        "No peers yet: add one with `circle-node peer add URL`.",
                        id="no-peers",
                        classes="hint",
                    )
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # DataScreen.on_mount runs too (Textual calls each class's handler): it loads
        self.title = "circle-node"
        self.sub_title = f"{self.session.member.name} on {self.session.home.config.name}"
        self.query_one("#no-circles").display = False
        self.query_one("#no-peers").display = False
        self.query_one(CircleTree).focus()

    # ---- loading ------------------------------------------------------------------------

    def load(self) -> None:
        self._load()

    @work(exclusive=True, group="load")
    async def _load(self) -> None:
        replica, me = self.session.replica, self.session.me
        try:
            circles = await load_circle_items(replica, me)
            self.post_message(CirclesLoaded(circles, await load_peers(replica)))
            today = self.session.options.today()
            cache = self.session.summaries
            summaries: list[CircleSummary] = []
            shown = time.monotonic()
            for item in circles:
                summaries.append(await cache.summary(replica, item.circle, item.name, me, today))
                if not self.loaded and time.monotonic() - shown > PROGRESS_SECONDS:
                    self.post_message(SummariesLoaded(list(summaries), len(circles)))
                    shown = time.monotonic()
        except NodeError as exc:
            self.fail(exc)
            return
        self.post_message(SummariesLoaded(summaries, len(circles)))
        await cache.save(replica)  # after the screen has what it needs: it may wait on a lock

    def on_circles_loaded(self, message: CirclesLoaded) -> None:
        self._circles = message.circles
        self.query_one(CircleTree).show_circles(message.circles, self._counts)
        self.query_one("#no-circles").display = not message.circles
        self._peers = {peer.url: peer for peer in message.peers}
        table = self.query_one(PeersTable)
        table.show(message.peers, self.session.options.clock())
        self.query_one("#no-peers").display = not message.peers
        self.show_peer(table.selected_key)

    def on_summaries_loaded(self, message: SummariesLoaded) -> None:
        summaries: list[CircleSummary] = message.summaries
        if [id(s) for s in summaries] != [id(s) for s in self._summaries]:
            self._show_summaries(summaries, message.complete)
        note = self.query_one("#inbox-note", Static)
        inbox_count = sum(len(s.inbox) for s in summaries)
        if message.complete:
            note.update("Nothing needs you now.")
            note.display = not inbox_count
        else:
            note.update(f"Loading… {len(summaries)} of {message.of} circles")
        more = "" if message.complete else "+"
        tab = self.query_one(TabbedContent).get_tab("inbox")
        tab.label = f"Inbox ({inbox_count}{more})"
        self.loaded = self.loaded or message.complete

    def _show_summaries(self, summaries: list[CircleSummary], complete: bool) -> None:
        """Redraw what changed. While a first load is in progress only rows of the circles
        done since are added: refilling a table of a thousand rows costs a redraw each time."""
        shown = self._summaries
        inbox = self.query_one(InboxTable)
        if not self.loaded and all(a is b for a, b in zip(shown, summaries, strict=False)):
            inbox.add_items([item for s in summaries[len(shown) :] for item in s.inbox])
        else:
            inbox.show([item for s in summaries for item in s.inbox])
        self._summaries = summaries
        self._counts = {s.circle: s.open_proposals for s in summaries}
        self.query_one(CircleTree).show_circles(self._circles, self._counts)
        self.query_one(DecisionsTable).show(recent_decisions(summaries))

    # ---- actions ------------------------------------------------------------------------

    def action_panel(self, panel: str) -> None:
        self.query_one(TabbedContent).active = panel
        table = {"inbox": InboxTable, "decisions": DecisionsTable, "sync": PeersTable}[panel]
        self.query_one(table).focus()

    def action_peers(self) -> None:
        from node.tui.screens.peers import PeersScreen  # zeroconf loads only when asked for

        self.app.push_screen(PeersScreen(self.session))

    def action_bundles(self) -> None:
        from node.tui.screens.bundles import BundlesScreen

        self.app.push_screen(BundlesScreen(self.session))

    def action_focus_tree(self) -> None:
        self.query_one(CircleTree).focus()

    def action_refresh(self) -> None:
        self.reload()

    def action_den(self) -> None:
        from node.tui.screens.den import DenScreen  # here: one small hunk in a shared file

        self.app.push_screen(DenScreen(self.session))

    @on(DataTable.RowHighlighted, "#peers-table")
    def peer_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_peer(event.row_key.value)

    def show_peer(self, url: str | None) -> None:
        peer = self._peers.get(url or "")
        detail = self.query_one("#peer-detail", Static)
        detail.display = peer is not None
        if peer is not None:
            detail.update(peer_detail(peer, self.session.options.clock()))

    @on(Tree.NodeSelected, "#circles")
    def open_circle(self, event: Tree.NodeSelected[bytes]) -> None:
        if event.node.data is not None:
            self.app.push_screen(CircleScreen(self.session, event.node.data))

    @on(DataTable.RowSelected, "#inbox-table, #decisions-table")
    def open_proposal(self, event: DataTable.RowSelected) -> None:
        other = parse_inbox_key(event.row_key.value)
        if other is not None:
            self.open_other(*other)
            return
        found = parse_proposal_key(event.row_key.value)
        if found is not None:
            circle, proposal = found
            self.app.push_screen(ProposalScreen(self.session, circle, proposal))

    def open_other(self, kind: str, circle: bytes) -> None:
        """A nomination row opens its circle's elections, a pledge row the Angels Den."""
        from node.tui.screens.den import DenScreen
        from node.tui.screens.elections import ElectionsScreen

        if kind == "nomination":
            self.app.push_screen(ElectionsScreen(self.session, circle))
        else:
            self.app.push_screen(DenScreen(self.session))
