"""The shared token store (section `store`): what each store (memory, Redis, Adobe I/O State, and
State with a latency added to every request) changes for a burst of cold containers, what it
costs on a warm hit, and what a failing store costs.

The measurement is the Rust example examples/store-bench.rs (`cargo build --release --example
store-bench`): it holds an adobe-emulator in-process, which is how it gets an Adobe I/O State
namespace and injected IMS and State latencies, starts a `redis-server` of its own, runs the
bench's ims-action binary, and prints one JSON document. This module runs it `store_runs` times,
keeps every run, and reduces them (`summarize`, pure: bench/tests)."""
from __future__ import annotations

import json
import statistics
import subprocess
import time
from pathlib import Path

from .errors import BenchError
from .machine import BusyWatch, log

STORE_ORDER = ("memory", "redis", "adobe-state")  # then adobe-state+<N>ms
FAILING_ORDER = ("none", "redis refused", "redis hung", "adobe-state 503", "adobe-state hung")
FAILING_BOUND_MS = 200.0  # issue 12: a failing store costs at most this, in all


def argv(cfg, exe: str) -> list[str]:
    return [exe, "--bin", cfg.ims_action_path, "--containers", str(cfg.store_containers),
            "--activations", str(cfg.store_activations), "--samples", str(cfg.store_samples),
            "--ims-latency-ms", str(cfg.ims_latency_ms), "--state-latency-ms", str(cfg.state_latency_ms)]


def run_example(cfg, exe: str, log_path: Path) -> dict:
    with open(log_path, "ab") as err:
        try:
            r = subprocess.run(argv(cfg, exe), stdout=subprocess.PIPE, stderr=err, timeout=900)
        except subprocess.TimeoutExpired as e:
            raise BenchError(f"store-bench took over {e.timeout:.0f} s (log: {log_path})") from e
    if r.returncode != 0:
        raise BenchError(f"store-bench exited {r.returncode} (log: {log_path})")
    try:
        return json.loads(r.stdout)
    except ValueError as e:
        raise BenchError(f"store-bench printed no JSON document (log: {log_path})") from e


def store_section(cfg, workdir: Path) -> dict:
    exe = cfg.store_bench_path
    runs, t0 = [], time.monotonic()
    for i in range(cfg.store_runs):
        log(f"store: run {i + 1}/{cfg.store_runs} of {Path(exe).name}")
        runs.append(run_example(cfg, exe, workdir / "store-bench.log"))
        BusyWatch.sample(f"store run {i + 1}")
    out = {"config": {"runs": cfg.store_runs, "containers": cfg.store_containers,
                      "activations": cfg.store_activations, "samples": cfg.store_samples,
                      "ims_latency_ms": cfg.ims_latency_ms, "state_latency_ms": cfg.state_latency_ms,
                      "seconds": round(time.monotonic() - t0)},
           "runs": runs}
    out["summary"] = summarize(runs)
    for name, s in out["summary"]["stores"].items():
        log(f"store {name}: token requests one-shot {s['one_shot']['token_requests']}, actionloop "
            f"{s['actionloop']['token_requests']}; warm hit {s['warm_hit']['median_ms']} ms")
    return out


def store_names(runs: list[dict]) -> list[str]:
    """Every store measured, in a fixed order: memory, redis, adobe-state, then the rest."""
    seen = []
    for r in runs:
        for name in r.get("cold_burst", {}):
            if name not in seen:
                seen.append(name)
    return sorted(seen, key=lambda n: (STORE_ORDER.index(n) if n in STORE_ORDER else len(STORE_ORDER), n))


def _med(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _field(runs: list[dict], *path: str) -> list:
    """The value at `path` in every run (None where it is missing)."""
    out = []
    for r in runs:
        v = r
        for k in path:
            v = v.get(k) if isinstance(v, dict) else None
        out.append(v)
    return out


def summarize(runs: list[dict]) -> dict:
    """Per store: the counts of every run (IMS token requests are integers to read one by one,
    not to average), the medians over runs of the timings, and the warm-hit cost: per run, the
    store's median minus memory's (a one-shot process reading its token from its own file), then
    the median over runs. Per failing case: the time it adds to a cold activation."""
    stores = {}
    for name in store_names(runs):
        one = _field(runs, "cold_burst", name, "one_shot")
        loop = _field(runs, "cold_burst", name, "actionloop")
        warm = _field(runs, "warm_hit_one_shot", name)
        mem = _field(runs, "warm_hit_one_shot", "memory")
        costs = [w["median_ms"] - m["median_ms"] for w, m in zip(warm, mem)
                 if w and m and "median_ms" in w and "median_ms" in m]
        stores[name] = {
            "one_shot": {"containers": _first(one, "containers"),
                         "token_requests": [o.get("token_requests") for o in one if o],
                         "ok": [o.get("ok") for o in one if o],
                         "store_requests": [o.get("store_requests") for o in one if o],
                         "wall_ms": _med([o.get("wall_ms") for o in one if o])},
            "actionloop": {"containers": _first(loop, "containers"), "activations": _first(loop, "activations"),
                           "token_requests": [o.get("token_requests") for o in loop if o],
                           "ok": [o.get("ok") for o in loop if o],
                           "store_requests_cold": [o.get("store_requests_cold") for o in loop if o],
                           "store_requests_per_warm_activation":
                               _med([o.get("store_requests_per_warm_activation") for o in loop if o])},
            "warm_hit": {"from": _first(warm, "from"),
                         "median_ms": _med([w.get("median_ms") for w in warm if w]),
                         "p90_ms": _med([w.get("p90_ms") for w in warm if w]),
                         "cost_ms": _med(costs) if name != "memory" else 0.0,
                         "cost_ms_runs": costs if name != "memory" else [],
                         "store_requests_per_activation":
                             _med([w.get("store_requests_per_activation") for w in warm if w]),
                         "errors": [w["error"] for w in warm if w and "error" in w]},
        }
    failing = {}
    cases = {c for r in runs for c in r.get("failing_store", {})}
    for case in sorted(cases, key=lambda c: (FAILING_ORDER.index(c) if c in FAILING_ORDER else 99, c)):
        fs = [f for f in _field(runs, "failing_store", case) if f]
        failing[case] = {"samples": sum(f.get("samples", 0) for f in fs), "ok": sum(f.get("ok", 0) for f in fs),
                         "median_ms": _med([f.get("median_ms") for f in fs]),
                         "added_median_ms": _med([f.get("added_median_ms") for f in fs]),
                         "added_median_ms_worst": max((f.get("added_median_ms", 0) for f in fs), default=None),
                         "max_ms": max((f.get("max_ms", 0) for f in fs), default=None),
                         "token_requests": sum(f.get("token_requests", 0) for f in fs)}
    worst = [f["added_median_ms_worst"] for c, f in failing.items() if c != "none" and f["added_median_ms_worst"] is not None]
    return {"stores": stores, "failing": failing,
            "failing_worst_added_ms": max(worst) if worst else None,
            "redis_missing": bool(runs) and "redis" not in stores}


def _first(items: list, key: str):
    for it in items:
        if isinstance(it, dict) and key in it:
            return it[key]
    return None
