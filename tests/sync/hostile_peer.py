"""A scripted hostile peer over the real transports, and raw-socket slow-loris clients.

:class:`WirePeer` is a real :class:`SyncSession` with its own node key, dialing a real
server on loopback through :func:`node.sync.transport.dial` (a WebSocket, or the plain-HTTP
fallback with an ``http+post://`` URL). It completes the genuine handshake (a trusted peer
gone bad) or sends whatever bytes the test says instead (an outsider), then sends the
events the test scripts. Everything the server says back is kept in ``events``.

The raw helpers speak bytes straight to the server's TCP port, for attacks no honest
client library would make: half a request, a trickle, half a WebSocket frame.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

from node.crypto.keys import KeyPair
from node.errors import NodeError
from node.sync.engine import Channel
from node.sync.protocol import Event, SessionEvent, State, SyncSession
from node.sync.transport import dial

T = TypeVar("T")


class WirePeer:
    """A peer driven by the test over a real transport (see the module docstring)."""

    def __init__(self, key: KeyPair, channel: Channel) -> None:
        self.key = key
        self.channel = channel
        self.session = SyncSession(key, initiator=True)
        self.events: list[Event] = []
        self.closed = False  # the server closed the connection (or broke it)

    @classmethod
    async def connect(cls, url: str, key: KeyPair | None = None) -> WirePeer:
        return cls(key or KeyPair.generate(), await dial(url, connect_timeout=5))

    @property
    def public(self) -> bytes:
        return self.key.public

    async def receive(self) -> bytes | None:
        """The server's next message; None once it closed (or cut) the connection."""
        if self.closed:
            return None
        try:
            message = await self.channel.receive()
        except NodeError:
            message = None
        self.closed = message is None
        return message

    async def handshake(self) -> None:
        await self.channel.send(self.session.start())
        while self.session.state is State.HANDSHAKE:
            message = await self.receive()
            assert message is not None, "the server hung up during the handshake"
            self.events.extend(self.session.receive(message))
            reply = self.session.pending_reply()
            if reply is not None:
                await self.channel.send(reply)

    async def send(self, *events: SessionEvent) -> None:
        for event in events:
            await self.channel.send(self.session.send(event))

    async def send_raw(self, message: bytes) -> None:
        await self.channel.send(message)

    async def next(self) -> Event | None:
        """The server's next event, or None once it closed the connection."""
        if self.session.state not in (State.OPEN, State.CLOSING):
            return None
        message = await self.receive()
        if message is None:
            return None
        events = self.session.receive(message)
        self.events.extend(events)
        return events[-1] if events else None

    async def drain(self) -> list[Event]:
        """Everything the server sends until it closes the connection (then close ours)."""
        while await self.next() is not None:
            pass
        while await self.receive() is not None:  # after a GOING_AWAY: until the close
            pass
        await self.close()
        return self.events

    def of(self, kind: type[T]) -> list[T]:
        return [e for e in self.events if isinstance(e, kind)]

    async def close(self) -> None:
        await self.channel.close()


# ---- raw sockets -------------------------------------------------------------------------


async def open_raw(
    port: int, source: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A bare TCP connection to the server, from ``source`` (any 127.x.y.z on Linux)."""
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """What the server sends until it closes the connection (a reset counts as closed)."""
    data = b""
    try:
        while chunk := await reader.read(4096):
            data += chunk
    except ConnectionError:
        pass
    return data


def upgrade_request(port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /sync HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def ws_frame_header(length: int) -> bytes:
    """The header of a masked binary client frame of ``length`` payload bytes, and its mask."""
    if length < 126:
        head = struct.pack("!BB", 0x82, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", 0x82, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0x82, 0x80 | 127, length)
    return head + os.urandom(4)


async def raw_websocket(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw connection upgraded to a WebSocket at /sync (the 101 answer consumed)."""
    reader, writer = await open_raw(port)
    writer.write(upgrade_request(port))
    await writer.drain()
    status = await reader.readuntil(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 101"), status
    return reader, writer


@asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A real loopback TCP server (its port yielded) that accepts every connection, reads
    what it is sent and never answers a byte: a dialer must give up on its own."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        while await reader.read(4096):
            pass

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()
