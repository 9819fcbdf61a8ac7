"""Role selection and double linking end to end through `circle-node` in subprocesses.

One node home holds alice, bob and carol. The Hall is the top circle (alice); the Garden
is its child (alice, bob, carol). The Garden elects carol as its representative with the
ordinary `position` command, appoints bob as its leader, and both take seats in the Hall
(bob's through an evidence file, as a parent on another node would); at term end
carol's seat is shown as ended and pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cli_runner import cli

TODAY = "2026-11-28"
TERM_END = "2027-06-30"
AFTER_TERM = "2027-07-01"


def ok(home: Path, *args: str) -> dict[str, Any]:
    result = cli(home, *args)
    assert result.code == 0, (args, result)
    return result.data


@dataclass(frozen=True)
class Org:
    home: Path
    hall: str
    garden: str
    members: dict[str, str]  # name -> member id


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Org:
    """The Hall and the Garden on one node, with alice, bob and carol."""
    home = tmp_path_factory.mktemp("elections") / "node"
    ok(home, "init", "--name", "hall-node")
    made = {n: ok(home, "member", "create", "--name", n) for n in ("alice", "bob", "carol")}
    hall = ok(home, "--as", "alice", "circle", "create", "--name", "Hall")["circle"]
    garden = ok(
        home, "--as", "alice", "circle", "create", "--name", "Garden", "--parent", hall[:8]
    )["circle"]
    for name in ("bob", "carol"):
        ok(home, "--as", "alice", "circle", "add-member", garden[:8], made[name]["card"])
    return Org(home, hall, garden, {n: d["member"] for n, d in made.items()})


def _elect_carol(org: Org) -> str:
    """The whole S3 selection of the Garden's representative through the CLI; its id."""
    home, garden = org.home, org.garden[:8]
    refused = cli(home, "--as", "alice", "election", "start", garden, "--role", "representative")
    assert refused.code == 1
    assert "limited term" in refused.data["error"]
    started = ok(
        home, "--as", "alice", "election", "start", garden,
        "--role", "representative", "--term-end", TERM_END, "--today", TODAY,
    )  # fmt: skip
    election = started["election"]
    early = cli(home, "--as", "bob", "election", "nominate", election, "carol", "--reason", "x")
    assert early.code == 1
    assert "not consented yet" in early.data["error"]
    for name in ("alice", "bob", "carol"):  # role and term first, by the ordinary command
        ok(home, "--as", name, "position", started["proposal"][:12], "consent")
    ok(home, "--as", "alice", "election", "nominate", election, "carol", "--reason", "calm")
    ok(home, "--as", "alice", "election", "nominate", election, "bob", "--reason", "on reflection")
    ok(home, "--as", "bob", "election", "nominate", election, "--pass", "--reason", "no view")
    ok(home, "--as", "carol", "election", "nominate", election, "carol", "--reason", "I can")
    ok(home, "--as", "alice", "election", "change", election, "carol", "--reason", "her reasons")
    proposed = ok(home, "--as", "bob", "election", "propose", election, "carol")
    assert proposed["nominee"] == org.members["carol"]
    for name in ("carol", "alice", "bob"):  # the nominee first
        ok(home, "--as", name, "position", proposed["proposal"][:12], "consent")
    result = ok(home, "--as", "bob", "election", "result", election)
    assert (result["keeper"], result["role"], result["term_end"]) == (
        org.members["carol"],
        "representative",
        TERM_END,
    )
    return str(election)


def test_elect_a_representative_who_sits_in_the_parent_until_term_end(org: Org) -> None:
    """The whole S3 selection through the CLI; the keeper joins the Hall, then is pruned."""
    home, garden = org.home, org.garden[:8]
    election = _elect_carol(org)
    shown = ok(home, "election", "show", election)
    assert (shown["phase"], shown["result"]["keeper_name"]) == ("elected", "carol")
    [first] = shown["rounds"]
    choices = {c["name"]: (c["nominee_name"], c["reason"]) for c in first["nominations"]}
    assert choices == {
        "alice": ("bob", "on reflection"),
        "bob": (None, "no view"),
        "carol": ("carol", "I can"),
    }
    assert [c["name"] for c in first["changes"]] == ["alice"]
    assert first["tally"] == [{"nominee": org.members["carol"], "name": "carol", "count": 2}]
    assert first["proposals"][0]["nominee_position"] == "consent"

    linked = ok(home, "--as", "alice", "circle", "link", org.hall[:8], garden, "--today", TODAY)
    [seat] = linked["linked"]
    assert (seat["keeper_name"], seat["recorded"]) == ("carol", True)
    assert seat["member_op"] is not None
    members = {m["name"]: m["level"] for m in ok(home, "circle", "show", org.hall[:8])["members"]}
    assert members == {"alice": "manage", "carol": "write"}
    seats = ok(home, "circle", "seats", org.hall[:8], "--today", TODAY)["seats"]
    assert [(s["keeper_name"], s["status"], s["seated_by_mandate"]) for s in seats] == [
        ("carol", "holds", True)
    ]
    ended = ok(home, "circle", "seats", org.hall[:8], "--today", AFTER_TERM)["seats"]
    assert [s["status"] for s in ended] == ["ended"]
    pruned = ok(
        home, "--as", "alice", "circle", "link", "--prune", org.hall[:8], "--today", AFTER_TERM
    )
    assert [r["name"] for r in pruned["removed"]] == ["carol"]
    members = {m["name"] for m in ok(home, "circle", "show", org.hall[:8])["members"]}
    assert members == {"alice"}
    assert ok(home, "verify")["ok"] is True


def test_appoint_a_leader_and_seat_them_from_an_evidence_file(org: Org, tmp_path: Path) -> None:
    """An appointed leader's seat crosses to the parent as a file of signed ops."""
    home, garden = org.home, org.garden[:8]
    treasurer = ("--name", "treasurer", "--domain", "the money", "--term-days", "365")
    ok(home, "--as", "alice", "role", "create", garden, *treasurer, "--accountability", "books")
    appointed = ok(
        home, "--as", "alice", "role", "appoint", garden, "leader", "bob", "--today", TODAY
    )
    for name in ("bob", "alice", "carol"):
        ok(home, "--as", name, "position", appointed["proposal"][:12], "consent")
    confirmed = ok(home, "--as", "alice", "role", "confirm", appointed["proposal"][:12])
    assert (confirmed["keeper"], confirmed["role"]) == (org.members["bob"], "leader")
    roles = {r["role"]: r for r in ok(home, "role", "list", garden, "--today", TODAY)["roles"]}
    assert roles["leader"]["keeper_name"] == "bob"
    assert roles["treasurer"]["accountabilities"] == ["books"]
    proof = tmp_path / "garden-proof.json"
    written = ok(home, "circle", "evidence", garden, "--out", str(proof), "--today", TODAY)
    assert written["parent"] == org.hall
    linked = ok(
        home, "--as", "alice", "circle", "link", org.hall[:8], org.garden,
        "--evidence", str(proof), "--today", TODAY,
    )  # fmt: skip
    assert len(linked["linked"]) == written["seats"]  # the representative too, if elected
    leaders = [s for s in linked["linked"] if s["role"] == "leader"]
    assert [(s["keeper_name"], s["recorded"]) for s in leaders] == [("bob", True)]
    members = {m["name"] for m in ok(home, "circle", "show", org.hall[:8])["members"]}
    assert "bob" in members
