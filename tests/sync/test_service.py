"""NodeService: real servers on loopback ports, real SQLite files, live push and reconnect.

Waits poll the stores with a deadline (``until``); nothing sleeps blindly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pycrdt
import pytest
from hostile_peer import silent_server

from node.crypto.keys import KeyPair
from node.domain.auth import Level
from node.domain.documents import YDoc, doc_id
from node.local import add_member, create_circle, edit_doc
from node.replica import Replica
from node.service import NodeService, ServiceConfig, backoff_delay, split_listen
from node.store.peers import PeerBook
from node.sync.engine import PeerSync
from node.sync.http import HttpLimits
from node.sync.protocol import State
from node.sync.transport import dial


@dataclass
class Node:
    path: Path
    replica: Replica
    key: KeyPair  # node key
    member: KeyPair  # a member homed here


def config(listen: str = "127.0.0.1:0") -> ServiceConfig:
    """Fast timings for tests: quick reconnects, polls and peer refreshes."""
    return ServiceConfig(
        listen=listen,
        backoff_base=0.05,
        backoff_cap=0.3,
        poll_interval=0.2,
        peer_refresh=0.2,
        limits=HttpLimits(long_poll=0.3),
    )


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[list[Node]]:
    """Three nodes A, B, C, each with an open replica, a node key and a member key."""
    async with AsyncExitStack() as stack:
        made = []
        for name in "abc":
            path = tmp_path / f"{name}.db"
            replica = await stack.enter_async_context(Replica.open(path))
            made.append(Node(path, replica, KeyPair.generate(), KeyPair.generate()))
        yield made


async def shared_circle(owner: Node, *guests: Node) -> bytes:
    """A circle created on ``owner`` with each guest's member (homed on its node) writing."""
    circle = await create_circle(
        owner.replica, owner.member, name="garden", creator_name="owner", home=owner.key.public
    )
    for guest in guests:
        await add_member(
            owner.replica,
            owner.member,
            circle,
            member=guest.member.public,
            name="guest",
            level=Level.WRITE,
            home=guest.key.public,
        )
    return circle


