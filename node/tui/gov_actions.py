"""What the elections, Angels Den, ideas and join-request screens sign, as the unlocked
member: thin calls into :mod:`node.elections`, :mod:`node.funding` and :mod:`node.ideas`,
the services the CLI uses, so every check and every refusal is the same.

Each function raises a :class:`NodeError` saying what to do (the CLI's "--as" and
"--flag" hints reworded for the TUI) and counts each commit on the session.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal, InvalidOperation

from node import elections, funding, ideas
from node.domain.auth import Level
from node.errors import AuthorizationError, ConfigError, NodeError
from node.governance import create_proposal
from node.tui.data import money as money  # kept here for the screens that import it
from node.tui.session import Session

_CLI_HINTS = [
    (re.compile(r"; act as one with --as$"), ""),
    (re.compile(r": --reason '\.\.\.'$"), ""),
    (re.compile(r" --(text|amount|title)\b"), r" \1"),
    (re.compile(r"`circle-node join propose REQUEST`"), "p on the join requests screen"),
]


def tui_words(text: str) -> str:
    """A service's message without the CLI's flag hints."""
    for pattern, replacement in _CLI_HINTS:
        text = pattern.sub(replacement, text)
    return text


@asynccontextmanager
async def acting(session: Session) -> AsyncIterator[None]:
    """Re-raise a refusal in the TUI's words, naming who is acting."""
    try:
        yield
    except AuthorizationError as exc:
        raise AuthorizationError(
            f"{tui_words(str(exc))} (you are {session.member.name}; ask one of the "
            "circle's managers)"
        ) from exc
    except NodeError as exc:
        raise type(exc)(tui_words(str(exc))) from exc


def minor_units(text: str) -> int:
    """``"250"`` or ``"250.50"`` (the currency's units, up to 2 decimals) -> 25050."""
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation as exc:
        raise ConfigError(f"{text!r} is not an amount: type e.g. 250 or 250.50") from exc
    if not value.is_finite():
        raise ConfigError(f"{text!r} is not an amount: type e.g. 250 or 250.50")
    minor = value * 100
    if minor != minor.to_integral_value() or not 1 <= minor <= 10**15:
        raise ConfigError(f"{text!r}: give a positive amount with at most 2 decimals")
    return int(minor)


# ---- elections --------------------------------------------------------------------------


async def start_election(
    session: Session, circle: bytes, role: str, term_end: str, today: str
) -> bytes:
    role = role.strip()
    elections.check_role_name(role)
    async with acting(session):
        eid, _pid, _version = await elections.start_election(
            session.replica, session.key, circle, role, term_end.strip() or None, today
        )
    session.wrote()
    return eid


async def nominate(
    session: Session, election: bytes, nominee: str, reason: str, *, change: bool
) -> str:
    """Nominate (or pass, with an empty ``nominee``), or change a nomination; what was
    recorded, in words."""
    who = nominee.strip() or None
    async with acting(session):
        _e, number, _n = await elections.nominate(
            session.replica, session.key, election.hex(), who, reason.strip(), change=change
        )
    session.wrote()
    what = "change" if change else "nomination"
    return f"Recorded your {what} in round {number}: {who or 'pass'}."


async def propose_nominee(session: Session, election: bytes, nominee: str) -> bytes:
    if not nominee.strip():
        raise ConfigError("name the nominee to propose")
    async with acting(session):
        pid, _version, _member, _round = await elections.propose(
            session.replica, session.key, election.hex(), nominee.strip()
        )
    session.wrote()
    return pid


async def election_position(
    session: Session, election: bytes, position: str, reason: str
) -> tuple[str, bool]:
    """A position on the election's open proposal: ``(its state, result recorded)``."""
    if position == "objection" and not reason.strip():
        raise ConfigError("an objection needs a reason: say what harm it would do")
    async with acting(session):
        _pid, state, result = await elections.election_position(
            session.replica, session.key, election.hex(), position, reason.strip()
        )
    session.wrote()
    return state, result is not None


async def fail_round(session: Session, election: bytes, reason: str) -> int:
    if not reason.strip():
        raise ConfigError("say why the round found no keeper")
    async with acting(session):
        _e, number = await elections.fail_round(
            session.replica, session.key, election.hex(), reason.strip(), close=False
        )
    session.wrote()
    return number


# ---- Angels Den -------------------------------------------------------------------------


async def pledge(session: Session, pitch: bytes, amount: str, conditions: str) -> bytes:
    minor = minor_units(amount)
    async with acting(session):
        draft = await funding.draft_pledge(
            session.replica, session.me, pitch.hex(), minor, None, conditions.strip()
        )
        op = await ideas.commit(session.replica, session.key, draft)
    session.wrote()
    return op


async def move_pledge(session: Session, pledge_id: bytes, to: str) -> None:
    async with acting(session):
        draft = await funding.draft_pledge_move(session.replica, session.me, pledge_id.hex(), to)
        await ideas.commit(session.replica, session.key, draft)
    session.wrote()


# ---- ideas and join requests ------------------------------------------------------------


async def share_idea(session: Session, circle: bytes, text: str) -> bytes:
    if not text.strip():
        raise ConfigError("the idea is empty: say what you have in mind")
    async with acting(session):
        draft = await ideas.draft_share(session.replica, session.me, circle.hex(), text=text)
        op = await ideas.commit(session.replica, session.key, draft)
    session.wrote()
    return op


async def add_note(session: Session, idea: bytes, text: str) -> None:
    if not text.strip():
        raise ConfigError("the note is empty")
    async with acting(session):
        draft = await ideas.draft_note(session.replica, session.me, idea.hex(), text)
        await ideas.commit(session.replica, session.key, draft)
    session.wrote()


async def propose_join(session: Session, request: bytes) -> tuple[bytes, bytes]:
    """Open the consent proposal deciding a join request: ``(circle, proposal)``."""
    async with acting(session):
        circle, body = await ideas.draft_join_proposal(session.replica, session.me, request.hex())
        pid, _version = await create_proposal(session.replica, session.key, circle, body)
    session.wrote()
    return circle, pid


async def admit(session: Session, request: bytes) -> str:
    """Add the agreed requester as a write member (a manager's act); their name."""
    async with acting(session):
        admission = await ideas.draft_admission(
            session.replica, session.me, request.hex(), Level.WRITE
        )
        await ideas.admit(session.replica, session.key, admission)
    session.wrote()
    return admission.card.name
