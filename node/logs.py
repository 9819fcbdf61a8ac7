"""Log lines of a running node, to stderr, as text or as JSON (the ``log_format`` setting).

JSON: one object per line, ``{"ts", "level", "logger", "msg", ...}``: ``ts`` is UTC ISO
8601 with milliseconds, ``level`` lower case, ``msg`` the formatted message, then the
structured fields the code passes with ``extra=`` (:data:`FIELDS`: ``peer``, ``circle``,
``ops``, ``reason`` ...) and ``exc`` (the traceback) for a logged exception. Fields hold
strings, numbers, booleans or null; bytes are written as hex. ``peer`` is always a peer's
full node id (null before the handshake named it), ``url`` a peer's address as configured.
Text keeps the message as it was and shows no fields, so existing log readers see no
change.

Invariants: a record is one line whatever its message holds (JSON escapes newlines); a log
line never raises (values that do not serialize are written as ``str``).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

LOG_FORMATS = ("text", "json")
#: structured fields that log calls may pass with ``extra=``; JSON lines carry them
FIELDS = ("peer", "node", "url", "circle", "ops", "ops_in", "ops_out", "reason", "address")
HANDLER_NAME = "circle-node-stderr"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _plain(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in FIELDS:
            if name in record.__dict__:
                line[name] = _plain(record.__dict__[name])
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def log_to_stderr(level: int, fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send the ``node`` loggers' lines at ``level`` and above to stderr (stdout carries
    the command's result), in ``fmt`` (``text`` or ``json``). Calling it again changes the
    level and format of the one handler; it never adds a second."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(LOG_FORMATS)}")
    logger = logging.getLogger("node")
    logger.setLevel(level)
    handler = next((h for h in logger.handlers if h.get_name() == HANDLER_NAME), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr if stream is None else stream)
        handler.set_name(HANDLER_NAME)
        logger.addHandler(handler)
    formatter = JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
