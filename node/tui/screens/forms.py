"""Dialogs that ask for text and return it: a new proposal, a reason, an amendment.

They only ask and check; the screen that opened one signs what it returns. Escape
cancels (returns None); ``ctrl+s`` submits a multi-line form, Enter a one-line one.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, Static, TextArea

from node.errors import NodeError
from node.tui.actions import MAX_TITLE_CHARS, ProposalDraft, proposal_body


def _error(screen: Screen[Any], text: str) -> None:
    screen.notify(text, title="Check the form", severity="error", timeout=8, markup=False)


class NewProposalScreen(ModalScreen[ProposalDraft | None]):
    """Title, driver, text and an optional review date for a new proposal."""

    BINDINGS = [
        Binding("ctrl+s", "submit", "Sign"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, circle_name: str) -> None:
        super().__init__()
        self.circle_name = circle_name

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="new-proposal"):
            yield Label(f"New proposal in {self.circle_name}", classes="dialog-title", markup=False)
            yield Input(placeholder="Title", id="title", max_length=MAX_TITLE_CHARS)
            yield Input(placeholder="Driver: what is happening, and what is needed", id="driver")
            yield Label("Proposal text:")
            yield TextArea(id="text", soft_wrap=True, tab_behavior="focus")
            yield Input(placeholder="Review date YYYY-MM-DD (optional)", id="review")
            with Horizontal(classes="buttons"):
                yield Button("Sign (ctrl+s)", id="sign", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#title", Input).focus()

    @on(Input.Submitted)
    def next_field(self, event: Input.Submitted) -> None:
        if event.input.id == "review":
            self.action_submit()
        else:
            self.focus_next()

    @on(Button.Pressed, "#sign")
    def action_submit(self) -> None:
        draft = ProposalDraft(
            title=self.query_one("#title", Input).value,
            driver=self.query_one("#driver", Input).value,
            text=self.query_one("#text", TextArea).text,
            review_date=self.query_one("#review", Input).value,
        )
        try:
            proposal_body(draft)
        except NodeError as exc:
            _error(self, str(exc))
            return
        self.dismiss(draft)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ReasonScreen(ModalScreen[str | None]):
    """One line of reason for a concern or an objection."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, what: str, prompt: str, *, required: bool) -> None:
        super().__init__()
        self.what = what
        self.prompt = prompt
        self.required = required

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="reason-dialog"):
            yield Label(self.what, classes="dialog-title")
            yield Static(self.prompt, markup=False)
            yield Input(placeholder="Reason", id="reason", max_length=2000)
            yield Static("Enter records it · esc cancels", classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def submit(self, event: Input.Submitted) -> None:
        reason = event.value.strip()
        if self.required and not reason:
            _error(self, f"An {self.what.lower()} needs a reason: say what harm it would do.")
            return
        self.dismiss(reason)

    def action_cancel(self) -> None:
        self.dismiss(None)


class AmendScreen(ModalScreen[tuple[str, str] | None]):
    """The current text to edit, and a note on how the change integrates objections."""

    BINDINGS = [
        Binding("ctrl+s", "submit", "Sign"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, text: str, number: int, objections: int) -> None:
        super().__init__()
        self.text = text
        self.number = number
        self.objections = objections

    def compose(self) -> ComposeResult:
        title = f"Amend version {self.number}"
        if self.objections:
            title += f" (resolves {self.objections} open objection(s))"
        with Vertical(classes="dialog", id="amend-dialog"):
            yield Label(title, classes="dialog-title")
            yield TextArea(self.text, id="amend-text", soft_wrap=True, tab_behavior="focus")
            note = "Note: how this integrates the objections (optional)"
            yield Input(placeholder=note, id="note")
            with Horizontal(classes="buttons"):
                yield Button("Sign (ctrl+s)", id="sign", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    @on(Input.Submitted)
    def submit_note(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#sign")
    def action_submit(self) -> None:
        text = self.query_one(TextArea).text.strip()
        if not text:
            _error(self, "The text must not be empty.")
            return
        if text == self.text.strip():
            _error(self, "Change the text to amend it (or press esc).")
            return
        self.dismiss((text, self.query_one("#note", Input).value.strip()))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
