"""Tests for node.home: the node home directory, its config and its member keys."""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.pwhash import argon2id

from node import home as home_module
from node.crypto.keys import HEADER_SIZE, KeyKind, open_sealed_key
from node.errors import (
    ConfigError,
    KeyFileError,
    NodeError,
    NotFound,
    StorageError,
    WrongPassphrase,
)
from node.home import (
    FAST_KDF_ENV,
    HOME_ENV,
    NodeConfig,
    NodeHome,
    default_home,
    parse_config,
    parse_listen,
    render_config,
    resolve_home,
    toml_string,
)

PASS = "correct horse"


@pytest.fixture(autouse=True)
def _fast_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAST_KDF_ENV, "1")
    monkeypatch.delenv(HOME_ENV, raising=False)


@pytest.fixture
def home(tmp_path: Path) -> NodeHome:
    node_home = NodeHome(tmp_path / "node")
    node_home.init("hall", "0.0.0.0:7400", PASS)
    return node_home


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _write_index(home: NodeHome, entries: list[tuple[str, str]]) -> None:
    data = [{"member": member, "name": name, "created": 1} for member, name in entries]
    home.members_path.write_text(json.dumps(data))


# ---- init and layout -------------------------------------------------------------------


def test_init_creates_layout_with_private_modes(home: NodeHome) -> None:
    """init writes node.toml, a sealed node key, members/ and an empty index, all private."""
    assert _mode(home.path) == 0o700
    assert _mode(home.path / "members") == 0o700
    assert _mode(home.node_key_path) == 0o600
    assert _mode(home.config_path) == 0o600
    assert json.loads(home.members_path.read_text()) == []
    raw = tomllib.loads(home.config_path.read_text())
    assert raw["name"] == "hall"
    assert raw["listen"] == "0.0.0.0:7400"
    assert raw["node"] == home.node_public.hex()
    sealed = open_sealed_key(home.node_key_path.read_bytes(), PASS)
    assert sealed.kind is KeyKind.NODE
    assert sealed.keypair.public == home.node_public


def test_init_leaves_no_staging_dirs(home: NodeHome) -> None:
    """A successful init leaves only the home itself in the parent directory."""
    assert [p.name for p in home.path.parent.iterdir()] == ["node"]


def test_init_refuses_an_initialised_home(home: NodeHome) -> None:
    """A second init at the same place is refused and says so."""
    with pytest.raises(NodeError, match="already initialised at"):
        NodeHome(home.path).init("again", "0.0.0.0:7400", PASS)


def test_init_accepts_an_empty_existing_directory(tmp_path: Path) -> None:
    """An empty directory (e.g. made by the user) becomes the home."""
    target = tmp_path / "empty"
    target.mkdir()
    NodeHome(target).init("hall", "127.0.0.1:7401", PASS)
    assert NodeHome(target).config.listen == "127.0.0.1:7401"
    assert _mode(target) == 0o700


def test_init_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    """A directory with other files in it is never taken over."""
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(NodeError, match="not an empty directory"):
        NodeHome(tmp_path).init("hall", "0.0.0.0:7400", PASS)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_failed_init_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If writing the home fails midway, neither the home nor a staging dir remains."""

    def broken(path: Path, data: bytes) -> None:
        raise KeyFileError("disk full")

    monkeypatch.setattr(home_module, "write_key_file", broken)
    with pytest.raises(KeyFileError, match="disk full"):
        NodeHome(tmp_path / "node").init("hall", "0.0.0.0:7400", PASS)
    assert list(tmp_path.iterdir()) == []


def test_init_validates_name_and_listen_before_writing(tmp_path: Path) -> None:
    """A bad name or listen address is refused and nothing is created."""
    with pytest.raises(ConfigError, match="node name"):
        NodeHome(tmp_path / "a").init("  ", "0.0.0.0:7400", PASS)
    with pytest.raises(ConfigError, match="listen address"):
        NodeHome(tmp_path / "a").init("hall", "nowhere", PASS)
    assert list(tmp_path.iterdir()) == []


def test_require_names_the_home_and_the_fix(tmp_path: Path) -> None:
    """Using a home that was never initialised says to run init."""
    with pytest.raises(StorageError, match=r"no node at .*circle-node init --name NAME"):
        NodeHome(tmp_path / "missing").require()


def test_resolve_home_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--home beats $CIRCLE_NODE_HOME, which beats the platform data dir."""
    assert resolve_home(None) == default_home()
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "env"))
    assert resolve_home(None) == tmp_path / "env"
    assert resolve_home(str(tmp_path / "flag")) == tmp_path / "flag"


