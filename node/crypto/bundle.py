"""Bundle encodings and crypto: the byte layout of bundle and heights files.

Pure code over bytes and streams; :mod:`node.sync.bundle` says what goes in, and why.

Bundle file (integers big-endian; msgpack as written by msgspec; maps keyed by field name)::

    offset   size  field
    0        9     magic b"CNBUNDLE\\x01" (the last byte is the format version)
    9        32    node: the exporting node's Ed25519 public key
    41       4     M: manifest length, 0..16 MiB
    45       M     manifest, a msgpack map:
                     created:  uint, unix seconds (display only)
                     for_node: bin32 | nil, the node the bundle was made for (--for)
                     circles:  [{circle: bin16,
                                 count: uint, the ops in the section,
                                 size: uint, the sealed section's bytes (<= 512 MiB),
                                 section_hash: bin32, BLAKE2b-256 of those bytes,
                                 genesis: bin | nil, the genesis op sealed to for_node}]
    45+M     64    sig = Ed25519(node, b"circle-node/bundle/v1" || bytes[0 : 45+M])
    109+M    ...   one section per manifest entry, in manifest order, each exactly ``size``
                   bytes; the file ends with the last section and is at most 2 GiB.

Section::

    secretstream header (24) || chunk* ;  chunk = u32 L || L sealed bytes (17..4 MiB)

sealed with libsodium ``crypto_secretstream_xchacha20poly1305`` under the circle key, every
chunk with additional data ``b"circle-node/bundle/section/v1" || circle``. Every chunk but
the last has tag MESSAGE and holds a msgpack array of 1..500 op wires (``[header, sig,
body]`` exactly as stored); the last has tag FINAL and holds msgpack ``[count, {author:
seq}]``: the number of ops in the section and the exporter's heights.
Other limits: at most 10,000 circles per bundle and 100,000 authors per heights map.

Circle key: ``BLAKE2b-256(key=b"circle-node/bundle/circle-key/v1", data=genesis op_id ||
genesis sig)``. Sealed genesis: ``crypto_box_seal(genesis wire, X25519 form of for_node)``.

Heights file: the same signed head with magic ``b"CNHEIGHTS\\x01"`` and context
``b"circle-node/heights/v1"`` over the msgpack map ``{created: uint, circles: [{circle:
bin16, sealed: bin}]}``, and nothing after the signature. ``sealed = nonce (24) ||
XChaCha20-Poly1305-IETF(circle key, nonce, ad = b"circle-node/heights/v1" || node ||
circle, msgpack {author: seq})``.

Invariants:

* Every length read from outside is checked against a fixed bound and against the bytes
  actually left before anything is read or allocated for it.
* A head's signature is checked over the exact bytes read, before its manifest is decoded.
* A section opens only under its circle's key and only whole and in order: additional data
  binds each chunk to its circle, the stream binds the order, the FINAL tag marks the end,
  so a dropped, reordered, swapped or truncated chunk fails to open.
* Decoding raises only :class:`DecodeError`; signatures only :class:`SignatureError`.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from collections.abc import Generator
from dataclasses import dataclass
from typing import Annotated, Any, BinaryIO, TypeVar

import msgspec
from nacl import bindings as sodium
from nacl.exceptions import CryptoError

from node.crypto.keys import KeyPair, verify_detached
from node.crypto.ops import MAX_OP_BYTES, Signer
from node.errors import DecodeError, NodeError, SignatureError

T = TypeVar("T")

MAGIC = b"CNBUNDLE\x01"
HEIGHTS_MAGIC = b"CNHEIGHTS\x01"
MANIFEST_CONTEXT = b"circle-node/bundle/v1"
SECTION_CONTEXT = b"circle-node/bundle/section/v1"
HEIGHTS_CONTEXT = b"circle-node/heights/v1"
KEY_CONTEXT = b"circle-node/bundle/circle-key/v1"

MiB = 1024 * 1024
MAX_FILE_BYTES = 2048 * MiB
MAX_SECTION_BYTES = 512 * MiB
MAX_MANIFEST_BYTES = 16 * MiB
MAX_CHUNK_BYTES = 4 * MiB  # one sealed chunk, MAC included
MAX_CHUNK_OPS = 500
MAX_CIRCLES = 10_000
MAX_AUTHORS = 100_000

HEADER_BYTES = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
SEAL_BYTES = sodium.crypto_box_SEALBYTES
AEAD_NONCE_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
SIG_BYTES = 64
LENGTH = struct.Struct(">I")
MIN_SECTION_BYTES = HEADER_BYTES + LENGTH.size + ABYTES
_MSGPACK_SLACK = 5  # the most a msgpack bin or array header adds

Bytes16 = Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
Bytes32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
U63 = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Heights = Annotated[dict[Bytes32, U63], msgspec.Meta(max_length=MAX_AUTHORS)]


class CircleEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One circle's section: ``size`` sealed bytes holding ``count`` ops."""

    circle: Bytes16
    count: Annotated[int, msgspec.Meta(ge=0, le=MAX_SECTION_BYTES)]
    size: Annotated[int, msgspec.Meta(ge=MIN_SECTION_BYTES, le=MAX_SECTION_BYTES)]
    section_hash: Bytes32  # BLAKE2b-256 of the sealed section bytes
    genesis: Annotated[bytes, msgspec.Meta(max_length=MAX_OP_BYTES + SEAL_BYTES)] | None


class Manifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a bundle holds. The exporting node's key is in the signed head."""

    created: U63
    for_node: Bytes32 | None
    circles: Annotated[list[CircleEntry], msgspec.Meta(max_length=MAX_CIRCLES)]


class HeightsEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    circle: Bytes16
    sealed: Annotated[bytes, msgspec.Meta(max_length=MAX_CHUNK_BYTES)]


class HeightsManifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    created: U63
    circles: Annotated[list[HeightsEntry], msgspec.Meta(max_length=MAX_CIRCLES)]


_manifest_decoder = msgspec.msgpack.Decoder(Manifest)
_heights_manifest_decoder = msgspec.msgpack.Decoder(HeightsManifest)
_wires_decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(
    Annotated[list[bytes], msgspec.Meta(min_length=1, max_length=MAX_CHUNK_OPS)]
)
_final_decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(tuple[U63, Heights])
_heights_decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(Heights)


def circle_key(genesis_op_id: bytes, genesis_sig: bytes) -> bytes:
    """The key of a circle's bundle sections: only holders of its genesis op can derive it."""
    return hashlib.blake2b(genesis_op_id + genesis_sig, key=KEY_CONTEXT, digest_size=32).digest()


def _decode(decoder: msgspec.msgpack.Decoder[T], data: bytes, what: str) -> T:
    try:
        return decoder.decode(data)
    except msgspec.DecodeError as exc:  # ValidationError included
        raise DecodeError(f"the {what} does not decode: {exc}") from exc


def _sorted_heights(heights: dict[bytes, int]) -> dict[bytes, int]:
    return {author: heights[author] for author in sorted(heights)}


# ---- signed heads ----------------------------------------------------------------------


def encode_head(magic: bytes, signer: Signer, manifest: bytes, context: bytes) -> bytes:
    """``magic || node || u32 len || manifest || sig`` (sig over context || the rest)."""
    if len(manifest) > MAX_MANIFEST_BYTES:
        raise NodeError(
            f"the manifest would be {len(manifest)} bytes, over the {MAX_MANIFEST_BYTES}-byte "
            "limit: export fewer circles at once (--circle)"
        )
    signed = magic + signer.public + LENGTH.pack(len(manifest)) + manifest
    return signed + signer.sign(context + signed)


def read_exact(stream: BinaryIO, n: int, what: str) -> bytes:
    """Exactly ``n`` bytes (the caller has bounded ``n``), else DecodeError: truncated."""
    data = stream.read(n)
    if len(data) != n:
        raise DecodeError(f"the {what} is truncated: the file was cut short")
    return data


