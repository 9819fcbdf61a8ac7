"""USB bundles: ``bundle heights``, ``bundle export`` and ``bundle import`` (no network).

What goes in a bundle, the threat model and the import rules are in
:mod:`node.sync.bundle`; this module owns the files. Exports and heights files are written
to a temp file beside the target, fsynced and renamed into place, and never replace an
existing file without ``--force``. Everything that can be refused (the target file, the
``--for`` node, the heights file, the circles) is checked before the node key's passphrase
is asked for. ``bundle import`` exits 1 when the bundle's head is bad, a section failed,
or nothing in it could be read. SIGTERM or SIGINT during an import finish the batch in
flight, then stop with :class:`~node.errors.Interrupted` (exit 130): everything counted
is committed and running the import again resumes. It draws a progress bar on stderr for
bundles of more than 2,000 ops when stderr is a terminal and ``--json`` is not given.
After an import that stored ops, a background process refreshes the governance digests of
the circles it touched (:func:`node.digest_refresh.spawn_detached`), so the next TUI
start reads them instead of folding.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from node.commands.base import Context, Output, open_replica, run_async, short
from node.crypto.bundle import MAX_MANIFEST_BYTES, HeightsFile, decode_heights_file
from node.crypto.card import PREFIX, parse_card
from node.crypto.keys import KeyPair
from node.digest_refresh import spawn_detached
from node.errors import CardError, ConfigError, DecodeError, NodeError, NotFound
from node.home import ask_passphrase
from node.sync.bundle import ExportReport, export_bundle, heights_file, import_bundle, plan_export

PROGRESS_MIN_OPS = 2_000


class ProgressBar:
    """A one-line text bar, redrawn in place with a carriage return."""

    def __init__(self, stream: TextIO, *, min_total: int = PROGRESS_MIN_OPS, width: int = 30):
        self.stream = stream
        self.min_total = min_total
        self.width = width
        self._shown = -1

    def __call__(self, done: int, total: int) -> None:
        if total < self.min_total:
            return
        permille = done * 1000 // total
        if permille == self._shown:
            return
        self._shown = permille
        filled = self.width * done // total
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\rimporting [{bar}] {permille / 10:5.1f}% {done}/{total} ops")
        self.stream.flush()

    def close(self) -> None:
        if self._shown >= 0:
            self.stream.write("\n")
            self.stream.flush()


def progress_bar(ctx: Context, stream: TextIO | None = None) -> ProgressBar | None:
    """A bar on stderr, unless --json or stderr is not a terminal."""
    stream = sys.stderr if stream is None else stream
    if ctx.json or stream is None or not stream.isatty():
        return None
    return ProgressBar(stream)


# ---- files ------------------------------------------------------------------------------


def check_target(
    path: Path, force: bool, replaceable: Callable[[Path], None] | None = None
) -> None:
    """Refuse, before any prompt, to overwrite a file without --force; with --force,
    ``replaceable(path)`` (when given) raises unless the file may be replaced."""
    if path.exists() and not force:
        raise NodeError(f"{path} already exists: choose another name or pass --force")
    if path.exists() and not path.is_file():
        raise NodeError(f"{path} exists and is not a regular file")
    if path.exists() and replaceable is not None:
        replaceable(path)


def _publish(tmp: Path, path: Path, force: bool) -> None:
    exists = NodeError(f"{path} already exists: choose another name or pass --force")
    if force:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # atomic, and never replaces a file that appeared meanwhile
    except FileExistsError:
        raise exists from None
    except OSError:  # no hard links (FAT on USB sticks): check, then rename
        if path.exists():
            raise exists from None
        os.replace(tmp, path)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the file itself is synced
    finally:
        os.close(fd)


@contextmanager
def atomic_output(
    path: Path, force: bool, replaceable: Callable[[Path], None] | None = None
) -> Iterator[BinaryIO]:
    """A file that appears at ``path`` whole (temp file, fsync, rename) or not at all.

    ``replaceable`` (see :func:`check_target`) is checked again just before the rename."""
    check_target(path, force, replaceable)
    tmp: Path | None = None
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        tmp = Path(name)
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        check_target(path, force, replaceable)  # the target may have changed meanwhile
        _publish(tmp, path, force)
        _fsync_dir(path.parent)
    except OSError as exc:
        raise NodeError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


@contextmanager
def open_input(path: Path, what: str) -> Iterator[BinaryIO]:
    """``path`` opened for reading, with errors that say what is wrong."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise NotFound(f"no {what} at {path}") from None
    except OSError as exc:
        raise NodeError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        try:
            yield handle
        except OSError as exc:  # e.g. EIO from a failing USB stick
            raise NodeError(f"cannot read {path}: {exc.strerror or exc}") from exc


def read_heights(path: Path) -> HeightsFile:
    """The verified heights file ``bundle heights`` wrote on the receiving node."""
    with open_input(path, "heights file") as stream:
        size = stream.seek(0, io.SEEK_END)
        if size > MAX_MANIFEST_BYTES + 1024:
            raise DecodeError(f"{path} is too large to be a heights file")
        stream.seek(0)
        return decode_heights_file(stream, size)


# ---- commands ---------------------------------------------------------------------------


