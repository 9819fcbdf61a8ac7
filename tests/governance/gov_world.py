"""The governance test world: one circle on a real replica, alice (manage), bob and carol
(write), rita (read).

Honest records go through ``node.governance`` (which signs with ``node.local``);
``craft`` signs a record by hand, with any deps, for hostile histories.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from node.crypto.keys import KeyPair
from node.crypto.ops import Op, OpKind, make_op
from node.domain.auth import Level
from node.domain.governance.records import GovernanceRecord, ProposalRec, encode_record
from node.governance import create_proposal
from node.ingest import IngestReport, ingest_ops
from node.local import add_member, create_circle
from node.replica import Replica

HOME = bytes(range(32))


@dataclass
class World:
    replica: Replica
    circle: bytes
    genesis: bytes  # the circle's first auth op: citing only it is "stale deps"
    alice: KeyPair
    bob: KeyPair
    carol: KeyPair
    rita: KeyPair  # read level

    async def propose(self, text: str = "water the beds daily", **kw: object) -> bytes:
        body = ProposalRec(title="Watering", driver="the beds dry out", text=text, **kw)  # type: ignore[arg-type]
        pid, _version = await create_proposal(self.replica, self.alice, self.circle, body)
        return pid

    async def craft(
        self, key: KeyPair, record: GovernanceRecord | bytes, deps: Iterable[bytes] | None = None
    ) -> tuple[Op, IngestReport]:
        """Sign the next record of ``key``'s chain with chosen deps, and ingest it."""
        replica = self.replica
        await replica.refresh()
        seq, head = (await replica.heights(self.circle)).get(key.public, (0, None))
        if deps is None:
            deps = (await replica.auth_log(self.circle)).heads()
        body = record if isinstance(record, bytes) else encode_record(record)
        op = make_op(
            key,
            kind=OpKind.RECORD,
            circle=self.circle,
            seq=seq + 1,
            backlink=head,
            deps=sorted(deps),
            body=body,
            ts=int(time.time()),
        )
        return op, await ingest_ops(replica, [op.wire()])


async def build_world(replica: Replica) -> World:
    """One circle on a fresh replica with four members at their levels."""
    alice, bob, carol, rita = (KeyPair.generate() for _ in range(4))
    circle = await create_circle(replica, alice, name="Garden", creator_name="alice", home=HOME)
    genesis = (await replica.auth_log(circle)).heads()[0]
    for key, name, level in ((bob, "bob", Level.WRITE), (carol, "carol", Level.WRITE)):
        await add_member(
            replica, alice, circle, member=key.public, name=name, level=level, home=HOME
        )
    await add_member(
        replica, alice, circle, member=rita.public, name="rita", level=Level.READ, home=HOME
    )
    return World(replica, circle, genesis, alice, bob, carol, rita)
