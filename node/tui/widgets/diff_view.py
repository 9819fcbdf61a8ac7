"""A unified diff, coloured line by line (added green, removed red, hunks cyan)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


def diff_text(lines: list[str]) -> Text:
    text = Text()
    for line in lines:
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        else:
            style = ""
        text.append(line + "\n", style=style)
    text.rstrip()
    return text


class DiffView(Static):
    """Shows a diff; hides itself when there is none."""

    def show(self, lines: list[str]) -> None:
        self.display = bool(lines)
        self.update(diff_text(lines))
