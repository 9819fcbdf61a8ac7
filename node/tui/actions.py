"""What the TUI signs, as the unlocked member: thin calls into :mod:`node.governance` and
:mod:`node.local`, with the checks the CLI makes before it signs.

Every function raises a :class:`NodeError` saying what to do when the action is not
possible, and counts each commit on the session (``Session.wrote``) so open screens
reload. Key work that is slow on purpose (argon2id) is not here: it runs in thread
workers of the setup and unlock screens.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pycrdt

from node.commands.circles import MAX_PURPOSE_CHARS, PROFILE
from node.crypto.keys import KeyPair
from node.domain.documents import YDoc, doc_id
from node.domain.governance.records import ProposalRec, parse_day
from node.errors import AuthorizationError, ConfigError, NodeError
from node.governance import (
    CircleGovernance,
    PositionTaken,
    amend,
    create_proposal,
    load,
    record_position,
)
from node.home import DEFAULT_LISTEN, MemberEntry, NodeHome, check_name
from node.local import create_circle, edit_doc
from node.replica import Replica
from node.tui.proposal_data import ProposalData
from node.tui.session import Session

MAX_TITLE_CHARS = 200


@dataclass(frozen=True)
class FirstRun:
    """What the setup screen asks for; :func:`check_first_run` cleans it."""

    node_name: str
    member_name: str
    passphrase: str = field(repr=False)
    circle_name: str
    purpose: str


def check_first_run(home: NodeHome, form: FirstRun, again: str) -> FirstRun:
    """The cleaned form, or ConfigError / NodeError naming the field to fix."""
    node_name, _listen = home.check_can_init(form.node_name, DEFAULT_LISTEN)
    member_name = check_name(form.member_name, "member name")
    if not form.passphrase:
        raise ConfigError("choose a passphrase: it protects your keys on this node")
    if form.passphrase != again:
        raise ConfigError("the two passphrases differ: type the same passphrase twice")
    circle = check_name(form.circle_name, "circle name")
    purpose = form.purpose.strip()
    if len(purpose) > MAX_PURPOSE_CHARS:
        raise ConfigError(f"the purpose must be at most {MAX_PURPOSE_CHARS} characters")
    return FirstRun(node_name, member_name, form.passphrase, circle, purpose)


def make_keys(home: NodeHome, form: FirstRun) -> tuple[MemberEntry, KeyPair]:
    """Create the node and its first member, both sealed under the one passphrase.
    Slow on purpose (argon2id): call it from a thread worker."""
    home.init(form.node_name, DEFAULT_LISTEN, form.passphrase)
    key = home.create_member(form.member_name, form.passphrase)
    entry = next(e for e in home.members() if e.member == key.public)
    return entry, key


async def new_circle(
    replica: Replica, home: NodeHome, member: MemberEntry, key: KeyPair, name: str, purpose: str
) -> bytes:
    """A circle with the member as first manager, and its profile doc, as
    ``circle-node circle create`` makes it."""
    circle = await create_circle(
        replica,
        key,
        name=name,
        creator_name=member.name,
        home=home.node_public,
        purpose=purpose,
    )

    def write_profile(doc: YDoc) -> None:
        profile = doc.get(PROFILE, type=pycrdt.Map)
        profile["name"] = name
        profile["purpose"] = purpose

    await edit_doc(replica, key, circle, doc_id(circle, PROFILE), write_profile)
    return circle


@dataclass(frozen=True)
class ProposalDraft:
    """What the new-proposal form asks for."""

    title: str
    driver: str
    text: str
    review_date: str  # "" for none


def proposal_body(draft: ProposalDraft) -> ProposalRec:
    """The record to sign, or ConfigError naming the field to fix."""
    fields = {"title": draft.title, "driver": draft.driver, "text": draft.text}
    clean = {name: value.strip() for name, value in fields.items()}
    for name, value in clean.items():
        if not value:
            raise ConfigError(f"the {name} must not be empty")
    if len(clean["title"]) > MAX_TITLE_CHARS:
        raise ConfigError(f"the title must be at most {MAX_TITLE_CHARS} characters")
    day = draft.review_date.strip()
    if day:
        try:
            parse_day(day)
        except NodeError as exc:
            raise ConfigError(f"review date: {exc}") from exc
    return ProposalRec(
        title=clean["title"], driver=clean["driver"], text=clean["text"], review_date=day or None
    )


async def propose(session: Session, circle: bytes, draft: ProposalDraft) -> bytes:
    """Sign a new proposal in ``circle``; its id."""
    body = proposal_body(draft)
    require_writer(session, await load(session.replica, circle))
    pid, _version = await create_proposal(session.replica, session.key, circle, body)
    session.wrote()
    return pid


def require_writer(session: Session, cg: CircleGovernance) -> None:
    """Raise, in the TUI's words, unless the unlocked member holds write level."""
    try:
        cg.require_writer(session.me)
    except AuthorizationError as exc:
        raise AuthorizationError(
            f"{session.member.name} needs write level in this circle to do that; "
            "ask one of its managers"
        ) from exc


def can_act(session: Session, data: ProposalData) -> None:
    """Raise unless the unlocked member can take a position on the proposal now."""
    if not data.is_open:
        raise NodeError(f"this proposal is {data.state}: a change now goes through a review")
    if not data.can_take_part:
        raise AuthorizationError(
            f"{session.member.name} needs write level in circle {data.circle_name} to take "
            "part; ask one of its managers"
        )


async def take_position(
    session: Session, data: ProposalData, position: str, reason: str
) -> PositionTaken:
    """Record a position on the current version (and the decision, if it completes)."""
    can_act(session, data)
    reason = reason.strip()
    if position == "objection" and not reason:
        raise ConfigError("an objection needs a reason: say what harm it would do")
    taken = await record_position(
        session.replica, session.key, data.proposal.hex(), position, reason
    )
    session.wrote()
    return taken


async def amend_proposal(session: Session, data: ProposalData, text: str, note: str) -> int:
    """Sign a new version; it resolves the open objections on the current one. Returns
    the new version's number."""
    can_act(session, data)
    text = text.strip()
    if not text:
        raise ConfigError("the amended text must not be empty")
    _pid, _version = await amend(
        session.replica,
        session.key,
        text,
        data.proposal.hex(),
        strategy="change",
        resolves=list(data.open_objections),
        note=note.strip(),
    )
    session.wrote()
    return data.version_number + 1
