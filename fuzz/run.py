"""Run one atheris fuzz target: ``python fuzz/run.py TARGET [--seconds N] [libFuzzer args]``.

Targets are in ``fuzz/targets.py`` (ops, frames, bundle, card, config). The corpus lives in
``fuzz/corpus/TARGET`` (not committed; seeded with valid inputs on first run) and crashes
are written to ``fuzz/crashes/`` as ``crash-<sha1>``; replay one with
``python fuzz/run.py TARGET fuzz/crashes/crash-...``. ``make fuzz`` runs every target for
``FUZZ_SECONDS`` seconds each. Exits non-zero when the target crashed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

with atheris.instrument_imports(include=["node"]):
    import targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=sorted(targets.TARGETS))
    parser.add_argument("--seconds", type=int, default=60, help="how long to fuzz")
    args, rest = parser.parse_known_args()
    corpus = HERE / "corpus" / args.target
    crashes = HERE / "crashes"
    crashes.mkdir(exist_ok=True)
    replay = [a for a in rest if not a.startswith("-")]
    argv = [sys.argv[0], *rest]
    if not replay:
        targets.seeds(args.target, corpus)
        argv += [
            f"-max_total_time={args.seconds}",
            f"-artifact_prefix={crashes}/{args.target}-",
            "-max_len=70000",
            "-rss_limit_mb=2048",
            "-print_final_stats=1",
            str(corpus),
        ]
    atheris.Setup(argv, targets.TARGETS[args.target][0])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
