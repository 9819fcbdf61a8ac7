"""The demo's three nodes while the story is built: their homes, keys and replicas.

Each member acts on the replica of their own node, as they would at home; when one node
needs what another wrote (a circle it was just made a host of, a pitch to pledge on), the
story calls :meth:`Federation.settle`, which runs the real sync engine (``PeerSync``)
between the replicas over in-memory channels until no op moves. The story never settles
after its last steps: the running nodes carry those over the network.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

from node.crypto.keys import KeyPair
from node.demo.layout import NODES, DemoDir, NodeSpec
from node.domain.auth import AuthState
from node.errors import NodeError
from node.home import NodeHome
from node.replica import Replica
from node.sync.engine import PeerSync
from node.sync.memory import MemoryChannel

DEMO_LISTEN = "127.0.0.1:7400"  # node.toml only: the demo always passes --listen
SYNC_LIMIT = 60.0  # seconds for one in-process sync: a guard, it takes milliseconds
MAX_ROUNDS = 8


@dataclass
class DemoNode:
    spec: NodeSpec
    home: NodeHome
    key: KeyPair
    replica: Replica

    @property
    def public(self) -> bytes:
        return self.key.public


@dataclass
class Federation:
    nodes: dict[str, DemoNode]
    members: dict[str, KeyPair] = field(default_factory=dict)
    home_of: dict[str, str] = field(default_factory=dict)  # member -> node key

    def replica(self, member: str) -> Replica:
        """The replica of the member's own node: where they act."""
        return self.nodes[self.home_of[member]].replica

    def node_of(self, member: str) -> bytes:
        return self.nodes[self.home_of[member]].public

    async def sync(self, a: DemoNode, b: DemoNode) -> int:
        """One full sync, ``a`` dialing ``b``; the ops that moved."""
        end_a, end_b = MemoryChannel.pair()
        dialer = PeerSync(a.replica, a.key, end_a, initiator=True, expected_peer=b.public)
        listener = PeerSync(b.replica, b.key, end_b, initiator=False)
        async with asyncio.timeout(SYNC_LIMIT):
            stats_a, stats_b = await asyncio.gather(dialer.run(), listener.run())
        error = stats_a.error or stats_b.error
        if error is not None:
            raise NodeError(f"building the demo: sync {a.spec.key} -> {b.spec.key}: {error}")
        return stats_a.ops_sent + stats_b.ops_sent

    async def settle(self) -> None:
        """Sync every pair of nodes until a whole round moves nothing."""
        nodes = list(self.nodes.values())
        pairs = [(a, b) for i, a in enumerate(nodes) for b in nodes[i + 1 :]]
        for _round in range(MAX_ROUNDS):
            moved = 0
            for a, b in pairs:
                moved += await self.sync(a, b)
            if moved == 0:
                return
        raise NodeError("building the demo: the nodes did not settle")

    async def hosted(self) -> dict[str, list[str]]:
        """Per node, the ids of the circles any node holds that list it as a host."""
        states: dict[bytes, AuthState] = {}
        for node in self.nodes.values():
            for circle in await node.replica.circles():
                states.setdefault(circle, await node.replica.auth_state(circle))
        return {
            key: sorted(c.hex() for c, state in states.items() if node.public in state.hosts())
            for key, node in self.nodes.items()
        }


@asynccontextmanager
async def new_federation(demo: DemoDir, passphrase: str) -> AsyncIterator[Federation]:
    """Make the three homes (node key and member keys sealed under ``passphrase``) and open
    their replicas; closed on leaving."""
    async with AsyncExitStack() as stack:
        nodes: dict[str, DemoNode] = {}
        members: dict[str, KeyPair] = {}
        home_of: dict[str, str] = {}
        for spec in NODES:
            home = demo.home(spec.key)
            home.init(spec.name, DEMO_LISTEN, passphrase)
            key = home.unlock_node(passphrase)
            for name in spec.members:
                members[name] = home.create_member(name, passphrase)
                home_of[name] = spec.key
            replica = await stack.enter_async_context(Replica.open(home.store_path))
            nodes[spec.key] = DemoNode(spec, home, key, replica)
        yield Federation(nodes, members, home_of)
