"""Proposals, consent, agreements, reviews and the logbook through the real `circle-node`
command in subprocesses.

On one home (alice, bob and carol on one node) a proposal goes through the S3 stages,
meets an objection that an amendment integrates, is agreed with a verified decision, is
reviewed (keep, amend, retire) and appears in the logbook; a decision forged by a member
makes `verify` fail. Across two homes, USB bundles carry the positions and the decision.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cli_runner import PASSPHRASE, Result, cli

from node.domain.governance.records import DecisionRec
from node.governance import find_proposal, sign
from node.home import NodeHome
from node.replica import Replica


def ok(result: Result) -> dict[str, Any]:
    assert result.code == 0, result
    return result.data


def failed(result: Result, *words: str) -> str:
    """The error of a command that must fail with exit 1, checked to contain ``words``."""
    assert result.code == 1, result
    assert all(w in result.data["error"] for w in words), result.data
    return str(result.data["error"])


@dataclass(frozen=True)
class Home:
    path: Path
    circle: str
    members: dict[str, str]  # name -> member id

    def run(self, who: str, *args: str) -> Result:
        return cli(self.path, "--as", who, *args)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """One node holding alice (manager), bob and carol (write) in the Garden circle."""
    path = tmp_path_factory.mktemp("proposals") / "hall"
    ok(cli(path, "init", "--name", "hall"))
    members = {n: ok(cli(path, "member", "create", "--name", n)) for n in ("alice", "bob", "carol")}
    circle = ok(cli(path, "--as", "alice", "circle", "create", "--name", "Garden"))["circle"]
    for name in ("bob", "carol"):
        ok(cli(path, "--as", "alice", "circle", "add-member", circle, members[name]["card"]))
    return Home(path, circle, {n: m["member"] for n, m in members.items()})


def _objection(shown: dict[str, Any], name: str) -> str:
    return next(
        p["op"] for p in shown["positions"] if p["name"] == name and p["position"] == "objection"
    )


def _through_the_stages(home: Home) -> tuple[str, str]:
    """Create, clarify, react, open the round; Bob objects. ``(proposal, objection op)``."""
    created = ok(
        home.run(
            "alice", "proposal", "create", home.circle[:8], "--title", "Watering",
            "--driver", "the beds dry out", "--text", "water daily",
            "--review-date", "2030-06-01", "--criterion", "beds stay moist",
        )
    )  # fmt: skip
    pid = created["proposal"]
    assert set(created) >= {"proposal", "version"}
    listed = ok(home.run("bob", "proposal", "list", home.circle))["proposals"]
    assert [(p["proposal"], p["state"]) for p in listed] == [(pid, "draft")]
    stage = ("proposal", "stage", pid[:8])
    assert ok(home.run("alice", *stage, "clarifying", "--deadline", "2030-01-31"))["state"] == (
        "clarifying"
    )
    asked = ok(home.run("bob", "proposal", "question", pid[:8], "--text", "How much water?"))
    answer = ("--text", "10 l", "--answers", asked["op"][:10])
    ok(home.run("alice", "proposal", "question", pid[:8], *answer))
    ok(home.run("carol", "proposal", "react", pid[:8], "--text", "sounds good"))
    ok(home.run("alice", *stage, "consent_round"))

    ok(home.run("alice", "position", pid[:8], "consent"))
    failed(home.run("bob", "position", pid[:8], "objection"), "reason")
    objected = ok(home.run("bob", "position", pid[:8], "objection", "--reason", "wastes water"))
    assert objected["state"] == "integrating"
    assert [o["name"] for o in objected["outcome"]["open_objections"]] == ["bob"]
    shown = ok(home.run("bob", "proposal", "show", pid[:8]))
    assert (shown["questions"][1]["answers"], len(shown["reactions"])) == (asked["op"], 1)
    assert shown["tuners"] == {
        "review_date": "2030-06-01", "review_every_days": None, "criteria": ["beds stay moist"],
    }  # fmt: skip
    return pid, _objection(shown, "bob")


def _integrate_and_agree(home: Home, pid: str, objection: str) -> None:
    """An amendment resolves the objection; all three take positions; agreed, verified."""
    amended = ok(
        home.run(
            "alice", "proposal", "amend", pid[:8], "--text", "water every other day",
            "--resolves", objection[:10], "--note", "less water",
        )
    )  # fmt: skip
    assert amended["number"] == 1
    assert ok(home.run("bob", "proposal", "show", pid))["state"] == "consent_round"
    for name in ("alice", "bob"):
        assert ok(home.run(name, "position", pid[:8], "consent"))["decision"] is None
    final = ok(home.run("carol", "position", pid[:8], "concern", "--reason", "hose is short"))
    assert (final["state"], final["outcome"]["verified"]) == ("agreed", True)
    assert final["decision"] == final["outcome"]["decision"]

    shown = ok(home.run("bob", "proposal", "show", pid))
    assert (shown["state"], shown["version"], shown["text"]) == (
        "agreed", amended["version"], "water every other day",
    )  # fmt: skip
    assert [v["number"] for v in shown["versions"]] == [0, 1]
    assert shown["versions"][1]["resolves"] == [objection]
    counted = {p["name"]: p["position"] for p in shown["positions"] if p["counts"]}
    assert counted == {"alice": "consent", "bob": "consent", "carol": "concern"}
    assert shown["outcome"]["missing"] == []
    failed(home.run("bob", "position", pid, "objection", "--reason", "late"), "agreed", "review")
    assert ok(cli(home.path, "verify"))["ok"] is True


def _review_it(home: Home, pid: str) -> str:
    """Overdue, kept, then amended by review (the objection there acknowledged by its
    author) and superseded. The amending proposal's id."""
    late = ok(cli(home.path, "agreements", home.circle, "--overdue", "--today", "2030-06-02"))
    assert late["overdue"] == [pid]
    assert late["agreements"][0]["concerns"][0]["reason"] == "hose is short"
    early = ok(cli(home.path, "agreements", home.circle, "--overdue", "--today", "2030-06-01"))
    assert early["agreements"] == []

    kept = ok(home.run("bob", "review", pid[:8], "keep", "--next", "2031-01-01"))
    assert kept["next_review"] == "2031-01-01"
    listed = ok(cli(home.path, "agreements", home.circle, "--today", "2030-06-02"))
    assert (listed["agreements"][0]["review_date"], listed["overdue"]) == ("2031-01-01", [])

    opened = ok(home.run("alice", "review", pid[:8], "amend", "--text", "water at dusk"))
    newer = str(opened["proposal"])
    assert ok(home.run("bob", "proposal", "show", newer))["links"]["review_of"] == pid
    carols = ok(home.run("carol", "position", newer, "objection", "--reason", "too late"))["op"]
    failed(home.run("bob", "objection", "test", carols[:10], "--qualifies", "no"), "objector")
    tested = ok(home.run("carol", "objection", "test", carols[:10], "--qualifies", "no"))
    assert tested["objection_open"] is False
    for name in ("alice", "bob"):
        last = ok(home.run(name, "position", newer, "consent"))
    assert last["state"] == "agreed"
    agreements = ok(cli(home.path, "agreements", home.circle))["agreements"]
    states = {a["agreement"]: (a["state"], a["superseded_by"]) for a in agreements}
    assert states == {pid: ("superseded", newer), newer: ("in_force", None)}
    return newer


