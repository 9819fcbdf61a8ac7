"""The sync handshake (node.crypto.handshake, and SyncSession's HELLO/WELCOME/AUTH): both
node keys sign a transcript binding both ephemeral keys, nonces and stream headers, so a
wrong or pinned-away key, any altered field and any replay from another session fail.

Pure: sessions exchange bytes in memory, no sockets, no asyncio.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl import bindings as sodium

from node.crypto.handshake import (
    ABYTES,
    HEADER_BYTES,
    Ephemeral,
    OpeningStream,
    SealingStream,
    session_keys,
    transcript_hash,
    verify_transcript,
)
from node.crypto.keys import KeyPair
from node.errors import NodeError, ProtocolError, SignatureError
from node.sync.protocol import (
    MAX_MESSAGE,
    PROTOCOL_VERSION,
    Auth,
    Done,
    HandshakeComplete,
    Hello,
    State,
    SyncSession,
    Welcome,
)


def flip(data: bytes, index: int = 0, bit: int = 0) -> bytes:
    """``data`` with one bit flipped (negative ``index`` counts from the end)."""
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


def sessions(
    *, expected_peer: bytes | None = None, responder_key: KeyPair | None = None
) -> tuple[SyncSession, SyncSession]:
    initiator = SyncSession(KeyPair.generate(), initiator=True, expected_peer=expected_peer)
    responder = SyncSession(responder_key or KeyPair.generate(), initiator=False)
    return initiator, responder


def handshake(initiator: SyncSession, responder: SyncSession) -> tuple[bytes, bytes, bytes]:
    """Run the handshake to completion; returns the HELLO, WELCOME and AUTH messages."""
    hello = initiator.start()
    assert responder.receive(hello) == []
    welcome = responder.pending_reply()
    assert welcome is not None
    assert initiator.receive(welcome) == [HandshakeComplete(responder.node_key.public)]
    auth = initiator.pending_reply()
    assert auth is not None
    assert responder.receive(auth) == [HandshakeComplete(initiator.node_key.public)]
    return hello, welcome, auth


def welcome_for(initiator: SyncSession, responder: SyncSession) -> Welcome:
    """Deliver the initiator's HELLO and return the responder's decoded WELCOME."""
    responder.receive(initiator.start())
    reply = responder.pending_reply()
    assert reply is not None
    return msgspec.msgpack.decode(reply, type=Welcome)


def refused(session: SyncSession, message: bytes, error: type[NodeError] = ProtocolError) -> None:
    """``message`` is refused with ``error`` and leaves ``session`` FAILED for good."""
    with pytest.raises(error):
        session.receive(message)
    assert session.state is State.FAILED
    with pytest.raises(ProtocolError):
        session.receive(message)


# ---- primitives -----------------------------------------------------------------------------


def test_transcript_hash_is_unambiguous() -> None:
    """Length prefixes keep differently split parts from hashing alike."""
    assert transcript_hash(b"ab", b"c") != transcript_hash(b"a", b"bc")
    assert transcript_hash(b"ab", b"") != transcript_hash(b"ab")
    assert transcript_hash(b"x") == transcript_hash(b"x")


def test_verify_transcript_accepts_only_the_signers_signature() -> None:
    """A transcript signature verifies under its key only, and only for that transcript."""
    key = KeyPair.generate()
    transcript = transcript_hash(b"hello", b"welcome")
    verify_transcript(key.public, transcript, key.sign(transcript))
    with pytest.raises(SignatureError):
        verify_transcript(KeyPair.generate().public, transcript, key.sign(transcript))
    with pytest.raises(SignatureError):
        verify_transcript(key.public, flip(transcript), key.sign(transcript))
    with pytest.raises(SignatureError):
        verify_transcript(key.public[:31], transcript, key.sign(transcript))
    with pytest.raises(SignatureError):
        verify_transcript(key.public, transcript, key.sign(transcript)[:63])


def test_session_keys_agree_crosswise() -> None:
    """The initiator's sending key is the responder's receiving key and vice versa."""
    mine, theirs = Ephemeral.generate(), Ephemeral.generate()
    rx_i, tx_i = session_keys(mine, theirs.public, initiator=True)
    rx_r, tx_r = session_keys(theirs, mine.public, initiator=False)
    assert (tx_i, rx_i) == (rx_r, tx_r)
    assert tx_i != rx_i


@pytest.mark.parametrize("peer", [bytes(31), bytes(33), bytes(32)], ids=["short", "long", "zero"])
def test_session_keys_refuse_a_bad_exchange_key(peer: bytes) -> None:
    """A wrong-length or all-zero (low-order) exchange key raises ProtocolError."""
    with pytest.raises(ProtocolError):
        session_keys(Ephemeral.generate(), peer, initiator=True)


def test_streams_open_in_order_and_stop_after_final() -> None:
    """Frames open in the order sealed; nothing opens after the final frame."""
    key = sodium.crypto_secretstream_xchacha20poly1305_keygen()
    sealing = SealingStream(key)
    assert len(sealing.header) == HEADER_BYTES
    opening = OpeningStream(key, sealing.header)
    frames = [sealing.seal(b"one"), sealing.seal(b""), sealing.seal(b"last", final=True)]
    assert all(len(f) >= ABYTES for f in frames)
    assert [opening.open(f) for f in frames] == [b"one", b"", b"last"]
    assert opening.finished
    with pytest.raises(ProtocolError):
        opening.open(sealing.seal(b"after"))


def test_opening_stream_refuses_bad_headers_keys_and_short_frames() -> None:
    """A short header, a frame under ABYTES or a frame under another key is refused."""
    key = sodium.crypto_secretstream_xchacha20poly1305_keygen()
    sealing = SealingStream(key)
    with pytest.raises(ProtocolError):
        OpeningStream(key, sealing.header[:-1])
    with pytest.raises(ProtocolError):
        OpeningStream(key, sealing.header).open(bytes(ABYTES - 1))
    other = sodium.crypto_secretstream_xchacha20poly1305_keygen()
    with pytest.raises(ProtocolError):
        OpeningStream(other, sealing.header).open(sealing.seal(b"secret"))


@settings(max_examples=50, deadline=None)
@given(plaintexts=st.lists(st.binary(max_size=300), max_size=10))
def test_stream_round_trip(plaintexts: list[bytes]) -> None:
    """Any sequence of plaintexts comes out of the stream exactly as sealed."""
    key = sodium.crypto_secretstream_xchacha20poly1305_keygen()
    sealing = SealingStream(key)
    opening = OpeningStream(key, sealing.header)
    assert [opening.open(sealing.seal(p)) for p in plaintexts] == plaintexts


# ---- sessions -------------------------------------------------------------------------------


def test_handshake_completes_and_both_learn_the_peer_key() -> None:
    """A full HELLO/WELCOME/AUTH exchange opens both sessions, each knowing the other's key."""
    initiator, responder = sessions()
    handshake(initiator, responder)
    assert (initiator.state, responder.state) == (State.OPEN, State.OPEN)
    assert initiator.peer == responder.node_key.public
    assert responder.peer == initiator.node_key.public
    assert initiator.pending_reply() is None
    assert responder.pending_reply() is None


