"""JSON-ready views of roles, elections and double-link seats (ids as hex), and their
short text renderings. The views sign nothing and read no clock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from node.domain.auth import AuthState
from node.domain.governance.consent import Proposal
from node.domain.governance.elections import Election, ResultRec, Stamped, parse_keeper_subject
from node.domain.governance.records import PositionRec
from node.domain.governance.roles import Role, SeatView
from node.elections import CircleRoles
from node.errors import ConfigError, NodeError
from node.linking import Linked


def _hex(value: bytes | None) -> str | None:
    return value.hex() if value is not None else None


def role_view(cr: CircleRoles, role: Role, today: str) -> dict[str, Any]:
    current = role.current()
    record = current.record if current else None
    return {
        "role": role.name,
        "domain": role.domain,
        "accountabilities": list(role.definition.record.accountabilities)
        if role.definition
        else [],
        "term_days": role.term_days,
        "keeper": _hex(record.keeper) if record else None,
        "keeper_name": cr.name_of(record.keeper) if record else None,
        "term_end": record.term_end if record else None,
        "holds": role.keeper_on(today) is not None,
        "result": _hex(current.op_id) if current else None,
    }


def proposal_brief(cr: CircleRoles, proposal: Proposal) -> dict[str, Any]:
    """A term or keeper proposal: its state, who is missing, the nominee's position."""
    outcome = cr.cg.outcome(proposal)
    subject = parse_keeper_subject(proposal.body.subject)
    nominee = subject.keeper if subject else None
    held = outcome.positions.get(nominee) if nominee else None
    position = held.record if held else None
    return {
        "proposal": proposal.id.hex(),
        "title": proposal.body.title,
        "state": outcome.state,
        "version": outcome.version.hash.hex(),
        "nominee": _hex(nominee),
        "nominee_name": cr.name_of(nominee) if nominee else None,
        "nominee_position": position.position if isinstance(position, PositionRec) else None,
        "missing": [m.hex() for m in outcome.missing],
        "objections": [
            {"member": s.member.hex(), "name": cr.name_of(s.member), "reason": _reason(s.record)}
            for s in outcome.open_objections
        ],
        "decision": _hex(outcome.decision.op_id) if outcome.decision else None,
    }


def _reason(record: object) -> str:
    return record.reason if isinstance(record, PositionRec) else ""


def _choice(cr: CircleRoles, item: Stamped[Any]) -> dict[str, Any]:
    nominee = item.record.nominee
    return {
        "member": item.member.hex(),
        "name": cr.name_of(item.member),
        "nominee": _hex(nominee),
        "nominee_name": cr.name_of(nominee) if nominee else None,
        "reason": item.record.reason,
        "op": item.op_id.hex(),
    }


def _rounds(cr: CircleRoles, election: Election) -> list[dict[str, Any]]:
    election.round(election.current_round)  # the open round shows even when empty
    rounds = []
    for number, found in sorted(election.rounds.items()):
        failure = found.failure
        choices = found.choices().values()
        rounds.append(
            {
                "round": number,
                "stage": found.stage,
                "nominations": [_choice(cr, s) for _, s in sorted(found.nominations.items())],
                "changes": [_choice(cr, s) for _, s in sorted(found.changes.items())],
                "tally": [
                    {"nominee": n.hex(), "name": cr.name_of(n), "count": count}
                    for n, count in found.tally()
                ],
                "passes": sum(1 for c in choices if c is None),
                "proposals": [proposal_brief(cr, p) for p in found.proposals],
                "failed": None
                if failure is None
                else {
                    "reason": failure.record.reason,
                    "member": failure.member.hex(),
                    "close": failure.record.close,
                    "op": failure.op_id.hex(),
                },
            }
        )
    return rounds


def election_view(cr: CircleRoles, election: Election) -> dict[str, Any]:
    """``election show``: everything about one election."""
    elections = cr.elections
    term = elections.term_proposal(election)
    result = elections.valid_result(election)
    record = result.record if result else None
    return {
        "election": election.id.hex(),
        "circle": cr.circle.hex(),
        "role": election.record.role,
        "term_end": election.record.term_end,
        "phase": elections.phase(election),
        "round": election.current_round,
        "term_proposal": proposal_brief(cr, term) if term else None,
        "rounds": _rounds(cr, election),
        "result": None
        if result is None or record is None
        else {
            "op": result.op_id.hex(),
            "keeper": record.keeper.hex(),
            "keeper_name": cr.name_of(record.keeper),
            "term_end": record.term_end,
            "decision": record.decision.hex(),
            "proposal": record.proposal.hex(),
        },
    }


