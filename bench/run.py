#!/usr/bin/env python3
"""Benchmark ims-action against Adobe's Node.js sample actions, all talking to adobe-emulator.

    python3 bench/run.py            full run: writes BENCHMARKS.md, docs/bench.svg, bench/results.json
    python3 bench/run.py --quick    smoke run: few rounds, writes under bench/.build/quick/ instead

Method, fairness notes and every option: bench/README.md. Python 3.11 standard library only, plus
a C compiler for the two tiny helpers in bench/ (spawn_rss.c, noop.c).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import math
import os
import re
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BUILD = BENCH / ".build"
PEER = BENCH / "peer-node"
RUN_JS = PEER / "run.js"
DEFAULT_EMULATOR = ROOT / "target" / "release" / "adobe-emulator"
DEFAULT_IMS_ACTION = ROOT / "dist" / "ims-action"  # `make build` copies the static binary here
FALLBACK_IMS_ACTION = ROOT / "target" / "x86_64-unknown-linux-musl" / "release" / "ims-action"
DEFAULT_ZIP = ROOT / "dist" / "ims-action.zip"

MIB = 1024 * 1024

# Params each flow passes; the same dict goes to ims-action and to the Node peers.
S2S_KEYS = ["OAUTHS2S_CLIENT_ID", "OAUTHS2S_CLIENT_SECRET", "OAUTHS2S_CECREDENTIALS_METASCOPES",
            "IMS_ORG_ID", "IMS_BASE_URL", "AEM_DATA_SERVICE_BASE_URL"]
JWT_KEYS = ["JWT_CLIENT_ID", "JWT_CLIENT_SECRET", "JWT_TECHNICAL_ACCOUNT_ID", "JWT_IMS_ORG",
            "JWT_METASCOPES", "JWT_PRIVATE_KEY", "IMS_BASE_URL", "ANALYTICS_BASE_URL",
            "ANALYTICS_COMPANY_ID", "ANALYTICS_RSID"]

FLOWS = {
    "s2s": {"title": "OAuth S2S → AEM Data Service quota", "short": "OAuth S2S → AEM",
            "keys": S2S_KEYS, "operation": "aem-quota", "action": "oauth-s2s-aem"},
    "jwt": {"title": "JWT (Service Account) → Analytics report", "short": "JWT → Analytics",
            "keys": JWT_KEYS, "operation": "analytics-report", "action": "jwt-analytics"},
}

SUBJECTS = {
    "ours": "ims-action (Rust, one-shot)",
    "node-lean": "Node sample, lean (no @adobe/aio-sdk)",
    "node-aio": "Node sample as published (@adobe/aio-sdk)",
}

# Targets of the issue. kind "min": measured must be >= goal; "max": measured must be <= goal.
TARGETS = {
    "cold_aio_s2s": 300.0, "cold_aio_jwt": 100.0, "cold_lean": 60.0,
    "warm_ratio": 1.2, "rss_mib": 5.0, "binary_mib": 3.0, "tokens_per_1000": 1.0,
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------------------------
# statistics

def pct(xs: list[float], p: float) -> float:
    """Percentile with linear interpolation between closest ranks (numpy's default)."""
    s = sorted(xs)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(xs: list[float]) -> dict | None:
    if not xs:
        return None
    return {"n": len(xs), "median": statistics.median(xs), "p10": pct(xs, 10), "p90": pct(xs, 90),
            "p99": pct(xs, 99), "min": min(xs), "max": max(xs), "mean": statistics.fmean(xs)}


# --------------------------------------------------------------------------------------------
# machine, repository, busy check

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
    return platform_fallback()


def platform_fallback() -> str:
    import platform
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


def busy_processes() -> list[str]:
    """Compilers running right now (other than ours): the machine is shared with builds."""
    out = sh(["pgrep", "-af", r"^([^ ]*/)?(rustc|cargo|cc1|cc1plus|collect2|ld|ld\.lld|rust-lld|clippy-driver)( |$)"])
    own = {str(os.getpid())}
    lines = []
    for line in out.splitlines():
        pid, _, cmd = line.partition(" ")
        if pid not in own and "pgrep" not in cmd:
            lines.append(cmd[:120])
    return lines


class BusyWatch:
    """Load average and competing compilers, sampled between measurements (never during one: a
    sampling thread would take the GIL, and a pgrep fork the CPU, in the middle of a timed loop)."""

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
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "mem_gib": round(mem_total_gib(), 1),
        "kernel": os.uname().release,
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": (sh(["git", "rev-parse", "--short", "HEAD"], ROOT) or "unknown")
        + ("-dirty" if sh(["git", "status", "--porcelain", "--untracked-files=no"], ROOT) else ""),
        "node": sh([node_path(), "--version"]) if node_path() else "missing",
        "python": sys.version.split()[0],
        "rustc": sh(["rustc", "--version"]),
    }


def node_path() -> str | None:
    return shutil.which("node")


# --------------------------------------------------------------------------------------------
# preparation: builds, helpers, npm

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
    if args.zip is None and makefile_has("package"):
        try:
            run_step(["make", "package"])
        except BenchError as e:  # the zip is one figure of many: report it missing, go on
            log(f"WARNING: {e}; the zip size will be reported as not built")


def build_helpers() -> dict[str, Path]:
    """Compile the C helpers (static) into bench/.build when their source is newer."""
    BUILD.mkdir(exist_ok=True)
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise BenchError("a C compiler (cc) is needed for bench/spawn_rss.c (see bench/README.md)")
    out = {}
    for name in ("spawn_rss", "noop", "echo_loop"):
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


def check_lean_variants() -> None:
    """The lean peers must be the published peers with the one require line swapped."""
    for flow in FLOWS.values():
        full = (PEER / "actions" / flow["action"] / "index.js").read_text()
        lean = (PEER / "actions" / (flow["action"] + "-lean") / "index.js").read_text()
        expected = full
        for old, new in LEAN_LINE.items():
            expected = expected.replace(old, new)
        if expected != lean or expected == full:
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


# --------------------------------------------------------------------------------------------
# the emulator

