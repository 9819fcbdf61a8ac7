"""The ``circle-node`` command: parse arguments, run one command, print its result once.

Contract (scripts rely on it):

* The global options ``--home DIR``, ``--as NAME_OR_ID`` and ``--json`` are accepted
  before or after the subcommand.
* With ``--json`` stdout carries exactly one JSON object: the command's result, or
  ``{"error": message}``. Prompts and messages go to stderr (passphrases: the terminal).
* Exit codes: 0 success; 1 an error the user can act on (every :class:`NodeError`), or
  ``verify`` found problems; 2 a usage error; 130 interrupted (Ctrl-C, or a SIGTERM
  that a long command turned into :class:`~node.errors.Interrupted`). No traceback is printed
  for a NodeError; errors say what happened and what to do.

Commands live in :mod:`node.commands`; this module only wires them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from node.commands import (
    bundle,
    circles,
    demo,
    doctor,
    elections,
    export,
    federation,
    funding,
    ideas,
    keys,
    members,
    peers,
    proposals,
    setup,
    sync,
    tui,
    verify,
)
from node.commands.base import Context, Handler, Output
from node.errors import Interrupted, NodeError
from node.home import DEFAULT_LISTEN, NodeHome, resolve_home


class UsageError(NodeError):
    """The command line does not parse."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.usage = usage


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting, so errors can be JSON too."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.format_usage())


