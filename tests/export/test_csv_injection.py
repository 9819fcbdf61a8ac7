"""CSV cells never start a spreadsheet formula: member-written text beginning with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return is prefixed with a single quote (OWASP),
while numbers, ids and other text stay as they are."""

from __future__ import annotations

import csv
import io
from typing import Any

from node.export.render import csv_tables

_HOSTILE = ('=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd")


def _data(text: str) -> dict[str, Any]:
    position = {
        "op": "aa" * 32, "member": "bb" * 32, "name": text, "position": "concern",
        "reason": text, "version": "cc" * 32, "version_number": 0, "counts": True,
    }  # fmt: skip
    proposal = {"proposal": "dd" * 16, "title": text, "positions": [position]}
    circle = {
        "circle": "ee" * 16, "name": text, "decisions": [], "proposals": [proposal],
        "agreements": [], "logbook": [], "elections": [],
    }  # fmt: skip
    reading = {"op": "ff" * 32, "value": -5, "on": "2026-01-01", "note": text, "by": text}
    measure = {
        "measure": "11" * 16, "name": text, "target": -10, "unit": "kg", "direction": "down",
        "met": False, "readings": [reading],
    }  # fmt: skip
    project = {"project": "22" * 16, "title": text, "circle": "ee" * 16, "measures": [measure]}
    return {"circles": [circle], "pitches": [], "projects": [project]}


def _row(text: str, table: str) -> dict[str, str]:
    (row,) = csv.DictReader(io.StringIO(csv_tables(_data(text))[table]))
    return row


def test_text_that_would_start_a_formula_is_quoted() -> None:
    for text in _HOSTILE:
        position = _row(text, "positions")
        assert (position["name"], position["reason"], position["title"]) == (
            "'" + text, "'" + text, "'" + text,
        )  # fmt: skip
        measure = _row(text, "measures")
        assert measure["project_title"] == measure["note"] == measure["by"] == "'" + text


def test_numbers_ids_and_plain_text_are_unchanged() -> None:
    measure = _row("a 'fine' name = ok", "measures")
    assert (measure["value"], measure["target"], measure["met"]) == ("-5", "-10", "no")
    assert measure["name"] == measure["note"] == "a 'fine' name = ok"
    assert measure["measure"] == "11" * 16
