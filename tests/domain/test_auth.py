"""Tests for node.domain.auth: the pure fold of a circle's genesis and auth ops (no I/O)."""

from __future__ import annotations

import hashlib
import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from node.domain.auth import (
    AuthBody,
    AuthEntry,
    AuthState,
    Genesis,
    Level,
    SetDevice,
    SetHost,
    SetMember,
    closure,
    fold,
    heads,
)
from node.domain.authorize import AuthLog, Verdict, judge, judge_auth

A, B, C, D, W, R = (bytes([c]) * 32 for c in b"ABCDWR")
DEV, DEV2 = b"d" * 32, b"e" * 32
HOME_A, HOME_B, PARTNER = b"h" * 32, b"i" * 32, b"p" * 32


class History:
    """Auth entries with fake op ids, each author's chain and seq tracked as a node would."""

    def __init__(self, founder: bytes = A, ycid: int = 1) -> None:
        self.counter = 0
        self.seqs: Counter[bytes] = Counter()
        self.log: AuthLog
        genesis = Genesis(
            name="circle", creator_name="founder", home=HOME_A, ycid=ycid, nonce=bytes(16)
        )
        self.genesis = self._id()
        self.circle = self.genesis[:16]
        self.log = AuthLog(self.circle)
        self.seqs[founder] = 1
        self.log.add(self.genesis, founder, 1, (), genesis)

    def _id(self) -> bytes:
        self.counter += 1
        return hashlib.blake2b(self.counter.to_bytes(4, "big"), digest_size=32).digest()

    def add(
        self,
        author: bytes,
        body: AuthBody,
        deps: tuple[bytes, ...] | None = None,
        *,
        seq: int | None = None,
    ) -> bytes:
        """Append an auth op by ``author`` citing ``deps`` (default: the current heads)."""
        op_id = self._id()
        self.seqs[author] = self.seqs[author] + 1 if seq is None else seq
        deps = tuple(self.log.heads()) if deps is None else deps
        self.log.add(op_id, author, self.seqs[author], deps, body)
        return op_id

    def skip_seqs(self, author: bytes, count: int) -> None:
        """The author writes ``count`` non-auth ops (y or record), which take seq numbers."""
        self.seqs[author] += count

    @property
    def entries(self) -> dict[bytes, AuthEntry]:
        return self.log.entries

    def state(self) -> AuthState:
        return fold(self.circle, self.entries)


def member(key: bytes, level: Level, ycid: int | None = None, **kw: object) -> SetMember:
    return SetMember(member=key, level=level, name="m", ycid=ycid, **kw)  # type: ignore[arg-type]


def snapshot(state: AuthState) -> tuple[object, ...]:
    """Everything observable in an auth state, for equality across folds."""
    keys = {
        k: (v.member, v.ycid, tuple(v.boundaries), tuple(v.levels)) for k, v in state.keys.items()
    }
    members = {k: (m.name, m.home, m.level, m.added_by) for k, m in state.members.items()}
    return (keys, members, state.ycids, state.explicit_hosts, state.applied, state.skipped)


# ---- genesis and membership ----------------------------------------------------------------


def test_genesis_author_holds_manage_from_seq_one() -> None:
    """The genesis author is the first member, with manage from seq 1 and its ycid."""
    state = History(ycid=42).state()
    assert state.level_at(A, 1) == Level.MANAGE
    assert state.level_at(A, 10**6) == Level.MANAGE
    assert state.level_at(A, 0) == Level.NONE
    assert state.ycid_of(A) == 42
    assert state.ycids == {42: A}
    assert set(state.current_members()) == {A}
    assert state.genesis is not None


def test_genesis_for_another_circle_or_twice_is_skipped() -> None:
    """A genesis whose op id does not name the circle, or a second genesis, is skipped."""
    h = History()
    other = Genesis(name="x", creator_name="b", home=HOME_B, ycid=9, nonce=bytes(16))
    stray = h.add(B, other, ())  # its op id does not start with the circle id
    assert stray in h.state().skipped
    assert h.state().level_at(B, 1) == Level.NONE
    # a second genesis naming the same circle would need a 128-bit prefix collision
    second = AuthEntry(h.circle + b"\xff" * 16, B, 1, (), other, None)
    state = fold(h.circle, {**h.entries, second.op_id: second})
    assert second.op_id in state.skipped
    assert state.level_at(B, 1) == Level.NONE


