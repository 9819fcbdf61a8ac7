"""The store's reads for sync: what may be forwarded, and the ops a peer lacks.

A mixin of :class:`node.store.store.Store`, kept apart so each file stays small; the SQL
still lives in the store package.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiosqlite


class SyncReads:
    """Queries that sync and live push run against the op log."""

    db: aiosqlite.Connection

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError  # provided by Store

    async def first_unforwardable(self, circle: bytes) -> dict[bytes, int]:
        """Per author, the lowest seq stored as anything but valid (soft failed, equivocated)."""
        rows = await self._all(
            "SELECT author, MIN(seq) FROM ops WHERE circle = ? AND status != 0 GROUP BY author",
            (circle,),
        )
        return {r[0]: r[1] for r in rows}

    async def valid_ops_since(
        self, circle: bytes, heights: dict[bytes, int], limits: dict[bytes, int]
    ) -> AsyncIterator[tuple[bytes, bytes, bytes, bytes]]:
        """Valid ops of ``circle`` above ``heights`` and at most ``limits`` per author, in
        local arrival order (which respects deps): ``(op_id, header, sig, body)``."""
        async with self.db.execute(
            "SELECT author, seq, op_id, header, sig, body FROM ops"
            " WHERE circle = ? AND status = 0 ORDER BY lseq",
            (circle,),
        ) as cursor:
            async for author, seq, op_id, header, sig, body in cursor:
                if heights.get(author, 0) < seq <= limits.get(author, 0):
                    yield op_id, header, sig, body

    async def valid_ops_after(
        self, lseq: int, limit: int = 1000
    ) -> list[tuple[int, bytes, bytes, bytes, bytes, bytes]]:
        """Valid ops stored after local position ``lseq``, oldest first:
        ``(lseq, circle, op_id, header, sig, body)``. What live sync pushes."""
        return await self._all(
            "SELECT lseq, circle, op_id, header, sig, body FROM ops"
            " WHERE lseq > ? AND status = 0 AND circle NOT IN (SELECT circle FROM provisional)"
            " ORDER BY lseq LIMIT ?",
            (lseq, limit),
        )
