"""circle-node's side of the comparison: the same driver commands as the peers' drivers.

    seed WORKLOAD STORE          build node A's store: 20 circles, every proposal a signed
                                 proposal record plus its 5 members' signed positions
    serve STORE                  node A: serve (the real NodeService, live push on); prints
                                 ``READY <port>``, then on stdin ``edit FILE`` (JSON list of
                                 [index, text]: amend those proposals) -> ``OK``; ``stop``
    sync STORE PORT              node B: one sync round with the node at 127.0.0.1:PORT
    live STORE PORT              node B: a live session; prints ``SYNCED``, then on stdin
                                 ``expect INDEX TEXT`` -> ``SEEN`` once that text is stored
    load STORE                   restart: open the store and fold every circle's proposals

``--no-verify`` (sync, live) skips the Ed25519 check inside this benchmark process only, to
show what verification costs; it is not a product setting. Results are one JSON line.
"""

# A benchmark driver reads its few small files at startup, off any measured path.
# ruff: noqa: ASYNC240, ASYNC110

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH / "compare"))

from signing import Chain  # noqa: E402
from workload import Workload  # noqa: E402

from node import governance, local  # noqa: E402
from node.crypto.keys import KeyPair  # noqa: E402
from node.domain.auth import Level  # noqa: E402
from node.domain.governance.records import (  # noqa: E402
    AmendRec,
    PositionRec,
    ProposalRec,
    encode_record,
    record_id,
    version_hash,
)
from node.ingest import ingest_ops  # noqa: E402
from node.replica import Replica  # noqa: E402
from node.service import NodeService, ServiceConfig  # noqa: E402
from node.sync.engine import PeerSync  # noqa: E402
from node.sync.protocol import Ops  # noqa: E402
from node.sync.transport import dial  # noqa: E402

BATCH = 1000
DB = "node.db"
META = "meta.json"


def key(seed: int, name: str) -> KeyPair:
    return KeyPair.from_seed(hashlib.blake2b(f"{seed}/{name}".encode(), digest_size=32).digest())


def node_keys(seed: int) -> tuple[KeyPair, KeyPair]:
    return key(seed, "node-a"), key(seed, "node-b")


def disable_verification() -> None:
    """Benchmark only: skip the Ed25519 signature check (decoding, body hash and every
    other ingest rule still run)."""
    import node.ingest_report as report
    from node.crypto.ops import Op, blake2b_256

    def verify_hash_only(op: Op) -> None:
        if op.header.body_len != len(op.body) or blake2b_256(op.body) != op.header.body_hash:
            raise report.SignatureError("op body does not match its header")

    report.verify_op = verify_hash_only  # type: ignore[attr-defined]


async def seed_store(workload: Workload, store: Path) -> dict[str, Any]:
    start = time.perf_counter()
    a_key, b_key = node_keys(workload.seed)
    store.mkdir(parents=True, exist_ok=True)
    meta: list[list[str]] = [[] for _ in workload.proposals]
    async with Replica.open(store / DB) as replica:
        for c in range(workload.circles):
            names = workload.members[c]
            keys = [key(workload.seed, name) for name in names]
            circle = await local.create_circle(
                replica, keys[0], name=f"circle {c}", creator_name=names[0], home=a_key.public
            )
            for i, k in enumerate(keys[1:], start=1):
                home = b_key.public if i == 1 else a_key.public  # so node B hosts it
                await local.add_member(
                    replica,
                    keys[0],
                    circle,
                    member=k.public,
                    name=names[i],
                    level=Level.WRITE,
                    home=home,
                )
            heights = await replica.heights(circle)
            deps = (await replica.auth_log(circle)).heads()
            chains = {
                name: Chain(k, circle, *heights.get(k.public, (0, None)), deps)
                for name, k in zip(names, keys, strict=True)
            }
            wires: list[bytes] = []
            for p in workload.proposals:
                if p.circle != c:
                    continue
                writer = names[p.index % len(names)]
                author = chains[writer]
                body = ProposalRec(title=p.title[:200], driver=p.driver, text=p.text)
                op = author.record(encode_record(body))
                wires.append(op.wire())
                pid = record_id(op.op_id)
                version = version_hash(pid, p.text)
                for name, position in p.positions.items():
                    rec = PositionRec(proposal=pid, version=version, position=position)  # type: ignore[arg-type]
                    wires.append(chains[name].record(encode_record(rec)).wire())
                meta[p.index] = [circle.hex(), pid.hex(), p.text, writer]
            for i in range(0, len(wires), BATCH):
                report = await ingest_ops(replica, wires[i : i + BATCH])
                if report.rejected:
                    raise SystemExit(f"seeding rejected ops: {report.reasons}")
    (store / META).write_text(json.dumps({"seed": workload.seed, "proposals": meta}))
    return {"seconds": time.perf_counter() - start, "docs": len(workload.proposals)}


