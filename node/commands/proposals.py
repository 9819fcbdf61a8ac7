"""Governance commands: proposals, positions and objection tests (see node/cli.py for how
commands are wired, docs/governance.md for the rules). Agreements, reviews and the logbook
live in :mod:`node.commands.agreements`; :func:`register` adds both.

Commands that sign check what they can (the proposal, its state, the acting member's
level) before asking for a passphrase, so a typo costs no passphrase prompt. Ids are hex;
every id argument takes a unique prefix (at least 6 digits).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from node.commands import agreements
from node.commands.base import Context, Output, open_replica, run_async, unlock
from node.commands.governance_views import (
    outcome_view,
    proposal_view,
    session,
    text_arg,
    valid_day,
)
from node.domain.governance.consent import Proposal, objection_subject
from node.domain.governance.logbook import day_of
from node.domain.governance.records import (
    GovernanceRecord,
    PositionRec,
    ProposalRec,
    QuestionRec,
    ReactionRec,
    StageRec,
)
from node.errors import NotFound
from node.governance import (
    CircleGovernance,
    amend,
    create_proposal,
    find_objection,
    find_proposal,
    load_circle,
    record_objection_test,
    record_position,
    require_open,
    sign,
)

STAGES = ("clarifying", "reactions", "consent_round", "withdrawn", "deferred")
STRATEGIES = ("change", "defer", "alternative", "research", "accept_and_monitor")


# ---- proposal create / amend / show / list ----------------------------------------------------


async def _create(ctx: Context, circle_text: str, body: ProposalRec) -> dict[str, Any]:
    async with session(ctx) as (replica, entry):
        cg = await load_circle(replica, circle_text)
        cg.require_writer(entry.member)
        key = unlock(ctx, entry)
        pid, version = await create_proposal(replica, key, cg.circle, body)
        return {"proposal": pid.hex(), "version": version.hex(), "circle": cg.circle.hex()}


async def _subject(ctx: Context, objection: str | None) -> str:
    if objection is None:
        return ""
    async with open_replica(ctx.home) as replica:
        _cg, found = await find_objection(replica, objection)
    return objection_subject(found.op_id)


def create(ctx: Context, args: argparse.Namespace) -> Output:
    """Create a proposal: its driver, first text and tuners."""
    ctx.home.require()
    body = ProposalRec(
        title=text_arg(args.title, "--title"),
        driver=text_arg(args.driver, "--driver"),
        text=text_arg(args.text, "--text"),
        review_date=valid_day(args.review_date, "--review-date"),
        review_every_days=args.review_every,
        criteria=[c.strip() for c in args.criterion or [] if c.strip()],
        subject=run_async(_subject(ctx, args.tests_objection)),
    )
    data = run_async(_create(ctx, str(args.circle), body))
    text = (
        f"Created proposal {data['proposal']} (version {data['version'][:12]}).\n"
        f"Members take positions with `circle-node position {data['proposal'][:12]} consent`."
    )
    return Output(data, text)


async def _amend(ctx: Context, args: argparse.Namespace, text: str) -> dict[str, Any]:
    async with session(ctx) as (replica, entry):
        cg, proposal = await find_proposal(replica, str(args.proposal))
        cg.require_writer(entry.member)
        require_open(cg, proposal)
        resolves = []
        for ref in args.resolves or []:
            _cg, objection = await find_objection(replica, ref)
            if getattr(objection.record, "proposal", None) != proposal.id:
                raise NotFound(f"objection {ref!r} is not about proposal {proposal.id.hex()[:12]}")
            resolves.append(objection.op_id)
        key = unlock(ctx, entry)
        pid, version = await amend(
            replica,
            key,
            text,
            proposal.id.hex(),
            strategy=args.strategy,
            resolves=resolves,
            note=str(args.note or ""),
        )
        cg, proposal = await find_proposal(replica, pid.hex())
        number = proposal.versions[version].number
        return {"proposal": pid.hex(), "version": version.hex(), "number": number}


def amend_(ctx: Context, args: argparse.Namespace) -> Output:
    """A new version of the proposal's text; positions on older versions stop counting."""
    ctx.home.require()
    data = run_async(_amend(ctx, args, text_arg(args.text, "--text")))
    text = (
        f"Proposal {data['proposal'][:12]} is now at version {data['number']} "
        f"({data['version'][:12]}); earlier positions no longer count."
    )
    return Output(data, text)


