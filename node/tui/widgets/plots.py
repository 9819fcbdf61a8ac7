"""Small terminal plots drawn as Rich Text: a funding bar and a benefit measure's readings
against its target line. Plain characters the Pi's console font has (block, dot, line)."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text

from node.domain.governance.funding import FundingStatus

BAR_FULL = "█"
BAR_PART = "▒"
BAR_EMPTY = "·"
POINT = "●"
TARGET = "─"


def funding_bar(status: FundingStatus, width: int, money: Callable[[int], str]) -> Text:
    """``[███▒▒····]`` confirmed (green), pledged but not confirmed (yellow), the rest
    of the costs (dim); then the figures: pledged, confirmed, needed."""
    width = max(width, 10)
    costs = max(status.costs, 1)
    pledged = max(status.pledged - status.other_currency, status.confirmed)

    def cells(amount: int) -> int:
        return min(width, amount * width // costs)

    confirmed_cells = cells(status.confirmed)
    pledged_cells = max(cells(pledged) - confirmed_cells, 0)
    rest = width - confirmed_cells - pledged_cells
    bar = Text("[")
    bar.append(BAR_FULL * confirmed_cells, style="green")
    bar.append(BAR_PART * pledged_cells, style="yellow")
    bar.append(BAR_EMPTY * rest, style="dim")
    bar.append("]")
    percent = status.confirmed * 100 // costs
    bar.append(f" {percent}%", style="bold green" if status.funded else "bold")
    bar.append("\n")
    cur = status.currency
    bar.append("pledged ", style="yellow")
    bar.append(f"{money(status.pledged)} · ")
    bar.append("confirmed ", style="green")
    bar.append(f"{money(status.confirmed)} · ")
    bar.append("needed ")
    bar.append(f"{money(status.needed)} of {money(status.costs)} {cur}")
    if status.funded:
        bar.append("  FUNDED", style="bold green")
    return bar


def measure_plot(
    readings: list[tuple[str, int]],
    target: int,
    *,
    direction: str = "up",
    width: int = 40,
    height: int = 6,
) -> Text:
    """Readings (in time order) as points on a grid, the target as a line across it.

    Rows are value bands from the highest value (top) to the lowest; the target sits in
    its own band. Columns spread the readings evenly; the axis shows the first and last
    day. A point is green once it meets the target (at or above it, or at or below it for
    a measure where less is better)."""
    height = max(height, 3)
    values = [v for _, v in readings] + [target]
    low, high = min(values), max(values)
    span = max(high - low, 1)

    def row_of(value: int) -> int:
        return round((high - value) * (height - 1) / span)

    label_width = max(len(str(high)), len(str(low)), len(str(target)))
    columns = max(width - label_width - 2, len(readings), 4)
    grid: list[list[tuple[str, str]]] = [[(" ", "")] * columns for _ in range(height)]
    target_row = row_of(target)
    grid[target_row] = [(TARGET, "yellow")] * columns
    count = len(readings)
    for index, (_day, value) in enumerate(readings):
        column = 0 if count == 1 else index * (columns - 1) // (count - 1)
        met = value >= target if direction == "up" else value <= target
        grid[row_of(value)][column] = (POINT, "bold green" if met else "bold red")
    text = Text()
    for number, row in enumerate(grid):
        label = ""
        if number == 0:
            label = str(high)
        elif number == height - 1:
            label = str(low)
        elif number == target_row:
            label = str(target)
        text.append(f"{label:>{label_width}} │", style="dim")
        for char, style in row:
            text.append(char, style=style)
        text.append("\n")
    text.append(" " * label_width + " └" + "─" * columns + "\n", style="dim")
    if readings:
        first, last = readings[0][0], readings[-1][0]
        gap = max(columns - len(first) - len(last), 1)
        axis = first + " " * gap + last if count > 1 else first
        text.append(" " * (label_width + 2) + axis, style="dim")
    else:
        text.append(" " * (label_width + 2) + "no readings yet", style="dim")
    return text
