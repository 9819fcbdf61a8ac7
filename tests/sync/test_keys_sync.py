"""Keys over time in the sync engine, between real replicas over in-memory channels: a
rotated node is still trusted through its hand-over (pinned or not) and its old key is then
refused; a forged hand-over fails; a member's device homes its node as a host; a partner's
certified node is named only the circles an agreement lists, and nothing without a
certificate from a trusted root or after the agreement ends."""

from __future__ import annotations

import asyncio
import time
import types
from typing import TYPE_CHECKING

import pytest

from node import local
from node.crypto.credentials import Credentials
from node.crypto.federation import certify_node, make_agreement
from node.crypto.handover import make_handover
from node.crypto.keys import KeyPair
from node.domain.auth import Level, SetDevice
from node.errors import AuthorizationError, NodeError
from node.keyring import KeyRing
from node.sync.bundle import plan_export
from node.sync.engine import PeerSync, offer_for
from node.sync.memory import MemoryChannel

if TYPE_CHECKING:
    from conftest import Net, Node

ROOT_A = KeyPair.from_seed(b"A" * 32)  # organisation A (the circles' owners)
ROOT_B = KeyPair.from_seed(b"B" * 32)  # partner organisation B
ROOT_X = KeyPair.from_seed(b"X" * 32)  # someone else


async def circle_on(home: Node, guest: Node | None = None, name: str = "c") -> bytes:
    founder = KeyPair.generate()
    circle = await local.create_circle(
        home.replica, founder, name=name, creator_name="f", home=home.public
    )
    if guest is not None:
        await local.add_member(
            home.replica,
            founder,
            circle,
            member=KeyPair.generate().public,
            name="g",
            level=Level.WRITE,
            home=guest.public,
        )
    return circle


async def rotate(node: Node, seq: int = 1) -> KeyPair:
    """Rotate ``node``'s key the way keys_admin does (credentials + learned hand-over)."""
    new = KeyPair.generate()
    ring = KeyRing(node.replica.store)
    creds = await ring.own_credentials()
    link = make_handover(node.key, new.public, seq, int(time.time()))
    await ring.set_own_credentials(
        Credentials(handovers=[*creds.handovers, link.wire], certs=creds.certs)
    )
    await ring.learn([link])
    node.key = new
    return new


async def test_rotated_node_keeps_syncing_with_a_peer_that_pinned_its_old_key(net: Net) -> None:
    """A pins B's old key; B rotates twice; A accepts B's new key via the chain, B still
    gets its circle (hosted by the old key) and new ops flow; A learned both hand-overs."""
    a, b = await net.node("a"), await net.node("b")
    circle = await circle_on(a, guest=b)
    old = b.key
    await rotate(b)
    await rotate(b, seq=2)
    end_a, end_b = MemoryChannel.pair()
    dialer = PeerSync(a.replica, a.key, end_a, initiator=True, expected_peer=old.public)
    listener = PeerSync(b.replica, b.key, end_b, initiator=False)
    stats_a, stats_b = await asyncio.gather(dialer.run(), listener.run())
    assert (stats_a.error, stats_b.error) == (None, None)
    assert dialer.peer == b.public
    assert circle in await b.replica.circles()
    ring = KeyRing(a.replica.store)
    retired = await ring.handover_from(old.public)
    assert retired is not None
    assert dialer.identity is not None
    assert old.public in dialer.identity.previous


async def test_old_key_is_refused_after_the_hand_over_was_seen(net: Net) -> None:
    """Once A saw B's hand-over, a node presenting B's old key is refused either way."""
    a, b = await net.node("a"), await net.node("b")
    circle = await circle_on(a, guest=b)
    old = b.key
    await rotate(b)
    stats_a, stats_b = await net.sync(b, a)  # B dials A with its new key
    assert (stats_a.error, stats_b.error) == (None, None)
    assert circle in await b.replica.circles()
    thief = type(b)("thief", old, (await net.node("t")).replica)
    for dialer, listener in ((thief, a), (a, thief)):
        stats_d, stats_l = await net.sync(dialer, listener)
        errors = f"{stats_d.error} {stats_l.error}"
        assert "retired by a hand-over" in errors
    assert await thief.replica.circles() == set()


