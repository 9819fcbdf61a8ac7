"""Agreements and their reviews: pure rules over a circle's folded governance.

An **agreement** is an agreed proposal; its id is the proposal's id. Invariants:
- its **review date** is the ``next_review`` of its latest ``keep`` review (by record time,
  then op id), else the review date its decision record carries;
- it is **retired** once any ``retire`` review names it (retiring is final);
- it is **superseded** once a proposal opened to amend it (``review_of``) is agreed;
- it is **under review** while such a proposal is still open; it is then not overdue;
- it is **overdue** when it is in force, not under review, and ``today`` is after its
  review date. ``today`` is always a parameter: nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from node.domain.governance.consent import OPEN_STATES, Governance, Outcome, Proposal, Signed
from node.domain.governance.records import DecisionRec, ReviewRec

IN_FORCE = "in_force"
RETIRED = "retired"
SUPERSEDED = "superseded"


@dataclass
class Agreement:
    proposal: Proposal
    outcome: Outcome  # agreed: its decision and the positions that made it
    reviews: list[Signed] = field(default_factory=list)  # by record time, then op id
    state: str = IN_FORCE
    review_date: str | None = None
    superseded_by: bytes | None = None
    amending: list[bytes] = field(default_factory=list)  # open proposals amending it

    @property
    def id(self) -> bytes:
        return self.proposal.id

    @property
    def decision(self) -> Signed:
        assert self.outcome.decision is not None
        return self.outcome.decision

    @property
    def under_review(self) -> bool:
        return bool(self.amending)

    def overdue(self, today: str) -> bool:
        """In force, not being amended, and ``today`` (``YYYY-MM-DD``) is past its date."""
        return (
            self.state == IN_FORCE
            and not self.amending
            and self.review_date is not None
            and self.review_date < today
        )


def review_date(decision: Signed, reviews: list[Signed]) -> str | None:
    """The last keep's next review date, else the decision's review date."""
    keeps = [r for r in reviews if isinstance(r.record, ReviewRec) and r.record.outcome == "keep"]
    for review in reversed(keeps):
        assert isinstance(review.record, ReviewRec)
        if review.record.next_review is not None:
            return review.record.next_review
    record = decision.record
    assert isinstance(record, DecisionRec)
    return record.review_date


def agreements(gov: Governance, outcome_of: Callable[[Proposal], Outcome]) -> list[Agreement]:
    """Every agreement of the circle, in decision order (record time, then op id)."""
    outcomes = {pid: outcome_of(p) for pid, p in gov.proposals.items()}
    found: dict[bytes, Agreement] = {}
    for pid, outcome in outcomes.items():
        if outcome.agreed and outcome.decision is not None:
            reviews = sorted(gov.reviews.get(pid, []), key=lambda r: (r.ts, r.op_id))
            found[pid] = Agreement(gov.proposals[pid], outcome, reviews)
    for pid, outcome in sorted(outcomes.items(), key=lambda item: _decided(item[1])):
        target = found.get(gov.proposals[pid].body.review_of or b"")
        if target is None:
            continue
        if outcome.agreed and target.superseded_by is None:
            target.superseded_by = pid
        elif outcome.state in OPEN_STATES:
            target.amending.append(pid)
    for agreement in found.values():
        retired = any(
            isinstance(r.record, ReviewRec) and r.record.outcome == "retire"
            for r in agreement.reviews
        )
        if retired:
            agreement.state = RETIRED
        elif agreement.superseded_by is not None:
            agreement.state = SUPERSEDED
        if agreement.state == IN_FORCE:
            agreement.review_date = review_date(agreement.decision, agreement.reviews)
        else:
            agreement.amending = []
    return sorted(found.values(), key=lambda a: _decided(a.outcome))


def overdue(found: list[Agreement], today: str) -> list[Agreement]:
    """The agreements whose review is overdue on ``today``, the oldest date first."""
    late = [a for a in found if a.overdue(today)]
    return sorted(late, key=lambda a: (a.review_date or "", a.id))


def _decided(outcome: Outcome) -> tuple[int, bytes]:
    decision = outcome.decision
    return (decision.ts, decision.op_id) if decision else (0, b"")
