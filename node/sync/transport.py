"""aiohttp transports for the sync protocol: the node's server and the client that dials.

Server (:func:`create_app`), every connection running a responder
``PeerSync(initiator=False, live=True)`` against the one shared Replica::

    GET  /sync        WebSocket; each binary message is one protocol message
    POST /sync/http   the plain-HTTP fallback (:mod:`node.sync.http`)
    GET  /health      {"ok": true, "node": HEX, "circles": N, "ops": N}

Client (:func:`dial`), by URL form:

    http://HOST:PORT[/PREFIX]        WebSocket at /sync; if the upgrade is refused (a proxy
                                     that breaks WebSockets), the HTTP fallback at /sync/http
    ws://HOST:PORT[/PREFIX]          WebSocket only (wss:// and https:// for TLS)
    http+post://HOST:PORT[/PREFIX]   the HTTP fallback only (https+post:// for TLS)

Every connection the server accepts, every request and every session passes the gate
(:mod:`node.sync.gate`): connection caps, slow-loris timeouts, per-peer rates and bans.

aiohttp and OS errors are translated at the edge (:mod:`node.sync.edge`) into
:class:`NetworkError` (cannot reach, connection lost) and :class:`ProtocolError` (the other
end is no circle-node, or broke the protocol), each saying what to check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from node.crypto.ops import Signer
from node.errors import NetworkError, ProtocolError
from node.replica import Replica
from node.sync.edge import handshake_timed_out, network_error
from node.sync.engine import Channel, PeerSync, SyncStats
from node.sync.gate import Gate, GatedProtocol, GuardedChannel, gate_middleware
from node.sync.http import (
    HttpChannel,
    HttpLimits,
    HttpSessions,
    SessionChannel,
    handle_exchange,
)
from node.sync.limits import PeerLimits
from node.sync.protocol import MAX_MESSAGE
from node.sync.urls import PeerUrl, parse_peer_url

log = logging.getLogger(__name__)

MAX_WS_MESSAGE = MAX_MESSAGE + 4096  # slack over the protocol's own limit
HEARTBEAT = 30.0  # WebSocket ping interval; a peer that stops answering is dropped
CLOSE_TIMEOUT = 5.0  # how long a WebSocket close waits for the peer's close frame
CONNECT_TIMEOUT = 10.0
HANDSHAKE_TIMEOUT = 10.0  # the default of the `handshake_timeout` setting
SHUTDOWN_GRACE = 2.0

SessionHook = Callable[[PeerSync], AbstractAsyncContextManager[None]]


@asynccontextmanager
async def _no_hook(sync: PeerSync) -> AsyncIterator[None]:
    yield


# ---- the WebSocket channel ---------------------------------------------------------------


class WebSocketChannel:
    """A Channel over one WebSocket (either end). Owns the client session, if any."""

    def __init__(
        self,
        ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
        *,
        peer: str,
        http: aiohttp.ClientSession | None = None,
    ) -> None:
        self._ws = ws
        self._peer = peer
        self._http = http
        self._closed = False

    async def send(self, message: bytes) -> None:
        if self._closed or self._ws.closed:
            raise NetworkError(f"the connection to {self._peer} is closed")
        try:
            await self._ws.send_bytes(message)
        except (aiohttp.ClientError, OSError) as exc:
            raise network_error(self._peer, exc, connecting=False) from exc

    async def receive(self) -> bytes | None:
        if self._closed:
            return None
        try:
            msg = await self._ws.receive()
        except (aiohttp.ClientError, OSError) as exc:
            raise network_error(self._peer, exc, connecting=False) from exc
        if msg.type is WSMsgType.BINARY:
            data: bytes = msg.data
            return data
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            self._closed = True
            return None
        if msg.type is WSMsgType.ERROR:
            self._closed = True
            problem = self._ws.exception()
            if isinstance(problem, aiohttp.WebSocketError) and problem.code == 1009:
                raise ProtocolError(f"{self._peer} sent a message above {MAX_WS_MESSAGE} bytes")
            raise network_error(self._peer, problem or ConnectionError(), connecting=False)
        raise ProtocolError(f"{self._peer} sent a {msg.type.name} message; sync uses binary only")

    async def close(self) -> None:
        if self._closed and self._ws.closed and self._http is None:
            return
        self._closed = True
        try:
            await self._ws.close()
        except (aiohttp.ClientError, OSError) as exc:
            log.debug("closing the WebSocket to %s: %s", self._peer, exc)
        finally:
            if self._http is not None:
                http, self._http = self._http, None
                await http.close()


# ---- client ------------------------------------------------------------------------------


async def dial(
    url: str,
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
) -> Channel:
    """Connect to a peer (see the module docstring for URL forms); NetworkError if it cannot
    be reached within ``connect_timeout`` or, once connected, does not answer the upgrade
    within ``handshake_timeout``; ProtocolError if what answers is no circle-node. (The
    HTTP fallback's first exchange has the same bound; :class:`PeerSync` bounds the sync
    handshake itself when given ``handshake_timeout``.)"""
    target = parse_peer_url(url)
    http = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(
            total=None,
            connect=connect_timeout,
            sock_connect=connect_timeout,
            sock_read=handshake_timeout,  # the upgrade's reply; none once upgraded
        )
    )
    channel: Channel | None = None
    try:
        channel = await _connect(http, target, connect_timeout, handshake_timeout)
    except aiohttp.SocketTimeoutError as exc:  # connected, then no answer
        raise handshake_timed_out(target.url, handshake_timeout) from exc
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise network_error(target.url, exc, connecting=True) from exc
    finally:
        if channel is None:
            await http.close()
    return channel


async def _connect(
    http: aiohttp.ClientSession, target: PeerUrl, seconds: float, handshake: float
) -> Channel:
    if target.websocket is None:
        assert target.fallback is not None
        return HttpChannel(http, target.fallback, peer=target.url, handshake_timeout=handshake)
    try:
        async with asyncio.timeout(seconds + handshake):  # backstop over both phases
            ws = await http.ws_connect(
                target.websocket,
                max_msg_size=MAX_WS_MESSAGE,
                heartbeat=HEARTBEAT,
                compress=0,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=CLOSE_TIMEOUT),
            )
    except aiohttp.WSServerHandshakeError as exc:
        if target.fallback is None:
            raise ProtocolError(
                f"{target.url} refused the WebSocket upgrade (HTTP {exc.status}): check the "
                "URL, or use http+post://HOST:PORT to force the plain-HTTP fallback"
            ) from exc
        log.info(
            "WebSocket upgrade to %s refused (HTTP %s): using the HTTP fallback",
            target.url,
            exc.status,
        )
        return HttpChannel(http, target.fallback, peer=target.url, handshake_timeout=handshake)
    return WebSocketChannel(ws, peer=target.url, http=http)


async def run_bounded(coros: list[Coroutine[Any, Any, None]], seconds: float) -> None:
    """Run ``coros`` concurrently for at most ``seconds``; cancel and reap what is left."""
    if not coros:
        return
    tasks = [asyncio.create_task(c) for c in coros]
    _done, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def round_trips(stats: SyncStats, channel: Channel) -> int:
    """Round trips of a finished sync: protocol exchanges, or POSTs over the HTTP fallback."""
    if isinstance(channel, HttpChannel):
        return channel.posts
    return stats.round_trips


def describe(stats: SyncStats) -> str:
    """One log line's worth of what a sync did."""
    text = (
        f"{stats.ops_received} ops in ({stats.ops_added} added, {stats.ops_rejected} refused), "
        f"{stats.ops_sent} out, {stats.bytes_received}/{stats.bytes_sent} bytes in/out"
    )
    if stats.reasons:
        text += f", refusals: {dict(stats.reasons)}"
    return text + (f"; error: {stats.error}" if stats.error else "")


