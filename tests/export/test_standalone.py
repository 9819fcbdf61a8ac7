"""The standalone checker script: stdlib + PyNaCl + msgspec only, and it agrees with the
full verifier on signatures, hashes and chains."""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from archive_bytes import archive_of, build, frame_offset, sections_of
from conftest import Org
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.crypto.ops import decode_op
from node.export import standalone

SCRIPT = Path(standalone.__file__)
ALLOWED = set(sys.stdlib_module_names) | {"nacl", "msgspec", "__future__"}


def test_the_script_imports_nothing_from_circle_node() -> None:
    """Every import is the standard library, PyNaCl or msgspec."""
    tree = ast.parse(SCRIPT.read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add((node.module or "").split(".")[0])
    assert roots <= ALLOWED, roots - ALLOWED


def run(path: Path) -> tuple[int, dict[str, Any]]:
    """The script in an isolated interpreter (no cwd or PYTHONPATH on sys.path)."""
    proc = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(path), "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout) if proc.stdout else {}


async def test_a_faithful_archive_passes(org: Org, tmp_path: Path) -> None:
    data = await archive_of(org.replica, [org.garden, org.den])
    (tmp_path / "a.cna").write_bytes(data)
    code, report = run(tmp_path / "a.cna")
    assert (code, report["ok"], report["circles"]) == (0, True, 2)
    assert report["ops"] == sum(len(w) for _c, w in sections_of(data)[1])


async def test_a_flipped_byte_and_a_gap_are_named(org: Org, tmp_path: Path) -> None:
    """The edited op by its hash, author and seq; the op after a removed one by its gap."""
    data = await archive_of(org.replica, [org.garden])
    manifest, [(circle, wires)] = sections_of(data)
    blob = bytearray(data)
    blob[frame_offset(data, 5) + len(wires[5]) - 1] ^= 0x01
    (tmp_path / "flip.cna").write_bytes(bytes(blob))
    code, report = run(tmp_path / "flip.cna")
    target = decode_op(wires[5])
    named = [p for p in report["problems"] if p["index"] == 5]
    assert code == 1
    assert [(p["op"], p["author"], p["seq"]) for p in named] == [
        (target.op_id.hex(), target.author.hex(), target.seq)
    ]
    assert named[0]["problem"].startswith("bad_signature")

    bobs = [i for i, w in enumerate(wires) if decode_op(w).author == org.bob.public]
    kept = [w for i, w in enumerate(wires) if i != bobs[0]]
    (tmp_path / "gap.cna").write_bytes(build([(circle, kept)], {circle: manifest.circles[0].heads}))
    code, report = run(tmp_path / "gap.cna")
    gaps = [p for p in report["problems"] if p["problem"].startswith("chain_gap")]
    assert code == 1
    assert [p["op"] for p in gaps] == [decode_op(wires[bobs[1]]).op_id.hex()]


def test_an_unreadable_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "x.cna").write_bytes(b"CNARCHIVE\x01\x00")
    proc = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(tmp_path / "x.cna")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (proc.returncode, "truncated" in proc.stderr) == (2, True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.booleans())
def test_fuzz_only_unreadable_comes_out(data: bytes, with_magic: bool) -> None:
    """Random bytes (after the magic or not): a report or Unreadable, nothing else."""
    blob = (standalone.MAGIC + data) if with_magic else data
    try:
        report = standalone.check(io.BytesIO(blob))
    except standalone.Unreadable:
        return
    assert isinstance(report["ok"], bool)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_archives(data: st.DataObject) -> None:
    """A valid archive of junk ops, mutated: a report or Unreadable, nothing else."""
    sample = build([(bytes(16), [b"\x93\xc4\x01a\xc4\x01b\xc4\x01c", b"x" * 40])])
    blob = bytearray(sample)
    spot = data.draw(st.integers(0, len(blob) - 1))
    blob[spot] ^= data.draw(st.integers(1, 255))
    try:
        report = standalone.check(io.BytesIO(bytes(blob)))
    except standalone.Unreadable:
        return
    assert report["ok"] is False
