"""The server's door: connection limits, slow-loris timeouts, rate limits and bans.

:class:`Gate` holds the server-wide state (:mod:`node.sync.limits`: token buckets, the
penalty box, connection counts) and applies it at three places:

* **Every TCP connection** (:class:`GatedProtocol`, wrapping aiohttp's request handler):
  a banned address, or one connection too many (in all, or from one address), is answered
  ``429``/``503`` and closed before a byte is parsed. A connection must deliver each
  request whole within ``handshake_timeout`` (of connecting, or of the previous reply);
  once upgraded to a WebSocket, each frame it begins must be complete within
  ``read_timeout`` (a trickle of bytes does not keep it alive). Such a connection is
  aborted and, unless a session on it will be counted, its address gets a strike.
* **Every request** (:func:`gate_middleware`): a banned address gets ``429``; the request
  marks its connection busy, so the watchdog waits for the next one.
* **Every sync session** (:class:`GuardedChannel`, wrapping the session's channel): the sync
  handshake must finish within ``handshake_timeout`` of the connection; each message is
  charged to the peer's buckets (its address before the handshake, its node key after) and
  delivered late enough to keep the peer within its rates; refused ops strike the node key
  and, at ``max_rejected``, end the session and ban the key; a session that ends in an
  error strikes the address (``max_failures`` of them ban it).

Every ban and slow-down is logged at WARNING naming the address and, once known, the node;
refused and dropped connections too, but once a minute per address at most (the rest at
DEBUG), so that hammering the door cannot flood the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from node.errors import ProtocolError
from node.sync.limits import MAX_TRACKED, PeerLimits, PenaltyBox, RateBook

if TYPE_CHECKING:
    from node.sync.engine import Channel, PeerSync

log = logging.getLogger(__name__)

_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_BANNED = (
    b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: %d\r\n"
    b"Connection: close\r\nContent-Length: 0\r\n\r\n"
)


def ip_who(ip: str) -> str:
    return f"ip {ip}"


def node_who(node: bytes) -> str:
    return f"node {node.hex()}"


class FrameClock:
    """Finds where the WebSocket frames a client sends begin and end (RFC 6455, 5.2), so
    that a frame, once begun, can be timed. Control frames (PING, PONG) count too."""

    def __init__(self) -> None:
        self._head = bytearray()  # the header of the next frame, as far as it arrived
        self._left = 0  # payload bytes still to come of the current frame

    @property
    def in_frame(self) -> bool:
        return bool(self._head) or self._left > 0

    @staticmethod
    def _header_size(head: bytearray) -> int:
        if len(head) < 2:
            return 2
        length = head[1] & 0x7F
        extended = 2 if length == 126 else 8 if length == 127 else 0
        return 2 + extended + (4 if head[1] & 0x80 else 0)

    @staticmethod
    def _payload_size(head: bytearray) -> int:
        length = head[1] & 0x7F
        if length == 126:
            return int.from_bytes(head[2:4], "big")
        if length == 127:
            return int.from_bytes(head[2:10], "big")
        return length

    def feed(self, data: bytes) -> int:
        """Account for ``data``; how many frames it completed."""
        done, i, end = 0, 0, len(data)
        while i < end:
            if self._left:
                take = min(self._left, end - i)
                self._left -= take
                i += take
                done += self._left == 0
                continue
            head = self._head
            take = min(self._header_size(head) - len(head), end - i)
            head += data[i : i + take]
            i += take
            if len(head) == self._header_size(head):
                self._left = self._payload_size(head)
                head.clear()
                done += self._left == 0
        return done


class Conn:
    """One accepted connection as the gate sees it, and its watchdog.

    Before a WebSocket upgrade: each request must arrive whole within ``handshake_timeout``
    of the connection (or of the previous reply). After it: each frame, once begun, must
    be complete within ``read_timeout``; an idle WebSocket is the heartbeat's business."""

    def __init__(self, gate: Gate, ip: str, transport: asyncio.BaseTransport) -> None:
        self.gate = gate
        self.ip = ip
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        self.opened = self.loop.time()
        self.in_request = False
        self.served = 0  # requests started on this connection
        self._partial = False  # bytes arrived since the last request started
        self._frames: FrameClock | None = None  # once upgraded to a WebSocket
        self._gone = False  # the connection is closed: nothing more to watch
        self._timer: asyncio.TimerHandle | None = None
        self._what = ""
        self._arm(self.opened + gate.limits.handshake_timeout, "send a request")

    def _arm(self, deadline: float, what: str) -> None:
        self._disarm()
        if self._gone:
            return
        self._what = what
        self._timer = self.loop.call_at(deadline, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def on_data(self, data: bytes) -> None:
        self._partial = True
        if self._frames is None:
            return
        completed = self._frames.feed(data)
        if not self._frames.in_frame:
            self._disarm()
        elif completed or self._timer is None:  # a new frame began: its clock starts now
            self._arm(self.loop.time() + self.gate.limits.read_timeout, "finish a frame")

    def websocket(self) -> None:
        """From now on the client sends WebSocket frames: time each one."""
        self._frames = FrameClock()

    def request_started(self) -> None:
        self.in_request = True
        self.served += 1
        self._partial = False
        self._disarm()

    def request_ended(self) -> None:
        """The next request, if any, must arrive whole within ``handshake_timeout``."""
        self.in_request = False
        deadline = self.loop.time() + self.gate.limits.handshake_timeout
        self._arm(deadline, "send its next request")

    def _expire(self) -> None:
        self._timer = None
        seconds = self.loop.time() - self.opened
        if self.served and not (self.in_request or self._partial):  # idle keep-alive
            log.debug("closing an idle connection from %s", self.ip)
            self.transport.close()
            return
        reading = getattr(self.transport, "is_reading", lambda: True)()
        if not reading:  # we paused reading (a slowed-down peer): the stall is ours
            self._arm(self.loop.time() + self.gate.limits.read_timeout, self._what)
            return
        self.gate.notice(
            self.ip,
            "dropping the connection from %s: it did not %s in time (open %.1f s)",
            self.ip,
            self._what,
            seconds,
        )
        if not self.in_request:  # a session that fails will be counted when it ends
            self.gate.failed(self.ip, f"too slow to {self._what}")
        if isinstance(self.transport, asyncio.Transport):
            self.transport.abort()
        else:
            self.transport.close()

    def closed(self) -> None:
        self._gone = True
        self._disarm()


WARN_EVERY = 60.0  # seconds between WARNING lines about refusing one address
REFUSAL_LINGER = 1.0  # seconds a refused connection is kept (reading nothing) before close


class GatedProtocol(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind the gate (see the module docstring).

    A refused connection gets its answer and a FIN, and what it sends is discarded for up
    to REFUSAL_LINGER seconds before it is closed: closing a socket with unread input
    would reset it, and the client might never read why it was refused."""

    def __init__(self, gate: Gate, inner: asyncio.Protocol) -> None:
        self.gate = gate
        self.inner = inner
        self.conn: Conn | None = None
        self._linger: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peername = transport.get_extra_info("peername")
        ip = str(peername[0]) if peername else "?"
        refusal = self.gate.admit(ip)
        if refusal is not None:
            assert isinstance(transport, asyncio.Transport)
            transport.write(refusal)
            if transport.can_write_eof():
                transport.write_eof()
            self._linger = asyncio.get_running_loop().call_later(REFUSAL_LINGER, transport.close)
            return
        self.conn = self.gate.opened(ip, transport)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.conn is not None:
            self.conn.on_data(data)
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.conn is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger is not None:
            self._linger.cancel()
        if self.conn is not None:
            self.gate.closed(self.conn)
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class Gate:
    """The server-wide limits state (see the module docstring)."""

    def __init__(self, limits: PeerLimits | None = None) -> None:
        self.limits = limits or PeerLimits()
        self.rates = RateBook(self.limits)
        self.penalties = PenaltyBox(self.limits.ban_seconds)
        self.per_ip: dict[str, int] = {}
        self.conns: dict[asyncio.BaseTransport, Conn] = {}
        self._warned: OrderedDict[str, float] = OrderedDict()  # refusal logged: ip -> when

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def notice(self, ip: str, message: str, *args: object) -> None:
        """Log a refused or dropped connection at WARNING once a minute per address
        (DEBUG in between), so that a peer hammering the door cannot flood the log."""
        now = self.now()
        last = self._warned.get(ip)
        level = logging.DEBUG if last is not None and now - last < WARN_EVERY else logging.WARNING
        if level == logging.WARNING:
            self._warned[ip] = now
            self._warned.move_to_end(ip)
            while len(self._warned) > MAX_TRACKED:
                self._warned.popitem(last=False)
        log.log(level, message, *args)

    def admit(self, ip: str) -> bytes | None:
        """None if a connection from ``ip`` may open, else the reply that refuses it."""
        banned = self.penalties.banned_for(ip_who(ip), self.now())
        if banned:
            self.notice(ip, "refused a connection from %s: banned for %.0f s more", ip, banned)
            return _BANNED % max(1, round(banned))
        if len(self.conns) >= self.limits.max_connections:
            self.notice(ip, "refused a connection from %s: %d open in all", ip, len(self.conns))
            return _BUSY
        if self.per_ip.get(ip, 0) >= self.limits.max_connections_per_ip:
            count = self.per_ip[ip]
            self.notice(ip, "refused a connection from %s: %d open from there", ip, count)
            return _BUSY
        return None

    def opened(self, ip: str, transport: asyncio.BaseTransport) -> Conn:
        conn = self.conns[transport] = Conn(self, ip, transport)
        self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
        return conn

    def closed(self, conn: Conn) -> None:
        conn.closed()
        if self.conns.pop(conn.transport, None) is not None:
            left = self.per_ip.get(conn.ip, 1) - 1
            if left > 0:
                self.per_ip[conn.ip] = left
            else:
                self.per_ip.pop(conn.ip, None)

    def conn_of(self, request: web.BaseRequest) -> Conn | None:
        transport = request.transport
        return self.conns.get(transport) if transport is not None else None

    def failed(self, ip: str, why: str) -> None:
        """A session or connection from ``ip`` failed: a strike; enough of them ban it."""
        limits = self.limits
        if self.penalties.strike(ip_who(ip), 1, limits.max_failures, self.now()):
            log.warning(
                "banning %s for %.0f s: %d failed connections or sessions (last: %s)",
                ip,
                limits.ban_seconds,
                limits.max_failures,
                why,
            )

    def banned_for(self, who: str) -> float:
        return self.penalties.banned_for(who, self.now())


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def gate_middleware(gate: Gate) -> Any:
    """Refuse banned addresses; tell the read watchdog when a request is being served."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        banned = gate.banned_for(ip_who(request.remote or "?"))
        if banned:  # returned, not raised: see node.sync.http._refusal
            headers = {"Retry-After": str(max(1, round(banned)))}
            return web.Response(status=429, text="this address is banned", headers=headers)
        conn = gate.conn_of(request)
        if conn is not None:
            conn.request_started()
        try:
            return await handler(request)
        finally:
            if conn is not None:
                conn.request_ended()

    return middleware


class GuardedChannel:
    """A sync session's channel behind the gate (see the module docstring). ``attach`` it to
    the session's PeerSync before running it."""

    def __init__(self, inner: Channel, gate: Gate, ip: str, conn: Conn | None = None) -> None:
        self.inner = inner
        self.gate = gate
        self.ip = ip
        self.conn = conn
        start = conn.opened if conn is not None else gate.now()
        self._deadline = start + gate.limits.handshake_timeout
        self._sync: PeerSync | None = None
        self._ops_seen = 0
        self._rejected_seen = 0
        self._limited = False

    def attach(self, sync: PeerSync) -> None:
        self._sync = sync

    @property
    def who(self) -> str:
        peer = self._sync.peer if self._sync is not None else None
        return node_who(peer) if peer is not None else ip_who(self.ip)

    def describe(self) -> str:
        peer = self._sync.peer if self._sync is not None else None
        return f"node {peer.hex()[:12]} at {self.ip}" if peer is not None else self.ip

    async def send(self, message: bytes) -> None:
        await self.inner.send(message)

    async def close(self) -> None:
        await self.inner.close()

    async def receive(self) -> bytes | None:
        self._check_penalties()
        message = await self._read()
        if message is None:
            return None
        ops = self._new_ops()
        wait, rate = self.gate.rates.of(self.who, self.gate.now()).charge(
            1, len(message), ops, self.gate.now()
        )
        if wait > 0:
            level = logging.DEBUG if self._limited else logging.WARNING
            self._limited = True
            who = self.describe()
            log.log(level, "rate limiting %s: over its %s rate, waiting %.2f s", who, rate, wait)
            await asyncio.sleep(wait)
        return message

    async def _read(self) -> bytes | None:
        if self._sync is not None and self._sync.peer is not None:
            return await self.inner.receive()
        try:
            async with asyncio.timeout_at(self._deadline):
                return await self.inner.receive()
        except TimeoutError:
            seconds = self.gate.limits.handshake_timeout
            raise ProtocolError(
                f"{self.ip} did not finish the sync handshake within {seconds:g} s"
            ) from None

    def _new_ops(self) -> int:
        if self._sync is None:
            return 0
        received = self._sync.stats.ops_received
        new, self._ops_seen = received - self._ops_seen, received
        return new

    def _check_penalties(self) -> None:
        """Strike the node key for ops refused since the last message; end a banned peer."""
        sync = self._sync
        if sync is None or sync.peer is None:
            return
        who, limits, now = node_who(sync.peer), self.gate.limits, self.gate.now()
        refused = sync.stats.ops_rejected - self._rejected_seen
        self._rejected_seen = sync.stats.ops_rejected
        if refused and self.gate.penalties.strike(who, refused, limits.max_rejected, now):
            log.warning(
                "banning %s for %.0f s: %d refused ops",
                self.describe(),
                limits.ban_seconds,
                limits.max_rejected,
            )
        banned = self.gate.penalties.banned_for(who, now)
        if banned:
            raise ProtocolError(
                f"node {sync.peer.hex()[:12]} is banned for {banned:.0f} s more "
                "(it sent too many refused ops)"
            )
