"""Node key hand-overs: the old node key names its successor (docs/protocol.md 10.1).

``body = msgpack ["handover", 1, old: bin32, new: bin32, seq: int >= 1, ts: int]``, signed
by the OLD key under ``"circle-node/handover/v1"`` (:mod:`node.crypto.statement`). ``seq``
counts the node's rotations: a chain ``K0 -> K1 -> K2`` has seqs ``n, n+1``. ``ts`` is for
display only.

Invariants: a chain is accepted only if every link verifies under its old key, each link's
new key is the next link's old key, seqs increase by one, no key appears twice and the
last new key is the node key the peer proved in the handshake. Failures raise
:class:`DecodeError` or :class:`SignatureError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import msgspec

from node.crypto.keys import KeyPair
from node.crypto.statement import (
    Bytes32,
    Count,
    Stamp,
    decode_statement,
    sign_statement,
    verify_statement,
)
from node.errors import DecodeError, SignatureError

CONTEXT = b"circle-node/handover/v1"
MAX_CHAIN = 16


class HandoverBody(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    type: Literal["handover"]
    version: Literal[1]
    old: Bytes32
    new: Bytes32
    seq: Count
    ts: Stamp


@dataclass(frozen=True)
class Handover:
    """A verified hand-over statement and its wire bytes."""

    old: bytes
    new: bytes
    seq: int
    ts: int
    wire: bytes


def make_handover(old: KeyPair, new: bytes, seq: int, ts: int) -> Handover:
    """The hand-over from ``old`` to ``new``, signed by ``old``."""
    body = HandoverBody("handover", 1, old.public, new, seq, ts)
    return Handover(old.public, new, seq, ts, sign_statement(old, CONTEXT, body))


def open_handover(wire: bytes) -> Handover:
    """A hand-over verified under its old key; DecodeError or SignatureError otherwise."""
    body, body_bytes, sig = decode_statement(wire, HandoverBody)
    if body.old == body.new:
        raise DecodeError("a hand-over must name a different key")
    try:
        verify_statement(body.old, CONTEXT, body_bytes, sig)
    except SignatureError:
        raise SignatureError("the hand-over is not signed by the key it retires") from None
    return Handover(body.old, body.new, body.seq, body.ts, wire)


def verify_chain(wires: Sequence[bytes], current: bytes) -> list[Handover]:
    """The links of a hand-over chain ending at ``current``, oldest first (empty if there
    are none); DecodeError or SignatureError if any link is bad or they do not connect."""
    if len(wires) > MAX_CHAIN:
        raise DecodeError(f"a hand-over chain of more than {MAX_CHAIN} links")
    links = sorted((open_handover(w) for w in wires), key=lambda h: h.seq)
    seen = {current}
    for i, link in enumerate(links):
        following = links[i + 1].old if i + 1 < len(links) else current
        if link.new != following:
            raise DecodeError("the hand-over chain does not lead to the presented node key")
        if i and link.seq != links[i - 1].seq + 1:
            raise DecodeError("the hand-over chain skips a rotation")
        if link.old in seen:
            raise DecodeError("the hand-over chain repeats a key")
        seen.add(link.old)
    return links


def chain_to(wires: Sequence[bytes], current: bytes) -> list[Handover]:
    """The part of our own stored hand-overs that leads to ``current``, oldest first:
    links of an unfinished rotation (leading past ``current``) are left out."""
    by_new = {}
    for wire in wires:
        link = open_handover(wire)
        by_new[link.new] = link
    links: list[Handover] = []
    key = current
    while key in by_new and len(links) < MAX_CHAIN:
        link = by_new.pop(key)
        links.append(link)
        key = link.old
    links.reverse()
    return verify_chain([link.wire for link in links], current) if links else []
