"""Activations at once in one container (issue 18): at one RTT over TLS (50 ms), N activations
started together in ONE Node process, as the Node.js runtime runs them when an action's
`limits.concurrency` is above 1, twice per N: the first burst in a fresh container opens the
connections and fetches the token; the second, right after, finds them open.

- The driver: bench/peer-node/crowd.js requires the action once and, per burst, calls
  `main(params)` N times in one tick, timing each from the burst's start to its answer.
- The subjects: ims-action through the App Builder launcher (actions/ims-action/index.js with the
  binary staged as bin/exec and a seal, as launcher.py stages it), Adobe's sample as published (a
  token per call) and the careful Node peer (a token cache and keep-alive). Only `main(params)`
  is called, so any launcher that keeps that interface (queued, or multiplexed) runs unchanged.
- A fresh Node process (a fresh container: an empty TMPDIR, so no token file from before) per
  subject, N and run, the order of subjects rotating.
- Counts: the emulator's `GET /__stats` around each burst: IMS token requests, TCP connections
  accepted, TLS handshakes; the delay line's count of connection attempts (SYNs) to IMS and to
  the API, which the emulator cannot tell apart (one listener serves both); and the namespace's own kernel TCP counters (/proc/net/netstat, per
  network namespace, so only the bench's traffic): SYNs dropped because a listen queue was full,
  and SYNs retransmitted, which a burst of new connections to one listener can cause.

The network (delay line, addresses, HTTPS emulator, the staged launcher) is the WAN section's
(wan.Wan), at the one RTT of this section.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from .errors import BenchError
from .machine import BusyWatch, log
from .paths import CROWD_JS
from .procs import parse_report
from .stats import counter_delta, pct, ratio, summary
from .wan import Wan

SUBJECTS = {
    "appbuilder": "ims-action via the App Builder launcher",
    "node-aio": "Adobe's sample (a token per call)",
    "node-cached": "Node, token cache + keep-alive",
}
OURS = "appbuilder"
REFERENCE = "node-cached"  # the first burst's targets are relative to it
BURSTS = ("first", "second")
COUNTS = ("token_requests", "connections", "tls_handshakes", "ims_connects", "api_connects", "listen_drops",
          "syn_retransmits")
# /proc/net/netstat fields: SYNs (or handshake ACKs) dropped at a full listen queue, SYNs resent.
KERNEL_TCP = {"listen_drops": "ListenDrops", "syn_retransmits": "TCPSynRetrans"}
# Second burst: p50 ≤ SECOND_RTTS × RTT + SECOND_PLUS_MS (the API request on an open connection,
# with room for a crowd's queueing on 2 cores).
SECOND_RTTS, SECOND_PLUS_MS = 1.3, 10.0


class CrowdProcess:
    """`node crowd.js ACTION PARAMS` under spawn_rss (fd 3 = its answers), one burst at a time."""

    def __init__(self, helpers, node: str, action: str, params: dict, env: dict, log_path: Path,
                 timeout_s: float = 60.0):
        self.out_r, out_w = os.pipe()
        self.rep_r, rep_w = os.pipe()
        self._log = open(log_path, "ab")
        argv = [node, str(CROWD_JS), action, json.dumps(params, separators=(",", ":"))]
        self.proc = subprocess.Popen([str(helpers["spawn_rss"]), str(rep_w), "0", "--dup", f"{out_w}:3", "--", *argv],
                                     stdin=subprocess.PIPE, stdout=self._log, stderr=self._log, env=env,
                                     pass_fds=(rep_w, out_w))
        os.close(out_w)
        os.close(rep_w)
        self.pid = None
        self.buf = bytearray()
        try:
            line = b""
            while not line.endswith(b"\n"):
                chunk = os.read(self.rep_r, 1)
                if not chunk:
                    raise BenchError("crowd.js did not start (spawn_rss said nothing)")
                line += chunk
            self.pid = int(line.split()[1])
            ready = self._answer(timeout_s)
            if not ready.get("ready"):
                raise BenchError(f"crowd.js did not load {action}: {ready}")
        except BaseException:
            self.kill()
            self.close()
            raise

    def _answer(self, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while (i := self.buf.find(b"\n")) < 0:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.out_r], [], [], left)[0]:
                raise BenchError(f"crowd.js gave no answer within {timeout_s:.0f} s")
            chunk = os.read(self.out_r, 65536)
            if not chunk:
                raise BenchError("crowd.js closed fd 3 (exited?)")
            self.buf += chunk
        line = bytes(self.buf[:i])
        del self.buf[:i + 1]
        return json.loads(line)

    def burst(self, n: int, timeout_s: float) -> dict:
        self.proc.stdin.write(json.dumps({"n": n}).encode() + b"\n")
        self.proc.stdin.flush()
        out = self._answer(timeout_s)
        if out.get("n") != n or len(out.get("ms") or []) != n:
            raise BenchError(f"crowd.js answered a burst of {n} with {str(out)[:200]}")
        return out

    def close(self) -> dict:
        """Ends it (stdin's end); returns spawn_rss's report (exit, peak RSS of the Node process)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait()
        try:
            rep = parse_report(self.rep_r)
        except (BenchError, ValueError):
            rep = {}
        os.close(self.rep_r)
        os.close(self.out_r)
        self._log.close()
        return rep

    def kill(self) -> None:
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def parse_netstat(text: str) -> dict:
    """/proc/net/netstat: {"TcpExt": {"ListenDrops": n, ...}, ...} (a header line of names, then a
    line of values, per group). Pure (bench/tests)."""
    out, lines = {}, text.splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        group, _, names = names.partition(":")
        vgroup, _, values = values.partition(":")
        if group == vgroup:
            out[group] = {k: int(v) for k, v in zip(names.split(), values.split()) if v.lstrip("-").isdigit()}
    return out


def kernel_tcp() -> dict:
    """This network namespace's counters of KERNEL_TCP (0 where the kernel does not have one)."""
    try:
        ext = parse_netstat(Path("/proc/net/netstat").read_text()).get("TcpExt", {})
    except OSError:
        ext = {}
    return {k: ext.get(name, 0) for k, name in KERNEL_TCP.items()}


def burst_record(b: dict, delta: dict) -> dict:
    """What results.json keeps of one burst: each activation's ms, which failed, the counts."""
    return {"ms": [round(x, 3) for x in b["ms"]], "failed": b.get("failed") or [],
            "issued_ms": round(b.get("issued_ms") or 0.0, 3), "errors": b.get("errors") or [],
            "counts": {k: delta.get(k, 0) for k in (*COUNTS, "api_requests", "tls_resumed")},
            "rss_kib": b.get("rss_kib") or {}}


class Crowd:
    def __init__(self, cfg, helpers, workdir: Path):
        self.cfg, self.helpers = cfg, helpers
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.rtt = cfg.crowd_rtt
        # the WAN section's network (delay line, HTTPS emulator, staged launcher) at this one RTT
        self.wan = Wan(SimpleNamespace(**{**vars(cfg), "rtts": [self.rtt]}), helpers, workdir)
        self.params = self.wan.params[self.rtt]

    def action(self, s: str) -> str:
        return {"appbuilder": str(self.wan.launcher), "node-aio": "oauth-s2s-aem",
                "node-cached": "oauth-s2s-aem-cached"}[s]

    def container(self, s: str, tag: str) -> CrowdProcess:
        """A fresh container's Node process: an empty TMPDIR (ims-action's token file store, and
        the launcher's temp dir), the runtime stand-in naming the sealed action."""
        env = dict(self.wan.appbuilder_env(self.rtt) if s == OURS else self.wan.env)
        env["TMPDIR"] = tempfile.mkdtemp(prefix="tmp-", dir=self.workdir)
        return CrowdProcess(self.helpers, self.cfg.node, self.action(s), self.params, env,
                            self.workdir / f"crowd-{s}-{tag}.log")

    def timeout_s(self, n: int) -> float:
        # a queue of N at one round trip each, ten times over, and a minute to spare
        return 60.0 + 10 * n * (self.rtt / 1000 + 0.02)

    def smoke(self) -> dict:
        """Every subject, one activation: one that fails is left out, and said so."""
        failed = {}
        for s in SUBJECTS:
            try:
                p = self.container(s, "smoke")
                try:
                    b = p.burst(1, self.timeout_s(1))
                finally:
                    p.close()
                if b["ok"] != 1:
                    failed[s] = (b.get("errors") or ["the activation failed"])[0][:200]
                log(f"crowd smoke {s:11}: {'ok' if s not in failed else 'FAILED ' + failed[s]} {b['ms'][0]:8.1f} ms")
            except (BenchError, OSError, ValueError) as e:
                failed[s] = str(e)[:200]
                log(f"crowd smoke {s:11}: FAILED {e}")
        return failed

    def counters(self) -> tuple[dict, dict]:
        """The emulator's counters, and the link's and the kernel's (connects to IMS and the API)."""
        hosts = self.wan.link.plan[self.rtt]
        syns = self.wan.link.syns()
        return self.wan.emu.stats(), {"ims_connects": syns[hosts["ims"]], "api_connects": syns[hosts["api"]],
                                      **kernel_tcp()}

    def one(self, s: str, n: int, run: int) -> dict:
        """One container: a burst of n, the counters, another burst of n right after."""
        p = self.container(s, f"n{n}-run{run}")
        try:
            c0 = self.counters()
            b1 = p.burst(n, self.timeout_s(n))
            c1 = self.counters()
            b2 = p.burst(n, self.timeout_s(n))
            c2 = self.counters()
        except BaseException:
            p.kill()
            p.close()
            raise
        rep = p.close()
        return {"subject": s, "n": n, "run": run,
                "bursts": [burst_record(b1, counter_delta(c0[0], c1[0]) | plain_delta(c0[1], c1[1])),
                           burst_record(b2, counter_delta(c1[0], c2[0]) | plain_delta(c1[1], c2[1]))],
                "node_maxrss_kib": rep.get("maxrss_kb")}

    def measure(self, failed: dict) -> list[dict]:
        cfg = self.cfg
        subjects = [s for s in SUBJECTS if s not in failed]
        raw = []
        k = 0
        for run in range(cfg.crowd_runs):
            for n in cfg.crowd_ns:
                order = subjects[k % len(subjects):] + subjects[:k % len(subjects)]  # rotate who goes first
                k += 1
                for s in order:
                    try:
                        rec = self.one(s, n, run)
                    except (BenchError, OSError, ValueError) as e:
                        log(f"crowd {s} N={n} run {run + 1}: failed: {e}")
                        rec = {"subject": s, "n": n, "run": run, "error": str(e)[:300]}
                    raw.append(rec)
                    if "bursts" in rec:
                        b1, b2 = rec["bursts"]
                        log(f"crowd N={n:3} run {run + 1} {s:11}: first p50 {_p(b1, 50)} max {_p(b1, 100)} ms, "
                            f"second p50 {_p(b2, 50)} max {_p(b2, 100)} ms; tokens {b1['counts']['token_requests']}"
                            f"+{b2['counts']['token_requests']}, connections (IMS, API) "
                            f"{b1['counts']['ims_connects']},{b1['counts']['api_connects']}"
                            f"+{b2['counts']['ims_connects']},{b2['counts']['api_connects']}"
                            + (f"; SYNs dropped {b1['counts']['listen_drops']}+{b2['counts']['listen_drops']}"
                               if b1["counts"]["listen_drops"] or b2["counts"]["listen_drops"] else "")
                            + (f"; FAILED {len(b1['failed'])}+{len(b2['failed'])}"
                               if b1["failed"] or b2["failed"] else ""))
                bs = BusyWatch.sample(f"crowd N={n} run {run + 1}")
                if bs["busy"]:
                    log(f"crowd N={n}: machine BUSY, load {bs['load']}")
        return raw

    def close(self) -> dict:
        return self.wan.close()


def plain_delta(before: dict, after: dict) -> dict:
    """after − before, key by key (the link's and the kernel's counters)."""
    return {k: after.get(k, 0) - before.get(k, 0) for k in after}


def _p(b: dict, p: float) -> str:
    ok = ok_samples(b)
    return f"{pct(ok, p):.1f}" if ok else "–"


def ok_samples(b: dict) -> list[float]:
    """A burst's times of the activations that succeeded."""
    bad = set(b.get("failed") or [])
    return [x for i, x in enumerate(b.get("ms") or []) if i not in bad]


def summarize(raw: list[dict], ns: list[int]) -> dict:
    """subject → str(N) → {"first"/"second": {ms (p50 as median, p90, max over every run's
    successful activations), activations, failures, runs, and per run: token_requests,
    connections, tls_handshakes}, "errors", "child_maxrss_kib", "node_maxrss_kib"}. Pure
    (bench/tests)."""
    out = {}
    for s in SUBJECTS:
        recs = [r for r in raw if r.get("subject") == s]
        if not recs:
            continue
        by_n = {}
        for n in ns:
            rn = [r for r in recs if r.get("n") == n]
            ok_runs = [r for r in rn if "bursts" in r]
            e = {"errors": [r["error"] for r in rn if "error" in r]}
            for i, name in enumerate(BURSTS):
                bursts = [r["bursts"][i] for r in ok_runs]
                xs = [x for b in bursts for x in ok_samples(b)]
                e[name] = {"ms": summary(xs), "runs": len(bursts), "activations": sum(len(b["ms"]) for b in bursts),
                           "failures": sum(len(b.get("failed") or []) for b in bursts),
                           **{k: [b["counts"].get(k, 0) for b in bursts] for k in COUNTS}}
            children = [c for r in ok_runs for b in r["bursts"] for c in (b.get("rss_kib") or {}).get("children", [])]
            nodes = [r.get("node_maxrss_kib") for r in ok_runs if r.get("node_maxrss_kib")]
            e["child_maxrss_kib"] = max(children) if children else None
            e["node_maxrss_kib"] = max(nodes) if nodes else None
            by_n[str(n)] = e
        out[s] = by_n
    return out


def _stat(summ: dict, s: str, n: str, burst: str, key: str):
    return ((((summ.get(s) or {}).get(n) or {}).get(burst) or {}).get("ms") or {}).get(key)


def derive(crowd: dict) -> dict:
    """Per N, what the targets judge: ims-action's first-burst p50 and max ÷ the cached Node
    action's, its second-burst p50 in ms, and its IMS token requests per run (both bursts; the
    worst run). Pure (bench/tests)."""
    summ = crowd.get("summary") or {}
    out = {}
    for n in (str(x) for x in crowd.get("ns") or []):
        ours = (summ.get(OURS) or {}).get(n) or {}
        per_run = [a + b for a, b in zip((ours.get("first") or {}).get("token_requests") or [],
                                         (ours.get("second") or {}).get("token_requests") or [])]
        out[n] = {"first_p50_vs_reference": ratio(_stat(summ, OURS, n, "first", "median"),
                                                  _stat(summ, REFERENCE, n, "first", "median")),
                  "first_max_vs_reference": ratio(_stat(summ, OURS, n, "first", "max"),
                                                  _stat(summ, REFERENCE, n, "first", "max")),
                  "second_p50_ms": _stat(summ, OURS, n, "second", "median"),
                  "tokens_per_run": max(per_run) if per_run else None,
                  "failures": sum((ours.get(b) or {}).get("failures", 0) for b in BURSTS)}
    return out


def second_burst_goal_ms(rtt_ms: float) -> float:
    return SECOND_RTTS * rtt_ms + SECOND_PLUS_MS


def crowd_section(cfg, helpers, workdir: Path) -> dict:
    c = Crowd(cfg, helpers, workdir / "crowd")
    t0 = time.monotonic()
    try:
        probe = c.wan.link.probe(c.wan.emu.port).get(c.rtt, {})
        log(f"crowd: link rtt {c.rtt:g} ms: TCP connect median {probe.get('median_ms', float('nan')):.2f} ms")
        failed = c.smoke()
        raw = c.measure(failed)
    finally:
        packets = c.close()
    out = {"rtt_ms": c.rtt, "ns": list(cfg.crowd_ns), "runs": cfg.crowd_runs,
           "link": {"realtime": c.wan.link.realtime, "probe": probe, "packets": packets},
           "failed": failed, "seconds": round(time.monotonic() - t0), "raw": raw,
           "summary": summarize(raw, list(cfg.crowd_ns))}
    out["derived"] = derive(out)
    return out
