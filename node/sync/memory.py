"""An in-memory channel pair: two ends of a message pipe, for tests and local wiring."""

from __future__ import annotations

import asyncio


class MemoryChannel:
    """One end. ``pair()`` returns two connected ends."""

    def __init__(self, inbox: asyncio.Queue[bytes | None], outbox: asyncio.Queue[bytes | None]):
        self._inbox = inbox
        self._outbox = outbox
        self.closed = False
        self.sent: list[bytes] = []

    @classmethod
    def pair(cls) -> tuple[MemoryChannel, MemoryChannel]:
        a: asyncio.Queue[bytes | None] = asyncio.Queue()
        b: asyncio.Queue[bytes | None] = asyncio.Queue()
        return cls(a, b), cls(b, a)

    async def send(self, message: bytes) -> None:
        if self.closed:
            raise ConnectionError("channel closed")
        self.sent.append(message)
        await self._outbox.put(message)

    async def receive(self) -> bytes | None:
        if self.closed:
            return None
        message = await self._inbox.get()
        if message is None:
            self.closed = True
        return message

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self._outbox.put(None)
            await self._inbox.put(None)  # wake our own pending receive()
