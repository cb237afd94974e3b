"""Machine facts for the report header, and the busy check: compilers running and the load
average, sampled between measurements (never during one)."""
from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .paths import ROOT


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(cmd: list[str], cwd: Path | None = None) -> str:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def mem_total_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def node_path() -> str | None:
    return shutil.which("node")


def busy_processes() -> list[str]:
    """Compilers running right now: the machine may be shared with builds."""
    out = sh(["pgrep", "-af", r"^([^ ]*/)?(rustc|cargo|cc1|cc1plus|collect2|ld|ld\.lld|rust-lld|clippy-driver)( |$)"])
    own = {str(os.getpid())}
    lines = []
    for line in out.splitlines():
        pid, _, cmd = line.partition(" ")
        if pid not in own and "pgrep" not in cmd:
            lines.append(cmd[:120])
    return lines


class BusyWatch:
    """Load average and competing compilers, sampled between measurements (a sampling thread
    would take the GIL, and a pgrep fork the CPU, in the middle of a timed loop)."""

    samples: list[dict] = []

    @classmethod
    def sample(cls, label: str = "") -> dict:
        s = {"t": time.time(), "load": loadavg(), "busy": busy_processes(), "label": label}
        cls.samples.append(s)
        return s

    @classmethod
    def report(cls) -> dict:
        busy = [s for s in cls.samples if s["busy"]]
        loads = [float(s["load"].split()[0]) for s in cls.samples if s["load"] != "?"]
        return {
            "samples": len(cls.samples),
            "busy_samples": len(busy),
            "busy_labels": [s["label"] for s in busy],
            "busy_examples": sorted({c for s in busy for c in s["busy"]})[:5],
            "load1_max": max(loads) if loads else None,
            "load_start": cls.samples[0]["load"] if cls.samples else "?",
            "load_end": cls.samples[-1]["load"] if cls.samples else "?",
        }


def machine_info() -> dict:
    node = node_path()
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "mem_gib": round(mem_total_gib(), 1),
        "kernel": os.uname().release,
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": (sh(["git", "rev-parse", "--short", "HEAD"], ROOT) or "unknown")
        + ("-dirty" if sh(["git", "status", "--porcelain", "--untracked-files=no"], ROOT) else ""),
        "node": sh([node, "--version"]) if node else "missing",
        "python": sys.version.split()[0],
        "rustc": sh(["rustc", "--version"]),
    }
