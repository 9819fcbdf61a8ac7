"""USB bundles: export, import, read authorization, tampering, truncation and fuzzing
(node.sync.bundle, node.crypto.bundle, docs/protocol.md "Bundles")."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import tempfile
import tracemalloc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pycrdt
import pytest
from helpers import Author, doc_view, dump, ingest, resign, statuses, stored_wires
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node import local
from node.commands.base import Context
from node.commands.bundle import ProgressBar, atomic_output, progress_bar
from node.crypto.bundle import (
    LENGTH,
    MAGIC,
    MAX_CHUNK_OPS,
    MAX_MANIFEST_BYTES,
    TAG_FINAL,
    TAG_MESSAGE,
    BundleReader,
    CircleEntry,
    Manifest,
    SectionOpener,
    SectionSealer,
    bundle_head,
    circle_key,
    decode_heights_file,
    encode_head,
)
from node.crypto.keys import KeyPair
from node.crypto.ops import OpKind, decode_op, make_op
from node.domain.auth import Level
from node.domain.documents import doc_id
from node.errors import AuthorizationError, DecodeError, Interrupted, NodeError, SignatureError
from node.home import NodeHome
from node.replica import Replica
from node.store.store import STATUS_SOFT_FAILED
from node.sync.bundle import (
    ExportPlan,
    ImportReport,
    export_bundle,
    heights_file,
    held_genesis,
    import_bundle,
    plan_export,
)
from node.verify import verify_store

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEAD = len(MAGIC) + 32 + LENGTH.size  # bytes before the manifest


def _text(text: str) -> Any:
    def change(doc: pycrdt.Doc[Any]) -> None:
        t = doc.get("t", type=pycrdt.Text)
        t.insert(len(t), text)

    return change


def _set(key: str, value: Any) -> Any:
    def change(doc: pycrdt.Doc[Any]) -> None:
        doc.get("m", type=pycrdt.Map)[key] = value

    return change


def _note(**fields: Any) -> bytes:
    return msgspec.msgpack.encode({"t": "note", **fields})


@dataclass
class Nodes:
    """Node A holds circle ``garden`` (alice, and bob homed on B) and ``finance`` (alice
    only, so B may not host it); node B holds nothing yet."""

    a: Replica
    b: Replica
    node_a: KeyPair
    node_b: KeyPair
    alice: KeyPair
    bob: KeyPair
    garden: bytes
    finance: bytes
    docs: list[bytes]


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[Nodes]:
    """Two replicas on real SQLite files and an honest history made with node.local."""
    node_a, node_b, alice, bob = (KeyPair.generate() for _ in range(4))
    async with Replica.open(tmp_path / "a.db") as a, Replica.open(tmp_path / "b.db") as b:
        garden = await local.create_circle(
            a, alice, name="Garden", creator_name="alice", home=node_a.public
        )
        await local.add_member(
            a, alice, garden, member=bob.public, name="bob", level=Level.WRITE, home=node_b.public
        )
        profile, roles = doc_id(garden, "profile"), doc_id(garden, "roles")
        await local.edit_doc(a, alice, garden, profile, _text("grow food"))
        await local.edit_doc(a, bob, garden, roles, _set("lead", "bob"))
        await local.author_record(a, alice, garden, _note(n=1))
        await local.edit_doc(a, alice, garden, profile, _text(", share seeds"))
        finance = await local.create_circle(
            a, alice, name="Finance", creator_name="alice", home=node_a.public
        )
        yield Nodes(a, b, node_a, node_b, alice, bob, garden, finance, [profile, roles])


async def export_bytes(replica: Replica, node_key: KeyPair, **plan: Any) -> bytes:
    out = io.BytesIO()
    await export_bundle(replica, node_key, await plan_export(replica, **plan), out)
    return out.getvalue()


async def import_bytes(
    replica: Replica,
    data: bytes,
    node_key: KeyPair,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    return await import_bundle(
        replica, io.BytesIO(data), node=node_key.public, unlock=lambda: node_key, progress=progress
    )


async def view(replica: Replica, circle: bytes, docs: list[bytes]) -> dict[str, Any]:
    """Heights, statuses and materialized docs, read from the store."""
    replica.invalidate()
    return {
        "heads": await replica.store.heads_for(circle),
        "statuses": {r.op_id: r.status for r in await replica.store.all_ops(circle)},
        "docs": [doc_view(await replica.doc(circle, d)) for d in docs],
    }


def manifest_len(data: bytes) -> int:
    return int(LENGTH.unpack(data[HEAD - LENGTH.size : HEAD])[0])


def resign_bundle(
    data: bytes, signer: KeyPair, change: Callable[[int, bytes], bytes] = lambda _i, s: s
) -> bytes:
    """The same bundle with its sections changed by ``change`` and a fresh, valid head."""
    reader = BundleReader(io.BytesIO(data))
    sections, entries = [], []
    for index, entry in enumerate(reader.manifest.circles):
        start = reader.offsets[index]
        section = change(index, data[start : start + entry.size])
        sections.append(section)
        digest = hashlib.blake2b(section, digest_size=32).digest()
        entries.append(CircleEntry(entry.circle, entry.count, len(section), digest, entry.genesis))
    manifest = Manifest(reader.manifest.created, reader.manifest.for_node, entries)
    return bundle_head(signer, manifest) + b"".join(sections)


# ---- round trips ------------------------------------------------------------------------


async def test_round_trip_reaches_identical_state(nodes: Nodes) -> None:
    """export --for B then import on B: same heights, statuses and docs; store verifies."""
    data = await export_bytes(nodes.a, nodes.node_a, for_node=nodes.node_b.public)
    report = await import_bytes(nodes.b, data, nodes.node_b)
    sent = len(await stored_wires(nodes.a.store, nodes.garden))
    out = report.as_dict()
    assert (out["added"], out["duplicates"], out["rejected"], out["pending"]) == (sent, 0, 0, 0)
    assert out["sections_failed"] == out["sections_skipped"] == []
    assert [c["circle"] for c in out["circles"]] == [nodes.garden.hex()]
    assert out["circles"][0]["complete"] is True
    assert out["from"] == nodes.node_a.public.hex()
    assert report.ok
    assert await view(nodes.b, nodes.garden, nodes.docs) == await view(
        nodes.a, nodes.garden, nodes.docs
    )
    assert (await verify_store(nodes.b)).ok


async def test_second_import_is_all_duplicates(nodes: Nodes) -> None:
    """Importing the same bundle twice adds nothing and changes no table."""
    data = await export_bytes(nodes.a, nodes.node_a, for_node=nodes.node_b.public)
    first = await import_bytes(nodes.b, data, nodes.node_b)
    before = await dump(nodes.b.store)
    again = await import_bytes(nodes.b, data, nodes.node_b)
    assert (again.ingest.added, again.ingest.duplicates) == (0, first.ingest.added)
    assert again.ok
    assert await dump(nodes.b.store) == before


async def test_changes_flow_back_with_since(nodes: Nodes) -> None:
    """bob writes on B; B's bundle --since A's heights carries only the new ops back to A."""
    await import_bytes(
        nodes.b,
        await export_bytes(nodes.a, nodes.node_a, for_node=nodes.node_b.public),
        nodes.node_b,
    )
    await local.edit_doc(nodes.b, nodes.bob, nodes.garden, nodes.docs[1], _set("seeds", 12))
    await local.author_record(nodes.b, nodes.bob, nodes.garden, _note(n=2))
    content, circles = await heights_file(nodes.a, nodes.node_a)
    assert circles == 2
    since = decode_heights_file(io.BytesIO(content), len(content))
    plan = await plan_export(nodes.b, since=since)
    assert plan.for_node == nodes.node_a.public  # --since targets the node that signed it
    out = io.BytesIO()
    await export_bundle(nodes.b, nodes.node_b, plan, out)
    report = await import_bytes(nodes.a, out.getvalue(), nodes.node_a)
    assert (report.ingest.added, report.ingest.duplicates, report.ingest.rejected) == (2, 0, 0)
    assert report.manifest.circles[0].genesis is None  # A holds the circle: nothing sealed
    assert await view(nodes.a, nodes.garden, nodes.docs) == await view(
        nodes.b, nodes.garden, nodes.docs
    )


async def test_since_with_another_for_node_is_refused(nodes: Nodes) -> None:
    """--since signed by B with --for another node is refused, not silently retargeted."""
    await import_bytes(
        nodes.b,
        await export_bytes(nodes.a, nodes.node_a, for_node=nodes.node_b.public),
        nodes.node_b,
    )
    content, _ = await heights_file(nodes.b, nodes.node_b)
    since = decode_heights_file(io.BytesIO(content), len(content))
    with pytest.raises(NodeError, match="heights file was made by node"):
        await plan_export(nodes.a, since=since, for_node=nodes.node_a.public)


async def test_ops_beyond_a_gap_wait_in_pending(nodes: Nodes) -> None:
    """A bundle starting above the receiver's heights: ops wait in pending, not complete."""
    await ingest(nodes.b, (await stored_wires(nodes.a.store, nodes.garden))[:1])
    plan = await plan_export(nodes.a, for_node=nodes.node_b.public)
    gap = ExportPlan(plan.circles, plan.for_node, {nodes.garden: {nodes.alice.public: 2}}, [])
    out = io.BytesIO()
    await export_bundle(nodes.a, nodes.node_a, gap, out)
    report = await import_bytes(nodes.b, out.getvalue(), nodes.node_b)
    assert report.as_dict()["pending"] > 0
    assert report.circles[0]["complete"] is False
    assert report.ok


