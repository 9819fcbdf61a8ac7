"""Tests for node.crypto.ops: the signed op's encoding, ids, signature and decoder limits."""

from __future__ import annotations

import hashlib

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.crypto.keys import KeyPair
from node.crypto.ops import (
    MAX_DEPS,
    MAX_OP_BYTES,
    SIGN_CONTEXT,
    Header,
    Op,
    OpKind,
    decode_header,
    decode_op,
    encode_wire,
    make_op,
    op_from_parts,
    verify_op,
)
from node.errors import DecodeError, SignatureError

KEY = KeyPair.from_seed(b"k" * 32)
OTHER = KeyPair.from_seed(b"o" * 32)
CIRCLE = bytes(range(16))
DOC = bytes(range(16, 32))
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _small_op(**overrides: object) -> Op:
    fields: dict[str, object] = {
        "kind": OpKind.Y,
        "circle": CIRCLE,
        "seq": 2,
        "backlink": b"\x01" * 32,
        "body": b"update",
        "deps": [b"\x02" * 32],
        "doc": DOC,
        "ycid": 77,
        "ts": 1_700_000_000,
    }
    fields.update(overrides)
    return make_op(KEY, **fields)  # type: ignore[arg-type]


def _signed(header_bytes: bytes, body: bytes, key: KeyPair = KEY) -> bytes:
    """A wire with ``header_bytes`` as given, correctly signed by ``key``."""
    return encode_wire(header_bytes, key.sign(SIGN_CONTEXT + header_bytes), body)


def _decode_and_verify(data: bytes) -> Op:
    op = decode_op(data)
    verify_op(op)
    return op


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


b16 = st.binary(min_size=16, max_size=16)
b32 = st.binary(min_size=32, max_size=32)


@FAST
@given(
    kind=st.sampled_from(OpKind),
    circle=b16,
    doc=st.none() | b16,
    ycid=st.integers(0, 2**53 - 1),
    seq=st.integers(1, 2**63 - 1),
    backlink=st.none() | b32,
    deps=st.lists(b32, max_size=MAX_DEPS, unique=True),
    ts=st.integers(0, 2**63 - 1),
    body=st.binary(max_size=2048),
)
def test_round_trip(
    kind: OpKind,
    circle: bytes,
    doc: bytes | None,
    ycid: int,
    seq: int,
    backlink: bytes | None,
    deps: list[bytes],
    ts: int,
    body: bytes,
) -> None:
    """make_op -> wire -> decode_op -> verify_op gives back every field and the same op id."""
    op = make_op(
        KEY,
        kind=kind,
        circle=circle,
        seq=seq,
        backlink=backlink,
        body=body,
        deps=deps,
        doc=doc,
        ycid=ycid,
        ts=ts,
    )
    back = _decode_and_verify(op.wire())
    assert back == op
    header = back.header
    assert (header.kind, header.doc, header.ycid, header.seq) == (kind, doc, ycid, seq)
    assert (header.backlink, header.deps, header.ts) == (backlink, sorted(deps), ts)
    assert header.author == KEY.public
    assert back.body == body
    assert header.body_len == len(body)
    if kind is OpKind.GENESIS:
        assert header.circle == bytes(16)
        assert back.circle == back.op_id[:16]
    else:
        assert back.circle == circle


def test_op_id_is_blake2b_of_header_and_signature() -> None:
    """op_id = BLAKE2b-256(header_bytes || sig); the body is bound through body_hash only."""
    op = _small_op()
    expected = hashlib.blake2b(op.header_bytes + op.sig, digest_size=32).digest()
    assert op.op_id == expected
    assert op.header.body_hash == hashlib.blake2b(op.body, digest_size=32).digest()
    assert decode_op(op.wire()).op_id == expected


def test_signature_covers_the_context_string() -> None:
    """A signature over the bare header bytes (no domain separation prefix) is refused."""
    op = _small_op()
    bare = encode_wire(op.header_bytes, KEY.sign(op.header_bytes), op.body)
    with pytest.raises(SignatureError):
        _decode_and_verify(bare)


