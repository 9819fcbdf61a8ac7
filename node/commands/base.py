"""What every command shares: the context, the output, the acting member and the replica."""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from node.crypto.keys import KeyPair
from node.errors import StorageError
from node.home import MemberEntry, NodeHome, ask_passphrase
from node.replica import Replica

T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    """The global options: where the node lives, who acts, how to print."""

    home: NodeHome
    acting: str | None  # --as NAME_OR_ID
    json: bool


@dataclass(frozen=True)
class Output:
    """What a command prints: ``data`` with --json, ``text`` otherwise; and its exit code."""

    data: dict[str, Any]
    text: str
    code: int = 0


Handler = Callable[[Context, argparse.Namespace], Output]


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run one command's async part to completion."""
    return asyncio.run(coro)


@asynccontextmanager
async def open_replica(home: NodeHome) -> AsyncIterator[Replica]:
    """The node's replica; an SQLite failure anywhere inside becomes StorageError."""
    path = home.require().store_path
    try:
        async with Replica.open(path) as replica:
            yield replica
    except sqlite3.Error as exc:
        raise StorageError(
            f"the store {path} cannot be read ({exc}): run `circle-node verify`, or "
            "restore store.db from a backup"
        ) from exc


def acting_member(ctx: Context) -> MemberEntry:
    """The member named by --as, or the only member this node holds."""
    return ctx.home.require().resolve_member(ctx.acting)


def unlock(ctx: Context, entry: MemberEntry) -> KeyPair:
    """The member's key, asking for its passphrase (or reading $CIRCLE_NODE_PASSPHRASE)."""
    return ctx.home.unlock_member(entry, ask_passphrase(f"member {entry.describe()}"))


def short(key: bytes) -> str:
    """The first 8 hex digits of an id, for human text."""
    return key.hex()[:8]