async def _show(ctx: Context, ref: str) -> dict[str, Any]:
    async with open_replica(ctx.home) as replica:
        cg, proposal = await find_proposal(replica, ref)
        return proposal_view(cg, proposal)


def _current_number(data: dict[str, Any]) -> int:
    return int(next(v["number"] for v in data["versions"] if v["current"]))


def _show_text(data: dict[str, Any]) -> str:
    outcome = data["outcome"]
    lines = [
        f"Proposal {data['title']!r}  ({data['proposal']})",
        f"  state    {data['state']}"
        + (f" (deadline {data['deadline']})" if data["deadline"] else ""),
        f"  driver   {data['driver']}",
        f"  version  {_current_number(data)}: {data['version'][:12]}",
        f"  text     {data['text']}",
        "  positions:",
    ]
    for p in data["positions"]:
        mark = "" if p["counts"] else " (does not count)"
        reason = f": {p['reason']}" if p["reason"] else ""
        head = f"    v{p['version_number']} {p['name']:<12} {p['position']}"
        lines.append(f"{head}{reason}  [{p['op'][:12]}]{mark}")
    if outcome["missing"]:
        lines.append("  waiting for: " + ", ".join(m[:8] for m in outcome["missing"]))
    if outcome["decision"]:
        check = "verified" if outcome["verified"] else "DOES NOT HOLD"
        lines.append(f"  decision {outcome['decision'][:12]} ({check})")
    for bad in data["invalid_decisions"]:
        lines.append(f"  invalid decision {bad['op'][:12]}: {bad['why']}")
    return "\n".join(lines)


def show(ctx: Context, args: argparse.Namespace) -> Output:
    """A proposal with its versions, positions, outcome, tuners, questions and reactions."""
    ctx.home.require()
    data = run_async(_show(ctx, str(args.proposal)))
    return Output(data, _show_text(data))


async def _list(ctx: Context, circle_text: str) -> list[dict[str, Any]]:
    async with open_replica(ctx.home) as replica:
        cg = await load_circle(replica, circle_text)
    rows = []
    for proposal in sorted(cg.gov.proposals.values(), key=lambda p: (p.ts, p.op_id)):
        outcome = cg.outcome(proposal)
        rows.append(
            {
                "proposal": proposal.id.hex(),
                "title": proposal.body.title,
                "state": outcome.state,
                "version": outcome.version.hash.hex(),
                "created": day_of(proposal.ts),
            }
        )
    return rows


def list_proposals(ctx: Context, args: argparse.Namespace) -> Output:
    """The proposals of a circle, oldest first, with their states."""
    ctx.home.require()
    rows = run_async(_list(ctx, str(args.circle)))
    text = "\n".join(f"{r['proposal']}  {r['state']:<13}  {r['title']}" for r in rows)
    return Output({"proposals": rows}, text or "No proposals yet: `circle-node proposal create`.")


# ---- stages, questions, reactions -------------------------------------------------------------


async def _sign_on(
    ctx: Context,
    ref: str,
    make: Callable[[CircleGovernance, Proposal], GovernanceRecord],
    *,
    open_only: bool = True,
) -> dict[str, Any]:
    """Sign one record about a proposal as the acting member; its op id and new state."""
    async with session(ctx) as (replica, entry):
        cg, proposal = await find_proposal(replica, ref)
        cg.require_writer(entry.member)
        if open_only:
            require_open(cg, proposal)
        record = make(cg, proposal)
        key = unlock(ctx, entry)
        op = await sign(replica, key, cg.circle, record)
        cg, proposal = await find_proposal(replica, proposal.id.hex())
        return {"proposal": proposal.id.hex(), "op": op.hex(), "state": cg.outcome(proposal).state}