# ---- read authorization -----------------------------------------------------------------


async def test_for_node_gets_only_circles_it_hosts(nodes: Nodes) -> None:
    """--for B leaves out finance (B hosts no member of it) and says so."""
    plan = await plan_export(nodes.a, for_node=nodes.node_b.public)
    assert (plan.circles, plan.excluded) == ([nodes.garden], [nodes.finance])


async def test_for_a_node_that_hosts_nothing_is_refused(nodes: Nodes) -> None:
    """--for a stranger node is refused outright; so is naming a circle B may not host."""
    with pytest.raises(AuthorizationError, match="hosts none of the circles"):
        await plan_export(nodes.a, for_node=KeyPair.generate().public)
    with pytest.raises(AuthorizationError, match="is not a host of circle"):
        await plan_export(nodes.a, circles=[nodes.finance], for_node=nodes.node_b.public)


async def test_without_for_a_new_node_cannot_read_it(nodes: Nodes) -> None:
    """A bundle made without --for is skipped on a node not holding the circle, saying why."""
    data = await export_bytes(nodes.a, nodes.node_a, circles=[nodes.garden])
    before = await dump(nodes.b.store)
    report = await import_bytes(nodes.b, data, nodes.node_b)
    assert not report.ok
    assert report.failed == []
    assert (
        "ask the sender to export with --for " + nodes.node_b.public.hex()
        in (report.skipped[0]["error"])
    )
    assert await dump(nodes.b.store) == before


