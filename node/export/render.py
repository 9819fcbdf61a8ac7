"""Render a collected export (:mod:`node.export.collect`) as Markdown or CSV tables.

Pure functions from the JSON-ready object to text; nothing here reads a store or a file.
Every table has a fixed header, one row per item, ids in full hex, so a spreadsheet or a
script can join them (``decision`` in positions.csv is the decision row that lists it).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

TABLES: dict[str, tuple[str, ...]] = {
    "decisions": (
        "circle", "circle_name", "decision", "proposal", "title", "version",
        "version_number", "decided", "recorded_by", "review_date", "holds", "problem",
        "positions", "text",
    ),
    "positions": (
        "circle", "proposal", "title", "version", "version_number", "member", "name",
        "position", "reason", "op", "counts", "decision",
    ),
    "agreements": (
        "circle", "agreement", "title", "version", "decision", "decided", "state",
        "review_date", "overdue", "superseded_by", "text",
    ),
    "logbook": ("circle", "date", "kind", "title", "op", "proposal", "detail"),
    "elections": (
        "circle", "election", "role", "term_end", "phase", "round", "keeper", "keeper_name",
        "result", "decision",
    ),
    "pledges": (
        "pitch", "pitch_title", "circle", "den", "pledge", "member", "name", "amount",
        "currency", "conditions", "state",
    ),
    "measures": (
        "project", "project_title", "circle", "measure", "name", "target", "unit",
        "direction", "met", "reading", "value", "on", "note", "by",
    ),
}  # fmt: skip


def _decisions(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for c in data["circles"]:
        for d in c["decisions"]:
            positions = len(d["positions"])
            yield {**d, "circle": c["circle"], "circle_name": c["name"], "positions": positions}


def _positions(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for c in data["circles"]:
        deciding = {p["op"]: d["decision"] for d in c["decisions"] for p in d["positions"]}
        for p in c["proposals"]:
            for pos in p["positions"]:
                yield {
                    **pos,
                    "circle": c["circle"],
                    "proposal": p["proposal"],
                    "title": p["title"],
                    "decision": deciding.get(pos["op"], ""),
                }


def _agreements(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for c in data["circles"]:
        for a in c["agreements"]:
            yield {**a, "circle": c["circle"]}


_LOG_COMMON = ("kind", "op", "ts", "date", "title", "proposal")


def _logbook(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for c in data["circles"]:
        for e in c["logbook"]:
            detail = {k: v for k, v in e.items() if k not in _LOG_COMMON}
            yield {**e, "circle": c["circle"], "detail": json.dumps(detail, sort_keys=True)}


def _elections(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for c in data["circles"]:
        for e in c["elections"]:
            result = e["result"] or {}
            yield {
                **e,
                "circle": c["circle"],
                "keeper": result.get("keeper", ""),
                "keeper_name": result.get("keeper_name", ""),
                "result": result.get("op", ""),
                "decision": result.get("decision", ""),
            }


def _pledges(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for pitch in data["pitches"]:
        for p in pitch["pledges"]:
            yield {
                **p,
                "pitch": pitch["pitch"],
                "pitch_title": pitch["title"],
                "circle": pitch["circle"],
                "den": pitch["den"],
            }


def _measures(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for project in data["projects"]:
        for m in project["measures"]:
            head = {
                **m,
                "project": project["project"],
                "project_title": project["title"],
                "circle": project["circle"],
            }
            if not m["readings"]:
                yield head
            for r in m["readings"]:
                reading = {"reading": r["op"], "value": r["value"], "on": r["on"]}
                yield head | reading | {"note": r.get("note", ""), "by": r["by"]}


_ROWS = {
    "decisions": _decisions,
    "positions": _positions,
    "agreements": _agreements,
    "logbook": _logbook,
    "elections": _elections,
    "pledges": _pledges,
    "measures": _measures,
}


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """One CSV cell; text that a spreadsheet would run as a formula gets a leading ``'``.

    Only strings are neutralised (OWASP CSV injection): numbers such as ``-5`` stay numbers.
    """
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_STARTS) else value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def csv_tables(data: dict[str, Any]) -> dict[str, str]:
    """``{table name: CSV text}`` for every table in :data:`TABLES`."""
    tables: dict[str, str] = {}
    for name, columns in TABLES.items():
        buffer = io.StringIO()
        # CRLF rows (RFC 4180): the writer quotes a cell holding any line-terminator
        # character, so a bare CR in a reason is quoted too instead of splitting the row.
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(columns)
        for row in _ROWS[name](data):
            writer.writerow([_cell(row.get(column)) for column in columns])
        tables[name] = buffer.getvalue()
    return tables
