"""Ed25519 identities and passphrase-sealed key files.

Sealed key file layout (all integers big-endian, fixed 63-byte header)::

    offset  size  field
    0       6     magic  b"CNKEY\\x01"  (the last byte is the format version)
    6       1     kind   0 = node key, 1 = member key, 2 = organisation root key
    7       8     opslimit  (u64, argon2id passes)
    15      8     memlimit  (u64, argon2id memory in bytes)
    23      16    salt      (argon2id)
    39      24    nonce     (XSalsa20-Poly1305)
    63      ...   SecretBox ciphertext (16-byte MAC + msgpack map
                  {"seed": 32 bytes, "name": str, "created": unix seconds, "kind": int})

Invariants:

* The box key is ``argon2id.kdf(32, utf8(NFC(passphrase)), salt, opslimit, memlimit)``
  (bytes that were not UTF-8 in the environment pass through via surrogateescape).
* Limits read from a file are checked against fixed bounds (opslimit 1..20, memlimit
  8 KiB..1 GiB) *before* the KDF runs, so a crafted file cannot exhaust memory or time.
  memlimit must be a whole number of KiB: argon2id ignores the rest, so stray low bits
  would be header bytes that the MAC does not protect.
* The header is bound to the contents: salt, limits and nonce by the MAC (any change
  yields a different key or nonce), the kind by its copy inside the ciphertext.
* Every failure to open a file raises :class:`KeyFileError`; a MAC failure raises its
  subclass :class:`WrongPassphrase` (a damaged ciphertext cannot be told apart from a
  wrong passphrase). No other exception type escapes :func:`open_sealed_key`.
* Key files are written atomically with mode 0o600 and are never overwritten.
"""

from __future__ import annotations

import errno
import getpass
import os
import struct
import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import msgspec
import nacl.bindings
import nacl.exceptions
import nacl.secret
import nacl.signing
import nacl.utils
from nacl.pwhash import argon2id

from node.errors import KeyFileError, WrongPassphrase

PUBLIC_KEY_SIZE = 32
SEED_SIZE = 32
SIGNATURE_SIZE = 64

MAGIC = b"CNKEY\x01"
PASSPHRASE_ENV = "CIRCLE_NODE_PASSPHRASE"

OPSLIMIT_BOUNDS = (argon2id.OPSLIMIT_MIN, 20)
MEMLIMIT_BOUNDS = (argon2id.MEMLIMIT_MIN, 1 << 30)

_HEADER = struct.Struct(">6sBQQ16s24s")
HEADER_SIZE = _HEADER.size
_MIN_FILE_SIZE = HEADER_SIZE + nacl.secret.SecretBox.MACBYTES + 1
_MAX_FILE_SIZE = 64 * 1024


class KeyKind(IntEnum):
    """What a sealed key is for."""

    NODE = 0
    MEMBER = 1
    ORG = 2  # an organisation's root key (kept offline): certifies node keys


@dataclass(frozen=True, repr=False)
class KeyPair:
    """An Ed25519 signing key; the repr shows the public key only."""

    signing_key: nacl.signing.SigningKey

    @classmethod
    def generate(cls) -> KeyPair:
        """A fresh random key pair."""
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        """The key pair for a 32-byte seed (ValueError on another length)."""
        if len(seed) != SEED_SIZE:
            raise ValueError(f"seed must be {SEED_SIZE} bytes, got {len(seed)}")
        return cls(nacl.signing.SigningKey(bytes(seed)))

    @property
    def public(self) -> bytes:
        """The 32-byte Ed25519 public key."""
        return bytes(self.signing_key.verify_key)

    @property
    def seed(self) -> bytes:
        """The 32-byte secret seed."""
        return bytes(self.signing_key)

    def sign(self, message: bytes) -> bytes:
        """The detached 64-byte signature of ``message``."""
        return bytes(self.signing_key.sign(message).signature)

    def __repr__(self) -> str:
        return f"KeyPair(public={self.public.hex()})"


