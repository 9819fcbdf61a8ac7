"""The sync engine (node.sync.engine.PeerSync) between honest replicas over in-memory
channel pairs: read authorization (a peer gets only circles it may host, and learns nothing
of the others), one round trip for unchanged circles, new hosts, convergence in lines and
stars, partitions, resuming a cut transfer, never relaying soft-failed ops, live push.

Replicas are real SQLite files under tmp_path; circles and edits are made with node.local,
bulk histories with the tests/helpers.py builders.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import pycrdt
import pytest
from helpers import Author, doc_view, ingest

from node import local
from node.crypto.keys import KeyPair
from node.domain.auth import Level
from node.domain.documents import YDoc, doc_id
from node.store.store import STATUS_SOFT_FAILED
from node.sync.engine import PeerSync
from node.sync.memory import MemoryChannel
from node.sync.protocol import Done, Have, Offer, Ops, Summary
from node.verify import verify_store

if TYPE_CHECKING:
    from conftest import Net, Node, ScriptedPeer

    Scripted = Callable[..., tuple[PeerSync, ScriptedPeer]]


def set_value(key: str, value: Any) -> Callable[[YDoc], None]:
    def change(doc: YDoc) -> None:
        doc.get("m", type=pycrdt.Map)[key] = value

    return change


def append_text(text: str) -> Callable[[YDoc], None]:
    def change(doc: YDoc) -> None:
        t = doc.get("t", type=pycrdt.Text)
        t.insert(len(t), text)

    return change


def note(text: str, t: str = "decision") -> bytes:
    return msgspec.msgpack.encode({"t": t, "text": text})


@dataclass
class Circle:
    """A circle made with node.local: its id, docs, and per member key its home node."""

    id: bytes
    founder: KeyPair
    homes: dict[bytes, Node] = field(default_factory=dict)
    keys: dict[bytes, KeyPair] = field(default_factory=dict)

    @property
    def hosts(self) -> set[str]:
        return {node.name for node in self.homes.values()}

    def doc(self, name: str = "profile") -> bytes:
        return doc_id(self.id, name)


async def make_circle(
    home: Node, *guests: tuple[Node, Level], name: str = "circle"
) -> tuple[Circle, list[KeyPair]]:
    """A circle founded on ``home`` by a member homed there, with one member per guest."""
    founder = KeyPair.generate()
    circle_id = await local.create_circle(
        home.replica, founder, name=name, creator_name="founder", home=home.public
    )
    circle = Circle(circle_id, founder, {founder.public: home}, {founder.public: founder})
    members = []
    for node, level in guests:
        member = KeyPair.generate()
        await local.add_member(
            home.replica,
            founder,
            circle_id,
            member=member.public,
            name="m",
            level=level,
            home=node.public,
        )
        circle.homes[member.public] = node
        circle.keys[member.public] = member
        members.append(member)
    return circle, members


async def snapshot(node: Node, circle: bytes, docs: list[bytes]) -> tuple[object, ...]:
    """What two replicas of a circle must agree on: forwardable heights and doc contents."""
    views = [doc_view(await node.replica.doc(circle, d)) for d in docs]
    return (await node.replica.forwardable_heights(circle), views)


async def assert_same(nodes: list[Node], circle: bytes, docs: list[bytes]) -> None:
    first = await snapshot(nodes[0], circle, docs)
    for other in nodes[1:]:
        assert await snapshot(other, circle, docs) == first, (nodes[0], other)


def named(event: object, secrets: list[bytes]) -> list[bytes]:
    """The secrets that appear anywhere in an event's encoding."""
    encoded = msgspec.msgpack.encode(event)
    return [s for s in secrets if s in encoded]


# ---- basics and read authorization ----------------------------------------------------------


