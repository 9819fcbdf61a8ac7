"""``doctor``: can this node keep running for months? Each problem found says what to do.

Output (``--json``)::

    {"ok": bool, "checks": [{"check": NAME, "ok": bool, "detail": str, "advice": str}]}

Checks, in this order: ``home`` (if it fails, nothing else is checked), ``config``,
``keys``, ``disk_space``, ``clock``, ``store_integrity`` and ``verify``. ``advice`` is
empty when there is nothing to do; a check that passes with advice is a warning. The exit
code is 1 when any check fails.

Needs no passphrase and writes nothing of its own: the integrity and clock checks read
the store through a read-only SQLite connection, and ``verify`` (:mod:`node.verify`) opens
it as every command does (which migrates an old schema), and only if it exists.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from node.commands.base import Context, Output, open_replica, run_async
from node.config import unknown_env
from node.crypto.ops import decode_header
from node.errors import ConfigError, DecodeError, StorageError
from node.home import MEMBERS_DIR, NodeHome
from node.verify import verify_store

MIN_FREE = 200 * 1024 * 1024  # below this the node fails the check: SQLite may soon fail
LOW_FREE = 1024 * 1024 * 1024  # below this, a warning
MIN_YEAR = 2025  # a clock before this has never been set (a Pi without a real-time clock)
MAX_YEAR = 2100
CLOCK_SLACK = 3600  # seconds a stored time may be ahead of this clock before it is a problem
RECENT_OPS = 1000  # how many of the newest ops the clock check reads
BACKUP_DOC = 'see "Backup and restore" in docs/deploy.md'


@dataclass(frozen=True)
class Check:
    """One check's result; ``advice`` says what to do ("" if nothing)."""

    check: str
    ok: bool
    detail: str
    advice: str = ""


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _check_home(home: NodeHome) -> Check:
    if not home.is_initialised():
        return Check(
            "home",
            False,
            f"no node at {home.path}",
            "choose the node's home with --home DIR or CIRCLE_NODE_HOME, or create a node "
            "there with `circle-node init --name NAME`",
        )
    mode = _mode(home.path)
    if mode & 0o077:
        return Check(
            "home",
            False,
            f"{home.path} has mode {mode:04o}: other users can see into it",
            f"chmod 700 {home.path}",
        )
    return Check("home", True, f"{home.path} (mode 0700)")


def _check_config(home: NodeHome) -> Check:
    try:
        settings = home.settings()
    except ConfigError as exc:
        return Check(
            "config",
            False,
            str(exc),
            "fix that value in node.toml or the environment variable named; "
            "docs/configuration.md lists every setting and what it accepts",
        )
    changed = sorted(f"{k} ({o})" for k, o in settings.origins.items() if o != "default")
    detail = f"{len(settings.origins)} settings valid; not default: {', '.join(changed)}"
    unknown = unknown_env(os.environ)
    if not unknown:
        return Check("config", True, detail)
    return Check(
        "config",
        True,
        f"{detail}; ignored: {', '.join(unknown)} (no such setting)",
        "check the spelling of those environment variables (docs/configuration.md names "
        "each setting's variable), or remove them",
    )


def _key_problem(path: Path) -> tuple[str, str] | None:
    """What is wrong with key file ``path`` and what to do, if anything (no passphrase)."""
    try:
        with path.open("rb") as handle:
            handle.read(1)
        mode = _mode(path)
    except FileNotFoundError:
        return f"{path} is missing", f"restore it from a backup ({BACKUP_DOC})"
    except OSError as exc:
        return (
            f"cannot read {path} ({exc.strerror})",
            f"`chown` it to the user that runs the node, or restore it ({BACKUP_DOC})",
        )
    if mode & 0o077:
        return f"{path} has mode {mode:04o}: others may read it", f"`chmod 600 {path}`"
    return None


def _check_keys(home: NodeHome) -> Check:
    try:
        members = home.members()
    except ConfigError as exc:
        return Check("keys", False, str(exc), f"restore members.json from a backup ({BACKUP_DOC})")
    paths = [home.node_key_path] + [home.member_key_path(m.member) for m in members]
    problems = [p for p in map(_key_problem, paths) if p is not None]
    members_dir = home.path / MEMBERS_DIR
    if members_dir.is_dir() and _mode(members_dir) & 0o077:
        problems.append((f"{members_dir} is open to other users", f"`chmod 700 {members_dir}`"))
    if problems:
        details, advice = zip(*problems, strict=True)
        return Check("keys", False, "; ".join(details), "; ".join(advice))
    return Check("keys", True, f"node key and {len(members)} member key(s): readable, mode 0600")


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MiB"


def _check_disk(home: NodeHome) -> Check:
    usage = shutil.disk_usage(home.path)
    detail = f"{_mib(usage.free)} free of {_mib(usage.total)} where {home.path} is"
    advice = (
        "free some space on that disk (old logs: `journalctl --vacuum-size=100M`), or move "
        "the home to a larger disk"
    )
    if usage.free < MIN_FREE:
        return Check("disk_space", False, f"{detail}: under {_mib(MIN_FREE)}", advice)
    if usage.free < LOW_FREE:
        return Check("disk_space", True, f"{detail}: getting low", advice)
    return Check("disk_space", True, detail)


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        yield db
    finally:
        db.close()


