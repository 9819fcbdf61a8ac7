"""Shared fixtures. ``tests/`` is put on ``sys.path`` so test modules can ``import helpers``."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from node.replica import Replica  # noqa: E402


@pytest.fixture
async def replica(tmp_path: Path) -> AsyncIterator[Replica]:
    """A fresh replica on a real SQLite file."""
    async with Replica.open(tmp_path / "node.db") as opened:
        yield opened
