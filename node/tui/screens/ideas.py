"""A circle's ideas and drivers with their co-design notes, qualification and current outline
plan; ``n`` shares an idea, ``m`` adds a co-design note to the highlighted one."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding

from node.tui import gov_actions
from node.tui.data import level_name
from node.tui.gov_actions import money
from node.tui.ideas_data import IdeaItem, IdeasData, load_ideas_data
from node.tui.screens.gov_base import GovScreen, heading, pair
from node.tui.screens.gov_forms import Field, FieldsScreen
from node.tui.session import Session

IDEA_STYLES = {"open": "cyan", "accepted": "green", "passed_on": "yellow", "discarded": "dim"}


class IdeasScreen(GovScreen):
    """Ideas, drivers and outline plans of one circle."""

    COLUMNS = (("State", 9), ("Kind", 6), ("Notes", 5), ("Plan", 4), ("Title", 40))
    EMPTY = "No ideas yet: press n to share one."
    BINDINGS = [
        Binding("n", "new_idea", "New idea"),
        Binding("m", "note", "Note"),
        Binding("r", "refresh", "Refresh", show=False),
        Binding("escape", "app.back", "Back"),
    ]

    def __init__(self, session: Session, circle: bytes) -> None:
        super().__init__(session)
        self.circle = circle

    def on_mount(self) -> None:
        self.title = "Ideas and outline plans"

    async def fetch(self) -> IdeasData:
        return await load_ideas_data(self.session.replica, self.circle, self.session.me)

    def head(self, data: IdeasData) -> Text:
        self.sub_title = f"{data.circle_name} · you: {level_name(data.my_level)}"
        open_count = sum(1 for i in data.ideas if i.state == "open")
        text = Text(f"Ideas of {data.circle_name}", style="bold")
        text.append(f"  {len(data.ideas)} in all, {open_count} open")
        return text

    def rows(self, data: IdeasData) -> list[tuple[str, tuple[str | Text, ...]]]:
        return [
            (
                idea.idea.hex(),
                (
                    Text(idea.state, style=IDEA_STYLES.get(idea.state, "")),
                    idea.kind,
                    str(len(idea.notes)),
                    "yes" if idea.plan else "-",
                    idea.title[:60],
                ),
            )
            for idea in data.ideas
        ]

    def detail(self, data: IdeasData, key: str) -> Text:
        idea = next((i for i in data.ideas if i.idea.hex() == key), None)
        return idea_text(idea) if idea else Text(self.EMPTY)

    def action_new_idea(self) -> None:
        fields = [Field("text", "What you have in mind", "Say what the idea is.", max_length=4000)]
        prompt = "Share an idea with the circle (anyone with read access may)."

        def done(values: dict[str, str] | None) -> None:
            if values is None:
                return

            async def job() -> str:
                await gov_actions.share_idea(self.session, self.circle, values["text"])
                return "Shared your idea; the circle qualifies it (`circle-node idea qualify`)."

            self.act(job)

        self.app.push_screen(FieldsScreen("New idea", prompt, fields), done)

    def action_note(self) -> None:
        key = self.need_selection("an idea")
        if key is None:
            return
        idea = bytes.fromhex(key)
        fields = [Field("text", "Your co-design note", "The note is empty.", max_length=4000)]

        def done(values: dict[str, str] | None) -> None:
            if values is None:
                return

            async def job() -> str:
                await gov_actions.add_note(self.session, idea, values["text"])
                return "Added your co-design note."

            self.act(job)

        self.app.push_screen(FieldsScreen("Co-design note", "", fields), done)


def idea_text(idea: IdeaItem) -> Text:
    text = Text(f"{idea.kind.capitalize()} by {idea.author}: ", style="bold")
    text.append(idea.state, style=IDEA_STYLES.get(idea.state, ""))
    if idea.reason:
        text.append(f" ({idea.reason})")
    text.append("\n")
    for label, value in idea.body:
        pair(text, label, value, width=6)
    text.append("\n")
    heading(text, "Outline plan")
    plan = idea.plan
    if plan is None:
        text.append("  none yet\n", style="dim")
    else:
        pair(text, "Scope", plan.scope)
        pair(text, "Resources", plan.resources or "-")
        cost = f"{money(plan.cost_low)} - {money(plan.cost_high)} {plan.currency}"
        pair(text, "Cost", cost)
        revisions = f" (revised {idea.plans - 1} time(s))" if idea.plans > 1 else ""
        pair(text, "By", plan.by + revisions)
    text.append("\n")
    heading(text, f"Co-design notes ({len(idea.notes)})")
    for by, note in idea.notes:
        text.append(f"  {by}: ", style="bold")
        text.append(note + "\n")
    text.append("n new idea · m add a note", style="italic")
    return text
