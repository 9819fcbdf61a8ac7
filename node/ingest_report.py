"""What the ingest pipeline reports: reason codes, the report, and its first two steps.

Split from :mod:`node.ingest` (which re-exports everything here) so that the pipeline
module holds only the per-op rules.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from node.crypto.ops import MAX_OP_BYTES, Op, decode_op, verify_op
from node.errors import DecodeError, SignatureError

MAX_PENDING_PER_AUTHOR = 5_000
MAX_PENDING_BYTES = 64 * 1024 * 1024
MAX_PENDING_STRANGERS = 1_000
MAX_PROBLEMS = 50
MAX_EVIDENCE_PER_AUTHOR = 1_000


class Reason(StrEnum):
    """Why an op was rejected. Stable strings: they appear in reports and logs."""

    OVERSIZED = "oversized"
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    INVALID = "invalid"
    BAD_BACKLINK = "bad_backlink"
    EQUIVOCATION = "equivocation"
    RESTRICTED = "restricted"
    YCID_MISMATCH = "ycid_mismatch"
    CLOCK_MISMATCH = "clock_mismatch"
    MALFORMED_UPDATE = "malformed_update"
    PENDING_FULL = "pending_full"


@dataclass
class IngestReport:
    """What an ingest call did. ``accepted`` holds the ops stored as valid, in order."""

    added: int = 0
    soft_failed: int = 0
    duplicates: int = 0
    pending: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    problems: list[dict[str, str]] = field(default_factory=list)
    accepted: list[Op] = field(default_factory=list)

    def reject(self, op_id: bytes | None, reason: Reason, detail: str) -> None:
        self.rejected += 1
        self.reasons[reason.value] += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(
                {"op": op_id.hex() if op_id else "", "reason": reason.value, "detail": detail}
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "soft_failed": self.soft_failed,
            "duplicates": self.duplicates,
            "pending": self.pending,
            "rejected": self.rejected,
            "reasons": dict(self.reasons),
            "problems": self.problems,
        }


class Rejected(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Pended(Exception):
    def __init__(self, why: str, waiting_for: bytes) -> None:
        super().__init__(why)
        self.why = why
        self.waiting_for = waiting_for


def chain_key(circle: bytes, author: bytes, seq: int) -> bytes:
    """The pending-buffer key an op at ``seq + 1`` waits for."""
    return circle + author + seq.to_bytes(8, "big")


def decode_and_verify(wire: bytes) -> Op:
    """Steps 1-2. Raises Rejected with the reason code."""
    if len(wire) > MAX_OP_BYTES:
        raise Rejected(Reason.OVERSIZED, f"op of {len(wire)} bytes exceeds {MAX_OP_BYTES}")
    try:
        op = decode_op(wire)
    except DecodeError as exc:
        raise Rejected(Reason.MALFORMED, str(exc)) from exc
    try:
        verify_op(op)
    except SignatureError as exc:
        raise Rejected(Reason.BAD_SIGNATURE, str(exc)) from exc
    return op
