"""``export``: the circles' records as Markdown, CSV or JSON, or a self-verifying archive.

Formats (docs/exports.md describes each):

* ``md``: one Markdown file, a section per circle;
* ``csv``: a directory with one table per file (:data:`node.export.render.TABLES`);
* ``json``: one file holding one JSON object (:func:`node.export.collect.collect`);
* ``archive``: every signed op of the circles, checked by ``verify --archive FILE``;
* ``verifier``: the standalone checker script (:mod:`node.export.standalone`), for
  someone without circle-node to check an archive's signatures and chains.

Every target is checked before any work: an existing path is refused without ``--force``,
and ``--force`` replaces only a previous export of the same format (:mod:`node.export.files`).
Outputs appear whole or not at all (temp file or directory, fsync, rename). Progress goes
to stderr when it is a terminal and the export is long.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from node.commands.base import Context, Output, open_replica, run_async
from node.commands.bundle import atomic_output, check_target
from node.export import standalone
from node.export.archive import plan_archive, write_archive
from node.export.collect import collect
from node.export.files import check_directory_target, check_previous_file, write_directory
from node.export.markdown import markdown
from node.export.render import TABLES, csv_tables
from node.replica import Replica

FORMATS = ("md", "csv", "json", "archive", "verifier")
PROGRESS_MIN_OPS = 2_000


class Progress:
    """Progress lines on stderr, only for a terminal (and never with --json)."""

    def __init__(self, ctx: Context, doing: str = "exporting") -> None:
        self.on = not ctx.json and sys.stderr.isatty()
        self.doing = doing
        self.shown = -1

    def ops(self, done: int, total: int) -> None:
        if self.on and total >= PROGRESS_MIN_OPS and done != self.shown:
            self.shown = done
            sys.stderr.write(f"\r{self.doing} {done}/{total} ops")
            sys.stderr.flush()
            if done == total:
                sys.stderr.write("\n")

    def step(self, what: str) -> None:
        if self.on:
            sys.stderr.write(f"{self.doing} {what}\n")
            sys.stderr.flush()


CSV_FILES = frozenset(f"{name}.csv" for name in TABLES)


def _replaceable(fmt: str) -> Callable[[Path], None]:
    """--force replaces only an earlier export of format ``fmt``."""
    return lambda path: check_previous_file(path, fmt)


async def _circles(replica: Replica, texts: list[str] | None) -> list[bytes]:
    if texts:
        chosen = [await replica.resolve_circle(text) for text in texts]
        return list(dict.fromkeys(chosen))
    return sorted(await replica.circles())


async def _archive(ctx: Context, args: argparse.Namespace, path: Path) -> dict[str, Any]:
    progress = Progress(ctx)
    async with open_replica(ctx.home) as replica:
        circles = await _circles(replica, args.circle)
        plan = await plan_archive(replica, circles, ctx.home.config.name)
        with atomic_output(path, bool(args.force), _replaceable("archive")) as out:
            written = await write_archive(replica, plan, out, progress.ops)
    return {
        "circles": [
            {"circle": e.circle.hex(), "name": e.name, "ops": e.count}
            for e in plan.manifest.circles
        ],
        "ops": written,
        "verify_with": f"circle-node verify --archive {path}",
    }


async def _readable(ctx: Context, args: argparse.Namespace, path: Path) -> dict[str, Any]:
    progress = Progress(ctx)
    async with open_replica(ctx.home) as replica:
        circles = await _circles(replica, args.circle)
        data = await collect(replica, circles, progress=progress.step)
    summary: dict[str, Any] = {
        "circles": [{"circle": c["circle"], "name": c["name"]} for c in data["circles"]],
        "decisions": sum(len(c["decisions"]) for c in data["circles"]),
    }
    if args.format == "csv":
        summary["files"] = write_directory(
            path, {f"{name}.csv": text for name, text in csv_tables(data).items()}, args.force
        )
        return summary
    text = markdown(data) if args.format == "md" else json.dumps(data, indent=1) + "\n"
    with atomic_output(path, bool(args.force), _replaceable(args.format)) as out:
        out.write(text.encode("utf-8"))
    return summary


def export(ctx: Context, args: argparse.Namespace) -> Output:
    """Write the chosen circles (default: all held here) in the chosen format."""
    if args.format != "verifier":
        ctx.home.require()
    path = Path(args.out)
    if args.format == "csv":
        check_directory_target(path, bool(args.force), CSV_FILES)
    else:
        check_target(path, bool(args.force), _replaceable(args.format))
    if args.format == "verifier":
        with atomic_output(path, bool(args.force), _replaceable("verifier")) as out:
            out.write(Path(standalone.__file__).read_bytes())
        text = f"Wrote the standalone archive checker to {path}: python3 {path} ARCHIVE"
        return Output({"format": "verifier", "out": str(path)}, text)
    if args.format == "archive":
        data = run_async(_archive(ctx, args, path))
        text = f"Wrote {data['ops']} signed ops of {len(data['circles'])} circle(s) to {path}."
        text += f"\nAnyone can check it: {data['verify_with']}"
    else:
        data = run_async(_readable(ctx, args, path))
        text = f"Wrote {args.format} export of {len(data['circles'])} circle(s) to {path}."
    return Output({"format": args.format, "out": str(path), **data}, text)


def register(build: Any, subs: Any) -> None:
    """Add ``export`` to the `circle-node` parser."""
    out = build.command(subs, "export", "write records or a self-verifying archive", export)
    out.add_argument(
        "--format",
        choices=FORMATS,
        required=True,
        help="md, csv, json, archive, or verifier (the standalone archive checker script)",
    )
    out.add_argument("--circle", action="append", metavar="ID", help="only this circle (repeat)")
    out.add_argument(
        "--out", required=True, metavar="PATH", help="the file (a directory for csv) to write"
    )
    out.add_argument("--force", action="store_true", help="replace PATH if it exists")
