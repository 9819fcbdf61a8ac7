"""Hostile peers against an honest PeerSync (node.sync.engine): a scripted peer completes a
proper handshake with its own node key (it is a real host of the circles, e.g. a
compromised partner node) and then sends what the test says.

Bad ops inside OPS frames are refused one by one with their reason while the honest ops
around them are ingested, nothing invalid is stored, and the honest node still syncs with
honest peers afterwards. Protocol violations (OPS for a circle never asked for, garbage,
oversized frames) end the session with ``stats.error`` and leave the replica as it was.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
import pytest
from helpers import (
    PANIC_ANYWHERE,
    Author,
    YWriter,
    doc_view,
    dump,
    ingest,
    resign,
    zero_length_item,
)

from node.crypto.keys import KeyPair
from node.crypto.ops import Op, decode_op, encode_wire
from node.domain.auth import Level
from node.domain.documents import doc_id
from node.errors import DecodeError
from node.store.store import STATUS_EQUIVOCATED
from node.sync.engine import PeerSync, SyncStats
from node.sync.memory import MemoryChannel
from node.sync.protocol import Done, Have, Offer, Ops, Summary
from node.verify import verify_store

if TYPE_CHECKING:
    from conftest import Net, Node, ScriptedPeer

    Scripted = Callable[..., tuple[PeerSync, ScriptedPeer]]


@dataclass
class World:
    """Honest nodes ``a`` and ``b`` and a hostile node key ``h``. Circle ``circle`` (and a
    second one, ``other``) live on ``a``; ``w`` (write, homed on h) has a doc and ops that a
    lacks, which h relays; ``m`` (write, homed on h) is h's own member; a member homed on b
    makes b a host too."""

    a: Node
    b: Node
    h: KeyPair
    circle: bytes
    other: bytes
    founder: Author
    w: Author
    m: Author
    heads: list[bytes]
    doc: bytes
    w_doc: YWriter

    def honest(self, text: str) -> Op:
        """w's next op: a y op typing ``text`` into the doc."""
        return self.w.y(self.circle, self.doc, self.w_doc.type(text), self.heads)

    async def exchange(
        self, scripted_peer: Scripted, *frames: Ops
    ) -> tuple[SyncStats, ScriptedPeer]:
        """a dials h; h offers both circles (with digests a cannot match) and asks for
        them; once a's HAVEs for both arrived, h sends ``frames``, ends every circle's
        answer and says DONE."""
        honest, peer = scripted_peer(self.a, self.h)
        task = asyncio.create_task(honest.run())
        circles = [self.circle, self.other]
        async with asyncio.timeout(10):
            await peer.handshake()
            await peer.send(
                Summary(os.urandom(32), len(circles)),
                Offer({c: bytes(16) for c in circles}),
                *(Have(c, {}) for c in circles),
            )
            while {h.circle for h in peer.of(Have)} != set(circles):
                assert await peer.next() is not None, "a hung up before asking"
            await peer.send(*frames, *(Ops(c, [], more=False) for c in circles), Done())
            stats = await task
        return stats, peer


@pytest.fixture
async def world(net: Net) -> World:
    """The World above, its circles stored on a (built with the helpers' Author)."""
    a, b = await net.node("a"), await net.node("b")
    h = KeyPair.generate()
    founder, w, m, reader = Author(), Author(), Author(), Author()
    genesis = founder.genesis(name="circle", home=a.public)
    circle = genesis.circle
    add_w = founder.set_member(circle, w, Level.WRITE, [genesis.op_id], home=h.public)
    add_m = founder.set_member(circle, m, Level.WRITE, [add_w.op_id], home=h.public)
    add_r = founder.set_member(circle, reader, Level.READ, [add_m.op_id], home=b.public)
    founder_elsewhere = Author(key=founder.key)
    other_genesis = founder_elsewhere.genesis(name="other", home=a.public)
    other = other_genesis.circle
    w_elsewhere = Author(key=w.key, ycid=w.ycid)
    add_other = founder_elsewhere.set_member(
        other, w_elsewhere, Level.WRITE, [other_genesis.op_id], home=h.public
    )
    report = await ingest(a.replica, [genesis, add_w, add_m, add_r, other_genesis, add_other])
    assert report.added == 6, report.problems
    doc = doc_id(circle, "profile")
    return World(a, b, h, circle, other, founder, w, m, [add_r.op_id], doc, YWriter(w.ycid))


