"""Structured logs: `serve --log-format json` writes one JSON object per stderr line, with
ts, level, logger, msg and the structured fields (peer, address, ops ...) of sync lines."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from pathlib import Path

from cli_runner import cli
from serve_runner import serving, stop

from node.crypto.keys import KeyPair
from node.logs import JsonFormatter, log_to_stderr
from node.replica import Replica
from node.service import sync_once


def test_json_formatter_writes_one_line_with_fields_and_traceback() -> None:
    """Newlines stay inside the one line; bytes fields become hex; exceptions go to exc."""
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("node.x", logging.ERROR, __file__, 1, "a\nb %s", ("c",), None)
        record.exc_info = sys.exc_info()
    record.__dict__.update(peer=b"\x01\x02", ops=3, reason=None)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert (data["level"], data["logger"], data["msg"]) == ("error", "node.x", "a\nb c")
    assert (data["peer"], data["ops"], data["reason"]) == ("0102", 3, None)
    assert "ValueError: boom" in data["exc"]
    assert data["ts"].endswith("+00:00")


def test_log_to_stderr_switches_format_without_a_second_handler() -> None:
    """Configuring twice keeps one handler, now writing the new format."""
    stream = io.StringIO()
    logger = logging.getLogger("node")
    before = list(logger.handlers)
    try:
        for handler in before:
            logger.removeHandler(handler)
        log_to_stderr(logging.INFO, "text", stream)
        log_to_stderr(logging.INFO, "json", stream)
        assert len(logger.handlers) == 1
        logging.getLogger("node.test").info("hello %s", "world", extra={"circle": "ab"})
        assert json.loads(stream.getvalue())["circle"] == "ab"
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        for handler in before:
            logger.addHandler(handler)


async def _sync_with(url: str, store: Path) -> str:
    """One sync round from a fresh peer (real replica, real HTTP client); its node id."""
    key = KeyPair.generate()
    async with Replica.open(store) as replica:
        result = await sync_once(replica, key, url, time_limit=60)
    assert result.stats.error is None, result.stats.error
    return key.public.hex()


def test_serve_json_logs_parse_and_carry_sync_fields(tmp_path: Path) -> None:
    """A real `serve --log-format json`: a peer syncs with it; every stderr line is a JSON
    object with the four keys, and the sync line names the peer and its ops."""
    a = tmp_path / "a"
    cli(a, "init", "--name", "hall")
    log = tmp_path / "serve-a.log"
    with serving(a, log, ("serve", "--json", "--log-format", "json")) as (proc, line):
        listening = json.loads(line)
        peer = asyncio.run(_sync_with(listening["url"], tmp_path / "peer.db"))
        assert stop(proc) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines
    for line in lines:
        assert {"ts", "level", "logger", "msg"} <= set(line), line
    ended = [x for x in lines if x["msg"].startswith("sync with") and "peer" in x]
    assert ended, lines
    assert ended[0]["peer"] == peer
    assert isinstance(ended[0]["ops_in"], int)
    assert any(x["msg"] == "listening on " + listening["listening"] for x in lines)
    assert lines[-1]["msg"] == "stopped"
