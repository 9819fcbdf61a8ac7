"""Keys over time end to end, through real `circle-node` subprocesses and `serve` on
loopback: a backup restores a node; a node rotates its key and keeps syncing with a peer
that pinned the old one (which then refuses the old key); a member's second device
consents and it counts as the member's; a partner organisation's certified node syncs only
the circles the agreement lists."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cli_runner import Result, cli, cli_env


def ok(result: Result) -> dict[str, Any]:
    assert result.code == 0, result
    return result.data


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1):
            return True
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def serving(home: Path, port: int | None = None) -> Iterator[str]:
    """`serve` on ``home`` on loopback (``port``, else a free one) until the block ends."""
    port = _free_port() if port is None else port
    log = (home.parent / f"serve-{home.name}.log").open("a")
    proc = subprocess.Popen(
        [sys.executable, "-m", "node.cli", "--home", str(home), "serve", "--json"]
        + ["--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
        env=cli_env(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while not _healthy(url):
            assert proc.poll() is None, (home.parent / f"serve-{home.name}.log").read_text()
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.05)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def sync(home: Path, url: str | None = None) -> dict[str, Any]:
    args = ["sync", "--once"] + (["--peer", url] if url else [])
    result = cli(home, *args)
    (row,) = result.data["peers"]
    return dict(row)


def circle_ids(home: Path) -> set[str]:
    return {c["circle"] for c in ok(cli(home, "circle", "list"))["circles"]}


def test_backup_restores_a_node_that_syncs_as_before(tmp_path: Path) -> None:
    """A backup restored into an empty directory is the same node with the same members;
    a wrong passphrase or a tampered file restores nothing."""
    a = tmp_path / "a"
    node = ok(cli(a, "init", "--name", "hall"))["node"]
    alice = ok(cli(a, "member", "create", "--name", "alice"))["member"]
    backup = tmp_path / "keys.cnbackup"
    ok(cli(a, "keys", "backup", "--out", str(backup)))
    assert backup.stat().st_mode & 0o777 == 0o600
    again = cli(a, "keys", "backup", "--out", str(backup))
    assert again.code == 1
    assert "refusing to overwrite" in again.data["error"]

    tampered = tmp_path / "tampered"
    data = bytearray(backup.read_bytes())
    data[len(data) // 2] ^= 1
    tampered.write_bytes(bytes(data))
    bad = cli(tmp_path / "r1", "keys", "restore", str(tampered))
    assert bad.code == 1
    assert "damaged" in bad.data["error"]
    assert not (tmp_path / "r1").exists()

    r = tmp_path / "r"
    restored = ok(cli(r, "keys", "restore", str(backup)))
    assert (restored["node"], restored["created_home"], restored["added"]) == (
        node,
        True,
        ["alice"],
    )
    assert [m["member"] for m in ok(cli(r, "member", "list"))["members"]] == [alice]
    ok(cli(r, "member", "card"))  # the restored member key opens and signs
    other = tmp_path / "other"
    ok(cli(other, "init", "--name", "barn"))
    refused = cli(other, "keys", "restore", str(backup))
    assert refused.code == 1
    assert "another node key" in refused.data["error"]


def test_rotated_node_keeps_syncing_and_its_old_key_is_refused(tmp_path: Path) -> None:
    """B rotates its key; A (which pinned the old one) syncs on and records the new key; new
    ops flow both ways; a copy of B's old key restored elsewhere is then refused by A."""
    a, b = tmp_path / "a", tmp_path / "b"
    ok(cli(a, "init", "--name", "hall"))
    old_b = ok(cli(b, "init", "--name", "barn"))["node"]
    ok(cli(a, "member", "create", "--name", "alice"))
    bob = ok(cli(b, "member", "create", "--name", "bob"))
    circle = ok(cli(a, "circle", "create", "--name", "Garden"))["circle"]
    ok(cli(a, "circle", "add-member", circle, bob["card"], "--level", "manage"))
    old_backup = tmp_path / "old.cnbackup"
    ok(cli(b, "keys", "backup", "--out", str(old_backup)))

    port_b = _free_port()  # the same address before and after the restart
    with serving(b, port_b) as url_b:
        ok(cli(a, "peer", "add", url_b))
        assert sync(a)["error"] is None
    assert circle in circle_ids(b)

    rotated = ok(cli(b, "node", "rotate-key"))
    assert rotated["old"] == old_b
    new_b = rotated["new"]
    assert ok(cli(b, "status"))["node"] == new_b
    carol = ok(cli(a, "member", "create", "--name", "carol"))
    ok(cli(a, "--as", "alice", "circle", "add-member", circle, carol["card"]))
    with serving(b, port_b):
        row = sync(a)
        assert row["error"] is None, row
        assert row["ops_sent"] == 1
        (peer,) = ok(cli(a, "peer", "list"))["peers"]
        assert peer["node"] == new_b  # the pin followed the hand-over
        dave = ok(cli(b, "member", "create", "--name", "dave"))
        ok(cli(b, "--as", "bob", "circle", "add-member", circle, dave["card"]))
        assert sync(a)["ops_received"] == 1
    assert ok(cli(a, "circle", "show", circle)) == ok(cli(b, "circle", "show", circle))

    thief = tmp_path / "thief"
    ok(cli(thief, "keys", "restore", str(old_backup)))
    with serving(thief) as url_t:
        refused = sync(a, url_t)
    assert "retired by a hand-over" in refused["error"]
    assert circle not in circle_ids(thief)


