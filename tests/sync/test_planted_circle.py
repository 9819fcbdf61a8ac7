"""A peer must not plant a circle this node does not host (docs/protocol.md 8.3).

The initial sync stores a circle new to this node frame by frame, marked provisional
(hidden from ``circles()``, live push and every other reader); once the peer has sent all
of it the folded auth log decides: this node is a host -> the circle is confirmed; it is
not -> every trace of it is removed in one transaction. The host op may come frames after
the genesis, so an honest large circle still syncs.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from helpers import Author, dump, ingest

import node.sync.engine as engine
from node.crypto.bundle import CircleEntry, Manifest, SectionSealer, bundle_head
from node.crypto.keys import KeyPair
from node.crypto.ops import Op
from node.domain.auth import Level
from node.ingest import ingest_ops
from node.replica import Replica
from node.sync.bundle import ExportPlan, export_bundle, held_genesis, import_bundle
from node.sync.engine import PeerSync, offer_for
from node.sync.protocol import Done, Have, Offer, Ops, Summary
from node.sync.settle import STALE_AFTER
from node.verify import verify_store

if TYPE_CHECKING:
    from conftest import Net, ScriptedPeer

    Scripted = Callable[..., tuple[PeerSync, ScriptedPeer]]

FRAME = 2048  # small OPS frames, so a circle of a few dozen ops takes many


def circle_ops(founder_home: bytes, host: bytes | None, records: int = 40) -> list[Op]:
    """A valid circle: genesis homed on ``founder_home``, ``records`` padded records, and
    last (frames after the genesis) a member homed on ``host`` (which makes it a host)."""
    founder = Author()
    genesis = founder.genesis(name="big", home=founder_home)
    circle = genesis.circle
    ops = [genesis]
    for i in range(records):
        ops.append(
            founder.record(circle, [genesis.op_id], t="note", fields={"n": i, "p": "x" * 150})
        )
    if host is not None:
        # deps name auth ops (the genesis); the founder's chain puts it after the records
        ops.append(founder.set_member(circle, Author(), Level.WRITE, [genesis.op_id], home=host))
    return ops


def frames_of(ops: Sequence[Op], size: int = FRAME) -> list[list[bytes]]:
    frames: list[list[bytes]] = [[]]
    for op in ops:
        if frames[-1] and sum(map(len, frames[-1])) + len(op.wire()) > size:
            frames.append([])
        frames[-1].append(op.wire())
    return frames


async def until(check: Callable[[], Any]) -> None:
    async with asyncio.timeout(10):
        while not await check():  # noqa: ASYNC110 - a store has no event to wait on
            await asyncio.sleep(0.01)


class Frames:
    """Spies on the engine's ingest: per OPS frame stored on ``replica``, whether it was
    provisional and whether the circle was visible in ``circles()`` right after it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, replica: Replica) -> None:
        self.seen: list[tuple[bytes, bool, bool]] = []

        async def spy(
            target: Replica, wires: list[bytes], *, circle: bytes, provisional: bool = False
        ) -> Any:
            report = await ingest_ops(target, wires, circle=circle, provisional=provisional)
            if target is replica:
                self.seen.append((circle, provisional, circle in await replica.circles()))
            return report

        monkeypatch.setattr(engine, "ingest_ops", spy)
        monkeypatch.setattr(engine, "MAX_OPS_BYTES", FRAME)


# ---- the reproduction: a scripted peer offers a circle that does not list us -----------------


@pytest.mark.parametrize("with_host_op_for", ["nobody", "the_peer"])
async def test_offered_stranger_circle_is_not_planted(
    net: Net, scripted_peer: Scripted, with_host_op_for: str
) -> None:
    """h offers a circle whose auth log lists h (or no node at all) but not a, and sends it
    in several frames: a stores nothing, never shows it, and the session ends cleanly."""
    a = await net.node("a")
    h = KeyPair.generate()
    host = h.public if with_host_op_for == "the_peer" else None
    ops = circle_ops(h.public, host)
    circle = ops[0].circle
    frames = frames_of(ops)
    assert len(frames) >= 3
    before = await dump(a.replica.store)
    honest, peer = scripted_peer(a, h)
    task = asyncio.create_task(honest.run())
    async with asyncio.timeout(10):
        await peer.handshake()
        await peer.send(Summary(os.urandom(32), 1), Offer({circle: bytes(16)}))
        while not peer.of(Have):
            assert await peer.next() is not None, "a hung up before asking"
        await peer.send(Have(circle, {}), Ops(circle, frames[0], more=True))

        async def first_frame_stored() -> bool:
            return circle in await a.replica.store.known_circles()

        await until(first_frame_stored)
        # stored, but nobody sees it: not held, not pushed live, not offered on
        assert circle not in await a.replica.circles()
        assert circle not in await a.replica.store.circles()
        assert all(row[1] != circle for row in await a.replica.store.valid_ops_after(0))
        assert circle not in await offer_for(a.replica, h.public)
        for i, frame in enumerate(frames[1:], 1):
            await peer.send(Ops(circle, frame, more=i < len(frames) - 1))
        await peer.send(Done())
        stats = await task
    assert stats.error is None
    assert stats.reasons.get("not_a_host") == 1
    assert circle not in await a.replica.circles()
    assert await dump(a.replica.store) == before
    assert (await verify_store(a.replica)).ok


