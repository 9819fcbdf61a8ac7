#!/usr/bin/env python3
"""A standalone checker for circle-node archives: one file, Python 3.11 + PyNaCl + msgspec.

    python3 verify_archive.py ARCHIVE [--json]

Get this file with ``circle-node export --format verifier --out verify_archive.py`` (or
copy ``node/export/standalone.py``); it imports nothing from circle-node, so a third party
can read all of it. It checks, from the archive's bytes alone:

* the file layout (docs/exports.md) and every length against its bound;
* every op: its envelope, a canonical header whose fields pass the node's own checks
  (``node/crypto/ops.py``: field sizes, integer bounds, at most 20 deps, sorted and
  distinct), the Ed25519 signature over
  ``b"circle-node/op/v1" || header``, the body length and BLAKE2b-256 hash, and that it is
  filed under its own circle (a genesis op's circle is the first 16 bytes of its id);
* every author's chain in every circle: seqs 1, 2, 3... with no gap or fork, each op's
  backlink naming the previous op;
* the manifest: per-circle op counts, section hashes and heads match the ops.

It does NOT judge authorization (who may write in a circle, as of which auth ops), ycid
bindings or whether decisions hold against their positions: ``circle-node verify
--archive ARCHIVE`` does all of that by re-ingesting the ops into a fresh store. Exit
status: 0 all checks passed, 1 problems found (each names the op), 2 unreadable file.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from collections.abc import Iterator
from typing import Annotated, Any, BinaryIO

import msgspec
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

MAGIC = b"CNARCHIVE\x01"
SIGN_CONTEXT = b"circle-node/op/v1"
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_OP_BYTES = 64 * 1024
MAX_DEPS = 20  # these bounds and sizes mirror node/crypto/ops.py, which refuses the rest
MAX_U53 = 2**53 - 1
MAX_U63 = 2**63 - 1
LENGTH = struct.Struct(">I")
GENESIS = 0
KINDS = {0: "genesis", 1: "auth", 2: "y", 3: "record"}


class Unreadable(Exception):
    """The file is not a readable archive."""


def _hash(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def _read(stream: BinaryIO, n: int, what: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise Unreadable(f"the {what} is truncated: the file was cut short")
    return data


class Entry(msgspec.Struct, frozen=True):
    circle: Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
    count: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
    ops_hash: bytes
    heads: list[tuple[bytes, int, bytes]]


class Manifest(msgspec.Struct, frozen=True):
    circles: list[Entry]


def read_manifest(stream: BinaryIO) -> dict[str, Any]:
    if stream.read(len(MAGIC)) != MAGIC:
        raise Unreadable("not a circle-node archive of format version 1 (bad magic)")
    (length,) = LENGTH.unpack(_read(stream, 4, "head"))
    if length > MAX_MANIFEST_BYTES:
        raise Unreadable("the manifest length is over the limit")
    data = _read(stream, length, "manifest")
    if _hash(MAGIC + LENGTH.pack(length) + data) != _read(stream, 32, "manifest checksum"):
        raise Unreadable("the manifest is damaged (its checksum does not match)")
    try:
        manifest = msgspec.msgpack.decode(data, type=Manifest)
    except msgspec.DecodeError as exc:
        raise Unreadable(f"the manifest does not decode: {exc}") from exc
    return {"circles": [msgspec.structs.asdict(entry) for entry in manifest.circles]}


def frames(stream: BinaryIO, manifest: dict[str, Any]) -> Iterator[tuple[int, bytes, bytes]]:
    """``(index, section circle, wire)`` for every op; ``(-1, circle, section hash)`` after
    each section."""
    index = 0
    for entry in manifest["circles"]:
        section = hashlib.blake2b(digest_size=32)
        for _ in range(entry["count"]):
            (length,) = LENGTH.unpack(_read(stream, 4, f"op #{index}"))
            if not 0 < length <= MAX_OP_BYTES:
                raise Unreadable(f"op #{index} claims {length} bytes: the file is damaged")
            wire = _read(stream, length, f"op #{index}")
            section.update(LENGTH.pack(length) + wire)
            yield index, entry["circle"], wire
            index += 1
        yield -1, entry["circle"], section.digest()
    if stream.read(1):
        raise Unreadable("the archive has bytes after its last op")


class Op(msgspec.Struct, array_like=True, frozen=True):
    """The signed header, a msgpack array in exactly this order (read loosely, to name the
    op in a report; :class:`Header` holds the checks)."""

    v: int
    kind: int
    circle: bytes
    doc: bytes | None
    author: bytes
    ycid: int
    seq: int
    backlink: bytes | None
    deps: list[bytes]
    ts: int
    body_len: int
    body_hash: bytes


B16 = Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
B32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
U53 = Annotated[int, msgspec.Meta(ge=0, le=MAX_U53)]
U63 = Annotated[int, msgspec.Meta(ge=0, le=MAX_U63)]


class Header(msgspec.Struct, array_like=True, frozen=True):
    """The header as the node accepts it (node/crypto/ops.py ``Header``)."""

    v: int
    kind: int
    circle: B16
    doc: B16 | None
    author: B32
    ycid: U53
    seq: Annotated[int, msgspec.Meta(ge=1, le=MAX_U63)]
    backlink: B32 | None
    deps: Annotated[list[B32], msgspec.Meta(max_length=MAX_DEPS)]
    ts: U63
    body_len: U63
    body_hash: B32


def check_op(wire: bytes) -> tuple[dict[str, Any], str | None]:
    """What the op claims (id, circle, author, seq, backlink) and the first problem."""
    claims: dict[str, Any] = {"op": "", "circle": "", "author": "", "seq": None}
    try:
        header_bytes, sig, body = msgspec.msgpack.decode(wire, type=tuple[bytes, bytes, bytes])
        header = msgspec.msgpack.decode(header_bytes, type=Op)
    except msgspec.DecodeError as exc:
        return claims, f"malformed: {exc}"
    op_id = _hash(header_bytes + sig)
    circle = op_id[:16] if header.kind == GENESIS else header.circle
    claims = {
        "op": op_id.hex(),
        "circle": circle.hex(),
        "author": header.author.hex(),
        "seq": header.seq,
        "kind": KINDS.get(header.kind, str(header.kind)),
        "backlink": header.backlink,
        "op_id": op_id,
    }
    if header.v != 1 or header.kind not in KINDS or len(sig) != 64 or len(header.author) != 32:
        return claims, "malformed: unknown version or kind, or bad key or signature size"
    try:
        checked = msgspec.msgpack.decode(header_bytes, type=Header)
    except msgspec.DecodeError as exc:  # a field's size or bound, or too many deps
        return claims, f"malformed: {exc}"
    if msgspec.msgpack.encode(checked) != header_bytes:
        return claims, "malformed: the header is not canonically encoded"
    if any(a >= b for a, b in zip(checked.deps, checked.deps[1:], strict=False)):
        return claims, "malformed: deps must be sorted and unique"
    try:
        VerifyKey(header.author).verify(SIGN_CONTEXT + header_bytes, sig)
    except (BadSignatureError, ValueError):
        return claims, "bad_signature: the signature does not verify"
    if header.body_len != len(body) or _hash(body) != header.body_hash:
        return claims, "bad_signature: the body does not match its signed hash"
    return claims, None


def check(stream: BinaryIO) -> dict[str, Any]:
    manifest = read_manifest(stream)
    problems: list[dict[str, Any]] = []
    chains: dict[tuple[bytes, bytes], dict[int, tuple[bytes, bytes | None, dict[str, Any]]]] = {}
    listed = {e["circle"]: e for e in manifest["circles"]}
    ops = 0

    def problem(claims: dict[str, Any], index: int | None, what: str) -> None:
        named = {k: v for k, v in claims.items() if k in ("op", "circle", "author", "seq")}
        problems.append({**named, "index": index, "problem": what})

    for index, section, wire in frames(stream, manifest):
        if index < 0:
            if wire != listed[section]["ops_hash"]:
                problem({"circle": section.hex()}, None, "section_hash: ops differ from manifest")
            continue
        ops += 1
        claims, why = check_op(wire)
        if why is None and claims["circle"] != section.hex():
            why = "wrong_section: filed under another circle"
        if why is not None:
            problem(claims, index, why)
            continue
        chain = chains.setdefault((section, bytes.fromhex(claims["author"])), {})
        if claims["seq"] in chain:
            problem(claims, index, "equivocation: two ops at one seq (or a duplicate)")
            continue
        chain[claims["seq"]] = (claims["op_id"], claims["backlink"], claims | {"index": index})
    for chain in chains.values():
        previous = None
        for seq in range(1, max(chain) + 1):
            if seq not in chain:
                later = chain[min(s for s in chain if s > seq)][2]
                problem(later, later["index"], f"chain_gap: seq {seq} is missing before it")
                break
            op_id, backlink, claims = chain[seq]
            if backlink != previous:
                problem(claims, claims["index"], "bad_backlink: does not name the previous op")
            previous = op_id
    for circle, entry in listed.items():
        held = {a: (c[max(c)][0], max(c)) for (cc, a), c in chains.items() if cc == circle}
        claimed = {author: (op_id, seq) for author, seq, op_id in entry["heads"]}
        if held != claimed:
            problem({"circle": circle.hex()}, None, "head_mismatch: heads differ from manifest")
    return {"ok": not problems, "ops": ops, "circles": len(listed), "problems": problems}


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--json"]
    if len(args) != 1:
        print("usage: verify_archive.py ARCHIVE [--json]", file=sys.stderr)
        return 2
    try:
        with open(args[0], "rb") as stream:
            report = check(stream)
    except (OSError, Unreadable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if "--json" in argv:
        print(json.dumps(report))
    elif report["ok"]:
        print(f"ok: {report['ops']} ops in {report['circles']} circle(s): signatures, hashes "
              "and chains hold (authorization: run `circle-node verify --archive`)")  # fmt: skip
    else:
        for p in report["problems"]:
            where = f"#{p.get('index')}, circle {p.get('circle')}, author {p.get('author') or '?'}"
            print(f"op {p.get('op') or '?'} ({where}, seq {p.get('seq')}): {p['problem']}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
