"""Peer addresses: parsing and normalising the URLs of peers (no network imports, so the
CLI can check an address without loading aiohttp)."""

from __future__ import annotations

from dataclasses import dataclass

import yarl

from node.errors import ConfigError

_SCHEMES = {"http", "https", "ws", "wss", "http+post", "https+post"}


@dataclass(frozen=True)
class PeerUrl:
    """A peer address, parsed: how to reach its WebSocket and its HTTP fallback."""

    url: str  # normalised: no trailing slash
    websocket: str | None  # ws(s)://.../sync, unless the fallback is forced
    fallback: str | None  # http(s)://.../sync/http, unless WebSocket is forced


def parse_peer_url(text: str) -> PeerUrl:
    """A peer URL checked and normalised; ConfigError saying what is wrong otherwise."""
    raw = text.strip()
    try:
        url = yarl.URL(raw)
    except ValueError as exc:
        raise ConfigError(f"{raw!r} is not a URL: {exc}") from exc
    scheme = url.scheme.lower()
    if scheme not in _SCHEMES or not url.host:
        raise ConfigError(
            f"{raw!r} is not a peer address: use http://HOST:PORT (or ws://, https://, "
            "wss://, http+post:// to force the plain-HTTP fallback)"
        )
    if url.query_string or url.fragment or url.user:
        raise ConfigError(f"{raw!r}: a peer address has no query, fragment or user part")
    authority, path = url.raw_authority, url.raw_path.rstrip("/")
    secure = scheme in ("https", "wss", "https+post")
    websocket = fallback = None
    if not scheme.endswith("+post"):
        websocket = f"{'wss' if secure else 'ws'}://{authority}{path}/sync"
    if scheme not in ("ws", "wss"):
        fallback = f"{'https' if secure else 'http'}://{authority}{path}/sync/http"
    normalised = f"{scheme}://{authority}{path}"
    return PeerUrl(normalised, websocket, fallback)
