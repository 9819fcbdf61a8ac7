"""Double linking on a replica: a child circle's leader and representative sit in its
parent circle, on the strength of a ``mandate`` record carrying the child's signed proof.

Invariants:
- The parent's node trusts nothing the child's node says, only signed bytes: each time
  seats are judged, every evidence op's signature and hashes are verified here
  (:func:`verify_evidence`) and the pure rules (:mod:`node.domain.governance.roles`)
  rebuild the child's auth state and consent outcome from the evidence alone.
- A refused mandate signs nothing: the evidence is checked before the mandate is recorded.
- Membership a mandate grants cites it (``SetMember.decision``), so pruning removes only
  seats a mandate made, never a member the parent added for another reason.
- Nothing here reads the clock: ``today`` comes from the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.crypto.ops import OpKind, Signer, decode_header, decode_op, encode_wire, verify_op
from node.domain.auth import AuthState, Level, closure
from node.domain.governance.elections import LINK_ROLES, proof_records
from node.domain.governance.roles import (
    EvidenceOp,
    MandateEntry,
    MandateRec,
    Problem,
    Seat,
    SeatView,
    check_mandate,
    judge_seats,
    prunable,
    require_level,
    try_decode_selection,
)
from node.elections import load_roles, sign_selection
from node.errors import AuthorizationError, DecodeError, NodeError, NotFound, SignatureError
from node.governance import valid_records
from node.local import add_member
from node.replica import Replica

MAX_EVIDENCE_BYTES = 60 * 1024  # a record op is at most 64 KiB, header and fields included


async def build_evidence(replica: Replica, child: bytes, result: bytes) -> list[bytes]:
    """The child's wire ops that prove the ``election_result`` op ``result``."""
    cr = await load_roles(replica, child)
    item = next((s for s in cr.elections.valid_results() if s.op_id == result), None)
    if item is None:
        raise NotFound(f"no valid election result {result.hex()[:12]} in this circle")
    needed = proof_records(cr.cg.gov, item)
    rows = {r.op_id: r for r in await replica.store.ops_of_kind(child, int(OpKind.RECORD))}
    deps = {d for op_id in needed for d in decode_header(rows[op_id].header).deps}
    auth = closure(cr.cg.log.entries, deps)
    wires = [
        encode_wire(r.header, r.sig, r.body)
        for r in await replica.store.auth_ops(child)
        if r.op_id in auth or r.kind == int(OpKind.GENESIS)
    ]
    wires += [encode_wire(rows[o].header, rows[o].sig, rows[o].body) for o in sorted(needed)]
    size = sum(len(w) for w in wires)
    if size > MAX_EVIDENCE_BYTES:
        raise NodeError(
            f"the proof of this seat takes {size} bytes, more than one record can carry "
            f"({MAX_EVIDENCE_BYTES}); the child circle's history of members is too long"
        )
    return wires


def verify_evidence(
    wires: list[bytes], child: bytes, parent: bytes, today: str, result: bytes | None = None
) -> Seat | Problem:
    """Verify every evidence op's signature and hashes, then the pure seat check."""
    ops: list[EvidenceOp] = []
    for wire in wires:
        try:
            op = decode_op(wire)
            verify_op(op)
        except (DecodeError, SignatureError) as exc:
            return Problem(f"an evidence op does not verify: {exc}")
        deps, ts = tuple(op.header.deps), op.header.ts
        ops.append(EvidenceOp(op.op_id, op.kind, op.circle, op.author, op.seq, deps, ts, op.body))
    return check_mandate(ops, child, parent, today, result)


async def seat_views(
    replica: Replica, parent: bytes, today: str
) -> tuple[AuthState, list[SeatView]]:
    """The parent's auth state and every mandate it holds, judged on ``today``."""
    state = await replica.auth_state(parent)
    log = await replica.auth_log(parent)
    entries: list[MandateEntry] = []
    for raw in await valid_records(replica, parent):
        record = try_decode_selection(raw.body)
        if isinstance(record, MandateRec):
            # the signer's level when signing: a manager stepping down later unseats nobody
            info = log.as_of(raw.deps).members.get(raw.member)
            check = verify_evidence(record.evidence, record.child, parent, today, record.result)
            level = info.level if info else Level.NONE
            entries.append(MandateEntry(raw.op_id, raw.member, level, record, check))
    return state, judge_seats(entries, today)


async def child_evidence(
    replica: Replica, parent: bytes, child: bytes, today: str
) -> list[list[bytes]]:
    """From a child circle held here: the proof of each current leader and representative."""
    cr = await load_roles(replica, child)
    genesis = cr.cg.log.full().genesis
    if genesis is None or genesis.parent != parent:
        raise NodeError(f"circle {child.hex()[:8]} does not name {parent.hex()[:8]} as parent")
    roles = cr.roles()
    proofs = []
    for name in LINK_ROLES:
        result = roles[name].keeper_on(today)
        if result is not None:
            proofs.append(await build_evidence(replica, child, result.op_id))
    return proofs


@dataclass(frozen=True)
class Linked:
    seat: Seat
    mandate: bytes
    recorded: bool  # False: the parent already held a mandate for this result
    member_op: bytes | None  # the SetMember op seating the keeper, if one was signed


async def link(
    replica: Replica,
    key: Signer,
    parent: bytes,
    child: bytes,
    proofs: list[list[bytes]],
    today: str,
) -> list[Linked]:
    """Record a mandate per proof in the parent; a manager also seats the keeper."""
    state, views = await seat_views(replica, parent, today)
    me = state.member_of(key.public) or key.public
    manager = (info := state.current_members().get(me)) is not None and info.level >= Level.MANAGE
    linked = []
    for wires in proofs:
        seat = verify_evidence(wires, child, parent, today)
        if isinstance(seat, Problem):
            raise NodeError(f"the child's evidence proves no seat: {seat.reason}")
        if not seat.holds:
            raise NodeError(f"the {seat.role}'s term ended on {seat.term_end}: no seat to link")
        if not manager and me != seat.keeper:
            raise AuthorizationError("a mandate is recorded by a parent manager or the keeper")
        known = next((v for v in views if v.record.result == seat.result and v.seat), None)
        mandate = known.mandate if known else None
        if mandate is None:
            record = MandateRec(
                child=child,
                role=seat.role,
                keeper=seat.keeper,
                result=seat.result,
                evidence=wires,
                term_end=seat.term_end,
            )
            mandate = await sign_selection(replica, key, parent, record)
        held = state.current_members().get(seat.keeper)
        member_op = None
        if manager and (held is None or held.level < Level.WRITE):
            op = await add_member(
                replica,
                key,
                parent,
                member=seat.keeper,
                name=seat.keeper_name,
                level=Level.WRITE,
                home=seat.keeper_home,
                decision=mandate,
            )
            member_op = op.op_id
            state = await replica.auth_state(parent)
        linked.append(Linked(seat, mandate, known is None, member_op))
    return linked


async def prune(
    replica: Replica, key: Signer, parent: bytes, today: str
) -> list[tuple[bytes, str, bytes]]:
    """Remove (level none) parent members seated by a mandate whose seat no longer holds."""
    state, views = await seat_views(replica, parent, today)
    require_level(state, state.member_of(key.public) or key.public, Level.MANAGE, "prune seats")
    removed = []
    members = state.current_members()
    for member in prunable(members, views):
        info = members[member]
        op = await add_member(
            replica,
            key,
            parent,
            member=member,
            name=info.name,
            level=Level.NONE,
            home=info.home,
            decision=info.decision,
        )
        removed.append((member, info.name, op.op_id))
    return removed
