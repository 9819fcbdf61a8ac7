"""What the governance commands share: JSON-ready views of proposals, outcomes and
agreements (the views sign nothing and print every id as hex), and argument helpers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from node.commands.base import Context, acting_member, open_replica
from node.domain.governance.agreements import Agreement
from node.domain.governance.consent import (
    Outcome,
    Proposal,
    Signed,
    Version,
    latest_positions,
)
from node.domain.governance.logbook import day_of
from node.domain.governance.records import PositionRec, QuestionRec, ReactionRec, parse_day
from node.errors import ConfigError, NodeError
from node.governance import CircleGovernance
from node.home import MemberEntry
from node.replica import Replica


@asynccontextmanager
async def session(ctx: Context) -> AsyncIterator[tuple[Replica, MemberEntry]]:
    """The replica and the acting member (its key is unlocked only when about to sign)."""
    entry = acting_member(ctx)
    async with open_replica(ctx.home) as replica:
        yield replica, entry


def valid_day(text: str | None, flag: str) -> str | None:
    """A ``YYYY-MM-DD`` flag value, or None when not given."""
    if text is None:
        return None
    try:
        return parse_day(text)
    except NodeError as exc:
        raise ConfigError(f"{flag}: {exc}") from exc


def text_arg(value: str | None, flag: str) -> str:
    """A flag's text, stripped; refuses an empty one."""
    text = (value or "").strip()
    if not text:
        raise ConfigError(f"{flag} must not be empty")
    return text


def _who(cg: CircleGovernance, signed: Signed) -> dict[str, Any]:
    return {
        "op": signed.op_id.hex(),
        "member": signed.member.hex(),
        "name": cg.member_name(signed.member),
    }


def _position(
    cg: CircleGovernance, proposal: Proposal, signed: Signed, counted: set[bytes]
) -> dict[str, Any]:
    record = signed.record
    assert isinstance(record, PositionRec)
    return {
        **_who(cg, signed),
        "position": record.position,
        "reason": record.reason,
        "version": record.version.hex(),
        "version_number": proposal.versions[record.version].number,
        "counts": signed.op_id in counted,
    }


def outcome_view(cg: CircleGovernance, outcome: Outcome) -> dict[str, Any]:
    def brief(signed: Signed) -> dict[str, Any]:
        record = signed.record
        assert isinstance(record, PositionRec)
        return {**_who(cg, signed), "position": record.position, "reason": record.reason}

    decision = outcome.decision
    return {
        "agreed": outcome.agreed,
        "required": sorted(m.hex() for m in outcome.required),
        "missing": [m.hex() for m in outcome.missing],
        "open_objections": [brief(s) for s in outcome.open_objections],
        "concerns": [brief(s) for s in outcome.concerns],
        "decision": decision.op_id.hex() if decision else None,
        "verified": decision is not None and cg.decision_problem(decision) is None,
    }


def proposal_view(cg: CircleGovernance, proposal: Proposal) -> dict[str, Any]:
    """Everything `proposal show` prints."""
    outcome = cg.outcome(proposal)
    body = proposal.body
    counted = {s.op_id for s in outcome.positions.values()}
    shown = {s.op_id: s for s in outcome.positions.values()}
    for v in proposal.ordered_versions():
        shown.update((s.op_id, s) for s in latest_positions(proposal.positions, v.hash).values())
    positions = [
        _position(cg, proposal, s, counted)
        for s in sorted(shown.values(), key=lambda s: (_number(proposal, s), s.member))
    ]
    stage = proposal.latest_stage()
    return {
        "proposal": proposal.id.hex(),
        "circle": cg.circle.hex(),
        "title": body.title,
        "driver": body.driver,
        "text": outcome.version.text,
        "author": proposal.author.hex(),
        "created": day_of(proposal.ts),
        "state": outcome.state,
        "stage": stage.stage if stage else "draft",
        "deadline": stage.deadline if stage else None,
        "version": outcome.version.hash.hex(),
        "versions": [_version(v, outcome) for v in proposal.ordered_versions()],
        "positions": positions,
        "outcome": outcome_view(cg, outcome),
        "invalid_decisions": [
            {"op": d.op_id.hex(), "why": why}
            for d in proposal.decisions
            if (why := cg.decision_problem(d)) is not None
        ],
        "objection_tests": _tests(cg, proposal),
        "tuners": {
            "review_date": body.review_date,
            "review_every_days": body.review_every_days,
            "criteria": list(body.criteria),
        },
        "questions": [_note(cg, s) for s in _threaded(proposal.questions)],
        "reactions": [_note(cg, s) for s in sorted(proposal.reactions, key=_order)],
        "links": {
            "idea": body.idea.hex() if body.idea else None,
            "join_request": body.join_request.hex() if body.join_request else None,
            "review_of": body.review_of.hex() if body.review_of else None,
            "election": body.election.hex() if body.election else None,
            "subject": body.subject,
        },
    }


