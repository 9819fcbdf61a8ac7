"""Settings, declared once, and ``node.toml``, the file that holds a node's own.

Every setting is declared once, in :data:`SETTINGS`: its name, kind, default and a one-line
doc. ``docs/configuration.md`` and ``deploy/config.example.toml`` list the same settings
(tests check both). A value is resolved in layers, each overriding the one before::

    the declared default -> HOME/node.toml -> CIRCLE_NODE_<NAME> in the environment
                         -> a command-line flag (serve's --listen, --discover, --log-format)

``node.toml`` also holds the node's identity, written by ``init``: ``node`` (its public
key) and ``created``. Those are not settings: nothing overrides them.

Invariants:

* A bad value from any layer raises :class:`ConfigError` naming the layer (the file, the
  environment variable or the flag), the key, and what a good value looks like. Nothing is
  clamped or silently ignored, and the declared defaults are themselves valid.
* ``node.toml`` is validated whenever it is read: unknown keys, wrong types and bad values
  are refused. ``CIRCLE_NODE_*`` variables that name no setting are not an error here (some
  are read elsewhere: :data:`OTHER_ENV`); ``circle-node doctor`` points out unknown ones.
* Pure: no I/O here but reading ``node.toml`` in :func:`load_config`.
"""

from __future__ import annotations

import math
import tomllib
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.errors import ConfigError

ENV_PREFIX = "CIRCLE_NODE_"
#: CIRCLE_NODE_* variables that are not settings (the home, the key passphrase, a test knob)
OTHER_ENV = frozenset({"CIRCLE_NODE_HOME", "CIRCLE_NODE_PASSPHRASE", "CIRCLE_NODE_FAST_KDF"})
DEFAULT_LISTEN = "0.0.0.0:7400"
MAX_NAME_CHARS = 80
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")  # node.logs writes them
MIN_HTTP_BODY = 512 * 1024  # one sync message (up to 300 KiB) must fit in a request


def check_name(name: str, what: str) -> str:
    """``name`` stripped, if it is 1..80 printable characters; ConfigError otherwise."""
    name = name.strip()
    bad = any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in name)
    if not name or len(name) > MAX_NAME_CHARS or bad:
        raise ConfigError(f"the {what} must be 1 to {MAX_NAME_CHARS} printable characters")
    return name


