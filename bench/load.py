"""Load: a top-circle node (a real `serve` subprocess) with 50 peer nodes syncing at once
and a steady stream of writes.

The top node T holds one circle hosted by every peer. The 50 peers run in this process,
each a real ``NodeService`` with its own node key and its own SQLite store, dialing T over
a WebSocket on 127.0.0.1 and staying in live sync. Five writer members write notes at a
steady rate, each on its own peer's store; the peer pushes the op to T, which pushes it to
the other 49. Measured:

- ``initial_sync_s``: all 50 peers pull the circle at once;
- ``writes_per_s`` and ``deliveries_per_s`` (ops stored on peers, all peers summed);
- propagation latency from the write on its peer to its arrival on each other peer
  (``p50_ms``, ``p99_ms``, ``max_ms``), and to the last peer (``p99_all_peers_ms``);
- ``top_rss_mb``: T's resident memory at start, peak and end;
- ``max_backlog_ops``: the most ops written but not yet on some peer, sampled every
  100 ms (a queue that grew without bound would show here), and ``final_backlog_ops``;
- ``errors``: failed services, peers whose last contact was an error, ERROR lines or
  tracebacks in T's log, and ops that never arrived: must be 0;
- the baseline in the same run: raw ``crypto_sign_open`` verifications per second.

Prints one JSON line; exits 1 if ``errors`` is not 0. ``--small``: 20 s of writes at 20
ops/s (about a minute in all). Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import multiprocessing
import os
import platform
import queue
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from nacl.bindings import crypto_sign_open
from signing import Chain

from node import local
from node.crypto.keys import KeyPair
from node.crypto.ops import SIGN_CONTEXT, decode_op
from node.domain.auth import Level, SetHost
from node.ingest import ingest_ops
from node.replica import Replica
from node.service import NodeService, ServiceConfig
from node.store.peers import PeerBook
from node.store.store import OpRow

WRITERS = 5
ENV = {
    "CIRCLE_NODE_PASSPHRASE": "load bench",
    "CIRCLE_NODE_FAST_KDF": "1",
    "CIRCLE_NODE_LOG_LEVEL": "warning",
}


@dataclass
class Peer:
    index: int
    key: KeyPair
    replica: Replica
    service: NodeService | None = None
    received: int = 0


def _hook(peer: Peer, arrivals: list[tuple[bytes, int, float]]) -> None:
    """Record the wall-clock time each op reaches ``peer``'s store (where it is inserted)."""
    store = peer.replica.store
    insert = store.insert_ops

    async def counted(rows: list[OpRow]) -> None:
        now = time.time()
        for row in rows:
            arrivals.append((row.op_id, peer.index, now))
        peer.received += len(rows)
        await insert(rows)

    store.insert_ops = counted  # type: ignore[method-assign]


def _cli(home: Path, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "node.cli", "--home", str(home), *args, "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
        check=True,
    )
    data: dict[str, object] = json.loads(done.stdout)
    return data


@dataclass(frozen=True)
class Plan:
    """What every client process needs to know (picklable)."""

    url: str
    root: Path
    circle: bytes
    deps: list[bytes]
    initial: int  # ops in the circle before the writes
    peer_seeds: list[bytes]
    writer_seeds: list[bytes]
    origins: list[int]  # the peer each writer writes on
    per_writer: int  # writes by each writer
    interval: float  # seconds between two writes of one writer

    @property
    def total(self) -> int:
        return self.per_writer * len(self.writer_seeds)


async def _top_circle(
    store: Path, top: bytes, plan_peers: list[bytes]
) -> tuple[bytes, list[bytes], int, list[bytes]]:
    """The circle on T's store: founder, five writers homed on peers spread over the 50,
    every peer a host. (circle, deps for the writers, ops so far, writer seeds)."""
    founder = KeyPair.generate()
    writers = [KeyPair.generate() for _ in range(WRITERS)]
    async with Replica.open(store) as replica:
        circle = await local.create_circle(
            replica, founder, name="Top", creator_name="founder", home=top
        )
        for i, key in enumerate(writers):
            home = KeyPair.from_seed(plan_peers[_origin(i, len(plan_peers))]).public
            await local.add_member(
                replica,
                founder,
                circle,
                member=key.public,
                name=f"w{i}",
                level=Level.WRITE,
                home=home,
            )
        for seed in plan_peers:
            node = KeyPair.from_seed(seed).public
            await local.author_auth(replica, founder, circle, SetHost(node, True))
        deps = (await replica.auth_log(circle)).heads()
        count = await replica.store.count_ops(circle)
        return circle, deps, count, [k.seed for k in writers]


