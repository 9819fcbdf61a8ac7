"""``verify``: re-check every stored op; exit 0 only when all of them hold up.

``verify --archive FILE`` checks an archive (``export --format archive``) instead, from
the file alone: it needs no node home and never opens the local store
(:mod:`node.export.archive`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from node.commands.base import Context, Output, open_replica, run_async
from node.commands.export import Progress
from node.errors import ConfigError, StorageError
from node.export.archive import verify_archive
from node.verify import verify_store


async def _verify(ctx: Context, circle_text: str | None) -> dict[str, Any]:
    async with open_replica(ctx.home) as replica:
        circle = None if circle_text is None else await replica.resolve_circle(circle_text)
        report = await verify_store(replica, circle)
        return {"ok": report.ok, "ops": report.ops, "problems": report.problems}


def _unreadable(exc: StorageError) -> dict[str, Any]:
    problem = {"op": "", "circle": "", "problem": "unreadable_store", "detail": str(exc)}
    return {"ok": False, "ops": 0, "problems": [problem]}


def _text(data: dict[str, Any]) -> str:
    if data["ok"]:
        return f"ok: all {data['ops']} stored ops verify (signatures, chains, authorization)"
    lines = [f"FAILED: {len(data['problems'])} problem(s) in {data['ops']} stored ops"]
    for p in data["problems"]:
        where = f"op {p['op']}" if p.get("op") else "store"
        lines.append(f"  {where}: {p.get('problem', '?')}: {p.get('detail', '')}")
    lines.append("Restore the affected circles from a backup or re-sync them from another node.")
    return "\n".join(lines)


def _where(p: dict[str, Any]) -> str:
    if not p.get("op") and not p.get("author"):
        return f"circle {p['circle'][:16]}" if p.get("circle") else "archive"
    seq = p.get("seq")
    original = f", originally {p['original_op']}" if p.get("original_op") else ""
    return (
        f"op {p['op'] or '?'} (#{p.get('index')}: circle {p['circle']}, author "
        f"{p['author'] or '?'}, seq {seq if seq is not None else '?'}{original})"
    )


def _archive_text(path: str, data: dict[str, Any]) -> str:
    circles = data["circles"]
    if data["ok"]:
        lines = [
            f"ok: {path}: all {data['ops']} ops of {len(circles)} circle(s) verify "
            "(signatures, chains, authorization, ycid bindings, decisions)"
        ]
    else:
        lines = [f"FAILED: {path}: {data['problem_count']} problem(s) in {data['ops']} ops"]
        for p in data["problems"]:
            lines.append(f"  {_where(p)}: {p['problem']}: {p['detail']}")
    for c in circles:
        lines.append(
            f"  circle {c['name'] or '?'} ({c['circle'][:8]}): {c['verified']} of "
            f"{c['listed']} ops verified, {c['authors']} author(s), {c['decisions']} decision(s)"
        )
    return "\n".join(lines)


def _verify_archive(ctx: Context, path: str) -> Output:
    progress = Progress(ctx, "verifying")
    data = run_async(verify_archive(Path(path), progress.ops)).as_dict()
    return Output({"archive": path, **data}, _archive_text(path, data), 0 if data["ok"] else 1)


def verify(ctx: Context, args: argparse.Namespace) -> Output:
    """Re-verify signatures, chains and authorization of every stored op."""
    if getattr(args, "archive", None):
        if args.circle:
            raise ConfigError("--circle does not apply to --archive: it checks the whole file")
        return _verify_archive(ctx, str(args.archive))
    ctx.home.require()
    try:
        data = run_async(_verify(ctx, args.circle))
    except StorageError as exc:
        data = _unreadable(exc)
    return Output(data, _text(data), code=0 if data["ok"] else 1)
