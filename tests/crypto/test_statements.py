"""Tests for the signed statements of keys over time: hand-overs (node.crypto.handover),
node certificates and federation agreements (node.crypto.federation), the handshake
credentials blob (node.crypto.credentials): forgeries, replays, wrong keys, truncation."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.crypto import federation, handover
from node.crypto.credentials import Credentials, decode_credentials
from node.crypto.keys import KeyPair
from node.crypto.statement import MAX_STATEMENT, sign_statement
from node.errors import DecodeError, SignatureError

K0, K1, K2, K3 = (KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 5))
ROOT = KeyPair.from_seed(b"r" * 32)
PARTNER = KeyPair.from_seed(b"p" * 32)
CIRCLE_A, CIRCLE_B = b"a" * 16, b"b" * 16
BAD = (DecodeError, SignatureError)


def _chain() -> list[bytes]:
    return [
        handover.make_handover(K0, K1.public, 1, 100).wire,
        handover.make_handover(K1, K2.public, 2, 200).wire,
    ]


def test_handover_round_trip_and_byte_layout() -> None:
    """A hand-over opens to what was signed; its body is the documented msgpack array."""
    link = handover.make_handover(K0, K1.public, 1, 100)
    opened = handover.open_handover(link.wire)
    assert (opened.old, opened.new, opened.seq, opened.ts) == (K0.public, K1.public, 1, 100)
    body, sig = msgspec.msgpack.decode(link.wire)
    assert msgspec.msgpack.decode(body) == ["handover", 1, K0.public, K1.public, 1, 100]
    assert K0.signing_key.verify_key.verify(b"circle-node/handover/v1" + body, sig)


def test_handover_signed_by_the_new_key_is_refused() -> None:
    """Only the key being retired can hand over: a statement signed by anyone else fails."""
    body = handover.HandoverBody("handover", 1, K0.public, K1.public, 1, 0)
    forged = sign_statement(K1, handover.CONTEXT, body)
    with pytest.raises(SignatureError, match="not signed by the key it retires"):
        handover.open_handover(forged)


def test_handover_under_another_context_is_refused() -> None:
    """A signature made for another statement type (a certificate) does not transfer."""
    body = handover.HandoverBody("handover", 1, K0.public, K1.public, 1, 0)
    wire = sign_statement(K0, federation.CERT_CONTEXT, body)
    with pytest.raises(SignatureError):
        handover.open_handover(wire)


def test_chain_verifies_and_names_the_previous_keys() -> None:
    """K0 -> K1 -> K2 leads to K2, in any order presented."""
    links = handover.verify_chain(list(reversed(_chain())), K2.public)
    assert [link.old for link in links] == [K0.public, K1.public]


@pytest.mark.parametrize(
    ("wires", "current", "reason"),
    [
        (_chain(), K3.public, "does not lead"),
        (_chain()[:1], K2.public, "does not lead"),
        ([_chain()[0], handover.make_handover(K1, K2.public, 5, 0).wire], K2.public, "skips"),
        (
            [
                handover.make_handover(K0, K1.public, 1, 0).wire,
                handover.make_handover(K1, K0.public, 2, 0).wire,
            ],
            K0.public,
            "repeats",
        ),
    ],
)
def test_broken_chains_are_refused(wires: list[bytes], current: bytes, reason: str) -> None:
    """A chain that ends elsewhere, skips a rotation or loops is refused."""
    with pytest.raises(DecodeError, match=reason):
        handover.verify_chain(wires, current)


def test_replaying_a_links_signature_onto_another_body_fails() -> None:
    """Swapping a valid signature onto another body (a replay) does not verify."""
    a = msgspec.msgpack.decode(handover.make_handover(K0, K1.public, 1, 0).wire)
    b = msgspec.msgpack.decode(handover.make_handover(K0, K2.public, 1, 0).wire)
    spliced = msgspec.msgpack.encode([b[0], a[1]])
    with pytest.raises(SignatureError):
        handover.open_handover(spliced)


@given(st.data())
def test_truncated_or_flipped_statements_never_open(data: st.DataObject) -> None:
    """Any truncation or single bit flip of any statement is refused with a NodeError."""
    wires = [
        (handover.open_handover, handover.make_handover(K0, K1.public, 1, 0).wire),
        (federation.open_cert, federation.certify_node(ROOT, K0.public, "Org", 0, 10).wire),
        (
            federation.open_agreement,
            federation.make_agreement(ROOT, PARTNER.public, [CIRCLE_A], 0, 10).wire,
        ),
    ]
    opener, wire = data.draw(st.sampled_from(wires))
    if data.draw(st.booleans()):
        broken = wire[: data.draw(st.integers(0, len(wire) - 1))]
    else:
        i = data.draw(st.integers(0, len(wire) - 1))
        broken = wire[:i] + bytes([wire[i] ^ (1 << data.draw(st.integers(0, 7)))]) + wire[i + 1 :]
    with pytest.raises(BAD):
        opener(broken)


def test_certificate_round_trip_text_and_expiry() -> None:
    """A certificate survives its text form and is in force only in [issued, expires)."""
    cert = federation.certify_node(ROOT, K0.public, "Allotments Co-op", 1000, 2000)
    again = federation.cert_from_text(cert.to_text())
    assert again == cert
    assert (cert.root, cert.node, cert.org) == (ROOT.public, K0.public, "Allotments Co-op")
    assert [cert.in_force(t) for t in (999, 1000, 1999, 2000)] == [False, True, True, False]


def test_certificate_claiming_another_root_is_refused() -> None:
    """A certificate naming ROOT but signed by another key does not verify."""
    body = federation.CertBody("node-cert", 1, ROOT.public, K0.public, "Org", 0, 10)
    with pytest.raises(SignatureError):
        federation.open_cert(sign_statement(PARTNER, federation.CERT_CONTEXT, body))


def test_agreement_round_trip_and_forgeries() -> None:
    """An agreement lists its circles; a forged signer or unsorted circles are refused."""
    agreement = federation.make_agreement(ROOT, PARTNER.public, [CIRCLE_B, CIRCLE_A], 0, 10)
    assert federation.agreement_from_text(agreement.to_text()) == agreement
    assert agreement.circles == {CIRCLE_A, CIRCLE_B}
    body = federation.AgreementBody("federation", 1, ROOT.public, PARTNER.public, [CIRCLE_A], 0, 9)
    with pytest.raises(SignatureError):
        federation.open_agreement(sign_statement(PARTNER, federation.AGREEMENT_CONTEXT, body))
    unsorted = federation.AgreementBody(
        "federation", 1, ROOT.public, PARTNER.public, [CIRCLE_B, CIRCLE_A], 0, 9
    )
    with pytest.raises(DecodeError, match="sorted"):
        federation.open_agreement(sign_statement(ROOT, federation.AGREEMENT_CONTEXT, unsorted))
    with pytest.raises(DecodeError, match="itself"):
        federation.make_agreement(ROOT, ROOT.public, [CIRCLE_A], 0, 9)


def test_an_agreement_of_the_most_circles_fits_the_statement_cap() -> None:
    """900 circles (protocol.md 10.3) fit the 16 KiB statement cap even with the largest
    timestamps, and round-trip; 901 are refused before signing, and a signed body of 901
    (which would still squeeze under the cap) is refused when opened."""
    most = federation.MAX_AGREEMENT_CIRCLES
    assert most == 900
    circles = [i.to_bytes(16, "big") for i in range(most + 1)]
    late = 2**63 - 1
    agreement = federation.make_agreement(ROOT, PARTNER.public, circles[:most], late - 1, late)
    assert len(agreement.wire) <= MAX_STATEMENT
    assert federation.agreement_from_text(agreement.to_text()) == agreement
    assert len(agreement.circles) == most
    with pytest.raises(DecodeError, match="at most 900 circles"):
        federation.make_agreement(ROOT, PARTNER.public, circles, late - 1, late)
    with pytest.raises(DecodeError, match="at least one circle"):
        federation.make_agreement(ROOT, PARTNER.public, [], 0, 9)
    body = federation.AgreementBody("federation", 1, ROOT.public, PARTNER.public, circles, 0, 9)
    over = sign_statement(ROOT, federation.AGREEMENT_CONTEXT, body)
    assert len(over) <= MAX_STATEMENT
    with pytest.raises(DecodeError, match="900"):
        federation.open_agreement(over)


def test_text_forms_refuse_the_wrong_prefix() -> None:
    """A certificate is not accepted where an agreement is expected, and vice versa."""
    cert = federation.certify_node(ROOT, K0.public, "Org", 0, 10)
    with pytest.raises(DecodeError, match="cnfed1"):
        federation.agreement_from_text(cert.to_text())
    with pytest.raises(DecodeError, match="cncert1"):
        federation.cert_from_text("cnfed1:AAAA")


def test_credentials_framing() -> None:
    """Credentials encode to nothing when empty, round-trip, and refuse oversize or junk."""
    assert Credentials().encode() == b""
    assert decode_credentials(b"") == Credentials()
    creds = Credentials(handovers=_chain(), certs=[b"x"])
    assert decode_credentials(creds.encode()) == creds
    with pytest.raises(DecodeError):
        decode_credentials(b"\x93\x02\x90\x90")
    with pytest.raises(DecodeError):
        decode_credentials(msgspec.msgpack.encode([1, [b"h"] * 17, []]))
    with pytest.raises(DecodeError):
        decode_credentials(b"\xff" * (17 * 1024))
