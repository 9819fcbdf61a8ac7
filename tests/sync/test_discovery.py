"""LAN discovery over real mDNS on the loopback interface."""

from __future__ import annotations

import asyncio

from node.crypto.keys import KeyPair
from node.sync.discovery import Discovered, Discovery, parse_announcement, short_id

LOOPBACK = ["127.0.0.1"]


async def test_two_nodes_find_each_other_on_loopback() -> None:
    """Two announcing nodes each offer the other as a peer URL, and never themselves."""
    a, b = KeyPair.generate(), KeyPair.generate()
    seen: asyncio.Queue[Discovered] = asyncio.Queue()
    async with (
        Discovery(a.public, 7401, name="A", interfaces=LOOPBACK, on_found=seen.put_nowait) as da,
        Discovery(b.public, 7402, name="B", interfaces=LOOPBACK),
    ):
        found = await asyncio.wait_for(seen.get(), timeout=15)
        assert found.node_id == short_id(b.public)
        assert found.url == "http://127.0.0.1:7402"
        assert found.name == "B"
        assert short_id(a.public) not in da.found


def test_announcements_with_bad_fields_are_ignored() -> None:
    """A malformed announcement (bad id, wrong version, no address, bad port) offers nothing."""
    good = {b"id": b"0123456789abcdef", b"v": b"1", b"name": b"x"}
    assert parse_announcement(good, ["127.0.0.2"], 7400) is not None
    assert parse_announcement({**good, b"id": b"zz"}, ["127.0.0.2"], 7400) is None
    assert parse_announcement({**good, b"v": b"9"}, ["127.0.0.2"], 7400) is None
    assert parse_announcement(good, [], 7400) is None
    assert parse_announcement(good, ["127.0.0.2"], 0) is None
    assert parse_announcement({}, ["127.0.0.2"], 7400) is None
