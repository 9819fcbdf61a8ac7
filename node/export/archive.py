"""Self-verifying archives: write every signed op of some circles, and verify such a file
from its bytes alone.

Invariants:

* :func:`write_archive` copies ops exactly as stored (header, signature and body bytes),
  in the exporter's arrival order, which is a causal order: an op's chain predecessor and
  the auth ops it cites come before it. Equivocated ops (evidence) are left out; the
  chains stop where the store's heads stop.
* :func:`verify_archive` never opens the local node's store. It builds a fresh store in a
  temporary directory and feeds every op through the real ingest pipeline
  (:mod:`node.ingest`: limits, signatures, body hashes, chains, authorization as of deps,
  ycid binding), then runs :func:`node.verify.verify_store` over the result (which also
  re-checks every decision against the signed positions it lists). Every op that does not
  make it in, or that a check flags, is named: circle, author, seq and op hash.
* The manifest is an index, not a proof: its counts, hashes and heads are compared with
  what the ops themselves prove, and a disagreement is a problem.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from node.crypto.ops import Op, OpKind, decode_header
from node.errors import DecodeError, NodeError, NotFound
from node.export.archive_format import (
    MAX_CIRCLES,
    MAX_NAME,
    VERIFIER,
    CircleEntry,
    Frame,
    Head,
    Manifest,
    SectionEnd,
    SectionHasher,
    encode_frame,
    encode_head,
    read_frames,
    read_manifest,
)
from node.governance import load
from node.ingest import IngestReport, Rejected, decode_and_verify, ingest_verified
from node.replica import Replica
from node.store.store import STATUS_EQUIVOCATED, STATUS_VALID
from node.verify import verify_store

BATCH = 2_000  # ops per ingest transaction while verifying
MAX_PROBLEMS = 200  # problems listed in a report (all are counted)
Progress = Callable[[int, int], None]  # (done, total)


# ---- writing ----------------------------------------------------------------------------


async def _circle_name(replica: Replica, circle: bytes) -> str:
    genesis = (await replica.auth_log(circle)).full().genesis
    return genesis.name if genesis else ""


@dataclass(frozen=True)
class Plan:
    """What an archive will hold: its manifest, and the store as of ``upto`` (an lseq),
    so ops a running service stores meanwhile neither join nor break the export."""

    manifest: Manifest
    upto: int


async def _section(replica: Replica, circle: bytes, upto: int) -> tuple[list[bytes], list[Head]]:
    """The circle's exported wires (arrival order) and the chain heads they reach."""
    wires: list[bytes] = []
    heads: dict[bytes, tuple[int, bytes]] = {}
    for row in await replica.store.all_ops(circle):
        if row.lseq > upto or row.status == STATUS_EQUIVOCATED:
            continue
        wires.append(msgspec.msgpack.encode((row.header, row.sig, row.body)))
        if row.seq > heads.get(row.author, (0, b""))[0]:
            heads[row.author] = (row.seq, row.op_id)
    return wires, [Head(a, seq, op_id) for a, (seq, op_id) in sorted(heads.items())]


def _hash(wires: list[bytes]) -> bytes:
    hasher = SectionHasher()
    for wire in wires:
        hasher.add(wire)
    return hasher.digest()


async def plan_archive(replica: Replica, circles: Sequence[bytes], exporter: str) -> Plan:
    """The manifest of an archive of ``circles`` (counts, section hashes, heads)."""
    if len(circles) > MAX_CIRCLES:
        raise NodeError(f"an archive holds at most {MAX_CIRCLES} circles: use --circle")
    upto = await replica.store.max_lseq()
    entries: list[CircleEntry] = []
    for circle in circles:
        wires, heads = await _section(replica, circle, upto)
        name = (await _circle_name(replica, circle))[:MAX_NAME]
        entries.append(CircleEntry(circle, name, len(wires), _hash(wires), heads))
    return Plan(Manifest(int(time.time()), exporter[:MAX_NAME], VERIFIER, entries), upto)