def election_text(data: dict[str, Any]) -> str:
    lines = [
        f"Election {data['election']}: {data['role']} until {data['term_end'] or '-'}",
        f"  phase   {data['phase']} (round {data['round']})",
    ]
    term = data["term_proposal"]
    if term:
        lines.append(f"  term    proposal {term['proposal'][:12]} {term['state']}")
    for found in data["rounds"]:
        lines.append(f"  round {found['round']} ({found['stage']}):")
        for kind, items in (("nominates", found["nominations"]), ("changes to", found["changes"])):
            for c in items:
                who = c["nominee_name"] or "pass"
                lines.append(f"    {c['name']} {kind} {who}: {c['reason'] or '-'}")
        for p in found["proposals"]:
            lines.append(
                f"    proposed {p['nominee_name']}: {p['state']} "
                f"(nominee: {p['nominee_position'] or 'no position yet'})"
            )
        if found["failed"]:
            lines.append(f"    failed: {found['failed']['reason']}")
    result = data["result"]
    if result:
        lines.append(f"  keeper  {result['keeper_name']} until {result['term_end'] or '-'}")
    return "\n".join(lines)


def seat_view(state: AuthState, view: SeatView) -> dict[str, Any]:
    """A mandate as the parent sees it, with the keeper's membership there now."""
    record, seat = view.record, view.seat
    member = state.current_members().get(record.keeper)
    return {
        "mandate": view.mandate.hex(),
        "child": record.child.hex(),
        "child_name": seat.child_name if seat else None,
        "role": record.role,
        "keeper": record.keeper.hex(),
        "keeper_name": seat.keeper_name if seat else None,
        "term_end": record.term_end,
        "status": view.status,
        "holds": view.holds,
        "problem": view.problem or None,
        "member_level": member.level.name.lower() if member else None,
        "seated_by_mandate": member is not None and member.decision == view.mandate,
    }


def seats_text(data: dict[str, Any]) -> str:
    lines = [f"Seats in circle {data['parent'][:8]} on {data['today']}:"]
    for s in data["seats"]:
        who = s["keeper_name"] or s["keeper"][:8]
        line = f"  {who:<12} {s['role']:<15} of {s['child_name'] or s['child'][:8]}"
        line += f"  until {s['term_end'] or '-'}  {s['status']}"
        lines.append(line + (f": {s['problem']}" if s["problem"] else ""))
    return "\n".join(lines) if data["seats"] else "No double-link seats in this circle."


def full_id(text: str) -> bytes:
    cleaned = text.strip().lower()
    if len(cleaned) != 32 or any(c not in "0123456789abcdef" for c in cleaned):
        raise ConfigError("with --evidence, give the child circle's full 32-digit id")
    return bytes.fromhex(cleaned)


def read_proofs(path: str, child: bytes, parent: bytes) -> list[list[bytes]]:
    try:
        data = json.loads(Path(path).read_text())
        proofs = [[bytes.fromhex(w) for w in proof] for proof in data["proofs"]]
        named = (bytes.fromhex(data["child"]), bytes.fromhex(data["parent"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not an evidence file (`circle evidence`): {exc}") from exc
    if named != (child, parent):
        raise NodeError(f"{path} is the evidence of another child or parent circle")
    return proofs


def linked_view(item: Linked) -> dict[str, Any]:
    seat = item.seat
    return {
        "role": seat.role,
        "keeper": seat.keeper.hex(),
        "keeper_name": seat.keeper_name,
        "term_end": seat.term_end,
        "mandate": item.mandate.hex(),
        "recorded": item.recorded,
        "member_op": item.member_op.hex() if item.member_op else None,
    }


def result_fields(record: ResultRec) -> dict[str, Any]:
    return {
        "keeper": record.keeper.hex(),
        "role": record.role,
        "term_end": record.term_end,
        "decision": record.decision.hex(),
        "proposal": record.proposal.hex(),
    }
