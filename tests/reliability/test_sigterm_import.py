"""SIGTERM during a large `bundle import`: the process finishes the batch in flight, says
so and exits 130; what it committed stays, the store passes `PRAGMA integrity_check` and
`verify`, and running the import again resumes and completes it."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from cli_runner import cli, cli_env
from test_crash_safety import _check, _fill

from node.crypto.card import parse_card

WAIT_FOR_FIRST_BATCH = 60.0  # seconds: a guard against a hung import, not a timing


def _count_ops(store: Path) -> int:
    if not store.exists():
        return 0
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30)
    try:
        return int(db.execute("SELECT count(*) FROM ops").fetchone()[0])
    except sqlite3.OperationalError:  # the schema is not created yet
        return 0
    finally:
        db.close()


def _start_import(home: Path, bundle: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "node.cli", "--home", str(home), "bundle", "import", str(bundle)]
        + ["--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )


def _wait_for_a_committed_batch(proc: subprocess.Popen[str], store: Path) -> int:
    """Poll the store until the import has committed its first batch; that count."""
    deadline = time.monotonic() + WAIT_FOR_FIRST_BATCH
    while time.monotonic() < deadline:
        count = _count_ops(store)
        if count > 0:
            return count
        assert proc.poll() is None, "the import ended before it committed anything"
        time.sleep(0.005)
    raise AssertionError("the import committed nothing within the guard time")


def test_sigterm_during_import_keeps_what_was_committed_and_resumes(tmp_path: Path) -> None:
    """SIGTERM mid-import: exit 130 with a clear message, committed ops kept, store
    intact and verifiable; the next import adds exactly the rest."""
    a, b = tmp_path / "a", tmp_path / "b"
    cli(a, "init", "--name", "hall")
    node_b = cli(b, "init", "--name", "barn").data["node"]
    card = cli(b, "member", "create", "--name", "bob").data["card"]
    total = asyncio.run(_fill(a / "store.db", bytes.fromhex(node_b), parse_card(card).member))
    bundle = tmp_path / "all.cnb"
    assert cli(a, "bundle", "export", str(bundle), "--for", node_b).code == 0

    proc = _start_import(b, bundle)
    acknowledged = _wait_for_a_committed_batch(proc, b / "store.db")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err, err
    assert "stopped after" in err
    assert "run the same import again" in err
    assert "stopped after" in json.loads(out)["error"]

    kept = asyncio.run(_check(b / "store.db"))  # integrity_check and verify pass
    assert acknowledged <= kept <= total

    resumed = cli(b, "bundle", "import", str(bundle))
    assert resumed.code == 0, resumed
    assert resumed.data["added"] == total - kept
    assert asyncio.run(_check(b / "store.db")) == total
