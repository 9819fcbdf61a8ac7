"""Derived per-circle digests of folded governance: all SQL for the ``digests`` table.

Invariants:

* A digest is derived data: a pure function of what its ``stamp`` covers (the circle's
  chain heads and the ops not stored as valid, plus the digest format). A reader compares
  the stamp with one it computes from the store *now* and ignores a row that does not
  match, so a row can be stale or damaged without ever being shown.
* Rows are only ever replaced whole; deleting any or all of them loses nothing.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from node.errors import StorageError
from node.store.store import Store


class DigestTable:
    """The ``digests`` table of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, circle: bytes) -> tuple[bytes, bytes] | None:
        """``(stamp, body)`` stored for ``circle``, or None."""
        try:
            async with self.store.db.execute(
                "SELECT stamp, body FROM digests WHERE circle = ?", (circle,)
            ) as cursor:
                row = await cursor.fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read the store {self.store.path}: {exc}") from exc
        return (bytes(row[0]), bytes(row[1])) if row else None

    async def marks(self, circle: bytes) -> list[Any]:
        """What else a digest's stamp covers beyond heads and non-valid ops: how many ops
        the circle holds and the latest arrival (any insert or removal moves one), and the
        authors frozen in it after an equivocation."""
        try:
            async with self.store.db.execute(
                "SELECT COUNT(*), MAX(lseq) FROM ops WHERE circle = ?", (circle,)
            ) as cursor:
                counts = await cursor.fetchone()
            async with self.store.db.execute(
                "SELECT author, from_seq FROM frozen WHERE circle = ? ORDER BY author", (circle,)
            ) as cursor:
                frozen = await cursor.fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read the store {self.store.path}: {exc}") from exc
        return [list(counts or ()), [list(row) for row in frozen]]

    async def changed_since(self, lseq: int) -> tuple[int, set[bytes]]:
        """The store's highest arrival number now, and the circles with an op stored after
        ``lseq`` (what a background refresh must look at; see :mod:`node.digest_refresh`)."""
        try:
            async with self.store.db.execute("SELECT COALESCE(MAX(lseq), 0) FROM ops") as cur:
                row = await cur.fetchone()
            top = int(row[0]) if row else 0
            if top <= lseq:
                return top, set()
            async with self.store.db.execute(
                "SELECT DISTINCT circle FROM ops WHERE lseq > ?", (lseq,)
            ) as cursor:
                rows = await cursor.fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read the store {self.store.path}: {exc}") from exc
        return top, {bytes(row[0]) for row in rows}

    async def put(self, circle: bytes, stamp: bytes, body: bytes) -> None:
        """Store (or replace) the digest of ``circle``, in its own transaction."""
        await self.put_many([(circle, stamp, body)])

    async def put_many(self, rows: list[tuple[bytes, bytes, bytes]]) -> None:
        """Store (or replace) ``(circle, stamp, body)`` rows in one transaction."""
        async with self.store.write():
            await self.store.db.executemany(
                "INSERT OR REPLACE INTO digests (circle, stamp, body) VALUES (?, ?, ?)", rows
            )