def test_fast_kdf_knob_only_changes_new_key_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CIRCLE_NODE_FAST_KDF=1 seals with minimum limits; without it, interactive ones."""
    fast = NodeHome(tmp_path / "fast")
    fast.init("fast", "0.0.0.0:7400", PASS)
    monkeypatch.delenv(FAST_KDF_ENV)
    slow = NodeHome(tmp_path / "slow")
    slow.init("slow", "0.0.0.0:7400", PASS)
    fast_ops = int.from_bytes(fast.node_key_path.read_bytes()[7:15], "big")
    slow_ops = int.from_bytes(slow.node_key_path.read_bytes()[7:15], "big")
    assert fast_ops == argon2id.OPSLIMIT_MIN
    assert slow_ops == argon2id.OPSLIMIT_INTERACTIVE
    assert len(slow.node_key_path.read_bytes()) > HEADER_SIZE


# ---- config ----------------------------------------------------------------------------

GOOD = 'name = "hall"\nlisten = "0.0.0.0:7400"\nnode = "' + "ab" * 32 + '"\ncreated = 5\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name = ", "not valid TOML"),
        (GOOD + "colour = 'red'\n", "unknown key 'colour'"),
        (GOOD.replace('listen = "0.0.0.0:7400"', 'listen = "0.0.0.0"'), "'listen'"),
        (GOOD.replace(":7400", ":70000"), "'listen'"),
        (GOOD.replace('"0.0.0.0:7400"', '"::1:7400"'), "'listen'"),
        (GOOD.replace('"0.0.0.0:7400"', "7400"), "'listen' must be a string"),
        (GOOD.replace("created = 5", "created = true"), "'created' must be an integer"),
        (GOOD.replace("created = 5", 'created = "5"'), "'created' must be an integer"),
        (GOOD.replace("ab" * 32, "zz"), "'node' must be 64"),
        (GOOD.replace('name = "hall"\n', ""), "missing key 'name'"),
        (GOOD.replace('"hall"', '""'), "'name' is invalid"),
    ],
)
def test_config_errors_name_the_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    """Bad TOML, unknown keys, wrong types and bad HOST:PORT raise ConfigError with the file."""
    path = tmp_path / "node.toml"
    with pytest.raises(ConfigError, match=expected) as caught:
        parse_config(path, text)
    assert str(path) in str(caught.value)


def test_broken_config_on_disk_is_reported_on_use(home: NodeHome) -> None:
    """A node.toml edited into nonsense fails loading with the file's path."""
    home.config_path.write_text(GOOD + "port = 1\n")
    with pytest.raises(ConfigError, match=r"node\.toml: unknown key 'port'"):
        _ = NodeHome(home.path).config


def test_listen_defaults_when_missing(tmp_path: Path) -> None:
    """A config without listen gets 0.0.0.0:7400."""
    config = parse_config(tmp_path / "node.toml", GOOD.replace('listen = "0.0.0.0:7400"\n', ""))
    assert config.listen == "0.0.0.0:7400"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.0.0.0:7400", "0.0.0.0:7400"), ("[::]:80", "[::]:80"), ("pi.local:0080", "pi.local:80")],
)
def test_parse_listen_accepts_host_port(text: str, expected: str) -> None:
    """HOST:PORT, bracketed IPv6 and leading zeros in the port are accepted and normalised."""
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    "text", ["7400", ":7400", "host:", "host:0", "::1:80", "[1.2.3.4]:80", "a b:1"]
)
def test_parse_listen_refuses_bad_addresses(text: str) -> None:
    """Missing host or port, port out of range and unbracketed IPv6 are refused."""
    with pytest.raises(ValueError, match=r"."):
        parse_listen(text)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
def test_toml_string_round_trips(value: str) -> None:
    """Any text written with toml_string reads back unchanged with tomllib."""
    assert tomllib.loads(f"k = {toml_string(value)}")["k"] == value


