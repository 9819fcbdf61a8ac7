"""The sealed phase of a sync session (node.sync.protocol): once the handshake is done
every frame is sealed in order, so a flipped bit, a replayed, reordered, dropped, foreign or
truncated frame fails the session for good; size limits hold on receive; nothing is sent
before OPEN or after GOING_AWAY; no input raises anything but ProtocolError.

Pure: sessions exchange bytes in memory, no sockets, no asyncio. The handshake itself is
covered in test_handshake.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.crypto.keys import KeyPair
from node.errors import ProtocolError
from node.sync.protocol import (
    MAX_HEIGHTS,
    MAX_MESSAGE,
    MAX_OFFER,
    MAX_OPS_BYTES,
    Done,
    GoingAway,
    Have,
    Offer,
    Ops,
    State,
    Summary,
    SyncSession,
)

CIRCLE = bytes(range(16))
Pair = Callable[[], tuple[SyncSession, SyncSession]]


def flip(data: bytes, index: int = 0, bit: int = 0) -> bytes:
    """``data`` with one bit flipped (negative ``index`` counts from the end)."""
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


def refused(session: SyncSession, message: bytes) -> None:
    """``message`` is refused with ProtocolError and leaves ``session`` FAILED for good."""
    with pytest.raises(ProtocolError):
        session.receive(message)
    assert session.state is State.FAILED
    with pytest.raises(ProtocolError):
        session.receive(message)


# ---- sealed frames --------------------------------------------------------------------------


def test_sealed_events_round_trip_both_ways(open_pair: Pair) -> None:
    """Every session event sent by one side arrives intact at the other, in both directions."""
    a, b = open_pair()
    events = [
        Summary(bytes(32), 3),
        Offer({CIRCLE: bytes(16)}),
        Have(CIRCLE, {bytes(32): 7}),
        Ops(CIRCLE, [b"op1", b"op2"], more=True),
        Ops(CIRCLE, [], more=False, live=True),
        Done(),
    ]
    for event in events:
        assert b.receive(a.send(event)) == [event]
        assert a.receive(b.send(event)) == [event]
    assert a.receive(b.send(GoingAway("bye"))) == [GoingAway("bye")]
    # the sender of GOING_AWAY is half-closed (its peer's frames may still arrive)
    assert (a.state, b.state) == (State.CLOSED, State.CLOSING)


def test_counters_count_every_message_and_byte(open_pair: Pair) -> None:
    """Both sides count the same messages and bytes, handshake included."""
    a, b = open_pair()
    b.receive(a.send(Done()))
    assert a.counters.messages_sent == b.counters.messages_received == 3
    assert a.counters.bytes_sent == b.counters.bytes_received
    assert b.counters.messages_sent == a.counters.messages_received == 1
    assert b.counters.bytes_sent == a.counters.bytes_received


@pytest.mark.parametrize(("index", "bit"), [(0, 0), (10, 3), (-1, 7)])
def test_flipped_bit_in_a_sealed_frame_fails(index: int, bit: int, open_pair: Pair) -> None:
    """A single flipped bit anywhere in a sealed frame fails the session."""
    a, b = open_pair()
    refused(b, flip(a.send(Have(CIRCLE, {})), index, bit))


def test_replayed_sealed_frame_fails(open_pair: Pair) -> None:
    """Delivering an accepted frame a second time fails the session."""
    a, b = open_pair()
    frame = a.send(Done())
    assert b.receive(frame) == [Done()]
    refused(b, frame)


def test_reordered_sealed_frames_fail(open_pair: Pair) -> None:
    """A frame delivered before the one sent ahead of it fails the session."""
    a, b = open_pair()
    _first, second = a.send(Summary(bytes(32), 0)), a.send(Done())
    refused(b, second)


def test_dropped_sealed_frame_fails(open_pair: Pair) -> None:
    """A missing frame is noticed at the next one."""
    a, b = open_pair()
    first = a.send(Summary(bytes(32), 0))
    a.send(Offer({}))
    assert b.receive(first) == [Summary(bytes(32), 0)]
    refused(b, a.send(Done()))


@pytest.mark.parametrize("keep", [0, 1, 16, -1])
def test_truncated_sealed_frame_fails(keep: int, open_pair: Pair) -> None:
    """A sealed frame cut short (even to nothing, or to one byte less) fails the session."""
    a, b = open_pair()
    frame = a.send(Ops(CIRCLE, [b"x" * 100], more=False))
    refused(b, frame[:keep])


def test_frame_from_another_session_fails(open_pair: Pair) -> None:
    """A frame sealed for another session between other nodes does not open here."""
    a, b = open_pair()
    c, _d = open_pair()
    refused(b, c.send(Done()))
    assert a.state is State.OPEN


def test_frame_above_max_message_is_refused(open_pair: Pair) -> None:
    """A sealed frame larger than MAX_MESSAGE is refused on receive."""
    a, b = open_pair()
    big = Ops(CIRCLE, [os.urandom(60_000) for _ in range(6)], more=False)
    frame = a.send(big)
    assert len(frame) > MAX_MESSAGE
    refused(b, frame)


def test_ops_frame_at_max_ops_bytes_is_accepted(open_pair: Pair) -> None:
    """An OPS frame carrying exactly MAX_OPS_BYTES of ops fits in one message."""
    a, b = open_pair()
    ops = [os.urandom(64 * 1024) for _ in range(MAX_OPS_BYTES // (64 * 1024))]
    assert sum(map(len, ops)) == MAX_OPS_BYTES
    frame = a.send(Ops(CIRCLE, ops, more=True))
    assert len(frame) <= MAX_MESSAGE
    assert b.receive(frame) == [Ops(CIRCLE, ops, more=True)]


def test_ops_frame_above_max_ops_bytes_is_refused_on_receive(open_pair: Pair) -> None:
    """An OPS frame whose ops total more than MAX_OPS_BYTES is refused by the receiver, even
    though the message itself is under MAX_MESSAGE (send does not check: a peer may lie)."""
    a, b = open_pair()
    ops = [os.urandom(64 * 1024) for _ in range(4)] + [b"x"]
    frame = a.send(Ops(CIRCLE, ops, more=True))
    assert len(frame) <= MAX_MESSAGE
    refused(b, frame)


def at_limit(kind: str) -> Offer | Have:
    if kind == "offer":
        return Offer({os.urandom(16): os.urandom(16) for _ in range(MAX_OFFER)})
    return Have(CIRCLE, {os.urandom(32): 2**40 + i for i in range(MAX_HEIGHTS)})


@pytest.mark.parametrize("kind", ["offer", "have"])
def test_offer_and_have_at_their_declared_limits_are_accepted(kind: str, open_pair: Pair) -> None:
    """An OFFER of MAX_OFFER circles and a HAVE of MAX_HEIGHTS authors reach the peer: the
    message limit must not be tighter than the limits the decoder declares."""
    a, b = open_pair()
    event = at_limit(kind)
    frame = a.send(event)
    assert b.receive(frame) == [event], f"a {kind} at its limit is {len(frame)} bytes"


def test_sending_before_the_handshake_is_refused() -> None:
    """Neither side can send a session event before its handshake completes."""
    initiator = SyncSession(KeyPair.generate(), initiator=True)
    responder = SyncSession(KeyPair.generate(), initiator=False)
    with pytest.raises(ProtocolError):
        initiator.send(Done())
    responder.receive(initiator.start())
    with pytest.raises(ProtocolError):
        responder.send(Done())  # waiting for AUTH


def test_sending_after_going_away_is_refused(open_pair: Pair) -> None:
    """After sending GOING_AWAY the session is CLOSING and sends nothing more."""
    a, b = open_pair()
    b.receive(a.send(GoingAway("shutting down")))
    assert (a.state, b.state) == (State.CLOSING, State.CLOSED)
    with pytest.raises(ProtocolError):
        a.send(Done())
    with pytest.raises(ProtocolError):
        a.send(GoingAway())


def test_nothing_is_sent_or_received_after_receiving_going_away(open_pair: Pair) -> None:
    """A peer's GOING_AWAY closes the session: it neither sends nor accepts more frames."""
    a, b = open_pair()
    b.receive(a.send(GoingAway()))
    assert b.state is State.CLOSED
    with pytest.raises(ProtocolError):
        b.send(Done())
    with pytest.raises(ProtocolError):
        b.receive(bytes(40))