def verify_detached(public: bytes, message: bytes, signature: bytes) -> bool:
    """True iff ``signature`` is a valid Ed25519 signature of ``message`` by ``public``."""
    if len(public) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False  # checked here: crypto_sign_open does not check the key length
    try:
        nacl.bindings.crypto_sign_open(bytes(signature) + bytes(message), bytes(public))
    except (nacl.exceptions.BadSignatureError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class SealedKey:
    """The contents of an opened key file."""

    keypair: KeyPair
    kind: KeyKind
    name: str
    created: int


class _Payload(msgspec.Struct, forbid_unknown_fields=True):
    seed: bytes
    name: str
    created: int
    kind: int


def _check_limits(opslimit: int, memlimit: int) -> bool:
    ops_ok = OPSLIMIT_BOUNDS[0] <= opslimit <= OPSLIMIT_BOUNDS[1]
    mem_ok = MEMLIMIT_BOUNDS[0] <= memlimit <= MEMLIMIT_BOUNDS[1] and memlimit % 1024 == 0
    return ops_ok and mem_ok


def _derive(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    try:
        secret = unicodedata.normalize("NFC", passphrase).encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:
        raise KeyFileError("the passphrase is not valid text (lone surrogate)") from exc
    try:
        return bytes(argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, secret, salt, opslimit, memlimit))
    except nacl.exceptions.CryptoError as exc:
        raise KeyFileError(f"cannot derive the key file's key: {exc}") from exc


def seal_key(
    keypair: KeyPair,
    passphrase: str,
    *,
    kind: KeyKind,
    name: str,
    opslimit: int = argon2id.OPSLIMIT_INTERACTIVE,
    memlimit: int = argon2id.MEMLIMIT_INTERACTIVE,
    created: int | None = None,
) -> bytes:
    """The sealed key file bytes for ``keypair`` under ``passphrase``."""
    if not passphrase:
        raise KeyFileError("refusing to seal a key with an empty passphrase")
    if not _check_limits(opslimit, memlimit):
        raise ValueError(f"argon2id limits out of bounds: opslimit={opslimit} memlimit={memlimit}")
    stamp = int(time.time()) if created is None else created
    payload = _Payload(seed=keypair.seed, name=name, created=stamp, kind=int(kind))
    salt = nacl.utils.random(argon2id.SALTBYTES)
    nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
    box = nacl.secret.SecretBox(_derive(passphrase, salt, opslimit, memlimit))
    ciphertext = box.encrypt(msgspec.msgpack.encode(payload), nonce).ciphertext
    return _HEADER.pack(MAGIC, int(kind), opslimit, memlimit, salt, nonce) + bytes(ciphertext)


def _parse_header(data: bytes) -> tuple[KeyKind, int, int, bytes, bytes]:
    if data[: len(MAGIC) - 1] != MAGIC[:-1]:
        raise KeyFileError("not a circle-node key file (bad magic)")
    if len(data) < len(MAGIC):
        raise KeyFileError(f"key file is truncated ({len(data)} bytes)")
    if data[: len(MAGIC)] != MAGIC:
        raise KeyFileError(f"unsupported key file version {data[len(MAGIC) - 1]}")
    if len(data) < _MIN_FILE_SIZE:
        raise KeyFileError(f"key file is truncated ({len(data)} bytes)")
    _magic, kind, opslimit, memlimit, salt, nonce = _HEADER.unpack_from(data)
    try:
        key_kind = KeyKind(kind)
    except ValueError:
        raise KeyFileError(f"key file is corrupt: unknown key kind {kind}") from None
    if not _check_limits(opslimit, memlimit):
        raise KeyFileError(
            f"key file is corrupt: argon2id limits out of bounds "
            f"(opslimit={opslimit}, memlimit={memlimit})"
        )
    return key_kind, opslimit, memlimit, salt, nonce


def _decode_payload(plaintext: bytes, kind: KeyKind) -> SealedKey:
    try:
        payload = msgspec.msgpack.decode(plaintext, type=_Payload)
    except (msgspec.MsgspecError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"key file is corrupt: bad contents ({exc})") from exc
    if len(payload.seed) != SEED_SIZE:
        raise KeyFileError("key file is corrupt: the seed is not 32 bytes")
    if payload.kind != kind:
        raise KeyFileError("key file is corrupt: header and contents disagree on the key kind")
    keypair = KeyPair.from_seed(payload.seed)
    return SealedKey(keypair=keypair, kind=kind, name=payload.name, created=payload.created)


def open_sealed_key(data: bytes, passphrase: str) -> SealedKey:
    """Open a sealed key file; KeyFileError (or WrongPassphrase) on any failure."""
    kind, opslimit, memlimit, salt, nonce = _parse_header(data)
    box = nacl.secret.SecretBox(_derive(passphrase, salt, opslimit, memlimit))
    try:
        plaintext = box.decrypt(data[HEADER_SIZE:], nonce)
    except nacl.exceptions.CryptoError as exc:
        raise WrongPassphrase(
            "wrong passphrase for key file (or the file is damaged); "
            f"try again or set {PASSPHRASE_ENV}"
        ) from exc
    return _decode_payload(bytes(plaintext), kind)


_NO_HARDLINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


def _publish(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the name ``path`` atomically, never replacing an existing file."""
    try:
        os.link(tmp, path)  # atomic and refuses to clobber
    except FileExistsError:
        raise KeyFileError(f"refusing to overwrite existing key file {path}") from None
    except OSError as exc:
        if exc.errno not in _NO_HARDLINKS:
            raise
        if path.exists():  # no hard links here: check, then rename
            raise KeyFileError(f"refusing to overwrite existing key file {path}") from None
        os.replace(tmp, path)


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_key_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file ``path`` atomically with mode 0o600."""
    if path.exists():
        raise KeyFileError(f"refusing to overwrite existing key file {path}")
    tmp: Path | None = None
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        tmp = Path(name)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _publish(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        raise KeyFileError(f"cannot write key file {path}: {exc.strerror or exc}") from exc
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def read_key_file(path: Path) -> bytes:
    """The bytes of key file ``path``; KeyFileError if missing, unreadable or oversized."""
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_FILE_SIZE + 1)
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror or exc}") from exc
    if len(data) > _MAX_FILE_SIZE:
        raise KeyFileError(f"{path} is too large to be a key file")
    return data


def _prompt_tty(prompt: str, confirm: bool) -> str:
    try:
        first = getpass.getpass(prompt)
        if confirm and getpass.getpass("Repeat passphrase: ") != first:
            raise KeyFileError("the passphrases do not match; try again")
    except EOFError:
        raise KeyFileError("no passphrase entered") from None
    return first


def get_passphrase(prompt: str, *, confirm: bool = False) -> str:
    """The passphrase from $CIRCLE_NODE_PASSPHRASE, else from the terminal; never empty."""
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env is not None:
        if not from_env:
            raise KeyFileError(f"{PASSPHRASE_ENV} is set but empty")
        return from_env
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        raise KeyFileError(f"no passphrase: set {PASSPHRASE_ENV} or run in a terminal")
    passphrase = _prompt_tty(prompt, confirm)
    if not passphrase:
        raise KeyFileError("the passphrase must not be empty")
    return passphrase
