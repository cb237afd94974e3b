"""The section a user would recognise: every subject over HTTPS through a delay line, at several
round-trip times, side by side in one run, each beside the physical limit measured the same way.

- The link: bench/delay_line.c in a network namespace; every packet (SYN and ACK included)
  waits RTT/2 per direction. IMS and the API of each RTT have addresses of their own.
- The servers: one adobe-emulator serving HTTPS with a throwaway CA, trusted by the action
  through SSL_CERT_FILE, by Node through NODE_EXTRA_CA_CERTS, by the limit clients as a cafile.
- Cold: one process per activation, token included (ims-action one-shot with an empty token
  file store; Adobe's sample, as published and lean; the App Builder launcher in a new Node
  process); the limits are in-process clients opening new connections.
- Warm: many activations in one long-lived process (ims-action's ActionLoop; the App Builder
  launcher under a warm Node; Adobe's sample warm; a careful Node action with a token cache and
  keep-alive); the limit is the API request on an open TLS connection.
- Counters: the emulator's token requests, TCP connections and TLS handshakes around every
  cold run and every warm block.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from .errors import BenchError
from .clients import ColdLimit, TlsDialer, WarmLimit
from .emulator import Emulator
from .flows import FLOWS, flow_params, result_ok
from .machine import BusyWatch, log
from .netns import LOCAL_IP, DelayLine
from . import launcher
from .paths import LOOP_JS, RUN_JS
from .procs import ActionLoop, Alarm, run_once, safe_json
from .stats import add_counts, counter_delta, per_activation, ratio, summary

COLD = {
    "limit6": "limit: per host new TCP + TLS 1.3 + request, IMS then API",
    "limit4": "limit, the API's connection opened while the token is fetched",
    "ours": "ims-action, one-shot (Rust)",
    "appbuilder": "App Builder route: Node launcher + ims-action, new Node process",
    "node-lean": "Adobe's sample, lean (no @adobe/aio-sdk)",
    "node-aio": "Adobe's sample as published (@adobe/aio-sdk)",
}
WARM = {
    "limit": "limit: the API request on an open TLS connection",
    "ours": "ims-action, ActionLoop",
    "appbuilder": "App Builder route: Node launcher + ims-action, warm",
    "node-cached": "Node with a 5-minute token cache and keep-alive",
    "node-aio": "Adobe's sample, warm in one Node process",
}
# The limit each subject is held against, and the Node peers it is compared with.
LIMIT_OF = {"cold": "limit6", "warm": "limit"}
# The cold limit of a client that opens the API's connection while the token is fetched, as
# ims-action does: its cold row is held against this one too.
CONCURRENT_LIMIT = "limit4"
PEERS = {"cold": ["node-aio", "node-lean"], "warm": ["node-aio", "node-cached"]}
CHEAP_COLD = ("ours", "limit6", "limit4")  # fast enough to run several times per round


def rtt_key(rtt: float) -> str:
    return f"{rtt:g}"


class WarmProcess:
    """A long-lived subject driven with the ActionLoop protocol: one activation = one line."""

    def __init__(self, helpers, argv, env, params, log_path):
        self.loop = ActionLoop(helpers, argv, env, log_path)
        self.head, self.tail = ActionLoop.activation_bytes(params)

    def activate(self) -> tuple[int, bool]:
        ns, line = self.loop.activate(self.head, self.tail)
        return ns, result_ok(safe_json(line))

    def close(self) -> dict:
        return self.loop.close()

    def kill(self) -> None:
        self.loop.kill()


class Wan:
    def __init__(self, cfg, helpers, workdir: Path):
        self.cfg, self.helpers, self.workdir = cfg, helpers, workdir
        self.link = DelayLine(helpers["delay_line"], cfg.rtts, workdir / "delay_line.log")
        try:
            self.emu = Emulator(cfg.emulator_path, workdir, cfg.emulator_log, listen=f"{LOCAL_IP}:0",
                                tls_names=[LOCAL_IP, *self.link.addresses()], name="wan-emulator")
        except BaseException:
            self.link.stop()
            raise
        port = self.emu.port
        self.env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
                    "IMS_ACTION_ALLOW_HOSTS": ",".join(f"{ip}:{port}" for ip in self.link.addresses()),
                    "SSL_CERT_FILE": str(self.emu.ca_path), "NODE_EXTRA_CA_CERTS": str(self.emu.ca_path)}
        self.params = {rtt: flow_params(self.emu.env, FLOWS["s2s"],
                                        IMS_BASE_URL=f"https://{hosts['ims']}:{port}",
                                        AEM_DATA_SERVICE_BASE_URL=f"https://{hosts['api']}:{port}")
                       for rtt, hosts in self.link.plan.items()}
        self.dialer = TlsDialer(self.emu.ca_path)
        # The App Builder route: the launcher, the binary and a seal binding each RTT's params to
        # an action of its own (the binary refuses unsealed inputs behind the launcher).
        self.action_names = {rtt: f"aem-quota-rtt{rtt_key(rtt)}" for rtt in self.params}
        try:
            self.launcher = launcher.stage(cfg.ims_action_path,
                                           {self.action_names[r]: p for r, p in self.params.items()},
                                           workdir / "launcher")
        except BaseException:
            self.close()
            raise

    def appbuilder_env(self, rtt: float) -> dict:
        """The Node process's environment: the runtime stand-in names the activation's action."""
        return dict(self.env, **{launcher.ACTION_NAME_ENV: f"/guest/bench/{self.action_names[rtt]}"})

    def close(self) -> dict:
        """Stops the emulator and the link; returns the link's packet counts."""
        self.emu.stop()
        return self.link.stop()

    # ---- cold ------------------------------------------------------------------------------

    def cold_argv(self, s: str, params: dict) -> list[str]:
        pj = json.dumps(params, separators=(",", ":"))
        cfg = self.cfg
        return {"ours": [cfg.ims_action_path, pj],
                "appbuilder": [cfg.node, str(RUN_JS), str(self.launcher), pj],
                "node-lean": [cfg.node, str(RUN_JS), "oauth-s2s-aem-lean", pj],
                "node-aio": [cfg.node, str(RUN_JS), "oauth-s2s-aem", pj]}[s]

    def cold_once(self, s: str, rtt: float) -> tuple[float, bool, str]:
        """One cold activation: (ms, ok, what went wrong)."""
        params = self.params[rtt]
        if s in ("limit6", "limit4"):
            try:
                ns, ok = ColdLimit(self.dialer, params, overlap=s == "limit4").run()
                return ns / 1e6, ok, "" if ok else "not 200"
            except OSError as e:
                return float("nan"), False, str(e)
        env = self.appbuilder_env(rtt) if s == "appbuilder" else dict(self.env)
        if s == "ours":  # an empty token file store: the token is part of the activation
            env["TMPDIR"] = tempfile.mkdtemp(prefix="tmp-", dir=self.workdir)
        r = run_once(self.helpers, self.cold_argv(s, params), env)
        why = "" if r["ok"] else f"exit {r['exit']}: {r['stdout_tail'].strip()[-160:]!r} {r['stderr_tail'].strip()[-160:]!r}"
        return r["wall_ns"] / 1e6, r["ok"], why

    # ---- warm ------------------------------------------------------------------------------

    def warm_session(self, s: str, rtt: float):
        params = self.params[rtt]
        if s == "limit":
            return WarmLimit(self.dialer, params)
        cfg = self.cfg
        argv = {"ours": [cfg.ims_action_path],
                "appbuilder": [cfg.node, str(LOOP_JS), str(self.launcher)],
                "node-cached": [cfg.node, str(LOOP_JS), "oauth-s2s-aem-cached"],
                "node-aio": [cfg.node, str(LOOP_JS), "oauth-s2s-aem"]}[s]
        env = self.appbuilder_env(rtt) if s == "appbuilder" else self.env
        return WarmProcess(self.helpers, argv, env, params, self.workdir / f"warm-{s}-{rtt_key(rtt)}.log")

    # ---- the run ---------------------------------------------------------------------------

    def smoke(self) -> dict:
        """Every subject once at every RTT; one that fails anywhere is left out, and said so."""
        status = {}
        for rtt in self.cfg.rtts:
            for s in COLD:
                ms, ok, why = self.cold_once(s, rtt)
                status.setdefault(("cold", s), []).append(why if not ok else "")
                log(f"wan smoke cold {s:10} rtt {rtt_key(rtt):>3}: {'ok' if ok else 'FAILED ' + why} {ms:8.1f} ms")
            for s in WARM:
                try:
                    sess = self.warm_session(s, rtt)
                    ns, ok = sess.activate()
                    sess.close()
                    why = "" if ok else "the activation failed (see its log)"
                except (BenchError, OSError) as e:
                    ns, ok, why = 0, False, str(e)
                status.setdefault(("warm", s), []).append(why)
                log(f"wan smoke warm {s:10} rtt {rtt_key(rtt):>3}: {'ok' if ok else 'FAILED ' + why} {ns / 1e6:8.1f} ms")
        return {k: next((w for w in v if w), "") for k, v in status.items()}

    def cold(self, failed: dict) -> dict:
        cfg = self.cfg
        subjects = [s for s in COLD if not failed.get(("cold", s))]
        samples = {(s, r): [] for s in subjects for r in cfg.rtts}
        counts = {(s, r): {} for s in subjects for r in cfg.rtts}
        fails = {(s, r): 0 for s in subjects for r in cfg.rtts}
        total = cfg.wan_cold_warmup + cfg.wan_cold_rounds
        for rnd in range(total):
            measured = rnd >= cfg.wan_cold_warmup
            k = rnd % len(subjects)
            order = subjects[k:] + subjects[:k]
            j = rnd % len(cfg.rtts)
            for rtt in cfg.rtts[j:] + cfg.rtts[:j]:
                for s in order:
                    for _ in range(cfg.wan_cold_reps if s in CHEAP_COLD else 1):
                        before = self.emu.stats()
                        ms, ok, why = self.cold_once(s, rtt)
                        delta = counter_delta(before, self.emu.stats())
                        if not measured:
                            continue
                        if ok:
                            samples[(s, rtt)].append({"round": rnd - cfg.wan_cold_warmup, "ms": ms})
                            add_counts(counts[(s, rtt)], {"activations": 1, **delta})
                        else:
                            fails[(s, rtt)] += 1
                            log(f"wan cold {s} rtt {rtt_key(rtt)}: failed: {why}")
            bs = BusyWatch.sample(f"wan cold round {rnd + 1}")
            log(f"wan cold round {rnd + 1}/{total}{'' if measured else ' (warm-up)'} load {bs['load']}"
                + (" BUSY" if bs["busy"] else ""))
        return {s: {rtt_key(r): entry(samples[(s, r)], counts[(s, r)], fails[(s, r)]) for r in cfg.rtts}
                for s in subjects}

    def warm(self, failed: dict) -> dict:
        cfg = self.cfg
        subjects = [s for s in WARM if not failed.get(("warm", s))]
        out = {s: {} for s in subjects}
        rss = {s: {} for s in subjects}
        for rtt in cfg.rtts:
            sessions = {}
            lat = {s: [] for s in subjects}
            counts = {s: {} for s in subjects}
            fails = {s: 0 for s in subjects}
            try:
                with Alarm(max(600.0, 20 * cfg.wan_warm_blocks * cfg.wan_warm_block * (rtt / 1000 + 0.05))):
                    for s in subjects:
                        sessions[s] = self.warm_session(s, rtt)
                        for _ in range(cfg.wan_warm_warmup):
                            _, ok = sessions[s].activate()
                            if not ok:
                                raise BenchError(f"wan warm {s} rtt {rtt_key(rtt)}: a warm-up activation failed")
                    for bi in range(cfg.wan_warm_blocks):
                        k = bi % len(subjects)
                        for s in subjects[k:] + subjects[:k]:  # rotate who goes first
                            before = self.emu.stats()
                            for _ in range(cfg.wan_warm_block):
                                ns, ok = sessions[s].activate()
                                if ok:
                                    lat[s].append({"round": bi, "ms": ns / 1e6})
                                else:
                                    fails[s] += 1
                            add_counts(counts[s], {"activations": cfg.wan_warm_block,
                                                   **counter_delta(before, self.emu.stats())})
            finally:
                for s, sess in sessions.items():
                    try:
                        rep = sess.close()
                        if isinstance(rep, dict):
                            rss[s][rtt_key(rtt)] = rep.get("maxrss_kb")
                    except (BenchError, OSError):
                        if hasattr(sess, "kill"):
                            sess.kill()
            for s in subjects:
                out[s][rtt_key(rtt)] = entry(lat[s], counts[s], fails[s])
                out[s][rtt_key(rtt)]["rss_kib"] = rss[s].get(rtt_key(rtt))
            med = {s: (out[s][rtt_key(rtt)]["ms"] or {}).get("median") for s in subjects}
            log(f"wan warm rtt {rtt_key(rtt)}: " + ", ".join(f"{s} {m:.2f} ms" for s, m in med.items() if m))
            BusyWatch.sample(f"wan warm rtt {rtt_key(rtt)}")
        return out


