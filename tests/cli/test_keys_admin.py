"""node.keys_admin.rotate_node_key on a real home: the new key is named and sealed, the
hand-over chain grows, and a rotation that fails midway leaves a usable node (before
node.toml names the new key: the old key; after: unlock_node finishes the rename)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from node import keys_admin
from node.crypto.handover import verify_chain
from node.home import NEXT_NODE_KEY_FILE, NodeHome
from node.keyring import KeyRing
from node.replica import Replica

PASS = "pw"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> NodeHome:
    monkeypatch.setenv("CIRCLE_NODE_FAST_KDF", "1")
    made = NodeHome(tmp_path / "h")
    made.init("hall", "127.0.0.1:7400", PASS)
    return made


async def own_chain(home: NodeHome) -> list[bytes]:
    async with Replica.open(home.store_path) as replica:
        creds = await KeyRing(replica.store).own_credentials()
    return [h.old for h in verify_chain(creds.handovers, home.node_public)]


async def test_two_rotations_chain_up(home: NodeHome) -> None:
    """K0 -> K1 -> K2: node.toml and node.key name K2; the chain names K0 and K1."""
    k0 = home.unlock_node(PASS)
    first = await keys_admin.rotate_node_key(home, k0, PASS)
    k1 = NodeHome(home.path).unlock_node(PASS)
    assert (first.old, first.new, first.seq) == (k0.public, k1.public, 1)
    second = await keys_admin.rotate_node_key(NodeHome(home.path), k1, PASS)
    fresh = NodeHome(home.path)
    assert fresh.unlock_node(PASS).public == second.new == fresh.node_public
    assert second.seq == 2
    assert await own_chain(fresh) == [k0.public, k1.public]
    assert not (home.path / NEXT_NODE_KEY_FILE).exists()


async def test_failure_before_node_toml_keeps_the_old_key(
    home: NodeHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    """node.toml cannot be written: the old key stays in use, no stray key file, and the
    next rotation works (the dangling hand-over is not presented)."""
    k0 = home.unlock_node(PASS)

    def broken(*_args: object, **_kw: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keys_admin, "write_atomic", broken)
    with pytest.raises(OSError, match="No space"):
        await keys_admin.rotate_node_key(home, k0, PASS)
    monkeypatch.undo()
    fresh = NodeHome(home.path)
    assert fresh.unlock_node(PASS).public == k0.public
    assert not (home.path / NEXT_NODE_KEY_FILE).exists()
    async with Replica.open(home.store_path) as replica:
        assert await KeyRing(replica.store).presentable(k0.public) == b""
    monkeypatch.setenv("CIRCLE_NODE_FAST_KDF", "1")
    link = await keys_admin.rotate_node_key(fresh, k0, PASS)
    assert NodeHome(home.path).unlock_node(PASS).public == link.new


async def test_interrupted_rename_is_finished_by_unlock(
    home: NodeHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    """node.toml names the new key but node.key is still the old one: unlock finishes."""
    k0 = home.unlock_node(PASS)

    real_replace = os.replace

    def no_rename(src: str | Path, dst: str | Path) -> None:
        if Path(src).name == NEXT_NODE_KEY_FILE:
            raise KeyboardInterrupt  # the process stops right before the key's rename
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(KeyboardInterrupt):
        await keys_admin.rotate_node_key(home, k0, PASS)
    monkeypatch.undo()
    fresh = NodeHome(home.path)
    assert fresh.node_public != k0.public
    assert (home.path / NEXT_NODE_KEY_FILE).exists()
    assert fresh.unlock_node(PASS).public == fresh.node_public
    assert not (home.path / NEXT_NODE_KEY_FILE).exists()


async def test_restore_with_bad_credentials_writes_nothing(tmp_path: Path, home: NodeHome) -> None:
    """A backup whose credentials blob does not decode is refused before the home is
    created (no half-restored home left behind)."""
    from node.crypto.backup import BackupKey, open_backup, seal_backup
    from node.errors import NodeError

    k0 = home.unlock_node(PASS)
    node = BackupKey(k0.seed, "hall", 1)
    sealed = seal_backup(node, "127.0.0.1:7401", [], b"\xc1 not credentials", PASS)
    target = NodeHome(tmp_path / "restored")
    with pytest.raises(NodeError):
        await keys_admin.restore(target, open_backup(sealed, PASS), PASS)
    assert not target.is_initialised()
    assert not target.path.exists() or not any(target.path.iterdir())
