"""Roles, keepers and double linking: record types, the codec and pure rules.

- A circle's roles are its ``role`` records (name unique per circle: between two records
  of one name the lower op id wins) plus two built-in roles every circle has: ``leader``
  (operational leader) and ``representative``; a ``role`` record may describe them.
- A role's keeper comes from valid ``election_result`` records (elections and
  appointments, see :mod:`elections`). The current result is one no other valid result
  ``supersedes``; between several, the later term end (no end counts as latest), then the
  lower op id. The keeper holds the role through ``term_end``.
- **Double linking.** A circle's ``leader`` and ``representative`` sit in the parent
  circle (the ``parent`` of the child's genesis). The parent holds a ``mandate`` record
  carrying, as evidence, the child's signed ops that prove the seat: genesis, the auth ops
  the records rely on, the result, its keeper proposal (and amendments), the decision, its
  positions and objection tests. :func:`check_mandate` re-checks that evidence knowing
  nothing else: the caller has verified every signature already (``node.elections``; the
  domain never imports crypto). :func:`judge_seats` then decides, for a given day, which
  seats hold: a mandate signed by a parent manager or by the keeper themself, whose
  evidence holds, not superseded by a newer mandate for the same child and role, within
  its term.

Pure: no I/O, no clock, no crypto.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec

from node.domain.auth import (
    AuthState,
    Genesis,
    Level,
    MemberInfo,
    decode_auth_body,
    decode_genesis,
)
from node.domain.authorize import AuthLog, Verdict, judge
from node.domain.governance.codec import Codec
from node.domain.governance.consent import Governance, Outcome, Proposal, Signed
from node.domain.governance.elections import (
    LEADER,
    REPRESENTATIVE,
    ChangeRec,
    ElectionRec,
    FailRec,
    NominationRec,
    ResultRec,
    RoleName,
    SelectionBase,
    Stamped,
    holds_on,
    result_problem,
)
from node.domain.governance.records import Day, Id16, Id32, Short, try_decode
from node.errors import AuthorizationError, DecodeError, NotFound

BUILTIN_ROLES = {
    LEADER: "operational leader: keeps the circle's operations going; sits in the parent",
    REPRESENTATIVE: "elected representative: carries the circle's voice to the parent",
}
MAX_EVIDENCE_OPS = 400
# OpKind values (node.crypto.ops): the domain never imports the crypto package.
GENESIS_KIND, AUTH_KIND, RECORD_KIND = 0, 1, 3
_NO_END = "9999-99-99"  # sorts after every date: a term without end is the latest


class RoleRec(SelectionBase, frozen=True, tag="role"):
    """A role of the circle: its domain and accountabilities, and its usual term."""

    name: RoleName
    domain: Short
    accountabilities: list[Short] = []
    term_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None
    proposal: Id16 | None = None  # the agreed proposal that defined it, if any


LinkRole = Literal["leader", "representative"]


def link_role(name: str) -> LinkRole | None:
    """The role as a double-link role, or None for a role that sits in no parent."""
    if name == LEADER:
        return "leader"
    return "representative" if name == REPRESENTATIVE else None


class MandateRec(SelectionBase, frozen=True, tag="mandate"):
    """Recorded in the parent: ``keeper`` holds ``child``'s ``role`` seat until
    ``term_end``, by the child's ``election_result`` op ``result``; ``evidence`` carries
    the child's wire ops that prove it."""

    child: Id16
    role: LinkRole
    keeper: Id32
    result: Id32
    evidence: Annotated[list[bytes], msgspec.Meta(max_length=MAX_EVIDENCE_OPS)]
    term_end: Day | None = None


SelectionRecord = (
    RoleRec | ElectionRec | NominationRec | ChangeRec | FailRec | ResultRec | MandateRec
)
_CODEC: Codec[SelectionRecord] = Codec(SelectionRecord, "a role or election record")
encode_selection = _CODEC.encode  # refuses a record that would not decode, before signing
decode_selection = _CODEC.decode
try_decode_selection = _CODEC.try_decode  # None for a type of another area


# ---- roles and keepers -----------------------------------------------------------------