def relabelled(op: Op, circle: bytes) -> bytes:
    """``op`` with its header's circle rewritten (the signature is left as it was)."""
    fields = msgspec.msgpack.decode(op.header_bytes)
    fields[2] = circle
    return encode_wire(msgspec.msgpack.encode(fields), op.sig, op.body)


def bad_ops(world: World, kind: str) -> tuple[list[bytes], list[bytes], dict[str, int]]:
    """Bad wires for ``world.circle`` and for ``world.other``, and the reasons expected.
    Each bad op by w takes w's next seq without advancing its chain."""
    w, circle, heads = world.w, world.circle, world.heads
    if kind == "forged_signature":
        forged = resign(w.record(circle, heads, t="note", advance=False), KeyPair.generate())
        return [forged], [], {"bad_signature": 1}
    if kind == "non_member":
        return [Author().record(circle, heads, t="note").wire()], [], {"restricted": 1}
    if kind == "relabelled":
        op = w.record(circle, heads, t="note", advance=False)
        return [], [relabelled(op, world.other)], {"bad_signature": 1}
    if kind == "equivocation":
        first = world.m.record(circle, heads, t="note", fields={"n": 1})
        twin = world.m.record(
            circle, heads, t="note", fields={"n": 2}, seq=first.seq, backlink=None, advance=False
        )
        return [first.wire(), twin.wire()], [], {"equivocation": 1}
    if kind == "foreign_ycid":
        founder_ycid = world.founder.ycid
        update = YWriter(founder_ycid).type("words in the founder's mouth")
        op = w.y(circle, world.doc, update, heads, ycid=founder_ycid, advance=False)
        return [op.wire()], [], {"ycid_mismatch": 1}
    if kind == "malformed_msgpack":
        return [b"\xc1\x93\x00not msgpack", b"\x93\xc4\x01x"], [], {"malformed": 2}
    if kind == "panicking_update":
        # passes the ycid/clock binding, then panics pycrdt in the live doc (w wrote 5 chars)
        op = w.y(circle, world.doc, zero_length_item(w.ycid, 5), heads, advance=False)
        garbage = w.y(circle, world.doc, PANIC_ANYWHERE, heads, advance=False)
        return [op.wire(), garbage.wire()], [], {"malformed_update": 2}
    raise AssertionError(kind)


KINDS = [
    "forged_signature",
    "non_member",
    "relabelled",
    "equivocation",
    "foreign_ycid",
    "malformed_msgpack",
    "panicking_update",
]


async def assert_clean(world: World, refused: list[bytes]) -> None:
    """None of the ``refused`` wires is stored or pending on a, and a's store verifies."""
    ids = []
    for wire in refused:
        try:
            ids.append(decode_op(wire).op_id)
        except DecodeError:
            continue  # malformed: it has no op id to look for
    assert await world.a.replica.store.known_op_ids(ids) == set()
    assert await world.a.replica.store.pending_ids(ids) == set()
    assert (await verify_store(world.a.replica)).ok


async def assert_honest_sync_completes(net: Net, world: World) -> None:
    """a's next sync with an honest host completes and leaves b identical to a."""
    stats_a, stats_b = await net.sync(world.a, world.b)
    assert (stats_a.error, stats_b.error) == (None, None)
    assert stats_b.ops_rejected == 0
    a, b = world.a.replica, world.b.replica
    assert await b.forwardable_heights(world.circle) == await a.forwardable_heights(world.circle)
    assert doc_view(await b.doc(world.circle, world.doc)) == doc_view(
        await a.doc(world.circle, world.doc)
    )
    assert (await verify_store(b)).ok


