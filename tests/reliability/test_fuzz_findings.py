"""Regressions for what the atheris harness (``fuzz/``) found, each at its real entry point.

msgspec raises ``UnicodeDecodeError`` (not ``msgspec.DecodeError``) for a ``str`` that is not
UTF-8. Five decoders caught only ``msgspec.DecodeError``, so a signed op whose body holds a
bad string escaped ingest as a bare exception (a genesis op needs no authorization, so any
peer or bundle could send one), an HTTP sync exchange with a bad session id got a 500, a
hostile peer's HTTP reply escaped the client (killing `serve`'s dialer), and a damaged
members index gave a traceback. Each now is a clear ``NodeError`` and changes nothing.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from cli_runner import cli
from helpers import Author, dump, ingest

from node.crypto.keys import KeyPair
from node.crypto.ops import OpKind
from node.errors import ProtocolError
from node.replica import Replica
from node.sync.http import HttpChannel
from node.sync.transport import SyncServer, create_app

BAD_STR = b"\xa2\x80\x80"  # a msgpack str of two bytes that are not UTF-8


async def test_signed_ops_with_bodies_that_are_not_utf8_are_malformed(replica: Replica) -> None:
    """A genesis, auth or record op whose body has a non-UTF-8 string is rejected as
    malformed, and the store is unchanged."""
    founder = Author()
    bad_genesis = founder.make(OpKind.GENESIS, bytes(16), b"\x81\xa4name" + BAD_STR, advance=False)
    genesis = founder.genesis()
    assert (await ingest(replica, [genesis])).added == 1
    circle, deps = genesis.circle, [genesis.op_id]
    bad_record = founder.make(OpKind.RECORD, circle, b"\x81\xa1t" + BAD_STR, deps, advance=False)
    bad_auth = founder.make(OpKind.AUTH, circle, b"\x81\xa4type" + BAD_STR, deps, advance=False)
    before = await dump(replica.store)
    for op in (bad_genesis, bad_record, bad_auth):
        report = await ingest(replica, [op])
        assert (report.rejected, dict(report.reasons)) == (1, {"malformed": 1})
        assert "utf-8" in report.problems[0]["detail"]
    assert await dump(replica.store) == before


async def test_http_exchange_with_a_session_id_that_is_not_utf8_is_a_bad_request(
    replica: Replica,
) -> None:
    """`POST /sync/http` whose session id is not UTF-8 gets 400, not a server error."""
    body = msgspec.msgpack.encode({"session": "s", "messages": []}).replace(b"\xa1s", BAD_STR)
    app = create_app(replica, KeyPair.generate())
    async with SyncServer(app, "127.0.0.1", 0) as server, aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/sync/http", data=body) as response:
            assert response.status == 400
            assert "not a sync exchange" in await response.text()


async def test_http_reply_with_a_session_id_that_is_not_utf8_is_a_protocol_error() -> None:
    """A peer answering an HTTP exchange with a non-UTF-8 session id fails the channel with
    ProtocolError (which the service retries), not a bare exception."""
    reply = msgspec.msgpack.encode({"session": "s", "messages": [], "closed": False})

    async def hostile(_request: web.Request) -> web.Response:
        return web.Response(body=reply.replace(b"\xa1s", BAD_STR))

    app = web.Application()
    app.router.add_post("/sync/http", hostile)
    async with SyncServer(app, "127.0.0.1", 0) as server, aiohttp.ClientSession() as http:
        channel = HttpChannel(http, f"{server.url}/sync/http", peer=server.url)
        await channel.send(b"hello")
        with pytest.raises(ProtocolError, match="did not answer like a circle-node"):
            await channel.receive()


def test_members_index_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    """A members index damaged into bad UTF-8 inside a string: a clear error, no traceback."""
    home = tmp_path / "h"
    cli(home, "init", "--name", "hall")
    cli(home, "member", "create", "--name", "alice")
    index = next(p for p in home.iterdir() if p.name.startswith("members"))
    index.write_bytes(index.read_bytes().replace(b"alice", b"al\xffce"))
    listed = cli(home, "member", "list")
    assert listed.code != 0
    assert "damaged" in listed.data["error"]


@pytest.fixture(scope="module")
def fuzz_targets() -> Any:
    """``fuzz/targets.py`` (the atheris harness's targets, which need no atheris)."""
    sys.path.insert(0, str(Path(__file__).parents[2] / "fuzz"))
    try:
        import targets
    finally:
        sys.path.pop(0)
    return targets


def test_fuzz_targets_hold_their_contract_on_mutated_seeds(fuzz_targets: Any) -> None:
    """Every atheris target runs on its seeds and on cut and flipped copies of them with
    nothing but NodeErrors raised inside (so the harness cannot rot between long runs)."""
    rng = random.Random(8)
    for name, (target, make_seeds) in fuzz_targets.TARGETS.items():
        seeds = make_seeds()
        assert seeds, name
        for seed in seeds:
            target(seed)
            for _ in range(30):
                blob = bytearray(seed)
                spot = rng.randrange(len(blob))
                if rng.random() < 0.5:
                    del blob[spot:]
                else:
                    blob[spot] ^= rng.randrange(1, 256)
                target(bytes(blob))
