"""Time from launching the TUI to a rendered dashboard, and peak memory, on a big store.

Builds a node home whose store holds N proposals (default 2,000; ``--proposals 10000`` for
the issue's target) across 20 circles (a tree: circle 0 is the top, the others hang below
it). Three write members (alice, bob, carol); records are signed directly in chains (as
bench/sync.py does), not through the CLI. 9 in 10 proposals are agreed (three consents and
a decision record), the others wait for alice's position, so her inbox is not empty.

Then it runs ``CircleNodeApp`` headless at 80x24 (``run_test``), unlocks alice through the
unlock screen (keys sealed with the fast test KDF, so argon2id does not dominate) and waits
until the dashboard has rendered its data; then it launches again on the same home.
The top-level figures are the second launch (the circles' governance digests stored by
the first, as on every start-up after one); ``first_launch`` holds the first, which folds
every circle (a start right after a sync or bundle import when nothing refreshed the
digests); ``node_refresh`` times the node's own background refresh of every digest (the
child process ``serve`` and ``bundle import`` run) and ``first_launch_after_node_refresh``
the launch that follows it (the first start after a sync or import now). As a baseline
measured in the same run, it times an empty app reaching its first screen. Prints one
JSON line; peak RSS is the process's ``ru_maxrss`` (the store build runs in a child
process so it does not count).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

os.environ["CIRCLE_NODE_FAST_KDF"] = "1"  # before node.home reads it; test-only keys

from signing import Chain
from textual.message import Message  # noqa: E402
from textual.widgets import Input  # noqa: E402

from node import local  # noqa: E402
from node.crypto.keys import KeyPair  # noqa: E402
from node.domain.auth import Level  # noqa: E402
from node.domain.governance.records import (  # noqa: E402
    DecisionRec,
    PositionRec,
    ProposalRec,
    encode_record,
    record_id,
    version_hash,
)
from node.home import DEFAULT_LISTEN, NodeHome  # noqa: E402
from node.ingest import ingest_ops  # noqa: E402
from node.replica import Replica  # noqa: E402

CIRCLES = 20
BATCH = 2000
PASSPHRASE = "bench passphrase"
TEXT = "Proposal {n}: we will try this for three months and review it."


async def make_circles(replica: Replica, home: NodeHome, keys: list[KeyPair]) -> list[bytes]:
    alice = keys[0]
    circles: list[bytes] = []
    for i in range(CIRCLES):
        parent = circles[(i - 1) // 4] if i else None
        circle = await local.create_circle(
            replica,
            alice,
            name=f"Circle {i:02d}",
            creator_name="alice",
            home=home.node_public,
            purpose=f"The purpose of circle {i}.",
            parent=parent,
        )
        for name, key in zip(("bob", "carol"), keys[1:], strict=True):
            await local.add_member(
                replica,
                alice,
                circle,
                member=key.public,
                name=name,
                level=Level.WRITE,
                home=home.node_public,
            )
        circles.append(circle)
    return circles


def proposal_ops(chains: list[Chain], n: int) -> list[bytes]:
    """One proposal with bob's and carol's consent; 9 in 10 also alice's and a decision."""
    text = TEXT.format(n=n)
    body = ProposalRec(title=f"Proposal {n}", driver="a need we noticed", text=text)
    first = chains[n % 3].record(encode_record(body))
    pid = record_id(first.op_id)
    version = version_hash(pid, text)
    wires = [first.wire()]
    voters = chains if n % 10 else chains[1:]
    positions = []
    for chain in voters:
        record = PositionRec(proposal=pid, version=version, position="consent")
        op = chain.record(encode_record(record))
        positions.append(op.op_id)
        wires.append(op.wire())
    if n % 10:
        decision = DecisionRec(
            proposal=pid, version=version, positions=sorted(positions), review_date="2099-01-01"
        )
        wires.append(chains[0].record(encode_record(decision)).wire())
    return wires


async def build(path: Path, proposals: int) -> None:
    home = NodeHome(path)
    home.init("bench", DEFAULT_LISTEN, PASSPHRASE)
    alice = home.create_member("alice", PASSPHRASE)
    keys = [alice, KeyPair.generate(), KeyPair.generate()]
    async with Replica.open(home.store_path) as replica:
        circles = await make_circles(replica, home, keys)
        chains_of = []
        for circle in circles:
            heights = await replica.heights(circle)
            deps = (await replica.auth_log(circle)).heads()
            chains_of.append(
                [Chain(k, circle, *heights.get(k.public, (0, None)), deps) for k in keys]
            )
        wires: list[bytes] = []
        for n in range(proposals):
            wires += proposal_ops(chains_of[n % CIRCLES], n)
            if len(wires) >= BATCH:
                await ingest_ops(replica, wires)
                wires = []
        await ingest_ops(replica, wires)


