"""Sync between two nodes on loopback, beside raw signature verification in the same run.

Node A holds one circle with N proposals (default 10,000), each with 5 signed positions;
node B is an empty node homed as a host of that circle. A serves from its own process (as
on its own machine); B dials it over a real WebSocket on 127.0.0.1. This measures:
- cold clone: B pulls everything (seconds, ops/s, round trips, bytes each way, wire bytes
  over the ops' own bytes), and the same ops' raw ``crypto_sign_open`` rate;
- churn: A amends 10% of the proposals, then B syncs;
- no change: B syncs again (round trips, bytes);
- no change over 100 small circles (bytes per 100 circles).
Prints one JSON line. ``--small`` uses 1,000 proposals.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from nacl.bindings import crypto_sign_open
from signing import Chain

from node import local
from node.crypto.keys import KeyPair
from node.crypto.ops import SIGN_CONTEXT, decode_op
from node.domain.auth import Level
from node.domain.governance.records import (
    AmendRec,
    PositionRec,
    ProposalRec,
    encode_record,
    record_id,
    version_hash,
)
from node.ingest import ingest_ops
from node.replica import Replica
from node.sync.engine import PeerSync, SyncStats
from node.sync.transport import SyncServer, create_app, dial

BATCH = 1000
TEXT = "Proposal {n}: we will try this for three months and review it."


async def setup_circle(
    replica: Replica, a_node: bytes, b_node: bytes, proposals: int
) -> tuple[list[Chain], list[bytes], list[bytes]]:
    """One circle with 5 write members (one homed on B) and the proposals with positions."""
    keys = [KeyPair.generate() for _ in range(5)]
    circle = await local.create_circle(
        replica, keys[0], name="Bench", creator_name="m0", home=a_node
    )
    for i, key in enumerate(keys[1:], start=1):
        home = b_node if i == 1 else a_node
        await local.add_member(
            replica, keys[0], circle, member=key.public, name=f"m{i}", level=Level.WRITE, home=home
        )
    heights = await replica.heights(circle)
    deps = (await replica.auth_log(circle)).heads()
    chains = [Chain(k, circle, *heights.get(k.public, (0, None)), deps) for k in keys]
    ops: list[bytes] = []
    pids: list[bytes] = []
    for n in range(proposals):
        text = TEXT.format(n=n)
        author = chains[n % 5]
        op = author.record(encode_record(ProposalRec(title=f"P{n}", driver="a need", text=text)))
        ops.append(op.wire())
        pid = record_id(op.op_id)
        pids.append(pid)
        version = version_hash(pid, text)
        for chain in chains:
            body = encode_record(PositionRec(proposal=pid, version=version, position="consent"))
            ops.append(chain.record(body).wire())
    for i in range(0, len(ops), BATCH):
        await ingest_ops(replica, ops[i : i + BATCH])
    return chains, ops, pids


def churn(chains: list[Chain], pids: list[bytes]) -> list[bytes]:
    """Amend every tenth proposal."""
    ops = []
    for n in range(0, len(pids), 10):
        pid = pids[n]
        base = version_hash(pid, TEXT.format(n=n))
        body = encode_record(AmendRec(proposal=pid, base=base, text=f"Proposal {n}: amended."))
        ops.append(chains[n % 5].record(body).wire())
    return ops


async def sync_once(replica: Replica, key: KeyPair, url: str) -> tuple[SyncStats, float]:
    start = time.perf_counter()
    channel = await dial(url)
    stats = await PeerSync(replica, key, channel, initiator=True).run()
    if stats.error:
        raise SystemExit(f"sync failed: {stats.error}")
    return stats, time.perf_counter() - start


def raw_verify_rate(wires: list[bytes]) -> float:
    ops = [decode_op(w) for w in wires]
    start = time.perf_counter()
    for op in ops:
        crypto_sign_open(op.sig + SIGN_CONTEXT + op.header_bytes, op.author)
    return len(ops) / (time.perf_counter() - start)


def figures(stats: SyncStats, seconds: float) -> dict[str, object]:
    return {
        "seconds": round(seconds, 3),
        "ops": stats.ops_received,
        "round_trips": stats.round_trips,
        "bytes_sent": stats.bytes_sent,
        "bytes_received": stats.bytes_received,
    }


async def many_circles(tmp: Path) -> dict[str, object]:
    """No-change sync cost with 100 small circles shared by both nodes."""
    a_key, b_key = KeyPair.generate(), KeyPair.generate()
    member = KeyPair.generate()
    async with Replica.open(tmp / "ma.db") as ra, Replica.open(tmp / "mb.db") as rb:
        other = KeyPair.generate()
        for i in range(100):
            circle = await local.create_circle(
                ra, member, name=f"c{i}", creator_name="m", home=a_key.public
            )
            await local.add_member(
                ra,
                member,
                circle,
                member=other.public,
                name="o",
                level=Level.WRITE,
                home=b_key.public,
            )
        async with SyncServer(create_app(ra, a_key), "127.0.0.1", 0) as server:
            await sync_once(rb, b_key, server.url)
            stats, seconds = await sync_once(rb, b_key, server.url)
    return {
        "circles": 100,
        **figures(stats, seconds),
        "bytes_both_ways": stats.bytes_sent + stats.bytes_received,
    }


async def serve(path: str, seed_hex: str) -> None:
    """Node A's process: serve its store until terminated; prints the URL first."""
    key = KeyPair.from_seed(bytes.fromhex(seed_hex))
    async with (
        Replica.open(Path(path)) as replica,
        SyncServer(create_app(replica, key), "127.0.0.1", 0) as server,
    ):
        print(server.url, flush=True)
        await asyncio.Event().wait()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--proposals", type=int, default=10_000)
    parser.add_argument("--small", action="store_true", help="1,000 proposals")
    parser.add_argument("--serve", nargs=2, metavar=("STORE", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        await serve(*args.serve)
        return
    proposals = 1_000 if args.small else args.proposals
    a_key, b_key = KeyPair.generate(), KeyPair.generate()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        async with Replica.open(tmp / "a.db") as ra:
            chains, wires, pids = await setup_circle(ra, a_key.public, b_key.public, proposals)
        ops_bytes = sum(len(w) for w in wires)
        raw = raw_verify_rate(wires)
        # node A serves from its own process, as it would on its own machine
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--serve",
            str(tmp / "a.db"),
            a_key.seed.hex(),
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert server.stdout is not None
            url = (await server.stdout.readline()).decode().strip()
            async with Replica.open(tmp / "b.db") as rb:
                cold, cold_s = await sync_once(rb, b_key, url)
                churn_ops = churn(chains, pids)
                async with Replica.open(tmp / "a.db") as ra:  # a second writer on A's file
                    await ingest_ops(ra, churn_ops)
                changed, changed_s = await sync_once(rb, b_key, url)
                quiet, quiet_s = await sync_once(rb, b_key, url)
        finally:
            server.terminate()
            await server.wait()
        many = await many_circles(tmp)
    print(
        json.dumps(
            {
                "bench": "sync",
                "proposals": proposals,
                "ops": len(wires),
                "raw_verify_ops_per_s": round(raw),
                "cold_clone": {
                    **figures(cold, cold_s),
                    "ops_per_s": round(cold.ops_received / cold_s),
                    "ratio_to_raw_verify": round(cold.ops_received / cold_s / raw, 3),
                    "wire_over_ops_bytes": round(cold.bytes_received / ops_bytes, 3),
                },
                "churn_10pct": {
                    **figures(changed, changed_s),
                    "wire_over_ops_bytes": round(
                        changed.bytes_received / max(1, sum(len(w) for w in churn_ops)), 3
                    ),
                    "resent_ops": changed.ops_received - len(churn_ops),
                },
                "no_change": figures(quiet, quiet_s),
                "no_change_100_circles": many,
                "targets": {
                    "no_change_round_trips": 1,
                    "no_change_bytes_per_100_circles": 2048,
                    "wire_over_ops_bytes": 1.3,
                    "cold_clone_ratio_to_raw_verify": 0.5,
                },
                "python": platform.python_version(),
                "machine": platform.machine(),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
