"""A builder of signed governance records for the pure rules: no keys, no store. Op ids
are hashes of a counter; each key's seq counts up; record times are the counter unless
given."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from node.domain.governance.consent import Governance, Outcome, Signed
from node.domain.governance.records import (
    AmendRec,
    DecisionRec,
    GovernanceRecord,
    ObjectionTestRec,
    PositionRec,
    ProposalRec,
    StageRec,
    record_id,
    version_hash,
)

ALICE, BOB, CAROL, OUTSIDER = (bytes([n]) * 32 for n in (1, 2, 3, 9))
MEMBERS = {ALICE, BOB, CAROL}


@dataclass
class Book:
    """Signed records for the pure rules: op ids are hashes of a counter."""

    records: list[Signed] = field(default_factory=list)
    seqs: dict[bytes, int] = field(default_factory=lambda: defaultdict(int))
    count: int = 0

    def add(
        self,
        member: bytes,
        record: GovernanceRecord,
        *,
        author: bytes | None = None,
        ts: int | None = None,
    ) -> Signed:
        self.count += 1
        key = author or member
        self.seqs[key] += 1
        op_id = hashlib.blake2b(self.count.to_bytes(8, "big"), digest_size=32).digest()
        signed = Signed(
            op_id, key, member, self.seqs[key], self.count if ts is None else ts, record
        )
        self.records.append(signed)
        return signed

    def propose(self, member: bytes = ALICE, text: str = "v0", **kw: Any) -> tuple[bytes, bytes]:
        body = ProposalRec(title="t", driver="d", text=text, **kw)
        pid = record_id(self.add(member, body).op_id)
        return pid, version_hash(pid, text)

    def amend(self, pid: bytes, base: bytes, text: str, member: bytes = ALICE) -> bytes:
        self.add(member, AmendRec(proposal=pid, base=base, text=text))
        return version_hash(pid, text)

    def pos(self, member: bytes, pid: bytes, version: bytes, kind: str, **kw: Any) -> Signed:
        reason = "harm" if kind == "objection" else ""
        record = PositionRec(proposal=pid, version=version, position=kind, reason=reason)  # type: ignore[arg-type]
        return self.add(member, record, **kw)

    def decide(self, pid: bytes, version: bytes, positions: list[Signed]) -> Signed:
        ops = sorted(p.op_id for p in positions)
        return self.add(ALICE, DecisionRec(proposal=pid, version=version, positions=ops))

    def test(
        self, member: bytes, objection: Signed, *, qualifies: bool = False, **kw: Any
    ) -> Signed:
        return self.add(
            member, ObjectionTestRec(objection=objection.op_id, qualifies=qualifies, **kw)
        )

    def stage(self, pid: bytes, stage: str) -> Signed:
        return self.add(ALICE, StageRec(proposal=pid, stage=stage))  # type: ignore[arg-type]

    def outcome(self, pid: bytes, required: set[bytes] = MEMBERS) -> Outcome:
        gov = Governance(self.records)
        return gov.outcome(gov.proposals[pid], lambda _op: set(required))

    def all_consent(self, pid: bytes, version: bytes) -> list[Signed]:
        return [self.pos(m, pid, version, "consent") for m in sorted(MEMBERS)]