def test_second_device_consents_and_it_counts(tmp_path: Path) -> None:
    """Alice registers her laptop (its own node); the laptop syncs, consents to a proposal,
    and the proposal is agreed on Alice's first node with her as the consenting member.
    Retiring the laptop stops its later ops from counting."""
    a, laptop = tmp_path / "a", tmp_path / "laptop"
    ok(cli(a, "init", "--name", "hall"))
    ok(cli(laptop, "init", "--name", "laptop"))
    alice = ok(cli(a, "member", "create", "--name", "alice"))["member"]
    device = ok(cli(laptop, "member", "create", "--name", "alice-laptop"))
    circle = ok(cli(a, "circle", "create", "--name", "Garden"))["circle"]
    pid = ok(
        cli(a, "proposal", "create", circle, "--title", "Compost", "--driver", "waste",
            "--text", "start a compost heap", "--review-every", "180")
    )["proposal"]  # fmt: skip
    added = ok(cli(a, "member", "add-device", device["card"]))
    assert added["circles"] == [circle]
    with serving(a) as url_a:
        ok(cli(laptop, "peer", "add", url_a))
        assert sync(laptop)["error"] is None
        assert circle in circle_ids(laptop)
        position = ok(cli(laptop, "position", pid, "consent"))
        assert position["state"] == "agreed"
        assert sync(laptop)["error"] is None
    shown = ok(cli(a, "proposal", "show", pid))
    assert shown["state"] == "agreed"
    assert shown["outcome"]["verified"] is True
    (consent,) = shown["positions"]  # signed by the laptop's key, counted as alice's
    assert (consent["member"], consent["name"], consent["counts"]) == (alice, "alice", True)
    assert ok(cli(a, "verify"))["ok"] is True

    retired = ok(cli(a, "member", "remove-device", device["member"][:12]))
    assert retired["circles"] == [circle]
    lost = cli(a, "member", "remove-device", device["member"][:12])
    assert lost.code == 1
    # the lost laptop, not yet told, writes on: its new op never counts on alice's node
    late = ok(
        cli(laptop, "proposal", "create", circle, "--title", "Sell", "--driver", "money",
            "--text", "sell the garden")
    )["proposal"]  # fmt: skip
    with serving(a) as url_a:
        row = sync(laptop, url_a)
        assert row["error"] is None
    assert cli(a, "proposal", "show", late).code == 1
    assert ok(cli(laptop, "proposal", "show", pid))["state"] == "agreed"


def test_partner_node_syncs_only_agreed_circles(tmp_path: Path) -> None:
    """Org A certifies its node and agrees that org B's nodes may host one circle; B's
    certified node gets that circle and not the other; an uncertified node gets nothing."""
    a, p, u = tmp_path / "a", tmp_path / "p", tmp_path / "u"
    node_a = ok(cli(a, "init", "--name", "hall"))["node"]
    node_p = ok(cli(p, "init", "--name", "partner"))["node"]
    ok(cli(u, "init", "--name", "stranger"))
    root_a = ok(cli(a, "org", "init", "--name", "Org A", "--out", str(tmp_path / "a.root")))
    root_b = ok(cli(a, "org", "init", "--name", "Org B", "--out", str(tmp_path / "b.root")))
    ok(cli(a, "member", "create", "--name", "alice"))
    shared = ok(cli(a, "circle", "create", "--name", "Shared"))["circle"]
    private = ok(cli(a, "circle", "create", "--name", "Private"))["circle"]

    cert_a = ok(cli(a, "org", "certify-node", node_a, "--root", str(tmp_path / "a.root")))
    cert_p = ok(cli(p, "org", "certify-node", node_p, "--root", str(tmp_path / "b.root")))
    deal = ok(
        cli(a, "org", "agree", "--root", str(tmp_path / "a.root"),
            "--partner", root_b["root"], "--circle", shared)
    )  # fmt: skip
    early = cli(a, "federation", "add", deal["agreement"])
    assert early.code == 1
    assert "no certificate" in early.data["error"]
    wrong = cli(a, "node", "install-cert", cert_p["cert"])
    assert wrong.code == 1
    assert "not this node" in wrong.data["error"]
    ok(cli(a, "node", "install-cert", cert_a["cert"]))
    ok(cli(p, "node", "install-cert", cert_p["cert"]))
    ok(cli(a, "federation", "add", deal["agreement"]))
    creds = ok(cli(a, "node", "credentials"))
    assert creds["roots"] == [root_a["root"]]
    assert creds["agreements"][0]["circles"] == [shared]

    with serving(a) as url_a:
        for home in (p, u):
            ok(cli(home, "peer", "add", url_a))
            assert sync(home)["error"] is None
        assert circle_ids(p) == {shared}
        assert circle_ids(u) == set()
        ok(cli(a, "federation", "remove", root_b["root"]))
        assert sync(p)["ops_received"] == 0
    assert private not in circle_ids(p)
