"""`make run` with no terminal, end to end: on an empty home (CIRCLE_NODE_HOME) it sets the
node up from CIRCLE_NODE_NAME and CIRCLE_NODE_PASSPHRASE, starts it (the health endpoint
answers) and stops cleanly on SIGTERM; run again, it starts the same node. Without a name
for an empty home it says what to set and creates nothing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

from cli_runner import cli_env
from serve_runner import START_GUARD, serving, stop

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"^Listening on 127\.0\.0\.1:(\d+) \(node ([0-9a-f]{8})\)")


def _env(home: Path, name: str | None = "pi-hall") -> dict[str, str]:
    env = cli_env()
    env["CIRCLE_NODE_HOME"] = str(home)
    env["CIRCLE_NODE_LISTEN"] = "127.0.0.1:0"
    if name is not None:
        env["CIRCLE_NODE_NAME"] = name
    return env


def _health(port: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


def _fake_venv(tmp_path: Path) -> Path:
    """A VENV for the Makefile whose circle-node is this checkout's, already installed, so
    `make run` runs its recipe and nothing else (no pip)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").touch()
    (venv / "bin" / "circle-node").symlink_to(Path(sys.executable).parent / "circle-node")
    (venv / ".installed").touch()
    return venv


def test_make_run_on_an_empty_home_sets_up_and_starts_the_node(tmp_path: Path) -> None:
    """`make run` (its real recipe, no terminal): set up, health answers, SIGTERM stops it."""
    home = tmp_path / "home"
    log = tmp_path / "make-run.log"
    venv = _fake_venv(tmp_path)
    with log.open("w") as err:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "-s", "-C", str(ROOT), "run", f"VENV={venv}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=_env(home),
            start_new_session=True,  # its own process group, as a terminal's job would be
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            match = LISTENING.match(line)
            assert match, line + log.read_text()
            node = tomllib.loads((home / "node.toml").read_text())
            assert node["name"] == "pi-hall"
            health = _health(match.group(1))
            assert health["ok"] is True
            assert health["node"] == node["node"]
            assert node["node"].startswith(match.group(2))
            os.killpg(proc.pid, signal.SIGTERM)  # as Ctrl-C or `kill` on the job would
            proc.wait(timeout=START_GUARD)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
    text = log.read_text()
    assert "Created node 'pi-hall'" in text
    assert "running the node unattended" in text
    assert "stopped" in text
    assert "Traceback" not in text


def test_run_again_starts_the_same_node_and_stops_on_sigterm(tmp_path: Path) -> None:
    """A second `circle-node run` on the home reuses it (no second setup) and exits 0."""
    home = tmp_path / "home"
    nodes = []
    for round_ in range(2):
        log = tmp_path / f"run-{round_}.log"
        with serving(home, log, ("run",), env=_env(home)) as (proc, line):
            match = LISTENING.match(line)
            assert match, line
            nodes.append(_health(match.group(1))["node"])
            assert stop(proc) == 0
        assert ("Created node" in log.read_text()) == (round_ == 0)
    assert nodes[0] == nodes[1]


def test_run_without_a_name_for_an_empty_home_says_what_to_set(tmp_path: Path) -> None:
    """No terminal, no CIRCLE_NODE_NAME: exit 1, the variables to set, no home made."""
    home = tmp_path / "home"
    proc = subprocess.run(
        [sys.executable, "-m", "node.cli", "run"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=_env(home, name=None),
        timeout=START_GUARD,
        check=False,
    )
    assert proc.returncode == 1, proc
    assert "CIRCLE_NODE_NAME" in proc.stderr
    assert "circle-node init --name NAME" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not home.exists()