async def launch(path: Path) -> dict[str, float]:
    """Seconds from launch to the unlock screen, and from submitting the passphrase to the
    dashboard's circle tree (first paint) and to its inbox and decisions (complete)."""
    from node.tui.app import CircleNodeApp
    from node.tui.messages import CirclesLoaded, SummariesLoaded
    from node.tui.screens.dashboard import DashboardScreen

    painted, complete = asyncio.Event(), asyncio.Event()

    def hook(message: Message) -> None:
        if isinstance(message, CirclesLoaded):
            painted.set()
        elif isinstance(message, SummariesLoaded) and message.complete:
            complete.set()

    start = time.perf_counter()
    app = CircleNodeApp(NodeHome(path))
    async with app.run_test(size=(80, 24), message_hook=hook) as pilot:
        first = time.perf_counter() - start
        field = app.screen.query_one("#passphrase", Input)
        field.value = PASSPHRASE
        entered = time.perf_counter()
        await field.action_submit()
        await painted.wait()
        await asyncio.sleep(0)  # let the handler draw the tree
        paint = time.perf_counter() - entered
        await complete.wait()
        await asyncio.sleep(0)
        done = time.perf_counter() - entered
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        await pilot.pause()
        assert screen.loaded
    return {
        "to_unlock_screen_s": round(first, 3),
        "unlock_to_first_paint_s": round(paint, 3),
        "unlock_to_complete_s": round(done, 3),
        "launch_to_dashboard_s": round(first + done, 3),
    }


def node_refresh(path: Path) -> dict[str, float]:
    """Forget every stored digest (as after a big sync or bundle import, which change every
    circle), then run the digest refresh exactly as ``serve`` and ``bundle import`` do (the
    ``python -m node.digest_refresh`` child, niced) and time it."""
    store = path / "store.db"
    with closing(sqlite3.connect(store)) as db, db:
        db.execute("DELETE FROM digests")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "node.digest_refresh", str(store)],
        check=True,
        capture_output=True,
        text=True,
    )
    report = json.loads(done.stdout)
    return {"refresh_s": round(time.perf_counter() - started, 3), "stored": report["stored"]}


def measure(proposals: int) -> dict[str, Any]:
    """Build a home with ``proposals`` in a child process, then time the TUI on it:
    ``first``: no governance digest stored yet (a sync or bundle import just changed every
    circle and nothing refreshed them: the TUI folds every circle, as before the node kept
    digests itself); ``second``: reads the digests the first one stored (every later
    start-up while the circles are unchanged); ``after_node_refresh``: the digests dropped
    again, refreshed by the node's background refresh, then a launch (the first launch
    after a sync or import now). See node/digests.py and node/digest_refresh.py."""
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / "home"
        started = time.perf_counter()
        cmd = [sys.executable, __file__, "--proposals", str(proposals), "--home", str(path)]
        subprocess.run(cmd, check=True)
        build_s = time.perf_counter() - started
        store_mb = (path / "store.db").stat().st_size / 2**20
        first = asyncio.run(launch(path))
        second = asyncio.run(launch(path))
        refresh = node_refresh(path)
        after = asyncio.run(launch(path))
        return {
            "first": first,
            "second": second,
            "refresh": refresh,
            "after_node_refresh": after,
            "build_s": build_s,
            "store_mb": store_mb,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--proposals", type=int, default=2_000)
    parser.add_argument("--home", help=argparse.SUPPRESS)  # internal: build only
    args = parser.parse_args()
    if args.home:
        asyncio.run(build(Path(args.home), args.proposals))
        return
    baseline = measure(0)["second"]
    run = measure(args.proposals)
    figures = run["second"]
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ratio = figures["launch_to_dashboard_s"] / max(baseline["launch_to_dashboard_s"], 1e-3)
    print(
        json.dumps(
            {
                "bench": "tui_start",
                "proposals": args.proposals,
                "circles": CIRCLES,
                "store_mb": round(run["store_mb"], 1),
                "build_s": round(run["build_s"], 1),
                **figures,
                "first_launch": run["first"],
                "node_refresh": run["refresh"],
                "first_launch_after_node_refresh": run["after_node_refresh"],
                "baseline_empty_launch_to_dashboard_s": baseline["launch_to_dashboard_s"],
                "ratio_to_empty": round(ratio, 2),
                "peak_rss_mb": round(peak_kb / 1024, 1),
                "targets": {"launch_to_dashboard_s": 1.0, "peak_rss_mb": 150},
                "python": platform.python_version(),
                "machine": platform.machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