# ---- bad ops inside OPS frames --------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_bad_op_is_refused_and_the_honest_ops_around_it_are_ingested(
    net: Net, world: World, scripted_peer: Scripted, kind: str
) -> None:
    """One kind of bad op between honest ops (same frame and a later frame) is counted in
    ops_rejected with its reason; the honest ops are ingested; nothing bad is stored."""
    first = world.honest("hello")
    bad_here, bad_other, reasons = bad_ops(world, kind)
    second, third = world.honest(" world"), world.honest("!")
    frames = [
        Ops(world.circle, [first.wire(), *bad_here, second.wire()], more=True),
        Ops(world.circle, [third.wire()], more=False),
    ]
    if bad_other:
        frames.append(Ops(world.other, bad_other, more=False))

    stats, _peer = await world.exchange(scripted_peer, *frames)
    assert stats.error is None
    assert stats.ops_rejected == sum(reasons.values())
    assert stats.reasons == reasons
    heights = await world.a.replica.forwardable_heights(world.circle)
    assert heights[world.w.public] == world.w.seq
    assert doc_view(await world.a.replica.doc(world.circle, world.doc))["t"] == "hello world!"
    await assert_clean(world, bad_here[1:] if kind == "equivocation" else bad_here + bad_other)
    await assert_honest_sync_completes(net, world)


async def test_equivocating_member_is_frozen_and_never_relayed(
    net: Net, world: World, scripted_peer: Scripted
) -> None:
    """After an equivocating pair both sides of the fork are kept as evidence (or stored as
    equivocated), neither counts as valid, and neither reaches an honest peer."""
    (first, twin), _, _ = bad_ops(world, "equivocation")
    stats, _peer = await world.exchange(scripted_peer, Ops(world.circle, [first, twin], True))
    assert stats.reasons == {"equivocation": 1}
    fork = {decode_op(first).op_id, decode_op(twin).op_id}
    store = world.a.replica.store
    rows = {r.op_id: r.status for r in await store.all_ops(world.circle)}
    assert {rows[i] for i in fork if i in rows} <= {STATUS_EQUIVOCATED}
    evidence = {e[3] for e in await store.evidence()} | {e[4] for e in await store.evidence()}
    assert fork <= evidence | {i for i, status in rows.items() if status == STATUS_EQUIVOCATED}
    assert world.m.public not in await world.a.replica.forwardable_heights(world.circle)
    await assert_honest_sync_completes(net, world)
    stored_on_b = await world.b.replica.store.all_ops(world.circle)
    assert world.m.public not in {r.author for r in stored_on_b}


async def test_every_kind_of_bad_op_at_once(
    net: Net, world: World, scripted_peer: Scripted
) -> None:
    """All the bad kinds mixed with honest ops over three frames: each is refused with its
    reason, every honest op lands, the store verifies and an honest sync follows."""
    first = world.honest("hello")
    by_w = ["forged_signature", "foreign_ycid", "panicking_update", "relabelled"]
    bad = {kind: bad_ops(world, kind) for kind in by_w}  # at w's next seq: before `second`
    second = world.honest(" world")
    bad.update({kind: bad_ops(world, kind) for kind in KINDS if kind not in by_w})
    third = world.honest("!")
    early = [wire for kind in by_w for wire in bad[kind][0]]
    late = [wire for kind in KINDS if kind not in by_w for wire in bad[kind][0]]
    frames = [
        Ops(world.circle, [first.wire(), *early, second.wire()], more=True),
        Ops(world.circle, [*late, third.wire()], more=False),
        Ops(world.other, bad["relabelled"][1], more=False),
    ]
    expected: dict[str, int] = {}
    for _, _, reasons in bad.values():
        for reason, n in reasons.items():
            expected[reason] = expected.get(reason, 0) + n

    stats, _peer = await world.exchange(scripted_peer, *frames)
    assert stats.error is None
    assert stats.reasons == expected
    assert stats.ops_rejected == sum(expected.values())
    assert doc_view(await world.a.replica.doc(world.circle, world.doc))["t"] == "hello world!"
    heights = await world.a.replica.forwardable_heights(world.circle)
    assert heights[world.w.public] == world.w.seq
    assert world.m.public not in heights
    assert (await verify_store(world.a.replica)).ok
    await assert_honest_sync_completes(net, world)


