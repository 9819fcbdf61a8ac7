"""Encoding and decoding one governance area's tagged union of record bodies.

Every area (proposals, elections, ideas, funding) keeps its own union with tag field ``t``;
a record of another area is simply ``None`` to ``try_decode``.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

from node.errors import DecodeError

T = TypeVar("T")


class Codec(Generic[T]):
    """Encode and decode one domain's tagged union of record bodies."""

    def __init__(self, union: Any, what: str) -> None:
        self._decoder: msgspec.msgpack.Decoder[T] = msgspec.msgpack.Decoder(union)
        self._encoder = msgspec.msgpack.Encoder()
        self._what = what

    def encode(self, record: T) -> bytes:
        """Encode, refusing a record that would not decode (before anything is signed)."""
        data = self._encoder.encode(record)
        try:
            self._decoder.decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise DecodeError(f"this would not be {self._what} ({exc})") from exc
        return data

    def decode(self, data: bytes) -> T:
        try:
            return self._decoder.decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise DecodeError(f"not {self._what}: {exc}") from exc

    def try_decode(self, data: bytes) -> T | None:
        """The record, or None for a type this domain does not know (or a malformed one)."""
        try:
            return self.decode(data)
        except DecodeError:
            return None
