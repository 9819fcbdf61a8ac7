"""Load, in miniature: `bench/load.py` with a few peers for a few seconds must end with no
errors, every op delivered to every peer, and the backlog drained. The full run (50 peers)
is `python bench/load.py` (docs/security.md, Reliability)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench" / "load.py"


def test_load_bench_in_miniature_delivers_everything_without_errors() -> None:
    """A serve node, 6 live peers in 2 client processes, 3 s of writes: no errors, all
    writes reach every peer, nothing left queued, and the figures are all there."""
    done = subprocess.run(
        [sys.executable, str(BENCH), "--peers", "6", "--clients", "2", "--seconds", "3"]
        + ["--rate", "10"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(done.stdout.splitlines()[-1])
    assert figures["errors"]["total"] == 0, figures["errors"]
    assert figures["writes"] == 30
    assert figures["final_backlog_ops"] == 0
    assert 0 <= figures["max_backlog_ops"] <= figures["writes"]
    latency = figures["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert figures["top_rss_mb"]["peak"] > 0
    assert figures["baseline_raw_verify_per_s"] > 0