# ---- protocol violations --------------------------------------------------------------------


def stranger_circle(home: bytes) -> list[Op]:
    """A valid new circle (genesis, a member, a record) homed on ``home``."""
    founder, member = Author(), Author()
    genesis = founder.genesis(name="stranger", home=home)
    add = founder.set_member(genesis.circle, member, Level.WRITE, [genesis.op_id], home=home)
    return [genesis, add, member.record(genesis.circle, [add.op_id])]


async def test_ops_for_a_circle_never_asked_for_end_the_session(
    world: World, scripted_peer: Scripted
) -> None:
    """A non-live OPS frame for a circle nobody asked for ends the session with an error
    and changes nothing in the replica."""
    before = await dump(world.a.replica.store)
    stranger = stranger_circle(KeyPair.generate().public)
    frame = Ops(stranger[0].circle, [op.wire() for op in stranger], more=False)
    stats, _peer = await world.exchange(scripted_peer, frame)
    assert stats.error is not None
    assert "did not ask" in stats.error
    assert await dump(world.a.replica.store) == before


async def test_ops_of_another_circle_smuggled_under_a_requested_one_are_not_stored(
    world: World, scripted_peer: Scripted
) -> None:
    """An OPS frame labelled with a requested circle but carrying a different circle's ops
    (one a may not host) does not make a store that circle."""
    stranger = stranger_circle(KeyPair.generate().public)
    frame = Ops(world.circle, [op.wire() for op in stranger], more=False)
    await world.exchange(scripted_peer, frame)
    assert stranger[0].circle not in await world.a.replica.circles()
    assert await world.a.replica.store.count_ops(stranger[0].circle) == 0
    assert await world.a.replica.store.pending_count() == 0


async def test_live_ops_for_a_circle_a_does_not_host_are_not_stored(
    world: World, scripted_peer: Scripted
) -> None:
    """Marking an OPS frame ``live`` does not let a peer plant a circle that a may not host
    (nor fill its pending buffer with one)."""
    stranger = stranger_circle(KeyPair.generate().public)
    frame = Ops(stranger[0].circle, [op.wire() for op in stranger], more=False, live=True)
    await world.exchange(scripted_peer, frame)
    assert stranger[0].circle not in await world.a.replica.circles()
    assert await world.a.replica.store.count_ops(stranger[0].circle) == 0


async def test_repeated_have_does_not_make_a_stream_the_circle_again(
    world: World, scripted_peer: Scripted
) -> None:
    """A peer repeating HAVE {} for a circle already answered in this session (a few bytes
    each) does not get the whole circle streamed again for each copy."""
    held = await world.a.replica.store.count_ops(world.circle)
    held += await world.a.replica.store.count_ops(world.other)
    repeats = [Have(world.circle, {}) for _ in range(20)]
    stats, _peer = await world.exchange(scripted_peer, *repeats)
    assert stats.ops_sent <= held, f"{stats.ops_sent} ops sent for {held} held"


async def test_oversized_ops_frame_ends_the_session_keeping_earlier_frames(
    world: World, scripted_peer: Scripted
) -> None:
    """An OPS frame over MAX_OPS_BYTES ends the session; the frame before it stays
    committed (one transaction per frame)."""
    first = world.honest("hello")
    huge = Ops(world.circle, [os.urandom(60_000) for _ in range(5)], more=True)
    stats, _peer = await world.exchange(
        scripted_peer, Ops(world.circle, [first.wire()], more=True), huge
    )
    assert stats.error is not None
    assert await world.a.replica.store.known_op_ids([first.op_id]) == {first.op_id}
    assert (await verify_store(world.a.replica)).ok


