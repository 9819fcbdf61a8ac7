"""Member keys held by this node: ``member create``, ``member list``, ``member card``."""

from __future__ import annotations

import argparse
import time

from node.commands.base import Context, Output, acting_member, unlock
from node.crypto.card import make_card
from node.home import ask_passphrase


def create(ctx: Context, args: argparse.Namespace) -> Output:
    """Make a new member key, sealed under its own passphrase, and show its card."""
    home = ctx.home.require()
    name = home.check_new_member(str(args.name))
    key = home.create_member(name, ask_passphrase(f"new member {name}", new=True))
    card = make_card(key, name, home.node_public, None).to_text()
    text = (
        f"Created member {name} (id {key.public.hex()}).\n"
        "Their card, to give to the manager of a circle on another node:\n\n"
        f"  {card}"
    )
    return Output({"member": key.public.hex(), "card": card}, text)


def list_members(ctx: Context, args: argparse.Namespace) -> Output:
    """The member keys this node holds (no passphrase needed)."""
    members = ctx.home.require().members()
    if not members:
        text = "No members yet: run `circle-node member create --name YOUR_NAME`."
    else:
        width = max(len(m.name) for m in members)
        text = "\n".join(
            f"{m.name:<{width}}  {m.member_id}  created "
            f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(m.created))}"
            for m in members
        )
    return Output({"members": [m.as_json() for m in members]}, text)


def card(ctx: Context, args: argparse.Namespace) -> Output:
    """The acting member's card (signing it needs the member's passphrase)."""
    entry = acting_member(ctx)
    key = unlock(ctx, entry)
    text = make_card(key, entry.name, ctx.home.node_public, None).to_text()
    shown = f"Card of {entry.describe()}, to give to a circle's manager:\n\n  {text}"
    return Output({"member": entry.member_id, "card": text}, shown)
