"""A node's replica of its circles: the store plus the caches derived from it.

The replica owns per-circle auth logs, heights and materialized docs. Every cache is
derived from the store and dropped when another process commits to the same file
(``Store.changed_elsewhere``) or when one of our own transactions fails; it is never
trusted stale. All changes, remote or local, go through :mod:`node.ingest`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from node.crypto.ops import OpKind, op_from_parts
from node.docs import DocCache
from node.domain.auth import AuthState, decode_auth_body, decode_genesis
from node.domain.authorize import AuthLog
from node.domain.documents import YDoc
from node.errors import NotFound
from node.store.store import STATUS_EQUIVOCATED, Store


class Replica:
    """All circles this node holds. Use ``async with Replica.open(path) as replica``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.docs = DocCache(store)
        self._logs: dict[bytes, AuthLog] = {}
        self._heights: dict[bytes, dict[bytes, tuple[int, bytes]]] = {}
        self._y_end: dict[tuple[bytes, bytes, bytes], int] = {}
        self._circles: set[bytes] | None = None
        self._known: set[bytes] | None = None  # provisional circles too (ingest's view)
        self._frozen: dict[tuple[bytes, bytes], int] | None = None
        self.stale_checkpoints: set[tuple[bytes, bytes]] = set()
        self._forwardable: dict[bytes, dict[bytes, int]] = {}
        self.committed = asyncio.Event()  # set after every commit that stored valid ops

    @classmethod
    @asynccontextmanager
    async def open(cls, path: Path) -> AsyncIterator[Replica]:
        async with Store.open(path) as store:
            replica = cls(store)
            await store.changed_elsewhere()
            yield replica

    # ---- cache lifecycle ---------------------------------------------------------------

    def invalidate(self) -> None:
        """Forget everything derived from the store."""
        self.docs.clear()
        self._logs.clear()
        self._heights.clear()
        self._y_end.clear()
        self._circles = None
        self._known = None
        self._frozen = None
        self.stale_checkpoints.clear()
        self._forwardable.clear()

    async def refresh(self) -> None:
        """Drop caches if another process wrote to the store since we last looked."""
        if await self.store.changed_elsewhere():
            self.invalidate()

    # ---- cached reads ------------------------------------------------------------------

    async def circles(self) -> set[bytes]:
        if self._circles is None:
            self._circles = set(await self.store.circles())
        return self._circles

    async def known_circles(self) -> set[bytes]:
        """Circles whose genesis is stored, provisional ones (node/store/provisional.py)
        included: what ingest files ops under. Everything else uses ``circles()``."""
        if self._known is None:
            self._known = set(await self.store.known_circles())
        return self._known

    async def frozen(self) -> dict[tuple[bytes, bytes], int]:
        if self._frozen is None:
            self._frozen = await self.store.frozen()
        return self._frozen

    async def heights(self, circle: bytes) -> dict[bytes, tuple[int, bytes]]:
        heights = self._heights.get(circle)
        if heights is None:
            heights = await self.store.heads_for(circle)
            self._heights[circle] = heights
        return heights

    def set_height(self, circle: bytes, author: bytes, seq: int, head: bytes) -> None:
        self._heights.setdefault(circle, {})[author] = (seq, head)
        self._forwardable.pop(circle, None)

    def notify_committed(self, stored_valid: int) -> None:
        """Wake whoever waits for new ops (the live sync broadcaster)."""
        if stored_valid:
            self.committed.set()

    def touch(self, circle: bytes) -> None:
        """Something in ``circle`` changed status: derived sync heights are stale."""
        self._forwardable.pop(circle, None)

    async def forwardable_heights(self, circle: bytes) -> dict[bytes, int]:
        """Per author, the highest seq up to which every op is valid: what sync may send.

        Soft-failed and equivocated ops are never forwarded, nor anything after them in
        the same chain (a peer could not link it)."""
        await self.refresh()
        cached = self._forwardable.get(circle)
        if cached is None:
            heights = await self.heights(circle)
            stops = await self.store.first_unforwardable(circle)
            cached = {
                author: min(seq, stops.get(author, seq + 1) - 1)
                for author, (seq, _head) in heights.items()
            }
            cached = {author: seq for author, seq in cached.items() if seq > 0}
            self._forwardable[circle] = cached
        return cached

    def install_circle(self, circle: bytes, log: AuthLog, *, held: bool = True) -> None:
        """A genesis op was accepted in the current transaction (``held``: the circle is
        not provisional, so ``circles()`` shows it)."""
        if self._known is not None:
            self._known.add(circle)
        if held and self._circles is not None:
            self._circles.add(circle)
        self._logs[circle] = log
        self._heights.setdefault(circle, {})

    def freeze(
        self, circle: bytes, author: bytes, seq: int, new_head: tuple[int, bytes] | None
    ) -> None:
        """Mirror ``Store.freeze_author`` in the caches."""
        if self._frozen is not None:
            self._frozen[(circle, author)] = min(seq, self._frozen.get((circle, author), seq))
        heights = self._heights.setdefault(circle, {})
        if new_head is None:
            heights.pop(author, None)
        else:
            heights[author] = new_head
        self._y_end = {k: v for k, v in self._y_end.items() if k[2] != author}
        self._forwardable.pop(circle, None)

    async def y_end(self, circle: bytes, doc: bytes, author: bytes) -> int:
        key = (circle, doc, author)
        end = self._y_end.get(key)
        if end is None:
            end = await self.store.y_end(circle, doc, author)
            self._y_end[key] = end
        return end

    def set_y_end(self, circle: bytes, doc: bytes, author: bytes, end: int) -> None:
        self._y_end[(circle, doc, author)] = end

    async def auth_log(self, circle: bytes) -> AuthLog:
        log = self._logs.get(circle)
        if log is None:
            log = AuthLog(circle)
            log.void = await self.store.evidence_ids(circle)
            for row in await self.store.auth_ops(circle):
                if row.status == STATUS_EQUIVOCATED:
                    continue
                op = op_from_parts(row.header, row.sig, row.body)
                body = (
                    decode_genesis(op.body)
                    if op.kind is OpKind.GENESIS
                    else decode_auth_body(op.body)
                )
                log.add(op.op_id, op.author, op.seq, tuple(op.header.deps), body)
            self._logs[circle] = log
        return log

    async def auth_state(self, circle: bytes) -> AuthState:
        """The circle's current authorization; NotFound if this node does not hold it."""
        await self.refresh()
        if circle not in await self.circles():
            raise NotFound(f"this node does not hold circle {circle.hex()}")
        return (await self.auth_log(circle)).full()

    async def doc(self, circle: bytes, doc: bytes) -> YDoc:
        """The materialized doc (read it, do not edit it: edits go through ``node.local``)."""
        await self.refresh()
        return (await self.docs.get(circle, doc)).doc

    async def resolve_circle(self, text: str) -> bytes:
        """A circle id from its hex id or a unique prefix of it."""
        await self.refresh()
        text = text.strip().lower()
        matches = [c for c in await self.circles() if c.hex().startswith(text)]
        if len(text) < 4 or not matches:
            raise NotFound(f"no circle matches {text!r}: `circle-node circle list` shows them")
        if len(matches) > 1:
            raise NotFound(f"{text!r} matches {len(matches)} circles; give more of the id")
        return matches[0]