async def test_sealed_for_another_node_is_skipped(nodes: Nodes) -> None:
    """A genesis sealed to node B does not open on a third node."""
    data = await export_bytes(nodes.a, nodes.node_a, for_node=nodes.node_b.public)
    stranger = KeyPair.generate()
    report = await import_bytes(nodes.b, data, stranger)
    assert "was sealed for node " + nodes.node_b.public.hex() in report.skipped[0]["error"]
    assert report.ingest.added == 0


async def test_soft_failed_ops_are_never_exported(tmp_path: Path) -> None:
    """Ops of a removed member that arrived late (soft failed) stay out of the bundle."""
    node, alice, wendy = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
    async with Replica.open(tmp_path / "a.db") as a, Replica.open(tmp_path / "w.db") as w:
        circle = await local.create_circle(a, alice, name="c", creator_name="a", home=node.public)
        await local.add_member(
            a, alice, circle, member=wendy.public, name="w", level=Level.WRITE, home=node.public
        )
        await ingest(w, await stored_wires(a.store))
        await local.author_record(w, wendy, circle, _note(n=1))  # partitioned, then removed
        await local.add_member(
            a, alice, circle, member=wendy.public, name="w", level=Level.NONE, home=node.public
        )
        await ingest(a, await stored_wires(w.store))
        soft = {k for k, v in (await statuses(a.store)).items() if v == STATUS_SOFT_FAILED}
        assert len(soft) == 1
        data = await export_bytes(a, node)
        reader = BundleReader(io.BytesIO(data))
        genesis = await held_genesis(a, circle)
        assert genesis is not None
        ids = {decode_op(w).op_id for c in reader.chunks(0, genesis.key) for w in c}
        assert len(ids) == 3
        assert not ids & soft