def current_result(results: Sequence[Stamped[ResultRec]]) -> Stamped[ResultRec] | None:
    """The result no other supersedes; between several, the later term end, then the
    lower op id."""
    replaced = {r.record.supersedes for r in results if r.record.supersedes is not None}
    live = sorted((r for r in results if r.op_id not in replaced), key=lambda r: r.op_id)
    # max() keeps the first of equals, so ties go to the lower op id
    return max(live, key=lambda r: r.record.term_end or _NO_END, default=None)


@dataclass
class Role:
    name: str
    definition: Stamped[RoleRec] | None
    results: list[Stamped[ResultRec]]

    @property
    def domain(self) -> str:
        if self.definition is not None:
            return self.definition.record.domain
        return BUILTIN_ROLES.get(self.name, "")

    @property
    def term_days(self) -> int | None:
        return self.definition.record.term_days if self.definition else None

    def current(self) -> Stamped[ResultRec] | None:
        return current_result(self.results)

    def keeper_on(self, today: str) -> Stamped[ResultRec] | None:
        """The current result, if its term still holds on ``today``."""
        result = self.current()
        return result if result and holds_on(result.record.term_end, today) else None


def roles_of(
    definitions: Sequence[Stamped[RoleRec]], valid_results: Sequence[Stamped[ResultRec]]
) -> dict[str, Role]:
    """The circle's roles: built-ins, defined ones, and any role a valid result names."""
    roles = {name: Role(name, None, []) for name in BUILTIN_ROLES}
    for item in sorted(definitions, key=lambda s: s.op_id):
        role = roles.setdefault(item.record.name, Role(item.record.name, None, []))
        if role.definition is None:
            role.definition = item
    for result in valid_results:
        name = result.record.role
        roles.setdefault(name, Role(name, None, [])).results.append(result)
    return roles


def resolve_member(state: AuthState, text: str) -> bytes:
    """A current member of the circle by name (any case) or by a unique id prefix."""
    wanted = text.strip().lower()
    members = state.current_members()
    by_name = [m for m, info in members.items() if info.name.lower() == wanted]
    by_id = [m for m in members if len(wanted) >= 4 and m.hex().startswith(wanted)]
    matches = by_name or by_id
    if len(matches) != 1:
        what = "matches several members" if matches else "is not a member of this circle"
        raise NotFound(f"{text!r} {what}: give a member's name or more of their id")
    return matches[0]


def require_level(state: AuthState, member: bytes, level: Level, what: str) -> None:
    """Raise unless ``member`` holds at least ``level`` in the circle now."""
    info = state.current_members().get(member)
    if info is None or info.level < level:
        raise AuthorizationError(
            f"only members with {level.name.lower()} level {what}; act as one with --as"
        )


# ---- mandates: checking the child's evidence ----------------------------------------------


@dataclass(frozen=True, slots=True)
class EvidenceOp:
    """A child-circle op whose signature, op id and body hash the caller verified."""

    op_id: bytes
    kind: int
    circle: bytes
    author: bytes
    seq: int
    deps: tuple[bytes, ...]
    ts: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Seat:
    """A double-link seat, as proven by a child's evidence."""

    child: bytes
    child_name: str
    role: LinkRole
    keeper: bytes
    keeper_name: str
    keeper_home: bytes | None
    term_end: str | None
    result: bytes
    supersedes: bytes | None
    decision: bytes
    proposal: bytes
    holds: bool  # the term still holds on the day it was checked


@dataclass(frozen=True, slots=True)
class Problem:
    reason: str


def _evidence_log(
    ops: Sequence[EvidenceOp], child: bytes, parent: bytes
) -> tuple[AuthLog, Genesis] | Problem:
    """The child's auth log rebuilt from the evidence, checking genesis and completeness."""
    if any(op.circle != child for op in ops):
        return Problem("the evidence holds ops of another circle")
    geneses = [op for op in ops if op.kind == GENESIS_KIND]
    if len(geneses) != 1 or geneses[0].op_id[:16] != child:
        return Problem("the evidence does not hold the child circle's genesis")
    try:
        genesis = decode_genesis(geneses[0].body)
        log = AuthLog(child)
        log.add(geneses[0].op_id, geneses[0].author, 1, (), genesis)
        for op in sorted((o for o in ops if o.kind == AUTH_KIND), key=lambda o: (o.seq, o.op_id)):
            log.add(op.op_id, op.author, op.seq, op.deps, decode_auth_body(op.body))
    except DecodeError as exc:
        return Problem(f"an evidence op does not decode: {exc}")
    if genesis.parent != parent:
        return Problem("the child circle does not name this circle as its parent")
    for op in ops:
        missing = log.missing(op.deps)
        if op.kind != GENESIS_KIND and missing:
            return Problem(f"the evidence lacks auth op {missing[0].hex()[:12]} it relies on")
    return log, genesis


