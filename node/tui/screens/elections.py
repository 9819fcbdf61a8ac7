"""A circle's roles and elections: nominate with a reason, the change round, propose a
nominee, the consent round (on the role and term, then on the nominee) and the result.

The keys act on the highlighted election, through :mod:`node.tui.gov_actions` (the
services ``circle-node election ...`` uses)."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding

from node.tui import gov_actions
from node.tui.data import level_name, today_iso
from node.tui.election_data import ConsentItem, ElectionItem, ElectionsData, load_elections
from node.tui.screens.gov_base import GovScreen, heading
from node.tui.screens.gov_forms import Field, FieldsScreen
from node.tui.screens.proposal import position_line
from node.tui.session import Session
from node.tui.widgets.tables import state_text

PHASE_STYLES = {
    "term": "yellow",
    "nominating": "cyan",
    "consent": "yellow",
    "elected": "green",
    "failed": "red",
}


class ElectionsScreen(GovScreen):
    """Roles with their keepers, and every election of one circle."""

    COLUMNS = (("Role", 16), ("Until", 10), ("Phase", 10), ("Round", 5))
    EMPTY = "No elections yet: press s to start one (the role and its term first)."
    BINDINGS = [
        Binding("s", "start", "Start", show=False),  # the hints name s and g
        Binding("n", "nominate", "Nominate"),
        Binding("g", "change", "Change", show=False),
        Binding("p", "propose", "Propose"),
        Binding("c", "consent", "Consent"),
        Binding("o", "concern", "Concern", show=False),
        Binding("x", "objection", "Object"),
        Binding("f", "fail", "Round failed", show=False),
        Binding("r", "refresh", "Refresh", show=False),
        Binding("escape", "app.back", "Back"),
    ]

    def __init__(self, session: Session, circle: bytes, today: str | None = None) -> None:
        super().__init__(session)
        self.circle = circle
        self.today = today or today_iso()

    def on_mount(self) -> None:
        self.title = "Elections"

    async def fetch(self) -> ElectionsData:
        return await load_elections(self.session.replica, self.circle, self.session.me, self.today)

    def head(self, data: ElectionsData) -> Text:
        self.sub_title = f"{data.circle_name} · you: {level_name(data.my_level)}"
        text = Text(f"Roles of {data.circle_name}", style="bold")
        for role in data.roles:
            text.append(f"\n  {role.name:<15}", style="bold")
            if role.keeper is None:
                text.append("no keeper", style="dim")
            else:
                text.append(f"{role.keeper} until {role.term_end or '-'}")
                if not role.holds:
                    text.append(" (term ended)", style="red")
        return text

    def rows(self, data: ElectionsData) -> list[tuple[str, tuple[str | Text, ...]]]:
        return [
            (
                e.election.hex(),
                (
                    e.role,
                    e.term_end or "-",
                    Text(e.phase, style=PHASE_STYLES.get(e.phase, "")),
                    str(e.round),
                ),
            )
            for e in data.elections
        ]

    def detail(self, data: ElectionsData, key: str) -> Text:
        found = self._election(key)
        return election_text(found) if found else Text(self.EMPTY)

    def _election(self, key: str | None) -> ElectionItem | None:
        data: ElectionsData | None = self.data
        if data is None or key is None:
            return None
        return next((e for e in data.elections if e.election.hex() == key), None)

    def _chosen(self) -> ElectionItem | None:
        found = self._election(self.need_selection("an election"))
        return found

    # ---- actions ------------------------------------------------------------------------

    def action_start(self) -> None:
        fields = [
            Field(
                "role", "Role: leader, representative, or a role of this circle", "Name the role."
            ),
            Field("term", "Term end YYYY-MM-DD (a representative needs one)"),
        ]
        prompt = "The circle first consents to the role and its term, then nominations open."
        self.app.push_screen(FieldsScreen("Start an election", prompt, fields), self._started)

    def _started(self, values: dict[str, str] | None) -> None:
        if values is None:
            return

        async def job() -> str:
            await gov_actions.start_election(
                self.session, self.circle, values["role"], values["term"], self.today
            )
            return f"Started the election of a {values['role']}: consent to its term with c."

        self.act(job)

    def _nomination_form(self, change: bool) -> None:
        election = self._chosen()
        if election is None:
            return
        names = ", ".join(self.data.members) if self.data else ""
        title = "Change your nomination" if change else "Nominate"
        prompt = f"Who should keep the role {election.role}? ({names}; empty to pass)"
        fields = [
            Field("nominee", "Nominee's name (yourself allowed; empty: pass)"),
            Field("reason", "Your reasons", "" if not change else "Give a reason for the change."),
        ]

        def done(values: dict[str, str] | None) -> None:
            if values is None:
                return

            async def job() -> str:
                return await gov_actions.nominate(
                    self.session,
                    election.election,
                    values["nominee"],
                    values["reason"],
                    change=change,
                )

            self.act(job)

        self.app.push_screen(FieldsScreen(title, prompt, fields), done)

    def action_nominate(self) -> None:
        self._nomination_form(change=False)

    def action_change(self) -> None:
        self._nomination_form(change=True)

    def action_propose(self) -> None:
        election = self._chosen()
        if election is None:
            return
        current = election.rounds[-1] if election.rounds else None
        top = current.tally[0][0] if current and current.tally else ""
        fields = [Field("nominee", "Nominee", "Name the nominee to propose.", value=top)]
        prompt = "Propose a nominee on the strength of the reasons given in this round."

        def done(values: dict[str, str] | None) -> None:
            if values is None:
                return

            async def job() -> str:
                await gov_actions.propose_nominee(
                    self.session, election.election, values["nominee"]
                )
                return f"Proposed {values['nominee']}: the consent round is open (c / o / x)."

            self.act(job)

        self.app.push_screen(FieldsScreen("Propose a nominee", prompt, fields), done)

    def _position(self, position: str, reason: str) -> None:
        election = self._chosen()
        if election is None:
            return

        async def job() -> str:
            state, result = await gov_actions.election_position(
                self.session, election.election, position, reason
            )
            text = f"Recorded your {position}; the proposal is {state}."
            if result:
                text += " The keeper is selected: the result is recorded."
            return text

        self.act(job)

    def action_consent(self) -> None:
        self._position("consent", "")

    def _reason_form(self, position: str, required: bool) -> None:
        if self._chosen() is None:
            return
        need = "An objection needs a reason: say what harm it would do." if required else ""
        fields = [Field("reason", "Reason", need)]
        title = position.capitalize()

        def done(values: dict[str, str] | None) -> None:
            if values is not None:
                self._position(position, values["reason"])

        self.app.push_screen(FieldsScreen(title, "", fields), done)

    def action_concern(self) -> None:
        self._reason_form("concern", required=False)

    def action_objection(self) -> None:
        self._reason_form("objection", required=True)

    def action_fail(self) -> None:
        election = self._chosen()
        if election is None:
            return
        fields = [Field("reason", "Why no keeper was found", "Say why the round failed.")]

        def done(values: dict[str, str] | None) -> None:
            if values is None:
                return

            async def job() -> str:
                number = await gov_actions.fail_round(
                    self.session, election.election, values["reason"]
                )
                return f"Round {number} closed; round {number + 1} is open for nominations."

            self.act(job)

        prompt = "Close this round without a keeper; the next round opens."
        self.app.push_screen(FieldsScreen("Round failed", prompt, fields), done)


def consent_text(text: Text, item: ConsentItem) -> None:
    text.append(f"  {item.title}\n")
    text.append("  ")
    text.append_text(state_text(item.state))
    if item.nominee is not None:
        own = item.nominee_position or "no position yet"
        text.append(f" · the nominee ({item.nominee}): {own}")
    text.append("\n")
    for position in item.positions:
        text.append("  ")
        text.append_text(position_line(position))
        text.append("\n")


def election_text(e: ElectionItem) -> Text:
    text = Text()
    text.append(f"Election of a {e.role} until {e.term_end or '-'}: ", style="bold")
    text.append(e.phase, style=PHASE_STYLES.get(e.phase, ""))
    text.append(f" (round {e.round})\n", style="bold")
    if e.keeper is not None:
        text.append(f"Result: {e.keeper} keeps the role {e.role}", style="bold green")
        text.append(f" until {e.term_end or '-'}\n")
    text.append(e.hint + "\n\n", style="italic")
    if e.term is not None and e.term.state == "agreed":
        text.append("Role and term ", style="bold underline")
        text.append_text(state_text(e.term.state))
        text.append(f": {e.term.title}\n")
    elif e.term is not None:
        heading(text, "Role and term")
        consent_text(text, e.term)
    for found in e.rounds:
        text.append("\n")
        heading(text, f"Round {found.number} ({found.stage})")
        for choice in found.nominations:
            who = choice.nominee or "pass"
            text.append(f"  {choice.name} nominates {who}: ", style="")
            text.append((choice.reason or "-") + "\n", style="italic")
        for choice in found.changes:
            who = choice.nominee or "pass"
            text.append(f"  {choice.name} changes to {who}: ", style="cyan")
            text.append((choice.reason or "-") + "\n", style="italic")
        if found.tally or found.passes:
            tally = ", ".join(f"{name} {count}" for name, count in found.tally)
            text.append(f"  tally: {tally or '-'}; passes {found.passes}\n", style="bold")
        if not (found.nominations or found.changes):
            text.append("  no nominations yet\n", style="dim")
        for proposal in found.proposals:
            text.append(f"  Proposed {proposal.nominee}\n", style="bold")
            consent_text(text, proposal)
        if found.failed:
            text.append(f"  failed: {found.failed}\n", style="red")
    text.rstrip()
    return text
