"""LAN discovery: announce this node and browse for others with mDNS/DNS-SD (zeroconf).

The service type is ``_circle-node._tcp.local.``; an announcement carries only the
protocol version, a short node id (16 hex digits of the node key) and the port. Found
nodes are *offered* as peers, never trusted: syncing with one still needs `peer add`,
and then the authenticated handshake and host authorization decide what flows.
Multicast is often blocked; manual peers always work without it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from zeroconf import IPVersion, ServiceInfo, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

from node.errors import NodeError
from node.sync.protocol import PROTOCOL_VERSION

log = logging.getLogger(__name__)

SERVICE_TYPE = "_circle-node._tcp.local."
MAX_DISCOVERED = 256


@dataclass(frozen=True)
class Discovered:
    """A node seen on the LAN: an offer, not a trusted peer."""

    node_id: str  # 16 hex digits of its node key, as announced (unverified)
    url: str
    name: str
    last_seen: float


def short_id(node_public: bytes) -> str:
    return node_public.hex()[:16]


class Discovery:
    """Announce this node and browse for others. ``async with Discovery(...) as d``."""

    def __init__(
        self,
        node_public: bytes,
        port: int,
        *,
        name: str = "",
        interfaces: list[str] | None = None,
        on_found: Callable[[Discovered], None] | None = None,
        announce: bool = True,
    ) -> None:
        """``announce=False`` only browses (the TUI: it serves nothing itself)."""
        self.node_id = short_id(node_public)
        self.port = port
        self.name = name
        self.interfaces = interfaces
        self.on_found = on_found
        self.announce = announce
        self.found: dict[str, Discovered] = {}
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._info: ServiceInfo | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Discovery:
        try:
            self._zc = AsyncZeroconf(
                interfaces=self.interfaces or ["0.0.0.0"], ip_version=IPVersion.V4Only
            )
            if self.announce:
                self._info = self._service_info()
                await self._zc.async_register_service(self._info)
            self._browser = AsyncServiceBrowser(
                self._zc.zeroconf, SERVICE_TYPE, handlers=[self._on_change]
            )
        except OSError as exc:
            await self._close()
            raise NodeError(
                f"LAN discovery could not start ({exc}); multicast may be blocked here. "
                "Add peers by hand with `circle-node peer add URL`."
            ) from exc
        if self.announce:
            log.info("announcing node %s on the LAN, port %s", self.node_id, self.port)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._close()

    async def _close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._browser is not None:
            await self._browser.async_cancel()
            self._browser = None
        if self._zc is not None:
            if self._info is not None:
                await self._zc.async_unregister_service(self._info)
            await self._zc.async_close()
            self._zc = None

    def _service_info(self) -> ServiceInfo:
        addresses = [socket.inet_aton(a) for a in (self.interfaces or []) if a != "0.0.0.0"]
        return ServiceInfo(
            SERVICE_TYPE,
            f"{self.node_id}.{SERVICE_TYPE}",
            addresses=addresses or None,
            port=self.port,
            properties={"v": str(PROTOCOL_VERSION), "id": self.node_id, "name": self.name[:40]},
        )

    def _on_change(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        if state_change is ServiceStateChange.Removed:
            return
        task = asyncio.get_running_loop().create_task(self._resolve(service_type, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, service_type: str, name: str) -> None:
        if self._zc is None:
            return
        info = await self._zc.async_get_service_info(service_type, name, 3000)
        if info is None:
            return
        found = parse_announcement(info.properties, info.parsed_addresses(), info.port)
        if found is None or found.node_id == self.node_id:
            return
        if found.node_id not in self.found and len(self.found) >= MAX_DISCOVERED:
            return
        self.found[found.node_id] = found
        log.info(
            "found node %s at %s: `circle-node peer add %s` to sync with it",
            found.node_id,
            found.url,
            found.url,
        )
        if self.on_found is not None:
            self.on_found(found)


def parse_announcement(
    properties: dict[bytes, bytes | None], addresses: list[str], port: int | None
) -> Discovered | None:
    """Turn an mDNS announcement into an offer; anything odd is ignored (None)."""
    node_id = (properties.get(b"id") or b"").decode("ascii", "replace")
    version = (properties.get(b"v") or b"").decode("ascii", "replace")
    name = (properties.get(b"name") or b"").decode("utf-8", "replace")[:40]
    if len(node_id) != 16 or any(c not in "0123456789abcdef" for c in node_id):
        return None
    if version != str(PROTOCOL_VERSION) or not addresses or not port or not 0 < port < 65536:
        return None
    return Discovered(node_id, f"http://{addresses[0]}:{port}", name, time.time())
