"""What the dashboard and the circle screen show, read from a replica into plain values.

Screens never touch the store: a worker calls one loader here and posts the frozen value it
returns. The loaders only read, through :mod:`node.governance` and the replica, so they see
exactly what the CLI sees; each starts with ``replica.refresh()`` so another process's
commits (the CLI, sync) are never shadowed by a stale cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import node.elections  # noqa: F401  (registers election entries in every circle's logbook)
from node.digests import (
    RECENT_DECISIONS,
    Digest,
    circle_digest,
    digest_of,
    save_digests,
    stamp_of,
)
from node.domain.auth import AuthState, Level
from node.domain.governance.consent import OPEN_STATES, Proposal
from node.domain.governance.logbook import LogEntry, day_of
from node.governance import CircleGovernance, RawRecord, circle_logbook, load
from node.replica import Replica
from node.store.peers import Peer, PeerBook


def level_name(level: Level | None) -> str:
    return level.name.lower() if level is not None else "-"


def short(key: bytes) -> str:
    """The first 8 hex digits of an id, as the CLI prints them."""
    return key.hex()[:8]


@dataclass(frozen=True, slots=True)
class CircleItem:
    """A circle in the dashboard's tree."""

    circle: bytes
    name: str
    parent: bytes | None  # from the genesis; shown as a root if this node does not hold it
    my_level: Level | None  # the unlocked member's level, None if not a member


@dataclass(frozen=True, slots=True)
class InboxItem:
    """Something that needs the unlocked member: a position to take, a review due, a
    nomination to make in an open election, or their own pledge to confirm."""

    kind: str  # "position", "review", "nomination" or "pledge"
    circle: bytes
    circle_name: str
    proposal: bytes  # the proposal, agreement, election or pledge id (by ``kind``)
    title: str
    need: str  # what is needed, short: "position v2", "review due", "nominate", ...


@dataclass(frozen=True, slots=True)
class DecisionItem:
    circle: bytes
    circle_name: str
    proposal: bytes
    title: str
    ts: int

    @property
    def day(self) -> str:
        return day_of(self.ts)


@dataclass(frozen=True)
class CircleSummary:
    """What the dashboard needs from one circle's governance."""

    circle: bytes
    open_proposals: int
    inbox: list[InboxItem]
    decisions: list[DecisionItem]  # the circle's newest RECENT_DECISIONS, newest first


def money(minor: int) -> str:
    """Minor units as the currency's units: 25050 -> ``250.50``."""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def circle_name(state: AuthState) -> str:
    return state.genesis.name if state.genesis else short(state.circle)


def awaits(cg: CircleGovernance, proposal: Proposal, me: bytes) -> bool:
    """The proposal's round is open and counts on ``me``, who has no position on its
    current version yet."""
    outcome = cg.outcome(proposal)
    return outcome.state in OPEN_STATES and me in outcome.required and me not in outcome.positions


def summary_of(digest: Digest, circle: bytes, name: str, me: bytes, today: str) -> CircleSummary:
    """What the dashboard shows of one circle, for ``me`` on ``today``."""
    inbox = [
        InboxItem("position", circle, name, item.proposal, item.title, f"position v{item.version}")
        for item in digest.open
        if me in item.waiting
    ]
    inbox += [
        InboxItem("review", circle, name, item.agreement, item.title, "review due")
        for item in digest.reviews
        if item.review_date < today
    ]
    inbox += [
        InboxItem(
            "nomination",
            circle,
            name,
            item.election,
            f"{item.role} election, round {item.round}",
            "nominate" if item.stage == "nominations" else "change round",
        )
        for item in digest.nominations
        if me in item.waiting
    ]
    inbox += [
        InboxItem(
            "pledge",
            circle,
            name,
            item.pledge,
            f"{money(item.amount)} {item.currency} to pitch {short(item.pitch)}",
            "confirm pledge",
        )
        for item in digest.pledges
        if item.member == me
    ]
    decisions = [DecisionItem(circle, name, d.proposal, d.title, d.ts) for d in digest.decided]
    return CircleSummary(circle, digest.open_count, inbox, decisions)


def summarise(
    cg: CircleGovernance, name: str, me: bytes, today: str, raws: Sequence[RawRecord] = ()
) -> CircleSummary:
    """Fold-to-summary in one step (what :class:`SummaryCache` gives, without caching;
    ``raws``, the circle's valid records, add its nominations and pledges)."""
    return summary_of(digest_of(cg, raws), cg.circle, name, me, today)