async def test_offered_circle_sent_without_its_genesis_leaves_nothing_pending(
    net: Net, scripted_peer: Scripted
) -> None:
    """The ops of an offered circle without its genesis would wait in pending for ever:
    they are purged with the circle's mark at the end of its stream."""
    a = await net.node("a")
    h = KeyPair.generate()
    ops = circle_ops(h.public, a.public, records=3)[1:]
    circle = ops[0].circle
    before = await dump(a.replica.store)
    honest, peer = scripted_peer(a, h)
    task = asyncio.create_task(honest.run())
    async with asyncio.timeout(10):
        await peer.handshake()
        await peer.send(Summary(os.urandom(32), 1), Offer({circle: bytes(16)}))
        while not peer.of(Have):
            assert await peer.next() is not None
        wires = [op.wire() for op in ops]
        await peer.send(Have(circle, {}), Ops(circle, wires, more=False), Done())
        stats = await task
    assert stats.error is None
    assert stats.ops_received == len(ops)
    assert await dump(a.replica.store) == before


async def test_peer_hanging_up_mid_circle_leaves_nothing(net: Net, scripted_peer: Scripted) -> None:
    """A peer that sends a stranger circle's first frames and hangs up: the session ends
    with an error, and what it stored of the circle is purged."""
    a = await net.node("a")
    h = KeyPair.generate()
    ops = circle_ops(h.public, None)
    circle = ops[0].circle
    before = await dump(a.replica.store)
    honest, peer = scripted_peer(a, h)
    task = asyncio.create_task(honest.run())
    async with asyncio.timeout(10):
        await peer.handshake()
        await peer.send(Summary(os.urandom(32), 1), Offer({circle: bytes(16)}))
        while not peer.of(Have):
            assert await peer.next() is not None
        await peer.send(Ops(circle, frames_of(ops)[0], more=True))

        async def stored() -> bool:
            return circle in await a.replica.store.known_circles()

        await until(stored)
        await peer.channel.close()
        stats = await task
    assert stats.error is not None
    assert await dump(a.replica.store) == before


# ---- honest circles still sync -------------------------------------------------------------


