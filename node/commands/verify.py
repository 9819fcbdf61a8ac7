"""``verify``: re-check every stored op; exit 0 only when all of them hold up."""

from __future__ import annotations

import argparse
from typing import Any

from node.commands.base import Context, Output, open_replica, run_async
from node.errors import StorageError
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


def verify(ctx: Context, args: argparse.Namespace) -> Output:
    """Re-verify signatures, chains and authorization of every stored op."""
    ctx.home.require()
    try:
        data = run_async(_verify(ctx, args.circle))
    except StorageError as exc:
        data = _unreadable(exc)
    return Output(data, _text(data), code=0 if data["ok"] else 1)