async def write_archive(
    replica: Replica, plan: Plan, out: BinaryIO, progress: Progress | None = None
) -> int:
    """Write the archive ``plan`` describes; the number of ops written. The ops are
    re-read per circle, as of the plan's lseq; should one have changed even so (an
    equivocation found meanwhile), nothing is published: run the export again."""
    manifest = plan.manifest
    out.write(encode_head(manifest))
    done, total = 0, manifest.total
    for entry in manifest.circles:
        wires, _heads = await _section(replica, entry.circle, plan.upto)
        if len(wires) != entry.count or _hash(wires) != entry.ops_hash:
            raise NodeError(
                f"circle {entry.circle.hex()[:8]} changed while exporting: run export again"
            )
        for wire in wires:
            out.write(encode_frame(wire))
        done += len(wires)
        if progress is not None:
            progress(done, total)
    return done


# ---- verifying --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Named:
    """What an archived op claims to be, for naming it in a problem."""

    index: int
    op: str
    circle: str
    author: str
    seq: int | None
    kind: str


def _name_frame(frame: Frame) -> Named:
    """Best effort: an op whose signature fails may still have a readable header."""
    try:
        header_bytes, sig, _body = msgspec.msgpack.decode(
            frame.wire, type=tuple[bytes, bytes, bytes]
        )
        header = decode_header(header_bytes)
    except (msgspec.DecodeError, DecodeError):
        return Named(frame.index, "", frame.circle.hex(), "", None, "")
    op = Op.build(header, header_bytes, sig, b"")
    return Named(
        frame.index, op.op_id.hex(), op.circle.hex(), header.author.hex(), header.seq,
        header.kind.name.lower(),
    )  # fmt: skip


def _name_op(index: int, op: Op) -> Named:
    return Named(
        index, op.op_id.hex(), op.circle.hex(), op.author.hex(), op.seq, op.kind.name.lower()
    )


@dataclass
class ArchiveReport:
    """What verifying an archive found: per-circle summaries and every problem."""

    ops: int = 0
    manifest: dict[str, Any] = field(default_factory=dict)
    circles: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def problem(self, named: Named | None, code: str, detail: str, circle: str = "") -> None:
        self.problem_count += 1
        if len(self.problems) >= MAX_PROBLEMS:
            return
        entry: dict[str, Any] = {"problem": code, "detail": detail}
        if named is not None:
            entry |= {
                "op": named.op,
                "index": named.index,
                "circle": named.circle,
                "author": named.author,
                "seq": named.seq,
                "kind": named.kind,
            }
        else:
            entry |= {"op": "", "circle": circle}
        self.problems.append(entry)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "ops": self.ops,
            "manifest": self.manifest,
            "circles": self.circles,
            "problem_count": self.problem_count,
            "problems": self.problems,
        }


