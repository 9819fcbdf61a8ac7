"""Document checkpoints: bound start-up cost by saving a doc's state now and then.

Written in the ingest transaction once a cached doc took ``CHECKPOINT_EVERY`` updates since
its last checkpoint. A checkpoint must equal the merge of every valid update up to the
``lseq`` it covers, including updates pycrdt still holds back (waiting for another
author's items or deletions of items not yet seen), which ``get_update()`` leaves out.
"""

from __future__ import annotations

from node.domain.documents import YDoc, merge, state_vector
from node.domain.yupdate import summarize_update
from node.errors import DecodeError, DocumentError
from node.replica import Replica


async def write_due_checkpoints(replica: Replica) -> None:
    """Drop stale checkpoints; write new ones for docs that took many ops since theirs.

    A doc's ``get_update()`` leaves out updates still waiting for another author's
    items. When every author's last stored update to the doc is integrated (its clock
    end is within the doc's state vector) nothing waits, and ``get_update()`` is the
    exact state (fast). Otherwise the checkpoint merges the previous one with the
    stored updates since (slow, but keeps what waits)."""
    stale = replica.stale_checkpoints
    if stale:
        await replica.store.drop_checkpoints(stale)
        stale.clear()
    for circle, doc, entry in replica.docs.due_checkpoints():
        try:
            if await _all_integrated(replica, circle, doc, entry.doc):
                state = bytes(entry.doc.get_update())
            else:
                state = await _merged_state(replica, circle, doc, entry.covers)
        except DocumentError:
            continue  # keep the old checkpoint; the doc still loads from the ops
        await replica.store.save_checkpoint(circle, doc, state, entry.covers)
        entry.since_checkpoint = 0


async def _all_integrated(replica: Replica, circle: bytes, doc: bytes, ydoc: YDoc) -> bool:
    """Nothing stored for ``doc`` waits inside pycrdt: every author's items are within
    the state vector, and every deletion (in the previous checkpoint and in each
    update since) targets items the doc has."""
    known = state_vector(ydoc)
    auth = (await replica.auth_log(circle)).full()
    for author, end in (await replica.store.y_ends(circle, doc)).items():
        ycid = auth.ycid_of(author)
        if ycid is None or known.get(ycid, 0) < end:
            return False
    previous = await replica.store.checkpoint(circle, doc)
    state, covers = previous if previous else (b"", 0)
    updates = [body for _lseq, body in await replica.store.doc_updates(circle, doc, covers)]
    for update in [state, *updates] if state else updates:
        try:
            deletes = summarize_update(update).deletes
        except DecodeError:
            return False
        if any(known.get(client, 0) < clock + length for client, clock, length in deletes):
            return False
    return True


async def _merged_state(replica: Replica, circle: bytes, doc: bytes, upto: int) -> bytes:
    previous = await replica.store.checkpoint(circle, doc)
    state, covers = previous if previous else (b"", 0)
    bodies = [
        body for lseq, body in await replica.store.doc_updates(circle, doc, covers) if lseq <= upto
    ]
    return merge([state, *bodies] if state else bodies)
