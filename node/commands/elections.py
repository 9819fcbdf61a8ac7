"""Roles, elections and double linking: ``role ...``, ``election ...`` and the ``circle
link`` / ``circle seats`` / ``circle evidence`` commands (rules: docs/elections.md).

Commands that sign check everything before asking for a passphrase: each action runs
first with a stand-in key that stops at its first signature (nothing is stored), and
only then with the unlocked key. Ids are hex; id arguments take a unique prefix. Dates are
``YYYY-MM-DD``; ``--today`` replaces the real date (the rules never read the clock).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from node import elections as svc
from node import linking
from node.commands.base import Context, Output, open_replica, run_async, unlock
from node.commands.election_views import (
    election_text,
    election_view,
    full_id,
    linked_view,
    read_proofs,
    result_fields,
    role_view,
    seat_view,
    seats_text,
)
from node.commands.governance_views import session, text_arg, valid_day
from node.crypto.ops import Signer
from node.domain.governance.roles import RoleRec
from node.errors import ConfigError, NodeError
from node.governance import find_proposal
from node.home import MemberEntry
from node.replica import Replica

T = TypeVar("T")


class _Rehearsed(BaseException):
    """Raised by the stand-in key: every check before the first signature passed."""


class _StandIn:
    """A key with the acting member's public key that refuses to sign."""

    def __init__(self, public: bytes) -> None:
        self.public = public

    def sign(self, message: bytes) -> bytes:
        raise _Rehearsed


async def _signed(ctx: Context, entry: MemberEntry, action: Callable[[Signer], Awaitable[T]]) -> T:
    """Run ``action`` with a stand-in key (all checks, no passphrase), then for real."""
    try:
        return await action(_StandIn(entry.member))  # it signed nothing: done
    except _Rehearsed:
        pass
    return await action(unlock(ctx, entry))


def _today(args: argparse.Namespace) -> str:
    return valid_day(args.today, "--today") or date.today().isoformat()


