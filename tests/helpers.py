"""Builders for raw signed ops, to craft honest and hostile histories without ``node.local``.

``Author`` signs ops and tracks its own chain (seq, head); every builder takes explicit
``deps`` so a test can cite stale auth heads (a partitioned writer) or none at all.
``YWriter`` makes pycrdt updates under a chosen Yjs client id, continuing its clock.
The store helpers snapshot every table so a test can prove that a rejection changed nothing.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pycrdt

from node.crypto.keys import KeyPair
from node.crypto.ops import Op, OpKind, encode_wire, make_op
from node.domain.auth import Genesis, Level, SetDevice, SetHost, SetMember, encode_body
from node.ingest import IngestReport, ingest_ops
from node.replica import Replica
from node.store.store import Store

TABLES = (
    "ops",
    "heights",
    "pending",
    "evidence",
    "frozen",
    "checkpoints",
    "peers",
    "meta",
    "provisional",
)
HOME = bytes(range(32))
_CHAIN: Any = object()  # "use the author's current head" for ``backlink``


def new_ycid() -> int:
    return secrets.randbelow(2**53 - 2) + 1


@dataclass
class Author:
    """A key that signs ops and remembers its own chain in one circle."""

    key: KeyPair = field(default_factory=KeyPair.generate)
    ycid: int = field(default_factory=new_ycid)
    seq: int = 0
    head: bytes | None = None

    @property
    def public(self) -> bytes:
        return self.key.public

    def make(
        self,
        kind: OpKind,
        circle: bytes,
        body: bytes,
        deps: Iterable[bytes] = (),
        *,
        doc: bytes | None = None,
        ycid: int | None = None,
        seq: int | None = None,
        backlink: bytes | None = _CHAIN,
        ts: int = 0,
        advance: bool = True,
    ) -> Op:
        """Sign an op; by default the next one in this author's chain (and advance it)."""
        if ycid is None:
            ycid = self.ycid if kind in (OpKind.Y, OpKind.GENESIS) else 0
        op = make_op(
            self.key,
            kind=kind,
            circle=circle,
            seq=self.seq + 1 if seq is None else seq,
            backlink=self.head if backlink is _CHAIN else backlink,
            body=body,
            deps=list(deps),
            doc=doc,
            ycid=ycid,
            ts=ts,
        )
        if advance:
            self.seq, self.head = op.seq, op.op_id
        return op

    def genesis(self, name: str = "circle", home: bytes = HOME) -> Op:
        body = Genesis(
            name=name, creator_name="founder", home=home, ycid=self.ycid, nonce=os.urandom(16)
        )
        return self.make(OpKind.GENESIS, bytes(16), encode_body(body))

    def set_member(
        self,
        circle: bytes,
        member: Author,
        level: Level,
        deps: Iterable[bytes],
        *,
        cuts: dict[bytes, int] | None = None,
        home: bytes | None = HOME,
        register: bool = True,
        **kw: Any,
    ) -> Op:
        """An auth op setting ``member``'s level (registering its ycid when ``register``)."""
        body = SetMember(
            member=member.public,
            level=level,
            name="member",
            cuts=cuts or {},
            home=home,
            ycid=member.ycid if register else None,
        )
        return self.make(OpKind.AUTH, circle, encode_body(body), deps, **kw)

    def set_device(
        self,
        circle: bytes,
        device: Author,
        deps: Iterable[bytes],
        *,
        active: bool = True,
        **kw: Any,
    ) -> Op:
        body = SetDevice(device=device.public, ycid=device.ycid, active=active)
        return self.make(OpKind.AUTH, circle, encode_body(body), deps, **kw)

    def set_host(
        self, circle: bytes, node: bytes, deps: Iterable[bytes], hosting: bool, **kw: Any
    ) -> Op:
        body = encode_body(SetHost(node=node, hosting=hosting))
        return self.make(OpKind.AUTH, circle, body, deps, **kw)

    def record(
        self,
        circle: bytes,
        deps: Iterable[bytes],
        t: str = "decision",
        *,
        fields: dict[str, Any] | None = None,
        **kw: Any,
    ) -> Op:
        """A record op with body ``{"t": t, **fields}``."""
        body = msgspec.msgpack.encode({"t": t, **(fields or {})})
        return self.make(OpKind.RECORD, circle, body, deps, **kw)

    def y(self, circle: bytes, doc: bytes, update: bytes, deps: Iterable[bytes], **kw: Any) -> Op:
        return self.make(OpKind.Y, circle, update, deps, doc=doc, **kw)


