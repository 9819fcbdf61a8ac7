"""Build archive bytes by hand (any wires, consistent or not), and walk their frames."""

from __future__ import annotations

import io
from collections.abc import Sequence

from node.export.archive import plan_archive, write_archive
from node.export.archive_format import (
    LENGTH,
    VERIFIER,
    CircleEntry,
    Frame,
    Head,
    Manifest,
    SectionHasher,
    encode_frame,
    encode_head,
    read_frames,
    read_manifest,
)
from node.replica import Replica


async def archive_of(replica: Replica, circles: list[bytes]) -> bytes:
    """The archive ``export --format archive`` would write, as bytes."""
    plan = await plan_archive(replica, circles, "hall")
    out = io.BytesIO()
    await write_archive(replica, plan, out)
    return out.getvalue()


def build(
    sections: Sequence[tuple[bytes, Sequence[bytes]]],
    heads: dict[bytes, list[Head]] | None = None,
    name: str = "Garden",
) -> bytes:
    """An archive of ``(circle, wires)`` sections whose manifest matches its frames."""
    entries = []
    for circle, wires in sections:
        hasher = SectionHasher()
        for wire in wires:
            hasher.add(wire)
        listed = (heads or {}).get(circle, [])
        entries.append(CircleEntry(circle, name, len(wires), hasher.digest(), listed))
    out = encode_head(Manifest(1_700_000_000, "hall", VERIFIER, entries))
    for _circle, wires in sections:
        out += b"".join(encode_frame(w) for w in wires)
    return out


def sections_of(data: bytes) -> tuple[Manifest, list[tuple[bytes, list[bytes]]]]:
    """The manifest and ``(circle, wires)`` of a well-formed archive."""
    stream = io.BytesIO(data)
    manifest = read_manifest(stream, len(data))
    found: dict[bytes, list[bytes]] = {e.circle: [] for e in manifest.circles}
    for item in read_frames(stream, manifest):
        if isinstance(item, Frame):
            found[item.circle].append(item.wire)
    return manifest, list(found.items())


def decode_all(data: bytes) -> int:
    """Read the whole archive; the number of frames. Raises what the decoder raises."""
    stream = io.BytesIO(data)
    manifest = read_manifest(stream, len(data))
    return sum(isinstance(item, Frame) for item in read_frames(stream, manifest))


def frame_offset(data: bytes, index: int) -> int:
    """Where frame ``index``'s wire starts in ``data``."""
    stream = io.BytesIO(data)
    manifest = read_manifest(stream, len(data))
    offset = stream.tell()
    seen = 0
    for entry in manifest.circles:
        for _ in range(entry.count):
            (length,) = LENGTH.unpack(data[offset : offset + LENGTH.size])
            if seen == index:
                return offset + LENGTH.size
            offset += LENGTH.size + length
            seen += 1
    raise IndexError(index)
