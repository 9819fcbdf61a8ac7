"""Keys over time, for a node home: sealed backups and restores of its keys, and node key
rotation (docs/architecture.md "Keys over time").

Invariants:

* A backup holds the node key, every member key and the node's own credentials, sealed
  under one passphrase (:mod:`node.crypto.backup`); it is written once, mode 0600, never
  over an existing file.
* A restore checks everything before it writes anything: into an empty directory it
  creates the home with the backed-up node key; into an existing home only if the node key
  is the same, adding the member keys it lacks (a different key under a held name is an
  error). Restored keys are sealed under the backup's passphrase.
* A rotation writes, in order: the new sealed key as ``node.key.next``; the hand-over and
  our credentials in the store; ``node.toml`` naming the new key; then renames
  ``node.key.next`` to ``node.key``. Until node.toml is rewritten the node keeps its old
  key (credentials whose chain does not end at the presented key are not presented); after
  it, :meth:`NodeHome.unlock_node` finishes an interrupted rename.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import msgspec

from node.config import render_config
from node.crypto.backup import BackupKey, BackupPayload, open_backup, seal_backup
from node.crypto.credentials import Credentials, decode_credentials
from node.crypto.federation import open_cert
from node.crypto.handover import MAX_CHAIN, Handover, chain_to, make_handover, open_handover
from node.crypto.keys import KeyKind, KeyPair, seal_key, write_key_file
from node.errors import KeyFileError, NodeError, StorageError
from node.home import NEXT_NODE_KEY_FILE, NodeHome, _kdf_limits, write_atomic
from node.keyring import KeyRing
from node.replica import Replica

_MAX_BACKUP_READ = 1 << 20


@asynccontextmanager
async def _keyring(home: NodeHome) -> AsyncIterator[KeyRing]:
    try:
        async with Replica.open(home.store_path) as replica:
            yield KeyRing(replica.store)
    except sqlite3.Error as exc:
        raise StorageError(f"the store {home.store_path} cannot be read ({exc})") from exc


async def own_credentials(home: NodeHome) -> Credentials:
    """The credentials stored in the home's store (none if it has no store yet)."""
    if not home.store_path.exists():
        return Credentials()
    async with _keyring(home) as ring:
        return await ring.own_credentials()


def make_backup(
    home: NodeHome,
    node_key: KeyPair,
    members: list[BackupKey],
    credentials: Credentials,
    passphrase: str,
) -> bytes:
    """The sealed backup bytes of ``home`` (keys already unlocked by the caller)."""
    config = home.config
    node = BackupKey(node_key.seed, config.name, config.created)
    return seal_backup(
        node, config.listen, members, credentials.encode(), passphrase, **_kdf_limits()
    )


def write_backup(path: Path, data: bytes) -> None:
    """Write a backup file once (mode 0600); KeyFileError if it exists."""
    if path.exists():
        raise KeyFileError(f"refusing to overwrite {path}: choose another file")
    write_key_file(path, data)


def read_backup(path: Path, passphrase: str) -> BackupPayload:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_BACKUP_READ + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return open_backup(data, passphrase)


@dataclass(frozen=True)
class Restored:
    created_home: bool
    node: bytes
    added: list[str]
    kept: list[str]


def _plan_members(home: NodeHome, backup: BackupPayload) -> tuple[list[BackupKey], list[str]]:
    """Which backed-up members to add, and which are already held; NodeError on a clash."""
    held = {e.member: e for e in home.members()} if home.is_initialised() else {}
    names = {e.name.casefold(): e for e in held.values()}
    add, kept = [], []
    for member in backup.members:
        public = member.keypair.public
        if public in held:
            kept.append(member.name)
            continue
        clash = names.get(member.name.casefold())
        if clash is not None:
            raise NodeError(
                f"this home holds another key for member {member.name!r} "
                f"({clash.member_id[:8]}): refusing to restore over it"
            )
        add.append(member)
    return add, kept


def _checked_credentials(blob: bytes) -> Credentials | None:
    """The backup's credentials, every statement in them opened; DecodeError or
    SignatureError if any is bad (a later handshake would trip over it)."""
    if not blob:
        return None
    credentials = decode_credentials(blob)
    for wire in credentials.handovers:
        open_handover(wire)
    for wire in credentials.certs:
        open_cert(wire)
    return credentials


async def restore(home: NodeHome, backup: BackupPayload, passphrase: str) -> Restored:
    """Restore ``backup`` into ``home`` (see the module docstring)."""
    node_key = backup.node.keypair
    created = not home.is_initialised()
    if created:
        home.check_can_init(backup.node.name, backup.listen)
    elif home.node_public != node_key.public:
        raise NodeError(
            f"{home.path} holds another node key ({home.node_public.hex()[:8]}) than the "
            f"backup ({node_key.public.hex()[:8]}): restore into an empty directory"
        )
    add, kept = _plan_members(home, backup)
    credentials = _checked_credentials(backup.credentials)  # before anything is written
    if created:
        home.init(backup.node.name, backup.listen, passphrase, key=node_key)
    for member in add:
        home.add_member_key(member.keypair, member.name, member.created, passphrase)
    if credentials is not None:
        async with _keyring(home) as ring:
            if not (await ring.own_credentials()).encode():
                await ring.set_own_credentials(credentials)
    return Restored(created, node_key.public, [m.name for m in add], kept)


async def rotate_node_key(home: NodeHome, old: KeyPair, passphrase: str) -> Handover:
    """Replace the node key by a new one, handed over by the old (module docstring)."""
    config = home.config
    if old.public != config.node:
        raise KeyFileError("the unlocked node key is not the one node.toml names")
    pending = home.path / NEXT_NODE_KEY_FILE
    if pending.exists():
        raise NodeError(
            f"{pending} exists: a rotation was interrupted before node.toml named the new "
            "key; remove that file and rotate again"
        )
    new = KeyPair.generate()
    sealed = seal_key(new, passphrase, kind=KeyKind.NODE, name=config.name, **_kdf_limits())
    write_key_file(pending, sealed)
    try:
        async with _keyring(home) as ring:
            creds = await ring.own_credentials()
            chain = chain_to(creds.handovers, old.public)
            seq = chain[-1].seq + 1 if chain else 1
            link = make_handover(old, new.public, seq, int(time.time()))
            handovers = [h.wire for h in chain][-(MAX_CHAIN - 1) :] + [link.wire]
            await ring.store_rotation(msgspec.structs.replace(creds, handovers=handovers), link)
        renamed = dataclasses.replace(config, node=new.public)
        write_atomic(home.config_path, render_config(renamed).encode("utf-8"))
    except BaseException:
        pending.unlink(missing_ok=True)  # node.toml still names the old key: keep using it
        raise
    os.replace(pending, home.node_key_path)
    return link
