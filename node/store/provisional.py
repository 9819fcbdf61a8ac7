"""Circles a sync is fetching before this node is proven to host them.

A peer may offer a circle whose auth log does not list this node (a planted circle). The op
that makes us a host can come several OPS frames after the genesis, so the circle is stored
frame by frame as usual but marked *provisional* in the same transaction as its first
frame: every reader (``circles()``, live push) skips it. When the peer has sent all of it,
sync either confirms it (drops the mark) or purges every row keyed by the circle in one
transaction (``purge_circle``). A node killed meanwhile leaves only invisible rows, which
the next settlement of that circle (or ``sweep`` at the next session) removes.

A mixin of :class:`node.store.store.Store`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import aiosqlite

# every table keyed by circle (node/store/schema.py), provisional last
CIRCLE_TABLES = ("ops", "heights", "pending", "evidence", "frozen", "checkpoints", "digests")


class ProvisionalCircles:
    """Marks, confirms and purges circles not yet proven ours."""

    db: aiosqlite.Connection

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError  # provided by Store

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError  # provided by Store

    async def circles(self) -> list[bytes]:
        """The circles this node holds, oldest first (provisional ones are not held)."""
        rows = await self._all(
            "SELECT circle FROM ops WHERE kind = 0 AND circle NOT IN"
            " (SELECT circle FROM provisional) ORDER BY lseq"
        )
        return [r[0] for r in rows]

    async def known_circles(self) -> list[bytes]:
        """Every circle whose genesis is stored, provisional ones included (for ingest)."""
        rows = await self._all("SELECT circle FROM ops WHERE kind = 0 ORDER BY lseq")
        return [r[0] for r in rows]

    async def provisional(self) -> dict[bytes, int]:
        """``{circle: unix second it was marked}``."""
        return {r[0]: r[1] for r in await self._all("SELECT circle, since FROM provisional")}

    async def is_provisional(self, circle: bytes) -> bool:
        row = await self._one("SELECT 1 FROM provisional WHERE circle = ?", (circle,))
        return row is not None

    # ---- writes (call inside ``write()``) -----------------------------------------------

    async def mark_provisional(self, circle: bytes) -> None:
        """Mark ``circle`` unless its genesis is already stored (then it is held, or
        already marked)."""
        await self.db.execute(
            "INSERT OR IGNORE INTO provisional (circle, since) SELECT ?, ?"
            " WHERE NOT EXISTS (SELECT 1 FROM ops WHERE circle = ? AND kind = 0)",
            (circle, int(time.time()), circle),
        )

    async def confirm_circle(self, circle: bytes) -> None:
        await self.db.execute("DELETE FROM provisional WHERE circle = ?", (circle,))

    async def purge_circle(self, circle: bytes) -> int:
        """Remove every trace of ``circle``; how many ops (stored or pending) went."""
        (ops,) = await self._one("SELECT COUNT(*) FROM ops WHERE circle = ?", (circle,))
        (pending,) = await self._one("SELECT COUNT(*) FROM pending WHERE circle = ?", (circle,))
        for table in (*CIRCLE_TABLES, "provisional"):
            await self.db.execute(f"DELETE FROM {table} WHERE circle = ?", (circle,))
        return int(ops) + int(pending)
