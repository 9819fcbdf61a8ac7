"""Authorization of a circle: a pure fold over its signed ``genesis`` and ``auth`` ops.

Model (docs/protocol.md, "Authorization"):
- Levels ``read < write < manage``. The genesis author holds ``manage`` from seq 1.
- Every author key (a member key or one of its device keys) has a *level function* over its
  own seq numbers: a list of segments ``(boundary, level)``; the level at seq ``s`` is the
  level of the last segment whose boundary is <= ``s``. A level change for a member names,
  per key, the last seq written under the previous level (``cuts``); the new level holds
  from ``cut + 1``. Revocation is a level change to ``none``: ops at or below the cut stay
  valid on every node, later ones do not. No wall clock is involved.
- The auth ops form a DAG (``deps`` plus each author's previous auth op). They are folded
  in a deterministic topological order; among events ready at the same time the order is
  ``(is_removal, level, op_id)`` ascending, so removals land after adds, higher levels
  after lower ones. An event whose author is not authorized *at that point of the fold*
  is skipped. The same set of auth ops gives the same state on every replica.
- A ycid (Yjs client id) belongs to exactly one key per circle; a registration reusing
  one is skipped.

Everything here is pure: no I/O, no crypto, no clocks.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Annotated

import msgspec

from node.errors import DecodeError

Bytes32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Bytes16 = Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=4000)]
YcId = Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


class Level(IntEnum):
    """Access levels, ordered."""

    NONE = 0
    READ = 1
    WRITE = 2
    MANAGE = 3

    @classmethod
    def parse(cls, text: str) -> Level:
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"unknown level {text!r}: use read, write or manage") from None


# ---- op bodies -------------------------------------------------------------------------


class Genesis(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Body of a ``genesis`` op: creates a circle with its author as first manager."""

    name: Name
    creator_name: Name
    home: Bytes32
    ycid: YcId
    nonce: Bytes16
    purpose: Text = ""
    parent: Bytes16 | None = None


class SetMember(msgspec.Struct, frozen=True, tag="member", forbid_unknown_fields=True):
    """Add a member, change its level, or remove it (level ``none``)."""

    member: Bytes32
    level: Level
    name: Name
    cuts: dict[Bytes32, Seq] = {}
    home: Bytes32 | None = None
    ycid: YcId | None = None
    decision: Bytes32 | None = None


class SetDevice(msgspec.Struct, frozen=True, tag="device", forbid_unknown_fields=True):
    """A member registers (or retires) one of its own device keys with its own ycid."""

    device: Bytes32
    ycid: YcId
    active: bool = True
    cut: Seq = 0
    home: Bytes32 | None = None  # the node the device syncs through: it becomes a host


class SetHost(msgspec.Struct, frozen=True, tag="host", forbid_unknown_fields=True):
    """A node may (or may no longer) host this circle, e.g. a partner organisation's."""

    node: Bytes32
    hosting: bool = True
    note: Text = ""


AuthBody = SetMember | SetDevice | SetHost

_auth_decoder = msgspec.msgpack.Decoder(AuthBody)
_genesis_decoder = msgspec.msgpack.Decoder(Genesis)
_encoder = msgspec.msgpack.Encoder()


def encode_body(body: Genesis | AuthBody) -> bytes:
    return _encoder.encode(body)


def decode_auth_body(data: bytes) -> AuthBody:
    try:
        body: AuthBody = _auth_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a str
        raise DecodeError(f"malformed auth body: {exc}") from exc
    return body


def decode_genesis(data: bytes) -> Genesis:
    try:
        return _genesis_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a str
        raise DecodeError(f"malformed genesis body: {exc}") from exc


# ---- state -------------------------------------------------------------------------------


@dataclass
class KeyState:
    """One author key of the circle: a member key or a device key of a member."""

    member: bytes
    ycid: int
    boundaries: list[int] = field(default_factory=list)
    levels: list[Level] = field(default_factory=list)
    home: bytes | None = None  # a device key's home node (member keys: MemberInfo.home)
    retired: bool = False  # a device its member retired: no later op raises its level

    def set_from(self, boundary: int, level: Level) -> None:
        """From ``boundary`` on, the key holds ``level`` (overrides later segments)."""
        cut = bisect.bisect_left(self.boundaries, boundary)
        del self.boundaries[cut:]
        del self.levels[cut:]
        self.boundaries.append(boundary)
        self.levels.append(level)

    def level_at(self, seq: int) -> Level:
        i = bisect.bisect_right(self.boundaries, seq) - 1
        return self.levels[i] if i >= 0 else Level.NONE

    @property
    def current(self) -> Level:
        return self.levels[-1] if self.levels else Level.NONE


