"""The circle's logbook: every decision, review (and, from other modules, election) in order.

Invariants:
- an entry is one signed record; its ``op`` is that record's op id, unique in the book;
- the order is by the record's signed time, then op id: the same on every replica that
  holds the same records, whatever order they arrived in;
- only decisions that hold appear (``verify`` reports the others);
- other governance areas add their own entries through :func:`logbook`'s ``extra``
  argument (elections: kind ``"election"``), so this module never needs to know them.
Dates are the UTC day of the record time: display only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from node.domain.governance.agreements import Agreement
from node.domain.governance.records import DecisionRec, ReviewRec


@dataclass(frozen=True, slots=True)
class LogEntry:
    kind: str  # "decision", "review", or another module's kind ("election", ...)
    op: bytes
    ts: int
    title: str
    proposal: bytes | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def date(self) -> str:
        return day_of(self.ts)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ids as hex, the detail's fields alongside the common ones."""
        data: dict[str, Any] = {
            key: value.hex() if isinstance(value, bytes) else value
            for key, value in self.detail.items()
        }
        data.update(
            kind=self.kind,
            op=self.op.hex(),
            ts=self.ts,
            date=self.date,
            title=self.title,
            proposal=self.proposal.hex() if self.proposal else None,
        )
        return data


def day_of(ts: int) -> str:
    """The UTC day (``YYYY-MM-DD``) of a record time in seconds."""
    return datetime.fromtimestamp(max(ts, 0), tz=UTC).date().isoformat()


def agreement_entries(found: Iterable[Agreement]) -> list[LogEntry]:
    """A decision entry for every agreement, and an entry for each of its reviews."""
    entries: list[LogEntry] = []
    for agreement in found:
        decision = agreement.decision
        record = decision.record
        assert isinstance(record, DecisionRec)
        proposal = agreement.proposal
        entries.append(
            LogEntry(
                "decision",
                decision.op_id,
                decision.ts,
                proposal.body.title,
                proposal.id,
                {
                    "version": record.version,
                    "member": decision.member,
                    "positions": len(record.positions),
                    "review_date": record.review_date,
                    "review_of": proposal.body.review_of,
                },
            )
        )
        for review in agreement.reviews:
            body = review.record
            assert isinstance(body, ReviewRec)
            detail = {
                "outcome": body.outcome,
                "member": review.member,
                "next_review": body.next_review,
                "amending_proposal": body.proposal,
                "note": body.note,
            }
            entries.append(
                LogEntry(
                    "review", review.op_id, review.ts, proposal.body.title, proposal.id, detail
                )
            )
    return entries


def logbook(entries: Iterable[LogEntry], *extra: Iterable[LogEntry]) -> list[LogEntry]:
    """All entries in logbook order (record time, then op id); one entry per op."""
    unique: dict[bytes, LogEntry] = {}
    for source in (entries, *extra):
        for entry in source:
            unique.setdefault(entry.op, entry)
    return sorted(unique.values(), key=lambda e: (e.ts, e.op))
