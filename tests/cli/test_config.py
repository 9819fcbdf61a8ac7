"""node.config: settings declared once, layered defaults -> node.toml -> CIRCLE_NODE_* ->
flags, bad values named by layer and key, and the docs and example listing every setting."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from cli_runner import cli, cli_env

from node import cli as cli_module
from node.config import (
    BY_NAME,
    REQUIRED,
    SETTINGS,
    Settings,
    parse_config,
    resolve,
    unknown_env,
)
from node.errors import ConfigError
from node.home import FAST_KDF_ENV, HOME_ENV, NodeHome

ROOT = Path(__file__).resolve().parents[2]
FILE = "/srv/node/node.toml"
NODE_HEX = "ab" * 32


def _resolve(
    file: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    flags: dict[str, Any] | None = None,
) -> Settings:
    return resolve({"name": "hall", **(file or {})}, FILE, env or {}, flags)


def test_settings_dataclass_has_one_field_per_declared_setting() -> None:
    """Settings' fields are exactly SETTINGS, in order; every default passes its own check."""
    assert [f.name for f in fields(Settings) if f.name != "origins"] == [s.name for s in SETTINGS]
    settings = _resolve()
    for setting in SETTINGS:
        if setting.default is not REQUIRED:
            assert getattr(settings, setting.name) == setting.default
            assert settings.origins[setting.name] == "default"


def test_each_layer_overrides_the_one_before() -> None:
    """node.toml beats the default, the environment beats node.toml, a flag beats both;
    origins say where each value came from."""
    settings = _resolve(
        file={"listen": "10.0.0.1:7401", "backoff_cap": 90, "log_level": "warning"},
        env={"CIRCLE_NODE_LISTEN": "10.0.0.2:7402", "CIRCLE_NODE_LOG_LEVEL": "DEBUG"},
        flags={"listen": "10.0.0.3:7403", "discover": None},
    )
    assert settings.listen == "10.0.0.3:7403"
    assert settings.log_level == "debug"
    assert settings.backoff_cap == 90.0
    assert settings.discover is False
    assert settings.origins["listen"] == "flag --listen"
    assert settings.origins["log_level"] == "environment variable CIRCLE_NODE_LOG_LEVEL"
    assert settings.origins["backoff_cap"] == FILE
    assert settings.origins["discover"] == "default"
    env_only = _resolve(
        file={"listen": "10.0.0.1:7401"}, env={"CIRCLE_NODE_LISTEN": "10.0.0.2:7402"}
    )
    assert env_only.listen == "10.0.0.2:7402"


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("1", True), ("on", True), ("No", False), ("off", False), ("0", False)],
)
def test_environment_booleans(text: str, value: bool) -> None:
    """Booleans in the environment may be true/false, 1/0, yes/no or on/off."""
    assert _resolve(env={"CIRCLE_NODE_DISCOVER": text}).discover is value


def test_environment_numbers_are_converted() -> None:
    """Numbers in the environment are parsed: floats for seconds, integers for counts."""
    env = {"CIRCLE_NODE_BACKOFF_BASE": "2", "CIRCLE_NODE_HTTP_MAX_BODY": "600000"}
    settings = _resolve(env=env)
    assert (settings.backoff_base, settings.http_max_body) == (2.0, 600000)


BAD_FILE = [
    ("listen", 7400, "must be a string (HOST:PORT"),
    ("listen", "0.0.0.0", "is invalid: expected HOST:PORT"),
    ("discover", "yes", "must be true or false"),
    ("log_level", "loud", "is invalid: 'loud' is not one of debug, info, warning, error"),
    ("backoff_base", 0, "is invalid: 0 is out of range; expected a number of seconds from 0.01"),
    ("backoff_cap", True, "must be a number"),
    ("connect_timeout", float("inf"), "is out of range"),
    ("http_max_body", 1.5, "must be an integer"),
    ("http_max_body", 1000, "expected a whole number of bytes from 524288"),
    ("http_max_sessions", 0, "is out of range"),
    ("name", "", "is invalid: the node name must be 1 to 80 printable characters"),
]


