"""USB bundles: a node's circles in one signed, per-circle encrypted file, for sneakernet.

The byte layout is in :mod:`node.crypto.bundle`. The commands:

* ``bundle heights FILE`` on the receiving node writes its heights per circle it holds,
  signed by its node key and sealed per circle under the circle key.
* ``bundle export FILE [--circle ID ...] [--for CARD_OR_NODE] [--since HEIGHTS_FILE]``
  writes, per chosen circle (default: all held), the valid ops above the receiver's heights
  (``--since``, else all) and at most ``Replica.forwardable_heights`` (never a soft-failed
  or equivocated op, nor anything after one in its chain), in local arrival order, so deps
  and predecessors come first. ``--for`` (a member card, whose home node is meant, or a
  node key in hex) applies sync's read authorization: only circles whose auth state lists
  that node as a host go in; an explicit ``--circle`` it may not host, or no circle at all,
  is refused. For the target the manifest carries each circle's genesis op sealed to it,
  except circles its heights file lists (it holds them). ``--since`` alone targets the node
  that signed the heights file; ``--for`` another node with it is refused.
* ``bundle import FILE`` verifies the head, then per section: derive the key (the stored
  genesis, else the sealed one, opened with the node key), check it whole (hash against the
  signed manifest, decrypt and decode every chunk), and only then ingest its ops through
  :func:`node.ingest.ingest_ops` in batches of at most 500, one transaction each. Asked to
  stop (``stop()`` true, e.g. after SIGTERM), it finishes the batch in flight and raises
  :class:`Interrupted`: every batch it counted is committed, and a re-run resumes (ops
  already held are duplicates).

Threat model. A finder of the stick who never held a circle learns its id, the number and
size of its ops, the exporting and target nodes and the date; not the ops, authors or
heights. Anyone who holds or ever held the circle's genesis op (every host and former host,
every node that synced it, any store backup) can read every bundle of that circle, past and
future: the key never rotates, there is no forward secrecy and removing a host does not lock
it out of bundles. A bundle without ``--for`` can be read only by nodes that already hold
its circles. Integrity does not rest on the exporter: the head signature names the node
that exported and binds the section hashes, but every op is still verified, chained and
authorized by ingest, so a hostile exporter can withhold ops, never forge them.

Import invariants: a damaged, altered, truncated or undecryptable section imports nothing
and is listed in ``sections_failed``; a bad head imports nothing at all; complete sections
of a cut file still import; a circle this node neither holds nor can open is listed in
``sections_skipped``; importing the same bundle twice adds nothing (all duplicates); a
circle new here that does not list this node as a host is purged (``sections_failed``).
This module reads and writes streams; :mod:`node.commands.bundle` owns the files (atomic
temp file, fsync and rename on export; never over an existing file without ``--force``).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from node.crypto.bundle import (
    MAX_FILE_BYTES,
    MAX_SECTION_BYTES,
    BundleReader,
    CircleEntry,
    HeightsFile,
    Manifest,
    SectionSealer,
    bundle_head,
    circle_key,
    encode_heights_file,
    open_genesis,
    seal_genesis,
)
from node.crypto.keys import KeyPair
from node.crypto.ops import OpKind, Signer, encode_wire
from node.errors import (
    AuthorizationError,
    DecodeError,
    Interrupted,
    NodeError,
    NotFound,
    SignatureError,
)
from node.ingest import MAX_PROBLEMS, IngestReport, Rejected, decode_and_verify, ingest_ops
from node.keyring import KeyRing, PeerIdentity
from node.replica import Replica
from node.sync.settle import settle

Progress = Callable[[int, int], None]
StopAsked = Callable[[], bool]


def short(key: bytes) -> str:
    return key.hex()[:8]


@dataclass(frozen=True)
class HeldGenesis:
    key: bytes  # the circle's bundle key
    wire: bytes  # the genesis op as sent


async def held_genesis(replica: Replica, circle: bytes) -> HeldGenesis | None:
    """The key and genesis wire of a circle this node holds, else None."""
    rows = await replica.store.ops_of_kind(circle, int(OpKind.GENESIS))
    if not rows:
        return None
    row = rows[0]
    return HeldGenesis(circle_key(row.op_id, row.sig), encode_wire(row.header, row.sig, row.body))


# ---- heights files ----------------------------------------------------------------------


async def heights_file(replica: Replica, node_key: Signer) -> tuple[bytes, int]:
    """The signed heights file of every circle held here, and how many circles it names."""
    await replica.refresh()
    entries = []
    for circle in sorted(await replica.circles()):
        genesis = await held_genesis(replica, circle)
        if genesis is not None:
            entries.append((circle, genesis.key, await replica.store.heights_for(circle)))
    return encode_heights_file(node_key, int(time.time()), entries), len(entries)


# ---- export -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportPlan:
    """What an export will hold, decided (and refused) before any key is unlocked."""

    circles: list[bytes]
    for_node: bytes | None
    since: dict[bytes, dict[bytes, int]]  # the receiver's heights, per circle it holds
    excluded: list[bytes]  # held circles the target node may not host


async def plan_export(
    replica: Replica,
    *,
    circles: Sequence[bytes] | None = None,
    for_node: bytes | None = None,
    since: HeightsFile | None = None,
) -> ExportPlan:
    """Choose the circles (default: all held), applying read authorization for the target."""
    await replica.refresh()
    held = sorted(await replica.circles())
    if since is not None:
        if for_node is not None and for_node != since.node:
            raise NodeError(
                f"--for names node {short(for_node)} but the heights file was made by node "
                f"{short(since.node)}: drop --for, or use that node's heights file"
            )
        for_node = since.node
    chosen = held if circles is None else list(dict.fromkeys(circles))
    for circle in chosen:
        if circle not in held:
            raise NotFound(f"this node does not hold circle {circle.hex()}")
    excluded: list[bytes] = []
    if for_node is not None:
        # a node that rotated its key keeps hosting what its old keys hosted; a retired key
        # hosts nothing (a sync session presenting it is refused too)
        ring = KeyRing(replica.store)
        retired = await ring.handover_from(for_node)
        if retired is not None:
            raise AuthorizationError(
                f"node key {short(for_node)} was retired by a hand-over to "
                f"{short(retired.new)}: export --for the new key"
            )
        target = PeerIdentity(for_node, await ring.previous_keys(for_node))
        excluded = [c for c in chosen if not target.may_host(c, await replica.auth_state(c))]
        if circles is not None and excluded:
            raise AuthorizationError(
                f"node {short(for_node)} is not a host of circle {excluded[0].hex()}: a "
                "circle goes only to nodes its auth log lists (add a member homed there first)"
            )
        chosen = [c for c in chosen if c not in excluded]
    if not chosen:
        if for_node is not None:
            raise AuthorizationError(
                f"node {for_node.hex()} hosts none of the circles held here: add a member "
                "homed on that node to a circle (`circle add-member`), then export again"
            )
        raise NotFound("this node holds no circles yet: `circle-node circle create` makes one")
    heights: dict[bytes, dict[bytes, int]] = {}
    if since is not None:
        for circle in chosen:
            genesis = await held_genesis(replica, circle)
            if genesis is not None and circle in since.sealed:
                heights[circle] = since.open(circle, genesis.key)
    return ExportPlan(chosen, for_node, heights, excluded)


@dataclass(frozen=True)
class ExportReport:
    size: int
    for_node: bytes | None
    circles: list[tuple[bytes, int]]  # (circle, ops)
    excluded: list[bytes]

    def as_dict(self) -> dict[str, Any]:
        return {
            "bytes": self.size,
            "for_node": self.for_node.hex() if self.for_node else None,
            "ops": sum(n for _c, n in self.circles),
            "circles": [{"circle": c.hex(), "ops": n} for c, n in self.circles],
            "excluded": [c.hex() for c in self.excluded],
        }


async def _write_section(
    replica: Replica, plan: ExportPlan, circle: bytes, spool: BinaryIO
) -> CircleEntry:
    genesis = await held_genesis(replica, circle)
    if genesis is None:
        raise NotFound(f"this node does not hold circle {circle.hex()}")
    limits = await replica.forwardable_heights(circle)
    sealer = SectionSealer(genesis.key, circle)
    digest = hashlib.blake2b(digest_size=32)
    size = 0

    def emit(data: bytes) -> None:
        nonlocal size
        spool.write(data)
        digest.update(data)
        size += len(data)
        if size > MAX_SECTION_BYTES:
            raise NodeError(
                f"circle {circle.hex()} has more than {MAX_SECTION_BYTES} bytes of ops for "
                "one bundle: export it with --since the receiver's heights file"
            )

    emit(sealer.header)
    since = plan.since.get(circle, {})
    async for _op_id, header, sig, body in replica.store.valid_ops_since(circle, since, limits):
        emit(sealer.add(encode_wire(header, sig, body)))
    emit(sealer.finish(limits))
    sealed = None
    if plan.for_node is not None and circle not in plan.since:
        sealed = seal_genesis(genesis.wire, plan.for_node)
    return CircleEntry(circle, sealer.count, size, digest.digest(), sealed)


async def export_bundle(
    replica: Replica,
    node_key: Signer,
    plan: ExportPlan,
    out: BinaryIO,
    *,
    spool_dir: Path | None = None,
    progress: Progress | None = None,
) -> ExportReport:
    """Write the bundle ``plan`` describes to ``out``, signed by ``node_key``.

    Sections are sealed into a temp file in ``spool_dir`` first: the head, written first,
    holds their sizes and hashes. ``progress(circles done, circles)`` after each section."""
    with tempfile.TemporaryFile(dir=spool_dir) as spool:
        entries = []
        total = 0
        for circle in plan.circles:
            entry = await _write_section(replica, plan, circle, spool)
            entries.append(entry)
            if progress is not None:
                progress(len(entries), len(plan.circles))
            total += entry.size
            if total > MAX_FILE_BYTES:
                raise NodeError("the bundle would exceed 2 GiB: export fewer circles at once")
        head = bundle_head(node_key, Manifest(int(time.time()), plan.for_node, entries))
        if len(head) + total > MAX_FILE_BYTES:
            raise NodeError("the bundle would exceed 2 GiB: export fewer circles at once")
        out.write(head)
        spool.seek(0)
        shutil.copyfileobj(spool, out, 1024 * 1024)
    counts = [(e.circle, e.count) for e in entries]
    return ExportReport(len(head) + total, plan.for_node, counts, plan.excluded)


# ---- import -----------------------------------------------------------------------------


class _Skipped(Exception):
    """This node neither holds a circle of the bundle nor can open its sealed genesis."""


@dataclass
class ImportReport:
    """What an import did, summed over its sections."""

    sender: bytes
    manifest: Manifest
    ingest: IngestReport = field(default_factory=IngestReport)
    circles: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    pending: int = 0

    @property
    def ok(self) -> bool:
        """No section failed, and something could be read (or there was nothing)."""
        imported = any(c["status"] == "imported" for c in self.circles)
        return not self.failed and (imported or not self.skipped)

    def merge(self, part: IngestReport) -> None:
        total = self.ingest
        total.added += part.added
        total.soft_failed += part.soft_failed
        total.duplicates += part.duplicates
        total.rejected += part.rejected
        total.reasons.update(part.reasons)
        total.problems.extend(part.problems[: MAX_PROBLEMS - len(total.problems)])

    def section(
        self, circle: bytes, ops: int, status: str, error: str | None = None, complete: bool = False
    ) -> None:
        """Record one section's outcome (``complete``: we now hold all the sender had)."""
        entry = {"circle": circle.hex(), "ops": ops, "status": status, "complete": complete}
        self.circles.append({**entry, "error": error})
        if error is not None:
            target = self.failed if status == "failed" else self.skipped
            target.append({"circle": circle.hex(), "error": error})

    def as_dict(self) -> dict[str, Any]:
        total = self.ingest
        return {
            "from": self.sender.hex(),
            "for_node": self.manifest.for_node.hex() if self.manifest.for_node else None,
            "created": self.manifest.created,
            "added": total.added,
            "duplicates": total.duplicates,
            "rejected": total.rejected,
            "soft_failed": total.soft_failed,
            "pending": self.pending,
            "reasons": dict(total.reasons),
            "problems": total.problems,
            "circles": self.circles,
            "sections_failed": self.failed,
            "sections_skipped": self.skipped,
        }