async def test_sealed_garbage_after_the_handshake_ends_the_session(
    world: World, scripted_peer: Scripted
) -> None:
    """A sealed frame that is no event ends the session with an error; the replica is as
    it was."""
    before = await dump(world.a.replica.store)
    honest, peer = scripted_peer(world.a, world.h)
    task = asyncio.create_task(honest.run())
    async with asyncio.timeout(10):
        await peer.handshake()
        assert peer.session._seal is not None  # the real stream: only the plaintext is bad
        await peer.channel.send(peer.session._seal.seal(b"\x95\x0d\xc4\x00"))
        stats = await task
    assert stats.error is not None
    assert await dump(world.a.replica.store) == before


@pytest.mark.parametrize("honest_dials", [True, False])
@pytest.mark.parametrize("garbage", [b"", b"\x00" * 64, b"GET / HTTP/1.1\r\n\r\n", b"\x93\x01"])
async def test_garbage_before_the_handshake_is_an_error_not_a_crash(
    world: World, honest_dials: bool, garbage: bytes
) -> None:
    """Bytes that are no handshake message, sent instead of HELLO or WELCOME, end the
    session with an error in ``stats`` (no exception escapes ``run``)."""
    before = await dump(world.a.replica.store)
    end_a, end_h = MemoryChannel.pair()
    honest = PeerSync(world.a.replica, world.a.key, end_a, initiator=honest_dials)
    task = asyncio.create_task(honest.run())
    async with asyncio.timeout(10):
        if honest_dials:
            assert await end_h.receive() is not None  # the HELLO
        await end_h.send(garbage)
        stats = await task
    assert stats.error is not None
    assert stats.peer == ""
    assert await dump(world.a.replica.store) == before


async def test_peer_hanging_up_mid_sync_is_an_error(world: World, scripted_peer: Scripted) -> None:
    """A peer that completes the handshake and hangs up before DONE leaves an error."""
    honest, peer = scripted_peer(world.a, world.h)
    task = asyncio.create_task(honest.run())
    async with asyncio.timeout(10):
        await peer.handshake()
        await peer.channel.close()
        stats = await task
    assert stats.error is not None
    assert "mid-sync" in stats.error


async def test_honest_side_hangs_up_after_ending_a_session_with_an_error(
    world: World, scripted_peer: Scripted
) -> None:
    """When the honest side ends a session for a violation, it closes the connection, so
    the peer is not left waiting for ever."""
    stranger = stranger_circle(KeyPair.generate().public)
    frame = Ops(stranger[0].circle, [op.wire() for op in stranger], more=False)
    stats, peer = await world.exchange(scripted_peer, frame)
    assert stats.error is not None
    async with asyncio.timeout(2):
        await peer.drain()


async def test_have_for_circles_nobody_offered_is_not_remembered(
    world: World, scripted_peer: Scripted
) -> None:
    """HAVEs for made-up circles are answered empty (nothing revealed) but not remembered:
    a stream of them must not grow the session's memory without bound."""
    strangers = [os.urandom(16) for _ in range(50)]
    honest, peer = scripted_peer(world.a, world.h)
    task = asyncio.create_task(honest.run())
    circles = [world.circle, world.other]
    async with asyncio.timeout(10):
        await peer.handshake()
        await peer.send(Summary(os.urandom(32), 2), Offer({c: bytes(16) for c in circles}))
        await peer.send(*(Have(c, {}) for c in strangers))
        while {o.circle for o in peer.of(Ops)} < set(strangers):
            assert await peer.next() is not None
        assert not set(strangers) & honest._answered
        await peer.send(*(Have(c, {}) for c in circles))
        while {h.circle for h in peer.of(Have)} != set(circles):
            assert await peer.next() is not None
        await peer.send(*(Ops(c, [], more=False) for c in circles), Done())
        stats = await task
    assert stats.error is None
