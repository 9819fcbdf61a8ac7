"""Keys over time: ``keys backup|restore``, ``node rotate-key|install-cert|credentials``,
``member add-device|remove-device`` (docs/architecture.md "Keys over time")."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import msgspec

from node.commands.base import Context, Output, acting_member, open_replica, run_async, short
from node.commands.base import unlock as unlock_member
from node.crypto.backup import BackupKey
from node.crypto.card import MemberCard, parse_card
from node.crypto.federation import cert_from_text, open_cert
from node.crypto.handover import chain_to
from node.domain.auth import Level, SetDevice
from node.errors import AuthorizationError, CardError, DecodeError, NodeError, SignatureError
from node.home import ask_passphrase
from node.keyring import KeyRing
from node.keys_admin import (
    make_backup,
    own_credentials,
    read_backup,
    restore,
    rotate_node_key,
    write_backup,
)
from node.local import author_auth, new_ycid

# ---- backup and restore --------------------------------------------------------------------


def backup(ctx: Context, args: argparse.Namespace) -> Output:
    """Write a sealed backup of the node key, every member key and the node's credentials."""
    home = ctx.home.require()
    out = Path(args.out)
    if out.exists():
        raise NodeError(f"refusing to overwrite {out}: choose another file")
    node_key = home.unlock_node(ask_passphrase(f"the key of node {home.config.name!r}"))
    members = []
    for entry in home.members():
        key = home.unlock_member(entry, ask_passphrase(f"member {entry.describe()}"))
        members.append(BackupKey(key.seed, entry.name, entry.created))
    credentials = run_async(own_credentials(home))
    passphrase = ask_passphrase("the backup", new=True)
    write_backup(out, make_backup(home, node_key, members, credentials, passphrase))
    text = (
        f"Wrote {out}: the node key ({short(node_key.public)}) and {len(members)} member "
        "key(s), sealed under the passphrase just given. Keep the passphrase apart from it."
    )
    data = {"backup": str(out), "node": node_key.public.hex(), "members": len(members)}
    return Output(data, text)


def restore_keys(ctx: Context, args: argparse.Namespace) -> Output:
    """Restore a key backup into an empty home, or add its missing members to the same node."""
    passphrase = ask_passphrase("the backup")
    backup_ = read_backup(Path(args.file), passphrase)
    done = run_async(restore(ctx.home, backup_, passphrase))
    made = "created the home with" if done.created_home else "kept"
    text = (
        f"Restored into {ctx.home.path}: {made} node key {short(done.node)}; "
        f"added {len(done.added)} member key(s), {len(done.kept)} already held. "
        "Restored keys open with the backup's passphrase."
    )
    data = {
        "node": done.node.hex(),
        "created_home": done.created_home,
        "added": done.added,
        "kept": done.kept,
    }
    return Output(data, text)


# ---- the node key ------------------------------------------------------------------------


def rotate_key(ctx: Context, args: argparse.Namespace) -> Output:
    """Replace the node key; the old key signs a hand-over naming the new one."""
    home = ctx.home.require()
    passphrase = ask_passphrase(f"the key of node {home.config.name!r}")
    old = home.unlock_node(passphrase)
    link = run_async(rotate_node_key(home, old, passphrase))
    text = (
        f"Rotated the node key: {short(link.old)} -> {short(link.new)} (hand-over #{link.seq}). "
        "Peers that trusted the old key accept the new one at the next sync and then refuse "
        "the old one. Restart `serve`, and make a new `keys backup`."
    )
    return Output({"old": link.old.hex(), "new": link.new.hex(), "seq": link.seq}, text)


async def _install_cert(ctx: Context, text: str) -> dict[str, Any]:
    home = ctx.home.require()
    try:
        cert = cert_from_text(text)
    except (DecodeError, SignatureError) as exc:
        raise NodeError(f"not a valid node certificate: {exc}") from exc
    async with open_replica(home) as replica:
        ring = KeyRing(replica.store)
        creds = await ring.own_credentials()
        keys = {home.node_public, *(h.old for h in chain_to(creds.handovers, home.node_public))}
        if cert.node not in keys:
            raise NodeError(
                f"the certificate is for node {short(cert.node)}, not this node "
                f"({short(home.node_public)})"
            )
        others = [w for w in creds.certs if _root_of(w) != cert.root]
        if len(others) >= 4:
            raise NodeError("this node already holds four certificates from other roots")
        await ring.set_own_credentials(msgspec.structs.replace(creds, certs=[*others, cert.wire]))
    return {
        "root": cert.root.hex(),
        "org": cert.org,
        "node": cert.node.hex(),
        "expires": cert.expires,
    }


def _root_of(wire: bytes) -> bytes | None:
    try:
        return open_cert(wire).root
    except (DecodeError, SignatureError):
        return None


def install_cert(ctx: Context, args: argparse.Namespace) -> Output:
    """Keep a certificate of this node's key by its organisation's root, to present."""
    data = run_async(_install_cert(ctx, str(args.cert)))
    text = f"Installed the certificate of {data['org']} (root {data['root'][:8]})."
    return Output(data, text)


async def _credentials(ctx: Context) -> dict[str, Any]:
    home = ctx.home.require()
    async with open_replica(home) as replica:
        ring = KeyRing(replica.store)
        creds = await ring.own_credentials()
        chain = chain_to(creds.handovers, home.node_public)
        roots = await ring.own_roots(home.node_public)
        agreements = await ring.agreements()
    return {
        "node": home.node_public.hex(),
        "previous": [h.old.hex() for h in chain],
        "roots": sorted(r.hex() for r in roots),
        "agreements": [
            {
                "partner": a.partner.hex(),
                "circles": sorted(c.hex() for c in a.circles),
                "expires": a.expires,
            }
            for a in agreements
        ],
    }


