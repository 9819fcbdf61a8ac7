"""Ideas, drivers, outline plans and join requests: ``idea ...`` and ``join ...``.

Every signing command drafts first (checks the circle, the acting member's level and the
rules) and asks for the passphrase only when the draft holds. See node/cli.py for wiring.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from node.commands.base import Context, Output, acting_member, open_replica, run_async, unlock
from node.domain.auth import Level
from node.domain.governance.ideas import Idea
from node.domain.governance.records import ProposalRec
from node.governance import create_proposal
from node.ideas import (
    Draft,
    commit,
    draft_admission,
    draft_idea_proposal,
    draft_join_proposal,
    draft_join_request,
    draft_note,
    draft_plan,
    draft_qualify,
    draft_share,
    find_idea,
    idea_proposals,
    idea_row,
    idea_view,
    join_requests,
    join_view,
    load_ideas,
)
from node.ideas import admit as sign_admission
from node.replica import Replica

Drafter = Callable[[Replica, bytes], Awaitable[Draft]]
ProposalDrafter = Callable[[Replica, bytes], Awaitable[tuple[bytes, ProposalRec]]]


def sign_draft(ctx: Context, make: Drafter) -> tuple[Draft, bytes]:
    """Draft as the acting member, then unlock their key and sign; ``(draft, op id)``."""
    entry = acting_member(ctx)

    async def run() -> tuple[Draft, bytes]:
        async with open_replica(ctx.home) as replica:
            draft = await make(replica, entry.member)
            return draft, await commit(replica, unlock(ctx, entry), draft)

    return run_async(run())


def sign_proposal(ctx: Context, make: ProposalDrafter) -> tuple[dict[str, Any], ProposalRec]:
    """Draft a proposal, then sign it; its JSON (proposal, version, circle) and body."""
    entry = acting_member(ctx)

    async def run() -> tuple[dict[str, Any], ProposalRec]:
        async with open_replica(ctx.home) as replica:
            circle, body = await make(replica, entry.member)
            pid, version = await create_proposal(replica, unlock(ctx, entry), circle, body)
        return {"proposal": pid.hex(), "version": version.hex(), "circle": circle.hex()}, body

    return run_async(run())


def read(ctx: Context, view: Callable[[Replica], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """Run a read-only view (no passphrase)."""
    ctx.home.require()

    async def run() -> dict[str, Any]:
        async with open_replica(ctx.home) as replica:
            return await view(replica)

    return run_async(run())


def signed_output(draft: Draft, op: bytes, key: str, text: str, **extra: Any) -> Output:
    """The usual output of a signing command: the new id under ``key``, and the op id."""
    data = {key: op[:16].hex(), **draft.summary, **extra, "op": op.hex()}
    return Output(data, text.format(id=op[:16].hex(), short=op[:16].hex()[:8]))


# ---- idea ---------------------------------------------------------------------------------


def share(ctx: Context, args: argparse.Namespace) -> Output:
    """Share an idea (--text) or a driver statement (--what/--need/--why)."""
    draft, op = sign_draft(
        ctx,
        lambda r, m: draft_share(
            r, m, args.circle, text=args.text, what=args.what, need=args.need, why=args.why
        ),
    )
    kind = draft.summary["kind"]
    return signed_output(draft, op, "idea", f"Shared {kind} {{id}}.")


def note(ctx: Context, args: argparse.Namespace) -> Output:
    """Add a co-design note to an idea."""
    draft, op = sign_draft(ctx, lambda r, m: draft_note(r, m, args.idea, args.text))
    return signed_output(draft, op, "note", "Noted on idea " + draft.summary["idea"][:8] + ".")


def qualify(ctx: Context, args: argparse.Namespace) -> Output:
    """Qualify an idea: accepted as the circle's driver, passed on, or discarded."""
    draft, op = sign_draft(
        ctx, lambda r, m: draft_qualify(r, m, args.idea, args.outcome, args.to, args.reason)
    )
    text = f"Idea {draft.summary['idea'][:8]} is now {args.outcome}."
    return Output({**draft.summary, "op": op.hex()}, text)


def plan(ctx: Context, args: argparse.Namespace) -> Output:
    """Attach an outline plan (scope, resources, cost range) to an idea."""
    draft, op = sign_draft(
        ctx,
        lambda r, m: draft_plan(
            r,
            m,
            args.idea,
            scope=args.scope,
            resources=args.resources,
            low=args.cost_low,
            high=args.cost_high,
            currency=args.currency,
        ),
    )
    return signed_output(draft, op, "plan", "Outline plan {short} attached.")


