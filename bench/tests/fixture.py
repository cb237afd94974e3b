"""A small but complete results dict, shaped like bench/results.json, for the rendering tests."""
import copy

from imsbench.stats import summary
from imsbench.wan import derive


def _entry(ms: list[float], tokens=1, conns=2, hs=2, resumed=0):
    n = len(ms)
    counts = {"activations": n, "token_requests": tokens * n, "api_requests": n, "tokens_issued": tokens * n,
              "connections": conns * n, "tls_handshakes": hs * n, "tls_resumed": resumed * n}
    return {"ms": summary(ms), "samples_ms": ms, "failures": 0,
            "counts": counts,
            "per_activation": {k: v / n for k, v in counts.items() if k != "activations"}}


def _cold(base: float, rtt: float, rtts: float):
    return [base + rtts * rtt + d for d in (0.0, 0.5, 1.0, 2.0)]


def wan(warm_ours_at_50=50.6):
    rtts = [0.0, 10.0, 50.0]
    cold_def = {"limit6": (3.0, 6), "limit4": (2.5, 4), "ours": (4.0, 6), "appbuilder": (60.0, 6),
                "node-lean": (55.0, 7), "node-aio": (600.0, 7)}
    warm_def = {"limit": (0.08, 1), "ours": (0.17, 1), "appbuilder": (0.4, 1), "node-cached": (1.0, 1),
                "node-aio": (3.9, 2)}
    out = {"rtts": ["0", "10", "50"],
           "link": {"realtime": True, "probe": {f"{r:g}": {"median_ms": r + 0.2, "min_ms": r + 0.1,
                                                           "max_ms": r + 3, "n": 15} for r in rtts},
                    "packets": {"forwarded": 1000, "dropped": 0, "late": 3}},
           "config": {"cold_rounds": 4, "cold_warmup": 1, "cold_reps": 3, "warm_blocks": 2, "warm_block": 2,
                      "warm_warmup": 3, "cold_s": 100, "warm_s": 70},
           "failed": {}, "cold": {}, "warm": {}}
    for s, (base, k) in cold_def.items():
        out["cold"][s] = {f"{r:g}": _entry(_cold(base, r, k)) for r in rtts}
    for s, (base, k) in warm_def.items():
        tokens = 1 if s == "node-aio" else 0
        out["warm"][s] = {f"{r:g}": _entry(_cold(base, r, k), tokens=tokens, conns=0, hs=0) for r in rtts}
    ours = out["warm"]["ours"]["50"]
    ours["ms"] = summary([warm_ours_at_50] * 4)
    out["derived"] = derive(out)
    return out


