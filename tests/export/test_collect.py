"""Readable exports: the collected object, its CSV tables and its Markdown say who
consented to which version, and what was elected, pledged and measured."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from conftest import Org

from node.export.collect import collect
from node.export.markdown import markdown
from node.export.render import TABLES, csv_tables


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_a_decision_names_who_took_which_position_on_which_version(org: Org) -> None:
    """The decision lists alice's and bob's consent and carol's concern, on version 1."""
    data = await collect(org.replica, [org.garden, org.den])
    garden = data["circles"][0]
    assert (garden["name"], data["circles"][1]["name"]) == ("Garden", "Den")
    decision = next(d for d in garden["decisions"] if d["decision"] == org.decision.hex())
    assert (decision["version"], decision["version_number"]) == (org.versions[1].hex(), 1)
    assert (decision["holds"], decision["text"]) == (True, "water every other day")
    assert {p["name"]: (p["position"], p["version_number"]) for p in decision["positions"]} == {
        "alice": ("consent", 1), "bob": ("consent", 1), "carol": ("concern", 1),
    }  # fmt: skip
    proposal = next(p for p in garden["proposals"] if p["proposal"] == org.proposal.hex())
    on_first = {
        (p["name"], p["position"]) for p in proposal["positions"] if p["version_number"] == 0
    }
    assert on_first == {("alice", "consent"), ("bob", "objection")}
    assert json.loads(json.dumps(data)) == data  # JSON-ready all the way down


async def test_csv_tables_hold_every_kind_of_record(org: Org) -> None:
    """Positions, elections, pledges, measures, agreements and the logbook, one table each."""
    tables = csv_tables(await collect(org.replica, [org.garden, org.den]))
    assert set(tables) == set(TABLES)
    for name, text in tables.items():
        assert tuple(next(csv.reader(io.StringIO(text)))) == TABLES[name]
    deciding = [r for r in _rows(tables["positions"]) if r["decision"] == org.decision.hex()]
    assert sorted((r["name"], r["position"], r["version_number"]) for r in deciding) == [
        ("alice", "consent", "1"), ("bob", "consent", "1"), ("carol", "concern", "1"),
    ]  # fmt: skip
    carol = next(r for r in deciding if r["name"] == "carol")
    assert carol["reason"] == "the hose | is short\nby a metre"  # quoted, not split
    (election,) = _rows(tables["elections"])
    assert (election["election"], election["keeper_name"], election["phase"]) == (
        org.election.hex(), "bob", "elected",
    )  # fmt: skip
    (pledge,) = _rows(tables["pledges"])
    assert (pledge["pledge"], pledge["name"], pledge["amount"], pledge["state"]) == (
        org.pledge.hex(), "bob", "100000", "confirmed",
    )  # fmt: skip
    (measure,) = _rows(tables["measures"])
    assert (measure["measure"], measure["value"], measure["met"], measure["by"]) == (
        org.measure.hex(), "41", "yes", "alice",
    )  # fmt: skip
    agreements = {r["agreement"]: r["state"] for r in _rows(tables["agreements"])}
    assert agreements[org.proposal.hex()] == "in_force"
    kinds = {r["kind"] for r in _rows(tables["logbook"])}
    assert kinds >= {"decision", "election"}
    assert org.decision.hex() in {r["op"] for r in _rows(tables["logbook"])}


async def test_markdown_keeps_free_text_inside_its_table_cell(org: Org) -> None:
    """A reason holding ``|`` and a line break stays one escaped cell of one row."""
    text = markdown(await collect(org.replica, [org.garden]))
    rows = [line for line in text.splitlines() if line.startswith("| carol | concern | 1 |")]
    assert rows
    assert all("the hose \\| is short by a metre" in row for row in rows)
    assert all(row.count(" | ") == 4 for row in rows)  # five cells, none split
    assert "#### Watering: version 1" in text
    assert "| bob | 100000 | GBP | confirmed | match |" not in text  # Den not chosen


async def test_choosing_circles_limits_what_is_exported(org: Org) -> None:
    """Only the Den: its pledges show, the Garden's decisions and project do not."""
    data: dict[str, Any] = await collect(org.replica, [org.den])
    assert [c["name"] for c in data["circles"]] == ["Den"]
    assert data["circles"][0]["decisions"] == []
    assert [p["pledge"] for p in data["pitches"][0]["pledges"]] == [org.pledge.hex()]
    assert data["projects"] == []
    only_garden = await collect(org.replica, [org.garden])
    assert only_garden["pitches"][0]["pledges"] == []  # signed in the Den, not exported
    assert [p["project"] for p in only_garden["projects"]] == [org.project.hex()]
