"""Fixtures for the sync tests: opened session pairs for the pure protocol tests; nodes on
real SQLite files, syncs between them over in-memory channel pairs, and scripted peers (a
real SyncSession driven by the test) for the engine tests.

Test modules cannot import this file (every conftest is named ``conftest``), so everything
is reached through fixtures; modules import the classes under ``TYPE_CHECKING`` only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from node.crypto.keys import KeyPair
from node.replica import Replica
from node.sync.engine import Channel, PeerSync, SyncStats
from node.sync.memory import MemoryChannel
from node.sync.protocol import Event, SessionEvent, State, SyncSession

T = TypeVar("T")
SYNC_TIMEOUT = 30  # seconds; a hung sync fails the test instead of blocking the run


def open_sessions() -> tuple[SyncSession, SyncSession]:
    """An initiator and a responder, fresh node keys, handshake completed in memory."""
    initiator = SyncSession(KeyPair.generate(), initiator=True)
    responder = SyncSession(KeyPair.generate(), initiator=False)
    responder.receive(initiator.start())
    welcome = responder.pending_reply()
    assert welcome is not None
    initiator.receive(welcome)
    auth = initiator.pending_reply()
    assert auth is not None
    responder.receive(auth)
    return initiator, responder


@pytest.fixture
def open_pair() -> Callable[[], tuple[SyncSession, SyncSession]]:
    """Makes open ``(initiator, responder)`` session pairs (stateless, safe under Hypothesis)."""
    return open_sessions


# ---- engine fixtures ------------------------------------------------------------------------


@dataclass
class Node:
    """A node in a test: its node key and its replica on a real SQLite file."""

    name: str
    key: KeyPair
    replica: Replica

    @property
    def public(self) -> bytes:
        return self.key.public

    def __repr__(self) -> str:
        return f"Node({self.name})"


class CutChannel:
    """Wraps one end of a channel: after ``big`` messages of at least ``size`` bytes (the
    OPS frames of a large transfer) were delivered, the connection drops: this end reads
    None and the other end is closed too, as when a TCP connection is cut."""

    def __init__(self, inner: MemoryChannel, *, big: int, size: int = 64 * 1024) -> None:
        self.inner = inner
        self.big_left = big
        self.size = size
        self.delivered = 0

    async def send(self, message: bytes) -> None:
        await self.inner.send(message)

    async def receive(self) -> bytes | None:
        if self.big_left <= 0:
            await self.inner.close()
            return None
        message = await self.inner.receive()
        if message is not None:
            self.delivered += 1
            if len(message) >= self.size:
                self.big_left -= 1
        return message

    async def close(self) -> None:
        await self.inner.close()


class Net:
    """Nodes on real SQLite files under ``tmp_path``, and syncs between them."""

    def __init__(self, root: Path, stack: AsyncExitStack) -> None:
        self.root = root
        self.stack = stack

    async def node(self, name: str) -> Node:
        replica = await self.stack.enter_async_context(Replica.open(self.root / f"{name}.db"))
        return Node(name, KeyPair.generate(), replica)

    async def sync(
        self,
        a: Node,
        b: Node,
        *,
        cut_after_frames: int | None = None,
    ) -> tuple[SyncStats, SyncStats]:
        """One full sync: ``a`` dials ``b`` (pinning its key) over an in-memory pair; with
        ``cut_after_frames`` the connection drops once b received that many OPS frames."""
        end_a, end_b = MemoryChannel.pair()
        channel_b: Channel = end_b
        if cut_after_frames is not None:
            channel_b = CutChannel(end_b, big=cut_after_frames)
        dialer = PeerSync(a.replica, a.key, end_a, initiator=True, expected_peer=b.public)
        listener = PeerSync(b.replica, b.key, channel_b, initiator=False)
        async with asyncio.timeout(SYNC_TIMEOUT):
            stats_a, stats_b = await asyncio.gather(dialer.run(), listener.run())
        return stats_a, stats_b

    async def settle(self, edges: Sequence[tuple[Node, Node]], *, max_rounds: int = 8) -> int:
        """Sync every edge in turn until a whole round moves no op; returns the rounds run."""
        for round_ in range(1, max_rounds + 1):
            moved = 0
            for a, b in edges:
                stats_a, stats_b = await self.sync(a, b)
                assert stats_a.error is None, (a, b, stats_a.error)
                assert stats_b.error is None, (a, b, stats_b.error)
                moved += stats_a.ops_sent + stats_b.ops_sent
            if moved == 0:
                return round_
        raise AssertionError(f"still moving ops after {max_rounds} rounds")


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Net]:
    """A factory of nodes (closed at the end of the test) and the syncs between them."""
    async with AsyncExitStack() as stack:
        yield Net(tmp_path, stack)


class ScriptedPeer:
    """A peer driven by the test: a real SyncSession with its own node key, completing a
    proper handshake, then sending whatever the test says. Every event it receives is kept
    in ``events``, so a test sees exactly what the honest side told it."""

    def __init__(self, key: KeyPair, channel: MemoryChannel, *, initiator: bool) -> None:
        self.key = key
        self.channel = channel
        self.session = SyncSession(key, initiator)
        self.events: list[Event] = []

    @property
    def public(self) -> bytes:
        return self.key.public

    async def handshake(self) -> None:
        if self.session.initiator:
            await self.channel.send(self.session.start())
        while self.session.state is State.HANDSHAKE:
            message = await self.channel.receive()
            assert message is not None, "the honest side hung up during the handshake"
            self.events.extend(self.session.receive(message))
            reply = self.session.pending_reply()
            if reply is not None:
                await self.channel.send(reply)

    async def send(self, *events: SessionEvent) -> None:
        for event in events:
            await self.channel.send(self.session.send(event))

    async def next(self) -> Event | None:
        """The next event from the honest side, or None once it closed the channel."""
        if self.session.state is not State.OPEN:
            return None
        message = await self.channel.receive()
        if message is None:
            return None
        (event,) = self.session.receive(message)
        self.events.append(event)
        return event

    async def drain(self) -> list[Event]:
        """Everything the honest side sends until it closes the connection."""
        while await self.next() is not None:
            pass
        return self.events

    def of(self, kind: type[T]) -> list[T]:
        return [e for e in self.events if isinstance(e, kind)]


def scripted(
    honest: Node, peer_key: KeyPair, *, honest_dials: bool = True
) -> tuple[PeerSync, ScriptedPeer]:
    """An honest PeerSync for ``honest`` and a scripted peer on the two ends of one pair."""
    end_honest, end_peer = MemoryChannel.pair()
    sync = PeerSync(honest.replica, honest.key, end_honest, initiator=honest_dials)
    return sync, ScriptedPeer(peer_key, end_peer, initiator=not honest_dials)


@pytest.fixture
def scripted_peer() -> Callable[..., tuple[PeerSync, ScriptedPeer]]:
    """Makes ``(honest PeerSync, ScriptedPeer)`` pairs: ``scripted_peer(node, peer_key)``."""
    return scripted
