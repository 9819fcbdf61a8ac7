"""Tests for node.crypto.keys: key pairs, detached signatures and sealed key files."""

from __future__ import annotations

import io
import stat
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.pwhash import argon2id

from node.crypto import keys
from node.crypto.keys import (
    HEADER_SIZE,
    KeyKind,
    KeyPair,
    get_passphrase,
    open_sealed_key,
    read_key_file,
    seal_key,
    verify_detached,
    write_key_file,
)
from node.errors import KeyFileError, WrongPassphrase

FAST = {"opslimit": argon2id.OPSLIMIT_MIN, "memlimit": argon2id.MEMLIMIT_MIN}
KEY = KeyPair.from_seed(bytes(range(32)))
SEALED = seal_key(KEY, "correct horse", kind=KeyKind.NODE, name="home", created=1700000000, **FAST)
OPS_OFFSET = 7
MEM_OFFSET = 15


def _with_limits(data: bytes, opslimit: int, memlimit: int) -> bytes:
    return data[:OPS_OFFSET] + struct.pack(">QQ", opslimit, memlimit) + data[MEM_OFFSET + 8 :]


def test_from_seed_is_deterministic() -> None:
    """The same seed gives the same key pair, and the seed reads back."""
    again = KeyPair.from_seed(KEY.seed)
    assert again.public == KEY.public
    assert again.seed == bytes(range(32))
    assert len(KEY.public) == 32


def test_from_seed_rejects_wrong_length() -> None:
    """A seed that is not 32 bytes is a programming error."""
    with pytest.raises(ValueError, match="32 bytes"):
        KeyPair.from_seed(b"short")


def test_repr_hides_the_seed() -> None:
    """The repr of a key pair shows the public key and never the seed."""
    assert KEY.seed.hex() not in repr(KEY)
    assert KEY.public.hex() in repr(KEY)


def test_sign_and_verify() -> None:
    """sign returns a 64-byte detached signature that verify_detached accepts."""
    signature = KEY.sign(b"hello")
    assert len(signature) == 64
    assert verify_detached(KEY.public, b"hello", signature)


def test_verify_rejects_tampering() -> None:
    """A changed message, signature or key does not verify."""
    signature = KEY.sign(b"hello")
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    assert not verify_detached(KEY.public, b"hellO", signature)
    assert not verify_detached(KEY.public, b"hello", flipped)
    assert not verify_detached(KeyPair.generate().public, b"hello", signature)


@pytest.mark.parametrize(
    ("public_len", "sig_len"), [(0, 64), (31, 64), (33, 64), (32, 63), (32, 65)]
)
def test_verify_rejects_wrong_lengths(public_len: int, sig_len: int) -> None:
    """Keys and signatures of the wrong length are False, not an exception."""
    signature = KEY.sign(b"m") + b"\0"
    public = KEY.public + b"\0"
    assert not verify_detached(public[:public_len], b"m", signature[:sig_len])


@given(st.binary(max_size=40), st.binary(max_size=80), st.binary(max_size=80))
def test_verify_never_raises(public: bytes, message: bytes, signature: bytes) -> None:
    """Arbitrary bytes give False, never an exception."""
    assert not verify_detached(public, message, signature)


@settings(deadline=None, max_examples=50)
@given(
    passphrase=st.text(min_size=1, max_size=64),
    name=st.text(max_size=40),
    kind=st.sampled_from(KeyKind),
    seed=st.binary(min_size=32, max_size=32),
)
def test_seal_open_round_trip(passphrase: str, name: str, kind: KeyKind, seed: bytes) -> None:
    """Opening a sealed key with its passphrase gives back seed, kind, name and time."""
    data = seal_key(KeyPair.from_seed(seed), passphrase, kind=kind, name=name, created=42, **FAST)
    opened = open_sealed_key(data, passphrase)
    assert (opened.keypair.seed, opened.kind, opened.name, opened.created) == (
        seed,
        kind,
        name,
        42,
    )


def test_round_trip_with_default_limits() -> None:
    """The default (interactive) argon2id limits seal and open, and are stored."""
    data = seal_key(KEY, "pw", kind=KeyKind.MEMBER, name="me")
    assert struct.unpack_from(">QQ", data, OPS_OFFSET) == (
        argon2id.OPSLIMIT_INTERACTIVE,
        argon2id.MEMLIMIT_INTERACTIVE,
    )
    assert open_sealed_key(data, "pw").keypair.seed == KEY.seed