def test_manager_adds_members_at_each_level() -> None:
    """A manager adds read, write and manage members, each with its ycid and home."""
    h = History()
    h.add(A, member(R, Level.READ, 10, home=HOME_B))
    h.add(A, member(W, Level.WRITE, 11))
    h.add(A, member(B, Level.MANAGE, 12))
    state = h.state()
    assert [state.level_at(k, 1) for k in (R, W, B)] == [Level.READ, Level.WRITE, Level.MANAGE]
    assert state.ycids == {1: A, 10: R, 11: W, 12: B}
    assert state.members[R].home == HOME_B
    assert set(state.current_members()) == {A, R, W, B}
    assert state.skipped == []


def test_added_member_needs_a_fresh_ycid() -> None:
    """Adding a new key without a ycid, or with one already taken, is skipped."""
    h = History(ycid=5)
    no_ycid = h.add(A, member(W, Level.WRITE))
    taken = h.add(A, member(B, Level.WRITE, 5))
    state = h.state()
    assert {no_ycid, taken} <= set(state.skipped)
    assert W not in state.keys
    assert B not in state.keys


def test_non_manager_cannot_change_membership() -> None:
    """Write and read members cannot add, promote or remove anyone; nor set hosts."""
    h = History()
    h.add(A, member(W, Level.WRITE, 11))
    h.add(A, member(R, Level.READ, 12))
    tries = [
        h.add(W, member(C, Level.WRITE, 13)),
        h.add(W, member(W, Level.MANAGE)),
        h.add(R, member(A, Level.NONE)),
        h.add(W, SetHost(node=PARTNER)),
    ]
    state = h.state()
    assert set(tries) <= set(state.skipped)
    assert C not in state.keys
    assert state.level_at(W, 100) == Level.WRITE
    assert state.level_at(A, 100) == Level.MANAGE
    assert PARTNER not in state.hosts()


def test_removing_an_unknown_key_is_skipped() -> None:
    """A removal of a key that was never a member changes nothing."""
    h = History()
    op = h.add(A, member(C, Level.NONE))
    assert op in h.state().skipped


# ---- revocation by cut ---------------------------------------------------------------------


def test_revocation_cut_keeps_ops_at_or_below_it() -> None:
    """Removal with cut k: the member's ops at seq <= k stay valid, later ones do not."""
    h = History()
    h.add(A, member(W, Level.WRITE, 11))
    h.skip_seqs(W, 5)
    h.add(A, member(W, Level.NONE, cuts={W: 3}))
    state = h.state()
    assert [state.level_at(W, s) for s in range(1, 7)] == [Level.WRITE] * 3 + [Level.NONE] * 3
    assert W not in state.current_members()
    assert state.members[W].level == Level.NONE
    assert state.ycid_of(W) == 11  # the ycid stays bound: nobody else may reuse it


def test_readd_with_later_cut() -> None:
    """Re-adding a removed member with a later cut leaves the gap revoked and the rest valid."""
    h = History()
    h.add(A, member(W, Level.WRITE, 11))
    h.add(A, member(W, Level.NONE, cuts={W: 3}))
    h.add(A, member(W, Level.READ, cuts={W: 7}))
    state = h.state()
    levels = [state.level_at(W, s) for s in range(1, 10)]
    assert levels == [Level.WRITE] * 3 + [Level.NONE] * 4 + [Level.READ] * 2
    assert state.members[W].level == Level.READ
    assert state.ycid_of(W) == 11


def test_level_change_without_a_cut_is_retroactive() -> None:
    """A level change that names no cut for a key applies from that key's seq 1."""
    h = History()
    h.add(A, member(W, Level.WRITE, 11))
    h.add(A, member(W, Level.READ))
    state = h.state()
    assert state.level_at(W, 1) == Level.READ


def test_revocation_applies_to_every_key_of_the_member() -> None:
    """Removing a member revokes its device keys too, each at its own cut."""
    h = History()
    h.add(A, member(W, Level.WRITE, 11))
    h.add(W, SetDevice(device=DEV, ycid=21))
    h.skip_seqs(DEV, 4)
    h.add(A, member(W, Level.NONE, cuts={W: 1, DEV: 2}))
    state = h.state()
    assert [state.level_at(DEV, s) for s in (1, 2, 3)] == [Level.WRITE, Level.WRITE, Level.NONE]
    assert state.level_at(W, 2) == Level.NONE


# ---- devices -------------------------------------------------------------------------------