# ---- server ------------------------------------------------------------------------------


class _Active:
    """The sessions this server is running (a set wrapped for aiohttp's typed AppKey)."""

    def __init__(self) -> None:
        self.syncs: set[PeerSync] = set()


REPLICA: web.AppKey[Replica] = web.AppKey("replica")
NODE_KEY: web.AppKey[Signer] = web.AppKey("node_key")
ON_SESSION: web.AppKey[SessionHook] = web.AppKey("on_session")
ACTIVE: web.AppKey[_Active] = web.AppKey("active")
HTTP_SESSIONS: web.AppKey[HttpSessions] = web.AppKey("http_sessions")
GATE: web.AppKey[Gate] = web.AppKey("gate")


async def _serve_channel(app: web.Application, channel: GuardedChannel) -> SyncStats:
    """Run one responder PeerSync over an accepted channel (behind the gate) until it
    ends; a session that ends in an error is a strike against its address."""
    sync = PeerSync(app[REPLICA], app[NODE_KEY], channel, initiator=False, live=True)
    channel.attach(sync)
    active = app[ACTIVE].syncs
    try:
        async with app[ON_SESSION](sync):
            active.add(sync)
            stats = await sync.run()
    finally:
        active.discard(sync)
        await channel.close()
    remote = channel.ip
    log.info(
        "sync with %s from %s ended: %s",
        stats.peer[:12] or "?",
        remote,
        describe(stats),
        extra={
            "peer": stats.peer or None,
            "address": remote,
            "ops_in": stats.ops_received,
            "ops_out": stats.ops_sent,
            "reason": stats.error,
        },
    )
    if stats.error is not None:
        app[GATE].failed(remote, stats.error)
    return stats


