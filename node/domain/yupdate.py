"""Strict, fast summary of a Yjs/Yrs *update v1* (what ``pycrdt.Doc.get_update`` returns).

Why: a signed op carries a pycrdt update written by a member whose Yjs client id is
registered. Before the update reaches Yrs we must know exactly which clock ranges it
adds, under which client ids, and what it deletes -- and we must refuse anything Yrs
could misread or panic on (a Rust panic surfaces as a ``BaseException``).

Format (lib0 v1, as written by yrs 0.28 / pycrdt 0.14; all integers are lib0 varuints,
7 bits per byte, little-endian groups, high bit = "more"):

    update      = structs delete_set
    structs     = n_clients { n_structs client clock struct* }
    struct      = info:u8 ...
        info == 0   GC:    len                       (clock length = len)
        info == 10  Skip:  len                       (clock length = len)
        otherwise   Item:  [origin ID if info&0x80] [right origin ID if info&0x40]
                           if neither: parent_info (1 -> varstring root name, 0 -> parent ID)
                                       [varstring parent_sub if info&0x20]
                           content by ref = info & 0x1F:
                1 Deleted  len                       -> len
                3 Binary   varbuffer                 -> 1
                4 String   varstring                 -> UTF-16 code units of the string
                5 Embed    varstring (JSON text)     -> 1
                6 Format   varstring key, varstring (JSON text) -> 1
                7 Type     type_ref:u8 (3 = XmlElement: + varstring tag name) -> 1
                8 Any      count, count x lib0 Any   -> count
                9 Doc      varstring guid, lib0 Any (an object: the options) -> 1
    ID          = client clock
    delete_set  = n_clients { client n_ranges { clock len }* }
    varstring   = len + UTF-8 bytes;  varbuffer = len + bytes
    lib0 Any    = tag:u8 ... (127 undefined, 126 null, 125 signed varint, 124 f32,
                  123 f64, 122 i64, 121 false, 120 true, 119 varstring,
                  118 object {varstring key, Any}*, 117 array Any*, 116 varbuffer)

Invariants of a returned :class:`UpdateSummary` (anything else raises ``DecodeError``,
and nothing but ``DecodeError`` is ever raised):

* every byte was walked: each struct and Any value fully parsed, no trailing bytes;
* each client appears in at most one struct block (and at most once in the delete set);
  ``ranges[i]`` covers clocks ``[start, start + length)`` exactly, where length is the
  sum of the struct lengths as Yrs computes them; zero-length items are refused (Yrs
  drops or panics on them depending on the doc's state, so accepting them would make
  replicas judge the same op differently);
* client ids are ``< 2**53``; clocks, lengths and ``start + length`` fit in a u32 (Yrs
  keeps clocks as u32 and silently wraps larger values, which would let the bytes mean
  something else to Yrs than to us); varuints are at most 10 bytes;
* counts never exceed what the remaining bytes could hold; at most ``max_structs``
  structs in total; Any values nest at most 64 deep; strings are valid UTF-8.

Note for callers: yrs puts the doc's *whole* delete set into every update, incremental
ones included, so ``deletes`` lists old deletions too; only ``ranges`` is "what is new".
A summary proves what the bytes say, not that Yrs can integrate them (an item may still
wait on missing origins, and applying can still fail): keep treating apply as fallible.

Deliberately refused although the wire format allows them (Yrs reads them differently
from Yjs, or cannot decode them at all, and pycrdt never writes them):

* content ref 2 (JSON): Yrs reads ``count + 1`` strings where Yjs reads ``count``, so the
  rest of the update would be parsed differently;
* content ref 11 (Move) and any other ref; GC/Skip info bytes with flag bits set;
* type refs other than Array 0, Map 1, Text 2, XmlElement 3, XmlFragment 4, XmlText 6
  (Yrs reads XmlHook 5 *without* the hook name Yjs writes; 7/9/15 are never written);
* zero-length GC/Skip structs and delete ranges, empty client blocks, parent_info other
  than 0/1, Doc options that are not an object, Embed/Format JSON that does not parse.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.domain.lib0 import (
    _HIGH_BIT,
    _MAX_CLIENT,
    _U32,
    _skip_any,
    _skip_buf,
    _skip_id,
    _skip_json,
    _skip_str,
    _varuint_long,
)
from node.errors import DecodeError

__all__ = ["ClientRange", "UpdateSummary", "summarize_update"]


@dataclass(frozen=True, slots=True)
class ClientRange:
    """The clock range one client block of an update covers."""

    client: int  # Yjs client id
    start: int  # first clock in this update for that client
    length: int  # total clock length of the structs (sum of item/GC/skip lengths)


@dataclass(frozen=True, slots=True)
class UpdateSummary:
    """What an update adds (per client) and deletes."""

    ranges: tuple[ClientRange, ...]  # one per client block, in encoded order
    deletes: tuple[tuple[int, int, int], ...]  # (client, clock, len) from the delete set
    has_skips: bool  # whether Skip structs (ref 10) appear


# Frozen-dataclass __init__ goes through object.__setattr__ once per field, which costs
# about as much as parsing a small update. The parser builds its results through the slot
# descriptors instead: same objects (eq/hash/repr unchanged), half the cost.
_new = object.__new__
_set_client = vars(ClientRange)["client"].__set__
_set_start = vars(ClientRange)["start"].__set__
_set_length = vars(ClientRange)["length"].__set__
_set_ranges = vars(UpdateSummary)["ranges"].__set__
_set_deletes = vars(UpdateSummary)["deletes"].__set__
_set_has_skips = vars(UpdateSummary)["has_skips"].__set__


def _client_range(client: int, start: int, length: int) -> ClientRange:
    r: ClientRange = _new(ClientRange)
    _set_client(r, client)
    _set_start(r, start)
    _set_length(r, length)
    return r


def _update_summary(
    ranges: tuple[ClientRange, ...], deletes: tuple[tuple[int, int, int], ...], has_skips: bool
) -> UpdateSummary:
    s: UpdateSummary = _new(UpdateSummary)
    _set_ranges(s, ranges)
    _set_deletes(s, deletes)
    _set_has_skips(s, has_skips)
    return s


# --------------------------------------------------------------------------- helpers
# Each helper takes the buffer and a position and returns the new position. Reading past
# the end raises IndexError, which summarize_update turns into DecodeError("truncated").


def summarize_update(data: bytes, *, max_structs: int = 100_000) -> UpdateSummary:
    """Walk a whole v1 update and summarise it; raise ``DecodeError`` if it is malformed."""
    if type(data) is not bytes:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise DecodeError("an update must be bytes")
        data = bytes(data)
    try:
        return _summarize(data, max_structs)
    except IndexError:
        raise DecodeError("update is truncated") from None


def _summarize(data: bytes, max_structs: int) -> UpdateSummary:
    # One flat loop with the common single-byte cases inlined: this runs for every op.
    # Reading past the end raises IndexError (turned into DecodeError by the caller);
    # slices never raise, so every slice end is checked against n explicitly.
    n = len(data)
    hi = data.translate(_HIGH_BIT)  # 1 where a varuint continues, 0 where one ends
    hfind = hi.find
    vl = _varuint_long
    skip_str = _skip_str
    u32 = _U32
    max_client = _MAX_CLIENT

    # ---- structs
    n_clients = data[0]
    pos = 1
    if n_clients >= 0x80:
        n_clients, pos = vl(data, hi, pos - 1, u32)
    if n_clients * 3 > n - pos:
        raise DecodeError("client count exceeds the remaining bytes")
    ranges: list[ClientRange] = []
    seen: set[int] = set()
    has_skips = False
    total_structs = 0
    for _ in range(n_clients):
        n_structs = data[pos]
        pos += 1
        if n_structs >= 0x80:
            n_structs, pos = vl(data, hi, pos - 1, u32)
        client = data[pos]
        pos += 1
        if client >= 0x80:
            client, pos = vl(data, hi, pos - 1, max_client)
        start = data[pos]
        pos += 1
        if start >= 0x80:
            start, pos = vl(data, hi, pos - 1, u32)
        if not n_structs:
            raise DecodeError("empty client block")
        total_structs += n_structs
        if total_structs > max_structs:
            raise DecodeError("too many structs")
        if n_structs * 2 > n - pos:
            raise DecodeError("struct count exceeds the remaining bytes")
        if client in seen:
            raise DecodeError(f"client {client} appears twice")
        seen.add(client)
        length = 0
        for _ in range(n_structs):
            info = data[pos]
            pos += 1
            if info & 0xC0:
                # Left and/or right origin IDs. Only bounds matter, not values: a client
                # varuint of 8 bytes is < 2**53 iff its last byte is < 0x10, a clock of 5
                # bytes is < 2**32 iff its last byte is < 0x10; shorter ones always fit.
                if info & 0x80:  # left origin
                    if data[pos] >= 0x80:
                        end = hfind(0, pos)
                        if end < 0 or end - pos > 7 or (end - pos == 7 and data[end] > 0x0F):
                            vl(data, hi, pos, max_client)  # the exact check
                        pos = end + 1
                    else:
                        pos += 1
                    if data[pos] >= 0x80:
                        end = hfind(0, pos)
                        if end < 0 or end - pos > 4 or (end - pos == 4 and data[end] > 0x0F):
                            vl(data, hi, pos, u32)  # the exact check
                        pos = end + 1
                    else:
                        pos += 1
                if info & 0x40:  # right origin
                    if data[pos] >= 0x80:
                        end = hfind(0, pos)
                        if end < 0 or end - pos > 7 or (end - pos == 7 and data[end] > 0x0F):
                            vl(data, hi, pos, max_client)  # the exact check
                        pos = end + 1
                    else:
                        pos += 1
                    if data[pos] >= 0x80:
                        end = hfind(0, pos)
                        if end < 0 or end - pos > 4 or (end - pos == 4 and data[end] > 0x0F):
                            vl(data, hi, pos, u32)  # the exact check
                        pos = end + 1
                    else:
                        pos += 1
            elif info == 0 or info == 10:  # GC / Skip
                ln = data[pos]
                pos += 1
                if ln >= 0x80:
                    ln, pos = vl(data, hi, pos - 1, u32)
                if not ln:
                    raise DecodeError("zero-length GC/Skip struct")
                length += ln
                if info:
                    has_skips = True
                continue
            else:
                parent_info = data[pos]
                pos += 1
                if parent_info == 1:
                    pos = skip_str(data, pos, n)
                elif parent_info == 0:
                    pos = _skip_id(data, pos)
                else:
                    raise DecodeError("bad parent info")
                if info & 0x20:
                    pos = skip_str(data, pos, n)
            ref = info & 0x1F
            if ref == 4:  # String: length in UTF-16 code units
                ln = data[pos]
                pos += 1
                if ln >= 0x80:
                    ln, pos = vl(data, hi, pos - 1, u32)
                end = pos + ln
                if end > n:
                    raise DecodeError("string runs past the end")
                if ln == 0:
                    raise DecodeError("zero-length item")
                chunk = data[pos:end]
                pos = end
                if chunk.isascii():
                    length += ln
                else:
                    try:
                        text = chunk.decode("utf-8")
                    except UnicodeDecodeError:
                        raise DecodeError("string is not valid UTF-8") from None
                    length += len(text.encode("utf-16-le")) >> 1
            elif ref == 8:  # Any: count values
                cnt = data[pos]
                pos += 1
                if cnt >= 0x80:
                    cnt, pos = vl(data, hi, pos - 1, u32)
                if cnt > n - pos:
                    raise DecodeError("value count exceeds the remaining bytes")
                if cnt == 0:
                    raise DecodeError("zero-length item")
                for _ in range(cnt):
                    tag = data[pos]
                    if tag == 119:
                        pos = skip_str(data, pos + 1, n)
                    elif tag == 124:
                        pos += 5
                    elif tag >= 126 or tag == 120 or tag == 121:
                        pos += 1
                    else:
                        pos = _skip_any(data, pos, n, 1)
                if pos > n:
                    raise DecodeError("value runs past the end")
                length += cnt
            elif ref == 1:  # Deleted
                ln = data[pos]
                pos += 1
                if ln >= 0x80:
                    ln, pos = vl(data, hi, pos - 1, u32)
                if ln == 0:
                    raise DecodeError("zero-length item")
                length += ln
            elif ref == 7:  # Type
                type_ref = data[pos]
                pos += 1
                if type_ref == 3:
                    pos = skip_str(data, pos, n)
                elif type_ref > 6 or type_ref == 5:
                    raise DecodeError(f"unsupported type ref {type_ref}")
                length += 1
            elif ref == 6:  # Format
                pos = skip_str(data, pos, n)
                pos = _skip_json(data, pos, n)
                length += 1
            elif ref == 3:  # Binary
                pos = _skip_buf(data, pos, n)
                length += 1
            elif ref == 5:  # Embed
                pos = _skip_json(data, pos, n)
                length += 1
            elif ref == 9:  # Doc
                pos = skip_str(data, pos, n)
                if data[pos] != 118:
                    raise DecodeError("subdocument options are not an object")
                pos = _skip_any(data, pos, n, 1)
                length += 1
            else:
                raise DecodeError(f"unsupported content ref {ref}")
        if start + length > u32:
            raise DecodeError("clock overflows 32 bits")
        ranges.append(_client_range(client, start, length))

    # ---- delete set
    n_clients = data[pos]
    pos += 1
    if n_clients >= 0x80:
        n_clients, pos = vl(data, hi, pos - 1, u32)
    if n_clients * 2 > n - pos:
        raise DecodeError("delete-set client count exceeds the remaining bytes")
    deletes: list[tuple[int, int, int]] = []
    seen.clear()
    for _ in range(n_clients):
        client = data[pos]
        pos += 1
        if client >= 0x80:
            client, pos = vl(data, hi, pos - 1, max_client)
        n_ranges = data[pos]
        pos += 1
        if n_ranges >= 0x80:
            n_ranges, pos = vl(data, hi, pos - 1, u32)
        if n_ranges * 2 > n - pos:
            raise DecodeError("delete range count exceeds the remaining bytes")
        if client in seen:
            raise DecodeError(f"client {client} appears twice in the delete set")
        seen.add(client)
        for _ in range(n_ranges):
            clock = data[pos]
            pos += 1
            if clock >= 0x80:
                clock, pos = vl(data, hi, pos - 1, u32)
            ln = data[pos]
            pos += 1
            if ln >= 0x80:
                ln, pos = vl(data, hi, pos - 1, u32)
            if not ln:
                raise DecodeError("zero-length delete range")
            if clock + ln > u32:
                raise DecodeError("delete range overflows 32 bits")
            deletes.append((client, clock, ln))

    if pos != n:
        raise DecodeError(f"{n - pos} trailing bytes after the update")
    return _update_summary(tuple(ranges), tuple(deletes), has_skips)
