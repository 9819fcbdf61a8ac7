"""`circle-node doctor` end to end: all checks pass on a fresh node; a flipped byte in the
store, a damaged store file, an open key file, a bad setting, a clock gone back, a full disk
and a missing home each fail their check, with advice, and exit 1."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path
from typing import Any

import pytest
from cli_runner import cli, cli_env, flip_byte

from node import cli as cli_module
from node.commands import doctor as doctor_module

CHECKS = ["home", "config", "keys", "disk_space", "clock", "store_integrity", "verify"]


def _doctor(home: Path, **env: str) -> tuple[int, dict[str, Any]]:
    """Run `circle-node doctor --json` in a subprocess; (exit code, {check: result})."""
    proc = subprocess.run(
        [sys.executable, "-m", "node.cli", "--home", str(home), "doctor", "--json"],
        capture_output=True,
        text=True,
        env=cli_env() | env,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == {"ok", "checks"}
    for check in data["checks"]:
        assert set(check) == {"check", "ok", "detail", "advice"}
        assert check["ok"] or check["advice"], check  # every problem says what to do
    assert data["ok"] == all(c["ok"] for c in data["checks"])
    assert proc.returncode == (0 if data["ok"] else 1)
    return proc.returncode, {c["check"]: c for c in data["checks"]}


def _failed(checks: dict[str, Any]) -> list[str]:
    return [name for name, check in checks.items() if not check["ok"]]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A node with a member and a circle (3 ops)."""
    home = tmp_path_factory.mktemp("doctor") / "node"
    assert cli(home, "init", "--name", "hall").code == 0
    assert cli(home, "member", "create", "--name", "alice").code == 0
    assert cli(home, "circle", "create", "--name", "Garden", "--purpose", "grow").code == 0
    return home


@pytest.fixture
def copy(node: Path, tmp_path: Path) -> Path:
    """A copy of :func:`node` this test may break."""
    target = tmp_path / "copy"
    shutil.copytree(node, target)
    return target


def test_doctor_passes_on_a_fresh_node(node: Path, tmp_path: Path) -> None:
    """Every check passes, in order, on a working node, and on one with no store yet."""
    code, checks = _doctor(node)
    assert (code, list(checks), _failed(checks)) == (0, CHECKS, [])
    assert checks["verify"]["detail"] == "all 2 stored ops verify"
    assert checks["keys"]["detail"].startswith("node key and 1 member key(s)")
    empty = tmp_path / "empty"
    assert cli(empty, "init", "--name", "barn").code == 0
    code, checks = _doctor(empty)
    assert (code, _failed(checks)) == (0, [])
    assert checks["store_integrity"]["detail"].startswith("no store yet")
    assert not (empty / "store.db").exists()  # doctor made nothing


def test_a_flipped_byte_in_the_store_fails_verify_with_advice(copy: Path) -> None:
    """One flipped signature byte: `verify` fails naming the op and saying how to recover;
    the SQLite file itself is sound."""
    op_id = flip_byte(copy, "sig", 0)
    code, checks = _doctor(copy)
    assert (code, _failed(checks)) == (1, ["verify"])
    assert f"op {op_id}: bad_signature" in checks["verify"]["detail"]
    assert "restore store.db from a backup" in checks["verify"]["advice"]
    assert "circle-node verify" in checks["verify"]["advice"]


def test_a_damaged_store_file_fails_the_integrity_check(copy: Path) -> None:
    """A store.db whose header is overwritten fails store_integrity and verify, with advice."""
    with (copy / "store.db").open("r+b") as handle:
        handle.write(b"not a database!!")
    code, checks = _doctor(copy)
    assert (code, _failed(checks)) == (1, ["store_integrity", "verify"])
    assert "file is not a database" in checks["store_integrity"]["detail"]
    assert "restore store.db from a backup" in checks["store_integrity"]["advice"]


def test_a_key_file_others_can_read_fails_with_chmod_advice(copy: Path) -> None:
    """node.key at 0644 fails the keys check, advising chmod 600 on that file."""
    (copy / "node.key").chmod(0o644)
    code, checks = _doctor(copy)
    assert (code, _failed(checks)) == (1, ["keys"])
    assert "has mode 0644" in checks["keys"]["detail"]
    assert checks["keys"]["advice"] == f"`chmod 600 {copy / 'node.key'}`"


def test_bad_settings_fail_config_and_unknown_variables_warn(copy: Path) -> None:
    """A bad CIRCLE_NODE_* value fails the config check naming it; an unknown variable is
    a warning (ok, with advice)."""
    code, checks = _doctor(copy, CIRCLE_NODE_POLL_INTERVAL="often")
    assert (code, _failed(checks)) == (1, ["config"])
    assert "environment variable CIRCLE_NODE_POLL_INTERVAL" in checks["config"]["detail"]
    assert "docs/configuration.md" in checks["config"]["advice"]
    code, checks = _doctor(copy, CIRCLE_NODE_LOGLEVEL="debug")
    assert (code, _failed(checks)) == (0, [])
    assert "CIRCLE_NODE_LOGLEVEL" in checks["config"]["detail"]
    assert checks["config"]["advice"]


def test_ops_stored_in_the_future_fail_the_clock_check(copy: Path) -> None:
    """An op stored a day after now means the clock went back: clock fails with advice."""
    db = sqlite3.connect(copy / "store.db")
    with db:
        db.execute("UPDATE ops SET received = ?", (int(time.time()) + 86400,))
    db.close()
    code, checks = _doctor(copy)
    assert (code, _failed(checks)) == (1, ["clock"])
    assert "the clock went back" in checks["clock"]["detail"]
    assert "timedatectl set-ntp true" in checks["clock"]["advice"]


def test_no_node_in_the_home_is_one_failed_check(tmp_path: Path) -> None:
    """Without a node, doctor reports only the home check, advising init."""
    code, checks = _doctor(tmp_path / "nothing")
    assert (code, list(checks)) == (1, ["home"])
    assert "circle-node init --name NAME" in checks["home"]["advice"]


def test_a_nearly_full_disk_fails(
    copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under 200 MiB free, disk_space fails with advice (in process, the disk faked)."""
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(
        doctor_module.shutil, "disk_usage", lambda _path: usage(2**34, 2**34 - 2**20, 2**20)
    )
    for key, value in cli_env().items():
        if key.startswith("CIRCLE_NODE_"):
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("CIRCLE_NODE_HOME", raising=False)
    code = cli_module.main(["--home", str(copy), "doctor", "--json"])
    checks = {c["check"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert code == 1
    assert [n for n, c in checks.items() if not c["ok"]] == ["disk_space"]
    assert "1 MiB free" in checks["disk_space"]["detail"]
    assert "move the home to a larger disk" in checks["disk_space"]["advice"]
