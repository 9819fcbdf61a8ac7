"""``circle-node demo``: a federation of three nodes built, run and shown in one command
(docs/demo.md). The machinery is in :mod:`node.demo`, loaded only when the command runs.

Signals: SIGTERM is turned into the same clean stop as Ctrl-C: every node the demo
started is stopped before it exits (130), and an interrupted build is rebuilt next time.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

import platformdirs

from node.commands import tui
from node.commands.base import Context, Output
from node.demo.layout import DEMO_PASSPHRASE, NODES, TUI_NODE, DemoDir
from node.errors import ConfigError, NodeError

if TYPE_CHECKING:
    from node.demo.session import Session

DEFAULT_TIMEOUT = 120.0


def default_dir() -> Path:
    return Path(platformdirs.user_data_dir("circle-node-demo")).absolute()


def register(build: Any, subs: Any) -> None:
    cmd = build.command(
        subs,
        "demo",
        "build a federation of three nodes on loopback, run it and open the TUI",
        demo,
    )
    cmd.add_argument("--dir", metavar="DIR", help="where the demo lives (re-running resumes it)")
    cmd.add_argument(
        "--headless",
        action="store_true",
        help="no TUI: wait until the nodes converge, print a summary, stop them and exit",
    )
    cmd.add_argument(
        "--ports", metavar="P1,P2,P3", help="ports of hall, neighbourhood, den (default: free ones)"
    )
    cmd.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds to wait for the nodes to converge",
    )
    cmd.add_argument(
        "--open",
        choices=[spec.key for spec in NODES],
        default=TUI_NODE,
        help="the node whose TUI opens",
    )


def parse_ports(text: str | None) -> list[int]:
    if text is None:
        return [0] * len(NODES)
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != len(NODES) or not all(p.isascii() and p.isdigit() for p in parts):
        raise ConfigError(f"--ports: give {len(NODES)} port numbers, e.g. 7411,7412,7413")
    ports = [int(p) for p in parts]
    if any(not 0 <= p <= 65535 for p in ports) or len(set(ports) - {0}) < len(
        [p for p in ports if p]
    ):
        raise ConfigError("--ports: each port must be 0..65535 and different from the others")
    return ports


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # the same clean stop as Ctrl-C


def _passphrase_line() -> str:
    if os.environ.get("CIRCLE_NODE_PASSPHRASE"):
        return "Every key's passphrase is the one in $CIRCLE_NODE_PASSPHRASE."
    return f"Every key's passphrase (nodes and members) is: {DEMO_PASSPHRASE}"


def _keep_running(session: Session) -> NoReturn:
    """Until a signal (or a node dying) ends it."""
    _say("No terminal for the TUI: the nodes keep running. Stop them with Ctrl-C or SIGTERM.")
    while True:
        session.check_alive()
        time.sleep(1.0)


def demo(ctx: Context, args: argparse.Namespace) -> Output:
    """Build (or resume) the demo federation, run it; the TUI, or a summary (--headless)."""
    if ctx.json and not args.headless:
        raise ConfigError("--json prints a summary only with --headless (the TUI is interactive)")
    ports = parse_ports(args.ports)
    if args.timeout <= 0:
        raise ConfigError("--timeout must be a positive number of seconds")
    place = DemoDir(Path(args.dir).expanduser().absolute() if args.dir else default_dir())
    place.read()  # refuse a directory that is not a demo before anything else
    from node.demo.run import summary_text
    from node.demo.session import Session

    previous = signal.signal(signal.SIGTERM, _interrupt)
    session = Session(place, _say)
    try:
        data = session.start(ports, float(args.timeout))
        tui_home = place.home(args.open)
        text = "\n".join(
            [
                summary_text(data),
                _passphrase_line(),
                f"Open a node's TUI: circle-node --home {tui_home.path} tui",
            ]
        )
        if args.headless:
            return Output(data, text, 0 if data["ok"] else 1)
        _say(text)
        if not data["ok"]:
            raise NodeError(
                f"the demo nodes did not converge and verify: see their logs in {place.logs}"
            )
        if not tui.is_terminal():
            _keep_running(session)
        code = tui.run_app(tui_home)
    finally:
        session.close()
        signal.signal(signal.SIGTERM, previous)
    return Output({}, "", code)
