"""What the peers and bundles screens show, read into plain values (see :mod:`node.tui.data`).

A peer's *status* comes from the peers table alone (the TUI runs no sync service): online
while its last contact, made by ``serve``, ``sync --once`` or the TUI's "sync now",
succeeded within :data:`ONLINE_SECONDS`; offline after a failed contact or a longer
silence; never before any contact. *New* counts the ops stored here since that contact:
an upper bound of what the peer may lack.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.replica import Replica
from node.store.peers import Peer, PeerBook
from node.sync.bundle import ImportReport

ONLINE_SECONDS = 300


@dataclass(frozen=True, slots=True)
class PeerRow:
    peer: Peer
    status: str  # "online", "offline" or "never"
    new_ops: int  # ops stored here since its last contact


def peer_state(peer: Peer, now: float) -> str:
    if peer.last_error:
        return "offline"
    if peer.last_contact is None:
        return "never"
    return "online" if now - peer.last_contact <= ONLINE_SECONDS else "offline"


async def load_peer_rows(replica: Replica, now: float) -> list[PeerRow]:
    await replica.refresh()
    book = PeerBook(replica.store)
    rows = []
    for peer in await book.all():
        new = await book.ops_stored_since(peer.last_contact)
        rows.append(PeerRow(peer, peer_state(peer, now), new))
    return rows


def import_summary(report: ImportReport) -> str:
    """One line on what an import did, as ``bundle import`` prints it."""
    data = report.as_dict()
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(data["reasons"].items()))
    return (
        f"Bundle from node {data['from'][:8]}: added {data['added']}, duplicates "
        f"{data['duplicates']}, rejected {data['rejected']}"
        + (f" ({reasons})" if reasons else "")
        + f", pending {data['pending']}."
    )


def import_problem(report: ImportReport) -> str | None:
    """What went wrong in an import (the first failed or skipped section), else None."""
    if report.ok:
        return None
    failed = report.failed or report.skipped
    if not failed:
        return "nothing in the bundle could be read"
    return f"circle {failed[0]['circle'][:8]}: {failed[0]['error']}"
