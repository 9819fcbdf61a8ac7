"""The demo directory and its cast.

Layout::

    DIR/demo.json         the marker: {"demo": MARKER, "version", "state", "built": {...}}
    DIR/<node>/           one node home per node of the cast (node.toml, keys, store.db)
    DIR/logs/<node>.log   each running node's log (appended to on every run)

Invariants:

* A directory is a demo directory iff ``demo.json`` names :data:`MARKER`. Any other
  non-empty directory is refused (:class:`DemoError`) and left untouched.
* ``state`` is ``building`` from the moment the build starts until every step of the
  story is stored; only then is it ``built``. A directory left ``building`` (the build was
  stopped) is rebuilt from scratch: its node homes are demo data made by us, never a
  user's. A ``built`` directory is never rebuilt: a re-run starts its nodes again.
* ``demo.json`` is replaced atomically, so it is always one state or the other.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.errors import NodeError
from node.home import NodeHome, write_atomic

MARKER = "circle-node demo"
VERSION = 1
MARKER_FILE = "demo.json"
LOGS = "logs"
#: the passphrase of every demo key, unless $CIRCLE_NODE_PASSPHRASE chooses another
DEMO_PASSPHRASE = "circle demo"


class DemoError(NodeError):
    """The demo directory cannot be used (not a demo, damaged marker)."""


@dataclass(frozen=True)
class NodeSpec:
    """One node of the federation: its home's directory name, display name and members."""

    key: str
    name: str
    about: str
    members: tuple[str, ...]


#: The cast, in the order the nodes are set up and started (docs/demo.md tells the story).
NODES = (
    NodeSpec(
        "hall",
        "Riverside Hall",
        "the top circle and Social Value and Learning",
        ("alice", "dave"),
    ),
    NodeSpec(
        "neighbourhood",
        "Neighbourhood Pi",
        "the Community Garden and the Repair Cafe",
        ("bob", "carol", "erin", "frank"),
    ),
    NodeSpec("den", "Angels Den", "the partner organisation of social investors", ("ian", "grace")),
)
TUI_NODE = "neighbourhood"  # holds every circle: the best view of the whole system


class DemoDir:
    """A demo directory; nothing is read until asked."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.marker = path / MARKER_FILE
        self.logs = path / LOGS

    def home(self, key: str) -> NodeHome:
        return NodeHome(self.path / key)

    def log_path(self, key: str) -> Path:
        return self.logs / f"{key}.log"

    def read(self) -> dict[str, Any] | None:
        """The marker's contents; None for a missing or empty directory; DemoError for a
        directory that holds something else."""
        if not self.path.exists():
            return None
        if not self.path.is_dir():
            raise DemoError(f"{self.path} is not a directory: choose another --dir")
        if not self.marker.exists():
            if any(self.path.iterdir()):
                raise DemoError(
                    f"{self.path} is not empty and is not a circle-node demo (no {MARKER_FILE}):"
                    " choose an empty or new --dir"
                )
            return None
        try:
            data = json.loads(self.marker.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DemoError(
                f"{self.marker} is damaged ({exc}): remove {self.path} to start a new demo"
            ) from exc
        if not isinstance(data, dict) or data.get("demo") != MARKER:
            raise DemoError(f"{self.marker} is not a circle-node demo marker: choose another --dir")
        if data.get("version") != VERSION or data.get("state") not in ("building", "built"):
            raise DemoError(
                f"{self.marker} is from another version of the demo: remove {self.path} "
                "to start a new one"
            )
        return data

    def write(self, state: str, built: dict[str, Any] | None = None) -> None:
        """Replace the marker: ``state`` and what the build made (circles, hosts)."""
        self.path.mkdir(parents=True, exist_ok=True)
        data = {"demo": MARKER, "version": VERSION, "state": state, "built": built or {}}
        write_atomic(self.marker, (json.dumps(data, indent=2) + "\n").encode(), mode=0o644)

    def start_building(self) -> None:
        """Mark the build as started, removing what an interrupted build left."""
        for spec in NODES:
            shutil.rmtree(self.path / spec.key, ignore_errors=True)
        self.write("building")
        self.logs.mkdir(exist_ok=True)


def passphrase() -> str:
    """The demo keys' passphrase: $CIRCLE_NODE_PASSPHRASE if set, else the demo's own."""
    return os.environ.get("CIRCLE_NODE_PASSPHRASE") or DEMO_PASSPHRASE
