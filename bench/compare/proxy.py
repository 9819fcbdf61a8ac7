"""A small TCP proxy on loopback that counts what crosses it, the same for every system.

Clients dial the proxy; it dials the server and copies bytes both ways unchanged. Per
connection it counts bytes client->server ("up") and server->client ("down") at the TCP
level (so WebSocket framing, HTTP upgrade and any encryption overhead are included), and
**round trips**: the number of times traffic on one connection turns from up to down,
i.e. each burst the client sent that was followed by a burst from the server. A
connection's first down burst counts too if the client spoke first (the usual case);
a server that speaks first (a greeting) adds no round trip by itself. Totals are summed
over connections; ``max_round_trips`` is the largest count on any one connection (the
sequential depth when a system opens many connections in parallel).

The count is taken from the order in which the proxy reads chunks, so two sides talking
at the same time may be seen as one or two turns; the method is the same for all systems.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

UP, DOWN = 1, 2
CHUNK = 1 << 16


@dataclass
class Conn:
    bytes_up: int = 0
    bytes_down: int = 0
    round_trips: int = 0
    last: int = 0  # direction of the last chunk seen
    open: bool = True

    def record(self, direction: int, size: int) -> None:
        if size <= 0:
            return
        if direction == UP:
            self.bytes_up += size
        else:
            self.bytes_down += size
            if self.last == UP:
                self.round_trips += 1
        self.last = direction


@dataclass
class Counts:
    connections: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    round_trips: int = 0
    max_round_trips: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class CountingProxy:
    """``async with CountingProxy(port) as proxy``: listens on ``proxy.port``, forwards to
    127.0.0.1:``target_port``. ``proxy.reset()`` starts a new measurement window;
    ``proxy.counts()`` sums every connection opened since the last reset."""

    target_port: int
    target_host: str = "127.0.0.1"
    port: int = 0
    _conns: list[Conn] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> CountingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    def reset(self) -> None:
        """Start a new window: forget closed connections, zero the open ones (a live
        session's connection stays counted from here on)."""
        self._conns = [c for c in self._conns if c.open]
        for conn in self._conns:
            conn.bytes_up = conn.bytes_down = conn.round_trips = 0
            conn.last = 0

    def counts(self) -> Counts:
        out = Counts(connections=len(self._conns))
        for conn in self._conns:
            out.bytes_up += conn.bytes_up
            out.bytes_down += conn.bytes_down
            out.round_trips += conn.round_trips
            out.max_round_trips = max(out.max_round_trips, conn.round_trips)
        return out

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = Conn()
        self._conns.append(conn)
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            conn.open = False
            writer.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(
                _pipe(reader, up_writer, conn, UP), _pipe(up_reader, writer, conn, DOWN)
            )
        finally:
            conn.open = False
            for w in (writer, up_writer):
                w.close()
            self._tasks.discard(task)


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: Conn, direction: int
) -> None:
    try:
        while chunk := await reader.read(CHUNK):
            conn.record(direction, len(chunk))
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()
