"""Governance commands: ``agreements``, ``review`` and ``logbook`` (registered by
:func:`node.commands.proposals.register`; docs/governance.md has the rules).

An agreement's id is the id of the proposal that was agreed. "Today" is the real date
unless ``--today`` says otherwise; the rules themselves never read a clock.
"""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from node.commands.base import Context, Output, open_replica, run_async, unlock
from node.commands.governance_views import agreement_view, session, text_arg, valid_day
from node.domain.governance.agreements import overdue
from node.errors import NodeError
from node.governance import circle_logbook, find_agreement, find_proposal, load_circle, review


def _today(text: str | None) -> date:
    given = valid_day(text, "--today")
    return date.fromisoformat(given) if given else date.today()


async def _agreements(ctx: Context, circle_text: str, today: str, late_only: bool) -> Any:
    async with open_replica(ctx.home) as replica:
        cg = await load_circle(replica, circle_text)
    found = cg.agreements()
    late = overdue(found, today)
    shown = late if late_only else found
    return {
        "circle": cg.circle.hex(),
        "today": today,
        "agreements": [agreement_view(cg, a, today) for a in shown],
        "overdue": [a.id.hex() for a in late],
    }


def list_agreements(ctx: Context, args: argparse.Namespace) -> Output:
    """A circle's agreements with their review dates; overdue reviews first in the text."""
    ctx.home.require()
    today = _today(args.today).isoformat()
    data = run_async(_agreements(ctx, str(args.circle), today, bool(args.overdue)))
    lines = [
        f"{a['agreement']}  {a['state']:<10}  review {a['review_date'] or '-'}"
        + ("  OVERDUE" if a["overdue"] else "")
        + f"  {a['title']}"
        for a in data["agreements"]
    ]
    if not lines:
        lines = ["No overdue reviews." if args.overdue else "No agreements yet."]
    return Output(data, "\n".join(lines))


async def _review(ctx: Context, args: argparse.Namespace, today: date) -> dict[str, Any]:
    async with session(ctx) as (replica, entry):
        cg, agreement = await find_agreement(replica, str(args.agreement))
        cg.require_writer(entry.member)
        if agreement.state != "in_force":
            raise NodeError(f"agreement {agreement.id.hex()[:12]} is {agreement.state}")
        key = unlock(ctx, entry)
        agreement, op, opened = await review(
            replica,
            key,
            agreement.id.hex(),
            args.outcome,
            next_review=valid_day(args.next, "--next"),
            text=args.text,
            today=today,
            note=str(args.note or ""),
        )
        data: dict[str, Any] = {"agreement": agreement.id.hex(), "outcome": args.outcome}
        data["op"] = op.hex()
        if opened is not None:
            cg, proposal = await find_proposal(replica, opened.hex())
            data.update(proposal=opened.hex(), version=proposal.current().hash.hex())
        cg, agreement = await find_agreement(replica, agreement.id.hex())
        data.update(state=agreement.state, next_review=agreement.review_date)
        return data


def review_agreement(ctx: Context, args: argparse.Namespace) -> Output:
    """Review an agreement: keep it (next review date), amend it (a new proposal) or retire it."""
    ctx.home.require()
    if args.outcome == "amend":
        text_arg(args.text, "--text")
    data = run_async(_review(ctx, args, _today(args.today)))
    if args.outcome == "keep":
        text = f"Kept agreement {data['agreement'][:12]}; next review {data['next_review']}."
    elif args.outcome == "amend":
        text = (
            f"Opened proposal {data['proposal']} to amend agreement {data['agreement'][:12]}; "
            "it stays in force until the new proposal is agreed."
        )
    else:
        text = f"Retired agreement {data['agreement'][:12]}."
    return Output(data, text)


async def _logbook(ctx: Context, circle_text: str) -> dict[str, Any]:
    async with open_replica(ctx.home) as replica:
        circle = await replica.resolve_circle(circle_text)
        entries = await circle_logbook(replica, circle)
    return {"circle": circle.hex(), "entries": [e.as_dict() for e in entries]}


def logbook(ctx: Context, args: argparse.Namespace) -> Output:
    """Every decision and review of a circle (and elections, once they add theirs), in order."""
    ctx.home.require()
    data = run_async(_logbook(ctx, str(args.circle)))
    lines = [
        f"{e['date']}  {e['kind']:<9} {e['title']}  [{e['op'][:12]}]"
        + (f"  {e['outcome']}" if e.get("outcome") else "")
        for e in data["entries"]
    ]
    return Output(data, "\n".join(lines) or "The logbook is empty.")


def register(build: Any, subs: Any) -> None:
    """Add ``agreements``, ``review`` and ``logbook`` to the `circle-node` parser."""
    listing = build.command(subs, "agreements", "a circle's agreements", list_agreements)
    listing.add_argument("circle", metavar="CIRCLE")
    listing.add_argument("--overdue", action="store_true", help="only overdue reviews")
    listing.add_argument("--today", metavar="YYYY-MM-DD", help="judge overdue as of this day")
    check = build.command(subs, "review", "review an agreement", review_agreement)
    check.add_argument("agreement", metavar="AGREEMENT", help="the agreed proposal's id")
    check.add_argument("outcome", choices=["keep", "amend", "retire"])
    check.add_argument("--next", metavar="YYYY-MM-DD", help="keep: the next review date")
    check.add_argument("--text", help="amend: the new proposal's text")
    check.add_argument("--note", help="what the review found")
    check.add_argument("--today", metavar="YYYY-MM-DD", help=argparse.SUPPRESS)
    build.command(subs, "logbook", "a circle's decisions and reviews", logbook).add_argument(
        "circle", metavar="CIRCLE"
    )