class Emulator:
    READY = re.compile(r"adobe-emulator listening on (http://[^\s]+)")

    def __init__(self, exe: str, workdir: Path, log_level: str, timeout_s: float = 120.0):
        self.env_path = workdir / "emulator.env"
        self.log_path = workdir / "emulator.log"
        self._log = open(self.log_path, "wb")
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env["RUST_LOG"] = log_level  # its per-request log line costs time on every request
        # --exit-on-stdin-eof: if this script dies, the emulator sees EOF and exits too
        self.proc = subprocess.Popen([exe, "--env-file", str(self.env_path), "--exit-on-stdin-eof"],
                                     stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.PIPE, env=env)
        self.base = self._wait_ready(timeout_s)
        # keep draining stdout so that a chatty emulator never blocks on a full pipe
        threading.Thread(target=self._drain, daemon=True).start()
        self.env = parse_env_file(self.env_path)
        u = urllib.parse.urlsplit(self.base)
        self.host, self.port = u.hostname, u.port

    def _wait_ready(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        buf = b""
        fd = self.proc.stdout.fileno()
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                buf += chunk
                self._log.write(chunk)
                m = self.READY.search(buf.decode(errors="replace"))
                if m and b"\n" in buf[buf.find(b"listening"):]:
                    return m.group(1).rstrip("/")
            if self.proc.poll() is not None:
                break
        self.stop()
        raise BenchError(f"adobe-emulator did not print its ready line (log: {self.log_path})")

    def _drain(self) -> None:
        try:
            while True:
                chunk = self.proc.stdout.read1(65536)
                if not chunk:
                    return
                self._log.write(chunk)
        except (OSError, ValueError):
            return

    def stats(self) -> dict:
        c = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            c.request("GET", "/__stats")
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                raise BenchError(f"GET /__stats -> {r.status}")
            return json.loads(body)
        finally:
            c.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def parse_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        k = k.strip().removeprefix("export ").strip()
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
            v = v[1:-1]
        env[k] = v
    return env


def token_delta(before: dict, after: dict) -> dict:
    """Token-endpoint requests (any path under /ims/) and tokens issued between two /__stats."""
    def ims_requests(s):
        return sum(n for p, n in s.get("requests", {}).items() if "/ims/" in p)

    def issued(s):
        return sum(s.get("tokens_issued", {}).values())
    return {"token_requests": ims_requests(after) - ims_requests(before),
            "tokens_issued": issued(after) - issued(before)}


# --------------------------------------------------------------------------------------------
# running processes through spawn_rss

def subject_env(emu: Emulator) -> dict[str, str]:
    """What the subjects see: a clean environment (no proxies), like an action container."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
            "IMS_ACTION_ALLOW_HOSTS": emu.env.get("IMS_ACTION_ALLOW_HOSTS", "127.0.0.1")}


def result_ok(result) -> bool:
    if not isinstance(result, dict) or "error" in result:
        return False
    code = result.get("statusCode")
    return code is None or (isinstance(code, int) and 200 <= code < 300)


def last_json_line(text: str):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line:
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def parse_report(fd: int) -> dict:
    data = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    for line in reversed(data.decode(errors="replace").splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise BenchError(f"spawn_rss reported nothing: {data!r}")


def run_once(helpers, argv: list[str], env: dict, timeout_ms: int = 120_000) -> dict:
    """One process, start to exit: wall time and peak RSS from spawn_rss, result from stdout."""
    rep_r, rep_w = os.pipe()
    try:
        p = subprocess.Popen([str(helpers["spawn_rss"]), str(rep_w), str(timeout_ms), "--", *argv],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env, pass_fds=(rep_w,))
        os.close(rep_w)
        rep_w = -1
        out, err = p.communicate(timeout=timeout_ms / 1000 + 30)
        rep = parse_report(rep_r)
    finally:
        os.close(rep_r)
        if rep_w >= 0:
            os.close(rep_w)
    if "error" in rep:
        raise BenchError(f"spawn_rss: {rep['error']}")
    text = out.decode(errors="replace")
    result = last_json_line(text)
    rep.update({"result": result, "ok": rep["exit"] == 0 and not rep["timed_out"] and result_ok(result),
                "stderr_tail": err.decode(errors="replace")[-400:], "stdout_tail": text[-400:]})
    return rep


class Alarm:
    """Raise TimeoutError in the main thread if a block of work takes longer than `seconds`."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def _fire(self, *_):
        raise TimeoutError(f"no progress within {self.seconds:.0f} s")

    def __enter__(self):
        self._old = signal.signal(signal.SIGALRM, self._fire)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._old)
        return False


