"""End to end through the real `circle-node` command in subprocesses, on two node homes.

Node A holds alice, node B holds bob. Alice creates a circle on A and adds bob by the card
B printed; A's store then verifies. Each tamper test copies A's home, flips one stored
byte with the sqlite3 module, and expects `verify` to fail naming that op.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_runner import cli, flip_byte


@dataclass(frozen=True)
class World:
    a: Path
    b: Path
    node_a: str
    node_b: str
    alice: str
    bob: str
    circle: str
    add_op: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Two nodes, alice on A and bob on B, and a circle on A that bob was added to."""
    root = tmp_path_factory.mktemp("e2e")
    a, b = root / "a", root / "b"
    node_a = cli(a, "init", "--name", "hall", "--listen", "127.0.0.1:7401").data["node"]
    node_b = cli(b, "init", "--name", "barn").data["node"]
    alice = cli(a, "member", "create", "--name", "alice").data
    bob = cli(b, "member", "create", "--name", "bob").data
    assert bob["card"].startswith("cn1:")
    created = cli(a, "circle", "create", "--name", "Garden", "--purpose", "grow food")
    assert created.code == 0, created
    circle = created.data["circle"]
    added = cli(a, "circle", "add-member", circle[:8], bob["card"], "--level", "write")
    assert added.code == 0, added
    assert added.data["circle"] == circle
    assert (added.data["member"], added.data["level"]) == (bob["member"], "write")
    return World(a, b, node_a, node_b, alice["member"], bob["member"], circle, added.data["op"])


def test_show_lists_both_members_and_hosts(world: World) -> None:
    """circle show on A lists alice (manage) and bob (write), hosted on both nodes."""
    shown = cli(world.a, "circle", "show", world.circle)
    assert shown.code == 0
    data = shown.data
    assert (data["name"], data["purpose"], data["parent"]) == ("Garden", "grow food", None)
    members = {m["member"]: (m["name"], m["level"], m["home"]) for m in data["members"]}
    assert members == {
        world.alice: ("alice", "manage", world.node_a),
        world.bob: ("bob", "write", world.node_b),
    }
    assert sorted(data["hosts"]) == sorted([world.node_a, world.node_b])
    assert data["profile"] == {"name": "Garden", "purpose": "grow food"}
    assert data["ops"] == 3  # genesis, profile edit, add bob


def test_verify_ok_and_status(world: World) -> None:
    """verify passes with exit 0 on the untouched store, and status counts it."""
    verified = cli(world.a, "verify")
    assert (verified.code, verified.data) == (0, {"ok": True, "ops": 3, "problems": []})
    status = cli(world.a, "status").data
    assert (status["node"], status["members"], status["circles"], status["ops"]) == (
        world.node_a,
        1,
        1,
        3,
    )


def test_error_on_unknown_circle_is_json(world: World) -> None:
    """An unknown circle is a JSON error object and exit 1."""
    result = cli(world.a, "circle", "show", "ffff0000")
    assert result.code == 1
    assert "no circle matches" in result.data["error"]
    assert result.stderr.startswith("error: ")


@pytest.mark.parametrize(
    ("column", "kind"),
    [("sig", 2), ("body", 2), ("header", 1), ("body", 1), ("sig", 0)],
    ids=["y-sig", "y-body", "auth-header", "auth-body", "genesis-sig"],
)
def test_verify_detects_one_flipped_byte(
    world: World, tmp_path: Path, column: str, kind: int
) -> None:
    """One flipped byte in a stored op makes verify fail with exit 1, naming that op."""
    home = tmp_path / "copy"
    shutil.copytree(world.a, home)
    op_id = flip_byte(home, column, kind)
    result = cli(home, "verify")
    assert result.code == 1
    assert result.data["ok"] is False
    assert result.data["ops"] == 3
    assert op_id in {p["op"] for p in result.data["problems"]}, result.data
