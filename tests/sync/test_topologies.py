"""Many nodes over real aiohttp servers on loopback: lines, stars, partitions, cut transfers.

Each node has a real SQLite store and serves `create_app` on 127.0.0.1 with port 0; a sync
round is one node dialing another's URL (WebSocket) and running `PeerSync` as initiator.
Rounds repeat over the edges of the topology until nothing moves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import Author, YWriter, doc_view, ingest

from node.crypto.keys import KeyPair
from node.domain.auth import Level
from node.domain.documents import doc_id
from node.errors import NetworkError
from node.replica import Replica
from node.sync.engine import PeerSync, SyncStats
from node.sync.transport import SyncServer, create_app, dial
from node.verify import verify_store


@dataclass
class Node:
    name: str
    replica: Replica
    key: KeyPair
    server: SyncServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url


@dataclass
class Circle:
    id: bytes
    doc: bytes
    founder: Author
    heads: list[bytes]
    writers: dict[str, tuple[Author, YWriter]]


async def start_server(node: Node, stack: AsyncExitStack) -> None:
    node.server = await stack.enter_async_context(
        SyncServer(create_app(node.replica, node.key), "127.0.0.1", 0)
    )


@pytest.fixture
async def make_nodes(tmp_path: Path) -> AsyncIterator[object]:
    """A factory of N serving nodes; everything closes at the end of the test."""
    async with AsyncExitStack() as stack:

        async def make(n: int) -> list[Node]:
            nodes = []
            for i in range(n):
                replica = await stack.enter_async_context(Replica.open(tmp_path / f"n{i}.db"))
                node = Node(f"n{i}", replica, KeyPair.generate())
                await start_server(node, stack)
                nodes.append(node)
            return nodes

        yield make


async def shared_circle(nodes: list[Node]) -> Circle:
    """A circle founded on nodes[0] with one writer homed on every node (all are hosts)."""
    founder = Author()
    genesis = founder.genesis(home=nodes[0].key.public)
    circle_id = genesis.circle
    ops = [genesis]
    writers = {}
    heads = [genesis.op_id]
    for node in nodes:
        writer = Author()
        add = founder.set_member(circle_id, writer, Level.WRITE, heads, home=node.key.public)
        heads = [add.op_id]
        ops.append(add)
        writers[node.name] = (writer, YWriter(writer.ycid))
    report = await ingest(nodes[0].replica, ops)
    assert report.added == len(ops), report.as_dict()
    return Circle(circle_id, doc_id(circle_id, "shared"), founder, heads, writers)


async def write(node: Node, circle: Circle, key: str, value: str) -> None:
    """The writer homed on ``node`` sets ``m[key] = value`` (stored on that node)."""
    author, ydoc = circle.writers[node.name]
    op = author.y(circle.id, circle.doc, ydoc.set(key, value), circle.heads)
    report = await ingest(node.replica, [op])
    assert report.added == 1, report.as_dict()


async def sync(a: Node, b: Node) -> SyncStats:
    """One round: a dials b over a real WebSocket."""
    stats = await PeerSync(a.replica, a.key, await dial(b.url), initiator=True).run()
    assert stats.error is None, stats.error
    return stats


async def settle(edges: list[tuple[Node, Node]], rounds: int = 8) -> None:
    """Sync along every edge, in both directions, until a whole pass moves nothing."""
    for _ in range(rounds):
        moved = 0
        for a, b in edges:
            for x, y in ((a, b), (b, a)):
                stats = await sync(x, y)
                moved += stats.ops_received + stats.ops_sent
        if moved == 0:
            return
    raise AssertionError("the topology did not settle")


async def assert_converged(nodes: list[Node], circle: Circle) -> None:
    heights = [await n.replica.forwardable_heights(circle.id) for n in nodes]
    views = [doc_view(await n.replica.doc(circle.id, circle.doc)) for n in nodes]
    assert all(h == heights[0] for h in heights)
    assert all(v == views[0] for v in views)
    for node in nodes:
        assert (await verify_store(node.replica)).ok


@pytest.mark.parametrize("shape", ["line", "star"])
async def test_five_nodes_converge(make_nodes: object, shape: str) -> None:
    """Five nodes in a line, and in a star with the top circle's node in the middle, each
    writing, converge to identical heights and materialized docs."""
    nodes = await make_nodes(5)  # type: ignore[operator]
    circle = await shared_circle(nodes)
    if shape == "line":
        edges = list(zip(nodes, nodes[1:], strict=False))
    else:
        edges = [(nodes[0], leaf) for leaf in nodes[1:]]
    await settle(edges)  # every node now holds the circle (new hosts learn it by sync)
    for node in nodes:
        await write(node, circle, node.name, f"from {node.name}")
    await settle(edges)
    await assert_converged(nodes, circle)
    view = doc_view(await nodes[4].replica.doc(circle.id, circle.doc))
    assert view["m"] == {n.name: f"from {n.name}" for n in nodes}


async def test_partition_heals(make_nodes: object, tmp_path: Path) -> None:
    """Stop the middle of three nodes, keep writing on both sides, restart it: they heal."""
    a, b, c = await make_nodes(3)  # type: ignore[operator]
    circle = await shared_circle([a, b, c])
    await settle([(a, b), (b, c)])
    assert b.server is not None
    await b.server.__aexit__(None, None, None)  # b goes offline
    for i in range(3):
        await write(a, circle, f"a{i}", "left")
        await write(c, circle, f"c{i}", "right")
    with pytest.raises(NetworkError, match="cannot reach"):
        await dial(b.url, connect_timeout=2)
    async with AsyncExitStack() as stack:
        await start_server(b, stack)  # back, on a new port
        await settle([(a, b), (b, c)])
        await assert_converged([a, b, c], circle)


async def test_cut_transfer_resumes_and_resends_little(make_nodes: object) -> None:
    """A large transfer cut mid-way (the dialing task cancelled) resumes from heights: the
    next round sends at most 5% more ops than the receiver still lacked."""
    a, b = await make_nodes(2)  # type: ignore[operator]
    circle = await shared_circle([a, b])
    author, _ = circle.writers[a.name]
    notes = [author.record(circle.id, circle.heads, t="note") for _ in range(3000)]
    for i in range(0, len(notes), 500):
        await ingest(a.replica, notes[i : i + 500])
    total = await a.replica.store.count_ops(circle.id)
    task = asyncio.create_task(sync(b, a))
    for _ in range(2000):
        if await b.replica.store.count_ops() >= total // 4:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    had = await b.replica.store.count_ops(circle.id)
    assert 0 < had < total
    stats = await sync(b, a)
    assert stats.ops_received <= (total - had) * 1.05
    await assert_converged([a, b], circle)