class ActionLoop:
    """A long-lived ims-action speaking the ActionLoop protocol: one JSON line per activation on
    stdin, one result line back on fd 3, exactly as the OpenWhisk Go proxy drives it."""

    def __init__(self, helpers, argv: list[str], env: dict, log_path: Path):
        in_r, self.in_w = os.pipe()
        self.out_r, out_w = os.pipe()
        self.rep_r, rep_w = os.pipe()
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [str(helpers["spawn_rss"]), str(rep_w), "0", "--dup", f"{out_w}:3", "--", *argv],
            stdin=in_r, stdout=self._log, stderr=self._log, env=env, pass_fds=(rep_w, out_w))
        for fd in (in_r, out_w, rep_w):
            os.close(fd)
        line = b""
        while not line.endswith(b"\n"):
            chunk = os.read(self.rep_r, 1)
            if not chunk:
                raise BenchError("ims-action (actionloop) did not start")
            line += chunk
        self.pid = int(line.split()[1])
        self.buf = bytearray()
        self.n = 0

    def activation_bytes(self, params: dict) -> tuple[bytes, bytes]:
        deadline = str(int(time.time() * 1000) + 600_000)
        head = json.dumps({"value": params, "deadline": deadline}, separators=(",", ":"))[:-1]
        return (head + ',"activation_id":"').encode(), b'"}\n'

    def activate(self, head: bytes, tail: bytes) -> tuple[int, bytes]:
        """One activation; returns (latency ns, result line). Timed from write to full line."""
        self.n += 1
        msg = head + (f"bench-{self.n:08x}").encode() + tail
        buf = self.buf
        t0 = time.perf_counter_ns()
        os.write(self.in_w, msg)
        while True:
            i = buf.find(b"\n")
            if i >= 0:
                break
            chunk = os.read(self.out_r, 65536)
            if not chunk:
                raise BenchError("ims-action closed fd 3 (exited?)")
            buf += chunk
        t1 = time.perf_counter_ns()
        line = bytes(buf[:i])
        del buf[:i + 1]
        return t1 - t0, line

    def close(self) -> dict:
        os.close(self.in_w)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait()
        rep = parse_report(self.rep_r)
        os.close(self.rep_r)
        os.close(self.out_r)
        self._log.close()
        return rep

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class RawHttpClient:
    """The bare-request limit: one keep-alive TCP connection, a prebuilt request, a response
    read by Content-Length (or chunked), nothing else. Python, so that it pays the same
    interpreter loop cost as the ActionLoop driver above."""

    def __init__(self, host: str, port: int, request: bytes):
        self.addr = (host, port)
        self.request = request
        self.sock = None
        self.buf = bytearray()
        self._connect()

    def _connect(self) -> None:
        if self.sock:
            self.sock.close()
        self.sock = socket.create_connection(self.addr, timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def _take_line(self) -> bytes:
        while (i := self.buf.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self.buf[:i])
        del self.buf[:i + 2]
        return line

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def request_once(self) -> tuple[int, int, bytes]:
        t0 = time.perf_counter_ns()
        self.sock.sendall(self.request)
        while (i := self.buf.find(b"\r\n\r\n")) < 0:
            self._fill()
        head = bytes(self.buf[:i]).decode("latin-1")
        del self.buf[:i + 4]
        lines = head.split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if "chunked" in hdrs.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size = int(self._take_line().split(b";")[0], 16)
                if size == 0:
                    while self._take_line():
                        pass
                    break
                parts.append(self._take(size))
                self._take(2)
            body = b"".join(parts)
        else:
            body = self._take(int(hdrs.get("content-length", "0")))
        t1 = time.perf_counter_ns()
        if hdrs.get("connection", "").lower() == "close":
            self._connect()
        return t1 - t0, status, body


class StdlibHttpClient:
    """Reference only: the same request with http.client (keep-alive), Python's stock client."""

    def __init__(self, host: str, port: int, path: str, headers: dict):
        self.conn = http.client.HTTPConnection(host, port, timeout=30)
        self.path, self.headers = path, headers

    def request_once(self) -> tuple[int, int, bytes]:
        t0 = time.perf_counter_ns()
        self.conn.request("GET", self.path, headers=self.headers)
        r = self.conn.getresponse()
        body = r.read()
        t1 = time.perf_counter_ns()
        return t1 - t0, r.status, body


# --------------------------------------------------------------------------------------------
# sections

def flow_params(emu: Emulator, flow: dict) -> dict:
    missing = [k for k in flow["keys"] if k not in emu.env]
    if missing:
        raise BenchError(f"emulator .env lacks {', '.join(missing)}")
    params = {k: emu.env[k] for k in flow["keys"]}
    if "JWT_METASCOPES" in params:
        params["JWT_METASCOPES"] = jwt_auth_metascopes(params["JWT_METASCOPES"])
    params["OPERATION"] = flow["operation"]
    return params


def jwt_auth_metascopes(value: str) -> str:
    """@adobe/jwt-auth passes a metascope through verbatim only if it contains 'https'; any other
    entry gets '{ims}/s/' prefixed. The emulator's full-URL metascopes are http://127.0.0.1:PORT/s/X,
    which jwt-auth would double-prefix (and IMS reject), so both sides get the bare name X instead:
    the same claims the https form yields against real IMS. Entries already bare or https stay."""
    out = []
    for item in value.split(","):
        item = item.strip()
        if item.startswith("http://") and "/s/" in item:
            item = item.rsplit("/s/", 1)[1]
        out.append(item)
    return ",".join(out)


def subject_argv(subject: str, flow: dict, params: dict, cfg) -> list[str]:
    pj = json.dumps(params, separators=(",", ":"))
    if subject == "ours":
        return [cfg.ims_action_path, pj]
    action = flow["action"] + ("-lean" if subject == "node-lean" else "")
    return [cfg.node, str(RUN_JS), action, pj]


def smoke(cfg, emu, helpers) -> dict:
    """One run of every subject; a subject that fails here is reported, not measured."""
    env = subject_env(emu)
    status = {}
    for fk, flow in FLOWS.items():
        params = flow_params(emu, flow)
        for s in SUBJECTS:
            r = run_once(helpers, subject_argv(s, flow, params, cfg), env)
            status[(fk, s)] = r
            log(f"smoke {fk:3} {s:9}: {'ok' if r['ok'] else 'FAILED'} "
                f"{r['wall_ns'] / 1e6:8.1f} ms {r['maxrss_kb'] / 1024:6.1f} MiB")
            if not r["ok"]:
                log(f"   exit={r['exit']} stdout: {r['stdout_tail'].strip()[-200:]!r}")
                log(f"   stderr: {r['stderr_tail'].strip()[-300:]!r}")
    return status


def cold_section(cfg, emu, helpers, smoke_status) -> dict:
    env = subject_env(emu)
    res = {fk: {s: [] for s in SUBJECTS} for fk in FLOWS}
    fails = {fk: {s: 0 for s in SUBJECTS} for fk in FLOWS}
    floor = []
    order = list(SUBJECTS)
    total = cfg.warmup + cfg.rounds
    for rnd in range(total):
        measured = rnd >= cfg.warmup
        for fk, flow in FLOWS.items():
            params = flow_params(emu, flow)
            k = rnd % len(order)
            for s in order[k:] + order[:k]:  # rotate who goes first each round
                if not smoke_status[(fk, s)]["ok"]:
                    continue
                reps = cfg.ours_per_round if s == "ours" else 1
                for _ in range(reps):
                    r = run_once(helpers, subject_argv(s, flow, params, cfg), env)
                    if not measured:
                        continue
                    if r["ok"]:
                        res[fk][s].append({"round": rnd - cfg.warmup, "wall_ns": r["wall_ns"],
                                           "maxrss_kb": r["maxrss_kb"]})
                    else:
                        fails[fk][s] += 1
        if measured:
            for _ in range(cfg.ours_per_round):
                r = run_once(helpers, [str(helpers["noop"])], env)
                floor.append({"wall_ns": r["wall_ns"], "maxrss_kb": r["maxrss_kb"]})
        bs = BusyWatch.sample(f"cold round {rnd + 1}")
        log(f"cold round {rnd + 1}/{total}{'' if measured else ' (warm-up)'} load {bs['load']}"
            + (" BUSY" if bs["busy"] else ""))

    out = {"rounds": cfg.rounds, "warmup_rounds": cfg.warmup, "ours_per_round": cfg.ours_per_round,
           "floor": {"wall_ms": summary([f["wall_ns"] / 1e6 for f in floor]),
                     "rss_kib": summary([f["maxrss_kb"] for f in floor])},
           "flows": {}}
    for fk in FLOWS:
        fo = {"subjects": {}, "ratios": {}}
        for s in SUBJECTS:
            runs = res[fk][s]
            fo["subjects"][s] = {"wall_ms": summary([r["wall_ns"] / 1e6 for r in runs]),
                                 "rss_kib": summary([r["maxrss_kb"] for r in runs]),
                                 "failures": fails[fk][s], "samples": runs}
        ours = res[fk]["ours"]
        for s in ("node-aio", "node-lean"):
            peer = res[fk][s]
            if not ours or not peer:
                fo["ratios"][s] = None
                continue
            per_round = []
            for rnd in range(cfg.rounds):
                o = [r["wall_ns"] for r in ours if r["round"] == rnd]
                p = [r["wall_ns"] for r in peer if r["round"] == rnd]
                if o and p:
                    per_round.append(statistics.median(p) / statistics.median(o))
            fo["ratios"][s] = {
                "of_medians": statistics.median([r["wall_ns"] for r in peer])
                / statistics.median([r["wall_ns"] for r in ours]),
                "per_round": summary(per_round)}
        out["flows"][fk] = fo
    return out


def set_affinity(pid: int, cpus: set[int]) -> None:
    """Every thread of process pid (affinity is per thread; new threads inherit their creator's)."""
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        tids = [pid]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:
            pass


def warm_section(cfg, emu, helpers, workdir: Path) -> dict:
    flow = FLOWS["s2s"]
    params = flow_params(emu, flow)
    org, cid = params["IMS_ORG_ID"], params["OAUTHS2S_CLIENT_ID"]

    # the bare client's token (one extra token request, taken before any counted window)
    c = http.client.HTTPConnection(emu.host, emu.port, timeout=30)
    body = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": cid,
                                   "client_secret": params["OAUTHS2S_CLIENT_SECRET"],
                                   "scope": params["OAUTHS2S_CECREDENTIALS_METASCOPES"]})
    c.request("POST", "/ims/token/v3", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse()
    token = json.loads(r.read()).get("access_token")
    c.close()
    if r.status != 200 or not token:
        raise BenchError(f"could not get a token for the bare client ({r.status})")

    aem = urllib.parse.urlsplit(params["AEM_DATA_SERVICE_BASE_URL"])
    path = (aem.path.rstrip("/") + "/adobe/stats/statistics/contentRequestsQuota?"
            + urllib.parse.urlencode({"imsOrgId": org, "current": "true"}, safe="@"))
    headers = {"X-Adobe-Accept-Experimental": "1", "x-gw-ims-org-id": org, "X-Api-Key": cid,
               "Authorization": f"Bearer {token}"}
    raw_req = (f"GET {path} HTTP/1.1\r\nHost: {aem.hostname}:{aem.port}\r\n"
               + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()

    all_cpus = os.sched_getaffinity(0)
    modes = []
    if cfg.warm_cpu is not None and cfg.warm_cpu in all_cpus and len(all_cpus) > 1:
        modes.append(("one-core", {cfg.warm_cpu}))
    modes.append(("free", set(all_cpus)))
    kinds = ["ours", "bare", "httpclient", "echo"]

    # pin first, so that the ActionLoop process and the emulator's connection threads start pinned
    set_affinity(emu.proc.pid, modes[0][1])
    os.sched_setaffinity(0, modes[0][1])
    loop = echo = None
    out = {"blocks": cfg.warm_blocks, "block_size": cfg.warm_block, "warmup": cfg.warm_warmup, "modes": {}}
    try:
        clients = {"bare": RawHttpClient(aem.hostname, aem.port, raw_req),
                   "httpclient": StdlibHttpClient(aem.hostname, aem.port, path, headers)}
        loop = ActionLoop(helpers, [cfg.ims_action_path], subject_env(emu), workdir / "actionloop-warm.log")
        echo = ActionLoop(helpers, [str(helpers["echo_loop"])], subject_env(emu), workdir / "echo-loop.log")
        head, tail = loop.activation_bytes(params)

        def block(kind: str, n: int, acc: dict | None) -> None:
            samples, outs = [], []
            t0 = time.perf_counter_ns()
            if kind in ("ours", "echo"):
                proc = loop if kind == "ours" else echo
                for _ in range(n):
                    ns, line = proc.activate(head, tail)
                    samples.append(ns)
                    outs.append(line)
            else:
                cl = clients[kind]
                for _ in range(n):
                    ns, st, _ = cl.request_once()
                    samples.append(ns)
                    outs.append(st)
            t1 = time.perf_counter_ns()
            if kind in ("ours", "echo"):
                nbad = sum(1 for ln in outs if not result_ok(safe_json(ln)))
            else:
                nbad = sum(1 for st in outs if st != 200)
            if acc is not None:
                acc["lat"][kind].extend(samples)
                acc["wall"][kind] += t1 - t0
                acc["bad"][kind] += nbad
            elif nbad:
                first = outs[0] if isinstance(outs[0], int) else outs[0][:300]
                raise BenchError(f"warm-up {kind}: {nbad}/{n} failed (first: {first!r})")

        with Alarm(900):
            for mode, cpus in modes:
                set_affinity(emu.proc.pid, cpus)
                set_affinity(loop.pid, cpus)
                set_affinity(echo.pid, cpus)
                os.sched_setaffinity(0, cpus)
                acc = {"lat": {k: [] for k in kinds}, "wall": {k: 0 for k in kinds}, "bad": {k: 0 for k in kinds}}
                for kind in kinds:
                    block(kind, cfg.warm_warmup, None)
                for bi in range(cfg.warm_blocks):
                    k = bi % len(kinds)
                    for kind in kinds[k:] + kinds[:k]:  # rotate who goes first
                        block(kind, cfg.warm_block, acc)
                mo = {"cpus": sorted(cpus), "kinds": {}}
                for kind in kinds:
                    lat, wall = acc["lat"][kind], acc["wall"][kind]
                    mo["kinds"][kind] = {"lat_us": summary([x / 1000 for x in lat]),
                                         "per_s": len(lat) / (wall / 1e9) if wall else None,
                                         "failures": acc["bad"][kind]}
                o, bare = mo["kinds"]["ours"], mo["kinds"]["bare"]
                mo["ratio_median"] = o["lat_us"]["median"] / bare["lat_us"]["median"]
                mo["ratio_p99"] = o["lat_us"]["p99"] / bare["lat_us"]["p99"]
                mo["ratio_rate"] = bare["per_s"] / o["per_s"]
                # what any ActionLoop action making this request would cost at least: pipe + request
                floor = mo["kinds"]["echo"]["lat_us"]["median"] + bare["lat_us"]["median"]
                mo["protocol_floor_us"] = floor
                mo["ratio_vs_protocol_floor"] = o["lat_us"]["median"] / floor
                mo["best_possible_ratio"] = floor / bare["lat_us"]["median"]
                out["modes"][mode] = mo
                mo["busy_after"] = bool(BusyWatch.sample(f"warm {mode}")["busy"])
                log(f"warm {mode}: ours {o['lat_us']['median']:.1f} µs, bare {bare['lat_us']['median']:.1f} µs "
                    f"(×{mo['ratio_median']:.2f})")
    except BaseException:
        for proc in (loop, echo):
            if proc:
                proc.kill()
        raise
    finally:
        os.sched_setaffinity(0, all_cpus)
        set_affinity(emu.proc.pid, all_cpus)
    echo.close()
    rep = loop.close()
    out.update({"actionloop_rss_kib": rep["maxrss_kb"], "actionloop_exit": rep["exit"],
                "actionloop_activations": loop.n, "primary": modes[0][0]})
    out.update({k: out["modes"][modes[0][0]][k] for k in ("ratio_median", "ratio_p99", "ratio_rate")})
    return out


def safe_json(line: bytes):
    try:
        return json.loads(line)
    except ValueError:
        return None


def token_section(cfg, emu, helpers, workdir: Path, smoke_status) -> dict:
    n, n_peer = cfg.token_activations, cfg.peer_token_activations
    out = {"activations": n, "peer_activations": n_peer, "flows": {}}
    for fk, flow in FLOWS.items():
        if not (smoke_status[(fk, "ours")]["ok"] and smoke_status[(fk, "node-aio")]["ok"]):
            log(f"tokens {fk}: skipped (a subject failed its smoke run)")
            continue
        try:
            out["flows"][fk] = token_flow(cfg, emu, helpers, workdir, fk, flow, n, n_peer)
        except (BenchError, TimeoutError, OSError) as e:
            log(f"tokens {fk}: failed: {e}")
    return out


def token_flow(cfg, emu, helpers, workdir, fk, flow, n, n_peer) -> dict:
    """Token requests around n activations of one ActionLoop ims-action, and around n_peer calls
    of the Node sample's main() in one Node process."""
    params = flow_params(emu, flow)
    fo = {}
    # ours: one actionloop process, n activations
    before = emu.stats()
    loop = ActionLoop(helpers, [cfg.ims_action_path], subject_env(emu), workdir / f"actionloop-tokens-{fk}.log")
    head, tail = loop.activation_bytes(params)
    okc, lats = 0, []
    try:
        with Alarm(600):
            for _ in range(n):
                ns, line = loop.activate(head, tail)
                lats.append(ns / 1000)
                okc += result_ok(safe_json(line))
    except BaseException:
        loop.kill()
        raise
    rep = loop.close()
    d = token_delta(before, emu.stats())
    fo["ours"] = {**d, "ok": okc, "per_1000": d["token_requests"] * 1000 / n,
                  "lat_us": summary(lats), "rss_kib": rep["maxrss_kb"]}
    # the peer: n sequential main() calls in one Node process
    before = emu.stats()
    r = run_once(helpers, [cfg.node, str(RUN_JS), flow["action"], json.dumps(params), "--repeat", str(n_peer)],
                 subject_env(emu), timeout_ms=900_000)
    d = token_delta(before, emu.stats())
    res = r["result"] if isinstance(r["result"], dict) else {}
    fo["node-aio"] = {**d, "ok": res.get("ok", 0), "per_1000": d["token_requests"] * 1000 / n_peer,
                      "lat_us": summary(res.get("lat_us", [])), "rss_kib": r["maxrss_kb"],
                      "wall_s": r["wall_ns"] / 1e9}
    log(f"tokens {fk}: ours {fo['ours']['token_requests']} per {n} activations, "
        f"node {fo['node-aio']['token_requests']} per {n_peer}")
    return fo


def elf_facts(path: Path) -> dict:
    """Is this ELF stripped (no .symtab) and static (no PT_INTERP, no DT_NEEDED)?"""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return {"elf64": False}
    end = "<" if data[5] == 1 else ">"
    (e_phoff, e_shoff) = struct.unpack_from(end + "QQ", data, 0x20)
    (e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx) = struct.unpack_from(end + "HHHHH", data, 0x36)
    interp, needed, dyn = False, 0, None
    for i in range(e_phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(end + "IIQQQQ", data, e_phoff + i * e_phentsize)
        if p_type == 3:
            interp = True
        elif p_type == 2:
            dyn = (p_offset, p_filesz)
    if dyn:
        for off in range(dyn[0], dyn[0] + dyn[1], 16):
            tag, _ = struct.unpack_from(end + "qQ", data, off)
            if tag == 0:
                break
            needed += tag == 1
    names = []
    if e_shoff and e_shnum and e_shstrndx < e_shnum:
        str_off = struct.unpack_from(end + "Q", data, e_shoff + e_shstrndx * e_shentsize + 0x18)[0]
        for i in range(e_shnum):
            name_off = struct.unpack_from(end + "I", data, e_shoff + i * e_shentsize)[0]
            s = data[str_off + name_off: data.index(b"\0", str_off + name_off)]
            names.append(s.decode(errors="replace"))
    return {"elf64": True, "stripped": ".symtab" not in names, "static": not interp and needed == 0,
            "interp": interp, "needed": needed}


def dir_size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            fp = os.path.join(dirpath, f)
            if not os.path.islink(fp):
                total += os.path.getsize(fp)
    return total


def sizes_section(cfg) -> dict:
    out = {}
    exe = Path(cfg.ims_action_path)
    facts = elf_facts(exe)
    size = exe.stat().st_size
    stripped_size = size
    if facts.get("elf64") and not facts.get("stripped") and shutil.which("strip"):
        tmp = BUILD / "ims-action.stripped"
        subprocess.run(["strip", "-o", str(tmp), str(exe)], check=True)
        stripped_size = tmp.stat().st_size
    if not facts.get("elf64"):
        facts.update({"stripped": False, "static": False})
    out["binary"] = {"path": str(exe.relative_to(ROOT)) if exe.is_relative_to(ROOT) else str(exe),
                     "bytes": size, "stripped_bytes": stripped_size, **facts}
    z = Path(cfg.zip_path)
    out["zip"] = {"path": str(z.relative_to(ROOT)) if z.is_relative_to(ROOT) else str(z),
                  "bytes": z.stat().st_size if z.exists() else None}
    nm = PEER / "node_modules"
    out["node_modules_bytes"] = dir_size(nm) if nm.exists() else None
    return out


# --------------------------------------------------------------------------------------------
# verdicts and report

def verdict(measured, goal: float, kind: str, unit: str = "", fmt="{:.3g}") -> dict:
    if measured is None or (isinstance(measured, float) and math.isnan(measured)):
        return {"status": "n/a", "text": "not measured"}
    m = fmt.format(measured) + unit
    g = ("≥ " if kind == "min" else "≤ ") + fmt.format(goal) + unit
    ok = measured >= goal if kind == "min" else measured <= goal
    if ok:
        return {"status": "PASS", "text": f"**PASS** ({m} vs {g})"}
    if kind == "min":
        how = f"{goal / measured:.2f}× short" if measured > 0 else "far short"
    else:
        how = f"{(measured / goal - 1) * 100:.0f} % over" if goal > 0 else f"{measured:g} over"
    return {"status": "MISS", "text": f"**MISS** by {how} ({m} vs {g})"}


def targets(res: dict) -> list[dict]:
    rows = []
    cold = res.get("cold", {}).get("flows", {})

    def ratio(fk, s):
        r = cold.get(fk, {}).get("ratios", {}).get(s)
        return r["of_medians"] if r else None

    rows.append(("Cold start, OAuth S2S: Adobe sample ÷ ims-action", ratio("s2s", "node-aio"), TARGETS["cold_aio_s2s"], "min", "×"))
    rows.append(("Cold start, JWT: Adobe sample ÷ ims-action", ratio("jwt", "node-aio"), TARGETS["cold_aio_jwt"], "min", "×"))
    rows.append(("Cold start, OAuth S2S: lean Node ÷ ims-action", ratio("s2s", "node-lean"), TARGETS["cold_lean"], "min", "×"))
    rows.append(("Cold start, JWT: lean Node ÷ ims-action", ratio("jwt", "node-lean"), TARGETS["cold_lean"], "min", "×"))
    warm = res.get("warm")
    rows.append(("Warm activation median ÷ bare-request median", warm["ratio_median"] if warm else None,
                 TARGETS["warm_ratio"], "max", "×"))
    rss = []
    for fk in cold:
        s = cold[fk]["subjects"]["ours"]["rss_kib"]
        if s:
            rss.append(s["max"])
    if warm:
        rss.append(warm["actionloop_rss_kib"])
    for fo in res.get("tokens", {}).get("flows", {}).values():
        rss.append(fo["ours"]["rss_kib"])
    rows.append(("Peak RSS of any ims-action process (max of all runs)", max(rss) / 1024 if rss else None,
                 TARGETS["rss_mib"], "max", " MiB"))
    b = res.get("sizes", {}).get("binary")
    rows.append(("Stripped static binary", b["stripped_bytes"] / MIB if b else None, TARGETS["binary_mib"], "max", " MiB"))
    for fk, fo in res.get("tokens", {}).get("flows", {}).items():
        rows.append((f"Token requests per 1,000 warm activations, {FLOWS[fk]['short']}", fo["ours"]["per_1000"],
                     TARGETS["tokens_per_1000"], "max", "", "{:.4g}"))
    out = []
    for row in rows:
        name, m, goal, kind, unit = row[:5]
        fmt = row[5] if len(row) > 5 else "{:.3g}"
        v = verdict(m, goal, kind, unit, fmt)
        extra = ""
        if b and name.startswith("Stripped") and not (b.get("stripped") and b.get("static")):
            extra = " — note: the built file is " + ", ".join(
                x for x in (("not stripped" if not b.get("stripped") else ""),
                            ("not static" if not b.get("static") else "")) if x)
        out.append({"target": name, "measured": m, "goal": goal, "kind": kind, **v, "note": extra})
    return out


def f_ms(x) -> str:
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def f_x(x) -> str:
    return "–" if x is None else (f"{x:,.0f}" if x >= 100 else f"{x:.3g}")


def f_mib(kib) -> str:
    return "–" if kib is None else f"{kib / 1024:.1f}"


def f_us(x) -> str:
    return "–" if x is None else (f"{x:,.0f}" if x >= 100 else f"{x:.1f}")


def render_markdown(res: dict, svg_rel: str) -> str:
    m, b = res["machine"], res["busy"]
    L = []
    L.append("# Benchmarks")
    L.append("")
    L.append("Written by `make bench` (`bench/run.py`); do not edit by hand. Method and caveats: "
             "[bench/README.md](bench/README.md). Raw figures: [bench/results.json](bench/results.json).")
    L.append("")
    if res["quick"]:
        L.append("> **Smoke run (`--quick`)**: too few samples for the figures below to mean much.")
        L.append("")
    busy = b["busy_samples"] > 0
    L.append("| | |")
    L.append("|---|---|")
    L.append(f"| Machine | {m['cores']} cores, {m['cpu_model']}, {m['mem_gib']} GiB, Linux {m['kernel']} |")
    L.append(f"| Date | {m['date_utc']} |")
    L.append(f"| Commit | `{m['commit']}` |")
    L.append(f"| Toolchain | {m['rustc']}; Node {m['node']}; Python {m['python']} |")
    pv = res.get("peer_versions", {})
    if pv:
        L.append("| Peer packages | " + ", ".join(f"`{k}` {v}" for k, v in pv.items()) + " (bench/peer-node/package-lock.json) |")
    L.append(f"| Load average (1/5/15 min) | start {b['load_start']}, end {b['load_end']} |")
    if busy:
        ex = "; ".join(b["busy_examples"]) or "high load"
        labels = b.get("busy_labels", [])
        cold_busy = sum(1 for x in labels if x.startswith("cold round"))
        parts = []
        for x in labels:
            part = x.split()[0] if not x.startswith("cold round") else \
                f"cold ({cold_busy} of {res.get('cold', {}).get('rounds', 0) + res.get('cold', {}).get('warmup_rounds', 0)} rounds)"
            if part not in parts:
                parts.append(part)
        where = ", ".join(parts)
        L.append(f"| **Machine busy** | yes: compilers or load seen in {b['busy_samples']} of {b['samples']} samples "
                 f"({where}; e.g. `{ex[:80]}`); treat the figures as provisional |")
    else:
        L.append(f"| Machine busy | no: no compiler seen in {b['samples']} samples between measurements, "
                 f"1-min load at most {b['load1_max']} |")
    L.append("")

    L.append("## Targets")
    L.append("")
    L.append("| Target | Result |")
    L.append("|---|---|")
    for t in res["targets"]:
        L.append(f"| {t['target']} | {t['text']}{t['note']} |")
    L.append("")

    cold = res.get("cold")
    if cold:
        L.append("## 1. Cold start: process start → result")
        L.append("")
        L.append(f"One activation per process, token exchange included. {cold['warmup_rounds']} warm-up round(s), then "
                 f"{cold['rounds']} measured rounds; each round runs ims-action {cold['ours_per_round']}× and each Node "
                 "variant once, in rotating order, so every ratio compares runs taken in alternation. "
                 "Wall time from `posix_spawn` to `wait4`; ratios are peer median ÷ ims-action median "
                 "(spread: p10–p90 of the per-round ratios).")
        L.append("")
        for fk, fo in cold["flows"].items():
            L.append(f"### {FLOWS[fk]['title']}")
            L.append("")
            L.append("| Subject | n | median ms | p10–p90 ms | min–max ms | peak RSS MiB (median, max) | ratio vs ims-action |")
            L.append("|---|---:|---:|---:|---:|---:|---:|")
            for s, label in SUBJECTS.items():
                so = fo["subjects"][s]
                w, r = so["wall_ms"], so["rss_kib"]
                if not w:
                    L.append(f"| {label} | 0 | – | – | – | – | failed ({so['failures']} failures; see log) |")
                    continue
                rt = fo["ratios"].get(s)
                rtxt = "1×" if s == "ours" else (
                    f"**{f_x(rt['of_medians'])}×** ({f_x(rt['per_round']['p10'])}–{f_x(rt['per_round']['p90'])})"
                    if rt else "–")
                fl = f" ({so['failures']} failed)" if so["failures"] else ""
                L.append(f"| {label}{fl} | {w['n']} | {f_ms(w['median'])} | {f_ms(w['p10'])}–{f_ms(w['p90'])} | "
                         f"{f_ms(w['min'])}–{f_ms(w['max'])} | {f_mib(r['median'])}, {f_mib(r['max'])} | {rtxt} |")
            L.append("")
        fl = cold["floor"]
        if fl["wall_ms"]:
            L.append(f"Floor on this machine: a static C program that does nothing takes {f_ms(fl['wall_ms']['median'])} ms "
                     f"(p10–p90 {f_ms(fl['wall_ms']['p10'])}–{f_ms(fl['wall_ms']['p90'])}) and "
                     f"{f_mib(fl['rss_kib']['median'])} MiB peak RSS measured the same way; it is the least any process can score.")
            L.append("")

    warm = res.get("warm")
    if warm:
        L.append("## 2. Warm activations (ActionLoop, cached token)")
        L.append("")
        L.append(f"One long-lived ims-action driven through the ActionLoop protocol (a JSON line on stdin, the result "
                 f"line on fd 3) for the OAuth S2S → AEM quota call. Per placement, after {warm['warmup']} warm-up "
                 f"activations, {warm['blocks']} blocks of {warm['block_size']} activations alternate with blocks of "
                 "the bare request: the same `GET …/contentRequestsQuota` with the same headers and a cached token, "
                 "sent in a tight loop over one keep-alive connection by a minimal raw-socket client. Latency is "
                 "write → complete reply, timed by the same Python loop for both; activations/s is the count over "
                 "the blocks' wall time.")
        L.append("")
        names = {"ours": "ims-action, ActionLoop", "bare": "bare request (the limit)",
                 "httpclient": "same request via Python `http.client` (reference)",
                 "echo": "ActionLoop protocol alone: a C loop that answers without any request (reference)"}
        titles = {"one-core": "driver, ims-action and emulator pinned to one core (primary: no cross-core wake-ups)",
                  "free": "no pinning (the scheduler places the processes on both cores)"}
        for mode, mo in warm["modes"].items():
            cpus = ",".join(str(c) for c in mo["cpus"])
            L.append(f"**{titles.get(mode, mode)}**, CPU {cpus}:")
            L.append("")
            L.append("| Client | n | median µs | p10–p90 µs | p99 µs | max µs | activations/s |")
            L.append("|---|---:|---:|---:|---:|---:|---:|")
            for k, label in names.items():
                ko = mo["kinds"][k]
                st = ko["lat_us"]
                fl = f" ({ko['failures']} failed)" if ko["failures"] else ""
                L.append(f"| {label}{fl} | {st['n']:,} | {f_us(st['median'])} | {f_us(st['p10'])}–{f_us(st['p90'])} | "
                         f"{f_us(st['p99'])} | {f_us(st['max'])} | {ko['per_s']:,.0f} |")
            L.append("")
            L.append(f"ims-action ÷ bare: median **{mo['ratio_median']:.2f}×**, p99 {mo['ratio_p99']:.2f}×, "
                     f"activations/s {mo['ratio_rate']:.2f}× fewer. The pipe round trip alone plus the bare request "
                     f"come to {f_us(mo['protocol_floor_us'])} µs, so no ActionLoop action can score better than "
                     f"{mo['best_possible_ratio']:.2f}× here; ims-action takes {mo['ratio_vs_protocol_floor']:.2f}× that.")
            L.append("")
        L.append(f"Peak RSS of the ActionLoop process after {warm['actionloop_activations']:,} activations: "
                 f"{f_mib(warm['actionloop_rss_kib'])} MiB. The target row uses the first placement above "
                 f"(`{warm['primary']}`).")
        tok = res.get("tokens", {}).get("flows", {}).get("s2s", {}).get("node-aio")
        if tok and tok.get("lat_us"):
            L.append("")
            L.append(f"For context, Adobe's sample warm in one Node process (timed inside Node, unpinned, a token request "
                     f"every time as published): median {f_us(tok['lat_us']['median'])} µs, "
                     f"p99 {f_us(tok['lat_us']['p99'])} µs per activation.")
        L.append("")

    sz = res.get("sizes")
    if sz:
        L.append("## 3. Resources")
        L.append("")
        L.append("| What | Size |")
        L.append("|---|---:|")
        bi = sz["binary"]
        kind = ", ".join([("stripped" if bi.get("stripped") else "not stripped"),
                          ("static" if bi.get("static") else "dynamic")])
        L.append(f"| `{bi['path']}` ({kind}) | {bi['bytes'] / MIB:.2f} MiB ({bi['bytes']:,} B) |")
        if bi["stripped_bytes"] != bi["bytes"]:
            L.append(f"| same, after `strip` | {bi['stripped_bytes'] / MIB:.2f} MiB |")
        z = sz["zip"]
        L.append(f"| `{z['path']}` | " + (f"{z['bytes'] / MIB:.2f} MiB ({z['bytes']:,} B) |" if z["bytes"] else "not built |"))
        if sz.get("node_modules_bytes"):
            L.append(f"| peer: `bench/peer-node/node_modules` (unbundled, all three dependencies) | {sz['node_modules_bytes'] / MIB:,.0f} MiB |")
        L.append("")
        if cold:
            L.append("Peak RSS (`ru_maxrss` of each process, median of the cold runs):")
            L.append("")
            L.append("| Subject | " + " | ".join(FLOWS[fk]["short"] for fk in cold["flows"]) + " |")
            L.append("|---|" + "---:|" * len(cold["flows"]))
            for s, label in SUBJECTS.items():
                cells = [f_mib((cold["flows"][fk]["subjects"][s]["rss_kib"] or {}).get("median")) + " MiB"
                         for fk in cold["flows"]]
                L.append(f"| {label} | " + " | ".join(cells) + " |")
            L.append("")

    tk = res.get("tokens")
    if tk:
        L.append("## 4. Token requests per 1,000 activations")
        L.append("")
        scaled = " (scaled to 1,000)" if tk["peer_activations"] != 1000 else ""
        L.append(f"Counted by the emulator (`GET /__stats`: requests to `/ims/…` paths) around sequential activations: "
                 f"ims-action as {tk['activations']:,} activations of one ActionLoop process; Adobe's sample as "
                 f"{tk['peer_activations']:,} calls of its `main` in one Node process{scaled}, i.e. a warm container, "
                 "its best case.")
        L.append("")
        L.append("| Flow | ims-action | Adobe sample (Node) |")
        L.append("|---|---:|---:|")
        for fk, fo in tk["flows"].items():
            o, p = fo["ours"], fo["node-aio"]
            L.append(f"| {FLOWS[fk]['title']} | {o['per_1000']:,g} ({o['ok']:,}/{tk['activations']:,} ok) | "
                     f"{p['per_1000']:,g} ({p['ok']:,}/{tk['peer_activations']:,} ok) |")
        L.append("")

    L.append("## Picture")
    L.append("")
    L.append(f"![Cold start and peak RSS, ims-action vs Adobe's Node.js samples]({svg_rel})")
    L.append("")
    return "\n".join(L)


def esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_svg(res: dict) -> str:
    """Two bar panels: cold start (log scale) and peak RSS, per flow, ours vs both Node peers."""
    cold = res["cold"]["flows"]
    colors = {"ours": "#d9480f", "node-lean": "#74a9cf", "node-aio": "#1c4f86"}
    legend = {"ours": "ims-action (Rust)", "node-lean": "Node, lean (no aio-sdk)",
              "node-aio": "Node, Adobe sample (aio-sdk)"}
    W, H = 760, 350
    top, bottom = 92, 280
    panels = [(50, 360, "Cold start, one activation (ms, log scale)", "wall_ms", True),
              (430, 740, "Peak RSS (MiB)", "rss_kib", False)]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="Helvetica, Arial, sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="#ffffff"/>',
           f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">'
           'ims-action vs Adobe\'s Node.js sample actions (adobe-emulator, loopback)</text>',
           f'<text x="{W / 2}" y="54" text-anchor="middle" fill="#555">'
           'bars: medians; bold: how many times slower than ims-action</text>',
           f'<text x="{W / 2}" y="37" text-anchor="middle" fill="#555">'
           f'{esc(res["machine"]["date_utc"])} · commit {esc(res["machine"]["commit"])} · {res["machine"]["cores"]} cores '
           f'{esc(res["machine"]["cpu_model"][:40])} · medians of {res["cold"]["rounds"]} rounds'
           f'{" · SMOKE RUN" if res["quick"] else ""}</text>']
    flows = list(cold)
    for x0, x1, title, key, logscale in panels:
        vals = []
        for fk in flows:
            for s in SUBJECTS:
                st = cold[fk]["subjects"][s][key]
                if st:
                    vals.append(st["median"] if key == "wall_ms" else st["median"] / 1024)
        if not vals:
            continue
        if logscale:
            lo = 10 ** math.floor(math.log10(min(vals)))
            hi = 10 ** math.ceil(math.log10(max(vals) * 1.05))
            ticks = [10 ** e for e in range(round(math.log10(lo)), round(math.log10(hi)) + 1)]

            def y(v):
                return bottom - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * (bottom - top)
        else:
            step = nice_step(max(vals) / 4)
            hi = step * math.ceil(max(vals) * 1.1 / step)
            ticks = [i * step for i in range(int(round(hi / step)) + 1)]

            def y(v):
                return bottom - v / hi * (bottom - top)
        out.append(f'<text x="{(x0 + x1) / 2}" y="{top - 26}" text-anchor="middle" font-weight="bold">{esc(title)}</text>')
        for t in ticks:
            yy = y(t)
            lab = (f"{t:g} ms" if t < 1000 else f"{t / 1000:g} s") if logscale else f"{t:g}"
            out.append(f'<line x1="{x0}" y1="{yy:.1f}" x2="{x1}" y2="{yy:.1f}" stroke="#e3e3e3"/>')
            out.append(f'<text x="{x0 - 4}" y="{yy + 3:.1f}" text-anchor="end" fill="#666">{lab}</text>')
        out.append(f'<line x1="{x0}" y1="{bottom}" x2="{x1}" y2="{bottom}" stroke="#888"/>')
        gw = (x1 - x0) / len(flows)
        bw = gw / (len(SUBJECTS) + 1.2)
        for gi, fk in enumerate(flows):
            gx = x0 + gi * gw + bw * 0.6
            for si, s in enumerate(SUBJECTS):
                st = cold[fk]["subjects"][s][key]
                bx = gx + si * bw
                if not st:
                    out.append(f'<text x="{bx + bw / 2:.1f}" y="{bottom - 4}" text-anchor="middle" fill="#a00">n/a</text>')
                    continue
                v = st["median"] if key == "wall_ms" else st["median"] / 1024
                yy = y(v)
                lab = (f_ms(v) + " ms") if key == "wall_ms" else f"{v:.1f}"
                out.append(f'<rect x="{bx + 2:.1f}" y="{yy:.1f}" width="{bw - 4:.1f}" height="{bottom - yy:.1f}" '
                           f'fill="{colors[s]}"><title>{esc(legend[s])}, {esc(FLOWS[fk]["short"])}: {esc(lab)}</title></rect>')
                out.append(f'<text x="{bx + bw / 2:.1f}" y="{yy - 4:.1f}" text-anchor="middle" font-size="10">{esc(lab)}</text>')
                rt = cold[fk]["ratios"].get(s) if key == "wall_ms" else None
                if rt:
                    out.append(f'<text x="{bx + bw / 2:.1f}" y="{yy - 16:.1f}" text-anchor="middle" font-size="10" '
                               f'font-weight="bold" fill="{colors["ours"]}">{f_x(rt["of_medians"])}×</text>')
            out.append(f'<text x="{x0 + gi * gw + gw / 2:.1f}" y="{bottom + 16}" text-anchor="middle">{esc(FLOWS[fk]["short"])}</text>')
    lx = 120
    for s, label in legend.items():
        out.append(f'<rect x="{lx}" y="{H - 34}" width="12" height="12" fill="{colors[s]}"/>')
        out.append(f'<text x="{lx + 17}" y="{H - 24}">{esc(label)}</text>')
        lx += 190
    out.append("</svg>")
    return "\n".join(out) + "\n"


def nice_step(x: float) -> float:
    if x <= 0:
        return 1
    e = 10 ** math.floor(math.log10(x))
    for m in (1, 2, 2.5, 5, 10):
        if m * e >= x:
            return m * e
    return 10 * e


# --------------------------------------------------------------------------------------------

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fast smoke run; writes under bench/.build/quick/")
    ap.add_argument("--rounds", type=int, help="measured cold-start rounds (default 20; quick 3)")
    ap.add_argument("--warmup", type=int, help="cold-start warm-up rounds (default 2; quick 1)")
    ap.add_argument("--ours-per-round", type=int, help="ims-action runs per round (default 5; quick 3)")
    ap.add_argument("--warm-blocks", type=int, help="alternating warm blocks per client (default 10; quick 3)")
    ap.add_argument("--warm-block", type=int, help="activations per warm block (default 100; quick 50)")
    ap.add_argument("--warm-warmup", type=int, help="warm-up activations per client (default 100; quick 20)")
    ap.add_argument("--warm-cpu", default="last",
                    help="CPU to pin the warm section's processes to first ('last', a number, or 'none'); "
                         "an unpinned pass always follows")
    ap.add_argument("--token-activations", type=int,
                    help="ims-action activations for the token count (default 1000, also in quick mode)")
    ap.add_argument("--peer-token-activations", type=int,
                    help="Node main() calls for the token count, scaled to 1,000 (default 1000; quick 200)")
    ap.add_argument("--no-build", action="store_true", help="use the binaries as they are (no cargo/make)")
    ap.add_argument("--emulator", help=f"adobe-emulator executable (default {DEFAULT_EMULATOR.relative_to(ROOT)})")
    ap.add_argument("--ims-action", help=f"ims-action executable (default {DEFAULT_IMS_ACTION.relative_to(ROOT)})")
    ap.add_argument("--emulator-log", default="warn", help="RUST_LOG for the emulator (default warn)")
    ap.add_argument("--zip", help=f"package zip (default {DEFAULT_ZIP.relative_to(ROOT)})")
    ap.add_argument("--out", help="markdown report (default BENCHMARKS.md; quick: bench/.build/quick/BENCHMARKS.md)")
    ap.add_argument("--svg", help="chart (default docs/bench.svg; quick: bench/.build/quick/bench.svg)")
    ap.add_argument("--json", help="raw results (default bench/results.json; quick: bench/.build/quick/results.json)")
    ap.add_argument("--render-only", action="store_true",
                    help="measure nothing: rewrite the report and chart from the --json results file")
    ap.add_argument("--sections", default="cold,warm,tokens,sizes", help="comma list of sections to run")
    a = ap.parse_args(argv)
    q = a.quick
    defaults = {"rounds": (20, 3), "warmup": (2, 1), "ours_per_round": (5, 3), "warm_blocks": (10, 3),
                "warm_block": (100, 50), "warm_warmup": (100, 20), "token_activations": (1000, 1000),
                "peer_token_activations": (1000, 200)}
    for k, (full, quick) in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, quick if q else full)
    qdir = BUILD / "quick"
    a.out = Path(a.out) if a.out else (qdir / "BENCHMARKS.md" if q else ROOT / "BENCHMARKS.md")
    a.svg = Path(a.svg) if a.svg else (qdir / "bench.svg" if q else ROOT / "docs" / "bench.svg")
    a.json = Path(a.json) if a.json else (qdir / "results.json" if q else BENCH / "results.json")
    cpus = sorted(os.sched_getaffinity(0))
    a.warm_cpu = None if a.warm_cpu == "none" else (cpus[-1] if a.warm_cpu == "last" else int(a.warm_cpu))
    a.sections = set(s.strip() for s in a.sections.split(",") if s.strip())
    return a


def write_outputs(a, res: dict) -> None:
    for p in (a.out, a.svg, a.json):
        p.parent.mkdir(parents=True, exist_ok=True)
    if "cold" in res:
        a.svg.write_text(render_svg(res))
    a.out.write_text(render_markdown(res, os.path.relpath(a.svg, a.out.parent)))
    log(f"wrote {a.out}, {a.svg}")


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.render_only:
        res = json.loads(a.json.read_text())
        res["targets"] = targets(res)
        write_outputs(a, res)
        return 0
    if not a.no_build:
        build_project(a)
    default_exe = DEFAULT_IMS_ACTION if DEFAULT_IMS_ACTION.exists() or not FALLBACK_IMS_ACTION.exists() \
        else FALLBACK_IMS_ACTION
    a.ims_action_path = str(Path(a.ims_action or default_exe).resolve())
    a.zip_path = str(Path(a.zip or DEFAULT_ZIP).resolve())
    emulator = str(Path(a.emulator or DEFAULT_EMULATOR).resolve())
    a.node = node_path()
    for what, p, flag in (("ims-action", a.ims_action_path, "--ims-action"),
                          ("adobe-emulator", emulator, "--emulator")):
        if not os.access(p, os.X_OK):
            raise BenchError(f"{what} not found at {p} (build it, or pass {flag} PATH)")
    if not a.node:
        raise BenchError("node is not on PATH")
    helpers = build_helpers()
    check_lean_variants()
    ensure_node_modules()

    first = BusyWatch.sample("start")
    if first["busy"]:
        log("WARNING: the machine is busy compiling: " + "; ".join(first["busy"][:3]))
    res = {"quick": a.quick, "machine": machine_info(), "peer_versions": peer_versions(),
           "config": {k: getattr(a, k) for k in ("rounds", "warmup", "ours_per_round", "warm_blocks",
                                                  "warm_block", "warm_warmup", "token_activations",
                                                  "peer_token_activations")}}
    with tempfile.TemporaryDirectory(prefix="ims-bench-") as td:
        workdir = Path(td)
        emu = Emulator(emulator, workdir, a.emulator_log)
        log(f"emulator at {emu.base}")
        try:
            status = smoke(a, emu, helpers)
            BusyWatch.sample("smoke")
            res["smoke"] = {f"{fk}/{s}": {"ok": r["ok"], "stdout_tail": r["stdout_tail"][-200:],
                                          "stderr_tail": r["stderr_tail"][-300:]} for (fk, s), r in status.items()}
            if "cold" in a.sections:
                res["cold"] = cold_section(a, emu, helpers, status)
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
            keep = BUILD / "last-run-logs"
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(workdir, keep, ignore=shutil.ignore_patterns("*.env"))
    if "sizes" in a.sections:
        res["sizes"] = sizes_section(a)
    BusyWatch.sample("end")
    res["busy"] = BusyWatch.report()
    res["targets"] = targets(res)

    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(res, indent=1, default=str) + "\n")
    write_outputs(a, res)
    for t in res["targets"]:
        log(f"{t['status']:4}  {t['target']}: {t['text'].replace('**', '')}")
    if res["busy"]["busy_samples"]:
        log("NOTE: compilers were running during the run; figures are provisional")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        log(f"error: {e}")
        sys.exit(1)
