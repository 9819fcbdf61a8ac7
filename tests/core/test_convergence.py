"""Convergence: replicas fed the same ops in any order, batching, duplication and delay end
in the same state (heights, statuses, materialized docs), and concurrent membership changes
resolve the same everywhere (docs/protocol.md "Ingest", "Authorization")."""

from __future__ import annotations

import asyncio
import functools
import random
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pycrdt
from helpers import (
    Author,
    YWriter,
    doc_view,
    ingest,
    state_vector,
    statuses,
    stored_wires,
    zero_length_item,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from node import local
from node.crypto.keys import KeyPair
from node.domain.auth import AuthState, Level
from node.domain.documents import doc_id
from node.ingest import ingest_ops
from node.replica import Replica
from node.store.store import STATUS_SOFT_FAILED, STATUS_VALID
from node.verify import verify_store

HOME = b"\x07" * 32
FAST = settings(max_examples=12, deadline=None)


def _text(text: str) -> Any:
    def change(doc: pycrdt.Doc[Any]) -> None:
        t = doc.get("t", type=pycrdt.Text)
        t.insert(len(t), text)

    return change


def _set(key: str, value: Any) -> Any:
    def change(doc: pycrdt.Doc[Any]) -> None:
        doc.get("m", type=pycrdt.Map)[key] = value

    return change


def _append(value: Any) -> Any:
    def change(doc: pycrdt.Doc[Any]) -> None:
        doc.get("a", type=pycrdt.Array).append(value)

    return change


def _note(t: str, **fields: Any) -> bytes:
    return msgspec.msgpack.encode({"t": t, **fields})


@dataclass(frozen=True)
class Outcome:
    """Everything that must be equal across replicas."""

    heads: dict[bytes, tuple[int, bytes]]
    statuses: dict[bytes, int]
    docs: dict[bytes, dict[str, Any]]
    vectors: dict[bytes, dict[int, int]]
    updates: dict[bytes, bytes]
    pending: int
    evidence: int


async def outcome(replica: Replica, circle: bytes, docs: list[bytes]) -> Outcome:
    replica.invalidate()  # read what the store says, not what a cache remembers
    views, vectors, updates = {}, {}, {}
    for d in docs:
        doc = await replica.doc(circle, d)
        views[d] = doc_view(doc)
        vectors[d] = state_vector(doc)
        updates[d] = bytes(doc.get_update())
    store = replica.store
    return Outcome(
        heads=await store.heads_for(circle),
        statuses=await statuses(store),
        docs=views,
        vectors=vectors,
        updates=updates,
        pending=await store.pending_count(),
        evidence=len(await store.evidence()),
    )


@dataclass(frozen=True)
class History:
    circle: bytes
    docs: list[bytes]
    wires: list[bytes]
    reference: Outcome


async def _build_history(root: Path) -> History:
    """An honest history made with node.local on two nodes, one of them partitioned:

    founder ``a`` adds ``b`` (manage), ``w`` (write), ``r`` (read); several members edit two
    docs and sign records; ``w``, partitioned on its own node, keeps editing while ``a``
    removes it, so its later ops are soft failed once the nodes meet."""
    a, b, w, r = (KeyPair.generate() for _ in range(4))
    async with Replica.open(root / "main.db") as main, Replica.open(root / "w.db") as w_node:
        circle = await local.create_circle(main, a, name="c", creator_name="a", home=HOME)
        d1, d2 = doc_id(circle, "profile"), doc_id(circle, "roles")
        for key, level in ((b, Level.MANAGE), (w, Level.WRITE), (r, Level.READ)):
            await local.add_member(
                main, a, circle, member=key.public, name="m", level=level, home=HOME
            )
        await local.edit_doc(main, a, circle, d1, _text("Purpose: "))
        await local.edit_doc(main, w, circle, d1, _set("owner", "w"))
        await local.edit_doc(main, b, circle, d2, _append("role-1"))
        await local.edit_doc(main, w, circle, d2, _append("role-2"))
        await local.author_record(main, r, circle, _note("note", text="hi"))
        await local.author_record(main, w, circle, _note("decision", n=1))
        await local.edit_doc(main, b, circle, d1, _text("grow food"))

        await ingest_ops(w_node, await stored_wires(main.store))  # w's node catches up
        await local.edit_doc(w_node, w, circle, d1, _set("owner", "w, still"))
        await local.edit_doc(w_node, w, circle, d2, _append("role-3"))
        await local.author_record(w_node, w, circle, _note("decision", n=2))

        await local.add_member(
            main, a, circle, member=w.public, name="m", level=Level.NONE, home=HOME
        )
        await local.edit_doc(main, b, circle, d1, _set("owner", "b"))
        await local.edit_doc(main, a, circle, d2, _set("lead", "a"))
        await local.author_record(main, b, circle, _note("decision", n=3))

        await ingest_ops(main, await stored_wires(w_node.store))
        await ingest_ops(w_node, await stored_wires(main.store))
        reference = await outcome(main, circle, [d1, d2])
        assert await outcome(w_node, circle, [d1, d2]) == reference
        assert (await verify_store(main)).ok
        wires = await stored_wires(main.store)
    return History(circle, [d1, d2], wires, reference)


@functools.cache
def history() -> History:
    """Built once per session, in a thread of its own so async tests may call it too."""

    def build() -> History:
        with tempfile.TemporaryDirectory() as tmp:
            return asyncio.run(_build_history(Path(tmp)))

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(build).result()


def test_history_has_every_status_and_edits_from_several_members() -> None:
    """The generated history covers valid and soft-failed ops, 3 editors and 2 docs."""
    h = history()
    ref = h.reference
    assert set(ref.statuses.values()) == {STATUS_VALID, STATUS_SOFT_FAILED}
    assert sum(1 for s in ref.statuses.values() if s == STATUS_SOFT_FAILED) == 3
    assert len(ref.heads) == 4
    profile, roles = (ref.docs[d] for d in h.docs)
    assert profile["t"] == "Purpose: grow food"
    assert profile["m"] == {"owner": "b"}  # w's partitioned edit is soft failed
    assert roles["a"] == ["role-1", "role-2"]
    assert roles["m"] == {"lead": "a"}
    assert len({client for d in h.docs for client in ref.vectors[d]}) == 3


def _schedule(wires: list[bytes], rnd: random.Random) -> list[list[bytes]]:
    """A random delivery: shuffled, split into batches, with duplicates, some held back."""
    order = list(wires)
    rnd.shuffle(order)
    held = [wire for wire in order if rnd.random() < 0.2]
    stream = [wire for wire in order if wire not in held]
    for _ in range(rnd.randint(0, 6)):
        stream.insert(rnd.randint(0, len(stream)), rnd.choice(wires))
    batches: list[list[bytes]] = []
    while stream:
        size = rnd.randint(1, 8)
        batches.append(stream[:size])
        stream = stream[size:]
    if held:
        batches.append(held)
    batches.append(rnd.sample(wires, k=min(3, len(wires))))  # late re-deliveries
    return batches


async def _replay(root: Path, h: History, seeds: list[int]) -> list[Outcome]:
    results = []
    for i, seed in enumerate(seeds):
        async with Replica.open(root / f"r{i}.db") as replica:
            for batch in _schedule(h.wires, random.Random(seed)):
                await ingest_ops(replica, batch)
            check = await verify_store(replica)
            assert check.ok, check.problems
            results.append(await outcome(replica, h.circle, h.docs))
    return results


@FAST
@given(seeds=st.lists(st.integers(0, 2**32), min_size=3, max_size=3))
def test_replicas_converge_whatever_the_delivery(seeds: list[int]) -> None:
    """Replicas fed shuffled, batched, duplicated, delayed ops end in the same state."""
    h = history()
    with tempfile.TemporaryDirectory() as tmp:
        results = asyncio.run(_replay(Path(tmp), h, seeds))
    ref = h.reference
    for result in results:
        assert result.pending == 0
        assert result.evidence == 0
        assert result.heads == ref.heads
        assert result.statuses == ref.statuses
        assert result.docs == ref.docs
        assert result.vectors == ref.vectors


@FAST
@given(seed=st.integers(0, 2**32))
def test_materialized_updates_are_byte_identical(seed: int) -> None:
    """Beyond equal contents, ``doc.get_update()`` of every replica is byte-identical."""
    h = history()
    with tempfile.TemporaryDirectory() as tmp:
        (result,) = asyncio.run(_replay(Path(tmp), h, [seed]))
    assert result.updates == h.reference.updates


async def test_reverse_delivery_pends_everything_then_converges(tmp_path: Path) -> None:
    """Newest-first delivery pends every op until the genesis, then converges to the reference."""
    h = history()
    async with Replica.open(tmp_path / "r.db") as replica:
        for wire in reversed(h.wires[1:]):
            report = await ingest_ops(replica, [wire])
            assert (report.pending, report.added, report.soft_failed) == (1, 0, 0)
        report = await ingest_ops(replica, h.wires[:1])
        assert report.added + report.soft_failed == len(h.wires)
        assert report.pending == 0
        assert await outcome(replica, h.circle, h.docs) == h.reference
        assert (await verify_store(replica)).ok


# ---- concurrent membership changes ---------------------------------------------------------


def _auth_snapshot(state: AuthState) -> tuple[Any, ...]:
    keys = {k: (v.member, v.ycid, v.boundaries, v.levels) for k, v in state.keys.items()}
    members = {k: (m.level, m.home, m.added_by) for k, m in state.members.items()}
    return (keys, members, state.ycids, state.explicit_hosts, state.applied, state.skipped)


async def test_partitioned_managers_resolve_identically(tmp_path: Path) -> None:
    """Partitioned managers' concurrent membership changes resolve the same on both nodes."""
    a, b, c, d = (KeyPair.generate() for _ in range(4))
    async with (
        Replica.open(tmp_path / "a.db") as node_a,
        Replica.open(tmp_path / "b.db") as node_b,
    ):
        circle = await local.create_circle(node_a, a, name="c", creator_name="a", home=HOME)
        await local.add_member(
            node_a, a, circle, member=b.public, name="b", level=Level.MANAGE, home=HOME
        )
        await local.add_member(
            node_a, a, circle, member=c.public, name="c", level=Level.READ, home=HOME
        )
        await ingest_ops(node_b, await stored_wires(node_a.store))
        doc = doc_id(circle, "profile")

        # partition: each manager acts alone
        await local.edit_doc(node_b, b, circle, doc, _text("b's last word"))
        await local.add_member(
            node_a, a, circle, member=c.public, name="c", level=Level.WRITE, home=HOME
        )
        await local.add_member(
            node_a, a, circle, member=b.public, name="b", level=Level.NONE, home=HOME
        )
        await local.add_member(
            node_b, b, circle, member=c.public, name="c", level=Level.MANAGE, home=HOME
        )
        await local.add_member(
            node_b, b, circle, member=d.public, name="d", level=Level.WRITE, home=HOME
        )
        await local.add_member(
            node_b, b, circle, member=a.public, name="a", level=Level.NONE, home=HOME
        )

        await ingest_ops(node_a, await stored_wires(node_b.store))
        await ingest_ops(node_b, await stored_wires(node_a.store))
        state_a = await node_a.auth_state(circle)
        state_b = await node_b.auth_state(circle)
        assert _auth_snapshot(state_a) == _auth_snapshot(state_b)
        assert await statuses(node_a.store) == await statuses(node_b.store)
        assert await node_a.store.heads_for(circle) == await node_b.store.heads_for(circle)
        assert doc_view(await node_a.doc(circle, doc)) == doc_view(await node_b.doc(circle, doc))
        # exactly one of the two mutual removals took effect
        removed = {k for k in (a.public, b.public) if state_a.members[k].level == Level.NONE}
        assert len(removed) == 1
        for node in (node_a, node_b):
            check = await verify_store(node)
            assert check.ok, check.problems


async def test_equivocated_auth_op_is_judged_the_same_in_any_order(tmp_path: Path) -> None:
    """Ops citing an auth op later demoted by equivocation end the same in any arrival order."""
    a, c = Author(), Author()
    genesis = a.genesis()
    circle = genesis.circle
    add_c = a.set_member(circle, c, Level.WRITE, [genesis.op_id])
    twin = a.set_member(
        circle, Author(), Level.READ, [genesis.op_id], seq=2, backlink=genesis.op_id
    )
    c_note = c.record(circle, [add_c.op_id], t="decision")
    orders = {
        "note_first": [genesis, add_c, c_note, twin],
        "fork_first": [genesis, add_c, twin, c_note],
    }
    results = {}
    for name, ops in orders.items():
        async with Replica.open(tmp_path / f"{name}.db") as replica:
            for op in ops:
                await ingest(replica, [op])
            results[name] = (
                await replica.store.heads_for(circle),
                await statuses(replica.store),
                await replica.store.pending_count(),
            )
    assert results["note_first"] == results["fork_first"]


async def test_unintegrable_update_is_judged_the_same_in_any_order(tmp_path: Path) -> None:
    """A y op pycrdt cannot integrate is stored everywhere or nowhere, whatever the order."""
    a, w = Author(), Author()
    genesis = a.genesis()
    circle = genesis.circle
    add_w = a.set_member(circle, w, Level.WRITE, [genesis.op_id])
    doc = doc_id(circle, "profile")
    writer = YWriter(w.ycid)
    first = w.y(circle, doc, writer.type("ab"), [add_w.op_id])
    bad = w.y(circle, doc, zero_length_item(w.ycid, 2), [add_w.op_id])
    revoke = a.set_member(circle, w, Level.NONE, [add_w.op_id], cuts={w.public: 0})
    orders = {
        "revocation_first": [genesis, add_w, revoke, first, bad],
        "revocation_last": [genesis, add_w, first, bad, revoke],
    }
    results = {}
    for name, ops in orders.items():
        async with Replica.open(tmp_path / f"{name}.db") as replica:
            for op in ops:
                await ingest(replica, [op])
            results[name] = (await replica.store.heads_for(circle), await statuses(replica.store))
    assert results["revocation_first"] == results["revocation_last"]
