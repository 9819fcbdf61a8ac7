"""Angels Den, delivery and learning: ``pitch``, ``pledge``, ``project``, ``milestone``,
``lesson``, ``measure`` and ``learning`` (see node/cli.py for how commands are wired).

Money is integer minor units everywhere (``--costs 250000 --currency GBP`` is 2,500.00).
"""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from node.commands.base import Context, Output, acting_member, open_replica, run_async, unlock
from node.commands.ideas import read, sign_draft, signed_output
from node.funding import (
    Case,
    draft_lesson,
    draft_measure,
    draft_milestone,
    draft_milestone_set,
    draft_pitch,
    draft_pledge,
    draft_pledge_move,
    draft_project,
    draft_reading,
    draft_shares,
    find_pitch,
    find_project,
    learning_view,
    load_held,
    pitch_view,
    project_view,
)
from node.ideas import commit
from node.replica import Replica

MOVES = {"confirm": "confirmed", "fulfil": "fulfilled", "withdraw": "withdrawn"}


# ISO 4217 currencies whose minor unit is not a hundredth (display only)
_EXPONENTS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "UGX": 0, "XOF": 0, "XAF": 0}
_EXPONENTS |= {"KWD": 3, "BHD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3}


def _money(amount: int, currency: str) -> str:
    """Integer minor units shown in major units, e.g. 250000 GBP -> "2,500.00 GBP"."""
    exponent = _EXPONENTS.get(currency, 2)
    whole, minor = divmod(amount, 10**exponent)
    return f"{whole:,}.{minor:0{exponent}d} {currency}" if exponent else f"{whole:,} {currency}"


# ---- pitch --------------------------------------------------------------------------------


def pitch_create(ctx: Context, args: argparse.Namespace) -> Output:
    """Attach a business case to an agreed proposal and pitch it to an Angels Den."""
    case = Case(args.costs, args.currency, args.benefits, args.roi, args.sustainability)
    draft, op = sign_draft(ctx, lambda r, m: draft_pitch(r, m, args.proposal, args.den, case))
    return signed_output(draft, op, "pitch", "Pitched as {id}: investors pledge to it.")


def pitch_show(ctx: Context, args: argparse.Namespace) -> Output:
    """A pitch's business case, pledges and funding figures."""

    async def view(replica: Replica) -> dict[str, Any]:
        held, pitch = await find_pitch(replica, args.pitch)
        return pitch_view(held, pitch)

    data = read(ctx, view)
    cur = data["currency"]
    lines = [
        f"Pitch {data['pitch']}: {data['title']}",
        f"  costs {_money(data['costs'], cur)}; pledged {_money(data['pledged'], cur)}; "
        f"confirmed {_money(data['confirmed'], cur)}; needed {_money(data['needed'], cur)}",
        "  FUNDED" if data["funded"] else "  not funded yet",
    ]
    lines += [
        f"  {p['pledge'][:8]}  {p['name']:<12} {_money(p['amount'], p['currency'])}  {p['state']}"
        for p in data["pledges"]
    ]
    return Output(data, "\n".join(lines))


def pitch_list(ctx: Context, args: argparse.Namespace) -> Output:
    """Every pitch held here with its funding."""

    async def view(replica: Replica) -> dict[str, Any]:
        held = await load_held(replica)
        keep = ("pitch", "title", "circle", "den", "costs", "currency", "confirmed", "funded")
        rows = [pitch_view(held, p) for p in held.funding.pitches.values()]
        return {"pitches": [{k: row[k] for k in keep} for row in rows]}

    data = read(ctx, view)
    lines = [
        f"{p['pitch'][:8]}  {'funded' if p['funded'] else 'open':<6}  {p['title']}"
        for p in data["pitches"]
    ]
    return Output(data, "\n".join(lines) or "No pitches yet.")


# ---- pledge -------------------------------------------------------------------------------


def pledge(ctx: Context, args: argparse.Namespace) -> Output:
    """``pledge PITCH --amount N`` makes a pledge; ``pledge confirm|fulfil|withdraw PLEDGE``
    moves one (only its pledger)."""
    if args.target in MOVES:
        if args.pledge is None or args.amount is not None:
            args.usage_error(f"use: pledge {args.target} PLEDGE (no --amount)")
        state = MOVES[args.target]
        draft, op = sign_draft(ctx, lambda r, m: draft_pledge_move(r, m, args.pledge, state))
        text = f"Pledge {args.pledge} is now {state}."
        return Output({**draft.summary, "op": op.hex()}, text)
    if args.pledge is not None or args.amount is None:
        args.usage_error("use: pledge PITCH --amount N [--currency C] [--conditions TEXT]")
    draft, op = sign_draft(
        ctx,
        lambda r, m: draft_pledge(r, m, args.target, args.amount, args.currency, args.conditions),
    )
    return signed_output(draft, op, "pledge", "Pledged: {id}. Confirm it with `pledge confirm`.")


# ---- project ------------------------------------------------------------------------------


def project_start(ctx: Context, args: argparse.Namespace) -> Output:
    """Turn a funded pitch into a project with its team."""
    draft, op = sign_draft(
        ctx, lambda r, m: draft_project(r, m, args.pitch, list(args.team), args.title)
    )
    return signed_output(draft, op, "project", "Started project {id}.")


def project_show(ctx: Context, args: argparse.Namespace) -> Output:
    """A project's team, milestones, lessons and measures."""

    async def view(replica: Replica) -> dict[str, Any]:
        held, project = await find_project(replica, args.project)
        return project_view(held, project)

    data = read(ctx, view)
    lines = [f"Project {data['project']}: {data['title']}" + ("" if data["valid"] else " (!)")]
    lines += [f"  problem: {p}" for p in data["problems"]]
    lines += [f"  team: {s['name']} for {s['assurance']}" for s in data["team"]]
    lines += [
        f"  milestone {m['milestone'][:8]} {m['status']:<11} {m['title']}"
        for m in data["milestones"]
    ]
    lines += [f"  lesson: {les['text']}" for les in data["lessons"]]
    lines += [
        f"  measure {m['measure'][:8]} {m['name']}: {m['latest']} / {m['target']} {m['unit']}"
        for m in data["measures"]
    ]
    return Output(data, "\n".join(lines))


def project_list(ctx: Context, args: argparse.Namespace) -> Output:
    """Every project held here."""

    async def view(replica: Replica) -> dict[str, Any]:
        held = await load_held(replica)
        rows = [
            {"project": pid.hex(), "title": p.body.title, "circle": p.entry.circle.hex()}
            | {"valid": p.valid}
            for pid, p in held.funding.projects.items()
        ]
        return {"projects": rows}

    data = read(ctx, view)
    lines = [f"{p['project'][:8]}  {p['title']}" for p in data["projects"]]
    return Output(data, "\n".join(lines) or "No projects yet.")


def project_share(ctx: Context, args: argparse.Namespace) -> Output:
    """Share a project's new lessons, measures and readings with an SVL circle."""
    entry = acting_member(ctx)

    async def run() -> dict[str, Any]:
        async with open_replica(ctx.home) as replica:
            shares = await draft_shares(replica, entry.member, args.project, args.to)
            key = unlock(ctx, entry) if shares.drafts else None
            ops = [await commit(replica, key, d) for d in shares.drafts if key is not None]
        return {
            "project": shares.project.hex(),
            "to": shares.svl.hex(),
            "shares": [o.hex() for o in ops],
            "items": sum(int(d.summary["items"]) for d in shares.drafts),
        }

    data = run_async(run())
    count, items = len(data["shares"]), data["items"]
    text = f"Shared {items} item(s) in {count} share(s)." if count else "Nothing new to share."
    return Output(data, text)


# ---- milestones, lessons, measures --------------------------------------------------------


def milestone_add(ctx: Context, args: argparse.Namespace) -> Output:
    """Add a milestone to a project."""
    draft, op = sign_draft(
        ctx, lambda r, m: draft_milestone(r, m, args.project, args.title, args.due)
    )
    return signed_output(draft, op, "milestone", "Added milestone {id}.")


def milestone_set(ctx: Context, args: argparse.Namespace) -> Output:
    """Move a milestone to a new status."""
    draft, op = sign_draft(ctx, lambda r, m: draft_milestone_set(r, m, args.milestone, args.status))
    text = f"Milestone {args.milestone} is now {args.status}."
    return Output({**draft.summary, "op": op.hex()}, text)


def lesson_add(ctx: Context, args: argparse.Namespace) -> Output:
    """Record a lesson learned."""
    draft, op = sign_draft(ctx, lambda r, m: draft_lesson(r, m, args.project, args.text))
    return signed_output(draft, op, "lesson", "Recorded lesson {short}.")


def measure_add(ctx: Context, args: argparse.Namespace) -> Output:
    """Add a benefit measure with a target."""
    draft, op = sign_draft(
        ctx,
        lambda r, m: draft_measure(
            r,
            m,
            args.project,
            name=args.name,
            target=args.target,
            unit=args.unit,
            direction=args.direction,
        ),
    )
    return signed_output(draft, op, "measure", "Added measure {id}.")


def measure_read(ctx: Context, args: argparse.Namespace) -> Output:
    """Record a signed reading of a measure."""
    on = args.on or date.today().isoformat()
    draft, op = sign_draft(
        ctx, lambda r, m: draft_reading(r, m, args.measure, args.value, on, args.note)
    )
    return signed_output(draft, op, "reading", "Recorded reading {short}.", on=on)


def learning(ctx: Context, args: argparse.Namespace) -> Output:
    """Lessons and measures an SVL circle has received."""
    data = read(ctx, lambda replica: learning_view(replica, args.circle))
    lines = [f"lesson ({x['project'][:8]}): {x['text']}" for x in data["lessons"]]
    lines += [
        f"measure ({m['project'][:8]}) {m['name']}: {m['latest']} / {m['target']} {m['unit']}"
        for m in data["measures"]
    ]
    return Output(data, "\n".join(lines) or "Nothing received yet.")


# ---- wiring -------------------------------------------------------------------------------


def _pitch_commands(build: Any, subs: Any) -> None:
    pitch = build.group(build.command(subs, "pitch", "Angels Den pitches"), "pitch")
    cmd = build.command(pitch, "create", "pitch an agreed proposal", pitch_create)
    cmd.add_argument("proposal", metavar="PROPOSAL")
    cmd.add_argument("--den", required=True, metavar="CIRCLE", help="the Angels Den circle")
    cmd.add_argument("--costs", type=int, required=True, help="integer minor units")
    cmd.add_argument("--currency", required=True, help="ISO code, e.g. GBP")
    cmd.add_argument("--benefits", default="")
    cmd.add_argument("--roi", default="", help="return on investment")
    cmd.add_argument("--sustainability", default="")
    cmd = build.command(pitch, "show", "a pitch and its funding", pitch_show)
    cmd.add_argument("pitch", metavar="PITCH")
    build.command(pitch, "list", "the pitches held here", pitch_list)
    usage = "pledge PITCH --amount N | pledge confirm|fulfil|withdraw PLEDGE"
    cmd = build.command(subs, "pledge", f"pledge to a pitch, or move a pledge: {usage}", pledge)
    cmd.add_argument("target", metavar="PITCH|confirm|fulfil|withdraw")
    cmd.add_argument("pledge", nargs="?", metavar="PLEDGE")
    cmd.add_argument("--amount", type=int, help="integer minor units")
    cmd.add_argument("--currency", help="default: the pitch's currency")
    cmd.add_argument("--conditions", default="")
    cmd.set_defaults(usage_error=cmd.error)


def _project_commands(build: Any, subs: Any) -> None:
    project = build.group(build.command(subs, "project", "delivery projects"), "project")
    cmd = build.command(project, "start", "turn a funded pitch into a project", project_start)
    cmd.add_argument("pitch", metavar="PITCH")
    cmd.add_argument(
        "--team",
        nargs="+",
        required=True,
        metavar="MEMBER:CIRCLE:ASSURANCE",
        help="one per earlier circle; ASSURANCE: requirements, design or investment_benefits",
    )
    cmd.add_argument("--title", help="default: the pitch's title")
    cmd = build.command(project, "show", "a project", project_show)
    cmd.add_argument("project", metavar="PROJECT")
    build.command(project, "list", "the projects held here", project_list)
    cmd = build.command(project, "share", "share learning with an SVL circle", project_share)
    cmd.add_argument("project", metavar="PROJECT")
    cmd.add_argument("--to", required=True, metavar="SVL_CIRCLE")
    milestone = build.group(build.command(subs, "milestone", "project milestones"), "milestone")
    cmd = build.command(milestone, "add", "add a milestone", milestone_add)
    cmd.add_argument("project", metavar="PROJECT")
    cmd.add_argument("--title", required=True)
    cmd.add_argument("--due", metavar="YYYY-MM-DD")
    cmd = build.command(milestone, "set", "set a milestone's status", milestone_set)
    cmd.add_argument("milestone", metavar="MILESTONE")
    cmd.add_argument("status", choices=["planned", "in_progress", "done", "blocked"])


def _learning_commands(build: Any, subs: Any) -> None:
    lesson = build.group(build.command(subs, "lesson", "lessons learned"), "lesson")
    cmd = build.command(lesson, "add", "record a lesson learned", lesson_add)
    cmd.add_argument("project", metavar="PROJECT")
    cmd.add_argument("--text", required=True)
    measure = build.group(build.command(subs, "measure", "benefit measures"), "measure")
    cmd = build.command(measure, "add", "add a benefit measure", measure_add)
    cmd.add_argument("project", metavar="PROJECT")
    cmd.add_argument("--name", required=True)
    cmd.add_argument("--target", type=int, required=True, help="a whole number")
    cmd.add_argument("--unit", default="")
    cmd.add_argument("--direction", choices=["up", "down"], default="up", help="is more better?")
    cmd = build.command(measure, "read", "record a signed reading", measure_read)
    cmd.add_argument("measure", metavar="MEASURE")
    cmd.add_argument("--value", type=int, required=True)
    cmd.add_argument("--on", metavar="YYYY-MM-DD", help="default: today")
    cmd.add_argument("--note", default="")
    cmd = build.command(subs, "learning", "what an SVL circle has received", learning)
    cmd.add_argument("circle", metavar="SVL_CIRCLE")


def register(build: Any, subs: Any) -> None:
    """Add this module's subcommands to the `circle-node` parser."""
    _pitch_commands(build, subs)
    _project_commands(build, subs)
    _learning_commands(build, subs)
