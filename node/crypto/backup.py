"""Sealed key backups: one file holding a home's node key, its member keys and the node's
own credentials (hand-overs and certificates), sealed under one passphrase.

Layout (integers big-endian, fixed 73-byte header)::

    offset  size  field
    0       9     magic  b"CNBACKUP\\x01"  (the last byte is the format version)
    9       8     opslimit  (u64, argon2id passes)
    17      8     memlimit  (u64, argon2id memory in bytes)
    25      16    salt      (argon2id)
    41      24    nonce     (XSalsa20-Poly1305)
    65      8     reserved, zero (bound to the contents by the MAC: see below)
    73      ...   SecretBox ciphertext (16-byte MAC + msgpack map, :class:`BackupPayload`)

Invariants:

* The box key is derived exactly as for key files (:mod:`node.crypto.keys`, argon2id over
  the NFC passphrase), with the same bounds on the limits, checked before the KDF runs.
* The header is bound to the contents: salt, limits and nonce through the key and nonce,
  the reserved bytes because the payload repeats them (``header`` field).
* Every failure to open a backup raises :class:`KeyFileError`; a MAC failure raises
  :class:`WrongPassphrase`. Nothing is written by opening.
"""

from __future__ import annotations

import struct
import time
from typing import Annotated

import msgspec
import nacl.exceptions
import nacl.secret
import nacl.utils
from nacl.pwhash import argon2id

from node.crypto.keys import SEED_SIZE, KeyPair, _check_limits, _derive
from node.errors import KeyFileError, WrongPassphrase

MAGIC = b"CNBACKUP\x01"
_HEADER = struct.Struct(">9sQQ16s24s8s")
HEADER_SIZE = _HEADER.size
_RESERVED = bytes(8)
MAX_BACKUP_SIZE = 1 << 20
MAX_MEMBERS = 1000

Seed = Annotated[bytes, msgspec.Meta(min_length=SEED_SIZE, max_length=SEED_SIZE)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Stamp = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


class BackupKey(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One key in a backup: its secret seed, display name and creation time."""

    seed: Seed
    name: Name
    created: Stamp

    @property
    def keypair(self) -> KeyPair:
        return KeyPair.from_seed(self.seed)


class BackupPayload(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a backup holds. ``credentials`` is the node's own credentials blob
    (docs/protocol.md section 10), empty if it has none."""

    header: bytes
    node: BackupKey
    listen: str
    members: Annotated[list[BackupKey], msgspec.Meta(max_length=MAX_MEMBERS)]
    credentials: bytes
    made: Stamp


def seal_backup(
    node: BackupKey,
    listen: str,
    members: list[BackupKey],
    credentials: bytes,
    passphrase: str,
    *,
    opslimit: int = argon2id.OPSLIMIT_INTERACTIVE,
    memlimit: int = argon2id.MEMLIMIT_INTERACTIVE,
) -> bytes:
    """The sealed backup file bytes."""
    if not passphrase:
        raise KeyFileError("refusing to seal a backup with an empty passphrase")
    if not _check_limits(opslimit, memlimit):
        raise ValueError(f"argon2id limits out of bounds: opslimit={opslimit} memlimit={memlimit}")
    salt = nacl.utils.random(argon2id.SALTBYTES)
    nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
    header = _HEADER.pack(MAGIC, opslimit, memlimit, salt, nonce, _RESERVED)
    payload = BackupPayload(header, node, listen, members, credentials, int(time.time()))
    box = nacl.secret.SecretBox(_derive(passphrase, salt, opslimit, memlimit))
    return header + bytes(box.encrypt(msgspec.msgpack.encode(payload), nonce).ciphertext)


def open_backup(data: bytes, passphrase: str) -> BackupPayload:
    """Open a sealed backup; KeyFileError (or WrongPassphrase) on any failure."""
    if data[: len(MAGIC) - 1] != MAGIC[:-1]:
        raise KeyFileError("not a circle-node key backup (bad magic)")
    if len(data) >= len(MAGIC) and data[: len(MAGIC)] != MAGIC:
        raise KeyFileError(f"unsupported key backup version {data[len(MAGIC) - 1]}")
    if len(data) < HEADER_SIZE + nacl.secret.SecretBox.MACBYTES + 1:
        raise KeyFileError(f"the key backup is truncated ({len(data)} bytes)")
    if len(data) > MAX_BACKUP_SIZE:
        raise KeyFileError("the file is too large to be a key backup")
    _magic, opslimit, memlimit, salt, nonce, _reserved = _HEADER.unpack_from(data)
    if not _check_limits(opslimit, memlimit):
        raise KeyFileError("the key backup is corrupt: argon2id limits out of bounds")
    box = nacl.secret.SecretBox(_derive(passphrase, salt, opslimit, memlimit))
    try:
        plaintext = box.decrypt(data[HEADER_SIZE:], nonce)
    except nacl.exceptions.CryptoError as exc:
        raise WrongPassphrase(
            "wrong passphrase for the key backup (or the file is damaged): use the "
            "passphrase chosen for `keys backup`"
        ) from exc
    try:
        payload = msgspec.msgpack.decode(plaintext, type=BackupPayload)
    except (msgspec.MsgspecError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"the key backup is corrupt: bad contents ({exc})") from exc
    if payload.header != data[:HEADER_SIZE]:
        raise KeyFileError("the key backup is corrupt: header and contents disagree")
    return payload