def parse_listen(text: str) -> str:
    """A validated ``HOST:PORT`` (IPv6 hosts in brackets); ValueError says what is wrong."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host:
        raise ValueError("expected HOST:PORT, e.g. 0.0.0.0:7400")
    if not (port_text.isascii() and port_text.isdigit() and 1 <= int(port_text) <= 65535):
        raise ValueError(f"the port must be a number from 1 to 65535, got {port_text!r}")
    if host.startswith("["):
        if not host.endswith("]") or ":" not in host[1:-1]:
            raise ValueError("a bracketed host must be an IPv6 address, e.g. [::]:7400")
    elif ":" in host:
        raise ValueError("put an IPv6 host in brackets, e.g. [::]:7400")
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in host):
        raise ValueError("the host must not contain spaces or control characters")
    return f"{host}:{int(port_text)}"


# ---- kinds of value ----------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """What values a setting takes: in TOML (``accepts``), as text in the environment
    (``convert``), and which of those are good (``check``, ValueError saying why not)."""

    type_phrase: str  # "a string", "a number", ...: for wrong TOML types
    expects: str  # what a good value looks like, for errors and the docs
    accepts: tuple[type, ...]
    convert: Callable[[str], Any]
    check: Callable[[Any], Any]


def _listen(text: str) -> str:
    """``HOST:PORT``; port 0 asks for any free port (tests use it)."""
    host, _, port = text.strip().rpartition(":")
    if port.isascii() and port.isdigit() and int(port) == 0:
        checked_host = parse_listen(f"{host}:1").rpartition(":")[0]
        return f"{checked_host}:0"
    return parse_listen(text)


def _node_name(text: str) -> str:
    try:
        return check_name(text, "node name")
    except ConfigError as exc:
        raise ValueError(str(exc)) from exc


def _boolean(text: str) -> bool:
    words = {"true": True, "1": True, "yes": True, "on": True}
    words |= {"false": False, "0": False, "no": False, "off": False}
    try:
        return words[text.strip().lower()]
    except KeyError:
        raise ValueError(f"{text!r} is not true or false") from None


def _choice(options: tuple[str, ...]) -> Kind:
    def check(value: str) -> str:
        if value.strip().lower() not in options:
            raise ValueError(f"{value!r} is not one of {', '.join(options)}")
        return value.strip().lower()

    return Kind("a string", f"one of {', '.join(options)}", (str,), str, check)


def _number(low: float, high: float, unit: str, *, integer: bool = False) -> Kind:
    def check(value: float) -> float:
        if not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"{value!r} is out of range")
        return int(value) if integer else float(value)

    def convert(text: str) -> float:
        return int(text.strip(), 10) if integer else float(text)

    def show(x: float) -> str:
        return str(int(x)) if x == int(x) else str(x)

    whole = "a whole number" if integer else "a number"
    expects = f"{whole} of {unit} from {show(low)} to {show(high)}"
    return Kind(
        "an integer" if integer else "a number",
        expects,
        (int,) if integer else (int, float),
        convert,
        check,
    )


TEXT_NAME = Kind("a string", f"1 to {MAX_NAME_CHARS} printable characters", (str,), str, _node_name)
ADDRESS = Kind("a string", "HOST:PORT, e.g. 0.0.0.0:7400 or [::]:7400", (str,), str, _listen)
BOOLEAN = Kind("true or false", "true or false", (bool,), _boolean, bool)
SECONDS = _number(0.01, 86400, "seconds")


# ---- the settings ------------------------------------------------------------------------

REQUIRED: Any = object()  # the default of a setting that node.toml must give


@dataclass(frozen=True)
class Setting:
    """One setting: its name (the TOML key), kind, default and a one-line doc."""

    name: str
    kind: Kind
    default: Any
    doc: str
    flag: str | None = None  # the command-line flag that overrides it, if any

    @property
    def env(self) -> str:
        """The environment variable that overrides it."""
        return f"{ENV_PREFIX}{self.name.upper()}"

    @property
    def default_text(self) -> str:
        """The default as written in TOML (``(set by init)`` if node.toml must give it)."""
        return "(set by init)" if self.default is REQUIRED else toml_value(self.default)


SETTINGS: tuple[Setting, ...] = (
    Setting("name", TEXT_NAME, REQUIRED, "this node's display name, shown to peers and on the LAN"),
    Setting("listen", ADDRESS, DEFAULT_LISTEN, "where `serve` listens for peers", "--listen"),
    Setting("discover", BOOLEAN, False, "announce on the LAN and list nodes found", "--discover"),
    Setting("log_level", _choice(LOG_LEVELS), "info", "the least severe log line `serve` writes"),
    Setting(
        "log_format",
        _choice(LOG_FORMATS),
        "text",
        "`serve`'s log lines: text, or json (one object per line)",
        "--log-format",
    ),
    Setting("backoff_base", SECONDS, 0.5, "first reconnect to a lost peer waits up to this"),
    Setting("backoff_cap", SECONDS, 60.0, "no reconnect to a peer waits longer than this"),
    Setting("poll_interval", SECONDS, 1.0, "how often to look for ops other processes wrote"),
    Setting("peer_refresh", SECONDS, 5.0, "how often to look for peers added or removed"),
    Setting("connect_timeout", _number(0.1, 600, "seconds"), 10.0, "how long to try a peer"),
    Setting(
        "http_max_body",
        _number(MIN_HTTP_BODY, 64 * 1024 * 1024, "bytes", integer=True),
        1024 * 1024,
        "largest HTTP-fallback request body accepted (bytes)",
    ),
    Setting(
        "http_max_sessions",
        _number(1, 10000, "sessions", integer=True),
        64,
        "HTTP-fallback sync sessions served at once",
    ),
    Setting(
        "http_session_ttl",
        _number(1, 86400, "seconds"),
        60.0,
        "an idle HTTP-fallback session ends after this",
    ),
    Setting(
        "http_long_poll", _number(0.1, 60, "seconds"), 2.0, "how long an empty HTTP poll waits"
    ),
    Setting("http_max_wait", _number(0.1, 600, "seconds"), 10.0, "how long an HTTP request waits"),
    Setting(
        "http_max_queued",
        _number(MIN_HTTP_BODY, 256 * 1024 * 1024, "bytes", integer=True),
        2 * 1024 * 1024,
        "received bytes one HTTP-fallback session may hold unread",
    ),
    Setting(
        "max_connections",
        _number(1, 100_000, "connections", integer=True),
        256,
        "open connections served at once, all peers together",
    ),
    Setting(
        "max_connections_per_ip",
        _number(1, 100_000, "connections", integer=True),
        16,
        "open connections served at once from one address",
    ),
    Setting(
        "handshake_timeout",
        _number(0.1, 600, "seconds"),
        10.0,
        "a connection must send its request and finish the handshake within this",
    ),
    Setting(
        "read_timeout",
        _number(0.1, 3600, "seconds"),
        30.0,
        "a begun WebSocket frame or request body must be complete within this",
    ),
    Setting(
        "peer_frames_per_second",
        _number(1, 1_000_000, "messages per second"),
        200.0,
        "sync messages accepted per second from one peer",
    ),
    Setting(
        "peer_bytes_per_second",
        _number(64 * 1024, 1024**3, "bytes per second", integer=True),
        4 * 1024 * 1024,
        "bytes accepted per second from one peer",
    ),
    Setting(
        "peer_ops_per_second",
        _number(1, 1_000_000, "ops per second"),
        2000.0,
        "ops accepted per second from one peer",
    ),
    Setting(
        "peer_burst_seconds",
        _number(1, 3600, "seconds"),
        5.0,
        "a peer may burst this many seconds' worth of each rate",
    ),
    Setting(
        "peer_max_rejected",
        _number(1, 1_000_000_000, "ops", integer=True),
        500,
        "refused ops from one node (within peer_ban_seconds) before it is banned",
    ),
    Setting(
        "peer_max_failures",
        _number(1, 1_000_000, "failures", integer=True),
        20,
        "failed connections from one address (within peer_ban_seconds) before a ban",
    ),
    Setting(
        "peer_ban_seconds",
        _number(1, 7 * 86400, "seconds"),
        300.0,
        "how long a ban lasts, and the window its strikes count in",
    ),
)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one process; the fields are :data:`SETTINGS`, in order."""

    name: str
    listen: str
    discover: bool
    log_level: str
    log_format: str
    backoff_base: float
    backoff_cap: float
    poll_interval: float
    peer_refresh: float
    connect_timeout: float
    http_max_body: int
    http_max_sessions: int
    http_session_ttl: float
    http_long_poll: float
    http_max_wait: float
    http_max_queued: int
    max_connections: int
    max_connections_per_ip: int
    handshake_timeout: float
    read_timeout: float
    peer_frames_per_second: float
    peer_bytes_per_second: int
    peer_ops_per_second: float
    peer_burst_seconds: float
    peer_max_rejected: int
    peer_max_failures: int
    peer_ban_seconds: float
    #: setting -> the layer its value came from ("default", the file, "environment ...")
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)


