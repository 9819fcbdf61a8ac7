"""The bundles screen under Pilot: export for another node, import it into that node's
home (asking for its node key, as the circle is sealed to it), with progress shown; a
tampered bundle is refused by name and changes nothing."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, ProgressBar
from tui_kit import PASSPHRASE, Node, Notes, loaded, make_node, type_text, unlock, wait_until

from node.domain.auth import Level
from node.local import add_member
from node.replica import Replica
from node.tui.app import CircleNodeApp
from node.tui.screens.bundles import BundlesScreen
from node.tui.screens.ops_forms import NodePassphraseScreen
from node.tui.session import Options


async def open_bundles(pilot: Pilot[None]) -> BundlesScreen:
    await unlock(pilot)
    await pilot.press("b")
    await wait_until(pilot, lambda: loaded(pilot.app, BundlesScreen), "the bundles screen")
    screen = pilot.app.screen
    assert isinstance(screen, BundlesScreen)
    return screen


async def fill(pilot: Pilot[None], field: str, text: str) -> None:
    pilot.app.screen.query_one(f"#{field}", Input).focus()
    await pilot.pause()
    await type_text(pilot, text)


async def give_node_passphrase(pilot: Pilot[None]) -> None:
    await wait_until(
        pilot, lambda: isinstance(pilot.app.screen, NodePassphraseScreen), "the key dialog"
    )
    await type_text(pilot, PASSPHRASE)
    await pilot.press("enter")


async def second_host(node: Node, tmp_path: Path) -> Node:
    """Another node's home, whose alice node's Garden lists as a member homed there (so
    that node may host Garden and a bundle --for it may carry it)."""
    other = await make_node(tmp_path / "other")
    async with Replica.open(node.home.store_path) as replica:
        await add_member(
            replica,
            node.alice_key,
            node.circle,
            member=other.alice.member,
            name="alice on the other node",
            level=Level.WRITE,
            home=other.home.node_public,
        )
    return other


async def heights(node: Node, circle: bytes) -> dict[bytes, int]:
    async with Replica.open(node.home.store_path) as replica:
        return await replica.store.heights_for(circle)


async def export_for(node: Node, target: Node, path: Path) -> Notes:
    notes = Notes()
    app = CircleNodeApp(node.home, Options(lan=False))
    async with app.run_test(size=(100, 30), message_hook=notes) as pilot:
        screen = await open_bundles(pilot)
        await fill(pilot, "export-path", str(path))
        await fill(pilot, "export-for", target.home.node_public.hex())
        await pilot.press("ctrl+s")
        await give_node_passphrase(pilot)
        await wait_until(pilot, lambda: notes.any("Wrote"), "the export", 20)
        bar = screen.query_one("#bundle-progress", ProgressBar)
        assert bar.total == 1  # one circle
        assert bar.progress == 1
    return notes


async def import_into(node: Node, path: Path, *, asks_key: bool) -> tuple[Notes, float | None]:
    notes = Notes()
    app = CircleNodeApp(node.home, Options(lan=False))
    async with app.run_test(size=(100, 30), message_hook=notes) as pilot:
        screen = await open_bundles(pilot)
        await pilot.press("ctrl+o")
        await type_text(pilot, str(path))
        await pilot.press("ctrl+s")
        if asks_key:
            await give_node_passphrase(pilot)
        await wait_until(pilot, lambda: not screen.busy and bool(screen.last), "the import", 20)
        bar = screen.query_one("#bundle-progress", ProgressBar)
        shown = bar.percentage if bar.display else None
    return notes, shown


async def test_export_then_import_into_a_second_home(node: Node, tmp_path: Path) -> None:
    """Alice's node exports Garden for node B; B's TUI imports it (unlocking its node key
    for the sealed genesis), the bar reaches 100%, and B then holds Garden whole. A second
    import adds nothing."""
    other = await second_host(node, tmp_path)
    path = tmp_path / "stick" / "garden.bundle"
    path.parent.mkdir()
    await export_for(node, other, path)
    assert path.stat().st_size > 0
    notes, shown = await import_into(other, path, asks_key=True)
    assert notes.any("added"), notes.seen
    assert not notes.any("Bundle problem")
    assert shown == 1.0
    assert await heights(other, node.circle) == await heights(node, node.circle)
    # a new app, so the node key is asked again: B holds Garden now, so it is not needed
    again, _ = await import_into(other, path, asks_key=False)
    assert again.any("added 0"), again.seen


async def test_a_tampered_bundle_is_refused_by_name_and_changes_nothing(
    node: Node, tmp_path: Path
) -> None:
    """One flipped byte inside the circle's section: the import names the circle and the
    problem, and the receiving store gains nothing."""
    other = await second_host(node, tmp_path)
    path = tmp_path / "garden.bundle"
    await export_for(node, other, path)
    data = bytearray(path.read_bytes())
    data[-40] ^= 0x01  # inside the last (only) section
    bad = tmp_path / "tampered.bundle"
    bad.write_bytes(bytes(data))
    notes, _ = await import_into(other, bad, asks_key=True)
    assert notes.any(node.circle.hex()[:8]), notes.seen
    assert await heights(other, node.circle) == {}


async def test_export_refuses_to_overwrite_and_names_missing_files(
    node: Node, tmp_path: Path
) -> None:
    """An existing target without "replace", a --for node that hosts none of the circles
    and a missing bundle are notifications that say what to do, before any key is asked
    for; nothing is written or read."""
    existing = tmp_path / "there.bundle"
    existing.write_bytes(b"keep me")
    notes = Notes()
    app = CircleNodeApp(node.home, Options(lan=False))
    async with app.run_test(size=(100, 30), message_hook=notes) as pilot:
        await open_bundles(pilot)
        await fill(pilot, "export-path", str(existing))
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: notes.any("already exists"), "the refusal")
        assert not isinstance(app.screen, NodePassphraseScreen)  # refused before any key
        app.screen.query_one("#export-path", Input).value = str(tmp_path / "new.bundle")
        await fill(pilot, "export-for", "ab" * 32)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: notes.any("hosts none of the circles"), "the refusal")
        assert not isinstance(app.screen, NodePassphraseScreen)
        assert not (tmp_path / "new.bundle").exists()
        await pilot.press("ctrl+o")
        await type_text(pilot, str(tmp_path / "missing.bundle"))
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: notes.any("no bundle at"), "the missing file")
    assert existing.read_bytes() == b"keep me"
