"""The help screen: every key binding of every screen, read from the screens themselves
(so it cannot fall out of date), the current screen's first."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static

from node.tui.screens.bundles import BundlesScreen
from node.tui.screens.circle import CircleScreen
from node.tui.screens.dashboard import DashboardScreen
from node.tui.screens.den import DenScreen
from node.tui.screens.elections import ElectionsScreen
from node.tui.screens.forms import AmendScreen, NewProposalScreen, ReasonScreen
from node.tui.screens.gov_forms import FieldsScreen
from node.tui.screens.ideas import IdeasScreen
from node.tui.screens.joins import JoinsScreen
from node.tui.screens.ops_forms import ConfirmScreen
from node.tui.screens.peers import PeersScreen
from node.tui.screens.proposal import ProposalScreen
from node.tui.screens.setup import SetupScreen

SCREENS: tuple[tuple[str, type[Screen[Any]]], ...] = (
    ("Dashboard", DashboardScreen),
    ("Circle", CircleScreen),
    ("Proposal", ProposalScreen),
    ("Elections", ElectionsScreen),
    ("Angels Den and projects", DenScreen),
    ("Ideas", IdeasScreen),
    ("Join requests", JoinsScreen),
    ("New proposal", NewProposalScreen),
    ("Amend", AmendScreen),
    ("Reason", ReasonScreen),
    ("Short forms (nominate, pledge, idea...)", FieldsScreen),
    ("Peers", PeersScreen),
    ("Bundles", BundlesScreen),
    ("Confirm", ConfirmScreen),
    ("First run", SetupScreen),
)
LIST_KEYS = [
    ("up/down", "move in a list, tree or table"),
    ("enter", "open the selected circle or proposal"),
    ("space", "fold or unfold a branch of the circle tree"),
    ("tab/shift+tab", "move between panes and fields"),
]


def bindings_of(items: Iterable[BindingType]) -> list[Binding]:
    found = []
    for item in items:
        if isinstance(item, Binding):
            found.append(item)
        else:
            found.append(Binding(*item))
    return found


def describe(binding: Binding) -> str:
    return binding.description or binding.action.replace("_", " ")


class HelpScreen(ModalScreen[None]):
    """Every key binding; escape, q or ? closes it."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("q", "close", "Close", show=False),
        Binding("question_mark", "close", "Close", show=False),
    ]

    def __init__(self, app_bindings: list[BindingType], current: type[Screen[Any]]) -> None:
        super().__init__()
        self.app_bindings = app_bindings
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="help"):
            yield Label("Keys", classes="dialog-title")
            with VerticalScroll(id="help-body"):
                yield Static(self.help_text())

    def help_text(self) -> Text:
        text = Text()
        self._section(text, "Everywhere", bindings_of(self.app_bindings))
        ordered = sorted(SCREENS, key=lambda item: item[1] is not self.current)
        for title, screen in ordered:
            self._section(text, title, bindings_of(screen.BINDINGS))
        text.append("Lists\n", style="bold underline")
        for key, what in LIST_KEYS:
            text.append(f"  {key:<14}", style="bold")
            text.append(what + "\n")
        text.rstrip()
        return text

    def _section(self, text: Text, title: str, bindings: list[Binding]) -> None:
        if not bindings:
            return
        text.append(f"{title}\n", style="bold underline")
        for binding in bindings:
            key = self.app.get_key_display(binding)
            text.append(f"  {key:<14}", style="bold")
            text.append(describe(binding) + "\n")
        text.append("\n")

    def action_close(self) -> None:
        self.dismiss(None)
