"""Authenticated key exchange and sealed frames for node-to-node sessions.

Both nodes sign the handshake transcript with their Ed25519 node keys; session keys come
from libsodium ``crypto_kx`` over fresh X25519 keys; after the handshake every frame is
sealed with ``crypto_secretstream_xchacha20poly1305`` (one stream per direction), which
also orders frames: a dropped, replayed or reordered frame fails to open.

Invariants: the transcript binds both node keys, both ephemeral keys, both nonces and both
stream headers, so neither side can be impersonated or spliced into another session;
failures raise :class:`ProtocolError` or :class:`SignatureError` only.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from nacl import bindings as sodium
from nacl.exceptions import BadSignatureError, CryptoError

from node.errors import ProtocolError, SignatureError

TRANSCRIPT_CONTEXT = b"circle-node/sync/v1"
NONCE_BYTES = 32
HEADER_BYTES = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL


def transcript_hash(*parts: bytes) -> bytes:
    h = hashlib.blake2b(TRANSCRIPT_CONTEXT, digest_size=32)
    for part in parts:
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h.digest()


def verify_transcript(public: bytes, transcript: bytes, signature: bytes) -> None:
    if len(public) != 32 or len(signature) != 64:
        raise SignatureError("handshake signature or key has the wrong length")
    try:
        sodium.crypto_sign_open(signature + transcript, public)
    except (BadSignatureError, ValueError) as exc:
        raise SignatureError("the peer's handshake signature does not verify") from exc


@dataclass
class Ephemeral:
    """A fresh X25519 key pair and nonce for one handshake."""

    public: bytes
    secret: bytes
    nonce: bytes

    @classmethod
    def generate(cls) -> Ephemeral:
        public, secret = sodium.crypto_kx_keypair()
        return cls(public, secret, os.urandom(NONCE_BYTES))


def session_keys(mine: Ephemeral, peer_public: bytes, *, initiator: bool) -> tuple[bytes, bytes]:
    """``(rx, tx)`` session keys; the initiator is libsodium's client."""
    if len(peer_public) != sodium.crypto_kx_PUBLIC_KEY_BYTES:
        raise ProtocolError("the peer's exchange key has the wrong length")
    try:
        if initiator:
            rx, tx = sodium.crypto_kx_client_session_keys(mine.public, mine.secret, peer_public)
        else:
            rx, tx = sodium.crypto_kx_server_session_keys(mine.public, mine.secret, peer_public)
    except CryptoError as exc:
        raise ProtocolError("key exchange failed: the peer sent an invalid key") from exc
    return rx, tx


class SealingStream:
    """The sending half: seals frames in order."""

    def __init__(self, key: bytes) -> None:
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        self.header: bytes = sodium.crypto_secretstream_xchacha20poly1305_init_push(
            self._state, key
        )

    def seal(self, plaintext: bytes, *, final: bool = False) -> bytes:
        tag = TAG_FINAL if final else TAG_MESSAGE
        sealed: bytes = sodium.crypto_secretstream_xchacha20poly1305_push(
            self._state, plaintext, None, tag
        )
        return sealed


class OpeningStream:
    """The receiving half: opens frames in order; any tampering is fatal."""

    def __init__(self, key: bytes, header: bytes) -> None:
        if len(header) != HEADER_BYTES:
            raise ProtocolError("the peer's stream header has the wrong length")
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(self._state, header, key)
        self.finished = False

    def open(self, sealed: bytes) -> bytes:
        if self.finished:
            raise ProtocolError("frame after the peer closed its stream")
        if len(sealed) < ABYTES:
            raise ProtocolError("sealed frame too short")
        try:
            plaintext, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(
                self._state, sealed, None
            )
        except (CryptoError, ValueError) as exc:
            raise ProtocolError("a frame failed to open: tampered, replayed or reordered") from exc
        if tag == TAG_FINAL:
            self.finished = True
        return bytes(plaintext)
