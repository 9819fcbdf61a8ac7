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

import msgspec
import pytest
from archive_bytes import archive_of, build, frame_offset, sections_of
from conftest import Org
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.crypto.keys import KeyPair
from node.crypto.ops import MAX_DEPS, SIGN_CONTEXT, blake2b_256, decode_op, encode_wire
from node.errors import DecodeError
from node.export import standalone
from node.export.archive_format import Head

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


def _genesis(fields: dict[str, Any]) -> tuple[bytes, bytes, bytes]:
    """``(circle, wire, author)`` of a genesis op, correctly signed, whose header holds
    ``fields`` over sane defaults: only the header's own checks can refuse it."""
    key = KeyPair.generate()
    body = b"genesis body"
    header = {
        "v": 1, "kind": 0, "circle": bytes(16), "doc": None, "author": key.public, "ycid": 0,
        "seq": 1, "backlink": None, "deps": [], "ts": 0, "body_len": len(body),
        "body_hash": blake2b_256(body),
    } | fields  # fmt: skip
    header_bytes = msgspec.msgpack.encode(list(header.values()))
    sig = key.sign(SIGN_CONTEXT + header_bytes)
    return blake2b_256(header_bytes + sig)[:16], encode_wire(header_bytes, sig, body), key.public


REFUSED_HEADERS: dict[str, dict[str, Any]] = {
    "unsorted deps": {"deps": [b"\x02" * 32, b"\x01" * 32]},
    "repeated deps": {"deps": [b"\x01" * 32, b"\x01" * 32]},
    "too many deps": {"deps": [bytes([i]) * 32 for i in range(MAX_DEPS + 1)]},
    "short dep": {"deps": [b"\x01" * 31]},
    "short circle": {"circle": bytes(15)},
    "long doc": {"doc": bytes(17)},
    "short backlink": {"backlink": bytes(31)},
    "ycid over 2^53-1": {"ycid": 2**53},
    "ts over 2^63-1": {"ts": 2**63},
    "seq over 2^63-1": {"seq": 2**63},
    "short body hash": {"body_hash": bytes(31)},
}


def test_headers_the_node_refuses_are_refused_too(tmp_path: Path) -> None:
    """Signed ops whose headers break a field size, a bound or the deps order: the node's
    decoder refuses each, and so does the script (malformed, naming the op's index)."""
    sections: list[tuple[bytes, list[bytes]]] = []
    heads: dict[bytes, list[Head]] = {}
    circle, wire, author = _genesis({})  # a control: the same builder, a valid header
    decode_op(wire)
    sections.append((circle, [wire]))
    heads[circle] = [Head(author, 1, decode_op(wire).op_id)]
    for fields in REFUSED_HEADERS.values():
        circle, wire, _author = _genesis(fields)
        with pytest.raises(DecodeError):
            decode_op(wire)
        sections.append((circle, [wire]))
    (tmp_path / "odd.cna").write_bytes(build(sections, heads))
    code, report = run(tmp_path / "odd.cna")
    assert code == 1
    named = {p["index"]: p["problem"] for p in report["problems"]}
    assert sorted(named) == list(range(1, len(REFUSED_HEADERS) + 1))  # not the control
    assert all(problem.startswith("malformed") for problem in named.values()), named
    deps = [named[1], named[2]]
    assert all("sorted and unique" in problem for problem in deps), deps