def _evidence_records(
    ops: Sequence[EvidenceOp], log: AuthLog
) -> tuple[list[Signed], list[Stamped[ResultRec]]] | Problem:
    """Every record, authorized as of its deps, split into consent records and results."""
    signed: list[Signed] = []
    results: list[Stamped[ResultRec]] = []
    state = log.full()
    for op in ops:
        if op.kind == GENESIS_KIND or op.kind == AUTH_KIND:
            continue
        if op.kind != RECORD_KIND:
            return Problem("the evidence holds an op that is not genesis, auth or record")
        verdict = judge(log, author=op.author, seq=op.seq, deps=op.deps, needed=Level.WRITE)
        if verdict is not Verdict.VALID:
            return Problem(f"record {op.op_id.hex()[:12]} was not signed by a writing member")
        member = state.member_of(op.author) or op.author
        governance = try_decode(op.body)
        selection = try_decode_selection(op.body) if governance is None else None
        if governance is not None:
            signed.append(Signed(op.op_id, op.author, member, op.seq, op.ts, governance))
        elif isinstance(selection, ResultRec):
            results.append(Stamped(op.op_id, op.author, member, op.seq, op.ts, selection))
        else:
            return Problem(f"record {op.op_id.hex()[:12]} is not part of a mandate's proof")
    return signed, results


@dataclass
class EvidenceConsent:
    """Consent outcomes over a mandate's evidence, under the quorum policy the replica
    applies (``node.governance.CircleGovernance``): every member with write level as of
    everything a decision rests on (the union of those records' deps)."""

    gov: Governance
    log: AuthLog
    deps: dict[bytes, tuple[bytes, ...]]

    def _writers(self, state: AuthState) -> set[bytes]:
        return {m for m, info in state.members.items() if info.level >= Level.WRITE}

    def required_at(self, op_id: bytes | None) -> set[bytes]:
        if op_id is None:
            return self._writers(self.log.full())
        return self._writers(self.log.as_of(self.deps.get(op_id, ())))

    def required_for(self, op_ids: Sequence[bytes]) -> set[bytes]:
        union = sorted({dep for op_id in op_ids for dep in self.deps.get(op_id, ())})
        return self._writers(self.log.as_of(tuple(union)))

    def outcome(self, proposal: Proposal) -> Outcome:
        return self.gov.outcome(proposal, self.required_at, required_for=self.required_for)

    def decision_problem(self, decision: Signed) -> str | None:
        return self.gov.decision_holds(decision, self.required_at, required_for=self.required_for)


def check_mandate(
    ops: Sequence[EvidenceOp], child: bytes, parent: bytes, today: str, result: bytes | None = None
) -> Seat | Problem:
    """The seat the child's evidence proves (the ``election_result`` op ``result``, or the
    only result it holds), or why it proves none. Signatures must be verified already."""
    ops = list({op.op_id: op for op in ops}.values())  # a repeated op would loop its chain
    built = _evidence_log(ops, child, parent)
    if isinstance(built, Problem):
        return built
    log, genesis = built
    split = _evidence_records(ops, log)
    if isinstance(split, Problem):
        return split
    signed, results = split
    chosen = [r for r in results if result is None or r.op_id == result]
    if len(chosen) != 1:
        return Problem("the evidence does not hold exactly one election result to check")
    found = chosen[0]
    deps = {op.op_id: op.deps for op in ops}
    why = result_problem(found.record, EvidenceConsent(Governance(signed), log, deps))
    if why is not None:
        return Problem(f"the election result does not hold: {why}")
    record = found.record
    role = link_role(record.role)
    if role is None:
        return Problem(f"role {record.role!r} carries no seat in the parent circle")
    info = log.as_of(deps[found.op_id]).members.get(record.keeper)
    if info is None or info.level < Level.WRITE:
        return Problem("the keeper is not a writing member of the child circle")
    return Seat(
        child,
        genesis.name,
        role,
        record.keeper,
        info.name,
        info.home,
        record.term_end,
        found.op_id,
        record.supersedes,
        record.decision,
        record.proposal,
        holds_on(record.term_end, today),
    )


