"""Tests for node.crypto.backup: sealed key backups open only with their passphrase and
refuse truncation, tampering and header swaps; and node.keys_admin.restore refuses to mix
keys of different nodes, writing nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from nacl.pwhash import argon2id

from node.crypto.backup import HEADER_SIZE, BackupKey, open_backup, seal_backup
from node.crypto.keys import KeyPair
from node.errors import KeyFileError, NodeError, WrongPassphrase
from node.home import NodeHome
from node.keys_admin import restore

FAST = {"opslimit": argon2id.OPSLIMIT_MIN, "memlimit": argon2id.MEMLIMIT_MIN}
NODE = BackupKey(KeyPair.from_seed(b"n" * 32).seed, "hall", 1)
ALICE = BackupKey(KeyPair.from_seed(b"a" * 32).seed, "alice", 2)


def _sealed(passphrase: str = "pw") -> bytes:
    return seal_backup(NODE, "127.0.0.1:7400", [ALICE], b"", passphrase, **FAST)


def test_round_trip() -> None:
    """What was sealed comes back with the right passphrase."""
    payload = open_backup(_sealed(), "pw")
    assert (payload.node, payload.members, payload.listen) == (NODE, [ALICE], "127.0.0.1:7400")


def test_wrong_passphrase() -> None:
    """A wrong passphrase is WrongPassphrase, saying what to do."""
    with pytest.raises(WrongPassphrase, match="passphrase chosen for `keys backup`"):
        open_backup(_sealed(), "not it")


@pytest.mark.parametrize("cut", [0, 5, 9, HEADER_SIZE, HEADER_SIZE + 10, -1])
def test_truncated(cut: int) -> None:
    """Every truncation is a KeyFileError."""
    data = _sealed()
    with pytest.raises(KeyFileError):
        open_backup(data[:cut], "pw")


@pytest.mark.parametrize("offset", [9, 20, 30, 50, 66, HEADER_SIZE + 3, -5])
def test_flipped_byte(offset: int) -> None:
    """A flipped byte anywhere (limits, salt, nonce, reserved, ciphertext) is refused."""
    data = bytearray(_sealed())
    data[offset] ^= 0x04
    with pytest.raises(KeyFileError):
        open_backup(bytes(data), "pw")


def test_not_a_backup() -> None:
    """A key file or random bytes are not taken for a backup."""
    with pytest.raises(KeyFileError, match="bad magic"):
        open_backup(b"CNKEY\x01" + bytes(200), "pw")
    with pytest.raises(KeyFileError, match="version"):
        open_backup(b"CNBACKUP\x07" + bytes(200), "pw")


async def test_restore_refuses_another_nodes_home(tmp_path: Path) -> None:
    """A home holding another node key is left untouched."""
    home = NodeHome(tmp_path / "h")
    home.init("barn", "127.0.0.1:7400", "pw")
    before = sorted(p.name for p in home.path.iterdir())
    with pytest.raises(NodeError, match="another node key"):
        await restore(home, open_backup(_sealed(), "pw"), "pw")
    assert sorted(p.name for p in home.path.iterdir()) == before
    assert home.members() == []


async def test_restore_refuses_another_key_under_a_held_name(tmp_path: Path) -> None:
    """The same node with a different 'alice' key: refused before anything is written."""
    home = NodeHome(tmp_path / "h")
    home.init("hall", "127.0.0.1:7400", "pw", key=NODE.keypair)
    home.create_member("alice", "pw")
    held = home.members()
    bob = BackupKey(KeyPair.from_seed(b"b" * 32).seed, "bob", 3)
    data = seal_backup(NODE, "127.0.0.1:7400", [bob, ALICE], b"", "pw", **FAST)
    with pytest.raises(NodeError, match="another key for member 'alice'"):
        await restore(home, open_backup(data, "pw"), "pw")
    assert home.members() == held  # bob was not added either


async def test_restore_into_empty_dir_then_again_is_idempotent(tmp_path: Path) -> None:
    """A restore makes the home; a second restore adds nothing."""
    home = NodeHome(tmp_path / "h")
    first = await restore(home, open_backup(_sealed(), "pw"), "pw")
    assert (first.created_home, first.added) == (True, ["alice"])
    assert home.unlock_node("pw").public == NODE.keypair.public
    assert home.unlock_member(home.members()[0], "pw").public == ALICE.keypair.public
    second = await restore(NodeHome(home.path), open_backup(_sealed(), "pw"), "pw")
    assert (second.created_home, second.added, second.kept) == (False, [], ["alice"])
