"""One circle: purpose, proposals, members with levels, logbook, hosts; ``n`` proposes."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from node.errors import NodeError
from node.tui.actions import ProposalDraft, propose
from node.tui.data import CircleData, level_name, load_circle_data, load_peers, short
from node.tui.messages import CircleLoaded
from node.tui.screens.base import DataScreen
from node.tui.screens.den import DenScreen
from node.tui.screens.elections import ElectionsScreen
from node.tui.screens.forms import NewProposalScreen
from node.tui.screens.ideas import IdeasScreen
from node.tui.screens.joins import JoinsScreen
from node.tui.screens.proposal import ProposalScreen
from node.tui.session import Session
from node.tui.widgets.tables import (
    LogbookTable,
    MembersTable,
    ProposalsTable,
    parse_proposal_key,
)

TABS = ("proposals", "members", "logbook", "about")


class CircleScreen(DataScreen):
    """A circle's purpose, proposals (``*`` marks those awaiting you), members, logbook."""

    BINDINGS = [
        Binding("n", "new_proposal", "New proposal"),
        Binding("1", "panel('proposals')", "Proposals", show=False),
        Binding("2", "panel('members')", "Members", show=False),
        Binding("3", "panel('logbook')", "Logbook", show=False),
        Binding("4", "panel('about')", "About", show=False),
        Binding("e", "elections", "Elections"),
        Binding("i", "ideas", "Ideas", show=False),
        Binding("j", "joins", "Join requests", show=False),
        Binding("a", "den", "Angels Den", show=False),
        Binding("r", "refresh", "Refresh"),
        Binding("escape", "app.back", "Back"),
    ]

    def __init__(self, session: Session, circle: bytes) -> None:
        super().__init__(session)
        self.circle = circle
        self.data: CircleData | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="circle-head")
        with TabbedContent(id="circle-panels", initial="proposals"):
            with TabPane("1 Proposals", id="proposals"):
                yield ProposalsTable(id="proposals-table")
            with TabPane("2 Members", id="members"):
                yield MembersTable(id="members-table")
            with TabPane("3 Logbook", id="logbook"):
                yield LogbookTable(id="logbook-table")
            with TabPane("4 About", id="about"):
                yield Static(id="circle-about")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.title = "Circle"
        self.query_one(ProposalsTable).focus()

    def load(self) -> None:
        self._load()

    @work(exclusive=True, group="load")
    async def _load(self) -> None:
        replica = self.session.replica
        try:
            peers = {p.node: p.name or p.url for p in await load_peers(replica) if p.node}
            labels = self.session.node_labels(peers)
            data = await load_circle_data(replica, self.circle, self.session.me, labels)
        except NodeError as exc:
            self.fail(exc)
            return
        self.post_message(CircleLoaded(data))

    def on_circle_loaded(self, message: CircleLoaded) -> None:
        data = self.data = message.data
        self.title = data.name
        self.sub_title = f"you: {level_name(data.my_level)}"
        head = Text(data.name, style="bold")
        head.append(f"  {short(data.circle)}", style="dim")
        head.append("\n" + (data.purpose or "(no purpose given)"))
        self.query_one("#circle-head", Static).update(head)
        self.query_one(ProposalsTable).show(data.circle, data.proposals)
        self.query_one(MembersTable).show(data.members)
        self.query_one(LogbookTable).show(data.circle, data.logbook)
        self.query_one("#circle-about", Static).update(about_text(data))
        panels = self.query_one(TabbedContent)
        panels.get_tab("proposals").label = f"1 Proposals ({len(data.proposals)})"
        panels.get_tab("members").label = f"2 Members ({len(data.members)})"
        self.loaded = True

    # ---- actions ------------------------------------------------------------------------

    def action_panel(self, panel: str) -> None:
        self.query_one(TabbedContent).active = panel
        widget = {
            "proposals": ProposalsTable,
            "members": MembersTable,
            "logbook": LogbookTable,
        }.get(panel)
        if widget is not None:
            self.query_one(widget).focus()

    def action_refresh(self) -> None:
        self.reload()

    def action_elections(self) -> None:
        self.app.push_screen(ElectionsScreen(self.session, self.circle))

    def action_ideas(self) -> None:
        self.app.push_screen(IdeasScreen(self.session, self.circle))

    def action_joins(self) -> None:
        self.app.push_screen(JoinsScreen(self.session, self.circle))

    def action_den(self) -> None:
        self.app.push_screen(DenScreen(self.session))

    def action_new_proposal(self) -> None:
        name = self.data.name if self.data else short(self.circle)
        self.app.push_screen(NewProposalScreen(name), self._create)

    def _create(self, draft: ProposalDraft | None) -> None:
        if draft is not None:
            self._propose(draft)

    @work(group="act")
    async def _propose(self, draft: ProposalDraft) -> None:
        try:
            pid = await propose(self.session, self.circle, draft)
        except NodeError as exc:
            self.fail(exc)
            return
        text = f"Created proposal {draft.title!r}. Take your position with c, o or x."
        self.notify(text, markup=False)
        self.reload()
        self.app.push_screen(ProposalScreen(self.session, self.circle, pid))

    @on(DataTable.RowSelected, "#proposals-table, #logbook-table")
    def open_proposal(self, event: DataTable.RowSelected) -> None:
        found = parse_proposal_key(event.row_key.value)
        if found is not None:
            circle, proposal = found
            self.app.push_screen(ProposalScreen(self.session, circle, proposal))


def about_text(data: CircleData) -> Text:
    text = Text()
    rows = [
        ("Circle", f"{data.name}  (id {data.circle.hex()})"),
        ("Purpose", data.purpose or "-"),
        ("Parent", data.parent or "- (a top circle)"),
        ("Hosts", ", ".join(data.hosts) or "-"),
        ("You", level_name(data.my_level)),
    ]
    for label, value in rows:
        text.append(f"{label:<9}", style="bold")
        text.append(value + "\n")
    text.rstrip()
    return text
