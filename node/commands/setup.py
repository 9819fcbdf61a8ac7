"""Setting a node up and looking at it: ``init``, ``status`` and ``run``.

``run`` is what ``make run`` starts. In a terminal it opens the TUI (which sets the node
up if needed). Without a terminal on stdin (a service manager, a container, a test) and
with ``$CIRCLE_NODE_PASSPHRASE`` set, it runs the node *unattended*: an empty home is first
set up from ``$CIRCLE_NODE_NAME`` (nobody can be asked for a name), then it serves exactly
like ``serve`` until SIGTERM or SIGINT. Otherwise (or with ``--json``) it sets the node up
only if stdin is a terminal, then prints the status.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import socket
import sys
from pathlib import Path

from node.commands import sync, tui
from node.commands.base import Context, Output, open_replica, run_async, short
from node.crypto.card import make_card
from node.crypto.keys import PASSPHRASE_ENV
from node.errors import ConfigError, NodeError
from node.home import (
    DEFAULT_LISTEN,
    HOME_ENV,
    NodeHome,
    ask_passphrase,
    check_name,
    default_home,
)


def init(ctx: Context, args: argparse.Namespace) -> Output:
    """Create the node home with a new node key."""
    home = ctx.home
    name, listen = home.check_can_init(str(args.name), str(args.listen))
    config = home.init(name, listen, ask_passphrase(f"the key of node {name!r}", new=True))
    data = {"node": config.node.hex(), "home": str(home.path)}
    text = (
        f"Created node {config.name!r} (node id {config.node.hex()}) in {home.path}\n"
        f"Next: create your member key with `{_command(home)} member create --name YOUR_NAME`"
    )
    return Output(data, text)


async def _counts(home: NodeHome) -> tuple[int, int]:
    async with open_replica(home) as replica:
        circles = await replica.store.circles()
        ops = await replica.store.all_ops()
        return len(circles), len(ops)


def status(ctx: Context, args: argparse.Namespace) -> Output:
    """The node's identity and how much it holds."""
    home = ctx.home.require()
    config = home.config
    members = home.members()
    circles, ops = run_async(_counts(home))
    data = {
        "node": config.node.hex(),
        "name": config.name,
        "home": str(home.path),
        "members": len(members),
        "circles": circles,
        "ops": ops,
    }
    names = ", ".join(m.name for m in members) or "none yet"
    text = (
        f"Node {config.name!r}  (node id {config.node.hex()})\n"
        f"  home     {home.path}\n"
        f"  listen   {config.listen}\n"
        f"  members  {len(members)} ({names})\n"
        f"  circles  {circles}\n"
        f"  ops      {ops}"
    )
    return Output(data, text)


def _command(home: NodeHome) -> str:
    """How to call circle-node from a shell so that it finds this home."""
    program = "circle-node"
    beside = Path(sys.executable).parent / program
    if shutil.which(program) is None and beside.exists():
        program = str(beside)  # e.g. .venv/bin/circle-node after `make run`
    if home.path == default_home():
        return program
    return f"{program} --home {shlex.quote(str(home.path))}"


def _what_next(home: NodeHome) -> str:
    steps = [
        ("start a circle", 'circle create --name NAME --purpose "..."'),
        ("show your card, to be added elsewhere", "member card"),
        ("add someone by their card", "circle add-member CIRCLE CARD"),
        ("list the circles here", "circle list"),
    ]
    if not home.members():
        steps.insert(0, ("make your member key", "member create --name YOUR_NAME"))
    cmd = _command(home)
    lines = ["", "What next:"]
    lines += [f"  {what + ':':<38} {cmd} {args}" for what, args in steps]
    if home.path != default_home():
        lines.append(f"  (or export {HOME_ENV}={shlex.quote(str(home.path))} and drop --home)")
    return "\n".join(lines)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _ask(question: str, default: str = "") -> str:
    suffix = f" [{default}]" if default else ""
    print(f"{question}{suffix}: ", end="", file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    if not line:
        raise NodeError("no answer (end of input): run `circle-node init --name NAME` instead")
    return line.strip() or default


def _ask_name(question: str, what: str, default: str = "") -> str:
    while True:
        try:
            return check_name(_ask(question, default), what)
        except ConfigError as exc:
            _say(str(exc))


def _first_run(home: NodeHome) -> None:
    """Make a node (and, if wanted, a first member) by asking at the terminal."""
    _say(f"No node at {home.path} yet: let's set one up.")
    name = _ask_name("Node name", "node name", socket.gethostname())
    home.check_can_init(name, DEFAULT_LISTEN)
    passphrase = ask_passphrase(f"the key of node {name!r}", new=True)
    config = home.init(name, DEFAULT_LISTEN, passphrase)
    _say(f"Created node {name!r} (node id {short(config.node)}).")
    if _ask("Create your member key now? [Y/n]").lower() not in ("", "y", "yes"):
        return
    while True:
        try:
            member = home.check_new_member(_ask_name("Your name", "member name"))
            break
        except NodeError as exc:
            _say(str(exc))
    key = home.create_member(member, ask_passphrase(f"new member {member}", new=True))
    card = make_card(key, member, config.node, None).to_text()
    _say(f"Created member {member}. Your card, for circles on other nodes:\n\n  {card}\n")


NAME_ENV = "CIRCLE_NODE_NAME"


def _unattended_setup(home: NodeHome) -> None:
    """Set an empty home up with no one to ask: the name from $CIRCLE_NODE_NAME."""
    name = os.environ.get(NAME_ENV)
    if name is None:
        raise NodeError(
            f"no node at {home.path} and no terminal to set one up: set {NAME_ENV} (and "
            f"{PASSPHRASE_ENV}) to set it up unattended, or run `circle-node init --name NAME`"
        )
    name, listen = home.check_can_init(name, DEFAULT_LISTEN)
    config = home.init(name, listen, ask_passphrase(f"the key of node {name!r}", new=True))
    _say(f"Created node {name!r} (node id {short(config.node)}) in {home.path}.")


def _run_unattended(ctx: Context) -> Output:
    home = ctx.home
    if not home.is_initialised():
        _unattended_setup(home)
    _say(
        "No terminal: running the node unattended (as `circle-node serve`); "
        "`circle-node tui` in a terminal shows it."
    )
    flags = argparse.Namespace(listen=None, discover=False, log_format=None)
    return sync.serve(ctx, flags)


def run(ctx: Context, args: argparse.Namespace) -> Output:
    """What `make run` starts: in a terminal, the TUI (which sets the node up if needed);
    with no terminal on stdin, the node unattended if $CIRCLE_NODE_PASSPHRASE is set; else the
    node set up if stdin is a terminal, then its status."""
    if not ctx.json and tui.is_terminal():
        return tui.tui(ctx, args)
    stdin_is_terminal = sys.stdin is not None and sys.stdin.isatty()
    if not ctx.json and not stdin_is_terminal and os.environ.get(PASSPHRASE_ENV):
        return _run_unattended(ctx)
    home = ctx.home
    if not home.is_initialised():
        if not (sys.stdin is not None and sys.stdin.isatty()):
            home.require()  # raises: no node here, run `circle-node init`
        _first_run(home)
    shown = status(ctx, args)
    return Output(shown.data, shown.text + "\n" + _what_next(home))
