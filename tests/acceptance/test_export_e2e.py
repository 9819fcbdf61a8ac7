"""Exports through the real `circle-node` command in subprocesses.

One home (the hall: alice, bob and carol in the Garden) reaches a decision on the second
version of a proposal after an objection. Its archive verifies on another home that
shares nothing with it, and with no home at all; a flipped byte or a cut file fails,
naming the op. The md, csv and json exports say who consented to which version.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cli_runner import Result, cli, cli_env

from node.crypto.ops import decode_op


def ok(result: Result) -> dict[str, Any]:
    assert result.code == 0, result
    return result.data


@dataclass(frozen=True)
class Hall:
    path: Path
    circle: str
    proposal: str
    versions: tuple[str, str]
    decision: str
    members: dict[str, str]  # name -> member id


@pytest.fixture(scope="module")
def hall(tmp_path_factory: pytest.TempPathFactory) -> Hall:
    """A proposal agreed on version 1 after bob objected to version 0."""
    path = tmp_path_factory.mktemp("export") / "hall"
    ok(cli(path, "init", "--name", "hall"))
    members = {n: ok(cli(path, "member", "create", "--name", n)) for n in ("alice", "bob", "carol")}
    circle = ok(cli(path, "--as", "alice", "circle", "create", "--name", "Garden"))["circle"]
    for name in ("bob", "carol"):
        ok(cli(path, "--as", "alice", "circle", "add-member", circle, members[name]["card"]))

    def run(who: str, *args: str) -> dict[str, Any]:
        return ok(cli(path, "--as", who, *args))

    created = run(
        "alice", "proposal", "create", circle[:8], "--title", "Watering",
        "--driver", "the beds dry out", "--text", "water daily",
    )  # fmt: skip
    pid = created["proposal"]
    run("alice", "proposal", "stage", pid[:8], "consent_round")
    objected = run("bob", "position", pid[:8], "objection", "--reason", "wastes water")
    objection = objected["op"]
    amended = run(
        "alice", "proposal", "amend", pid[:8], "--text", "water every other day",
        "--resolves", objection[:10],
    )  # fmt: skip
    run("alice", "position", pid[:8], "consent")
    run("bob", "position", pid[:8], "consent")
    final = run("carol", "position", pid[:8], "concern", "--reason", "hose is short")
    assert final["state"] == "agreed"
    return Hall(
        path, circle, pid, (created["version"], amended["version"]), final["decision"],
        {n: m["member"] for n, m in members.items()},
    )  # fmt: skip


@pytest.fixture(scope="module")
def archive(hall: Hall) -> Path:
    path = hall.path.parent / "garden.cna"
    written = ok(cli(hall.path, "export", "--format", "archive", "--out", str(path)))
    assert written["ops"] > 0
    assert written["verify_with"] == f"circle-node verify --archive {path}"
    return path


def test_an_archive_verifies_on_a_node_that_shares_nothing(
    hall: Hall, archive: Path, tmp_path: Path
) -> None:
    """Another node, and a machine with no node at all, both verify it from the file."""
    other = tmp_path / "other"
    ok(cli(other, "init", "--name", "other"))
    for home in (other, tmp_path / "no-node-here"):
        report = ok(cli(home, "verify", "--archive", str(archive)))
        assert report["ok"] is True
        (circle,) = report["circles"]
        assert (circle["circle"], circle["name"]) == (hall.circle, "Garden")
        assert circle["verified"] == circle["listed"] == report["ops"]
        assert circle["decisions"] == 1
    assert not (tmp_path / "no-node-here").exists()  # verifying created no home
    assert ok(cli(other, "circle", "list"))["circles"] == []  # nor touched that node


def _decision_offset(data: bytes, decision: str) -> tuple[int, int]:
    """``(index, offset of its last body byte)`` of the decision op in the archive."""
    position, index = 14 + int.from_bytes(data[10:14], "big") + 32, 0
    while position < len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        wire = data[position + 4 : position + 4 + length]
        if decode_op(wire).op_id.hex() == decision:
            return index, position + 4 + length - 1
        position, index = position + 4 + length, index + 1
    raise AssertionError("decision not in the archive")


def test_a_flipped_byte_fails_naming_the_op(hall: Hall, archive: Path, tmp_path: Path) -> None:
    """Edit the decision record by one byte: exit 1, naming the op, author and seq."""
    data = archive.read_bytes()
    index, spot = _decision_offset(data, hall.decision)
    edited = bytearray(data)
    edited[spot] ^= 0x01
    bad = tmp_path / "edited.cna"
    bad.write_bytes(bytes(edited))
    result = cli(tmp_path / "third", "verify", "--archive", str(bad))
    assert result.code == 1
    assert result.data["ok"] is False
    named = [p for p in result.data["problems"] if p.get("index") == index]
    assert [(p["op"], p["problem"], p["author"]) for p in named] == [
        (hall.decision, "bad_signature", hall.members["carol"]),
    ]
    assert named[0]["seq"] >= 1
    text = cli_text(tmp_path / "third", "verify", "--archive", str(bad))
    assert f"op {hall.decision}" in text
    assert "FAILED" in text


def cli_text(home: Path, *args: str) -> str:
    """The human output of a command (no --json), stdout and stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "node.cli", "--home", str(home), *args],
        capture_output=True, text=True, env=cli_env(), timeout=60, check=False,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr
    return proc.stdout + proc.stderr


