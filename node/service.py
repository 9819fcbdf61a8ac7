"""A running node: the sync server, live sync with every configured peer, and live push.

:class:`NodeService` is an async context manager that owns every task it starts (the
server, one dialer per configured peer, the broadcaster, the peer watcher) and stops them
all on exit: dialed peers are told GOING_AWAY, the server tells its peers GOING_AWAY and
closes, and no task outlives the ``async with`` block. One Replica serves every session.

Live push: every open session (accepted or dialed) has a cursor, the store's highest lseq
when the session began. The broadcaster wakes on ``replica.committed`` (this process stored
ops) or every ``poll_interval`` (another process, e.g. the CLI, wrote to the same file),
and pushes each valid op stored after a session's cursor to that session once its initial
sync is done. An op stored while a session's initial sync runs may be both synced and
pushed; the receiver counts it as a duplicate.

Digests: with ``config.digests`` set (``serve`` sets it) a :class:`DigestRefresher` keeps
the governance digests of changed circles fresh in a child process, debounced; stopping
the service terminates a refresh in flight.

Reconnect: after a session ends or a dial fails, a dialer waits
``uniform(0, min(cap, base * 2**failures))`` seconds (capped exponential backoff with
full jitter); a session that completed its initial sync resets ``failures`` to 0.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from node.crypto.ops import Signer, encode_wire
from node.digest_refresh import DigestConfig, DigestRefresher
from node.errors import ConfigError, NodeError
from node.home import parse_listen
from node.replica import Replica
from node.store.peers import Peer, PeerBook
from node.sync.engine import Channel, PeerSync, SyncStats
from node.sync.http import HttpLimits
from node.sync.limits import PeerLimits
from node.sync.transport import (
    SyncServer,
    create_app,
    describe,
    dial,
    round_trips,
    run_bounded,
)

log = logging.getLogger(__name__)

PUSH_BATCH = 1000  # ops read per broadcaster query
STOP_GRACE = 2.0  # seconds peers get to hear GOING_AWAY and sessions to wind down


@dataclass(frozen=True)
class ServiceConfig:
    """How a NodeService runs."""

    listen: str | None = "127.0.0.1:0"  # HOST:PORT to serve on (port 0: any); None: no server
    backoff_base: float = 0.5  # seconds: the first reconnect waits up to this long
    backoff_cap: float = 60.0  # seconds: no reconnect waits longer than this
    poll_interval: float = 1.0  # seconds between looks for ops written by other processes
    peer_refresh: float = 5.0  # seconds between looks for peers added or removed
    connect_timeout: float = 10.0  # seconds to reach a peer
    handshake_timeout: float = 10.0  # seconds for a reached peer to finish the handshake
    limits: HttpLimits = field(default_factory=HttpLimits)  # the HTTP fallback's limits
    peer_limits: PeerLimits = field(default_factory=PeerLimits)  # what one peer may cost us
    digests: DigestConfig | None = None  # refresh governance digests (serve: on); None: off


def backoff_delay(failures: int, base: float, cap: float) -> float:
    """Full jitter: a uniform draw below the capped exponential bound."""
    return random.uniform(0.0, min(cap, base * 2 ** min(failures, 32)))


@dataclass
class _Recorded:
    """What of a dialed session's counters is already in the peers table."""

    sent: int = 0
    received: int = 0


