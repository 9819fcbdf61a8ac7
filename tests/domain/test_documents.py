"""Tests for node.domain.documents: the pycrdt boundary (binding check, guarded apply, edits)."""

from __future__ import annotations

from typing import Any

import pycrdt
import pytest
from helpers import PANIC_ANYWHERE, YWriter, state_vector, zero_length_item
from hypothesis import given, settings
from hypothesis import strategies as st

from node.domain.documents import (
    Binding,
    BindingError,
    apply_update,
    check_binding,
    doc_id,
    edit_as,
    new_doc,
    state_bytes,
)
from node.domain.yupdate import summarize_update
from node.errors import DecodeError, DocumentError


def _is_panic(update: bytes, doc: pycrdt.Doc[Any]) -> bool:
    """True if raw pycrdt raises a non-Exception BaseException (a Rust panic) on ``update``."""
    try:
        doc.apply_update(update)
    except Exception:
        return False
    except BaseException:  # pyo3 PanicException
        return True
    return False


def _text(doc: pycrdt.Doc[Any]) -> str:
    return str(doc.get("t", type=pycrdt.Text))


# ---- check_binding -------------------------------------------------------------------------


def test_binding_accepts_own_update_and_its_continuation() -> None:
    """A member's update starts at clock 0 and the next one exactly where the first ended."""
    writer = YWriter(ycid=7)
    first = writer.type("hello")
    assert check_binding(first, 7, 0) == Binding(0, 5)
    second = writer.set("k", "v")
    assert check_binding(second, 7, 5) == Binding(5, 6)
    third = writer.type("é😀")  # 1 + 2 UTF-16 code units
    assert check_binding(third, 7, 6) == Binding(6, 9)


def test_binding_refuses_another_client_id() -> None:
    """An update written under another ycid is a ycid_mismatch."""
    update = YWriter(ycid=8).type("forged")
    with pytest.raises(BindingError) as info:
        check_binding(update, 7, 0)
    assert info.value.code == "ycid_mismatch"


def test_binding_refuses_an_update_that_writes_under_two_clients() -> None:
    """An update that carries another client's items besides the author's is a ycid_mismatch."""
    mine, theirs = YWriter(ycid=7), YWriter(ycid=8)
    theirs_update = theirs.type("theirs")
    mine.doc.apply_update(theirs_update)
    mine.type(" mine")
    both = bytes(mine.doc.get_update())  # full state: clients 7 and 8
    assert {r.client for r in summarize_update(both).ranges} == {7, 8}
    with pytest.raises(BindingError) as info:
        check_binding(both, 7, 0)
    assert info.value.code == "ycid_mismatch"


@pytest.mark.parametrize("expected_start", [0, 3, 6])
def test_binding_refuses_gap_or_overlap(expected_start: int) -> None:
    """An update starting before (overlap) or after (gap) the expected clock is refused."""
    writer = YWriter(ycid=7)
    writer.type("abc")
    update = writer.type("def")  # clocks 3..6
    if expected_start == 3:
        assert check_binding(update, 7, 3) == Binding(3, 6)
        return
    with pytest.raises(BindingError) as info:
        check_binding(update, 7, expected_start)
    assert info.value.code == "clock_mismatch"


def test_binding_refuses_skip_structs() -> None:
    """An update with a Skip struct (a hole in the clock) is a clock_mismatch."""
    skip = bytes([1, 1, 7, 0, 10, 3, 0])  # client 7 from clock 0: Skip of length 3
    assert summarize_update(skip).has_skips
    with pytest.raises(BindingError) as info:
        check_binding(skip, 7, 0)
    assert info.value.code == "clock_mismatch"


def test_delete_only_update_binds_to_no_clock_range() -> None:
    """An update that only deletes (here another client's text) occupies no clock range."""
    other = YWriter(ycid=8)
    base = other.type("abc")
    mine = YWriter(ycid=7)
    mine.doc.apply_update(base)
    deletion = mine.edit(lambda doc: doc.get("t", type=pycrdt.Text).__delitem__(slice(0, 1)))
    assert check_binding(deletion, 7, 4) == Binding(4, 4)


@pytest.mark.parametrize(
    "garbage", [b"", b"\x00", b"\xff" * 12, b"\x01\x01\x07\x00", PANIC_ANYWHERE, b"not yjs"]
)
def test_binding_turns_garbage_into_decode_error(garbage: bytes) -> None:
    """Bytes that are not a Yjs v1 update raise DecodeError (never a pycrdt panic)."""
    with pytest.raises(DecodeError):
        check_binding(garbage, 7, 0)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_binding_raises_only_node_errors(data: bytes) -> None:
    """check_binding on arbitrary bytes returns or raises DecodeError/BindingError only."""
    try:
        check_binding(data, 7, 0)
    except (DecodeError, BindingError):
        pass


