"""deploy/install-pi.sh: --dry-run lists every step and changes nothing; --prefix installs
into a scratch root (a real venv, from a stand-in wheel) and leaves the system alone."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "install-pi.sh"
STEPS = [
    "check requirements",
    "create the service user circle-node",
    "create the node home /var/lib/circle-node (mode 0700, owned by circle-node)",
    "install circle-node into the venv /opt/circle-node/venv",
    "write /etc/circle-node/env (mode 0600) with the passphrase of the node key, if missing",
    "make the node in /var/lib/circle-node, if it has none (name: test-pi)",
    "install the systemd unit /etc/systemd/system/circle-node.service",
    "enable the service (and start it)",
    "check the node with circle-node doctor",
]
# the stand-in for circle-node: logs how it was called, `init` makes node.toml
STUB = """
import json, os, sys
from pathlib import Path

def main():
    args = sys.argv[1:]
    with open(os.environ["STUB_LOG"], "a") as log:
        seen = {"args": args, "passphrase": os.environ.get("CIRCLE_NODE_PASSPHRASE")}
        log.write(json.dumps(seen) + "\\n")
    home = Path(args[args.index("--home") + 1])
    if "init" in args:
        (home / "node.toml").write_text("name = 'stub'\\n")
    if "doctor" in args:
        print(json.dumps({"ok": True, "checks": []}))
    return 0
"""


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _stub_wheel(directory: Path) -> Path:
    """A minimal wheel named circle-node whose `circle-node` script is :data:`STUB`."""
    info = "circle_node-0.0.0.dist-info"
    files = {
        "circle_node_stub.py": STUB.encode(),
        f"{info}/METADATA": b"Metadata-Version: 2.1\nName: circle-node\nVersion: 0.0.0\n",
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
        f"{info}/entry_points.txt": b"[console_scripts]\ncircle-node = circle_node_stub:main\n",
    }
    record = [_record_line(name, data) for name, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = directory / "circle_node-0.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def _install(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **(env or {})},
        timeout=120,
        check=False,
    )


def _steps(output: str) -> list[str]:
    return re.findall(r"^==> \[\d+\] (.*)$", output, flags=re.MULTILINE)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_dry_run_lists_every_step_and_changes_nothing(tmp_path: Path) -> None:
    """--dry-run prints all nine steps with their commands, system ones included, and
    writes nothing (not even under --prefix)."""
    done = _install("--dry-run", "--name", "test-pi", "--python", sys.executable)
    assert done.returncode == 0, done.stderr
    assert _steps(done.stdout) == STEPS
    for command in (
        "useradd --system --user-group --home-dir /var/lib/circle-node",
        "install -d -m 0700 /var/lib/circle-node",
        "chown circle-node:circle-node /var/lib/circle-node",
        "-m venv /opt/circle-node/venv",
        "/opt/circle-node/venv/bin/pip install --quiet --disable-pip-version-check --upgrade "
        f"{ROOT}\n",
        "runuser -u circle-node -- /opt/circle-node/venv/bin/circle-node --home "
        "/var/lib/circle-node init --name test-pi --listen 0.0.0.0:7400",
        "install -m 0644 ",
        "systemctl enable circle-node.service",
        "systemctl restart circle-node.service",
    ):
        assert command in done.stdout, command
    assert done.stdout.rstrip().endswith("Dry run: nothing was changed.")

    scratch = tmp_path / "root"
    scratch.mkdir()
    again = _install("--dry-run", "--prefix", str(scratch), "--name", "test-pi")
    assert again.returncode == 0, again.stderr
    assert _steps(again.stdout) == STEPS
    assert list(scratch.iterdir()) == []


def test_bad_options_are_refused() -> None:
    """An unknown option or a source that is neither a checkout nor a wheel stops the script
    before it does anything."""
    unknown = _install("--dry-run", "--frobnicate")
    assert unknown.returncode == 2
    assert "unknown option --frobnicate" in unknown.stderr
    missing = _install("--dry-run", "--source", "/nonexistent/circle_node.whl")
    assert missing.returncode == 1
    assert "no wheel at /nonexistent/circle_node.whl" in missing.stderr


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX sh")
def test_prefix_installs_into_a_scratch_root(tmp_path: Path) -> None:
    """--prefix: the venv, the 0700 home, the 0600 env file with a passphrase (given to
    init, never printed) and the unit land in the scratch root; system steps are skipped;
    a second run keeps the passphrase and the node."""
    scratch, log = tmp_path / "root", tmp_path / "calls.jsonl"
    wheel = _stub_wheel(tmp_path)
    args = ["--prefix", str(scratch), "--source", str(wheel), "--python", sys.executable]
    args += ["--pip-args", "--no-index", "--name", "test-pi"]
    done = _install(*args, env={"STUB_LOG": str(log)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert _steps(done.stdout) == STEPS
    for skipped in ("useradd", "chown", "systemctl daemon-reload", "systemctl enable"):
        assert f"(skipped under --prefix) $ {skipped}" in done.stdout, skipped

    assert os.access(scratch / "opt/circle-node/venv/bin/circle-node", os.X_OK)
    home = scratch / "var/lib/circle-node"
    assert _mode(home) == 0o700
    env_file = scratch / "etc/circle-node/env"
    assert _mode(env_file) == 0o600
    (passphrase,) = re.findall(r"^CIRCLE_NODE_PASSPHRASE=(\S{32,})$", env_file.read_text(), re.M)
    assert passphrase not in done.stdout + done.stderr
    unit = scratch / "etc/systemd/system/circle-node.service"
    assert unit.read_bytes() == (ROOT / "deploy/circle-node.service").read_bytes()
    assert _mode(unit) == 0o644

    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["args"] for c in calls] == [
        ["--home", str(home), "init", "--name", "test-pi", "--listen", "0.0.0.0:7400"],
        ["--home", str(home), "doctor"],
    ]
    assert calls[0]["passphrase"] == passphrase
    assert (home / "node.toml").is_file()

    again = _install(*args, env={"STUB_LOG": str(log)})
    assert again.returncode == 0, again.stdout + again.stderr
    assert "env exists: kept" in again.stdout
    assert "a node is already there: kept" in again.stdout
    assert env_file.read_text().count(passphrase) == 1
    assert len(log.read_text().splitlines()) == 3  # only doctor ran again
