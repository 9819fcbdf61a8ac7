"""The circle-node TUI app: wires the screens, the global keys and the stylesheet.

Everything else lives elsewhere: screens in :mod:`node.tui.screens`, what they read in
:mod:`node.tui.data`, what they sign in :mod:`node.tui.actions`.
"""

from __future__ import annotations

import os
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from node.home import NodeHome
from node.tui.commands import CircleCommands, OpsCommands
from node.tui.messages import Unlocked
from node.tui.screens.dashboard import DashboardScreen
from node.tui.screens.help import HelpScreen
from node.tui.screens.setup import SetupScreen
from node.tui.screens.unlock import UnlockScreen
from node.tui.session import Options, StoreLink

CONSOLE_THEME = "ansi-dark"  # the 16 colours of a Linux console (the Pi's own screen)


class CircleNodeApp(App[None]):
    """``circle-node tui``: first run or unlock, then the dashboard."""

    CSS_PATH = "circle_node.tcss"
    COMMANDS = App.COMMANDS | {CircleCommands, OpsCommands}
    TITLE = "circle-node"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("f1", "help", "Help", show=False),
        Binding("escape", "back", "Back", show=False),
        Binding("ctrl+p", "command_palette", "Commands", show=False),
    ]

    def __init__(self, home: NodeHome, options: Options | None = None) -> None:
        super().__init__()
        self.home = home
        self.link = StoreLink(home, options)

    def on_mount(self) -> None:
        if os.environ.get("TERM") == "linux":  # the Linux console: 16 colours, slow redraws
            self.theme = CONSOLE_THEME
            self.animation_level = "none"
        first = UnlockScreen(self.link) if self.home.is_initialised() else SetupScreen(self.link)
        self.push_screen(first)  # over Textual's blank default screen, which stays below

    async def on_unmount(self) -> None:
        await self.link.aclose()

    def on_unlocked(self, message: Unlocked) -> None:
        self.switch_screen(DashboardScreen(message.session))

    async def action_back(self) -> None:
        """Escape: back to the screen below, never below the first real one."""
        if len(self.screen_stack) > 2:
            self.pop_screen()

    def _fatal_error(self) -> None:
        """A bug, not a user error (those are notifications): exit showing the traceback
        *without* local variables, which Textual would print and which may hold a
        passphrase."""
        import rich
        from rich.console import Group
        from rich.text import Text
        from rich.traceback import Traceback

        self.bell()
        report = Text("circle-node hit a bug; please report this traceback.", style="bold")
        self.panic(Group(Traceback(show_locals=False, suppress=[rich]), report))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.BINDINGS, type(self.screen)))
