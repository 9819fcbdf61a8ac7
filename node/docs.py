"""Materialized documents: a bounded LRU of pycrdt docs built from checkpoint + later ops.

Invariant: a cached doc equals the merge of every *valid* ``y`` op for it with
``lseq <= covers``. Anything that could break that (a demoted op, a failed transaction,
another process's commit) evicts the doc; it is rebuilt from the store on next use.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

from node.domain.documents import YDoc, apply_update, new_doc
from node.errors import DocumentError
from node.store.store import Store

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 4_000


@dataclass
class CachedDoc:
    doc: YDoc
    covers: int  # highest lseq applied
    since_checkpoint: int


class DocCache:
    """Lazily loaded docs keyed by (circle, doc id), at most ``capacity`` in memory."""

    def __init__(self, store: Store, capacity: int = 64) -> None:
        self.store = store
        self.capacity = capacity
        self._docs: OrderedDict[tuple[bytes, bytes], CachedDoc] = OrderedDict()

    def clear(self) -> None:
        self._docs.clear()

    def evict(self, circle: bytes, doc: bytes) -> None:
        self._docs.pop((circle, doc), None)

    def cached(self, circle: bytes, doc: bytes) -> CachedDoc | None:
        return self._docs.get((circle, doc))

    async def get(self, circle: bytes, doc: bytes) -> CachedDoc:
        key = (circle, doc)
        entry = self._docs.get(key)
        if entry is not None:
            self._docs.move_to_end(key)
            return entry
        entry = await self._load(circle, doc)
        self._docs[key] = entry
        if len(self._docs) > self.capacity:
            self._docs.popitem(last=False)
        return entry

    async def _load(self, circle: bytes, doc: bytes) -> CachedDoc:
        ydoc = new_doc()
        covers = 0
        checkpoint = await self.store.checkpoint(circle, doc)
        if checkpoint is not None:
            state, covers = checkpoint
            apply_update(ydoc, state)
        updates = await self.store.doc_updates(circle, doc, covers)
        for lseq, body in updates:
            try:
                apply_update(ydoc, body)
            except DocumentError:
                # stored ops passed the update check at ingest; never let one stop a load
                log.error("skipping an unreadable stored update at lseq %s", lseq)
            covers = lseq
        return CachedDoc(ydoc, covers, len(updates))

    def apply(self, entry: CachedDoc, lseq: int, update: bytes) -> None:
        apply_update(entry.doc, update)
        entry.covers = lseq
        entry.since_checkpoint += 1

    def due_checkpoints(self) -> list[tuple[bytes, bytes, CachedDoc]]:
        return [
            (circle, doc, entry)
            for (circle, doc), entry in self._docs.items()
            if entry.since_checkpoint >= CHECKPOINT_EVERY
        ]