class _Importer:
    def __init__(
        self,
        replica: Replica,
        reader: BundleReader,
        node: bytes,
        unlock: Callable[[], KeyPair] | None,
        progress: Progress | None,
        stop: StopAsked | None = None,
    ) -> None:
        self.replica = replica
        self.stop = stop
        self.reader = reader
        self.node = node
        self._unlock = unlock
        self._key: KeyPair | None = None
        self.progress = progress
        self.report = ImportReport(reader.node, reader.manifest)
        self.total = sum(entry.count for entry in reader.manifest.circles)
        self.done = 0

    def advance(self, ops: int) -> None:
        self.done += ops
        if self.progress is not None:
            self.progress(min(self.done, self.total), self.total)

    def node_key(self) -> KeyPair:
        if self._key is None:
            if self._unlock is None:
                raise _Skipped("opening it needs this node's key")
            self._key = self._unlock()
        return self._key

    async def unlock_if_needed(self) -> None:
        """Ask for the node key before importing anything, if a sealed genesis needs it."""
        if self._unlock is None or self.reader.manifest.for_node != self.node:
            return
        for entry in self.reader.manifest.circles:
            if entry.genesis and await held_genesis(self.replica, entry.circle) is None:
                self.node_key()
                return

    async def section_key(self, entry: CircleEntry) -> bytes:
        """The circle key: from the stored genesis, else from the genesis sealed to us."""
        held = await held_genesis(self.replica, entry.circle)
        if held is not None:
            return held.key
        ask = f"ask the sender to export with --for {self.node.hex()}"
        circle = entry.circle.hex()
        if entry.genesis is None:
            raise _Skipped(
                f"this bundle holds circle {circle} which this node does not hold; {ask}"
            )
        for_node = self.reader.manifest.for_node
        if for_node != self.node:
            target = for_node.hex() if for_node else "no node"
            raise _Skipped(f"circle {circle} was sealed for node {target}, not this node; {ask}")
        try:
            genesis = decode_and_verify(open_genesis(entry.genesis, self.node_key()))
        except Rejected as exc:
            raise DecodeError(f"the sealed genesis op is invalid: {exc.detail}") from exc
        if genesis.kind is not OpKind.GENESIS or genesis.circle != entry.circle:
            raise DecodeError(f"the sealed op is not the genesis of circle {circle}")
        return circle_key(genesis.op_id, genesis.sig)

    def _stop_if_asked(self) -> None:
        if self.stop is None or not self.stop():
            return
        added = self.report.ingest.added
        raise Interrupted(
            f"bundle import stopped after {self.done} of {self.total} ops ({added} new, "
            "all committed): run the same import again to finish it"
        )

    async def run(self) -> ImportReport:
        await self.unlock_if_needed()
        pending_before = await self.replica.store.pending_count()
        for index, entry in enumerate(self.reader.manifest.circles):
            self._stop_if_asked()  # also between sections, which are checked whole first
            await self.section(index, entry)
        after = await self.replica.store.pending_count()
        self.report.pending = max(0, after - pending_before)
        return self.report

    async def section(self, index: int, entry: CircleEntry) -> None:
        start = self.done
        try:
            self.reader.check_hash(index)
            key = await self.section_key(entry)
            final = self.reader.check(index, key)
        except _Skipped as exc:
            self.report.section(entry.circle, entry.count, "skipped", str(exc))
            self.advance(entry.count)
            return
        except (DecodeError, SignatureError, OSError) as exc:  # OSError: a failing stick
            self.report.section(entry.circle, entry.count, "failed", str(exc))
            self.advance(entry.count)
            return
        chunks = self.reader.chunks(index, key)
        # a circle new here stays only if its auth log lists this node (sync/settle.py)
        new = entry.circle not in await self.replica.circles()
        added, purged = self.report.ingest.added, None
        try:
            error = await self._ingest_section(entry, chunks, start, new)
        finally:
            if new:
                sender = PeerIdentity(self.reader.node)
                purged = await settle(self.replica, self.node, sender, entry.circle)
        if purged is not None:
            self.report.ingest.added = added  # none of them stayed
            error = (
                f"circle {entry.circle.hex()} does not list this node as a host: "
                "none of its ops were kept"
            )
        if error is not None:
            self.report.section(entry.circle, entry.count, "failed", error)
            return
        heights = await self.replica.store.heights_for(entry.circle)
        complete = all(heights.get(a, 0) >= seq for a, seq in final.heights.items())
        self.report.section(entry.circle, entry.count, "imported", complete=complete)

    async def _ingest_section(
        self, entry: CircleEntry, chunks: Generator[list[bytes], None, Any], start: int, new: bool
    ) -> str | None:
        """Ingest the section's chunks; an error if the file failed part way."""
        while True:
            try:
                wires = next(chunks, None)
            except (DecodeError, OSError) as exc:  # the file changed or failed since the check
                imported = self.done - start
                self.advance(start + entry.count - self.done)
                return f"{exc} (after {imported} of its ops were ingested)"
            if wires is None:
                return None
            part = await ingest_ops(self.replica, wires, circle=entry.circle, provisional=new)
            self.report.merge(part)
            self.advance(len(wires))
            self._stop_if_asked()


async def import_bundle(
    replica: Replica,
    stream: BinaryIO,
    *,
    node: bytes,
    unlock: Callable[[], KeyPair] | None = None,
    progress: Progress | None = None,
    stop: StopAsked | None = None,
) -> ImportReport:
    """Import a bundle read from ``stream`` into ``replica`` (this node's key is ``node``).

    ``unlock`` gives the node key pair; it is called only if a sealed genesis must be
    opened. ``progress(done, total)`` is called after every batch. A bad head raises
    DecodeError or SignatureError; per-section trouble is in the report. Once ``stop()``
    is true after a batch, it raises :class:`Interrupted` (that batch is committed)."""
    reader = BundleReader(stream)
    return await _Importer(replica, reader, node, unlock, progress, stop).run()
