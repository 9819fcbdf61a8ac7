"""Whether a circle a peer sent us for the first time may stay (docs/protocol.md 8.3).

A peer may offer any circle, including one whose auth log does not list this node: stored
as is, it would be *planted* here (named in ``circles()``, offered on to others, shown in
the TUI). Ops of a circle new to this node are therefore stored as *provisional*
(node/store/provisional.py); once the peer has sent all of it (its last ``OPS`` frame, or
the end of the session) :func:`settle` folds the auth log and, in one write transaction,
either confirms the circle or removes every trace of it.

The circle may stay when this node's key, or a key it took over by a hand-over, is a host
in the folded auth state; or when the sender is a federation partner (it proved a
certificate in force from a root other than ours while we hold one ourselves): agreements
are signed by the sharing organisation and not sent, so a partner's share cannot be
checked against the auth log here (docs/security.md, known limits).
"""

from __future__ import annotations

import logging
import time

from node.keyring import KeyRing, PeerIdentity
from node.replica import Replica

log = logging.getLogger(__name__)

# a provisional mark this old was left by a session that died (a crash, a kill): no
# initial sync streams one circle for a day
STALE_AFTER = 24 * 3600


async def settle(replica: Replica, ours: bytes, sender: PeerIdentity, circle: bytes) -> int | None:
    """Confirm or purge the provisional ``circle`` (``ours``: our node key). Returns how
    many ops were purged, or None if the circle stays (or was not provisional)."""
    store = replica.store
    keyring = KeyRing(store)
    me = PeerIdentity(ours, await keyring.previous_keys(ours))
    own_roots = await keyring.own_roots(ours)
    partner = bool(own_roots) and bool(sender.roots - own_roots)
    purged: int | None = None
    async with store.write():
        try:
            if not await store.is_provisional(circle):
                return None
            state = (await replica.auth_log(circle)).full()
            if me.may_host(circle, state) or partner:
                await store.confirm_circle(circle)
            else:
                purged = await store.purge_circle(circle)
        finally:
            replica.invalidate()  # the circle is now visible, or gone
    if purged is not None:
        log.warning(
            "dropped circle %s from %s: its auth log does not list this node as a host",
            circle.hex()[:12],
            sender.node.hex()[:12],
            extra={"peer": sender.node, "circle": circle.hex(), "ops": purged},
        )
    return purged


async def sweep(replica: Replica) -> int:
    """Purge circles left provisional by a session that died long ago (their rows are
    invisible meanwhile); how many circles went."""
    store = replica.store
    cutoff = int(time.time()) - STALE_AFTER
    stale = [c for c, since in (await store.provisional()).items() if since < cutoff]
    if not stale:
        return 0
    async with store.write():
        try:
            for circle in stale:
                await store.purge_circle(circle)
        finally:
            replica.invalidate()
    log.info("purged %d circles a dead sync left unconfirmed", len(stale))
    return len(stale)
