"""The sync protocol between two nodes, sans I/O: frames in -> events, events -> frames.

No asyncio, sockets or SQLite here (docs/protocol.md, "Sync"). A transport carries
*messages* (one WebSocket binary message, or one element of an HTTP exchange); this module
turns each received message into events and each event to send into one message.

Every state rule lives in ``_ALLOWED`` and ``_TRANSITIONS``. A session starts in
``HANDSHAKE``; the initiator sends HELLO, the responder answers WELCOME (signed), the
initiator AUTH (signed). From then on every message is sealed (secretstream) and the
session is ``OPEN``; sending GOING_AWAY makes it ``CLOSING`` (frames in flight still
arrive), receiving one makes it ``CLOSED``. Any violation raises ProtocolError, after
which the session is ``FAILED`` and must be dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Annotated

import msgspec

from node.crypto.credentials import MAX_CREDENTIALS, decode_credentials
from node.crypto.handover import verify_chain
from node.crypto.handshake import (
    Ephemeral,
    OpeningStream,
    SealingStream,
    session_keys,
    transcript_hash,
    verify_transcript,
)
from node.crypto.ops import Signer
from node.errors import DecodeError, ProtocolError, SignatureError

PROTOCOL_VERSION = 1
MAX_MESSAGE = 300 * 1024  # sealed message limit (an OPS frame carries <= 256 KiB of ops)
MAX_OPS_BYTES = 256 * 1024
MAX_OFFER = 4_000  # circles per OFFER message (36 B each: fits MAX_MESSAGE); more -> more=True
MAX_HEIGHTS = 4_000  # authors per HAVE message (44 B each); more -> more=True


class FrameType(IntEnum):
    HELLO = 1
    WELCOME = 2
    AUTH = 3
    SUMMARY = 10
    OFFER = 11
    HAVE = 12
    OPS = 13
    DONE = 14
    GOING_AWAY = 15


class State(Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSING = "closing"  # we said GOING_AWAY; frames in flight (and the peer's) still arrive
    CLOSED = "closed"
    FAILED = "failed"


Bytes16 = Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
Bytes32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Sig = Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]
Nonce = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
StreamHeader = Annotated[bytes, msgspec.Meta(min_length=24, max_length=24)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Creds = Annotated[bytes, msgspec.Meta(max_length=MAX_CREDENTIALS)]


# ---- plaintext handshake messages --------------------------------------------------------


class Hello(
    msgspec.Struct, array_like=True, frozen=True, omit_defaults=True, tag=int(FrameType.HELLO)
):
    version: int
    node: Bytes32
    kx: Bytes32
    nonce: Nonce
    creds: Creds = b""  # the initiator's credentials (protocol.md 10.4); omitted if none


class Welcome(
    msgspec.Struct, array_like=True, frozen=True, omit_defaults=True, tag=int(FrameType.WELCOME)
):
    version: int
    node: Bytes32
    kx: Bytes32
    nonce: Nonce
    stream: StreamHeader
    sig: Sig
    creds: Creds = b""  # the responder's credentials; signed as part of welcome_core


class Auth(msgspec.Struct, array_like=True, frozen=True, tag=int(FrameType.AUTH)):
    stream: StreamHeader
    sig: Sig


# ---- sealed session events ---------------------------------------------------------------


class Summary(msgspec.Struct, array_like=True, frozen=True, tag=int(FrameType.SUMMARY)):
    """One digest over every circle offered to the peer, and how many there are."""

    digest: Bytes32
    circles: Count


class Offer(msgspec.Struct, array_like=True, frozen=True, tag=int(FrameType.OFFER)):
    """Per circle the receiver may host: the sender's digest of its heights."""

    circles: Annotated[dict[Bytes16, Bytes16], msgspec.Meta(max_length=MAX_OFFER)]
    more: bool = False  # another OFFER message follows


class Have(msgspec.Struct, array_like=True, frozen=True, tag=int(FrameType.HAVE)):
    """The sender's heights in one circle: send me what is above these."""

    circle: Bytes16
    heights: Annotated[dict[Bytes32, Count], msgspec.Meta(max_length=MAX_HEIGHTS)]
    more: bool = False  # another HAVE message for this circle follows


class Ops(msgspec.Struct, array_like=True, frozen=True, tag=int(FrameType.OPS)):
    """Wire ops of one circle; ``more`` until the last frame answering a HAVE."""

    circle: Bytes16
    ops: list[bytes]
    more: bool
    live: bool = False


class Done(msgspec.Struct, array_like=True, frozen=True, tag=int(FrameType.DONE)):
    """The sender has answered every HAVE of the initial sync."""


class GoingAway(msgspec.Struct, array_like=True, frozen=True, tag=int(FrameType.GOING_AWAY)):
    reason: Annotated[str, msgspec.Meta(max_length=200)] = ""


SessionEvent = Summary | Offer | Have | Ops | Done | GoingAway
HandshakeMessage = Hello | Welcome | Auth

