"""Crash safety: SIGKILL a real `bundle import` at random points, again and again.

After every kill the store must pass SQLite's integrity check and `verify`, nothing it had
committed may be lost (the op count never goes down), and a final import completes the
copy. Rounds: 20 by default; `CIRCLE_NODE_CRASH_ROUNDS=50` for the long run.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from cli_runner import cli, cli_env
from helpers import Author, YWriter

from node.crypto.card import parse_card
from node.domain.auth import Level
from node.domain.documents import doc_id
from node.ingest import ingest_ops
from node.replica import Replica
from node.verify import verify_store

ROUNDS = int(os.environ.get("CIRCLE_NODE_CRASH_ROUNDS", "20"))
OPS = 4000


async def _fill(store: Path, b_home_node: bytes, member: bytes) -> int:
    """Sign a circle with OPS ops straight into home A's store (fast, no CLI per op)."""
    founder, writer = Author(), Author()
    genesis = founder.genesis(home=b_home_node)
    circle = genesis.circle
    add = founder.set_member(circle, writer, Level.WRITE, [genesis.op_id], home=b_home_node)
    ops = [genesis, add]
    ydoc = YWriter(writer.ycid)
    doc = doc_id(circle, "shared")
    for i in range(OPS):
        if i % 2:
            ops.append(writer.y(circle, doc, ydoc.set(f"k{i}", i), [add.op_id]))
        else:
            ops.append(writer.record(circle, [add.op_id], t="note"))
    async with Replica.open(store) as replica:
        for i in range(0, len(ops), 1000):
            await ingest_ops(replica, [op.wire() for op in ops[i : i + 1000]])
        return await replica.store.count_ops()


async def _check(store: Path) -> int:
    async with Replica.open(store) as replica:
        assert await replica.store.integrity_check() == []
        report = await verify_store(replica)
        assert report.ok, report.problems[:3]
        return await replica.store.count_ops()


def test_sigkill_during_bundle_import_loses_nothing_committed(tmp_path: Path) -> None:
    """Killed with SIGKILL at random points during a large import, the store stays intact
    and verifiable every time, never loses committed ops, and the next import finishes."""
    a, b = tmp_path / "a", tmp_path / "b"
    cli(a, "init", "--name", "hall")
    node_b = cli(b, "init", "--name", "barn").data["node"]
    card = cli(b, "member", "create", "--name", "bob").data["card"]
    total = asyncio.run(_fill(a / "store.db", bytes.fromhex(node_b), parse_card(card).member))
    bundle = tmp_path / "all.cnb"
    exported = cli(a, "bundle", "export", str(bundle), "--for", node_b)
    assert exported.code == 0, exported
    rng = random.Random(7)
    committed = 0
    for _ in range(ROUNDS):
        proc = subprocess.Popen(
            [sys.executable, "-m", "node.cli", "--home", str(b), "bundle", "import", str(bundle)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=cli_env(),
        )
        time.sleep(rng.uniform(0.3, 1.6))  # imports of the CLI take ~0.5 s, then ingest
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        count = asyncio.run(_check(b / "store.db"))
        assert count >= committed
        committed = count
    final = cli(b, "bundle", "import", str(bundle))
    assert final.code == 0, final
    assert asyncio.run(_check(b / "store.db")) == total