@pytest.mark.parametrize(("key", "value", "expected"), BAD_FILE)
def test_bad_file_values_name_the_file_and_key(key: str, value: Any, expected: str) -> None:
    """A bad value in node.toml: ConfigError naming the file, the key and what is expected."""
    with pytest.raises(ConfigError) as caught:
        _resolve(file={key: value})
    assert str(caught.value).startswith(f"{FILE}: {key!r} ")
    assert expected in str(caught.value)


BAD_ENV = [
    ("LISTEN", "pi.local", "is invalid: expected HOST:PORT"),
    ("DISCOVER", "maybe", "'maybe' is not true or false"),
    ("LOG_LEVEL", "verbose", "is not one of debug, info, warning, error"),
    ("BACKOFF_BASE", "soon", "'soon' is not a number; expected a number of seconds"),
    ("POLL_INTERVAL", "nan", "is out of range"),
    ("HTTP_MAX_SESSIONS", "2.5", "'2.5' is not an integer"),
    ("HTTP_LONG_POLL", "-1", "is out of range; expected a number of seconds from 0.1 to 60"),
    ("NAME", "  ", "the node name must be 1 to 80"),
]


@pytest.mark.parametrize(("suffix", "text", "expected"), BAD_ENV)
def test_bad_environment_values_name_the_variable_and_key(
    suffix: str, text: str, expected: str
) -> None:
    """A bad CIRCLE_NODE_* value: ConfigError naming the variable, the key and what is
    expected."""
    variable = f"CIRCLE_NODE_{suffix}"
    with pytest.raises(ConfigError) as caught:
        _resolve(env={variable: text})
    assert str(caught.value).startswith(f"environment variable {variable}: {suffix.lower()!r} ")
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"listen": "[::1:80"}, "flag --listen: 'listen' is invalid: a bracketed host"),
        ({"listen": "0.0.0.0:99999"}, "flag --listen: 'listen' is invalid: the port must be"),
    ],
)
def test_bad_flags_name_the_flag_and_key(flags: dict[str, Any], expected: str) -> None:
    """A bad --listen: ConfigError naming the flag and the key."""
    with pytest.raises(ConfigError, match=re.escape(expected)):
        _resolve(flags=flags)


def test_backoff_cap_below_base_names_both_and_their_layers() -> None:
    """backoff_cap < backoff_base is refused, saying where each value came from."""
    with pytest.raises(ConfigError) as caught:
        _resolve(file={"backoff_cap": 1}, env={"CIRCLE_NODE_BACKOFF_BASE": "5"})
    message = str(caught.value)
    assert f"'backoff_cap' (1, from {FILE})" in message
    assert "'backoff_base' (5, from environment variable CIRCLE_NODE_BACKOFF_BASE)" in message


def test_node_toml_settings_round_trip_and_unknown_keys_are_refused(tmp_path: Path) -> None:
    """node.toml may carry any setting (validated on load); an unknown key is refused with
    the list of known ones."""
    path = tmp_path / "node.toml"
    base = f'name = "hall"\nnode = "{NODE_HEX}"\ncreated = 5\n'
    config = parse_config(path, base + 'log_level = "debug"\nhttp_max_body = 600000\n')
    assert dict(config.extra) == {"log_level": "debug", "http_max_body": 600000}
    assert config.file_values()["listen"] == "0.0.0.0:7400"
    with pytest.raises(ConfigError, match=r"unknown key 'log_levle' \(known keys: backoff_base,"):
        parse_config(path, base + 'log_levle = "debug"\n')
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}: 'poll_interval' is invalid"):
        parse_config(path, base + "poll_interval = -1\n")


def test_unknown_environment_variables_are_listed_not_refused() -> None:
    """CIRCLE_NODE_* variables naming no setting are ignored by resolve, listed by
    unknown_env; HOME, PASSPHRASE and FAST_KDF are known."""
    env = {
        "CIRCLE_NODE_LISTN": "x",
        "CIRCLE_NODE_HOME": "/h",
        "CIRCLE_NODE_PASSPHRASE": "p",
        "CIRCLE_NODE_FAST_KDF": "1",
        "CIRCLE_NODE_LISTEN": "127.0.0.1:1",
        "PATH": "/bin",
    }
    assert _resolve(env=env).listen == "127.0.0.1:1"
    assert unknown_env(env) == ["CIRCLE_NODE_LISTN"]


