"""The bundles screen: export circles to a file (a USB stick) and import one, each with a
progress bar; what ``circle-node bundle export`` / ``import`` do, through the same code.

Export takes the file, the circles (none ticked: every circle held), ``--for`` (a member
card or a node id) and ``--since`` (the receiver's heights file), and never replaces a
file unless "replace" is ticked; the file appears whole or not at all
(:func:`node.commands.bundle.atomic_output`). Import verifies before it ingests: a bad head
imports nothing, a damaged section imports nothing of that circle, and the notification
names the problem (:mod:`node.sync.bundle`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import (
    Button,
    Checkbox,
    Footer,
    Header,
    Input,
    Label,
    ProgressBar,
    SelectionList,
    Static,
    TabbedContent,
    TabPane,
)

from node.commands.bundle import atomic_output, check_target, open_input, parse_target, read_heights
from node.crypto.keys import KeyPair
from node.errors import NodeError
from node.sync.bundle import ExportPlan, export_bundle, import_bundle, plan_export
from node.tui.data import CircleItem, load_circle_items, short
from node.tui.ops_data import import_problem, import_summary
from node.tui.screens.base import DataScreen
from node.tui.screens.node_key import with_node_key
from node.tui.session import Session


class NeedNodeKey(NodeError):
    """The bundle carries a circle sealed to this node: its key must be unlocked first."""


@dataclass
class BundleCircles(Message):
    circles: list[CircleItem]


@dataclass
class BundleDone(Message):
    ok: bool
    text: str


@dataclass(frozen=True)
class ExportForm:
    path: Path
    circles: list[bytes] | None
    for_node: bytes | None
    since: Path | None
    force: bool


class BundlesScreen(DataScreen):
    """Export to and import from bundle files."""

    BINDINGS = [
        Binding("ctrl+s", "run", "Export / import"),
        Binding("ctrl+e", "tab('export')", "Export tab", show=False),
        Binding("ctrl+o", "tab('import')", "Import tab", show=False),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.busy = False
        self.last: str = ""  # the last result, as notified

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(id="bundle-tabs", initial="export"):
            with TabPane("Export", id="export"), Vertical(classes="bundle-form"):
                yield Input(
                    placeholder="File to write, e.g. /media/usb/circles.bundle", id="export-path"
                )
                yield Label("Circles (space ticks; none ticked: every circle)")
                yield SelectionList[bytes](id="export-circles")
                yield Input(
                    placeholder="For: a member card (cn1:…) or node id (optional)", id="export-for"
                )
                yield Input(
                    placeholder="Since: the receiver's heights file (optional)", id="export-since"
                )
                with Horizontal(classes="buttons"):
                    yield Checkbox("Replace an existing file", id="export-force")
                    yield Button("Export (ctrl+s)", id="export-run", variant="primary")
            with TabPane("Import", id="import"), Vertical(classes="bundle-form"):
                yield Input(placeholder="Bundle file to import", id="import-path")
                yield Static(
                    "Every op is verified and authorized before it is stored; importing the "
                    "same bundle twice adds nothing.",
                    classes="hint",
                )
                with Horizontal(classes="buttons"):
                    yield Button("Import (ctrl+s)", id="import-run", variant="primary")
        yield ProgressBar(id="bundle-progress", show_eta=False)
        yield Static("", id="bundle-status", classes="hint")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.title = "circle-node"
        self.sub_title = "Bundles"
        self.query_one("#bundle-progress").display = False
        self.query_one("#export-path", Input).focus()

    # ---- loading: the circles to choose from ------------------------------------------

    def load(self) -> None:
        self._load()

    @work(exclusive=True, group="load")
    async def _load(self) -> None:
        try:
            circles = await load_circle_items(self.session.replica, self.session.me)
        except NodeError as exc:
            self.fail(exc)
            return
        self.post_message(BundleCircles(circles))

    def on_bundle_circles(self, message: BundleCircles) -> None:
        chooser = self.query_one("#export-circles", SelectionList)
        ticked = set(chooser.selected)
        chooser.clear_options()
        for item in message.circles:
            label = Text(f"{item.name} ({short(item.circle)})")
            chooser.add_option((label, item.circle, item.circle in ticked))
        self.loaded = True

    # ---- actions ------------------------------------------------------------------------

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self.query_one(f"#{tab}-path", Input).focus()

    @on(Input.Submitted)
    def next_field(self, event: Input.Submitted) -> None:
        if event.input.id == "import-path":
            self.action_run()
        else:
            self.focus_next()

    @on(Button.Pressed, "#export-run, #import-run")
    def action_run(self) -> None:
        if self.busy:
            self.notify("A bundle is being written or read; wait for it.", severity="warning")
            return
        if self.query_one(TabbedContent).active == "import":
            self.start_import()
        else:
            self.start_export()

    def export_form(self) -> ExportForm:
        """The form, checked before any key is asked for (NodeError says what to fix)."""
        text = self.query_one("#export-path", Input).value.strip()
        if not text:
            raise NodeError("Give the file to write, e.g. /media/usb/circles.bundle")
        path = Path(text).expanduser()
        force = self.query_one("#export-force", Checkbox).value
        check_target(path, force)
        ticked = list(self.query_one("#export-circles", SelectionList).selected)
        target = self.query_one("#export-for", Input).value.strip()
        since = self.query_one("#export-since", Input).value.strip()
        return ExportForm(
            path,
            ticked or None,
            parse_target(target) if target else None,
            Path(since).expanduser() if since else None,
            force,
        )

    def start_export(self) -> None:
        try:
            form = self.export_form()
        except NodeError as exc:
            self.fail(exc)
            return
        self._plan(form)

    @work(group="bundle", exclusive=True)
    async def _plan(self, form: ExportForm) -> None:
        """Everything that can be refused (the heights file, the circles, what --for may
        host) is checked before the node key is asked for, as `bundle export` does."""
        try:
            since = read_heights(form.since) if form.since else None
            plan = await plan_export(
                self.session.replica, circles=form.circles, for_node=form.for_node, since=since
            )
        except NodeError as exc:
            self.fail(exc)
            return
        why = "A bundle is signed by this node, so the receiver knows where it came from."
        with_node_key(self, why, lambda key: self._export(form, plan, key))

    def start_import(self) -> None:
        text = self.query_one("#import-path", Input).value.strip()
        if not text:
            self.fail(NodeError("Give the bundle file to import."))
            return
        self._import(Path(text).expanduser(), self.session.node_key)

    def progress(self, done: int, total: int) -> None:
        bar = self.query_one("#bundle-progress", ProgressBar)
        bar.display = True
        bar.update(total=max(total, 1), progress=done)

    def started(self, what: str) -> None:
        self.busy = True
        bar = self.query_one("#bundle-progress", ProgressBar)
        bar.update(total=None, progress=0)
        bar.display = True
        self.query_one("#bundle-status", Static).update(what)

    @work(group="bundle", exclusive=True)
    async def _export(self, form: ExportForm, plan: ExportPlan, key: KeyPair) -> None:
        replica = self.session.replica
        self.started(f"Writing {form.path}…")
        try:
            with atomic_output(form.path, form.force) as out:
                report = await export_bundle(
                    replica,
                    key,
                    plan,
                    out,
                    spool_dir=self.session.home.path,
                    progress=self.progress,
                )
        except NodeError as exc:
            self.post_message(BundleDone(False, str(exc)))
            return
        ops = sum(n for _c, n in report.circles)
        text = (
            f"Wrote {ops} ops of {len(report.circles)} circle(s) to {form.path} "
            f"({report.size} bytes)."
        )
        if report.excluded:
            text += f" Left out {len(report.excluded)} circle(s) that node may not host."
        self.post_message(BundleDone(True, text))

    @work(group="bundle", exclusive=True)
    async def _import(self, path: Path, key: KeyPair | None) -> None:
        self.started(f"Reading {path}…")

        def unlock() -> KeyPair:
            if key is None:
                raise NeedNodeKey("this bundle holds a circle sealed to this node")
            return key

        try:
            with open_input(path, "bundle") as stream:
                report = await import_bundle(
                    self.session.replica,
                    stream,
                    node=self.session.home.node_public,
                    unlock=unlock,
                    progress=self.progress,
                )
        except NeedNodeKey:
            self.post_message(BundleDone(False, ""))
            self.app.call_later(self._ask_key_then_import, path)
            return
        except NodeError as exc:
            self.post_message(BundleDone(False, f"{path}: {exc}"))
            return
        finally:
            self.session.wrote()  # whatever was ingested went through this replica
        problem = import_problem(report)
        summary = import_summary(report)
        if problem is None:
            self.post_message(BundleDone(True, summary))
        else:
            self.post_message(BundleDone(False, f"{problem}\n{summary}"))

    def _ask_key_then_import(self, path: Path) -> None:
        why = "This bundle holds a circle new to this node, sealed to its node key."
        with_node_key(self, why, lambda key: self._import(path, key))

    def on_bundle_done(self, message: BundleDone) -> None:
        self.busy = False
        bar = self.query_one("#bundle-progress", ProgressBar)
        if bar.total is None:
            bar.display = False
        status = self.query_one("#bundle-status", Static)
        if not message.text:  # asking for the node key; nothing happened yet
            status.update("")
            bar.display = False
            return
        self.last = message.text
        status.update(Text(message.text))
        if message.ok:
            self.notify(message.text, title="Done", markup=False)
        else:
            self.notify(
                message.text, title="Bundle problem", severity="error", timeout=12, markup=False
            )
