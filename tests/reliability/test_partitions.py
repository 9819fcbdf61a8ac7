"""Partitions: five nodes as real `serve` processes, links cut and restored at random.

Every node has the other four as peers and all five host one circle. In phases chosen by a
seeded RNG (the seed is printed; fix it with `CIRCLE_NODE_PARTITION_SEED`), links are cut,
writes continue on every side (a real CLI `idea share` into each home, and Yjs edits to a
shared document written into each store by another process, as the TUI does), then links
are restored. After healing, all five must converge: identical heights and identical
materialized documents, and every store passes the integrity check and `verify`.

Mode A (always runs): a link is cut by stopping a node's `serve`; the stopped node keeps
taking writes offline. Mode B: each node in its own Linux network namespace on a bridge,
and the network really splits into two sides that keep syncing among themselves
(blackhole routes between the sides); needs root and `ip netns`, else it is skipped with the
reason. Phases: `CIRCLE_NODE_PARTITION_PHASES` (default 2).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import time
import types
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cli_runner import cli
from helpers import Author, YWriter, doc_view, new_ycid
from real_nodes import Served, check_store, heights

from node.crypto.card import parse_card
from node.domain.auth import Level
from node.domain.documents import doc_id
from node.ingest import ingest_ops
from node.replica import Replica
from node.store.peers import PeerBook

N = 5
PHASES = int(os.environ.get("CIRCLE_NODE_PARTITION_PHASES", "2"))
SEED = int(os.environ.get("CIRCLE_NODE_PARTITION_SEED", str(random.randrange(2**32))))
EDITS = 3  # Yjs edits per node per phase
# a lost peer is retried quickly, and writes by other processes are noticed quickly
FAST = {
    "CIRCLE_NODE_BACKOFF_BASE": "0.2",
    "CIRCLE_NODE_BACKOFF_CAP": "1",
    "CIRCLE_NODE_POLL_INTERVAL": "0.2",
    "CIRCLE_NODE_CONNECT_TIMEOUT": "2",
}


@dataclass
class Node:
    home: Path
    node: bytes
    member: str  # the CLI member's name
    served: Served
    writer: Author = field(default_factory=Author)
    ydoc: YWriter = field(init=False)
    auth: bytes = b""  # the auth op that made ``writer`` a member (its dep)

    def __post_init__(self) -> None:
        self.ydoc = YWriter(self.writer.ycid)


@dataclass
class Cluster:
    nodes: list[Node]
    circle: bytes
    doc: bytes
    written: int = 0

    def write_everywhere(self, phase: int) -> None:
        """A CLI write and EDITS Yjs edits into every home, served or not."""

        def share(n: Node) -> None:
            text = f"idea {phase} by {n.member}"
            shared = cli(
                n.home, "--as", n.member, "idea", "share", self.circle.hex(), "--text", text
            )
            assert shared.code == 0, shared

        with ThreadPoolExecutor(N) as pool:  # the five CLI processes at once
            list(pool.map(share, self.nodes))
        for i, n in enumerate(self.nodes):
            ops = [
                n.writer.y(self.circle, self.doc, n.ydoc.set(f"n{i}p{phase}e{e}", e), [n.auth])
                for e in range(EDITS)
            ]
            report = asyncio.run(_ingest(n.home, [op.wire() for op in ops]))
            assert report.added == EDITS, report
            self.written += 1 + EDITS


async def _ingest(home: Path, wires: list[bytes]) -> Any:
    async with Replica.open(home / "store.db") as replica:
        return await ingest_ops(replica, wires)


async def _heights(home: Path) -> dict[bytes, dict[bytes, int]]:
    async with Replica.open(home / "store.db") as replica:
        return await heights(replica)


async def _materialized(home: Path, circle: bytes, doc: bytes) -> dict[str, Any]:
    async with Replica.open(home / "store.db") as replica:
        return doc_view(await replica.doc(circle, doc))


def _build(tmp_path: Path, hosts: list[str], ports: list[int], netns: list[str | None]) -> Cluster:
    """Five homes with a member each, one circle they all host, every node a peer of all."""

    def make(i: int) -> tuple[Node, bytes]:
        home = tmp_path / f"n{i}"
        node = bytes.fromhex(cli(home, "init", "--name", f"node{i}").data["node"])
        card = cli(home, "member", "create", "--name", f"m{i}").data["card"]
        served = Served(home, hosts[i], ports[i], netns=netns[i], env=FAST)
        return Node(home, node, f"m{i}", served), parse_card(card).member

    with ThreadPoolExecutor(N) as pool:  # the CLI processes of the five homes at once
        nodes = list(pool.map(make, range(N)))
    founder = Author()
    genesis = founder.genesis(home=nodes[0][0].node)
    circle = genesis.circle
    ops, deps = [genesis], [genesis.op_id]
    for n, member in nodes:
        cli_member = types.SimpleNamespace(public=member, ycid=new_ycid())
        ops.append(founder.set_member(circle, cli_member, Level.WRITE, deps, home=n.node))  # type: ignore[arg-type]
        add = founder.set_member(circle, n.writer, Level.WRITE, deps, home=n.node)
        n.auth = add.op_id
        ops.append(add)
    cluster = Cluster([n for n, _ in nodes], circle, doc_id(circle, "shared"))
    report = asyncio.run(_ingest(cluster.nodes[0].home, [op.wire() for op in ops]))
    assert report.added == len(ops), report
    asyncio.run(_peer_all(cluster))
    return cluster


async def _peer_all(cluster: Cluster) -> None:
    for n in cluster.nodes:
        async with Replica.open(n.home / "store.db") as replica:
            book = PeerBook(replica.store)
            for other in cluster.nodes:
                if other is not n:
                    await book.add(other.served.url, name=other.home.name)


def _converge(cluster: Cluster, timeout: float = 90) -> dict[bytes, dict[bytes, int]]:
    """Wait until every node holds the same heights; those heights."""
    began = time.monotonic()
    deadline = began + timeout
    while True:
        seen = [asyncio.run(_heights(n.home)) for n in cluster.nodes]
        if all(s == seen[0] for s in seen) and cluster.circle in seen[0]:
            print(f"converged in {time.monotonic() - began:.1f} s")
            return seen[0]
        if time.monotonic() > deadline:
            counts = [sum(s.get(cluster.circle, {}).values()) for s in seen]
            logs = "\n".join(n.served.log.read_text()[-2000:] for n in cluster.nodes)
            raise AssertionError(f"no convergence: ops per node {counts}\n{logs}")
        time.sleep(0.3)


def _start(served: Iterable[Served]) -> None:
    """Start several nodes at once, then wait until each answers."""
    started = [s.start(wait=False) for s in served]
    for s in started:
        s.wait_healthy()


def _stop_all(cluster: Cluster) -> None:
    for n in cluster.nodes:
        n.served.stop()


def _settle(cluster: Cluster) -> None:
    """All five stopped cleanly; each store intact, and all agree on heights and docs."""
    for n in cluster.nodes:
        assert n.served.stop() == 0, n.served.log.read_text()[-3000:]
    views = []
    for n in cluster.nodes:
        held = asyncio.run(check_store(n.home / "store.db"))
        views.append((held, asyncio.run(_materialized(n.home, cluster.circle, cluster.doc))))
    assert all(v == views[0] for v in views)
    held, doc = views[0]
    # the initial 11 ops plus everything written while partitioned
    assert sum(held[cluster.circle].values()) == 1 + 2 * N + cluster.written
    assert len(doc["m"]) == N * PHASES * EDITS
    with ThreadPoolExecutor(N) as pool:
        ideas = list(pool.map(lambda n: _ideas(n.home, cluster.circle), cluster.nodes))
    assert all(i == ideas[0] for i in ideas)
    assert len(ideas[0]) == N * PHASES


def _ideas(home: Path, circle: bytes) -> list[str]:
    listed = cli(home, "idea", "list", circle.hex())
    assert listed.code == 0, listed
    return sorted(json.dumps(i, sort_keys=True) for i in listed.data["ideas"])


def test_partitions_by_stopping_nodes_heal_and_converge(tmp_path: Path) -> None:
    """Mode A: nodes stopped and restarted at random while all five keep writing; after
    healing all five converge to identical heights and documents."""
    print(f"partition seed {SEED}")
    rng = random.Random(SEED)
    cluster = _build(tmp_path, ["127.0.0.1"] * N, [0] * N, [None] * N)
    try:
        _start(n.served for n in cluster.nodes)
        _converge(cluster)
        for phase in range(PHASES):
            down = rng.sample(range(N), rng.randint(1, N - 1))
            print(f"phase {phase}: nodes {sorted(down)} cut off")
            for i in down:
                cluster.nodes[i].served.stop()
            cluster.write_everywhere(phase)
            time.sleep(rng.uniform(0, 1))
            _start(cluster.nodes[i].served for i in down)
        _converge(cluster)
        _settle(cluster)
    finally:
        _stop_all(cluster)


# ---- mode B: network namespaces ------------------------------------------------------------


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=False)


def _netns_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    probe = f"cnprobe{uuid.uuid4().hex[:6]}"
    made = _ip("netns", "add", probe)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    _ip("netns", "del", probe)
    return None


@pytest.fixture
def namespaces() -> Iterator[list[str]]:
    """A hub namespace with a bridge, and N namespaces each with one veth on it, addresses
    10.231.0.1..N/24. Nothing is touched in the host's own namespace."""
    reason = _netns_unavailable()
    if reason is not None:
        pytest.skip(f"mode B skipped: {reason}")
    tag = uuid.uuid4().hex[:6]
    hub, names = f"cnhub{tag}", [f"cn{tag}n{i}" for i in range(N)]
    made: list[str] = []
    try:
        for ns in [hub, *names]:
            assert _ip("netns", "add", ns).returncode == 0
            made.append(ns)
            assert _ip("-n", ns, "link", "set", "lo", "up").returncode == 0
        steps = [
            ("-n", hub, "link", "add", "br0", "type", "bridge"),
            ("-n", hub, "link", "set", "br0", "up"),
        ]
        for i, ns in enumerate(names):
            steps += [
                (
                    "-n",
                    hub,
                    "link",
                    "add",
                    f"v{i}",
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    ns,
                ),
                ("-n", hub, "link", "set", f"v{i}", "master", "br0"),
                ("-n", hub, "link", "set", f"v{i}", "up"),
                ("-n", ns, "addr", "add", f"10.231.0.{i + 1}/24", "dev", "eth0"),
                ("-n", ns, "link", "set", "eth0", "up"),
            ]
        for step in steps:
            done = _ip(*step)
            assert done.returncode == 0, (step, done.stderr)
        yield names
    finally:
        for ns in made:
            _ip("netns", "del", ns)


