"""Fixtures of the governance tests (the world itself is built in ``gov_world``)."""

from __future__ import annotations

import pytest
from gov_world import World, build_world

from node.replica import Replica


@pytest.fixture
async def world(replica: Replica) -> World:
    """One circle on a fresh replica: alice (manage), bob and carol (write), rita (read)."""
    return await build_world(replica)