async def amend(replica: Replica, store: Path, edits: list[tuple[int, str]]) -> None:
    """Node A's members amend these proposals (each by the member who wrote it)."""
    meta = json.loads((store / META).read_text())
    seed, rows = meta["seed"], meta["proposals"]
    wires = []
    chains: dict[tuple[bytes, bytes], Chain] = {}
    for index, text in edits:
        circle_hex, pid_hex, old, writer = rows[index]
        circle, pid = bytes.fromhex(circle_hex), bytes.fromhex(pid_hex)
        author = key(seed, writer)
        chain = chains.get((circle, author.public))
        if chain is None:
            heights = await replica.heights(circle)
            deps = (await replica.auth_log(circle)).heads()
            chain = Chain(author, circle, *heights.get(author.public, (0, None)), deps)
            chains[(circle, author.public)] = chain
        body = AmendRec(proposal=pid, base=version_hash(pid, old), text=text)
        wires.append(chain.record(encode_record(body)).wire())
        rows[index][2] = text
    report = await ingest_ops(replica, wires)
    if report.rejected:
        raise SystemExit(f"amend rejected: {report.reasons}")
    (store / META).write_text(json.dumps(meta))


async def lines() -> Any:
    while line := await asyncio.to_thread(sys.stdin.readline):
        yield line.strip()


async def serve(store: Path) -> None:
    a_key, _ = node_keys(json.loads((store / META).read_text())["seed"])
    async with Replica.open(store / DB) as replica:
        config = ServiceConfig(listen="127.0.0.1:0", poll_interval=1.0)
        async with NodeService(replica, a_key, config) as service:
            assert service.server is not None
            print(f"READY {service.server.port}", flush=True)
            async for line in lines():
                if line.startswith("edit "):
                    edits = json.loads(Path(line[5:]).read_text())
                    await amend(replica, store, [(int(i), str(t)) for i, t in edits])
                    print("OK", flush=True)
                elif line == "stop":
                    break


async def sync(store: Path, port: int, seed: int) -> dict[str, Any]:
    _, b_key = node_keys(seed)
    start = time.perf_counter()
    async with Replica.open(store / DB) as replica:
        channel = await dial(f"http://127.0.0.1:{port}")
        stats = await PeerSync(replica, b_key, channel, initiator=True).run()
    if stats.error:
        raise SystemExit(f"sync failed: {stats.error}")
    return {
        "seconds": time.perf_counter() - start,
        "ops_received": stats.ops_received,
        "protocol_round_trips": stats.round_trips,
    }


class Watching(PeerSync):
    """A live session that tells the benchmark when received ops are stored."""

    stored = asyncio.Event()
    bodies: list[bytes] = []

    async def _on_ops(self, ops: Ops) -> None:
        await super()._on_ops(ops)
        if ops.live:
            self.bodies.extend(ops.ops)
            self.stored.set()


async def live(store: Path, port: int, seed: int) -> None:
    _, b_key = node_keys(seed)
    async with Replica.open(store / DB) as replica:
        channel = await dial(f"http://127.0.0.1:{port}")
        session = Watching(replica, b_key, channel, initiator=True, live=True)
        task = asyncio.create_task(session.run())
        synced = asyncio.create_task(session.synced.wait())
        await asyncio.wait({task, synced}, return_when=asyncio.FIRST_COMPLETED)
        if not session.synced.is_set():
            raise SystemExit(f"live session ended before syncing: {(await task).error}")
        print("SYNCED", flush=True)
        async for line in lines():
            if not line.startswith("expect "):
                break
            want = line.split(" ", 2)[2].encode()
            while not any(want in wire for wire in session.bodies):
                session.stored.clear()
                await session.stored.wait()
            session.bodies.clear()
            print("SEEN", flush=True)
        await session.close("done")
        await task


async def load(store: Path) -> dict[str, Any]:
    start = time.perf_counter()
    proposals = 0
    async with Replica.open(store / DB) as replica:
        for circle in await replica.circles():
            proposals += len((await governance.load(replica, circle)).gov.proposals)
    return {"seconds": time.perf_counter() - start, "docs": proposals}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["seed", "serve", "sync", "live", "load"])
    parser.add_argument("args", nargs="*")
    parser.add_argument("--no-verify", action="store_true")
    parser.add_argument("--seed", type=int, default=7, help="the workload's seed (node keys)")
    args = parser.parse_args()
    if args.no_verify:
        disable_verification()
    result: dict[str, Any] | None = None
    if args.command == "seed":
        workload = Workload.from_json(Path(args.args[0]).read_text())
        result = await seed_store(workload, Path(args.args[1]))
    elif args.command == "serve":
        await serve(Path(args.args[0]))
    elif args.command == "sync":
        result = await sync(Path(args.args[0]), int(args.args[1]), args.seed)
    elif args.command == "live":
        await live(Path(args.args[0]), int(args.args[1]), args.seed)
    else:
        result = await load(Path(args.args[0]))
    if result is not None:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