async def test_honest_large_circle_whose_host_op_comes_frames_later_syncs(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    """b holds a circle whose op making a a host is its last, many frames after the
    genesis: a gets all of it, hidden until the last frame, then held and offered on."""
    a, b, c = await net.node("a"), await net.node("b"), await net.node("c")
    ops = circle_ops(b.public, a.public)
    circle = ops[0].circle
    assert (await ingest(b.replica, ops)).added == len(ops)
    spy = Frames(monkeypatch, a.replica)

    stats_a, stats_b = await net.sync(a, b)
    assert (stats_a.error, stats_b.error) == (None, None)
    frames = [f for f in spy.seen if f[0] == circle]
    assert len(frames) >= 3  # the host op came frames after the genesis
    assert all(provisional and not visible for _c, provisional, visible in frames)
    assert circle in await a.replica.circles()
    assert await a.replica.forwardable_heights(circle) == await b.replica.forwardable_heights(
        circle
    )
    assert await a.replica.store.provisional() == {}
    assert circle in await offer_for(a.replica, b.public)
    assert (await verify_store(a.replica)).ok

    # a node the circle does not list gets nothing of it from a
    stats_c, _ = await net.sync(c, a)
    assert stats_c.error is None
    assert await c.replica.circles() == set()


async def test_held_circle_frames_are_never_provisional(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New ops of a circle a already holds arrive as before, never marked provisional."""
    a, b = await net.node("a"), await net.node("b")
    founder = Author()
    genesis = founder.genesis(name="shared", home=b.public)
    circle = genesis.circle
    add = founder.set_member(circle, Author(), Level.WRITE, [genesis.op_id], home=a.public)
    assert (await ingest(a.replica, [genesis, add])).added == 2
    assert (await ingest(b.replica, [genesis, add])).added == 2
    notes = [
        founder.record(circle, [add.op_id], t="note", fields={"p": "y" * 300}) for _ in range(20)
    ]
    assert (await ingest(b.replica, notes)).added == len(notes)
    spy = Frames(monkeypatch, a.replica)
    stats_a, stats_b = await net.sync(a, b)
    assert (stats_a.error, stats_b.error) == (None, None)
    assert len(spy.seen) >= 2
    assert all(not provisional and visible for _c, provisional, visible in spy.seen)
    assert await a.replica.store.count_ops(circle) == 22


# ---- crash safety ---------------------------------------------------------------------------


async def test_a_kill_mid_circle_leaves_it_invisible_and_the_next_sync_settles_it(
    net: Net, tmp_path: Path
) -> None:
    """Each frame commits on its own: a node killed after the first frames of a new circle
    (its rows committed, the settlement never run) does not show the circle after a
    restart; the next sync of it resumes from those rows and confirms it (a is a host); a
    stranger circle left so is purged by the next session once its mark is stale."""
    b = await net.node("b")
    a_key = KeyPair.generate()
    path = tmp_path / "a-killed.db"
    hosted = circle_ops(b.public, a_key.public)
    stranger = circle_ops(b.public, None)
    assert (await ingest(b.replica, hosted)).added == len(hosted)
    async with Replica.open(path) as replica:  # what a kill leaves: committed frames only
        for ops in (hosted, stranger):
            wires = [op.wire() for op in ops[:5]]
            report = await ingest_ops(replica, wires, circle=ops[0].circle, provisional=True)
            assert report.added == 5
    async with Replica.open(path) as replica:
        assert await replica.circles() == set()
        assert await replica.store.circles() == []
        assert await replica.store.valid_ops_after(0) == []
        assert (await verify_store(replica)).ok
        # the stranger's mark is old now (as after a long-dead session)
        old = int(time.time()) - STALE_AFTER - 1
        async with replica.store.write():
            await replica.store.db.execute(
                "UPDATE provisional SET since = ? WHERE circle = ?", (old, stranger[0].circle)
            )
        a = type(b)("a", a_key, replica)
        stats_a, stats_b = await net.sync(a, b)
        assert (stats_a.error, stats_b.error) == (None, None)
        assert stats_b.ops_sent == len(hosted) - 5  # resumed from the rows it had
        assert await replica.circles() == {hosted[0].circle}
        assert await replica.store.count_ops(hosted[0].circle) == len(hosted)
        assert await replica.store.count_ops(stranger[0].circle) == 0
        assert await replica.store.provisional() == {}
        assert (await verify_store(replica)).ok


# ---- bundles --------------------------------------------------------------------------------


async def test_bundle_sealing_a_stranger_circle_to_us_cannot_plant_it(
    net: Net, tmp_path: Path
) -> None:
    """A hostile exporter (skipping plan_export's host check) seals a circle that does not
    list a to a's node key: the section fails, nothing of it stays. The same exporter's
    bundle of a circle that does list a imports as before."""
    a, h = await net.node("a"), await net.node("h")
    stranger = circle_ops(h.public, None, records=5)
    hosted = circle_ops(h.public, a.public, records=5)
    assert (await ingest(h.replica, stranger + hosted)).added == len(stranger) + len(hosted)
    before = await dump(a.replica.store)
    circles = [stranger[0].circle, hosted[0].circle]
    out = io.BytesIO()
    await export_bundle(h.replica, h.key, ExportPlan(circles, a.public, {}, []), out)
    report = await import_bundle(
        a.replica, io.BytesIO(out.getvalue()), node=a.public, unlock=lambda: a.key
    )
    assert [f["circle"] for f in report.failed] == [stranger[0].circle.hex()]
    assert "does not list this node as a host" in report.failed[0]["error"]
    assert report.ingest.added == len(hosted)
    assert await a.replica.circles() == {hosted[0].circle}
    assert await a.replica.store.count_ops(stranger[0].circle) == 0
    assert await a.replica.store.provisional() == {}
    after = await dump(a.replica.store)
    assert {k: v for k, v in after.items() if k not in ("ops", "heights")} == {
        k: v for k, v in before.items() if k not in ("ops", "heights")
    }
    assert (await verify_store(a.replica)).ok


async def test_bundle_section_smuggling_another_circles_ops_stores_none_of_them(
    net: Net,
) -> None:
    """A section of a circle a holds, correctly sealed, carrying a stranger circle's ops
    (genesis included): those are refused, the stranger circle is not stored."""
    a, h = await net.node("a"), await net.node("h")
    held = circle_ops(a.public, None, records=2)
    assert (await ingest(a.replica, held)).added == len(held)
    stranger = circle_ops(h.public, None, records=3)
    genesis = await held_genesis(a.replica, held[0].circle)
    assert genesis is not None
    sealer = SectionSealer(genesis.key, held[0].circle)
    section = sealer.header
    for op in stranger:
        section += sealer.add(op.wire())
    section += sealer.finish({})
    digest = hashlib.blake2b(section, digest_size=32).digest()
    entry = CircleEntry(held[0].circle, sealer.count, len(section), digest, None)
    data = bundle_head(h.key, Manifest(0, None, [entry])) + section
    report = await import_bundle(a.replica, io.BytesIO(data), node=a.public)
    assert report.ingest.added == 0
    assert report.ingest.reasons == {"invalid": len(stranger)}
    assert await a.replica.circles() == {held[0].circle}
    assert await a.replica.store.count_ops(stranger[0].circle) == 0
    assert await a.replica.store.pending_count() == 0
