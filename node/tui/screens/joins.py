"""A circle's join requests (people, social investors, tech4good innovators asking to join,
by their signed member card): ``p`` opens the consent proposal that decides one, ``a``
admits an agreed requester (a manager's act, citing the decision)."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding

from node.tui import gov_actions
from node.tui.data import level_name
from node.tui.ideas_data import JoinItem, JoinsData, load_joins
from node.tui.screens.gov_base import GovScreen, heading, pair
from node.tui.screens.proposal import ProposalScreen
from node.tui.session import Session
from node.tui.widgets.tables import state_text

JOIN_STYLES = {
    "open": "cyan",
    "proposed": "yellow",
    "agreed": "green",
    "admitted": "bold green",
    "declined": "dim",
    "invalid_card": "bold red",
}


class JoinsScreen(GovScreen):
    """Who asked to join one circle, and where each request stands."""

    COLUMNS = (("Name", 20), ("As", 10), ("Status", 12), ("Recorded by", 16))
    EMPTY = (
        "No join requests. Someone asks to join by sending their member card; a member "
        "records it with `circle-node join request CIRCLE --card ...`."
    )
    BINDINGS = [
        Binding("p", "propose", "Propose"),
        Binding("a", "admit", "Admit"),
        Binding("r", "refresh", "Refresh", show=False),
        Binding("escape", "app.back", "Back"),
    ]

    def __init__(self, session: Session, circle: bytes) -> None:
        super().__init__(session)
        self.circle = circle

    def on_mount(self) -> None:
        self.title = "Join requests"

    async def fetch(self) -> JoinsData:
        return await load_joins(self.session.replica, self.circle, self.session.me)

    def head(self, data: JoinsData) -> Text:
        self.sub_title = f"{data.circle_name} · you: {level_name(data.my_level)}"
        waiting = sum(1 for j in data.requests if j.status in ("open", "proposed", "agreed"))
        text = Text(f"Join requests to {data.circle_name}", style="bold")
        text.append(f"  {len(data.requests)} in all, {waiting} waiting")
        return text

    def rows(self, data: JoinsData) -> list[tuple[str, tuple[str | Text, ...]]]:
        return [
            (
                j.request.hex(),
                (
                    j.name,
                    j.kind,
                    Text(j.status, style=JOIN_STYLES.get(j.status, "")),
                    j.recorded_by,
                ),
            )
            for j in data.requests
        ]

    def detail(self, data: JoinsData, key: str) -> Text:
        found = self._request(key)
        return join_text(found) if found else Text(self.EMPTY)

    def _request(self, key: str | None) -> JoinItem | None:
        data: JoinsData | None = self.data
        if data is None or key is None:
            return None
        return next((j for j in data.requests if j.request.hex() == key), None)

    def action_propose(self) -> None:
        request = self._request(self.need_selection("a join request"))
        if request is None:
            return
        self._propose(request)

    def _propose(self, request: JoinItem) -> None:
        async def job() -> str:
            circle, pid = await gov_actions.propose_join(self.session, request.request)
            self.app.push_screen(ProposalScreen(self.session, circle, pid))
            return f"Opened the proposal to admit {request.name}: take your position with c."

        self.act(job)

    def action_admit(self) -> None:
        request = self._request(self.need_selection("a join request"))
        if request is None:
            return

        async def job() -> str:
            name = await gov_actions.admit(self.session, request.request)
            return f"Admitted {name} with write level, citing the circle's consent decision."

        self.act(job)


def join_text(j: JoinItem) -> Text:
    text = Text(f"{j.name} asks to join as {j.kind}: ", style="bold")
    text.append(j.status, style=JOIN_STYLES.get(j.status, ""))
    text.append("\n")
    pair(text, "Member", j.member)
    pair(text, "Message", j.message or "-")
    pair(text, "Recorded by", j.recorded_by)
    text.append("\n")
    heading(text, "Consent proposals")
    for number, (_pid, state) in enumerate(j.proposals, 1):
        text.append(f"  proposal {number}  ")
        text.append_text(state_text(state))
        text.append("\n")
    if not j.proposals:
        text.append("  none yet: p opens one\n", style="dim")
    hints = {
        "open": "p opens the consent proposal",
        "declined": "p opens a new consent proposal",
        "proposed": "members take their positions on the proposal (circle screen)",
        "agreed": "a manager admits them with a (write level)",
        "admitted": "they are a member now",
        "invalid_card": "the card does not verify: ask for the card again",
    }
    text.append(hints.get(j.status, ""), style="italic")
    return text
