"""One ``circle-node demo`` session: build the federation (or resume a built one), start
its nodes, peer them, wait for convergence and verify; the caller then shows the TUI or
prints the summary, and :meth:`Session.close` stops the nodes.

Resuming: a ``built`` directory is only started again; one left ``building`` is rebuilt
(:mod:`node.demo.layout`). The build never uses the test-only fast KDF unless the caller's
environment sets it: demo keys are sealed like any node's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from typing import Any

from node.demo.federation import new_federation
from node.demo.layout import DemoDir, passphrase
from node.demo.run import (
    Running,
    check_alive,
    peer_up,
    start_nodes,
    stop_nodes,
    summary,
    verify_all,
    wait_converged,
)
from node.demo.story import build_story

Say = Callable[[str], None]


async def _build(demo: DemoDir, secret: str) -> dict[str, Any]:
    async with new_federation(demo, secret) as fed:
        circles = await build_story(fed, date.today())
        return {"circles": circles, "hosted": await fed.hosted()}


def prepare(demo: DemoDir, say: Say) -> dict[str, Any]:
    """The built federation's facts (circles, hosts): built now, or read back."""
    marker = demo.read()
    if marker is not None and marker["state"] == "built":
        say(f"Resuming the demo in {demo.path} (built earlier).")
        built: dict[str, Any] = marker["built"]
        return built
    if marker is not None:
        say("An earlier build of this demo was interrupted: building it again.")
    say(f"Building the demo federation in {demo.path} (three nodes, eight members) ...")
    demo.start_building()
    built = asyncio.run(_build(demo, passphrase()))
    demo.write("built", built)
    return built


class Session:
    """The running federation of one ``demo`` invocation."""

    def __init__(self, demo: DemoDir, say: Say) -> None:
        self.demo = demo
        self.say = say
        self.running: list[Running] = []

    def start(self, ports: list[int], limit: float) -> dict[str, Any]:
        """Build or resume, start and peer the nodes, wait to converge, verify: the
        summary (``ok`` true when they converged and every store verifies)."""
        built = prepare(self.demo, self.say)
        self.say("Starting the three nodes on 127.0.0.1 ...")
        self.running = start_nodes(self.demo, ports, passphrase())
        return asyncio.run(self._converge(built, limit))

    async def _converge(self, built: dict[str, Any], limit: float) -> dict[str, Any]:
        await peer_up(self.demo, self.running)
        self.say("Syncing until the nodes converge ...")
        is_converged, snaps = await wait_converged(
            self.demo, self.running, built.get("hosted", {}), limit
        )
        verified = await verify_all(self.demo)
        data = summary(self.running, snaps, verified, is_converged)
        data["dir"] = str(self.demo.path)
        return data

    def check_alive(self) -> None:
        check_alive(self.demo, self.running)

    def close(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL after a grace period); idempotent."""
        stop_nodes(self.running)
