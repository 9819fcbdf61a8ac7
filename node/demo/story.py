"""The demo's story, signed through the same services as the CLI (docs/demo.md).

Riverside Commons is the top circle (on the hall node), with Social Value and Learning
beside it. The Community Garden and the Repair Cafe (on the neighbourhood node) are its
children: each appoints a leader and elects a representative, and both sit in the top
circle (double links). The Angels Den (on the partner's node) funds the Garden's raised
beds; the project reports milestones, a lesson and a benefit measure with readings to
Social Value and Learning. The Garden also holds a proposal in every state.

Every member signs on their own node's replica; :meth:`Federation.settle` carries what
another node needs before it acts. The last steps (the project's delivery and its share
to SVL) are never settled here: the running nodes sync them.
"""

from __future__ import annotations

from datetime import date, timedelta

import msgspec
import pycrdt

from node import elections, linking
from node.crypto.keys import KeyPair
from node.demo.federation import Federation
from node.domain.auth import Level
from node.domain.documents import YDoc, doc_id
from node.domain.governance.records import ProposalRec, Stage, StageRec
from node.errors import NodeError
from node.funding import (
    Case,
    draft_lesson,
    draft_measure,
    draft_milestone,
    draft_milestone_set,
    draft_pitch,
    draft_pledge,
    draft_pledge_move,
    draft_project,
    draft_reading,
    draft_shares,
)
from node.governance import amend, create_proposal, sign, take_position
from node.ideas import Draft, commit, draft_idea_proposal, draft_note, draft_plan, draft_qualify
from node.ideas import draft_share as draft_idea
from node.local import add_member, create_circle, edit_doc
from node.replica import Replica

PROFILE = "profile"  # the circle profile doc, as `circle create` writes it


