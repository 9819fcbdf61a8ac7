"""Running `circle-node serve` (or a command that serves) as a real subprocess on a free
loopback port, as the end-to-end tests of the running node do."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from cli_runner import cli_env

START_GUARD = 60  # seconds: a guard against a node that never starts, not a timing


@contextmanager
def serving(
    home: Path,
    log_path: Path,
    args: Sequence[str] = ("serve", "--json"),
    env: dict[str, str] | None = None,
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start ``circle-node --home HOME ARGS`` listening on 127.0.0.1 port 0, stderr to
    ``log_path``; yield the process and its listening line (JSON with --json) once
    printed.
    The process is stopped with SIGTERM (then killed) on leaving."""
    chosen = cli_env() if env is None else env
    chosen.setdefault("CIRCLE_NODE_LISTEN", "127.0.0.1:0")
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "node.cli", "--home", str(home), *args],
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            text=True,
            env=chosen,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # blocks until it listens, or it exits
            assert line, f"the node did not start:\n{log_path.read_text()}"
            yield proc, line
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=START_GUARD)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def stop(proc: subprocess.Popen[str]) -> int:
    """SIGTERM, then the exit code (a hung node fails the test instead of blocking it)."""
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=START_GUARD)