@dataclass
class MemberInfo:
    name: str
    home: bytes | None
    level: Level
    added_by: bytes  # op id of the event that last set the level
    decision: bytes | None = None


@dataclass
class AuthState:
    """The resolved authorization of a circle at some set of auth ops."""

    circle: bytes
    genesis: Genesis | None = None
    keys: dict[bytes, KeyState] = field(default_factory=dict)
    members: dict[bytes, MemberInfo] = field(default_factory=dict)
    explicit_hosts: dict[bytes, bool] = field(default_factory=dict)
    ycids: dict[int, bytes] = field(default_factory=dict)
    applied: list[bytes] = field(default_factory=list)
    skipped: list[bytes] = field(default_factory=list)

    def level_at(self, author: bytes, seq: int) -> Level:
        key = self.keys.get(author)
        return key.level_at(seq) if key else Level.NONE

    def ycid_of(self, author: bytes) -> int | None:
        key = self.keys.get(author)
        return key.ycid if key else None

    def member_of(self, author: bytes) -> bytes | None:
        key = self.keys.get(author)
        return key.member if key else None

    def hosts(self) -> set[bytes]:
        """Nodes that may hold this circle: homes of current members and of their active
        devices, plus explicit hosts."""
        nodes = {
            info.home
            for info in self.members.values()
            if info.home is not None and info.level >= Level.READ
        }
        nodes.update(
            ks.home for ks in self.keys.values() if ks.home is not None and ks.current >= Level.READ
        )
        nodes.update(node for node, on in self.explicit_hosts.items() if on)
        for node, on in self.explicit_hosts.items():
            if not on:
                nodes.discard(node)
        return nodes

    def current_members(self) -> dict[bytes, MemberInfo]:
        return {pk: m for pk, m in self.members.items() if m.level > Level.NONE}


@dataclass(frozen=True, slots=True)
class AuthEntry:
    """An accepted ``genesis`` or ``auth`` op, as the fold needs it."""

    op_id: bytes
    author: bytes
    seq: int
    deps: tuple[bytes, ...]
    body: Genesis | AuthBody
    prev_auth: bytes | None  # this author's previous auth op in the circle

    @property
    def order_key(self) -> tuple[int, int, bytes]:
        body = self.body
        if isinstance(body, Genesis):
            return (0, int(Level.MANAGE), self.op_id)
        if isinstance(body, SetMember):
            return (int(body.level == Level.NONE), int(body.level), self.op_id)
        if isinstance(body, SetDevice):
            return (int(not body.active), 0, self.op_id)
        return (int(not body.hosting), 0, self.op_id)


def required_level(body: Genesis | AuthBody) -> Level:
    """The level an author needs to make this auth change."""
    if isinstance(body, SetDevice):
        return Level.READ
    return Level.MANAGE


def topological_order(entries: Mapping[bytes, AuthEntry]) -> list[AuthEntry]:
    """Kahn's algorithm with the ``order_key`` tie-break; edges outside ``entries`` ignored."""
    children: dict[bytes, list[bytes]] = {op_id: [] for op_id in entries}
    indegree: dict[bytes, int] = {}
    for op_id, entry in entries.items():
        parents = {d for d in entry.deps if d in entries}
        if entry.prev_auth is not None and entry.prev_auth in entries:
            parents.add(entry.prev_auth)
        indegree[op_id] = len(parents)
        for parent in parents:
            children[parent].append(op_id)
    ready = [(entries[o].order_key, o) for o, n in indegree.items() if n == 0]
    heapq.heapify(ready)
    order: list[AuthEntry] = []
    while ready:
        _, op_id = heapq.heappop(ready)
        order.append(entries[op_id])
        for child in children[op_id]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(ready, (entries[child].order_key, child))
    return order


