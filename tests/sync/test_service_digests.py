"""A running node keeps the governance digests of the circles it receives fresh: real
services on loopback, real SQLite files, the real refresh child process. Waits poll the
store with a deadline; nothing asserts on timings."""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Awaitable, Callable

import pytest
from test_service import Node, config, converged, nodes, peer, shared_circle, until

from node.digest_refresh import DigestConfig
from node.digests import decode, digest_of, stamp_of
from node.domain.governance.records import ProposalRec
from node.governance import create_proposal, load
from node.replica import Replica
from node.service import NodeService, ServiceConfig
from node.store.digests import DigestTable

__all__ = ["nodes"]  # the fixture, shared with test_service

FAST = DigestConfig(quiet=0.2, max_wait=5.0, poll=0.1, retry=0.5)


def refreshing() -> ServiceConfig:
    return dataclasses.replace(config(), digests=FAST)


def fresh_digest(node: Node, circle: bytes) -> Callable[[], Awaitable[bool]]:
    """The stored digest of ``circle`` carries the store's stamp now and equals a fold."""

    async def check() -> bool:
        await node.replica.refresh()
        stored = await DigestTable(node.replica.store).get(circle)
        if stored is None or stored[0] != await stamp_of(node.replica, circle):
            return False
        return decode(stored[1]) == digest_of(await load(node.replica, circle))

    return check


async def propose(node: Node, circle: bytes, title: str) -> bytes:
    body = ProposalRec(title=title, driver="a need", text=f"{title}, for three months.")
    pid, _ = await create_proposal(node.replica, node.member, circle, body)
    return pid


async def open_titles(node: Node, circle: bytes) -> list[str]:
    stored = await DigestTable(node.replica.store).get(circle)
    assert stored is not None
    digest = decode(stored[1])
    assert digest is not None
    return sorted(item.title for item in digest.open)


async def test_serve_refreshes_the_digest_of_a_circle_it_received(nodes: list[Node]) -> None:
    """B serves with the refresher; A syncs a circle with a proposal to B, then pushes a
    second proposal live: each time B's digest of the circle catches up with its store."""
    a, b, _ = nodes
    circle = await shared_circle(a, b)
    await propose(a, circle, "Water the beds")
    async with NodeService(b.replica, b.key, refreshing()) as sb:
        assert sb.server is not None
        assert sb.digests is not None
        await peer(a, sb.server.url)
        async with NodeService(a.replica, a.key, config()) as sa:
            await until(converged(circle, a, b))
            await until(fresh_digest(b, circle), within=30)
            assert await open_titles(b, circle) == ["Water the beds"]
            await until(lambda: _synced(sa))
            await propose(a, circle, "Buy hoses")  # pushed live to B
            await until(converged(circle, a, b))
            await until(fresh_digest(b, circle), within=30)
            assert await open_titles(b, circle) == ["Buy hoses", "Water the beds"]
        assert sb.failure is None
    # A ran without a refresher: it stored no digest (the TUI would fold there)
    assert await DigestTable(a.replica.store).get(circle) is None


async def test_serve_refreshes_what_another_process_wrote(nodes: list[Node]) -> None:
    """Ops written to B's store while it serves (the CLI, say) get a fresh digest too."""
    _, b, _ = nodes
    circle = await shared_circle(b)
    async with NodeService(b.replica, b.key, refreshing()) as sb:
        await until(fresh_digest(b, circle), within=30)  # the start-up check
        async with Replica.open(b.path) as other:
            body = ProposalRec(title="Mend the fence", driver="-", text="Mend it.")
            await create_proposal(other, b.member, circle, body)
        await until(fresh_digest(b, circle), within=30)
        assert await open_titles(b, circle) == ["Mend the fence"]
        assert sb.failure is None


async def test_stopping_serve_during_a_refresh_is_clean(nodes: list[Node]) -> None:
    """Stop the service while its refresh child runs: the child is ended and waited for,
    the service reports no failure, and the store holds nothing stale or half-written."""
    _, b, _ = nodes
    circle = await shared_circle(b)
    await propose(b, circle, "Water the beds")
    instant = dataclasses.replace(FAST, quiet=0.0, poll=0.01)
    service = NodeService(b.replica, b.key, dataclasses.replace(config(), digests=instant))
    async with service:
        assert service.digests is not None
        await until(_started(service), within=10)
        child = service.digests.child
    assert service.failure is None
    assert child is not None  # caught running: the child takes a while to start up
    assert child.returncode is not None  # ended and waited for, not orphaned
    assert await b.replica.store.integrity_check() == []
    stored = await DigestTable(b.replica.store).get(circle)
    if stored is not None:  # the child may have finished first: then it must be fresh
        assert await fresh_digest(b, circle)()


def _started(service: NodeService) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        assert service.digests is not None
        return service.digests.started.is_set()

    return check


async def _synced(service: NodeService) -> bool:
    return any(s.synced.is_set() for s in service.sessions)


async def test_a_failed_refresh_is_logged_and_the_node_runs_on(
    nodes: list[Node], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refresh child fails (a Python that exits 1 at once), then cannot even start:
    B logs both, keeps serving and writing, and retries; its store is untouched."""
    _, b, _ = nodes
    circle = await shared_circle(b)
    caplog.set_level(logging.WARNING, logger="node.digest_refresh")

    def logged(text: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return any(text in r.getMessage() for r in caplog.records)

        return check

    monkeypatch.setattr(sys, "executable", "/bin/false")
    async with NodeService(b.replica, b.key, refreshing()) as sb:
        await until(logged("digest refresh failed (exit 1)"), within=30)
        monkeypatch.setattr(sys, "executable", str(b.path.parent / "no-such-python"))
        await until(logged("cannot start the governance digest refresh"), within=30)
        await propose(b, circle, "Still writable")
        assert sb.failure is None
        assert not sb.failed.is_set()
    assert await DigestTable(b.replica.store).get(circle) is None