def test_passphrase_is_unicode_normalised() -> None:
    """Composed and decomposed spellings of a passphrase open the same file."""
    data = seal_key(KEY, "caf\u00e9", kind=KeyKind.NODE, name="n", **FAST)
    assert open_sealed_key(data, "cafe\u0301").keypair.seed == KEY.seed


def test_undecodable_env_bytes_still_work() -> None:
    """A passphrase holding surrogate-escaped bytes (non-UTF-8 environment) seals and opens."""
    data = seal_key(KEY, "pw\udcff", kind=KeyKind.NODE, name="n", **FAST)
    assert open_sealed_key(data, "pw\udcff").keypair.seed == KEY.seed
    with pytest.raises(WrongPassphrase):
        open_sealed_key(data, "pw\u00ff")


def test_lone_surrogate_passphrase_is_keyfileerror() -> None:
    """A passphrase that cannot be encoded raises KeyFileError, not UnicodeEncodeError."""
    with pytest.raises(KeyFileError, match="not valid text"):
        open_sealed_key(SEALED, "pw\ud800")


def test_layout_starts_with_magic_and_kind() -> None:
    """The file starts with the magic, then the kind byte, then the stored limits."""
    assert SEALED.startswith(b"CNKEY\x01\x00")
    assert struct.unpack_from(">QQ", SEALED, OPS_OFFSET) == (FAST["opslimit"], FAST["memlimit"])


def test_wrong_passphrase() -> None:
    """A wrong passphrase raises WrongPassphrase naming the environment variable."""
    with pytest.raises(WrongPassphrase, match="CIRCLE_NODE_PASSPHRASE"):
        open_sealed_key(SEALED, "wrong horse")


def test_empty_passphrase_refused_when_sealing() -> None:
    """A key is never sealed under an empty passphrase."""
    with pytest.raises(KeyFileError, match="empty"):
        seal_key(KEY, "", kind=KeyKind.NODE, name="n", **FAST)


def test_seal_refuses_out_of_bounds_limits() -> None:
    """seal_key refuses limits that open_sealed_key would reject as corrupt."""
    with pytest.raises(ValueError, match="out of bounds"):
        seal_key(KEY, "pw", kind=KeyKind.NODE, name="n", opslimit=21, memlimit=8192)


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_every_flipped_byte_fails(mask: int) -> None:
    """Flipping bits in any single byte of a sealed file raises KeyFileError, nothing else."""
    for index in range(len(SEALED)):
        damaged = bytearray(SEALED)
        damaged[index] ^= mask
        with pytest.raises(KeyFileError):
            open_sealed_key(bytes(damaged), "correct horse")


def test_changed_kind_byte_is_detected() -> None:
    """A header kind that disagrees with the sealed contents is corrupt, not a wrong passphrase."""
    damaged = bytearray(SEALED)
    damaged[6] = KeyKind.MEMBER
    with pytest.raises(KeyFileError, match="kind") as info:
        open_sealed_key(bytes(damaged), "correct horse")
    assert not isinstance(info.value, WrongPassphrase)


def test_every_truncation_fails() -> None:
    """A sealed file cut at any length raises KeyFileError."""
    for length in range(len(SEALED)):
        with pytest.raises(KeyFileError):
            open_sealed_key(SEALED[:length], "correct horse")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "bad magic"),
        (b"PK\x03\x04" + bytes(100), "bad magic"),
        (b"CNKEY\x02" + bytes(100), "version 2"),
        (SEALED[:HEADER_SIZE], "truncated"),
        (SEALED[:6] + b"\x07" + SEALED[7:], "unknown key kind 7"),
    ],
)
def test_garbage_has_clear_messages(data: bytes, message: str) -> None:
    """Garbage, other versions, truncation and unknown kinds say what is wrong."""
    with pytest.raises(KeyFileError, match=message):
        open_sealed_key(data, "correct horse")


@pytest.mark.parametrize(
    ("opslimit", "memlimit"),
    [
        (1, (1 << 30) + 1024),
        (1, 1 << 62),
        (21, 8192),
        (2**64 - 1, 8192),
        (0, 8192),
        (1, 1024),
        (1, 8192 + 1),  # argon2id ignores sub-KiB bits, so they must be zero
    ],
)
def test_absurd_limits_refused_before_kdf(
    monkeypatch: pytest.MonkeyPatch, opslimit: int, memlimit: int
) -> None:
    """A crafted file with absurd argon2id limits is refused without running the KDF."""

    def no_kdf(*_args: object) -> bytes:
        pytest.fail("the KDF ran on a crafted file")

    monkeypatch.setattr(argon2id, "kdf", no_kdf)
    with pytest.raises(KeyFileError, match="out of bounds"):
        open_sealed_key(_with_limits(SEALED, opslimit, memlimit), "correct horse")