def results(**kw):
    flows = {}
    for fk in ("s2s", "jwt"):
        subjects = {}
        for s, base in (("ours", 1.0), ("node-lean", 60.0), ("node-aio", 600.0)):
            ms = [base, base * 1.1, base * 0.9]
            subjects[s] = {"wall_ms": summary(ms), "rss_kib": summary([2300, 2400]), "failures": 0,
                           "counts": {"activations": 3, "token_requests": 3},
                           "samples": [{"round": i, "ms": x} for i, x in enumerate(ms)]}
        flows[fk] = {"subjects": subjects,
                     "ratios": {"node-aio": {"of_medians": 600.0, "per_round": summary([590, 600, 610])},
                                "node-lean": {"of_medians": 60.0, "per_round": summary([59, 60, 61])}}}
    kinds = {k: {"lat_us": summary([v, v * 1.1]), "per_s": 1e6 / v, "failures": 0}
             for k, v in (("ours", 68.0), ("bare", 16.0), ("httpclient", 68.0), ("echo", 3.2))}
    res = {
        "quick": False,
        "machine": {"cores": 2, "cpu_model": "Test CPU", "mem_gib": 8.0, "kernel": "6.0", "date_utc": "2026-01-01 00:00 UTC",
                    "commit": "abc1234", "node": "v20", "python": "3.11", "rustc": "rustc 1.95"},
        "peer_versions": {"@adobe/aio-sdk": "6.0.0"},
        "busy": {"samples": 5, "busy_samples": 0, "busy_labels": [], "busy_examples": [], "load1_max": 0.5,
                 "load_start": "0.1 0.1 0.1", "load_end": "0.2 0.1 0.1"},
        "wan": wan(**kw),
        "cold": {"rounds": 3, "warmup_rounds": 1, "ours_per_round": 5, "flows": flows,
                 "floor": {"wall_ms": summary([0.7, 0.8]), "rss_kib": summary([600, 610])}},
        "warm": {"blocks": 2, "block_size": 2, "warmup": 2, "primary": "one-core", "actionloop_rss_kib": 2200,
                 "actionloop_exit": 0, "actionloop_activations": 10, "ratio_median": 4.2, "ratio_p99": 2.8,
                 "ratio_rate": 4.0,
                 "modes": {"one-core": {"cpus": [1], "kinds": copy.deepcopy(kinds), "ratio_median": 4.2,
                                        "ratio_p99": 2.8, "ratio_rate": 4.0, "protocol_floor_us": 19.2,
                                        "ratio_vs_protocol_floor": 3.5, "best_possible_ratio": 1.2}}},
        "tokens": {"activations": 1000, "peer_activations": 1000,
                   "flows": {fk: {"ours": {"per_1000": 1, "ok": 1000, "rss_kib": 2100, "lat_us": summary([60.0])},
                                  "node-aio": {"per_1000": 1000, "ok": 1000, "lat_us": summary([766.0])}}
                             for fk in ("s2s", "jwt")}},
        "sizes": {"binary": {"path": "dist/ims-action", "bytes": 2_470_000, "stripped_bytes": 2_470_000,
                             "elf64": True, "stripped": True, "static": True},
                  "zip": {"path": "dist/ims-action.zip", "bytes": 1_300_000}, "node_modules_bytes": 132 * 2**20},
        "store": store(),
        "release": release(),
        "crowd": crowd(),
    }
    return res


def store_run(adobe_state_loop_tokens=1, redis_hit_ms=6.6, memory_hit_ms=5.3):
    """One document as examples/store-bench.rs prints it (20 containers × 50 activations)."""
    def burst(tokens_one, tokens_loop, store_reqs):
        return {"one_shot": {"containers": 20, "ok": 20, "token_requests": tokens_one, "store_requests": store_reqs,
                             "wall_ms": 368.8},
                "actionloop": {"containers": 20, "activations": 1000, "ok": 1000, "token_requests": tokens_loop,
                               "store_requests_cold": store_reqs, "store_requests_per_warm_activation": 0.0}}

    def hit(ms, reqs, shared=True):
        return {"from": "the shared store (cold TMPDIR)" if shared else "the container's own file", "samples": 30,
                "median_ms": ms, "p90_ms": ms + 3, "token_requests": 1, "store_requests_per_activation": reqs}

    def fail(ms, added):
        return {"samples": 15, "ok": 15, "median_ms": ms, "p90_ms": ms + 5, "max_ms": ms + 10,
                "added_median_ms": added, "token_requests": 15}
    return {"binary": "dist/ims-action", "ims_latency_ms": 300, "state_latency_ms": 20,
            "cold_burst": {"memory": burst(20, 20, 0), "redis": burst(1, 1, 216),
                           "adobe-state": burst(1, adobe_state_loop_tokens, 217),
                           "adobe-state+20ms": burst(1, 1, 206)},
            "warm_hit_one_shot": {"memory": hit(memory_hit_ms, 0.0, shared=False), "redis": hit(redis_hit_ms, 1.19),
                                  "adobe-state": hit(6.7, 1.23), "adobe-state+20ms": hit(29.5, 1.23)},
            "failing_store": {"none": fail(5.8, 0.0), "redis refused": fail(6.5, 0.7), "redis hung": fail(191.0, 185.2),
                              "adobe-state 503": fail(100.5, 94.7), "adobe-state hung": fail(192.0, 186.3)}}


def store():
    from imsbench.store import summarize
    runs = [store_run(), store_run(adobe_state_loop_tokens=2, redis_hit_ms=7.0, memory_hit_ms=5.5)]
    return {"config": {"runs": 2, "containers": 20, "activations": 50, "samples": 30, "ims_latency_ms": 300,
                       "state_latency_ms": 20, "seconds": 30},
            "runs": runs, "summary": summarize(runs)}