def propose(ctx: Context, args: argparse.Namespace) -> Output:
    """Open a proposal answering an accepted idea."""
    data, body = sign_proposal(
        ctx, lambda r, m: draft_idea_proposal(r, m, args.idea, args.title, args.text)
    )
    data["idea"] = body.idea.hex() if body.idea else None
    return Output(data, f"Opened proposal {data['proposal']} for idea {data['idea']}.")


def list_ideas(ctx: Context, args: argparse.Namespace) -> Output:
    """The ideas and drivers of a circle with their qualification."""

    async def view(replica: Replica) -> dict[str, Any]:
        circle = await replica.resolve_circle(args.circle)
        rows, received = [], []
        for held in sorted(await replica.circles()):
            ideas = await load_ideas(replica, held)
            for idea in sorted(ideas.book.ideas.values(), key=_shared_order):
                passed = idea.qualification
                if held == circle:
                    rows.append(idea_row(idea))
                elif idea.state == "passed_on" and passed is not None and passed.to == circle:
                    received.append(idea_row(idea) | {"from": held.hex()})
        return {"circle": circle.hex(), "ideas": rows, "passed_to_us": received}

    data = read(ctx, view)
    lines = [
        f"{r['idea'][:8]}  {r['kind']:<6}  {r['state']:<9}  {r['title']}" for r in data["ideas"]
    ]
    lines += [
        f"{r['idea'][:8]}  {r['kind']:<6}  from {r['from'][:8]}  {r['title']}"
        for r in data["passed_to_us"]
    ]
    return Output(data, "\n".join(lines) or "No ideas yet: `circle-node idea share CIRCLE ...`.")


def _shared_order(idea: Idea) -> tuple[int, bytes]:
    return (idea.entry.ts, idea.entry.op_id)


def show(ctx: Context, args: argparse.Namespace) -> Output:
    """An idea with its notes, qualification, outline plans and proposals."""

    async def view(replica: Replica) -> dict[str, Any]:
        ideas, idea = await find_idea(replica, args.idea)
        return idea_view(ideas, idea, await idea_proposals(replica, ideas.circle, idea.id))

    data = read(ctx, view)
    lines = [f"{data['kind'].capitalize()} {data['idea']}  ({data['state']})", data["title"]]
    if data["passed_to"]:
        lines.append(f"  passed on to circle {data['passed_to']}: {data['reason'] or '-'}")
    lines += [f"  note by {n['by']}: {n['text']}" for n in data["notes"]]
    if data["plan"]:
        p = data["plan"]
        lines.append(f"  plan: {p['scope']} ({p['cost_low']}..{p['cost_high']} {p['currency']})")
    lines += [f"  proposal {p}" for p in data["proposals"]]
    return Output(data, "\n".join(lines))


# ---- join ---------------------------------------------------------------------------------


def request(ctx: Context, args: argparse.Namespace) -> Output:
    """Record someone's request to join a circle, by their card."""

    async def make(replica: Replica, member: bytes) -> Draft:
        draft, _card = await draft_join_request(
            replica, member, args.circle, args.card, args.as_kind, args.message
        )
        return draft

    draft, op = sign_draft(ctx, make)
    return signed_output(draft, op, "request", "Recorded join request {id}.")


def propose_join(ctx: Context, args: argparse.Namespace) -> Output:
    """Open the consent proposal that decides a join request."""
    data, body = sign_proposal(ctx, lambda r, m: draft_join_proposal(r, m, args.request))
    data["request"] = body.join_request.hex() if body.join_request else None
    return Output(data, f"Opened proposal {data['proposal']}: members take positions on it.")


def admit(ctx: Context, args: argparse.Namespace) -> Output:
    """Admit the member of an agreed join request; the auth op cites the decision."""
    entry = acting_member(ctx)
    level = Level.parse(args.level)

    async def run() -> dict[str, Any]:
        async with open_replica(ctx.home) as replica:
            admission = await draft_admission(replica, entry.member, args.request, level)
            op = await sign_admission(replica, unlock(ctx, entry), admission)
        return {
            "request": admission.request.hex(),
            "circle": admission.circle.hex(),
            "member": admission.card.member_id,
            "name": admission.card.name,
            "level": level.name.lower(),
            "decision": admission.decision.hex(),
            "op": op.hex(),
        }

    data = run_async(run())
    text = f"Admitted {data['name']} ({data['level']}), citing decision {data['decision'][:12]}."
    return Output(data, text)


