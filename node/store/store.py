"""The node's SQLite file: the op log and everything derived from it. All SQL lives here.

Invariants:
- One writer per process (an asyncio lock) and per file (``BEGIN IMMEDIATE`` takes SQLite's
  write lock before anything is read for a decision), so the CLI, the TUI and a running
  service can share one file.
- ``changed_elsewhere()`` tells a caller that another connection committed since it last
  looked (``PRAGMA data_version``), so in-memory caches are dropped, never trusted stale.
- A write transaction either commits whole or leaves the file untouched.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from node.errors import StorageError
from node.store.provisional import ProvisionalCircles
from node.store.schema import MIGRATIONS, SCHEMA_VERSION
from node.store.sync_reads import SyncReads

STATUS_VALID = 0
STATUS_SOFT_FAILED = 1
STATUS_EQUIVOCATED = 2
STATUS_NAMES = {
    STATUS_VALID: "valid",
    STATUS_SOFT_FAILED: "soft_failed",
    STATUS_EQUIVOCATED: "equivocated",
}

_CHUNK = 500


@dataclass(frozen=True, slots=True)
class OpRow:
    """An op as stored: its verbatim parts plus local bookkeeping."""

    lseq: int
    op_id: bytes
    circle: bytes
    author: bytes
    seq: int
    kind: int
    doc: bytes | None
    header: bytes
    sig: bytes
    body: bytes
    status: int
    y_start: int | None
    y_end: int | None


_OP_COLUMNS = (
    "lseq, op_id, circle, author, seq, kind, doc, header, sig, body, status, y_start, y_end"
)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class Store(SyncReads, ProvisionalCircles):
    """An open node store. Use ``async with Store.open(path) as store``."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self.db = db
        self.path = path
        self._write_lock = asyncio.Lock()
        self._data_version = -1

    @classmethod
    @asynccontextmanager
    async def open(cls, path: Path) -> AsyncIterator[Store]:
        try:
            db = await aiosqlite.connect(path, isolation_level=None, timeout=30.0)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the store {path}: {exc}") from exc
        store = cls(db, path)
        try:
            await store._setup()
            yield store
        finally:
            await db.close()

    async def _setup(self) -> None:
        try:
            await self.db.execute("PRAGMA journal_mode=WAL")
            await self.db.execute("PRAGMA synchronous=NORMAL")
            await self.db.execute("PRAGMA busy_timeout=30000")
            await self.db.execute("PRAGMA foreign_keys=ON")
            await self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path} is not a usable circle-node store: {exc}") from exc

    async def _migrate(self) -> None:
        (version,) = await self._one("PRAGMA user_version")
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"the store {self.path} has schema {version}, newer than this circle-node "
                f"({SCHEMA_VERSION}); upgrade circle-node"
            )
        if version == SCHEMA_VERSION:
            return
        await self.db.execute("BEGIN IMMEDIATE")
        try:
            (version,) = await self._one("PRAGMA user_version")
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number]:
                    await self.db.execute(statement)
            await self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            await self.db.execute("COMMIT")
        except BaseException:
            await self.db.execute("ROLLBACK")
            raise

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        try:
            async with self.db.execute(sql, params) as cursor:
                return await cursor.fetchone()
        except sqlite3.DatabaseError as exc:
            raise self._storage_error(exc) from exc

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            async with self.db.execute(sql, params) as cursor:
                return list(await cursor.fetchall())
        except sqlite3.DatabaseError as exc:
            raise self._storage_error(exc) from exc

    def _storage_error(self, exc: sqlite3.DatabaseError) -> StorageError:
        return StorageError(
            f"the store {self.path} failed: {exc}; `circle-node verify` checks it, and a"
            " backup of the node home restores it"
        )

    # ---- transactions --------------------------------------------------------------------

    async def changed_elsewhere(self) -> bool:
        """True when another connection committed since the last call."""
        (version,) = await self._one("PRAGMA data_version")
        changed = version != self._data_version
        self._data_version = version
        return bool(changed)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[None]:
        """One write transaction: commits on success, rolls back on any exception.

        aiosqlite runs statements in order on its own thread, and a cancelled await does
        not stop a statement already queued there; so on any failure, cancellation
        included (even during BEGIN or COMMIT), a ROLLBACK is queued behind it, shielded
        from further cancellation, and the connection never stays inside a transaction.
        """
        async with self._write_lock:
            try:
                await self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StorageError(f"cannot start a write transaction: {exc}") from exc
            except BaseException:
                await asyncio.shield(self._rollback())
                raise
            try:
                yield
                await self.db.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                await asyncio.shield(self._rollback())
                raise self._storage_error(exc) from exc
            except BaseException:
                await asyncio.shield(self._rollback())
                raise
            # our own commit does not change data_version for this connection, and another
            # process's earlier commit must stay visible to the next changed_elsewhere()

    @asynccontextmanager
    async def between_writes(self) -> AsyncIterator[None]:
        """No write transaction of this process is open inside: reads see committed rows
        only (live sync must not push rows a transaction may still demote or roll back)."""
        async with self._write_lock:
            yield

    async def _rollback(self) -> None:
        try:
            await self.db.execute("ROLLBACK")
        except sqlite3.OperationalError:
            pass  # SQLite already rolled back (e.g. after SQLITE_FULL)

    # ---- reads ---------------------------------------------------------------------------

    async def known_op_ids(self, op_ids: Sequence[bytes]) -> set[bytes]:
        known: set[bytes] = set()
        for chunk in _chunks(op_ids):
            marks = ",".join("?" * len(chunk))
            rows = await self._all(f"SELECT op_id FROM ops WHERE op_id IN ({marks})", chunk)
            known.update(r[0] for r in rows)
        return known

    async def pending_ids(self, op_ids: Sequence[bytes]) -> set[bytes]:
        found: set[bytes] = set()
        for chunk in _chunks(op_ids):
            marks = ",".join("?" * len(chunk))
            rows = await self._all(f"SELECT op_id FROM pending WHERE op_id IN ({marks})", chunk)
            found.update(r[0] for r in rows)
        return found

    async def height(self, circle: bytes, author: bytes) -> tuple[int, bytes | None]:
        row = await self._one(
            "SELECT seq, head FROM heights WHERE circle = ? AND author = ?", (circle, author)
        )
        return (row[0], row[1]) if row else (0, None)

    async def heights_for(self, circle: bytes) -> dict[bytes, int]:
        rows = await self._all("SELECT author, seq FROM heights WHERE circle = ?", (circle,))
        return {r[0]: r[1] for r in rows}

    async def heads_for(self, circle: bytes) -> dict[bytes, tuple[int, bytes]]:
        rows = await self._all("SELECT author, seq, head FROM heights WHERE circle = ?", (circle,))
        return {r[0]: (r[1], r[2]) for r in rows}

    async def circles_with_record_prefix(self, hex_prefix: str) -> set[bytes]:
        """Circles holding a record op whose id starts with ``hex_prefix`` (an index range
        scan on op ids, so finding one proposal does not load every circle)."""
        try:
            low = bytes.fromhex(hex_prefix.ljust(64, "0")[:64])
            high = bytes.fromhex(hex_prefix.ljust(64, "f")[:64])
        except ValueError:
            return set()
        rows = await self._all(
            "SELECT DISTINCT circle FROM ops WHERE op_id BETWEEN ? AND ? AND kind = 3",
            (low, high),
        )
        return {r[0] for r in rows}

    async def count_ops(self, circle: bytes | None = None) -> int:
        if circle is None:
            (n,) = await self._one("SELECT COUNT(*) FROM ops")
        else:
            (n,) = await self._one("SELECT COUNT(*) FROM ops WHERE circle = ?", (circle,))
        return int(n)

    async def op_id_at(self, circle: bytes, author: bytes, seq: int) -> bytes | None:
        row = await self._one(
            "SELECT op_id FROM ops WHERE circle = ? AND author = ? AND seq = ?",
            (circle, author, seq),
        )
        return row[0] if row else None

    async def frozen(self) -> dict[tuple[bytes, bytes], int]:
        rows = await self._all("SELECT circle, author, from_seq FROM frozen")
        return {(r[0], r[1]): r[2] for r in rows}

    async def max_lseq(self) -> int:
        (value,) = await self._one("SELECT COALESCE(MAX(lseq), 0) FROM ops")
        return int(value)

    async def auth_ops(self, circle: bytes) -> list[OpRow]:
        """The circle's genesis and auth ops, in arrival order, equivocated ones excluded."""
        return await self._ops(
            "WHERE circle = ? AND kind != 2 AND kind IN (0, 1) AND status != 2 ORDER BY lseq",
            (circle,),
        )

    async def ops_by_author(self, circle: bytes, author: bytes, *, min_seq: int = 0) -> list[OpRow]:
        return await self._ops(
            "WHERE circle = ? AND author = ? AND seq >= ? ORDER BY seq", (circle, author, min_seq)
        )

    async def ops_of_kind(self, circle: bytes, kind: int) -> list[OpRow]:
        # "kind != 2" lets SQLite use the partial index that leaves y ops out
        where = "WHERE circle = ? AND kind = ?" + (" AND kind != 2" if kind != 2 else "")
        return await self._ops(where + " ORDER BY lseq", (circle, kind))

    async def all_ops(self, circle: bytes | None = None) -> list[OpRow]:
        if circle is None:
            return await self._ops("ORDER BY lseq", ())
        return await self._ops("WHERE circle = ? ORDER BY lseq", (circle,))

    async def _ops(self, where: str, params: Sequence[Any]) -> list[OpRow]:
        rows = await self._all(f"SELECT {_OP_COLUMNS} FROM ops {where}", params)
        return [OpRow(*r) for r in rows]

    async def y_end(self, circle: bytes, doc: bytes, author: bytes) -> int:
        """Where the author's next update to ``doc`` must start (its Yjs clock)."""
        (value,) = await self._one(
            "SELECT COALESCE(MAX(y_end), 0) FROM ops WHERE circle = ? AND doc = ? AND author = ?"
            " AND kind = 2",
            (circle, doc, author),
        )
        return int(value)

    async def y_ends(self, circle: bytes, doc: bytes) -> dict[bytes, int]:
        """Per author, where its last valid update to ``doc`` ends (its Yjs clock)."""
        rows = await self._all(
            "SELECT author, MAX(y_end) FROM ops WHERE circle = ? AND doc = ? AND kind = 2"
            " AND status = 0 GROUP BY author",
            (circle, doc),
        )
        return {r[0]: r[1] for r in rows}

    async def checkpoint(self, circle: bytes, doc: bytes) -> tuple[bytes, int] | None:
        row = await self._one(
            "SELECT state, covers FROM checkpoints WHERE circle = ? AND doc = ?", (circle, doc)
        )
        return (row[0], row[1]) if row else None

    async def doc_updates(self, circle: bytes, doc: bytes, after: int) -> list[tuple[int, bytes]]:
        """Valid updates to ``doc`` after local position ``after``, in arrival order."""
        return await self._all(
            "SELECT lseq, body FROM ops WHERE circle = ? AND doc = ? AND kind = 2 AND status = 0"
            " AND lseq > ? ORDER BY lseq",
            (circle, doc, after),
        )

    async def docs_of(self, circle: bytes) -> list[bytes]:
        rows = await self._all(
            "SELECT DISTINCT doc FROM ops WHERE circle = ? AND kind = 2", (circle,)
        )
        return [r[0] for r in rows]

    async def pending_waiting_for(self, keys: Sequence[bytes]) -> list[tuple[bytes, bytes]]:
        found: list[tuple[bytes, bytes]] = []
        for chunk in _chunks(keys):
            marks = ",".join("?" * len(chunk))
            found.extend(
                await self._all(
                    f"SELECT op_id, wire FROM pending WHERE waiting_for IN ({marks})", chunk
                )
            )
        return found

    async def pending_bytes(self) -> int:
        (n,) = await self._one("SELECT COALESCE(SUM(LENGTH(wire)), 0) FROM pending")
        return int(n)

    async def pending_with_reason(self, reason: str) -> int:
        (n,) = await self._one("SELECT COUNT(*) FROM pending WHERE reason = ?", (reason,))
        return int(n)

    async def pending_count(self, circle: bytes | None = None, author: bytes | None = None) -> int:
        if circle is None:
            (n,) = await self._one("SELECT COUNT(*) FROM pending")
        else:
            (n,) = await self._one(
                "SELECT COUNT(*) FROM pending WHERE circle = ? AND author = ?", (circle, author)
            )
        return int(n)

    async def evidence(self) -> list[tuple[bytes, bytes, int, bytes, bytes]]:
        return await self._all(
            "SELECT circle, author, seq, op_id, conflicts_with FROM evidence ORDER BY received"
        )

    async def evidence_ids(self, circle: bytes) -> set[bytes]:
        rows = await self._all("SELECT op_id FROM evidence WHERE circle = ?", (circle,))
        return {r[0] for r in rows}

    async def evidence_count(self, circle: bytes, author: bytes) -> int:
        (n,) = await self._one(
            "SELECT COUNT(*) FROM evidence WHERE circle = ? AND author = ?", (circle, author)
        )
        return int(n)

    async def meta(self, key: str) -> bytes | None:
        row = await self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return row[0] if row else None

    async def integrity_check(self) -> list[str]:
        rows = await self._all("PRAGMA integrity_check")
        return [r[0] for r in rows if r[0] != "ok"]

    # ---- writes (call inside ``write()``) -----------------------------------------------

    async def insert_ops(self, rows: Sequence[OpRow]) -> None:
        now = int(time.time())
        await self.db.executemany(
            f"INSERT INTO ops ({_OP_COLUMNS}, received) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    r.lseq,
                    r.op_id,
                    r.circle,
                    r.author,
                    r.seq,
                    r.kind,
                    r.doc,
                    r.header,
                    r.sig,
                    r.body,
                    r.status,
                    r.y_start,
                    r.y_end,
                    now,
                )
                for r in rows
            ],
        )

    async def set_heights(self, heights: dict[tuple[bytes, bytes], tuple[int, bytes]]) -> None:
        await self.db.executemany(
            "INSERT INTO heights (circle, author, seq, head) VALUES (?,?,?,?)"
            " ON CONFLICT (circle, author) DO UPDATE SET seq = excluded.seq, head = excluded.head",
            [(c, a, seq, head) for (c, a), (seq, head) in heights.items()],
        )

    async def set_status(self, changes: Sequence[tuple[int, bytes]]) -> None:
        await self.db.executemany("UPDATE ops SET status = ? WHERE op_id = ?", changes)

    async def add_pending(
        self, rows: Sequence[tuple[bytes, bytes, bytes, int, bytes, str, bytes]]
    ) -> None:
        now = int(time.time())
        await self.db.executemany(
            "INSERT OR IGNORE INTO pending"
            " (op_id, circle, author, seq, wire, reason, waiting_for, received)"
            " VALUES (?,?,?,?,?,?,?,?)",
            [(*r, now) for r in rows],
        )

    async def drop_pending(self, op_ids: Sequence[bytes]) -> None:
        await self.db.executemany("DELETE FROM pending WHERE op_id = ?", [(o,) for o in op_ids])

    async def add_evidence(
        self, circle: bytes, author: bytes, seq: int, op_id: bytes, wire: bytes
    ) -> None:
        """Keep a frozen author's later op as evidence."""
        await self.db.execute(
            "INSERT OR IGNORE INTO evidence"
            " (op_id, circle, author, seq, wire, conflicts_with, received)"
            " VALUES (?,?,?,?,?,?,?)",
            (op_id, circle, author, seq, wire, b"", int(time.time())),
        )

    async def freeze_author(
        self,
        circle: bytes,
        author: bytes,
        seq: int,
        evidence: Sequence[tuple[bytes, int, bytes, bytes]],
        new_head: tuple[int, bytes] | None,
    ) -> None:
        """Equivocation at ``seq``: move the author's ops from ``seq`` on into ``evidence``
        (``(op_id, seq, wire, conflicts_with)``), end its chain at ``new_head``, drop its
        pending ops and freeze it in this circle."""
        now = int(time.time())
        await self.db.executemany(
            "INSERT OR IGNORE INTO evidence"
            " (op_id, circle, author, seq, wire, conflicts_with, received)"
            " VALUES (?,?,?,?,?,?,?)",
            [(o, circle, author, s, w, c, now) for o, s, w, c in evidence],
        )
        await self.db.execute(
            "INSERT INTO frozen (circle, author, from_seq) VALUES (?,?,?)"
            " ON CONFLICT (circle, author)"
            " DO UPDATE SET from_seq = MIN(from_seq, excluded.from_seq)",
            (circle, author, seq),
        )
        params = (circle, author)
        await self.db.execute(
            "DELETE FROM ops WHERE circle = ? AND author = ? AND seq >= ?", (*params, seq)
        )
        await self.db.execute("DELETE FROM pending WHERE circle = ? AND author = ?", params)
        if new_head is None:
            await self.db.execute("DELETE FROM heights WHERE circle = ? AND author = ?", params)
        else:
            await self.db.execute(
                "UPDATE heights SET seq = ?, head = ? WHERE circle = ? AND author = ?",
                (*new_head, *params),
            )

    async def save_checkpoint(self, circle: bytes, doc: bytes, state: bytes, covers: int) -> None:
        await self.db.execute(
            "INSERT INTO checkpoints (circle, doc, state, covers) VALUES (?,?,?,?)"
            " ON CONFLICT (circle, doc) DO UPDATE SET state = excluded.state,"
            " covers = excluded.covers",
            (circle, doc, state, covers),
        )

    async def drop_checkpoints(self, keys: Iterable[tuple[bytes, bytes]]) -> None:
        await self.db.executemany(
            "DELETE FROM checkpoints WHERE circle = ? AND doc = ?", list(keys)
        )

    async def set_meta(self, key: str, value: bytes) -> None:
        await self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
