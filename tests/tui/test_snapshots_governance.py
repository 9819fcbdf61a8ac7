"""Snapshots of the elections, Angels Den, ideas and join-request screens at 80x24 and
120x40 (pytest-textual-snapshot; `--snapshot-update` rewrites them, after a look).

The stores are built fresh for every run, so a snapshot shows only what is fixed: names,
texts, amounts and days; never an id or a record time. The screens are pushed with a
fixed ``today`` where they judge terms."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from gov_kit import (
    bob_on_election,
    carol_asks_to_join,
    make_den,
    make_ideas,
    make_project,
    nominate,
    second_pitch,
    start_election,
)
from textual.pilot import Pilot
from tui_kit import Node, make_node, unlock, wait_until

from node.elections import propose
from node.replica import Replica
from node.tui.app import CircleNodeApp
from node.tui.screens.base import DataScreen
from node.tui.screens.den import DenScreen
from node.tui.screens.elections import ElectionsScreen
from node.tui.screens.ideas import IdeasScreen
from node.tui.screens.joins import JoinsScreen
from node.tui.session import Session

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
TODAY = "2030-01-01"
Snap = Callable[..., bool]


def build(tmp_path: Path, fill: Callable[[Node], Awaitable[Any]]) -> Node:
    async def run() -> Node:
        node = await make_node(tmp_path / "home")
        await fill(node)
        return node

    return asyncio.run(run())


def showing(
    make: Callable[[Session, Node], DataScreen], *keys: str
) -> Callable[[Node], Callable[[Pilot[None]], Awaitable[None]]]:
    """A ``run_before`` that unlocks, pushes the screen ``make`` builds and waits for its
    data, then presses ``keys``."""

    def for_node(node: Node) -> Callable[[Pilot[None]], Awaitable[None]]:
        async def run_before(pilot: Pilot[None]) -> None:
            await unlock(pilot)
            session = pilot.app.screen.session  # type: ignore[attr-defined]
            screen = make(session, node)
            await pilot.app.push_screen(screen)
            await wait_until(pilot, lambda: screen.loaded, "the screen's data")
            for key in keys:
                await pilot.press(key)
            await pilot.pause()

        return run_before

    return for_node


async def election_in_consent(node: Node) -> None:
    """The leader's term agreed; alice nominates bob, bob nominates himself; alice
    proposes bob and consents; bob has no position yet."""
    eid = await start_election(node, TODAY)
    await nominate(node, node.alice_key, eid, "bob", "He knows every bed")
    await nominate(node, node.bob, eid, "bob", "I can give Tuesdays")
    async with Replica.open(node.home.store_path) as replica:
        await propose(replica, node.alice_key, eid.hex(), "bob")
    await bob_on_election(node, eid, "concern")


async def den_with_project(node: Node) -> None:
    den = await make_den(node)
    await make_project(node, den)
    await second_pitch(node, den)


@pytest.mark.parametrize("size", SIZES)
def test_elections_screen(snap_compare: Snap, tmp_path: Path, size: tuple[int, int]) -> None:
    """You should see the Elections screen of Garden: the roles leader and representative
    with no keeper, one election of a leader until 2099-12-31 in phase consent, round 1;
    below it the role and term agreed by alice and bob, round 1 (proposed) with alice and
    bob both nominating bob and their reasons, tally bob 2, and the proposal selecting bob
    with bob's concern and alice waiting."""
    node = build(tmp_path, election_in_consent)
    run_before = showing(lambda s, n: ElectionsScreen(s, n.circle, TODAY))(node)
    app = CircleNodeApp(node.home)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_den_screen_pitch(snap_compare: Snap, tmp_path: Path, size: tuple[int, int]) -> None:
    """You should see the Angels Den: my pledges (600.00 GBP to Solar roof, confirmed),
    the list of two pitches (Compost bins 0.00/300.00, Solar roof 1,000.00/1,000.00 in
    green) and one project; Compost bins highlighted, its funding bar half yellow (bob's
    150.00 pledged, not confirmed), needed 300.00 of 300.00 GBP, its business case and
    bob's pledge with its condition."""
    node = build(tmp_path, den_with_project)
    run_before = showing(lambda s, n: DenScreen(s))(node)
    app = CircleNodeApp(node.home)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_den_screen_project(snap_compare: Snap, tmp_path: Path, size: tuple[int, int]) -> None:
    """You should see the Angels Den with the project Solar roof highlighted: its team
    (alice for requirements in Garden, bob for investment_benefits in Investors), and the
    measure Power made (target 300 kWh, latest 340, met) plotted: a yellow target line,
    two red points below it and a green one above, from 2030-06-01 to 2030-08-01; at
    120x40 also two planned milestones by due day (Order the panels, then Fit the
    panels) and the lesson."""
    node = build(tmp_path, den_with_project)
    run_before = showing(lambda s, n: DenScreen(s), "down", "down")(node)
    app = CircleNodeApp(node.home)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_ideas_screen(snap_compare: Snap, tmp_path: Path, size: tuple[int, int]) -> None:
    """You should see the Ideas screen of Garden: two open entries, the idea "A rain tank
    by the shed" (1 note, a plan) highlighted and the driver "The beds dry out in July";
    below, the idea's outline plan (scope, resources, cost 400.00 - 650.00 GBP, by alice)
    and bob's co-design note."""
    node = build(tmp_path, make_ideas)
    run_before = showing(lambda s, n: IdeasScreen(s, n.circle))(node)
    app = CircleNodeApp(node.home)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_joins_screen(snap_compare: Snap, tmp_path: Path, size: tuple[int, int]) -> None:
    """You should see the Join requests screen of Garden: carol asks to join as an
    investor, status open, recorded by alice; below, her member id (03a107bf), her
    message, no consent proposal yet and the hint that p opens one."""
    node = build(tmp_path, carol_asks_to_join)
    run_before = showing(lambda s, n: JoinsScreen(s, n.circle))(node)
    app = CircleNodeApp(node.home)
    assert snap_compare(app, terminal_size=size, run_before=run_before)