def _store_times(path: Path) -> tuple[int, int, str]:
    """The latest local arrival time, and the newest op time of the recent ops (and its
    op id), both unix seconds; zeros for an empty store."""
    with _read_only(path) as db:
        (received,) = db.execute("SELECT COALESCE(MAX(received), 0) FROM ops").fetchone()
        rows = db.execute(
            "SELECT op_id, header FROM ops ORDER BY lseq DESC LIMIT ?", (RECENT_OPS,)
        ).fetchall()
    newest, newest_id = 0, ""
    for op_id, header in rows:
        try:
            ts = decode_header(bytes(header)).ts
        except DecodeError:
            continue  # `verify` reports it
        if ts > newest:
            newest, newest_id = ts, bytes(op_id).hex()
    return int(received), newest, newest_id


def _clock_problems(home: NodeHome, now: float) -> list[str]:
    year = time.gmtime(now).tm_year
    if not MIN_YEAR <= year <= MAX_YEAR:
        return [f"this system's clock says the year is {year}"]
    problems = []
    if home.config.created > now + CLOCK_SLACK:
        problems.append("the node was created later than this clock says it is now")
    if home.store_path.exists():
        received, newest, op_id = _store_times(home.store_path)
        if received > now + CLOCK_SLACK:
            ahead = (received - now) / 3600
            problems.append(
                f"an op was stored {ahead:.1f} hours later than now: the clock went back"
            )
        if newest > now + CLOCK_SLACK:
            ahead = (newest - now) / 3600
            problems.append(f"op {op_id} is signed {ahead:.1f} h ahead of this clock")
    return problems


def _check_clock(home: NodeHome) -> Check:
    now = time.time()
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
    try:
        problems = _clock_problems(home, now)
    except (sqlite3.Error, ConfigError) as exc:
        return Check("clock", True, f"now {when}; stored times not checked: {exc}")
    if not problems:
        return Check("clock", True, f"now {when}; stored op times are not ahead of it")
    return Check(
        "clock",
        False,
        f"now {when}; " + "; ".join(problems),
        "set the clock right and keep it synchronised (`timedatectl set-ntp true`; a Raspberry "
        "Pi has no real-time clock, so it needs network time or an RTC module); if only one "
        "op is ahead, its author's clock is wrong: ask them to fix it",
    )


def _check_integrity(home: NodeHome) -> Check:
    path = home.store_path
    if not path.exists():
        return Check("store_integrity", True, "no store yet (it is made on first use)")
    try:
        with _read_only(path) as db:
            rows = db.execute("PRAGMA integrity_check").fetchall()
        messages = [str(r[0]) for r in rows if r[0] != "ok"]
    except sqlite3.DatabaseError as exc:
        messages = [f"the store cannot be read: {exc}"]
    if not messages:
        return Check("store_integrity", True, f"{path}: SQLite integrity check ok")
    shown = "; ".join(messages[:3]) + (
        f" (and {len(messages) - 3} more)" if len(messages) > 3 else ""
    )
    return Check(
        "store_integrity",
        False,
        f"{path}: {shown}",
        f"stop the node, keep a copy of store.db, and restore store.db from a backup "
        f"({BACKUP_DOC}); circles that peers also host come back by syncing with them",
    )


def _check_verify(ctx: Context) -> Check:
    if not ctx.home.store_path.exists():
        return Check("verify", True, "no store yet: nothing to verify")

    async def run() -> tuple[int, list[dict[str, str]]]:
        async with open_replica(ctx.home) as replica:
            report = await verify_store(replica)
            return report.ops, report.problems

    try:
        ops, problems = run_async(run())
    except StorageError as exc:
        return Check("verify", False, str(exc), f"restore store.db from a backup ({BACKUP_DOC})")
    if not problems:
        return Check("verify", True, f"all {ops} stored ops verify")
    shown = [f"op {p['op'] or '-'}: {p['problem']}: {p['detail']}" for p in problems[:3]]
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return Check(
        "verify",
        False,
        f"{len(problems)} problem(s) in {ops} stored ops: {'; '.join(shown)}{more}",
        "`circle-node verify` lists every problem; restore store.db from a backup "
        f"({BACKUP_DOC}), or re-sync the affected circles from a peer that hosts them",
    )


def _text(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        status = "FAIL" if not c.ok else "warn" if c.advice else "ok"
        lines.append(f"{status:<4}  {c.check:<16} {c.detail}")
        if c.advice:
            lines.append(f"      {'':<16} what to do: {c.advice}")
    failed = sum(1 for c in checks if not c.ok)
    lines.append(f"{failed} of {len(checks)} checks failed." if failed else "All checks passed.")
    return "\n".join(lines)


def doctor(ctx: Context, args: argparse.Namespace) -> Output:
    """Check the home, config, keys, disk space, clock and store; exit 1 if any fails."""
    checks = [_check_home(ctx.home)]
    if checks[0].ok or ctx.home.is_initialised():
        checks += [
            _check_config(ctx.home),
            _check_keys(ctx.home),
            _check_disk(ctx.home),
            _check_clock(ctx.home),
            _check_integrity(ctx.home),
            _check_verify(ctx),
        ]
    ok = all(c.ok for c in checks)
    data = {"ok": ok, "checks": [asdict(c) for c in checks]}
    return Output(data, _text(checks), code=0 if ok else 1)
