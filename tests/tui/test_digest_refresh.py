"""The node's own refresh of the governance digests (node.digests.refresh_digests and its
child process, ``python -m node.digest_refresh``): it stores what a fold gives now, skips
fresh circles, never stores a digest a concurrent write made stale, and the next TUI start
reads what it stored without folding."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from test_digest import FAR_FUTURE, furnish, no_fold
from tui_kit import Node

import node.digests as digest_module
from node.digests import decode, digest_of, refresh_digests, stamp_of
from node.governance import load, take_position
from node.replica import Replica
from node.store.digests import DigestTable
from node.tui.data import SummaryCache, summarise


async def assert_fresh(replica: Replica, circle: bytes) -> None:
    """The stored digest has the store's stamp now and equals a fold now."""
    stored = await DigestTable(replica.store).get(circle)
    assert stored is not None
    assert stored[0] == await stamp_of(replica, circle)
    assert decode(stored[1]) == digest_of(await load(replica, circle))


async def test_a_refresh_stores_what_a_fold_gives_and_the_tui_reads_it(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    me = node.alice.member
    async with Replica.open(node.home.store_path) as replica:
        await furnish(replica, node)
        folded = summarise(await load(replica, node.circle), "Garden", me, FAR_FUTURE)
        report = await refresh_digests(replica)
        assert (report.checked, report.folded, report.stored, report.moved) == (1, 1, 1, 0)
        await assert_fresh(replica, node.circle)
        again = await refresh_digests(replica)  # nothing changed: a stamp compare only
        assert (again.checked, again.folded, again.stored) == (1, 0, 0)
    no_fold(monkeypatch)  # the next TUI start reads the digest
    async with Replica.open(node.home.store_path) as replica:
        shown = await SummaryCache().summary(replica, node.circle, "Garden", me, FAR_FUTURE)
    assert shown == folded


async def test_a_refresh_of_named_circles_skips_the_others(node: Node) -> None:
    async with Replica.open(node.home.store_path) as replica:
        report = await refresh_digests(replica, [b"\x01" * 16])  # not held here
        assert report.checked == 0
        assert await DigestTable(replica.store).get(node.circle) is None
        report = await refresh_digests(replica, [node.circle])
        assert report.stored == 1


async def test_a_write_during_the_fold_leaves_nothing_stale(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bob consents through another connection while the refresh folds: the stamp read
    after the fold differs, so nothing is stored; the next refresh stores the new state."""
    real_load = digest_module.load
    async with Replica.open(node.home.store_path) as replica:
        open_pid, _ = await furnish(replica, node)
        raced = []

        async def racing_load(r: Replica, circle: bytes) -> Any:
            folded = await real_load(r, circle)  # the fold reads the old state ...
            if not raced:
                raced.append(True)  # ... and then another process commits
                async with Replica.open(node.home.store_path) as other:
                    await take_position(other, node.bob, open_pid.hex(), "consent", "")
            return folded

        monkeypatch.setattr(digest_module, "load", racing_load)
        report = await refresh_digests(replica)
        assert (report.folded, report.moved, report.stored) == (1, 1, 0)
        assert await DigestTable(replica.store).get(node.circle) is None
        report = await refresh_digests(replica)
        assert report.stored == 1
        await assert_fresh(replica, node.circle)
        stored = await DigestTable(replica.store).get(node.circle)
        assert stored is not None
        digest = decode(stored[1])
        assert digest is not None
        waiting = {item.proposal: item.waiting for item in digest.open}
        assert node.bob.public not in waiting[open_pid]  # bob's consent is in it


async def test_a_stale_row_is_replaced(node: Node) -> None:
    """A digest stored before a new op is folded again by the next refresh."""
    async with Replica.open(node.home.store_path) as replica:
        open_pid, _ = await furnish(replica, node)
        await refresh_digests(replica)
        before = await DigestTable(replica.store).get(node.circle)
        await take_position(replica, node.alice_key, open_pid.hex(), "consent", "")
        report = await refresh_digests(replica)
        assert (report.folded, report.stored) == (1, 1)
        after = await DigestTable(replica.store).get(node.circle)
        assert before != after
        await assert_fresh(replica, node.circle)


def child(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.digest_refresh", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_child_process_refreshes_and_reports(node: Node) -> None:
    async with Replica.open(node.home.store_path) as replica:
        await furnish(replica, node)
    done = child(str(node.home.store_path), node.circle.hex())
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stored"] == 1
    async with Replica.open(node.home.store_path) as replica:
        await assert_fresh(replica, node.circle)
    again = child(str(node.home.store_path))  # every circle: all fresh already
    assert json.loads(again.stdout)["folded"] == 0


def test_the_child_refuses_bad_arguments_cleanly(tmp_path: Any) -> None:
    missing = child(str(tmp_path / "nothing.db"))
    assert missing.returncode == 1
    assert "no store" in missing.stderr
    assert not (tmp_path / "nothing.db").exists()  # nothing created
    bad = child(str(tmp_path / "nothing.db"), "zz")
    assert bad.returncode == 2
    assert "Traceback" not in missing.stderr + bad.stderr
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    refused = child(str(junk))
    assert refused.returncode == 1
    assert "cannot refresh" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert junk.read_bytes() == b"not a database" * 100
