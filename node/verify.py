"""Re-verify everything stored, trusting nothing but the signed bytes.

``verify_store`` recomputes, from the op log alone: op ids, signatures and body hashes;
that the stored columns agree with the signed header; per-author chains (contiguous seqs,
backlinks, heights); authorization as of ``deps`` and now (the stored status must be the
one the rules give); the ycid clock binding of every ``y`` op; and that every decision
record holds against the signed positions it lists (``node.governance.verify_decisions``).
It never changes the store. Any disagreement is a problem naming the op.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field

from node.crypto.ops import Op, OpKind, op_from_parts, verify_op
from node.domain.auth import AuthBody, Genesis, Level, decode_auth_body, decode_genesis
from node.domain.authorize import (
    AuthLog,
    Verdict,
    judge,
    judge_auth,
    record_required_level,
)
from node.domain.documents import BindingError, check_binding
from node.errors import DecodeError, SignatureError, StorageError
from node.governance import verify_decisions
from node.replica import Replica
from node.store.store import (
    STATUS_EQUIVOCATED,
    STATUS_NAMES,
    STATUS_SOFT_FAILED,
    STATUS_VALID,
    OpRow,
)


@dataclass
class VerifyReport:
    ops: int = 0
    problems: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, row: OpRow | None, code: str, detail: str) -> None:
        self.problems.append(
            {
                "op": row.op_id.hex() if row else "",
                "circle": row.circle.hex() if row else "",
                "problem": code,
                "detail": detail,
            }
        )

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "ops": self.ops, "problems": self.problems}


async def verify_store(replica: Replica, circle: bytes | None = None) -> VerifyReport:
    """Check every stored op (of one circle, or all) against the rules; change nothing."""
    report = VerifyReport()
    store = replica.store
    try:
        for message in await store.integrity_check():
            report.problem(None, "sqlite_integrity", message)
        rows = await store.all_ops(circle)
        circles = {r.circle for r in rows}
        heights = {c: await store.heads_for(c) for c in circles}
        void = {c: await store.evidence_ids(c) for c in circles}
        frozen = await store.frozen()
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"the store cannot be read: {exc}") from exc
    report.ops = len(rows)
    by_circle: dict[bytes, list[tuple[OpRow, Op]]] = defaultdict(list)
    for row in rows:
        op = _check_op(report, row)
        if op is not None:
            by_circle[row.circle].append((row, op))
    for circle_id, ops in by_circle.items():
        _check_chains(report, ops, heights.get(circle_id, {}), frozen, circle_id)
        _check_authorization(report, circle_id, ops, void.get(circle_id, set()))
        _check_bindings(report, ops)
        # decision records re-checked against the signed positions (only ops that verified)
        signed_ok = {row.op_id for row, _op in ops}
        report.problems += await verify_decisions(replica, circle_id, only=signed_ok)
    return report


def _check_op(report: VerifyReport, row: OpRow) -> Op | None:
    try:
        op = op_from_parts(row.header, row.sig, row.body)
        verify_op(op)
    except (DecodeError, SignatureError) as exc:
        report.problem(row, "bad_signature", str(exc))
        return None
    if op.op_id != row.op_id:
        report.problem(row, "bad_op_id", "stored op id is not the hash of header and signature")
        return None
    header = op.header
    columns = (row.circle, row.author, row.seq, row.kind, row.doc)
    signed = (op.circle, header.author, header.seq, int(header.kind), header.doc)
    if columns != signed:
        report.problem(row, "column_mismatch", "stored columns differ from the signed header")
        return None
    if row.status not in STATUS_NAMES:
        report.problem(row, "bad_status", f"unknown status {row.status}")
        return None
    return op


def _check_chains(
    report: VerifyReport,
    ops: list[tuple[OpRow, Op]],
    heights: dict[bytes, tuple[int, bytes]],
    frozen: dict[tuple[bytes, bytes], int],
    circle: bytes,
) -> None:
    chains: dict[bytes, list[tuple[OpRow, Op]]] = defaultdict(list)
    for row, op in ops:
        chains[op.author].append((row, op))
    for author, chain in chains.items():
        chain.sort(key=lambda item: item[1].seq)
        previous: bytes | None = None
        for expected_seq, (row, op) in enumerate(chain, start=1):
            if op.seq != expected_seq:
                report.problem(row, "chain_gap", f"seq {op.seq} where {expected_seq} expected")
                break
            if op.header.backlink != previous:
                report.problem(row, "bad_backlink", "backlink does not name the previous op")
            if row.status == STATUS_EQUIVOCATED and frozen.get((circle, author), 1 << 62) > op.seq:
                report.problem(row, "bad_status", "equivocated op without evidence")
            previous = op.op_id
        last_row, last_op = chain[-1]
        if heights.get(author) != (last_op.seq, last_op.op_id):
            report.problem(last_row, "bad_height", "stored height does not match the chain")


def _check_authorization(
    report: VerifyReport, circle: bytes, ops: list[tuple[OpRow, Op]], void: set[bytes]
) -> None:
    log = AuthLog(circle)
    log.void = set(void)
    auth_rows: list[tuple[OpRow, Op]] = []
    for row, op in sorted(ops, key=lambda item: item[0].lseq):
        if op.kind not in (OpKind.GENESIS, OpKind.AUTH) or row.status == STATUS_EQUIVOCATED:
            continue
        deps = tuple(op.header.deps)
        body: Genesis | AuthBody
        try:
            if op.kind is OpKind.GENESIS:
                body = decode_genesis(op.body)
            else:
                body = decode_auth_body(op.body)
                if log.missing(deps):
                    report.problem(row, "missing_deps", "an auth op cites unknown auth ops")
                    continue
                verdict = judge_auth(log, author=op.author, seq=op.seq, deps=deps, body=body)
                if verdict is Verdict.RESTRICTED:
                    report.problem(row, "restricted", "auth op not authorized as of its deps")
        except DecodeError as exc:
            report.problem(row, "malformed", str(exc))
            continue
        log.add(op.op_id, op.author, op.seq, deps, body)
        auth_rows.append((row, op))
    state = log.full()
    for row, _op in auth_rows:  # in the log (even if the fold skips it): valid; void: not
        want = STATUS_VALID if row.op_id in log.entries else STATUS_SOFT_FAILED
        _expect_status(report, row, want)
    for row, op in ops:
        if op.kind not in (OpKind.Y, OpKind.RECORD) or row.status == STATUS_EQUIVOCATED:
            continue
        deps = tuple(op.header.deps)
        if log.missing(deps):
            report.problem(row, "missing_deps", "op cites unknown auth ops")
            continue
        try:
            needed = Level.WRITE if op.kind is OpKind.Y else record_required_level(op.body)
        except DecodeError as exc:
            report.problem(row, "malformed", str(exc))
            continue
        verdict = judge(log, author=op.author, seq=op.seq, deps=deps, needed=needed)
        if verdict is Verdict.RESTRICTED:
            report.problem(row, "restricted", "op not authorized as of its deps")
            continue
        _expect_status(
            report, row, STATUS_VALID if verdict is Verdict.VALID else STATUS_SOFT_FAILED
        )
        registered = state.ycid_of(op.author)
        if op.kind is OpKind.Y and registered is not None and registered != op.header.ycid:
            report.problem(row, "ycid_mismatch", "y op under a ycid not registered to its author")


def _expect_status(report: VerifyReport, row: OpRow, want: int) -> None:
    if row.status != want:
        report.problem(
            row,
            "bad_status",
            f"stored as {STATUS_NAMES[row.status]}, the rules say {STATUS_NAMES[want]}",
        )


def _check_bindings(report: VerifyReport, ops: list[tuple[OpRow, Op]]) -> None:
    ends: dict[tuple[bytes, bytes], int] = {}
    for row, op in sorted(ops, key=lambda item: (item[1].author, item[1].seq)):
        if op.kind is not OpKind.Y or op.header.doc is None:
            continue
        key = (op.header.doc, op.author)
        try:
            binding = check_binding(op.body, op.header.ycid, ends.get(key, 0))
        except (DecodeError, BindingError) as exc:
            report.problem(row, "bad_update", str(exc))
            continue
        if (row.y_start, row.y_end) != (binding.start, binding.end):
            report.problem(row, "bad_update", "stored clock range differs from the update")
        ends[key] = binding.end