_handshake_decoder = msgspec.msgpack.Decoder(HandshakeMessage)
_event_decoder = msgspec.msgpack.Decoder(SessionEvent)
_encoder = msgspec.msgpack.Encoder()


@dataclass(frozen=True)
class HandshakeComplete:
    """Emitted once: the peer proved it holds the node key ``peer``; ``credentials`` are
    what it presented (hand-overs, certificates), bound into the signed transcript."""

    peer: bytes
    credentials: bytes = b""


Event = HandshakeComplete | SessionEvent

_SESSION_EVENTS: frozenset[type] = frozenset({Summary, Offer, Have, Ops, Done, GoingAway})

# Which events may be *received* in each state (HANDSHAKE messages are handled apart).
# After we send GOING_AWAY (CLOSING) the peer's frames already in flight, and its own
# GOING_AWAY if both sides hang up at once, still arrive; nothing may be sent any more.
_ALLOWED: dict[State, frozenset[type]] = {
    State.HANDSHAKE: frozenset(),
    State.OPEN: _SESSION_EVENTS,
    State.CLOSING: _SESSION_EVENTS,
    State.CLOSED: frozenset(),
    State.FAILED: frozenset(),
}
# Transitions: (state, event type, direction) -> next state; anything absent keeps state.
_TRANSITIONS: dict[tuple[State, type, str], State] = {
    (State.OPEN, GoingAway, "send"): State.CLOSING,
    (State.OPEN, GoingAway, "receive"): State.CLOSED,
    (State.CLOSING, GoingAway, "receive"): State.CLOSED,
}


def _welcome_core(node: bytes, kx: bytes, nonce: bytes, stream: bytes, creds: bytes) -> bytes:
    """What WELCOME's signature covers: the credentials only when there are some, so a
    node presenting none signs exactly what it signed before credentials existed."""
    parts = (node, kx, nonce, stream, creds) if creds else (node, kx, nonce, stream)
    return _encoder.encode(parts)


def _encode_trailing(frame: Hello | Welcome) -> bytes:
    """A HELLO/WELCOME as a msgpack array, without the trailing ``creds`` when empty (so a
    node without credentials sends the same bytes as before they existed)."""
    fields = [frame.__struct_config__.tag, *msgspec.structs.astuple(frame)]
    if not frame.creds:
        fields.pop()
    return _encoder.encode(fields)


@dataclass
class Counters:
    messages_sent: int = 0
    messages_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


