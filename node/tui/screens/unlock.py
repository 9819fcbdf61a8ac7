"""Unlock a member key: choose the member (if the node holds several), type the passphrase.

The passphrase is never echoed (a password input), never kept after the attempt, and
argon2id runs in a thread worker so the screen stays responsive. A wrong passphrase is a
notification; the screen stays for another try.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, Select, Static

from node.errors import NodeError, WrongPassphrase
from node.home import MemberEntry
from node.tui.messages import ActionFailed, KeyOpened, Unlocked
from node.tui.session import StoreLink, describe_member, open_session


class UnlockScreen(Screen[None]):
    """The first screen of an existing node."""

    def __init__(self, link: StoreLink) -> None:
        super().__init__()
        self.link = link
        self.members: list[MemberEntry] = []
        self.problem: str | None = None
        try:
            self.node_name = link.home.config.name
            self.members = link.home.members()
        except NodeError as exc:
            self.node_name = "?"
            self.problem = str(exc)
        if self.problem is None and not self.members:
            self.problem = (
                "This node holds no member key yet: create yours with "
                "`circle-node member create --name YOUR_NAME`, then start the TUI again."
            )

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(classes="dialog", id="unlock"):
            title = f"Unlock node {self.node_name}"
            yield Label(title, classes="dialog-title", markup=False)
            yield Static(str(self.link.home.path), classes="hint", markup=False)
            if self.problem is not None:
                yield Static(self.problem, id="unlock-problem", classes="error", markup=False)
            elif len(self.members) > 1:
                options = [(Text(describe_member(m)), m.member_id) for m in self.members]
                yield Label("Member")
                yield Select(options, value=self.members[0].member_id, allow_blank=False)
            else:
                yield Label(f"Member {describe_member(self.members[0])}", markup=False)
            if self.problem is None:
                yield Input(placeholder="Passphrase", password=True, id="passphrase")
                yield Static("", id="unlock-status", classes="hint")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.title = "circle-node"
        if self.problem is None:
            self.query_one("#passphrase", Input).focus()

    def chosen(self) -> MemberEntry:
        if len(self.members) == 1:
            return self.members[0]
        value = self.query_one(Select).value
        return next((m for m in self.members if m.member_id == value), self.members[0])

    @on(Input.Submitted, "#passphrase")
    def unlock(self, event: Input.Submitted) -> None:
        passphrase = event.value
        event.input.value = ""
        if not passphrase:
            self.notify("Type the passphrase of the member key.", severity="warning")
            return
        event.input.disabled = True
        self.query_one("#unlock-status", Static).update("Unlocking…")
        self._open_key(self.chosen(), passphrase)

    @work(thread=True, exclusive=True, group="unlock")
    def _open_key(self, member: MemberEntry, passphrase: str) -> None:
        try:
            key = self.link.home.unlock_member(member, passphrase)
        except WrongPassphrase:
            self.post_message(ActionFailed(f"Wrong passphrase for {member.name}: try again."))
            return
        except NodeError as exc:
            self.post_message(ActionFailed(str(exc)))
            return
        self.post_message(KeyOpened(member, key))

    async def on_key_opened(self, message: KeyOpened) -> None:
        self.query_one("#unlock-status", Static).update("Opening the store…")
        try:
            session = await open_session(self.link, message.member, message.key)
        except NodeError as exc:
            self.on_action_failed(ActionFailed(str(exc)))
            return
        self.post_message(Unlocked(session))

    def on_action_failed(self, message: ActionFailed) -> None:
        self.notify(message.text, title="Not unlocked", severity="error", timeout=8, markup=False)
        self.query_one("#unlock-status", Static).update("")
        field = self.query_one("#passphrase", Input)
        field.disabled = False
        field.focus()
