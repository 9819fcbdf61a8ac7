"""End to end through real `circle-node` subprocesses: two homes synced over loopback.

A holds alice, B holds bob (and carol). Alice creates a circle on A and adds bob by card as
a manager; B runs `serve`; A adds B as a peer and runs `sync --once`; bob adds carol on B;
A syncs again; both stores verify and show the same circle. `serve` stops on SIGTERM.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_runner import Result, cli, cli_env

SYNC_KEYS = {"peer", "ops_sent", "ops_received", "bytes_sent", "bytes_received", "round_trips"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _healthy(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data
    except (urllib.error.URLError, OSError):
        return None


@pytest.fixture
def serve_b(tmp_path: Path) -> Iterator[tuple[Path, str, str, subprocess.Popen[str]]]:
    """Home B, and `serve --json` running on it on a free port: (home, node, url, process)."""
    b = tmp_path / "b"
    node_b = cli(b, "init", "--name", "barn").data["node"]
    port = _free_port()
    log = (tmp_path / "serve-b.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "node.cli", "--home", str(b), "serve", "--json"]
        + ["--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=cli_env(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while _healthy(url) is None:
            assert proc.poll() is None, (tmp_path / "serve-b.log").read_text()
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.05)
        assert proc.stdout is not None
        listening = json.loads(proc.stdout.readline())
        assert (listening["listening"], listening["node"]) == (f"127.0.0.1:{port}", node_b)
        yield b, node_b, url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        log.close()


def _sync(home: Path, url: str) -> dict[str, Any]:
    result = cli(home, "sync", "--once")
    assert result.code == 0, result
    (row,) = result.data["peers"]
    assert set(row) == SYNC_KEYS | {"error"}
    assert row["peer"] == url
    assert row["error"] is None
    assert all(isinstance(row[k], int) for k in SYNC_KEYS - {"peer"})
    return dict(row)


def _show(home: Path, circle: str) -> dict[str, Any]:
    shown = cli(home, "circle", "show", circle)
    assert shown.code == 0, shown
    data = shown.data
    data["members"] = sorted(data["members"], key=lambda m: m["member"])
    return data


def test_two_homes_sync_over_serve(
    tmp_path: Path, serve_b: tuple[Path, str, str, subprocess.Popen[str]]
) -> None:
    """A's circle reaches B via serve, B's write comes back; both agree; SIGTERM exits 0."""
    b, node_b, url, proc = serve_b
    a = tmp_path / "a"
    node_a = cli(a, "init", "--name", "hall").data["node"]
    cli(a, "member", "create", "--name", "alice")
    bob = cli(b, "member", "create", "--name", "bob").data
    carol = cli(b, "member", "create", "--name", "carol").data
    circle = cli(a, "circle", "create", "--name", "Garden", "--purpose", "grow").data["circle"]

    added = cli(a, "peer", "add", url, "--name", "barn")
    assert (added.code, added.data) == (0, {"peer": url, "name": "barn"})
    # offline-first: writing needs no peer (and `peer add` contacted nobody)
    assert cli(a, "circle", "add-member", circle, bob["card"], "--level", "manage").code == 0

    first = _sync(a, url)
    assert first["ops_sent"] == 3
    assert first["ops_received"] == 0
    assert first["bytes_sent"] > 0
    assert first["round_trips"] >= 1
    assert _show(b, circle)["ops"] == 3

    wrote = cli(b, "--as", "bob", "circle", "add-member", circle, carol["card"])
    assert wrote.code == 0, wrote
    second = _sync(a, url)
    assert (second["ops_sent"], second["ops_received"]) == (0, 1)

    for home in (a, b):
        verified = cli(home, "verify")
        assert (verified.code, verified.data["ok"], verified.data["ops"]) == (0, True, 4)
    shown_a, shown_b = _show(a, circle), _show(b, circle)
    assert shown_a == shown_b
    assert {m["name"] for m in shown_a["members"]} == {"alice", "bob", "carol"}
    assert sorted(shown_a["hosts"]) == sorted([node_a, node_b])

    (peer,) = cli(a, "peer", "list").data["peers"]
    assert (peer["peer"], peer["name"], peer["node"]) == (url, "barn", node_b)
    assert (peer["ops_sent"], peer["ops_received"], peer["last_error"]) == (3, 1, None)
    assert peer["last_contact"] is not None

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert proc.stdout is not None
    assert proc.stdout.read() == ""


def test_sync_with_an_unreachable_peer_reports_it(tmp_path: Path) -> None:
    """`sync --once` with nobody listening prints the JSON with the error, and exits 1."""
    a = tmp_path / "a"
    cli(a, "init", "--name", "hall")
    url = f"http://127.0.0.1:{_free_port()}"
    cli(a, "peer", "add", url)
    result: Result = cli(a, "sync", "--once")
    assert result.code == 1
    (row,) = result.data["peers"]
    assert "connection refused" in row["error"]
    assert "circle-node serve" in row["error"]
    assert (row["ops_sent"], row["round_trips"]) == (0, 0)
    (peer,) = cli(a, "peer", "list").data["peers"]
    assert peer["last_error"] == row["error"]
    assert peer["last_contact"] is None
    assert cli(a, "peer", "remove", url).data == {"removed": url}
    assert cli(a, "peer", "list").data == {"peers": []}


def _serve_discovering(home: Path, port: int, log_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "node.cli", "--home", str(home), "serve", "--json", "--discover"]
        + ["--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("w"),
        text=True,
        env=cli_env(),
    )


def test_serve_discover_offers_lan_nodes_without_trusting_them(tmp_path: Path) -> None:
    """Two `serve --discover` nodes on loopback each log the other as a peer to add, and
    neither adds it: the peers table stays empty until someone runs `peer add`."""
    homes = [tmp_path / "x", tmp_path / "y"]
    nodes = [cli(h, "init", "--name", h.name).data["node"] for h in homes]
    ports = [_free_port(), _free_port()]
    logs = [tmp_path / "x.log", tmp_path / "y.log"]
    procs = [_serve_discovering(h, p, lg) for h, p, lg in zip(homes, ports, logs, strict=True)]
    try:
        deadline = time.monotonic() + 30
        wanted = [
            f"found node {nodes[1][:16]} at http://127.0.0.1:{ports[1]}",
            f"found node {nodes[0][:16]} at http://127.0.0.1:{ports[0]}",
        ]
        while not all(w in lg.read_text() for w, lg in zip(wanted, logs, strict=True)):
            assert all(p.poll() is None for p in procs), logs[0].read_text() + logs[1].read_text()
            assert time.monotonic() < deadline, logs[0].read_text() + logs[1].read_text()
            time.sleep(0.2)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert proc.wait(timeout=15) == 0
    assert cli(homes[0], "peer", "list").data == {"peers": []}


def test_consent_across_two_nodes_over_sync(
    tmp_path: Path, serve_b: tuple[Path, str, str, subprocess.Popen[str]]
) -> None:
    """A proposal made on A reaches B by `sync --once`; bob consents on B, which signs the
    decision; it syncs back; both nodes show it agreed and verified, and verify passes."""
    b, _node_b, url, proc = serve_b
    a = tmp_path / "a"
    cli(a, "init", "--name", "hall")
    cli(a, "member", "create", "--name", "alice")
    bob = cli(b, "member", "create", "--name", "bob").data
    circle = cli(a, "circle", "create", "--name", "Garden").data["circle"]
    assert cli(a, "circle", "add-member", circle, bob["card"], "--level", "write").code == 0
    made = cli(
        a,
        "proposal",
        "create",
        circle,
        "--title",
        "Rota",
        "--driver",
        "Beds dry",
        "--text",
        "Two people water each evening",
    )
    assert made.code == 0, made
    pid = made.data["proposal"]
    assert cli(a, "position", pid, "consent").code == 0
    assert cli(a, "peer", "add", url).code == 0
    _sync(a, url)

    waiting = cli(b, "proposal", "show", pid).data
    assert waiting["state"] == "consent_round"
    assert waiting["outcome"]["missing"] == [bob["member"]]
    consented = cli(b, "--as", "bob", "position", pid, "consent")
    assert consented.code == 0, consented
    assert consented.data["state"] == "agreed"
    back = _sync(a, url)
    assert back["ops_received"] >= 2  # bob's position and the decision record

    shown = [cli(home, "proposal", "show", pid).data for home in (a, b)]
    for data in shown:
        assert data["state"] == "agreed"
        assert data["outcome"]["verified"] is True
    assert shown[0]["version"] == shown[1]["version"]
    assert shown[0]["outcome"]["decision"] == shown[1]["outcome"]["decision"]
    for home in (a, b):
        assert cli(home, "verify").data["ok"] is True
    entries = cli(a, "logbook", circle).data["entries"]
    assert [e["kind"] for e in entries if e.get("proposal") == pid] == ["decision"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
