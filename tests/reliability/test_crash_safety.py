"""Crash safety: SIGKILL real processes at random points, again and again.

Three kinds of round, on one large circle (3,000 ops): a `bundle import` killed mid-ingest;
a `sync --once` killed while it pulls the circle from a `serve` subprocess; and a `serve`
killed while another node's `sync --once` pushes the circle to it. After every kill the
store must pass SQLite's integrity check and `verify`, no chain it had committed may get
shorter, everything acknowledged (an import or sync that exited 0, i.e. whose DONE was
exchanged) must be there in full, and a final import or sync converges to the sender's
heights. Rounds in all: 50 by default (2/5 bundle, 2/5 pulling, 1/5 serving), set with
`CIRCLE_NODE_CRASH_ROUNDS`; the seed is printed and can be fixed with
`CIRCLE_NODE_CRASH_SEED`.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from cli_runner import cli, cli_env
from helpers import Author, YWriter
from real_nodes import Served, check_store, kill_at

from node.domain.auth import Level
from node.domain.documents import doc_id
from node.ingest import ingest_ops
from node.replica import Replica
from node.verify import verify_store

ROUNDS = int(os.environ.get("CIRCLE_NODE_CRASH_ROUNDS", "50"))
BUNDLE_ROUNDS = ROUNDS * 2 // 5
PULL_ROUNDS = ROUNDS * 2 // 5
SERVE_ROUNDS = ROUNDS - BUNDLE_ROUNDS - PULL_ROUNDS
SEED = int(os.environ.get("CIRCLE_NODE_CRASH_SEED", str(random.randrange(2**32))))
OPS = 3000


async def _fill(store: Path, b_home_node: bytes, *hosts: bytes) -> int:
    """Sign a circle with OPS ops straight into home A's store (fast, no CLI per op); B's
    node and ``hosts`` may hold it."""
    founder, writer = Author(), Author()
    genesis = founder.genesis(home=b_home_node)
    circle = genesis.circle
    add = founder.set_member(circle, writer, Level.WRITE, [genesis.op_id], home=b_home_node)
    ops = [genesis, add]
    ops += [founder.set_host(circle, node, [add.op_id], True) for node in hosts]
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
    pristine = tmp_path / "b0"
    shutil.copytree(b, pristine)
    total = asyncio.run(_fill(a / "store.db", bytes.fromhex(node_b)))
    bundle = tmp_path / "all.cnb"
    exported = cli(a, "bundle", "export", str(bundle), "--for", node_b)
    assert exported.code == 0, exported
    print(f"crash seed {SEED}")
    rng = random.Random(SEED)
    committed = 0
    for _ in range(BUNDLE_ROUNDS):
        proc = subprocess.Popen(
            [sys.executable, "-m", "node.cli", "--home", str(b), "bundle", "import", str(bundle)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=cli_env(),
        )
        kill_at(proc, b / "store.db", _target(rng, committed, total), rng)
        proc.wait(timeout=30)
        count = asyncio.run(_check(b / "store.db"))
        assert count >= committed
        committed = count
        if count == total:  # finished before the kill: start again from an empty store
            _fresh(b, pristine)
            committed = 0
    final = cli(b, "bundle", "import", str(bundle))
    assert final.code == 0, final
    assert asyncio.run(_check(b / "store.db")) == total


Heights = dict[bytes, dict[bytes, int]]


def _no_chain_shorter(before: Heights, after: Heights) -> None:
    """Nothing committed was lost: every chain is at least as long as it was."""
    for circle, chains in before.items():
        for author, seq in chains.items():
            assert after.get(circle, {}).get(author, 0) >= seq, (circle.hex(), author.hex())


def _sync_proc(home: Path, url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "node.cli", "--home", str(home), "sync", "--once"]
        + ["--peer", url, "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(),
    )


def _count(held: Heights) -> int:
    return sum(sum(chains.values()) for chains in held.values())


def _target(rng: random.Random, held: int, total: int) -> int:
    """Where to kill: anywhere from before the first op to after the last (no kill)."""
    return held + int(rng.uniform(0, 1.1) * (total - held))


def _crash(served: Served) -> Callable[[], None]:
    def kill() -> None:
        served.stop(signal.SIGKILL)

    return kill


def _fresh(home: Path, pristine: Path) -> None:
    """Back to the empty home (same node key) so the next round has a whole circle to get."""
    shutil.rmtree(home)
    shutil.copytree(pristine, home)


def test_sigkill_during_sync_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """`sync --once` pulling a large circle from `serve`, and `serve` receiving one pushed by
    `sync --once`, each SIGKILLed at random points: after every kill the receiver's store is
    intact and verifiable, no chain got shorter, a sync that had finished (DONE both ways)
    left everything there, and the next sync converges to the sender's heights."""
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    cli(a, "init", "--name", "hall")
    node_b = cli(b, "init", "--name", "barn").data["node"]
    node_c = cli(c, "init", "--name", "shed").data["node"]
    pristine_b, pristine_c = tmp_path / "b0", tmp_path / "c0"
    shutil.copytree(b, pristine_b)
    shutil.copytree(c, pristine_c)
    asyncio.run(_fill(a / "store.db", bytes.fromhex(node_b), bytes.fromhex(node_c)))
    full = asyncio.run(check_store(a / "store.db"))
    total = _count(full)
    print(f"crash seed {SEED}")
    rng = random.Random(SEED + 1)
    served_a = Served(a).start()
    try:
        # pulling: `sync --once` on B killed while it takes the circle from A's serve
        held: Heights = {}
        acknowledged = 0
        for _ in range(PULL_ROUNDS):
            proc = _sync_proc(b, served_a.url)
            kill_at(proc, b / "store.db", _target(rng, _count(held), total), rng)
            finished = proc.wait(timeout=30) == 0
            now = asyncio.run(check_store(b / "store.db"))
            _no_chain_shorter(held, now)
            held = now
            if finished:  # B's DONE went out: everything A offered is stored
                assert now == full
                acknowledged += 1
                _fresh(b, pristine_b)
                held = {}
        assert cli(b, "sync", "--once", "--peer", served_a.url).code == 0
        assert asyncio.run(check_store(b / "store.db")) == full

        # serving: `serve` on C killed while A's `sync --once` pushes the circle to it
        served_c = Served(c)
        held = {}
        for _ in range(SERVE_ROUNDS):
            served_c.start()
            pusher = _sync_proc(a, served_c.url)
            target = _target(rng, _count(held), total)
            kill_at(pusher, c / "store.db", target, rng, victim=_crash(served_c))
            finished = pusher.wait(timeout=30) == 0
            now = asyncio.run(check_store(c / "store.db"))
            _no_chain_shorter(held, now)
            held = now
            if finished:  # C sent DONE: it had stored every op A pushed
                assert now == full
                acknowledged += 1
                _fresh(c, pristine_c)
                held = {}
        served_c.start()
        try:
            assert cli(a, "sync", "--once", "--peer", served_c.url).code == 0
        finally:
            served_c.stop()
        assert asyncio.run(check_store(c / "store.db")) == full
        print(f"{acknowledged} of {PULL_ROUNDS + SERVE_ROUNDS} killed syncs had finished")
    finally:
        served_a.stop()