async def test_hand_over_not_signed_by_the_pinned_key_is_refused(net: Net) -> None:
    """A node presenting a chain from some other key (not the one A pinned) is refused."""
    a, b = await net.node("a"), await net.node("b")
    await circle_on(a, guest=b)
    pinned = b.public
    mallory = await net.node("m")
    await rotate(mallory)  # a genuine chain, but from mallory's own old key
    end_a, end_m = MemoryChannel.pair()
    dialer = PeerSync(a.replica, a.key, end_a, initiator=True, expected_peer=pinned)
    listener = PeerSync(mallory.replica, mallory.key, end_m, initiator=False)
    stats_a, _ = await asyncio.gather(dialer.run(), listener.run())
    assert stats_a.error is not None
    assert "not the one configured" in stats_a.error
    assert await mallory.replica.circles() == set()


async def test_conflicting_hand_over_is_refused_and_changes_nothing(net: Net) -> None:
    """An old key handing over to two different keys: the second is refused."""
    a, b = await net.node("a"), await net.node("b")
    old = b.key
    await rotate(b)
    assert (await net.sync(b, a))[1].error is None
    twin = await net.node("twin")
    twin.key = old
    await rotate(twin)  # old -> another key
    stats_t, stats_a = await net.sync(twin, a)
    assert "conflicting hand-over" in f"{stats_t.error} {stats_a.error}"
    stored = await KeyRing(a.replica.store).handover_from(old.public)
    assert stored is not None
    assert stored.new == b.public


async def test_device_home_is_a_host(net: Net) -> None:
    """A member's second device registered with its home node makes that node a host;
    retiring the device takes it away."""
    a, d = await net.node("a"), await net.node("d")
    founder = KeyPair.generate()
    circle = await local.create_circle(
        a.replica, founder, name="c", creator_name="f", home=a.public
    )
    device = KeyPair.generate()
    body = SetDevice(device=device.public, ycid=local.new_ycid(), home=d.public)
    await local.author_auth(a.replica, founder, circle, body)
    assert circle in await offer_for(a.replica, d.public)
    await net.sync(d, a)
    assert circle in await d.replica.circles()
    retire = SetDevice(device=device.public, ycid=body.ycid, active=False, cut=0)
    await local.author_auth(a.replica, founder, circle, retire)
    assert circle not in await offer_for(a.replica, d.public)


# ---- federation ------------------------------------------------------------------------------


async def federate(
    a: Node, partner: Node, circles: list[bytes], *, root: KeyPair = ROOT_B, expires_in: int = 3600
) -> None:
    """A is certified by ROOT_A and honours ROOT_A's agreement for ROOT_B; ``partner``
    holds a certificate from ``root``."""
    now = int(time.time())
    ring_a = KeyRing(a.replica.store)
    cert_a = certify_node(ROOT_A, a.public, "Org A", now - 10, now + 3600)
    await ring_a.set_own_credentials(Credentials(certs=[cert_a.wire]))
    agreement = make_agreement(ROOT_A, ROOT_B.public, circles, now - 10, now + expires_in)
    await ring_a.add_agreement(agreement, a.public)
    cert_p = certify_node(root, partner.public, "Org B", now - 10, now + 3600)
    await KeyRing(partner.replica.store).set_own_credentials(Credentials(certs=[cert_p.wire]))


async def test_partner_node_syncs_only_agreed_circles(net: Net) -> None:
    """B's certified node gets the agreed circle, never the other one, in both directions."""
    a, p = await net.node("a"), await net.node("p")
    shared = await circle_on(a, name="shared")
    private = await circle_on(a, name="private")
    await federate(a, p, [shared])
    for dialer, listener in ((p, a), (a, p)):
        stats_d, stats_l = await net.sync(dialer, listener)
        assert (stats_d.error, stats_l.error) == (None, None)
    assert await p.replica.circles() == {shared}
    assert private not in await p.replica.circles()