def test_handshake_with_the_expected_peer_key_completes() -> None:
    """Pinning the responder's real key lets the handshake complete."""
    responder_key = KeyPair.generate()
    initiator, responder = sessions(expected_peer=responder_key.public, responder_key=responder_key)
    handshake(initiator, responder)
    assert initiator.peer == responder_key.public


def test_wrong_expected_peer_fails_the_initiator() -> None:
    """An initiator that pinned another node key refuses the WELCOME and sends no AUTH."""
    initiator, responder = sessions(expected_peer=KeyPair.generate().public)
    responder.receive(initiator.start())
    welcome = responder.pending_reply()
    assert welcome is not None
    refused(initiator, welcome)
    assert initiator.pending_reply() is None
    assert initiator.peer is None


def test_wrong_expected_peer_fails_the_responder() -> None:
    """A responder that pinned another node key refuses the HELLO and sends no WELCOME."""
    initiator = SyncSession(KeyPair.generate(), initiator=True)
    responder = SyncSession(
        KeyPair.generate(), initiator=False, expected_peer=KeyPair.generate().public
    )
    refused(responder, initiator.start())
    assert responder.pending_reply() is None


def test_connecting_to_ourselves_fails() -> None:
    """A node that reaches its own key (a loop through a proxy) refuses the session."""
    key = KeyPair.generate()
    initiator = SyncSession(key, initiator=True)
    responder = SyncSession(key, initiator=False)
    refused(responder, initiator.start())


