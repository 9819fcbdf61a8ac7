"""What this node knows about node keys, kept in the store's ``meta`` table
(docs/protocol.md section 10, docs/architecture.md "Keys over time").

    meta "own/credentials"       our credentials blob: the hand-over chain to our current
                                 key and our organisation's certificates for it
    meta "handover/<old hex>"    a hand-over we verified (ours or a peer's): <old> is retired
    meta "federation/<hex>"      a federation agreement our organisation's root signed,
                                 keyed by the partner's root key

Invariants:

* A node key with a stored hand-over is retired: sessions presenting it are refused.
* One old key hands over to one new key: a second, different hand-over from the same old
  key is refused (the old key is in two hands: someone must look) and changes nothing.
* Only hand-overs that verify are stored; only agreements signed by the root that
  certified this node are stored or honoured.
* :meth:`KeyRing.identify` judges a peer's presented credentials; what a peer may host is
  then ``PeerIdentity.may_host``: its key or a key it took over is a host in the circle's
  auth log, or an agreement in force names the circle for the root that certified it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from node.crypto.credentials import Credentials, decode_credentials
from node.crypto.federation import Agreement, NodeCert, open_agreement, open_cert
from node.crypto.handover import Handover, chain_to, open_handover, verify_chain
from node.domain.auth import AuthState
from node.errors import DecodeError, NodeError, ProtocolError, SignatureError
from node.store.store import Store

OWN_CREDENTIALS = "own/credentials"
HANDOVER = "handover/"
FEDERATION = "federation/"


@dataclass(frozen=True)
class PeerIdentity:
    """Who a peer proved to be: its node key, keys it took over, circles agreed for it."""

    node: bytes
    previous: frozenset[bytes] = frozenset()
    # circle -> unix second at which the agreement (or a certificate it rests on) ends, so
    # that a long live session stops naming the circle then
    partner_until: Mapping[bytes, int] = field(default_factory=dict)
    # roots whose certificates (in force) for its key it presented
    roots: frozenset[bytes] = frozenset()

    @property
    def partner_circles(self) -> frozenset[bytes]:
        return frozenset(self.partner_until)

    def may_host(self, circle: bytes, state: AuthState) -> bool:
        hosts = state.hosts()
        if self.node in hosts or not self.previous.isdisjoint(hosts):
            return True
        return time.time() < self.partner_until.get(circle, 0)


class KeyRing:
    """The key facts of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def _prefixed(self, prefix: str) -> list[bytes]:
        sql = "SELECT value FROM meta WHERE key >= ? AND key < ? ORDER BY key"
        async with self.store.db.execute(sql, (prefix, prefix + "\uffff")) as cursor:
            rows = await cursor.fetchall()
        return [bytes(row[0]) for row in rows]

    # ---- our own credentials ------------------------------------------------------------

    async def own_credentials(self) -> Credentials:
        return decode_credentials(await self.store.meta(OWN_CREDENTIALS) or b"")

    async def presentable(self, node: bytes) -> bytes:
        """Our credentials to present with node key ``node``: a hand-over chain that does
        not end at ``node`` (a rotation not finished) is left out."""
        creds = await self.own_credentials()
        links = chain_to(creds.handovers, node)
        return Credentials(handovers=[h.wire for h in links], certs=creds.certs).encode()

    async def set_own_credentials(self, credentials: Credentials) -> None:
        async with self.store.write():
            await self.store.set_meta(OWN_CREDENTIALS, credentials.encode())

    async def own_roots(self, node: bytes) -> set[bytes]:
        """The organisation roots whose certificates for ``node`` (or a key it took over)
        we hold and are in force."""
        return set(await self._own_roots_until(node))

    async def _own_roots_until(self, node: bytes) -> dict[bytes, int]:
        """``own_roots``, each with when its (latest-ending) certificate expires."""
        creds = await self.own_credentials()
        keys = {node} | {h.old for h in chain_to(creds.handovers, node)}
        now = int(time.time())
        certs = [open_cert(w) for w in creds.certs]
        return _roots_until([c for c in certs if c.node in keys], now)

    async def store_rotation(self, credentials: Credentials, link: Handover) -> None:
        """Our new credentials and our own hand-over, in one transaction."""
        async with self.store.write():
            await self.store.set_meta(OWN_CREDENTIALS, credentials.encode())
            await self.store.set_meta(HANDOVER + link.old.hex(), link.wire)

    # ---- hand-overs ---------------------------------------------------------------------

    async def handover_from(self, old: bytes) -> Handover | None:
        wire = await self.store.meta(HANDOVER + old.hex())
        return open_handover(wire) if wire is not None else None

    async def previous_keys(self, node: bytes) -> frozenset[bytes]:
        """The keys that, by hand-overs we stored, led to ``node`` (for bundles, which carry
        no credentials)."""
        by_new = {}
        for wire in await self._prefixed(HANDOVER):
            link = open_handover(wire)
            by_new[link.new] = link.old
        found: set[bytes] = set()
        key = node
        while key in by_new and by_new[key] not in found:
            key = by_new[key]
            found.add(key)
        return frozenset(found)

    async def learn(self, links: list[Handover]) -> int:
        """Store verified hand-over links; how many were new. ProtocolError (nothing
        stored) if one conflicts with a hand-over already stored for the same old key."""
        fresh = await self._unknown(links)
        if fresh:
            async with self.store.write():
                # again inside the transaction: another session (or process) may have
                # stored a hand-over of the same old key since the first look
                fresh = await self._unknown(fresh)
                for link in fresh:
                    await self.store.set_meta(HANDOVER + link.old.hex(), link.wire)
        return len(fresh)

    async def _unknown(self, links: list[Handover]) -> list[Handover]:
        """The links not stored yet; ProtocolError if one conflicts with a stored one."""
        fresh = []
        for link in links:
            known = await self.handover_from(link.old)
            if known is None:
                fresh.append(link)
            elif known.new != link.new:
                raise ProtocolError(
                    f"conflicting hand-over: node key {link.old.hex()[:12]} was already handed "
                    f"over to {known.new.hex()[:12]}; the old key may be compromised"
                )
        return fresh

    # ---- federation ---------------------------------------------------------------------

    async def agreements(self) -> list[Agreement]:
        return [open_agreement(w) for w in await self._prefixed(FEDERATION)]

    async def add_agreement(self, agreement: Agreement, node: bytes) -> None:
        """Keep an agreement signed by the root that certified this node (replacing an
        older one for the same partner); NodeError otherwise."""
        roots = await self.own_roots(node)
        if not roots:
            raise NodeError(
                "this node holds no certificate from its organisation in force: ask the "
                "organisation to run `circle-node org certify-node` and install it with "
                "`circle-node node install-cert`"
            )
        if agreement.root not in roots:
            raise NodeError(
                f"the agreement is signed by root {agreement.root.hex()[:12]}, not by the "
                "organisation root that certified this node"
            )
        key = FEDERATION + agreement.partner.hex()
        async with self.store.write():
            old = await self.store.meta(key)
            if old is not None and open_agreement(old).issued > agreement.issued:
                raise NodeError("this node holds a newer agreement with that partner")
            await self.store.set_meta(key, agreement.wire)

    async def remove_agreement(self, partner: bytes) -> bool:
        async with self.store.write():
            cursor = await self.store.db.execute(
                "DELETE FROM meta WHERE key = ?", (FEDERATION + partner.hex(),)
            )
            removed = cursor.rowcount
            await cursor.close()
        return removed > 0

    # ---- judging a peer -----------------------------------------------------------------

    async def identify(self, node: bytes, presented: bytes, ours: bytes) -> PeerIdentity:
        """What the credentials a peer presented with node key ``node`` prove (``ours``:
        our node key). ProtocolError if the key is retired, or a credential is forged or
        conflicts with what we know."""
        retired = await self.handover_from(node)
        if retired is not None:
            raise ProtocolError(
                f"node key {node.hex()[:12]} was retired by a hand-over to "
                f"{retired.new.hex()[:12]}: the peer must use its new key"
            )
        try:
            creds = decode_credentials(presented)
            links = verify_chain(creds.handovers, node)
            certs = [open_cert(wire) for wire in creds.certs]
        except (DecodeError, SignatureError) as exc:
            raise ProtocolError(f"the peer's credentials are invalid: {exc}") from exc
        await self.learn(links)
        previous = frozenset(link.old for link in links)
        keys = {node, *previous}
        roots = _roots_until([c for c in certs if c.node in keys], int(time.time()))
        circles = await self._partner_circles(roots, ours)
        return PeerIdentity(node, previous, circles, frozenset(roots))

    async def _partner_circles(self, roots: dict[bytes, int], ours: bytes) -> dict[bytes, int]:
        """Circles agreed for the peer's roots (``{root: certificate expiry}``), each with
        when the last agreement naming it (or a certificate that agreement rests on) ends."""
        now = int(time.time())
        if not roots:
            return {}
        mine = await self._own_roots_until(ours)
        circles: dict[bytes, int] = {}
        for agreement in await self.agreements():
            if agreement.partner in roots and agreement.root in mine and agreement.in_force(now):
                until = min(agreement.expires, roots[agreement.partner], mine[agreement.root])
                for circle in agreement.circles:
                    circles[circle] = max(circles.get(circle, 0), until)
        return circles


def _roots_until(certs: list[NodeCert], now: int) -> dict[bytes, int]:
    """The roots of the certificates in force, each with its latest expiry."""
    roots: dict[bytes, int] = {}
    for cert in certs:
        if cert.in_force(now):
            roots[cert.root] = max(roots.get(cert.root, 0), cert.expires)
    return roots
