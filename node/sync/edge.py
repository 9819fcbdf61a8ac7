"""aiohttp and OS errors translated, at the edge, into what a user can act on.

:func:`network_error` (cannot reach, connection lost) and :func:`status_problem` (an HTTP
status from the other end) say what went wrong and what to check.
"""

from __future__ import annotations

import os
import socket

import aiohttp

from node.errors import NetworkError, ProtocolError


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return f"host not found ({exc.strerror})"
    if exc.errno is not None and exc.errno > 0:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


def network_error(url: str, exc: BaseException, *, connecting: bool) -> NetworkError:
    """A NetworkError saying what went wrong talking to ``url`` and what to check."""
    if isinstance(exc, TimeoutError):
        reason = "timed out"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        reason = _os_reason(exc.os_error)
        if isinstance(exc.os_error, ConnectionRefusedError):
            reason = "connection refused"
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        reason = "the peer closed the connection"
    elif isinstance(exc, OSError):
        reason = _os_reason(exc)
    else:
        reason = str(exc) or type(exc).__name__
    if connecting:
        return NetworkError(
            f"cannot reach {url}: {reason}; is `circle-node serve` running there, "
            "and is the address right?"
        )
    return NetworkError(f"lost the connection to {url}: {reason}")


def handshake_timed_out(url: str, seconds: float) -> NetworkError:
    """The peer took the connection but did not answer the sync handshake in time."""
    return NetworkError(
        f"{url} accepted the connection but did not answer the sync handshake within "
        f"{seconds:g} s (handshake_timeout): is a circle-node serving there, and not stuck?"
    )


def status_problem(url: str, status: int, had_session: bool) -> ProtocolError:
    if status == 404 and had_session:
        return ProtocolError(f"the sync session with {url} expired (idle too long): sync again")
    if status == 404:
        return ProtocolError(f"{url} has no circle-node sync endpoint (HTTP 404): check the URL")
    if status == 413:
        return ProtocolError(f"{url} refused a request as too large (HTTP 413)")
    if status == 503:
        return ProtocolError(f"{url} is busy (too many sync sessions): try again later")
    if status == 429:
        return ProtocolError(
            f"{url} is refusing us for now (too many requests, or refused ops): try again later"
        )
    if status == 408:
        return ProtocolError(f"{url} timed out reading our request: check the network")
    return ProtocolError(f"{url} answered HTTP {status} to a sync exchange: check the URL")