def parse_target(text: str) -> bytes:
    """The node a ``--for`` names: a member card's home node, or a node id in hex."""
    text = text.strip()
    if text.startswith(PREFIX):
        try:
            return parse_card(text).node
        except CardError as exc:
            raise CardError(f"--for: {exc}") from exc
    cleaned = text.lower()
    if len(cleaned) == 64 and all(c in "0123456789abcdef" for c in cleaned):
        return bytes.fromhex(cleaned)
    raise ConfigError(
        "--for takes a member card (cn1:...) or a node id (64 hex digits; "
        "`circle-node status` on that node prints it)"
    )


def _unlock_node(ctx: Context) -> KeyPair:
    return ctx.home.unlock_node(ask_passphrase("the node key"))


async def _export(ctx: Context, args: argparse.Namespace, path: Path) -> ExportReport:
    for_node = parse_target(args.for_node) if args.for_node else None
    since = read_heights(Path(args.since)) if args.since else None
    async with open_replica(ctx.home) as replica:
        circles = None
        if args.circle:
            circles = [await replica.resolve_circle(text) for text in args.circle]
        plan = await plan_export(replica, circles=circles, for_node=for_node, since=since)
        key = _unlock_node(ctx)
        with atomic_output(path, bool(args.force)) as out:
            return await export_bundle(replica, key, plan, out, spool_dir=ctx.home.path)


def export(ctx: Context, args: argparse.Namespace) -> Output:
    """Write the chosen circles' ops to a signed, per-circle encrypted bundle file."""
    ctx.home.require()
    path = Path(args.file)
    check_target(path, bool(args.force))
    report = run_async(_export(ctx, args, path))
    data = {"file": str(path), **report.as_dict()}
    target = f" for node {short(report.for_node)}" if report.for_node else ""
    lines = [
        f"Wrote {data['ops']} ops of {len(report.circles)} circle(s) to {path} "
        f"({report.size} bytes){target}.",
        *(f"  {c.hex()}  {n} ops" for c, n in report.circles),
    ]
    if report.excluded:
        lines.append(f"Left out {len(report.excluded)} circle(s) that node may not host.")
    lines.append(f"On the other node: `circle-node bundle import {path}`.")
    return Output(data, "\n".join(lines))


def _import_text(data: dict[str, Any]) -> str:
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(data["reasons"].items()))
    lines = [
        f"Bundle from node {data['from'][:8]}: added {data['added']}, duplicates "
        f"{data['duplicates']}, rejected {data['rejected']}"
        + (f" ({reasons})" if reasons else "")
        + f", soft failed {data['soft_failed']}, pending {data['pending']}."
    ]
    for c in data["circles"]:
        state = c["status"] + (" (complete)" if c.get("complete") else "")
        lines.append(f"  {c['circle']}  {c['ops']} ops  {state}")
        if c["error"]:
            lines.append(f"    {c['error']}")
    return "\n".join(lines)


@asynccontextmanager
async def _stop_on_signals() -> AsyncIterator[Callable[[], bool]]:
    """While inside, SIGTERM and SIGINT only ask to stop; the import checks between
    batches, so the batch in flight commits and nothing half-done is left."""
    asked = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, asked.set)
    try:
        yield asked.is_set
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def import_(ctx: Context, args: argparse.Namespace) -> Output:
    """Verify a bundle and ingest its ops; exit 1 if any section failed."""
    home = ctx.home.require()
    bar = progress_bar(ctx)

    async def run(stream: BinaryIO) -> dict[str, Any]:
        async with open_replica(home) as replica, _stop_on_signals() as stop:

            def unlock() -> KeyPair:  # asked for only if a sealed genesis must be opened
                return _unlock_node(ctx)

            report = await import_bundle(
                replica, stream, node=home.node_public, unlock=unlock, progress=bar, stop=stop
            )
        if report.ingest.added or report.ingest.soft_failed:  # keep the TUI's start-up fast
            imported = {bytes.fromhex(c["circle"]) for c in report.circles}
            spawn_detached(home.store_path, imported)
        data = report.as_dict()
        if not report.ok:
            failed = report.failed or report.skipped
            data["error"] = f"circle {failed[0]['circle'][:8]}: {failed[0]['error']}"
        return data

    try:
        with open_input(Path(args.file), "bundle") as stream:
            data = run_async(run(stream))
    finally:
        if bar is not None:
            bar.close()
    return Output(data, _import_text(data), code=1 if "error" in data else 0)


def heights(ctx: Context, args: argparse.Namespace) -> Output:
    """Write this node's heights, for the sender's `bundle export --since`."""
    home = ctx.home.require()
    path = Path(args.file)
    check_target(path, bool(args.force))

    async def run() -> tuple[bytes, int]:
        async with open_replica(home) as replica:
            return await heights_file(replica, _unlock_node(ctx))

    content, circles = run_async(run())
    with atomic_output(path, bool(args.force)) as out:
        out.write(content)
    data = {"file": str(path), "node": home.node_public.hex(), "circles": circles}
    text = (
        f"Wrote the heights of {circles} circle(s) to {path}. On the sending node: "
        f"`circle-node bundle export BUNDLE --since {path}`."
    )
    return Output(data, text)
