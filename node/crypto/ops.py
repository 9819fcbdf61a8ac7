"""The signed op: the unit of replication (see docs/protocol.md, "The signed op").

Invariants:
- ``header_bytes`` are signed and stored exactly as received; nothing is re-encoded before
  verification. A header whose canonical re-encoding differs from its bytes is refused, so
  one logical header has exactly one encoding and one op id.
- ``op_id = BLAKE2b-256(header_bytes || sig)``; a genesis op's circle id is ``op_id[:16]``.
- ``body_hash = BLAKE2b-256(body)`` and ``body_len = len(body)``.
- Decoding raises only :class:`DecodeError`; verification only :class:`SignatureError`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, Protocol

import msgspec
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from node.errors import DecodeError, SignatureError

SIGN_CONTEXT = b"circle-node/op/v1"
VERSION = 1
MAX_OP_BYTES = 64 * 1024
MAX_DEPS = 20
ZERO_CIRCLE = bytes(16)
MAX_U53 = 2**53 - 1
MAX_U63 = 2**63 - 1


class OpKind(IntEnum):
    """What an op carries; the wire value is the int."""

    GENESIS = 0
    AUTH = 1
    Y = 2
    RECORD = 3


Bytes16 = Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
Bytes32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Sig64 = Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]
U53 = Annotated[int, msgspec.Meta(ge=0, le=MAX_U53)]
U63 = Annotated[int, msgspec.Meta(ge=0, le=MAX_U63)]


class Header(msgspec.Struct, array_like=True, frozen=True):
    """The signed header, encoded as a msgpack array in exactly this field order."""

    v: int
    kind: OpKind
    circle: Bytes16
    doc: Bytes16 | None
    author: Bytes32
    ycid: U53
    seq: Annotated[int, msgspec.Meta(ge=1, le=MAX_U63)]
    backlink: Bytes32 | None
    deps: Annotated[list[Bytes32], msgspec.Meta(max_length=MAX_DEPS)]
    ts: U63
    body_len: U63
    body_hash: Bytes32


_header_encoder = msgspec.msgpack.Encoder()
_header_decoder = msgspec.msgpack.Decoder(Header)
_wire_decoder = msgspec.msgpack.Decoder(tuple[bytes, bytes, bytes])
_wire_encoder = msgspec.msgpack.Encoder()


def blake2b_256(data: bytes) -> bytes:
    """BLAKE2b with a 32-byte digest, the hash used for op ids and body hashes."""
    return hashlib.blake2b(data, digest_size=32).digest()


@dataclass(frozen=True, slots=True)
class Op:
    """A decoded op. ``header_bytes`` and ``sig`` are kept verbatim.

    ``circle`` is the circle the op belongs to: the header's, or for a genesis op the
    first 16 bytes of its own op id.
    """

    header: Header
    header_bytes: bytes
    sig: bytes
    body: bytes
    op_id: bytes
    circle: bytes
    author: bytes
    seq: int
    kind: OpKind

    @classmethod
    def build(cls, header: Header, header_bytes: bytes, sig: bytes, body: bytes) -> Op:
        op_id = blake2b_256(header_bytes + sig)
        circle = op_id[:16] if header.kind is OpKind.GENESIS else header.circle
        return cls(
            header, header_bytes, sig, body, op_id, circle, header.author, header.seq, header.kind
        )

    def wire(self) -> bytes:
        """The op as sent and stored: msgpack ``[header_bytes, sig, body]``."""
        return encode_wire(self.header_bytes, self.sig, self.body)


def encode_wire(header_bytes: bytes, sig: bytes, body: bytes) -> bytes:
    return _wire_encoder.encode((header_bytes, sig, body))


def decode_header(header_bytes: bytes) -> Header:
    """Decode and validate a header; refuse any non-canonical encoding."""
    try:
        header = _header_decoder.decode(header_bytes)
    except msgspec.DecodeError as exc:
        raise DecodeError(f"malformed op header: {exc}") from exc
    if header.v != VERSION:
        raise DecodeError(f"unsupported op version {header.v}")
    if _header_encoder.encode(header) != header_bytes:
        raise DecodeError("op header is not canonically encoded")
    deps = header.deps
    if any(deps[i] >= deps[i + 1] for i in range(len(deps) - 1)):
        raise DecodeError("op deps must be sorted and unique")
    return header


def decode_op(wire: bytes) -> Op:
    """Split a wire op into its parts and decode the header. Does not verify."""
    if len(wire) > MAX_OP_BYTES:
        raise DecodeError(f"op of {len(wire)} bytes exceeds the {MAX_OP_BYTES}-byte limit")
    try:
        header_bytes, sig, body = _wire_decoder.decode(wire)
    except msgspec.DecodeError as exc:
        raise DecodeError(f"malformed op envelope: {exc}") from exc
    return op_from_parts(header_bytes, sig, body)


def op_from_parts(header_bytes: bytes, sig: bytes, body: bytes) -> Op:
    """Build an :class:`Op` from its stored parts (decodes the header, does not verify)."""
    if len(sig) != 64:
        raise DecodeError("op signature must be 64 bytes")
    header = decode_header(header_bytes)
    return Op.build(header, header_bytes, sig, body)


def verify_op(op: Op) -> None:
    """Check the signature over the exact header bytes, then the body length and hash."""
    try:
        crypto_sign_open(op.sig + SIGN_CONTEXT + op.header_bytes, op.header.author)
    except (BadSignatureError, ValueError) as exc:
        raise SignatureError("op signature does not verify") from exc
    if op.header.body_len != len(op.body):
        raise SignatureError("op body length does not match its header")
    if blake2b_256(op.body) != op.header.body_hash:
        raise SignatureError("op body hash does not match its header")


class Signer(Protocol):
    """Anything that can sign: a public key and ``sign(message) -> 64-byte signature``."""

    @property
    def public(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


def make_op(
    signer: Signer,
    *,
    kind: OpKind,
    circle: bytes,
    seq: int,
    backlink: bytes | None,
    body: bytes,
    deps: list[bytes] | None = None,
    doc: bytes | None = None,
    ycid: int = 0,
    ts: int = 0,
) -> Op:
    """Encode, sign and return a new op (the local edit path)."""
    header = Header(
        v=VERSION,
        kind=kind,
        circle=ZERO_CIRCLE if kind is OpKind.GENESIS else circle,
        doc=doc,
        author=signer.public,
        ycid=ycid,
        seq=seq,
        backlink=backlink,
        deps=sorted(set(deps or [])),
        ts=ts,
        body_len=len(body),
        body_hash=blake2b_256(body),
    )
    header_bytes = _header_encoder.encode(header)
    sig = signer.sign(SIGN_CONTEXT + header_bytes)
    return Op.build(header, header_bytes, sig, body)
