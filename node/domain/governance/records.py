"""Governance record bodies: the signed statements S3 work leaves behind.

Every record is a msgpack map whose ``t`` field names its type (docs/governance.md lists
them all). Records are self-contained: each names what it refers to by id, so any node
can recompute every outcome from the signed records alone. Ids:
- a proposal, election, idea, pitch, project... is identified by ``record_id`` = the first
  16 bytes of the op id of the record that created it;
- a proposal version is identified by its content hash (:func:`version_hash`).

Money is integer minor units (never floats: pycrdt and msgpack floats would round).
Dates are ISO ``YYYY-MM-DD`` strings, display and scheduling only: no rule depends on a
wall clock.
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Annotated, Literal

import msgspec

from node.domain.governance.codec import Codec
from node.errors import DecodeError

Id16 = Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
Id32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=40_000)]
Short = Annotated[str, msgspec.Meta(max_length=2_000)]
Day = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]
Money = Annotated[int, msgspec.Meta(ge=0, le=10**15)]
Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]

Stage = Literal["draft", "clarifying", "reactions", "consent_round", "withdrawn", "deferred"]
PositionKind = Literal["consent", "concern", "objection"]
Strategy = Literal["change", "defer", "alternative", "research", "accept_and_monitor"]


class _Record(msgspec.Struct, frozen=True, tag_field="t", forbid_unknown_fields=True):
    """Base of every record body."""


# ---- proposals and consent --------------------------------------------------------------


class ProposalRec(_Record, frozen=True, tag="proposal"):
    """A proposal: its driver, first version of the text, and tuners."""

    title: Title
    driver: Text
    text: Text
    review_date: Day | None = None
    review_every_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None
    criteria: list[Short] = []
    idea: Id16 | None = None  # the qualified driver/idea it answers, if any
    join_request: Id16 | None = None  # a join request it decides, if any
    review_of: Id16 | None = None  # the agreement whose review opened it, if any
    election: Id16 | None = None  # the election whose nominee it proposes, if any
    subject: Short = ""  # what else it decides, e.g. "objection:<hex>" for an objection test


class AmendRec(_Record, frozen=True, tag="amend"):
    """A new version of a proposal's text, integrating objections or concerns."""

    proposal: Id16
    base: Id32  # the version hash this amends
    text: Text
    strategy: Strategy = "change"
    resolves: list[Id32] = []  # objection position op ids it answers
    note: Short = ""


class StageRec(_Record, frozen=True, tag="stage"):
    """Move a proposal to an S3 stage (or withdraw / defer it)."""

    proposal: Id16
    stage: Stage
    deadline: Day | None = None


class QuestionRec(_Record, frozen=True, tag="question"):
    """A clarifying question (or its answer, with ``answers``)."""

    proposal: Id16
    text: Short
    answers: Id32 | None = None


class ReactionRec(_Record, frozen=True, tag="reaction"):
    proposal: Id16
    text: Short


class PositionRec(_Record, frozen=True, tag="position"):
    """A member's position on one exact version of a proposal."""

    proposal: Id16
    version: Id32
    position: PositionKind
    reason: Short = ""


class ObjectionTestRec(_Record, frozen=True, tag="objection_test"):
    """The circle tested an objection: it does not qualify (or it does).

    Counts only when signed by the objector themself, or when it cites an agreed
    proposal (``decision``) that settled the test by consent.
    """

    objection: Id32
    qualifies: bool
    decision: Id16 | None = None
    note: Short = ""


class DecisionRec(_Record, frozen=True, tag="decision"):
    """The consent decision on one version: the positions that make it."""

    proposal: Id16
    version: Id32
    positions: list[Id32]
    review_date: Day | None = None


class ReviewRec(_Record, frozen=True, tag="review"):
    """An agreement's review: keep (with a new date), amend (opens a proposal) or retire."""

    agreement: Id16
    outcome: Literal["keep", "amend", "retire"]
    next_review: Day | None = None
    proposal: Id16 | None = None
    note: Short = ""


GovernanceRecord = (
    ProposalRec
    | AmendRec
    | StageRec
    | QuestionRec
    | ReactionRec
    | PositionRec
    | ObjectionTestRec
    | DecisionRec
    | ReviewRec
)

_CODEC: Codec[GovernanceRecord] = Codec(GovernanceRecord, "a governance record")
encode_record = _CODEC.encode  # refuses a record that would not decode, before signing
decode_record = _CODEC.decode
try_decode = _CODEC.try_decode  # None for a record type of another area


def record_id(op_id: bytes) -> bytes:
    return op_id[:16]


def version_hash(proposal: bytes, text: str) -> bytes:
    """The content hash that positions bind to: proposal id and exact text."""
    h = hashlib.blake2b(b"circle-node/version/v1", digest_size=32)
    h.update(proposal)
    h.update(text.encode())
    return h.digest()


def parse_day(text: str) -> str:
    """Validate a ``YYYY-MM-DD`` date given by a user; returns it unchanged."""
    try:
        date.fromisoformat(text)
    except ValueError as exc:
        raise DecodeError(f"{text!r} is not a date: use YYYY-MM-DD") from exc
    return text
