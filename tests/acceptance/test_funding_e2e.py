"""Ideas, Angels Den, delivery, learning and join requests end to end through the real
`circle-node` command in subprocesses, on one node home holding four members.

alice manages the Garden, Den and SVL circles; bob reads Garden and invests in the Den;
carol belongs to no circle until the Garden admits her by consent; dana is a Den reader.
The module-scoped ``flow`` fixture plays the story once; each test checks one part of it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cli_runner import Result, cli


@dataclass
class Flow:
    home: Path
    ids: dict[str, str] = field(default_factory=dict)
    seen: dict[str, Result] = field(default_factory=dict)

    def run(self, label: str, command: str) -> Result:
        """Run ``command`` (shell words; ``{name}`` or ``{name:.8}`` filled from ``ids``)."""
        result = cli(self.home, *shlex.split(command.format(**self.ids)))
        self.seen[label] = result
        return result

    def ok(self, label: str, command: str) -> dict[str, Any]:
        """Run a command that must succeed."""
        result = self.run(label, command)
        assert result.code == 0, (command, result)
        return result.data

    def refused(self, label: str, command: str) -> Result:
        """Run a command that must fail with exit 1 and a JSON error."""
        result = self.run(label, command)
        assert (result.code, "error" in result.data) == (1, True), (command, result)
        return result


def _setup(f: Flow) -> None:
    f.ok("init", "init --name hall")
    for name in ("alice", "bob", "carol", "dana"):
        f.ids[name] = f.ok(name, f"member create --name {name}")["member"]
        f.ids[name + "_card"] = f.seen[name].data["card"]
    for circle in ("Garden", "Den", "SVL"):
        f.ids[circle] = f.ok(circle, f"circle create --name {circle} --as alice")["circle"]
    f.ok("bob_garden", "circle add-member {Garden} {bob_card} --level read --as alice")
    f.ok("bob_den", "circle add-member {Den} {bob_card} --level write --as alice")
    f.ok("dana_den", "circle add-member {Den} {dana_card} --level read --as alice")


def _ideas(f: Flow) -> None:
    f.ids["idea"] = f.ok(
        "share",
        "idea share {Garden} --what 'the lot behind the hall lies empty' --as bob "
        "--need 'a place to grow food together' --why 'families lack fresh food'",
    )["idea"]
    f.ok("note", "idea note {idea:.8} --text 'raised beds for wheelchairs' --as bob")
    f.ids["tools"] = f.ok("tools", "idea share {Garden} --text 'a tool library' --as bob")["idea"]
    f.ok("pass_on", "idea qualify {tools} passed_on --to {Den:.8} --reason theirs --as alice")
    f.refused("bob_qualifies", "idea qualify {idea} accepted --as bob")
    f.ok("qualify", "idea qualify {idea} accepted --reason 'our driver' --as alice")
    f.ok(
        "plan",
        "idea plan {idea} --scope '12 raised beds, a shed' --resources '4 volunteers' "
        "--cost-low 80000 --cost-high 120000 --currency gbp --as alice",
    )
    f.ids["proposal"] = f.ok("propose", "idea propose {idea} --text 'Build it.' --as alice")[
        "proposal"
    ]
    pitch = "pitch create {proposal} --den {Den} --costs 100000 --currency GBP --as alice"
    f.refused("early_pitch", pitch)
    f.ok("consent", "position {proposal} consent --as alice")
    f.ids["pitch"] = f.ok(
        "pitch",
        pitch + " --benefits 'fresh food for 40 families' --roi '3 to 1' "
        "--sustainability 'plot fees'",
    )["pitch"]


def _den(f: Flow) -> None:
    f.ok("show_open", "pitch show {pitch:.8}")
    f.ids["bob_pledge"] = f.ok("bob_pledge", "pledge {pitch} --amount 60000 --as bob")["pledge"]
    alice = "pledge {pitch} --amount 50000 --currency GBP --conditions match --as alice"
    f.ids["alice_pledge"] = f.ok("alice_pledge", alice)["pledge"]
    f.refused("carol_pledge", "pledge {pitch} --amount 100 --as carol")
    f.refused("dana_pledge", "pledge {pitch} --amount 100 --as dana")
    f.refused("euro_pledge", "pledge {pitch} --amount 100 --currency EUR --as bob")
    f.refused("not_pledger", "pledge confirm {bob_pledge} --as alice")
    f.refused("skip_confirm", "pledge fulfil {bob_pledge} --as bob")
    f.ok("bob_confirm", "pledge confirm {bob_pledge:.8} --as bob")
    f.ok("show_partial", "pitch show {pitch}")
    f.refused("early_project", "project start {pitch} --team {team} --as alice")
    f.ok("bob_fulfil", "pledge fulfil {bob_pledge} --as bob")
    f.ok("alice_confirm", "pledge confirm {alice_pledge} --as alice")
    f.ok("show_funded", "pitch show {pitch}")


def _project(f: Flow) -> None:
    f.refused("half_team", "project start {pitch} --team alice:{Garden}:requirements --as alice")
    f.ids["project"] = f.ok("project", "project start {pitch} --team {team} --as alice")["project"]
    add = "milestone add {project} --title 'beds built' --due 2031-05-01 --as alice"
    f.ids["milestone"] = f.ok("milestone", add)["milestone"]
    f.ok("started", "milestone set {milestone} in_progress --as alice")
    f.ok("done", "milestone set {milestone:.8} done --as alice")
    f.refused("reopen", "milestone set {milestone} planned --as alice")
    f.ok("lesson", "lesson add {project} --text 'order timber before spring' --as alice")
    add = "measure add {project} --name 'families fed' --target 40 --unit families --as alice"
    f.ids["measure"] = f.ok("measure", add)["measure"]
    f.ok("read1", "measure read {measure} --value 12 --on 2031-06-01 --as alice")
    f.ok("read2", "measure read {measure} --value 41 --on 2031-09-01 --note harvest --as alice")
    f.ok("share", "project share {project} --to {SVL} --as alice")
    f.ok("share_again", "project share {project} --to {SVL} --as alice")
    f.ok("learning", "learning {SVL}")
    f.ok("project_show", "project show {project}")


def _join(f: Flow) -> None:
    f.ids["request"] = f.ok(
        "join_request",
        "join request {Garden} --card {carol_card} --as-kind innovator "
        "--message 'I build sensors for gardens' --as bob",
    )["request"]
    f.refused("early_admit", "join admit {request} --as alice")
    f.ids["join_proposal"] = f.ok("join_propose", "join propose {request} --as alice")["proposal"]
    f.ok("join_consent", "position {join_proposal} consent --as alice")
    f.ok("admit", "join admit {request:.8} --level read --as alice")
    f.ok("join_list", "join list {Garden}")
    f.ok("garden", "circle show {Garden}")


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    """The whole story, played once through the CLI."""
    f = Flow(tmp_path_factory.mktemp("funding") / "home")
    _setup(f)
    f.ids["team"] = "alice:{Garden}:requirements bob:{Den}:investment_benefits".format(**f.ids)
    _ideas(f)
    _den(f)
    _project(f)
    _join(f)
    return f


def test_idea_becomes_a_qualified_driver_with_a_plan(flow: Flow) -> None:
    """A read-level member shares a driver; only a writer qualifies it; the plan is kept."""
    shown = flow.ok("idea_show", "idea show {idea}")
    assert (shown["kind"], shown["state"], shown["author_name"]) == ("driver", "accepted", "bob")
    assert shown["need"] == "a place to grow food together"
    assert [n["text"] for n in shown["notes"]] == ["raised beds for wheelchairs"]
    plan = shown["plan"]
    assert (plan["cost_low"], plan["cost_high"], plan["currency"]) == (80000, 120000, "GBP")
    assert shown["proposals"] == [flow.ids["proposal"]]
    assert "write level" in flow.seen["bob_qualifies"].data["error"]
    listed = flow.ok("idea_list", "idea list {Garden}")["ideas"]
    assert [(i["idea"], i["state"], i["notes"], i["plans"]) for i in listed] == [
        (flow.ids["idea"], "accepted", 1, 1),
        (flow.ids["tools"], "passed_on", 0, 0),
    ]


def test_an_idea_passed_on_reaches_the_other_circle(flow: Flow) -> None:
    """An idea passed on to the Den is listed by the Den, naming where it came from."""
    den = flow.ok("den_ideas", "idea list {Den}")
    assert den["ideas"] == []
    assert [(i["idea"], i["from"]) for i in den["passed_to_us"]] == [
        (flow.ids["tools"], flow.ids["Garden"])
    ]


def test_only_an_agreed_proposal_is_pitched(flow: Flow) -> None:
    """pitch create is refused before consent and accepted after."""
    assert "agreed" in flow.seen["early_pitch"].data["error"]
    assert flow.seen["pitch"].data["den"] == flow.ids["Den"]


def test_pledges_move_to_funded(flow: Flow) -> None:
    """Figures follow the pledge states; the pitch is funded once confirmed pledges cover it."""
    opened = flow.seen["show_open"].data
    assert (opened["costs"], opened["needed"], opened["funded"]) == (100000, 100000, False)
    partial = flow.seen["show_partial"].data
    assert (partial["pledged"], partial["confirmed"], partial["needed"]) == (110000, 60000, 40000)
    assert partial["funded"] is False
    funded = flow.seen["show_funded"].data
    assert (funded["confirmed"], funded["fulfilled"], funded["needed"]) == (110000, 60000, 0)
    assert funded["funded"] is True
    states = {p["name"]: p["state"] for p in funded["pledges"]}
    assert states == {"bob": "fulfilled", "alice": "confirmed"}


def test_den_outsiders_and_wrong_moves_are_refused(flow: Flow) -> None:
    """Non-investors cannot pledge; only the pledger moves a pledge, along allowed moves."""
    assert "level" in flow.seen["carol_pledge"].data["error"]
    assert "level" in flow.seen["dana_pledge"].data["error"]
    assert "would not count" in flow.seen["euro_pledge"].data["error"]
    assert "only the pledger" in flow.seen["not_pledger"].data["error"]
    assert "cannot become fulfilled" in flow.seen["skip_confirm"].data["error"]
    assert "not funded" in flow.seen["early_project"].data["error"]


def test_project_delivers_with_milestones_and_measures(flow: Flow) -> None:
    """The project holds, its milestone is done (and final), its measure met its target."""
    assert "Angels Den" in flow.seen["half_team"].data["error"]
    shown = flow.seen["project_show"].data
    assert (shown["valid"], shown["problems"]) == (True, [])
    assert {(s["name"], s["assurance"]) for s in shown["team"]} == {
        ("alice", "requirements"),
        ("bob", "investment_benefits"),
    }
    assert [(m["title"], m["status"]) for m in shown["milestones"]] == [("beds built", "done")]
    assert "done is final" in flow.seen["reopen"].data["error"]
    (measure,) = shown["measures"]
    assert [r["value"] for r in measure["readings"]] == [12, 41]
    assert (measure["latest"], measure["met"]) == (41, True)


def test_learning_reaches_the_svl_circle(flow: Flow) -> None:
    """One share carries the lesson, measure and readings; sharing again sends nothing."""
    assert flow.seen["share"].data["items"] == 4
    again = flow.seen["share_again"].data
    assert (again["project"], again["to"], again["shares"], again["items"]) == (
        flow.ids["project"],
        flow.ids["SVL"],
        [],
        0,
    )
    learned = flow.seen["learning"].data
    assert [(x["text"], x["holds"]) for x in learned["lessons"]] == [
        ("order timber before spring", True)
    ]
    (measure,) = learned["measures"]
    assert (measure["name"], measure["latest"], measure["met"], measure["holds"]) == (
        "families fed",
        41,
        True,
        True,
    )
    assert [(r["value"], r["on"]) for r in measure["readings"]] == [
        (12, "2031-06-01"),
        (41, "2031-09-01"),
    ]


def test_join_request_admits_by_consent(flow: Flow) -> None:
    """The admission waits for consent; the auth op then cites the decision record."""
    assert "consent" in flow.seen["early_admit"].data["error"]
    admitted = flow.seen["admit"].data
    assert (admitted["member"], admitted["level"]) == (flow.ids["carol"], "read")
    (request,) = flow.seen["join_list"].data["requests"]
    assert (request["status"], request["kind"], request["recorded_by"]) == (
        "admitted",
        "innovator",
        "bob",
    )
    assert request["decisions"] == [admitted["decision"]]
    members = {m["member"]: m["level"] for m in flow.seen["garden"].data["members"]}
    assert members[flow.ids["carol"]] == "read"


def test_store_verifies_after_the_story(flow: Flow) -> None:
    """verify re-checks every op and decision of the story without a problem."""
    verified = flow.ok("verify", "verify")
    assert (verified["ok"], verified["problems"]) == (True, [])
