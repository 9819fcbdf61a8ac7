"""Governance on a replica: load a circle's signed records into the pure rules, and sign
new ones as the acting member. The CLI and the TUI are thin layers over this module.

Only records stored as *valid* take part; soft-failed or equivocated ones never count.
The quorum policy is: every member with write level (as of a decision's deps for a
decision, as of now for an open round).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from node.crypto.ops import OpKind, Signer, decode_header
from node.domain.auth import Level
from node.domain.authorize import AuthLog
from node.domain.governance.consent import Governance, Outcome, Proposal, Signed
from node.domain.governance.records import (
    AmendRec,
    DecisionRec,
    GovernanceRecord,
    PositionRec,
    ProposalRec,
    encode_record,
    record_id,
    try_decode,
    version_hash,
)
from node.errors import NodeError, NotFound
from node.local import author_record
from node.replica import Replica
from node.store.store import STATUS_VALID


@dataclass
class CircleGovernance:
    """A circle's governance as of now, with the auth log to judge quorums."""

    circle: bytes
    log: AuthLog
    gov: Governance
    deps: dict[bytes, tuple[bytes, ...]]

    def required_at(self, op_id: bytes | None) -> set[bytes]:
        state = self.log.full() if op_id is None else self.log.as_of(self.deps.get(op_id, ()))
        return {m for m, info in state.members.items() if info.level >= Level.WRITE}

    def outcome(self, proposal: Proposal) -> Outcome:
        return self.gov.outcome(proposal, self.required_at)

    def member_name(self, member: bytes) -> str:
        info = self.log.full().members.get(member)
        return info.name if info else member.hex()[:12]


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A valid record op of a circle, not yet decoded by any domain module."""

    op_id: bytes
    author: bytes  # the signing key
    member: bytes  # the member that key belongs to
    seq: int
    ts: int
    deps: tuple[bytes, ...]
    body: bytes


async def valid_records(replica: Replica, circle: bytes) -> list[RawRecord]:
    """Every record op of ``circle`` stored as valid, in local order. Each governance
    module (proposals, elections, ideas, funding) decodes the types it knows."""
    state = (await replica.auth_log(circle)).full()
    found: list[RawRecord] = []
    for row in await replica.store.ops_of_kind(circle, int(OpKind.RECORD)):
        if row.status != STATUS_VALID:
            continue
        header = decode_header(row.header)
        member = state.member_of(row.author) or row.author
        found.append(
            RawRecord(
                row.op_id, row.author, member, row.seq, header.ts, tuple(header.deps), row.body
            )
        )
    return found


async def load(replica: Replica, circle: bytes) -> CircleGovernance:
    """Fold every valid proposal-related record of ``circle``."""
    log = await replica.auth_log(circle)
    signed: list[Signed] = []
    deps: dict[bytes, tuple[bytes, ...]] = {}
    for raw in await valid_records(replica, circle):
        record = try_decode(raw.body)
        if record is None:
            continue
        signed.append(Signed(raw.op_id, raw.author, raw.member, raw.seq, raw.ts, record))
        deps[raw.op_id] = raw.deps
    return CircleGovernance(circle, log, Governance(signed), deps)


async def find_proposal(replica: Replica, text: str) -> tuple[CircleGovernance, Proposal]:
    """A proposal by its hex id or a unique prefix (at least 6 digits), in any circle."""
    prefix = text.strip().lower()
    if len(prefix) < 6:
        raise NotFound("give at least 6 hex digits of the proposal id")
    found: list[tuple[CircleGovernance, Proposal]] = []
    for circle in sorted(await replica.circles()):
        cg = await load(replica, circle)
        found += [(cg, p) for pid, p in cg.gov.proposals.items() if pid.hex().startswith(prefix)]
    if not found:
        raise NotFound(f"no proposal matches {text!r}: `circle-node proposal list CIRCLE`")
    if len(found) > 1:
        raise NotFound(f"{text!r} matches {len(found)} proposals; give more of the id")
    return found[0]


async def sign(replica: Replica, key: Signer, circle: bytes, record: GovernanceRecord) -> bytes:
    """Sign and ingest a governance record; returns its op id."""
    op = await author_record(replica, key, circle, encode_record(record))
    return op.op_id


async def create_proposal(
    replica: Replica, key: Signer, circle: bytes, body: ProposalRec
) -> tuple[bytes, bytes]:
    """Returns ``(proposal id, first version hash)``."""
    op_id = await sign(replica, key, circle, body)
    pid = record_id(op_id)
    return pid, version_hash(pid, body.text)


async def amend(
    replica: Replica, key: Signer, text: str, proposal_ref: str, **fields: Any
) -> tuple[bytes, bytes]:
    cg, proposal = await find_proposal(replica, proposal_ref)
    _require_open(cg, proposal)
    record = AmendRec(proposal=proposal.id, base=proposal.current().hash, text=text, **fields)
    await sign(replica, key, cg.circle, record)
    return proposal.id, version_hash(proposal.id, text)


async def take_position(
    replica: Replica, key: Signer, proposal_ref: str, position: str, reason: str
) -> Outcome:
    """Record the acting member's position on the current version; when that completes
    consent, also sign the decision record. Returns the new outcome."""
    cg, proposal = await find_proposal(replica, proposal_ref)
    _require_open(cg, proposal)
    if position == "objection" and not reason.strip():
        raise NodeError("an objection must carry a reason: --reason 'what harm it would do'")
    state = cg.log.full()
    member = state.member_of(key.public)
    if (
        member is None
        or state.members.get(member) is None
        or (state.members[member].level < Level.WRITE)
    ):
        raise NodeError("only members with write level take positions in this circle")
    version = proposal.current().hash
    record = PositionRec(
        proposal=proposal.id,
        version=version,
        position=position,  # type: ignore[arg-type]
        reason=reason,
    )
    await sign(replica, key, cg.circle, record)
    cg, proposal = await find_proposal(replica, proposal.id.hex())
    outcome = cg.outcome(proposal)
    if outcome.state != "agreed" and not outcome.missing and not outcome.open_objections:
        decision = DecisionRec(
            proposal=proposal.id,
            version=outcome.version.hash,
            positions=sorted(
                s.op_id for m, s in outcome.positions.items() if m in outcome.required
            ),
            review_date=proposal.body.review_date,
        )
        await sign(replica, key, cg.circle, decision)
        cg, proposal = await find_proposal(replica, proposal.id.hex())
        outcome = cg.outcome(proposal)
    return outcome


def _require_open(cg: CircleGovernance, proposal: Proposal) -> None:
    state = cg.outcome(proposal).state
    if state in ("agreed", "withdrawn", "deferred"):
        raise NodeError(
            f"proposal {proposal.id.hex()[:12]} is {state}; a change now goes through a review"
        )
