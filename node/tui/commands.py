"""Command palette entries (ctrl+p) beside Textual's own: open any circle by name."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from rich.text import Text
from textual.command import DiscoveryHit, Hit, Hits, Provider

from node.errors import NodeError
from node.tui.data import CircleItem, load_circle_items
from node.tui.screens.base import DataScreen
from node.tui.screens.circle import CircleScreen
from node.tui.session import Session


class CircleCommands(Provider):
    """Offers "Open circle NAME" for every circle this node holds, once a member is unlocked."""

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

    def open(self, circle: bytes) -> None:
        if self.session is not None:
            self.app.push_screen(CircleScreen(self.session, circle))

    async def discover(self) -> Hits:
        for item in self.circles:
            text = f"Open circle {item.name}"
            yield DiscoveryHit(Text(text), partial(self.open, item.circle), text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for item in self.circles:
            text = f"Open circle {item.name}"
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), partial(self.open, item.circle), text)


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