@pytest.mark.parametrize("case", ["uncertified", "untrusted_root", "expired", "no_agreement"])
async def test_partner_rejections(net: Net, case: str) -> None:
    """No certificate, a certificate from a root the agreement does not name, an expired
    agreement, or no agreement at all: the partner node is named nothing."""
    a, p = await net.node("a"), await net.node("p")
    shared = await circle_on(a, name="shared")
    if case == "untrusted_root":
        await federate(a, p, [shared], root=ROOT_X)
    elif case == "expired":
        await federate(a, p, [shared], expires_in=-5)
    elif case == "uncertified":
        await federate(a, p, [shared])
        await KeyRing(p.replica.store).set_own_credentials(Credentials())
    stats_p, stats_a = await net.sync(p, a)
    assert (stats_p.error, stats_a.error) == (None, None)
    assert await p.replica.circles() == set()


async def test_agreement_must_be_signed_by_this_nodes_root(net: Net) -> None:
    """A node refuses to keep an agreement its own organisation's root did not sign."""
    a = await net.node("a")
    now = int(time.time())
    forged = make_agreement(ROOT_X, ROOT_B.public, [b"c" * 16], now, now + 60)
    ring = KeyRing(a.replica.store)
    with pytest.raises(NodeError, match="no certificate"):
        await ring.add_agreement(forged, a.public)
    cert = certify_node(ROOT_A, a.public, "Org A", now - 1, now + 60)
    await ring.set_own_credentials(Credentials(certs=[cert.wire]))
    with pytest.raises(NodeError, match="not by the organisation root"):
        await ring.add_agreement(forged, a.public)
    assert await ring.agreements() == []


async def test_forged_or_garbage_credentials_end_the_session(net: Net) -> None:
    """A certificate whose signature does not verify, or undecodable credentials, end the
    session before anything is named."""
    a, p = await net.node("a"), await net.node("p")
    shared = await circle_on(a, name="shared")
    await federate(a, p, [shared])
    ring_p = KeyRing(p.replica.store)
    (wire,) = (await ring_p.own_credentials()).certs
    forged = wire[:-1] + bytes([wire[-1] ^ 1])
    await ring_p.set_own_credentials(Credentials(certs=[forged]))
    stats_p, stats_a = await net.sync(p, a)
    assert "credentials are invalid" in f"{stats_p.error} {stats_a.error}"
    assert await p.replica.circles() == set()


async def test_expired_certificate_names_nothing(net: Net) -> None:
    """A partner certificate past its expiry no longer counts, though the agreement does."""
    a, p = await net.node("a"), await net.node("p")
    shared = await circle_on(a, name="shared")
    await federate(a, p, [shared])
    now = int(time.time())
    old = certify_node(ROOT_B, p.public, "Org B", now - 100, now - 1)
    await KeyRing(p.replica.store).set_own_credentials(Credentials(certs=[old.wire]))
    stats_p, stats_a = await net.sync(p, a)
    assert (stats_p.error, stats_a.error) == (None, None)
    assert await p.replica.circles() == set()


async def test_rotated_partner_node_keeps_its_certificate(net: Net) -> None:
    """A partner node certified under its old key still gets the agreed circle after it
    rotated: the certificate holds for a key it took over."""
    a, p = await net.node("a"), await net.node("p")
    shared = await circle_on(a, name="shared")
    await federate(a, p, [shared])
    await rotate(p)
    stats_p, stats_a = await net.sync(p, a)
    assert (stats_p.error, stats_a.error) == (None, None)
    assert await p.replica.circles() == {shared}


async def test_bundle_for_a_rotated_node_keeps_its_circles(net: Net) -> None:
    """Once A saw B's hand-over, a bundle `--for` B's new key holds what B's old key hosted."""
    a, b = await net.node("a"), await net.node("b")
    circle = await circle_on(a, guest=b)
    other = await circle_on(a, name="other")
    await rotate(b)
    with pytest.raises(AuthorizationError, match="hosts none of the circles"):
        await plan_export(a.replica, for_node=b.public)
    assert (await net.sync(b, a))[1].error is None  # A learns the hand-over
    plan = await plan_export(a.replica, for_node=b.public)
    assert (plan.circles, plan.excluded) == ([circle], [other])