def test_binding_refuses_zero_length_items() -> None:
    """check_binding refuses zero-length items, which pycrdt panics on or parks by doc state."""
    # Parked on a replica where the author's earlier items are missing (a soft-failed op is
    # applied to an empty doc), a panic on another: replicas disagree on what they store.
    writer = YWriter(ycid=5)
    writer.type("ab")
    update = zero_length_item(5, 2)
    assert not _is_panic(update, pycrdt.Doc())  # parked on an empty doc
    with_history = pycrdt.Doc()
    with_history.apply_update(writer.doc.get_update())
    assert _is_panic(update, with_history)  # panics once client 5 has items
    with pytest.raises((DecodeError, BindingError)):
        check_binding(update, 5, 2)


# ---- apply_update --------------------------------------------------------------------------


@pytest.mark.parametrize("garbage", [b"", b"\xff" * 20, b"\x01\x01\x05", b"hello world"])
def test_apply_update_turns_refusals_into_document_error(garbage: bytes) -> None:
    """Garbage bytes that pycrdt refuses (ValueError) come back as DocumentError."""
    doc = new_doc()
    with pytest.raises(DocumentError):
        apply_update(doc, garbage)


def test_apply_update_contains_panics_on_any_doc() -> None:
    """Bytes that make pycrdt panic raise DocumentError; the process and pycrdt carry on."""
    assert _is_panic(PANIC_ANYWHERE, pycrdt.Doc())  # really a Rust panic, not a ValueError
    doc = new_doc()
    with pytest.raises(DocumentError, match="PanicException"):
        apply_update(doc, PANIC_ANYWHERE)
    fresh = new_doc()
    apply_update(fresh, YWriter(ycid=3).type("still alive"))
    assert _text(fresh) == "still alive"


def test_apply_update_contains_state_dependent_panics() -> None:
    """A zero-length item after its client's items panics inside pycrdt: DocumentError."""
    writer = YWriter(ycid=5)
    writer.type("ab")
    doc = new_doc()
    apply_update(doc, writer.doc.get_update())
    with pytest.raises(DocumentError):
        apply_update(doc, zero_length_item(5, 2))
    assert _text(doc) in ("ab",)  # the doc is readable after the panic


def test_wide_varints_are_accepted_by_pycrdt_but_refused_by_the_binding_check() -> None:
    """A clock >= 2**64, silently wrapped by pycrdt, is refused by the binding check."""
    update = YWriter(ycid=5).set("a", "hello")
    assert update[:4] == bytes([1, 1, 5, 0])
    wide_clock = update[:3] + bytes([0x80] * 9 + [0x02]) + update[4:]  # clock = 2**64
    doc = pycrdt.Doc()
    doc.apply_update(wide_clock)  # no error from pycrdt
    with pytest.raises(DecodeError):
        check_binding(wide_clock, 5, 0)


# ---- edits ---------------------------------------------------------------------------------


def test_edit_as_writes_only_under_the_given_ycid() -> None:
    """edit_as yields items only under ycid, continuing its clock, leaving the doc untouched."""
    shared = new_doc()
    apply_update(shared, YWriter(ycid=8).type("base "))
    before = state_bytes(shared)

    def change(doc: pycrdt.Doc[Any]) -> None:
        doc.get("t", type=pycrdt.Text).insert(5, "edit")
        doc.get("m", type=pycrdt.Map)["k"] = "v"

    update = edit_as(shared, 7, change)
    assert state_bytes(shared) == before
    summary = summarize_update(update)
    assert [r.client for r in summary.ranges] == [7]
    assert check_binding(update, 7, 0) == Binding(0, 5)
    apply_update(shared, update)
    assert _text(shared) == "base edit"
    again = edit_as(shared, 7, lambda doc: doc.get("m", type=pycrdt.Map).pop("k"))
    assert check_binding(again, 7, 5).start == 5
    assert state_vector(shared) == {8: 5, 7: 5}


def test_edit_as_with_no_change_is_an_empty_update() -> None:
    """A change that does nothing gives an update that binds to an empty range."""
    update = edit_as(new_doc(), 7, lambda doc: None)
    assert summarize_update(update).ranges == ()
    assert check_binding(update, 7, 3) == Binding(3, 3)


def test_doc_id_is_stable_and_per_circle() -> None:
    """doc_id is deterministic, 16 bytes, and differs per circle and per name."""
    circle, other = b"c" * 16, b"d" * 16
    assert doc_id(circle, "profile") == doc_id(circle, "profile")
    assert len(doc_id(circle, "profile")) == 16
    assert doc_id(circle, "profile") != doc_id(other, "profile")
    assert doc_id(circle, "profile") != doc_id(circle, "roles")
