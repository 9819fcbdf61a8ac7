"""Tests for node.crypto.card: member cards as signed, copy-pasteable text."""

from __future__ import annotations

import base64
import textwrap
import unicodedata

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.crypto.card import MemberCard, make_card, parse_card
from node.crypto.keys import KeyPair
from node.errors import CardError

MEMBER = KeyPair.from_seed(b"m" * 32)
OTHER = KeyPair.from_seed(b"o" * 32)
NODE = KeyPair.from_seed(b"n" * 32).public
CARD = make_card(MEMBER, "Ana Lima", NODE, "https://node.example.org:8443")
TEXT = CARD.to_text()
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _b64(raw: bytes) -> str:
    return "cn1:" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _signed_wire(name: str, address: str | None, key: KeyPair = MEMBER) -> bytes:
    """A correctly signed wire payload, bypassing make_card's checks."""
    signed = b"circle-node/card/v1" + msgspec.msgpack.encode([key.public, name, NODE, address])
    return msgspec.msgpack.encode([1, key.public, name, NODE, address, key.sign(signed)])


def test_round_trip() -> None:
    """A card survives to_text and parse_card unchanged."""
    assert TEXT.startswith("cn1:")
    assert parse_card(TEXT) == CARD
    assert CARD.member_id == MEMBER.public.hex()


def test_round_trip_without_address() -> None:
    """A card with no address round-trips with address None."""
    card = make_card(MEMBER, "Ana", NODE, None)
    assert parse_card(card.to_text()).address is None


def test_parse_tolerates_wrapped_whitespace() -> None:
    """Whitespace anywhere (wrapping, indentation, CRLF) is ignored."""
    wrapped = "\r\n".join("   " + line for line in textwrap.wrap(TEXT, 37)) + "\n\n"
    assert parse_card(wrapped) == CARD
    assert parse_card(TEXT[:2] + " \t" + TEXT[2:]) == CARD


def test_text_form_is_documented_layout() -> None:
    """The text decodes to the msgpack array [1, member, name, node, address, signature]."""
    body = TEXT[4:]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    assert msgspec.msgpack.decode(raw) == [
        1,
        CARD.member,
        CARD.name,
        CARD.node,
        CARD.address,
        CARD.signature,
    ]


def _replacements(char: str) -> list[str]:
    following = ALPHABET[(ALPHABET.index(char) + 1) % len(ALPHABET)] if char in ALPHABET else "A"
    return [c for c in (following, "A", "~", "=") if c != char]


def test_every_changed_character_fails() -> None:
    """Replacing any single character of the text raises CardError and nothing else."""
    for index, char in enumerate(TEXT):
        for new in _replacements(char):
            with pytest.raises(CardError):
                parse_card(TEXT[:index] + new + TEXT[index + 1 :])


@given(st.data())
def test_random_character_change_fails(data: st.DataObject) -> None:
    """Any single-character change (deletion included, via whitespace) raises CardError."""
    index = data.draw(st.integers(0, len(TEXT) - 1))
    new = data.draw(st.characters().filter(lambda c: c != TEXT[index]))
    with pytest.raises(CardError):
        parse_card(TEXT[:index] + new + TEXT[index + 1 :])


def test_signature_by_another_key_fails() -> None:
    """A card for the member's key but signed by a different key does not verify."""
    forged = MemberCard(
        CARD.member, CARD.name, CARD.node, CARD.address, OTHER.sign(CARD.signed_bytes())
    )
    with pytest.raises(CardError, match="card signature does not verify"):
        parse_card(forged.to_text())


def test_changed_field_fails() -> None:
    """Changing a field keeps the old signature, which then does not verify."""
    altered = MemberCard(CARD.member, "Mallory", CARD.node, CARD.address, CARD.signature)
    with pytest.raises(CardError, match="signature does not verify"):
        parse_card(altered.to_text())


def test_over_long_text_refused() -> None:
    """Text over 1024 characters (after whitespace removal) is refused."""
    with pytest.raises(CardError, match="too long"):
        parse_card("cn1:" + "A" * 1100)
    with pytest.raises(CardError, match="too long"):
        parse_card(" " * 100_000)


@pytest.mark.parametrize(
    ("name", "address"),
    [
        ("N" * 81, None),
        ("", None),
        ("   ", None),
        ("a\nb", None),
        ("ok", "a" * 201),
        ("ok", ""),
        ("ok", "a b"),
    ],
)
def test_bad_fields_refused(name: str, address: str | None) -> None:
    """Bad names and addresses are refused by make_card and, when signed anyway, by parse_card."""
    with pytest.raises(CardError):
        make_card(MEMBER, name, NODE, address)
    with pytest.raises(CardError, match="card (name|address)"):
        parse_card(_b64(_signed_wire(name, address)))


