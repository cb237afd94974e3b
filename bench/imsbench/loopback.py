"""The sections on loopback against a plain-HTTP emulator, where a round trip costs microseconds:
what is measured there is each side's own overhead. Cold start (process start → result → exit,
token included), the warm ActionLoop against a bare request (information), and token requests
per 1,000 activations."""
from __future__ import annotations

import http.client
import json
import os
import statistics
import tempfile
import time
import urllib.parse
from pathlib import Path

from .errors import BenchError
from .clients import RawHttpClient, StdlibHttpClient
from .emulator import Emulator
from .flows import FLOWS, flow_params, result_ok
from .machine import BusyWatch, log
from .paths import RUN_JS
from .procs import ActionLoop, Alarm, run_once, safe_json, set_affinity
from .stats import add_counts, counter_delta, per_round_ratios, summary

SUBJECTS = {
    "ours": "ims-action (Rust, one-shot)",
    "ours-cached": "ims-action (Rust, one-shot), token from its file store (information)",
    "node-lean": "Node sample, lean (no @adobe/aio-sdk)",
    "node-aio": "Node sample as published (@adobe/aio-sdk)",
}


def subject_env(emu: Emulator, tmpdir: Path | None = None) -> dict[str, str]:
    """What the subjects see: a clean environment (no proxies), like an action container. A
    fresh TMPDIR gives one-shot ims-action an empty token file store: token included."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
           "IMS_ACTION_ALLOW_HOSTS": emu.env.get("IMS_ACTION_ALLOW_HOSTS", "127.0.0.1")}
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return env


def subject_argv(subject: str, flow: dict, params: dict, cfg) -> list[str]:
    pj = json.dumps(params, separators=(",", ":"))
    if subject in ("ours", "ours-cached"):
        return [cfg.ims_action_path, pj]
    action = flow["action"] + ("-lean" if subject == "node-lean" else "")
    return [cfg.node, str(RUN_JS), action, pj]


def fresh_tmp(workdir: Path) -> Path:
    return Path(tempfile.mkdtemp(prefix="tmp-", dir=workdir))


def tmp_for(subject: str, fk: str, workdir: Path) -> Path:
    """ims-action's TMPDIR: empty each run (token included), or one kept per flow for
    "ours-cached", whose token the smoke run leaves in the file store, as the previous
    activation does in a warm dockerskeleton container (one process per activation)."""
    if subject == "ours-cached":
        d = workdir / f"kept-tokens-{fk}"
        d.mkdir(exist_ok=True)
        return d
    return fresh_tmp(workdir)


def smoke(cfg, emu, helpers, workdir: Path) -> dict:
    """One run of every subject; a subject that fails here is reported, not measured."""
    status = {}
    for fk, flow in FLOWS.items():
        params = flow_params(emu.env, flow)
        for s in SUBJECTS:
            r = run_once(helpers, subject_argv(s, flow, params, cfg), subject_env(emu, tmp_for(s, fk, workdir)))
            status[(fk, s)] = r
            log(f"smoke {fk:3} {s:9}: {'ok' if r['ok'] else 'FAILED'} "
                f"{r['wall_ns'] / 1e6:8.1f} ms {r['maxrss_kb'] / 1024:6.1f} MiB")
            if not r["ok"]:
                log(f"   exit={r['exit']} stdout: {r['stdout_tail'].strip()[-200:]!r}")
                log(f"   stderr: {r['stderr_tail'].strip()[-300:]!r}")
    return status


def cold_section(cfg, emu, helpers, smoke_status, workdir: Path) -> dict:
    res = {fk: {s: [] for s in SUBJECTS} for fk in FLOWS}
    fails = {fk: {s: 0 for s in SUBJECTS} for fk in FLOWS}
    counts = {fk: {s: {} for s in SUBJECTS} for fk in FLOWS}
    floor = []
    order = list(SUBJECTS)
    total = cfg.warmup + cfg.rounds
    for rnd in range(total):
        measured = rnd >= cfg.warmup
        for fk, flow in FLOWS.items():
            params = flow_params(emu.env, flow)
            k = rnd % len(order)
            for s in order[k:] + order[:k]:  # rotate who goes first each round
                if not smoke_status[(fk, s)]["ok"]:
                    continue
                reps = cfg.ours_per_round if s.startswith("ours") else 1
                for _ in range(reps):
                    env = subject_env(emu, tmp_for(s, fk, workdir))
                    before = emu.stats()
                    r = run_once(helpers, subject_argv(s, flow, params, cfg), env)
                    delta = counter_delta(before, emu.stats())
                    if not measured:
                        continue
                    if r["ok"]:
                        res[fk][s].append({"round": rnd - cfg.warmup, "ms": r["wall_ns"] / 1e6,
                                           "maxrss_kb": r["maxrss_kb"]})
                        add_counts(counts[fk][s], {"activations": 1, **delta})
                    else:
                        fails[fk][s] += 1
        if measured:
            for _ in range(cfg.ours_per_round):
                r = run_once(helpers, [str(helpers["noop"])], subject_env(emu))
                floor.append({"ms": r["wall_ns"] / 1e6, "maxrss_kb": r["maxrss_kb"]})
        bs = BusyWatch.sample(f"cold round {rnd + 1}")
        log(f"cold round {rnd + 1}/{total}{'' if measured else ' (warm-up)'} load {bs['load']}"
            + (" BUSY" if bs["busy"] else ""))

    out = {"rounds": cfg.rounds, "warmup_rounds": cfg.warmup, "ours_per_round": cfg.ours_per_round,
           "floor": {"wall_ms": summary([f["ms"] for f in floor]),
                     "rss_kib": summary([f["maxrss_kb"] for f in floor])},
           "flows": {}}
    for fk in FLOWS:
        fo = {"subjects": {}, "ratios": {}}
        for s in SUBJECTS:
            runs = res[fk][s]
            fo["subjects"][s] = {"wall_ms": summary([r["ms"] for r in runs]),
                                 "rss_kib": summary([r["maxrss_kb"] for r in runs]),
                                 "failures": fails[fk][s], "counts": counts[fk][s], "samples": runs}
        ours = res[fk]["ours"]
        for s in ("node-aio", "node-lean"):
            peer = res[fk][s]
            if not ours or not peer:
                fo["ratios"][s] = None
                continue
            fo["ratios"][s] = {
                "of_medians": statistics.median([r["ms"] for r in peer]) / statistics.median([r["ms"] for r in ours]),
                "per_round": summary(per_round_ratios(peer, ours))}
        out["flows"][fk] = fo
    return out


def warm_section(cfg, emu, helpers, workdir: Path) -> dict:
    """The old warm figure, kept as information: one ActionLoop ims-action against the same
    request made bare over one keep-alive connection, on loopback."""
    flow = FLOWS["s2s"]
    params = flow_params(emu.env, flow)
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
                log(f"loopback warm {mode}: ours {o['lat_us']['median']:.1f} µs, bare {bare['lat_us']['median']:.1f} µs "
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
    params = flow_params(emu.env, flow)
    fo = {}
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
    d = counter_delta(before, emu.stats())
    fo["ours"] = {**d, "ok": okc, "per_1000": d["token_requests"] * 1000 / n,
                  "lat_us": summary(lats), "rss_kib": rep["maxrss_kb"]}
    before = emu.stats()
    r = run_once(helpers, [cfg.node, str(RUN_JS), flow["action"], json.dumps(params), "--repeat", str(n_peer)],
                 subject_env(emu), timeout_ms=900_000)
    d = counter_delta(before, emu.stats())
    res = r["result"] if isinstance(r["result"], dict) else {}
    fo["node-aio"] = {**d, "ok": res.get("ok", 0), "per_1000": d["token_requests"] * 1000 / n_peer,
                      "lat_us": summary(res.get("lat_us", [])), "rss_kib": r["maxrss_kb"],
                      "wall_s": r["wall_ns"] / 1e9}
    log(f"tokens {fk}: ours {fo['ours']['token_requests']} per {n} activations, "
        f"node {fo['node-aio']['token_requests']} per {n_peer}")
    return fo