def _origin(writer: int, peers: int) -> int:
    return (writer * max(1, peers // WRITERS)) % peers


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ---- one client process: some of the peers ------------------------------------------------


def client(plan: Plan, mine: list[int], synced: Any, go: Any, start_at: Any, out: Any) -> None:
    """Run peers ``mine`` (and the writers homed on them); put the raw figures on ``out``."""
    out.put(asyncio.run(_client(plan, mine, synced, go, start_at)))


async def _client(
    plan: Plan, mine: list[int], synced: Any, go: Any, start_at: Any
) -> dict[str, Any]:
    arrivals: list[tuple[bytes, int, float]] = []
    written: list[tuple[bytes, int, float]] = []
    config = ServiceConfig(listen=None, backoff_base=0.2, backoff_cap=2.0)
    async with AsyncExitStack() as stack:
        peers = []
        for i in mine:
            replica = await stack.enter_async_context(Replica.open(plan.root / f"peer{i}.db"))
            peer = Peer(i, KeyPair.from_seed(plan.peer_seeds[i]), replica)
            await PeerBook(replica.store).add(plan.url, name="top")
            _hook(peer, arrivals)
            peers.append(peer)
        began = time.perf_counter()
        for peer in peers:  # every peer dials T at once
            peer.service = await stack.enter_async_context(
                NodeService(peer.replica, peer.key, config)
            )
        while min(p.received for p in peers) < plan.initial:
            await asyncio.sleep(0.05)
            if time.perf_counter() - began > 180:
                raise SystemExit("the initial sync did not finish in 180 s")
        initial_sync = time.perf_counter() - began
        arrivals.clear()
        for peer in peers:
            peer.received = 0
        await asyncio.to_thread(synced.wait)
        await asyncio.to_thread(go.wait)
        by_index = {p.index: p for p in peers}
        writers = [
            (w, Chain(KeyPair.from_seed(seed), plan.circle, 0, None, plan.deps), by_index[o])
            for w, (seed, o) in enumerate(zip(plan.writer_seeds, plan.origins, strict=True))
            if o in by_index
        ]
        await asyncio.gather(
            *(_write(plan, w, c, p, start_at.value, written) for w, c, p in writers)
        )
        deadline = time.perf_counter() + 90
        while time.perf_counter() < deadline:  # poll the counters the hooks bump
            if min(p.received for p in peers) >= plan.total:
                break
            await asyncio.sleep(0.05)
        failed = sum(1 for p in peers if p.service is not None and p.service.failed.is_set())
        contacts = [await PeerBook(p.replica.store).get(plan.url) for p in peers]
        peer_errors = sum(1 for c in contacts if c is None or c.last_error is not None)
    return {
        "arrivals": arrivals,
        "written": written,
        "initial_sync": initial_sync,
        "failed": failed,
        "peer_errors": peer_errors,
        "short": sum(max(0, plan.total - p.received) for p in peers),
    }


async def _write(
    plan: Plan, w: int, chain: Chain, origin: Peer, start: float, written: list[Any]
) -> None:
    """Writer ``w``'s steady stream: a note every ``plan.interval`` seconds on its peer."""
    for n in range(plan.per_writer):
        await asyncio.sleep(max(0.0, start + (n + w / WRITERS) * plan.interval - time.time()))
        op = chain.record(msgspec.msgpack.encode({"t": "note", "text": f"w{w} note {n}"}))
        written.append((op.op_id, origin.index, time.time()))
        report = await ingest_ops(origin.replica, [op.wire()])
        assert report.added == 1, report


# ---- the run ------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _backlog(written: list[float], per_peer: dict[int, list[float]], step: float = 0.1) -> int:
    """The most ops written but not yet stored on some peer, sampled every ``step`` s."""
    if not written:
        return 0
    times = sorted(written)
    arrived = {peer: sorted(ts) for peer, ts in per_peer.items()}
    worst, t = 0, times[0]
    end = max([times[-1], *(ts[-1] for ts in arrived.values() if ts)])
    while t <= end + step:
        made = bisect.bisect_right(times, t)
        worst = max(worst, max(made - bisect.bisect_right(ts, t) for ts in arrived.values()))
        t += step
    return worst


def run(args: argparse.Namespace, root: Path) -> dict[str, object]:
    top_home = root / "top"
    top = bytes.fromhex(str(_cli(top_home, "init", "--name", "top")["node"]))
    peer_seeds = [KeyPair.generate().seed for _ in range(args.peers)]
    circle, deps, initial, writer_seeds = asyncio.run(
        _top_circle(top_home / "store.db", top, peer_seeds)
    )
    per_writer = max(1, int(args.rate * args.seconds / WRITERS))
    port = _free_port()
    plan = Plan(
        f"http://127.0.0.1:{port}",
        root,
        circle,
        deps,
        initial,
        peer_seeds,
        writer_seeds,
        [_origin(w, args.peers) for w in range(WRITERS)],
        per_writer,
        WRITERS / args.rate,
    )
    log_path = root / "top.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "node.cli", "--home", str(top_home), "serve", "--json"]
            + ["--listen", f"127.0.0.1:{port}"],
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, **ENV},
        )
    try:
        assert proc.stdout is not None
        json.loads(proc.stdout.readline())  # it listens
        return _drive(args, plan, proc, log_path)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _drive(
    args: argparse.Namespace, plan: Plan, proc: subprocess.Popen[bytes], log_path: Path
) -> dict[str, object]:
    ctx = multiprocessing.get_context("spawn")
    clients = max(1, min(args.clients, args.peers))
    synced, go = ctx.Barrier(clients + 1), ctx.Barrier(clients + 1)
    start_at, out = ctx.Value("d", 0.0), ctx.Queue()
    slices = [list(range(args.peers))[k::clients] for k in range(clients)]
    procs = [
        ctx.Process(target=client, args=(plan, mine, synced, go, start_at, out)) for mine in slices
    ]
    rss = [_rss_mb(proc.pid)]
    for p in procs:
        p.start()
    synced.wait(timeout=240)
    start_at.value = time.time() + 0.5
    go.wait(timeout=30)
    cpu_before, wall_before = _cpu_s(proc.pid), time.time()
    results: list[dict[str, Any]] = []
    while len(results) < clients:
        rss.append(_rss_mb(proc.pid))
        try:
            results.append(out.get(timeout=0.1))
        except queue.Empty:
            if not any(p.is_alive() for p in procs) and out.empty():
                raise SystemExit("a client process died") from None
    cpu = (_cpu_s(proc.pid) - cpu_before) / max(1e-9, time.time() - wall_before)
    for p in procs:
        p.join(timeout=30)
    rss.append(_rss_mb(proc.pid))
    figures = _figures(plan, results, rss, log_path, clients)
    figures["top_cpu_percent"] = round(100 * cpu, 1)  # of one core, while writing and draining
    return figures


