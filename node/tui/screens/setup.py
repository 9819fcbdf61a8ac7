"""First run: no node in the home yet. One form makes the node, the first member and the
first circle.

The node key and the member key are sealed under the one passphrase typed twice here
(``circle-node init`` and ``member create`` ask for one each). Nothing is written until
every field checks out; key sealing (argon2id) runs in a thread worker; the circle is
signed once the keys exist. If the circle cannot be made, the node and member still are:
the dashboard opens and says so.
"""

from __future__ import annotations

import socket

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Static

from node.errors import NodeError
from node.home import MAX_NAME_CHARS
from node.tui.actions import FirstRun, check_first_run, make_keys, new_circle
from node.tui.messages import ActionFailed, KeyOpened, Unlocked
from node.tui.session import StoreLink, open_session

FIELDS = (
    ("node-name", "Node name", "this machine's name, e.g. the-garden-pi"),
    ("member-name", "Your name", "how circle members will see you"),
    ("passphrase", "Passphrase", "protects your keys on this node"),
    ("passphrase2", "Again", "the same passphrase"),
    ("circle-name", "First circle", "e.g. Garden"),
    ("purpose", "Its purpose", "why the circle exists (optional)"),
)


class SetupScreen(Screen[None]):
    """The guided first run."""

    BINDINGS = [Binding("ctrl+s", "create", "Create")]

    def __init__(self, link: StoreLink) -> None:
        super().__init__()
        self.link = link
        self.circle: tuple[str, str] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="setup"):
            yield Static(
                f"No node at {self.link.home.path} yet. Set one up: Enter moves to the "
                "next field, ctrl+s creates.",
                classes="hint",
                markup=False,
            )
            with Grid(id="setup-grid"):
                for field_id, label, placeholder in FIELDS:
                    yield Label(label)
                    yield Input(
                        placeholder=placeholder,
                        id=field_id,
                        password=field_id.startswith("passphrase"),
                        max_length=4000 if field_id == "purpose" else MAX_NAME_CHARS,
                    )
            yield Button("Create node, member and circle", id="create", variant="primary")
            yield Static("", id="setup-status", classes="hint")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.title = "circle-node: first run"
        self.query_one("#node-name", Input).value = socket.gethostname()[:MAX_NAME_CHARS]
        self.query_one("#member-name", Input).focus()

    def value(self, field_id: str) -> str:
        return self.query_one(f"#{field_id}", Input).value

    @on(Input.Submitted)
    def next_field(self, event: Input.Submitted) -> None:
        if event.input.id == FIELDS[-1][0]:
            self.action_create()
        else:
            self.focus_next(Input)

    @on(Button.Pressed, "#create")
    def action_create(self) -> None:
        form = FirstRun(
            node_name=self.value("node-name"),
            member_name=self.value("member-name"),
            passphrase=self.value("passphrase"),
            circle_name=self.value("circle-name"),
            purpose=self.value("purpose"),
        )
        try:
            form = check_first_run(self.link.home, form, self.value("passphrase2"))
        except NodeError as exc:
            text = str(exc)
            self.notify(text, title="Check the form", severity="error", timeout=8, markup=False)
            return
        for field in self.query(Input):
            field.disabled = True
        self.query_one("#create", Button).disabled = True
        self.query_one("#setup-status", Static).update("Sealing your keys…")
        self.circle = (form.circle_name, form.purpose)
        self._make_keys(form)

    @work(thread=True, exclusive=True, group="setup")
    def _make_keys(self, form: FirstRun) -> None:
        try:
            member, key = make_keys(self.link.home, form)
        except NodeError as exc:
            self.post_message(ActionFailed(str(exc)))
            return
        self.post_message(KeyOpened(member, key))

    async def on_key_opened(self, message: KeyOpened) -> None:
        self.query_one("#setup-status", Static).update("Creating the circle…")
        try:
            session = await open_session(self.link, message.member, message.key)
        except NodeError as exc:
            self.on_action_failed(ActionFailed(str(exc)))
            return
        if self.circle is not None:
            name, purpose = self.circle
            try:
                await new_circle(
                    session.replica, session.home, message.member, message.key, name, purpose
                )
            except NodeError as exc:
                text = f"The circle was not created: {exc}"
                self.notify(text, severity="error", timeout=10, markup=False)
        self.post_message(Unlocked(session))

    def on_action_failed(self, message: ActionFailed) -> None:
        text = message.text
        self.notify(text, title="Setup failed", severity="error", timeout=10, markup=False)
        self.query_one("#setup-status", Static).update("")
        if not self.link.home.is_initialised():
            for field in self.query(Input):
                field.disabled = False
            self.query_one("#create", Button).disabled = False
