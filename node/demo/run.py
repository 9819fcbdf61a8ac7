"""Running the demo federation: three ``circle-node serve`` processes on loopback, peered
with each other, watched until they converge, then verified.

Invariants:

* Each node is a real ``serve`` subprocess listening on 127.0.0.1 only, with its log in
  ``DIR/logs/<node>.log``. :func:`start_nodes` stops every node it started if any of them
  fails to start, and :func:`stop_nodes` (SIGTERM, then SIGKILL after a grace period) is
  safe to call twice.
* Peers are rewritten on every run (ports may change): each node's peer table lists
  exactly the other two nodes' current URLs.
* "Converged" means: every node holds every circle that lists it as a host, and every
  node holding a circle holds the same heights (the same op chains) for it.
* Reading the stores while the nodes run is safe: SQLite WAL, and every read here opens a
  fresh :class:`Replica`, so nothing is cached across polls.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from node.demo.layout import NODES, DemoDir, NodeSpec
from node.errors import NodeError
from node.replica import Replica
from node.store.peers import PeerBook
from node.verify import verify_store

START_LIMIT = 60.0  # seconds for a node to print its listening line
STOP_GRACE = 20.0  # seconds for a node to stop after SIGTERM before it is killed
POLL = 0.3  # seconds between looks at the stores while waiting to converge
#: settings for the demo's nodes: notice new peers and each other's writes quickly
SERVE_ENV = {
    "CIRCLE_NODE_PEER_REFRESH": "0.2",
    "CIRCLE_NODE_POLL_INTERVAL": "0.2",
    "CIRCLE_NODE_BACKOFF_BASE": "0.2",
    "CIRCLE_NODE_BACKOFF_CAP": "2",
}


@dataclass
class Running:
    """One started node."""

    spec: NodeSpec
    proc: subprocess.Popen[str]
    url: str
    node: str  # the node key (hex)


def _log_tail(demo: DemoDir, key: str, lines: int = 5) -> str:
    try:
        text = demo.log_path(key).read_text("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _spawn(demo: DemoDir, spec: NodeSpec, port: int, passphrase: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "CIRCLE_NODE_HOME"}
    env.update(SERVE_ENV, CIRCLE_NODE_PASSPHRASE=passphrase)
    home = demo.home(spec.key)
    command = [sys.executable, "-m", "node.cli", "--home", str(home.path), "serve", "--json"]
    command += ["--listen", f"127.0.0.1:{port}"]
    with demo.log_path(spec.key).open("a") as log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )


def _listening(demo: DemoDir, spec: NodeSpec, port: int, proc: subprocess.Popen[str]) -> Running:
    assert proc.stdout is not None
    line = proc.stdout.readline()  # serve prints it once it listens; "" if it died
    try:
        listening = json.loads(line)
        return Running(spec, proc, str(listening["url"]), str(listening["node"]))
    except (json.JSONDecodeError, KeyError, TypeError):
        raise NodeError(
            f"the {spec.key} node did not start (port {port}):\n"
            f"{_log_tail(demo, spec.key)}\n(its log: {demo.log_path(spec.key)})"
        ) from None


def start_nodes(demo: DemoDir, ports: list[int], passphrase: str) -> list[Running]:
    """Start every node's ``serve`` at once (port 0: any free port); all or none."""
    procs: list[subprocess.Popen[str]] = []
    running: list[Running] = []
    try:
        for spec, port in zip(NODES, ports, strict=True):
            procs.append(_spawn(demo, spec, port, passphrase))
        for spec, port, proc in zip(NODES, ports, procs, strict=True):
            running.append(_listening(demo, spec, port, proc))
    except BaseException:
        stop_nodes([Running(spec, proc, "", "") for spec, proc in zip(NODES, procs, strict=False)])
        raise
    return running


def stop_nodes(running: list[Running]) -> None:
    """SIGTERM every node still running, then wait (SIGKILL after the grace period)."""
    for node in running:
        if node.proc.poll() is None:
            node.proc.send_signal(signal.SIGTERM)
    for node in running:
        try:
            node.proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            node.proc.kill()
            node.proc.wait()
        if node.proc.stdout is not None:
            node.proc.stdout.close()


def check_alive(demo: DemoDir, running: list[Running]) -> None:
    for node in running:
        if node.proc.poll() is not None:
            raise NodeError(
                f"the {node.spec.key} node stopped (exit {node.proc.returncode}):\n"
                f"{_log_tail(demo, node.spec.key)}"
            )


