"""The Angels Den and delivery projects, over every circle held here: pitches with their
business case and a funding bar (pledged / confirmed / needed), my pledges and the pledge
action; projects with their team and assurance roles, milestones, lessons learned and
benefit measures plotted against their targets.

Amounts are typed in the currency's units (``250`` or ``250.50``) and stored as integer
minor units, as ``circle-node pledge`` stores them."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding

from node.tui import gov_actions
from node.tui.den_data import DenData, PitchItem, PledgeItem, ProjectItem, load_den
from node.tui.gov_actions import money
from node.tui.screens.gov_base import GovScreen, heading, pair
from node.tui.screens.gov_forms import Field, FieldsScreen
from node.tui.session import Session
from node.tui.widgets.plots import funding_bar, measure_plot

PLEDGE_STYLES = {"pledged": "yellow", "confirmed": "green", "fulfilled": "bold green"}
MILESTONE_STYLES = {"done": "green", "in_progress": "yellow", "blocked": "bold red"}


class DenScreen(GovScreen):
    """Pitches and projects; ``p`` pledges to the highlighted pitch."""

    COLUMNS = (("Kind", 7), ("Title", 28), ("Circle", 12), ("Funding", 22))
    EMPTY = (
        "No pitches yet. An agreed proposal is pitched to a den circle with "
        "`circle-node pitch create`; its pledges and projects show here."
    )
    BINDINGS = [
        Binding("p", "pledge", "Pledge"),
        Binding("c", "confirm", "Confirm pledge"),
        Binding("w", "withdraw", "Withdraw pledge", show=False),
        Binding("r", "refresh", "Refresh", show=False),
        Binding("escape", "app.back", "Back"),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__(session)

    def on_mount(self) -> None:
        self.title = "Angels Den and projects"

    async def fetch(self) -> DenData:
        return await load_den(self.session.replica, self.session.me)

    def head(self, data: DenData) -> Text:
        text = Text(f"{len(data.pitches)} pitch(es) · {len(data.projects)} project(s)")
        text.append(" · my pledges: ", style="bold")
        if not data.my_pledges:
            text.append("none", style="dim")
        for number, pledge in enumerate(data.my_pledges):
            text.append("; " if number else "")
            text.append(f"{money(pledge.amount)} {pledge.currency} to {pledge.pitch_title} ")
            text.append(pledge.state, style=PLEDGE_STYLES.get(pledge.state, "dim"))
        return text

    def rows(self, data: DenData) -> list[tuple[str, tuple[str | Text, ...]]]:
        found: list[tuple[str, tuple[str | Text, ...]]] = []
        for pitch in data.pitches:
            s = pitch.status
            funded = Text(
                f"{money(s.confirmed)}/{money(s.costs)} {s.currency}",
                style="green" if s.funded else "",
            )
            found.append(
                (f"pitch:{pitch.pitch.hex()}", ("pitch", pitch.title, pitch.circle_name, funded))
            )
        for project in data.projects:
            state = Text("valid", style="green") if project.valid else Text("problems", style="red")
            row = ("project", project.title, project.circle_name, state)
            found.append((f"project:{project.project.hex()}", row))
        return found

    def detail(self, data: DenData, key: str) -> Text:
        kind, _, ident = key.partition(":")
        if kind == "pitch":
            pitch = next((p for p in data.pitches if p.pitch.hex() == ident), None)
            if pitch is not None:
                return pitch_text(pitch, self.bar_width())
        project = next((p for p in data.projects if p.project.hex() == ident), None)
        if project is not None:
            return project_text(project, self.bar_width())
        return Text(self.EMPTY)

    def bar_width(self) -> int:
        return max(min(self.size.width - 12, 60), 10)

    # ---- actions ------------------------------------------------------------------------

    def _pitch(self) -> PitchItem | None:
        key = self.need_selection("a pitch")
        data: DenData | None = self.data
        if key is None or data is None:
            return None
        found = next((p for p in data.pitches if f"pitch:{p.pitch.hex()}" == key), None)
        if found is None:
            self.notify("Pick a pitch (not a project) first.", severity="warning", markup=False)
        return found

    def action_pledge(self) -> None:
        pitch = self._pitch()
        if pitch is None:
            return
        cur = pitch.status.currency
        fields = [
            Field("amount", f"Amount in {cur}, e.g. 250 or 250.50", "Give an amount."),
            Field("conditions", "Conditions (optional)"),
        ]
        prompt = f"Pledge to {pitch.title}: still needed {money(pitch.status.needed)} {cur}."

        def done(values: dict[str, str] | None) -> None:
            if values is None:
                return

            async def job() -> str:
                await gov_actions.pledge(
                    self.session, pitch.pitch, values["amount"], values["conditions"]
                )
                return f"Pledged {values['amount']} {cur} to {pitch.title}; confirm it with c."

            self.act(job)

        self.app.push_screen(FieldsScreen("Pledge", prompt, fields), done)

    def _my_pledge(self, states: tuple[str, ...], what: str) -> PledgeItem | None:
        pitch = self._pitch()
        if pitch is None:
            return None
        mine = [p for p in pitch.pledges if p.mine and p.state in states]
        if not mine:
            self.notify(
                f"You have no {' or '.join(states)} pledge on this pitch to {what}.",
                severity="warning",
                markup=False,
            )
            return None
        return mine[-1]

    def _move(self, pledge: PledgeItem, to: str) -> None:
        async def job() -> str:
            await gov_actions.move_pledge(self.session, pledge.pledge, to)
            return f"Your pledge of {money(pledge.amount)} {pledge.currency} is {to}."

        self.act(job)

    def action_confirm(self) -> None:
        pledge = self._my_pledge(("pledged",), "confirm")
        if pledge is not None:
            self._move(pledge, "confirmed")

    def action_withdraw(self) -> None:
        pledge = self._my_pledge(("pledged", "confirmed"), "withdraw")
        if pledge is not None:
            self._move(pledge, "withdrawn")


def pitch_text(pitch: PitchItem, width: int) -> Text:
    s = pitch.status
    text = Text(pitch.title, style="bold")
    text.append(f"  {pitch.circle_name} -> den {pitch.den_name}\n", style="dim")
    text.append_text(funding_bar(s, width, money))
    text.append("\n\n")
    heading(text, "Business case")
    pair(text, "Costs", f"{money(s.costs)} {s.currency}", 16)
    pair(text, "Benefits", pitch.benefits or "-", 16)
    pair(text, "ROI", pitch.roi or "-", 16)
    pair(text, "Sustainability", pitch.sustainability or "-", 16)
    text.append("\n")
    heading(text, f"Pledges ({len(pitch.pledges)})")
    for p in pitch.pledges:
        text.append("* " if p.mine else "  ", style="bold")
        text.append(f"{p.name:<12} {money(p.amount):>12} {p.currency} ")
        text.append(f"{p.state:<10}", style=PLEDGE_STYLES.get(p.state, "dim"))
        text.append(f" {p.conditions}\n" if p.conditions else "\n")
    if not pitch.pledges:
        text.append("  none yet\n", style="dim")
    if pitch.projects:
        text.append(f"Became a project ({pitch.projects}).\n", style="green")
    if pitch.can_pledge:
        text.append(
            "p pledge · c confirm my pledge · w withdraw it  (* marks mine)", style="italic"
        )
    else:
        text.append(f"Only members of the den {pitch.den_name} pledge.", style="italic")
    text.rstrip()
    return text


def project_text(project: ProjectItem, width: int) -> Text:
    """Team, benefit measures (plotted), milestones, lessons: the plot comes second so it
    shows without scrolling at 80x24."""
    text = Text(project.title, style="bold")
    text.append(f"  project of {project.circle_name}\n", style="dim")
    for problem in project.problems:
        text.append(f"does not hold: {problem}\n", style="bold red")
    heading(text, "Team and assurance roles")
    for seat in project.team:
        text.append(f"  {seat.name:<12} {seat.circle_name:<16} {seat.assurance}\n")
    heading(text, "Benefit measures")
    for m in project.measures:
        better = "more is better" if m.direction == "up" else "less is better"
        latest = m.readings[-1][1] if m.readings else None
        text.append(f"  {m.name}", style="bold")
        shown = "-" if latest is None else str(latest)
        text.append(f" target {m.target} {m.unit} ({better}); latest {shown}")
        text.append("  met\n" if m.met else "  not met\n", style="green" if m.met else "yellow")
        plot = measure_plot(m.readings, m.target, direction=m.direction, width=width, height=5)
        for line in plot.split("\n"):
            text.append("  ")
            text.append_text(line)
            text.append("\n")
    if not project.measures:
        text.append("  none yet\n", style="dim")
    heading(text, "Milestones")
    for title, due, status in project.milestones:
        text.append(f"  {status:<12}", style=MILESTONE_STYLES.get(status, "dim"))
        text.append(f"{title}" + (f"  due {due}" if due else "") + "\n")
    if not project.milestones:
        text.append("  none yet\n", style="dim")
    heading(text, "Lessons learned")
    for by, lesson in project.lessons:
        text.append(f"  {by}: ", style="bold")
        text.append(lesson + "\n")
    if not project.lessons:
        text.append("  none yet\n", style="dim")
    text.rstrip()
    return text