def test_member_registers_a_device_with_its_level() -> None:
    """A member's device key gets the member's current level and its own ycid."""
    h = History()
    h.add(A, member(R, Level.READ, 10))
    op = h.add(R, SetDevice(device=DEV, ycid=20))
    state = h.state()
    assert op in state.applied
    assert state.level_at(DEV, 1) == Level.READ
    assert state.member_of(DEV) == R
    assert state.ycid_of(DEV) == 20
    assert state.ycids[20] == DEV


def test_duplicate_ycid_registration_is_skipped() -> None:
    """A device reusing any registered ycid (genesis, member or device) is skipped."""
    h = History(ycid=1)
    h.add(A, member(W, Level.WRITE, 11))
    h.add(W, SetDevice(device=DEV, ycid=21))
    dupes = [
        h.add(W, SetDevice(device=DEV2, ycid=1)),
        h.add(W, SetDevice(device=DEV2, ycid=11)),
        h.add(W, SetDevice(device=DEV2, ycid=21)),
    ]
    again = h.add(W, SetDevice(device=DEV, ycid=22))  # same device twice
    state = h.state()
    assert set(dupes) | {again} <= set(state.skipped)
    assert DEV2 not in state.keys
    assert state.ycid_of(DEV) == 21
    assert state.ycids == {1: A, 11: W, 21: DEV}


def test_concurrent_registrations_of_one_ycid_keep_exactly_one() -> None:
    """Two members concurrently claiming one ycid: exactly one wins, the same on any order."""
    h = History()
    h.add(A, member(W, Level.WRITE, 11))
    h.add(A, member(R, Level.READ, 12))
    base = tuple(h.log.heads())
    first = h.add(W, SetDevice(device=DEV, ycid=99), base)
    second = h.add(R, SetDevice(device=DEV2, ycid=99), base)
    state = h.state()
    winner = min(first, second)
    assert winner in state.applied
    assert max(first, second) in state.skipped
    assert list(state.ycids.values()).count(DEV) + list(state.ycids.values()).count(DEV2) == 1


def test_only_a_member_key_registers_devices() -> None:
    """A device key cannot register further devices, nor be made a member in its own right."""
    h = History()
    h.add(A, member(W, Level.WRITE, 11))
    h.add(W, SetDevice(device=DEV, ycid=21))
    chained = h.add(DEV, SetDevice(device=DEV2, ycid=22))
    promoted = h.add(A, member(DEV, Level.MANAGE))
    state = h.state()
    assert {chained, promoted} <= set(state.skipped)
    assert state.level_at(DEV, 1) == Level.WRITE


def test_device_retirement_by_cut() -> None:
    """A member retires its device: the device's ops above the cut lose their level."""
    h = History()
    h.add(A, member(W, Level.WRITE, 11))
    h.add(W, SetDevice(device=DEV, ycid=21))
    h.add(W, SetDevice(device=DEV, ycid=21, active=False, cut=2))
    state = h.state()
    assert [state.level_at(DEV, s) for s in (2, 3)] == [Level.WRITE, Level.NONE]
    assert state.level_at(W, 5) == Level.WRITE
    assert state.ycids[21] == DEV  # retired ycids are never handed out again


# ---- concurrency -----------------------------------------------------------------------------


def test_mutual_removal_of_two_managers_is_deterministic() -> None:
    """Two managers removing each other concurrently: the lower op id wins, the other is skipped."""
    h = History()
    h.add(A, member(B, Level.MANAGE, 12))
    base = tuple(h.log.heads())
    a_removes_b = h.add(A, member(B, Level.NONE, cuts={B: h.seqs[B]}), base)
    b_removes_a = h.add(B, member(A, Level.NONE, cuts={A: 2}), base)
    state = h.state()
    winner, loser = sorted([a_removes_b, b_removes_a])
    assert winner in state.applied
    assert loser in state.skipped
    survivors = set(state.current_members())
    assert survivors == ({A} if winner == a_removes_b else {B})


def test_remove_beats_concurrent_add() -> None:
    """A concurrent promotion and removal of one member end with the member removed."""
    h = History()
    h.add(A, member(B, Level.MANAGE, 12))
    h.add(A, member(C, Level.READ, 13))
    base = tuple(h.log.heads())
    h.add(A, member(C, Level.MANAGE), base)
    h.add(B, member(C, Level.NONE), base)
    assert h.state().members[C].level == Level.NONE


