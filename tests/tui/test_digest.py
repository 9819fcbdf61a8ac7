"""The dashboard's governance digests: stored in the store, read back by the next start-up,
and never shown once the circle moved on (new ops, demotions, damage)."""

from __future__ import annotations

import pytest
from tui_kit import Node

import node.digests as digest_module
from node.digests import FORMAT, decode, encode, stamp_of
from node.domain.governance.records import ProposalRec
from node.governance import create_proposal, load, take_position
from node.replica import Replica
from node.store.digests import DigestTable
from node.tui.data import SummaryCache, summarise

FAR_FUTURE = "2999-01-01"  # every agreement's review is overdue then


async def furnish(replica: Replica, node: Node) -> tuple[bytes, bytes]:
    """One open proposal awaiting alice, one agreed (bob and alice consent)."""
    body = ProposalRec(title="Water the beds", driver="dry", text="Water daily.")
    open_pid, _ = await create_proposal(replica, node.bob, node.circle, body)
    body = ProposalRec(title="Buy hoses", driver="-", text="Two hoses.", review_date="2030-01-01")
    agreed, _ = await create_proposal(replica, node.bob, node.circle, body)
    await take_position(replica, node.bob, agreed.hex(), "consent", "")
    await take_position(replica, node.alice_key, agreed.hex(), "consent", "")
    return open_pid, agreed


def no_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(replica: Replica, circle: bytes) -> None:
        raise AssertionError("folded a circle whose stored digest was fresh")

    monkeypatch.setattr(digest_module, "load", refuse)


async def test_a_new_start_reads_the_stored_digest_without_folding(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first summary folds and stores the digest; a fresh cache on a fresh replica (the
    next start-up) gets the same summary from the store alone."""
    me = node.alice.member
    async with Replica.open(node.home.store_path) as replica:
        open_pid, agreed = await furnish(replica, node)
        cache = SummaryCache()
        first = await cache.summary(replica, node.circle, "Garden", me, FAR_FUTURE)
        assert await DigestTable(replica.store).get(node.circle) is None  # not before save
        await cache.save(replica)
        stored = await DigestTable(replica.store).get(node.circle)
        assert stored is not None
        assert stored[0] == await stamp_of(replica, node.circle)
    assert [(i.kind, i.proposal) for i in first.inbox] == [
        ("position", open_pid),
        ("review", agreed),
    ]
    assert [d.proposal for d in first.decisions] == [agreed]
    no_fold(monkeypatch)
    async with Replica.open(node.home.store_path) as replica:
        again = await SummaryCache().summary(replica, node.circle, "Garden", me, FAR_FUTURE)
    assert again == first


async def test_the_digest_matches_a_fresh_fold_for_each_member_and_day(node: Node) -> None:
    """One stored digest serves every member and day: the same as folding now."""
    async with Replica.open(node.home.store_path) as replica:
        await furnish(replica, node)
        cg = await load(replica, node.circle)
        for me in (node.alice.member, node.bob.public):
            for today in ("2029-12-31", "2030-01-02"):
                cached = await SummaryCache().summary(replica, node.circle, "Garden", me, today)
                assert cached == summarise(cg, "Garden", me, today)
    # the review of "Buy hoses" (2030-01-01) is due only once that day has passed
    before = summarise(cg, "Garden", node.alice.member, "2029-12-31")
    after = summarise(cg, "Garden", node.alice.member, "2030-01-02")
    assert [i.kind for i in before.inbox] == ["position"]
    assert [i.kind for i in after.inbox] == ["position", "review"]


async def test_an_op_from_another_process_makes_the_stored_digest_stale(node: Node) -> None:
    """Bob consents through his own connection: the stored digest no longer matches the
    store, so the next start-up shows the proposal agreed, never the old open state."""
    me = node.alice.member
    async with Replica.open(node.home.store_path) as replica:
        open_pid, _ = await furnish(replica, node)
        cache = SummaryCache()
        await cache.summary(replica, node.circle, "Garden", me, FAR_FUTURE)
        await cache.save(replica)
        async with Replica.open(node.home.store_path) as other:
            await take_position(other, node.bob, open_pid.hex(), "consent", "")
            await take_position(other, node.alice_key, open_pid.hex(), "consent", "")
        after = await SummaryCache().summary(replica, node.circle, "Garden", me, FAR_FUTURE)
    assert open_pid in [d.proposal for d in after.decisions]
    assert after.open_proposals == 0
    assert all(i.kind == "review" for i in after.inbox)


async def test_a_damaged_or_foreign_row_is_refolded(node: Node) -> None:
    """A row with the right stamp but bytes that do not decode (or another format) is
    ignored and replaced by a fresh fold."""
    me = node.alice.member
    async with Replica.open(node.home.store_path) as replica:
        await furnish(replica, node)
        good = await SummaryCache().summary(replica, node.circle, "Garden", me, FAR_FUTURE)
        table = DigestTable(replica.store)
        stamp = await stamp_of(replica, node.circle)
        for body in (b"\xff\x00garbage", encode(digest_module.Digest(FORMAT + 1, 0, [], [], []))):
            await table.put(node.circle, stamp, body)
            assert decode(body) is None
            cache = SummaryCache()
            again = await cache.summary(replica, node.circle, "Garden", me, FAR_FUTURE)
            assert again == good
            await cache.save(replica)
            stored = await table.get(node.circle)
            assert stored is not None
            assert decode(stored[1]) is not None


async def test_a_restart_after_another_process_decided_shows_it_agreed(node: Node) -> None:
    """The TUI stores digests on its first start; the proposal then gets agreed from
    another process; the next start shows it under Decisions and not in the inbox."""
    from textual.widgets import DataTable
    from tui_kit import unlock

    from node.tui.app import CircleNodeApp
    from node.tui.session import Options

    async with Replica.open(node.home.store_path) as replica:
        open_pid, _ = await furnish(replica, node)

    def rows(app: CircleNodeApp, table: str) -> list[str]:
        found = app.screen.query_one(table, DataTable)
        return [str(found.get_row(key)[-1]) for key in found.rows]

    app = CircleNodeApp(node.home, Options(lan=False))
    async with app.run_test(size=(100, 30)) as pilot:
        await unlock(pilot)
        assert "Water the beds" in rows(app, "#inbox-table")
        await app.workers.wait_for_complete()  # the load ends by storing the digests
    async with Replica.open(node.home.store_path) as replica:
        assert await DigestTable(replica.store).get(node.circle) is not None
        await take_position(replica, node.bob, open_pid.hex(), "consent", "")
        await take_position(replica, node.alice_key, open_pid.hex(), "consent", "")
    app = CircleNodeApp(node.home, Options(lan=False))
    async with app.run_test(size=(100, 30)) as pilot:
        await unlock(pilot)
        assert "Water the beds" not in rows(app, "#inbox-table")
        assert "Water the beds" in rows(app, "#decisions-table")
