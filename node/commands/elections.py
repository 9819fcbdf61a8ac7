"""Governance commands: elections (see node/cli.py for how commands are wired)."""

from __future__ import annotations

from typing import Any


def register(build: Any, subs: Any) -> None:
    """Add this module's subcommands to the `circle-node` parser."""
