"""One proposal: driver, text and its diff, tuners, state, positions; and the actions
``c`` consent, ``o`` concern, ``x`` objection (with a reason) and ``a`` amend."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Static

from node.errors import NodeError
from node.tui.actions import amend_proposal, can_act, take_position
from node.tui.data import short
from node.tui.messages import ProposalLoaded
from node.tui.proposal_data import PositionItem, ProposalData, load_proposal
from node.tui.screens.base import DataScreen
from node.tui.screens.forms import AmendScreen, ReasonScreen
from node.tui.session import Session
from node.tui.widgets.diff_view import DiffView
from node.tui.widgets.tables import state_text

POSITION_STYLES = {
    "consent": "green",
    "concern": "yellow",
    "objection": "bold red",
    "waiting": "dim",
}


class ProposalScreen(DataScreen):
    """A proposal and every write member's position on the version that counts."""

    BINDINGS = [
        Binding("c", "consent", "Consent"),
        Binding("o", "concern", "Concern"),
        Binding("x", "objection", "Objection"),
        Binding("a", "amend", "Amend"),
        Binding("r", "refresh", "Refresh", show=False),
        Binding("escape", "app.back", "Back"),
    ]

    def __init__(self, session: Session, circle: bytes, proposal: bytes) -> None:
        super().__init__(session)
        self.circle = circle
        self.proposal = proposal
        self.data: ProposalData | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="proposal-body"):
            yield Static(id="proposal-head")
            yield Static(id="badge")
            yield Static(id="proposal-main")
            yield DiffView(id="diff")
            yield Static(id="positions")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.title = "Proposal"
        self.query_one("#badge").display = False
        self.query_one("#proposal-body").focus()

    def load(self) -> None:
        self._load()

    @work(exclusive=True, group="load")
    async def _load(self) -> None:
        try:
            data = await load_proposal(
                self.session.replica, self.circle, self.proposal, self.session.me
            )
        except NodeError as exc:
            self.fail(exc)
            return
        self.post_message(ProposalLoaded(data))

    def on_proposal_loaded(self, message: ProposalLoaded) -> None:
        data = self.data = message.data
        self.title = data.title
        self.sub_title = data.circle_name
        self.query_one("#proposal-head", Static).update(head_text(data))
        badge = self.query_one("#badge", Static)
        badge.display = data.verified or bool(data.problems)
        badge.set_class(data.verified, "verified")
        badge.set_class(not data.verified, "broken")
        if data.verified and data.decision is not None:
            badge.update(f" VERIFIED  decision {short(data.decision)} holds ")
        else:
            badge.update(" A DECISION RECORD DOES NOT HOLD: run `circle-node verify` ")
        self.query_one("#proposal-main", Static).update(main_text(data))
        self.query_one(DiffView).show(data.diff)
        self.query_one("#positions", Static).update(positions_text(data))
        self.loaded = True

    # ---- actions ------------------------------------------------------------------------

    def _allowed(self) -> ProposalData | None:
        """The data, if the unlocked member may act on it now; else a notification."""
        if self.data is None:
            return None
        try:
            can_act(self.session, self.data)
        except NodeError as exc:
            self.fail(exc)
            return None
        return self.data

    def action_refresh(self) -> None:
        self.reload()

    def action_consent(self) -> None:
        if self._allowed() is not None:
            self._position("consent", "")

    def action_concern(self) -> None:
        if self._allowed() is not None:
            prompt = "Your concern (optional): what worries you about this version?"
            self.app.push_screen(ReasonScreen("Concern", prompt, required=False), self._concern)

    def _concern(self, reason: str | None) -> None:
        if reason is not None:
            self._position("concern", reason)

    def action_objection(self) -> None:
        if self._allowed() is not None:
            prompt = "Your objection: what harm would this version do, or what would it miss?"
            self.app.push_screen(ReasonScreen("Objection", prompt, required=True), self._object)

    def _object(self, reason: str | None) -> None:
        if reason is not None:
            self._position("objection", reason)

    @work(group="act", exclusive=True)
    async def _position(self, position: str, reason: str) -> None:
        if self.data is None:
            return
        try:
            taken = await take_position(self.session, self.data, position, reason)
        except NodeError as exc:
            self.fail(exc)
            return
        text = f"Recorded your {position}; the proposal is {taken.outcome.state}."
        if taken.decision is not None:
            text += " Consent is complete: the decision is recorded."
        self.notify(text, markup=False)
        self.reload()

    def action_amend(self) -> None:
        data = self._allowed()
        if data is not None:
            screen = AmendScreen(data.text, data.version_number, len(data.open_objections))
            self.app.push_screen(screen, self._amended)

    def _amended(self, result: tuple[str, str] | None) -> None:
        if result is not None:
            self._amend(*result)

    @work(group="act", exclusive=True)
    async def _amend(self, text: str, note: str) -> None:
        if self.data is None:
            return
        try:
            number = await amend_proposal(self.session, self.data, text, note)
        except NodeError as exc:
            self.fail(exc)
            return
        self.notify(
            f"Signed version {number}; positions on earlier versions no longer count.",
            markup=False,
        )
        self.reload()


def head_text(data: ProposalData) -> Text:
    text = Text(data.title, style="bold")
    text.append(f"  {short(data.proposal)}\n", style="dim")
    text.append(f"{data.circle_name} · by {data.author} on {data.created} · ")
    text.append_text(state_text(data.state))
    if data.stage not in ("draft", data.state):
        text.append(f" (stage {data.stage})")
    if data.deadline:
        text.append(f" · deadline {data.deadline}")
    return text


def main_text(data: ProposalData) -> Text:
    text = Text()
    text.append("Driver\n", style="bold underline")
    text.append(data.driver + "\n\n")
    label = f"Text (version {data.version_number}, {data.versions} in all)"
    text.append(label + "\n", style="bold underline")
    text.append(data.text + "\n\n")
    text.append("Tuners  ", style="bold")
    text.append(f"review: {data.review}")
    if data.criteria:
        text.append(" · criteria: " + "; ".join(data.criteria))
    for problem in data.problems:
        text.append(f"\n{problem}", style="bold red")
    return text


def position_line(item: PositionItem, version: int | None = None) -> Text:
    line = Text(f"  v{version:<3}" if version is not None else "  ")
    line.append(f"{item.name:<16} ")
    line.append(f"{item.position:<9}", style=POSITION_STYLES.get(item.position, ""))
    if item.blocking:
        line.append(" (blocks)", style="bold red")
    if item.reason:
        line.append(f" {item.reason}")
    if not item.counts and version is None:
        line.append(" (does not count)", style="dim")
    return line


def positions_text(data: ProposalData) -> Text:
    text = Text(f"Positions on version {data.version_number}\n", style="bold underline")
    for item in data.positions:
        text.append_text(position_line(item))
        text.append("\n")
    if data.can_take_part:
        hint = "c consent · o concern · x objection · a amend"
        mine = f"your position: {data.my_position}" if data.my_position else "waiting for you"
        text.append(f"{mine}  ({hint})\n", style="italic")
    if data.earlier:
        text.append("\nEarlier versions (no longer count)\n", style="bold underline")
        for number, item in data.earlier:
            text.append_text(position_line(item, number))
            text.append("\n")
    text.rstrip()
    return text
