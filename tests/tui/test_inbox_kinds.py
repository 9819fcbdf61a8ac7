"""The dashboard inbox's nomination and pledge rows: computed in each circle's digest,
shown only to the member they wait on, gone once that member acted, and Enter on one opens
the elections screen or the Angels Den."""

from __future__ import annotations

from gov_kit import make_den, nominate, sign, start_election
from tui_kit import Node, loaded, unlock, wait_until

from node import funding
from node.digests import decode, digest_of
from node.governance import load, valid_records
from node.replica import Replica
from node.store.digests import DigestTable
from node.tui.app import CircleNodeApp
from node.tui.screens.dashboard import DashboardScreen
from node.tui.screens.den import DenScreen
from node.tui.screens.elections import ElectionsScreen
from node.tui.session import Options
from node.tui.widgets.tables import InboxTable


def inbox_rows(app: CircleNodeApp) -> list[tuple[str, str, str]]:
    table = app.screen.query_one(InboxTable)
    return [tuple(str(c) for c in table.get_row(key)) for key in table.rows]  # type: ignore[misc]


async def test_an_open_election_asks_me_to_nominate_until_i_do(node: Node) -> None:
    election = await start_election(node)
    app = CircleNodeApp(node.home, Options(lan=False))
    async with app.run_test(size=(100, 30)) as pilot:
        await unlock(pilot)
        await wait_until(
            pilot,
            lambda: ("nominate", "Garden", "leader election, round 1") in inbox_rows(app),
            "the nomination row",
        )
        await pilot.press("i", "enter")
        await wait_until(pilot, lambda: loaded(app, ElectionsScreen), "the elections")
        screen = app.screen
        assert isinstance(screen, ElectionsScreen)
        assert screen.circle == node.circle
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)

        await nominate(node, node.bob, election, "bob", "I know the beds")
        await app.workers.wait_for_complete()
        assert ("nominate", "Garden", "leader election, round 1") in inbox_rows(app)  # bob's
        await nominate(node, node.alice_key, election, "alice", "I keep the rota")
        await wait_until(
            pilot,
            lambda: not any(r[0] == "nominate" for r in inbox_rows(app)),
            "the nomination row to go",
            within=5.0,
        )
        await app.workers.wait_for_complete()
    async with Replica.open(node.home.store_path) as replica:
        cg = await load(replica, node.circle)
        digest = digest_of(cg, await valid_records(replica, node.circle))
        assert [n.waiting for n in digest.nominations] == [[]]
        stored = await DigestTable(replica.store).get(node.circle)
        assert stored is not None
        assert decode(stored[1]) == digest


async def test_my_unconfirmed_pledge_waits_in_my_inbox_until_confirmed(node: Node) -> None:
    den = await make_den(node)
    async with Replica.open(node.home.store_path) as replica:
        me = node.alice.member
        mine = await funding.draft_pledge(replica, me, den.pitch.hex(), 25_000, None, "")
        pledge = (await sign(replica, node.alice_key, mine))[:16]
        bobs = await funding.draft_pledge(replica, node.bob.public, den.pitch.hex(), 700, None, "")
        await sign(replica, node.bob, bobs)
    row = ("confirm pledge", "Investors", f"250.00 GBP to pitch {den.pitch.hex()[:8]}")
    app = CircleNodeApp(node.home, Options(lan=False))
    async with app.run_test(size=(100, 30)) as pilot:
        await unlock(pilot)
        await wait_until(pilot, lambda: row in inbox_rows(app), "the pledge row")
        assert [r for r in inbox_rows(app) if r[0] == "confirm pledge"] == [row]  # not bob's
        await pilot.press("i")
        table = app.screen.query_one(InboxTable)
        table.move_cursor(row=[r[0] for r in inbox_rows(app)].index("confirm pledge"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: loaded(app, DenScreen), "the den")
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)

        async with Replica.open(node.home.store_path) as replica:
            move = await funding.draft_pledge_move(replica, me, pledge.hex(), "confirmed")
            await sign(replica, node.alice_key, move)
        await wait_until(
            pilot, lambda: row not in inbox_rows(app), "the pledge row to go", within=5.0
        )
    async with Replica.open(node.home.store_path) as replica:
        raws = await valid_records(replica, den.den)
        digest = digest_of(await load(replica, den.den), raws)
        assert [p.member for p in digest.pledges] == [node.bob.public]  # his is unconfirmed