def test_render_config_round_trips(tmp_path: Path) -> None:
    """render_config output parses back into the same config, quotes included."""
    config = NodeConfig('the "hall" \\ café', "[::1]:7400", bytes(range(32)), 1700000000)
    assert parse_config(tmp_path / "node.toml", render_config(config)) == config


# ---- members ---------------------------------------------------------------------------


def test_create_member_writes_sealed_key_and_index(home: NodeHome) -> None:
    """A member key is sealed as a member key and listed without a passphrase."""
    key = home.create_member("alice", PASS)
    path = home.member_key_path(key.public)
    assert _mode(path) == 0o600
    assert open_sealed_key(path.read_bytes(), PASS).kind is KeyKind.MEMBER
    [entry] = NodeHome(home.path).members()
    assert (entry.member, entry.name) == (key.public, "alice")
    assert home.unlock_member(entry, PASS).public == key.public


def test_duplicate_member_name_is_refused(home: NodeHome) -> None:
    """Names are unique on a node, ignoring case, so --as NAME is never ambiguous."""
    home.create_member("alice", PASS)
    with pytest.raises(NodeError, match="already holds a member named 'Alice'"):
        home.create_member("Alice", PASS)
    assert len(home.members()) == 1


def test_resolve_member_by_name_and_id_prefix(home: NodeHome) -> None:
    """--as takes an exact name or a hex id prefix of at least 4 digits."""
    alice = home.create_member("alice", PASS)
    bob = home.create_member("bob", PASS)
    assert home.resolve_member("alice").member == alice.public
    assert home.resolve_member(bob.public.hex()[:6]).member == bob.public
    assert home.resolve_member(bob.public.hex().upper()[:8]).member == bob.public
    with pytest.raises(NotFound, match="member list"):
        home.resolve_member(bob.public.hex()[:3])
    with pytest.raises(NotFound, match="it holds: alice, bob"):
        home.resolve_member("carol")


def test_resolve_member_ambiguous_prefix_lists_matches(home: NodeHome) -> None:
    """A prefix shared by two member ids is refused, naming both."""
    _write_index(home, [("abcd" + "0" * 60, "ann"), ("abcd" + "1" * 60, "abe")])
    with pytest.raises(NodeError, match=r"matches several members \(ann .*abe"):
        home.resolve_member("abcd")
    assert home.resolve_member("abcd1").name == "abe"


def test_resolve_member_default(home: NodeHome) -> None:
    """Without --as: no member says to create one; one is chosen; several need --as."""
    with pytest.raises(NotFound, match="member create --name NAME"):
        home.resolve_member(None)
    alice = home.create_member("alice", PASS)
    assert home.resolve_member(None).member == alice.public
    home.create_member("bob", PASS)
    with pytest.raises(NodeError, match=r"2 members \(alice, bob\): choose one with --as"):
        home.resolve_member(None)


def test_wrong_passphrase_is_a_clear_error(home: NodeHome) -> None:
    """A wrong passphrase names whose key it is and how to supply the right one."""
    home.create_member("alice", PASS)
    entry = home.resolve_member("alice")
    with pytest.raises(WrongPassphrase, match=r"member alice .*CIRCLE_NODE_PASSPHRASE"):
        home.unlock_member(entry, "wrong")
    with pytest.raises(WrongPassphrase, match="the node key"):
        home.unlock_node("wrong")
    assert home.unlock_node(PASS).public == home.node_public


def test_swapped_key_files_are_refused(home: NodeHome) -> None:
    """A member key file holding another key, or a node key as member key, is refused."""
    alice = home.create_member("alice", PASS)
    bob = home.create_member("bob", PASS)
    alice_path = home.member_key_path(alice.public)
    alice_path.unlink()
    os.link(home.member_key_path(bob.public), alice_path)
    with pytest.raises(KeyFileError, match="another member's key"):
        home.unlock_member(home.resolve_member("alice"), PASS)
    alice_path.unlink()
    os.link(home.node_key_path, alice_path)
    with pytest.raises(KeyFileError, match="holds a node key"):
        home.unlock_member(home.resolve_member("alice"), PASS)


def test_damaged_member_index_is_a_config_error(home: NodeHome) -> None:
    """A members.json that does not decode is reported with its path."""
    home.members_path.write_text('[{"member": "xyz"}]')
    with pytest.raises(ConfigError, match=r"members\.json is damaged"):
        home.members()
