"""Hostile peers over the real transports: node A runs a real NodeService on loopback
(aiohttp server, real SQLite file), a scripted hostile peer (:mod:`hostile_peer`) attacks
it over a real WebSocket or the plain-HTTP fallback, and honest node B syncs with A at the
same time.

Expected everywhere: nothing invalid is stored on A or forwarded to B, B's sync completes,
and the hostile peer is slowed down, cut off or banned, with a log record naming it. The
limits are made small through PeerLimits so that every test runs in about a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace

import aiohttp
import msgspec
import pytest
import test_engine_hostile
from helpers import doc_view, dump, ingest, resign
from hostile_peer import (
    WirePeer,
    open_raw,
    raw_websocket,
    read_until_closed,
    ws_frame_header,
)
from test_engine_hostile import KINDS, World, bad_ops

from node.crypto.keys import KeyPair
from node.crypto.ops import decode_op
from node.errors import DecodeError, NodeError
from node.service import NodeService, ServiceConfig, sync_once
from node.sync.engine import PeerSync
from node.sync.gate import Gate
from node.sync.http import CONTENT_TYPE, HttpChannel, HttpLimits
from node.sync.limits import PeerLimits
from node.sync.protocol import (
    MAX_HEIGHTS,
    MAX_OFFER,
    Done,
    GoingAway,
    Have,
    Offer,
    Ops,
    Summary,
)
from node.sync.transport import GATE, MAX_WS_MESSAGE, dial
from node.verify import verify_store

HANG_GUARD = 20  # seconds: a hung test fails instead of blocking the run
LOOSE = PeerLimits(
    frames_per_second=1e9,
    bytes_per_second=1e12,
    ops_per_second=1e9,
    max_rejected=10**9,
    max_failures=10**9,
)


@dataclass
class Served:
    """A's NodeService and how to reach it."""

    service: NodeService

    @property
    def port(self) -> int:
        assert self.service.server is not None
        return self.service.server.port

    @property
    def ws(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def post(self) -> str:
        return f"http+post://127.0.0.1:{self.port}"

    @property
    def gate(self) -> Gate:
        assert self.service.server is not None
        return self.service.server.app[GATE]

    def url(self, transport: str) -> str:
        return self.ws if transport == "websocket" else self.post


Serve = Callable[..., Awaitable[Served]]

world = test_engine_hostile.world  # the fixture: A and B on real SQLite files, hostile key h


@pytest.fixture
async def serve(world: World) -> AsyncIterator[Serve]:
    """Starts A's NodeService with the given PeerLimits (LOOSE plus overrides)."""
    async with AsyncExitStack() as stack:

        async def start(http: HttpLimits | None = None, **limits: float) -> Served:
            config = ServiceConfig(
                listen="127.0.0.1:0",
                poll_interval=0.1,
                peer_refresh=60,
                limits=http or HttpLimits(long_poll=0.2, max_wait=2.0),
                peer_limits=replace(LOOSE, **limits),
            )
            service = NodeService(world.a.replica, world.a.key, config)
            return Served(await stack.enter_async_context(service))

        yield start


async def until(check: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    """Poll ``check`` until true; fail (saying ``what``) after HANG_GUARD seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HANG_GUARD
    while True:
        done = check()
        if not isinstance(done, bool):
            done = await done
        if done:
            return
        assert loop.time() < deadline, f"waited too long for {what}"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def honest_live(world: World, served: Served) -> AsyncIterator[PeerSync]:
    """B holds a live WebSocket session with A for the duration (initial sync done)."""
    channel = await dial(served.ws)
    sync = PeerSync(
        world.b.replica,
        world.b.key,
        channel,
        initiator=True,
        expected_peer=world.a.public,
        live=True,
    )
    task = asyncio.create_task(sync.run())
    try:
        async with asyncio.timeout(HANG_GUARD):
            await sync.synced.wait()
        yield sync
    finally:
        await sync.close("test over")
        stats = await task
        assert stats.error is None, stats.error


async def assert_b_matches_a(world: World) -> None:
    """B's circle (as pushed live by A) is A's, op for op and doc for doc; B verifies."""
    a, b = world.a.replica, world.b.replica

    async def same() -> bool:
        return await b.forwardable_heights(world.circle) == await a.forwardable_heights(
            world.circle
        )

    await until(same, "B to hold what A holds")
    assert doc_view(await b.doc(world.circle, world.doc)) == doc_view(
        await a.doc(world.circle, world.doc)
    )
    assert (await verify_store(b)).ok


def op_ids(wires: list[bytes]) -> list[bytes]:
    ids = []
    for wire in wires:
        with contextlib.suppress(DecodeError):
            ids.append(decode_op(wire).op_id)
    return ids


async def assert_nowhere(world: World, wires: list[bytes]) -> None:
    """None of ``wires`` is stored (or pending) on A or on B; both stores verify."""
    ids = op_ids(wires)
    for node in (world.a, world.b):
        assert await node.replica.store.known_op_ids(ids) == set(), node
        assert await node.replica.store.pending_ids(ids) == set(), node
        assert (await verify_store(node.replica)).ok


async def open_exchange(world: World, peer: WirePeer) -> None:
    """After the handshake: offer both circles with digests A cannot match, ask for both,
    and wait until A asked for both (so OPS frames for them are expected)."""
    circles = [world.circle, world.other]
    await peer.send(
        Summary(os.urandom(32), len(circles)),
        Offer({c: bytes(16) for c in circles}),
        *(Have(c, {}) for c in circles),
    )
    while {h.circle for h in peer.of(Have)} != set(circles):
        assert await peer.next() is not None, "A hung up before asking"


async def finish(world: World, peer: WirePeer) -> None:
    """End both circles' answers and say DONE (A may have hung up already)."""
    with contextlib.suppress(NodeError):
        await peer.send(*(Ops(c, [], more=False) for c in (world.circle, world.other)), Done())


def every_attack(world: World) -> tuple[list[Ops], list[bytes], int]:
    """Every kind of bad op (forged, non-member, replayed into another circle, equivocating,
    foreign ycid, malformed, panicking pycrdt update) between w's honest ops: the frames,
    the wires that must be stored nowhere (the first of an equivocating pair may be kept
    on A as evidence, never valid), and the refusals expected."""
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
        Ops(world.circle, [*late, third.wire()], more=True),
        Ops(world.other, bad["relabelled"][1], more=True),
    ]
    here_first = bad["equivocation"][0][0]
    nowhere = [w for here, other, _ in bad.values() for w in here + other if w != here_first]
    refusals = sum(n for _, _, reasons in bad.values() for n in reasons.values())
    return frames, nowhere, refusals


def records(caplog: pytest.LogCaptureFixture, *words: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and all(w in r.getMessage() for w in words)
    ]


# ---- a trusted peer gone bad -------------------------------------------------------------


@pytest.mark.parametrize("transport", ["websocket", "http"])
async def test_every_attack_is_refused_the_peer_banned_and_the_honest_peer_keeps_syncing(
    world: World, serve: Serve, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    """A host node gone bad sends every kind of bad op over a real transport while B holds
    a live session with A: nothing bad is stored on A or pushed to B, w's honest ops reach
    B by live push, the bad node is cut off at ``max_rejected`` refusals, banned (a new
    session is ended right after its handshake) and named in the log."""
    caplog.set_level(logging.INFO, logger="node")
    frames, nowhere, refusals = every_attack(world)
    served = await serve(max_rejected=refusals)
    async with honest_live(world, served):
        peer = await WirePeer.connect(served.url(transport), world.h)
        async with asyncio.timeout(HANG_GUARD):
            await peer.handshake()
            await open_exchange(world, peer)
            await peer.send(*frames)
            await finish(world, peer)
            await peer.drain()  # A hangs up on it
        assert peer.closed
        (going_away,) = peer.of(GoingAway)
        assert "banned" in going_away.reason
        await assert_b_matches_a(world)
        assert doc_view(await world.b.replica.doc(world.circle, world.doc))["t"] == "hello world!"
        await assert_nowhere(world, nowhere)
        on_b = await world.b.replica.store.all_ops(world.circle)
        assert world.m.public not in {row.author for row in on_b}  # the equivocator

        # banned: a new session ends right after the handshake, its ops unread
        again = await WirePeer.connect(served.url(transport), world.h)
        late = world.honest(" again")
        async with asyncio.timeout(HANG_GUARD):
            await again.handshake()
            with contextlib.suppress(NodeError):
                await again.send(Ops(world.circle, [late.wire()], more=False, live=True))
            await again.drain()
        assert await world.a.replica.store.known_op_ids([late.op_id]) == set()
    name = world.h.public.hex()[:12]
    assert records(caplog, "banning", name), "no log record names the banned node"
    assert records(caplog, name, "banned for")


async def test_flood_of_junk_ops_is_cut_off_at_max_rejected(
    world: World, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """A flood of valid-looking junk (w's ops re-signed by a stranger, one per frame) stops
    being read once ``max_rejected`` of them were refused: A reads 20 of the 200 frames."""
    caplog.set_level(logging.INFO, logger="node")
    served = await serve(max_rejected=20)
    stranger = KeyPair.generate()
    wires = [
        resign(world.w.record(world.circle, world.heads, t="note"), stranger) for _ in range(200)
    ]
    async with honest_live(world, served):
        peer = await WirePeer.connect(served.ws, world.h)
        async with asyncio.timeout(HANG_GUARD):
            await peer.handshake()
            await open_exchange(world, peer)
            with contextlib.suppress(NodeError):
                await peer.send(*(Ops(world.circle, [wire], more=True) for wire in wires))
            await peer.drain()
        await assert_nowhere(world, wires)
    name = world.h.public.hex()[:12]
    assert records(caplog, "banning", name)
    ended = [m for m in _messages(caplog) if f"sync with {name}" in m and "ended:" in m]
    assert len(ended) == 1, ended
    assert re.search(r"\b20 ops in \(0 added, 20 refused\)", ended[0]), ended[0]


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize("frame", ["oversized", "sealed garbage", "unsealed garbage"])
async def test_bad_frame_ends_the_session_and_changes_nothing(
    world: World, serve: Serve, caplog: pytest.LogCaptureFixture, frame: str
) -> None:
    """A frame above the WebSocket limit, a sealed frame that is no event, or bytes that
    are not sealed at all end the hostile session with a logged error naming it; A's
    store is as it was and B syncs with A meanwhile."""
    caplog.set_level(logging.INFO, logger="node")
    served = await serve()
    before = await dump(world.a.replica.store)
    peer = await WirePeer.connect(served.ws, world.h)
    async with asyncio.timeout(HANG_GUARD):
        await peer.handshake()
        assert peer.session._seal is not None  # the real stream: only the content is bad
        message = {
            "oversized": os.urandom(MAX_WS_MESSAGE + 1),
            "sealed garbage": peer.session._seal.seal(b"\x95\x0d\xc4\x00"),
            "unsealed garbage": b"\x93\x01\x02" * 20,
        }[frame]
        with contextlib.suppress(NodeError):
            await peer.send_raw(message)
        await peer.drain()
        result = await sync_once(world.b.replica, world.b.key, served.ws, time_limit=HANG_GUARD)
    assert result.stats.error is None
    assert peer.closed
    after = await dump(world.a.replica.store)
    assert {t: rows for t, rows in after.items() if t != "peers"} == {
        t: rows for t, rows in before.items() if t != "peers"
    }
    assert records(caplog, "sync with", world.h.public.hex()[:12], "failed")


# ---- outsiders ---------------------------------------------------------------------------


async def test_address_failing_handshakes_is_banned_while_live_sessions_go_on(
    world: World, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """Outsiders sending garbage instead of a handshake strike their address; at
    ``max_failures`` it is banned (new connections get 429 and a clear error), while B's
    live session, opened before, keeps receiving A's new ops."""
    caplog.set_level(logging.INFO, logger="node")
    served = await serve(max_failures=3)
    async with honest_live(world, served), aiohttp.ClientSession() as http:
        async with http.get(f"{served.ws}/health") as response:  # a kept-alive connection
            assert response.status == 200
        for garbage in (b"\x00" * 64, b"\x93\x01", b"GET / HTTP/1.1\r\n\r\n"):
            outsider = await WirePeer.connect(served.ws)
            async with asyncio.timeout(HANG_GUARD):
                await outsider.send_raw(garbage)
                assert await outsider.receive() is None
            await outsider.close()
        gate = served.gate
        await until(lambda: gate.banned_for("ip 127.0.0.1") > 0, "the address to be banned")
        for _ in range(3):
            reader, writer = await open_raw(served.port)
            async with asyncio.timeout(HANG_GUARD):
                answer = await read_until_closed(reader)
            writer.close()
            assert answer.startswith(b"HTTP/1.1 429"), answer
        assert len(records(caplog, "refused a connection from 127.0.0.1")) == 1  # no flood
        async with http.get(f"{served.ws}/health") as response:  # on the kept-alive one
            assert response.status == 429
        result = await sync_once(world.b.replica, world.b.key, served.ws, time_limit=HANG_GUARD)
        assert "refusing us" in (result.stats.error or "")
        # B's live session still works: a new op on A reaches B
        op = world.honest("still here")
        assert (await ingest(world.a.replica, [op])).added == 1
        await assert_b_matches_a(world)
    assert records(caplog, "banning 127.0.0.1")


# ---- rate limits -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "limits"),
    [
        ("frames", {"frames_per_second": 10, "burst_seconds": 0.5}),
        ("bytes", {"bytes_per_second": 2000, "burst_seconds": 1.0}),
        ("ops", {"ops_per_second": 10, "burst_seconds": 0.5}),
    ],
)
async def test_fast_peer_is_slowed_to_its_rate_not_dropped(
    world: World,
    serve: Serve,
    caplog: pytest.LogCaptureFixture,
    rate: str,
    limits: dict[str, float],
) -> None:
    """A peer sending valid ops faster than one of its rates is slowed down, not dropped:
    every op is stored, but not before the rate allows (A reads the last frame no earlier
    than ``(sent - burst) / rate`` seconds after the first: a minimum the limiter enforces
    by waiting, so a slow machine can only make it longer); a log record names the peer
    and the rate; B, on its own budget, syncs meanwhile."""
    caplog.set_level(logging.INFO, logger="node")
    served = await serve(**limits)
    ops = [world.honest(c) for c in "slowdown!!!!"]
    peer = await WirePeer.connect(served.ws, world.h)
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(HANG_GUARD):
        await peer.handshake()
        start, counters = loop.time(), peer.session.counters
        sent0, bytes0 = counters.messages_sent, counters.bytes_sent
        await open_exchange(world, peer)
        await peer.send(*(Ops(world.circle, [op.wire()], more=True) for op in ops))
        result = await sync_once(world.b.replica, world.b.key, served.ws, time_limit=HANG_GUARD)
        assert result.stats.error is None

        async def all_stored() -> bool:
            ids = [op.op_id for op in ops]
            return await world.a.replica.store.known_op_ids(ids) == set(ids)

        await until(all_stored, "every op of the fast peer stored")
        elapsed = loop.time() - start
        await peer.close()
    per_second = limits[f"{rate}_per_second"]
    allowance = per_second * limits["burst_seconds"]
    sent = {
        "frames": counters.messages_sent - sent0,
        "bytes": counters.bytes_sent - bytes0,
        "ops": len(ops) - 1,  # ops are charged once read: the last one delays nothing
    }[rate]
    minimum = (sent - allowance) / per_second
    assert minimum > 0.3, "the test must send more than the burst allows"
    assert elapsed >= 0.8 * minimum, f"all stored after {elapsed:.2f} s, limit {minimum:.2f} s"
    name = world.h.public.hex()[:12]
    assert records(caplog, "rate limiting", name, f"over its {rate} rate")


# ---- slow-loris --------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["silent", "trickled request"])
async def test_slow_request_is_dropped_and_honest_sync_goes_on(
    world: World, serve: Serve, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    """Sockets that send nothing, or trickle a request a byte at a time, are closed at
    ``handshake_timeout`` without an answer, while B syncs."""
    caplog.set_level(logging.INFO, logger="node")
    served = await serve(handshake_timeout=0.3, max_connections_per_ip=8)
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"
    sockets = [await open_raw(served.port) for _ in range(4)]

    async def loris(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        if how == "trickled request":
            for i in range(len(request)):
                if reader.at_eof() or writer.is_closing():
                    break
                writer.write(request[i : i + 1])
                try:
                    await writer.drain()
                except ConnectionError:
                    break
                await asyncio.sleep(0.02)
        return await read_until_closed(reader)

    async with asyncio.timeout(HANG_GUARD):
        lorises = asyncio.gather(*(loris(r, w) for r, w in sockets))
        result = await sync_once(world.b.replica, world.b.key, served.ws, time_limit=HANG_GUARD)
        answers = await lorises
    assert result.stats.error is None
    assert answers == [b""] * len(sockets)  # closed, never answered
    for _, writer in sockets:
        writer.close()
    assert records(caplog, "dropping the connection from 127.0.0.1", "send a request")


@pytest.mark.parametrize("how", ["stalled", "trickled"])
async def test_websocket_frame_that_stops_mid_way_is_dropped(
    world: World, serve: Serve, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    """A WebSocket peer that starts a frame and stops (or trickles it a byte at a time) is
    dropped at ``read_timeout``, well before its frame could complete."""
    caplog.set_level(logging.INFO, logger="node")
    served = await serve(handshake_timeout=30, read_timeout=0.3)
    reader, writer = await raw_websocket(served.port)
    writer.write(ws_frame_header(1000) + b"x" * 10)
    await writer.drain()
    trickled = 0
    async with asyncio.timeout(HANG_GUARD):
        if how == "trickled":
            while trickled < 990 and not writer.is_closing():
                writer.write(b"x")
                try:
                    await writer.drain()
                except ConnectionError:
                    break
                trickled += 1
                await asyncio.sleep(0.01)
        await read_until_closed(reader)
    writer.close()
    assert trickled < 990, "the frame was allowed to complete"
    assert records(caplog, "dropping the connection from 127.0.0.1", "finish a frame")


async def test_websocket_idle_but_for_pings_outlives_the_read_timeout(
    world: World, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """Whole frames never trip the frame clock, nor does silence between them: a WebSocket
    sending only PINGs for several read timeouts, then nothing for several more, is
    answered PONG each time and never dropped (an idle live session looks like this)."""
    caplog.set_level(logging.INFO, logger="node")
    served = await serve(handshake_timeout=30, read_timeout=0.2)
    reader, writer = await raw_websocket(served.port)
    pongs = 0
    async with asyncio.timeout(HANG_GUARD):
        for pause in [0.1] * 7 + [0.6]:  # four read timeouts of pings, then three idle
            writer.write(bytes([0x89, 0x80]) + os.urandom(4))  # masked PING, no payload
            await writer.drain()
            assert await reader.readexactly(2) == bytes([0x8A, 0x00])  # the PONG
            pongs += 1
            await asyncio.sleep(pause)
        writer.write(bytes([0x89, 0x80]) + os.urandom(4))
        await writer.drain()
        assert await reader.readexactly(2) == bytes([0x8A, 0x00])
    writer.close()
    assert pongs == 8
    assert not records(caplog, "dropping the connection")


async def test_slow_http_body_is_answered_408(world: World, serve: Serve) -> None:
    """A POST whose body stops arriving is answered 408 after ``read_timeout``."""
    served = await serve(read_timeout=0.3)
    reader, writer = await open_raw(served.port)
    writer.write(
        b"POST /sync/http HTTP/1.1\r\nHost: x\r\nContent-Type: "
        + CONTENT_TYPE.encode()
        + b"\r\nContent-Length: 1000\r\n\r\n"
        + b"\x82" * 10
    )
    await writer.drain()
    async with asyncio.timeout(HANG_GUARD):
        status = await reader.readline()
    writer.close()
    assert status.startswith(b"HTTP/1.1 408"), status


async def test_peer_that_never_finishes_the_sync_handshake_is_dropped(
    world: World, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """A WebSocket that opens but sends no HELLO is ended at ``handshake_timeout``."""
    caplog.set_level(logging.INFO, logger="node")
    served = await serve(handshake_timeout=0.3)
    peer = await WirePeer.connect(served.ws)
    async with asyncio.timeout(HANG_GUARD):
        assert await peer.receive() is None
    assert records(caplog, "did not finish the sync handshake within 0.3 s")


# ---- connection caps ---------------------------------------------------------------------


async def test_connections_over_the_per_address_cap_are_refused_quickly(
    world: World, serve: Serve
) -> None:
    """With two connections open from one address, a third from it is answered 503 and
    closed; another address is still served."""
    served = await serve(max_connections_per_ip=2, handshake_timeout=30)
    held = [await open_raw(served.port, "127.0.0.2") for _ in range(2)]
    reader, writer = await open_raw(served.port, "127.0.0.2")
    async with asyncio.timeout(HANG_GUARD):
        assert (await read_until_closed(reader)).startswith(b"HTTP/1.1 503")
    writer.close()
    async with aiohttp.ClientSession() as http, asyncio.timeout(HANG_GUARD):
        async with http.get(f"{served.ws}/health") as response:  # from 127.0.0.1
            assert response.status == 200
    for _, w in held:
        w.close()


async def test_a_full_server_refuses_then_serves_once_a_slot_frees(
    world: World, serve: Serve
) -> None:
    """At ``max_connections`` open, a new connection (B's sync) is refused with a clear
    error; once one closes, B syncs."""
    served = await serve(max_connections=2, handshake_timeout=30)
    held = [await open_raw(served.port, f"127.0.0.{n}") for n in (2, 3)]
    gate = served.gate
    await until(lambda: len(gate.conns) == 2, "both connections admitted")
    refused = await sync_once(world.b.replica, world.b.key, served.ws, time_limit=HANG_GUARD)
    assert "busy" in (refused.stats.error or "")
    held[0][1].close()
    await until(lambda: len(gate.conns) < 2, "a slot to free")
    result = await sync_once(world.b.replica, world.b.key, served.ws, time_limit=HANG_GUARD)
    assert result.stats.error is None
    held[1][1].close()


# ---- memory ------------------------------------------------------------------------------


async def test_http_flood_into_one_session_keeps_memory_bounded(world: World, serve: Serve) -> None:
    """10,000 valid-looking junk messages (sealed OFFERs, 1 KiB each) posted into one HTTP
    session without waiting for answers, while its peer is slowed to one message a second:
    the session holds at most ``max_queued`` bytes unread (the rest is answered 429), so
    the node's allocations stay far below the flood's 10 MiB."""
    http = HttpLimits(long_poll=0.2, max_wait=0.2, max_queued=64 * 1024)
    served = await serve(http, frames_per_second=1, burst_seconds=2)
    peer = await WirePeer.connect(served.post, world.h)
    async with asyncio.timeout(HANG_GUARD):
        await peer.handshake()
        assert isinstance(await peer.next(), Summary)  # our AUTH went out: the session is open
    assert isinstance(peer.channel, HttpChannel)
    session = peer.channel._session  # the HTTP session the flood goes into
    junk = [
        peer.session.send(Offer({os.urandom(16): os.urandom(16) for _ in range(28)}, more=True))
        for _ in range(10_000)
    ]
    bodies = [
        msgspec.msgpack.encode({"session": session, "messages": junk[i : i + 100]})
        for i in range(0, len(junk), 100)
    ]
    statuses: list[int] = []
    async with aiohttp.ClientSession() as client:

        async def post(body: bytes) -> None:
            headers = {"Content-Type": CONTENT_TYPE}
            async with client.post(f"{served.ws}/sync/http", data=body, headers=headers) as reply:
                statuses.append(reply.status)
                await reply.read()

        tracemalloc.start()
        try:
            async with asyncio.timeout(HANG_GUARD * 2):
                await post(bodies[0])  # first in order: the session reads from it, slowly
                for wave in range(1, len(bodies), 11):  # then 11 requests at a time
                    await asyncio.gather(*(post(body) for body in bodies[wave : wave + 11]))
            _, peak = tracemalloc.get_traced_memory()
            if os.environ.get("HOSTILE_DEBUG"):
                for stat in tracemalloc.take_snapshot().statistics("lineno")[:15]:
                    print(stat)
        finally:
            tracemalloc.stop()
    await peer.close()
    assert peak < 6 * 1024 * 1024, f"peak {peak} bytes while 10 MiB of junk arrived"
    assert statuses[0] == 200
    assert set(statuses[1:]) == {429}


@pytest.mark.parametrize("stream", ["offer", "have"])
async def test_endless_offer_or_have_stream_ends_the_session(
    world: World, serve: Serve, caplog: pytest.LogCaptureFixture, stream: str
) -> None:
    """A peer that never finishes an OFFER (or HAVE) stream, each message full of new
    circles (or authors), is cut off once A would hold more than MAX_PEER_CIRCLES (or
    MAX_PEER_HEIGHTS) of them, instead of growing A's memory for as long as it likes."""
    caplog.set_level(logging.INFO, logger="node")
    served = await serve()
    peer = await WirePeer.connect(served.ws, world.h)

    def frame() -> Offer | Have:
        if stream == "offer":
            return Offer({os.urandom(16): os.urandom(16) for _ in range(MAX_OFFER)}, more=True)
        return Have(os.urandom(16), {os.urandom(32): 1 for _ in range(MAX_HEIGHTS)}, more=True)

    async with asyncio.timeout(HANG_GUARD):
        await peer.handshake()
        with contextlib.suppress(NodeError):
            for _ in range(11):
                await peer.send(frame())
        await peer.drain()
    assert records(caplog, "failed", "more than", world.h.public.hex()[:12])
    result = await sync_once(world.b.replica, world.b.key, served.ws, time_limit=HANG_GUARD)
    assert result.stats.error is None