async def until(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Poll ``check`` until it holds; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def converged(circle: bytes, *nodes: Node) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        heights = [await n.replica.store.heights_for(circle) for n in nodes]
        return bool(heights[0]) and all(h == heights[0] for h in heights)

    return check


async def add_guest(node: Node, circle: bytes, replica: Replica | None = None) -> None:
    """One more auth op on ``node``: a new member homed nowhere in particular."""
    await add_member(
        replica or node.replica,
        node.member,
        circle,
        member=KeyPair.generate().public,
        name="late",
        level=Level.READ,
        home=None,
    )


async def peer(node: Node, url: str) -> None:
    await PeerBook(node.replica.store).add(url)


async def test_edit_on_a_reaches_b_by_live_push(nodes: list[Node]) -> None:
    """After the initial sync, a new op on A reaches B over the same open session."""
    a, b, _ = nodes
    circle = await shared_circle(a, b)
    async with NodeService(b.replica, b.key, config()) as sb:
        assert sb.server is not None
        await peer(a, sb.server.url)
        async with NodeService(a.replica, a.key, config()) as sa:
            await until(converged(circle, a, b))
            await until(lambda: _synced(sa))
            session = sa.sessions[0]
            await add_guest(a, circle)
            await until(converged(circle, a, b), within=5)
            assert sa.sessions == [session]  # pushed live, not by reconnecting
            assert session.stats.ops_sent >= 3


async def _synced(service: NodeService) -> bool:
    return any(s.synced.is_set() for s in service.sessions)


async def test_circle_created_during_a_live_session_reaches_its_new_host(
    nodes: list[Node],
) -> None:
    """A circle made on A during a live session with B reaches B (B resyncs to fetch it)."""
    a, b, _ = nodes
    first = await shared_circle(a, b)
    async with NodeService(b.replica, b.key, config()) as sb:
        assert sb.server is not None
        await peer(a, sb.server.url)
        async with NodeService(a.replica, a.key, config()) as sa:
            await until(converged(first, a, b))
            await until(lambda: _synced(sa))
            second = await shared_circle(a, b)
            await until(converged(second, a, b))


async def test_write_by_another_process_is_pushed(nodes: list[Node]) -> None:
    """An op written to A's file through a separate Replica (as the CLI does) is pushed."""
    a, b, _ = nodes
    circle = await shared_circle(a, b)
    async with NodeService(b.replica, b.key, config()) as sb:
        assert sb.server is not None
        await peer(a, sb.server.url)
        async with NodeService(a.replica, a.key, config()) as sa:
            await until(converged(circle, a, b))
            await until(lambda: _synced(sa))
            async with Replica.open(a.path) as other:
                await add_guest(a, circle, other)
            await until(converged(circle, a, b), within=5)


async def test_stopped_peer_catches_up_after_restart(nodes: list[Node]) -> None:
    """Stop B, write on A, restart B on the same port: A reconnects and B converges."""
    a, b, _ = nodes
    circle = await shared_circle(a, b)
    async with NodeService(b.replica, b.key, config()) as sb:
        assert sb.server is not None
        port, url = sb.server.port, sb.server.url
        await peer(a, url)
        async with NodeService(a.replica, a.key, config()) as sa:
            await until(converged(circle, a, b))
    async with NodeService(a.replica, a.key, config()) as sa:
        await add_guest(a, circle)
        book = PeerBook(a.replica.store)

        async def failed_once() -> bool:
            row = await book.get(url)
            return row is not None and row.last_error is not None

        await until(failed_once)  # B is down: A's dial fails and it backs off
        assert not await converged(circle, a, b)()
        async with NodeService(b.replica, b.key, config(f"127.0.0.1:{port}")):
            await until(converged(circle, a, b))
            await until(lambda: _synced(sa))
    row = await book.get(url)
    assert row is not None
    assert row.node == b.key.public  # learned on first contact
    assert row.ops_sent >= 3
    assert row.last_contact is not None


async def test_dialer_gives_up_on_a_peer_that_never_answers(nodes: list[Node]) -> None:
    """A configured peer that accepts connections and never answers: the service's dialer
    records a handshake_timeout error (again and again, backing off) instead of hanging."""
    a = nodes[0]
    slow = dataclasses.replace(config(), listen=None, connect_timeout=60.0, handshake_timeout=0.3)
    book = PeerBook(a.replica.store)
    for scheme in ("ws", "http+post"):
        async with silent_server() as port:
            url = f"{scheme}://127.0.0.1:{port}"
            await peer(a, url)

            async def gave_up(url: str = url) -> bool:
                row = await book.get(url)
                return row is not None and "(handshake_timeout)" in (row.last_error or "")

            async with NodeService(a.replica, a.key, slow):
                await until(gave_up)
            row = await book.get(url)
            assert row is not None
            assert row.node is None
            assert "within 0.3 s" in (row.last_error or "")


async def test_first_contact_pins_the_peer_key(nodes: list[Node]) -> None:
    """Once A learned B's node key, another node answering at B's address is refused."""
    a, b, c = nodes
    circle = await shared_circle(a, b)
    async with NodeService(b.replica, b.key, config()) as sb:
        assert sb.server is not None
        port, url = sb.server.port, sb.server.url
        await peer(a, url)
        async with NodeService(a.replica, a.key, config()):
            await until(converged(circle, a, b))
    book = PeerBook(a.replica.store)
    pinned = await book.get(url)
    assert pinned is not None
    assert pinned.node == b.key.public
    async with (
        NodeService(c.replica, c.key, config(f"127.0.0.1:{port}")),
        NodeService(a.replica, a.key, config()),
    ):

        async def refused() -> bool:
            row = await book.get(url)
            return row is not None and "node key" in (row.last_error or "")

        await until(refused)
    row = await book.get(url)
    assert row is not None
    assert row.node == b.key.public
    assert await c.replica.store.count_ops() == 0


async def test_clean_shutdown_says_going_away_and_leaks_no_task(
    nodes: list[Node], caplog: pytest.LogCaptureFixture
) -> None:
    """Stopping tells dialed and accepted peers GOING_AWAY; no asyncio task is left."""
    caplog.set_level(logging.INFO, logger="node.sync.engine")
    a, b, c = nodes
    circle = await shared_circle(a, b)
    async with NodeService(b.replica, b.key, config()) as sb:
        assert sb.server is not None
        await peer(a, sb.server.url)
        async with NodeService(a.replica, a.key, config()) as sa:
            assert sa.server is not None
            await until(converged(circle, a, b))
            channel = await dial(sa.server.url)
            watcher = PeerSync(c.replica, c.key, channel, initiator=True, live=True)
            watching = asyncio.create_task(watcher.run())
            await asyncio.wait_for(watcher.synced.wait(), 5)
        stats = await asyncio.wait_for(watching, 5)  # A told it GOING_AWAY: run() ended
        await channel.close()
        assert watcher.session.state is State.CLOSED
        assert stats.error is None
    going_away = [r for r in caplog.records if "is going away" in r.getMessage()]
    assert going_away, "B was not told that A is going away"
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_three_nodes_in_a_line_converge(nodes: list[Node]) -> None:
    """A-B-C in a line (C over the HTTP fallback) converge on heights and doc contents."""
    a, b, c = nodes
    circle = await shared_circle(a, b, c)
    notes = doc_id(circle, "notes")
    async with NodeService(b.replica, b.key, config()) as sb:
        assert sb.server is not None
        await peer(a, sb.server.url)
        await peer(c, sb.server.url.replace("http://", "http+post://"))
        async with (
            NodeService(a.replica, a.key, config()) as sa,
            NodeService(c.replica, c.key, config()) as sc,
        ):
            await until(converged(circle, a, b, c))
            await until(lambda: _all_synced(sa, sc))

            def write(key: str) -> Callable[[YDoc], None]:
                def change(doc: YDoc) -> None:
                    doc.get("m", type=pycrdt.Map)[key] = key

                return change

            await edit_doc(a.replica, a.member, circle, notes, write("from a"))
            await edit_doc(c.replica, c.member, circle, notes, write("from c"))
            await until(converged(circle, a, b, c))
            views = [await _view(n, circle, notes) for n in (a, b, c)]
            assert views[0] == {"from a": "from a", "from c": "from c"}
            assert views[1] == views[0]
            assert views[2] == views[0]


async def _all_synced(*services: NodeService) -> bool:
    return all([await _synced(s) for s in services])


async def _view(node: Node, circle: bytes, doc: bytes) -> Any:
    return (await node.replica.doc(circle, doc)).get("m", type=pycrdt.Map).to_py()


def test_backoff_is_capped_full_jitter() -> None:
    """Delays stay within [0, min(cap, base * 2**failures)]."""
    for failures in range(0, 40):
        bound = min(60.0, 0.5 * 2**failures)
        assert all(0 <= backoff_delay(failures, 0.5, 60.0) <= bound for _ in range(20))


def test_listen_addresses_allow_port_zero() -> None:
    """HOST:0 asks for any free port; bad addresses are ConfigErrors."""
    from node.errors import ConfigError

    assert split_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    assert split_listen("[::1]:7400") == ("::1", 7400)
    with pytest.raises(ConfigError):
        split_listen("nohost")