# ---- tampering, truncation, forged ops --------------------------------------------------


def _offsets(data: bytes) -> dict[str, int]:
    m = manifest_len(data)
    sections = HEAD + m + 64
    return {
        "magic": 2,
        "node": 20,
        "length": HEAD - 1,
        "manifest": HEAD + m // 2,
        "sealed genesis": HEAD + m - 30,
        "signature": HEAD + m + 10,
        "section header": sections + 5,
        "section chunk": sections + 24 + 4 + 20,
        "final chunk": len(data) - 3,
    }


@pytest.mark.parametrize(
    "where",
    [
        "magic",
        "node",
        "length",
        "manifest",
        "sealed genesis",
        "signature",
        "section header",
        "section chunk",
        "final chunk",
    ],
)
async def test_one_flipped_byte_imports_nothing(nodes: Nodes, where: str) -> None:
    """A byte flipped anywhere: that part is refused with a clear error, the store unchanged."""
    data = bytearray(await export_bytes(nodes.a, nodes.node_a, for_node=nodes.node_b.public))
    data[_offsets(bytes(data))[where]] ^= 0x40
    before = await dump(nodes.b.store)
    if where.startswith(("section", "final")):
        report = await import_bytes(nodes.b, bytes(data), nodes.node_b)
        assert "differs from what the exporter signed" in report.failed[0]["error"]
        assert not report.ok
        assert report.ingest.added == 0
    else:
        with pytest.raises((DecodeError, SignatureError), match="bundle"):
            await import_bytes(nodes.b, bytes(data), nodes.node_b)
    assert await dump(nodes.b.store) == before


