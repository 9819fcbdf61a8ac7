"""deploy/Containerfile and compose.example.yaml: a non-root node on python:3.11-slim with
its home on a volume, a health check on /health, and port 7400 (read, not built: building
needs a container engine and the network)."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_containerfile_runs_a_non_root_node_with_a_volume_and_healthcheck() -> None:
    """The final stage is python:3.11-slim, runs as circle-node, keeps the home on a
    volume, exposes 7400, checks /health and starts `circle-node serve`; what it copies
    exists in the checkout."""
    steps = _instructions(DEPLOY / "Containerfile")
    final = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    assert steps[final] == ("FROM", "python:3.11-slim")
    tail = dict(steps[final:])
    assert tail["USER"] == "circle-node"
    assert json.loads(tail["VOLUME"]) == ["/var/lib/circle-node"]
    assert tail["EXPOSE"] == "7400"
    assert "/health" in tail["HEALTHCHECK"]
    assert tail["HEALTHCHECK"].split(" CMD ")[0].startswith("--interval=")
    health = json.loads(tail["HEALTHCHECK"].split(" CMD ", 1)[1])
    assert health[:2] == ["python", "-c"]
    compile(health[2], "healthcheck", "exec")  # the one-liner is valid Python
    assert "CIRCLE_NODE_HOME=/var/lib/circle-node" in tail["ENV"]
    assert (json.loads(tail["ENTRYPOINT"]), json.loads(tail["CMD"])) == (["circle-node"], ["serve"])
    for word, args in steps:
        if word == "COPY" and not args.startswith("--from"):
            *sources, _target = args.split()
            assert all((ROOT / s).exists() for s in sources), args


def test_compose_example_builds_from_the_checkout_and_keeps_the_home() -> None:
    """The compose example builds deploy/Containerfile from the checkout's root, keeps the
    home on a named volume, reads the passphrase from an env file and publishes 7400."""
    text = (DEPLOY / "compose.example.yaml").read_text()
    assert re.search(r"^\s+context: \.\.$", text, re.MULTILINE)
    assert re.search(r"^\s+dockerfile: deploy/Containerfile$", text, re.MULTILINE)
    assert (DEPLOY / "Containerfile").is_file()
    assert "- circle-node-home:/var/lib/circle-node" in text
    assert re.search(r"^volumes:\n  circle-node-home:", text, re.MULTILINE)
    assert re.search(r"^\s+env_file: circle-node\.env$", text, re.MULTILINE)
    assert '- "7400:7400"' in text
    assert "restart: unless-stopped" in text
    settings = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not any("PASSPHRASE" in line for line in settings)  # never in the file itself