@dataclass
class SyncSession:
    """One side of one connection. ``initiator`` dials; ``expected_peer`` pins the peer key
    (a peer presenting a verified hand-over chain from it is accepted too); ``credentials``
    are ours to present (set before the handshake starts)."""

    node_key: Signer
    initiator: bool
    expected_peer: bytes | None = None
    credentials: bytes = b""
    state: State = State.HANDSHAKE
    peer: bytes | None = None
    counters: Counters = field(default_factory=Counters)
    _ephemeral: Ephemeral = field(default_factory=Ephemeral.generate)
    _hello: bytes = b""
    _welcome_core: bytes = b""
    _seal: SealingStream | None = None
    _open: OpeningStream | None = None
    _rx: bytes = b""
    _tx: bytes = b""
    _reply: bytes = b""
    _welcome_sig: bytes = b""
    _peer_credentials: bytes = b""

    # ---- handshake ----------------------------------------------------------------------

    def start(self) -> bytes:
        """The initiator's first message (HELLO)."""
        if not self.initiator or self._hello:
            raise ProtocolError("only the initiator starts, once")
        hello = Hello(
            PROTOCOL_VERSION,
            self.node_key.public,
            self._ephemeral.public,
            self._ephemeral.nonce,
            self.credentials,
        )
        self._hello = _encode_trailing(hello)
        return self._count_out(self._hello)

    def receive(self, message: bytes) -> list[Event]:
        """Feed one received message; returns the events it carries (and any reply to send
        is produced by :meth:`pending_reply` during the handshake)."""
        if self.state in (State.CLOSED, State.FAILED):
            raise ProtocolError(f"message received on a {self.state.value} session")
        if len(message) > MAX_MESSAGE:
            self._fail()
            raise ProtocolError(f"message of {len(message)} bytes exceeds {MAX_MESSAGE}")
        self.counters.messages_received += 1
        self.counters.bytes_received += len(message)
        try:
            if self.state is State.HANDSHAKE:
                return self._receive_handshake(message)
            return [self._receive_event(message)]
        except (ProtocolError, SignatureError):
            self._fail()
            raise

    def _receive_handshake(self, message: bytes) -> list[Event]:
        try:
            frame = _handshake_decoder.decode(message)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"malformed handshake message: {exc}") from exc
        if isinstance(frame, Hello) and not self.initiator and not self._hello:
            return self._on_hello(frame, message)
        if isinstance(frame, Welcome) and self.initiator and self._hello and not self._seal:
            return self._on_welcome(frame)
        if isinstance(frame, Auth) and not self.initiator and self._seal:
            return self._on_auth(frame)
        raise ProtocolError(f"unexpected {type(frame).__name__} during the handshake")

    def _check_version(self, version: int) -> None:
        if version != PROTOCOL_VERSION:
            raise ProtocolError(f"peer speaks protocol {version}, we speak {PROTOCOL_VERSION}")

    def _check_peer(self, node: bytes, credentials: bytes = b"") -> None:
        if self.expected_peer is not None and node != self.expected_peer:
            if not self._handed_over(node, credentials):
                raise ProtocolError("the peer's node key is not the one configured for it")
        if node == self.node_key.public:
            raise ProtocolError("connected to ourselves")

    def _handed_over(self, node: bytes, credentials: bytes) -> bool:
        """True iff ``credentials`` hold a valid hand-over chain from the pinned key to
        ``node`` (the peer rotated its key since we pinned it)."""
        try:
            links = verify_chain(decode_credentials(credentials).handovers, node)
        except (DecodeError, SignatureError):
            return False
        return any(link.old == self.expected_peer for link in links)

    def _on_hello(self, hello: Hello, raw: bytes) -> list[Event]:
        self._check_version(hello.version)
        self._check_peer(hello.node, hello.creds)
        self._hello = raw
        self._rx, self._tx = session_keys(self._ephemeral, hello.kx, initiator=False)
        self._seal = SealingStream(self._tx)
        self.peer = hello.node
        self._peer_credentials = hello.creds
        core = (
            self.node_key.public,
            self._ephemeral.public,
            self._ephemeral.nonce,
            self._seal.header,
        )
        self._welcome_core = _welcome_core(*core, self.credentials)
        sig = self.node_key.sign(transcript_hash(self._hello, self._welcome_core))
        self._welcome_sig = sig
        welcome = Welcome(PROTOCOL_VERSION, *core, sig, self.credentials)
        self._reply = _encode_trailing(welcome)
        return []

    def _on_welcome(self, welcome: Welcome) -> list[Event]:
        self._check_version(welcome.version)
        self._check_peer(welcome.node, welcome.creds)
        core = (welcome.node, welcome.kx, welcome.nonce, welcome.stream)
        self._welcome_core = _welcome_core(*core, welcome.creds)
        transcript = transcript_hash(self._hello, self._welcome_core)
        verify_transcript(welcome.node, transcript, welcome.sig)
        self._rx, self._tx = session_keys(self._ephemeral, welcome.kx, initiator=True)
        self._open = OpeningStream(self._rx, welcome.stream)
        self._seal = SealingStream(self._tx)
        final = transcript_hash(self._hello, self._welcome_core, welcome.sig, self._seal.header)
        self._reply = _encoder.encode(Auth(self._seal.header, self.node_key.sign(final)))
        self.peer = welcome.node
        self.state = State.OPEN
        return [HandshakeComplete(welcome.node, welcome.creds)]

    def _on_auth(self, auth: Auth) -> list[Event]:
        assert self.peer is not None
        final = transcript_hash(self._hello, self._welcome_core, self._welcome_sig, auth.stream)
        verify_transcript(self.peer, final, auth.sig)
        self._open = OpeningStream(self._rx, auth.stream)
        self.state = State.OPEN
        return [HandshakeComplete(self.peer, self._peer_credentials)]

    def pending_reply(self) -> bytes | None:
        """The handshake reply to send after :meth:`receive`, if any (once)."""
        reply, self._reply = self._reply, b""
        return self._count_out(reply) if reply else None

    # ---- sealed session -----------------------------------------------------------------

    def _receive_event(self, message: bytes) -> Event:
        assert self._open is not None
        plaintext = self._open.open(message)
        try:
            event: SessionEvent = _event_decoder.decode(plaintext)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"malformed frame: {exc}") from exc
        if type(event) not in _ALLOWED[self.state]:
            raise ProtocolError(f"{type(event).__name__} not allowed while {self.state.value}")
        if isinstance(event, Ops) and sum(len(o) for o in event.ops) > MAX_OPS_BYTES:
            raise ProtocolError("OPS frame above the size limit")
        self.state = _TRANSITIONS.get((self.state, type(event), "receive"), self.state)
        return event

    def send(self, event: SessionEvent) -> bytes:
        """Seal one event into a message for the transport."""
        if self.state is not State.OPEN or self._seal is None:
            raise ProtocolError(f"cannot send on a {self.state.value} session")
        self.state = _TRANSITIONS.get((self.state, type(event), "send"), self.state)
        return self._count_out(self._seal.seal(_encoder.encode(event)))

    def _count_out(self, message: bytes) -> bytes:
        self.counters.messages_sent += 1
        self.counters.bytes_sent += len(message)
        return message

    def _fail(self) -> None:
        self.state = State.FAILED