def test_a_proposal_from_stages_to_retired_agreement(home: Home) -> None:
    """Stages, questions, an integrated objection, a verified decision, reviews, logbook."""
    pid, objection = _through_the_stages(home)
    _integrate_and_agree(home, pid, objection)
    newer = _review_it(home, pid)
    assert ok(home.run("bob", "review", newer, "retire"))["state"] == "retired"
    failed(home.run("bob", "review", newer, "keep", "--next", "2040-01-01"), "retired")

    entries = ok(cli(home.path, "logbook", home.circle))["entries"]
    expected = [
        ("decision", pid),
        ("review", pid),
        ("review", pid),
        ("decision", newer),
        ("review", newer),
    ]
    assert sorted((e["kind"], e["proposal"]) for e in entries) == sorted(expected)
    assert [(e["ts"], e["op"]) for e in entries] == sorted((e["ts"], e["op"]) for e in entries)
    assert ok(cli(home.path, "verify"))["ok"] is True


def test_errors_are_clean_and_actionable(home: Home) -> None:
    """Unknown ids, bad dates and readers' mistakes: exit 1 or 2 with one JSON error."""
    failed(home.run("bob", "proposal", "show", "ffffff00"), "no proposal matches")
    failed(home.run("bob", "proposal", "show", "ab"), "at least 6")
    bad_day = home.run(
        "alice", "proposal", "create", home.circle, "--title", "t", "--driver", "d",
        "--text", "x", "--review-date", "next week",
    )  # fmt: skip
    failed(bad_day, "--review-date", "YYYY-MM-DD")
    assert home.run("bob", "position", "abcdef", "maybe").code == 2
    failed(home.run("bob", "objection", "test", "ffffff00", "--qualifies", "no"), "no objection")
    failed(home.run("bob", "review", "ffffff00", "keep"), "no proposal matches")


