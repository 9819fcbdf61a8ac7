"""Command palette entries (ctrl+p) beside Textual's own: for every circle, open it, its
elections, its ideas or its join requests; and open the Angels Den."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from rich.text import Text
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen

from node.errors import NodeError
from node.tui.data import CircleItem, load_circle_items
from node.tui.screens.base import DataScreen
from node.tui.screens.circle import CircleScreen
from node.tui.screens.den import DenScreen
from node.tui.screens.elections import ElectionsScreen
from node.tui.screens.ideas import IdeasScreen
from node.tui.screens.joins import JoinsScreen
from node.tui.session import Session

CIRCLE_COMMANDS: tuple[tuple[str, Callable[[Session, bytes], Screen[None]]], ...] = (
    ("Open circle", CircleScreen),
    ("Elections of", ElectionsScreen),
    ("Ideas of", IdeasScreen),
    ("Join requests to", JoinsScreen),
)
DEN_COMMAND = "Angels Den and projects"


class CircleCommands(Provider):
    """Offers "Open circle NAME" (and elections, ideas, join requests) for every circle
    this node holds, and the Angels Den, once a member is unlocked."""

    async def startup(self) -> None:
        self.session: Session | None = None
        self.circles: list[CircleItem] = []
        screen = self.screen
        if isinstance(screen, DataScreen):
            self.session = screen.session
            try:
                self.circles = await load_circle_items(screen.session.replica, screen.session.me)
            except NodeError:
                self.circles = []  # the palette still offers Textual's own commands

    def open(self, make: Callable[[Session, bytes], Screen[None]], circle: bytes) -> None:
        if self.session is not None:
            self.app.push_screen(make(self.session, circle))

    def open_den(self) -> None:
        if self.session is not None:
            self.app.push_screen(DenScreen(self.session))

    def commands(self) -> list[tuple[str, Callable[[], None]]]:
        found: list[tuple[str, Callable[[], None]]] = []
        if self.session is not None:
            found.append((DEN_COMMAND, self.open_den))
        for item in self.circles:
            for verb, make in CIRCLE_COMMANDS:
                found.append((f"{verb} {item.name}", partial(self.open, make, item.circle)))
        return found

    async def discover(self) -> Hits:
        for text, command in self.commands():
            yield DiscoveryHit(Text(text), command, text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, command in self.commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), command, text)


class OpsCommands(Provider):
    """Offers "Peers" and "Bundles" (the screens of the same names) once a member is unlocked."""

    def _targets(self) -> list[tuple[str, str, Callable[[], None]]]:
        screen = self.screen
        if not isinstance(screen, DataScreen):
            return []
        session = screen.session

        def peers() -> None:
            from node.tui.screens.peers import PeersScreen

            self.app.push_screen(PeersScreen(session))

        def bundles() -> None:
            from node.tui.screens.bundles import BundlesScreen

            self.app.push_screen(BundlesScreen(session))

        return [
            ("Peers", "add, remove, sync now, nodes on the LAN", peers),
            ("Bundles", "export to or import from a file (USB stick)", bundles),
        ]

    async def discover(self) -> Hits:
        for name, help_text, run in self._targets():
            yield DiscoveryHit(Text(name), run, name, help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, run in self._targets():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), run, name, help_text)
