"""The ingest pipeline: the one way an op, from a peer, a bundle or a local edit, enters.

Steps, per op, in this order (docs/protocol.md, "Ingest"):
1. limits and decoding (``oversized``, ``malformed``)
2. signature over the exact header bytes, then body length and hash (``bad_signature``)
3. duplicates are counted, not re-processed
4. kind rules (``invalid``); a frozen (equivocating) author is refused (``equivocation``)
5. per-author chain: ``seq = height + 1`` and ``backlink = head`` (``bad_backlink``); a seq
   ahead of the height waits in ``pending`` (gap); another op at a stored seq is
   equivocation: both are kept as evidence and the author is frozen from that seq
6. ``deps`` must be known auth ops, else the op waits in ``pending``
7. authorization as of ``deps`` (``restricted``) and now (soft fail: stored, not applied)
8. ``y`` ops: written under the author's registered ycid (``ycid_mismatch``), continuing its
   clock on that doc exactly (``clock_mismatch``), accepted by pycrdt, panics included
   (``malformed_update``)
9. everything accepted is written in one transaction, then pending ops it unblocks are
   retried in the same transaction.

Nothing rejected is stored (except equivocation evidence, in its own table) and only ops
stored as valid are returned in ``IngestReport.accepted``, the list sync may forward.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from node.checkpoints import write_due_checkpoints
from node.crypto.ops import Op, OpKind, decode_header, encode_wire
from node.docs import DocCache
from node.domain.auth import AuthBody, AuthState, Level, decode_auth_body, decode_genesis
from node.domain.authorize import AuthLog, Verdict, judge, judge_auth, record_required_level
from node.domain.documents import (
    BindingError,
    apply_update,
    check_binding,
    new_doc,
)
from node.errors import DecodeError, DocumentError
from node.ingest_report import (
    MAX_EVIDENCE_PER_AUTHOR,
    MAX_PENDING_BYTES,
    MAX_PENDING_PER_AUTHOR,
    MAX_PENDING_STRANGERS,
    MAX_PROBLEMS,
    IngestReport,
    Pended,
    Reason,
    Rejected,
    chain_key,
    decode_and_verify,
)
from node.replica import Replica
from node.store.store import STATUS_SOFT_FAILED, STATUS_VALID, OpRow

__all__ = [  # the report types live in node.ingest_report; callers import them from here
    "MAX_PROBLEMS",
    "Batch",
    "IngestReport",
    "Pended",
    "Reason",
    "Rejected",
    "decode_and_verify",
    "ingest_ops",
    "ingest_verified",
    "verify_wires",
]


def verify_wires(
    wires: Sequence[bytes], circle: bytes | None = None
) -> tuple[list[Op], IngestReport]:
    """Steps 1-2 for a batch: the ops that decode and verify, and a report holding the
    rejections. Pure CPU (libsodium releases the GIL), so it may run in a worker thread
    while the event loop stores the previous batch. With ``circle``, ops of any other
    circle are refused (a sync frame names its circle)."""
    report = IngestReport()
    ops: list[Op] = []
    for wire in wires:
        try:
            op = decode_and_verify(wire)
        except Rejected as exc:
            report.reject(None, exc.reason, exc.detail)
            continue
        if circle is not None and op.circle != circle:
            report.reject(op.op_id, Reason.INVALID, "an op of another circle in this frame")
            continue
        ops.append(op)
    return ops, report


async def ingest_ops(
    replica: Replica,
    wires: Sequence[bytes],
    *,
    circle: bytes | None = None,
    provisional: bool = False,
) -> IngestReport:
    """Run ops from anywhere through the pipeline in one write transaction. With
    ``provisional``, ``circle`` is marked provisional in it unless already held."""
    ops, report = verify_wires(wires, circle)
    return await ingest_verified(replica, ops, report, circle if provisional else None)


async def ingest_verified(
    replica: Replica, ops: Sequence[Op], report: IngestReport, provisional: bytes | None = None
) -> IngestReport:
    """Steps 3 onwards for ops :func:`verify_wires` passed, in one write transaction."""
    async with replica.store.write():
        try:
            await replica.refresh()
            if provisional is not None:
                await replica.store.mark_provisional(provisional)
            batch = await Batch.start(replica, report)
            if provisional is not None and await replica.store.is_provisional(provisional):
                batch.hidden.add(provisional)
            await batch.run(ops)
        except BaseException:
            replica.invalidate()
            raise
    replica.notify_committed(len(report.accepted))
    return report


class Batch:
    """The in-memory overlay of one write transaction; rows are flushed before any read."""

    def __init__(self, replica: Replica, report: IngestReport, next_lseq: int, pending_bytes: int):
        self.replica = replica
        self.store = replica.store
        self.docs: DocCache = replica.docs
        self.report = report
        self.next_lseq = next_lseq
        self.pending_bytes = pending_bytes
        self.rows: dict[bytes, OpRow] = {}
        self.dirty_heights: dict[tuple[bytes, bytes], tuple[int, bytes]] = {}
        self.pending_rows: list[tuple[bytes, bytes, bytes, int, bytes, str, bytes]] = []
        self.pending_by_author: Counter[tuple[bytes, bytes]] = Counter()
        self.status_changes: list[tuple[int, bytes]] = []
        self.released: list[bytes] = []
        self.seen: set[bytes] = set()
        self.pended: set[bytes] = set()
        self.strangers = 0
        self.circles: set[bytes] = set()
        self.frozen: dict[tuple[bytes, bytes], int] = {}
        self.hidden: set[bytes] = set()  # provisional circles (node/store/provisional.py)

    @classmethod
    async def start(cls, replica: Replica, report: IngestReport) -> Batch:
        store = replica.store
        batch = cls(replica, report, await store.max_lseq() + 1, await store.pending_bytes())
        # the replica mutates these in place within the transaction (new circle, freeze)
        batch.circles = await replica.known_circles()
        batch.frozen = await replica.frozen()
        return batch

    async def run(self, ops: Sequence[Op]) -> None:
        known = await self.store.known_op_ids([op.op_id for op in ops])
        for op in ops:
            if op.op_id in known or op.op_id in self.seen:
                self.report.duplicates += 1
                continue
            await self.process(op)
        await self.release_pending()
        await self.flush()
        await write_due_checkpoints(self.replica)

    async def flush(self) -> None:
        if self.rows:
            await self.store.insert_ops(list(self.rows.values()))
            self.rows.clear()
        if self.dirty_heights:
            await self.store.set_heights(self.dirty_heights)
            self.dirty_heights = {}
        if self.status_changes:
            await self.store.set_status(self.status_changes)
            self.status_changes = []
        if self.pending_rows:
            await self.store.add_pending(self.pending_rows)
            self.pending_rows = []

    async def process(self, op: Op) -> None:
        self.seen.add(op.op_id)
        if op.op_id in self.pended:
            self.pended.discard(op.op_id)
            self.report.pending -= 1
        try:
            await self._process(op)
        except Rejected as exc:
            self.report.reject(op.op_id, exc.reason, exc.detail)
        except Pended as exc:
            await self._pend(op, exc)

    async def _pend(self, op: Op, pended: Pended) -> None:
        author_key = (op.circle, op.author)
        wire = op.wire()
        in_store = await self.store.pending_count(op.circle, op.author)
        strangers = 0
        if pended.why == "stranger":
            strangers = await self.store.pending_with_reason("stranger") + self.strangers
        if (
            in_store + self.pending_by_author[author_key] >= MAX_PENDING_PER_AUTHOR
            or self.pending_bytes + len(wire) > MAX_PENDING_BYTES
            or strangers >= MAX_PENDING_STRANGERS
        ):
            self.report.reject(op.op_id, Reason.PENDING_FULL, "too many ops waiting; sync later")
            return
        self.pending_bytes += len(wire)
        self.pending_by_author[author_key] += 1
        self.strangers += pended.why == "stranger"
        self.pending_rows.append(
            (op.op_id, op.circle, op.author, op.seq, wire, pended.why, pended.waiting_for)
        )
        self.pended.add(op.op_id)
        self.report.pending += 1

    async def release_pending(self) -> None:
        """Retry pending ops whose missing predecessor, dep or circle has arrived."""
        while self.released:
            keys, self.released = self.released, []
            if self.pending_rows:
                await self.store.add_pending(self.pending_rows)
                self.pending_rows = []
            rows = await self.store.pending_waiting_for(keys)
            if not rows:
                continue
            await self.store.drop_pending([op_id for op_id, _ in rows])
            for op_id, wire in rows:
                self.pending_bytes -= len(wire)
                if op_id in self.seen and op_id not in self.pended:
                    continue
                try:
                    op = decode_and_verify(wire)
                except Rejected as exc:
                    self.report.reject(op_id, exc.reason, exc.detail)
                    continue
                self.seen.discard(op.op_id)
                await self.process(op)

    # ---- the per-op pipeline ------------------------------------------------------------

    async def _process(self, op: Op) -> None:
        header = op.header
        circle = op.circle
        if op.kind is OpKind.GENESIS:
            self._check_genesis(op)
            if circle in self.circles:
                raise Rejected(Reason.INVALID, "a different genesis already made this circle id")
            self._accept_genesis(op)
            return
        if circle not in self.circles:
            raise Pended("unknown_circle", circle)
        log = await self.replica.auth_log(circle)
        if header.seq == 1 and op.author == log.genesis_author:
            raise Rejected(Reason.INVALID, "the founder's first op in a circle is its genesis")
        height, head = (await self.replica.heights(circle)).get(op.author, (0, None))
        if header.seq <= height:
            await self._equivocation(op)
            raise Rejected(Reason.EQUIVOCATION, f"a different op already holds seq {header.seq}")
        if (circle, op.author) in self.frozen:
            await self._keep_as_evidence(op)
            raise Rejected(Reason.EQUIVOCATION, "author is frozen here after equivocating")
        missing = log.missing(tuple(header.deps))
        if missing:
            # an author this circle has never heard of gets only a small shared allowance,
            # so throwaway keys citing made-up deps cannot fill the pending buffer
            known = op.author in log.full().keys
            raise Pended("missing_deps" if known else "stranger", missing[0])
        # authorization comes before the gap check, so only authorized authors park ops
        status, auth_body = self._authorize(op, log)
        if header.seq > height + 1:
            raise Pended("gap", chain_key(circle, op.author, header.seq - 1))
        if header.backlink != head:
            raise Rejected(Reason.BAD_BACKLINK, "backlink does not match the author's chain")
        if auth_body is not None:
            status = await self._add_auth(op, log, auth_body)
        elif op.kind is OpKind.Y:
            await self._accept_y(op, log, status)
            return
        self._accept(op, status)

    def _check_genesis(self, op: Op) -> None:
        header = op.header
        if header.seq != 1 or header.backlink is not None or header.deps or header.doc:
            raise Rejected(Reason.INVALID, "a genesis op is seq 1 with no backlink, deps or doc")
        try:
            genesis = decode_genesis(op.body)
        except DecodeError as exc:
            raise Rejected(Reason.MALFORMED, str(exc)) from exc
        if genesis.ycid != header.ycid:
            raise Rejected(Reason.INVALID, "genesis ycid differs from its header")

    def _accept_genesis(self, op: Op) -> None:
        circle = op.circle
        log = AuthLog(circle)
        log.add(op.op_id, op.author, 1, (), decode_genesis(op.body))
        self.replica.install_circle(circle, log, held=circle not in self.hidden)
        self._accept(op, STATUS_VALID)
        self.released.append(circle)

    def _authorize(self, op: Op, log: AuthLog) -> tuple[int, AuthBody | None]:
        """Kind rules and authorization as of deps; (provisional status, auth body)."""
        header = op.header
        deps = tuple(header.deps)
        if op.kind is OpKind.Y:
            if header.doc is None or header.ycid == 0:
                raise Rejected(Reason.INVALID, "a y op names its doc and ycid")
            if log.full().ycid_of(op.author) not in (None, header.ycid):
                raise Rejected(
                    Reason.YCID_MISMATCH, "ycid is not the one registered for the author"
                )
            needed = Level.WRITE
        elif header.doc is not None:
            raise Rejected(Reason.INVALID, "only y ops name a doc")
        if op.kind is OpKind.AUTH:
            try:
                body = decode_auth_body(op.body)
            except DecodeError as exc:
                raise Rejected(Reason.MALFORMED, str(exc)) from exc
            verdict = judge_auth(log, author=op.author, seq=op.seq, deps=deps, body=body)
            if verdict is Verdict.RESTRICTED:
                raise Rejected(Reason.RESTRICTED, "the author may not make this change")
            return STATUS_VALID, body
        if op.kind is OpKind.RECORD:
            try:
                needed = record_required_level(op.body)
            except DecodeError as exc:
                raise Rejected(Reason.MALFORMED, str(exc)) from exc
        verdict = judge(log, author=op.author, seq=op.seq, deps=deps, needed=needed)
        if verdict is Verdict.RESTRICTED:
            raise Rejected(Reason.RESTRICTED, f"the author lacks {needed.name.lower()} access")
        return (STATUS_VALID if verdict is Verdict.VALID else STATUS_SOFT_FAILED), None

    async def _add_auth(self, op: Op, log: AuthLog, body: AuthBody) -> int:
        """An auth op authorized as of its deps joins the auth log and is valid: stored and
        forwarded, because every replica must fold the same set. Whether it takes effect is
        the fold's business (it may be skipped, identically everywhere)."""
        before = log.full()
        if not log.add(op.op_id, op.author, op.seq, tuple(op.header.deps), body):
            return STATUS_SOFT_FAILED  # cites a void op: kept as evidence, never applied
        await self._reconcile(op.circle, log, before, log.full(), new_op=op.op_id)
        return STATUS_VALID

    async def _accept_y(self, op: Op, log: AuthLog, status: int) -> None:
        header = op.header
        doc = header.doc
        assert doc is not None
        if log.full().ycid_of(op.author) != header.ycid:
            raise Rejected(Reason.YCID_MISMATCH, "ycid is not the one registered for the author")
        if self.docs.cached(op.circle, doc) is None:
            await self.flush()  # the doc loads from the store: it must see this batch
        expected = await self.replica.y_end(op.circle, doc, op.author)
        try:
            binding = check_binding(op.body, header.ycid, expected)
        except DecodeError as exc:
            raise Rejected(Reason.MALFORMED_UPDATE, str(exc)) from exc
        except BindingError as exc:
            raise Rejected(Reason(exc.code), str(exc)) from exc
        lseq = self.next_lseq
        try:
            if status == STATUS_VALID:
                entry = await self.docs.get(op.circle, doc)
                self.docs.apply(entry, lseq, op.body)
            else:
                apply_update(new_doc(), op.body)
        except DocumentError as exc:
            self.docs.evict(op.circle, doc)
            raise Rejected(Reason.MALFORMED_UPDATE, str(exc)) from exc
        self.replica.set_y_end(op.circle, doc, op.author, binding.end)
        self._accept(op, status, binding.start, binding.end)

    def _accept(
        self, op: Op, status: int, y_start: int | None = None, y_end: int | None = None
    ) -> None:
        header = op.header
        row = OpRow(
            self.next_lseq,
            op.op_id,
            op.circle,
            op.author,
            header.seq,
            int(op.kind),
            header.doc,
            op.header_bytes,
            op.sig,
            op.body,
            status,
            y_start,
            y_end,
        )
        self.next_lseq += 1
        self.rows[op.op_id] = row
        self.replica.set_height(op.circle, op.author, header.seq, op.op_id)
        self.dirty_heights[(op.circle, op.author)] = (header.seq, op.op_id)
        if self.pending_bytes:  # only then can anything be waiting for this op
            self.released.append(op.op_id)
            self.released.append(chain_key(op.circle, op.author, header.seq))
        if status == STATUS_VALID:
            self.report.added += 1
            self.report.accepted.append(op)
        else:
            self.report.soft_failed += 1

    # ---- consequences of auth changes and equivocation ---------------------------------

    async def _reconcile(
        self, circle: bytes, log: AuthLog, before: AuthState, after: AuthState, new_op: bytes
    ) -> None:
        """Re-judge stored ops whose validity an auth change may have flipped."""
        await self.flush()
        for row in await self.store.auth_ops(circle):
            if row.op_id == new_op:
                continue
            want = STATUS_VALID if row.op_id in log.entries else STATUS_SOFT_FAILED
            self._set_status(row, want)
        changed = {
            key
            for key in set(before.keys) | set(after.keys)
            if _key_signature(before, key) != _key_signature(after, key)
        }
        for author in changed:
            for row in await self.store.ops_by_author(circle, author):
                if row.kind not in (OpKind.Y, OpKind.RECORD) or row.status > STATUS_SOFT_FAILED:
                    continue
                needed = Level.WRITE if row.kind == OpKind.Y else record_required_level(row.body)
                deps = tuple(_deps_of(row))
                verdict = judge(log, author=author, seq=row.seq, deps=deps, needed=needed)
                self._set_status(
                    row, STATUS_VALID if verdict is Verdict.VALID else STATUS_SOFT_FAILED
                )

    def _set_status(self, row: OpRow, status: int) -> None:
        if row.status == status:
            return
        self.status_changes.append((status, row.op_id))
        self.replica.touch(row.circle)
        if row.kind == OpKind.Y and row.doc is not None:
            self._forget_doc(row.circle, row.doc)
        if status != STATUS_VALID:
            self.report.accepted = [op for op in self.report.accepted if op.op_id != row.op_id]

    def _forget_doc(self, circle: bytes, doc: bytes) -> None:
        self.docs.evict(circle, doc)
        self.replica.stale_checkpoints.add((circle, doc))

    async def _equivocation(self, op: Op) -> None:
        """Two ops at one (circle, author, seq): keep both and everything the author wrote
        after that seq as evidence only, end its chain before the fork, freeze it here."""
        await self.flush()
        circle, author, seq = op.circle, op.author, op.seq
        log = await self.replica.auth_log(circle)
        before = log.full()
        later = await self.store.ops_by_author(circle, author, min_seq=seq)
        other = later[0].op_id if later else b""
        evidence = [(op.op_id, seq, op.wire(), other)]
        evidence += [
            (r.op_id, r.seq, encode_wire(r.header, r.sig, r.body), op.op_id) for r in later
        ]
        new_head = None
        if seq > 1:
            previous = await self.store.op_id_at(circle, author, seq - 1)
            new_head = (seq - 1, previous or b"")
        await self.store.freeze_author(circle, author, seq, evidence, new_head)
        self.replica.freeze(circle, author, seq, new_head)
        for row in later:
            if row.kind == OpKind.Y and row.doc is not None:
                self._forget_doc(circle, row.doc)
        dropped = {r.op_id for r in later}
        self.report.accepted = [o for o in self.report.accepted if o.op_id not in dropped]
        log.discard(dropped | {op.op_id})
        self.released.extend(dropped | {op.op_id})
        await self._reconcile(circle, log, before, log.full(), new_op=b"")

    async def _keep_as_evidence(self, op: Op) -> None:
        """A frozen author's later op: void evidence (bounded), so ops citing it settle the
        same way on every replica instead of waiting for it for ever."""
        log = await self.replica.auth_log(op.circle)
        if op.op_id in log.void:
            return
        if await self.store.evidence_count(op.circle, op.author) >= MAX_EVIDENCE_PER_AUTHOR:
            return
        await self.flush()
        await self.store.add_evidence(op.circle, op.author, op.seq, op.op_id, op.wire())
        log.discard({op.op_id})
        self.released.append(op.op_id)


def _key_signature(state: AuthState, key: bytes) -> tuple[Any, ...] | None:
    ks = state.keys.get(key)
    if ks is None:
        return None
    return (tuple(ks.boundaries), tuple(ks.levels), ks.ycid)


def _deps_of(row: OpRow) -> list[bytes]:
    return decode_header(row.header).deps
