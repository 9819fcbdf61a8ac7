"""A circle's governance digest: what the dashboard needs from its folded records, kept
in the store so a start-up reads it instead of refolding every unchanged circle.

Written by the TUI (for the circles it folded) and by the node itself: ``serve`` and
``bundle import`` refresh the digests of the circles they changed in the background
(:func:`refresh_digests`, run by :mod:`node.digest_refresh`), so the first TUI start after
a big sync or import reads them too. Nothing here imports Textual.

Folding a circle (every record through the consent rules, see :mod:`node.governance`) is
the cost of a dashboard on a big store: about 0.15 s per 500 proposals on a Pi-class core.
The digest is the fold's result reduced to plain values that do not depend on who looks
or on the day: the open proposals with the write members still owed a position, the
decisions, the agreements in force with their review dates, the elections open for
nominations with the write members who have not nominated (or passed) in the open round,
and the pledges signed in this circle (a den) that their pledger has not confirmed yet.
The member and ``today`` are applied when it is read (:func:`summary_of`), so one digest
serves every member.

Freshness. A digest is stored with a *stamp*: a hash of the digest format, every author's
chain head in the circle (any new op of the circle, auth or record, moves one), the
lowest seq per author stored as anything but valid (a soft fail moves that), the number
of the circle's ops and its latest arrival (any insert or removal), and the authors
frozen in it after an equivocation. Everything a fold reads is covered, so a digest whose
stamp equals the one computed from the store now is exactly what a fold would give now;
any other row is ignored and refolded, never shown. The stamp is read before the fold and
again after it, and the digest is stored only if both agree (another process may commit
meanwhile); storing waits until the dashboard is drawn, all circles in one transaction.
A row that does not decode is treated as missing.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import msgspec

from node.domain.governance.agreements import IN_FORCE
from node.domain.governance.consent import OPEN_STATES
from node.domain.governance.funding import PLEDGE_MOVES, PledgeRec, PledgeStateRec
from node.domain.governance.funding import try_decode as try_decode_funding
from node.domain.governance.ideas import Step, follow
from node.domain.governance.records import record_id
from node.elections import roles_from
from node.errors import NodeError
from node.governance import CircleGovernance, RawRecord, load, valid_records
from node.replica import Replica
from node.store.digests import DigestTable

log = logging.getLogger(__name__)

FORMAT = 2  # bump whenever the digest or the rules that fold it change meaning
RECENT_DECISIONS = 50  # the dashboard shows the newest 50 over all circles: 50 per circle do


class OpenItem(msgspec.Struct, array_like=True, frozen=True):
    proposal: bytes
    title: str
    ts: int
    op_id: bytes
    version: int  # the current version's number
    waiting: list[bytes]  # write members the round counts on, with no position on it yet


class DecidedItem(msgspec.Struct, array_like=True, frozen=True):
    proposal: bytes
    title: str
    ts: int  # the decision record's time


class ReviewItem(msgspec.Struct, array_like=True, frozen=True):
    agreement: bytes
    title: str
    review_date: str  # in force and not being amended: overdue once today is past it


class NominationItem(msgspec.Struct, array_like=True, frozen=True):
    election: bytes
    role: str
    round: int  # the open round
    stage: str  # the round's stage: "nominations", or "changes" once someone changed
    waiting: list[bytes]  # write members with no nomination (or pass) in the round yet


class PledgeItem(msgspec.Struct, array_like=True, frozen=True):
    pledge: bytes
    pitch: bytes  # the pitch's id; the pitch itself lives in the proposal's circle
    member: bytes  # the pledger: only they can confirm it
    amount: int
    currency: str


class Digest(msgspec.Struct, array_like=True, frozen=True):
    format: int
    open_count: int
    open: list[OpenItem]  # by (ts, op id)
    decided: list[DecidedItem]  # the newest RECENT_DECISIONS, newest first
    reviews: list[ReviewItem]  # by (review date, id)
    nominations: list[NominationItem] = []  # by election id
    pledges: list[PledgeItem] = []  # still "pledged", by pledge id


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Digest)


def encode(digest: Digest) -> bytes:
    return _encoder.encode(digest)


def decode(body: bytes) -> Digest | None:
    """The stored digest, or None if it is damaged or of another format."""
    try:
        digest = _decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return digest if digest.format == FORMAT else None


def digest_of(cg: CircleGovernance, raws: Sequence[RawRecord] = ()) -> Digest:
    """Reduce a folded circle to its digest; ``raws``, the circle's valid records
    (:func:`node.governance.valid_records`), give its elections and pledges."""
    opened: list[OpenItem] = []
    decided: list[DecidedItem] = []
    open_count = 0
    for proposal in sorted(cg.gov.proposals.values(), key=lambda p: (p.ts, p.op_id)):
        outcome = cg.outcome(proposal)
        if outcome.state in OPEN_STATES:
            open_count += 1
            waiting = sorted(outcome.required - set(outcome.positions))
            item = OpenItem(
                proposal.id,
                proposal.body.title,
                proposal.ts,
                proposal.op_id,
                proposal.current().number,
                waiting,
            )
            opened.append(item)
        if outcome.decision is not None:
            decided.append(DecidedItem(proposal.id, proposal.body.title, outcome.decision.ts))
    reviews = [
        ReviewItem(a.id, a.proposal.body.title, a.review_date)
        for a in cg.agreements()
        if a.state == IN_FORCE and not a.amending and a.review_date is not None
    ]
    reviews.sort(key=lambda r: (r.review_date, r.agreement))
    decided.sort(key=lambda d: (-d.ts, d.proposal))
    return Digest(
        FORMAT,
        open_count,
        opened,
        decided[:RECENT_DECISIONS],
        reviews,
        nominations_of(cg, raws),
        pledges_of(raws),
    )


def nominations_of(cg: CircleGovernance, raws: Sequence[RawRecord]) -> list[NominationItem]:
    """Every election open for nominations, with the write members who have no standing
    nomination (or pass) in its open round (the CLI's ``election nominate`` would take
    theirs now)."""
    if not raws:
        return []
    cr = roles_from(cg, raws)
    required = cg.required_at(None)
    found: list[NominationItem] = []
    for eid, election in sorted(cr.elections.elections.items()):
        if cr.elections.phase(election) != "nominating":
            continue
        number = election.current_round
        round_ = election.rounds.get(number)
        acted = set(round_.standing()) if round_ is not None else set()
        stage = round_.stage if round_ is not None else "nominations"
        found.append(
            NominationItem(eid, election.record.role, number, stage, sorted(required - acted))
        )
    return found


def pledges_of(raws: Iterable[RawRecord]) -> list[PledgeItem]:
    """The pledges signed in this circle whose chain of states, signed by their pledger
    here, is still at ``pledged`` (the rules of :class:`node.domain.governance.funding.
    Funding`). Whether the pitch names this circle as its den is known only in the pitch's
    circle, so a pledge to a pitch of another den (which the den screen ignores) would be
    listed too; the CLI and the TUI never sign one."""
    pledges: dict[bytes, tuple[bytes, PledgeRec]] = {}
    steps: dict[bytes, list[tuple[bytes, Step]]] = defaultdict(list)
    for raw in raws:
        record = try_decode_funding(raw.body)
        if isinstance(record, PledgeRec):
            pledges[record_id(raw.op_id)] = (raw.member, record)
        elif isinstance(record, PledgeStateRec):
            step = Step(raw.op_id, record.after, record.state)
            steps[record.pledge].append((raw.member, step))
    found: list[PledgeItem] = []
    for pid, (member, pledge) in sorted(pledges.items()):
        own = [step for signer, step in steps.get(pid, []) if signer == member]
        state, _taken = follow("pledged", own, PLEDGE_MOVES)
        if state == "pledged":
            found.append(PledgeItem(pid, pledge.pitch, member, pledge.amount, pledge.currency))
    return found


async def stamp_of(replica: Replica, circle: bytes) -> bytes:
    """What a fold of ``circle`` depends on, hashed (see the module docstring)."""
    heads = await replica.store.heads_for(circle)
    stops = await replica.store.first_unforwardable(circle)
    marks = await DigestTable(replica.store).marks(circle)
    h = hashlib.blake2b(digest_size=32)
    h.update(_encoder.encode([FORMAT, sorted(heads.items()), sorted(stops.items()), marks]))
    return h.digest()


async def circle_digest(
    replica: Replica, circle: bytes, stamp: bytes
) -> tuple[Digest, bytes | None]:
    """The digest of ``circle`` whose store stamp is ``stamp`` (just read): the stored one
    if its stamp matches, else a fresh fold. The second value is the encoded fresh fold
    to store under ``stamp`` (:func:`save_digests`), or None: nothing to store (it was
    read from the store, or another process committed while it was folded)."""
    stored = await DigestTable(replica.store).get(circle)
    if stored is not None and stored[0] == stamp:
        found = decode(stored[1])
        if found is not None:
            return found, None
    return await fold_under(replica, circle, stamp)


async def fold_under(replica: Replica, circle: bytes, stamp: bytes) -> tuple[Digest, bytes | None]:
    """Fold ``circle`` whose stamp was just read as ``stamp``: the digest, and its encoding
    if the stamp read after the fold is still ``stamp`` (else None: do not store it).

    The replica's caches are dropped first if another process committed since they were
    filled, *after* ``stamp`` was read: a commit that landed before the stamp read is then
    folded in, and one that lands later moves the stamp, so a stored digest never mixes a
    newer stamp with older cached state."""
    await replica.refresh()
    digest = digest_of(await load(replica, circle), await valid_records(replica, circle))
    fresh = await stamp_of(replica, circle) == stamp
    return digest, encode(digest) if fresh else None


async def save_digests(replica: Replica, digests: dict[bytes, tuple[bytes, bytes]]) -> None:
    """Store ``{circle: (stamp, body)}`` in one transaction. A digest stays right for its
    stamp even if the circle moved on since, so this can wait until the screen is drawn.
    A store that cannot be written (read-only, full, locked) only costs the next start a
    fold."""
    if not digests:
        return
    try:
        await DigestTable(replica.store).put_many(
            [(circle, stamp, body) for circle, (stamp, body) in sorted(digests.items())]
        )
    except NodeError as exc:
        log.warning("cannot keep the dashboard's governance digests: %s", exc)


@dataclass
class RefreshReport:
    """What one :func:`refresh_digests` did."""

    checked: int = 0  # circles whose stamp was compared with the stored digest's
    folded: int = 0  # circles folded (their stored digest was missing or stale)
    stored: int = 0  # digests stored
    moved: int = 0  # folded, but the circle changed meanwhile: nothing stored
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "checked": self.checked,
            "folded": self.folded,
            "stored": self.stored,
            "moved": self.moved,
            "seconds": round(self.seconds, 3),
        }


async def refresh_digests(replica: Replica, circles: list[bytes] | None = None) -> RefreshReport:
    """Bring the stored digests of ``circles`` (None: every circle held) up to date: each
    circle whose stored digest is missing, damaged or stale is folded and stored under the
    stamp read before the fold, but only if the stamp read after the fold is the same
    (:func:`circle_digest`); a circle that moved meanwhile is left for the next refresh
    (or the next TUI start). Each digest is stored in its own short transaction, so an
    interrupted refresh keeps what it finished. Store errors raise :class:`NodeError`."""
    report = RefreshReport()
    started = time.perf_counter()
    await replica.refresh()
    held = await replica.circles()
    wanted = sorted(held if circles is None else set(circles) & held)
    for circle in wanted:
        stamp = await stamp_of(replica, circle)
        report.checked += 1
        stored = await DigestTable(replica.store).get(circle)
        if stored is not None and stored[0] == stamp and decode(stored[1]) is not None:
            continue
        report.folded += 1
        _digest, body = await fold_under(replica, circle, stamp)
        if body is None:
            report.moved += 1
            continue
        await DigestTable(replica.store).put(circle, stamp, body)
        report.stored += 1
    report.seconds = time.perf_counter() - started
    return report