async def test_truncated_anywhere_is_a_clean_error(nodes: Nodes) -> None:
    """Cut at many offsets: a NodeError or a failed section, never a crash or an import."""
    data = await export_bytes(nodes.a, nodes.node_a, for_node=nodes.node_b.public)
    before = await dump(nodes.b.store)
    cuts = sorted({*range(0, 140, 7), *range(140, len(data), max(1, len(data) // 40))})
    errors: list[str] = []
    for cut in cuts:
        try:
            report = await import_bytes(nodes.b, data[:cut], nodes.node_b)
        except (DecodeError, SignatureError) as exc:
            errors.append(str(exc))
        else:
            errors.append(report.failed[0]["error"])
        assert "truncated" in errors[-1] or "signature" in errors[-1], cut
    assert await dump(nodes.b.store) == before


async def test_complete_sections_of_a_cut_file_still_import(nodes: Nodes) -> None:
    """Of a two-circle bundle cut in its second section, the first circle imports."""
    await local.add_member(
        nodes.a, nodes.alice, nodes.finance, member=nodes.bob.public, name="bob",
        level=Level.READ, home=nodes.node_b.public,
    )  # fmt: skip
    data = await export_bytes(nodes.a, nodes.node_a, for_node=nodes.node_b.public)
    report = await import_bytes(nodes.b, data[:-10], nodes.node_b)
    status = {c["circle"]: c["status"] for c in report.circles}
    first, second = sorted([nodes.garden, nodes.finance])
    assert status == {first.hex(): "imported", second.hex(): "failed"}
    assert "truncated" in report.failed[0]["error"]
    assert not report.ok


async def test_forged_ops_in_a_sealed_section_are_rejected_by_ingest(nodes: Nodes) -> None:
    """A correctly sealed section carrying forged ops: those rejected with reasons, rest in."""
    honest = await stored_wires(nodes.a.store, nodes.garden)
    outsider = Author()
    forged_member = outsider.record(nodes.garden, [], "note")
    height, head = (await nodes.a.heights(nodes.garden))[nodes.alice.public]
    next_op = make_op(
        nodes.alice, kind=OpKind.RECORD, circle=nodes.garden, seq=height + 1, backlink=head,
        body=_note(n=9),
    )  # fmt: skip
    forged_sig = resign(next_op, outsider.key)
    genesis = await held_genesis(nodes.a, nodes.garden)
    assert genesis is not None
    sealer = SectionSealer(genesis.key, nodes.garden)
    section = sealer.header
    for wire in [*honest, forged_member.wire(), forged_sig]:
        section += sealer.add(wire)
    section += sealer.finish({})
    digest = hashlib.blake2b(section, digest_size=32).digest()
    entry = CircleEntry(nodes.garden, sealer.count, len(section), digest, None)
    await ingest(nodes.b, honest[:1])  # B holds the genesis: it can derive the key
    data = bundle_head(KeyPair.generate(), Manifest(0, None, [entry])) + section
    report = await import_bytes(nodes.b, data, nodes.node_b)
    assert (report.ingest.added, report.ingest.duplicates) == (len(honest) - 1, 1)
    assert dict(report.ingest.reasons) == {"restricted": 1, "bad_signature": 1}
    assert report.ok


@pytest.fixture
async def big(tmp_path: Path) -> AsyncIterator[tuple[Replica, Replica, KeyPair, bytes, int]]:
    """A circle of 1,101 ops (3 chunks) on A, founded by a member homed on node B."""
    node_b = KeyPair.generate()
    founder = Author()
    genesis = founder.genesis(home=node_b.public)
    circle = genesis.circle
    ops = [genesis] + [founder.record(circle, [genesis.op_id], "note") for _ in range(1100)]
    async with Replica.open(tmp_path / "a.db") as a, Replica.open(tmp_path / "b.db") as b:
        await ingest(a, ops)
        yield a, b, node_b, circle, len(ops)


async def test_a_section_that_fails_late_imports_nothing(
    big: tuple[Replica, Replica, KeyPair, bytes, int],
) -> None:
    """A bad MAC in the second chunk, even under a valid signature and hash: nothing in."""
    a, b, node_b, _circle, _n = big
    data = await export_bytes(a, KeyPair.generate(), for_node=node_b.public)

    def break_second_chunk(_index: int, section: bytes) -> bytes:
        first = LENGTH.unpack(section[24:28])[0]
        spot = 24 + 4 + first + 4 + 50
        return section[:spot] + bytes([section[spot] ^ 1]) + section[spot + 1 :]

    before = await dump(b.store)
    report = await import_bytes(
        b, resign_bundle(data, KeyPair.generate(), break_second_chunk), node_b
    )
    assert "does not decrypt" in report.failed[0]["error"]
    assert await dump(b.store) == before


async def test_large_bundle_imports_in_batches_with_progress(
    big: tuple[Replica, Replica, KeyPair, bytes, int],
) -> None:
    """1,101 ops arrive in batches of <= 500, reporting progress up to the total."""
    a, b, node_b, circle, n = big
    data = await export_bytes(a, KeyPair.generate(), for_node=node_b.public)
    seen: list[tuple[int, int]] = []
    report = await import_bytes(b, data, node_b, progress=lambda d, t: seen.append((d, t)))
    assert report.ingest.added == n
    assert report.ok
    assert [d for d, _t in seen] == [500, 1000, 1101]
    assert {t for _d, t in seen} == {n}
    assert MAX_CHUNK_OPS == 500
    assert await b.store.heads_for(circle) == await a.store.heads_for(circle)


async def test_a_stop_asked_mid_import_keeps_the_batch_in_flight_and_resumes(
    big: tuple[Replica, Replica, KeyPair, bytes, int],
) -> None:
    """Asked to stop during the first batch (SIGTERM in the CLI): that batch commits, then
    Interrupted; the next import adds exactly the rest."""
    a, b, node_b, circle, n = big
    data = await export_bytes(a, KeyPair.generate(), for_node=node_b.public)
    batches: list[int] = []
    with pytest.raises(Interrupted, match="stopped after 500 of 1101 ops"):
        await import_bundle(
            b,
            io.BytesIO(data),
            node=node_b.public,
            unlock=lambda: node_b,
            progress=lambda done, _total: batches.append(done),
            stop=lambda: bool(batches),  # "the signal" came while the first batch ran
        )
    assert await b.store.count_ops() == 500
    report = await import_bytes(b, data, node_b)
    assert (report.ingest.added, report.ingest.duplicates) == (n - 500, 500)
    assert await b.store.heads_for(circle) == await a.store.heads_for(circle)


# ---- limits -------------------------------------------------------------------------------


async def test_huge_manifest_length_is_refused_without_allocating() -> None:
    """A head claiming a 4 GiB manifest is refused before anything is read for it."""
    data = MAGIC + bytes(32) + LENGTH.pack(0xFFFFFFFF) + bytes(200)
    tracemalloc.start()
    with pytest.raises(DecodeError, match="over the limit"):
        BundleReader(io.BytesIO(data))
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1024 * 1024


async def test_huge_chunk_length_is_refused(nodes: Nodes) -> None:
    """A signed section whose chunk claims 2 GiB is refused by the length check."""
    data = await export_bytes(nodes.a, nodes.node_a, for_node=nodes.node_b.public)

    def huge(_index: int, section: bytes) -> bytes:
        return section[:24] + LENGTH.pack(0x7FFFFFFF) + section[28:]

    report = await import_bytes(nodes.b, resign_bundle(data, nodes.node_a, huge), nodes.node_b)
    assert "beyond its limits" in report.failed[0]["error"]


def test_huge_sizes_in_a_signed_manifest_are_refused() -> None:
    """Section sizes over 512 MiB, files over 2 GiB and manifests over 16 MiB are refused."""
    key = KeyPair.generate()
    entry = CircleEntry(bytes(16), 1, 600 * 1024 * 1024, bytes(32), None)
    with pytest.raises(DecodeError, match="bundle manifest does not decode"):
        BundleReader(io.BytesIO(bundle_head(key, Manifest(0, None, [entry]))))

    class Huge(io.BytesIO):
        def seek(self, offset: int, whence: int = 0) -> int:
            return 3 * 1024**3 if whence == io.SEEK_END else super().seek(offset, whence)

    with pytest.raises(DecodeError, match="over the 2 GiB"):
        BundleReader(Huge(MAGIC))
    with pytest.raises(NodeError, match="over the"):
        encode_head(MAGIC, key, bytes(MAX_MANIFEST_BYTES + 1), b"x")


def test_trailing_bytes_are_refused() -> None:
    """Bytes after the last section mean the file was altered."""
    data = bundle_head(KeyPair.generate(), Manifest(0, None, []))
    BundleReader(io.BytesIO(data))
    with pytest.raises(DecodeError, match="unexpected bytes"):
        BundleReader(io.BytesIO(data + b"\x00"))


# ---- heights files ------------------------------------------------------------------------


async def test_heights_file_is_signed_and_sealed(nodes: Nodes) -> None:
    """A heights file opens only under the circle key; a flipped byte breaks its signature."""
    content, _ = await heights_file(nodes.a, nodes.node_a)
    parsed = decode_heights_file(io.BytesIO(content), len(content))
    genesis = await held_genesis(nodes.a, nodes.garden)
    assert genesis is not None
    heights = parsed.open(nodes.garden, genesis.key)
    assert heights == await nodes.a.store.heights_for(nodes.garden)
    with pytest.raises(DecodeError, match="do not decrypt"):
        parsed.open(nodes.garden, circle_key(bytes(32), bytes(64)))
    for spot in (3, 60, len(content) - 70, len(content) - 1):
        broken = bytearray(content)
        broken[spot] ^= 1
        with pytest.raises((DecodeError, SignatureError)):
            decode_heights_file(io.BytesIO(bytes(broken)), len(broken))


def test_atomic_output_publishes_whole_files_only(tmp_path: Path) -> None:
    """A failed write leaves nothing; an existing file needs force, then is replaced."""
    target = tmp_path / "b.cnb"

    def half_write() -> None:
        with atomic_output(target, force=False) as out:
            out.write(b"half")
            raise NodeError("boom")

    with pytest.raises(NodeError, match="boom"):
        half_write()
    assert list(tmp_path.iterdir()) == []
    with atomic_output(target, force=False) as out:
        out.write(b"one")
    with pytest.raises(NodeError, match="--force"), atomic_output(target, force=False):
        pass
    with atomic_output(target, force=True) as out:
        out.write(b"two")
    assert target.read_bytes() == b"two"
    assert list(tmp_path.iterdir()) == [target]


# ---- fuzzing ------------------------------------------------------------------------------


@functools.cache
def sample() -> tuple[bytes, bytes]:
    """A real two-chunk-free bundle and its circle key, made once."""

    async def make(root: Path) -> tuple[bytes, bytes]:
        node, alice = KeyPair.generate(), KeyPair.generate()
        async with Replica.open(root / "s.db") as a:
            circle = await local.create_circle(
                a, alice, name="c", creator_name="a", home=node.public
            )
            await local.edit_doc(a, alice, circle, doc_id(circle, "p"), _text("hello"))
            genesis = await held_genesis(a, circle)
            assert genesis is not None
            return await export_bytes(a, node, for_node=node.public), genesis.key

    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(make(Path(tmp)))


def decode_everything(data: bytes, key: bytes) -> None:
    """Run every decoder step over ``data``; only NodeError subclasses may escape."""
    try:
        reader = BundleReader(io.BytesIO(data))
        for index in range(len(reader.manifest.circles)):
            try:
                reader.check_hash(index)
            except NodeError:
                pass
            try:
                reader.check(index, key)
            except NodeError:
                pass
            try:
                for wires in reader.chunks(index, key):
                    assert all(isinstance(w, bytes) for w in wires)
            except NodeError:
                pass
    except NodeError:
        pass


@FUZZ
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data: bytes) -> None:
    """Random bytes, bare or after the magic: only NodeError subclasses come out."""
    key = sample()[1]
    decode_everything(data, key)
    decode_everything(MAGIC + data, key)
    try:
        decode_heights_file(io.BytesIO(data), len(data))
    except NodeError:
        pass


@FUZZ
@given(st.data())
def test_fuzz_mutated_bundles(data: st.DataObject) -> None:
    """A real bundle with flipped, cut or inserted bytes: only NodeError subclasses."""
    bundle, key = sample()
    blob = bytearray(bundle)
    for _ in range(data.draw(st.integers(1, 4))):
        spot = data.draw(st.integers(0, len(blob) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            blob[spot] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del blob[spot:]
        else:
            blob[spot:spot] = data.draw(st.binary(min_size=1, max_size=8))
        if not blob:
            break
    decode_everything(bytes(blob), key)


@FUZZ
@given(st.data())
def test_fuzz_sections_behind_a_valid_head(data: st.DataObject) -> None:
    """Mutated sections under a re-signed head (hashes match): only NodeError subclasses."""
    bundle, key = sample()

    def mutate(_index: int, section: bytes) -> bytes:
        blob = bytearray(section)
        spot = data.draw(st.integers(0, len(blob) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert", "length"]))
        if action == "flip":
            blob[spot] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del blob[max(spot, 1) :]
        elif action == "insert":
            blob[spot:spot] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            blob[24:28] = LENGTH.pack(data.draw(st.integers(0, 2**32 - 1)))
        return bytes(blob)

    decode_everything(resign_bundle(bundle, KeyPair.generate(), mutate), key)


@FUZZ
@given(st.binary(max_size=300), st.booleans())
def test_fuzz_sealed_garbage(plaintext: bytes, final: bool) -> None:
    """Correctly sealed chunks of random plaintext open to DecodeError, nothing else."""
    key, circle = bytes(32), bytes(16)
    sealer = SectionSealer(key, circle)
    sealed = sealer._seal(plaintext, TAG_FINAL if final else TAG_MESSAGE)
    opener = SectionOpener(key, circle, sealer.header)
    try:
        wires = opener.open(sealed[LENGTH.size :])
    except DecodeError:
        return
    assert all(isinstance(w, bytes) for w in wires)


# ---- the progress bar -----------------------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_only_for_large_bundles_on_a_terminal(tmp_path: Path) -> None:
    """The bar redraws with \\r for > 2,000 ops on a TTY; never with --json or no TTY."""
    home = NodeHome(tmp_path)
    assert progress_bar(Context(home, None, json=True), _Tty()) is None
    assert progress_bar(Context(home, None, json=False), io.StringIO()) is None
    stream = _Tty()
    bar = progress_bar(Context(home, None, json=False), stream)
    assert isinstance(bar, ProgressBar)
    bar(500, 1000)
    assert stream.getvalue() == ""  # small bundle: no bar
    for done in (0, 1500, 3000):
        bar(done, 3000)
    bar.close()
    text = stream.getvalue()
    assert text.count("\r") == 3
    assert text.endswith("3000/3000 ops\n")
    assert "[###############...............]  50.0%" in text