def test_every_single_bit_flip_is_rejected() -> None:
    """Any single flipped bit of header, sig, body or envelope raises DecodeError/SignatureError."""
    op = _small_op(body=b"tiny")
    parts = {
        "header": op.header_bytes,
        "sig": op.sig,
        "body": op.body,
    }
    for name, data in parts.items():
        for bit in range(len(data) * 8):
            mutated = dict(parts, **{name: _flip(data, bit)})
            with pytest.raises((DecodeError, SignatureError)):
                _decode_and_verify(encode_wire(mutated["header"], mutated["sig"], mutated["body"]))
    whole = op.wire()
    for bit in range(len(whole) * 8):
        with pytest.raises((DecodeError, SignatureError)):
            _decode_and_verify(_flip(whole, bit))


@FAST
@given(body=st.binary(max_size=300), data=st.data())
def test_sampled_bit_flips_in_larger_ops_are_rejected(body: bytes, data: st.DataObject) -> None:
    """For random bodies, a flipped bit anywhere in the wire never yields a verified op."""
    whole = _small_op(body=body, deps=[bytes([i]) * 32 for i in range(5)]).wire()
    bit = data.draw(st.integers(0, len(whole) * 8 - 1))
    with pytest.raises((DecodeError, SignatureError)):
        _decode_and_verify(_flip(whole, bit))


def test_re_signing_with_another_key_is_rejected() -> None:
    """Header bytes naming one author but signed by another key do not verify."""
    op = _small_op()
    forged = encode_wire(op.header_bytes, OTHER.sign(SIGN_CONTEXT + op.header_bytes), op.body)
    with pytest.raises(SignatureError, match="signature"):
        _decode_and_verify(forged)


def test_swapped_body_is_rejected() -> None:
    """A different body under a valid signature fails the body hash (same length) or length."""
    op = _small_op(body=b"aaaa")
    with pytest.raises(SignatureError, match="hash"):
        _decode_and_verify(encode_wire(op.header_bytes, op.sig, b"bbbb"))
    with pytest.raises(SignatureError, match="length"):
        _decode_and_verify(encode_wire(op.header_bytes, op.sig, b"aaaaa"))


def _fields(op: Op) -> list[bytes]:
    """The header's 12 fields, each msgpack-encoded on its own."""
    return [msgspec.msgpack.encode(value) for value in msgspec.msgpack.decode(op.header_bytes)]


def _join(fields: list[bytes]) -> bytes:
    return b"\x9c" + b"".join(fields)  # fixarray of 12


@pytest.mark.parametrize(
    ("index", "wide"),
    [
        (0, b"\xcc\x01"),  # v=1 as uint8 instead of a positive fixint
        (0, b"\xd0\x01"),  # v=1 as int8
        (1, b"\xcd\x00\x02"),  # kind=2 as uint16
        (2, b"\xc5\x00\x10" + CIRCLE),  # a 16-byte circle as bin16 instead of bin8
        (5, b"\xce\x00\x00\x00\x4d"),  # ycid=77 as uint32 instead of uint8
        (6, b"\xcf" + (2).to_bytes(8, "big")),  # seq=2 as uint64
        (8, b"\xdc\x00\x01" + msgspec.msgpack.encode(b"\x02" * 32)),  # deps as array16
        (9, b"\xcf" + (1_700_000_000).to_bytes(8, "big")),  # ts as uint64, not uint32
    ],
)
def test_non_canonical_header_is_refused(index: int, wide: bytes) -> None:
    """A signed header using a wider msgpack form than needed is refused (one op, one id)."""
    op = _small_op()
    fields = _fields(op)
    assert _join(fields) == op.header_bytes
    fields[index] = wide
    header = _join(fields)
    assert msgspec.msgpack.decode(header, type=Header) == op.header  # same logical header
    with pytest.raises(DecodeError, match="canonical"):
        decode_op(_signed(header, op.body))
    with pytest.raises(DecodeError, match="canonical"):
        decode_op(_signed(b"\xdc\x00\x0c" + op.header_bytes[1:], op.body))  # array16


def test_size_limit_is_exact() -> None:
    """A wire of exactly MAX_OP_BYTES decodes; one byte more is refused before parsing."""
    probe = _small_op(body=b"").wire()
    # body bin32 framing: 5 bytes; the body hash and length also change with the body
    size = MAX_OP_BYTES - len(probe) - 5
    op = _small_op(body=b"x" * size)
    while len(op.wire()) > MAX_OP_BYTES:
        size -= 1
        op = _small_op(body=b"x" * size)
    while len(op.wire()) < MAX_OP_BYTES:
        size += 1
        op = _small_op(body=b"x" * size)
    assert len(op.wire()) == MAX_OP_BYTES
    assert _decode_and_verify(op.wire()) == op
    bigger = _small_op(body=b"x" * (size + 1)).wire()
    assert len(bigger) == MAX_OP_BYTES + 1
    with pytest.raises(DecodeError, match="exceeds"):
        decode_op(bigger)