def stage(ctx: Context, args: argparse.Namespace) -> Output:
    """Move a proposal to an S3 stage, or withdraw or defer it (a deferred one resumes)."""
    ctx.home.require()
    deadline = valid_day(args.deadline, "--deadline")

    def make(cg: CircleGovernance, proposal: Proposal) -> GovernanceRecord:
        if cg.outcome(proposal).state != "deferred" or args.stage == "deferred":
            require_open(cg, proposal)  # a deferred proposal may resume or be withdrawn
        return StageRec(proposal=proposal.id, stage=args.stage, deadline=deadline)

    data = run_async(_sign_on(ctx, str(args.proposal), make, open_only=False))
    data["stage"] = args.stage
    return Output(data, f"Proposal {data['proposal'][:12]} is now {data['state']}.")


def question(ctx: Context, args: argparse.Namespace) -> Output:
    """Ask a clarifying question about a proposal, or answer one (--answers OP)."""
    ctx.home.require()
    text = text_arg(args.text, "--text")

    def make(cg: CircleGovernance, proposal: Proposal) -> GovernanceRecord:
        answers = None
        if args.answers:
            prefix = str(args.answers).strip().lower()
            matches = [q.op_id for q in proposal.questions if q.op_id.hex().startswith(prefix)]
            if len(prefix) < 6 or len(matches) != 1:
                raise NotFound(
                    f"no single question of this proposal matches {args.answers!r}: "
                    "`circle-node proposal show ID` lists them"
                )
            answers = matches[0]
        return QuestionRec(proposal=proposal.id, text=text, answers=answers)

    data = run_async(_sign_on(ctx, str(args.proposal), make))
    return Output(data, f"Recorded {'answer' if args.answers else 'question'} {data['op'][:12]}.")


def react(ctx: Context, args: argparse.Namespace) -> Output:
    """Share a reaction to a proposal (the S3 reaction round)."""
    ctx.home.require()
    text = text_arg(args.text, "--text")

    def make(cg: CircleGovernance, proposal: Proposal) -> GovernanceRecord:
        return ReactionRec(proposal=proposal.id, text=text)

    data = run_async(_sign_on(ctx, str(args.proposal), make))
    return Output(data, f"Recorded reaction {data['op'][:12]}.")


# ---- positions and objection tests ------------------------------------------------------------


async def _position(ctx: Context, args: argparse.Namespace, reason: str) -> dict[str, Any]:
    async with session(ctx) as (replica, entry):
        cg, proposal = await find_proposal(replica, str(args.proposal))
        cg.require_writer(entry.member)
        require_open(cg, proposal)
        key = unlock(ctx, entry)
        taken = await record_position(replica, key, proposal.id.hex(), args.position, reason)
        cg, proposal = await find_proposal(replica, proposal.id.hex())
        return {
            "proposal": proposal.id.hex(),
            "position": args.position,
            "op": taken.op.hex(),
            "state": taken.outcome.state,
            "version": taken.outcome.version.hash.hex(),
            "decision": taken.decision.hex() if taken.decision else None,
            "outcome": outcome_view(cg, taken.outcome),
        }


def position(ctx: Context, args: argparse.Namespace) -> Output:
    """Take a position on a proposal's current version; the last consent signs the decision."""
    ctx.home.require()
    reason = str(args.reason or "").strip()
    data = run_async(_position(ctx, args, reason))
    text = f"Recorded {args.position} ({data['op'][:12]}); proposal is {data['state']}."
    if data["decision"]:
        text += f"\nConsent is complete: decision record {data['decision'][:12]}."
    elif data["outcome"]["missing"]:
        text += f"\nWaiting for {len(data['outcome']['missing'])} member(s)."
    return Output(data, text)


