"""Circles: ``circle create``, ``circle add-member``, ``circle show``, ``circle list``.

Commands that sign check what they can (the circle, the card, the acting member's level)
before asking for a passphrase, so a typo costs no passphrase prompt.
"""

from __future__ import annotations

import argparse
from typing import Any

import pycrdt

from node.commands.base import (
    Context,
    Output,
    acting_member,
    open_replica,
    run_async,
    short,
    unlock,
)
from node.crypto.card import MemberCard, parse_card
from node.domain.auth import AuthState, Level
from node.domain.documents import YDoc, doc_id
from node.errors import AuthorizationError, CardError, ConfigError, NotFound
from node.home import MemberEntry, check_name
from node.local import add_member as sign_add_member
from node.local import create_circle, edit_doc
from node.replica import Replica

MAX_PURPOSE_CHARS = 4000
PROFILE = "profile"


def _level_name(level: Level) -> str:
    return level.name.lower()


async def _resolve_parent(replica: Replica, text: str) -> bytes:
    """A parent held here (by id prefix), else a full 32-hex-digit circle id."""
    try:
        return await replica.resolve_circle(text)
    except NotFound:
        cleaned = text.strip().lower()
        if len(cleaned) == 32 and all(c in "0123456789abcdef" for c in cleaned):
            return bytes.fromhex(cleaned)
        raise NotFound(
            f"no circle here matches parent {text!r}: give the parent's full 32-digit id "
            "(`circle-node circle show` on its node prints it)"
        ) from None


async def _create(ctx: Context, args: argparse.Namespace, name: str, purpose: str) -> bytes:
    entry = acting_member(ctx)
    async with open_replica(ctx.home) as replica:
        parent = None if args.parent is None else await _resolve_parent(replica, args.parent)
        key = unlock(ctx, entry)
        circle = await create_circle(
            replica,
            key,
            name=name,
            creator_name=entry.name,
            home=ctx.home.node_public,
            purpose=purpose,
            parent=parent,
        )

        def write_profile(doc: YDoc) -> None:
            profile = doc.get(PROFILE, type=pycrdt.Map)
            profile["name"] = name
            profile["purpose"] = purpose

        await edit_doc(replica, key, circle, doc_id(circle, PROFILE), write_profile)
        return circle


def create(ctx: Context, args: argparse.Namespace) -> Output:
    """Create a circle with the acting member as its first manager."""
    name = check_name(str(args.name), "circle name")
    purpose = str(args.purpose or "").strip()
    if len(purpose) > MAX_PURPOSE_CHARS:
        raise ConfigError(f"the purpose must be at most {MAX_PURPOSE_CHARS} characters")
    circle = run_async(_create(ctx, args, name, purpose))
    text = (
        f"Created circle {name!r}: {circle.hex()}\n"
        f"Add members with `circle-node circle add-member {circle.hex()[:8]} CARD`."
    )
    return Output({"circle": circle.hex()}, text)


def _parse_card(text: str) -> MemberCard:
    try:
        return parse_card(text)
    except CardError as exc:
        raise CardError(f"{exc} (ask for the card again: `circle-node member card`)") from exc


def _require_manager(state: AuthState, entry: MemberEntry, circle: bytes) -> None:
    info = state.current_members().get(entry.member)
    if info is None or info.level < Level.MANAGE:
        held = _level_name(info.level) if info else "not a member"
        raise AuthorizationError(
            f"{entry.describe()} cannot add members to circle {short(circle)} ({held}): "
            "only a manager can; act as one with --as"
        )


async def _add_member(
    ctx: Context, circle_text: str, card: MemberCard, level: Level
) -> tuple[bytes, bytes]:
    entry = acting_member(ctx)
    async with open_replica(ctx.home) as replica:
        circle = await replica.resolve_circle(circle_text)
        _require_manager(await replica.auth_state(circle), entry, circle)
        key = unlock(ctx, entry)
        op = await sign_add_member(
            replica, key, circle, member=card.member, name=card.name, level=level, home=card.node
        )
        return circle, op.op_id


