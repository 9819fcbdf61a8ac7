"""The plain-HTTP fallback transport, for networks whose proxies break WebSockets.

One exchange is one ``POST /sync/http`` (``Content-Type: application/msgpack``)::

    request   {"session": str | nil, "messages": [bin, ...]}
    response  {"session": str, "messages": [bin, ...], "closed": bool}

Each element of ``messages`` is one sync protocol message (:mod:`node.sync.protocol`), in
order. A request without a session starts one; the server runs a responder
:class:`~node.sync.engine.PeerSync` for it, fed through an in-memory channel.

The server answers a request that carried messages once the session has dealt with all of
them (it waits for more input) or has ended; a request that carried nothing is a long poll,
answered as soon as the session produces something (a live push) or after ``long_poll``
seconds. ``closed`` is true once the session has ended and everything it said was returned.

Invariants:

* A client never has two exchanges of one session in flight (:class:`HttpChannel`
  serialises them; only the final flush in ``close()`` may overlap a long poll), so
  messages keep their order in both directions.
* A session with no request for ``session_ttl`` seconds is ended (its PeerSync sees the
  peer close). At most ``max_sessions`` run at once, and at most ``per_remote`` from one
  address (else 503). A request body is at most ``max_body`` bytes (else 413) and must
  arrive within ``read_timeout`` (else 408), and a response carries about that much at
  most: the rest waits for the next exchange.
* Memory per session is bounded both ways: messages the client sent wait in the session's
  inbox up to ``max_queued`` bytes (a request that would pass it is answered 429, so a
  client that posts without waiting for answers cannot pile up messages), and what the
  session says waits up to about ``2 * max_body`` bytes before its PeerSync blocks.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

import aiohttp
import msgspec
from aiohttp import web

from node.errors import NetworkError, NodeError, ProtocolError
from node.sync.edge import handshake_timed_out, network_error, status_problem
from node.sync.protocol import MAX_MESSAGE

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/msgpack"
MAX_BODY = 1024 * 1024
MAX_MESSAGES = 4096  # per exchange, either way
MAX_REPLY = 4 * MAX_BODY  # bytes of one reply a client reads


@dataclass(frozen=True)
class HttpLimits:
    """Server-side limits of the HTTP fallback."""

    max_body: int = MAX_BODY  # bytes in one request body; also the target size of a reply
    max_sessions: int = 64  # HTTP sync sessions running at once
    session_ttl: float = 60.0  # seconds without a request before a session is ended
    long_poll: float = 2.0  # how long a request carrying nothing waits for output
    max_wait: float = 10.0  # how long a request carrying messages waits for the answers
    quiet: float = 0.05  # a long poll's reply also takes what follows within this gap
    max_queued: int = 2 * MAX_BODY  # bytes of received messages one session holds unread


Message = Annotated[bytes, msgspec.Meta(max_length=MAX_MESSAGE)]
SessionId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class ExchangeRequest(msgspec.Struct, frozen=True):
    session: SessionId | None = None
    messages: Annotated[list[Message], msgspec.Meta(max_length=MAX_MESSAGES)] = []


class ExchangeReply(msgspec.Struct, frozen=True):
    session: SessionId
    messages: Annotated[list[Message], msgspec.Meta(max_length=MAX_MESSAGES)]
    closed: bool


_encoder = msgspec.msgpack.Encoder()
_request_decoder = msgspec.msgpack.Decoder(ExchangeRequest)
_reply_decoder = msgspec.msgpack.Decoder(ExchangeReply)


# ---- server side -------------------------------------------------------------------------


class SessionChannel:
    """The server end of one HTTP session: the Channel its PeerSync reads and writes.

    ``send`` blocks while more than ``high_water`` bytes wait to be fetched, so a large
    transfer to a slow client is paced by its exchanges instead of piling up in memory."""

    def __init__(self, high_water: int = 2 * MAX_BODY, max_queued: int = 2 * MAX_BODY) -> None:
        self.inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.queued = 0  # bytes in inbox
        self.max_queued = max_queued
        self.outbox: deque[bytes] = deque()
        self.pending = 0  # bytes in outbox
        self.high_water = high_water
        self.waiting = False  # PeerSync waits in receive() with nothing left to read
        self.closed = False  # PeerSync closed its end
        self.gone = False  # the client is gone (expired, or the server is stopping)
        self.wake = asyncio.Event()  # set on every change an exchange may wait for
        self._drained = asyncio.Event()

    def has_room(self, size: int) -> bool:
        """Whether ``size`` more bytes may wait unread (one request always fits an empty
        inbox)."""
        return not self.queued or self.queued + size <= self.max_queued

    def feed(self, messages: list[bytes]) -> None:
        """Queue what a request carried (the caller checked :meth:`has_room`)."""
        size = sum(len(m) for m in messages)
        for message in messages:
            self.inbox.put_nowait(message)
        self.queued += size
        if messages:
            self.waiting = False

    def take(self, budget: int) -> list[bytes]:
        """Pop queued messages up to ``budget`` bytes (at least one, if any)."""
        out: list[bytes] = []
        size = 0
        outbox = self.outbox
        while outbox and len(out) < MAX_MESSAGES and (not out or size + len(outbox[0]) <= budget):
            message = outbox.popleft()
            out.append(message)
            size += len(message)
        self.pending -= size
        self._drained.set()
        return out

    def end(self) -> None:
        """The client is gone: PeerSync's next receive() sees the channel closed and a
        blocked send() fails."""
        self.gone = True
        self.inbox.put_nowait(None)
        self._drained.set()

    async def send(self, message: bytes) -> None:
        while self.pending > self.high_water and not (self.gone or self.closed):
            self._drained.clear()
            await self._drained.wait()
        if self.closed or self.gone:
            raise NetworkError("the HTTP sync session is closed")
        self.outbox.append(message)
        self.pending += len(message)
        self.wake.set()

    async def receive(self) -> bytes | None:
        if self.inbox.empty():
            self.waiting = True
            self.wake.set()
        try:
            message = await self.inbox.get()
        finally:
            self.waiting = False
        if message is not None:
            self.queued -= len(message)
        return message

    async def close(self) -> None:
        self.closed = True
        self.wake.set()
        self._drained.set()


class HttpSession:
    """One HTTP sync session: its channel, the task running PeerSync, and its last use."""

    def __init__(
        self,
        session_id: str,
        remote: str,
        task_factory: Callable[[SessionChannel, str], asyncio.Task[None]],
        limits: HttpLimits,
    ) -> None:
        self.id = session_id
        self.remote = remote
        self.channel = SessionChannel(2 * limits.max_body, limits.max_queued)
        self.task = task_factory(self.channel, remote)
        self.task.add_done_callback(lambda _task: self.channel.wake.set())
        self.last_seen = asyncio.get_running_loop().time()
        self.in_flight = 0

    @property
    def finished(self) -> bool:
        return self.task.done()

    @property
    def closed(self) -> bool:
        return self.finished and not self.channel.outbox

    async def _until(self, ready: Callable[[], bool], seconds: float) -> None:
        """Wait until ``ready()`` or ``seconds`` have passed, whichever comes first."""
        try:
            async with asyncio.timeout(seconds):
                while not ready():
                    self.channel.wake.clear()
                    await self.channel.wake.wait()
        except TimeoutError:
            pass

    async def exchange(self, messages: list[bytes], limits: HttpLimits) -> list[bytes]:
        """Feed ``messages``, then take what the session said in answer (see module doc)."""
        channel = self.channel
        self.in_flight += 1
        try:
            if messages:
                channel.feed(messages)
                await self._until(
                    lambda: channel.waiting or self.finished or channel.pending >= limits.max_body,
                    limits.max_wait,
                )
            else:
                await self._until(lambda: bool(channel.outbox) or self.finished, limits.long_poll)
                while channel.outbox and not self.finished:
                    before = len(channel.outbox)

                    def grew(n: int = before) -> bool:
                        return len(channel.outbox) > n

                    await self._until(grew, limits.quiet)
                    if len(channel.outbox) == before or channel.pending >= limits.max_body:
                        break
            return channel.take(limits.max_body)
        finally:
            self.in_flight -= 1
            self.last_seen = asyncio.get_running_loop().time()


class HttpSessions:
    """The HTTP sessions a server runs. ``start(channel, remote)`` runs PeerSync over the
    channel of a session opened from address ``remote``."""

    def __init__(
        self,
        start: Callable[[SessionChannel, str], Coroutine[Any, Any, None]],
        limits: HttpLimits,
    ) -> None:
        self.limits = limits
        self._start = start
        self._sessions: dict[str, HttpSession] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._sessions)

    def _spawn(self, channel: SessionChannel, remote: str) -> asyncio.Task[None]:
        task = asyncio.create_task(self._start(channel, remote))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def open(self, remote: str = "?", per_remote: int | None = None) -> HttpSession:
        self.expire()
        if len(self._sessions) >= self.limits.max_sessions:
            raise web.HTTPServiceUnavailable(text="too many sync sessions: try again later")
        if per_remote is not None:
            mine = sum(1 for s in self._sessions.values() if s.remote == remote)
            if mine >= per_remote:
                log.warning("refused an HTTP sync session from %s: %d open already", remote, mine)
                raise web.HTTPServiceUnavailable(text="too many sync sessions from your address")
        session = HttpSession(secrets.token_urlsafe(18), remote, self._spawn, self.limits)
        self._sessions[session.id] = session
        return session

    def find(self, session_id: str) -> HttpSession | None:
        return self._sessions.get(session_id)

    def forget(self, session: HttpSession) -> None:
        self._sessions.pop(session.id, None)

    def expire(self) -> int:
        """End sessions idle for longer than ``session_ttl``; how many were ended."""
        now = asyncio.get_running_loop().time()
        idle = [
            s
            for s in self._sessions.values()
            if s.in_flight == 0 and now - s.last_seen > self.limits.session_ttl
        ]
        for session in idle:
            log.info("HTTP sync session %s expired", session.id[:8])
            self.forget(session)
            session.channel.end()
        return len(idle)

    async def reap(self) -> None:
        """Expire idle sessions, forever (run as a background task)."""
        while True:
            await asyncio.sleep(max(0.01, self.limits.session_ttl / 4))
            self.expire()

    async def close(self, grace: float = 2.0) -> None:
        """End every session; wait ``grace`` seconds for their tasks, then cancel them."""
        for session in list(self._sessions.values()):
            self.forget(session)
            session.channel.end()
        tasks = set(self._tasks)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _refusal(status: int, text: str) -> web.Response:
    """An error answer, returned rather than raised: a raised HTTPException keeps the
    request's body alive in a reference cycle (exception, traceback, frames) until the
    garbage collector runs, which a flood of refused requests turns into memory."""
    return web.Response(status=status, text=text)


async def handle_exchange(
    request: web.Request,
    sessions: HttpSessions,
    *,
    read_timeout: float = 30.0,
    per_remote: int | None = None,
) -> web.Response:
    """``POST /sync/http``: one exchange of an HTTP sync session."""
    limits = sessions.limits
    if request.content_length is not None and request.content_length > limits.max_body:
        raise web.HTTPRequestEntityTooLarge(
            max_size=limits.max_body, actual_size=request.content_length
        )
    try:
        async with asyncio.timeout(read_timeout):
            body = await request.read()
    except TimeoutError:
        log.warning("%s sent a request body too slowly: dropped", request.remote)
        raise web.HTTPRequestTimeout(text="the request body arrived too slowly") from None
    try:
        exchange = _request_decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a str
        return _refusal(400, f"not a sync exchange: {exc}")
    del body
    incoming = list(exchange.messages)
    if exchange.session is None:
        try:
            session = sessions.open(request.remote or "?", per_remote)
        except web.HTTPServiceUnavailable as exc:
            return _refusal(503, exc.text or "busy")
    else:
        found = sessions.find(exchange.session)
        if found is None:
            return _refusal(404, "unknown or expired sync session: start a new one")
        session = found
    if not session.channel.has_room(sum(len(m) for m in incoming)):
        queued = session.channel.queued
        return _refusal(429, f"{queued} bytes of this session wait unread: wait for answers")
    messages = await session.exchange(incoming, limits)
    closed = session.closed
    if closed:
        sessions.forget(session)
    reply = ExchangeReply(session.id, messages, closed)
    return web.Response(body=_encoder.encode(reply), content_type=CONTENT_TYPE)


# ---- client side -------------------------------------------------------------------------


class HttpChannel:
    """A Channel over HTTP exchanges. Sends are buffered and go out with the next exchange,
    made when :meth:`receive` has nothing buffered (or when the buffer is full). ``posts``
    counts the exchanges made: the round trips of this transport."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        *,
        peer: str,
        max_body: int = MAX_BODY,
        request_timeout: float = 30.0,
        handshake_timeout: float | None = None,
    ) -> None:
        self._http = http
        # the first exchange (it opens the session, carrying the handshake) within this
        self._handshake = handshake_timeout
        self._url = url
        self._peer = peer
        self._budget = max_body - 1024  # room for the envelope
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._outbound: list[bytes] = []
        self._out_size = 0
        self._inbound: deque[bytes] = deque()
        self._session: str | None = None
        self._lock = asyncio.Lock()
        self._closed = False  # we closed
        self._ended = False  # the server said the session is over
        self.posts = 0

    async def send(self, message: bytes) -> None:
        if self._closed or self._ended:
            raise NetworkError(f"the sync session with {self._peer} is closed")
        if self._outbound and self._out_size + len(message) > self._budget:
            async with self._lock:
                if self._outbound and self._out_size + len(message) > self._budget:
                    await self._exchange()
        self._outbound.append(message)
        self._out_size += len(message)

    async def receive(self) -> bytes | None:
        while not self._inbound:
            if self._closed or self._ended:
                return None
            async with self._lock:
                if self._inbound or self._closed or self._ended:
                    continue
                try:
                    await self._exchange()
                except NodeError:
                    if self._closed:  # closing cut our long poll short: not an error
                        return None
                    raise
        return self._inbound.popleft()

    async def close(self) -> None:
        """Flush what is buffered (a GOING_AWAY), then drop the connection pool."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._outbound and not self._ended:
                await self._post(self._take_outbound())
        except NodeError as exc:
            log.debug("could not flush the last messages to %s: %s", self._peer, exc)
        finally:
            await self._http.close()

    def _take_outbound(self) -> list[bytes]:
        messages, self._outbound, self._out_size = self._outbound, [], 0
        return messages

    async def _exchange(self) -> None:
        reply = await self._post(self._take_outbound())
        self._inbound.extend(reply.messages)
        if reply.closed:
            self._ended = True

    async def _post(self, messages: list[bytes]) -> ExchangeReply:
        body = _encoder.encode(ExchangeRequest(self._session, messages))
        self.posts += 1
        first = self._session is None and self._handshake is not None
        timeout = aiohttp.ClientTimeout(total=self._handshake) if first else self._timeout
        try:
            async with self._http.post(
                self._url, data=body, headers={"Content-Type": CONTENT_TYPE}, timeout=timeout
            ) as response:
                if response.status != 200:
                    raise status_problem(self._peer, response.status, self._session is not None)
                if (response.content_length or 0) > MAX_REPLY:
                    raise ProtocolError(f"{self._peer} sent an oversized sync reply")
                payload = bytearray()  # bounded as it arrives: a chunked reply names no length
                async for chunk in response.content.iter_any():
                    payload += chunk
                    if len(payload) > MAX_REPLY:
                        raise ProtocolError(f"{self._peer} sent an oversized sync reply")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            if first and isinstance(exc, TimeoutError) and self._handshake is not None:
                raise handshake_timed_out(self._peer, self._handshake) from exc
            raise network_error(self._peer, exc, connecting=self._session is None) from exc
        try:
            reply = _reply_decoder.decode(payload)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a str
            raise ProtocolError(f"{self._peer} did not answer like a circle-node: {exc}") from exc
        self._session = reply.session
        return reply
