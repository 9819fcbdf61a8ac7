"""Peers this node syncs with: ``peer add``, ``peer list``, ``peer remove``.

None of these contacts the peer: adding one works offline, and its node key is learned on
the first sync (trust on first use, see :mod:`node.store.peers`).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from node.commands.base import Context, Output, open_replica, run_async
from node.errors import ConfigError
from node.home import NodeHome, check_name
from node.store.peers import Peer, PeerBook
from node.sync.urls import parse_peer_url


async def _add(home: NodeHome, url: str, name: str | None) -> Peer:
    async with open_replica(home) as replica:
        return await PeerBook(replica.store).add(url, name)


def add(ctx: Context, args: argparse.Namespace) -> Output:
    """Add a peer by URL (http://HOST:PORT, ws://..., http+post://... for the fallback)."""
    home = ctx.home.require()
    url = parse_peer_url(str(args.url)).url
    name = None if args.name is None else check_name(str(args.name), "peer name")
    peer = run_async(_add(home, url, name))
    text = (
        f"Added peer {peer.url}" + (f" ({peer.name})" if peer.name else "") + ".\n"
        "Sync with it now with `circle-node sync --once`, or keep in sync with "
        "`circle-node serve`."
    )
    return Output({"peer": peer.url, "name": peer.name}, text)


async def _all(home: NodeHome) -> list[Peer]:
    async with open_replica(home) as replica:
        return await PeerBook(replica.store).all()


def _when(stamp: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else "never"


def _line(peer: Peer) -> str:
    name = f" ({peer.name})" if peer.name else ""
    node = peer.node.hex()[:8] if peer.node else "unknown"
    line = (
        f"{peer.url}{name}  node {node}  last contact {_when(peer.last_contact)}  "
        f"ops sent {peer.ops_sent}, received {peer.ops_received}"
    )
    return line + (f"\n    last error: {peer.last_error}" if peer.last_error else "")


def list_peers(ctx: Context, args: argparse.Namespace) -> Output:
    """The configured peers, with last contact and ops sent and received."""
    peers = run_async(_all(ctx.home.require()))
    data: dict[str, Any] = {"peers": [p.as_json() for p in peers]}
    if not peers:
        return Output(data, "No peers yet: `circle-node peer add http://HOST:PORT`.")
    return Output(data, "\n".join(_line(p) for p in peers))


async def _remove(home: NodeHome, key: str) -> Peer:
    async with open_replica(home) as replica:
        return await PeerBook(replica.store).remove(key)


def remove(ctx: Context, args: argparse.Namespace) -> Output:
    """Remove a peer by URL or name."""
    home = ctx.home.require()
    text = str(args.peer)
    try:
        key = parse_peer_url(text).url
    except ConfigError:
        key = text  # a name
    peer = run_async(_remove(home, key))
    return Output({"removed": peer.url}, f"Removed peer {peer.url}.")
