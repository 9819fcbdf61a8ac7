"""The aiohttp transports: WebSocket and HTTP fallback carry real syncs between replicas.

Every test runs a real aiohttp server on 127.0.0.1 (port 0) over a real SQLite replica, and
PeerSync on both ends.
"""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import msgspec
import pytest
from aiohttp import web
from hostile_peer import silent_server

from node.crypto.keys import KeyPair
from node.domain.auth import Level
from node.errors import NetworkError, ProtocolError
from node.local import add_member, create_circle
from node.replica import Replica
from node.sync.engine import Channel, PeerSync, SyncStats
from node.sync.http import MAX_BODY, HttpChannel, HttpLimits
from node.sync.protocol import MAX_MESSAGE, SyncSession
from node.sync.transport import (
    HTTP_SESSIONS,
    SyncServer,
    WebSocketChannel,
    create_app,
    dial,
    parse_peer_url,
    round_trips,
)


@dataclass
class Node:
    replica: Replica
    key: KeyPair  # the node key
    member: KeyPair  # a member homed on this node


@dataclass
class World:
    a: Node
    b: Node
    circle_a: bytes  # created on A, B's member added: hosted by both
    circle_b: bytes  # created on B, A's member added: hosted by both


async def heights(node: Node, circle: bytes) -> dict[bytes, int]:
    return await node.replica.store.heights_for(circle)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """Two replicas, each holding one circle that the other node may host."""
    async with Replica.open(tmp_path / "a.db") as ra, Replica.open(tmp_path / "b.db") as rb:
        a = Node(ra, KeyPair.generate(), KeyPair.generate())
        b = Node(rb, KeyPair.generate(), KeyPair.generate())
        circles = []
        for here, there in ((a, b), (b, a)):
            circle = await create_circle(
                here.replica, here.member, name="c", creator_name="m", home=here.key.public
            )
            await add_member(
                here.replica,
                here.member,
                circle,
                member=there.member.public,
                name="guest",
                level=Level.WRITE,
                home=there.key.public,
            )
            circles.append(circle)
        yield World(a, b, circles[0], circles[1])


async def sync_over(
    world: World, url: str, expected: bytes | None = None
) -> tuple[SyncStats, Channel]:
    """One initiator sync from A to the server at ``url`` (B's)."""
    channel = await dial(url)
    sync = PeerSync(
        world.a.replica,
        world.a.key,
        channel,
        initiator=True,
        expected_peer=world.b.key.public if expected is None else expected,
    )
    try:
        stats = await asyncio.wait_for(sync.run(), 10)
    finally:
        await channel.close()
    return stats, channel


async def assert_converged(world: World) -> None:
    for circle in (world.circle_a, world.circle_b):
        assert await heights(world.a, circle) == await heights(world.b, circle)
        assert await heights(world.a, circle)


async def until(check: object, within: float = 5.0) -> None:
    """Poll ``check()`` (sync callable) until it is true; fail after ``within`` seconds."""
    assert callable(check)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def server_for(node: Node, limits: HttpLimits | None = None) -> SyncServer:
    return SyncServer(create_app(node.replica, node.key, limits=limits), "127.0.0.1", 0)


async def test_websocket_carries_a_full_sync_both_ways(world: World) -> None:
    """Over ws://, one sync moves each side's circle to the other; the server's end too."""
    async with server_for(world.b) as server:
        stats, channel = await sync_over(world, server.url.replace("http", "ws"))
    assert isinstance(channel, WebSocketChannel)
    assert stats.error is None
    assert stats.ops_sent == 2
    assert stats.ops_received == 2
    assert stats.bytes_sent > 0
    assert stats.bytes_received > 0
    await assert_converged(world)


async def test_http_fallback_carries_a_full_sync_and_counts_posts(world: World) -> None:
    """Over http+post://, the same sync completes; round trips are the POSTs made."""
    async with server_for(world.b) as server:
        url = server.url.replace("http://", "http+post://")
        stats, channel = await sync_over(world, url)
    assert isinstance(channel, HttpChannel)
    assert stats.error is None, stats.error
    assert (stats.ops_sent, stats.ops_received) == (2, 2)
    assert round_trips(stats, channel) == channel.posts
    assert 3 <= channel.posts <= 6
    await assert_converged(world)


async def test_http_fallback_paces_a_transfer_larger_than_one_exchange(world: World) -> None:
    """MiBs of ops cross the HTTP fallback in several bounded exchanges, all arriving."""
    from helpers import Author, YWriter, ingest

    owner = Author()
    genesis = owner.genesis(home=world.a.key.public)
    circle = genesis.circle
    host = owner.set_host(circle, world.b.key.public, [genesis.op_id], hosting=True)
    writer = YWriter(owner.ycid)
    doc = bytes(16)
    ops = [genesis, host]
    ops += [owner.y(circle, doc, writer.type("x" * 40000), [host.op_id]) for _ in range(64)]
    assert (await ingest(world.a.replica, ops)).added == len(ops)
    async with server_for(world.b) as server:
        stats, channel = await sync_over(world, server.url.replace("http://", "http+post://"))
    assert stats.error is None
    assert isinstance(channel, HttpChannel)
    assert channel.posts >= 5  # 2.5 MiB of ops in replies of at most ~1 MiB each
    assert await heights(world.b, circle) == await heights(world.a, circle)


