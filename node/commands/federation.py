"""Organisations and federation: ``org init|show|certify-node|agree`` (run where the
organisation's root key is, ideally an offline machine; no node home needed) and
``federation add|list|remove`` on a node (docs/protocol.md 10.2-10.3)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from node.commands.base import Context, Output, open_replica, run_async, short
from node.crypto.federation import agreement_from_text, certify_node, make_agreement
from node.crypto.keys import (
    KeyKind,
    KeyPair,
    open_sealed_key,
    read_key_file,
    seal_key,
    write_key_file,
)
from node.errors import ConfigError, DecodeError, KeyFileError, NodeError, SignatureError
from node.home import _kdf_limits, ask_passphrase, check_name
from node.keyring import KeyRing

DAY = 86_400


def _hex_key(text: str, what: str, size: int = 32) -> bytes:
    try:
        value = bytes.fromhex(text.strip())
    except ValueError:
        value = b""
    if len(value) != size:
        raise ConfigError(f"{what} must be {size * 2} hex digits")
    return value


def _open_root(path: str) -> tuple[KeyPair, str]:
    sealed = open_sealed_key(
        read_key_file(Path(path)), ask_passphrase(f"the organisation root key {path}")
    )
    if sealed.kind is not KeyKind.ORG:
        raise KeyFileError(f"{path} holds a {sealed.kind.name.lower()} key, not an org root key")
    return sealed.keypair, sealed.name


def _days(value: int) -> tuple[int, int]:
    if not 1 <= value <= 3650:
        raise ConfigError("--days must be between 1 and 3650")
    now = int(time.time())
    return now, now + value * DAY


def org_init(ctx: Context, args: argparse.Namespace) -> Output:
    """Make an organisation root key, sealed, at --out (keep it offline)."""
    name = check_name(str(args.name), "organisation name")
    out = Path(args.out)
    if out.exists():
        raise NodeError(f"refusing to overwrite {out}: choose another file")
    key = KeyPair.generate()
    passphrase = ask_passphrase(f"the root key of {name}", new=True)
    write_key_file(out, seal_key(key, passphrase, kind=KeyKind.ORG, name=name, **_kdf_limits()))
    text = f"Wrote the root key of {name} to {out}: root {key.public.hex()}. Keep it offline."
    return Output({"root": key.public.hex(), "org": name, "file": str(out)}, text)


def org_show(ctx: Context, args: argparse.Namespace) -> Output:
    """The public root key, to give to partner organisations."""
    key, name = _open_root(str(args.root))
    return Output({"root": key.public.hex(), "org": name}, f"{name}: root {key.public.hex()}")


def certify(ctx: Context, args: argparse.Namespace) -> Output:
    """Certify a node key of this organisation; prints the certificate to install."""
    node = _hex_key(str(args.node), "NODE (the node key)")
    issued, expires = _days(int(args.days))
    key, name = _open_root(str(args.root))
    try:
        cert = certify_node(key, node, name, issued, expires)
    except DecodeError as exc:
        raise NodeError(str(exc)) from exc
    text = (
        f"Certificate for node {short(node)}; on that node run:\n\n"
        f"  circle-node node install-cert {cert.to_text()}"
    )
    return Output({"cert": cert.to_text(), "node": node.hex(), "expires": expires}, text)


def agree(ctx: Context, args: argparse.Namespace) -> Output:
    """Sign this organisation's agreement that a partner's certified nodes may host circles."""
    partner = _hex_key(str(args.partner), "--partner (the partner's root key)")
    circles = [_hex_key(c, "--circle (a full circle id)", 16) for c in args.circle]
    issued, expires = _days(int(args.days))
    key, _name = _open_root(str(args.root))
    try:
        agreement = make_agreement(key, partner, circles, issued, expires)
    except DecodeError as exc:
        raise NodeError(str(exc)) from exc
    text = (
        f"Agreement: nodes certified by {short(partner)} may host {len(circles)} circle(s). "
        f"On each of this organisation's nodes run:\n\n  circle-node federation add "
        f"{agreement.to_text()}"
    )
    return Output({"agreement": agreement.to_text(), "expires": expires}, text)


async def _add(ctx: Context, text: str) -> dict[str, Any]:
    try:
        agreement = agreement_from_text(text)
    except (DecodeError, SignatureError) as exc:
        raise NodeError(f"not a valid federation agreement: {exc}") from exc
    home = ctx.home.require()
    async with open_replica(home) as replica:
        await KeyRing(replica.store).add_agreement(agreement, home.node_public)
    return {
        "partner": agreement.partner.hex(),
        "circles": sorted(c.hex() for c in agreement.circles),
        "expires": agreement.expires,
    }


def federation_add(ctx: Context, args: argparse.Namespace) -> Output:
    """Honour an agreement signed by this node's organisation root."""
    data = run_async(_add(ctx, str(args.agreement)))
    text = (
        f"Nodes certified by {data['partner'][:8]} may now host {len(data['circles'])} circle(s)."
    )
    return Output(data, text)