async def test_first_sync_copies_a_hosted_circle_both_ways(net: Net) -> None:
    """A circle with a member homed on B reaches B whole; B's member's edit comes back."""
    a, b = await net.node("a"), await net.node("b")
    circle, (guest,) = await make_circle(a, (b, Level.WRITE))
    await local.edit_doc(a.replica, circle.founder, circle.id, circle.doc(), set_value("k", 1))
    total = await a.replica.store.count_ops(circle.id)

    stats_a, stats_b = await net.sync(a, b)
    assert (stats_a.error, stats_b.error) == (None, None)
    assert (stats_a.ops_sent, stats_b.ops_received, stats_b.ops_added) == (total, total, total)
    assert stats_a.round_trips == stats_b.round_trips == 3  # SUMMARY, OFFER, HAVE
    assert (stats_a.circles, stats_b.circles) == (1, 0)  # circles each side offered
    await assert_same([a, b], circle.id, [circle.doc()])

    await local.edit_doc(b.replica, guest, circle.id, circle.doc(), append_text("from b"))
    stats_b, stats_a = await net.sync(b, a)
    assert (stats_b.ops_sent, stats_a.ops_added) == (1, 1)
    await assert_same([a, b], circle.id, [circle.doc()])
    assert doc_view(await a.replica.doc(circle.id, circle.doc()))["t"] == "from b"
    assert (await verify_store(a.replica)).ok
    assert (await verify_store(b.replica)).ok


async def test_peer_answering_with_another_node_key_gets_nothing(net: Net) -> None:
    """A dialer that pinned the node key of the peer it meant to reach refuses a peer with
    another key at the handshake: no circle crosses, both runs end with an error."""
    a, b = await net.node("a"), await net.node("b")
    await make_circle(a, (b, Level.WRITE))
    end_a, end_b = MemoryChannel.pair()
    meant = KeyPair.generate().public
    dialer = PeerSync(a.replica, a.key, end_a, initiator=True, expected_peer=meant)
    listener = PeerSync(b.replica, b.key, end_b, initiator=False)
    async with asyncio.timeout(10):
        listening = asyncio.create_task(listener.run())
        stats_a = await dialer.run()
        await end_a.close()  # hang up for the dialer (see the hang-up test in the hostile file)
        stats_b = await listening
    assert stats_a.error is not None
    assert "node key" in stats_a.error
    assert stats_b.error is not None
    assert (stats_a.ops_sent, stats_b.ops_received) == (0, 0)
    assert await b.replica.circles() == set()


async def test_peer_without_host_rights_gets_no_circle(net: Net) -> None:
    """An honest peer receives only the circle it may host; the other never reaches it,
    not even as a pending op."""
    a, p = await net.node("a"), await net.node("p")
    secret, _ = await make_circle(a, (a, Level.WRITE), name="secret")
    shared, _ = await make_circle(a, (p, Level.READ), name="shared")
    await local.edit_doc(a.replica, secret.founder, secret.id, secret.doc(), set_value("k", 1))

    stats_a, stats_p = await net.sync(a, p)
    assert (stats_a.error, stats_p.error) == (None, None)
    assert stats_a.circles == 1
    assert await p.replica.circles() == {shared.id}
    assert await p.replica.store.count_ops(secret.id) == 0
    assert await p.replica.store.pending_count() == 0


async def test_attacker_without_host_rights_learns_nothing_of_a_circle(
    net: Net, scripted_peer: Scripted
) -> None:
    """A peer that may host nothing and pushes for everything (differing SUMMARY, HAVE for
    whatever is offered) is told of zero circles: no event names the circle or its members."""
    a = await net.node("a")
    circle, members = await make_circle(a, (a, Level.WRITE), name="secret")
    await local.edit_doc(a.replica, circle.founder, circle.id, circle.doc(), set_value("k", 1))
    secrets = [circle.id, circle.founder.public, members[0].public]

    honest, peer = scripted_peer(a, KeyPair.generate())
    task = asyncio.create_task(honest.run())
    async with asyncio.timeout(10):
        await peer.handshake()
        await peer.send(Summary(os.urandom(32), 1), Offer({}))
        while (event := await peer.next()) is not None:
            if isinstance(event, Offer):
                await peer.send(*(Have(c, {}) for c in event.circles), Done())
            elif isinstance(event, Have):
                await peer.send(Ops(event.circle, [], more=False))
        stats = await task

    assert stats.error is None
    assert [s.circles for s in peer.of(Summary)] == [0]
    assert [o.circles for o in peer.of(Offer)] == [{}]
    assert peer.of(Have) == []
    assert peer.of(Ops) == []
    assert [e for e in peer.events if named(e, secrets)] == []


async def test_have_for_a_circle_the_peer_may_not_host_is_answered_empty(
    net: Net, scripted_peer: Scripted
) -> None:
    """A peer that knows a circle's id and asks for it with HAVE gets an empty OPS answer."""
    a = await net.node("a")
    circle, _ = await make_circle(a, (a, Level.WRITE), name="secret")
    honest, peer = scripted_peer(a, KeyPair.generate())
    task = asyncio.create_task(honest.run())
    async with asyncio.timeout(10):
        await peer.handshake()
        await peer.send(Summary(os.urandom(32), 1), Offer({}), Have(circle.id, {}), Done())
        await peer.drain()
        stats = await task
    assert stats.ops_sent == 0
    assert peer.of(Ops) == [Ops(circle.id, [], more=False)]