@pytest.mark.parametrize("field", ["node", "kx", "nonce", "stream", "sig"])
def test_altered_welcome_fails_the_initiator(field: str) -> None:
    """Flipping a bit of any WELCOME field breaks the responder's signature: the initiator
    fails and sends no AUTH."""
    initiator, responder = sessions()
    welcome = welcome_for(initiator, responder)
    altered = msgspec.structs.replace(welcome, **{field: flip(getattr(welcome, field), 5)})
    refused(initiator, msgspec.msgpack.encode(altered), SignatureError)
    assert initiator.pending_reply() is None


def test_welcome_signed_by_an_impostor_fails_the_initiator() -> None:
    """A WELCOME naming the expected node but signed by another key is refused."""
    initiator, responder = sessions()
    welcome = welcome_for(initiator, responder)
    impostor = KeyPair.generate().sign(b"anything")
    refused(
        initiator,
        msgspec.msgpack.encode(msgspec.structs.replace(welcome, sig=impostor)),
        SignatureError,
    )


def test_welcome_of_another_protocol_version_fails() -> None:
    """A responder speaking another protocol version is refused by the initiator."""
    initiator, responder = sessions()
    welcome = welcome_for(initiator, responder)
    other = msgspec.structs.replace(welcome, version=PROTOCOL_VERSION + 1)
    refused(initiator, msgspec.msgpack.encode(other))


def test_hello_of_another_protocol_version_fails() -> None:
    """An initiator speaking another protocol version is refused by the responder."""
    initiator, responder = sessions()
    hello = msgspec.msgpack.decode(initiator.start(), type=Hello)
    other = msgspec.structs.replace(hello, version=PROTOCOL_VERSION + 1)
    refused(responder, msgspec.msgpack.encode(other))


def test_hello_with_a_degenerate_exchange_key_fails() -> None:
    """A HELLO whose X25519 key is all zeros (a low-order point) fails the key exchange."""
    initiator, responder = sessions()
    hello = msgspec.msgpack.decode(initiator.start(), type=Hello)
    refused(responder, msgspec.msgpack.encode(msgspec.structs.replace(hello, kx=bytes(32))))


@pytest.mark.parametrize("field", ["stream", "sig"])
def test_altered_auth_fails_the_responder(field: str) -> None:
    """Flipping a bit of the AUTH stream header or signature fails the responder."""
    initiator, responder = sessions()
    responder.receive(initiator.start())
    welcome = responder.pending_reply()
    assert welcome is not None
    initiator.receive(welcome)
    auth_bytes = initiator.pending_reply()
    assert auth_bytes is not None
    auth = msgspec.msgpack.decode(auth_bytes, type=Auth)
    altered = msgspec.structs.replace(auth, **{field: flip(getattr(auth, field), -1, 7)})
    refused(responder, msgspec.msgpack.encode(altered), SignatureError)


def test_replayed_hello_and_auth_do_not_open_a_new_session() -> None:
    """A third party replaying a captured HELLO and AUTH to the same responder node cannot
    complete a session: the new WELCOME carries fresh keys, so the old AUTH does not verify."""
    responder_key = KeyPair.generate()
    initiator, responder = sessions(responder_key=responder_key)
    hello, _welcome, auth = handshake(initiator, responder)

    replayed = SyncSession(responder_key, initiator=False)
    assert replayed.receive(hello) == []
    assert replayed.pending_reply() is not None  # answered, but to keys the replayer lacks
    refused(replayed, auth, SignatureError)


def test_replayed_welcome_does_not_open_a_new_session() -> None:
    """A WELCOME captured from an earlier session is refused by a new initiator of the same
    node: it signs the earlier HELLO, not the new one."""
    initiator_key = KeyPair.generate()
    initiator = SyncSession(initiator_key, initiator=True)
    responder = SyncSession(KeyPair.generate(), initiator=False)
    _hello, welcome, _auth = handshake(initiator, responder)

    again = SyncSession(initiator_key, initiator=True)
    again.start()
    refused(again, welcome, SignatureError)


def test_second_hello_to_a_responder_fails() -> None:
    """A responder answers one HELLO only."""
    initiator, responder = sessions()
    hello = initiator.start()
    responder.receive(hello)
    refused(responder, hello)


