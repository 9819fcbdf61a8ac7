"""The peers this node syncs with: all SQL for the ``peers`` table.

Invariants:

* A peer is keyed by its normalised URL (``node.sync.transport.parse_peer_url``); its name
  is optional and unique among peers, ignoring case.
* ``node`` (the peer's node key) is learned on the first contact that completes a handshake
  (trust on first use). Syncs pass it as the expected peer key, so a node answering with
  another key fails the handshake, unless it presents a hand-over chain signed by the
  pinned key (docs/protocol.md 10.1): then the contact records the new key. Remove and
  re-add the peer to accept a new key by other means.
* ``ops_sent`` / ``ops_received`` accumulate over every contact; ``last_contact`` is when
  the peer last completed a handshake; ``last_error`` is the latest contact's error, NULL
  after a contact without one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from node.errors import NodeError, NotFound
from node.store.store import Store

_COLUMNS = "url, name, node, added, last_contact, ops_sent, ops_received, last_error"


@dataclass(frozen=True, slots=True)
class Peer:
    """One row of the peers table."""

    url: str
    name: str | None
    node: bytes | None  # learned on first contact (trust on first use)
    added: int  # unix seconds
    last_contact: int | None  # unix seconds of the last completed handshake
    ops_sent: int
    ops_received: int
    last_error: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "peer": self.url,
            "name": self.name,
            "node": self.node.hex() if self.node else None,
            "last_contact": self.last_contact,
            "ops_sent": self.ops_sent,
            "ops_received": self.ops_received,
            "last_error": self.last_error,
        }


class PeerBook:
    """The peers table of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def _rows(self, where: str = "", params: tuple[Any, ...] = ()) -> list[Peer]:
        sql = f"SELECT {_COLUMNS} FROM peers {where}"
        async with self.store.db.execute(sql, params) as cursor:
            rows = await cursor.fetchall()
        return [Peer(*row) for row in rows]

    async def all(self) -> list[Peer]:
        """Every peer, oldest first."""
        return await self._rows("ORDER BY added, url")

    async def get(self, url: str) -> Peer | None:
        rows = await self._rows("WHERE url = ?", (url,))
        return rows[0] if rows else None

    async def find(self, url_or_name: str) -> Peer:
        """A peer by URL or by name; NotFound saying how to list them otherwise."""
        text = url_or_name.strip()
        rows = await self._rows(
            "WHERE url = ? OR lower(name) = lower(?) ORDER BY url = ? DESC", (text, text, text)
        )
        if not rows:
            raise NotFound(f"no peer {text!r}: `circle-node peer list` shows them")
        return rows[0]

    async def ops_stored_since(self, stamp: int | None) -> int:
        """Ops stored here after ``stamp`` (unix seconds; None: all): what a peer last seen
        then may still lack (an upper bound: it may hold some from elsewhere)."""
        sql = "SELECT COUNT(*) FROM ops" + ("" if stamp is None else " WHERE received > ?")
        async with self.store.db.execute(sql, () if stamp is None else (stamp,)) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def add(self, url: str, name: str | None = None, *, now: int | None = None) -> Peer:
        """Add a peer; NodeError if the URL or the name is already taken."""
        async with self.store.write():
            if await self.get(url) is not None:
                raise NodeError(f"{url} is already a peer: `circle-node peer list` shows it")
            if name is not None and await self._rows("WHERE lower(name) = lower(?)", (name,)):
                raise NodeError(f"another peer is already named {name!r}: choose another name")
            await self.store.db.execute(
                "INSERT INTO peers (url, name, added) VALUES (?, ?, ?)",
                (url, name, int(time.time()) if now is None else now),
            )
        peer = await self.get(url)
        assert peer is not None
        return peer

    async def remove(self, url_or_name: str) -> Peer:
        """Remove a peer by URL or name; the row it was."""
        async with self.store.write():
            peer = await self.find(url_or_name)
            await self.store.db.execute("DELETE FROM peers WHERE url = ?", (peer.url,))
        return peer

    async def record_contact(
        self,
        url: str,
        *,
        node: bytes | None,
        ops_sent: int = 0,
        ops_received: int = 0,
        error: str | None = None,
        now: int | None = None,
    ) -> bool:
        """Record one contact with a configured peer (``node``: the key its handshake
        proved, None if it did not get that far; the handshake only completes with the
        pinned key or a successor it handed over to). False if ``url`` is not a peer."""
        when = int(time.time()) if now is None else now
        async with self.store.write():
            cursor = await self.store.db.execute(
                "UPDATE peers SET node = COALESCE(?, node),"
                " last_contact = CASE WHEN ? IS NULL THEN last_contact ELSE ? END,"
                " ops_sent = ops_sent + ?, ops_received = ops_received + ?, last_error = ?"
                " WHERE url = ?",
                (node, node, when, ops_sent, ops_received, error, url),
            )
            updated = cursor.rowcount
            await cursor.close()
        return updated > 0
