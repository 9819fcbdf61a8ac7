"""The TUI's read side without a UI: the circle tree, summaries, live change detection."""

from __future__ import annotations

from tui_kit import Node

from node.domain.auth import Level
from node.domain.governance.records import ProposalRec
from node.governance import amend, create_proposal, find_proposal
from node.local import create_circle
from node.replica import Replica
from node.tui.data import CircleItem, SummaryCache, circle_tree, load_circle_items, today_iso
from node.tui.live import DataVersion
from node.tui.proposal_data import version_diff


def item(name: str, parent: str | None) -> CircleItem:
    def key(text: str) -> bytes:
        return text.encode().ljust(16, b".")

    return CircleItem(key(name), name, key(parent) if parent else None, Level.WRITE)


def test_circle_tree_puts_children_under_held_parents() -> None:
    """A circle hangs under its parent when held here; otherwise it is a root."""
    items = [item("top", None), item("a", "top"), item("b", "a"), item("partner", "elsewhere")]
    roots, children = circle_tree(items)
    assert [r.name for r in roots] == ["top", "partner"]
    assert [c.name for c in children[items[0].circle]] == ["a"]
    assert [c.name for c in children[items[1].circle]] == ["b"]


async def test_circle_items_read_the_genesis_parent(node: Node) -> None:
    """A sub-circle made with a parent is listed with that parent and the member's level."""
    async with Replica.open(node.home.store_path) as replica:
        sub = await create_circle(
            replica,
            node.alice_key,
            name="Watering",
            creator_name="alice",
            home=node.home.node_public,
            parent=node.circle,
        )
        items = await load_circle_items(replica, node.alice.member)
    by_id = {i.circle: i for i in items}
    assert by_id[sub].parent == node.circle
    assert by_id[sub].my_level is Level.MANAGE
    assert by_id[node.circle].parent is None


async def test_summary_cache_reuses_until_the_circle_changes(node: Node) -> None:
    """A summary is reused while the circle's chains stand still, rebuilt after a new op."""
    cache = SummaryCache()
    me, today = node.alice.member, today_iso()
    async with Replica.open(node.home.store_path) as replica:
        first = await cache.summary(replica, node.circle, "Garden", me, today)
        assert await cache.summary(replica, node.circle, "Garden", me, today) is first
        body = ProposalRec(title="Compost", driver="waste", text="Build bins.")
        await create_proposal(replica, node.bob, node.circle, body)
        after = await cache.summary(replica, node.circle, "Garden", me, today)
    assert after is not first
    assert [i.title for i in after.inbox] == ["Compost"]
    assert after.open_proposals == 1


async def test_data_version_sees_other_connections_only(node: Node) -> None:
    """Another connection's commit is noticed once; our own commits are not."""
    path = node.home.store_path
    async with Replica.open(path) as mine, Replica.open(path) as other:
        watch = DataVersion(mine.store)
        assert not await watch.changed()  # the first look only takes note
        body = ProposalRec(title="Ours", driver="d", text="t")
        await create_proposal(mine, node.alice_key, node.circle, body)
        assert not await watch.changed()
        body = ProposalRec(title="Theirs", driver="d", text="t")
        await create_proposal(other, node.bob, node.circle, body)
        assert await watch.changed()
        assert not await watch.changed()


async def test_version_diff_against_the_amended_version(node: Node) -> None:
    """The diff of a new version is against the version it amends; none for version 0."""
    async with Replica.open(node.home.store_path) as replica:
        body = ProposalRec(title="Hours", driver="d", text="Open at 8.\nClose at 6.")
        pid, _ = await create_proposal(replica, node.bob, node.circle, body)
        await amend(replica, node.bob, "Open at 9.\nClose at 6.", pid.hex())
        _cg, proposal = await find_proposal(replica, pid.hex())
    first, second = proposal.ordered_versions()
    assert version_diff(proposal, first) == []
    diff = version_diff(proposal, second)
    assert "-Open at 8." in diff
    assert "+Open at 9." in diff
    assert " Close at 6." in diff