def _global_options(nested: bool) -> _Parser:
    """The global options; on subcommands they default to SUPPRESS so they don't reset."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if nested else value

    parser = _Parser(add_help=False)
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--home",
        metavar="DIR",
        default=default(None),
        help="the node's home directory (default: $CIRCLE_NODE_HOME, else the user data dir)",
    )
    group.add_argument(
        "--as",
        dest="acting",
        metavar="NAME_OR_ID",
        default=default(None),
        help="act as this member (a name or an id prefix); needed when the node holds several",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print exactly one JSON object on stdout",
    )
    return parser


class _Builder:
    """Adds subcommands that all carry the global options."""

    def __init__(self) -> None:
        self.nested = _global_options(nested=True)

    def group(
        self, parent: argparse.ArgumentParser, title: str
    ) -> argparse._SubParsersAction[_Parser]:
        subs = parent.add_subparsers(title=title, metavar="COMMAND", parser_class=_Parser)
        subs.required = True
        return subs

    def command(
        self,
        subs: argparse._SubParsersAction[_Parser],
        name: str,
        help_text: str,
        handler: Handler | None = None,
    ) -> _Parser:
        parser = subs.add_parser(
            name, help=help_text, description=help_text, parents=[self.nested], allow_abbrev=False
        )
        if handler is not None:
            parser.set_defaults(handler=handler)
        return parser


def _member_commands(build: _Builder, subs: argparse._SubParsersAction[_Parser]) -> None:
    member = build.group(build.command(subs, "member", "member keys held by this node"), "member")
    create = build.command(member, "create", "make a new member key", members.create)
    create.add_argument("--name", required=True, help="the member's display name")
    build.command(member, "list", "the member keys on this node", members.list_members)
    build.command(member, "card", "print the acting member's card", members.card)
    device = build.command(member, "add-device", "register a second device", keys.add_device)
    device.add_argument("card", metavar="CARD", help="the new device's card (cn1:...)")
    device.add_argument("--circle", action="append", metavar="ID", help="only this circle")
    lost = build.command(member, "remove-device", "retire a lost device", keys.remove_device)
    lost.add_argument("device", metavar="DEVICE", help="the device key (hex prefix)")
    lost.add_argument("--circle", action="append", metavar="ID", help="only this circle")


def _circle_commands(build: _Builder, subs: argparse._SubParsersAction[_Parser]) -> None:
    circle = build.group(build.command(subs, "circle", "circles held by this node"), "circle")
    create = build.command(circle, "create", "create a circle", circles.create)
    create.add_argument("--name", required=True, help="the circle's name")
    create.add_argument("--purpose", default="", help="the circle's purpose (its driver)")
    create.add_argument("--parent", metavar="CIRCLE", help="the parent circle's id")
    add = build.command(circle, "add-member", "add a member by card", circles.add_member)
    add.add_argument("circle", metavar="CIRCLE", help="circle id or unique id prefix")
    add.add_argument("card", metavar="CARD", help="the member's card (cn1:...)")
    add.add_argument("--level", choices=["read", "write", "manage"], default="write")
    show = build.command(circle, "show", "show a circle", circles.show)
    show.add_argument("circle", metavar="CIRCLE", help="circle id or unique id prefix")
    build.command(circle, "list", "the circles this node holds", circles.list_circles)


def _bundle_commands(build: _Builder, subs: argparse._SubParsersAction[_Parser]) -> None:
    group = build.group(build.command(subs, "bundle", "USB bundles, with no network"), "bundle")
    out = build.command(group, "export", "write circles to a bundle file", bundle.export)
    out.add_argument("file", metavar="FILE", help="the bundle file to write")
    out.add_argument("--circle", action="append", metavar="ID", help="only this circle (repeat)")
    out.add_argument(
        "--for", dest="for_node", metavar="CARD_OR_NODE", help="only circles this node may host"
    )
    out.add_argument("--since", metavar="HEIGHTS_FILE", help="only ops the receiver lacks")
    out.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    imp = build.command(group, "import", "verify and ingest a bundle file", bundle.import_)
    imp.add_argument("file", metavar="FILE", help="the bundle file to read")
    own = build.command(group, "heights", "write this node's heights for --since", bundle.heights)
    own.add_argument("file", metavar="FILE", help="the heights file to write")
    own.add_argument("--force", action="store_true", help="overwrite FILE if it exists")


def _sync_commands(build: _Builder, subs: argparse._SubParsersAction[_Parser]) -> None:
    serve = build.command(subs, "serve", "run the node: serve and sync with peers", sync.serve)
    serve.add_argument("--listen", metavar="HOST:PORT", help="default: `listen` in node.toml")
    serve.add_argument(
        "--discover", action="store_true", help="announce on the LAN and list nodes found there"
    )
    serve.add_argument(
        "--log-format", choices=["text", "json"], help="log lines as text or JSON objects"
    )
    once = build.command(subs, "sync", "sync with peers", sync.sync)
    once.add_argument("--once", action="store_true", help="one full round, then exit")
    once.add_argument("--peer", metavar="URL", help="only this peer (need not be configured)")
    once.add_argument("--timeout", type=float, default=120.0, help="seconds per peer")
    peer = build.group(build.command(subs, "peer", "peers this node syncs with"), "peer")
    add = build.command(peer, "add", "add a peer by URL", peers.add)
    add.add_argument("url", metavar="URL", help="http://HOST:PORT (or ws://, http+post://)")
    add.add_argument("--name", help="a short name for the peer")
    build.command(peer, "list", "the peers, with last contact and ops", peers.list_peers)
    remove = build.command(peer, "remove", "remove a peer", peers.remove)
    remove.add_argument("peer", metavar="URL_OR_NAME")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = _Parser(
        prog="circle-node",
        description="A node for communities that govern themselves by consent (S3).",
        parents=[_global_options(nested=False)],
        allow_abbrev=False,
    )
    build = _Builder()
    subs = build.group(parser, "commands")
    init = build.command(subs, "init", "create this node's home and key", setup.init)
    init.add_argument("--name", required=True, help="the node's display name")
    init.add_argument(
        "--listen", metavar="HOST:PORT", default=DEFAULT_LISTEN, help="sync service address"
    )
    build.command(subs, "run", "set the node up if needed and show it", setup.run)
    build.command(subs, "status", "what this node is and holds", setup.status)
    build.command(subs, "tui", "open the terminal UI", tui.tui)
    build.command(subs, "doctor", "check the store, keys, disk, clock and config", doctor.doctor)
    check = build.command(subs, "verify", "re-verify every stored op", verify.verify)
    check.add_argument("--circle", metavar="CIRCLE", help="only this circle")
    check.add_argument("--archive", metavar="FILE", help="verify an archive, not this node")
    _member_commands(build, subs)
    _circle_commands(build, subs)
    _bundle_commands(build, subs)
    _sync_commands(build, subs)
    for module in (proposals, elections, ideas, funding, export, demo, keys, federation):
        module.register(build, subs)  # each governance module adds its own commands
    return parser


def _json_default(value: object) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def _print_json(data: dict[str, Any]) -> None:
    print(json.dumps(data, default=_json_default), flush=True)


def _fail(message: str, as_json: bool, code: int, usage: str = "") -> int:
    if usage:
        sys.stderr.write(usage)
    print(f"error: {message}", file=sys.stderr, flush=True)
    if as_json:
        _print_json({"error": message})
    return code


def _execute(args: argparse.Namespace) -> Output:
    handler: Handler = args.handler
    context = Context(NodeHome(resolve_home(args.home)), args.acting, bool(args.json))
    return handler(context, args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``circle-node`` with ``argv`` (default: the process arguments); the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in arguments  # known before parsing, for usage errors
    try:
        try:
            args = build_parser().parse_args(arguments)
        except SystemExit as exc:  # --help
            return exc.code if isinstance(exc.code, int) else 0
        as_json = bool(args.json)
        output = _execute(args)
    except UsageError as exc:
        return _fail(str(exc), as_json, 2, exc.usage)
    except Interrupted as exc:
        return _fail(str(exc), as_json, 130)
    except NodeError as exc:
        return _fail(str(exc), as_json, 1)
    except KeyboardInterrupt:
        return 130
    if not output.data and not output.text:  # it printed its output itself (serve)
        return output.code
    if as_json:
        _print_json(output.data)
    else:
        print(output.text, flush=True)
    return output.code


if __name__ == "__main__":
    raise SystemExit(main())
