"""The CRDT engine boundary: every pycrdt call of the node goes through here.

Invariants:
- Bytes from outside reach pycrdt only through :func:`apply_update`, which turns every
  failure, including Rust panics (``BaseException``), into :class:`DocumentError`.
- A member's edit is made in a fresh doc whose Yjs ``client_id`` is that member-device's
  ycid, and only the resulting incremental update leaves this module, so items are never
  written under somebody else's client id.
- :func:`check_binding` proves an update only adds items under one ycid, starting exactly
  where that ycid's previous update to the same doc ended.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pycrdt

from node.domain.yupdate import summarize_update
from node.errors import DecodeError, DocumentError

YDoc = pycrdt.Doc[Any]

_PASS_THROUGH = (KeyboardInterrupt, SystemExit, GeneratorExit)


def doc_id(circle: bytes, name: str) -> bytes:
    """A well-known document of a circle, e.g. ``doc_id(circle, "profile")``."""
    return hashlib.blake2b(circle + name.encode(), digest_size=16).digest()


def new_doc(client_id: int | None = None) -> YDoc:
    return pycrdt.Doc() if client_id is None else pycrdt.Doc(client_id=client_id)


def apply_update(doc: YDoc, update: bytes) -> None:
    """Apply bytes from outside to ``doc``; any refusal or panic becomes DocumentError."""
    try:
        doc.apply_update(update)
    except _PASS_THROUGH:
        raise
    except BaseException as exc:  # pycrdt panics are BaseExceptions (pyo3 PanicException)
        if type(exc).__module__.startswith("asyncio") or type(exc).__name__ == "CancelledError":
            raise
        raise DocumentError(f"pycrdt refused the update: {type(exc).__name__}: {exc}") from exc


def merge(updates: list[bytes]) -> bytes:
    """One update equal to applying all of ``updates``; unlike a doc's ``get_update()`` it
    keeps structs still waiting for another author's items (used for checkpoints)."""
    if len(updates) == 1:
        return updates[0]
    try:
        return bytes(pycrdt.merge_updates(*updates))
    except _PASS_THROUGH:
        raise
    except BaseException as exc:  # pycrdt panics are BaseExceptions
        if type(exc).__name__ == "CancelledError":
            raise
        raise DocumentError(f"pycrdt could not merge updates: {exc}") from exc


def edit_as(current: YDoc, ycid: int, change: Callable[[YDoc], None]) -> bytes:
    """Run ``change`` on a copy of ``current`` writing as client ``ycid``; return the update."""
    scratch: YDoc = pycrdt.Doc(client_id=ycid)
    apply_update(scratch, current.get_update())
    before = scratch.get_state()
    change(scratch)
    return bytes(scratch.get_update(before))


class BindingError(DocumentError):
    """An update that writes outside its author's ycid and clock range."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Binding:
    """The clock range an accepted update occupies for its author's ycid."""

    start: int
    end: int


def check_binding(update: bytes, ycid: int, expected_start: int) -> Binding:
    """Prove ``update`` only adds items under ``ycid``, from exactly ``expected_start``.

    Raises DecodeError for bytes that are not a Yjs v1 update and DocumentError when the
    update writes under another client id or leaves a gap or overlap in the clock.
    """
    summary = summarize_update(update)
    if summary.has_skips:
        raise BindingError("clock_mismatch", "update contains skipped ranges")
    if not summary.ranges:
        return Binding(expected_start, expected_start)
    if len(summary.ranges) != 1 or summary.ranges[0].client != ycid:
        raise BindingError("ycid_mismatch", "update writes items under another client id")
    first = summary.ranges[0]
    if first.start != expected_start:
        raise BindingError(
            "clock_mismatch",
            f"update starts at clock {first.start}, expected {expected_start} for this ycid",
        )
    return Binding(first.start, first.start + first.length)


def state_vector(doc: YDoc) -> dict[int, int]:
    """The doc's state vector as ``{client id: next clock}`` (lib0 v1 encoding)."""
    data = bytes(doc.get_state())
    pos = 0

    def varuint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    return {varuint(): varuint() for _ in range(varuint())}


def state_bytes(doc: YDoc) -> bytes:
    return bytes(doc.get_update())


__all__ = [
    "Binding",
    "BindingError",
    "DecodeError",
    "YDoc",
    "apply_update",
    "check_binding",
    "doc_id",
    "edit_as",
    "merge",
    "new_doc",
    "state_bytes",
    "state_vector",
]
