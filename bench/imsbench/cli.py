"""Options and the order of a run: build, enter the network namespace, measure (loopback
sections, the token store, this release against the one before, the WAN section, then
activations at once), judge,
write BENCHMARKS.md, the charts and bench/results.json.

    python3 bench/run.py            full run (`make bench`)
    python3 bench/run.py --quick    smoke run (`make bench-quick`): writes under bench/.build/quick/
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from . import netns
from .crowd import crowd_section, derive as crowd_derive
from .build import build_helpers, build_project, check_lean_variants, ensure_node_modules, peer_versions
from .emulator import Emulator
from .errors import BenchError
from .loopback import cold_section, smoke, token_section, warm_section
from .machine import BusyWatch, log, machine_info, node_path
from .paths import (BENCH, BUILD, DEFAULT_EMULATOR, DEFAULT_IMS_ACTION, DEFAULT_STORE_BENCH, DEFAULT_ZIP,
                    FALLBACK_IMS_ACTION, ROOT)
from .release import BEFORE_COMMIT, BEFORE_ENV, export_resolved, release_section, resolve_before
from .render_md import headline, render
from .render_svg import render_cold_svg, render_wan_svg
from .sizes import sizes_section
from .store import store_section
from .targets import targets
from .wan import derive, wan_section

SECTIONS = ("cold", "warm", "tokens", "sizes", "store", "release", "wan", "crowd")

# option: (full run, --quick)
DEFAULTS = {"rounds": (20, 3), "warmup": (2, 1), "ours_per_round": (5, 3), "warm_blocks": (10, 3),
            "warm_block": (100, 50), "warm_warmup": (100, 20), "token_activations": (1000, 1000),
            "peer_token_activations": (1000, 200),
            "wan_cold_rounds": (20, 3), "wan_cold_warmup": (1, 1), "wan_cold_reps": (3, 1),
            "wan_warm_blocks": (40, 3), "wan_warm_block": (5, 5), "wan_warm_warmup": (5, 3),
            "store_runs": (3, 1), "store_containers": (20, 5), "store_activations": (50, 10),
            "store_samples": (30, 5), "ims_latency_ms": (300, 300), "state_latency_ms": (20, 20),
            "release_pairs": (100, 10), "release_wan_pairs": (30, 3), "release_warmup": (2, 1),
            "crowd_runs": (3, 1), "crowd_n": ("1,10,50,200", "1,10,50")}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="bench/run.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fast smoke run; writes under bench/.build/quick/")
    ap.add_argument("--sections", default=",".join(SECTIONS),
                    help=f"comma list of sections to run (default {','.join(SECTIONS)})")
    g = ap.add_argument_group("over a network (section wan)")
    g.add_argument("--rtts", default="0,10,50", help="round-trip times in ms (default 0,10,50)")
    g.add_argument("--wan-cold-rounds", type=int, help="measured cold rounds (default 20; quick 3)")
    g.add_argument("--wan-cold-warmup", type=int, help="cold warm-up rounds (default 1)")
    g.add_argument("--wan-cold-reps", type=int,
                   help="runs per round of ims-action and the limits (default 3; quick 1)")
    g.add_argument("--wan-warm-blocks", type=int, help="warm blocks per subject and RTT (default 40; quick 3)")
    g.add_argument("--wan-warm-block", type=int, help="activations per warm block (default 5)")
    g.add_argument("--wan-warm-warmup", type=int, help="warm-up activations per subject and RTT (default 5; quick 3)")
    g = ap.add_argument_group("activations at once in one container (section crowd)")
    g.add_argument("--crowd-n", help="activations started together per burst (default 1,10,50,200; quick 1,10,50)")
    g.add_argument("--crowd-runs", type=int,
                   help="fresh containers per subject and N, two bursts each (default 3; quick 1)")
    g.add_argument("--crowd-rtt", type=float, default=50.0, help="the round-trip time in ms (default 50)")
    g = ap.add_argument_group("on loopback (sections cold, warm, tokens)")
    g.add_argument("--rounds", type=int, help="measured cold-start rounds (default 20; quick 3)")
    g.add_argument("--warmup", type=int, help="cold-start warm-up rounds (default 2; quick 1)")
    g.add_argument("--ours-per-round", type=int, help="ims-action runs per round (default 5; quick 3)")
    g.add_argument("--warm-blocks", type=int, help="alternating warm blocks per client (default 10; quick 3)")
    g.add_argument("--warm-block", type=int, help="activations per warm block (default 100; quick 50)")
    g.add_argument("--warm-warmup", type=int, help="warm-up activations per client (default 100; quick 20)")
    g.add_argument("--warm-cpu", default="last",
                   help="CPU to pin the warm section's processes to first ('last', a number, or 'none'); "
                        "an unpinned pass always follows")
    g.add_argument("--token-activations", type=int,
                   help="ims-action activations for the token count (default 1000, also in quick mode)")
    g.add_argument("--peer-token-activations", type=int,
                   help="Node main() calls for the token count, scaled to 1,000 (default 1000; quick 200)")
    g = ap.add_argument_group("the shared token store (section store; examples/store-bench.rs)")
    g.add_argument("--store-runs", type=int, help="runs of store-bench (default 3; quick 1)")
    g.add_argument("--store-containers", type=int,
                   help="cold containers started together, one-shot and actionloop (default 20; quick 5)")
    g.add_argument("--store-activations", type=int,
                   help="activations per actionloop container (default 50, i.e. 1,000 over 20; quick 10)")
    g.add_argument("--store-samples", type=int, help="one-shot warm hits per store (default 30; quick 5)")
    g.add_argument("--ims-latency-ms", type=int, help="IMS answer delay during the burst (default 300)")
    g.add_argument("--state-latency-ms", type=int,
                   help="latency added to every State request in the extra adobe-state row (default 20)")
    g.add_argument("--store-bench", help=f"store-bench executable (default {DEFAULT_STORE_BENCH.relative_to(ROOT)})")
    g = ap.add_argument_group("this release against the one before (section release)")
    g.add_argument("--before-bin", help=f"the 'before' ims-action (default: ${BEFORE_ENV}, else built from git "
                                        f"--before-commit into bench/.build/)")
    g.add_argument("--before-commit", default=BEFORE_COMMIT, help=f"the release before (default {BEFORE_COMMIT})")
    g.add_argument("--release-pairs", type=int, help="before/after pairs on loopback (default 100; quick 10)")
    g.add_argument("--release-wan-pairs", type=int, help="before/after pairs at 50 ms RTT (default 30; quick 3)")
    g.add_argument("--release-warmup", type=int, help="warm-up pairs of each (default 2; quick 1)")
    g = ap.add_argument_group("inputs and outputs")
    g.add_argument("--no-build", action="store_true", help="use the binaries as they are (no cargo/make)")
    g.add_argument("--emulator", help=f"adobe-emulator executable (default {DEFAULT_EMULATOR.relative_to(ROOT)})")
    g.add_argument("--ims-action", help=f"ims-action executable (default {DEFAULT_IMS_ACTION.relative_to(ROOT)})")
    g.add_argument("--emulator-log", default="warn", help="RUST_LOG for the emulator (default warn)")
    g.add_argument("--zip", help=f"package zip (default {DEFAULT_ZIP.relative_to(ROOT)})")
    g.add_argument("--out", help="markdown report (default BENCHMARKS.md; quick: bench/.build/quick/BENCHMARKS.md)")
    g.add_argument("--svg", help="loopback chart (default docs/bench.svg; quick: under bench/.build/quick/)")
    g.add_argument("--wan-svg", help="latency vs RTT chart (default docs/bench-wan.svg; quick: under bench/.build/quick/)")
    g.add_argument("--json", help="raw results (default bench/results.json; quick: bench/.build/quick/results.json)")
    g.add_argument("--render-only", action="store_true",
                   help="measure nothing: rewrite the report and charts from the --json results file")
    a = ap.parse_args(argv)
    for k, (full, quick) in DEFAULTS.items():
        if getattr(a, k) is None:
            setattr(a, k, quick if a.quick else full)
    qdir = BUILD / "quick"
    a.out = Path(a.out) if a.out else (qdir / "BENCHMARKS.md" if a.quick else ROOT / "BENCHMARKS.md")
    a.svg = Path(a.svg) if a.svg else (qdir / "bench.svg" if a.quick else ROOT / "docs" / "bench.svg")
    a.wan_svg = Path(a.wan_svg) if a.wan_svg else (qdir / "bench-wan.svg" if a.quick else ROOT / "docs" / "bench-wan.svg")
    a.json = Path(a.json) if a.json else (qdir / "results.json" if a.quick else BENCH / "results.json")
    cpus = sorted(os.sched_getaffinity(0))
    a.warm_cpu = None if a.warm_cpu == "none" else (cpus[-1] if a.warm_cpu == "last" else int(a.warm_cpu))
    a.sections = {s.strip() for s in a.sections.split(",") if s.strip()}
    unknown = a.sections - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    try:
        a.rtts = [float(x) for x in a.rtts.split(",") if x.strip()]
    except ValueError:
        ap.error("--rtts takes numbers, e.g. 0,10,50")
    try:
        a.crowd_ns = [int(x) for x in a.crowd_n.split(",") if x.strip()]
    except ValueError:
        ap.error("--crowd-n takes whole numbers, e.g. 1,10,50,200")
    if not a.crowd_ns or any(n < 1 or n > 1000 for n in a.crowd_ns) or len(set(a.crowd_ns)) != len(a.crowd_ns):
        ap.error("--crowd-n takes distinct numbers between 1 and 1000")
    if a.crowd_runs < 1 or not 0 <= a.crowd_rtt <= 2000:
        ap.error("--crowd-runs takes at least 1; --crowd-rtt a value between 0 and 2000 ms")
    if not a.rtts or len(a.rtts) > 8 or any(r < 0 or r > 2000 for r in a.rtts) or len(set(a.rtts)) != len(a.rtts):
        ap.error("--rtts takes 1 to 8 distinct values between 0 and 2000 ms")
    return a


_NUMBER_LIST = re.compile(r"\[\n(?:[ ]*-?[0-9][0-9.e+-]*,?\n)+[ ]*\]")


def dump_json(res: dict) -> str:
    """results.json: indented, but each list of numbers (the samples) on one line."""
    text = json.dumps(res, indent=1, default=str)
    return _NUMBER_LIST.sub(lambda m: "[" + ", ".join(x.strip().rstrip(",") for x in m.group(0)[1:-1].split("\n")
                                                     if x.strip()) + "]", text) + "\n"


def write_outputs(a, res: dict) -> None:
    for p in (a.out, a.svg, a.wan_svg, a.json):
        p.parent.mkdir(parents=True, exist_ok=True)
    if res.get("cold"):
        a.svg.write_text(render_cold_svg(res))
    wan_rel = None
    if res.get("wan"):
        a.wan_svg.write_text(render_wan_svg(res))
        wan_rel = os.path.relpath(a.wan_svg, a.out.parent)
    a.out.write_text(render(res, os.path.relpath(a.svg, a.out.parent), wan_rel))
    log(f"wrote {a.out}" + (f", {a.svg}" if res.get("cold") else "") + (f", {a.wan_svg}" if wan_rel else ""))


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    a = parse_args(argv)
    if a.render_only:
        res = json.loads(a.json.read_text())
        if res.get("wan"):  # the ratios as this code derives them, from the stored summaries
            res["wan"]["derived"] = derive(res["wan"])
        if res.get("crowd") and "summary" in res["crowd"]:
            res["crowd"]["derived"] = crowd_derive(res["crowd"])
        res["targets"] = targets(res)
        write_outputs(a, res)
        return 0
    if not a.no_build and not netns.inside():
        build_project(a)
    if "release" in a.sections:
        a.before = resolve_before(a, build=not a.no_build and not netns.inside())
        export_resolved(a.before)
    default_exe = DEFAULT_IMS_ACTION if DEFAULT_IMS_ACTION.exists() or not FALLBACK_IMS_ACTION.exists() \
        else FALLBACK_IMS_ACTION
    a.ims_action_path = str(Path(a.ims_action or default_exe).resolve())
    a.zip_path = str(Path(a.zip or DEFAULT_ZIP).resolve())
    a.emulator_path = str(Path(a.emulator or DEFAULT_EMULATOR).resolve())
    a.store_bench_path = str(Path(a.store_bench or DEFAULT_STORE_BENCH).resolve())
    a.node = node_path()
    needed = [("ims-action", a.ims_action_path, "--ims-action"), ("adobe-emulator", a.emulator_path, "--emulator")]
    if "store" in a.sections:
        needed.append(("store-bench (cargo build --release --example store-bench)", a.store_bench_path,
                       "--store-bench"))
    for what, p, flag in needed:
        if not os.access(p, os.X_OK):
            raise BenchError(f"{what} not found at {p} (build it, or pass {flag} PATH)")
    if not a.node:
        raise BenchError("node is not on PATH")
    helpers = build_helpers()
    check_lean_variants()
    if not netns.inside():
        ensure_node_modules()
        if a.sections & {"wan", "crowd"}:
            log("entering a network namespace of its own for the sections over a delayed link")
            netns.reexec_inside([str(BENCH / "run.py"), *argv, "--no-build"])
        elif "release" in a.sections:  # its 50 ms part needs the delay line; the rest does not
            try:
                log("entering a network namespace of its own for the release section's 50 ms RTT part")
                netns.reexec_inside([str(BENCH / "run.py"), *argv, "--no-build"])
            except (BenchError, OSError) as e:
                log(f"release: no network namespace ({e}); measuring on loopback only")
    if netns.inside():
        netns.loopback_up()

    first = BusyWatch.sample("start")
    if first["busy"]:
        log("WARNING: the machine is busy compiling: " + "; ".join(first["busy"][:3]))
    res = {"quick": a.quick, "machine": machine_info(), "peer_versions": peer_versions(),
           "config": {k: getattr(a, k) for k in DEFAULTS} | {"rtts": a.rtts}}
    with tempfile.TemporaryDirectory(prefix="ims-bench-") as td:
        workdir = Path(td)
        try:
            if a.sections & {"cold", "warm", "tokens"}:
                loopback_sections(a, res, helpers, workdir)
            if "store" in a.sections:
                try:
                    res["store"] = store_section(a, workdir)
                except BenchError as e:
                    log(f"store: failed: {e}")
                    res["store"] = {"error": str(e)}
            if "release" in a.sections:
                BusyWatch.sample("release start")
                res["release"] = release_section(a, helpers, workdir, a.before, with_wan=netns.inside())
            if "wan" in a.sections:
                BusyWatch.sample("wan start")
                res["wan"] = wan_section(a, helpers, workdir)
            if "crowd" in a.sections:
                BusyWatch.sample("crowd start")
                try:
                    res["crowd"] = crowd_section(a, helpers, workdir)
                except (BenchError, OSError, TimeoutError) as e:
                    log(f"crowd: failed: {e}")
                    res["crowd"] = {"error": str(e)}
        finally:
            keep = BUILD / ("quick-logs" if a.quick else "last-run-logs")
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(workdir, keep, ignore=shutil.ignore_patterns("*.env", "tmp-*", "kept-tokens-*"))
    if "sizes" in a.sections:
        res["sizes"] = sizes_section(a)
    BusyWatch.sample("end")
    res["busy"] = BusyWatch.report()
    res["targets"] = targets(res)

    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(dump_json(res))
    write_outputs(a, res)
    for t in res["targets"]:
        log(f"{t['status']:4}  {t['target']}: {t['text'].replace('**', '')}")
    h = headline(res)
    if h:
        log("headline: " + h)
    if res["busy"]["busy_samples"]:
        log("NOTE: compilers were running during the run; figures are provisional")
    return 0


def loopback_sections(a, res: dict, helpers, workdir: Path) -> None:
    emu = Emulator(a.emulator_path, workdir, a.emulator_log)
    log(f"emulator at {emu.base}")
    try:
        status = smoke(a, emu, helpers, workdir)
        BusyWatch.sample("smoke")
        res["smoke"] = {f"{fk}/{s}": {"ok": r["ok"], "stdout_tail": r["stdout_tail"][-200:],
                                      "stderr_tail": r["stderr_tail"][-300:]} for (fk, s), r in status.items()}
        if "cold" in a.sections:
            res["cold"] = cold_section(a, emu, helpers, status, workdir)
        if "warm" in a.sections and status[("s2s", "ours")]["ok"]:
            try:
                BusyWatch.sample("warm start")
                res["warm"] = warm_section(a, emu, helpers, workdir)
                BusyWatch.sample("warm end")
            except (BenchError, TimeoutError, OSError) as e:
                log(f"warm: failed: {e}")
        if "tokens" in a.sections:
            res["tokens"] = token_section(a, emu, helpers, workdir, status)
            BusyWatch.sample("tokens")
    finally:
        emu.stop()


def entry() -> int:
    try:
        return main()
    except BenchError as e:
        log(f"error: {e}")
        return 1