def list_requests(ctx: Context, args: argparse.Namespace) -> Output:
    """The join requests of a circle and where each stands."""

    async def view(replica: Replica) -> dict[str, Any]:
        circle = await replica.resolve_circle(args.circle)
        state = await replica.auth_state(circle)
        rows = [join_view(r, state) for r in await join_requests(replica, circle)]
        return {"circle": circle.hex(), "requests": rows}

    data = read(ctx, view)
    lines = [
        f"{r['request'][:8]}  {r['status']:<9}  {r['name']} ({r['kind']})" for r in data["requests"]
    ]
    return Output(data, "\n".join(lines) or "No join requests.")


# ---- wiring -------------------------------------------------------------------------------


def _idea_commands(build: Any, subs: Any) -> None:
    idea = build.group(build.command(subs, "idea", "ideas and driver statements"), "idea")
    cmd = build.command(idea, "share", "share an idea or a driver statement", share)
    cmd.add_argument("circle", metavar="CIRCLE")
    cmd.add_argument("--text", help="the idea in free text")
    cmd.add_argument("--what", help="driver statement: what is happening")
    cmd.add_argument("--need", default="", help="driver statement: what is needed")
    cmd.add_argument("--why", default="", help="driver statement: why it matters")
    cmd = build.command(idea, "note", "add a co-design note", note)
    cmd.add_argument("idea", metavar="IDEA")
    cmd.add_argument("--text", required=True)
    cmd = build.command(idea, "qualify", "qualify an idea (write level)", qualify)
    cmd.add_argument("idea", metavar="IDEA")
    cmd.add_argument("outcome", choices=["accepted", "passed_on", "discarded"])
    cmd.add_argument("--to", metavar="CIRCLE", help="the circle it is passed on to")
    cmd.add_argument("--reason", default="")
    cmd = build.command(idea, "plan", "attach a technologists' outline plan", plan)
    cmd.add_argument("idea", metavar="IDEA")
    cmd.add_argument("--scope", required=True)
    cmd.add_argument("--resources", default="", help="the resource profile")
    cmd.add_argument("--cost-low", type=int, required=True, help="integer minor units")
    cmd.add_argument("--cost-high", type=int, required=True, help="integer minor units")
    cmd.add_argument("--currency", required=True, help="ISO code, e.g. GBP")
    cmd = build.command(idea, "propose", "open a proposal for an accepted idea", propose)
    cmd.add_argument("idea", metavar="IDEA")
    cmd.add_argument("--title", help="default: the idea's first line")
    cmd.add_argument("--text", required=True, help="the proposal's text")
    cmd = build.command(idea, "list", "the ideas of a circle", list_ideas)
    cmd.add_argument("circle", metavar="CIRCLE")
    cmd = build.command(idea, "show", "an idea with notes, plans, proposals", show)
    cmd.add_argument("idea", metavar="IDEA")


def _join_commands(build: Any, subs: Any) -> None:
    join = build.group(build.command(subs, "join", "requests to join a circle"), "join")
    cmd = build.command(join, "request", "record a request to join, by card", request)
    cmd.add_argument("circle", metavar="CIRCLE")
    cmd.add_argument("--card", required=True, help="the card of who asks (cn1:...)")
    cmd.add_argument("--as-kind", choices=["person", "investor", "innovator"], default="person")
    cmd.add_argument("--message", default="", help="why they ask")
    cmd = build.command(join, "propose", "open the consent proposal on it", propose_join)
    cmd.add_argument("request", metavar="REQUEST")
    cmd = build.command(join, "admit", "admit an agreed request (manager)", admit)
    cmd.add_argument("request", metavar="REQUEST")
    cmd.add_argument("--level", choices=["read", "write"], default="write")
    cmd = build.command(join, "list", "the join requests of a circle", list_requests)
    cmd.add_argument("circle", metavar="CIRCLE")


def register(build: Any, subs: Any) -> None:
    """Add this module's subcommands to the `circle-node` parser."""
    _idea_commands(build, subs)
    _join_commands(build, subs)
