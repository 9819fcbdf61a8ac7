"""What a readable export holds, as one JSON-ready object (ids as hex).

Built only from records stored as valid, through the same folds the CLI views use, so an
export says exactly what `proposal show`, `logbook`, `election show` and `pitch show`
would. Per circle: members, the logbook, agreements, decisions with the positions each
rests on (who consented, or raised a concern, to which version), every proposal's
positions per version, roles and elections. Across the chosen circles: pitches with their
pledges, and projects with their measures and readings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from node.commands.election_views import election_view, role_view
from node.commands.governance_views import agreement_view, proposal_view
from node.domain.governance.consent import Signed
from node.domain.governance.logbook import day_of
from node.domain.governance.records import DecisionRec, PositionRec
from node.elections import load_roles
from node.funding import load_held, pitch_view, project_view
from node.governance import CircleGovernance, circle_logbook
from node.replica import Replica

FORMAT = "circle-node export"
VERSION = 1
Progress = Callable[[str], None]


def _position_row(cg: CircleGovernance, signed: Signed) -> dict[str, Any]:
    record = signed.record
    assert isinstance(record, PositionRec)
    proposal = cg.gov.proposals.get(record.proposal)
    version = proposal.versions.get(record.version) if proposal else None
    return {
        "op": signed.op_id.hex(),
        "member": signed.member.hex(),
        "name": cg.member_name(signed.member),
        "position": record.position,
        "reason": record.reason,
        "version": record.version.hex(),
        "version_number": version.number if version else None,
        "date": day_of(signed.ts),
    }


def decision_rows(cg: CircleGovernance) -> list[dict[str, Any]]:
    """Every decision record, whether it holds, and the signed positions it lists."""
    rows = []
    for decision in sorted(cg.gov.decisions, key=lambda d: (d.ts, d.op_id)):
        record = decision.record
        assert isinstance(record, DecisionRec)
        proposal = cg.gov.proposals.get(record.proposal)
        version = proposal.versions.get(record.version) if proposal else None
        listed = [cg.gov.by_op.get(op) for op in record.positions]
        positions = [
            _position_row(cg, s)
            for s in listed
            if s is not None and isinstance(s.record, PositionRec)
        ]
        problem = cg.decision_problem(decision)
        rows.append(
            {
                "decision": decision.op_id.hex(),
                "proposal": record.proposal.hex(),
                "title": proposal.body.title if proposal else "",
                "version": record.version.hex(),
                "version_number": version.number if version else None,
                "text": version.text if version else "",
                "decided": day_of(decision.ts),
                "recorded_by": cg.member_name(decision.member),
                "review_date": record.review_date,
                "holds": problem is None,
                "problem": problem,
                "positions": positions,
            }
        )
    return rows


def _members(cg: CircleGovernance) -> list[dict[str, Any]]:
    members = cg.log.full().members
    return [
        {"member": m.hex(), "name": info.name, "level": info.level.name.lower()}
        for m, info in sorted(members.items(), key=lambda kv: (kv[1].name, kv[0]))
    ]


async def circle_export(replica: Replica, circle: bytes, today: str) -> dict[str, Any]:
    """Everything a readable export says about one circle."""
    cr = await load_roles(replica, circle)
    cg = cr.cg
    genesis = cg.log.full().genesis
    proposals = sorted(cg.gov.proposals.values(), key=lambda p: (p.ts, p.id))
    elections = sorted(cr.elections.elections.values(), key=lambda e: (e.ts, e.id))
    return {
        "circle": circle.hex(),
        "name": genesis.name if genesis else "",
        "purpose": genesis.purpose if genesis else "",
        "members": _members(cg),
        "logbook": [e.as_dict() for e in await circle_logbook(replica, circle)],
        "agreements": [agreement_view(cg, a, today) for a in cg.agreements()],
        "decisions": decision_rows(cg),
        "proposals": [proposal_view(cg, p) for p in proposals],
        "roles": [role_view(cr, r, today) for _, r in sorted(cr.roles().items())],
        "elections": [election_view(cr, e) for e in elections],
    }


async def collect(
    replica: Replica,
    circles: Sequence[bytes],
    *,
    today: date | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The whole export of ``circles`` as one JSON-ready object."""
    day = (today or date.today()).isoformat()
    chosen = set(circles)
    out: list[dict[str, Any]] = []
    for number, circle in enumerate(circles, start=1):
        if progress is not None:
            progress(f"circle {number}/{len(circles)} {circle.hex()[:8]}")
        out.append(await circle_export(replica, circle, day))
    held = await load_held(replica)
    pitches = [
        pitch_view(held, p)
        for _, p in sorted(held.funding.pitches.items())
        if p.entry.circle in chosen or p.body.den in chosen
    ]
    for view in pitches:  # pledges are signed in the den: only the chosen circles' show
        view["pledges"] = [p for p in view["pledges"] if bytes.fromhex(view["den"]) in chosen]
    projects = [
        project_view(held, p)
        for _, p in sorted(held.funding.projects.items())
        if p.entry.circle in chosen
    ]
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported": day,
        "circles": out,
        "pitches": pitches,
        "projects": projects,
    }