def _figures(
    plan: Plan, results: list[dict[str, Any]], rss: list[float], log_path: Path, clients: int
) -> dict[str, object]:
    written = {op: (origin, t) for r in results for op, origin, t in r["written"]}
    latencies: list[float] = []
    last: dict[bytes, float] = {}
    per_peer: dict[int, list[float]] = {}
    for r in results:
        for op_id, index, at in r["arrivals"]:
            per_peer.setdefault(index, []).append(at)
            origin, t = written.get(op_id, (index, at))
            if origin == index:
                continue
            latencies.append((at - t) * 1000)
            last[op_id] = max(last.get(op_id, 0.0), (at - t) * 1000)
    times = [t for _origin, t in written.values()]
    span = max(times) - min(times) if len(times) > 1 else 1.0
    ends = [max(ts) for ts in per_peer.values() if ts]
    drained = (max(ends) - min(times)) if ends and times else span
    log_errors = sum(
        1 for line in log_path.read_text().splitlines() if " ERROR " in line or "Traceback" in line
    )
    failed = sum(r["failed"] for r in results)
    peer_errors = sum(r["peer_errors"] for r in results)
    short = sum(r["short"] for r in results)
    wires_rate = _raw_verify_rate(plan)
    return {
        "bench": "load",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "peers": len(plan.peer_seeds),
        "client_processes": clients,
        "circle_ops_at_start": plan.initial,
        "initial_sync_s": round(max(r["initial_sync"] for r in results), 3),
        "writes": len(written),
        "writes_per_s": round(len(written) / span, 1) if span else None,
        "deliveries_per_s": round(len(latencies) / drained, 1) if drained else None,
        "latency_ms": {
            "p50": round(_percentile(latencies, 0.5), 1),
            "p99": round(_percentile(latencies, 0.99), 1),
            "max": round(max(latencies, default=0.0), 1),
            "p99_to_last_peer": round(_percentile(list(last.values()), 0.99), 1),
        },
        "top_rss_mb": {
            "start": round(rss[0], 1),
            "peak": round(max(rss), 1),
            "end": round(rss[-1], 1),
        },
        "max_backlog_ops": _backlog(times, per_peer),
        "final_backlog_ops": short,
        "errors": {
            "failed_services": failed,
            "peer_errors": peer_errors,
            "top_log_errors": log_errors,
            "undelivered": short,
            "total": failed + peer_errors + log_errors + short,
        },
        "baseline_raw_verify_per_s": round(wires_rate, 1),
    }


def _raw_verify_rate(plan: Plan) -> float:
    chain = Chain(KeyPair.generate(), plan.circle, 0, None, plan.deps)
    ops = [decode_op(chain.record(b"\x81\xa1t\xa4note").wire()) for _ in range(3000)]
    start = time.perf_counter()
    for op in ops:
        crypto_sign_open(op.sig + SIGN_CONTEXT + op.header_bytes, op.author)
    return len(ops) / (time.perf_counter() - start)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, default=50)
    parser.add_argument("--rate", type=float, default=50.0, help="writes per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to write")
    parser.add_argument("--clients", type=int, default=5, help="client processes for peers")
    parser.add_argument("--small", action="store_true", help="20 s at 20 writes/s")
    args = parser.parse_args()
    if args.small:
        args.rate, args.seconds = 20.0, 20.0
    with tempfile.TemporaryDirectory(prefix="cn-load-") as tmp:
        result = run(args, Path(tmp))
    print(json.dumps(result))
    errors = result["errors"]
    assert isinstance(errors, dict)
    sys.exit(1 if errors["total"] else 0)


if __name__ == "__main__":
    main()