def add_member(ctx: Context, args: argparse.Namespace) -> Output:
    """Add the member a card introduces to a circle (or change their level)."""
    card = _parse_card(str(args.card))
    level = Level.parse(str(args.level))
    circle, op_id = run_async(_add_member(ctx, str(args.circle), card, level))
    data = {
        "circle": circle.hex(),
        "member": card.member_id,
        "level": _level_name(level),
        "op": op_id.hex(),
    }
    text = (
        f"Added {card.name} ({short(card.member)}, home node {short(card.node)}) to circle "
        f"{short(circle)} with level {_level_name(level)}."
    )
    return Output(data, text)


async def _show(ctx: Context, circle_text: str) -> dict[str, Any]:
    async with open_replica(ctx.home) as replica:
        circle = await replica.resolve_circle(circle_text)
        state = await replica.auth_state(circle)
        doc = await replica.doc(circle, doc_id(circle, PROFILE))
        profile = doc.get(PROFILE, type=pycrdt.Map).to_py() or {}
        ops = await replica.store.all_ops(circle)
    genesis = state.genesis
    members = [
        {
            "member": member.hex(),
            "name": info.name,
            "level": _level_name(info.level),
            "home": info.home.hex() if info.home else None,
        }
        for member, info in state.current_members().items()
    ]
    return {
        "circle": circle.hex(),
        "name": genesis.name if genesis else None,
        "purpose": genesis.purpose if genesis else None,
        "parent": genesis.parent.hex() if genesis and genesis.parent else None,
        "members": members,
        "hosts": sorted(node.hex() for node in state.hosts()),
        "profile": profile,
        "ops": len(ops),
    }


def _show_text(data: dict[str, Any]) -> str:
    lines = [
        f"Circle {data['name']!r}  (id {data['circle']})",
        f"  purpose  {data['purpose'] or '-'}",
        f"  parent   {data['parent'] or '-'}",
        f"  ops      {data['ops']}",
        "  members:",
    ]
    width = max((len(m["name"]) for m in data["members"]), default=0)
    for m in data["members"]:
        home = (m["home"] or "?")[:8]
        lines.append(f"    {m['name']:<{width}}  {m['level']:<6}  {m['member'][:8]}  home {home}")
    lines.append("  hosts:   " + (", ".join(h[:8] for h in data["hosts"]) or "-"))
    return "\n".join(lines)


def show(ctx: Context, args: argparse.Namespace) -> Output:
    """A circle's name, purpose, members with levels, hosting nodes and profile."""
    ctx.home.require()
    data = run_async(_show(ctx, str(args.circle)))
    return Output(data, _show_text(data))


def _me(ctx: Context) -> MemberEntry | None:
    """The member --as names (errors if it names none); else the only one; else None."""
    if ctx.acting is not None:
        return ctx.home.resolve_member(ctx.acting)
    members = ctx.home.members()
    return members[0] if len(members) == 1 else None


async def _list(ctx: Context, me: MemberEntry | None) -> list[dict[str, Any]]:
    rows = []
    async with open_replica(ctx.home) as replica:
        for circle in await replica.store.circles():
            state = await replica.auth_state(circle)
            members = state.current_members()
            mine = members.get(me.member) if me else None
            rows.append(
                {
                    "circle": circle.hex(),
                    "name": state.genesis.name if state.genesis else None,
                    "members": len(members),
                    "my_level": _level_name(mine.level) if mine else None,
                }
            )
    return rows


def list_circles(ctx: Context, args: argparse.Namespace) -> Output:
    """The circles this node holds, with the acting member's level in each."""
    ctx.home.require()
    rows = run_async(_list(ctx, _me(ctx)))
    if not rows:
        text = 'No circles yet: `circle-node circle create --name NAME --purpose "..."`.'
    else:
        text = "\n".join(
            f"{r['circle']}  {r['name']}  ({r['members']} members"
            + (f", you: {r['my_level']})" if r["my_level"] else ")")
            for r in rows
        )
    return Output({"circles": rows}, text)
