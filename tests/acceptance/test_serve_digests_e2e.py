"""`circle-node serve` keeps the governance digests fresh by itself: a real serve process,
real CLI writes beside it, the store polled with a deadline (no timing asserted)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cli_runner import Result, cli
from serve_runner import serving, stop

from node.digests import decode, digest_of, stamp_of
from node.governance import load
from node.replica import Replica
from node.store.digests import DigestTable


def ok(result: Result) -> dict[str, Any]:
    assert result.code == 0, result
    return result.data


def propose(home: Path, circle: str, title: str) -> None:
    args = ("--title", title, "--driver", "d", "--text", "t")
    ok(cli(home, "proposal", "create", circle[:8], *args))


async def fresh_open_titles(store: Path, circle: bytes, within: float = 60.0) -> list[str]:
    """Wait until the stored digest of ``circle`` has the store's stamp; its open titles."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with Replica.open(store) as replica:
        while True:
            await replica.refresh()
            stored = await DigestTable(replica.store).get(circle)
            if stored is not None and stored[0] == await stamp_of(replica, circle):
                digest = decode(stored[1])
                assert digest == digest_of(await load(replica, circle))
                return sorted(item.title for item in digest.open)
            assert loop.time() < deadline, "serve did not refresh the digest"
            await asyncio.sleep(0.2)


async def test_serve_refreshes_digests_at_start_and_after_cli_writes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ok(cli(home, "init", "--name", "hall"))
    ok(cli(home, "member", "create", "--name", "alice"))
    circle = ok(cli(home, "circle", "create", "--name", "Garden", "--purpose", "grow"))["circle"]
    propose(home, circle, "Water the beds")
    store = home / "store.db"
    with serving(home, tmp_path / "serve.log") as (proc, _line):
        assert await fresh_open_titles(store, bytes.fromhex(circle)) == ["Water the beds"]
        propose(home, circle, "Buy hoses")  # another process writes while serve runs
        titles = await fresh_open_titles(store, bytes.fromhex(circle))
        assert titles == ["Buy hoses", "Water the beds"]
        assert stop(proc) == 0
    assert "Traceback" not in (tmp_path / "serve.log").read_text()