def test_write_key_file_mode_and_content(tmp_path: Path) -> None:
    """A written key file has mode 0o600, reads back, and leaves no temp file."""
    path = tmp_path / "node.key"
    write_key_file(path, SEALED)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key_file(path) == SEALED
    assert [p.name for p in tmp_path.iterdir()] == ["node.key"]


def test_write_key_file_refuses_overwrite(tmp_path: Path) -> None:
    """An existing key file is never overwritten."""
    path = tmp_path / "node.key"
    path.write_bytes(b"precious")
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        write_key_file(path, SEALED)
    assert path.read_bytes() == b"precious"
    assert len(list(tmp_path.iterdir())) == 1


def test_write_key_file_missing_directory(tmp_path: Path) -> None:
    """Writing into a missing directory raises KeyFileError, not OSError."""
    with pytest.raises(KeyFileError, match="cannot write"):
        write_key_file(tmp_path / "missing" / "node.key", SEALED)


def test_read_key_file_missing(tmp_path: Path) -> None:
    """Reading a missing key file raises KeyFileError naming the path."""
    with pytest.raises(KeyFileError, match="does not exist"):
        read_key_file(tmp_path / "nope.key")


def test_read_key_file_oversized(tmp_path: Path) -> None:
    """A file far larger than any key file is refused."""
    path = tmp_path / "big.key"
    path.write_bytes(bytes(1 << 17))
    with pytest.raises(KeyFileError, match="too large"):
        read_key_file(path)


def test_read_key_file_directory(tmp_path: Path) -> None:
    """A path that cannot be read as a file raises KeyFileError."""
    with pytest.raises(KeyFileError, match="cannot read"):
        read_key_file(tmp_path)


def test_get_passphrase_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """CIRCLE_NODE_PASSPHRASE is used when set, without prompting."""
    monkeypatch.setenv("CIRCLE_NODE_PASSPHRASE", "from env")
    monkeypatch.setattr(keys.getpass, "getpass", lambda _prompt="": pytest.fail("prompted"))
    assert get_passphrase("Passphrase: ", confirm=True) == "from env"


def test_get_passphrase_refuses_empty_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty CIRCLE_NODE_PASSPHRASE is refused."""
    monkeypatch.setenv("CIRCLE_NODE_PASSPHRASE", "")
    with pytest.raises(KeyFileError, match="empty"):
        get_passphrase("Passphrase: ")


def test_get_passphrase_without_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no env var and no terminal, the error says how to supply a passphrase."""
    monkeypatch.delenv("CIRCLE_NODE_PASSPHRASE", raising=False)
    monkeypatch.setattr(keys.sys, "stdin", io.StringIO())
    with pytest.raises(KeyFileError, match="set CIRCLE_NODE_PASSPHRASE or run in a terminal"):
        get_passphrase("Passphrase: ")


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _fake_terminal(monkeypatch: pytest.MonkeyPatch, answers: list[str]) -> None:
    monkeypatch.delenv("CIRCLE_NODE_PASSPHRASE", raising=False)
    monkeypatch.setattr(keys.sys, "stdin", _Tty())
    replies = iter(answers)
    monkeypatch.setattr(keys.getpass, "getpass", lambda _prompt="": next(replies))


def test_get_passphrase_prompts_and_confirms(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal the passphrase is prompted for, and confirmed when asked."""
    _fake_terminal(monkeypatch, ["secret", "secret"])
    assert get_passphrase("Passphrase: ", confirm=True) == "secret"


def test_get_passphrase_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    """A confirmation that does not match raises KeyFileError."""
    _fake_terminal(monkeypatch, ["secret", "secreT"])
    with pytest.raises(KeyFileError, match="do not match"):
        get_passphrase("Passphrase: ", confirm=True)


def test_get_passphrase_refuses_empty_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty passphrase typed at the terminal is refused."""
    _fake_terminal(monkeypatch, [""])
    with pytest.raises(KeyFileError, match="must not be empty"):
        get_passphrase("Passphrase: ")
