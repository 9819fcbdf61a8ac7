"""The credentials a node presents in the sync handshake (docs/protocol.md 10.4).

``credentials = msgpack [1, handovers: [wire, ...] (<= 16), certs: [wire, ...] (<= 4)]``,
at most 16 KiB, carried in HELLO (initiator) and WELCOME (responder) and bound into the
signed transcript. Empty bytes mean none. This module only frames them; what they prove
is judged by :mod:`node.crypto.handover` and :mod:`node.crypto.federation`.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from node.crypto.handover import MAX_CHAIN
from node.errors import DecodeError

MAX_CREDENTIALS = 16 * 1024
MAX_CERTS = 4


class Credentials(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    version: Literal[1] = 1
    handovers: Annotated[list[bytes], msgspec.Meta(max_length=MAX_CHAIN)] = []
    certs: Annotated[list[bytes], msgspec.Meta(max_length=MAX_CERTS)] = []

    def encode(self) -> bytes:
        if not self.handovers and not self.certs:
            return b""
        data = msgspec.msgpack.encode(self)
        if len(data) > MAX_CREDENTIALS:
            raise DecodeError(f"credentials of {len(data)} bytes exceed {MAX_CREDENTIALS}")
        return data


def decode_credentials(data: bytes) -> Credentials:
    """The credentials framed in ``data`` (none for empty bytes); DecodeError if bad."""
    if not data:
        return Credentials()
    if len(data) > MAX_CREDENTIALS:
        raise DecodeError(f"credentials of {len(data)} bytes exceed {MAX_CREDENTIALS}")
    try:
        return msgspec.msgpack.decode(data, type=Credentials)
    except (msgspec.MsgspecError, UnicodeDecodeError) as exc:
        raise DecodeError(f"malformed credentials: {exc}") from exc
