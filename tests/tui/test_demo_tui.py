"""The demo's TUI: a federation built by `node.demo` (in process) holds proposals in every
state, and opens in the real app on the neighbourhood node, unlocks with the demo
passphrase and shows the circles it holds."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from tui_kit import screen_text, unlock

from node import governance
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
        replica = fed.nodes[TUI_NODE].replica
        states = {}
        for name in ("Community Garden", "Repair Cafe"):
            cg = await governance.load(replica, bytes.fromhex(circles[name]))
            states[name] = {
                p.body.title: cg.outcome(p).state
                for p in cg.gov.proposals.values()
                if p.body.election is None and not p.body.subject
            }
    assert len(hosted[TUI_NODE]) == len(circles) == 5
    assert states["Community Garden"] == {
        "Compost rota": "draft",
        "Lock the gate at dusk": "integrating",
        "Tool shed hours": "consent_round",
        "Raised beds on the school lot": "agreed",
    }
    assert states["Repair Cafe"] == {
        "Monthly repair evening": "agreed",
        "Buy a 3D printer": "deferred",
        "Charge a fee per repair": "withdrawn",
    }
    app = CircleNodeApp(demo.home(TUI_NODE))
    async with app.run_test(size=(120, 40)) as pilot:
        await unlock(pilot, DEMO_PASSPHRASE)
        text = screen_text(app)
    for name in ("Community Garden", "Repair Cafe", "Riverside Commons", "Angels Den"):
        assert name in text, text
