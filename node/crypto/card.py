"""Member cards: short, copy-pasteable, signed texts that introduce a member to a node.

Text form::

    "cn1:" + base64url_nopad(msgpack [1, member, name, node, address, signature])

The signature is Ed25519 by ``member`` over
``b"circle-node/card/v1" + msgpack [member, name, node, address]``.

Invariants:

* :func:`parse_card` returns only cards whose signature verifies; every failure on any
  input string raises :class:`CardError` and nothing else.
* Whitespace anywhere in the text is ignored (people paste wrapped text); everything
  else is strict: the prefix, the base64url alphabet, no padding, canonical base64 and
  canonical msgpack (decoding and re-encoding must give back the very same text).
* Limits: text <= 1024 characters once whitespace is removed; name 1..80 characters
  with no control characters; address None or 1..200 characters with no control
  characters or whitespace; member and node keys 32 bytes; signature 64 bytes.
  :func:`make_card` enforces the same limits, so a card it makes always parses.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass

import msgspec

from node.crypto.keys import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, KeyPair, verify_detached
from node.errors import CardError

PREFIX = "cn1:"
VERSION = 1
SIGN_CONTEXT = b"circle-node/card/v1"
MAX_TEXT_CHARS = 1024
MAX_RAW_CHARS = 8 * MAX_TEXT_CHARS
MAX_NAME_CHARS = 80
MAX_ADDRESS_CHARS = 200

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_Wire = tuple[int, bytes, str, bytes, str | None, bytes]


@dataclass(frozen=True)
class MemberCard:
    """A member's public key, display name and home node, signed by the member."""

    member: bytes
    name: str
    node: bytes
    address: str | None
    signature: bytes

    @property
    def member_id(self) -> str:
        """The member's public key in hex."""
        return self.member.hex()

    def signed_bytes(self) -> bytes:
        """The bytes the member signs."""
        return _signed_bytes(self.member, self.name, self.node, self.address)

    def to_text(self) -> str:
        """The ``cn1:`` text form."""
        wire = [VERSION, self.member, self.name, self.node, self.address, self.signature]
        encoded = base64.urlsafe_b64encode(msgspec.msgpack.encode(wire))
        return PREFIX + encoded.rstrip(b"=").decode("ascii")


def _signed_bytes(member: bytes, name: str, node: bytes, address: str | None) -> bytes:
    return SIGN_CONTEXT + msgspec.msgpack.encode([member, name, node, address])


def _has_control(text: str) -> bool:
    """True if ``text`` has control characters or lone surrogates (not encodable)."""
    return any(unicodedata.category(char) in ("Cc", "Cs") for char in text)


def _check_fields(member: bytes, name: str, node: bytes, address: str | None) -> None:
    if len(member) != PUBLIC_KEY_SIZE or len(node) != PUBLIC_KEY_SIZE:
        raise CardError(f"card keys must be {PUBLIC_KEY_SIZE} bytes")
    if not 1 <= len(name) <= MAX_NAME_CHARS or _has_control(name) or not name.strip():
        raise CardError(f"card name must be 1..{MAX_NAME_CHARS} printable characters")
    if address is not None and (
        not 1 <= len(address) <= MAX_ADDRESS_CHARS
        or _has_control(address)
        or any(char.isspace() for char in address)
    ):
        raise CardError(f"card address must be 1..{MAX_ADDRESS_CHARS} characters without spaces")


def make_card(member_key: KeyPair, name: str, node: bytes, address: str | None) -> MemberCard:
    """A card for ``member_key`` signed by it; CardError if a field breaks the limits."""
    _check_fields(member_key.public, name, node, address)
    signature = member_key.sign(_signed_bytes(member_key.public, name, node, address))
    card = MemberCard(member_key.public, name, node, address, signature)
    if len(card.to_text()) > MAX_TEXT_CHARS:
        raise CardError(f"card would be longer than {MAX_TEXT_CHARS} characters")
    return card


def _decode_text(text: str) -> bytes:
    if len(text) > MAX_RAW_CHARS:
        raise CardError(f"card text is too long (over {MAX_TEXT_CHARS} characters)")
    compact = "".join(text.split())
    if len(compact) > MAX_TEXT_CHARS:
        raise CardError(f"card text is too long (over {MAX_TEXT_CHARS} characters)")
    if not compact.startswith(PREFIX):
        raise CardError(f"not a circle-node member card: it must start with {PREFIX!r}")
    body = compact[len(PREFIX) :]
    if not _BASE64URL.fullmatch(body) or len(body) % 4 == 1:
        raise CardError("card text is not valid base64url: it was cut or mistyped")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as exc:
        raise CardError("card text is not valid base64url: it was cut or mistyped") from exc
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != body:
        raise CardError("card text is not canonical base64url: it was altered")
    return raw


def _decode_wire(raw: bytes) -> _Wire:
    try:
        wire: _Wire = msgspec.msgpack.decode(raw, type=_Wire)
    except (msgspec.MsgspecError, UnicodeDecodeError) as exc:
        raise CardError(f"card contents do not decode: {exc}") from exc
    if wire[0] != VERSION:
        raise CardError(f"unsupported card version {wire[0]}; upgrade circle-node")
    if msgspec.msgpack.encode(list(wire)) != raw:
        raise CardError("card contents are not canonically encoded: it was altered")
    return wire


def parse_card(text: str) -> MemberCard:
    """The verified card in ``text``; CardError saying what is wrong otherwise."""
    _version, member, name, node, address, signature = _decode_wire(_decode_text(text))
    _check_fields(member, name, node, address)
    if len(signature) != SIGNATURE_SIZE:
        raise CardError(f"card signature must be {SIGNATURE_SIZE} bytes")
    card = MemberCard(member, name, node, address, signature)
    if not verify_detached(member, card.signed_bytes(), signature):
        raise CardError(
            "card signature does not verify: the card was altered or is not a circle-node card"
        )
    return card
