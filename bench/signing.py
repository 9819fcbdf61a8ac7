"""Signing ops in bulk for benchmarks, without the local API's commit per op."""

from __future__ import annotations

import time

from node.crypto.keys import KeyPair
from node.crypto.ops import Op, OpKind, make_op


class Chain:
    """Signs a member's ops in order (seq, backlink) without the local API's per-op commit."""

    def __init__(
        self, key: KeyPair, circle: bytes, seq: int, head: bytes | None, deps: list[bytes]
    ):
        self.key, self.circle, self.seq, self.head, self.deps = key, circle, seq, head, deps

    def record(self, body: bytes) -> Op:
        op = make_op(
            self.key,
            kind=OpKind.RECORD,
            circle=self.circle,
            seq=self.seq + 1,
            backlink=self.head,
            deps=self.deps,
            body=body,
            ts=int(time.time()),
        )
        self.seq, self.head = op.seq, op.op_id
        return op
