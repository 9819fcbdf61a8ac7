"""circle-node side by side with automerge-repo and pycrdt-websocket, on loopback, in one run.

Every system gets the same seeded workload (``workload.py``) and runs the same scenarios,
each ``--reps`` times (median and spread): cold clone of everything from a server node to
an empty client node; 10% of the documents edited on the server, then synced; nothing
changed, then synced; single edits propagated live; restart and reload of the client node
holding everything. Every client dials through one counting TCP proxy (``proxy.py``) for
bytes each way and round trips. Peak RSS is each process's own (``wait4``), disk is the
client's store after the clone. circle-node runs twice: with signature verification (as
shipped) and with it switched off inside the benchmark's processes only.

    .venv/bin/python bench/compare/run.py --small          # 1,000 proposals (make bench)
    .venv/bin/python bench/compare/run.py                  # 10,000 proposals

Writes ``bench/compare/results/<preset>.json`` (raw figures) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from proxy import CountingProxy
from workload import Workload, churn, generate, live_edit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORK = HERE / ".work"
LIVE_EDITS = 5


@dataclass
class System:
    name: str
    argv: list[str]
    client_flags: list[str] = field(default_factory=list)
    needs_server_dir: bool = False  # automerge's client reads the index URL / heads from it
    seed_from: str | None = None  # share another system's seeded store

    def cmd(self, *args: str, client: bool = False) -> list[str]:
        return [*self.argv, *args, *(self.client_flags if client else [])]


def systems(seed: int) -> dict[str, System]:
    cn = [sys.executable, str(HERE / "drivers" / "circle_node_driver.py"), "--seed", str(seed)]
    return {
        "circle-node": System("circle-node", cn),
        "circle-node (no verify)": System(
            "circle-node (no verify)", cn, ["--no-verify"], seed_from="circle-node"
        ),
        "pycrdt-websocket": System(
            "pycrdt-websocket",
            [str(WORK / "pyenv" / "bin" / "python"), str(HERE / "drivers" / "pycrdt_driver.py")],
        ),
        "automerge-repo": System(
            "automerge-repo",
            ["node", str(WORK / "js" / "automerge_driver.mjs")],
            needs_server_dir=True,
        ),
    }


class ProxyThread:
    """The counting proxy on its own event loop thread, so the orchestrator can block on
    child processes (``wait4`` gives each one's peak RSS)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.proxy: CountingProxy | None = None
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def point_at(self, port: int) -> int:
        async def start() -> CountingProxy:
            if self.proxy is not None:
                await self.proxy.__aexit__()
            return await CountingProxy(port).__aenter__()

        self.proxy = asyncio.run_coroutine_threadsafe(start(), self.loop).result()
        return self.proxy.port

    def reset(self) -> None:
        assert self.proxy is not None
        self.loop.call_soon_threadsafe(self.proxy.reset)
        time.sleep(0.01)

    def counts(self) -> dict[str, int]:
        assert self.proxy is not None
        time.sleep(0.05)  # let the last chunks in flight be counted
        return asyncio.run_coroutine_threadsafe(_counts(self.proxy), self.loop).result()


async def _counts(proxy: CountingProxy) -> dict[str, int]:
    return proxy.counts().as_dict()


def env() -> dict[str, str]:
    out = dict(os.environ)
    out["CIRCLE_NODE_FAST_KDF"] = "1"
    return out


def wait_rss(proc: subprocess.Popen[str]) -> int:
    """Reap the child; its peak resident set size in bytes."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss * 1024


def run_once(argv: list[str], log: IO[str]) -> tuple[dict[str, Any], float, int]:
    """Run a driver command to completion: its JSON result, wall seconds, peak RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True, env=env())
    assert proc.stdout is not None
    out = proc.stdout.read()
    rss = wait_rss(proc)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}); see {log.name}")
    return json.loads(out.strip().splitlines()[-1]), wall, rss