async def _test(ctx: Context, args: argparse.Namespace, qualifies: bool) -> dict[str, Any]:
    async with session(ctx) as (replica, entry):
        cg, objection = await find_objection(replica, str(args.objection))
        cg.require_writer(entry.member)
        key = unlock(ctx, entry)
        cg, objection, op = await record_objection_test(
            replica, key, objection.op_id.hex(), qualifies, args.decision, str(args.note or "")
        )
        record = objection.record
        assert isinstance(record, PositionRec)
        cg, proposal = await find_proposal(replica, record.proposal.hex())
        return {
            "objection": objection.op_id.hex(),
            "op": op.hex(),
            "qualifies": qualifies,
            "objection_open": cg.objection_open(objection),
            "proposal": proposal.id.hex(),
            "state": cg.outcome(proposal).state,
        }


def objection_test(ctx: Context, args: argparse.Namespace) -> Output:
    """Record whether an objection qualifies (the objector's own word, or a decision)."""
    ctx.home.require()
    data = run_async(_test(ctx, args, args.qualifies == "yes"))
    status = "still blocks" if data["objection_open"] else "no longer blocks"
    return Output(data, f"Recorded test {data['op'][:12]}: the objection {status}.")


# ---- wiring -------------------------------------------------------------------------------------


def _proposal_commands(build: Any, subs: Any) -> None:
    group = build.group(build.command(subs, "proposal", "proposals and consent rounds"), "proposal")
    new = build.command(group, "create", "create a proposal", create)
    new.add_argument("circle", metavar="CIRCLE", help="circle id or unique id prefix")
    new.add_argument("--title", required=True, help="a short title")
    new.add_argument("--driver", required=True, help="the driver: what is happening and needed")
    new.add_argument("--text", required=True, help="the proposal's text")
    new.add_argument("--review-date", metavar="YYYY-MM-DD", help="when to review the agreement")
    new.add_argument("--review-every", metavar="DAYS", type=int, help="review frequency in days")
    new.add_argument("--criterion", action="append", metavar="TEXT", help="evaluation criterion")
    new.add_argument("--tests-objection", metavar="OP", help="this proposal tests an objection")
    change = build.command(group, "amend", "a new version of the text", amend_)
    change.add_argument("proposal", metavar="ID")
    change.add_argument("--text", required=True, help="the new text")
    change.add_argument("--strategy", choices=STRATEGIES, default="change")
    change.add_argument("--resolves", action="append", metavar="OBJECTION_OP")
    change.add_argument("--note", help="how the amendment integrates objections or concerns")
    build.command(group, "show", "a proposal, its positions and outcome", show).add_argument(
        "proposal", metavar="ID"
    )
    build.command(group, "list", "a circle's proposals", list_proposals).add_argument(
        "circle", metavar="CIRCLE"
    )
    move = build.command(group, "stage", "move to a stage, withdraw or defer", stage)
    move.add_argument("proposal", metavar="ID")
    move.add_argument("stage", choices=STAGES)
    move.add_argument("--deadline", metavar="YYYY-MM-DD", help="when the round closes")
    ask = build.command(group, "question", "a clarifying question (or answer)", question)
    ask.add_argument("proposal", metavar="ID")
    ask.add_argument("--text", required=True)
    ask.add_argument("--answers", metavar="OP", help="the question this answers")
    reply = build.command(group, "react", "a reaction", react)
    reply.add_argument("proposal", metavar="ID")
    reply.add_argument("--text", required=True)


def register(build: Any, subs: Any) -> None:
    """Add this module's subcommands (and the agreements module's) to `circle-node`."""
    _proposal_commands(build, subs)
    take = build.command(subs, "position", "take a position on a proposal", position)
    take.add_argument("proposal", metavar="ID")
    take.add_argument("position", choices=["consent", "concern", "objection"])
    take.add_argument("--reason", help="why (an objection must say what harm it would do)")
    objection = build.group(build.command(subs, "objection", "objections"), "objection")
    check = build.command(objection, "test", "record whether it qualifies", objection_test)
    check.add_argument("objection", metavar="OBJECTION_OP")
    check.add_argument("--qualifies", choices=["yes", "no"], required=True)
    check.add_argument("--decision", metavar="PROPOSAL", help="the agreed proposal that tested it")
    check.add_argument("--note")
    agreements.register(build, subs)