async def peer_up(demo: DemoDir, running: list[Running]) -> None:
    """Each node's peers become exactly the other nodes, at their current URLs."""
    for node in running:
        async with Replica.open(demo.home(node.spec.key).store_path) as replica:
            book = PeerBook(replica.store)
            for peer in await book.all():
                await book.remove(peer.url)
            for other in running:
                if other is not node:
                    await book.add(other.url, other.spec.key)


# ---- convergence ---------------------------------------------------------------------------


@dataclass
class Snapshot:
    """What one node holds: per circle its name and heights."""

    names: dict[str, str]
    heights: dict[str, dict[str, int]]

    def digest(self, circle: str) -> str:
        """A short hash of one circle's heights: equal on two nodes iff they agree."""
        text = json.dumps(self.heights[circle], sort_keys=True).encode()
        return hashlib.blake2b(text, digest_size=8).hexdigest()


async def snapshot(demo: DemoDir, key: str) -> Snapshot:
    names, heights = {}, {}
    async with Replica.open(demo.home(key).store_path) as replica:
        for circle in await replica.store.circles():
            genesis = (await replica.auth_state(circle)).genesis
            names[circle.hex()] = genesis.name if genesis else "?"
            held = await replica.store.heights_for(circle)
            heights[circle.hex()] = {a.hex(): seq for a, seq in sorted(held.items())}
    return Snapshot(names, heights)


def converged(snaps: dict[str, Snapshot], hosted: dict[str, list[str]]) -> bool:
    """Every node holds what it hosts, and all holders of a circle agree on its heights."""
    if any(not set(hosted.get(key, ())) <= set(s.heights) for key, s in snaps.items()):
        return False
    seen: dict[str, dict[str, int]] = {}
    for snap in snaps.values():
        for circle, heights in snap.heights.items():
            if seen.setdefault(circle, heights) != heights:
                return False
    return True


async def wait_converged(
    demo: DemoDir, running: list[Running], hosted: dict[str, list[str]], limit: float
) -> tuple[bool, dict[str, Snapshot]]:
    """Poll the stores until the nodes converge or ``limit`` seconds pass."""
    deadline = time.monotonic() + limit
    while True:
        check_alive(demo, running)
        snaps = {node.spec.key: await snapshot(demo, node.spec.key) for node in running}
        if converged(snaps, hosted) or time.monotonic() >= deadline:
            return converged(snaps, hosted), snaps
        await asyncio.sleep(POLL)


async def verify_all(demo: DemoDir) -> dict[str, dict[str, Any]]:
    """``verify`` on every node's store: {node: {ok, ops, problems}}."""
    results = {}
    for spec in NODES:
        async with Replica.open(demo.home(spec.key).store_path) as replica:
            report = await verify_store(replica)
        results[spec.key] = {"ok": report.ok, "ops": report.ops, "problems": report.problems[:5]}
    return results


def summary(
    running: list[Running],
    snaps: dict[str, Snapshot],
    verified: dict[str, dict[str, Any]],
    is_converged: bool,
) -> dict[str, Any]:
    nodes = []
    for node in running:
        snap = snaps[node.spec.key]
        circles = [
            {"circle": c, "name": snap.names[c], "ops": sum(h.values()), "heights": snap.digest(c)}
            for c, h in sorted(snap.heights.items(), key=lambda item: snap.names[item[0]])
        ]
        nodes.append(
            {
                "node": node.spec.key,
                "name": node.spec.name,
                "node_id": node.node,
                "url": node.url,
                "members": list(node.spec.members),
                "circles": circles,
                "verify": verified[node.spec.key],
            }
        )
    ok = is_converged and all(v["ok"] for v in verified.values())
    return {"converged": is_converged, "ok": ok, "nodes": nodes}


def summary_text(data: dict[str, Any]) -> str:
    lines = []
    for node in data["nodes"]:
        check = node["verify"]
        verdict = "verify ok" if check["ok"] else f"verify: {len(check['problems'])} problem(s)"
        lines.append(
            f"{node['name']} ({node['node']}, {node['url']}), members "
            f"{', '.join(node['members'])}: {verdict}, {check['ops']} ops"
        )
        lines += [
            f"    {c['name']:<26} {c['circle'][:8]}  {c['ops']:>3} ops  heights {c['heights']}"
            for c in node["circles"]
        ]
    state = "converged" if data["converged"] else "NOT converged"
    lines.append(f"The nodes {state}; {'all stores verify' if data['ok'] else 'see above'}.")
    return "\n".join(lines)