async def _websocket(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse(
        max_msg_size=MAX_WS_MESSAGE, heartbeat=HEARTBEAT, compress=False, timeout=CLOSE_TIMEOUT
    )
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(text="this endpoint speaks WebSocket only: use /sync/http")
    gate = request.app[GATE]
    conn = gate.conn_of(request)
    if conn is not None:
        conn.websocket()  # before the 101 goes out: the client's next bytes are frames
    await ws.prepare(request)
    remote = request.remote or "?"
    channel = WebSocketChannel(ws, peer=remote)
    await _serve_channel(request.app, GuardedChannel(channel, gate, remote, conn))
    return ws


async def _http_exchange(request: web.Request) -> web.Response:
    gate = request.app[GATE]
    limits = gate.limits
    return await handle_exchange(
        request,
        request.app[HTTP_SESSIONS],
        read_timeout=limits.read_timeout,
        per_remote=limits.max_connections_per_ip,
    )


async def _health(request: web.Request) -> web.Response:
    replica = request.app[REPLICA]
    data = {
        "ok": True,
        "node": request.app[NODE_KEY].public.hex(),
        "circles": len(await replica.store.circles()),
        "ops": await replica.store.count_ops(),
    }
    return web.json_response(data)


async def _on_shutdown(app: web.Application) -> None:
    """Tell every connected peer we are going away before the server closes."""
    await run_bounded([s.close("node shutting down") for s in app[ACTIVE].syncs], SHUTDOWN_GRACE)


async def _http_sessions_ctx(app: web.Application) -> AsyncIterator[None]:
    sessions = app[HTTP_SESSIONS]
    reaper = asyncio.create_task(sessions.reap())
    yield
    reaper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reaper
    await sessions.close(SHUTDOWN_GRACE)


def create_app(
    replica: Replica,
    node_key: Signer,
    *,
    on_session: SessionHook | None = None,
    limits: HttpLimits | None = None,
    peer_limits: PeerLimits | None = None,
) -> web.Application:
    """The node's sync server. ``on_session(sync)`` is entered around every accepted
    session (the service uses it to push live ops to it); every connection and session
    passes the gate (:mod:`node.sync.gate`) built from ``peer_limits``."""
    limits = limits or HttpLimits()
    gate = Gate(peer_limits)
    app = web.Application(client_max_size=limits.max_body, middlewares=[gate_middleware(gate)])
    app[REPLICA] = replica
    app[NODE_KEY] = node_key
    app[ON_SESSION] = on_session or _no_hook
    app[ACTIVE] = _Active()
    app[GATE] = gate

    async def start(channel: SessionChannel, remote: str) -> None:
        await _serve_channel(app, GuardedChannel(channel, gate, remote))

    app[HTTP_SESSIONS] = HttpSessions(start, limits)
    app.router.add_get("/sync", _websocket)
    app.router.add_post("/sync/http", _http_exchange)
    app.router.add_get("/health", _health)
    app.on_shutdown.append(_on_shutdown)
    app.cleanup_ctx.append(_http_sessions_ctx)
    return app


class _GatedSite(web.TCPSite):
    """A TCPSite whose every connection passes the app's gate first."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, gate: Gate) -> None:
        super().__init__(runner, host, port)
        self._gate = gate

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        gate = self._gate
        self._server = await asyncio.get_running_loop().create_server(
            lambda: GatedProtocol(gate, server()), self._host, self._port
        )


class SyncServer:
    """Runs an app on ``host:port`` (port 0: any free port). ``async with`` it."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE)

    async def __aenter__(self) -> SyncServer:
        await self._runner.setup()
        gate = self.app.get(GATE) or Gate()  # an app not made by create_app: default limits
        site = _GatedSite(self._runner, self.host, self.port, gate)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            raise NetworkError(
                f"cannot listen on {self.address}: {reason}; is another "
                "`circle-node serve` running, or is the port taken? choose one with --listen"
            ) from exc
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._runner.cleanup()

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"