class Story:
    """The story's steps; ``circles`` maps each circle's name to its id."""

    def __init__(self, fed: Federation, today: date) -> None:
        self.fed = fed
        self.day = today
        self.today = today.isoformat()
        self.term_end = self.days(365)
        self.circles: dict[str, bytes] = {}

    def days(self, n: int) -> str:
        return (self.day + timedelta(days=n)).isoformat()

    def key(self, who: str) -> KeyPair:
        return self.fed.members[who]

    def at(self, who: str) -> Replica:
        return self.fed.replica(who)

    async def sign(self, who: str, draft: Draft) -> str:
        """Commit a draft as ``who``; the record's id (hex)."""
        return (await commit(self.at(who), self.key(who), draft))[:16].hex()

    # ---- circles -------------------------------------------------------------------------

    async def circle(self, founder: str, name: str, purpose: str, parent: str = "") -> bytes:
        replica, key = self.at(founder), self.key(founder)
        circle = await create_circle(
            replica,
            key,
            name=name,
            creator_name=founder,
            home=self.fed.node_of(founder),
            purpose=purpose,
            parent=self.circles[parent] if parent else None,
        )

        def write_profile(doc: YDoc) -> None:
            profile = doc.get(PROFILE, type=pycrdt.Map)
            profile["name"] = name
            profile["purpose"] = purpose

        await edit_doc(replica, key, circle, doc_id(circle, PROFILE), write_profile)
        self.circles[name] = circle
        return circle

    async def add(self, manager: str, circle: str, who: str, level: Level) -> None:
        await add_member(
            self.at(manager),
            self.key(manager),
            self.circles[circle],
            member=self.key(who).public,
            name=who,
            level=level,
            home=self.fed.node_of(who),
        )

    async def found_circles(self) -> None:
        await self.circle("alice", "Riverside Commons", "Care for the common life of Riverside")
        await self.add("alice", "Riverside Commons", "dave", Level.WRITE)
        await self.circle(
            "alice",
            "Social Value and Learning",
            "Learn what our projects change, and for whom",
            "Riverside Commons",
        )
        await self.add("alice", "Social Value and Learning", "dave", Level.WRITE)
        await self.add("alice", "Social Value and Learning", "carol", Level.WRITE)
        await self.circle(
            "bob", "Community Garden", "Grow food together on empty land", "Riverside Commons"
        )
        await self.add("bob", "Community Garden", "carol", Level.WRITE)
        await self.add("bob", "Community Garden", "ian", Level.READ)  # an investor follows
        await self.circle(
            "erin", "Repair Cafe", "Fix things instead of throwing them away", "Riverside Commons"
        )
        await self.add("erin", "Repair Cafe", "frank", Level.WRITE)
        await self.circle("ian", "Angels Den", "Patient money for community projects")
        await self.add("ian", "Angels Den", "grace", Level.WRITE)
        await self.add("ian", "Angels Den", "bob", Level.READ)  # the Garden pitches here

    # ---- proposals -----------------------------------------------------------------------

    async def propose(self, who: str, circle: str, body: ProposalRec) -> str:
        pid, _version = await create_proposal(
            self.at(who), self.key(who), self.circles[circle], body
        )
        return pid.hex()

    async def position(self, who: str, proposal: str, position: str, reason: str = "") -> bool:
        outcome = await take_position(self.at(who), self.key(who), proposal, position, reason)
        return outcome.agreed

    async def agree(self, proposal: str, *members: str) -> None:
        agreed = [await self.position(who, proposal, "consent") for who in members]
        if not agreed[-1]:
            raise NodeError(f"building the demo: proposal {proposal[:8]} was not agreed")

    async def stage(
        self, who: str, circle: str, body: ProposalRec, stage: Stage, deadline: str | None = None
    ) -> None:
        """A new proposal, then deferred or withdrawn by its author."""
        proposal = bytes.fromhex(await self.propose(who, circle, body))
        record = StageRec(proposal=proposal, stage=stage, deadline=deadline)
        await sign(self.at(who), self.key(who), self.circles[circle], record)

    async def decisions(self) -> None:
        """Agreements in the top circle and the Repair Cafe, which also defers one
        proposal and withdraws another; in the Garden a proposal open with positions
        pending, one with an objection, one amended."""
        charter = ProposalRec(
            title="Commons charter",
            driver="Circles need shared ground rules to work together",
            text="Decisions are made by consent; every circle keeps a public logbook.",
            review_date=self.days(180),
        )
        await self.agree(await self.propose("alice", "Riverside Commons", charter), "alice", "dave")
        evenings = ProposalRec(
            title="Monthly repair evening",
            driver="Broken things pile up while people wait for help",
            text="A repair evening on the first Thursday of every month in the hall.",
            review_every_days=90,
        )
        await self.agree(await self.propose("erin", "Repair Cafe", evenings), "erin", "frank")
        printer = ProposalRec(
            title="Buy a 3D printer",
            driver="Spare parts for old machines cannot be bought any more",
            text="We buy a 3D printer to print spare parts.",
        )
        await self.stage("erin", "Repair Cafe", printer, "deferred", self.days(90))
        fee = ProposalRec(
            title="Charge a fee per repair",
            driver="The tools wear out",
            text="Each repair costs two pounds.",
        )
        await self.stage("frank", "Repair Cafe", fee, "withdrawn")
        garden = "Community Garden"
        compost = ProposalRec(
            title="Compost rota",
            driver="The compost bins overflow in summer",
            text="Two members turn the compost each Saturday, on a rota.",
        )
        await self.propose("carol", garden, compost)  # open: every position pending
        dusk = ProposalRec(
            title="Lock the gate at dusk",
            driver="Tools went missing overnight",
            text="The last one out locks the gate at dusk.",
        )
        gate = await self.propose("bob", garden, dusk)
        await self.position("bob", gate, "consent")
        await self.position("carol", gate, "objection", "shift workers can only water after dark")
        hours = ProposalRec(
            title="Tool shed hours",
            driver="Nobody knows when the shed is open",
            text="The tool shed opens on weekdays from 9 to 5.",
        )
        shed = await self.propose("carol", garden, hours)
        await self.position("bob", shed, "objection", "most volunteers come at weekends")
        await amend(
            self.at("carol"),
            self.key("carol"),
            "The tool shed opens on weekdays from 9 to 5 and on weekends from 8 to 6.",
            shed,
        )

    # ---- roles and double links ----------------------------------------------------------

    async def appoint_leader(self, circle: str, leader: str, members: tuple[str, ...]) -> None:
        pid, _version, _keeper = await elections.appoint(
            self.at(leader),
            self.key(leader),
            self.circles[circle],
            "leader",
            leader,
            self.term_end,
            self.today,
        )
        await self.agree(pid.hex(), *members)
        await elections.confirm_appointment(self.at(leader), self.key(leader), pid.hex())

    async def elect_representative(
        self, circle: str, nominee: str, members: tuple[str, ...]
    ) -> None:
        """A whole S3 election: term consent, nominations, a pass, proposal, consent."""
        first, second = members
        at, key = self.at(first), self.key
        eid, _pid, _version = await elections.start_election(
            at, key(first), self.circles[circle], "representative", self.term_end, self.today
        )
        election = eid.hex()
        for who in members:
            await elections.election_position(at, key(who), election, "consent", "")
        await elections.nominate(at, key(first), election, nominee, "listens to everyone")
        await elections.nominate(at, key(second), election, None, "happy with either of us")
        await elections.propose(at, key(first), election, nominee)
        result = None
        for who in members:
            _p, _state, result = await elections.election_position(
                at, key(who), election, "consent", ""
            )
        if result is None:
            raise NodeError(f"building the demo: the {circle} election has no result")

    async def link_up(self, child: str) -> None:
        """The child's signed proof of its leader and representative, taken from its node,
        seats both in the top circle (recorded by the top circle's manager, alice)."""
        top, circle = self.circles["Riverside Commons"], self.circles[child]
        proofs = await linking.child_evidence(self.at("bob"), top, circle, self.today)
        await linking.link(self.at("alice"), self.key("alice"), top, circle, proofs, self.today)

    async def roles(self) -> None:
        garden, repair = ("bob", "carol"), ("erin", "frank")
        await self.appoint_leader("Community Garden", "bob", garden)
        await self.elect_representative("Community Garden", "carol", garden)
        await self.appoint_leader("Repair Cafe", "erin", repair)
        await self.elect_representative("Repair Cafe", "frank", repair)
        await self.link_up("Community Garden")
        await self.link_up("Repair Cafe")

    # ---- ideas, the Angels Den and delivery ----------------------------------------------

    async def ideas(self) -> str:
        """Two ideas in the Garden; one qualified, planned and agreed: its proposal id."""
        garden, nb = self.circles["Community Garden"].hex(), self.at("carol")
        carol, bob = self.key("carol").public, self.key("bob").public
        what = "the lot behind the school lies empty"
        share = await draft_idea(nb, carol, garden, what=what, need="fresh food", why="health")
        idea = await self.sign("carol", share)
        await self.sign("bob", await draft_note(nb, bob, idea, "raised beds, wheelchair height"))
        await self.sign("bob", await draft_qualify(nb, bob, idea, "accepted"))
        plan = await draft_plan(
            nb,
            carol,
            idea,
            scope="twelve raised beds and a water butt",
            resources="six volunteers for a month",
            low=90_000,
            high=130_000,
            currency="GBP",
        )
        await self.sign("carol", plan)
        seeds = await draft_idea(nb, carol, garden, what="seeds are thrown away", need="a library")
        await self.sign("carol", seeds)
        circle, body = await draft_idea_proposal(
            nb, bob, idea, "Raised beds on the school lot", "We build twelve raised beds."
        )
        body = msgspec.structs.replace(body, review_date=self.days(365))
        pid, _version = await create_proposal(nb, self.key("bob"), circle, body)
        await self.agree(pid.hex(), "bob", "carol")
        return pid.hex()

    async def pitch(self, proposal: str) -> str:
        case = Case(120_000, "GBP", "40 families grow food", "3:1 social return", "plot fees")
        den = self.circles["Angels Den"].hex()
        return await self.sign(
            "bob", await draft_pitch(self.at("bob"), self.key("bob").public, proposal, den, case)
        )

    async def pledges(self, pitch: str) -> None:
        den = self.at("ian")
        ian, grace = self.key("ian").public, self.key("grace").public
        mine = await self.sign(
            "ian", await draft_pledge(den, ian, pitch, 80_000, "GBP", "beds open to everyone")
        )
        hers = await self.sign("grace", await draft_pledge(den, grace, pitch, 40_000, "GBP"))
        await self.sign("ian", await draft_pledge_move(den, ian, mine, "confirmed"))
        await self.sign("grace", await draft_pledge_move(den, grace, hers, "confirmed"))
        await self.sign("ian", await draft_pledge_move(den, ian, mine, "fulfilled"))

    async def deliver(self, pitch: str) -> None:
        nb, bob, carol = self.at("bob"), self.key("bob").public, self.key("carol").public
        garden, den = self.circles["Community Garden"].hex()[:8], self.circles["Angels Den"].hex()
        team = [f"bob:{garden}:requirements", f"ian:{den[:8]}:investment_benefits"]
        project = await self.sign("bob", await draft_project(nb, bob, pitch, team, None))
        beds = await self.sign(
            "carol", await draft_milestone(nb, carol, project, "Twelve beds built", self.days(60))
        )
        for status in ("in_progress", "done"):
            await self.sign("carol", await draft_milestone_set(nb, carol, beds, status))
        day = await self.sign(
            "carol", await draft_milestone(nb, carol, project, "Open day", self.days(120))
        )
        await self.sign("carol", await draft_milestone_set(nb, carol, day, "in_progress"))
        await self.sign("carol", await draft_lesson(nb, carol, project, "Order timber early"))
        measure = await self.sign(
            "bob",
            await draft_measure(
                nb, bob, project, name="families with a bed", target=40, unit="families"
            ),
        )
        for value, on in ((12, self.days(-60)), (27, self.today)):
            await self.sign("bob", await draft_reading(nb, bob, measure, value, on, ""))
        svl = self.circles["Social Value and Learning"].hex()
        for draft in (await draft_shares(nb, carol, project, svl)).drafts:
            await self.sign("carol", draft)


async def build_story(fed: Federation, today: date) -> dict[str, str]:
    """Sign the whole story; the circles' names and ids (hex)."""
    story = Story(fed, today)
    await story.found_circles()
    await fed.settle()  # each node now holds the circles it hosts
    await story.decisions()
    await story.roles()
    proposal = await story.ideas()
    pitch = await story.pitch(proposal)
    await fed.settle()  # the den sees the pitch
    await story.pledges(pitch)
    await fed.settle()  # the neighbourhood sees the pitch funded
    await story.deliver(pitch)  # left for the running nodes to carry
    return {name: circle.hex() for name, circle in story.circles.items()}
