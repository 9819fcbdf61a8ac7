"""Archive export and verification beside plain ingest of the same ops, in one run.

Builds a circle of N ops with ``bench/ingest.py``'s builder (half ``y`` updates, half
``record`` positions), ingests them into a source store (timed: the baseline), then times:
- ``export``: planning and writing the archive of that store (to memory);
- ``verify``: ``verify_archive`` of the file: re-ingest into a fresh store plus
  ``verify_store`` and the manifest checks.
Prints one JSON line with the ratios. Usage: ``python bench/archive.py [--ops N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from ingest import build_ops  # noqa: E402

from node.export.archive import plan_archive, verify_archive, write_archive  # noqa: E402
from node.ingest import ingest_ops  # noqa: E402
from node.replica import Replica  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup, wires = await build_ops(Path(tmp) / "built.db", args.ops)
        async with Replica.open(Path(tmp) / "source.db") as replica:
            await ingest_ops(replica, setup)
            start = time.perf_counter()
            for i in range(0, len(wires), 2_000):
                await ingest_ops(replica, wires[i : i + 2_000])
            ingest_s = time.perf_counter() - start
            start = time.perf_counter()
            plan = await plan_archive(replica, sorted(await replica.circles()), "bench")
            out = io.BytesIO()
            written = await write_archive(replica, plan, out)
            export_s = time.perf_counter() - start
        path = Path(tmp) / "bench.cna"
        path.write_bytes(out.getvalue())
        start = time.perf_counter()
        report = await verify_archive(path)
        verify_s = time.perf_counter() - start
    if not report.ok:
        raise SystemExit(f"the benchmark archive did not verify: {report.problems[:3]}")
    print(
        json.dumps(
            {
                "bench": "archive",
                "ops": written,
                "archive_bytes": len(out.getvalue()),
                "ingest_ops_per_s": round(len(wires) / ingest_s),
                "export_ops_per_s": round(written / export_s),
                "verify_ops_per_s": round(written / verify_s),
                "ratio_verify_to_ingest": round(ingest_s / verify_s * written / len(wires), 3),
                "python": platform.python_version(),
                "machine": platform.machine(),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
