"""The pure bookkeeping of node.sync.limits: token buckets, rate books and the penalty box,
driven by an explicit clock (no sleeping)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.sync.gate import FrameClock
from node.sync.limits import PeerLimits, PenaltyBox, RateBook, Rates, TokenBucket


def test_bucket_lets_a_burst_through_then_asks_to_wait_for_the_debt() -> None:
    """A full bucket passes ``capacity`` at once; the next take waits debt / rate."""
    bucket = TokenBucket(rate=10, capacity=5, now=0.0)
    assert [bucket.take(1, 0.0) for _ in range(5)] == [0.0] * 5
    assert bucket.take(1, 0.0) == pytest.approx(0.1)
    assert bucket.take(2, 0.0) == pytest.approx(0.3)


def test_bucket_refills_at_its_rate_up_to_its_capacity() -> None:
    """Tokens come back at ``rate`` per second, never above ``capacity``."""
    bucket = TokenBucket(rate=10, capacity=5, now=0.0)
    bucket.take(5, 0.0)
    assert bucket.take(3, 0.3) == 0.0
    assert not bucket.full(0.3)
    assert bucket.full(100.0)
    assert bucket.tokens == 5


def test_message_larger_than_the_bucket_passes_late_not_never() -> None:
    """A take above capacity is allowed, with a wait that pays the whole debt."""
    bucket = TokenBucket(rate=1000, capacity=100, now=0.0)
    assert bucket.take(1100, 0.0) == pytest.approx(1.0)


@given(st.lists(st.tuples(st.floats(0, 10), st.integers(0, 50)), max_size=50))
def test_waits_keep_a_sender_within_rate_over_any_schedule(takes: list[tuple[float, int]]) -> None:
    """Whatever the schedule, a sender that honours every wait has taken at most
    ``capacity + rate * elapsed`` tokens by the time its waits end."""
    bucket = TokenBucket(rate=20, capacity=10, now=0.0)
    now, taken = 0.0, 0
    for gap, amount in takes:
        now += gap
        now += bucket.take(amount, now)
        taken += amount
        assert taken <= 10 + 20 * now + 1e-6


def test_rates_name_the_rate_that_imposed_the_wait() -> None:
    """Charging a message reports the longest wait and which rate set it."""
    rates = Rates(PeerLimits(frames_per_second=1000, bytes_per_second=100, burst_seconds=1), 0.0)
    wait, which = rates.charge(1, 300, 0, 0.0)
    assert which == "bytes"
    assert wait == pytest.approx(2.0)


def test_rate_book_stays_bounded_dropping_idle_entries_first() -> None:
    """Past ``max_tracked`` whos, idle ones are forgotten before busy ones."""
    book = RateBook(PeerLimits(frames_per_second=1, burst_seconds=1), max_tracked=3)
    busy = book.of("busy", 0.0)
    busy.charge(5, 0, 0, 0.0)  # in debt: not idle
    for n in range(10):
        book.of(f"idle {n}", 0.0)
    assert len(book) <= 3
    assert book.of("busy", 0.0) is busy


def test_penalty_box_bans_at_the_threshold_for_the_ban_period() -> None:
    """Strikes add up within the window; the one reaching the threshold starts a ban (True
    once), which lasts ``ban_seconds``."""
    box = PenaltyBox(ban_seconds=60)
    assert not box.strike("node a", 3, threshold=5, now=0.0)
    assert box.banned_for("node a", 1.0) == 0.0
    assert box.strike("node a", 2, threshold=5, now=1.0)
    assert box.banned_for("node a", 2.0) == pytest.approx(59.0)
    assert not box.strike("node a", 9, threshold=5, now=2.0)  # already banned: no new ban
    assert box.banned_for("node a", 61.5) == 0.0
    assert box.banned_for("node b", 2.0) == 0.0


def test_penalty_box_forgets_strikes_older_than_the_window() -> None:
    """Strikes further apart than ``ban_seconds`` never add up to a ban."""
    box = PenaltyBox(ban_seconds=10)
    for minute in range(20):
        assert not box.strike("ip 10.0.0.1", 4, threshold=5, now=minute * 11.0)
    assert box.banned_for("ip 10.0.0.1", 300.0) == 0.0


def test_penalty_box_stays_bounded() -> None:
    """A stream of new whos cannot grow the box past ``max_tracked``."""
    box = PenaltyBox(ban_seconds=10, max_tracked=100)
    for n in range(1000):
        box.strike(f"ip 10.0.{n // 256}.{n % 256}", 1, threshold=5, now=0.0)
    assert len(box) <= 100


def _frame(length: int, *, masked: bool = True, opcode: int = 0x2) -> bytes:
    if length < 126:
        head = bytes([0x80 | opcode, (0x80 if masked else 0) | length])
    elif length < 65536:
        head = bytes([0x80 | opcode, (0x80 if masked else 0) | 126]) + length.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, (0x80 if masked else 0) | 127]) + length.to_bytes(8, "big")
    return head + (b"MASK" if masked else b"") + b"p" * length


@given(
    st.lists(
        st.tuples(st.sampled_from([0, 1, 125, 126, 127, 65535, 65536, 70000]), st.booleans()),
        min_size=1,
        max_size=6,
    ),
    st.lists(st.integers(1, 70_000), max_size=20),
)
def test_frame_clock_finds_every_frame_boundary_however_the_bytes_are_cut(
    frames: list[tuple[int, bool]], cuts: list[int]
) -> None:
    """Frames of every length encoding, masked or not, fed in arbitrary chunks: the clock
    counts each frame once, is inside a frame exactly between a frame's first and last
    byte, and ends outside one."""
    stream = b"".join(_frame(length, masked=masked) for length, masked in frames)
    ends = set()
    position = 0
    for length, masked in frames:
        position += len(_frame(length, masked=masked))
        ends.add(position)
    clock = FrameClock()
    completed, position = 0, 0
    for cut in [*cuts, len(stream)]:
        chunk = stream[position : position + cut]
        completed += clock.feed(chunk)
        position += len(chunk)
        assert clock.in_frame == (position not in ends and position not in (0,)), position
    assert completed == len(frames)
    assert not clock.in_frame
