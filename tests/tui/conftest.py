"""Fixtures of the TUI tests: fast key sealing, and a node home on real SQLite files."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_kit import Node, make_node


@pytest.fixture(autouse=True)
def fast_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seal test keys with the minimum argon2id limits (never for a real node)."""
    monkeypatch.setenv("CIRCLE_NODE_FAST_KDF", "1")
    monkeypatch.delenv("CIRCLE_NODE_PASSPHRASE", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")


@pytest.fixture
async def node(tmp_path: Path) -> Node:
    """A home with alice (her key here), circle Garden, and bob (write) on the side."""
    return await make_node(tmp_path / "home")
