"""Credentials in the sans-IO handshake (node.sync.protocol): a node with none sends the
same bytes as before; presented credentials reach the peer, are bound into the signed
transcript, and let a pinned initiator accept a successor key only through a valid chain."""

from __future__ import annotations

import msgspec
import pytest

from node.crypto.credentials import Credentials
from node.crypto.handover import make_handover
from node.crypto.keys import KeyPair
from node.errors import ProtocolError, SignatureError
from node.sync.protocol import HandshakeComplete, State, SyncSession

OLD, NEW, OTHER = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()


def chain(old: KeyPair = OLD, new: KeyPair = NEW) -> bytes:
    return Credentials(handovers=[make_handover(old, new.public, 1, 0).wire]).encode()


def handshake(
    initiator: SyncSession, responder: SyncSession, tamper: bool = False
) -> tuple[HandshakeComplete, HandshakeComplete]:
    responder.receive(initiator.start())
    welcome = responder.pending_reply()
    assert welcome is not None
    if tamper:  # replace the responder's credentials after it signed them
        fields = msgspec.msgpack.decode(welcome)
        fields[7] = chain(OTHER, NEW)
        welcome = msgspec.msgpack.encode(fields)
    (done_i,) = initiator.receive(welcome)
    auth = initiator.pending_reply()
    assert auth is not None
    (done_r,) = responder.receive(auth)
    assert isinstance(done_i, HandshakeComplete)
    assert isinstance(done_r, HandshakeComplete)
    return done_i, done_r


def test_without_credentials_hello_and_welcome_keep_their_old_shape() -> None:
    """No credentials: HELLO has 5 elements and WELCOME 7, as before credentials existed."""
    initiator = SyncSession(KeyPair.generate(), initiator=True)
    responder = SyncSession(KeyPair.generate(), initiator=False)
    hello = initiator.start()
    assert len(msgspec.msgpack.decode(hello)) == 5
    responder.receive(hello)
    welcome = responder.pending_reply()
    assert welcome is not None
    assert len(msgspec.msgpack.decode(welcome)) == 7


def test_credentials_reach_the_peer_both_ways() -> None:
    """Each side's HandshakeComplete carries what the other presented."""
    creds_i, creds_r = chain(), Credentials(handovers=[], certs=[b"c"]).encode()
    initiator = SyncSession(NEW, initiator=True, credentials=creds_i)
    responder = SyncSession(KeyPair.generate(), initiator=False, credentials=creds_r)
    done_i, done_r = handshake(initiator, responder)
    assert (done_i.credentials, done_r.credentials) == (creds_r, creds_i)


def test_pinned_initiator_accepts_the_successor_through_the_chain() -> None:
    """Pinned to OLD, the initiator accepts NEW presenting OLD -> NEW."""
    initiator = SyncSession(KeyPair.generate(), initiator=True, expected_peer=OLD.public)
    responder = SyncSession(NEW, initiator=False, credentials=chain())
    done_i, _ = handshake(initiator, responder)
    assert done_i.peer == NEW.public
    assert initiator.state is State.OPEN


@pytest.mark.parametrize(
    "creds",
    [b"", chain(OTHER, NEW), b"\x93\x01\x91\xc4\x03abc\x90", chain(OLD, OTHER)],
    ids=["none", "from another key", "garbage", "to another key"],
)
def test_pinned_initiator_refuses_a_key_without_a_valid_chain(creds: bytes) -> None:
    """No chain, a chain from a key we did not pin, junk, or a chain to another key."""
    initiator = SyncSession(KeyPair.generate(), initiator=True, expected_peer=OLD.public)
    responder = SyncSession(NEW, initiator=False, credentials=creds)
    responder.receive(initiator.start())
    welcome = responder.pending_reply()
    assert welcome is not None
    with pytest.raises(ProtocolError, match="not the one configured"):
        initiator.receive(welcome)
    assert initiator.state is State.FAILED


def test_credentials_swapped_in_transit_fail_the_signature() -> None:
    """WELCOME's credentials are signed: changing them after signing fails the initiator."""
    initiator = SyncSession(KeyPair.generate(), initiator=True)
    responder = SyncSession(NEW, initiator=False, credentials=chain())
    with pytest.raises(SignatureError):
        handshake(initiator, responder, tamper=True)