def test_oversize_op_is_refused() -> None:
    """An op carrying a body over 64 KiB is refused with DecodeError."""
    with pytest.raises(DecodeError, match="limit"):
        decode_op(_small_op(body=b"\0" * (64 * 1024 + 1)).wire())


def test_deps_limit() -> None:
    """Twenty deps decode; twenty-one are refused even when correctly signed."""
    deps = [bytes([i]) * 32 for i in range(MAX_DEPS + 1)]
    assert len(_decode_and_verify(_small_op(deps=deps[:MAX_DEPS]).wire()).header.deps) == 20
    with pytest.raises(DecodeError):
        decode_op(_small_op(deps=deps).wire())


@pytest.mark.parametrize(
    ("index", "value"),
    [
        (0, 2),  # unknown version
        (1, 9),  # unknown kind
        (2, b"\x00" * 15),  # circle of 15 bytes
        (3, b"\x00" * 17),  # doc of 17 bytes
        (4, b"\x00" * 31),  # author of 31 bytes
        (5, 2**53),  # ycid beyond 2**53 - 1
        (5, -1),  # negative ycid
        (6, 2**63),  # seq beyond u63
        (7, b"\x00" * 33),  # backlink of 33 bytes
        (8, [b"\x00" * 31]),  # a dep of 31 bytes
        (11, b"\x00" * 32 + b"\x00"),  # body hash of 33 bytes
    ],
)
def test_out_of_range_header_fields_are_refused(index: int, value: object) -> None:
    """Each header field is type- and range-checked on decode (DecodeError)."""
    fields = msgspec.msgpack.decode(_small_op().header_bytes)
    fields[index] = value
    header = msgspec.msgpack.encode(fields)
    with pytest.raises(DecodeError):
        decode_op(_signed(header, b"update"))


def test_signature_of_wrong_length_is_refused() -> None:
    """A signature that is not 64 bytes is a decode error, not a crash in libsodium."""
    op = _small_op()
    for sig in (b"", op.sig[:63], op.sig + b"\0"):
        with pytest.raises(DecodeError, match="64 bytes"):
            decode_op(encode_wire(op.header_bytes, sig, op.body))
    with pytest.raises(DecodeError):
        op_from_parts(op.header_bytes, op.sig[:10], op.body)


def test_envelope_shape_is_checked() -> None:
    """The wire must be a 3-element msgpack array of bin values."""
    op = _small_op()
    shapes = [
        msgspec.msgpack.encode([op.header_bytes, op.sig]),
        msgspec.msgpack.encode([op.header_bytes, op.sig, op.body, b""]),
        msgspec.msgpack.encode([op.header_bytes.hex(), op.sig, op.body]),
        msgspec.msgpack.encode({"h": op.header_bytes}),
        op.wire() + b"\x00",
        b"",
    ]
    for data in shapes:
        with pytest.raises(DecodeError):
            decode_op(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    """Arbitrary bytes either decode or raise DecodeError: never another exception."""
    try:
        op = decode_op(data)
    except DecodeError:
        return
    with pytest.raises(SignatureError):  # random bytes never carry a valid signature
        verify_op(op)


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.binary(max_size=40)
    | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=13) | st.dictionaries(st.text(max_size=4), kids),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(st.lists(msgpack_values, min_size=0, max_size=4))
def test_structured_garbage_raises_only_decode_error(values: list[object]) -> None:
    """Well-formed msgpack of the wrong shape, as header or as envelope, is a DecodeError."""
    try:
        packed = msgspec.msgpack.encode(values)
    except (OverflowError, msgspec.EncodeError):
        return
    with pytest.raises(DecodeError):
        decode_op(packed)
    with pytest.raises(DecodeError):
        decode_header(packed)
    with pytest.raises((DecodeError, SignatureError)):
        _decode_and_verify(encode_wire(packed, b"\0" * 64, b""))
