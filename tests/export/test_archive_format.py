"""The archive decoder: round trips, limits, truncation and fuzzing (only DecodeError)."""

from __future__ import annotations

import hashlib
import io

import pytest
from archive_bytes import build, decode_all, frame_offset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.crypto.ops import MAX_OP_BYTES
from node.errors import DecodeError, NodeError
from node.export.archive_format import (
    LENGTH,
    MAGIC,
    MAX_MANIFEST_BYTES,
    Head,
    encode_frame,
    read_manifest,
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
A, B = bytes(range(16)), bytes(range(1, 17))
SAMPLE = build([(A, [b"one", b"two" * 50]), (B, [b"three"])], {A: [Head(bytes(32), 2, bytes(32))]})


def test_round_trip_keeps_sections_and_order() -> None:
    """Every wire comes back, in its section, in order; the manifest as written."""
    stream = io.BytesIO(SAMPLE)
    manifest = read_manifest(stream, len(SAMPLE))
    assert [(e.circle, e.count, e.name) for e in manifest.circles] == [
        (A, 2, "Garden"), (B, 1, "Garden"),
    ]  # fmt: skip
    assert manifest.circles[0].heads == [Head(bytes(32), 2, bytes(32))]
    assert manifest.total == 3
    assert decode_all(SAMPLE) == 3


def test_every_truncation_is_a_decode_error() -> None:
    """Cut at any byte: DecodeError, never another exception or a silent short read."""
    for cut in range(len(SAMPLE)):
        with pytest.raises(DecodeError):
            decode_all(SAMPLE[:cut])


def test_trailing_bytes_are_refused() -> None:
    with pytest.raises(DecodeError, match="after its last op"):
        decode_all(SAMPLE + b"\x00")


def test_bad_magic_and_future_version_say_so() -> None:
    with pytest.raises(DecodeError, match="bad magic"):
        decode_all(b"PK\x03\x04" + SAMPLE[4:])
    with pytest.raises(DecodeError, match="unsupported archive version 2"):
        decode_all(MAGIC[:-1] + b"\x02" + SAMPLE[len(MAGIC) :])


def test_huge_manifest_length_is_refused_before_reading() -> None:
    """A claimed manifest over the limit, or longer than the file, is refused at once."""
    huge = MAGIC + LENGTH.pack(MAX_MANIFEST_BYTES + 1) + bytes(64)
    with pytest.raises(DecodeError, match="over the limit"):
        decode_all(huge)
    with pytest.raises(DecodeError, match="truncated"):
        decode_all(MAGIC + LENGTH.pack(1_000) + bytes(64))


def test_a_damaged_manifest_is_caught_by_its_checksum() -> None:
    blob = bytearray(SAMPLE)
    blob[len(MAGIC) + LENGTH.size + 3] ^= 0x01
    with pytest.raises(DecodeError, match="damaged"):
        decode_all(bytes(blob))


def test_counts_the_file_cannot_hold_are_refused_early() -> None:
    """A manifest promising more ops than bytes left fails before reading frames."""
    short = build([(A, [b"x"] * 10)])
    cut = frame_offset(short, 0) - LENGTH.size
    with pytest.raises(DecodeError, match="fewer bytes"):
        decode_all(short[: cut + 5])


def test_frame_lengths_out_of_bounds_are_refused() -> None:
    """A zero or over-64-KiB frame length is refused without reading it."""
    for length in (0, MAX_OP_BYTES + 1, 2**32 - 1):
        blob = bytearray(SAMPLE)
        start = frame_offset(SAMPLE, 1) - LENGTH.size
        blob[start : start + LENGTH.size] = LENGTH.pack(length)
        with pytest.raises(DecodeError, match="op #1"):
            decode_all(bytes(blob))


def test_the_writer_refuses_what_the_reader_would() -> None:
    with pytest.raises(NodeError):
        encode_frame(b"")
    with pytest.raises(NodeError):
        encode_frame(bytes(MAX_OP_BYTES + 1))
    with pytest.raises(DecodeError, match="twice"):
        decode_all(build([(A, [b"x"]), (A, [b"y"])]))


@FUZZ
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data: bytes) -> None:
    """Random bytes, bare or after the magic: only DecodeError comes out."""
    for blob in (data, MAGIC + data, MAGIC + LENGTH.pack(len(data)) + data):
        try:
            decode_all(blob)
        except DecodeError:
            pass


@FUZZ
@given(st.data())
def test_fuzz_mutated_archives(data: st.DataObject) -> None:
    """A real archive with flipped, cut or inserted bytes: DecodeError or whole frames."""
    blob = bytearray(SAMPLE)
    for _ in range(data.draw(st.integers(1, 4))):
        spot = data.draw(st.integers(0, len(blob) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            blob[spot] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del blob[spot:]
        else:
            blob[spot:spot] = data.draw(st.binary(min_size=1, max_size=8))
        if not blob:
            break
    try:
        assert decode_all(bytes(blob)) >= 0
    except DecodeError:
        pass


def test_bad_utf8_in_the_manifest_is_a_decode_error() -> None:
    """A manifest string that is not UTF-8 (checksum recomputed, as anyone editing the file
    can) is a DecodeError, not a UnicodeDecodeError escaping as a traceback."""
    (length,) = LENGTH.unpack(SAMPLE[len(MAGIC) : len(MAGIC) + LENGTH.size])
    start = len(MAGIC) + LENGTH.size
    manifest = SAMPLE[start : start + length]
    assert manifest.count(b"\xa6Garden") >= 1
    bad = manifest.replace(b"\xa6Garden", b"\xa6Garde\xff")
    head = MAGIC + LENGTH.pack(length) + bad
    checksum = hashlib.blake2b(head, digest_size=32).digest()
    forged = head + checksum + SAMPLE[start + length + 32 :]
    with pytest.raises(DecodeError, match="does not decode"):
        decode_all(forged)
