"""The governance screens' parts: money in and out, the funding bar and the measure plot,
refusals in the TUI's words, names shown as typed, and the palette's entries."""

from __future__ import annotations

import pytest
from gov_kit import make_den
from textual.pilot import Pilot
from tui_kit import Node, Notes, loaded, screen_text, unlock, wait_until

from node.domain.auth import Level
from node.domain.governance.funding import funding_status
from node.errors import ConfigError
from node.home import MemberEntry
from node.ideas import commit, draft_share
from node.local import add_member
from node.replica import Replica
from node.tui.actions import new_circle
from node.tui.app import CircleNodeApp
from node.tui.gov_actions import minor_units, money, tui_words
from node.tui.screens.den import DenScreen
from node.tui.screens.elections import ElectionsScreen
from node.tui.screens.gov_forms import FieldsScreen
from node.tui.screens.ideas import IdeasScreen
from node.tui.widgets.plots import (
    BAR_EMPTY,
    BAR_FULL,
    BAR_PART,
    POINT,
    TARGET,
    funding_bar,
    measure_plot,
)


@pytest.mark.parametrize(
    ("typed", "minor"), [("250", 25_000), ("250.50", 25_050), ("1,000", 100_000), ("0.01", 1)]
)
def test_amounts_are_typed_in_the_currency_units(typed: str, minor: int) -> None:
    assert minor_units(typed) == minor


@pytest.mark.parametrize(
    "typed", ["", "abc", "0", "-3", "1.005", "1e20", "NaN", "sNaN", "-Infinity"]
)
def test_bad_amounts_are_refused(typed: str) -> None:
    with pytest.raises(ConfigError):
        minor_units(typed)


def test_money_shows_minor_units_in_the_currency_units() -> None:
    assert [money(v) for v in (0, 5, 25_050, 100_000_000)] == [
        "0.00",
        "0.05",
        "250.50",
        "1,000,000.00",
    ]


def test_funding_bar_shows_confirmed_pledged_and_needed() -> None:
    """1,000 costs, 400 confirmed, 100 more pledged: 8 + 2 + 10 cells of 20."""
    status = funding_status(
        100_000, "GBP", [(40_000, "GBP", "confirmed"), (10_000, "GBP", "pledged")]
    )
    text = funding_bar(status, 20, money).plain
    bar = text[1 : text.index("]")]
    assert (bar.count(BAR_FULL), bar.count(BAR_PART), bar.count(BAR_EMPTY)) == (8, 2, 10)
    assert "pledged 500.00 · confirmed 400.00 · needed 600.00 of 1,000.00 GBP" in text
    assert "FUNDED" not in text
    funded = funding_status(100_000, "GBP", [(100_000, "GBP", "fulfilled")])
    full = funding_bar(funded, 20, money).plain
    assert full.startswith("[" + BAR_FULL * 20 + "]")
    assert "FUNDED" in full


def test_measure_plot_puts_readings_against_the_target_line() -> None:
    readings = [("2030-06-01", 120), ("2030-07-01", 250), ("2030-08-01", 340)]
    lines = measure_plot(readings, 300, width=30, height=5).plain.split("\n")
    grid = [line.split("│", 1)[1] for line in lines[:5]]
    assert lines[0].startswith("340")
    assert grid[0].rstrip().endswith(POINT)
    assert lines[1].startswith("300")
    assert set(grid[1]) == {TARGET}
    assert lines[4].startswith("120")
    assert grid[4].startswith(POINT)
    assert sum(row.count(POINT) for row in grid) == 3
    assert "2030-06-01" in lines[-1]
    assert lines[-1].rstrip().endswith("2030-08-01")
    assert "no readings yet" in measure_plot([], 10).plain


def test_cli_hints_are_reworded() -> None:
    assert tui_words("only members with write level nominate; act as one with --as") == (
        "only members with write level nominate"
    )
    assert tui_words("say why the selection failed: --reason '...'") == (
        "say why the selection failed"
    )


async def kitchen_where_alice_reads(node: Node) -> bytes:
    """Bob's circle Kitchen, alice a read member."""
    bob = MemberEntry(node.bob.public, "bob", 0)
    async with Replica.open(node.home.store_path) as replica:
        kitchen = await new_circle(replica, node.home, bob, node.bob, "Kitchen", "Cook")
        await add_member(
            replica,
            node.bob,
            kitchen,
            member=node.alice.member,
            name="alice",
            level=Level.READ,
            home=node.home.node_public,
        )
    return kitchen


async def test_a_read_member_is_told_what_to_do(node: Node) -> None:
    """Alice only reads in Kitchen: starting an election there is a notification naming
    her and what to do, and nothing is signed."""
    kitchen = await kitchen_where_alice_reads(node)
    app = CircleNodeApp(node.home)
    notes = Notes()
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await unlock(pilot)
        session = app.screen.session  # type: ignore[attr-defined]
        await app.push_screen(ElectionsScreen(session, kitchen))
        await wait_until(pilot, lambda: loaded(app, ElectionsScreen), "the elections")
        await pilot.press("s")
        assert isinstance(app.screen, FieldsScreen)
        await pilot.press(*"leader", "enter", "enter")
        want = ("write level", "you are alice", "managers")
        await wait_until(pilot, lambda: notes.any(*want), "the refusal")
        assert not any("Traceback" in n for n in notes.seen)
        screen = app.screen
        assert isinstance(screen, ElectionsScreen)
        assert screen.data is not None
        assert screen.data.elections == []


async def test_names_are_shown_as_typed(node: Node) -> None:
    """An idea that looks like markup is listed and shown as typed."""
    text = "[b]Bees[/b] for the [red]orchard"
    async with Replica.open(node.home.store_path) as replica:
        draft = await draft_share(replica, node.alice.member, node.circle.hex(), text=text)
        await commit(replica, node.alice_key, draft)
    app = CircleNodeApp(node.home)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        session = app.screen.session  # type: ignore[attr-defined]
        await app.push_screen(IdeasScreen(session, node.circle))
        await wait_until(pilot, lambda: loaded(app, IdeasScreen), "the ideas")
        assert screen_text(app).count(text) == 2  # in the list and in the detail


async def palette(pilot: Pilot[None], words: str, hit: str) -> None:
    await pilot.press("ctrl+p")
    await pilot.press(*words)
    await wait_until(pilot, lambda: hit in screen_text(pilot.app), hit)
    await pilot.press("enter")


async def test_palette_opens_the_governance_screens(node: Node) -> None:
    """ctrl+p offers "Elections of Garden" and "Angels Den and projects"."""
    await make_den(node)
    app = CircleNodeApp(node.home)
    async with app.run_test(size=(80, 24)) as pilot:
        await unlock(pilot)
        await palette(pilot, "elections garden", "Elections of Garden")
        await wait_until(pilot, lambda: loaded(app, ElectionsScreen), "the elections")
        await palette(pilot, "angels den", "Angels Den and projects")
        await wait_until(pilot, lambda: loaded(app, DenScreen), "the den")
        assert "Solar roof" in screen_text(app)
