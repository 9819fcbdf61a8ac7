"""deploy/circle-node.service: systemd accepts it, and it keeps the hardening we promise."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "circle-node.service"
EXEC = "/opt/circle-node/venv/bin/circle-node"
SYSTEM_UNITS = [Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")]


def _parse(text: str) -> dict[str, dict[str, list[str]]]:
    """The unit's sections, each key with every value it is given (in order)."""
    sections: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        sections[section][key.strip()].append(value.strip())
    return sections


def _systemd_analyze() -> str:
    """systemd-analyze, installed from Debian if missing and we may; else skip, saying why."""
    found = shutil.which("systemd-analyze")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd), and not root")
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "systemd"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            pytest.skip(f"systemd-analyze missing and `{' '.join(command)}` failed: {done.stderr}")
    return shutil.which("systemd-analyze") or pytest.skip("systemd-analyze still not found")


def _scratch_root(tmp_path: Path) -> Path:
    """A root holding systemd's own units, our unit and a stand-in for the venv's script, so
    the unit is checked as installed, without touching this machine."""
    system_units = next((d for d in SYSTEM_UNITS if (d / "sysinit.target").exists()), None)
    if system_units is None:
        pytest.skip("systemd's units (sysinit.target) are not installed here")
    root = tmp_path / "root"
    shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system" / UNIT.name)
    script = root / EXEC.lstrip("/")
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    return root


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    """`systemd-analyze verify` finds nothing to say about the unit (no unknown keys, no bad
    values), and `systemd-analyze security` rates its exposure at most 2.0 ("OK")."""
    analyze = _systemd_analyze()
    root = _scratch_root(tmp_path)
    verify = subprocess.run(
        [analyze, "verify", f"--root={root}", UNIT.name],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (verify.returncode, verify.stdout + verify.stderr) == (0, "")
    security = subprocess.run(
        [analyze, "security", "--offline=yes", f"--root={root}", "--no-pager", UNIT.name],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "--offline" in security.stderr and security.returncode != 0:
        pytest.skip("this systemd-analyze has no `security --offline` (systemd < 250)")
    assert "Unknown key" not in security.stdout + security.stderr
    level = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", security.stdout)
    assert level is not None, security.stdout + security.stderr
    assert float(level.group(1)) <= 2.0, security.stdout


def test_unit_runs_serve_as_a_dedicated_user_with_hardening() -> None:
    """The unit runs `serve` on /var/lib/circle-node as circle-node, reads the passphrase
    from an optional root-only env file, restarts on failure, and sets the hardening keys;
    MemoryDenyWriteExecute is left out (cffi), with a comment saying why."""
    text = UNIT.read_text()
    unit = _parse(text)
    service = {key: values[-1] for key, values in unit["Service"].items()}
    assert service["ExecStart"] == f"{EXEC} --home /var/lib/circle-node serve"
    assert (service["User"], service["Group"]) == ("circle-node", "circle-node")
    assert service["EnvironmentFile"] == "-/etc/circle-node/env"
    assert service["Restart"] == "on-failure"
    assert float(service["RestartSec"]) > 0
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "ReadWritePaths": "/var/lib/circle-node",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        "UMask": "0077",
    }
    assert {key: service.get(key) for key in expected} == expected
    assert "MemoryDenyWriteExecute" not in service
    assert re.search(r"^#.*MemoryDenyWriteExecute.*\n#.*cffi", text, flags=re.MULTILINE)
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert "network-online.target" in unit["Unit"]["Wants"]
