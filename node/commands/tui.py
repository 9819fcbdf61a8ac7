"""``circle-node tui``: the terminal UI (docs/tui.md). Textual loads only when it starts,
so every other command keeps its fast start."""

from __future__ import annotations

import argparse
import sys

from node.commands.base import Context, Output
from node.errors import NodeError
from node.home import NodeHome


def run_app(home: NodeHome) -> int:
    """Run the TUI in this terminal until the user quits; its exit code."""
    from node.tui.app import CircleNodeApp

    app = CircleNodeApp(home)
    app.run()
    return app.return_code or 0


def is_terminal() -> bool:
    """Both stdin and stdout are a terminal (the TUI needs both)."""
    return all(stream is not None and stream.isatty() for stream in (sys.stdin, sys.stdout))


def tui(ctx: Context, args: argparse.Namespace) -> Output:
    """Open the terminal UI: the first-run setup, or unlock and the dashboard."""
    if ctx.json:
        raise NodeError("the TUI is interactive: drop --json")
    if not is_terminal():
        raise NodeError("the TUI needs a terminal: run it in one, or use the other commands")
    code = run_app(ctx.home)
    return Output({}, "", code)  # nothing more to print: the app had the terminal
