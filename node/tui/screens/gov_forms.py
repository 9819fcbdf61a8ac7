"""A one-to-three-line dialog for the governance screens: nominate with a reason, start an
election, pledge, share an idea... It only asks and checks that required fields are
filled; the screen that opened it signs what it returns (a dict of field values).

Enter moves to the next field and, on the last one, submits; escape cancels (None).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


@dataclass(frozen=True)
class Field:
    name: str
    placeholder: str
    required: str = ""  # the error to show when it is left empty; "" if optional
    value: str = ""
    max_length: int = 2000


class FieldsScreen(ModalScreen[dict[str, str] | None]):
    """A titled dialog of one-line fields."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, prompt: str, fields: list[Field]) -> None:
        super().__init__()
        self.dialog_title = title
        self.prompt = prompt
        self.fields = fields

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog fields-dialog"):
            yield Label(self.dialog_title, classes="dialog-title", markup=False)
            if self.prompt:
                yield Static(self.prompt, markup=False)
            for item in self.fields:
                yield Input(
                    item.value,
                    placeholder=item.placeholder,
                    id=f"field-{item.name}",
                    max_length=item.max_length,
                )
            yield Static("Enter: next field, then sign · esc cancels", classes="hint")

    def on_mount(self) -> None:
        self.query(Input).first().focus()

    @on(Input.Submitted)
    def next_field(self, event: Input.Submitted) -> None:
        inputs = list(self.query(Input))
        if event.input is inputs[-1]:
            self.submit()
        else:
            self.focus_next()

    def submit(self) -> None:
        values = {}
        for item in self.fields:
            value = self.query_one(f"#field-{item.name}", Input).value.strip()
            if item.required and not value:
                self.notify(item.required, title="Check the form", severity="error", markup=False)
                self.query_one(f"#field-{item.name}", Input).focus()
                return
            values[item.name] = value
        self.dismiss(values)

    def action_cancel(self) -> None:
        self.dismiss(None)
