"""`circle-node demo` end to end, in real subprocesses: the headless demo builds the
federation, runs three `serve` nodes on loopback until they converge (every holder of a
circle has the same heights) and every store verifies; a second run on the same
directory resumes it without rebuilding and stops all three nodes cleanly on SIGTERM; a
directory that is not a demo is refused untouched."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_runner import cli_env

from node.cli import main
from node.demo.layout import MARKER, VERSION

GUARD = 180  # seconds: a hung demo fails the test instead of blocking the run
CIRCLES = {
    "Riverside Commons",
    "Social Value and Learning",
    "Community Garden",
    "Repair Cafe",
    "Angels Den",
}


def _demo(place: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli", "demo", "--dir", str(place), *args],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=GUARD,
        check=False,
    )


def _by_circle(data: dict[str, Any]) -> dict[str, dict[str, str]]:
    """circle name -> {node: heights digest}, over every node holding it."""
    held: dict[str, dict[str, str]] = {}
    for node in data["nodes"]:
        for circle in node["circles"]:
            held.setdefault(circle["name"], {})[node["node"]] = circle["heights"]
    return held


def test_headless_demo_converges_and_a_second_run_resumes(tmp_path: Path) -> None:
    """An interrupted build is rebuilt; the three nodes converge and verify; the next run
    resumes (same circles, no build) and SIGTERM stops every node it started."""
    place = tmp_path / "demo"
    (place / "hall").mkdir(parents=True)
    (place / "hall" / "half-made").write_text("left by a build that was stopped")
    marker = {"demo": MARKER, "version": VERSION, "state": "building", "built": {}}
    (place / "demo.json").write_text(json.dumps(marker))

    first = _demo(place, "--headless", "--json")
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    assert "interrupted: building it again" in first.stderr
    data = json.loads(first.stdout)
    assert (data["converged"], data["ok"]) == (True, True)
    assert [n["node"] for n in data["nodes"]] == ["hall", "neighbourhood", "den"]
    for node in data["nodes"]:
        assert node["verify"]["ok"], node["verify"]["problems"]
        assert node["url"].startswith("http://127.0.0.1:")
    held = _by_circle(data)
    assert set(held) == CIRCLES
    assert set(held["Riverside Commons"]) == {"hall", "neighbourhood"}  # double links seat
    assert set(held["Community Garden"]) == {"neighbourhood", "den"}  # the investor follows
    for name, digests in held.items():
        assert len(set(digests.values())) == 1, (name, digests)  # identical heights
    ops = {n["node"]: {c["name"]: c["ops"] for c in n["circles"]} for n in data["nodes"]}
    # the project's share to SVL was signed on the neighbourhood and carried by the nodes
    assert (
        ops["hall"]["Social Value and Learning"]
        == ops["neighbourhood"]["Social Value and Learning"]
    )
    assert not (place / "hall" / "half-made").exists()
    built = json.loads((place / "demo.json").read_text())
    assert built["state"] == "built"
    ids = {name: circle for name, circle in built["built"]["circles"].items()}

    proc = subprocess.Popen(  # no terminal and no --headless: the nodes keep running
        [sys.executable, "-m", "node.cli", "demo", "--dir", str(place)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    seen = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if "the nodes keep running" in line:
                break
        text = "".join(seen)
        assert "Resuming the demo" in text, text
        assert "Building" not in text
        assert "The nodes converged; all stores verify." in text
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        assert proc.wait(timeout=GUARD) == 130, rest
        assert "Traceback" not in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for key in ("hall", "neighbourhood", "den"):
        log = (place / "logs" / f"{key}.log").read_text().splitlines()
        assert log[-1].endswith("node.service: stopped"), (key, log[-3:])
    again = json.loads((place / "demo.json").read_text())
    assert again["built"]["circles"] == ids  # resumed, not rebuilt


def test_a_directory_that_is_not_a_demo_is_refused_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A non-empty directory without the demo marker: exit 1, a clear error, no change."""
    place = tmp_path / "mine"
    place.mkdir()
    (place / "notes.txt").write_text("mine")
    assert main(["demo", "--dir", str(place), "--headless"]) == 1
    err = capsys.readouterr().err
    assert "is not a circle-node demo" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in place.iterdir()) == ["notes.txt"]