async def test_peer_naming_a_circle_it_may_not_host_learns_none_of_its_members(
    net: Net, scripted_peer: Scripted
) -> None:
    """A peer that knows a circle's id but may not host it and offers it (say, a node whose
    hosting was withdrawn) is not told the circle's heights, i.e. its member keys and how
    much each wrote."""
    a = await net.node("a")
    circle, members = await make_circle(a, (a, Level.WRITE), name="secret")
    await local.edit_doc(a.replica, members[0], circle.id, circle.doc(), set_value("k", 1))
    honest, peer = scripted_peer(a, KeyPair.generate())
    task = asyncio.create_task(honest.run())
    async with asyncio.timeout(10):
        await peer.handshake()
        offer = Offer({circle.id: bytes(16)})
        await peer.send(Summary(os.urandom(32), 1), offer, Have(circle.id, {}), Done())
        while (event := await peer.next()) is not None:
            if isinstance(event, Have):
                await peer.send(Ops(event.circle, [], more=False))
        await task
    leaked = [e for e in peer.events if named(e, [circle.founder.public, members[0].public])]
    assert leaked == []


# ---- cost of a sync -------------------------------------------------------------------------


async def test_unchanged_circles_cost_one_round_trip_and_few_bytes(net: Net) -> None:
    """With 100 circles hosted by both nodes and nothing new, a sync is one round trip after
    the handshake and under 2 KiB each way."""
    a, b = await net.node("a"), await net.node("b")
    for i in range(100):
        await make_circle(a, (b, Level.WRITE), name=f"c{i}")
    first_a, first_b = await net.sync(a, b)
    assert (first_a.error, first_b.error, first_a.circles) == (None, None, 100)
    assert first_b.ops_added == 200

    for dialer, listener in ((a, b), (b, a)):
        stats_d, stats_l = await net.sync(dialer, listener)
        for stats in (stats_d, stats_l):
            assert stats.error is None
            assert stats.round_trips == 1
            assert stats.ops_sent == 0
            assert stats.bytes_sent < 2048, f"{stats.bytes_sent} bytes sent for 100 circles"


async def test_only_the_changed_circle_is_asked_for(net: Net) -> None:
    """When one of several shared circles changed, only that circle gets a HAVE and ops."""
    a, b = await net.node("a"), await net.node("b")
    circles = [(await make_circle(a, (b, Level.WRITE), name=f"c{i}"))[0] for i in range(5)]
    await net.sync(a, b)
    changed = circles[2]
    await local.author_record(a.replica, changed.founder, changed.id, note("only here"))
    stats_a, stats_b = await net.sync(a, b)
    assert stats_a.round_trips == 3
    assert (stats_a.ops_sent, stats_b.ops_added) == (1, 1)
    for circle in circles:
        await assert_same([a, b], circle.id, [])


# ---- hosting changes ------------------------------------------------------------------------


async def test_new_host_receives_the_circle_without_knowing_its_id(net: Net) -> None:
    """A node made a host (a member homed on it added) gets the circle on its next sync,
    even when it dials and has never heard of the circle."""
    a, b = await net.node("a"), await net.node("b")
    circle, _ = await make_circle(a, (a, Level.WRITE))
    await local.edit_doc(a.replica, circle.founder, circle.id, circle.doc(), set_value("k", 1))
    stats_b, _ = await net.sync(b, a)
    assert stats_b.circles == 0
    assert await b.replica.circles() == set()

    await local.add_member(
        a.replica,
        circle.founder,
        circle.id,
        member=KeyPair.generate().public,
        name="new",
        level=Level.READ,
        home=b.public,
    )
    stats_b, stats_a = await net.sync(b, a)
    assert (stats_b.error, stats_a.error) == (None, None)
    assert await b.replica.circles() == {circle.id}
    await assert_same([a, b], circle.id, [circle.doc()])


