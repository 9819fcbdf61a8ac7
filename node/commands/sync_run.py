"""Running the node and syncing with peers: ``serve`` and ``sync --once`` (loaded lazily).

Both need the node key (its passphrase): the sync handshake proves the node's identity.
Writing commands never need a peer; what they write syncs when a peer is reachable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
from typing import Any

from node.commands.base import Context, Output, open_replica, run_async, short
from node.config import Settings
from node.crypto.keys import KeyPair
from node.digest_refresh import DigestConfig
from node.errors import ConfigError, NodeError
from node.home import NodeHome, ask_passphrase
from node.logs import log_to_stderr
from node.replica import Replica
from node.service import NodeService, ServiceConfig, SyncResult, sync_once
from node.store.peers import PeerBook
from node.sync.discovery import Discovery
from node.sync.http import HttpLimits
from node.sync.limits import PeerLimits
from node.sync.transport import HANDSHAKE_TIMEOUT
from node.sync.urls import parse_peer_url

log = logging.getLogger(__name__)
_LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _node_key(home: NodeHome) -> KeyPair:
    return home.unlock_node(ask_passphrase(f"the key of node {home.config.name!r}"))


# ---- serve -------------------------------------------------------------------------------


def service_config(settings: Settings) -> ServiceConfig:
    """How ``serve`` runs, from the layered settings (:mod:`node.config`)."""
    return ServiceConfig(
        listen=settings.listen,
        backoff_base=settings.backoff_base,
        backoff_cap=settings.backoff_cap,
        poll_interval=settings.poll_interval,
        peer_refresh=settings.peer_refresh,
        connect_timeout=settings.connect_timeout,
        digests=DigestConfig(),
        handshake_timeout=settings.handshake_timeout,
        limits=HttpLimits(
            max_body=settings.http_max_body,
            max_sessions=settings.http_max_sessions,
            session_ttl=settings.http_session_ttl,
            long_poll=settings.http_long_poll,
            max_wait=settings.http_max_wait,
            max_queued=settings.http_max_queued,
        ),
        peer_limits=PeerLimits(
            max_connections=settings.max_connections,
            max_connections_per_ip=settings.max_connections_per_ip,
            handshake_timeout=settings.handshake_timeout,
            read_timeout=settings.read_timeout,
            frames_per_second=settings.peer_frames_per_second,
            bytes_per_second=settings.peer_bytes_per_second,
            ops_per_second=settings.peer_ops_per_second,
            burst_seconds=settings.peer_burst_seconds,
            max_rejected=settings.peer_max_rejected,
            max_failures=settings.peer_max_failures,
            ban_seconds=settings.peer_ban_seconds,
        ),
    )


def _announce(ctx: Context, service: NodeService, peers: int) -> None:
    assert service.server is not None
    server = service.server
    node = service.node_key.public.hex()
    if ctx.json:
        line = json.dumps(
            {"listening": server.address, "url": server.url, "node": node, "peers": peers}
        )
    else:
        line = (
            f"Listening on {server.address} (node {node[:8]}), syncing with {peers} "
            "peer(s). Stop with Ctrl-C."
        )
    print(line, flush=True)


async def _first_of(*events: asyncio.Event) -> None:
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


async def _announce_on_lan(
    stack: contextlib.AsyncExitStack, name: str, key: KeyPair, service: NodeService
) -> None:
    """``serve --discover``: announce and browse the LAN; found nodes are offered in the
    log (``peer add URL`` trusts one), never synced with automatically."""
    assert service.server is not None
    host = service.server.host
    # listening on one address (say 127.0.0.1) announces there only; 0.0.0.0 announces on
    # every interface
    interfaces = None if host in ("0.0.0.0", "", "::") else [host]
    discovery = Discovery(key.public, service.server.port, name=name, interfaces=interfaces)
    try:
        await stack.enter_async_context(discovery)
    except NodeError as exc:
        log.warning("%s", exc)  # multicast blocked: the node still serves and syncs


async def _serve(ctx: Context, home: NodeHome, key: KeyPair, settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with open_replica(home) as replica:
            peers = len(await PeerBook(replica.store).all())
            async with (
                NodeService(replica, key, service_config(settings)) as service,
                contextlib.AsyncExitStack() as stack,
            ):
                if settings.discover:
                    await _announce_on_lan(stack, settings.name, key, service)
                _announce(ctx, service, peers)
                await _first_of(stop, service.failed)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    if service.failure is not None:
        log.error("the node stopped because of an internal error: %r", service.failure)
        return 1
    return 0


def serve(ctx: Context, args: argparse.Namespace) -> Output:
    """Run the node: serve peers, keep live sync with every configured peer, until stopped
    (SIGINT or SIGTERM). Prints one line (or JSON object) once it listens; logs to stderr.
    Settings: defaults -> node.toml -> CIRCLE_NODE_* -> --listen/--discover/--log-format
    (node.config);
    a bad one fails before the passphrase prompt."""
    home = ctx.home.require()
    flags = {
        "listen": args.listen,
        "discover": True if args.discover else None,
        "log_format": getattr(args, "log_format", None),
    }
    settings = home.settings(flags=flags)
    key = _node_key(home)
    log_to_stderr(_LOG_LEVELS[settings.log_level], settings.log_format)
    for name, origin in settings.origins.items():
        if origin != "default":
            log.debug("setting %s = %r from %s", name, getattr(settings, name), origin)
    code = run_async(_serve(ctx, home, key, settings))
    return Output({}, "", code)  # empty: the listening line was its output


# ---- sync --once -------------------------------------------------------------------------


async def _targets(home: NodeHome, url: str | None) -> list[tuple[str, bytes | None]]:
    """``(url, pinned node key)`` to sync with: the one given, else every configured peer."""
    async with open_replica(home) as replica:
        book = PeerBook(replica.store)
        if url is not None:
            peer = await book.get(url)
            return [(url, peer.node if peer else None)]
        peers = await book.all()
    if not peers:
        raise NodeError(
            "no peers configured: add one with `circle-node peer add http://HOST:PORT`, "
            "or give one with --peer URL"
        )
    return [(p.url, p.node) for p in peers]


async def sync_and_record(
    replica: Replica,
    key: KeyPair,
    targets: list[tuple[str, bytes | None]],
    limit: float,
    connect_timeout: float,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
) -> list[SyncResult]:
    """One sync round with each ``(url, pinned node key)`` at once, each contact recorded
    in the peers table (what ``sync --once`` and the TUI's "sync now" do)."""
    results = await asyncio.gather(
        *(
            sync_once(
                replica,
                key,
                url,
                expected_peer=pin,
                time_limit=limit,
                connect_timeout=connect_timeout,
                handshake_timeout=handshake_timeout,
            )
            for url, pin in targets
        )
    )
    book = PeerBook(replica.store)
    for result in results:
        await book.record_contact(
            result.peer,
            node=result.node,
            ops_sent=result.stats.ops_sent,
            ops_received=result.stats.ops_received,
            error=result.stats.error,
        )
    return list(results)


async def _sync_all(
    home: NodeHome,
    key: KeyPair,
    targets: list[tuple[str, bytes | None]],
    limit: float,
    connect_timeout: float,
    handshake_timeout: float,
) -> list[SyncResult]:
    async with open_replica(home) as replica:
        return await sync_and_record(
            replica, key, targets, limit, connect_timeout, handshake_timeout
        )


def _result_text(data: dict[str, Any]) -> str:
    if data["error"]:
        return f"{data['peer']}: FAILED: {data['error']}"
    return (
        f"{data['peer']}: {data['ops_sent']} ops sent, {data['ops_received']} received, "
        f"{data['bytes_sent']}/{data['bytes_received']} bytes out/in, "
        f"{data['round_trips']} round trip(s)"
    )


def sync(ctx: Context, args: argparse.Namespace) -> Output:
    """One full sync round with each configured peer (or the one given); exit 1 if any
    peer could not be synced."""
    if not args.once:
        raise ConfigError(
            "`circle-node sync` needs --once (one round with each peer); to keep syncing, "
            "run `circle-node serve`"
        )
    home = ctx.home.require()
    url = None if args.peer is None else parse_peer_url(str(args.peer)).url
    limit = float(args.timeout)
    if limit <= 0:
        raise ConfigError("--timeout must be a positive number of seconds")
    settings = home.settings()
    targets = run_async(_targets(home, url))
    key = _node_key(home)
    log_to_stderr(logging.WARNING, settings.log_format)
    results = run_async(
        _sync_all(home, key, targets, limit, settings.connect_timeout, settings.handshake_timeout)
    )
    rows = [r.as_json() for r in results]
    failed = sum(1 for r in rows if r["error"])
    text = "\n".join(_result_text(r) for r in rows)
    if failed:
        text += f"\n{failed} of {len(rows)} peer(s) could not be synced (node {short(key.public)})."
    return Output({"peers": rows}, text, 1 if failed else 0)
