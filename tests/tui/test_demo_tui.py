"""The demo's TUI: a federation built by `node.demo` (in process) opens in the real app on
the neighbourhood node, unlocks with the demo passphrase and shows the circles it holds."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from tui_kit import screen_text, unlock

from node.demo.federation import new_federation
from node.demo.layout import DEMO_PASSPHRASE, TUI_NODE, DemoDir
from node.demo.story import build_story
from node.tui.app import CircleNodeApp


async def test_the_demo_node_opens_in_the_tui_with_its_circles(tmp_path: Path) -> None:
    """You should see the dashboard of bob on the neighbourhood node, listing the Garden,
    the Repair Cafe, the top circle and the Angels Den."""
    demo = DemoDir(tmp_path / "demo")
    demo.start_building()
    async with new_federation(demo, DEMO_PASSPHRASE) as fed:
        circles = await build_story(fed, date.today())
        hosted = await fed.hosted()
    assert len(hosted[TUI_NODE]) == len(circles) == 5
    app = CircleNodeApp(demo.home(TUI_NODE))
    async with app.run_test(size=(120, 40)) as pilot:
        await unlock(pilot, DEMO_PASSPHRASE)
        text = screen_text(app)
    for name in ("Community Garden", "Repair Cafe", "Riverside Commons", "Angels Den"):
        assert name in text, text
