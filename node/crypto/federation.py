"""Organisation root keys, node certificates and federation agreements
(docs/protocol.md 10.2-10.3).

A **node certificate** is a statement signed by an organisation's root key under
``"circle-node/node-cert/v1"``::

    body = msgpack ["node-cert", 1, root: bin32, node: bin32, org: str(1..80),
                    issued: int, expires: int]

A **federation agreement** is one organisation's own statement, signed by its root key
under ``"circle-node/federation/v1"``, that nodes certified by the partner's root may host
the listed circles::

    body = msgpack ["federation", 1, root: bin32, partner: bin32,
                    circles: [bin16, ...] (sorted, distinct, 1..900), issued: int,
                    expires: int]

Times are unix seconds; a statement is in force while ``issued <= now < expires``. Both
are checked only when a node decides what to name to a peer (never in op ingest, which
stays free of wall clocks). Failures raise :class:`DecodeError` or :class:`SignatureError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec

from node.crypto.keys import KeyPair
from node.crypto.statement import (
    Bytes16,
    Bytes32,
    Stamp,
    decode_statement,
    from_text,
    sign_statement,
    to_text,
    verify_statement,
)
from node.errors import DecodeError

CERT_CONTEXT = b"circle-node/node-cert/v1"
AGREEMENT_CONTEXT = b"circle-node/federation/v1"
CERT_PREFIX = "cncert1:"
AGREEMENT_PREFIX = "cnfed1:"
# What fits the 16 KiB statement cap (MAX_STATEMENT): the wire is 164 + 18 bytes per
# circle with the largest timestamps, so 901 fit at most; 900 leaves a little room.
MAX_AGREEMENT_CIRCLES = 900

OrgName = Annotated[str, msgspec.Meta(min_length=1, max_length=80)]


class CertBody(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    type: Literal["node-cert"]
    version: Literal[1]
    root: Bytes32
    node: Bytes32
    org: OrgName
    issued: Stamp
    expires: Stamp


class AgreementBody(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    type: Literal["federation"]
    version: Literal[1]
    root: Bytes32
    partner: Bytes32
    circles: Annotated[list[Bytes16], msgspec.Meta(min_length=1, max_length=MAX_AGREEMENT_CIRCLES)]
    issued: Stamp
    expires: Stamp


@dataclass(frozen=True)
class NodeCert:
    """A verified node certificate."""

    root: bytes
    node: bytes
    org: str
    issued: int
    expires: int
    wire: bytes

    def in_force(self, now: int) -> bool:
        return self.issued <= now < self.expires

    def to_text(self) -> str:
        return to_text(CERT_PREFIX, self.wire)


@dataclass(frozen=True)
class Agreement:
    """A verified federation agreement: ``partner``'s certified nodes may host ``circles``
    of the organisation whose root is ``root``."""

    root: bytes
    partner: bytes
    circles: frozenset[bytes]
    issued: int
    expires: int
    wire: bytes

    def in_force(self, now: int) -> bool:
        return self.issued <= now < self.expires

    def to_text(self) -> str:
        return to_text(AGREEMENT_PREFIX, self.wire)


def _check_times(issued: int, expires: int, what: str) -> None:
    if expires <= issued:
        raise DecodeError(f"the {what} expires before it is issued")


def certify_node(root: KeyPair, node: bytes, org: str, issued: int, expires: int) -> NodeCert:
    """A certificate for ``node`` signed by the organisation root ``root``."""
    _check_times(issued, expires, "certificate")
    body = CertBody("node-cert", 1, root.public, node, org, issued, expires)
    return open_cert(sign_statement(root, CERT_CONTEXT, body))


def open_cert(wire: bytes) -> NodeCert:
    """A certificate verified under the root it names; DecodeError/SignatureError else."""
    body, body_bytes, sig = decode_statement(wire, CertBody)
    _check_times(body.issued, body.expires, "certificate")
    if body.root == body.node:
        raise DecodeError("a root key cannot certify itself as a node")
    verify_statement(body.root, CERT_CONTEXT, body_bytes, sig)
    return NodeCert(body.root, body.node, body.org, body.issued, body.expires, wire)


def cert_from_text(text: str) -> NodeCert:
    return open_cert(from_text(CERT_PREFIX, text, "node certificate"))


def make_agreement(
    root: KeyPair, partner: bytes, circles: list[bytes], issued: int, expires: int
) -> Agreement:
    """The agreement by ``root``'s organisation that ``partner``'s nodes may host
    ``circles``."""
    _check_times(issued, expires, "agreement")
    if partner == root.public:
        raise DecodeError("an organisation cannot federate with itself")
    chosen = sorted(set(circles))
    if not chosen:
        raise DecodeError("an agreement lists at least one circle")
    if len(chosen) > MAX_AGREEMENT_CIRCLES:
        raise DecodeError(
            f"an agreement lists at most {MAX_AGREEMENT_CIRCLES} circles ({len(chosen)} given): "
            "more would not fit the 16 KiB statement limit"
        )
    body = AgreementBody("federation", 1, root.public, partner, chosen, issued, expires)
    return open_agreement(sign_statement(root, AGREEMENT_CONTEXT, body))


def open_agreement(wire: bytes) -> Agreement:
    """An agreement verified under its root; DecodeError or SignatureError otherwise."""
    body, body_bytes, sig = decode_statement(wire, AgreementBody)
    _check_times(body.issued, body.expires, "agreement")
    if body.circles != sorted(set(body.circles)):
        raise DecodeError("the agreement's circles are not sorted and distinct")
    if body.partner == body.root:
        raise DecodeError("an organisation cannot federate with itself")
    verify_statement(body.root, AGREEMENT_CONTEXT, body_bytes, sig)
    return Agreement(
        body.root, body.partner, frozenset(body.circles), body.issued, body.expires, wire
    )


def agreement_from_text(text: str) -> Agreement:
    return open_agreement(from_text(AGREEMENT_PREFIX, text, "federation agreement"))
