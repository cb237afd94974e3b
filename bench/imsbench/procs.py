"""Processes under measurement. One-shot runs go through bench/spawn_rss.c (wall time and peak
RSS of the child alone); long-lived ones are driven with the OpenWhisk ActionLoop protocol (a
JSON line on stdin per activation, the result line back on fd 3)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from .errors import BenchError
from .flows import result_ok


def last_json_line(text: str):
    """The last non-empty line of `text` as JSON, or None."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line:
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def safe_json(line: bytes):
    try:
        return json.loads(line)
    except ValueError:
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
    """A long-lived process speaking the ActionLoop protocol: one JSON line per activation on
    stdin, one result line back on fd 3, exactly as the OpenWhisk Go proxy drives an action.
    ims-action runs this way, and so do the Node actions through bench/peer-node/loop.js."""

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
                raise BenchError(f"{argv[0]} (actionloop) did not start")
            line += chunk
        self.pid = int(line.split()[1])
        self.buf = bytearray()
        self.n = 0

    @staticmethod
    def activation_bytes(params: dict) -> tuple[bytes, bytes]:
        """The activation line around its activation id: (head, tail)."""
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
                raise BenchError("the actionloop process closed fd 3 (exited?)")
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
