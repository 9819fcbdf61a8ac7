"""The TUI's link to the node: the replica (opened once, on first use) and who is acting.

Invariants:

* One replica per app, on the node's store file; the CLI, sync and other TUIs share the
  file (see :mod:`node.store.store`), so the TUI must notice their commits
  (:mod:`node.tui.live`) and never trust a derived cache it did not check.
* A :class:`Session` exists only once a member key is unlocked; the key never leaves it
  and is never written anywhere.
* ``local_writes`` counts the commits made through this session: SQLite's
  ``data_version`` does not change for the connection that wrote, so screens compare
  this counter too to know they must reload.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime

from node.commands.base import open_replica
from node.crypto.keys import KeyPair
from node.home import MemberEntry, NodeHome
from node.replica import Replica
from node.tui.data import SummaryCache, short


@dataclass(frozen=True)
class Options:
    """How the app meets the world outside the store: the clock (what "today" and "5 min
    ago" mean; tests and snapshots fix it) and LAN discovery (off, or on the given
    interfaces; None: every interface)."""

    clock: Callable[[], float] = time.time
    lan: bool = True
    lan_interfaces: list[str] | None = None

    def today(self) -> str:
        """Today's local date, ``YYYY-MM-DD`` (as the CLI judges overdue reviews)."""
        return datetime.fromtimestamp(self.clock()).date().isoformat()


class StoreLink:
    """Opens the node's replica on first use and closes it when the app ends."""

    def __init__(self, home: NodeHome, options: Options | None = None) -> None:
        self.home = home
        self.options = options or Options()
        self._stack = AsyncExitStack()
        self._replica: Replica | None = None

    async def replica(self) -> Replica:
        """The open replica; StorageError (a NodeError) if the store cannot be opened."""
        if self._replica is None:
            self._replica = await self._stack.enter_async_context(open_replica(self.home))
        return self._replica

    async def aclose(self) -> None:
        """Close the store; idempotent."""
        self._replica = None
        await self._stack.aclose()


@dataclass
class Session:
    """An unlocked member acting through one replica."""

    home: NodeHome
    replica: Replica
    member: MemberEntry
    key: KeyPair
    local_writes: int = 0
    summaries: SummaryCache = field(default_factory=SummaryCache)
    options: Options = field(default_factory=Options)
    node_key: KeyPair | None = None  # once unlocked for a sync or a bundle; never written

    @property
    def me(self) -> bytes:
        return self.member.member

    def wrote(self) -> None:
        """Count a commit made through this session (see the module docstring)."""
        self.local_writes += 1

    def node_labels(self, peers: dict[bytes, str]) -> dict[bytes, str]:
        """How to name node keys: this node, else a peer's name (``peers``)."""
        return {**peers, self.home.node_public: f"{self.home.config.name} (this node)"}


async def open_session(link: StoreLink, member: MemberEntry, key: KeyPair) -> Session:
    """A session for an unlocked member on the link's replica."""
    return Session(link.home, await link.replica(), member, key, options=link.options)


def describe_member(member: MemberEntry) -> str:
    return f"{member.name} ({short(member.member)})"