def credentials(ctx: Context, args: argparse.Namespace) -> Output:
    """This node's key, the keys it took over, its organisation roots and agreements."""
    data = run_async(_credentials(ctx))
    text = (
        f"node {data['node']}\nprevious keys: {', '.join(data['previous']) or 'none'}\n"
        f"certified by: {', '.join(data['roots']) or 'no organisation'}\n"
        f"agreements: {len(data['agreements'])}"
    )
    return Output(data, text)


# ---- devices -----------------------------------------------------------------------------


def _device_card(text: str) -> MemberCard:
    try:
        return parse_card(text)
    except CardError as exc:
        raise CardError(f"{exc} (on the new device: `circle-node member card`)") from exc


async def _member_circles(ctx: Context, member: bytes, chosen: list[str] | None) -> list[bytes]:
    async with open_replica(ctx.home) as replica:
        if chosen:
            return [await replica.resolve_circle(c) for c in chosen]
        circles = []
        for circle in sorted(await replica.circles()):
            info = (await replica.auth_state(circle)).current_members().get(member)
            if info is not None:
                circles.append(circle)
        return circles


async def _add_device(ctx: Context, card: MemberCard, chosen: list[str] | None) -> list[str]:
    entry = acting_member(ctx)
    circles = await _member_circles(ctx, entry.member, chosen)
    if not circles:
        raise NodeError(
            f"{entry.describe()} is a member of no circle on this node (a device key cannot "
            "register devices: run this on the member's first device)"
        )
    key = unlock_member(ctx, entry)
    added = []
    async with open_replica(ctx.home) as replica:
        for circle in circles:
            state = await replica.auth_state(circle)
            info = state.current_members().get(entry.member)
            if info is None or state.member_of(entry.member) != entry.member:
                raise AuthorizationError(
                    f"{entry.describe()} is not a member of circle {short(circle)} (only the "
                    "member's own key registers devices)"
                )
            if card.member in state.keys:
                continue  # already registered here
            body = SetDevice(device=card.member, ycid=new_ycid(), home=card.node)
            await author_auth(replica, key, circle, body)
            added.append(circle.hex())
    return added


def add_device(ctx: Context, args: argparse.Namespace) -> Output:
    """Register a second device's key (from its card) as the acting member's, in each
    circle the member belongs to (or those given)."""
    card = _device_card(str(args.card))
    if card.member == acting_member(ctx).member:
        raise NodeError("that card is the acting member's own key, not another device")
    added = run_async(_add_device(ctx, card, args.circle))
    text = (
        f"Registered device {short(card.member)} (home node {short(card.node)}) in "
        f"{len(added)} circle(s). Its node receives them at its next sync."
    )
    return Output({"device": card.member.hex(), "circles": added}, text)


async def _remove_device(ctx: Context, device_text: str, chosen: list[str] | None) -> list[str]:
    entry = acting_member(ctx)
    circles = await _member_circles(ctx, entry.member, chosen)
    key = unlock_member(ctx, entry)
    removed = []
    async with open_replica(ctx.home) as replica:
        for circle in circles:
            state = await replica.auth_state(circle)
            device = _match_device(state.keys, entry.member, device_text)
            if device is None or state.keys[device].current == Level.NONE:
                continue
            cut = (await replica.heights(circle)).get(device, (0, b""))[0]
            body = SetDevice(device=device, ycid=state.keys[device].ycid, active=False, cut=cut)
            await author_auth(replica, key, circle, body)
            removed.append(circle.hex())
    if not removed:
        raise NodeError(f"no active device {device_text!r} of {entry.describe()} in those circles")
    return removed


def _match_device(keys: dict[bytes, Any], member: bytes, text: str) -> bytes | None:
    prefix = text.strip().lower()
    found = [
        k
        for k, ks in keys.items()
        if ks.member == member and k != member and k.hex().startswith(prefix)
    ]
    return found[0] if len(found) == 1 and len(prefix) >= 4 else None


def remove_device(ctx: Context, args: argparse.Namespace) -> Output:
    """Retire a lost device: its ops above what this node holds stop counting everywhere."""
    removed = run_async(_remove_device(ctx, str(args.device), args.circle))
    text = f"Retired device {args.device} in {len(removed)} circle(s)."
    return Output({"device": str(args.device), "circles": removed}, text)


def register(build: Any, subs: Any) -> None:
    """Add the ``keys`` and ``node`` groups to the `circle-node` parser."""
    keys = build.group(build.command(subs, "keys", "back up and restore keys"), "keys")
    out = build.command(keys, "backup", "write a sealed backup of this node's keys", backup)
    out.add_argument("--out", required=True, metavar="PATH", help="the backup file to write")
    back = build.command(keys, "restore", "restore keys from a sealed backup", restore_keys)
    back.add_argument("file", metavar="PATH", help="the backup file")
    node = build.group(build.command(subs, "node", "this node's key and credentials"), "node")
    build.command(node, "rotate-key", "replace the node key (signed hand-over)", rotate_key)
    cert = build.command(node, "install-cert", "keep an organisation's certificate", install_cert)
    cert.add_argument("cert", metavar="CERT", help="the certificate (cncert1:...)")
    build.command(node, "credentials", "keys taken over, roots, agreements", credentials)