def check_value(setting: Setting, value: object, layer: str) -> Any:
    """``value`` (from TOML or a flag) checked against ``setting``; ConfigError naming
    ``layer`` and the key otherwise."""
    kind = setting.kind
    if not isinstance(value, kind.accepts) or (
        isinstance(value, bool) and bool not in kind.accepts
    ):
        wanted = kind.type_phrase
        if kind.expects != wanted:
            wanted += f" ({kind.expects})"
        raise ConfigError(f"{layer}: {setting.name!r} must be {wanted}, not {value!r}")
    try:
        return kind.check(value)
    except ValueError as exc:
        raise ConfigError(
            f"{layer}: {setting.name!r} is invalid: {exc}; expected {kind.expects}"
        ) from exc


def _from_env(setting: Setting, text: str) -> Any:
    layer = f"environment variable {setting.env}"
    try:
        value = setting.kind.convert(text)
    except ValueError as exc:
        raise ConfigError(
            f"{layer}: {setting.name!r} is invalid: {text!r} is not "
            f"{setting.kind.type_phrase}; expected {setting.kind.expects}"
        ) from exc
    return check_value(setting, value, layer)


def resolve(
    file_values: Mapping[str, object],
    file_label: str,
    env: Mapping[str, str],
    flags: Mapping[str, object | None] | None = None,
) -> Settings:
    """The settings: defaults, then ``file_values`` (from node.toml, named ``file_label``
    in errors), then ``CIRCLE_NODE_*`` in ``env``, then the ``flags`` that are not None."""
    flags = flags or {}
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for setting in SETTINGS:
        name = setting.name
        if setting.default is not REQUIRED:
            values[name], origins[name] = setting.default, "default"
        if name in file_values:
            values[name] = check_value(setting, file_values[name], file_label)
            origins[name] = file_label
        if setting.env in env:
            values[name] = _from_env(setting, env[setting.env])
            origins[name] = f"environment variable {setting.env}"
        if flags.get(name) is not None:
            values[name] = check_value(setting, flags[name], f"flag {setting.flag}")
            origins[name] = f"flag {setting.flag}"
        if name not in values:
            raise ConfigError(f"{file_label}: missing key {name!r}: restore node.toml")
    if values["backoff_cap"] < values["backoff_base"]:
        raise ConfigError(
            f"'backoff_cap' ({values['backoff_cap']:g}, from {origins['backoff_cap']}) must be "
            f"at least 'backoff_base' ({values['backoff_base']:g}, from {origins['backoff_base']})"
        )
    return Settings(**values, origins=origins)