async def test_no_bundle_for_a_retired_node_key(net: Net) -> None:
    """Once A saw B's hand-over, B's old key is retired: a bundle `--for` it (whose genesis
    would be sealed to that key, so whoever holds it reads the circle) is refused."""
    a, b = await net.node("a"), await net.node("b")
    await circle_on(a, guest=b)
    old = b.public
    assert (await plan_export(a.replica, for_node=old)).circles
    await rotate(b)
    assert (await net.sync(b, a))[1].error is None  # A learns the hand-over
    with pytest.raises(AuthorizationError, match="retired"):
        await plan_export(a.replica, for_node=old)


async def test_live_session_of_a_key_retired_meanwhile_gets_no_more_pushes(net: Net) -> None:
    """A live session opened with B's old key (say, by whoever stole it) while it was still
    good: once A learns B's hand-over, A pushes nothing more to it and ends it."""
    a, b = await net.node("a"), await net.node("b")
    founder = KeyPair.generate()
    circle = await local.create_circle(
        a.replica, founder, name="c", creator_name="f", home=a.public
    )
    await local.add_member(
        a.replica, founder, circle, member=KeyPair.generate().public, name="g",
        level=Level.WRITE, home=b.public,
    )  # fmt: skip
    thief = type(b)("thief", b.key, (await net.node("t")).replica)
    end_a, end_t = MemoryChannel.pair()
    live_a = PeerSync(a.replica, a.key, end_a, initiator=False, live=True)
    live_t = PeerSync(thief.replica, thief.key, end_t, initiator=True, live=True)
    runs = asyncio.gather(live_a.run(), live_t.run())
    async with asyncio.timeout(10):
        await live_a.synced.wait()
        await live_t.synced.wait()
        await rotate(b)
        assert (await net.sync(b, a))[1].error is None  # A learns the hand-over
        op = await local.author_record(a.replica, founder, circle, b"\x81\xa1t\xa4note")
        assert await live_a.push(circle, [(op.op_id, op.wire())]) == 0
        await runs
    assert op.op_id not in await thief.replica.store.known_op_ids([op.op_id])


async def test_live_session_stops_pushing_agreed_circles_once_the_agreement_expires(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agreement is honoured only while in force: a live session with a partner node
    opened before it expired gets no pushes of the agreed circle after it."""
    a, p = await net.node("a"), await net.node("p")
    founder = KeyPair.generate()
    shared = await local.create_circle(
        a.replica, founder, name="shared", creator_name="f", home=a.public
    )
    await federate(a, p, [shared])
    end_a, end_p = MemoryChannel.pair()
    live_a = PeerSync(a.replica, a.key, end_a, initiator=False, live=True)
    live_p = PeerSync(p.replica, p.key, end_p, initiator=True, live=True)
    runs = asyncio.gather(live_a.run(), live_p.run())
    async with asyncio.timeout(10):
        await live_a.synced.wait()
        await live_p.synced.wait()
        assert await p.replica.circles() == {shared}
        first = await local.author_record(a.replica, founder, shared, b"\x81\xa1t\xa4note")
        assert await live_a.push(shared, [(first.op_id, first.wire())]) == 1
        later = int(time.time()) + 7200  # the agreement (and certificates) ended meanwhile
        monkeypatch.setattr("node.keyring.time", types.SimpleNamespace(time=lambda: later))
        op = await local.author_record(a.replica, founder, shared, b"\x81\xa1t\xa5note2")
        assert await live_a.push(shared, [(op.op_id, op.wire())]) == 0
        await live_a.close("done")
        await runs


async def test_concurrent_conflicting_hand_overs_keep_exactly_one(net: Net) -> None:
    """Two sessions presenting different hand-overs of one old key at the same moment (the
    owner and a thief racing): one is stored, the other is refused as conflicting, never
    both accepted with the last write silently winning."""
    a = await net.node("a")
    old = KeyPair.generate()
    one = make_handover(old, KeyPair.generate().public, 1, 0)
    two = make_handover(old, KeyPair.generate().public, 1, 0)
    results = await asyncio.gather(
        KeyRing(a.replica.store).learn([one]),
        KeyRing(a.replica.store).learn([two]),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["ProtocolError", "int"]
    stored = await KeyRing(a.replica.store).handover_from(old.public)
    winner = one if results[0] == 1 else two
    assert stored is not None
    assert stored.new == winner.new