def read_head(
    stream: BinaryIO, size: int, magic: bytes, context: bytes, what: str
) -> tuple[bytes, bytes]:
    """Read and verify a signed head from the stream's start: ``(node, manifest bytes)``."""
    prefix = stream.read(len(magic))
    if len(prefix) < len(magic) and magic.startswith(prefix):
        raise DecodeError(f"the {what} is truncated: the file was cut short")
    if prefix != magic:
        if prefix[:-1] == magic[:-1] and len(prefix) == len(magic):
            raise DecodeError(f"unsupported {what} version {prefix[-1]}: upgrade circle-node")
        raise DecodeError(f"not a circle-node {what} (bad magic)")
    node = read_exact(stream, 32, f"{what} head")
    (length,) = LENGTH.unpack(read_exact(stream, LENGTH.size, f"{what} head"))
    left = size - len(magic) - 32 - LENGTH.size - SIG_BYTES
    if length > MAX_MANIFEST_BYTES:
        raise DecodeError(f"the {what} manifest claims {length} bytes, over the limit")
    if length > left:
        raise DecodeError(f"the {what} manifest is truncated: the file was cut short")
    manifest = read_exact(stream, length, f"{what} manifest")
    sig = read_exact(stream, SIG_BYTES, f"{what} signature")
    signed = magic + node + LENGTH.pack(length) + manifest
    if not verify_detached(node, context + signed, sig):
        raise SignatureError(
            f"the {what}'s signature does not verify: the file was altered or damaged"
        )
    return node, manifest


def bundle_head(signer: Signer, manifest: Manifest) -> bytes:
    """A bundle's signed head: magic, node, manifest and signature."""
    return encode_head(MAGIC, signer, msgspec.msgpack.encode(manifest), MANIFEST_CONTEXT)


def decode_manifest(data: bytes) -> Manifest:
    """A verified manifest's contents; DecodeError on bad or inconsistent fields."""
    manifest = _decode(_manifest_decoder, data, "bundle manifest")
    circles = [entry.circle for entry in manifest.circles]
    if len(set(circles)) != len(circles):
        raise DecodeError("the bundle manifest names a circle twice")
    return manifest


# ---- sections ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Final:
    """The last chunk of a section: how many ops it held and the sender's heights."""

    count: int
    heights: dict[bytes, int]


class SectionSealer:
    """Seals one circle's ops into chunks of at most MAX_CHUNK_OPS ops / MAX_CHUNK_BYTES."""

    def __init__(self, key: bytes, circle: bytes) -> None:
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        self.header: bytes = sodium.crypto_secretstream_xchacha20poly1305_init_push(
            self._state, key
        )
        self._ad = SECTION_CONTEXT + circle
        self._wires: list[bytes] = []
        self._bytes = _MSGPACK_SLACK
        self.count = 0

    def _seal(self, plaintext: bytes, tag: int) -> bytes:
        sealed: bytes = sodium.crypto_secretstream_xchacha20poly1305_push(
            self._state, plaintext, self._ad, tag
        )
        return LENGTH.pack(len(sealed)) + sealed

    def flush(self) -> bytes:
        """The sealed chunk of the ops added since the last one (b"" if none)."""
        if not self._wires:
            return b""
        chunk = self._seal(msgspec.msgpack.encode(self._wires), TAG_MESSAGE)
        self._wires, self._bytes = [], _MSGPACK_SLACK
        return chunk

    def add(self, wire: bytes) -> bytes:
        """Queue one op wire; returns a sealed chunk when one is full, else b""."""
        if len(wire) > MAX_OP_BYTES:
            raise NodeError(f"refusing to bundle an op of {len(wire)} bytes")
        cost = len(wire) + _MSGPACK_SLACK
        out = b""
        if self._bytes + cost > MAX_CHUNK_BYTES - ABYTES:
            out = self.flush()
        self._wires.append(wire)
        self._bytes += cost
        self.count += 1
        if len(self._wires) == MAX_CHUNK_OPS:
            out += self.flush()
        return out

    def finish(self, heights: dict[bytes, int]) -> bytes:
        """The last ops' chunk, if any, then the FINAL chunk ``[count, {author: seq}]``."""
        final = msgspec.msgpack.encode((self.count, _sorted_heights(heights)))
        if len(final) > MAX_CHUNK_BYTES - ABYTES:
            raise NodeError("too many authors in one circle to bundle")
        return self.flush() + self._seal(final, TAG_FINAL)