# ---- seats in the parent ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MandateEntry:
    """A valid ``mandate`` record of the parent with its signer and its evidence check."""

    op_id: bytes
    signer: bytes  # the signing member
    signer_level: Level  # the signer's level in the parent as of the mandate's deps
    record: MandateRec
    check: Seat | Problem


@dataclass(frozen=True, slots=True)
class SeatView:
    """How a mandate stands on a given day: ``holds``, ``ended`` (past its term end),
    ``superseded`` (a newer keeper), ``duplicate`` or ``refused`` (with the problem)."""

    mandate: bytes
    record: MandateRec
    seat: Seat | None
    status: str
    problem: str = ""

    @property
    def holds(self) -> bool:
        return self.status == "holds"


def _refusal(entry: MandateEntry) -> str | None:
    seat, record = entry.check, entry.record
    if isinstance(seat, Problem):
        return seat.reason
    claimed = (record.child, record.role, record.keeper, record.term_end, record.result)
    if (seat.child, seat.role, seat.keeper, seat.term_end, seat.result) != claimed:
        return "the mandate does not match the result its evidence proves"
    if entry.signer_level < Level.MANAGE and entry.signer != record.keeper:
        return "a mandate is recorded by a manager of this circle or by the seat holder"
    return None


def judge_seats(entries: Sequence[MandateEntry], today: str) -> list[SeatView]:
    """Every mandate of the parent with its status on ``today`` (pure, order-independent)."""
    views: dict[bytes, SeatView] = {}
    by_result: dict[bytes, MandateEntry] = {}
    for entry in sorted(entries, key=lambda e: e.op_id):
        why = _refusal(entry)
        if why is not None:
            views[entry.op_id] = SeatView(entry.op_id, entry.record, None, "refused", why)
        elif entry.record.result in by_result:
            views[entry.op_id] = SeatView(entry.op_id, entry.record, _seat(entry), "duplicate")
        else:
            by_result[entry.record.result] = entry
    groups: dict[tuple[bytes, str], list[MandateEntry]] = {}
    for entry in by_result.values():
        groups.setdefault((entry.record.child, entry.record.role), []).append(entry)
    for group in groups.values():
        results = [_as_result(e) for e in group]
        current = current_result(results)
        for entry in group:
            seat = _seat(entry)
            if current is None or entry.record.result != current.op_id:
                status = "superseded"
            else:
                status = "holds" if holds_on(seat.term_end, today) else "ended"
            views[entry.op_id] = SeatView(entry.op_id, entry.record, seat, status)
    return [views[e.op_id] for e in sorted(entries, key=lambda e: e.op_id)]


def _seat(entry: MandateEntry) -> Seat:
    assert isinstance(entry.check, Seat)
    return entry.check


def _as_result(entry: MandateEntry) -> Stamped[ResultRec]:
    """The proven result in the shape :func:`current_result` ranks."""
    seat = _seat(entry)
    record = ResultRec(
        proposal=seat.proposal,
        decision=seat.decision,
        keeper=seat.keeper,
        role=seat.role,
        term_end=seat.term_end,
        supersedes=seat.supersedes,
    )
    return Stamped(seat.result, b"", seat.keeper, 0, 0, record)


def seat_holders(views: Sequence[SeatView]) -> set[bytes]:
    return {v.record.keeper for v in views if v.holds}


def prunable(members: dict[bytes, MemberInfo], views: Sequence[SeatView]) -> list[bytes]:
    """Parent members whose membership a mandate granted (their member op cites it as
    ``decision``) and who hold no seat any more."""
    mandates = {v.mandate for v in views}
    holders = seat_holders(views)
    return sorted(
        member
        for member, info in members.items()
        if info.decision in mandates and member not in holders
    )
