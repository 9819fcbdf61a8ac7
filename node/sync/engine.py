"""Drives one sync session over a message channel against the local replica.

The sans-IO :class:`SyncSession` does framing and crypto; this module decides what to say:
which circles the peer may host (read authorization: only circles whose auth log lists the
peer's node as a host are ever named or sent), digests, heights, and which ops to stream.
Only ops stored as valid are sent. Received ops go through the one ingest pipeline, one
committed transaction per OPS frame, so a cut loses at most one frame and the next sync
resumes from heights. A circle new to this node is stored provisional and kept only if
its auth log lists this node (``node.sync.settle``): a peer cannot plant a circle here.

Flow after the handshake (both sides run the same logic):
  SUMMARY (one digest over all offered circles)  -> equal on both sides: DONE
  else OFFER {circle: digest}  -> for every circle whose digests differ: HAVE {author: seq}
  -> OPS frames answering each HAVE (last one ``more = false``) -> DONE
then, in live mode, new ops are pushed as ``OPS(live = true)`` until GOING_AWAY.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from node.crypto.ops import Signer, encode_wire
from node.errors import NetworkError, NodeError, ProtocolError
from node.ingest import ingest_ops
from node.keyring import KeyRing, PeerIdentity
from node.replica import Replica
from node.sync.protocol import (
    MAX_HEIGHTS,
    MAX_OFFER,
    MAX_OPS_BYTES,
    Done,
    GoingAway,
    HandshakeComplete,
    Have,
    Offer,
    Ops,
    SessionEvent,
    State,
    Summary,
    SyncSession,
)
from node.sync.settle import settle, sweep

log = logging.getLogger(__name__)

# what a peer's unfinished OFFER and HAVE streams (more = true) may make us hold
MAX_PEER_CIRCLES = 10 * MAX_OFFER  # circles offered in one session
MAX_PEER_HEIGHTS = 10 * MAX_HEIGHTS  # heights of HAVEs not yet finished


class Channel(Protocol):
    """A bidirectional message transport (WebSocket, HTTP exchange, in-memory pair)."""

    async def send(self, message: bytes) -> None: ...

    async def receive(self) -> bytes | None:
        """The next message, or None once the other side closed."""
        ...

    async def close(self) -> None: ...


@dataclass
class SyncStats:
    peer: str = ""
    ops_sent: int = 0
    ops_received: int = 0
    ops_added: int = 0
    ops_rejected: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    round_trips: int = 0
    circles: int = 0
    error: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "peer": self.peer,
            "ops_sent": self.ops_sent,
            "ops_received": self.ops_received,
            "ops_added": self.ops_added,
            "ops_rejected": self.ops_rejected,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "round_trips": self.round_trips,
            "error": self.error,
        }


def circle_digest(circle: bytes, heights: dict[bytes, int]) -> bytes:
    h = hashlib.blake2b(circle, digest_size=16)
    for author in sorted(heights):
        h.update(author)
        h.update(heights[author].to_bytes(8, "big"))
    return h.digest()


def summary_digest(offer: dict[bytes, bytes]) -> bytes:
    h = hashlib.blake2b(b"circle-node/summary", digest_size=32)
    for circle in sorted(offer):
        h.update(circle)
        h.update(offer[circle])
    return h.digest()


async def offer_for(replica: Replica, peer: bytes | PeerIdentity) -> dict[bytes, bytes]:
    """``{circle: digest}`` for every circle the peer's node may host (by its own key, a
    key it took over, or a federation agreement: :class:`PeerIdentity`)."""
    identity = peer if isinstance(peer, PeerIdentity) else PeerIdentity(peer)
    offer: dict[bytes, bytes] = {}
    for circle in sorted(await replica.circles()):
        state = (await replica.auth_log(circle)).full()
        if identity.may_host(circle, state):
            offer[circle] = circle_digest(circle, await replica.forwardable_heights(circle))
    return offer


class PeerSync:
    """One connection's sync. ``run()`` returns when the session ends."""

    def __init__(
        self,
        replica: Replica,
        node_key: Signer,
        channel: Channel,
        *,
        initiator: bool,
        expected_peer: bytes | None = None,
        live: bool = False,
        handshake_timeout: float | None = None,
    ) -> None:
        self.replica = replica
        self.handshake_timeout = handshake_timeout  # the dialer's bound on the handshake
        self.channel = channel
        self.session = SyncSession(node_key, initiator, expected_peer)
        self.live = live
        self.stats = SyncStats()
        self.peer: bytes | None = None
        self.identity: PeerIdentity | None = None
        self.synced = asyncio.Event()  # initial sync finished both ways
        # live ops came for a circle we do not hold (we were just made a host): only a new
        # session's initial sync can fetch it, so whoever runs this session reconnects
        self.resync = asyncio.Event()
        self._offer: dict[bytes, bytes] = {}
        self._to_sync: set[bytes] = set()
        # circles to receive that this node does not hold: kept only once their auth log,
        # complete as the peer has it, shows this node as a host (node/store/provisional.py)
        self._new: set[bytes] = set()
        self._answered: set[bytes] = set()
        self._received: set[bytes] = set()
        self._done_sent = False
        self._peer_done = False
        self._send_lock = asyncio.Lock()
        self._from_peer: OrderedDict[bytes, None] = OrderedDict()
        self._their_offer: dict[bytes, bytes] = {}
        self._their_heights: dict[bytes, dict[bytes, int]] = {}
        # per unfinished HAVE: 1 + the heights received (a circle costs one entry itself)
        self._heights_held: dict[bytes, int] = {}
        self._heights_total = 0

    async def run(self) -> SyncStats:
        reason = "sync complete"
        try:
            await self._bounded_handshake()
            await self._start_sync()
            while self.session.state in (State.OPEN, State.CLOSING):
                message = await self.channel.receive()
                if message is None:
                    if not self.synced.is_set():
                        raise ProtocolError("the peer closed the connection mid-sync")
                    break
                for event in self.session.receive(message):
                    await self._on_event(event)
                if self.synced.is_set() and not self.live and self.session.initiator:
                    await self.close("sync complete")
        except NodeError as exc:
            self.stats.error = reason = str(exc)
            log.warning(
                "sync with %s failed: %s",
                self._peer_name(),
                exc,
                extra={"peer": self.peer, "reason": str(exc)},
            )
        finally:
            await self._settle_rest()
            self._count()
            await self.close(reason)  # never leave the peer waiting on a dead session
        return self.stats

    async def close(self, reason: str = "") -> None:
        """Tell the peer we are going away (if the session is open), then close."""
        if self.session.state is State.OPEN:
            try:
                await self._send(GoingAway(reason[:200]))
            except (NodeError, ConnectionError):
                pass
        await self.channel.close()

    # ---- phases -------------------------------------------------------------------------

    async def _bounded_handshake(self) -> None:
        """The handshake, within ``handshake_timeout`` when set: a peer that takes the
        connection and never answers must not hold a dialer forever."""
        if self.handshake_timeout is None:
            await self._handshake()
            return
        try:
            async with asyncio.timeout(self.handshake_timeout):
                await self._handshake()
        except TimeoutError:
            raise NetworkError(
                f"the peer did not finish the sync handshake within "
                f"{self.handshake_timeout:g} s (handshake_timeout)"
            ) from None

    async def _handshake(self) -> None:
        keyring = KeyRing(self.replica.store)
        self.session.credentials = await keyring.presentable(self.session.node_key.public)
        if self.session.initiator:
            await self._raw_send(self.session.start())
        proved: HandshakeComplete | None = None
        while proved is None:
            message = await self.channel.receive()
            if message is None:
                raise ProtocolError("the peer closed the connection during the handshake")
            for event in self.session.receive(message):
                if isinstance(event, HandshakeComplete):
                    proved = event
            reply = self.session.pending_reply()
            if reply is not None:
                await self._raw_send(reply)
        # a retired key or forged credentials end the session before anything is named
        ours = self.session.node_key.public
        self.identity = await keyring.identify(proved.peer, proved.credentials, ours)
        self.peer = proved.peer
        self.stats.peer = self.peer.hex()

    async def _start_sync(self) -> None:
        assert self.identity is not None
        await sweep(self.replica)
        self._offer = await offer_for(self.replica, self.identity)
        self.stats.circles = len(self._offer)
        await self._send(Summary(summary_digest(self._offer), len(self._offer)))

    async def _on_event(self, event: HandshakeComplete | SessionEvent) -> None:
        if isinstance(event, Summary):
            self.stats.round_trips += 1
            if event.digest == summary_digest(self._offer) and event.circles == len(self._offer):
                await self._maybe_done()
            else:
                await self._send_offer()
        elif isinstance(event, Offer):
            self._their_offer.update(event.circles)
            if len(self._their_offer) > MAX_PEER_CIRCLES:
                raise ProtocolError(f"the peer offered more than {MAX_PEER_CIRCLES} circles")
            if not event.more:
                await self._on_offer(self._their_offer)
        elif isinstance(event, Have):
            await self._on_have(event)
        elif isinstance(event, Ops):
            await self._on_ops(event)
        elif isinstance(event, Done):
            self._peer_done = True
            self._check_synced()
        elif isinstance(event, GoingAway):
            log.info(
                "%s is going away: %s",
                self._peer_name(),
                event.reason or "no reason",
                extra={"peer": self.peer, "reason": event.reason or None},
            )

    async def _send_offer(self) -> None:
        items = sorted(self._offer.items())
        chunks = [dict(items[i : i + MAX_OFFER]) for i in range(0, len(items), MAX_OFFER)]
        for i, chunk in enumerate(chunks or [{}]):
            await self._send(Offer(chunk, more=i < len(chunks) - 1))

    async def _on_offer(self, theirs: dict[bytes, bytes]) -> None:
        self.stats.round_trips += 1
        mine = self._offer
        self._to_sync = {c for c in set(mine) | set(theirs) if mine.get(c) != theirs.get(c)}
        if self._to_sync:
            self.stats.round_trips += 1
        held = await self.replica.circles()
        self._new = {c for c in self._to_sync if c in theirs and c not in held}
        for circle in sorted(self._to_sync):
            # heights name a circle's authors: only a peer that may host it learns them
            mine_to_tell = circle in held and circle in mine
            if circle in self._new and circle in await self.replica.known_circles():
                # left provisional by a cut session: resume it if the peer may host it
                assert self.identity is not None
                state = (await self.replica.auth_log(circle)).full()
                mine_to_tell = self.identity.may_host(circle, state)
            heights = await self.replica.forwardable_heights(circle) if mine_to_tell else {}
            items = sorted(heights.items())
            chunks = [dict(items[i : i + MAX_HEIGHTS]) for i in range(0, len(items), MAX_HEIGHTS)]
            for i, chunk in enumerate(chunks or [{}]):
                await self._send(Have(circle, chunk, more=i < len(chunks) - 1))
        await self._maybe_done()

    async def _on_have(self, have: Have) -> None:
        circle = have.circle
        if circle in self._answered:
            raise ProtocolError("a second HAVE for a circle already answered")
        self._their_heights.setdefault(circle, {}).update(have.heights)
        held = self._heights_held
        cost = len(have.heights) + (circle not in held)
        held[circle] = held.get(circle, 0) + cost
        self._heights_total += cost
        if self._heights_total > MAX_PEER_HEIGHTS:
            raise ProtocolError(f"the peer's HAVEs held more than {MAX_PEER_HEIGHTS} heights")
        if have.more:
            return
        theirs = self._their_heights.pop(circle)
        self._heights_total -= held.pop(circle, 0)
        if circle in self._offer:  # the peer may host it: send what it lacks
            await self._stream(circle, theirs)
        else:
            await self._send(Ops(circle, [], more=False))
        if circle in self._offer or circle in self._to_sync:
            # remembered only when bounded by the offers: a stream of HAVEs for made-up
            # circles (each answered empty) must not grow this set
            self._answered.add(circle)
        await self._maybe_done()

    async def _stream(self, circle: bytes, theirs: dict[bytes, int]) -> None:
        limits = await self.replica.forwardable_heights(circle)
        batch: list[bytes] = []
        size = 0
        async for _op_id, header, sig, body in self.replica.store.valid_ops_since(
            circle, theirs, limits
        ):
            wire = encode_wire(header, sig, body)
            if batch and size + len(wire) > MAX_OPS_BYTES:
                await self._send(Ops(circle, batch, more=True))
                batch, size = [], 0
            batch.append(wire)
            size += len(wire)
            self.stats.ops_sent += 1
        await self._send(Ops(circle, batch, more=False))

    async def _on_ops(self, ops: Ops) -> None:
        if ops.live:
            if not (self.live and self.synced.is_set()):
                raise ProtocolError("live ops before the initial sync finished")
            if ops.circle not in await self.replica.circles():
                log.info(
                    "ignoring live ops of a circle we do not hold from %s",
                    self._peer_name(),
                    extra={"peer": self.peer, "circle": ops.circle.hex()},
                )
                self.resync.set()
                return
        elif ops.circle not in self._to_sync:
            raise ProtocolError("the peer sent ops for a circle we did not ask for")
        new = not ops.live and ops.circle in self._new
        if ops.ops:
            await self._ingest(ops.circle, ops.ops, provisional=new)
        if not ops.more and not ops.live:
            if new:
                await self._settle(ops.circle)
            self._received.add(ops.circle)
            await self._maybe_done()

    async def _ingest(self, circle: bytes, wires: list[bytes], *, provisional: bool) -> None:
        self.stats.ops_received += len(wires)
        report = await ingest_ops(self.replica, wires, circle=circle, provisional=provisional)
        self.stats.ops_added += report.added
        self.stats.ops_rejected += report.rejected
        for reason, n in report.reasons.items():
            self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + n
        if report.rejected:
            log.warning(
                "refused %d ops from %s: %s",
                report.rejected,
                self._peer_name(),
                dict(report.reasons),
                extra={
                    "peer": self.peer,
                    "circle": circle.hex(),
                    "ops": report.rejected,
                    "reason": ", ".join(sorted(report.reasons)),
                },
            )
        self._remember(op.op_id for op in report.accepted)

    async def _settle(self, circle: bytes) -> None:
        self._new.discard(circle)
        assert self.identity is not None
        ours = self.session.node_key.public
        if await settle(self.replica, ours, self.identity, circle) is not None:
            self.stats.reasons["not_a_host"] = self.stats.reasons.get("not_a_host", 0) + 1

    async def _settle_rest(self) -> None:
        """A session that ends mid-stream settles what it got: a circle whose host op came
        is kept (the next sync resumes it from heights), any other is purged."""
        for circle in sorted(self._new):
            try:
                await self._settle(circle)
            except NodeError as exc:  # the next session that fetches it settles it
                log.warning("could not settle circle %s: %s", circle.hex()[:12], exc)

    async def _maybe_done(self) -> None:
        """DONE means: every HAVE answered and every answer to ours received and stored,
        so a peer that sees it knows its ops are in our store."""
        complete = self._answered >= self._to_sync and self._received >= self._to_sync
        if not self._done_sent and complete:
            self._done_sent = True
            await self._send(Done())
        self._check_synced()

    def _check_synced(self) -> None:
        if self._done_sent and self._peer_done and self._received >= self._to_sync:
            self.synced.set()

    # ---- live push ----------------------------------------------------------------------

    async def push(self, circle: bytes, wires: list[tuple[bytes, bytes]]) -> int:
        """Push newly stored valid ops ``(op_id, wire)`` if the peer may host ``circle``;
        ops that came from this peer are not echoed back. Returns how many were sent."""
        if self.session.state is not State.OPEN or self.identity is None:
            return 0
        if not self.synced.is_set():
            return 0
        if self.peer is not None and await KeyRing(self.replica.store).handover_from(self.peer):
            # retired since the session began (we learned its hand-over meanwhile)
            await self.close(f"node key {self.peer.hex()[:12]} was retired by a hand-over")
            return 0
        state = (await self.replica.auth_log(circle)).full()
        if not self.identity.may_host(circle, state):
            return 0
        fresh = [wire for op_id, wire in wires if op_id not in self._from_peer]
        sent = 0
        while fresh:
            batch: list[bytes] = []
            size = 0
            while fresh and (not batch or size + len(fresh[0]) <= MAX_OPS_BYTES):
                wire = fresh.pop(0)
                batch.append(wire)
                size += len(wire)
            await self._send(Ops(circle, batch, more=False, live=True))
            sent += len(batch)
        self.stats.ops_sent += sent
        return sent

    def _remember(self, op_ids: Iterable[bytes]) -> None:
        for op_id in op_ids:
            self._from_peer[op_id] = None
        while len(self._from_peer) > 10_000:
            self._from_peer.popitem(last=False)

    # ---- plumbing -----------------------------------------------------------------------

    async def _send(self, event: SessionEvent) -> None:
        async with self._send_lock:
            await self.channel.send(self.session.send(event))

    async def _raw_send(self, message: bytes) -> None:
        async with self._send_lock:
            await self.channel.send(message)

    def _count(self) -> None:
        counters = self.session.counters
        self.stats.bytes_sent = counters.bytes_sent
        self.stats.bytes_received = counters.bytes_received

    def _peer_name(self) -> str:
        return self.peer.hex()[:12] if self.peer else "peer"
