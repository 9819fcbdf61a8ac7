"""Signed statements: the one envelope shared by hand-overs, node certificates and
federation agreements (docs/protocol.md section 10).

``wire = msgpack [body: bin, sig: bin64]`` with ``sig = Ed25519(signer_sk, context ||
body)``. ``body`` is a msgpack array whose first two elements are a type string and the
version 1; each statement type fixes the rest. The signature covers the exact body bytes,
and a body must decode canonically (re-encoding gives the same bytes), so one statement has
exactly one byte form.

Invariants: every failure to open a statement raises :class:`DecodeError` (bad bytes) or
:class:`SignatureError` (a signature that does not verify); nothing else escapes.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, TypeVar

import msgspec

from node.crypto.keys import KeyPair, verify_detached
from node.errors import DecodeError, SignatureError

MAX_STATEMENT = 16 * 1024

Bytes16 = Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
Bytes32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Stamp = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Count = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]

B = TypeVar("B", bound=msgspec.Struct)

_encoder = msgspec.msgpack.Encoder()
_envelope = msgspec.msgpack.Decoder(tuple[bytes, bytes])


def sign_statement(key: KeyPair, context: bytes, body: msgspec.Struct) -> bytes:
    """The wire bytes of ``body`` signed by ``key`` under ``context``."""
    body_bytes = _encoder.encode(body)
    return _encoder.encode((body_bytes, key.sign(context + body_bytes)))


def decode_statement(wire: bytes, body_type: type[B]) -> tuple[B, bytes, bytes]:
    """``(body, body_bytes, sig)`` of a statement, not yet verified; DecodeError if the
    bytes are not one canonical statement of ``body_type``."""
    if len(wire) > MAX_STATEMENT:
        raise DecodeError(f"statement of {len(wire)} bytes exceeds {MAX_STATEMENT}")
    try:
        body_bytes, sig = _envelope.decode(wire)
        body = msgspec.msgpack.decode(body_bytes, type=body_type)
    except (msgspec.MsgspecError, UnicodeDecodeError) as exc:
        raise DecodeError(f"malformed {body_type.__name__.lower()}: {exc}") from exc
    if _encoder.encode((body_bytes, sig)) != wire or _encoder.encode(body) != body_bytes:
        raise DecodeError(f"{body_type.__name__.lower()} is not canonically encoded")
    if len(sig) != 64:
        raise DecodeError(f"{body_type.__name__.lower()} signature is not 64 bytes")
    return body, body_bytes, sig


def verify_statement(signer: bytes, context: bytes, body_bytes: bytes, sig: bytes) -> None:
    """SignatureError unless ``sig`` is ``signer``'s signature of ``context || body``."""
    if not verify_detached(signer, context + body_bytes, sig):
        raise SignatureError("the statement's signature does not verify")


def to_text(prefix: str, wire: bytes) -> str:
    """Printable form: ``prefix + base64url_nopad(wire)``."""
    return prefix + base64.urlsafe_b64encode(wire).rstrip(b"=").decode("ascii")


def from_text(prefix: str, text: str, what: str) -> bytes:
    """The wire bytes of a printable statement (whitespace ignored); DecodeError otherwise."""
    compact = "".join(text.split())
    if not compact.startswith(prefix):
        raise DecodeError(f"not a {what} (it should start with {prefix!r})")
    if len(compact) > MAX_STATEMENT * 2:
        raise DecodeError(f"the {what} is too long")
    body = compact[len(prefix) :]
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"the {what} is not valid base64url: {exc}") from exc