async def test_http_url_falls_back_when_the_upgrade_is_refused(world: World) -> None:
    """An http:// peer behind a proxy that refuses WebSocket upgrades syncs over POSTs."""

    @web.middleware
    async def no_websockets(
        request: web.Request, handler: web.RequestHandler
    ) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            raise web.HTTPForbidden(text="proxy says no")
        return await handler(request)

    app = create_app(world.b.replica, world.b.key)
    app.middlewares.append(no_websockets)
    async with SyncServer(app, "127.0.0.1", 0) as server:
        stats, channel = await sync_over(world, server.url)
    assert isinstance(channel, HttpChannel)
    assert stats.error is None
    await assert_converged(world)


async def test_a_second_sync_with_no_change_sends_no_ops(world: World) -> None:
    """After a sync, a second one over WebSocket moves no ops and costs one round trip."""
    async with server_for(world.b) as server:
        await sync_over(world, server.url)
        stats, _ = await sync_over(world, server.url)
    assert (stats.ops_sent, stats.ops_received, stats.round_trips) == (0, 0, 1)


async def test_wrong_expected_peer_key_fails_the_handshake(world: World) -> None:
    """A pinned node key that the server does not hold fails the sync; nothing moves."""
    async with server_for(world.b) as server:
        stats, _ = await sync_over(world, server.url, expected=KeyPair.generate().public)
    assert stats.error is not None
    assert "node key" in stats.error
    assert await heights(world.b, world.circle_a) == {}


async def test_health_reports_node_and_counts(world: World) -> None:
    """GET /health answers the node key and how many circles and ops it holds."""
    async with server_for(world.b) as server, aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/health") as response:
            assert response.status == 200
            data = await response.json()
    assert data == {"ok": True, "node": world.b.key.public.hex(), "circles": 1, "ops": 2}


async def test_oversized_http_body_is_refused(world: World) -> None:
    """A POST body above the limit is refused with 413 and starts no session."""
    async with server_for(world.b) as server, aiohttp.ClientSession() as http:
        body = msgspec.msgpack.encode({"session": None, "messages": [b"x" * (1024 * 1024)]})
        async with http.post(f"{server.url}/sync/http", data=io.BytesIO(body)) as response:
            assert response.status == 413
        assert len(server.app[HTTP_SESSIONS]) == 0


async def test_malformed_http_body_is_a_bad_request(world: World) -> None:
    """A POST body that is not a sync exchange gets 400."""
    async with server_for(world.b) as server, aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/sync/http", data=b"\xc1junk") as response:
            assert response.status == 400


async def test_idle_http_session_expires(world: World) -> None:
    """A session left idle past its TTL is ended; its next exchange says it expired."""
    limits = HttpLimits(session_ttl=0.2, long_poll=0.05)
    async with server_for(world.b, limits) as server:
        channel = await dial(server.url.replace("http://", "http+post://"))
        assert isinstance(channel, HttpChannel)
        try:
            await channel.send(SyncSession(world.a.key, initiator=True).start())
            assert await channel.receive() is not None  # the server's WELCOME
            sessions = server.app[HTTP_SESSIONS]
            assert len(sessions) == 1
            await until(lambda: len(sessions) == 0)
            await channel.send(b"late")
            with pytest.raises(ProtocolError, match="expired"):
                await channel.receive()
        finally:
            await channel.close()


