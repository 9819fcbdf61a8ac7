"""The base of every screen that shows store data, and live refresh.

A data screen loads when mounted and reloads when its data may have changed: every
second it asks the store whether another process committed (``PRAGMA data_version``,
:mod:`node.tui.live`), and it compares the session's count of its own writes (which
``data_version`` does not see). A screen that is not on top does not look; it catches up
when it is shown again, so a stack of screens costs one cheap query a second.
"""

from __future__ import annotations

from textual import work
from textual.screen import Screen

from node.errors import NodeError
from node.tui.live import DataVersion
from node.tui.session import Session

REFRESH_SECONDS = 1.0


class DataScreen(Screen[None]):
    """Subclasses implement :meth:`load` (start a worker) and show what it posts."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.loaded = False  # True once data has been shown (tests and the bench wait on it)
        self._watch = DataVersion(session.replica.store)
        self._writes_seen = -1

    def on_mount(self) -> None:
        # Textual calls every class's on_mount: subclasses define their own, without super()
        self._start()

    @work(group="live")
    async def _start(self) -> None:
        try:
            await self._watch.changed()  # note the version before the first load reads
        except NodeError as exc:
            self.fail(exc)
        self.reload()
        self.set_interval(REFRESH_SECONDS, self._tick, name="live-refresh")

    async def _tick(self) -> None:
        if not self.is_current:
            return  # catch up when shown again
        try:
            changed = await self._watch.changed()
        except NodeError as exc:
            self.fail(exc)
            return
        if changed or self._writes_seen != self.session.local_writes:
            self.reload()

    def on_screen_resume(self) -> None:
        if self.loaded and self._writes_seen != self.session.local_writes:
            self.reload()

    def reload(self) -> None:
        """Load again now."""
        self._writes_seen = self.session.local_writes
        self.load()

    def load(self) -> None:
        """Start the worker that reads this screen's data and posts it."""
        raise NotImplementedError

    def fail(self, exc: NodeError) -> None:
        """Show a user error from a worker: what happened and what to do."""
        self.notify(str(exc), title="Could not do that", severity="error", timeout=10, markup=False)