def _order(signed: Signed) -> tuple[int, bytes]:
    return (signed.ts, signed.op_id)


def _threaded(questions: list[Signed]) -> list[Signed]:
    """Questions in time order, each followed by its answers (an answer signed in the same
    second as its question must still come after it)."""
    answers: dict[bytes, list[Signed]] = {}
    roots: list[Signed] = []
    known = {q.op_id for q in questions}
    for signed in questions:
        answered = getattr(signed.record, "answers", None)
        if answered is not None and answered in known:
            answers.setdefault(answered, []).append(signed)
        else:
            roots.append(signed)
    ordered: list[Signed] = []

    def visit(item: Signed) -> None:
        ordered.append(item)
        for reply in sorted(answers.get(item.op_id, []), key=_order):
            visit(reply)

    for root in sorted(roots, key=_order):
        visit(root)
    return ordered


def _number(proposal: Proposal, signed: Signed) -> int:
    record = signed.record
    assert isinstance(record, PositionRec)
    return proposal.versions[record.version].number


def _version(v: Version, outcome: Outcome) -> dict[str, Any]:
    return {
        "number": v.number,
        "hash": v.hash.hex(),
        "strategy": v.strategy,
        "text": v.text,
        "author": v.author.hex(),
        "op": v.op_id.hex(),
        "base": v.base.hex() if v.base else None,
        "resolves": [op.hex() for op in v.resolves],
        "note": v.note,
        "current": v.hash == outcome.version.hash,
    }


def _note(cg: CircleGovernance, signed: Signed) -> dict[str, Any]:
    record = signed.record
    assert isinstance(record, QuestionRec | ReactionRec)
    view = {**_who(cg, signed), "text": record.text, "date": day_of(signed.ts)}
    if isinstance(record, QuestionRec):
        view["answers"] = record.answers.hex() if record.answers else None
    return view


def _tests(cg: CircleGovernance, proposal: Proposal) -> list[dict[str, Any]]:
    views = []
    for signed in sorted(proposal.positions, key=_order):
        for test in sorted(cg.gov.tests.get(signed.op_id, []), key=_order):
            record = test.record
            views.append(
                {
                    **_who(cg, test),
                    "objection": signed.op_id.hex(),
                    "qualifies": getattr(record, "qualifies", None),
                    "decision": (d.hex() if (d := getattr(record, "decision", None)) else None),
                    "note": getattr(record, "note", ""),
                    "counts": cg.gov.test_counts(
                        test, cg.required_at, required_for=cg.required_for
                    ),
                }
            )
    return views


def agreement_view(cg: CircleGovernance, agreement: Agreement, today: str) -> dict[str, Any]:
    decision = agreement.decision
    outcome = agreement.outcome
    return {
        "agreement": agreement.id.hex(),
        "proposal": agreement.id.hex(),
        "title": agreement.proposal.body.title,
        "text": outcome.version.text,
        "version": outcome.version.hash.hex(),
        "decision": decision.op_id.hex(),
        "decided": day_of(decision.ts),
        "state": agreement.state,
        "review_date": agreement.review_date,
        "overdue": agreement.overdue(today),
        "under_review": agreement.under_review,
        "amending": [pid.hex() for pid in agreement.amending],
        "superseded_by": agreement.superseded_by.hex() if agreement.superseded_by else None,
        "review_of": (r.hex() if (r := agreement.proposal.body.review_of) else None),
        "criteria": list(agreement.proposal.body.criteria),
        "concerns": outcome_view(cg, outcome)["concerns"],
        "reviews": [
            {
                **_who(cg, r),
                "outcome": getattr(r.record, "outcome", None),
                "next_review": getattr(r.record, "next_review", None),
                "proposal": (p.hex() if (p := getattr(r.record, "proposal", None)) else None),
                "note": getattr(r.record, "note", ""),
                "date": day_of(r.ts),
            }
            for r in agreement.reviews
        ],
    }
