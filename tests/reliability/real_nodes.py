"""Real nodes for the reliability tests: `serve` subprocesses, and a store's check-up.

``Served`` starts ``circle-node serve --json`` on a home (optionally inside a network
namespace), waits until ``/health`` answers, and stops it with SIGTERM (or SIGKILL).
``check_store`` is what every crash test asks of a store after a kill: SQLite's integrity
check is clean, ``verify`` passes, and these are the heights it holds.
"""

from __future__ import annotations

import json
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cli_runner import cli_env

from node.replica import Replica
from node.verify import verify_store


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def healthy(url: str, netns: str | None = None) -> dict[str, Any] | None:
    """``GET /health`` of ``url`` (from inside ``netns`` when given), or None."""
    if netns is not None:
        probe = subprocess.run(
            ["ip", "netns", "exec", netns, sys.executable, "-c", _PROBE, url],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return json.loads(probe.stdout) if probe.returncode == 0 and probe.stdout else None
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data
    except (urllib.error.URLError, OSError):
        return None


_PROBE = (
    "import sys, urllib.request\n"
    "print(urllib.request.urlopen(sys.argv[1] + '/health', timeout=1).read().decode())"
)


class Served:
    """``circle-node serve`` on ``home``, listening on ``host:port`` (port 0: a free one)."""

    def __init__(
        self,
        home: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        netns: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.home, self.host, self.netns = home, host, netns
        self.port = port or free_port()
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home.parent / f"serve-{home.name}.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, wait: bool = True) -> Served:
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        command = [sys.executable, "-m", "node.cli", "--home", str(self.home), "serve"]
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [*prefix, *command, "--json", "--listen", f"{self.host}:{self.port}"],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env={**cli_env(), **self.extra_env},
            )
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while healthy(self.url, self.netns) is None:
            assert self.running, self.log.read_text()
            assert time.monotonic() < deadline, f"serve on {self.url} did not come up"
            time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Stop it (SIGTERM: cleanly, SIGKILL: a crash); its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        return code


async def check_store(store: Path) -> dict[bytes, dict[bytes, int]]:
    """After a crash: integrity check clean and ``verify`` ok; the heights per circle."""
    async with Replica.open(store) as replica:
        problems = await replica.store.integrity_check()
        assert problems == [], problems
        report = await verify_store(replica)
        assert report.ok, report.problems[:3]
        return await heights(replica)


async def heights(replica: Replica) -> dict[bytes, dict[bytes, int]]:
    """``{circle: {author: seq}}``: the height of every chain the store holds."""
    result: dict[bytes, dict[bytes, int]] = {}
    async with replica.store.db.execute("SELECT circle, author, seq FROM heights") as rows:
        for circle, author, seq in await rows.fetchall():
            result.setdefault(bytes(circle), {})[bytes(author)] = int(seq)
    return result


def count_ops(store: Path) -> int:
    """The ops a store holds now, read beside the process writing it (0 before it exists)."""
    try:
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
    except sqlite3.OperationalError:
        return 0
    try:
        (n,) = db.execute("SELECT COUNT(*) FROM ops").fetchone()
        return int(n)
    except sqlite3.OperationalError:  # schema not created yet
        return 0
    finally:
        db.close()


def kill_at(
    proc: subprocess.Popen[bytes],
    store: Path,
    target: int,
    rng: random.Random,
    *,
    victim: Callable[[], None] | None = None,
    timeout: float = 60,
) -> None:
    """SIGKILL ``proc`` (or call ``victim``) once ``store`` holds ``target`` ops, plus a
    random few milliseconds, so kills land at every stage of a transfer whatever the load
    on the machine; if the process ends first, nothing is killed."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and count_ops(store) < target:
        assert time.monotonic() < deadline, f"{store} never reached {target} ops"
        time.sleep(0.01)
    time.sleep(rng.uniform(0, 0.05))
    if victim is not None:
        victim()
    elif proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