async def _list(ctx: Context) -> list[dict[str, Any]]:
    async with open_replica(ctx.home.require()) as replica:
        agreements = await KeyRing(replica.store).agreements()
    now = int(time.time())
    return [
        {
            "partner": a.partner.hex(),
            "circles": sorted(c.hex() for c in a.circles),
            "expires": a.expires,
            "in_force": a.in_force(now),
        }
        for a in agreements
    ]


def federation_list(ctx: Context, args: argparse.Namespace) -> Output:
    """The federation agreements this node honours."""
    rows = run_async(_list(ctx))
    text = "\n".join(
        f"{r['partner'][:16]}  {len(r['circles'])} circle(s)  "
        f"{'in force' if r['in_force'] else 'not in force'}"
        for r in rows
    )
    return Output({"agreements": rows}, text or "No federation agreements.")


async def _remove(ctx: Context, partner: bytes) -> bool:
    async with open_replica(ctx.home.require()) as replica:
        return await KeyRing(replica.store).remove_agreement(partner)


def federation_remove(ctx: Context, args: argparse.Namespace) -> Output:
    """Stop naming circles to a partner's nodes."""
    partner = _hex_key(str(args.partner), "PARTNER (the partner's root key)")
    if not run_async(_remove(ctx, partner)):
        raise NodeError(f"no agreement with {short(partner)}: `circle-node federation list`")
    return Output({"partner": partner.hex()}, f"Removed the agreement with {short(partner)}.")


def register(build: Any, subs: Any) -> None:
    """Add the ``org`` and ``federation`` groups to the `circle-node` parser."""
    org = build.group(build.command(subs, "org", "organisation root keys"), "org")
    make = build.command(org, "init", "make an organisation root key", org_init)
    make.add_argument("--name", required=True, help="the organisation's name")
    make.add_argument("--out", required=True, metavar="PATH", help="the root key file")
    show = build.command(org, "show", "the root's public key", org_show)
    show.add_argument("--root", required=True, metavar="PATH", help="the root key file")
    cert = build.command(org, "certify-node", "certify a node key", certify)
    cert.add_argument("node", metavar="NODE", help="the node key (hex, `circle-node status`)")
    cert.add_argument("--root", required=True, metavar="PATH", help="the root key file")
    cert.add_argument("--days", type=int, default=365, help="valid for this many days")
    deal = build.command(org, "agree", "let a partner's nodes host circles", agree)
    deal.add_argument("--root", required=True, metavar="PATH", help="the root key file")
    deal.add_argument("--partner", required=True, metavar="ROOT", help="the partner's root key")
    deal.add_argument("--circle", required=True, action="append", metavar="ID", help="repeat")
    deal.add_argument("--days", type=int, default=365, help="valid for this many days")
    fed = build.group(build.command(subs, "federation", "agreements with partners"), "federation")
    add = build.command(fed, "add", "honour an agreement of this organisation", federation_add)
    add.add_argument("agreement", metavar="AGREEMENT", help="the agreement (cnfed1:...)")
    build.command(fed, "list", "the agreements this node honours", federation_list)
    drop = build.command(fed, "remove", "drop the agreement with a partner", federation_remove)
    drop.add_argument("partner", metavar="PARTNER", help="the partner's root key (hex)")