def fold(circle: bytes, entries: Mapping[bytes, AuthEntry]) -> AuthState:
    """Resolve the auth state of ``circle`` from a set of accepted auth ops.

    One pass applies ops in topological order, skipping those whose author lacks the
    level at that point. An op applied early can still be one its author had no right to
    make: a manager's add that ran before a concurrent removal cutting that manager below
    the add's seq. So the fold repeats without every applied op whose author, in the
    resulting state, lacks the level at the op's seq, until none is left. Each round only
    drops ops, so it ends, and the result depends only on the set of ops.
    """
    candidates = dict(entries)
    while True:
        state = _fold_once(circle, candidates)
        unjustified = [
            op_id
            for op_id in state.applied
            if not isinstance(candidates[op_id].body, Genesis)
            and state.level_at(candidates[op_id].author, candidates[op_id].seq)
            < required_level(candidates[op_id].body)
        ]
        if not unjustified:
            break
        for op_id in unjustified:
            del candidates[op_id]
    applied = set(state.applied)
    state.skipped = [e.op_id for e in topological_order(entries) if e.op_id not in applied]
    return state


def _fold_once(circle: bytes, entries: Mapping[bytes, AuthEntry]) -> AuthState:
    state = AuthState(circle=circle)
    for entry in topological_order(entries):
        if _apply(state, entry):
            state.applied.append(entry.op_id)
        else:
            state.skipped.append(entry.op_id)
    return state


def _apply(state: AuthState, entry: AuthEntry) -> bool:
    body = entry.body
    if isinstance(body, Genesis):
        if state.genesis is not None or entry.op_id[:16] != state.circle:
            return False
        state.genesis = body
        state.ycids[body.ycid] = entry.author
        state.keys[entry.author] = KeyState(member=entry.author, ycid=body.ycid)
        state.keys[entry.author].set_from(1, Level.MANAGE)
        state.members[entry.author] = MemberInfo(
            body.creator_name, body.home, Level.MANAGE, entry.op_id
        )
        return True
    if state.level_at(entry.author, entry.seq) < required_level(body):
        return False
    if isinstance(body, SetMember):
        return _apply_member(state, entry, body)
    if isinstance(body, SetDevice):
        return _apply_device(state, entry, body)
    state.explicit_hosts[body.node] = body.hosting
    return True


def _apply_member(state: AuthState, entry: AuthEntry, body: SetMember) -> bool:
    key = state.keys.get(body.member)
    if key is None:
        if body.level == Level.NONE:
            return False
        ycid = body.ycid
        if ycid is None or ycid in state.ycids:
            return False
        key = state.keys[body.member] = KeyState(member=body.member, ycid=ycid)
        state.ycids[ycid] = body.member
    elif key.member != body.member:
        return False  # a device key cannot be made a member in its own right
    previous = state.members.get(body.member)
    home = body.home if body.home is not None else (previous.home if previous else None)
    state.members[body.member] = MemberInfo(body.name, home, body.level, entry.op_id, body.decision)
    for author, key_state in state.keys.items():
        if key_state.member == body.member and not (key_state.retired and body.level):
            key_state.set_from(body.cuts.get(author, 0) + 1, body.level)
    return True


def _apply_device(state: AuthState, entry: AuthEntry, body: SetDevice) -> bool:
    member = state.keys[entry.author].member
    if member != entry.author:
        return False  # only a member key registers devices
    existing = state.keys.get(body.device)
    if body.active:
        if existing is not None or body.ycid in state.ycids:
            return False
        device = KeyState(member=member, ycid=body.ycid, home=body.home)
        device.set_from(1, state.keys[member].current)
        state.keys[body.device] = device
        state.ycids[body.ycid] = body.device
        return True
    if existing is None or existing.member != member:
        return False
    existing.set_from(body.cut + 1, Level.NONE)
    existing.retired = True
    return True


def closure(entries: Mapping[bytes, AuthEntry], heads: Iterable[bytes]) -> dict[bytes, AuthEntry]:
    """The auth ops causally at or before ``heads`` (deps and author chains)."""
    seen: dict[bytes, AuthEntry] = {}
    stack = [h for h in heads if h in entries]
    while stack:
        op_id = stack.pop()
        if op_id in seen:
            continue
        entry = entries[op_id]
        seen[op_id] = entry
        stack.extend(d for d in entry.deps if d in entries and d not in seen)
        if entry.prev_auth is not None and entry.prev_auth not in seen:
            stack.append(entry.prev_auth)
    return seen


def heads(entries: Mapping[bytes, AuthEntry]) -> list[bytes]:
    """Auth ops no other auth op depends on: what a new op should cite as ``deps``."""
    cited: set[bytes] = set()
    for entry in entries.values():
        cited.update(entry.deps)
        if entry.prev_auth is not None:
            cited.add(entry.prev_auth)
    return sorted(op_id for op_id in entries if op_id not in cited)