class NodeService:
    """Serve, dial every configured peer, push live. ``async with NodeService(...)``."""

    def __init__(
        self, replica: Replica, node_key: Signer, config: ServiceConfig | None = None
    ) -> None:
        self.replica = replica
        self.node_key = node_key
        self.config = config or ServiceConfig()
        self.peers = PeerBook(replica.store)
        self.server: SyncServer | None = None
        self.failure: BaseException | None = None
        self.failed = asyncio.Event()  # a background task died: the service is not whole
        self._cursors: dict[PeerSync, int] = {}
        self._dialed: set[PeerSync] = set()
        self._dialers: dict[str, asyncio.Task[None]] = {}
        self._background: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[None]] = set()  # every task started, until it ends
        self._stopping = asyncio.Event()
        self._stopped = False
        digests = self.config.digests
        self.digests = DigestRefresher(replica, digests) if digests is not None else None

    # ---- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> NodeService:
        if self.config.listen is not None:
            host, port = split_listen(self.config.listen)
            app = create_app(
                self.replica,
                self.node_key,
                on_session=self._track,
                limits=self.config.limits,
                peer_limits=self.config.peer_limits,
            )
            self.server = await SyncServer(app, host, port).__aenter__()
            log.info("listening on %s", self.server.address, extra={"address": self.server.address})
        try:
            await self._reconcile_dialers()
        except BaseException:
            await self.stop()
            raise
        self._background = [
            self._spawn(self._broadcast(), "broadcaster"),
            self._spawn(self._watch_peers(), "peer watcher"),
        ]
        if self.digests is not None:  # off the hot path: see node/digest_refresh.py
            self._background.append(self._spawn(self.digests.run(), "digest refresher"))
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.stop()

    @property
    def sessions(self) -> list[PeerSync]:
        """The sessions open now, accepted and dialed."""
        return list(self._cursors)

    async def stop(self) -> None:
        """Tell peers GOING_AWAY, stop every task, close the server. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await run_bounded([s.close("node shutting down") for s in self._dialed], STOP_GRACE)
        dialers = list(self._tasks)  # they end by themselves once their sessions close
        if dialers:
            _done, pending = await asyncio.wait(dialers, timeout=STOP_GRACE)
            for task in pending:
                task.cancel()
            await asyncio.gather(*dialers, return_exceptions=True)
        if self.server is not None:
            await self.server.__aexit__(None, None, None)
        log.info("stopped")

    def _spawn(self, coro: Any, what: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=what)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(self._check_crash)
        return task

    def _check_crash(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        self.failure = task.exception()
        log.error("%s died: %r", task.get_name(), self.failure, exc_info=self.failure)
        self.failed.set()

    @asynccontextmanager
    async def _track(self, sync: PeerSync) -> AsyncIterator[None]:
        """Around every session: its live-push cursor starts at the current max lseq."""
        async with self.replica.store.between_writes():
            self._cursors[sync] = await self.replica.store.max_lseq()
        resync = asyncio.create_task(self._resync_when_asked(sync))
        try:
            yield
        finally:
            self._cursors.pop(sync, None)
            resync.cancel()
            await asyncio.gather(resync, return_exceptions=True)

    async def _resync_when_asked(self, sync: PeerSync) -> None:
        """A peer pushed a circle we do not hold yet: end the session so that the next
        one (redialed by us, or by the peer if it dialed) fetches it in its initial sync."""
        await sync.resync.wait()
        log.info("%s has a circle new to us: reconnecting to fetch it", _name(sync))
        await sync.close("resync: fetching a circle new to us")

    # ---- dialing peers -------------------------------------------------------------------

    async def _watch_peers(self) -> None:
        while True:
            await asyncio.sleep(self.config.peer_refresh)
            try:
                await self._reconcile_dialers()
            except (NodeError, sqlite3.Error) as exc:  # try again at the next look
                log.error("could not read the peers: %s", exc)

    async def _reconcile_dialers(self) -> None:
        """One dialer per configured peer: start new ones, stop those of removed peers."""
        urls = {peer.url for peer in await self.peers.all()}
        for url, task in list(self._dialers.items()):
            if task.done() or url not in urls:
                task.cancel()
                del self._dialers[url]
        for url in sorted(urls - set(self._dialers)):
            self._dialers[url] = self._spawn(self._keep_synced(url), f"dialer {url}")

    async def _keep_synced(self, url: str) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                peer = await self.peers.get(url)
                if peer is None:
                    return  # removed
                synced = await self._session_with(peer)
            except (NodeError, sqlite3.Error) as exc:  # the store, e.g. locked for too long
                log.error(
                    "sync with %s failed on the store: %s",
                    url,
                    exc,
                    extra={"url": url, "reason": str(exc)},
                )
                synced = False
            failures = 0 if synced else failures + 1
            delay = backoff_delay(failures, self.config.backoff_base, self.config.backoff_cap)
            log.debug("next sync with %s in %.2f s", url, delay)
            if await self._stop_within(delay):
                return

    async def _stop_within(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            return False
        return True

    async def _session_with(self, peer: Peer) -> bool:
        """One live session with a configured peer; True if its initial sync completed."""
        try:
            channel = await dial(
                peer.url,
                connect_timeout=self.config.connect_timeout,
                handshake_timeout=self.config.handshake_timeout,
            )
        except NodeError as exc:
            log.warning(
                "cannot sync with %s: %s",
                peer.url,
                exc,
                extra={"url": peer.url, "reason": str(exc)},
            )
            await self._record(peer.url, None, _Recorded(), str(exc))
            return False
        sync = PeerSync(
            self.replica,
            self.node_key,
            channel,
            initiator=True,
            expected_peer=peer.node,
            live=True,
            handshake_timeout=self.config.handshake_timeout,
        )
        try:
            if self._stopping.is_set():
                return False
            self._dialed.add(sync)
            async with self._track(sync):
                stats = await self._run_recorded(sync, peer.url)
        finally:
            self._dialed.discard(sync)
            await channel.close()
        log.info(
            "sync with %s ended: %s",
            peer.url,
            describe(stats),
            extra={
                "url": peer.url,
                "peer": stats.peer or None,
                "ops_in": stats.ops_received,
                "ops_out": stats.ops_sent,
                "reason": stats.error,
            },
        )
        return sync.synced.is_set()

    async def _run_recorded(self, sync: PeerSync, url: str) -> SyncStats:
        """Run a dialed session, recording contact when its initial sync completes and
        again (the rest of its counters) when it ends."""
        recorded = _Recorded()

        async def when_synced() -> None:
            await sync.synced.wait()
            stats = sync.stats
            log.info(
                "synced with %s: %d ops in, %d out",
                url,
                stats.ops_received,
                stats.ops_sent,
                extra={"url": url, "ops_in": stats.ops_received, "ops_out": stats.ops_sent},
            )
            await self._record(url, sync.peer, _Recorded(stats.ops_sent, stats.ops_received))
            recorded.sent, recorded.received = stats.ops_sent, stats.ops_received

        recorder = asyncio.create_task(when_synced())
        try:
            stats = await sync.run()
        finally:
            if not sync.synced.is_set():
                recorder.cancel()  # still waiting: nothing to record
            await asyncio.gather(recorder, return_exceptions=True)
        done = _Recorded(stats.ops_sent - recorded.sent, stats.ops_received - recorded.received)
        await self._record(url, sync.peer, done, stats.error)
        return stats

    async def _record(
        self, url: str, node: bytes | None, counts: _Recorded, error: str | None = None
    ) -> None:
        try:
            await self.peers.record_contact(
                url, node=node, ops_sent=counts.sent, ops_received=counts.received, error=error
            )
        except NodeError as exc:
            log.warning("could not record contact with %s: %s", url, exc)

    # ---- live push -----------------------------------------------------------------------

    async def _broadcast(self) -> None:
        while True:
            self.replica.committed.clear()
            try:
                await self._push_new()
            except (NodeError, sqlite3.Error) as exc:  # try again at the next wake
                log.error("live push failed: %s", exc)
            try:
                async with asyncio.timeout(self.config.poll_interval):
                    await self.replica.committed.wait()
            except TimeoutError:
                pass

    async def _push_new(self) -> None:
        """Push every valid op after each synced session's cursor to that session."""
        ready = {s: c for s, c in self._cursors.items() if s.synced.is_set()}
        if not ready:
            return
        after = min(ready.values())
        while True:
            async with self.replica.store.between_writes():
                await self.replica.refresh()
                rows = await self.replica.store.valid_ops_after(after, PUSH_BATCH)
            if not rows:
                return
            batch = [
                (lseq, circle, op_id, encode_wire(header, sig, body))
                for lseq, circle, op_id, header, sig, body in rows
            ]
            for sync, cursor in ready.items():
                await self._push_to(sync, [row for row in batch if row[0] > cursor])
                if sync in self._cursors:
                    self._cursors[sync] = max(self._cursors[sync], batch[-1][0])
            after = batch[-1][0]
            if len(rows) < PUSH_BATCH:
                return

    async def _push_to(self, sync: PeerSync, rows: list[tuple[int, bytes, bytes, bytes]]) -> None:
        by_circle: dict[bytes, list[tuple[bytes, bytes]]] = {}
        for _lseq, circle, op_id, wire in rows:
            by_circle.setdefault(circle, []).append((op_id, wire))
        sent = 0
        try:
            for circle, wires in by_circle.items():
                sent += await sync.push(circle, wires)
        except (NodeError, ConnectionError) as exc:
            log.info(
                "live push to %s failed: %s",
                _name(sync),
                exc,
                extra={"peer": sync.peer, "reason": str(exc)},
            )
        if sent:
            log.info(
                "pushed %d ops to %s", sent, _name(sync), extra={"peer": sync.peer, "ops": sent}
            )