def unknown_env(env: Mapping[str, str]) -> list[str]:
    """``CIRCLE_NODE_*`` variables in ``env`` that name no setting (typos, most likely)."""
    known = {s.env for s in SETTINGS} | OTHER_ENV
    return sorted(k for k in env if k.startswith(ENV_PREFIX) and k not in known)


# ---- node.toml ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeConfig:
    """The contents of ``node.toml``: the node's identity and the settings it gives."""

    name: str  # the node's display name, shown to peers and in the TUI
    listen: str  # "HOST:PORT" the sync service listens on (default 0.0.0.0:7400)
    node: bytes  # the node's Ed25519 public key (its secret half is in node.key)
    created: int  # when the node was initialised, unix seconds
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)  # the other settings

    def file_values(self) -> dict[str, Any]:
        """The settings this file gives, for :func:`resolve`."""
        return {"name": self.name, "listen": self.listen, **self.extra}


IDENTITY_KEYS = ("node", "created")
_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f"}
_TOML_ESCAPES["\r"] = "\\r"


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string, with every character TOML forbids escaped."""
    out = []
    for char in value:
        if char in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_value(value: object) -> str:
    """A setting's value as a TOML literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return toml_string(value)
    return repr(value)


def render_config(config: NodeConfig) -> str:
    """The text of ``node.toml`` for ``config``."""
    lines = [
        "# circle-node configuration, written by `circle-node init`.",
        "# name: this node's display name; listen: HOST:PORT for the sync service;",
        "# node: the node's public key (do not edit); created: unix seconds.",
        "# Every other setting may be added here: see docs/configuration.md.",
        f"name = {toml_string(config.name)}",
        f"listen = {toml_string(config.listen)}",
        f"node = {toml_string(config.node.hex())}",
        f"created = {config.created}",
    ]
    lines += [f"{key} = {toml_value(value)}" for key, value in config.extra.items()]
    return "\n".join(lines) + "\n"


def _identity(path: Path, raw: dict[str, Any]) -> tuple[bytes, int]:
    for key in ("name", *IDENTITY_KEYS):
        if key not in raw:
            raise ConfigError(f"{path}: missing key {key!r}: restore node.toml from a backup")
    node_hex, created = raw["node"], raw["created"]
    if not isinstance(node_hex, str):
        raise ConfigError(f"{path}: 'node' must be a string, not {node_hex!r}")
    if not isinstance(created, int) or isinstance(created, bool):
        raise ConfigError(f"{path}: 'created' must be an integer, not {created!r}")
    if len(node_hex) != 64 or not all(c in "0123456789abcdef" for c in node_hex):
        raise ConfigError(f"{path}: 'node' must be 64 lowercase hex digits (the node key)")
    return bytes.fromhex(node_hex), created


def parse_config(path: Path, text: str) -> NodeConfig:
    """The validated config in ``text``; ConfigError naming ``path`` and the key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}): fix or restore it") from exc
    for key in raw:
        if key not in BY_NAME and key not in IDENTITY_KEYS:
            known = ", ".join(sorted([*BY_NAME, *IDENTITY_KEYS]))
            raise ConfigError(f"{path}: unknown key {key!r} (known keys: {known})")
    node, created = _identity(path, raw)
    given = {k: check_value(BY_NAME[k], v, str(path)) for k, v in raw.items() if k in BY_NAME}
    name, listen = given.pop("name"), given.pop("listen", DEFAULT_LISTEN)
    return NodeConfig(name, listen, node, created, given)


def load_config(path: Path) -> NodeConfig:
    """Read and validate ``node.toml``."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text: fix or restore it") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return parse_config(path, text)
