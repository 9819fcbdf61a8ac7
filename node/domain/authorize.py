"""Deciding whether an op is authorized: as of its ``deps``, and now.

An op is *valid* when its author holds the required level at the op's seq both in the auth
state as of its ``deps`` (what the author could see when writing) and in the current state
(all auth ops this node holds). Allowed then but not now is a *soft fail*: the op is kept as
evidence but neither applied nor forwarded. Not allowed then is a rejection (``restricted``).

:class:`AuthLog` keeps one circle's accepted auth ops and memoizes folded states, so the
per-op check is a dictionary lookup and a bisect.
"""

from __future__ import annotations

from collections import OrderedDict
from enum import Enum

import msgspec

from node.domain.auth import (
    AuthBody,
    AuthEntry,
    AuthState,
    Genesis,
    Level,
    closure,
    fold,
    heads,
    required_level,
)
from node.errors import DecodeError

# Record types that a member with only ``read`` may sign (sharing ideas and drivers,
# co-design notes, asking to join). Every other record needs ``write``.
READ_LEVEL_RECORDS = frozenset({"idea", "driver", "note", "join_request", "comment"})


class Verdict(Enum):
    VALID = "valid"
    SOFT_FAIL = "soft_failed"
    RESTRICTED = "restricted"


class _RecordType(msgspec.Struct):
    t: str


_record_type = msgspec.msgpack.Decoder(_RecordType)


def record_type(body: bytes) -> str:
    """The ``t`` field of a record body (every record is a msgpack map with one)."""
    try:
        return _record_type.decode(body).t
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a str
        raise DecodeError(f"malformed record body: {exc}") from exc


def record_required_level(body: bytes) -> Level:
    return Level.READ if record_type(body) in READ_LEVEL_RECORDS else Level.WRITE


class AuthLog:
    """One circle's accepted auth ops with memoized folds."""

    def __init__(self, circle: bytes, *, cache_size: int = 256) -> None:
        self.circle = circle
        self.entries: dict[bytes, AuthEntry] = {}
        # op ids that are known but void: equivocation evidence, and auth ops citing a void
        # op. An op citing a void dep is never authorized by it (soft fail), on any replica.
        self.void: set[bytes] = set()
        self.genesis_author: bytes | None = None
        self.last_auth_by_author: dict[bytes, bytes] = {}
        self._full: AuthState | None = None
        self._as_of: OrderedDict[tuple[bytes, ...], AuthState] = OrderedDict()
        self._cache_size = cache_size

    def add(
        self,
        op_id: bytes,
        author: bytes,
        seq: int,
        deps: tuple[bytes, ...],
        body: Genesis | AuthBody,
    ) -> bool:
        """Add an accepted auth op; one citing a void op becomes void itself (False)."""
        if any(d in self.void for d in deps):
            self.void.add(op_id)
            return False
        entry = AuthEntry(op_id, author, seq, deps, body, self.last_auth_by_author.get(author))
        self.entries[op_id] = entry
        self.last_auth_by_author[author] = op_id
        if isinstance(body, Genesis):
            self.genesis_author = author
        self._full = None
        return True

    def discard(self, op_ids: set[bytes]) -> None:
        """Make ops void (an equivocating author's, from the fork on), and with them every
        auth op that cites a void op, transitively."""
        self.void |= op_ids
        for op_id in op_ids:
            self.entries.pop(op_id, None)
        changed = True
        while changed:
            doomed = [e.op_id for e in self.entries.values() if any(d in self.void for d in e.deps)]
            changed = bool(doomed)
            for op_id in doomed:
                self.void.add(op_id)
                del self.entries[op_id]
        self.last_auth_by_author = {}
        for entry in sorted(self.entries.values(), key=lambda e: e.seq):
            self.last_auth_by_author[entry.author] = entry.op_id
        self._full = None
        self._as_of.clear()

    def cites_void(self, deps: tuple[bytes, ...]) -> bool:
        void = self.void
        return bool(void) and any(d in void for d in deps)

    def full(self) -> AuthState:
        if self._full is None:
            self._full = fold(self.circle, self.entries)
        return self._full

    def as_of(self, deps: tuple[bytes, ...]) -> AuthState:
        key = deps  # honest authors send deps sorted; any order folds the same closure
        state = self._as_of.get(key)
        if state is None:
            state = fold(self.circle, closure(self.entries, deps))
            self._as_of[key] = state
            if len(self._as_of) > self._cache_size:
                self._as_of.popitem(last=False)
        else:
            self._as_of.move_to_end(key)
        return state

    def heads(self) -> list[bytes]:
        return heads(self.entries)

    def missing(self, deps: tuple[bytes, ...]) -> list[bytes]:
        """Deps this node has not seen at all (void ones are known)."""
        return [d for d in deps if d not in self.entries and d not in self.void]


def judge(
    log: AuthLog, *, author: bytes, seq: int, deps: tuple[bytes, ...], needed: Level
) -> Verdict:
    """Authorize a non-auth op (``y`` or ``record``) by ``author`` at ``seq``."""
    if log.cites_void(deps):
        return Verdict.SOFT_FAIL
    if log.as_of(deps).level_at(author, seq) < needed:
        return Verdict.RESTRICTED
    if log.full().level_at(author, seq) < needed:
        return Verdict.SOFT_FAIL
    return Verdict.VALID


def judge_auth(
    log: AuthLog, *, author: bytes, seq: int, deps: tuple[bytes, ...], body: AuthBody
) -> Verdict:
    """Authorize an auth op before it is added: its author's level as of its deps."""
    if log.cites_void(deps):
        return Verdict.SOFT_FAIL
    if log.as_of(deps).level_at(author, seq) < required_level(body):
        return Verdict.RESTRICTED
    return Verdict.VALID