def test_auth_before_hello_fails_the_responder() -> None:
    """An AUTH reaching a responder that has seen no HELLO is refused."""
    _initiator, responder = sessions()
    refused(responder, msgspec.msgpack.encode(Auth(bytes(24), bytes(64))))


def test_hello_to_an_initiator_fails() -> None:
    """An initiator waiting for WELCOME refuses a HELLO."""
    initiator, _responder = sessions()
    initiator.start()
    refused(initiator, SyncSession(KeyPair.generate(), initiator=True).start())


def test_sealed_frame_during_the_handshake_fails() -> None:
    """A sealed frame reaching a responder still waiting for AUTH is refused."""
    initiator, responder = sessions()
    responder.receive(initiator.start())
    welcome = responder.pending_reply()
    assert welcome is not None
    initiator.receive(welcome)
    initiator.pending_reply()  # AUTH, dropped
    refused(responder, initiator.send(Done()))


def test_only_the_initiator_starts_and_only_once() -> None:
    """``start()`` is refused on a responder and on a second call."""
    initiator, responder = sessions()
    initiator.start()
    with pytest.raises(ProtocolError):
        initiator.start()
    with pytest.raises(ProtocolError):
        responder.start()


def test_oversized_handshake_message_is_refused() -> None:
    """A handshake message above MAX_MESSAGE is refused before it is decoded."""
    _initiator, responder = sessions()
    refused(responder, bytes(MAX_MESSAGE + 1))


# ---- fuzz -----------------------------------------------------------------------------------

HANDSHAKE_FIELDS = st.one_of(
    st.binary(max_size=80),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.none(),
    st.booleans(),
    st.text(max_size=10),
)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=400))
def test_random_bytes_to_a_fresh_responder_raise_only_node_errors(data: bytes) -> None:
    """Random bytes fed to a responder waiting for HELLO raise ProtocolError or
    SignatureError (or are a HELLO): nothing else escapes."""
    responder = SyncSession(KeyPair.generate(), initiator=False)
    try:
        responder.receive(data)
    except (ProtocolError, SignatureError):
        assert responder.state is State.FAILED


@settings(max_examples=200, deadline=None)
@given(
    tag=st.integers(min_value=0, max_value=4),
    fields=st.lists(HANDSHAKE_FIELDS, max_size=7),
    to_initiator=st.booleans(),
)
def test_handshake_shaped_garbage_raises_only_node_errors(
    tag: int, fields: list[object], to_initiator: bool
) -> None:
    """Msgpack arrays shaped like HELLO/WELCOME/AUTH with random fields raise only
    ProtocolError or SignatureError, whichever side receives them."""
    initiator, responder = sessions()
    initiator.start()
    target = initiator if to_initiator else responder
    try:
        target.receive(msgspec.msgpack.encode([tag, *fields]))
    except (ProtocolError, SignatureError):
        assert target.state is State.FAILED


def fixed(n: int) -> st.SearchStrategy[bytes]:
    """Random ``n`` bytes, or the all-zero and all-ones edge cases."""
    return st.one_of(st.binary(min_size=n, max_size=n), st.just(bytes(n)), st.just(b"\xff" * n))


@settings(max_examples=200, deadline=None)
@given(
    node=fixed(32),
    kx=fixed(32),
    nonce=fixed(32),
    stream=fixed(24),
    sig=fixed(64),
)
def test_well_formed_handshake_messages_with_random_keys_raise_only_node_errors(
    node: bytes, kx: bytes, nonce: bytes, stream: bytes, sig: bytes
) -> None:
    """HELLO, WELCOME and AUTH that decode but carry random (often invalid) keys, nonces and
    signatures are answered or refused with ProtocolError/SignatureError, never a crash."""
    initiator, responder = sessions()
    initiator.start()
    for target, message in (
        (responder, Hello(PROTOCOL_VERSION, node, kx, nonce)),
        (initiator, Welcome(PROTOCOL_VERSION, node, kx, nonce, stream, sig)),
        (responder, Auth(stream, sig)),
    ):
        try:
            target.receive(msgspec.msgpack.encode(message))
        except (ProtocolError, SignatureError):
            assert target.state is State.FAILED
    assert initiator.state is State.FAILED  # nobody can sign as a random node key
