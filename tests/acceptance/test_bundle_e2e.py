"""USB bundles end to end through the real `circle-node` command, two homes, no network.

Alice creates a circle on A and adds bob (homed on B) by card; A exports a bundle for bob's
node, B imports it; bob adds carol on B, B exports what A lacks (A's heights file), A
imports it; both verify and show the same circle. Tampered bundles fail with exit 1.
"""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cli_runner import Result, cli


def ok(result: Result) -> dict[str, Any]:
    assert result.code == 0, result
    return result.data


@dataclass(frozen=True)
class World:
    root: Path
    a: Path
    b: Path
    b_before: Path  # a copy of B's home from before it imported anything
    node_b: str
    circle: str
    bundle: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """A circle on A with bob (homed on B) added by card, exported for B and imported there."""
    root = tmp_path_factory.mktemp("bundle-e2e")
    a, b = root / "a", root / "b"
    ok(cli(a, "init", "--name", "hall"))
    node_b = ok(cli(b, "init", "--name", "barn"))["node"]
    ok(cli(a, "member", "create", "--name", "alice"))
    bob = ok(cli(b, "member", "create", "--name", "bob"))
    shutil.copytree(b, root / "b-before")
    circle = ok(cli(a, "circle", "create", "--name", "Garden", "--purpose", "grow food"))["circle"]
    ok(cli(a, "circle", "add-member", circle[:8], bob["card"], "--level", "manage"))
    bundle = root / "to-b.cnb"
    exported = ok(cli(a, "bundle", "export", str(bundle), "--for", bob["card"]))
    assert (exported["ops"], exported["for_node"], exported["excluded"]) == (3, node_b, [])
    assert exported["circles"] == [{"circle": circle, "ops": 3}]
    return World(root, a, b, root / "b-before", node_b, circle, bundle)


def test_import_on_b_then_changes_flow_back(world: World) -> None:
    """B imports A's bundle; bob adds carol on B; B's bundle --since A's heights goes to A."""
    imported = ok(cli(world.b, "bundle", "import", str(world.bundle)))
    assert (imported["added"], imported["duplicates"], imported["rejected"]) == (3, 0, 0)
    assert (imported["reasons"], imported["sections_failed"]) == ({}, [])
    again = ok(cli(world.b, "bundle", "import", str(world.bundle)))
    assert (again["added"], again["duplicates"]) == (0, 3)

    carol = ok(cli(world.b, "member", "create", "--name", "carol"))
    ok(cli(world.b, "--as", "bob", "circle", "add-member", world.circle[:8], carol["card"]))
    heights = world.root / "a-heights"
    assert ok(cli(world.a, "bundle", "heights", str(heights)))["circles"] == 1
    back = world.root / "to-a.cnb"
    exported = ok(cli(world.b, "bundle", "export", str(back), "--since", str(heights)))
    assert exported["ops"] == 1  # only carol's addition: A holds the rest
    imported = ok(cli(world.a, "bundle", "import", str(back)))
    assert (imported["added"], imported["duplicates"], imported["rejected"]) == (1, 0, 0)

    for home in (world.a, world.b):
        assert ok(cli(home, "verify")) == {"ok": True, "ops": 4, "problems": []}
    shown_a = ok(cli(world.a, "circle", "show", world.circle))
    shown_b = ok(cli(world.b, "circle", "show", world.circle))
    assert shown_a == shown_b
    assert {m["name"] for m in shown_a["members"]} == {"alice", "bob", "carol"}


def test_export_refuses_to_overwrite_without_force(world: World) -> None:
    """An existing FILE is refused (exit 1) unless --force."""
    refused = cli(world.a, "bundle", "export", str(world.bundle), "--for", world.node_b)
    assert refused.code == 1
    assert "--force" in refused.data["error"]
    forced = cli(world.a, "bundle", "export", str(world.bundle), "--for", world.node_b, "--force")
    assert forced.code == 0


def test_export_for_a_stranger_node_is_refused(world: World) -> None:
    """--for a node that hosts none of A's circles: exit 1 and a clear error."""
    result = cli(world.a, "bundle", "export", str(world.root / "x.cnb"), "--for", "ab" * 32)
    assert result.code == 1
    assert "hosts none of the circles" in result.data["error"]
    assert not (world.root / "x.cnb").exists()


@pytest.mark.parametrize(("where", "message"), [(60, "signature"), (-20, "altered")])
def test_tampered_bundle_fails_with_exit_1(world: World, where: int, message: str) -> None:
    """One flipped byte in the head or in a section: exit 1, `error` says why, nothing added."""
    data = bytearray(world.bundle.read_bytes())
    data[where] ^= 0x01
    tampered = world.root / f"tampered{where}.cnb"
    tampered.write_bytes(bytes(data))
    fresh = world.root / f"fresh{where}"
    shutil.copytree(world.b_before, fresh)
    result = cli(fresh, "bundle", "import", str(tampered))
    assert result.code == 1
    assert message in result.data["error"]
    assert result.data.get("added", 0) == 0
    if (fresh / "store.db").exists():
        with closing(sqlite3.connect(fresh / "store.db")) as db:
            assert db.execute("SELECT COUNT(*) FROM ops").fetchone() == (0,)


async def test_import_leaves_fresh_governance_digests(world: World) -> None:
    """After `bundle import` returns, a background process stores the imported circle's
    governance digest (matching the store now), so the next TUI start does not fold it."""
    import asyncio

    from node.digests import decode, digest_of, stamp_of
    from node.governance import load
    from node.replica import Replica
    from node.store.digests import DigestTable

    fresh = world.root / "b-digests"
    shutil.copytree(world.b_before, fresh)
    assert ok(cli(fresh, "bundle", "import", str(world.bundle)))["added"] >= 3
    circle = bytes.fromhex(world.circle)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    async with Replica.open(fresh / "store.db") as replica:
        while True:
            await replica.refresh()
            stored = await DigestTable(replica.store).get(circle)
            if stored is not None and stored[0] == await stamp_of(replica, circle):
                break
            assert loop.time() < deadline, "no fresh digest after the import"
            await asyncio.sleep(0.1)
        assert decode(stored[1]) == digest_of(await load(replica, circle))