def _docs_table() -> list[list[str]]:
    text = (ROOT / "docs" / "configuration.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def test_docs_table_names_every_setting_and_nothing_else() -> None:
    """docs/configuration.md has one row per setting, in order, with its environment
    variable and default, and no row for anything else."""
    rows = _docs_table()
    assert [row[0] for row in rows] == [f"`{s.name}`" for s in SETTINGS]
    for row in rows:
        setting = BY_NAME[row[0].strip("`")]
        assert row[1] == setting.kind.expects
        assert row[2] == f"`{setting.default_text}`"
        assert row[3] == f"`{setting.env}`"


def test_example_config_shows_every_setting_with_its_default() -> None:
    """deploy/config.example.toml shows each setting once, commented out, with its default
    (name: an example), and uncommented it is a valid node.toml."""
    text = (ROOT / "deploy" / "config.example.toml").read_text()
    lines = re.findall(r"^# ([a-z_]+ = .+)$", text, flags=re.MULTILINE)
    example = tomllib.loads("\n".join(lines))
    assert list(example) == [s.name for s in SETTINGS]
    for setting in SETTINGS:
        if setting.default is not REQUIRED:
            assert example[setting.name] == setting.default, setting.name
    body = "\n".join(lines) + f'\nnode = "{NODE_HEX}"\ncreated = 5\n'
    assert parse_config(Path("node.toml"), body).extra["http_max_body"] == 1048576


def test_serve_refuses_a_bad_setting_before_asking_for_the_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`serve` with a bad CIRCLE_NODE_* value exits 1 with the layer and key, without
    asking for the passphrase (none is set, and stdin is no terminal)."""
    monkeypatch.setenv(FAST_KDF_ENV, "1")
    monkeypatch.delenv(HOME_ENV, raising=False)
    NodeHome(tmp_path / "n").init("hall", "127.0.0.1:7400", "pw")
    monkeypatch.delenv("CIRCLE_NODE_PASSPHRASE", raising=False)
    monkeypatch.setenv("CIRCLE_NODE_BACKOFF_CAP", "forever")
    code = cli_module.main(["--home", str(tmp_path / "n"), "serve", "--json"])
    error = json.loads(capsys.readouterr().out)["error"]
    assert code == 1
    assert error.startswith("environment variable CIRCLE_NODE_BACKOFF_CAP: 'backoff_cap'")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _health(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data
    except (urllib.error.URLError, OSError):
        return None


def test_serve_takes_its_settings_from_every_layer(tmp_path: Path) -> None:
    """A real `serve`: node.toml says 0.0.0.0:7400, the environment another port and debug
    logging, --listen a third port; it listens on the flag's port and logs where each
    setting came from."""
    home = tmp_path / "n"
    assert cli(home, "init", "--name", "hall").code == 0
    env_port, flag_port = _free_port(), _free_port()
    env = cli_env() | {
        "CIRCLE_NODE_LISTEN": f"127.0.0.1:{env_port}",
        "CIRCLE_NODE_LOG_LEVEL": "debug",
        "CIRCLE_NODE_PEER_REFRESH": "30",
    }
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "node.cli", "--home", str(home), "serve", "--json"]
            + ["--listen", f"127.0.0.1:{flag_port}"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
        )
        try:
            deadline = time.monotonic() + 20
            while _health(flag_port) is None:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.05)
            assert _health(env_port) is None
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
    text = log.read_text()
    assert f"setting listen = '127.0.0.1:{flag_port}' from flag --listen" in text
    assert "setting log_level = 'debug' from environment variable CIRCLE_NODE_LOG_LEVEL" in text
    assert "setting peer_refresh = 30.0 from environment variable CIRCLE_NODE_PEER_REFRESH" in text