def test_going_away_crossing_ours_is_not_an_error(open_pair: Pair) -> None:
    """When both sides say GOING_AWAY at once, each accepts the other's: a crossing goodbye
    is the normal end of a session, not a protocol violation."""
    a, b = open_pair()
    bye_a, bye_b = a.send(GoingAway("a stops")), b.send(GoingAway("b stops"))
    assert a.receive(bye_b) == [GoingAway("b stops")]
    assert b.receive(bye_a) == [GoingAway("a stops")]
    assert (a.state, b.state) == (State.CLOSED, State.CLOSED)


def test_handshake_message_after_open_fails(open_pair: Pair) -> None:
    """A plaintext handshake message sent to an open session fails it."""
    a, b = open_pair()
    refused(b, SyncSession(KeyPair.generate(), initiator=True).start())


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=400))
def test_random_bytes_to_an_open_session_raise_only_protocol_errors(
    data: bytes, open_pair: Pair
) -> None:
    """Random bytes fed to an open session fail it with ProtocolError."""
    _a, b = open_pair()
    with pytest.raises(ProtocolError):
        b.receive(data)
    assert b.state is State.FAILED


WIRE_INTS = st.integers(min_value=-(2**63), max_value=2**64 - 1)
SESSION_FIELDS = st.one_of(
    st.binary(max_size=40),
    WIRE_INTS,
    st.none(),
    st.booleans(),
    st.lists(st.binary(max_size=20), max_size=3),
    st.dictionaries(st.binary(max_size=33), WIRE_INTS, max_size=3),
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    plaintext=st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda tag, fields: msgspec.msgpack.encode([tag, *fields]),
            st.integers(min_value=0, max_value=20),
            st.lists(SESSION_FIELDS, max_size=5),
        ),
    )
)
def test_sealed_garbage_from_an_authenticated_peer_raises_only_protocol_errors(
    plaintext: bytes, open_pair: Pair
) -> None:
    """A peer that completed the handshake and seals arbitrary plaintext (not an event)
    only ever makes the receiver decode an event or raise ProtocolError."""
    a, b = open_pair()
    assert a._seal is not None  # sealed by the real stream: only the plaintext is hostile
    frame = a._seal.seal(plaintext)
    try:
        events = b.receive(frame)
    except ProtocolError:
        assert b.state is State.FAILED
    else:
        assert len(events) == 1
