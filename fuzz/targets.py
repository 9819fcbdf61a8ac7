"""The atheris fuzz targets: every decoder that reads bytes from outside the node.

Each target takes the fuzzer's bytes and feeds them to one entry point. The contract, the
same as the Hypothesis tests': bad input raises a ``NodeError`` subclass and nothing else.
Any other exception (a ``KeyError``, a msgspec error that escaped, a pycrdt panic, which is
a ``BaseException``) propagates, and atheris reports it as a crash with the input saved.

``seeds()`` gives each target a few valid inputs to start from, so the fuzzer begins deep
inside the formats instead of at their magic bytes.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import msgspec

from node.config import NodeConfig, load_config, render_config
from node.crypto.bundle import (
    BundleReader,
    CircleEntry,
    circle_key,
    decode_heights_file,
    open_genesis,
)
from node.crypto.card import make_card, parse_card
from node.crypto.keys import KeyPair
from node.crypto.ops import OpKind, decode_op, make_op, verify_op
from node.domain.auth import (
    Genesis,
    Level,
    SetMember,
    decode_auth_body,
    decode_genesis,
    encode_body,
)
from node.domain.yupdate import summarize_update
from node.errors import NodeError
from node.sync.protocol import Done, Have, Offer, Ops, Summary, SyncSession

Target = Callable[[bytes], None]
_KEY = KeyPair.generate()


# ---- ops -----------------------------------------------------------------------------------


def fuzz_ops(data: bytes) -> None:
    """A wire op from a peer or a bundle: envelope, header, signature, then every body
    decoder (the body is attacker-chosen once a member signs it)."""
    try:
        op = decode_op(data)
        verify_op(op)
    except NodeError:
        pass
    for decode in (decode_genesis, decode_auth_body, summarize_update):
        try:
            decode(data)
        except NodeError:
            pass


def _seed_ops() -> list[bytes]:
    genesis = encode_body(
        Genesis(name="c", creator_name="a", home=bytes(32), ycid=7, nonce=bytes(16))
    )
    member = encode_body(SetMember(member=bytes(32), level=Level.WRITE, name="m", ycid=9))
    op = make_op(
        _KEY,
        kind=OpKind.GENESIS,
        circle=bytes(16),
        seq=1,
        backlink=None,
        body=genesis,
        deps=[],
        doc=None,
        ycid=7,
        ts=0,
    )
    return [op.wire(), genesis, member, msgspec.msgpack.encode({"t": "note", "text": "hi"})]


# ---- sync frames ---------------------------------------------------------------------------


def _open_pair() -> tuple[SyncSession, SyncSession]:
    initiator = SyncSession(KeyPair.generate(), initiator=True)
    responder = SyncSession(KeyPair.generate(), initiator=False)
    responder.receive(initiator.start())
    welcome = responder.pending_reply()
    assert welcome is not None
    initiator.receive(welcome)
    auth = initiator.pending_reply()
    assert auth is not None
    responder.receive(auth)
    return initiator, responder


def fuzz_frames(data: bytes) -> None:
    """A message from a peer: as the first handshake message to a responder, and as the
    plaintext of a sealed frame from a peer that completed the handshake."""
    try:
        SyncSession(_KEY, initiator=False).receive(data)
    except NodeError:
        pass
    initiator, responder = _open_pair()
    assert initiator._seal is not None  # the stream is real: only the plaintext is hostile
    try:
        responder.receive(initiator._seal.seal(data))
    except NodeError:
        pass


def _seed_frames() -> list[bytes]:
    enc = msgspec.msgpack.encode
    initiator = SyncSession(KeyPair.generate(), initiator=True)
    return [
        initiator.start(),
        enc(Summary(bytes(32), 3)),
        enc(Offer({bytes(16): bytes(16)}, False)),
        enc(Have(bytes(16), {bytes(32): 4}, False)),
        enc(Ops(bytes(16), [b"x" * 40], False, False)),
        enc(Done()),
    ]


# ---- bundles -------------------------------------------------------------------------------


_NODE = KeyPair.from_seed(bytes(range(32)))  # the seed bundle is exported for this node


def _section_key(entry: CircleEntry) -> bytes:
    """As an import does: open the genesis sealed to our node, derive the circle key."""
    if entry.genesis is None:
        return bytes(32)
    genesis = decode_op(open_genesis(entry.genesis, _NODE))
    return circle_key(genesis.op_id, genesis.sig)


def fuzz_bundle(data: bytes) -> None:
    """A bundle file or a heights file from a USB stick: head, manifest, every section."""
    try:
        reader = BundleReader(io.BytesIO(data))
        for index, entry in enumerate(reader.manifest.circles):
            try:
                reader.check_hash(index)
            except NodeError:
                pass
            try:
                key = _section_key(entry)
                reader.check(index, key)
                for wires in reader.chunks(index, key):
                    assert all(isinstance(w, bytes) for w in wires)
            except NodeError:
                pass
    except NodeError:
        pass
    try:
        decode_heights_file(io.BytesIO(data), len(data))
    except NodeError:
        pass


def _seed_bundle() -> list[bytes]:
    """A real bundle of a small circle with a document, by the real exporter, for _NODE."""
    import pycrdt

    from node import local
    from node.domain.documents import doc_id
    from node.replica import Replica
    from node.sync.bundle import export_bundle, plan_export

    def text(doc: pycrdt.Doc) -> None:  # type: ignore[type-arg]
        doc.get("t", type=pycrdt.Text).insert(0, "hello")

    async def make(root: Path) -> bytes:
        alice = KeyPair.generate()
        async with Replica.open(root / "s.db") as replica:
            circle = await local.create_circle(
                replica, alice, name="c", creator_name="a", home=_NODE.public
            )
            await local.edit_doc(replica, alice, circle, doc_id(circle, "p"), text)
            out = io.BytesIO()
            plan = await plan_export(replica, for_node=_NODE.public)
            await export_bundle(replica, _NODE, plan, out)
            return out.getvalue()

    with tempfile.TemporaryDirectory() as tmp:
        return [asyncio.run(make(Path(tmp)))]


# ---- cards ---------------------------------------------------------------------------------


def fuzz_card(data: bytes) -> None:
    """A member card pasted in: the bytes as text (decoded leniently, as a paste would be),
    and the bytes as a card's contents under a valid prefix and base64url, so the fuzzer
    reaches the msgpack decoder and the field checks too."""
    for text in (
        data.decode("utf-8", errors="replace"),
        "cn1:" + base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii"),
    ):
        try:
            parse_card(text)
        except NodeError:
            pass


def _seed_card() -> list[bytes]:
    texts = [
        make_card(_KEY, "alice", bytes(32), "http://10.0.0.2:7400").to_text(),
        make_card(_KEY, "b", bytes(32), None).to_text(),
    ]
    raw = [base64.urlsafe_b64decode(t[4:] + "=" * (-len(t[4:]) % 4)) for t in texts]
    return [t.encode() for t in texts] + raw


# ---- node.toml -----------------------------------------------------------------------------

_CONFIG = Path(tempfile.mkdtemp(prefix="cn-fuzz-")) / "node.toml"


def fuzz_config(data: bytes) -> None:
    """``node.toml`` as a user (or a broken disk) left it: read and validated."""
    _CONFIG.write_bytes(data)
    try:
        load_config(_CONFIG)
    except NodeError:
        pass


def _seed_config() -> list[bytes]:
    config = NodeConfig(
        "hall",
        "0.0.0.0:7400",
        bytes(32),
        1700000000,
        {"backoff_cap": 30.0, "log_level": "debug", "discover": True},
    )
    return [render_config(config).encode()]


TARGETS: dict[str, tuple[Target, Callable[[], list[bytes]]]] = {
    "ops": (fuzz_ops, _seed_ops),
    "frames": (fuzz_frames, _seed_frames),
    "bundle": (fuzz_bundle, _seed_bundle),
    "card": (fuzz_card, _seed_card),
    "config": (fuzz_config, _seed_config),
}


def seeds(name: str, corpus: Path) -> None:
    """Write the target's seed inputs into ``corpus`` (kept if already there)."""
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(TARGETS[name][1]()):
        path = corpus / f"seed-{i}"
        if not path.exists():
            path.write_bytes(seed)


os.environ.setdefault("CIRCLE_NODE_FAST_KDF", "1")
