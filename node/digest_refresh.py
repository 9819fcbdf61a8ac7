"""Keeping the governance digests fresh in the background (see :mod:`node.digests`).

``serve`` runs a :class:`DigestRefresher`; ``bundle import`` calls :func:`spawn_detached`.
Both run the refresh itself in a child process, ``python -m node.digest_refresh STORE
[CIRCLE_HEX ...]``, at a lower CPU priority (``nice`` +10) with its own SQLite
connection, because folding a big circle is seconds of pure-Python work: in the node's own
event loop it would stall ingest and live sessions, in a thread it would contend for the
GIL. The child sees committed rows only, stores each digest under the stamp read before
its fold only if the stamp read after is the same, and can be killed at any point (every
digest is its own transaction; the table holds derived data only).

The refresher, debounced:

* it looks every ``poll`` seconds for ops stored after its cursor (by this process, a
  peer's session, or another process such as the CLI) and collects their circles;
* a refresh starts once ``quiet`` seconds passed without a new op, or ``max_wait`` seconds
  after the first change not yet refreshed (a steady trickle of live pushes still gets
  one); on start-up every circle is checked once (a cheap stamp compare; only stale ones
  are folded);
* at most one refresh runs; ops stored meanwhile are picked up by the next one;
* a failed refresh is logged (with the child's last lines of stderr), never raised, and
  retried after ``retry`` seconds; on shutdown a running child is terminated and waited.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from node.errors import NodeError
from node.replica import Replica
from node.store.digests import DigestTable

log = logging.getLogger(__name__)

NICE = 10  # the child's CPU niceness: ingest and the TUI come first, it is never starved
MAX_ARGS = 500  # more changed circles than this: the child checks every circle instead
STOP_GRACE = 2.0  # seconds a terminated child gets before it is killed


@dataclass(frozen=True)
class DigestConfig:
    """How a running node refreshes digests (``ServiceConfig.digests``)."""

    quiet: float = 3.0  # seconds without a new op before a refresh starts
    max_wait: float = 60.0  # seconds a change waits at most, even while ops keep coming
    poll: float = 1.0  # seconds between looks for new ops
    retry: float = 60.0  # seconds before a failed refresh is tried again


def child_command(store: Path, circles: set[bytes] | None) -> list[str]:
    """The command line of a refresh child for ``circles`` (None: every circle)."""
    names = [] if circles is None or len(circles) > MAX_ARGS else sorted(c.hex() for c in circles)
    return [sys.executable, "-m", "node.digest_refresh", str(store), *names]


def spawn_detached(store: Path, circles: set[bytes] | None) -> None:
    """Start a refresh child that outlives this process (``bundle import``: the command
    returns at once; the digests are stored a moment later). Failing to start it only
    costs the next TUI start a fold."""
    if circles is not None and not circles:
        return
    try:
        subprocess.Popen(
            child_command(store, circles),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the shell does not reach it
            close_fds=True,
        )
    except OSError as exc:
        log.warning("cannot start the governance digest refresh: %s", exc)


class DigestRefresher:
    """The background refresh of one running node's digests (see the module docstring)."""

    def __init__(self, replica: Replica, config: DigestConfig) -> None:
        self.replica = replica
        self.config = config
        self.runs = 0  # refreshes finished (successfully or not)
        self.child: asyncio.subprocess.Process | None = None  # the one running now
        self.started = asyncio.Event()  # set whenever a child starts (tests wait on it)

    async def run(self) -> None:
        """Until cancelled. Never raises anything but CancelledError."""
        table = DigestTable(self.replica.store)
        cursor = 0
        changed: set[bytes] | None = None  # None: every circle (the start-up check)
        first = last = time.monotonic()
        not_before = 0.0
        pending = True
        while True:
            await asyncio.sleep(self.config.poll)
            now = time.monotonic()
            try:
                async with self.replica.store.between_writes():  # committed rows only
                    top, circles = await table.changed_since(cursor)
            except Exception as exc:  # a derived table: never worth stopping the node for
                log.warning("cannot look for changed circles: %s", exc)
                continue
            cursor = top  # follows the store down too, should its newest ops be removed
            if circles:
                if changed is not None:
                    changed |= circles
                if not pending:
                    first = now
                pending, last = True, now
            due = now - last >= self.config.quiet or now - first >= self.config.max_wait
            if not pending or not due or now < not_before:
                continue
            todo, changed, pending = changed, set(), False
            try:
                done = await self._refresh(todo)
            except Exception as exc:
                log.error("the governance digest refresh failed: %r", exc, exc_info=exc)
                done = False
            if not done:  # keep its circles for the retry
                changed, pending, first, last = todo, True, now, now
                not_before = time.monotonic() + self.config.retry

    async def _refresh(self, circles: set[bytes] | None) -> bool:
        """One child run; True if it finished cleanly."""
        command = child_command(self.replica.store.path, circles)
        try:
            self.child = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            log.warning("cannot start the governance digest refresh: %s", exc)
            return False
        self.started.set()
        child = self.child
        try:
            out, err = await child.communicate()
        except asyncio.CancelledError:
            await _end(child)
            raise
        finally:
            self.child = None
            self.runs += 1
        return _outcome(child.returncode, out, err)


def _outcome(code: int | None, out: bytes, err: bytes) -> bool:
    """Log what a child did; True if it finished cleanly."""
    if code == 0:
        lines = out.decode(errors="replace").strip().splitlines()
        log.info("governance digests refreshed: %s", lines[-1] if lines else "")
        return True
    tail = err.decode(errors="replace").strip().splitlines()[-5:]
    log.warning("the governance digest refresh failed (exit %s): %s", code, " | ".join(tail))
    return False


async def _end(child: asyncio.subprocess.Process) -> None:
    """Terminate a running child and wait for it (killed after STOP_GRACE seconds)."""
    if child.returncode is not None:
        return
    try:
        child.terminate()
    except ProcessLookupError:
        return
    try:
        async with asyncio.timeout(STOP_GRACE):
            await child.wait()
    except TimeoutError:
        child.kill()
        await child.wait()


# ---- the child ---------------------------------------------------------------------------


async def _child(store: Path, circles: list[bytes] | None) -> dict[str, float]:
    from node.digests import refresh_digests

    async with Replica.open(store) as replica:
        report = await refresh_digests(replica, circles)
    return report.as_dict()


def main(argv: list[str] | None = None) -> int:
    """``python -m node.digest_refresh STORE [CIRCLE_HEX ...]``: refresh the digests of the
    circles named (none: every circle) and print what it did as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m node.digest_refresh")
    parser.add_argument("store", type=Path)
    parser.add_argument("circles", nargs="*")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        os.nice(NICE)
    except OSError:
        pass  # already at the lowest priority allowed
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        circles = [bytes.fromhex(c) for c in args.circles] or None
    except ValueError:
        print("circle ids must be hex", file=sys.stderr)
        return 2
    if not args.store.is_file():
        print(f"no store at {args.store}", file=sys.stderr)
        return 1
    try:
        report = asyncio.run(_child(args.store, circles))
    except NodeError as exc:
        print(f"cannot refresh the governance digests: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
