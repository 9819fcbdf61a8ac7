"""The shape the governance screens share (elections, Angels Den, ideas, join requests): a
head, a list (a DataTable; the highlighted row is what actions act on), the highlighted
item's detail below, and the footer. Data is read in a worker (``fetch``) and shown by
``show``; actions run in a worker (``act``) that notifies what was signed, or the error
with what to do, and reloads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Static

from node.errors import NodeError
from node.tui.screens.base import DataScreen
from node.tui.session import Session


@dataclass
class GovLoaded(Message):
    """A governance screen's worker read its data."""

    data: Any


class GovScreen(DataScreen):
    """Subclasses set ``COLUMNS`` and implement :meth:`fetch`, :meth:`rows` and
    :meth:`detail`."""

    COLUMNS: tuple[tuple[str, int], ...] = ()  # label, width: fixed widths, so a reload
    # never re-measures the columns (a measured header could be painted stale)
    EMPTY = "Nothing here yet."

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.data: Any = None
        self.selected: str | None = None  # the highlighted row's key
        self._rows: list[tuple[str, tuple[str | Text, ...]]] | None = None  # as shown

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="gov-head")
        yield DataTable(id="gov-table", cursor_type="row", zebra_stripes=False)
        with VerticalScroll(id="gov-detail"):
            yield Static(id="gov-detail-text")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # Textual calls every class's on_mount: subclasses define their own, without super()
        table = self.query_one(DataTable)
        for label, width in self.COLUMNS:
            table.add_column(label, width=width)
        table.focus()

    # ---- loading ------------------------------------------------------------------------

    async def fetch(self) -> Any:
        raise NotImplementedError

    def rows(self, data: Any) -> list[tuple[str, tuple[str | Text, ...]]]:
        """(row key, cells) for the list."""
        raise NotImplementedError

    def head(self, data: Any) -> Text:
        raise NotImplementedError

    def detail(self, data: Any, key: str) -> Text:
        raise NotImplementedError

    def load(self) -> None:
        self._load()

    @work(exclusive=True, group="load")
    async def _load(self) -> None:
        try:
            data = await self.fetch()
        except NodeError as exc:
            self.fail(exc)
            return
        self.post_message(GovLoaded(data))

    def on_gov_loaded(self, message: GovLoaded) -> None:
        self.data = message.data
        self.query_one("#gov-head", Static).update(self.head(self.data))
        table = self.query_one(DataTable)
        rows = self.rows(self.data)
        keys = [key for key, _ in rows]
        if rows != self._rows:  # a live reload that changed nothing keeps the table as is
            keep = self.selected
            table.clear()
            for key, cells in rows:
                # a str cell would be read as markup: names and titles are shown as typed
                table.add_row(*(Text(c) if isinstance(c, str) else c for c in cells), key=key)
            if keep in keys:
                table.move_cursor(row=keys.index(keep), animate=False)
            self._rows = rows
        self.selected = keys[table.cursor_row] if keys else None
        self._show_detail()
        self.call_after_refresh(self._painted)

    def _painted(self) -> None:
        self.loaded = True  # shown, not just read: tests and snapshots wait on this

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value
        if key is not None and key != self.selected:
            self.selected = key
            self._show_detail()

    def _show_detail(self) -> None:
        text = self.query_one("#gov-detail-text", Static)
        if self.data is None or self.selected is None:
            text.update(Text(self.EMPTY, style="italic"))
        else:
            text.update(self.detail(self.data, self.selected))

    # ---- acting -------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.reload()

    @work(group="act", exclusive=True)
    async def act(self, job: Callable[[], Awaitable[str]]) -> None:
        """Run a signing job; notify what it did (its return) or what to do instead."""
        try:
            done = await job()
        except NodeError as exc:
            self.fail(exc)
            return
        self.notify(done, markup=False)
        self.reload()

    def need_selection(self, what: str) -> str | None:
        """The highlighted row's key, else a notification naming what to pick."""
        if self.selected is None:
            self.notify(f"Pick {what} in the list first.", severity="warning", markup=False)
        return self.selected


def heading(text: Text, title: str) -> None:
    text.append(f"{title}\n", style="bold underline")


def pair(text: Text, label: str, value: str, width: int = 12) -> None:
    text.append(f"  {label:<{width}}", style="bold")
    text.append(value + "\n")
