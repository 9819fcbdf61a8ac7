"""Noticing commits made by other processes, cheaply enough to ask every second.

SQLite's ``PRAGMA data_version`` changes, for one connection, whenever *another*
connection (the CLI, a sync service, another TUI) commits to the file. It is a read of a
counter in shared memory: no table is touched. The store keeps its own copy for its
caches (``Store.changed_elsewhere``); this watcher keeps a separate one, so asking it never
hides a change from the replica, nor the reverse.
"""

from __future__ import annotations

import sqlite3

from node.errors import StorageError
from node.store.store import Store


class DataVersion:
    """Whether another connection committed to ``store`` since the last :meth:`changed`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._seen: int | None = None

    async def read(self) -> int:
        try:
            async with self.store.db.execute("PRAGMA data_version") as cursor:
                row = await cursor.fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read the store {self.store.path}: {exc}") from exc
        return int(row[0]) if row else 0

    async def changed(self) -> bool:
        """True when another connection committed since the previous call (False on the
        first call, which only takes note of the current version)."""
        version = await self.read()
        first = self._seen is None
        changed = not first and version != self._seen
        self._seen = version
        return changed