def _split(names: list[str], side: set[int], cut: bool) -> None:
    """Cut (or restore) every link between ``side`` and the rest, both ways."""
    verb = "add" if cut else "del"
    for i in range(N):
        for j in range(N):
            if (i in side) != (j in side):
                done = _ip("-n", names[i], "route", verb, "blackhole", f"10.231.0.{j + 1}/32")
                assert done.returncode == 0, done.stderr


def test_network_partitions_in_namespaces_heal_and_converge(
    tmp_path: Path, namespaces: list[str]
) -> None:
    """Mode B: the network splits into two sides at random, each side keeps syncing and
    writing; after the split heals all five converge to identical heights and documents."""
    print(f"partition seed {SEED}")
    rng = random.Random(SEED + 1)
    hosts = [f"10.231.0.{i + 1}" for i in range(N)]
    cluster = _build(tmp_path, hosts, [7400] * N, list(namespaces))
    try:
        _start(n.served for n in cluster.nodes)
        _converge(cluster)
        for phase in range(PHASES):
            side = set(rng.sample(range(N), rng.randint(1, N // 2)))
            print(f"phase {phase}: {sorted(side)} split from the rest")
            _split(namespaces, side, cut=True)
            cluster.write_everywhere(phase)
            time.sleep(rng.uniform(0.5, 1.5))  # each side syncs within itself meanwhile
            inside = asyncio.run(_heights(cluster.nodes[min(side)].home))[cluster.circle]
            outside = next(i for i in range(N) if i not in side)
            beyond = asyncio.run(_heights(cluster.nodes[outside].home))[cluster.circle]
            assert inside != beyond, "the split let ops through"  # both sides wrote
            _split(namespaces, side, cut=False)
        _converge(cluster)
        _settle(cluster)
    finally:
        _stop_all(cluster)
