"""The byte layout of a self-verifying archive: pure code over bytes and streams.

An archive is NOT encrypted and NOT signed by the exporting node: every op in it carries
its author's own signature, and a verifier trusts nothing else. What goes in, and how it
is checked, is :mod:`node.export.archive`; docs/exports.md is the user's description.

Archive file (integers big-endian; msgpack as written by msgspec, maps keyed by name)::

    offset   size  field
    0        10    magic b"CNARCHIVE\\x01" (the last byte is the format version)
    10       4     M: manifest length, 0..16 MiB
    14       M     manifest, a msgpack map:
                     created:  uint, unix seconds (display only)
                     exporter: str, the exporting node's name (display only)
                     verifier: str, the command that verifies the file
                     circles:  [{circle: bin16, name: str,
                                 count: uint, the ops in the section,
                                 ops_hash: bin32, BLAKE2b-256 over the section's frames,
                                 heads: [[author: bin32, seq: uint, op_id: bin32]]}]
    14+M     32    BLAKE2b-256 of bytes[0 : 14+M] (catches a damaged manifest early; it is
                   no authority: anyone editing the file can recompute it)
    46+M     ...   one section per manifest entry, in manifest order: ``count`` frames of
                   ``u32 L || L bytes`` (an op wire ``[header, sig, body]`` exactly as
                   stored, 1..64 KiB); the file ends with the last frame.

Limits: at most 10,000 circles, 100,000 heads per circle, 2**32 ops per section, 4 GiB
per file. Every length read from outside is checked against its bound and against the
bytes actually left before anything is read. Decoding raises only :class:`DecodeError`.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, BinaryIO

import msgspec

from node.crypto.ops import MAX_OP_BYTES
from node.errors import DecodeError, NodeError

MAGIC = b"CNARCHIVE\x01"
MiB = 1024 * 1024
MAX_FILE_BYTES = 4096 * MiB
MAX_MANIFEST_BYTES = 16 * MiB
MAX_CIRCLES = 10_000
MAX_HEADS = 100_000
MAX_SECTION_OPS = 2**32 - 1
MAX_NAME = 1_000
LENGTH = struct.Struct(">I")
HASH_BYTES = 32
VERIFIER = "circle-node verify --archive FILE"

Bytes16 = Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
Bytes32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
U63 = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Text = Annotated[str, msgspec.Meta(max_length=MAX_NAME)]


class Head(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """One author's chain end in a circle, as the exporter held it."""

    author: Bytes32
    seq: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
    op_id: Bytes32


class CircleEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One circle's section: ``count`` op frames hashing to ``ops_hash``."""

    circle: Bytes16
    name: Text
    count: Annotated[int, msgspec.Meta(ge=0, le=MAX_SECTION_OPS)]
    ops_hash: Bytes32
    heads: Annotated[list[Head], msgspec.Meta(max_length=MAX_HEADS)]


class Manifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What an archive holds; display fields and an index, never a proof."""

    created: U63
    exporter: Text
    verifier: Text
    circles: Annotated[list[CircleEntry], msgspec.Meta(max_length=MAX_CIRCLES)]

    @property
    def total(self) -> int:
        return sum(entry.count for entry in self.circles)


_manifest_decoder = msgspec.msgpack.Decoder(Manifest)
_encoder = msgspec.msgpack.Encoder()


def blake2b_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=HASH_BYTES).digest()


class SectionHasher:
    """The ``ops_hash`` of a section: BLAKE2b-256 over its frames, length prefixes included."""

    def __init__(self) -> None:
        self._hash = hashlib.blake2b(digest_size=HASH_BYTES)

    def add(self, wire: bytes) -> None:
        self._hash.update(LENGTH.pack(len(wire)) + wire)

    def digest(self) -> bytes:
        return self._hash.digest()


def encode_head(manifest: Manifest) -> bytes:
    """Magic, manifest length, manifest and its checksum: everything before the sections."""
    data = _encoder.encode(manifest)
    if len(data) > MAX_MANIFEST_BYTES:
        raise NodeError(
            f"the manifest would be {len(data)} bytes, over the {MAX_MANIFEST_BYTES}-byte "
            "limit: export fewer circles at once (--circle)"
        )
    head = MAGIC + LENGTH.pack(len(data)) + data
    return head + blake2b_256(head)


def encode_frame(wire: bytes) -> bytes:
    if not 0 < len(wire) <= MAX_OP_BYTES:
        raise NodeError(f"an op of {len(wire)} bytes cannot go in an archive")
    return LENGTH.pack(len(wire)) + wire


def _read_exact(stream: BinaryIO, n: int, what: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise DecodeError(f"the archive's {what} is truncated: the file was cut short")
    return data


def read_manifest(stream: BinaryIO, size: int) -> Manifest:
    """Read and check the head from the stream's start (``size``: the file's bytes)."""
    if size > MAX_FILE_BYTES:
        raise DecodeError(f"the archive is {size} bytes, over the {MAX_FILE_BYTES}-byte limit")
    prefix = stream.read(len(MAGIC))
    if len(prefix) < len(MAGIC) and MAGIC.startswith(prefix):
        raise DecodeError("the archive is truncated: the file was cut short")
    if prefix != MAGIC:
        if len(prefix) == len(MAGIC) and prefix[:-1] == MAGIC[:-1]:
            raise DecodeError(f"unsupported archive version {prefix[-1]}: upgrade circle-node")
        raise DecodeError("not a circle-node archive (bad magic)")
    (length,) = LENGTH.unpack(_read_exact(stream, LENGTH.size, "head"))
    if length > MAX_MANIFEST_BYTES:
        raise DecodeError(f"the archive manifest claims {length} bytes, over the limit")
    if length > size - len(MAGIC) - LENGTH.size - HASH_BYTES:
        raise DecodeError("the archive manifest is truncated: the file was cut short")
    data = _read_exact(stream, length, "manifest")
    checksum = _read_exact(stream, HASH_BYTES, "manifest checksum")
    if blake2b_256(MAGIC + LENGTH.pack(length) + data) != checksum:
        raise DecodeError("the archive manifest is damaged (its checksum does not match)")
    try:
        manifest = _manifest_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # ValidationError included
        raise DecodeError(f"the archive manifest does not decode: {exc}") from exc
    circles = [entry.circle for entry in manifest.circles]
    if len(set(circles)) != len(circles):
        raise DecodeError("the archive manifest names a circle twice")
    least = sum(entry.count for entry in manifest.circles) * (LENGTH.size + 1)
    if least > size - len(MAGIC) - LENGTH.size - length - HASH_BYTES:
        raise DecodeError("the archive holds fewer bytes than its manifest's ops need")
    return manifest


@dataclass(frozen=True, slots=True)
class Frame:
    """One op frame as read: where it is, its section's circle, and its raw wire."""

    index: int  # 0-based position among all the archive's ops
    circle: bytes  # the manifest section it was found in
    wire: bytes


def read_frames(stream: BinaryIO, manifest: Manifest) -> Iterator[Frame | SectionEnd]:
    """Every frame in file order, a :class:`SectionEnd` after each section; then checks
    that nothing follows the last one. DecodeError on a bad length or a short file."""
    index = 0
    for entry in manifest.circles:
        hasher = SectionHasher()
        for _ in range(entry.count):
            (length,) = LENGTH.unpack(_read_exact(stream, LENGTH.size, f"op #{index}"))
            if not 0 < length <= MAX_OP_BYTES:
                raise DecodeError(
                    f"op #{index} of the archive claims {length} bytes "
                    f"(1..{MAX_OP_BYTES} allowed): the file is damaged"
                )
            wire = _read_exact(stream, length, f"op #{index}")
            hasher.add(wire)
            yield Frame(index, entry.circle, wire)
            index += 1
        yield SectionEnd(entry, hasher.digest())
    if stream.read(1):
        raise DecodeError("the archive has bytes after its last op: the file is damaged")


@dataclass(frozen=True, slots=True)
class SectionEnd:
    """The end of one circle's section, with the hash of the frames actually read."""

    entry: CircleEntry
    ops_hash: bytes
