"""Tests for node.domain.yupdate: the strict summary of Yjs/Yrs update-v1 bytes.

Ground truth is pycrdt itself: the ranges a summary reports must be exactly the state
vector delta pycrdt reports for the same edit, and a fresh Doc that applies a full update
must end up with the clocks the summary promised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText, merge_updates

from node.domain.yupdate import ClientRange, UpdateSummary, summarize_update
from node.errors import DecodeError

CLIENT = 2**40 + 12345  # a multi-byte varuint, like real (random) client ids
OTHER = 7


# ----------------------------------------------------------------------------- helpers


def vu(value: int) -> bytes:
    """Encode a lib0 varuint."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def vs(text: str | bytes) -> bytes:
    """Encode a lib0 varstring."""
    raw = text.encode() if isinstance(text, str) else text
    return vu(len(raw)) + raw


def decode_sv(sv: bytes) -> dict[int, int]:
    """Decode a state vector: varuint count, then (client, clock) pairs."""
    pos = 0

    def read() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            b = sv[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value

    count = read()
    out = {}
    for _ in range(count):
        client = read()
        out[client] = read()
    assert pos == len(sv)
    return out


def assert_ranges(update: bytes, before: dict[int, int], after: dict[int, int]) -> UpdateSummary:
    """Check that the summary's ranges are exactly the state-vector delta before -> after."""
    summary = summarize_update(update)
    clients = [r.client for r in summary.ranges]
    assert len(clients) == len(set(clients))
    got = {r.client: (r.start, r.start + r.length) for r in summary.ranges if r.length}
    want = {c: (before.get(c, 0), clock) for c, clock in after.items() if clock > before.get(c, 0)}
    assert got == want
    return summary


def assert_full_update(doc: Doc) -> UpdateSummary:
    """A full update covers [0, clock) per client, and a fresh Doc agrees after applying it."""
    full = doc.get_update()
    state = decode_sv(doc.get_state())
    summary = assert_ranges(full, {}, state)
    fresh = Doc()
    fresh.apply_update(full)
    assert decode_sv(fresh.get_state()) == state
    return summary


def edit_and_check(doc: Doc, edit: Callable[[], object]) -> UpdateSummary:
    """Run an edit, then check the incremental update against the state vectors."""
    sv = doc.get_state()
    edit()
    return assert_ranges(doc.get_update(sv), decode_sv(sv), decode_sv(doc.get_state()))


def make_doc() -> Doc:
    """A doc with one of each root type, already holding some content."""
    doc = Doc(client_id=CLIENT)
    doc["text"] = Text("héllo wörld 😀!")
    doc["map"] = Map({"seed": 1})
    doc["array"] = Array([1, 2, 3, 4])
    doc["xml"] = XmlFragment([XmlElement("p", {"class": "x"}, [XmlText("hi")])])
    return doc


def text_of(doc: Doc) -> Text:
    return doc.get("text", type=Text)


def map_of(doc: Doc) -> Map[Any]:
    return doc.get("map", type=Map)


def array_of(doc: Doc) -> Array[Any]:
    return doc.get("array", type=Array)


def xml_of(doc: Doc) -> XmlFragment:
    return doc.get("xml", type=XmlFragment)


def byte_index(text: str, char_index: int) -> int:
    """pycrdt Text indices are UTF-8 byte offsets; map a char index onto one."""
    return len(text[:char_index].encode())


# ------------------------------------------------------------ every kind of content

H = len("héllo".encode())  # byte offset just after "héllo"


def _replace(doc: Doc) -> None:
    with doc.transaction():
        del text_of(doc)[0:H]
        text_of(doc).insert(0, "ciao")


def _xml_text_edits(doc: Doc) -> None:
    element = xml_of(doc).children[0]
    assert isinstance(element, XmlElement)
    inner = element.children[0]
    assert isinstance(inner, XmlText)
    inner.insert(2, " there", {"em": True})
    inner.format(0, 2, {"strong": {"weight": 700}})
    element.attributes["id"] = "p1"


EDITS: dict[str, Callable[[Doc], object]] = {
    "text insert ascii": lambda d: text_of(d).insert(0, "abc"),
    "text insert astral": lambda d: text_of(d).insert(H, "😀👍🏽 𝄞 ok"),
    "text insert combining": lambda d: text_of(d).insert(0, "e\u0301 \u200d\U0001f469\u200d"),
    "text insert with attributes": lambda d: text_of(d).insert(
        H, " big", {"bold": True, "color": "#f00", "size": 3}
    ),
    "text format": lambda d: text_of(d).format(0, H, {"italic": {"a": [1, None]}}),
    "text embed": lambda d: text_of(d).insert_embed(0, {"image": "x.png", "w": 3.5}),
    "text delete": lambda d: text_of(d).__delitem__(slice(0, H)),
    "text replace": _replace,
    "map set int": lambda d: map_of(d).__setitem__("k", 42),
    "map set negative int": lambda d: map_of(d).__setitem__("k", -(2**40)),
    "map set big int": lambda d: map_of(d).__setitem__("k", 2**62 + 1),
    "map set float": lambda d: map_of(d).__setitem__("k", 0.1),
    "map set str": lambda d: map_of(d).__setitem__("k", "välue 😀"),
    "map set bool": lambda d: map_of(d).__setitem__("k", False),
    "map set None": lambda d: map_of(d).__setitem__("k", None),
    "map set bytes": lambda d: map_of(d).__setitem__("k", b"\x00\xff\x80"),
    "map set list": lambda d: map_of(d).__setitem__("k", [1, "a", [2.5, None], b"\x01"]),
    "map set dict": lambda d: map_of(d).__setitem__("k", {"a": {"b": [True, {"c": "d"}]}}),
    "map overwrite": lambda d: map_of(d).__setitem__("seed", 2),
    "map delete": lambda d: map_of(d).pop("seed"),
    "map nested types": lambda d: map_of(d).update(
        {"m": Map({"x": Array([1, Text("deep")])}), "a": Array([Map({"y": 1})]), "t": Text("t")}
    ),
    "array insert": lambda d: array_of(d).insert(2, {"x": [1, 2]}),
    "array extend": lambda d: array_of(d).extend(["a", 1.5, None, True]),
    "array delete": lambda d: array_of(d).__delitem__(slice(1, 3)),
    "array nested": lambda d: array_of(d).append(Array([Text("x"), Map({"k": "v"})])),
    "xml element": lambda d: xml_of(d).children.append(
        XmlElement("div", {"data-x": "1"}, [XmlText("body"), XmlElement("br")])
    ),
    "xml text edits": _xml_text_edits,
    "xml delete": lambda d: xml_of(d).children.__delitem__(0),
    "subdoc": lambda d: map_of(d).__setitem__("doc", Doc()),
    "many edits in one transaction": lambda d: _many(d),
}


def _many(doc: Doc) -> None:
    with doc.transaction():
        text_of(doc).insert(0, "x")
        map_of(doc)["n"] = 1
        array_of(doc).append(2)
        del array_of(doc)[0]


@pytest.mark.parametrize("name", list(EDITS))
def test_incremental_update_ranges_match_state_vector(name: str) -> None:
    """Every content type pycrdt writes parses, and the range is the clock delta of the edit."""
    doc = make_doc()
    summary = edit_and_check(doc, lambda: EDITS[name](doc))
    assert not summary.has_skips
    for r in summary.ranges:
        assert r.client == CLIENT


@pytest.mark.parametrize("name", list(EDITS))
def test_full_update_ranges_match_fresh_doc(name: str) -> None:
    """A full update (with GC/Deleted content after deletes) covers [0, clock) exactly."""
    doc = make_doc()
    EDITS[name](doc)
    summary = assert_full_update(doc)
    assert summary.ranges[0].start == 0


def test_deletes_are_reported() -> None:
    """The delete set is surfaced as (client, clock, len) triples."""
    doc = Doc(client_id=OTHER)
    doc["text"] = text = Text("abcdef")
    summary = edit_and_check(doc, lambda: text.__delitem__(slice(1, 4)))
    assert summary.ranges == ()
    assert summary.deletes == ((OTHER, 1, 3),)


def test_exact_summary_of_a_small_update() -> None:
    """The dataclasses carry exactly the client, start, length, deletes and skip flag."""
    doc = Doc(client_id=OTHER)
    doc["text"] = Text("ab")
    summary = summarize_update(doc.get_update())
    assert summary == UpdateSummary((ClientRange(OTHER, 0, 2),), (), False)
    assert hash(summary) == hash(UpdateSummary((ClientRange(OTHER, 0, 2),), (), False))


def test_mid_character_insert_quirk_is_refused() -> None:
    """After an insert inside an emoji, yrs's full-state update holds an empty string item,
    which is refused; the incremental update of the insert itself is fine.

    Yrs drops or panics on zero-length items depending on the doc's state, so two replicas
    could judge the same op differently; refusing it keeps every replica's verdict equal.
    """
    doc = Doc(client_id=OTHER)
    doc["text"] = text = Text("a😀b")
    sv = doc.get_state()
    text.insert(2, "X")  # byte 2 is inside the emoji
    assert summarize_update(doc.get_update(sv)).ranges == (ClientRange(OTHER, 4, 1),)
    with pytest.raises(DecodeError, match="zero-length"):
        summarize_update(doc.get_update())


def test_empty_string_struct_is_refused() -> None:
    """A hand-made zero-length string item is refused, not counted as length 0."""
    with pytest.raises(DecodeError, match="zero-length"):
        summarize_update(one_struct(b"\x04" + ROOT + vs("")))


def test_merged_updates_with_gaps_have_skips() -> None:
    """merge_updates of non-adjacent updates writes a Skip; its length counts in the range."""
    doc = Doc(client_id=OTHER)
    doc["text"] = text = Text("hello")
    first = doc.get_update()
    text.insert(5, " big")
    sv = doc.get_state()
    text.insert(9, " world")
    merged = merge_updates(first, doc.get_update(sv))
    summary = summarize_update(merged)
    assert summary.has_skips
    assert summary.ranges == (ClientRange(OTHER, 0, 15),)


def test_accepts_bytearray_and_memoryview() -> None:
    """Bytes-like inputs are accepted; anything else is a DecodeError, not a TypeError."""
    update = make_doc().get_update()
    expected = summarize_update(update)
    assert summarize_update(bytearray(update)) == expected  # type: ignore[arg-type]
    assert summarize_update(memoryview(update)) == expected  # type: ignore[arg-type]
    with pytest.raises(DecodeError):
        summarize_update("not bytes")  # type: ignore[arg-type]


# ------------------------------------------------------------- hand-made updates
# One client block for client 7 at clock 0 holding one struct under root "t", then an
# empty delete set. Each is also applied by pycrdt, which must agree on the clock.

ROOT = b"\x01" + vs("t")  # parent info 1 = root by name


def one_struct(struct: bytes, *, clock: int = 0) -> bytes:
    return b"\x01\x01" + vu(OTHER) + vu(clock) + struct + b"\x00"


VALID_STRUCTS: dict[str, tuple[bytes, int]] = {
    "deleted": (b"\x01" + ROOT + vu(5), 5),
    "binary": (b"\x03" + ROOT + vs(b"\x00\x01\x02"), 1),
    "string astral": (b"\x04" + ROOT + vs("😀a"), 3),
    "embed": (b"\x05" + ROOT + vs('{"a": [1, 2]}'), 1),
    "format": (b"\x06" + ROOT + vs("bold") + vs("true"), 1),
    "type array": (b"\x07" + ROOT + b"\x00", 1),
    "type xml element": (b"\x07" + ROOT + b"\x03" + vs("p"), 1),
    "type xml text": (b"\x07" + ROOT + b"\x06", 1),
    "any values": (b"\x08" + ROOT + vu(3) + b"\x7d\x81\x01\x7a" + bytes(8) + b"\x74\x01\x00", 3),
    "any nested": (b"\x08" + ROOT + vu(1) + b"\x76\x01" + vs("k") + b"\x75\x02\x7f\x79", 1),
    "doc": (b"\x29" + ROOT + vs("m") + vs("guid-1") + b"\x76\x01" + vs("gc") + b"\x78", 1),
    "map entry": (b"\x28" + ROOT + vs("key") + b"\x01\x7e", 1),
    "gc": (b"\x00" + vu(4), 4),
}


@pytest.mark.parametrize("name", list(VALID_STRUCTS))
def test_hand_made_struct_lengths_agree_with_pycrdt(name: str) -> None:
    """Each content ref has the documented clock length, and yrs computes the same."""
    struct, length = VALID_STRUCTS[name]
    update = one_struct(struct)
    summary = summarize_update(update)
    assert summary.ranges == (ClientRange(OTHER, 0, length),)
    doc = Doc()
    doc.apply_update(update)
    assert decode_sv(doc.get_state()).get(OTHER, 0) == length


def test_skip_struct_sets_has_skips() -> None:
    """A Skip struct (ref 10) counts in the range and sets has_skips."""
    update = b"\x01\x02" + vu(OTHER) + b"\x00" + b"\x0a\x03" + b"\x04" + ROOT + vs("ab") + b"\x00"
    assert summarize_update(update) == UpdateSummary((ClientRange(OTHER, 0, 5),), (), True)


def test_large_clocks_and_client_ids_within_limits() -> None:
    """Client ids up to 2**53 - 1 and clocks up to 2**32 - 1 are fine."""
    update = (
        b"\x01\x01"
        + vu(2**53 - 1)
        + vu(2**32 - 3)
        + b"\x04"
        + ROOT
        + vs("ab")
        + b"\x01"
        + vu(2**53 - 1)
        + b"\x01"
        + vu(2**32 - 2)
        + b"\x01"
    )
    summary = summarize_update(update)
    assert summary.ranges == (ClientRange(2**53 - 1, 2**32 - 3, 2),)
    assert summary.deletes == ((2**53 - 1, 2**32 - 2, 1),)


def test_origin_ids_at_the_limits_are_accepted() -> None:
    """Origin client 2**53 - 1 (8-byte varuint) and clock 2**32 - 1 (5 bytes) still parse."""
    update = one_struct(
        b"\xc4" + vu(2**53 - 1) + vu(2**32 - 1) + vu(OTHER) + vu(2**32 - 1) + vs("a")
    )
    assert summarize_update(update).ranges == (ClientRange(OTHER, 0, 1),)


def nested_arrays(depth: int) -> bytes:
    return one_struct(b"\x08" + ROOT + b"\x01" + b"\x75\x01" * (depth - 1) + b"\x75\x00")


HOSTILE: dict[str, bytes] = {
    "empty input": b"",
    "varuint longer than 10 bytes": b"\xff" * 10 + b"\x01" + b"\x00",
    "varuint of 2**64": b"\x80" * 9 + b"\x02" + b"\x00",
    "huge run of continuation bytes": b"\x81" * 100_000,
    "2**40 structs": b"\x01" + vu(2**40) + vu(OTHER) + b"\x00" + b"\x00" * 16,
    "2**31 structs": b"\x01" + vu(2**31) + vu(OTHER) + b"\x00" + b"\x00" * 16,
    "2**31 clients": vu(2**31) + b"\x00" * 16,
    "2**31 delete ranges": b"\x00\x01\x07" + vu(2**31) + b"\x00\x01",
    "deeply nested Any arrays": nested_arrays(100_000),
    "Any nested 65 deep": nested_arrays(65),
    "trailing byte": one_struct(b"\x04" + ROOT + vs("a")) + b"\x00",
    "client id 2**53": one_struct(b"\x04" + ROOT + vs("a")).replace(
        b"\x01\x01\x07", b"\x01\x01" + vu(2**53), 1
    ),
    "clock 2**32 wraps in yrs": one_struct(b"\x04" + ROOT + vs("a"), clock=2**32 + 5),
    "clock overflow by length": one_struct(b"\x04" + ROOT + vs("ab"), clock=2**32 - 2),
    "deleted length 2**32": one_struct(b"\x01" + ROOT + vu(2**32 + 1)),
    "origin clock 2**32": one_struct(b"\x84\x07" + vu(2**32) + vs("a")),
    "origin client 2**53": one_struct(b"\x84" + vu(2**53) + b"\x00" + vs("a")),
    "right origin client 2**56": one_struct(b"\x44" + vu(2**56) + b"\x00" + vs("a")),
    "right origin clock 2**35": one_struct(b"\x44\x07" + vu(2**35) + vs("a")),
    "origin client never ends": b"\x01\x01\x07\x00\x84" + b"\x81" * 20,
    "JSON content (yrs reads count + 1)": one_struct(b"\x02" + ROOT + b"\x01" + vs("1")),
    "Move content": one_struct(b"\x0b" + ROOT + b"\x00"),
    "unknown content ref 12": one_struct(b"\x0c" + ROOT + b"\x00"),
    "info bit 0x10": one_struct(b"\x14" + ROOT + vs("a")),
    "GC with origin flag": one_struct(b"\x80\x07\x00\x03"),
    "zero-length GC": one_struct(b"\x00\x00"),
    "zero-length skip": one_struct(b"\x0a\x00"),
    "XmlHook (yrs omits the name)": one_struct(b"\x07" + ROOT + b"\x05" + vs("h")),
    "weak link type ref": one_struct(b"\x07" + ROOT + b"\x07"),
    "undefined type ref": one_struct(b"\x07" + ROOT + b"\x0f"),
    "parent info 2": one_struct(b"\x04\x02\x07\x00" + vs("a")),
    "duplicate client block": b"\x02"
    + (b"\x01\x07\x00\x04" + ROOT + vs("a"))
    + (b"\x01\x07\x01\x04" + ROOT + vs("b"))
    + b"\x00",
    "empty client block": b"\x01\x00\x07\x00\x00",
    "duplicate delete-set client": b"\x00\x02\x07\x01\x00\x01\x07\x01\x02\x01",
    "zero-length delete range": b"\x00\x01\x07\x01\x00\x00",
    "delete range overflow": b"\x00\x01\x07\x01" + vu(2**32 - 1) + b"\x05",
    "invalid UTF-8 string": one_struct(b"\x04" + ROOT + vs(b"\xff\xfe")),
    "surrogate (CESU-8) string": one_struct(b"\x04" + ROOT + vs(b"\xed\xa0\x80")),
    "invalid UTF-8 key": one_struct(b"\x28" + ROOT + vs(b"\xc3") + b"\x01\x7e"),
    "string longer than buffer": one_struct(b"\x04" + ROOT + vu(1000) + b"a"),
    "unknown Any tag": one_struct(b"\x08" + ROOT + b"\x01\x70"),
    "Any count beyond buffer": one_struct(b"\x08" + ROOT + vu(2**20) + b"\x7e"),
    "Any object size beyond buffer": one_struct(b"\x08" + ROOT + b"\x01\x76" + vu(2**30)),
    "signed varint longer than 10 bytes": one_struct(
        b"\x08" + ROOT + b"\x01\x7d" + b"\xff" * 10 + b"\x01"
    ),
    "signed varint of 2**63": one_struct(b"\x08" + ROOT + b"\x01\x7d" + b"\x80" * 9 + b"\x02"),
    "truncated float": b"\x01\x01\x07\x00\x08" + ROOT + b"\x01\x7c\x00\x00",
    "embed that is not JSON": one_struct(b"\x05" + ROOT + vs("{x}")),
    "format value NaN": one_struct(b"\x06" + ROOT + vs("k") + vs("NaN")),
    "subdoc options not an object": one_struct(b"\x29" + ROOT + vs("m") + vs("g") + b"\x7e"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_is_a_decode_error(name: str) -> None:
    """Malformed, oversized or Yrs-ambiguous input raises DecodeError and nothing else."""
    with pytest.raises(DecodeError):
        summarize_update(HOSTILE[name])


def test_any_nested_64_deep_is_accepted() -> None:
    """The Any depth limit is 64 containers: exactly 64 still parses, and yrs agrees."""
    update = nested_arrays(64)
    assert summarize_update(update).ranges == (ClientRange(OTHER, 0, 1),)
    doc = Doc()
    doc.apply_update(update)
    assert decode_sv(doc.get_state()) == {OTHER: 1}


def test_max_structs_is_enforced() -> None:
    """More structs than max_structs is refused before walking them."""
    doc = Doc(client_id=OTHER)
    doc["array"] = array = Array()
    for i in range(5):
        array.append(Map({"i": i}))  # nested types do not merge into one struct
    update = doc.get_update()
    assert summarize_update(update, max_structs=100).ranges
    with pytest.raises(DecodeError):
        summarize_update(update, max_structs=3)


# ------------------------------------------------------------ hypothesis: real edits

_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=6)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | _TEXT
    | st.binary(max_size=6)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(_TEXT, kids, max_size=3),
    max_leaves=6,
)
_ATTRS = st.none() | st.dictionaries(
    st.sampled_from(["bold", "italic", "href"]),
    st.none() | st.booleans() | st.integers(-5, 5) | _TEXT,
    max_size=2,
)
_WHO = st.integers(0, 2)
_IDX = st.integers(0, 1000)
_KEY = st.sampled_from(["a", "b", "c"])

_OPS = st.one_of(
    st.tuples(st.just("text_insert"), _WHO, _IDX, _TEXT, _ATTRS),
    st.tuples(st.just("text_delete"), _WHO, _IDX, _IDX),
    st.tuples(st.just("text_format"), _WHO, _IDX, _IDX, _ATTRS),
    st.tuples(st.just("map_set"), _WHO, _KEY, _VALUES),
    st.tuples(st.just("map_del"), _WHO, _KEY),
    st.tuples(st.just("map_nested"), _WHO, _KEY, st.sampled_from(["map", "array", "text"])),
    st.tuples(st.just("array_insert"), _WHO, _IDX, st.lists(_VALUES, min_size=1, max_size=3)),
    st.tuples(st.just("array_delete"), _WHO, _IDX, st.integers(1, 3)),
    st.tuples(st.just("sync"), _WHO, _WHO),
)


def _apply_op(doc: Doc, op: tuple[Any, ...]) -> None:
    kind = op[0]
    text, map_, array = text_of(doc), map_of(doc), array_of(doc)
    if kind == "text_insert":
        s = str(text)
        attrs = op[4] or None
        text.insert(byte_index(s, op[2] % (len(s) + 1)), op[3], attrs)
    elif kind in ("text_delete", "text_format"):
        s = str(text)
        i = op[2] % (len(s) + 1)
        j = i + op[3] % (len(s) - i + 1)
        start, stop = byte_index(s, i), byte_index(s, j)
        if stop > start:
            if kind == "text_delete":
                del text[start:stop]
            elif op[4]:
                text.format(start, stop, op[4])
    elif kind == "map_set":
        map_[op[2]] = op[3]
    elif kind == "map_del":
        map_.pop(op[2], None)
    elif kind == "map_nested":
        nested = {"map": lambda: Map({"x": 1}), "array": lambda: Array([1]), "text": Text}
        map_[op[2]] = nested[op[3]]()
    elif kind == "array_insert":
        i = op[2] % (len(array) + 1)
        with doc.transaction():
            for offset, value in enumerate(op[3]):
                array.insert(i + offset, value)
    elif kind == "array_delete":
        if len(array):
            i = op[2] % len(array)
            del array[i : min(i + op[3], len(array))]  # pycrdt panics past the end


def _new_docs(count: int) -> list[Doc]:
    docs = []
    for i in range(count):
        doc = Doc(client_id=[OTHER, CLIENT, 2**53 - 1][i])
        for name, kind in (("text", Text), ("map", Map), ("array", Array)):
            doc.get(name, type=kind)
        docs.append(doc)
    return docs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(count=st.integers(1, 3), ops=st.lists(_OPS, min_size=1, max_size=15))
def test_random_edits_by_several_clients(count: int, ops: list[tuple[Any, ...]]) -> None:
    """Every update pycrdt produces for random edits and syncs parses with exact ranges."""
    docs = _new_docs(count)
    for op in ops:
        if op[0] == "sync":
            src, dst = docs[op[1] % count], docs[op[2] % count]
            before, after = decode_sv(dst.get_state()), decode_sv(src.get_state())
            update = src.get_update(dst.get_state())
            summary = summarize_update(update)
            got = {r.client: (r.start, r.start + r.length) for r in summary.ranges if r.length}
            want = {c: (before.get(c, 0), k) for c, k in after.items() if k > before.get(c, 0)}
            assert got == want
            dst.apply_update(update)
        else:
            doc = docs[op[1] % count]
            edit_and_check(doc, lambda doc=doc, op=op: _apply_op(doc, op))
    for doc in docs:
        assert_full_update(doc)


# -------------------------------------------------------------------- hypothesis: fuzz


def _summarize_or_decode_error(data: bytes) -> UpdateSummary | None:
    try:
        summary = summarize_update(data)
    except DecodeError:
        return None
    assert isinstance(summary, UpdateSummary)
    return summary


def _corpus() -> list[bytes]:
    out = []
    doc = make_doc()
    out.append(doc.get_update())
    for edit in EDITS.values():
        sv = doc.get_state()
        edit(doc)
        update = doc.get_update(sv)
        if _summarize_or_decode_error(update) is not None:  # the emoji quirk is refused
            out.append(update)
    if _summarize_or_decode_error(doc.get_update()) is not None:
        out.append(doc.get_update())
    out.append(merge_updates(out[0], out[3]))
    out.extend(one_struct(struct) for struct, _ in VALID_STRUCTS.values())
    return out


CORPUS = _corpus()


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_decode_error(data: bytes) -> None:
    """Arbitrary bytes either summarise or raise DecodeError (no IndexError, ValueError...)."""
    _summarize_or_decode_error(data)


_MUTATIONS = st.lists(
    st.tuples(st.sampled_from(["set", "insert", "delete"]), _IDX, st.integers(0, 255)),
    min_size=1,
    max_size=4,
)


def _mutate(data: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for kind, index, value in mutations:
        i = index % (len(buf) + 1)
        if kind == "insert":
            buf.insert(i, value)
        elif buf and i < len(buf):
            if kind == "set":
                buf[i] = value
            else:
                del buf[i]
    return bytes(buf)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(CORPUS), _MUTATIONS, st.none() | _IDX)
def test_mutated_updates_only_raise_decode_error(
    update: bytes, mutations: list[tuple[str, int, int]], cut: int | None
) -> None:
    """Byte mutations and truncations of valid updates summarise or raise DecodeError."""
    data = _mutate(update, mutations)
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    _summarize_or_decode_error(data)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.sampled_from(CORPUS), _MUTATIONS)
def test_accepted_mutants_do_not_panic_yrs(
    update: bytes, mutations: list[tuple[str, int, int]]
) -> None:
    """Whatever the pre-filter accepts, Yrs decodes without a Rust panic (BaseException)."""
    data = _mutate(update, mutations)
    if _summarize_or_decode_error(data) is None:
        return
    doc = make_doc()
    try:
        doc.apply_update(data)
    except Exception:  # a refused update is fine; a panic would escape as BaseException
        pass


@pytest.mark.parametrize("index", range(len(CORPUS)))
def test_every_truncation_and_extension_is_rejected(index: int) -> None:
    """Every strict prefix of a valid update, and any trailing byte, is a DecodeError."""
    update = CORPUS[index]
    summarize_update(update)
    for cut in range(len(update)):
        with pytest.raises(DecodeError):
            summarize_update(update[:cut])
    for extra in (b"\x00", b"\x01", b"\xff"):
        with pytest.raises(DecodeError):
            summarize_update(update + extra)
