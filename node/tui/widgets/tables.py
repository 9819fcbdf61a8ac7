"""Row tables of the dashboard and the circle screen: inbox, decisions, peers, proposals,
members and logbook. Each keeps its cursor on the same row when it is refilled."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.text import Text
from textual.widgets import DataTable

from node.domain.governance.logbook import LogEntry
from node.store.peers import Peer
from node.tui.data import DecisionItem, InboxItem, MemberItem, ProposalItem, level_name, short

Cell = str | Text


def proposal_key(circle: bytes, proposal: bytes) -> str:
    """A row key naming a proposal of a circle (see :func:`parse_proposal_key`)."""
    return f"{circle.hex()}:{proposal.hex()}"


def parse_proposal_key(key: str | None) -> tuple[bytes, bytes] | None:
    parts = (key or "").split(":")
    if len(parts) < 2:
        return None
    return bytes.fromhex(parts[0]), bytes.fromhex(parts[1])


def parse_inbox_key(key: str | None) -> tuple[str, bytes] | None:
    """``(kind, circle)`` of an inbox row of a nomination or a pledge, else None."""
    parts = (key or "").split(":")
    if len(parts) != 3 or parts[2] not in ("nomination", "pledge"):
        return None
    return parts[2], bytes.fromhex(parts[0])


def state_text(state: str) -> Text:
    """A proposal state, coloured so it reads on a 16-colour console too."""
    styles = {
        "agreed": "bold green",
        "integrating": "bold red",
        "consent_round": "bold yellow",
        "withdrawn": "dim",
        "deferred": "dim",
    }
    return Text(state, style=styles.get(state, ""))


class RowTable(DataTable[Cell]):
    """A read-only table of rows with keys; Enter posts ``RowSelected``."""

    COLUMNS: Sequence[tuple[str, int | None]] = ()

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)

    def on_mount(self) -> None:
        for label, width in self.COLUMNS:
            self.add_column(label, width=width)

    def fill(self, rows: Iterable[tuple[str, Sequence[Cell]]]) -> None:
        """Replace every row, keeping the cursor on the row with the same key."""
        keep = None
        if self.row_count and self.cursor_row < self.row_count:
            keep = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        self.clear()
        for key, cells in rows:
            self.add(key, cells)
        if keep is not None and keep in self.rows:
            self.move_cursor(row=self.get_row_index(keep), animate=False)

    def add(self, key: str, cells: Sequence[Cell]) -> None:
        """Add one row; text is shown as is (DataTable would read a str as markup)."""
        self.add_row(*(Text(c) if isinstance(c, str) else c for c in cells), key=key)

    @property
    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value


class InboxTable(RowTable):
    COLUMNS = (("Needs you", 12), ("Circle", 10), ("Proposal", 60))

    @staticmethod
    def row(item: InboxItem) -> tuple[str, tuple[Cell, ...]]:
        need = Text(item.need, style="bold red" if item.kind == "review" else "bold")
        key = proposal_key(item.circle, item.proposal)
        if item.kind in ("nomination", "pledge"):
            key += f":{item.kind}"  # not a proposal: Enter opens the elections or den screen
        return key, (need, item.circle_name, item.title)

    def show(self, items: list[InboxItem]) -> None:
        self.fill(self.row(item) for item in items)

    def add_items(self, items: list[InboxItem]) -> None:
        """Add rows at the end (a first load in progress)."""
        for item in items:
            self.add(*self.row(item))


class DecisionsTable(RowTable):
    COLUMNS = (("Decided", 10), ("Circle", 12), ("Proposal", None))

    def show(self, items: list[DecisionItem]) -> None:
        self.fill(
            (proposal_key(d.circle, d.proposal), (d.day, d.circle_name, d.title)) for d in items
        )


def ago(stamp: int | None, now: float) -> str:
    """How long before ``now`` a contact was, short: "never", "just now", "5 min ago",
    "3 h ago", "12 d ago" (relative, so it reads the same in every time zone)."""
    if stamp is None:
        return "never"
    seconds = max(0, int(now) - stamp)
    if seconds < 60:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"  # pragma: no cover (the loop always returns for seconds >= 60)


def peer_status(peer: Peer) -> Text:
    """``error`` when the latest contact failed, ``never`` before any, else ``ok``."""
    if peer.last_error:
        return Text("error", style="bold red")
    if peer.last_contact is None:
        return Text("never", style="dim")
    return Text("ok", style="green")


def peer_detail(peer: Peer, now: float) -> Text:
    """The highlighted peer in full: URL, node key, and the latest contact's error."""
    text = Text(peer.url, style="bold")
    text.append(f"\nnode {peer.node.hex()[:16] if peer.node else 'unknown until first contact'}")
    text.append(f"\nlast contact {ago(peer.last_contact, now)}")
    text.append(f" · ops sent {peer.ops_sent}, received {peer.ops_received}")
    if peer.last_error:
        text.append(f"\nlast error: {peer.last_error}", style="red")
    return text


class PeersTable(RowTable):
    COLUMNS = (("", 5), ("Peer", 14), ("Contact", 11), ("Sent", 5), ("Recv", None))

    def show(self, peers: list[Peer], now: float) -> None:
        self.fill(
            (
                peer.url,
                (
                    peer_status(peer),
                    peer.name or peer.url,
                    ago(peer.last_contact, now),
                    str(peer.ops_sent),
                    str(peer.ops_received),
                ),
            )
            for peer in peers
        )


class ProposalsTable(RowTable):
    COLUMNS = (("", 1), ("State", 13), ("Created", 10), ("Proposal", None))

    def show(self, circle: bytes, items: list[ProposalItem]) -> None:
        self.fill(
            (
                proposal_key(circle, p.proposal),
                (
                    Text("*", style="bold") if p.awaits_me else "",
                    state_text(p.state),
                    p.created,
                    p.title,
                ),
            )
            for p in items
        )


class MembersTable(RowTable):
    COLUMNS = (("Member", 20), ("Level", 7), ("Id", None))

    def show(self, items: list[MemberItem]) -> None:
        self.fill((m.member.hex(), (m.name, level_name(m.level), short(m.member))) for m in items)


class LogbookTable(RowTable):
    COLUMNS = (("Date", 10), ("Kind", 9), ("Entry", None))

    def show(self, circle: bytes, entries: list[LogEntry]) -> None:
        def key(entry: LogEntry) -> str:
            if entry.proposal is not None:
                return proposal_key(circle, entry.proposal) + ":" + entry.op.hex()
            return entry.op.hex()

        def title(entry: LogEntry) -> str:
            outcome = entry.detail.get("outcome")
            return f"{entry.title} ({outcome})" if outcome else entry.title

        self.fill((key(e), (e.date, e.kind, title(e))) for e in entries)