def test_remove_beats_concurrent_first_add() -> None:
    """A member added by one manager while another concurrently removes it stays out."""
    h = History()
    h.add(A, member(B, Level.MANAGE, 12))
    base = tuple(h.log.heads())
    add = h.add(A, member(C, Level.WRITE, 13), base)
    remove = h.add(B, member(C, Level.NONE), base)
    state = h.state()
    assert {add, remove} <= set(state.applied)
    assert state.level_at(C, 1) == Level.NONE


def test_higher_level_wins_between_concurrent_changes() -> None:
    """Concurrent level changes of one member resolve to the higher level."""
    h = History()
    h.add(A, member(B, Level.MANAGE, 12))
    h.add(A, member(C, Level.READ, 13))
    base = tuple(h.log.heads())
    h.add(B, member(C, Level.MANAGE), base)
    h.add(A, member(C, Level.WRITE), base)
    assert h.state().members[C].level == Level.MANAGE


def test_removed_manager_concurrent_auth_op_above_cut_is_not_applied() -> None:
    """A removed manager's auth op above its cut (citing pre-removal deps) is not applied."""
    # Revocation by cut must bind auth ops as it binds y and record ops; otherwise a removed
    # manager keeps adding members for ever by citing deps from before its removal.
    h = History()
    h.add(A, member(B, Level.MANAGE, 12))
    base = tuple(h.log.heads())
    h.add(A, member(B, Level.NONE, cuts={B: 0}), base)  # B never wrote: every B op revoked
    backdated = h.add(B, member(C, Level.WRITE, 13), base)  # B's seq 1 > cut 0
    state = h.state()
    assert state.level_at(B, 1) == Level.NONE
    assert backdated not in state.applied
    assert state.level_at(C, 1) == Level.NONE


AUTHORS = {"A": A, "B": B}


def _concurrent_pool(h: History, base: tuple[bytes, ...]) -> list[bytes]:
    """A set of auth ops all written concurrently on top of ``base``."""
    return [
        h.add(A, member(B, Level.NONE, cuts={B: 1}), base),
        h.add(B, member(A, Level.NONE, cuts={A: 3}), base),
        h.add(A, member(C, Level.WRITE), base),
        h.add(B, member(C, Level.NONE), base),
        h.add(B, member(C, Level.MANAGE), base),
        h.add(A, member(D, Level.READ, 50), base),
        h.add(B, member(R, Level.WRITE, 50), base),  # same ycid as D: only one may hold it
        h.add(C, SetDevice(device=DEV, ycid=60), base),
        h.add(W, SetDevice(device=DEV2, ycid=60), base),
        h.add(A, SetHost(node=PARTNER), base),
        h.add(B, SetHost(node=PARTNER, hosting=False), base),
    ]


@settings(max_examples=80, deadline=None)
@given(subset=st.lists(st.booleans(), min_size=11, max_size=11), seed=st.randoms())
def test_concurrent_changes_fold_identically_in_any_order(
    subset: list[bool], seed: random.Random
) -> None:
    """Any set of concurrent auth ops folds to the same state whatever the insertion order."""
    h = History()
    h.add(A, member(B, Level.MANAGE, 12))
    h.add(A, member(C, Level.READ, 13))
    h.add(A, member(W, Level.WRITE, 14))
    base = tuple(h.log.heads())
    pool = _concurrent_pool(h, base)
    chosen = {p for p, keep in zip(pool, subset, strict=True) if not keep}
    kept = {k: v for k, v in h.entries.items() if k not in chosen}
    expected = snapshot(fold(h.circle, kept))
    items = list(kept.items())
    for _ in range(3):
        seed.shuffle(items)
        assert snapshot(fold(h.circle, dict(items))) == expected
    # every replica derives the same heads (what new ops cite) too
    assert heads(kept) == heads(dict(reversed(items)))


# ---- hosts and causality -------------------------------------------------------------------


def test_hosts_are_member_homes_and_explicit_hosts() -> None:
    """hosts(): homes of current members plus explicit hosts; an explicit 'off' wins."""
    h = History()
    h.add(A, member(B, Level.READ, 12, home=HOME_B))
    h.add(A, member(C, Level.WRITE, 13))  # no home given: hosts nothing
    assert h.state().hosts() == {HOME_A, HOME_B}
    h.add(A, SetHost(node=PARTNER))
    assert h.state().hosts() == {HOME_A, HOME_B, PARTNER}
    h.add(A, member(B, Level.NONE))
    assert h.state().hosts() == {HOME_A, PARTNER}
    h.add(A, SetHost(node=PARTNER, hosting=False))
    h.add(A, SetHost(node=HOME_A, hosting=False))
    assert h.state().hosts() == set()