async def test_unreachable_peer_says_what_to_check() -> None:
    """Dialing a port nobody listens on is a NetworkError naming the URL and `serve`."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(NetworkError, match=r"cannot reach http://127\.0\.0\.1:\d+: connection ref"):
        await dial(f"http://127.0.0.1:{port}")


async def test_listening_on_a_taken_port_says_so(world: World) -> None:
    """A second server on a port in use fails with a NetworkError naming --listen."""
    async with server_for(world.b) as server:
        second = SyncServer(create_app(world.a.replica, world.a.key), "127.0.0.1", server.port)
        with pytest.raises(NetworkError, match="address already in use.*--listen"):
            await second.__aenter__()


async def test_a_server_that_is_no_circle_node_is_a_protocol_error() -> None:
    """An HTTP server without the sync endpoints fails the fallback with a clear message."""
    app = web.Application()
    async with SyncServer(app, "127.0.0.1", 0) as server:
        channel = await dial(server.url)
        try:
            await channel.send(b"hello")
            with pytest.raises(ProtocolError, match="no circle-node sync endpoint"):
                await channel.receive()
        finally:
            await channel.close()


NO_ANSWER = r"did not answer the sync handshake within 0\.3 s \(handshake_timeout\)"


@pytest.mark.parametrize("scheme", ["ws", "http"])
async def test_dialer_gives_up_on_a_server_that_never_answers(scheme: str) -> None:
    """A server that accepts the TCP connection and never answers the upgrade: the dial
    fails with a NetworkError naming handshake_timeout, long before connect_timeout."""
    async with silent_server() as port, asyncio.timeout(20):  # the timeout: a hang guard
        with pytest.raises(NetworkError, match=f"127.0.0.1:{port} accepted the connection"):
            await dial(f"{scheme}://127.0.0.1:{port}", connect_timeout=60, handshake_timeout=0.3)
        with pytest.raises(NetworkError, match=NO_ANSWER):
            await dial(f"{scheme}://127.0.0.1:{port}", connect_timeout=60, handshake_timeout=0.3)


async def test_http_fallback_gives_up_on_a_server_that_never_answers(world: World) -> None:
    """Over the plain-HTTP fallback the first exchange (the handshake) is bounded too, both
    by the channel and by the dialing PeerSync."""
    async with silent_server() as port, asyncio.timeout(20):  # the timeout: a hang guard
        url = f"http+post://127.0.0.1:{port}"
        channel = await dial(url, connect_timeout=60, handshake_timeout=0.3)
        try:
            await channel.send(b"hello")
            with pytest.raises(NetworkError, match=NO_ANSWER):
                await channel.receive()
        finally:
            await channel.close()
        channel = await dial(url, connect_timeout=60, handshake_timeout=0.3)
        stats = await PeerSync(
            world.a.replica, world.a.key, channel, initiator=True, handshake_timeout=0.3
        ).run()
        assert stats.error is not None
        assert "within 0.3 s (handshake_timeout)" in stats.error
        assert stats.peer == ""  # never learned who it was


async def test_dialer_gives_up_on_a_websocket_peer_that_never_says_hello(world: World) -> None:
    """A server that completes the WebSocket upgrade and then stays silent: the dialer's
    PeerSync ends with a clear error instead of waiting forever."""

    async def mute(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:  # reads everything, answers nothing
            pass
        return ws

    app = web.Application()
    app.router.add_get("/sync", mute)
    async with SyncServer(app, "127.0.0.1", 0) as server, asyncio.timeout(20):
        channel = await dial(f"ws://{server.address}", connect_timeout=60, handshake_timeout=0.3)
        sync = PeerSync(
            world.a.replica, world.a.key, channel, initiator=True, handshake_timeout=0.3
        )
        stats = await sync.run()
    assert (
        stats.error == "the peer did not finish the sync handshake within 0.3 s (handshake_timeout)"
    )
    assert not sync.synced.is_set()


@pytest.mark.parametrize(
    ("text", "ws", "post"),
    [
        ("http://h:7400", "ws://h:7400/sync", "http://h:7400/sync/http"),
        ("https://h/p/", "wss://h/p/sync", "https://h/p/sync/http"),
        ("ws://h:1", "ws://h:1/sync", None),
        ("http+post://h:1", None, "http://h:1/sync/http"),
    ],
)
def test_peer_url_forms(text: str, ws: str | None, post: str | None) -> None:
    """Each URL form maps to its WebSocket and HTTP fallback endpoints."""
    parsed = parse_peer_url(text)
    assert (parsed.websocket, parsed.fallback) == (ws, post)


@pytest.mark.parametrize("text", ["ftp://h", "h:7400", "http://", "http://h/?q=1"])
def test_bad_peer_urls_are_refused(text: str) -> None:
    """Anything but the supported URL forms is a ConfigError."""
    from node.errors import ConfigError

    with pytest.raises(ConfigError):
        parse_peer_url(text)


async def test_http_client_refuses_an_oversized_chunked_reply() -> None:
    """A hostile server streaming a huge reply without Content-Length (chunked) is refused
    once it passes the client's bound, instead of being read whole into memory."""
    message = b"x" * (MAX_MESSAGE - 16)
    count = 4 * MAX_BODY // len(message) + 2
    reply = msgspec.msgpack.encode({"session": "s", "messages": [message] * count, "closed": False})
    assert len(reply) > 4 * MAX_BODY

    async def hostile(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for i in range(0, len(reply), 64 * 1024):
            await response.write(reply[i : i + 64 * 1024])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/sync/http", hostile)
    async with SyncServer(app, "127.0.0.1", 0) as server, aiohttp.ClientSession() as http:
        channel = HttpChannel(http, f"{server.url}/sync/http", peer=server.url)
        await channel.send(b"hello")
        with pytest.raises(ProtocolError, match="oversized"):
            await channel.receive()