class _Verifier:
    """One verification run over a fresh replica."""

    def __init__(self, replica: Replica, report: ArchiveReport) -> None:
        self.replica = replica
        self.report = report
        self.names: dict[bytes, Named] = {}
        self.batch: list[Op] = []
        self.reported: set[str] = set()
        # (circle, author, seq) -> the op id that the author's next op's backlink, or the
        # manifest's head, gives for it: names the original of an op whose header was edited
        self.cited: dict[tuple[str, str, int], str] = {}

    def frame(self, frame: Frame) -> None:
        self.report.ops += 1
        try:
            op = decode_and_verify(frame.wire)
        except Rejected as exc:
            named = _name_frame(frame)
            self._problem(named, exc.reason.value, exc.detail)
            return
        named = _name_op(frame.index, op)
        if op.header.backlink is not None and op.seq > 1:
            key = (named.circle, named.author, op.seq - 1)
            self.cited.setdefault(key, op.header.backlink.hex())
        if op.circle != frame.circle:
            self._problem(named, "wrong_section", "the op is filed under another circle")
            return
        if op.op_id in self.names:
            self._problem(named, "duplicate", "the op appears twice in the archive")
            return
        self.names[op.op_id] = named
        self.batch.append(op)

    def _problem(self, named: Named, code: str, detail: str) -> None:
        self.reported.add(named.op)
        self.report.problem(named, code, detail)

    async def flush(self) -> None:
        if not self.batch:
            return
        ops, self.batch = self.batch, []
        ingested = await ingest_verified(self.replica, ops, IngestReport())
        for found in ingested.problems:
            named = self.names.get(bytes.fromhex(found["op"])) if found["op"] else None
            if named is not None:
                self._problem(named, found["reason"], found["detail"])

    async def finish(self) -> None:
        await self.flush()
        store = self.replica.store
        ids = list(self.names)
        stored = await store.known_op_ids(ids)
        pending = await store.pending_ids(ids)
        for op_id, named in self.names.items():
            if op_id in stored or named.op in self.reported:
                continue
            if op_id in pending:
                self._problem(
                    named,
                    "missing_predecessor",
                    "the op waits for an op the archive lacks (an earlier op of its "
                    "author's chain, or an auth op it cites)",
                )
            else:
                self._problem(named, "rejected", "the ingest pipeline refused the op")
        checked = await verify_store(self.replica)
        for found in checked.problems:
            which = self.names.get(bytes.fromhex(found["op"])) if found["op"] else None
            if which is None:
                self.report.problem(None, found["problem"], found["detail"], found["circle"])
            elif which.op not in self.reported:
                self._problem(which, found["problem"], found["detail"])

    def original_ids(self) -> None:
        """Add ``original_op`` to problems whose op the chain knows under another id."""
        for problem in self.report.problems:
            if problem.get("seq") is None:
                continue
            key = (problem["circle"], problem["author"], problem["seq"])
            original = self.cited.get(key)
            if original is not None and original != problem["op"]:
                problem["original_op"] = original

    def section_end(self, end: SectionEnd) -> None:
        for head in end.entry.heads:
            key = (end.entry.circle.hex(), head.author.hex(), head.seq)
            self.cited.setdefault(key, head.op_id.hex())
        if end.ops_hash != end.entry.ops_hash:
            self.report.problem(
                None,
                "section_hash",
                "the circle's ops are not the ones its manifest lists (an op was edited, "
                "added or removed)",
                end.entry.circle.hex(),
            )

    async def summarise(self, manifest: Manifest) -> None:
        for entry in manifest.circles:
            self.report.circles.append(await self._circle(entry))

    async def _circle(self, entry: CircleEntry) -> dict[str, Any]:
        circle = entry.circle
        store = self.replica.store
        rows = await store.all_ops(circle)
        heads = await store.heads_for(circle)
        listed = {h.author: (h.seq, h.op_id) for h in entry.heads}
        for author in sorted(set(heads) | set(listed)):
            if heads.get(author) != listed.get(author):
                held = heads.get(author, (0, b""))[0]
                claimed = listed.get(author, (0, b""))[0]
                self.report.problem(
                    None,
                    "head_mismatch",
                    f"author {author.hex()[:16]}: the manifest says seq {claimed}, the "
                    f"verified ops reach seq {held}",
                    circle.hex(),
                )
        valid = sum(1 for r in rows if r.status == STATUS_VALID)
        genesis = any(r.kind == int(OpKind.GENESIS) for r in rows)
        decisions = 0
        if genesis:
            decisions = len((await load(self.replica, circle)).gov.decisions)
        return {
            "circle": circle.hex(),
            "name": await _circle_name(self.replica, circle) if genesis else entry.name,
            "listed": entry.count,
            "verified": len(rows),
            "valid": valid,
            "soft_failed": len(rows) - valid,
            "authors": len(heads),
            "decisions": decisions,
        }


def _open(path: Path) -> tuple[BinaryIO, int]:
    try:
        handle = path.open("rb")
        return handle, os.fstat(handle.fileno()).st_size
    except FileNotFoundError:
        raise NotFound(f"no archive at {path}") from None
    except OSError as exc:
        raise NotFound(f"cannot read {path}: {exc.strerror or exc}") from exc


async def verify_archive(path: Path, progress: Progress | None = None) -> ArchiveReport:
    """Verify the archive at ``path`` from its bytes alone (see the module docstring).
    DecodeError when the file is not a readable archive at all."""
    report = ArchiveReport()
    handle, size = _open(path)
    with handle, tempfile.TemporaryDirectory(prefix="circle-node-verify-") as tmp:
        manifest = read_manifest(handle, size)
        report.manifest = {
            "created": manifest.created,
            "exporter": manifest.exporter,
            "verifier": manifest.verifier,
            "circles": len(manifest.circles),
            "ops": manifest.total,
        }
        async with Replica.open(Path(tmp) / "verify.db") as replica:
            run = _Verifier(replica, report)
            for item in read_frames(handle, manifest):
                if isinstance(item, SectionEnd):
                    run.section_end(item)
                    continue
                run.frame(item)
                if len(run.batch) >= BATCH:
                    await run.flush()
                    if progress is not None:
                        progress(report.ops, manifest.total)
            if progress is not None:
                progress(report.ops, manifest.total)
            await run.finish()
            run.original_ids()
            await run.summarise(manifest)
    return report
