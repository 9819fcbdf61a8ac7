"""Running the real `circle-node` CLI in a subprocess, as the end-to-end tests do."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASSPHRASE = "e2e passphrase"


@dataclass(frozen=True)
class Result:
    code: int
    data: dict[str, Any]
    stderr: str


def cli_env() -> dict[str, str]:
    """The environment every e2e subprocess gets: a passphrase, fast argon2 for test keys,
    and no CIRCLE_NODE_HOME leaking in from the developer's shell."""
    env = dict(os.environ)
    env.pop("CIRCLE_NODE_HOME", None)
    env["CIRCLE_NODE_PASSPHRASE"] = PASSPHRASE
    env["CIRCLE_NODE_FAST_KDF"] = "1"
    return env


def cli(home: Path, *args: str) -> Result:
    """Run `python -m node.cli --home HOME ... --json` and parse its one JSON object."""
    proc = subprocess.run(
        [sys.executable, "-m", "node.cli", "--home", str(home), *args, "--json"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout + proc.stderr
    return Result(proc.returncode, json.loads(lines[0]), proc.stderr)


def flip_byte(home: Path, column: str, kind: int) -> str:
    """Flip one byte of ``column`` in the first stored op of ``kind``; its op id in hex."""
    db = sqlite3.connect(home / "store.db")
    try:
        op_id, value = db.execute(
            f"SELECT op_id, {column} FROM ops WHERE kind = ? ORDER BY lseq LIMIT 1", (kind,)
        ).fetchone()
        changed = bytearray(value)
        changed[len(changed) // 2] ^= 0x01
        db.execute(f"UPDATE ops SET {column} = ? WHERE op_id = ?", (bytes(changed), op_id))
        db.commit()
    finally:
        db.close()
    return bytes(op_id).hex()