class SectionOpener:
    """Opens one section's chunks in order; yields op wires, then the Final."""

    def __init__(self, key: bytes, circle: bytes, header: bytes) -> None:
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(self._state, header, key)
        self._ad = SECTION_CONTEXT + circle
        self.count = 0
        self.final: Final | None = None

    def open(self, sealed: bytes) -> list[bytes]:
        """The wires in one sealed chunk; after the FINAL chunk, ``self.final`` is set."""
        if self.final is not None:
            raise DecodeError("the section goes on after its final chunk")
        try:
            plaintext, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(
                self._state, sealed, self._ad
            )
        except (CryptoError, ValueError) as exc:
            raise DecodeError(
                "a section chunk does not decrypt: the section was altered, reordered or cut"
            ) from exc
        if tag == TAG_FINAL:
            self.final = self._final(bytes(plaintext))
            return []
        if tag != TAG_MESSAGE:
            raise DecodeError(f"a section chunk has the unknown tag {tag}")
        wires: list[bytes] = _decode(_wires_decoder, bytes(plaintext), "section chunk")
        self.count += len(wires)
        return wires

    def _final(self, plaintext: bytes) -> Final:
        count, heights = _decode(_final_decoder, plaintext, "final section chunk")
        if count != self.count:
            raise DecodeError(f"the section says it holds {count} ops but has {self.count}")
        return Final(count, heights)


# ---- genesis sealed to the receiving node ------------------------------------------------


def seal_genesis(genesis_wire: bytes, node: bytes) -> bytes:
    """The genesis op sealed to a node's X25519 key (converted from its Ed25519 key)."""
    try:
        curve = sodium.crypto_sign_ed25519_pk_to_curve25519(node)
    except (CryptoError, ValueError) as exc:
        raise NodeError(f"{node.hex()} is not a valid node key") from exc
    sealed: bytes = sodium.crypto_box_seal(genesis_wire, curve)
    return sealed


def open_genesis(sealed: bytes, node_key: KeyPair) -> bytes:
    """The genesis wire sealed to ``node_key``; DecodeError if it was sealed to another."""
    public = sodium.crypto_sign_ed25519_pk_to_curve25519(node_key.public)
    secret = sodium.crypto_sign_ed25519_sk_to_curve25519(node_key.seed + node_key.public)
    try:
        wire: bytes = sodium.crypto_box_seal_open(sealed, public, secret)
    except (CryptoError, ValueError) as exc:
        raise DecodeError("the circle's genesis op does not open with this node's key") from exc
    return wire


# ---- heights files ----------------------------------------------------------------------


def encode_heights_file(
    signer: Signer, created: int, circles: list[tuple[bytes, bytes, dict[bytes, int]]]
) -> bytes:
    """A signed heights file; each ``(circle, circle key, {author: seq})`` sealed apart."""
    entries = []
    for circle, key, heights in circles:
        nonce = os.urandom(AEAD_NONCE_BYTES)
        plaintext = msgspec.msgpack.encode(_sorted_heights(heights))
        sealed = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
            plaintext, HEIGHTS_CONTEXT + signer.public + circle, nonce, key
        )
        entries.append(HeightsEntry(circle, nonce + sealed))
    manifest = msgspec.msgpack.encode(HeightsManifest(created, entries))
    return encode_head(HEIGHTS_MAGIC, signer, manifest, HEIGHTS_CONTEXT)


@dataclass(frozen=True)
class HeightsFile:
    """A verified heights file: the node that signed it and its sealed heights per circle."""

    node: bytes
    created: int
    sealed: dict[bytes, bytes]

    def open(self, circle: bytes, key: bytes) -> dict[bytes, int]:
        """The node's heights for ``circle`` (empty if it does not hold it)."""
        sealed = self.sealed.get(circle)
        if sealed is None:
            return {}
        nonce, box = sealed[:AEAD_NONCE_BYTES], sealed[AEAD_NONCE_BYTES:]
        try:
            plaintext = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
                box, HEIGHTS_CONTEXT + self.node + circle, nonce, key
            )
        except (CryptoError, ValueError) as exc:
            raise DecodeError(
                f"the heights of circle {circle.hex()} do not decrypt: the file was altered"
            ) from exc
        heights: dict[bytes, int] = _decode(_heights_decoder, bytes(plaintext), "heights")
        return heights