# ---- one-shot sync -----------------------------------------------------------------------


@dataclass
class SyncResult:
    """One ``sync --once`` round with one peer."""

    peer: str  # the URL
    stats: SyncStats
    round_trips: int
    node: bytes | None  # the key the peer's handshake proved, if it got that far

    def as_json(self) -> dict[str, Any]:
        s = self.stats
        return {
            "peer": self.peer,
            "ops_sent": s.ops_sent,
            "ops_received": s.ops_received,
            "bytes_sent": s.bytes_sent,
            "bytes_received": s.bytes_received,
            "round_trips": self.round_trips,
            "error": s.error,
        }


async def sync_once(
    replica: Replica,
    node_key: Signer,
    url: str,
    *,
    expected_peer: bytes | None = None,
    time_limit: float = 120.0,
    connect_timeout: float = 10.0,
    handshake_timeout: float = 10.0,
) -> SyncResult:
    """One full sync round with the peer at ``url``; errors end up in the result."""
    channel: Channel | None = None
    sync: PeerSync | None = None
    error: str | None = None
    try:
        async with asyncio.timeout(time_limit):
            channel = await dial(
                url,
                connect_timeout=min(connect_timeout, time_limit),
                handshake_timeout=handshake_timeout,
            )
            sync = PeerSync(
                replica,
                node_key,
                channel,
                initiator=True,
                expected_peer=expected_peer,
                handshake_timeout=handshake_timeout,
            )
            await sync.run()
    except NodeError as exc:
        error = str(exc)
    except TimeoutError:
        error = f"the sync with {url} did not finish within {time_limit:g} s"
    finally:
        if channel is not None:
            await channel.close()
    stats = sync.stats if sync is not None else SyncStats()
    if error is not None:
        stats.error = error
    elif stats.error is None and sync is not None and not sync.synced.is_set():
        stats.error = f"{url} ended the session before the sync completed"
    trips = round_trips(stats, channel) if channel is not None else 0
    return SyncResult(url, stats, trips, sync.peer if sync is not None else None)


# ---- helpers -----------------------------------------------------------------------------


def _name(sync: PeerSync) -> str:
    return sync.peer.hex()[:12] if sync.peer else "peer"


def split_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` as ``(host, port)``; port 0 means any free port. ConfigError if bad."""
    host, _, port_text = listen.strip().rpartition(":")
    any_port = port_text == "0"
    try:
        checked = parse_listen(f"{host}:1" if any_port else listen)
    except ValueError as exc:
        raise ConfigError(f"invalid listen address {listen!r}: {exc}") from exc
    host, _, port_text = checked.rpartition(":")
    return host.strip("[]"), 0 if any_port else int(port_text)