def test_wrong_prefix_refused() -> None:
    """Text without the cn1: prefix is not a member card."""
    with pytest.raises(CardError, match="must start with 'cn1:'"):
        parse_card("CN1:" + TEXT[4:])


def test_unsupported_version_refused() -> None:
    """A card of another version is refused with a clear message."""
    wire = msgspec.msgpack.decode(_signed_wire("Ana", None))
    wire[0] = 2
    with pytest.raises(CardError, match="unsupported card version 2"):
        parse_card(_b64(msgspec.msgpack.encode(wire)))


def test_non_canonical_msgpack_refused() -> None:
    """A payload that decodes but does not re-encode to the same bytes is refused."""
    canonical = _signed_wire("Ana", None)
    name_at = canonical.index(b"\xa3Ana")
    stretched = canonical[:name_at] + b"\xd9\x03Ana" + canonical[name_at + 4 :]
    with pytest.raises(CardError, match="not canonically encoded"):
        parse_card(_b64(stretched))


def test_non_canonical_base64_refused() -> None:
    """A final character that differs only in unused padding bits is refused."""
    text = next(
        t
        for t in (make_card(MEMBER, n, NODE, None).to_text() for n in "A AB ABC".split())
        if len(t[4:]) % 4
    )
    body = text[4:]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    twins = [
        c
        for c in ALPHABET
        if c != body[-1] and base64.urlsafe_b64decode(body[:-1] + c + "=" * (-len(body) % 4)) == raw
    ]
    assert twins
    for twin in twins:
        with pytest.raises(CardError, match="not canonical base64url"):
            parse_card("cn1:" + body[:-1] + twin)


def test_invalid_utf8_refused() -> None:
    """A name that is not valid UTF-8 is a decode error, not a crash."""
    raw = _signed_wire("Ana", None).replace(b"\xa3Ana", b"\xa3A\xc4a")
    with pytest.raises(CardError, match="do not decode"):
        parse_card(_b64(raw))


def test_make_card_refuses_lone_surrogates() -> None:
    """A name that cannot be encoded as UTF-8 is a CardError, not a UnicodeEncodeError."""
    with pytest.raises(CardError, match="card name"):
        make_card(MEMBER, "a\udc80", NODE, None)


def test_trailing_bytes_refused() -> None:
    """Bytes after the msgpack array make the card invalid."""
    with pytest.raises(CardError, match="do not decode"):
        parse_card(_b64(_signed_wire("Ana", None) + b"\x00"))


def test_make_card_refuses_too_long_text() -> None:
    """make_card refuses a card whose text would not parse for being too long."""
    with pytest.raises(CardError, match="longer than 1024"):
        make_card(MEMBER, "\U0001f600" * 80, NODE, "\U0001f600" * 200)


def _printable(text: str) -> bool:
    return all(unicodedata.category(c) not in ("Cc", "Cs") for c in text)


@given(
    name=st.text(min_size=1, max_size=80).filter(lambda n: _printable(n) and bool(n.strip())),
    address=st.none()
    | st.text(min_size=1, max_size=200).filter(
        lambda a: _printable(a) and not any(c.isspace() for c in a)
    ),
)
def test_made_cards_always_parse(name: str, address: str | None) -> None:
    """A card make_card accepts always parses back to itself."""
    try:
        card = make_card(MEMBER, name, NODE, address)
    except CardError:
        return  # only possible when the text would exceed 1024 characters
    assert parse_card(card.to_text()) == card


@given(st.text(max_size=2000))
def test_fuzz_arbitrary_text(text: str) -> None:
    """Arbitrary text raises CardError and nothing else."""
    with pytest.raises(CardError):
        parse_card(text)


@given(st.text(alphabet=ALPHABET + "=+/ ", max_size=1200))
def test_fuzz_base64ish_text(body: str) -> None:
    """cn1: followed by base64-like junk raises CardError and nothing else."""
    with pytest.raises(CardError):
        parse_card("cn1:" + body)


_FIELD = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**64 - 1),
    st.binary(max_size=70),
    st.text(max_size=90),
    st.booleans(),
    st.floats(),
    st.lists(st.integers(-(2**63), 2**64 - 1), max_size=3),
)


@given(st.lists(_FIELD, max_size=8))
def test_fuzz_msgpack_arrays(fields: list[object]) -> None:
    """Well-formed msgpack arrays of the wrong shape raise CardError and nothing else."""
    with pytest.raises(CardError):
        parse_card(_b64(msgspec.msgpack.encode(fields)))