def release(before_ms=1.2, after_ms=1.5, wan=True):
    from imsbench.release import compare
    def measured(a, b):
        return {"samples": {"before": [{"round": i, "ms": a + i * 0.01, "maxrss_kb": 2100, "token_requests": 1}
                                       for i in range(10)],
                            "after": [{"round": i, "ms": b + i * 0.01, "maxrss_kb": 3400, "token_requests": 1}
                                      for i in range(10)]},
                "failures": {"before": 0, "after": 0}, "token_count_off": {"before": 0, "after": 0}}
    size = {"elf64": True, "stripped": True, "static": True, "interp": False, "needed": 0}
    out = {"before": {"path": "/x/before", "source": "built from git cf51052 (its scripts/build-static.sh)",
                      "why": None, "commit": {"commit": "cf51052" + "0" * 33, "short": "cf51052",
                                              "date": "2026-11-22", "subject": "Parsed-key cache"}},
           "after": {"path": "/x/after"}, "config": {"pairs": 10, "wan_pairs": 10, "warmup": 1},
           "sizes": {"before": {"path": "/x/before", "bytes": 2_466_760, "stripped_bytes": 2_466_760, **size},
                     "after": {"path": "dist/ims-action", "bytes": 2_946_184, "stripped_bytes": 2_946_184, **size}},
           "loopback": compare(measured(before_ms, after_ms)),
           "loopback_jwt": compare(measured(before_ms * 2, after_ms * 2))}
    if wan:
        out["wan"] = compare(measured(308.0, 309.0)) | {"rtt_ms": 50.0}
    return out


def crowd_record(subject, n, run, first_ms, second_ms, tokens=(1, 0), conns=(2, 0), failed=((), ()), child_kib=None,
                 drops=(0, 0)):
    """One container of the crowd section as results.json keeps it: two bursts of n."""
    def burst(base, i):
        ms = [base + k for k in range(n)]
        counts = {"token_requests": tokens[i], "connections": conns[i], "tls_handshakes": conns[i],
                  "api_requests": n, "tls_resumed": 0, "listen_drops": drops[i], "syn_retransmits": drops[i],
                  "ims_connects": conns[i] // 2, "api_connects": conns[i] - conns[i] // 2}
        rss = {"self": 40_000, "children": [child_kib] if child_kib else []}
        return {"ms": ms, "failed": list(failed[i]), "issued_ms": 0.1, "errors": [], "counts": counts, "rss_kib": rss}
    return {"subject": subject, "n": n, "run": run, "bursts": [burst(first_ms, 0), burst(second_ms, 1)],
            "node_maxrss_kib": 45_000}


def crowd_raw(ours_second_at_200=4000.0):
    """N = 1, 10, 200, two containers each: ims-action via the launcher a little faster than the
    cached Node action in the first burst, queued in the second (as with the launcher of issue 18)."""
    raw = []
    for run in range(2):
        for n in (1, 10, 200):
            raw.append(crowd_record("appbuilder", n, run, 200.0, 51.0 if n < 200 else ours_second_at_200,
                                    child_kib=3_800 + n))
            raw.append(crowd_record("node-aio", n, run, 350.0, 110.0, tokens=(n, n), conns=(2 * n, 0)))
            raw.append(crowd_record("node-cached", n, run, 300.0, 55.0, tokens=(n, 0), conns=(2 * n, 0),
                                    drops=(72, 0) if n == 200 else (0, 0)))
    return raw


def crowd(**kw):
    from imsbench.crowd import derive, summarize
    raw = crowd_raw(**kw)
    out = {"rtt_ms": 50.0, "ns": [1, 10, 200], "runs": 2,
           "link": {"realtime": True, "probe": {"median_ms": 50.3, "min_ms": 50.1, "max_ms": 52.0, "n": 15},
                    "packets": {"forwarded": 100, "dropped": 0, "late": 0}},
           "failed": {}, "seconds": 60, "raw": raw, "summary": summarize(raw, [1, 10, 200])}
    out["derived"] = derive(out)
    return out