async def _forge_decision(home: Path, proposal: str) -> str:
    """Alice's own key signs a decision listing only her consent (a member cheating)."""
    node_home = NodeHome(home)
    entry = node_home.resolve_member("alice")
    key = node_home.unlock_member(entry, PASSPHRASE)
    async with Replica.open(node_home.store_path) as replica:
        cg, found = await find_proposal(replica, proposal)
        mine = [s.op_id for s in found.positions if s.author == key.public]
        body = DecisionRec(proposal=found.id, version=found.current().hash, positions=mine)
        return (await sign(replica, key, cg.circle, body)).hex()


def test_verify_flags_a_decision_that_does_not_hold(home: Home, tmp_path: Path) -> None:
    """A decision record signed by alice but lacking bob's and carol's consent: exit 1."""
    copy = tmp_path / "copy"
    shutil.copytree(home.path, copy)
    run = Home(copy, home.circle, home.members)
    pid = ok(
        run.run("alice", "proposal", "create", home.circle, "--title", "Fence",
                "--driver", "rabbits", "--text", "build a fence")
    )["proposal"]  # fmt: skip
    ok(run.run("alice", "position", pid, "consent"))
    forged = asyncio.run(_forge_decision(copy, pid))
    result = cli(copy, "verify")
    assert result.code == 1
    problems = [p for p in result.data["problems"] if p["problem"] == "decision_does_not_hold"]
    assert [p["op"] for p in problems] == [forged]
    shown = ok(run.run("bob", "proposal", "show", pid))
    assert shown["state"] == "consent_round"
    assert [d["op"] for d in shown["invalid_decisions"]] == [forged]


def test_two_homes_reach_the_same_decision_by_bundles(tmp_path: Path) -> None:
    """Alice on A and bob on B: bundles carry the proposal, bob's consent and the decision;
    both homes then show the same agreed, verified outcome and the same logbook."""
    a, b = tmp_path / "a", tmp_path / "b"
    ok(cli(a, "init", "--name", "hall"))
    ok(cli(b, "init", "--name", "barn"))
    ok(cli(a, "member", "create", "--name", "alice"))
    bob = ok(cli(b, "member", "create", "--name", "bob"))
    circle = ok(cli(a, "circle", "create", "--name", "Garden"))["circle"]
    ok(cli(a, "circle", "add-member", circle, bob["card"]))
    pid = ok(
        cli(a, "proposal", "create", circle, "--title", "Compost", "--driver", "waste",
            "--text", "start a compost heap", "--review-every", "180")
    )["proposal"]  # fmt: skip

    def carry(source: Path, target: Path, name: str) -> None:
        heights = tmp_path / f"{name}.heights"
        ok(cli(target, "bundle", "heights", str(heights), "--force"))
        bundle = tmp_path / f"{name}.cnb"
        since = ["--since", str(heights)] if (target / "store.db").exists() else []
        ok(cli(source, "bundle", "export", str(bundle), "--force", *since))
        assert ok(cli(target, "bundle", "import", str(bundle)))["rejected"] == 0

    carry(a, b, "a-to-b-1")
    assert ok(cli(b, "position", pid, "consent"))["state"] == "consent_round"
    carry(b, a, "b-to-a")
    final = ok(cli(a, "position", pid, "consent"))
    assert (final["state"], final["outcome"]["verified"]) == ("agreed", True)
    carry(a, b, "a-to-b-2")
    shown_a = ok(cli(a, "proposal", "show", pid))
    shown_b = ok(cli(b, "proposal", "show", pid))
    assert shown_a == shown_b
    assert shown_b["outcome"]["decision"] == final["decision"]
    assert ok(cli(a, "logbook", circle)) == ok(cli(b, "logbook", circle))
    for home in (a, b):
        assert ok(cli(home, "verify"))["ok"] is True