def test_a_cut_archive_is_a_clear_error(archive: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.cna"
    cut.write_bytes(archive.read_bytes()[:-10])
    result = cli(tmp_path / "third", "verify", "--archive", str(cut))
    assert result.code == 1
    assert "truncated" in result.data["error"]
    assert cli(tmp_path / "x", "verify", "--archive", str(tmp_path / "nope")).code == 1


def test_readable_exports_say_who_consented_to_which_version(hall: Hall, tmp_path: Path) -> None:
    """json, csv and md from the CLI: the decision's positions and their version."""
    out = tmp_path / "garden.json"
    ok(cli(hall.path, "export", "--format", "json", "--circle", hall.circle[:8], "--out", str(out)))
    data = json.loads(out.read_text())
    (decision,) = data["circles"][0]["decisions"]
    assert (decision["decision"], decision["version"]) == (hall.decision, hall.versions[1])
    who = sorted((p["name"], p["position"], p["version_number"]) for p in decision["positions"])
    assert who == [("alice", "consent", 1), ("bob", "consent", 1), ("carol", "concern", 1)]

    tables = tmp_path / "tables"
    written = ok(cli(hall.path, "export", "--format", "csv", "--out", str(tables)))
    assert "positions.csv" in written["files"]
    with (tables / "positions.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    objection = [r for r in rows if r["position"] == "objection"]
    assert [(r["name"], r["version"], r["version_number"]) for r in objection] == [
        ("bob", hall.versions[0], "0")
    ]
    assert {r["name"] for r in rows if r["decision"] == hall.decision} == {"alice", "bob", "carol"}

    md = tmp_path / "garden.md"
    ok(cli(hall.path, "export", "--format", "md", "--out", str(md)))
    text = md.read_text()
    assert "#### Watering: version 1" in text
    assert "| bob | objection | 0 | wastes water |" in text


def test_existing_outputs_are_kept_without_force(hall: Hall, tmp_path: Path) -> None:
    """An existing file or directory is refused (and unchanged); --force replaces it."""
    target = tmp_path / "out.md"
    target.write_text("keep me")
    refused = cli(hall.path, "export", "--format", "md", "--out", str(target))
    assert refused.code == 1
    assert "--force" in refused.data["error"]
    assert target.read_text() == "keep me"
    forced = cli(hall.path, "export", "--format", "md", "--out", str(target), "--force")
    assert forced.code == 1  # --force replaces only an earlier md export
    assert "not a md export" in forced.data["error"]
    assert target.read_text() == "keep me"
    md = tmp_path / "garden.md"
    ok(cli(hall.path, "export", "--format", "md", "--out", str(md)))
    md.write_text(md.read_text() + "stale\n")
    ok(cli(hall.path, "export", "--format", "md", "--out", str(md), "--force"))
    assert md.read_text().startswith("# circle-node export")
    assert "stale" not in md.read_text()
    assert cli(hall.path, "export", "--format", "json", "--out", str(md), "--force").code == 1
    assert cli(hall.path, "export", "--format", "archive", "--out", str(md), "--force").code == 1
    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "mine.txt").write_text("keep me")
    assert cli(hall.path, "export", "--format", "csv", "--out", str(tables)).code == 1
    forced = cli(hall.path, "export", "--format", "csv", "--out", str(tables), "--force")
    assert forced.code == 1
    assert "mine.txt" in forced.data["error"]
    assert [p.name for p in tables.iterdir()] == ["mine.txt"]
    assert (tables / "mine.txt").read_text() == "keep me"
    (tables / "mine.txt").unlink()
    ok(cli(hall.path, "export", "--format", "csv", "--out", str(tables), "--force"))
    ok(cli(hall.path, "export", "--format", "csv", "--out", str(tables), "--force"))  # again
    assert "positions.csv" in [p.name for p in tables.iterdir()]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left
    unknown = cli(hall.path, "export", "--format", "json", "--circle", "ffffff", "--out", "x")
    assert unknown.code == 1


def test_the_standalone_checker_needs_no_circle_node(
    hall: Hall, archive: Path, tmp_path: Path
) -> None:
    """`export --format verifier` writes a script that checks the archive in an isolated
    interpreter, and names the op of an edited one."""
    script = tmp_path / "verify_archive.py"
    written = ok(cli(tmp_path / "nobody", "export", "--format", "verifier", "--out", str(script)))
    assert written["out"] == str(script)

    def check(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-I", str(script), str(path)],
            capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
        )  # fmt: skip

    good = check(archive)
    assert (good.returncode, good.stdout.startswith("ok:")) == (0, True), good.stderr
    data = bytearray(archive.read_bytes())
    _index, spot = _decision_offset(bytes(data), hall.decision)
    data[spot] ^= 0x01
    (tmp_path / "edited.cna").write_bytes(bytes(data))
    bad = check(tmp_path / "edited.cna")
    assert bad.returncode == 1
    assert f"op {hall.decision}" in bad.stdout