def _act(
    args: argparse.Namespace,
    ctx: Context,
    action: Callable[[Replica, Signer], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """Open the replica and run a signing action as the acting member."""
    ctx.home.require()

    async def run() -> dict[str, Any]:
        async with session(ctx) as (replica, entry):
            return await _signed(ctx, entry, lambda key: action(replica, key))

    return run_async(run())


# ---- roles ---------------------------------------------------------------------------------


def role_create(ctx: Context, args: argparse.Namespace) -> Output:
    """Record a role of the circle: its domain, accountabilities and usual term."""
    name = str(args.name).strip().lower()
    domain = text_arg(args.domain, "--domain")
    accountabilities = [a.strip() for a in args.accountability or [] if a.strip()]

    async def action(replica: Replica, key: Signer) -> dict[str, Any]:
        circle = await replica.resolve_circle(str(args.circle))
        cited = None
        if args.proposal:
            cited = (await find_proposal(replica, str(args.proposal)))[1].id
        body = RoleRec(
            name=name,
            domain=domain,
            accountabilities=accountabilities,
            term_days=args.term_days,
            proposal=cited,
        )
        svc.check_role_name(name)
        op = await svc.create_role(replica, key, circle, body)
        return {"circle": circle.hex(), "role": name, "op": op.hex()}

    data = _act(args, ctx, action)
    return Output(data, f"Recorded role {name!r} in circle {data['circle'][:8]}.")


def role_list(ctx: Context, args: argparse.Namespace) -> Output:
    """The circle's roles with their keepers and terms."""
    ctx.home.require()
    today = _today(args)

    async def run() -> dict[str, Any]:
        async with open_replica(ctx.home) as replica:
            cr = await svc.load_roles(replica, await replica.resolve_circle(str(args.circle)))
            roles = [role_view(cr, role, today) for _, role in sorted(cr.roles().items())]
            return {"circle": cr.circle.hex(), "today": today, "roles": roles}

    data = run_async(run())
    lines = [
        f"{r['role']:<16} {r['keeper_name'] or '-':<12} until {r['term_end'] or '-'}"
        + ("" if r["holds"] or not r["keeper"] else "  (ended)")
        + f"  {r['domain']}"
        for r in data["roles"]
    ]
    return Output(data, "\n".join(lines))


def role_appoint(ctx: Context, args: argparse.Namespace) -> Output:
    """Open the consent proposal appointing a member to a role (not the representative)."""
    term_end = valid_day(args.term_end, "--term-end")
    today = _today(args)

    async def action(replica: Replica, key: Signer) -> dict[str, Any]:
        circle = await replica.resolve_circle(str(args.circle))
        pid, version, keeper = await svc.appoint(
            replica, key, circle, str(args.role), str(args.member), term_end, today
        )
        return {"proposal": pid.hex(), "version": version.hex(), "keeper": keeper.hex()}

    data = _act(args, ctx, action)
    text = (
        f"Opened proposal {data['proposal']}; once agreed, record the keeper with "
        f"`circle-node role confirm {data['proposal'][:12]}`."
    )
    return Output(data, text)


def role_confirm(ctx: Context, args: argparse.Namespace) -> Output:
    """Record the keeper an agreed appointment proposal selected."""

    async def action(replica: Replica, key: Signer) -> dict[str, Any]:
        circle, op_id, record = await svc.confirm_appointment(replica, key, str(args.proposal))
        return {"circle": circle.hex(), "result": op_id.hex(), **result_fields(record)}

    data = _act(args, ctx, action)
    return Output(data, f"{data['keeper'][:8]} keeps {data['role']} until {data['term_end']}.")


# ---- elections -----------------------------------------------------------------------------


def election_start(ctx: Context, args: argparse.Namespace) -> Output:
    """Start an election: the role and term go to a consent round first."""
    term_end = valid_day(args.term_end, "--term-end")
    today = _today(args)

    async def action(replica: Replica, key: Signer) -> dict[str, Any]:
        circle = await replica.resolve_circle(str(args.circle))
        eid, pid, version = await svc.start_election(
            replica, key, circle, str(args.role), term_end, today
        )
        return {"election": eid.hex(), "proposal": pid.hex(), "version": version.hex()}

    data = _act(args, ctx, action)
    text = (
        f"Started election {data['election']}. First consent to the role and term: "
        f"`circle-node position {data['proposal'][:12]} consent`."
    )
    return Output(data, text)


def _nominate(ctx: Context, args: argparse.Namespace, change: bool) -> Output:
    if bool(args.nominee) == bool(args.pass_):
        raise ConfigError("name a NOMINEE or give --pass")
    reason = str(args.reason or "")

    async def action(replica: Replica, key: Signer) -> dict[str, Any]:
        election, number, nominee = await svc.nominate(
            replica,
            key,
            str(args.election),
            None if args.pass_ else str(args.nominee),
            reason,
            round_no=getattr(args, "round", None),
            change=change,
        )
        return {
            "election": election.id.hex(),
            "round": number,
            "nominee": nominee.hex() if nominee else None,
        }

    data = _act(args, ctx, action)
    what = "changed to" if change else "nominated"
    who = data["nominee"][:8] if data["nominee"] else "a pass"
    return Output(data, f"Round {data['round']}: {what} {who}.")


def election_nominate(ctx: Context, args: argparse.Namespace) -> Output:
    """Nominate a member (yourself included) with your reasons, or pass."""
    return _nominate(ctx, args, change=False)


def election_change(ctx: Context, args: argparse.Namespace) -> Output:
    """The change round: change your nomination, with a reason."""
    return _nominate(ctx, args, change=True)


def election_propose(ctx: Context, args: argparse.Namespace) -> Output:
    """Propose a nominee on the strength of the reasons given: opens the consent round."""

    async def action(replica: Replica, key: Signer) -> dict[str, Any]:
        pid, version, nominee, number = await svc.propose(
            replica, key, str(args.election), str(args.nominee)
        )
        return {
            "proposal": pid.hex(),
            "version": version.hex(),
            "nominee": nominee.hex(),
            "round": number,
        }

    data = _act(args, ctx, action)
    text = (
        f"Proposed {data['nominee'][:8]} (proposal {data['proposal']}). The nominee takes a "
        f"position first: `circle-node position {data['proposal'][:12]} consent`."
    )
    return Output(data, text)


def election_position(ctx: Context, args: argparse.Namespace) -> Output:
    """A position on the election's open proposal (the term, then the nominee)."""

    async def action(replica: Replica, key: Signer) -> dict[str, Any]:
        pid, state, result = await svc.election_position(
            replica, key, str(args.election), str(args.position), str(args.reason or "")
        )
        return {"proposal": pid.hex(), "state": state, "result": result.hex() if result else None}

    data = _act(args, ctx, action)
    text = f"Proposal {data['proposal'][:12]} is {data['state']}."
    return Output(data, text + (" The keeper is recorded." if data["result"] else ""))


def election_result(ctx: Context, args: argparse.Namespace) -> Output:
    """Record the keeper once the nominee's proposal is agreed."""

    async def action(replica: Replica, key: Signer) -> dict[str, Any]:
        election, op_id, record = await svc.record_result(replica, key, str(args.election))
        return {"election": election.id.hex(), "result": op_id.hex(), **result_fields(record)}

    data = _act(args, ctx, action)
    text = f"{data['keeper'][:8]} keeps {data['role']} until {data['term_end'] or '-'}."
    return Output(data, text)


def election_fail(ctx: Context, args: argparse.Namespace) -> Output:
    """Record that this round found no keeper (``--close``: the whole election failed)."""

    async def action(replica: Replica, key: Signer) -> dict[str, Any]:
        election, number = await svc.fail_round(
            replica, key, str(args.election), str(args.reason or ""), bool(args.close)
        )
        return {"election": election.id.hex(), "round": number, "closed": bool(args.close)}

    data = _act(args, ctx, action)
    after = "The election failed." if data["closed"] else f"Round {data['round'] + 1} opens."
    return Output(data, f"Round {data['round']} failed. {after}")


def election_show(ctx: Context, args: argparse.Namespace) -> Output:
    """Nominations by round with reasons, changes, proposed nominee, consent, result."""
    ctx.home.require()

    async def run() -> dict[str, Any]:
        async with open_replica(ctx.home) as replica:
            cr, election = await svc.find_election(replica, str(args.election))
            return election_view(cr, election)

    data = run_async(run())
    return Output(data, election_text(data))


def election_list(ctx: Context, args: argparse.Namespace) -> Output:
    """The circle's elections and where each stands."""
    ctx.home.require()

    async def run() -> dict[str, Any]:
        async with open_replica(ctx.home) as replica:
            cr = await svc.load_roles(replica, await replica.resolve_circle(str(args.circle)))
            found = sorted(cr.elections.elections.values(), key=lambda e: (e.ts, e.id))
            views = [election_view(cr, e) for e in found]
            keys = ("election", "role", "term_end", "phase", "round", "result")
            return {"elections": [{k: v[k] for k in keys} for v in views]}

    data = run_async(run())
    lines = [f"{e['election']}  {e['role']:<16} {e['phase']}" for e in data["elections"]]
    return Output(data, "\n".join(lines) or "No elections yet: `circle-node election start`.")


# ---- double linking --------------------------------------------------------------------------


def circle_link(ctx: Context, args: argparse.Namespace) -> Output:
    """Seat a child circle's leader and representative in the parent (or --prune)."""
    today = _today(args)

    async def action(replica: Replica, key: Signer) -> dict[str, Any]:
        parent = await replica.resolve_circle(str(args.parent))
        if args.prune:
            removed = await linking.prune(replica, key, parent, today)
            rows = [{"member": m.hex(), "name": n, "op": op.hex()} for m, n, op in removed]
            return {"parent": parent.hex(), "removed": rows}
        if not args.child:
            raise ConfigError("name the CHILD circle (or give --prune)")
        if args.evidence:
            child = full_id(str(args.child))
            proofs = read_proofs(str(args.evidence), child, parent)
        else:
            child = await replica.resolve_circle(str(args.child))
            proofs = await linking.child_evidence(replica, parent, child, today)
        linked = await linking.link(replica, key, parent, child, proofs, today)
        return {
            "parent": parent.hex(),
            "child": child.hex(),
            "linked": [linked_view(x) for x in linked],
        }

    data = _act(args, ctx, action)
    if args.prune:
        names = ", ".join(r["name"] for r in data["removed"]) or "nobody"
        return Output(data, f"Removed ended seats: {names}.")
    lines = [
        f"{x['keeper_name']} sits for {x['role']} until {x['term_end']}" for x in data["linked"]
    ]
    return Output(data, "\n".join(lines) or "The child circle has no leader or representative.")


def circle_seats(ctx: Context, args: argparse.Namespace) -> Output:
    """The parent's double-link seats, each re-verified from its evidence."""
    ctx.home.require()
    today = _today(args)

    async def run() -> dict[str, Any]:
        async with open_replica(ctx.home) as replica:
            parent = await replica.resolve_circle(str(args.parent))
            state, views = await linking.seat_views(replica, parent, today)
            seats = [seat_view(state, view) for view in views]
            return {"parent": parent.hex(), "today": today, "seats": seats}

    data = run_async(run())
    return Output(data, seats_text(data))


def circle_evidence(ctx: Context, args: argparse.Namespace) -> Output:
    """Write the proof of a child's current seats, for a parent on another node."""
    ctx.home.require()
    today = _today(args)
    out = Path(str(args.out))
    if out.exists() and not args.force:
        raise ConfigError(f"{out} exists: give --force to overwrite it")

    async def run() -> dict[str, Any]:
        async with open_replica(ctx.home) as replica:
            child = await replica.resolve_circle(str(args.child))
            genesis = (await replica.auth_state(child)).genesis
            if genesis is None or genesis.parent is None:
                raise NodeError(f"circle {child.hex()[:8]} names no parent circle")
            proofs = await linking.child_evidence(replica, genesis.parent, child, today)
            return {"child": child.hex(), "parent": genesis.parent.hex(), "proofs": proofs}

    data = run_async(run())
    proofs = [[w.hex() for w in proof] for proof in data["proofs"]]
    out.write_text(json.dumps({**data, "proofs": proofs}))
    result = {"child": data["child"], "parent": data["parent"], "file": str(out)}
    result["seats"] = len(proofs)
    text = f"Wrote {len(proofs)} seat proof(s) to {out}: `circle link PARENT CHILD --evidence`."
    return Output(result, text)


# ---- the command line -------------------------------------------------------------------------


def _subparsers(parser: argparse.ArgumentParser) -> Any:
    """The subcommand group of an existing command (``circle``), to add commands to it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise LookupError(f"{parser.prog} has no subcommands")


def _today_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--today", metavar="YYYY-MM-DD", help="judge terms as of this day")


def _role_commands(build: Any, subs: Any) -> None:
    role = build.group(build.command(subs, "role", "roles, keepers and terms"), "role")
    create = build.command(role, "create", "record a role of a circle", role_create)
    create.add_argument("circle", metavar="CIRCLE")
    create.add_argument("--name", required=True, help="short name: lowercase, digits, - or _")
    create.add_argument("--domain", required=True, help="what the role decides and does")
    create.add_argument("--accountability", action="append", help="one accountability (repeat)")
    create.add_argument("--term-days", type=int, help="the usual term of a keeper, in days")
    create.add_argument("--proposal", metavar="ID", help="the agreed proposal defining it")
    listed = build.command(role, "list", "a circle's roles and keepers", role_list)
    listed.add_argument("circle", metavar="CIRCLE")
    _today_flag(listed)
    appoint = build.command(role, "appoint", "propose a keeper by appointment", role_appoint)
    appoint.add_argument("circle", metavar="CIRCLE")
    appoint.add_argument("role", metavar="ROLE")
    appoint.add_argument("member", metavar="MEMBER", help="a member's name or id prefix")
    appoint.add_argument("--term-end", metavar="YYYY-MM-DD")
    _today_flag(appoint)
    confirm = build.command(role, "confirm", "record an agreed appointment", role_confirm)
    confirm.add_argument("proposal", metavar="PROPOSAL")


def _election_commands(build: Any, subs: Any) -> None:
    group = build.group(build.command(subs, "election", "role selection by consent"), "election")
    start = build.command(group, "start", "start selecting a keeper", election_start)
    start.add_argument("circle", metavar="CIRCLE")
    start.add_argument("--role", required=True, help="leader, representative or a role name")
    start.add_argument("--term-end", metavar="YYYY-MM-DD", help="last day of the term")
    _today_flag(start)
    for name, handler, text in (
        ("nominate", election_nominate, "nominate a member, or pass"),
        ("change", election_change, "change your nomination (change round)"),
    ):
        cmd = build.command(group, name, text, handler)
        cmd.add_argument("election", metavar="ELECTION")
        cmd.add_argument("nominee", metavar="NOMINEE", nargs="?", help="a name or id prefix")
        cmd.add_argument("--pass", dest="pass_", action="store_true", help="nominate nobody")
        cmd.add_argument("--reason", help="why this member")
        if name == "nominate":
            cmd.add_argument("--round", type=int, help="the open round (default: it)")
    prop = build.command(group, "propose", "propose a nominee for consent", election_propose)
    prop.add_argument("election", metavar="ELECTION")
    prop.add_argument("nominee", metavar="NOMINEE")
    pos = build.command(group, "position", "a position on the open proposal", election_position)
    pos.add_argument("election", metavar="ELECTION")
    pos.add_argument("position", choices=["consent", "concern", "objection"])
    pos.add_argument("--reason")
    result = build.command(group, "result", "record the agreed keeper", election_result)
    result.add_argument("election", metavar="ELECTION")
    fail = build.command(group, "fail", "record a failed selection round", election_fail)
    fail.add_argument("election", metavar="ELECTION")
    fail.add_argument("--reason", required=True)
    fail.add_argument("--close", action="store_true", help="end the election, no new round")
    show = build.command(group, "show", "an election in full", election_show)
    show.add_argument("election", metavar="ELECTION")
    listed = build.command(group, "list", "a circle's elections", election_list)
    listed.add_argument("circle", metavar="CIRCLE")


def _link_commands(build: Any, circle: Any) -> None:
    link = build.command(circle, "link", "seat a child's leader and representative", circle_link)
    link.add_argument("parent", metavar="PARENT")
    link.add_argument("child", metavar="CHILD", nargs="?")
    link.add_argument("--prune", action="store_true", help="remove seats that ended")
    link.add_argument("--evidence", metavar="FILE", help="the child's proof (`circle evidence`)")
    _today_flag(link)
    seats = build.command(circle, "seats", "double-link seats of a circle", circle_seats)
    seats.add_argument("parent", metavar="PARENT")
    _today_flag(seats)
    proof = build.command(circle, "evidence", "write a child's seat proofs", circle_evidence)
    proof.add_argument("child", metavar="CHILD")
    proof.add_argument("--out", required=True, metavar="FILE")
    proof.add_argument("--force", action="store_true", help="overwrite FILE")
    _today_flag(proof)


def register(build: Any, subs: Any) -> None:
    """Add ``role`` and ``election``, and ``circle link|seats|evidence``, to `circle-node`."""
    _role_commands(build, subs)
    _election_commands(build, subs)
    _link_commands(build, _subparsers(subs.choices["circle"]))