def entry(samples: list[dict], counts: dict, failures: int) -> dict:
    n = counts.get("activations", 0)
    return {"ms": summary([x["ms"] for x in samples]), "samples_ms": [round(x["ms"], 3) for x in samples],
            "failures": failures,
            "counts": counts, "per_activation": per_activation({k: v for k, v in counts.items() if k != "activations"}, n)}


def wan_section(cfg, helpers, workdir: Path) -> dict:
    wan = Wan(cfg, helpers, workdir)
    try:
        probe = wan.link.probe(wan.emu.port)
        for rtt, p in probe.items():
            log(f"link rtt {rtt_key(rtt)} ms: TCP connect median {p['median_ms']:.2f} ms")
        status = wan.smoke()
        failed = {k: why for k, why in status.items() if why}
        t0 = time.monotonic()
        cold = wan.cold(failed)
        t1 = time.monotonic()
        warm = wan.warm(failed)
        t2 = time.monotonic()
    finally:
        packets = wan.close()
    out = {"rtts": [rtt_key(r) for r in cfg.rtts],
           "link": {"realtime": wan.link.realtime, "probe": {rtt_key(r): p for r, p in probe.items()},
                    "packets": packets},
           "config": {"cold_rounds": cfg.wan_cold_rounds, "cold_warmup": cfg.wan_cold_warmup,
                      "cold_reps": cfg.wan_cold_reps, "warm_blocks": cfg.wan_warm_blocks,
                      "warm_block": cfg.wan_warm_block, "warm_warmup": cfg.wan_warm_warmup,
                      "cold_s": round(t1 - t0), "warm_s": round(t2 - t1)},
           "failed": {f"{m}/{s}": why for (m, s), why in failed.items()},
           "cold": cold, "warm": warm}
    out["derived"] = derive(out)
    return out


def derive(wan: dict) -> dict:
    """From the summaries: each subject's median ÷ its limit's median (cold: ÷ the concurrent
    limit's too), and ÷ each Node peer's, per mode and RTT. Pure (bench/tests)."""
    out = {}
    for mode in ("cold", "warm"):
        subjects = wan.get(mode, {})
        limit = subjects.get(LIMIT_OF[mode], {})
        dm = {}
        for s, by_rtt in subjects.items():
            ds = {}
            for rk, e in by_rtt.items():
                med = (e.get("ms") or {}).get("median")
                lim = ((limit.get(rk) or {}).get("ms") or {}).get("median")
                d = {"vs_limit": ratio(med, lim)}
                if mode == "cold":
                    con = (((subjects.get(CONCURRENT_LIMIT) or {}).get(rk) or {}).get("ms") or {}).get("median")
                    d["vs_concurrent_limit"] = ratio(med, con)
                for p in PEERS[mode]:
                    pm = (((subjects.get(p) or {}).get(rk) or {}).get("ms") or {}).get("median")
                    d[f"{p}_vs"] = ratio(pm, med)  # how many times the peer's time
                ds[rk] = d
            dm[s] = ds
        out[mode] = dm
    return out
