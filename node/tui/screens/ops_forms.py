"""Dialogs of the peers and bundles screens: add a peer, confirm, the node passphrase.

Like :mod:`node.tui.screens.forms` they only ask and check; the screen that opened one
acts on what it returns. Escape cancels (returns None).
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from node.errors import NodeError
from node.home import check_name
from node.sync.urls import parse_peer_url


class AddPeerScreen(ModalScreen[tuple[str, str | None] | None]):
    """A peer's URL and an optional name, checked as ``circle-node peer add`` checks them."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, url: str = "", name: str = "") -> None:
        super().__init__()
        self.url = url
        self.name_ = name

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="add-peer"):
            yield Label("Add a peer", classes="dialog-title")
            yield Input(
                self.url, placeholder="URL: http://HOST:PORT (ws://, http+post://)", id="url"
            )
            yield Input(self.name_, placeholder="Name (optional)", id="peer-name", max_length=40)
            yield Static("Its node key is learned and pinned on the first sync.", classes="hint")
            with Horizontal(classes="buttons"):
                yield Button("Add (enter)", id="add", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#url", Input).focus()

    @on(Input.Submitted)
    def next_field(self, event: Input.Submitted) -> None:
        if event.input.id == "peer-name":
            self.action_submit()
        else:
            self.focus_next()

    @on(Button.Pressed, "#add")
    def action_submit(self) -> None:
        try:
            url = parse_peer_url(self.query_one("#url", Input).value.strip()).url
            text = self.query_one("#peer-name", Input).value.strip()
            name = check_name(text, "peer name") if text else None
        except NodeError as exc:
            self.notify(str(exc), title="Check the form", severity="error", markup=False)
            return
        self.dismiss((url, name))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question: ``y`` or Enter on Yes confirms, ``n`` or escape declines."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "No", show=False),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm"):
            yield Static(self.question, classes="dialog-title", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class NodePassphraseScreen(ModalScreen[str | None]):
    """The node key's passphrase (syncs and bundles are signed by the node, not a member).
    Never echoed; the screen that asked unlocks the key in a thread and forgets it."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, node_name: str, why: str) -> None:
        super().__init__()
        self.node_name = node_name
        self.why = why

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="node-passphrase"):
            yield Label(f"Unlock the key of node {self.node_name}", classes="dialog-title")
            yield Static(self.why, classes="hint", markup=False)
            yield Input(placeholder="Node passphrase", password=True, id="node-pass")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def submit(self, event: Input.Submitted) -> None:
        if event.value:
            self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
