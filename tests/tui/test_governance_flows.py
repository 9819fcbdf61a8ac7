"""Proposals through the TUI: create, positions from two members, objection and amendment,
and changes another process makes showing up on the open screen."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from asyncio.subprocess import PIPE

from tui_kit import PASSPHRASE, Node, loaded, screen_text, type_text, unlock, wait_until

from node.domain.governance.records import ProposalRec
from node.governance import create_proposal, load, take_position
from node.replica import Replica
from node.tui.app import CircleNodeApp
from node.tui.screens.circle import CircleScreen
from node.tui.screens.dashboard import DashboardScreen
from node.tui.screens.forms import AmendScreen, NewProposalScreen, ReasonScreen
from node.tui.screens.proposal import ProposalScreen
from node.tui.widgets.tables import InboxTable


async def bob_takes(node: Node, proposal: bytes, position: str, reason: str = "") -> str:
    """Bob records a position through his own connection to the store, as the CLI would."""
    async with Replica.open(node.home.store_path) as replica:
        outcome = await take_position(replica, node.bob, proposal.hex(), position, reason)
    return outcome.state


async def bob_proposes(node: Node, title: str) -> bytes:
    async with Replica.open(node.home.store_path) as replica:
        body = ProposalRec(title=title, driver="the shed leaks", text="Fix the roof in May.")
        pid, _version = await create_proposal(replica, node.bob, node.circle, body)
    return pid


def shown(app: CircleNodeApp, *words: str) -> bool:
    text = screen_text(app)
    return all(word in text for word in words)


async def open_garden(pilot: object, app: CircleNodeApp) -> None:
    await unlock(pilot)  # type: ignore[arg-type]
    await pilot.press("enter")  # type: ignore[attr-defined]
    await wait_until(pilot, lambda: loaded(app, CircleScreen), "the circle")  # type: ignore[arg-type]


async def test_create_proposal_then_two_members_agree_verified(node: Node) -> None:
    """n creates a proposal; alice consents with c, bob from another connection; the
    open proposal screen turns agreed with the verified badge."""
    app = CircleNodeApp(node.home)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_garden(pilot, app)
        await pilot.press("n")
        assert isinstance(app.screen, NewProposalScreen)
        for text in ("Water the beds", "The beds dry out in July"):
            await type_text(pilot, text)
            await pilot.press("enter")
        await type_text(pilot, "Water every evening in summer.")
        await pilot.press("tab")
        await type_text(pilot, "2030-06-01")
        await pilot.press("enter")
        await wait_until(pilot, lambda: loaded(app, ProposalScreen), "the proposal")
        screen = app.screen
        assert isinstance(screen, ProposalScreen)
        assert screen.data is not None
        assert screen.data.review == "2030-06-01"
        await pilot.press("c")
        await wait_until(pilot, lambda: shown(app, "alice", "consent", "waiting"), "alice")
        assert await bob_takes(node, screen.proposal, "consent") == "agreed"
        await wait_until(pilot, lambda: shown(app, "VERIFIED", "agreed"), "badge")
        assert screen.data.verified


async def test_objection_with_reason_then_amendment_integrates_it(node: Node) -> None:
    """x asks a reason (required); a integrates the objection in a new version with a
    diff; consent on the new version from both members agrees it."""
    app = CircleNodeApp(node.home)
    pid = await bob_proposes(node, "Fix the roof")
    async with app.run_test(size=(80, 24)) as pilot:
        await open_garden(pilot, app)
        await pilot.press("enter")  # the only proposal
        await wait_until(pilot, lambda: loaded(app, ProposalScreen), "the proposal")
        await pilot.press("x")
        assert isinstance(app.screen, ReasonScreen)
        await pilot.press("enter")  # an empty reason is refused: the dialog stays
        assert isinstance(app.screen, ReasonScreen)
        await type_text(pilot, "May is nesting season")
        await pilot.press("enter")
        await wait_until(pilot, lambda: shown(app, "integrating", "(blocks)"), "integrating")
        await pilot.press("a")
        assert isinstance(app.screen, AmendScreen)
        app.screen.query_one("#amend-text").text = "Fix the roof in September."  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await wait_until(
            pilot, lambda: shown(app, "version 1", "+Fix the roof in September."), "v1"
        )
        await pilot.press("c")
        await wait_until(pilot, lambda: shown(app, "alice", "consent"), "alice's consent")
        assert await bob_takes(node, pid, "consent") == "agreed"
        await wait_until(pilot, lambda: shown(app, "VERIFIED"), "the verified badge")
    async with Replica.open(node.home.store_path) as replica:
        cg = await load(replica, node.circle)
        proposal = cg.gov.proposals[pid]
        assert cg.outcome(proposal).version.resolves  # the amendment names the objection


async def test_proposal_from_another_process_appears_on_the_dashboard(node: Node) -> None:
    """A proposal signed through another connection (the CLI) reaches the open
    dashboard's inbox within about a second."""
    app = CircleNodeApp(node.home)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        inbox = app.screen.query_one(InboxTable)
        assert inbox.row_count == 0
        await bob_proposes(node, "Buy a rain barrel")
        await wait_until(pilot, lambda: inbox.row_count == 1, "the inbox row", within=5.0)
        assert shown(app, "Buy a rain barrel", "Inbox (1)")
        await pilot.press("i", "enter")
        await wait_until(pilot, lambda: loaded(app, ProposalScreen), "the proposal")
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("escape")  # nothing below the dashboard: it stays
        assert isinstance(app.screen, DashboardScreen)


async def test_cli_in_another_process_reaches_the_open_dashboard(node: Node) -> None:
    """`circle-node proposal create` run as a separate process shows in the inbox within
    about a second of its exit."""
    app = CircleNodeApp(node.home)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        inbox = app.screen.query_one(InboxTable)
        env = {**os.environ, "CIRCLE_NODE_PASSPHRASE": PASSPHRASE}
        env.pop("CIRCLE_NODE_HOME", None)
        args = ["--home", str(node.home.path), "--as", "alice", "--json", "proposal", "create"]
        args += [node.circle.hex(), "--title", "Compost bins", "--driver", "d", "--text", "t"]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "node.cli", *args, env=env, stdout=PIPE, stderr=PIPE
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert json.loads(out)["circle"] == node.circle.hex()
        await wait_until(pilot, lambda: inbox.row_count == 1, "the row", within=5.0)
        assert shown(app, "Compost bins")