def test_level_change_keeps_the_known_home() -> None:
    """A level change that names no home keeps the member's home node."""
    h = History()
    h.add(A, member(B, Level.READ, 12, home=HOME_B))
    h.add(A, member(B, Level.WRITE))
    assert h.state().members[B].home == HOME_B


def test_as_of_sees_only_the_causal_closure() -> None:
    """as_of(deps) folds only the auth ops at or before deps (deps and author chains)."""
    h = History()
    add_w = h.add(A, member(W, Level.WRITE, 11))
    remove_w = h.add(A, member(W, Level.NONE))
    assert h.log.as_of((h.genesis,)).level_at(W, 1) == Level.NONE
    assert h.log.as_of((add_w,)).level_at(W, 1) == Level.WRITE
    assert h.log.as_of((remove_w,)).level_at(W, 1) == Level.NONE
    assert set(closure(h.entries, [remove_w])) == {h.genesis, add_w, remove_w}
    assert set(closure(h.entries, [b"unknown" * 4])) == set()


def test_author_chain_orders_auth_ops_without_deps() -> None:
    """An author's later auth op folds after its earlier one even if it cites no deps."""
    h = History()
    add_b = h.add(A, member(B, Level.MANAGE, 12))
    later = h.add(A, member(B, Level.READ), ())  # prev_auth (add_b) still orders it
    state = h.state()
    assert state.applied.index(add_b) < state.applied.index(later)
    assert state.members[B].level == Level.READ
    assert set(closure(h.entries, [later])) == {h.genesis, add_b, later}


def test_judge_valid_soft_failed_and_restricted() -> None:
    """judge: allowed as of deps and now is valid; then but not now soft fail; else restricted."""
    h = History()
    add_w = h.add(A, member(W, Level.WRITE, 11))
    h.skip_seqs(W, 1)
    h.add(A, member(W, Level.NONE, cuts={W: 1}))
    now = tuple(h.log.heads())

    def verdict(seq: int, deps: tuple[bytes, ...]) -> Verdict:
        return judge(h.log, author=W, seq=seq, deps=deps, needed=Level.WRITE)

    assert verdict(1, (add_w,)) is Verdict.VALID
    assert verdict(2, (add_w,)) is Verdict.SOFT_FAIL
    assert verdict(2, now) is Verdict.RESTRICTED
    assert verdict(1, (h.genesis,)) is Verdict.RESTRICTED
    body = member(C, Level.READ, 13)
    assert judge_auth(h.log, author=W, seq=2, deps=(add_w,), body=body) is Verdict.RESTRICTED
    assert judge_auth(h.log, author=A, seq=4, deps=now, body=body) is Verdict.VALID


def test_discard_forgets_ops_and_rebuilds_chains() -> None:
    """AuthLog.discard drops auth ops (equivocation) and their effects."""
    h = History()
    add_w = h.add(A, member(W, Level.WRITE, 11))
    h.log.discard({add_w})
    assert h.log.full().level_at(W, 1) == Level.NONE
    assert h.log.last_auth_by_author[A] == h.genesis


def test_a_retired_device_stays_retired_when_its_member_changes_level() -> None:
    """A member's later level change must not bring back a device it retired: neither its
    signing level above the cut nor its home as a host."""
    h = History()
    h.add(A, member(W, Level.READ, 11))
    h.add(W, SetDevice(device=DEV, ycid=21, home=HOME_B))
    assert HOME_B in h.state().hosts()
    h.add(W, SetDevice(device=DEV, ycid=21, active=False, cut=2))
    assert HOME_B not in h.state().hosts()
    h.add(A, member(W, Level.WRITE, cuts={W: h.seqs[W]}))
    state = h.state()
    assert state.level_at(W, 10) == Level.WRITE
    assert [state.level_at(DEV, s) for s in (2, 3, 10)] == [Level.READ, Level.NONE, Level.NONE]
    assert HOME_B not in state.hosts()
    h.add(A, member(W, Level.NONE, cuts={W: h.seqs[W], DEV: 1}))
    assert h.state().level_at(DEV, 2) == Level.NONE  # a removal still cuts it further
