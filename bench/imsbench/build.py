"""Everything built or installed before measuring: the Rust binaries (cargo/make), the C
helpers in bench/, the App Builder launcher's bin/exec, and the Node peers' node_modules."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from .errors import BenchError
from .flows import FLOWS
from .machine import log
from .paths import BENCH, BUILD, PEER, ROOT



def makefile_has(target: str) -> bool:
    mk = ROOT / "Makefile"
    if not mk.exists():
        return False
    return re.search(rf"^{re.escape(target)}\s*:", mk.read_text(), re.M) is not None


def run_step(cmd: list[str], cwd: Path = ROOT) -> None:
    log("$ " + " ".join(cmd))
    r = subprocess.run(cmd, cwd=cwd)
    if r.returncode != 0:
        raise BenchError(f"command failed ({r.returncode}): {' '.join(cmd)}")


def build_project(args) -> None:
    if args.emulator is None:
        run_step(["cargo", "build", "--release", "-p", "adobe-emulator"])
    if args.ims_action is None:
        if makefile_has("build"):
            run_step(["make", "build"])
        else:
            run_step(["cargo", "build", "--release", "--target", "x86_64-unknown-linux-musl",
                      "--bin", "ims-action"])
    if "store" in args.sections and args.store_bench is None:
        run_step(["cargo", "build", "--release", "--example", "store-bench"])
    if args.zip is None and makefile_has("package"):
        try:
            run_step(["make", "package"])
        except BenchError as e:  # the zip is one figure of many: report it missing, go on
            log(f"WARNING: {e}; the zip size will be reported as not built")


HELPERS = ("spawn_rss", "noop", "echo_loop", "delay_line")


def build_helpers() -> dict[str, Path]:
    """Compile the C helpers (static) into bench/.build when their source is newer."""
    BUILD.mkdir(exist_ok=True)
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise BenchError("a C compiler (cc) is needed for the helpers in bench/*.c (see bench/README.md)")
    out = {}
    for name in HELPERS:
        src, exe = BENCH / f"{name}.c", BUILD / name
        if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
            r = subprocess.run([cc, "-O2", "-static", "-o", str(exe), str(src)], capture_output=True, text=True)
            if r.returncode != 0:  # no static libc: a dynamic helper inherits a little more RSS
                log(f"static link of {name} failed, linking dynamically: {r.stderr.strip()[:200]}")
                subprocess.run([cc, "-O2", "-o", str(exe), str(src)], check=True)
        out[name] = exe
    return out


def ensure_node_modules() -> None:
    stamp = PEER / "node_modules" / ".package-lock.json"
    lock = PEER / "package-lock.json"
    if stamp.exists() and stamp.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if not npm:
        raise BenchError("npm is needed to install bench/peer-node (npm ci)")
    run_step([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PEER)


LEAN_LINE = {
    'const { Core } = require("@adobe/aio-sdk");':
        'const { Core } = require("../lean-core"); // BENCH(lean): Core.Logger without @adobe/aio-sdk',
}


def lean_drift(full: str, lean: str) -> bool:
    """Whether `lean` is anything but `full` with the aio-sdk require line swapped."""
    expected = full
    for old, new in LEAN_LINE.items():
        expected = expected.replace(old, new)
    return expected != lean or expected == full


def check_lean_variants() -> None:
    for flow in FLOWS.values():
        full = (PEER / "actions" / flow["action"] / "index.js").read_text()
        lean = (PEER / "actions" / (flow["action"] + "-lean") / "index.js").read_text()
        if lean_drift(full, lean):
            raise BenchError(f"actions/{flow['action']}-lean/index.js is no longer "
                             f"actions/{flow['action']}/index.js with only the aio-sdk require swapped")


def peer_versions() -> dict:
    try:
        lock = json.loads((PEER / "package-lock.json").read_text())
        pk = lock.get("packages", {})
        return {name: pk.get(f"node_modules/{name}", {}).get("version", "?")
                for name in ("@adobe/aio-sdk", "@adobe/jwt-auth", "node-fetch")}
    except (OSError, ValueError):
        return {}
