"""What a peer may cost this node: token buckets, the penalty box and their settings.

Pure bookkeeping over a clock the caller passes in (``now``, loop time in seconds): no
sockets, no asyncio waiting. :mod:`node.sync.gate` applies it to real connections.

* A :class:`TokenBucket` holds ``rate * burst`` tokens and refills at ``rate`` per second.
  ``take(n)`` always succeeds but may leave the bucket in debt; it returns how long the
  caller must wait until the debt is paid, so a message larger than the bucket still
  passes, only later. A flood is slowed to the rate, never queued.
* :class:`Rates` are the three buckets (frames, bytes, ops) of one *who*: the remote
  address before the handshake, the peer's node key after it, so one peer opening many
  connections shares one budget.
* The :class:`PenaltyBox` counts strikes against a *who* within ``window`` seconds; at
  ``threshold`` strikes the who is banned for ``ban_seconds``. Refused ops strike the node
  key; failed sessions (handshake failures, protocol errors) strike the address.

Every map here is bounded (``MAX_TRACKED`` entries): idle entries go first, so a stream of
new addresses or keys cannot grow memory.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

MAX_TRACKED = 10_000  # whos remembered by the buckets and by the penalty box


@dataclass(frozen=True)
class PeerLimits:
    """Server-side limits on what any one peer (address or node key) may do."""

    max_connections: int = 256  # open TCP connections, all peers together
    max_connections_per_ip: int = 16  # open TCP connections from one address
    handshake_timeout: float = 10.0  # seconds from connect to a finished sync handshake
    read_timeout: float = 30.0  # seconds a started message (or request) may take to arrive
    frames_per_second: float = 200.0  # sync messages per second from one peer
    bytes_per_second: float = 4 * 1024 * 1024  # bytes per second from one peer
    ops_per_second: float = 2000.0  # ops per second from one peer
    burst_seconds: float = 5.0  # each bucket holds this many seconds of its rate
    max_rejected: int = 500  # refused ops from one node key before it is banned
    max_failures: int = 20  # failed sessions from one address before it is banned
    ban_seconds: float = 300.0  # how long a ban lasts (and the window strikes count in)


class TokenBucket:
    """``rate`` tokens per second, at most ``capacity``; starts full."""

    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = now

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = now

    def take(self, amount: float, now: float) -> float:
        """Take ``amount`` tokens; seconds to wait before acting (0 if there were enough)."""
        self._refill(now)
        self.tokens -= amount
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.capacity


class Rates:
    """The frame, byte and op buckets of one who."""

    __slots__ = ("bytes", "frames", "ops")

    def __init__(self, limits: PeerLimits, now: float) -> None:
        burst = limits.burst_seconds
        self.frames = TokenBucket(limits.frames_per_second, limits.frames_per_second * burst, now)
        self.bytes = TokenBucket(limits.bytes_per_second, limits.bytes_per_second * burst, now)
        self.ops = TokenBucket(limits.ops_per_second, limits.ops_per_second * burst, now)

    def charge(self, frames: int, size: int, ops: int, now: float) -> tuple[float, str]:
        """Charge one message (and the ops it carried); the wait and which rate imposed it."""
        waits = (
            (self.frames.take(frames, now), "frames"),
            (self.bytes.take(size, now), "bytes"),
            (self.ops.take(ops, now), "ops") if ops else (0.0, "ops"),
        )
        return max(waits)

    def idle(self, now: float) -> bool:
        return self.frames.full(now) and self.bytes.full(now) and self.ops.full(now)


class RateBook:
    """:class:`Rates` per who, created on first use; at most MAX_TRACKED, idle first out."""

    def __init__(self, limits: PeerLimits, max_tracked: int = MAX_TRACKED) -> None:
        self.limits = limits
        self.max_tracked = max_tracked
        self._rates: OrderedDict[str, Rates] = OrderedDict()

    def __len__(self) -> int:
        return len(self._rates)

    def of(self, who: str, now: float) -> Rates:
        rates = self._rates.get(who)
        if rates is None:
            self._make_room(now)
            rates = self._rates[who] = Rates(self.limits, now)
        self._rates.move_to_end(who)
        return rates

    def _make_room(self, now: float) -> None:
        if len(self._rates) < self.max_tracked:
            return
        for who in [w for w, r in self._rates.items() if r.idle(now)]:
            del self._rates[who]
        while len(self._rates) >= self.max_tracked:  # all busy: the least recently used go
            self._rates.popitem(last=False)


@dataclass
class _Record:
    strikes: int
    since: float  # first strike of the current window
    banned_until: float = 0.0


class PenaltyBox:
    """Strikes and bans per who (``"ip 1.2.3.4"``, ``"node ab12..."``)."""

    def __init__(self, ban_seconds: float, max_tracked: int = MAX_TRACKED) -> None:
        self.ban_seconds = ban_seconds
        self.max_tracked = max_tracked
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def banned_for(self, who: str, now: float) -> float:
        """Seconds left of ``who``'s ban; 0 if not banned."""
        record = self._records.get(who)
        return max(0.0, record.banned_until - now) if record is not None else 0.0

    def strike(self, who: str, count: int, threshold: int, now: float) -> bool:
        """Add ``count`` strikes (within the window); True if this strike starts a ban."""
        record = self._records.get(who)
        if record is None or now - record.since > self.ban_seconds:
            if record is None:
                self._make_room(now)
            record = self._records[who] = _Record(0, now, record.banned_until if record else 0)
        self._records.move_to_end(who)
        record.strikes += count
        if record.strikes >= threshold and record.banned_until <= now:
            record.banned_until = now + self.ban_seconds
            record.strikes, record.since = 0, now
            return True
        return False

    def _make_room(self, now: float) -> None:
        if len(self._records) < self.max_tracked:
            return
        for who in [w for w, r in self._records.items() if r.banned_until <= now]:
            del self._records[who]
        while len(self._records) >= self.max_tracked:  # all banned: the oldest ban goes
            self._records.popitem(last=False)
