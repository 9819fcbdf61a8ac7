"""The node home directory: one node's config, sealed keys and store.

Layout (the directory and ``members/`` have mode 0700, key files 0600)::

    HOME/node.toml            config: name, listen ("HOST:PORT"), node (public key hex), created,
                              and any other setting (node.config: docs/configuration.md)
    HOME/node.key             the node key, sealed (KeyKind.NODE)
    HOME/members/<hex>.key    member keys, sealed (KeyKind.MEMBER), named by public key
    HOME/members.json         public index [{"member", "name", "created"}]: no passphrase
                              is needed to list or choose a member
    HOME/store.db             the SQLite store (created by ``Replica.open``)

HOME is ``--home``, else ``$CIRCLE_NODE_HOME``, else ``platformdirs.user_data_dir``.

Invariants:

* A home is initialised iff ``node.toml`` exists. ``init`` builds the whole home in a
  temporary directory beside HOME and renames it into place, so a failed init leaves
  nothing behind and a half-made home is never visible.
* A member's key file is written before its index entry, and ``members.json`` is replaced
  atomically under an exclusive lock (``HOME/.lock``), so two processes adding members at
  once cannot lose one, and every index entry has its key file.
* ``node.toml`` is validated on every load (:mod:`node.config`): unknown keys, wrong types
  and bad values raise :class:`ConfigError` naming the file and the key.
  :meth:`NodeHome.settings` layers it between the defaults and the environment and flags.
* An unlocked key must be of the expected kind and match the public key the home
  records for it (``node`` in node.toml, the file name for a member).

Test-only knob: ``CIRCLE_NODE_FAST_KDF=1`` seals *new* key files with the minimum argon2id
limits, so tests that create many keys run fast. Such keys are cheap to brute-force:
never set it for a real node. Opening a key always uses the limits stored in its file.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import platformdirs
from nacl.pwhash import argon2id

from node.config import DEFAULT_LISTEN as DEFAULT_LISTEN
from node.config import MAX_NAME_CHARS as MAX_NAME_CHARS
from node.config import NodeConfig as NodeConfig
from node.config import Settings, load_config, render_config, resolve
from node.config import check_name as check_name
from node.config import parse_config as parse_config
from node.config import parse_listen as parse_listen
from node.config import toml_string as toml_string
from node.crypto.keys import (
    PASSPHRASE_ENV,
    KeyKind,
    KeyPair,
    SealedKey,
    get_passphrase,
    open_sealed_key,
    read_key_file,
    seal_key,
    write_key_file,
)
from node.errors import (
    ConfigError,
    KeyFileError,
    NodeError,
    NotFound,
    StorageError,
    WrongPassphrase,
)

HOME_ENV = "CIRCLE_NODE_HOME"
FAST_KDF_ENV = "CIRCLE_NODE_FAST_KDF"
MIN_ID_PREFIX = 4

CONFIG_FILE = "node.toml"
NODE_KEY_FILE = "node.key"
NEXT_NODE_KEY_FILE = "node.key.next"  # a rotation's new key until node.toml names it
MEMBERS_DIR = "members"
MEMBERS_INDEX = "members.json"
STORE_FILE = "store.db"
LOCK_FILE = ".lock"


def default_home() -> Path:
    """Where a node lives when neither --home nor $CIRCLE_NODE_HOME says otherwise."""
    return Path(platformdirs.user_data_dir("circle-node")).absolute()


def resolve_home(arg: str | None) -> Path:
    """The home directory: ``--home``, else $CIRCLE_NODE_HOME, else :func:`default_home`."""
    chosen = arg or os.environ.get(HOME_ENV)
    return Path(chosen).expanduser().absolute() if chosen else default_home()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically (temp file, fsync, rename)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


# ---- members --------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberEntry:
    """A member key held by this node, as listed in ``members.json``."""

    member: bytes
    name: str
    created: int

    @property
    def member_id(self) -> str:
        return self.member.hex()

    def describe(self) -> str:
        """How prompts and messages name this member: ``alice (1a2b3c4d)``."""
        return f"{self.name} ({self.member_id[:8]})"

    def as_json(self) -> dict[str, Any]:
        return {"member": self.member_id, "name": self.name, "created": self.created}


class _IndexEntry(msgspec.Struct, forbid_unknown_fields=True):
    member: str
    name: str
    created: int


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdef" for c in text)


def ask_passphrase(whose: str, *, new: bool = False) -> str:
    """A passphrase from $CIRCLE_NODE_PASSPHRASE or the terminal, naming the key it opens."""
    if new:
        return get_passphrase(f"New passphrase for {whose}: ", confirm=True)
    return get_passphrase(f"Passphrase for {whose}: ")


def _kdf_limits() -> dict[str, int]:
    if os.environ.get(FAST_KDF_ENV) == "1":  # test-only: see the module docstring
        return {"opslimit": argon2id.OPSLIMIT_MIN, "memlimit": argon2id.MEMLIMIT_MIN}
    return {}


def _open_key(path: Path, passphrase: str, kind: KeyKind, whose: str) -> SealedKey:
    data = read_key_file(path)
    try:
        sealed = open_sealed_key(data, passphrase)
    except WrongPassphrase as exc:
        raise WrongPassphrase(
            f"wrong passphrase for {whose} ({path}): try again, or set {PASSPHRASE_ENV} "
            "to the passphrase chosen when the key was made"
        ) from exc
    if sealed.kind is not kind:
        raise KeyFileError(f"{path} holds a {sealed.kind.name.lower()} key, not {whose}")
    return sealed


# ---- the home -------------------------------------------------------------------------


class NodeHome:
    """One node's home directory. Cheap to construct; nothing is read until asked."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.config_path = path / CONFIG_FILE
        self.node_key_path = path / NODE_KEY_FILE
        self.members_path = path / MEMBERS_INDEX
        self.store_path = path / STORE_FILE
        self._config: NodeConfig | None = None

    def member_key_path(self, member: bytes) -> Path:
        return self.path / MEMBERS_DIR / f"{member.hex()}.key"

    def is_initialised(self) -> bool:
        return self.config_path.is_file()

    def require(self) -> NodeHome:
        """This home, if initialised; StorageError saying how to make one otherwise."""
        if not self.is_initialised():
            raise StorageError(f"no node at {self.path}: run `circle-node init --name NAME` first")
        return self

    @property
    def config(self) -> NodeConfig:
        if self._config is None:
            self._config = load_config(self.require().config_path)
        return self._config

    def settings(
        self, env: Mapping[str, str] | None = None, flags: Mapping[str, object | None] | None = None
    ) -> Settings:
        """This node's settings: defaults -> node.toml -> ``CIRCLE_NODE_*`` in ``env``
        (default: the process environment) -> ``flags`` (those not None)."""
        config = self.config
        chosen = os.environ if env is None else env
        return resolve(config.file_values(), str(self.config_path), chosen, flags)

    @property
    def node_public(self) -> bytes:
        """The node's public key, from node.toml (no passphrase needed)."""
        return self.config.node

    # ---- init -------------------------------------------------------------------------

    def check_can_init(self, name: str, listen: str) -> tuple[str, str]:
        """The cleaned name and listen address, if a node can be made here; else raise."""
        name = check_name(name, "node name")
        try:
            listen = parse_listen(listen)
        except ValueError as exc:
            raise ConfigError(f"invalid listen address {listen!r}: {exc}") from exc
        if self.is_initialised():
            raise NodeError(
                f"a node is already initialised at {self.path}: use it, or choose "
                f"another directory with --home or ${HOME_ENV}"
            )
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise NodeError(
                f"{self.path} exists and is not an empty directory: choose another "
                f"directory with --home or ${HOME_ENV}"
            )
        return name, listen

    def init(
        self, name: str, listen: str, passphrase: str, key: KeyPair | None = None
    ) -> NodeConfig:
        """Create the home with a node key (new unless ``key``) sealed under ``passphrase``."""
        name, listen = self.check_can_init(name, listen)
        key = KeyPair.generate() if key is None else key
        config = NodeConfig(name, listen, key.public, int(time.time()))
        sealed = seal_key(key, passphrase, kind=KeyKind.NODE, name=name, **_kdf_limits())
        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.init-", dir=parent))
        except OSError as exc:
            raise StorageError(f"cannot create {self.path}: {exc.strerror or exc}") from exc
        try:
            self._build(staging, config, sealed)
            os.rename(staging, self.path)  # atomic; replaces an empty directory
            _fsync_dir(parent)
        except OSError as exc:
            if self.is_initialised():
                raise NodeError(f"a node was initialised at {self.path} meanwhile") from exc
            raise StorageError(f"cannot create {self.path}: {exc.strerror or exc}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._config = config
        return config

    @staticmethod
    def _build(staging: Path, config: NodeConfig, sealed_node_key: bytes) -> None:
        os.chmod(staging, 0o700)
        (staging / MEMBERS_DIR).mkdir(mode=0o700)
        write_key_file(staging / NODE_KEY_FILE, sealed_node_key)
        write_atomic(staging / MEMBERS_INDEX, b"[]\n")
        write_atomic(staging / CONFIG_FILE, render_config(config).encode("utf-8"))

    # ---- keys -------------------------------------------------------------------------

    def unlock_node(self, passphrase: str) -> KeyPair:
        """The node key; WrongPassphrase or KeyFileError with what to do otherwise."""
        path = self.require().node_key_path
        sealed = _open_key(path, passphrase, KeyKind.NODE, "the node key")
        pending = self.path / NEXT_NODE_KEY_FILE
        if sealed.keypair.public != self.node_public and pending.is_file():
            # a rotation stopped after node.toml named the new key: finish it
            sealed = _open_key(pending, passphrase, KeyKind.NODE, "the new node key")
            if sealed.keypair.public == self.node_public:
                os.replace(pending, path)
        if sealed.keypair.public != self.node_public:
            raise KeyFileError(
                f"{path} is not the key named in {self.config_path}: restore node.key from a backup"
            )
        return sealed.keypair

    def unlock_member(self, entry: MemberEntry, passphrase: str) -> KeyPair:
        """The member's key; WrongPassphrase or KeyFileError with what to do otherwise."""
        path = self.require().member_key_path(entry.member)
        sealed = _open_key(path, passphrase, KeyKind.MEMBER, f"member {entry.describe()}")
        if sealed.keypair.public != entry.member:
            raise KeyFileError(f"{path} holds another member's key: restore it from a backup")
        return sealed.keypair

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.path / LOCK_FILE, "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def check_new_member(self, name: str) -> str:
        """The cleaned name, if this node holds no member of that name; else raise."""
        name = check_name(name, "member name")
        if any(e.name.casefold() == name.casefold() for e in self.members()):
            raise NodeError(f"this node already holds a member named {name!r}: choose another name")
        return name

    def create_member(self, name: str, passphrase: str) -> KeyPair:
        """A new member key sealed under ``passphrase``, listed in members.json."""
        key = KeyPair.generate()
        self.add_member_key(key, name, int(time.time()), passphrase)
        return key

    def add_member_key(self, key: KeyPair, name: str, created: int, passphrase: str) -> None:
        """Seal an existing member key under ``passphrase`` and list it (a restore)."""
        with self._locked():
            name = self.check_new_member(name)
            entries = self.members()
            if any(e.member == key.public for e in entries):
                raise NodeError(f"this node already holds member key {key.public.hex()[:8]}")
            entry = MemberEntry(key.public, name, created)
            limits = _kdf_limits()
            sealed = seal_key(
                key, passphrase, kind=KeyKind.MEMBER, name=name, created=entry.created, **limits
            )
            write_key_file(self.member_key_path(key.public), sealed)
            self._write_members([*entries, entry])

    def _write_members(self, entries: list[MemberEntry]) -> None:
        data = msgspec.json.format(msgspec.json.encode([e.as_json() for e in entries]))
        try:
            write_atomic(self.members_path, data + b"\n")
        except OSError as exc:
            raise StorageError(f"cannot write {self.members_path}: {exc.strerror}") from exc

    def members(self) -> list[MemberEntry]:
        """The member keys this node holds, oldest first (no passphrase needed)."""
        path = self.require().members_path
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
        try:
            items = msgspec.json.decode(raw, type=list[_IndexEntry])
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a str
            raise ConfigError(f"{path} is damaged ({exc}): restore it from a backup") from exc
        entries = []
        for item in items:
            if len(item.member) != 64 or not _is_hex(item.member):
                raise ConfigError(f"{path} is damaged (bad member id): restore it from a backup")
            entries.append(MemberEntry(bytes.fromhex(item.member), item.name, item.created))
        return entries

    def resolve_member(self, name_or_id: str | None) -> MemberEntry:
        """A member by exact name or by a hex id prefix of >= 4 digits; None: the only one."""
        entries = self.members()
        if not entries:
            raise NotFound(
                "this node holds no member key yet: run `circle-node member create --name NAME`"
            )
        names = ", ".join(e.name for e in entries)
        if name_or_id is None:
            if len(entries) == 1:
                return entries[0]
            raise NodeError(
                f"this node holds {len(entries)} members ({names}): choose one with --as NAME"
            )
        for entry in entries:
            if entry.name == name_or_id:
                return entry
        prefix = name_or_id.strip().lower()
        if len(prefix) >= MIN_ID_PREFIX and _is_hex(prefix):
            matches = [e for e in entries if e.member_id.startswith(prefix)]
            if len(matches) == 1:
                return matches[0]
            if matches:
                which = ", ".join(e.describe() for e in matches)
                raise NodeError(
                    f"{name_or_id!r} matches several members ({which}): give more of the id"
                )
        raise NotFound(
            f"no member {name_or_id!r} on this node (it holds: {names}); "
            "`circle-node member list` shows names and ids"
        )