def decode_heights_file(stream: BinaryIO, size: int) -> HeightsFile:
    """Verify and decode a heights file; DecodeError or SignatureError."""
    node, data = read_head(stream, size, HEIGHTS_MAGIC, HEIGHTS_CONTEXT, "heights file")
    if stream.read(1):
        raise DecodeError("the heights file has bytes after its signature: it was altered")
    manifest = _decode(_heights_manifest_decoder, data, "heights file")
    sealed = {entry.circle: entry.sealed for entry in manifest.circles}
    if len(sealed) != len(manifest.circles):
        raise DecodeError("the heights file names a circle twice")
    return HeightsFile(node, manifest.created, sealed)


# ---- reading a bundle ----------------------------------------------------------------


class BundleReader:
    """A bundle opened for reading: its verified head, and where each section lies.

    Sections are read one at a time from the stream (memory stays bounded by one chunk);
    ``check`` and ``chunks`` move the stream, so use one section at a time."""

    def __init__(self, stream: BinaryIO) -> None:
        size = stream.seek(0, io.SEEK_END)
        if size > MAX_FILE_BYTES:
            raise DecodeError(f"the file is {size} bytes, over the 2 GiB bundle limit")
        stream.seek(0)
        self.stream = stream
        self.size = size
        self.node, data = read_head(stream, size, MAGIC, MANIFEST_CONTEXT, "bundle")
        self.manifest = decode_manifest(data)
        self.offsets: list[int] = []
        offset = stream.tell()
        for entry in self.manifest.circles:
            self.offsets.append(offset)
            offset += entry.size
        if offset < size:
            raise DecodeError(
                f"the bundle has {size - offset} unexpected bytes after its last section: "
                "the file was altered"
            )

    def _entry(self, index: int) -> CircleEntry:
        entry = self.manifest.circles[index]
        if self.offsets[index] + entry.size > self.size:
            held = max(0, self.size - self.offsets[index])
            raise DecodeError(
                f"the section is truncated ({held} of {entry.size} bytes): the file was cut short"
            )
        return entry

    def check_hash(self, index: int) -> None:
        """The section is whole and exactly what the exporter signed (needs no key)."""
        entry = self._entry(index)
        digest = hashlib.blake2b(digest_size=32)
        self.stream.seek(self.offsets[index])
        left = entry.size
        while left:
            block = read_exact(self.stream, min(left, MiB), "section")
            digest.update(block)
            left -= len(block)
        if digest.digest() != entry.section_hash:
            raise DecodeError(
                "the section differs from what the exporter signed: the file was altered or damaged"
            )

    def check(self, index: int, key: bytes) -> Final:
        """Decrypt and decode a whole section without using it; its Final."""
        walk = self.chunks(index, key)
        while True:
            try:
                next(walk)
            except StopIteration as stop:
                final: Final = stop.value
                return final

    def chunks(self, index: int, key: bytes) -> Generator[list[bytes], None, Final]:
        """The section's op wires, chunk by chunk (at most 500 ops each); returns its Final."""
        entry = self._entry(index)
        stream = self.stream
        stream.seek(self.offsets[index])
        left = entry.size - HEADER_BYTES
        opener = SectionOpener(key, entry.circle, read_exact(stream, HEADER_BYTES, "section"))
        while opener.final is None:
            if left < LENGTH.size:
                raise DecodeError("the section ends without its final chunk")
            (length,) = LENGTH.unpack(read_exact(stream, LENGTH.size, "section"))
            left -= LENGTH.size
            if not ABYTES <= length <= min(MAX_CHUNK_BYTES, left):
                raise DecodeError(f"a section chunk claims {length} bytes, beyond its limits")
            wires = opener.open(read_exact(stream, length, "section"))
            left -= length
            if wires:
                yield wires
        if left:
            raise DecodeError("the section has bytes after its final chunk")
        if opener.count != entry.count:
            raise DecodeError(
                f"the section holds {opener.count} ops but the manifest says {entry.count}"
            )
        return opener.final