async def test_withdrawn_host_receives_nothing_new(net: Net) -> None:
    """After the only member homed on B is removed, B gets none of the circle's later ops."""
    a, b = await net.node("a"), await net.node("b")
    circle, (guest,) = await make_circle(a, (b, Level.WRITE))
    await net.sync(a, b)
    before = await b.replica.forwardable_heights(circle.id)
    await local.add_member(
        a.replica,
        circle.founder,
        circle.id,
        member=guest.public,
        name="m",
        level=Level.NONE,
        home=None,
    )
    await local.author_record(a.replica, circle.founder, circle.id, note("after"))
    stats_a, stats_b = await net.sync(a, b)
    assert (stats_a.error, stats_b.error) == (None, None)
    assert stats_a.ops_sent == 0
    assert await b.replica.forwardable_heights(circle.id) == before


# ---- convergence ----------------------------------------------------------------------------


@dataclass
class Topology:
    nodes: list[Node]
    edges: list[tuple[Node, Node]]
    hub: Node  # holds the top circle


async def build(net: Net, shape: str, size: int) -> Topology:
    nodes = [await net.node(f"n{i}") for i in range(size)]
    if shape == "line":
        edges = [(nodes[i], nodes[i + 1]) for i in range(size - 1)]
        hub = nodes[size // 2]
    else:
        edges = [(nodes[0], leaf) for leaf in nodes[1:]]
        hub = nodes[0]
    return Topology(nodes, edges, hub)


async def write_everywhere(circles: list[Circle], tag: str) -> None:
    """Every member writes on its own home node: its own key, a shared key, text, a record."""
    for circle in circles:
        for member, home in circle.homes.items():
            key = circle.keys[member]
            name = home.name
            await local.edit_doc(
                home.replica, key, circle.id, circle.doc(), set_value(f"{name}-{tag}", tag)
            )
            await local.edit_doc(
                home.replica, key, circle.id, circle.doc(), set_value("last", name)
            )
            await local.edit_doc(
                home.replica, key, circle.id, circle.doc("log"), append_text(f"[{name} {tag}]")
            )
            await local.author_record(home.replica, key, circle.id, note(f"{name} {tag}"))


@pytest.mark.parametrize(("shape", "size"), [("line", 3), ("line", 5), ("star", 3), ("star", 5)])
async def test_replicas_converge_in_lines_and_stars(net: Net, shape: str, size: int) -> None:
    """Nodes in a line or a star (top circle on the middle node), a circle per link, writes
    on every node between syncs: repeated pairwise syncs reach identical forwardable heights
    and docs on every host, and no circle ever reaches a node that may not host it."""
    topo = await build(net, shape, size)
    top, _ = await make_circle(
        topo.hub, *((n, Level.WRITE) for n in topo.nodes if n is not topo.hub)
    )
    circles = [top]
    for near, far in topo.edges:
        circles.append((await make_circle(near, (far, Level.WRITE), name="link"))[0])

    await net.settle(topo.edges)
    for tag in ("one", "two"):
        await write_everywhere(circles, tag)
        await net.settle(topo.edges)

    for circle in circles:
        holders = [n for n in topo.nodes if circle.id in await n.replica.circles()]
        assert {n.name for n in holders} == circle.hosts
        await assert_same(holders, circle.id, [circle.doc(), circle.doc("log")])
        view = doc_view(await holders[0].replica.doc(circle.id, circle.doc()))
        assert {f"{n}-{tag}" for n in circle.hosts for tag in ("one", "two")} <= set(view["m"])
    for node in topo.nodes:
        assert (await verify_store(node.replica)).ok, node


async def test_partition_heals(net: Net) -> None:
    """Two nodes that write while apart, one of them removing the other's member who keeps
    writing, agree after one sync: the removed member's later edits count nowhere."""
    a, b = await net.node("a"), await net.node("b")
    circle, (stays, goes) = await make_circle(a, (b, Level.WRITE), (b, Level.WRITE))
    await local.edit_doc(a.replica, circle.founder, circle.id, circle.doc(), set_value("start", 0))
    await net.sync(a, b)

    await local.edit_doc(a.replica, circle.founder, circle.id, circle.doc(), set_value("a", 1))
    await local.add_member(
        a.replica,
        circle.founder,
        circle.id,
        member=goes.public,
        name="m",
        level=Level.NONE,
        home=None,
    )
    await local.edit_doc(b.replica, stays, circle.id, circle.doc(), set_value("b", 2))
    await local.edit_doc(b.replica, goes, circle.id, circle.doc(), set_value("gone", 3))
    await local.author_record(b.replica, goes, circle.id, note("while partitioned"))

    stats_a, stats_b = await net.sync(a, b)
    assert (stats_a.error, stats_b.error) == (None, None)
    await assert_same([a, b], circle.id, [circle.doc()])
    view = doc_view(await a.replica.doc(circle.id, circle.doc()))
    assert view["m"] == {"start": 0, "a": 1, "b": 2}
    again_a, again_b = await net.sync(b, a)
    assert again_a.round_trips == again_b.round_trips == 1
    assert (await verify_store(a.replica)).ok
    assert (await verify_store(b.replica)).ok


# ---- interrupted transfers ------------------------------------------------------------------


async def test_cut_transfer_resumes_and_resends_almost_nothing(net: Net) -> None:
    """A cut halfway through a 3,000-op transfer keeps every OPS frame that arrived; the next
    sync sends only what B lacks (re-sending under 5% of the ops)."""
    a, b = await net.node("a"), await net.node("b")
    circle, (writer_key, _) = await make_circle(a, (a, Level.WRITE), (b, Level.READ))
    state = await a.replica.auth_state(circle.id)
    writer = Author(key=writer_key, ycid=state.ycid_of(writer_key.public) or 1)
    heads = (await a.replica.auth_log(circle.id)).heads()
    ops = [writer.record(circle.id, heads, fields={"i": i, "pad": "x" * 400}) for i in range(3000)]
    assert (await ingest(a.replica, ops)).added == 3000
    total = await a.replica.store.count_ops(circle.id)

    first_a, first_b = await net.sync(a, b, cut_after_frames=3)
    assert first_b.error is not None  # A may already count itself done: B sent DONE early
    had = await b.replica.store.count_ops(circle.id)
    assert first_b.ops_added == had
    assert 0 < had < total
    lacked = total - had

    second_a, second_b = await net.sync(a, b)
    assert (second_a.error, second_b.error) == (None, None)
    resent = second_a.ops_sent - lacked
    assert resent <= 0.05 * total, f"re-sent {resent} of {total} ops"
    delivered = first_b.ops_received + second_a.ops_sent
    assert delivered <= 1.05 * total, f"{delivered} ops delivered for {total}"
    await assert_same([a, b], circle.id, [])


# ---- what is never relayed ------------------------------------------------------------------


async def test_soft_failed_op_is_never_relayed(net: Net) -> None:
    """A revoked member's op written with deps from before the revocation is stored as soft
    failed on A; syncing A to B (and on to C) never delivers it, nor the chain after it."""
    a, b, c = await net.node("a"), await net.node("b"), await net.node("c")
    circle, (w_key, _, _) = await make_circle(a, (a, Level.WRITE), (b, Level.READ), (c, Level.READ))
    stale_heads = (await a.replica.auth_log(circle.id)).heads()
    first = await local.author_record(a.replica, w_key, circle.id, note("before"))
    await local.add_member(
        a.replica,
        circle.founder,
        circle.id,
        member=w_key.public,
        name="w",
        level=Level.NONE,
        home=None,
    )
    state = await a.replica.auth_state(circle.id)
    w = Author(key=w_key, ycid=state.ycid_of(w_key.public) or 1, seq=1, head=first.op_id)
    late = [w.record(circle.id, stale_heads), w.record(circle.id, stale_heads)]
    report = await ingest(a.replica, late)
    assert report.soft_failed == 2, report.problems
    await local.author_record(a.replica, circle.founder, circle.id, note("after"))
    valid = await a.replica.store.count_ops(circle.id) - 2

    stats_a, stats_b = await net.sync(a, b)
    assert stats_a.ops_sent == stats_b.ops_received == valid
    await net.sync(b, c)
    late_ids = [op.op_id for op in late]
    for node in (b, c):
        assert await node.replica.store.known_op_ids(late_ids) == set()
        assert await node.replica.store.pending_ids(late_ids) == set()
        assert first.op_id in await node.replica.store.known_op_ids([first.op_id])
        await assert_same([a, node], circle.id, [])
    statuses = {r.op_id: r.status for r in await a.replica.store.all_ops(circle.id)}
    assert [statuses[i] for i in late_ids] == [STATUS_SOFT_FAILED] * 2


async def test_skipped_auth_op_does_not_stop_other_members_ops_reaching_peers(net: Net) -> None:
    """A read member's auth op that the fold skips (registering a device under a ycid that
    is already taken) stays in the auth log and is relayed (every replica folds the same
    set and skips it the same way); the ops other members sign afterwards cite it in their
    deps and reach and apply on peers, so the circle converges."""
    a, b = await net.node("a"), await net.node("b")
    circle, (_, reader_key) = await make_circle(a, (b, Level.WRITE), (a, Level.READ))
    state = await a.replica.auth_state(circle.id)
    reader = Author(key=reader_key, ycid=state.ycid_of(reader_key.public) or 1)
    clash = Author(ycid=state.ycid_of(circle.founder.public) or 1)
    heads = (await a.replica.auth_log(circle.id)).heads()
    device_op = reader.set_device(circle.id, clash, heads)
    report = await ingest(a.replica, [device_op])
    assert report.added == 1, report.as_dict()
    assert device_op.op_id in (await a.replica.auth_state(circle.id)).skipped
    await local.edit_doc(a.replica, circle.founder, circle.id, circle.doc(), set_value("k", "v"))

    for _ in range(2):
        stats_a, stats_b = await net.sync(a, b)
        assert (stats_a.error, stats_b.error) == (None, None)
    assert doc_view(await b.replica.doc(circle.id, circle.doc()))["m"] == {"k": "v"}
    await assert_same([a, b], circle.id, [circle.doc()])
    assert await b.replica.store.pending_count() == 0


# ---- live push ------------------------------------------------------------------------------


async def live_pair(a: Node, b: Node) -> tuple[PeerSync, PeerSync, asyncio.Future[Any]]:
    """Live PeerSyncs for a (dialing) and b, running; returns them and their gathered runs."""
    end_a, end_b = MemoryChannel.pair()
    live_a = PeerSync(a.replica, a.key, end_a, initiator=True, live=True)
    live_b = PeerSync(b.replica, b.key, end_b, initiator=False, live=True)
    runs = asyncio.gather(live_a.run(), live_b.run())
    await live_a.synced.wait()
    await live_b.synced.wait()
    return live_a, live_b, runs


async def test_live_push_delivers_new_ops_and_never_echoes_them(net: Net) -> None:
    """In live mode a newly stored op pushed by A is ingested by B, B does not push it back,
    and a circle B may not host is not pushed."""
    a, b = await net.node("a"), await net.node("b")
    circle, _ = await make_circle(a, (b, Level.WRITE))
    private, _ = await make_circle(a, (a, Level.WRITE), name="private")
    async with asyncio.timeout(10):
        live_a, live_b, runs = await live_pair(a, b)
        b.replica.committed.clear()
        op = await local.author_record(a.replica, circle.founder, circle.id, note("live"))
        assert await live_a.push(circle.id, [(op.op_id, op.wire())]) == 1
        await b.replica.committed.wait()
        assert await b.replica.store.known_op_ids([op.op_id]) == {op.op_id}
        assert await live_b.push(circle.id, [(op.op_id, op.wire())]) == 0

        secret = await local.author_record(a.replica, private.founder, private.id, note("no"))
        assert await live_a.push(private.id, [(secret.op_id, secret.wire())]) == 0

        await live_a.close("done")
        await live_b.close("done")
        stats_a, stats_b = await runs
    assert stats_b.ops_received == stats_a.ops_sent
    assert await b.replica.circles() == {circle.id}
    await assert_same([a, b], circle.id, [])


async def test_closing_one_side_of_a_live_sync_ends_both_runs(net: Net) -> None:
    """``close()`` on one live PeerSync tells the peer GOING_AWAY and both ``run()`` calls
    return, without an error on either side."""
    a, b = await net.node("a"), await net.node("b")
    await make_circle(a, (b, Level.WRITE))
    async with asyncio.timeout(10):
        live_a, _live_b, runs = await live_pair(a, b)
    await live_a.close("shutting down")
    async with asyncio.timeout(2):
        stats_a, stats_b = await runs
    assert (stats_a.error, stats_b.error) == (None, None)


async def test_both_sides_closing_at_once_is_not_an_error(net: Net) -> None:
    """When both live peers close at the same moment (their GOING_AWAYs cross), neither
    run reports an error."""
    a, b = await net.node("a"), await net.node("b")
    await make_circle(a, (b, Level.WRITE))
    async with asyncio.timeout(10):
        live_a, live_b, runs = await live_pair(a, b)
        await asyncio.gather(live_a.close("bye"), live_b.close("bye"))
        stats_a, stats_b = await runs
    assert (stats_a.error, stats_b.error) == (None, None)