class YWriter:
    """One member-device writing one doc: pycrdt updates under ``ycid``, clock continuing."""

    def __init__(self, ycid: int) -> None:
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=ycid)

    def edit(self, change: Callable[[pycrdt.Doc[Any]], None]) -> bytes:
        before = self.doc.get_state()
        change(self.doc)
        return bytes(self.doc.get_update(before))

    def set(self, key: str, value: Any) -> bytes:
        """An update setting ``m[key] = value`` in the doc's root map ``m``."""

        def change(doc: pycrdt.Doc[Any]) -> None:
            doc.get("m", type=pycrdt.Map)[key] = value

        return self.edit(change)

    def type(self, text: str) -> bytes:
        """An update appending ``text`` to the doc's root text ``t``."""

        def change(doc: pycrdt.Doc[Any]) -> None:
            doc.get("t", type=pycrdt.Text).insert(len(doc.get("t", type=pycrdt.Text)), text)

        return self.edit(change)


def varuint(value: int) -> bytes:
    """lib0's unsigned varint (7 bits per byte, little-endian groups)."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# Panics pycrdt 0.14 on any doc ("index out of bounds" in ClientBlockList::find_index);
# found by fuzzing single-byte mutations of a valid update, then minimized.
PANIC_ANYWHERE = bytes.fromhex(
    "010705fffff7ffff002101016d0161010401017401618405010262630128000505016b017c4000000005"
    "010502025a5a01"
)


def zero_length_item(client: int, clock: int) -> bytes:
    """An update holding one zero-length String item of ``client`` at ``clock``, its left
    origin ``(client, 1)``, right origin ``(0, 0)``. pycrdt panics ("unwrap on None") on it
    once ``client`` has items in the doc; on a doc without them it is silently parked."""
    c = varuint(client)
    return (
        b"\x01\x01" + c + varuint(clock) + b"\xc4" + c + b"\x01" + b"\x00\x00" + b"\x00" + b"\x00"
    )


def resign(op: Op, key: KeyPair) -> bytes:
    """The same header bytes and body, signed by another key (the header still names the author)."""
    from node.crypto.ops import SIGN_CONTEXT

    return encode_wire(op.header_bytes, key.sign(SIGN_CONTEXT + op.header_bytes), op.body)


async def ingest(replica: Replica, ops: Sequence[Op | bytes]) -> IngestReport:
    return await ingest_ops(replica, [o if isinstance(o, bytes) else o.wire() for o in ops])


async def stored_wires(store: Store, circle: bytes | None = None) -> list[bytes]:
    """Every stored op as a wire, in local arrival order."""
    return [encode_wire(r.header, r.sig, r.body) for r in await store.all_ops(circle)]


async def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted: equal dumps mean an unchanged store."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for table in TABLES:
        async with store.db.execute(f"SELECT * FROM {table}") as cursor:
            tables[table] = sorted(tuple(r) for r in await cursor.fetchall())
    return tables


async def statuses(store: Store) -> dict[bytes, int]:
    return {r.op_id: r.status for r in await store.all_ops()}


def read_varuint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def state_vector(doc: pycrdt.Doc[Any]) -> dict[int, int]:
    """A doc's state vector decoded to ``{client: clock}`` (its encoding order is not stable)."""
    data = bytes(doc.get_state())
    count, pos = read_varuint(data, 0)
    vector: dict[int, int] = {}
    for _ in range(count):
        client, pos = read_varuint(data, pos)
        vector[client], pos = read_varuint(data, pos)
    return vector


def doc_view(doc: pycrdt.Doc[Any]) -> dict[str, Any]:
    """The contents of the root map ``m``, text ``t`` and array ``a`` of a doc."""
    return {
        "m": doc.get("m", type=pycrdt.Map).to_py(),
        "t": str(doc.get("t", type=pycrdt.Text)),
        "a": doc.get("a", type=pycrdt.Array).to_py(),
    }
