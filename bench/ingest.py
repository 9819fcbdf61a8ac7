"""Ingest throughput beside raw libsodium signature verification, measured in one run.

Builds a circle with a few members, signs N ops (half ``y`` updates to a shared doc, half
``record`` positions), then times:
- ``raw_verify``: ``crypto_sign_open`` over the same signed bytes (the physical floor);
- ``decode_verify``: our decode + signature + body hash, no storage;
- ``ingest``: the full pipeline (verify, authorize, ycid binding, store in SQLite, apply to
  the pycrdt doc) into a fresh store, in batches.
Prints one JSON line. Usage: ``python bench/ingest.py [--ops N] [--batch B]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import msgspec
import pycrdt
from nacl.bindings import crypto_sign_open

from node import local
from node.crypto.keys import KeyPair
from node.crypto.ops import SIGN_CONTEXT, Op, OpKind, decode_op, encode_wire, make_op, verify_op
from node.domain.auth import Level
from node.domain.documents import doc_id
from node.ingest import ingest_ops
from node.replica import Replica


async def build_ops(path: Path, n_ops: int, n_members: int = 4) -> tuple[list[bytes], list[bytes]]:
    """Return (setup wires, workload wires), all honestly signed."""
    creator = KeyPair.generate()
    members = [KeyPair.generate() for _ in range(n_members)]
    home = KeyPair.generate().public
    async with Replica.open(path) as replica:
        circle = await local.create_circle(
            replica, creator, name="Bench", creator_name="c", home=home
        )
        for i, member in enumerate(members):
            await local.add_member(
                replica,
                creator,
                circle,
                member=member.public,
                name=f"m{i}",
                level=Level.WRITE,
                home=home,
            )
        state = await replica.auth_state(circle)
        heights = await replica.heights(circle)
        deps = (await replica.auth_log(circle)).heads()
        setup = [encode_wire(r.header, r.sig, r.body) for r in await replica.store.all_ops()]
    doc = doc_id(circle, "bench")
    docs = {m.public: pycrdt.Doc(client_id=state.ycid_of(m.public)) for m in members}
    chain = {m.public: heights.get(m.public, (0, None)) for m in members}
    workload: list[bytes] = []
    for i in range(n_ops):
        member = members[i % n_members]
        seq, head = chain[member.public]
        if i % 2 == 0:
            ydoc = docs[member.public]
            before = ydoc.get_state()
            ydoc.get("items", type=pycrdt.Map)[f"k{i}"] = f"value {i}"
            body = bytes(ydoc.get_update(before))
            op = make_op(
                member,
                kind=OpKind.Y,
                circle=circle,
                seq=seq + 1,
                backlink=head,
                deps=deps,
                body=body,
                doc=doc,
                ycid=state.ycid_of(member.public) or 0,
            )
        else:
            body = msgspec.msgpack.encode(
                {"t": "position", "proposal": os.urandom(16), "position": "consent"}
            )
            op = make_op(
                member,
                kind=OpKind.RECORD,
                circle=circle,
                seq=seq + 1,
                backlink=head,
                deps=deps,
                body=body,
            )
        chain[member.public] = (seq + 1, op.op_id)
        workload.append(op.wire())
    return setup, workload


def time_raw_verify(ops: list[Op]) -> float:
    signed = [(op.sig + SIGN_CONTEXT + op.header_bytes, op.header.author) for op in ops]
    start = time.perf_counter()
    for message, public in signed:
        crypto_sign_open(message, public)
    return len(signed) / (time.perf_counter() - start)


def time_decode_verify(wires: list[bytes]) -> float:
    start = time.perf_counter()
    for wire in wires:
        verify_op(decode_op(wire))
    return len(wires) / (time.perf_counter() - start)


async def time_ingest(path: Path, setup: list[bytes], wires: list[bytes], batch: int) -> float:
    async with Replica.open(path) as replica:
        await ingest_ops(replica, setup)
        start = time.perf_counter()
        added = 0
        for i in range(0, len(wires), batch):
            report = await ingest_ops(replica, wires[i : i + batch])
            added += report.added
        elapsed = time.perf_counter() - start
        if added != len(wires):
            raise SystemExit(f"ingest added {added} of {len(wires)} ops")
    return len(wires) / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup, wires = await build_ops(Path(tmp) / "source.db", args.ops)
        ops = [decode_op(w) for w in wires]
        raw = max(time_raw_verify(ops) for _ in range(3))
        decode = max(time_decode_verify(wires) for _ in range(3))
        ingest = await time_ingest(Path(tmp) / "target.db", setup, wires, args.batch)
    print(
        json.dumps(
            {
                "bench": "ingest",
                "ops": len(wires),
                "batch": args.batch,
                "raw_verify_ops_per_s": round(raw),
                "decode_verify_ops_per_s": round(decode),
                "ingest_ops_per_s": round(ingest),
                "ratio_ingest_to_raw": round(ingest / raw, 3),
                "target_ratio": 0.6,
                "python": platform.python_version(),
                "machine": platform.machine(),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