class SummaryCache:
    """Circle summaries, refolded only when the circle changed.

    Each use computes the circle's stamp from the store (:func:`node.digests.stamp_of`:
    every chain head and every op not stored as valid); a summary is reused while its
    stamp, the member, the day and the circle's name are unchanged. Otherwise the circle's
    digest comes from the store when its stamp matches (another start-up or another TUI
    folded it), else from a fresh fold, kept until :meth:`save` stores it. So nothing
    shown is older than the store."""

    def __init__(self) -> None:
        self._held: dict[bytes, tuple[object, CircleSummary]] = {}
        self._unsaved: dict[bytes, tuple[bytes, bytes]] = {}  # circle -> (stamp, digest)

    async def summary(
        self, replica: Replica, circle: bytes, name: str, me: bytes, today: str
    ) -> CircleSummary:
        await replica.refresh()
        stamp = await stamp_of(replica, circle)
        key = (stamp, me, today, name)
        held = self._held.get(circle)
        if held is not None and held[0] == key:
            return held[1]
        digest, unsaved = await circle_digest(replica, circle, stamp)
        if unsaved is not None:
            self._unsaved[circle] = (stamp, unsaved)
        found = summary_of(digest, circle, name, me, today)
        self._held[circle] = (key, found)
        return found

    async def save(self, replica: Replica) -> None:
        """Store the digests folded since the last save, for the next start-up."""
        unsaved, self._unsaved = self._unsaved, {}
        await save_digests(replica, unsaved)


async def load_circle_items(replica: Replica, me: bytes) -> list[CircleItem]:
    """Every circle this node holds, by name, with the member's level (auth logs only:
    fast enough to paint before any governance is folded)."""
    await replica.refresh()
    items = []
    for circle in await replica.store.circles():
        state = (await replica.auth_log(circle)).full()
        mine = state.current_members().get(me)
        parent = state.genesis.parent if state.genesis else None
        items.append(CircleItem(circle, circle_name(state), parent, mine.level if mine else None))
    items.sort(key=lambda c: (c.name.casefold(), c.circle))
    return items


async def load_peers(replica: Replica) -> list[Peer]:
    return await PeerBook(replica.store).all()


def recent_decisions(summaries: list[CircleSummary]) -> list[DecisionItem]:
    """The most recent decisions over all circles, newest first."""
    found = [d for s in summaries for d in s.decisions]
    found.sort(key=lambda d: (-d.ts, d.proposal))
    return found[:RECENT_DECISIONS]


def today_iso(today: date | None = None) -> str:
    return (today or date.today()).isoformat()


def circle_tree(
    items: list[CircleItem],
) -> tuple[list[CircleItem], dict[bytes, list[CircleItem]]]:
    """The roots and each circle's children, in the order given. A circle is a root when
    its parent is not held here (a partner's or a parent this node does not host)."""
    held = {item.circle for item in items}
    roots: list[CircleItem] = []
    children: dict[bytes, list[CircleItem]] = {}
    for item in items:
        if item.parent is None or item.parent not in held or item.parent == item.circle:
            roots.append(item)
        else:
            children.setdefault(item.parent, []).append(item)
    return roots, children


# ---- the circle screen ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberItem:
    member: bytes
    name: str
    level: Level


@dataclass(frozen=True, slots=True)
class ProposalItem:
    proposal: bytes
    title: str
    state: str
    created: str
    awaits_me: bool


@dataclass(frozen=True)
class CircleData:
    circle: bytes
    name: str
    purpose: str
    parent: str | None  # the parent's name if held here, else its short id
    members: list[MemberItem]  # managers first, then by name
    hosts: list[str]  # node labels: "this node", a peer's name, or a short id
    proposals: list[ProposalItem]  # newest first
    logbook: list[LogEntry]  # newest first
    my_level: Level | None


async def load_circle_data(
    replica: Replica, circle: bytes, me: bytes, node_labels: dict[bytes, str]
) -> CircleData:
    """One circle: purpose, members with levels, hosts, proposals and logbook."""
    await replica.refresh()
    state = await replica.auth_state(circle)
    genesis = state.genesis
    parent_label = None
    if genesis is not None and genesis.parent is not None:
        parent_label = short(genesis.parent)
        if genesis.parent in await replica.circles():
            parent_label = circle_name(await replica.auth_state(genesis.parent))
    members = sorted(
        (MemberItem(m, info.name, info.level) for m, info in state.current_members().items()),
        key=lambda m: (-int(m.level), m.name.casefold(), m.member),
    )
    hosts = sorted(node_labels.get(node, short(node)) for node in state.hosts())
    cg = await load(replica, circle)
    proposals = [
        ProposalItem(p.id, p.body.title, cg.outcome(p).state, day_of(p.ts), awaits(cg, p, me))
        for p in sorted(cg.gov.proposals.values(), key=lambda p: (-p.ts, p.op_id))
    ]
    entries = await circle_logbook(replica, circle)
    mine = state.current_members().get(me)
    return CircleData(
        circle,
        circle_name(state),
        genesis.purpose if genesis else "",
        parent_label,
        members,
        hosts,
        proposals,
        list(reversed(entries)),
        mine.level if mine else None,
    )
