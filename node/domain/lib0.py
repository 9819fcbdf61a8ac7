"""lib0 readers for the Yjs update decoder: varuints, strings, buffers and Any values.

Each reader takes ``(data, pos, ...)`` and returns the new position, raising only
``DecodeError`` (or IndexError, which :mod:`node.domain.yupdate` turns into one).
"""

from __future__ import annotations

import json

from node.errors import DecodeError

_U32 = 0xFFFFFFFF
_MAX_CLIENT = (1 << 53) - 1
_VARUINT_CACHE: dict[bytes, int] = {}
_MAX_ANY_DEPTH = 64
_JSON_LITERALS = frozenset((b"true", b"false", b"null"))
_HIGH_BIT = bytes(i >> 7 for i in range(256))


def _varuint_tail(data: bytes, pos: int, first: int, limit: int) -> tuple[int, int]:
    """Finish a varuint whose first byte ``first`` (>= 0x80) was read; ``pos`` is after it."""
    value = first & 0x7F
    shift = 7
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
        if shift >= 70:
            raise DecodeError("varuint longer than 10 bytes")
    if value > limit:
        if value >> 64:
            raise DecodeError("varuint does not fit in 64 bits")
        raise DecodeError(f"integer out of range: {value}")
    return value, pos


def _varuint_long(data: bytes, hi: bytes, pos: int, limit: int) -> tuple[int, int]:
    """Read a multi-byte varuint starting at ``pos`` (``hi`` is ``data``'s high-bit map).

    Client ids are 5-8 byte varuints that recur in every op, so decoded values are
    memoised by their raw bytes.
    """
    end = hi.find(0, pos) + 1
    if not end:
        raise DecodeError("update is truncated")
    if end - pos > 10:
        raise DecodeError("varuint longer than 10 bytes")
    raw = data[pos:end]
    value = _VARUINT_CACHE.get(raw)
    if value is None:
        value = 0
        for shift, b in zip(range(0, 70, 7), raw, strict=False):
            value |= (b & 0x7F) << shift
        if value >> 64:
            raise DecodeError("varuint does not fit in 64 bits")
        if len(_VARUINT_CACHE) >= 4096:
            _VARUINT_CACHE.clear()
        _VARUINT_CACHE[raw] = value
    if value > limit:
        raise DecodeError(f"integer out of range: {value}")
    return value, end


def _skip_str(data: bytes, pos: int, n: int) -> int:
    """Skip a varstring, checking that it is valid UTF-8."""
    ln = data[pos]
    pos += 1
    if ln >= 0x80:
        ln, pos = _varuint_tail(data, pos, ln, _U32)
    end = pos + ln
    if end > n:
        raise DecodeError("string runs past the end")
    chunk = data[pos:end]
    if not chunk.isascii():
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("string is not valid UTF-8") from None
    return end


def _skip_buf(data: bytes, pos: int, n: int) -> int:
    """Skip a varbuffer."""
    ln = data[pos]
    pos += 1
    if ln >= 0x80:
        ln, pos = _varuint_tail(data, pos, ln, _U32)
    end = pos + ln
    if end > n:
        raise DecodeError("buffer runs past the end")
    return end


def _reject_constant(name: str) -> object:
    raise DecodeError(f"JSON constant {name} is not allowed")


def _skip_json(data: bytes, pos: int, n: int) -> int:
    """Skip a varstring holding JSON text (Embed / Format values), checking it parses."""
    ln = data[pos]
    pos += 1
    if ln >= 0x80:
        ln, pos = _varuint_tail(data, pos, ln, _U32)
    end = pos + ln
    if end > n:
        raise DecodeError("JSON text runs past the end")
    chunk = data[pos:end]
    if chunk in _JSON_LITERALS:
        return end
    try:
        json.loads(chunk.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise DecodeError("embedded JSON does not parse") from None
    return end


def _skip_signed(data: bytes, pos: int) -> int:
    """Skip a lib0 signed varint (sign bit 0x40 and 6 data bits in the first byte)."""
    b = data[pos]
    pos += 1
    if b < 0x80:
        return pos
    value = b & 0x3F
    shift = 6
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
        if shift >= 69:
            raise DecodeError("varint longer than 10 bytes")
    if value >> 63:
        raise DecodeError("varint does not fit in 64 bits")
    return pos


def _skip_any(data: bytes, pos: int, n: int, count: int) -> int:
    """Skip ``count`` consecutive lib0 Any values (iteratively, depth-bounded)."""
    stack: list[int] = []  # saved (remaining << 1 | is_object) of the enclosing containers
    remaining = count
    is_obj = False
    while True:
        if not remaining:
            if not stack:
                return pos
            saved = stack.pop()
            remaining = saved >> 1
            is_obj = bool(saved & 1)
            continue
        remaining -= 1
        if is_obj:
            pos = _skip_str(data, pos, n)
        tag = data[pos]
        pos += 1
        if tag >= 126 or tag == 121 or tag == 120:  # undefined, null, false, true
            continue
        if tag == 119:  # string
            pos = _skip_str(data, pos, n)
        elif tag == 124:  # float32
            pos += 4
            if pos > n:
                raise DecodeError("float runs past the end")
        elif tag == 123 or tag == 122:  # float64, bigint
            pos += 8
            if pos > n:
                raise DecodeError("number runs past the end")
        elif tag == 125:  # signed varint
            pos = _skip_signed(data, pos)
        elif tag == 118 or tag == 117:  # object, array
            if len(stack) >= _MAX_ANY_DEPTH:
                raise DecodeError("Any value nested too deeply")
            cnt = data[pos]
            pos += 1
            if cnt >= 0x80:
                cnt, pos = _varuint_tail(data, pos, cnt, _U32)
            if tag == 118:
                if cnt * 2 > n - pos:
                    raise DecodeError("object size exceeds the remaining bytes")
            elif cnt > n - pos:
                raise DecodeError("array size exceeds the remaining bytes")
            if cnt:
                stack.append(remaining << 1 | is_obj)
                remaining = cnt
                is_obj = tag == 118
        elif tag == 116:  # buffer
            pos = _skip_buf(data, pos, n)
        else:
            raise DecodeError(f"unknown Any tag {tag}")


def _skip_id(data: bytes, pos: int) -> int:
    """Skip an ID (client < 2**53, clock u32)."""
    b = data[pos]
    pos += 1
    if b >= 0x80:
        _, pos = _varuint_tail(data, pos, b, _MAX_CLIENT)
    b = data[pos]
    pos += 1
    if b >= 0x80:
        _, pos = _varuint_tail(data, pos, b, _U32)
    return pos


# ------------------------------------------------------------------------- the parser