class Server:
    def __init__(self, system: System, store: Path, log: IO[str]) -> None:
        self.proc = subprocess.Popen(
            system.cmd("serve", str(store)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env(),
        )
        line = self.readline()
        if not line.startswith("READY "):
            raise SystemExit(f"{system.name} server did not start: {line!r}; see {log.name}")
        self.port = int(line.split()[1])

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def edit(self, edits: list[tuple[int, str]], path: Path) -> None:
        path.write_text(json.dumps(edits))
        self.send(f"edit {path}")
        if (reply := self.readline()) != "OK":
            raise SystemExit(f"edit failed: {reply!r}")

    def stop(self) -> int:
        self.send("stop")
        return wait_rss(self.proc)


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@dataclass
class Bench:
    workload: Workload
    workload_path: Path
    tmp: Path
    reps: int
    proxy: ProxyThread
    log: IO[str]

    def sync(
        self, system: System, server: Server, server_dir: Path, client: Path
    ) -> dict[str, Any]:
        proxy_port = self.proxy.point_at(server.port)
        extra = [str(server_dir)] if system.needs_server_dir else []
        self.proxy.reset()
        result, wall, rss = run_once(
            system.cmd("sync", str(client), str(proxy_port), *extra, client=True), self.log
        )
        return {**result, "process_seconds": wall, "client_rss": rss, **self.proxy.counts()}

    def run(
        self, system: System, seeded: dict[str, Path], out: dict[str, list[dict[str, Any]]]
    ) -> None:
        """Fill ``out`` scenario by scenario (what finished stays if a later one fails)."""
        base = self.tmp / system.name.replace(" ", "_")
        base.mkdir()
        if system.seed_from is None:
            seeded[system.name] = base / "seed"
            result, wall, rss = run_once(
                system.cmd("seed", str(self.workload_path), str(base / "seed")), self.log
            )
            out["seed"] = [{**result, "process_seconds": wall, "rss": rss}]
        seed_dir = seeded[system.seed_from or system.name]
        server_dir = base / "server"
        shutil.copytree(seed_dir, server_dir)
        print(f"  {system.name}: cold clone", file=sys.stderr, flush=True)
        out["cold_clone"] = []
        for rep in range(self.reps):
            client = base / f"cold{rep}"
            client.mkdir()
            server = Server(system, server_dir, self.log)
            figures = self.sync(system, server, server_dir, client)
            figures["server_rss"] = server.stop()
            figures["client_disk"] = disk_bytes(client)
            out["cold_clone"].append(figures)
        client = base / "cold0"
        print(f"  {system.name}: churn, no change", file=sys.stderr, flush=True)
        out["churn_10pct"], out["no_change"] = [], []
        for rep in range(self.reps):
            server = Server(system, server_dir, self.log)
            server.edit(churn(self.workload, rep), base / f"churn{rep}.json")
            figures = self.sync(system, server, server_dir, client)
            figures["server_rss"] = server.stop()
            out["churn_10pct"].append(figures)
        for _ in range(self.reps):
            server = Server(system, server_dir, self.log)
            figures = self.sync(system, server, server_dir, client)
            figures["server_rss"] = server.stop()
            out["no_change"].append(figures)
        print(f"  {system.name}: live, reload", file=sys.stderr, flush=True)
        try:
            out["live_edit"] = self.live(system, server_dir, client, base)
        except SystemExit as exc:  # reload still runs
            out["live_edit_error"] = [{"error": str(exc)}]
        out["reload"] = []
        for _ in range(self.reps):
            extra = [str(server_dir)] if system.needs_server_dir else []
            result, wall, rss = run_once(system.cmd("load", str(client), *extra), self.log)
            out["reload"].append(
                {**result, "process_seconds": wall, "rss": rss, "disk": disk_bytes(client)}
            )

    def live(
        self, system: System, server_dir: Path, client: Path, base: Path
    ) -> list[dict[str, Any]]:
        server = Server(system, server_dir, self.log)
        proxy_port = self.proxy.point_at(server.port)
        extra = [str(server_dir)] if system.needs_server_dir else []
        proc = subprocess.Popen(
            system.cmd("live", str(client), str(proxy_port), *extra, client=True),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env(),
        )
        try:
            return self._live_edits(system, server, proc, base)
        finally:
            for p in (proc, server.proc):
                if p.returncode is None:
                    p.kill()
                    p.wait()

    def _live_edits(
        self, system: System, server: Server, proc: subprocess.Popen[str], base: Path
    ) -> list[dict[str, Any]]:
        assert proc.stdin is not None
        assert proc.stdout is not None
        if (line := proc.stdout.readline().strip()) != "SYNCED":
            raise SystemExit(f"{system.name} live client: {line!r}; see {self.log.name}")
        time.sleep(0.5)  # let the initial round's last frames settle before counting
        figures = []
        for number in range(LIVE_EDITS):
            index, text = live_edit(self.workload, number)
            self.proxy.reset()
            proc.stdin.write(f"expect {index} {text}\n")
            proc.stdin.flush()
            path = base / f"live{number}.json"
            path.write_text(json.dumps([[index, text]]))
            start = time.perf_counter()
            server.send(f"edit {path}")
            seen = proc.stdout.readline().strip()
            latency = time.perf_counter() - start
            if seen != "SEEN" or server.readline() != "OK":
                raise SystemExit(f"{system.name} live edit {number} failed: {seen!r}")
            figures.append({"seconds": latency, **self.proxy.counts()})
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        client_rss = wait_rss(proc)
        server_rss = server.stop()
        for f in figures:
            f["client_rss"], f["server_rss"] = client_rss, server_rss
        return figures


def summarize(reps: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per figure: median, min and max over the repetitions."""
    out = {}
    for key in reps[0]:
        values = [r[key] for r in reps if isinstance(r.get(key), int | float)]
        if values:
            out[key] = {
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
            }
    return out


def versions() -> dict[str, str]:
    def cmd(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "unavailable"

    lock = WORK / "js" / "node_modules" / "@automerge"
    out = {
        "python": platform.python_version(),
        "node": cmd(["node", "--version"]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "cpu": _cpu(),
        "load_average_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    for pkg in ("automerge-repo", "automerge", "automerge-repo-network-websocket"):
        meta = lock / pkg / "package.json"
        if meta.exists():
            out[f"@automerge/{pkg}"] = json.loads(meta.read_text())["version"]
    py = WORK / "pyenv" / "bin" / "python"
    out["pycrdt-websocket"] = cmd(
        [str(py), "-c", "import importlib.metadata as m; print(m.version('pycrdt-websocket'))"]
    )
    out["pycrdt"] = cmd([sys.executable, "-c", "import pycrdt; print(pycrdt.__version__)"])
    return out


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def table(results: dict[str, Any]) -> str:
    """The Markdown table of medians (with min-max) that docs/benchmarks.md shows."""
    rows: list[tuple[str, str, Callable[[dict[str, Any]], str]]] = []

    def fig(scenario: str, key: str, scale: float = 1.0, fmt: str = "{:.2f}") -> Callable[..., str]:
        def get(sysres: dict[str, Any]) -> str:
            s = sysres["summary"].get(scenario, {}).get(key)
            if s is None:
                return "-"
            med, lo, hi = (s[k] / scale for k in ("median", "min", "max"))
            return f"{fmt.format(med)} ({fmt.format(lo)}-{fmt.format(hi)})"

        return get

    mb, kb = 1024 * 1024, 1024
    rows += [
        ("cold clone", "time s", fig("cold_clone", "seconds")),
        ("cold clone", "KiB up / client->server", fig("cold_clone", "bytes_up", kb, "{:.0f}")),
        ("cold clone", "KiB down / server->client", fig("cold_clone", "bytes_down", kb, "{:.0f}")),
        (
            "cold clone",
            "round trips (all connections)",
            fig("cold_clone", "round_trips", 1, "{:.0f}"),
        ),
        ("cold clone", "connections", fig("cold_clone", "connections", 1, "{:.0f}")),
        ("cold clone", "peak RSS client MiB", fig("cold_clone", "client_rss", mb, "{:.0f}")),
        ("cold clone", "peak RSS server MiB", fig("cold_clone", "server_rss", mb, "{:.0f}")),
        ("cold clone", "client disk MiB", fig("cold_clone", "client_disk", mb, "{:.1f}")),
        ("10% churn", "time s", fig("churn_10pct", "seconds")),
        ("10% churn", "KiB up", fig("churn_10pct", "bytes_up", kb, "{:.0f}")),
        ("10% churn", "KiB down", fig("churn_10pct", "bytes_down", kb, "{:.0f}")),
        ("10% churn", "round trips", fig("churn_10pct", "round_trips", 1, "{:.0f}")),
        ("no change", "time s", fig("no_change", "seconds")),
        ("no change", "KiB up", fig("no_change", "bytes_up", kb, "{:.1f}")),
        ("no change", "KiB down", fig("no_change", "bytes_down", kb, "{:.1f}")),
        ("no change", "round trips", fig("no_change", "round_trips", 1, "{:.0f}")),
        (
            "no change",
            "max round trips on one connection",
            fig("no_change", "max_round_trips", 1, "{:.0f}"),
        ),
        ("live edit", "latency ms", fig("live_edit", "seconds", 0.001, "{:.0f}")),
        ("live edit", "bytes both ways", fig("live_edit", "bytes_total", 1, "{:.0f}")),
        ("live edit", "peak RSS client MiB", fig("live_edit", "client_rss", mb, "{:.0f}")),
        ("reload", "time s", fig("reload", "seconds")),
        ("reload", "peak RSS MiB", fig("reload", "rss", mb, "{:.0f}")),
    ]
    names = list(results["systems"])
    lines = [
        "| scenario | figure | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for scenario, label, get in rows:
        cells = [get(results["systems"][n]) for n in names]
        lines.append(f"| {scenario} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratios(results: dict[str, Any]) -> dict[str, float | None]:
    def med(system: str, scenario: str, key: str) -> float | None:
        try:
            return float(results["systems"][system]["summary"][scenario][key]["median"])
        except KeyError:
            return None

    def div(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else round(a / b, 3)

    cn = "circle-node"
    return {
        "cold_clone_automerge_over_circle_node_time": div(
            med("automerge-repo", "cold_clone", "seconds"), med(cn, "cold_clone", "seconds")
        ),
        "cold_clone_pycrdt_over_circle_node_time": div(
            med("pycrdt-websocket", "cold_clone", "seconds"), med(cn, "cold_clone", "seconds")
        ),
        "churn_circle_node_over_automerge_bytes": div(
            med(cn, "churn_10pct", "bytes_total"),
            med("automerge-repo", "churn_10pct", "bytes_total"),
        ),
        "no_change_circle_node_protocol_round_trips": med(cn, "no_change", "protocol_round_trips"),
        "no_change_circle_node_proxy_round_trips": med(cn, "no_change", "round_trips"),
        "cold_clone_client_rss_circle_node_over_automerge": div(
            med(cn, "cold_clone", "client_rss"), med("automerge-repo", "cold_clone", "client_rss")
        ),
        "cold_clone_client_rss_circle_node_over_pycrdt": div(
            med(cn, "cold_clone", "client_rss"), med("pycrdt-websocket", "cold_clone", "client_rss")
        ),
        "cold_clone_verify_cost": div(
            med(cn, "cold_clone", "seconds"),
            med("circle-node (no verify)", "cold_clone", "seconds"),
        ),
    }


TARGETS = [  # (ratio key, target text, met?)
    (
        "cold_clone_automerge_over_circle_node_time",
        "automerge-repo time / circle-node >= 3",
        lambda v: v >= 3,
    ),
    (
        "cold_clone_pycrdt_over_circle_node_time",
        "pycrdt-websocket time / circle-node >= 1",
        lambda v: v >= 1,
    ),
    (
        "churn_circle_node_over_automerge_bytes",
        "circle-node bytes / automerge-repo <= 0.5",
        lambda v: v <= 0.5,
    ),
    (
        "no_change_circle_node_protocol_round_trips",
        "circle-node protocol round trips = 1",
        lambda v: v == 1,
    ),
    (
        "cold_clone_client_rss_circle_node_over_automerge",
        "client RSS / automerge-repo < 1",
        lambda v: v < 1,
    ),
    (
        "cold_clone_client_rss_circle_node_over_pycrdt",
        "client RSS / pycrdt-websocket < 1",
        lambda v: v < 1,
    ),
]


def ratios_table(results: dict[str, Any]) -> str:
    """Targets of issue 7 against the run's ratios (signatures on)."""
    lines = ["| target | measured | met |", "|---|---|---|"]
    got = results["ratios"]
    for key, text, met in TARGETS:
        value = got.get(key)
        verdict = "-" if value is None else ("yes" if met(value) else "**no**")
        lines.append(f"| {text} | {value if value is not None else '-'} | {verdict} |")
    value = got.get("cold_clone_verify_cost")
    lines.append(f"| (cold clone time, verification on / off) | {value} | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--proposals", type=int, default=10_000)
    parser.add_argument("--small", action="store_true", help="1,000 proposals")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--systems", nargs="*", help="a subset (names as in the table)")
    parser.add_argument("--no-setup", action="store_true", help="skip setup.sh")
    parser.add_argument("--out", type=Path, help="results JSON (default results/<preset>.json)")
    args = parser.parse_args()
    proposals = 1_000 if args.small else args.proposals
    chosen = systems(args.seed)
    if args.systems:
        chosen = {n: s for n, s in chosen.items() if n in args.systems}
    if not args.no_setup and any(not n.startswith("circle-node") for n in chosen):
        subprocess.run(["bash", str(HERE / "setup.sh")], check=True)
    preset = "small" if args.small else f"{proposals}"
    out_path = args.out or HERE / "results" / f"{preset}.json"
    results: dict[str, Any] = {
        "proposals": proposals,
        "circles": 20,
        "reps": args.reps,
        "seed": args.seed,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": versions(),
        "systems": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as name:
        tmp = Path(name)
        workload = generate(proposals, args.seed)
        workload_path = tmp / "workload.json"
        workload_path.write_text(workload.to_json())
        with open(tmp / "drivers.log", "w") as log:
            bench = Bench(workload, workload_path, tmp, args.reps, ProxyThread(), log)
            seeded: dict[str, Path] = {}
            for name_, system in chosen.items():
                if system.seed_from and system.seed_from not in seeded:
                    raise SystemExit(f"{name_} needs {system.seed_from} in the same run")
                print(f"{name_} ({proposals} proposals)", file=sys.stderr, flush=True)
                raw: dict[str, list[dict[str, Any]]] = {}
                error = None
                try:
                    bench.run(system, seeded, raw)
                except SystemExit as exc:  # keep what finished, and the other systems
                    log.flush()
                    sys.stderr.write(Path(log.name).read_text()[-4000:])
                    error = str(exc)
                errors = [e["error"] for e in raw.pop("live_edit_error", [])]
                for figures in raw.values():
                    for f in figures:
                        if "bytes_up" in f:
                            f["bytes_total"] = f["bytes_up"] + f["bytes_down"]
                results["systems"][name_] = {
                    "raw": raw,
                    "summary": {k: summarize(v) for k, v in raw.items() if v},
                    "errors": [e for e in (error, *errors) if e],
                }
                out_path.parent.mkdir(parents=True, exist_ok=True)
                out_path.write_text(json.dumps(results, indent=1))  # partial, in case
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results["ratios"] = ratios(results)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=1))
    print(table(results))
    print(ratios_table(results))
    print(
        f"raw figures: {out_path.relative_to(ROOT) if out_path.is_relative_to(ROOT) else out_path}"
    )


if __name__ == "__main__":
    main()
