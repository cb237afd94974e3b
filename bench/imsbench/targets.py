"""The goals tracked in BENCHMARKS.md and their verdicts: PASS, or MISS and by how much."""
from __future__ import annotations

import math

from .crowd import OURS as CROWD_OURS, second_burst_goal_ms
from .flows import FLOWS
from .paths import MIB
from .release import PARTS
from .wan import rtt_key

# kind "min": measured must be >= goal; "max": measured must be <= goal.
GOALS = {
    "wan_warm_vs_limit": 1.02, "wan_cold_vs_limit": 1.05, "wan_cold_vs_concurrent_limit": 1.05,
    "wan_appbuilder_warm_vs_limit": 1.1,
    "cold_aio_s2s": 300.0, "cold_aio_jwt": 100.0, "cold_lean": 60.0,
    "rss_mib": 5.0, "binary_mib": 3.0, "tokens_per_1000": 1.0,
    "release_cold_vs_before": 1.05, "store_redis_token_requests": 1.0, "store_failing_added_ms": 200.0,
    "crowd_first_p50_vs_cached": 1.1, "crowd_first_max_vs_cached": 1.25, "crowd_tokens_per_run": 1.0,
    "crowd_binary_rss_mib": 32.0,
}
TARGET_RTT_MS = 50.0


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
        how = f"{(measured / goal - 1) * 100:.1f} % over" if goal > 0 else f"{measured:g} over"
    return {"status": "MISS", "text": f"**MISS** by {how} ({m} vs {g})"}


def target_rtt(wan: dict) -> str | None:
    """The RTT the WAN targets are judged at: 50 ms, or the largest measured."""
    rtts = wan.get("rtts") or []
    if not rtts:
        return None
    want = rtt_key(TARGET_RTT_MS)
    return want if want in rtts else max(rtts, key=float)


def targets(res: dict) -> list[dict]:
    rows = []
    wan = res.get("wan") or {}
    rk = target_rtt(wan)
    d = wan.get("derived", {})

    def vs_limit(mode, s, which="vs_limit"):
        return ((d.get(mode, {}).get(s) or {}).get(rk) or {}).get(which) if rk else None

    at = f" at {rk} ms RTT" if rk else ""
    rows.append((f"Warm activation{at}, ims-action ActionLoop ÷ the warm limit", vs_limit("warm", "ours"),
                 GOALS["wan_warm_vs_limit"], "max", "×", "{:.3f}"))
    rows.append((f"Cold activation{at}, ims-action one-shot ÷ the cold limit", vs_limit("cold", "ours"),
                 GOALS["wan_cold_vs_limit"], "max", "×", "{:.3f}"))
    rows.append((f"Cold activation{at}, ims-action one-shot ÷ the concurrent limit (the API's connection opened "
                 "while the token is fetched)", vs_limit("cold", "ours", "vs_concurrent_limit"),
                 GOALS["wan_cold_vs_concurrent_limit"], "max", "×", "{:.3f}"))
    rows.append((f"Warm activation{at}, App Builder route ÷ the warm limit", vs_limit("warm", "appbuilder"),
                 GOALS["wan_appbuilder_warm_vs_limit"], "max", "×", "{:.3f}"))

    cold = res.get("cold", {}).get("flows", {})

    def ratio(fk, s):
        r = cold.get(fk, {}).get("ratios", {}).get(s)
        return r["of_medians"] if r else None

    rows.append(("Process overhead (loopback), OAuth S2S: Adobe sample ÷ ims-action", ratio("s2s", "node-aio"),
                 GOALS["cold_aio_s2s"], "min", "×"))
    rows.append(("Process overhead (loopback), JWT: Adobe sample ÷ ims-action", ratio("jwt", "node-aio"),
                 GOALS["cold_aio_jwt"], "min", "×"))
    rows.append(("Process overhead (loopback), OAuth S2S: lean Node ÷ ims-action", ratio("s2s", "node-lean"),
                 GOALS["cold_lean"], "min", "×"))
    rows.append(("Process overhead (loopback), JWT: lean Node ÷ ims-action", ratio("jwt", "node-lean"),
                 GOALS["cold_lean"], "min", "×"))
    rss = []
    for fk in cold:
        s = cold[fk]["subjects"]["ours"]["rss_kib"]
        if s:
            rss.append(s["max"])
    warm = res.get("warm")
    if warm:
        rss.append(warm["actionloop_rss_kib"])
    for fo in res.get("tokens", {}).get("flows", {}).values():
        rss.append(fo["ours"]["rss_kib"])
    for by_rtt in (wan.get("warm", {}).get("ours") or {}).values():
        if by_rtt.get("rss_kib"):
            rss.append(by_rtt["rss_kib"])
    rows.append(("Peak RSS of any ims-action process (max of all runs)", max(rss) / 1024 if rss else None,
                 GOALS["rss_mib"], "max", " MiB"))
    b = res.get("sizes", {}).get("binary")
    rows.append(("Stripped static binary", b["stripped_bytes"] / MIB if b else None, GOALS["binary_mib"], "max", " MiB"))
    for fk, fo in res.get("tokens", {}).get("flows", {}).items():
        rows.append((f"Token requests per 1,000 warm activations, {FLOWS[fk]['short']}", fo["ours"]["per_1000"],
                     GOALS["tokens_per_1000"], "max", "", "{:.4g}"))
    rows += release_rows(res.get("release"))
    rows += store_rows(res.get("store"))
    rows += crowd_rows(res.get("crowd"))
    out = []
    for row in rows:
        name, m, goal, kind, unit = row[:5]
        fmt = row[5] if len(row) > 5 else "{:.3g}"
        v = verdict(m, goal, kind, unit, fmt)
        extra = row[6] if len(row) > 6 else ""
        if b and name.startswith("Stripped") and not (b.get("stripped") and b.get("static")):
            extra = " — note: the built file is " + ", ".join(
                x for x in (("not stripped" if not b.get("stripped") else ""),
                            ("not static" if not b.get("static") else "")) if x)
        out.append({"target": name, "measured": m, "goal": goal, "kind": kind, **v, "note": extra})
    return out


def release_rows(rel: dict | None) -> list[tuple]:
    """Cold start against the release before, per part: loopback (both flows) and 50 ms RTT
    (issue 11: within 5 %)."""
    rel = rel or {}
    commit = ((rel.get("before") or {}).get("commit") or {}).get("short", "the release before")
    why = (rel.get("before") or {}).get("why")
    rows = []
    for part, (where, flow) in PARTS.items():
        r = (rel.get(part) or {}).get("ratio")
        err = rel.get(f"{part}_error")
        note = f" — {why}" if why else (f" — {err}" if err else "")
        rows.append((f"Cold start, this release ÷ the one before ({commit}), {flow}, {where}", r,
                     GOALS["release_cold_vs_before"], "max", "×", "{:.3f}", note))
    return rows


def _worst(xs: list | None):
    """The largest of the runs' counts: every run must meet the goal."""
    xs = [x for x in (xs or []) if x is not None]
    return max(xs) if xs else None


def store_rows(st: dict | None) -> list[tuple]:
    """Issue 12: one IMS token request per burst with Redis; a failing store adds at most 200 ms."""
    summ = (st or {}).get("summary") or {}
    redis = (summ.get("stores") or {}).get("redis")
    note = " — redis-server is not installed" if summ.get("redis_missing") else ""
    rows = []
    one = (redis or {}).get("one_shot") or {}
    loop = (redis or {}).get("actionloop") or {}
    rows.append((f"Redis store: IMS token requests for {one.get('containers') or 'N'} cold one-shot containers "
                 "started together (worst run)", _worst(one.get("token_requests")),
                 GOALS["store_redis_token_requests"], "max", "", "{:g}", note))
    acts = loop.get("activations")
    rows.append((f"Redis store: IMS token requests for {f'{acts:,}' if acts else 'N'} activations over "
                 f"{loop.get('containers') or 'N'} actionloop containers started together (worst run)",
                 _worst(loop.get("token_requests")), GOALS["store_redis_token_requests"], "max", "", "{:g}", note))
    rows.append(("A failing store (refused, hung, 503): time added to a cold activation (worst median)",
                 summ.get("failing_worst_added_ms"), GOALS["store_failing_added_ms"], "max", " ms", "{:.0f}"))
    return rows


def _worst_n(derived: dict, key: str):
    """The largest value of `key` over the N measured (every N must meet the goal), and that N;
    None for the N when every N scored the same."""
    xs = [(v[key], n) for n, v in derived.items() if v.get(key) is not None]
    if not xs:
        return None, None
    worst = max(xs, key=lambda x: x[0])
    return worst[0], (worst[1] if len({x for x, _ in xs}) > 1 else None)


def crowd_rows(cr: dict | None) -> list[tuple]:
    """Issue 18: N activations at once in one container, ims-action via the launcher against the
    cached Node action (first burst), against the round trip (second burst), and its token count."""
    cr = cr or {}
    d = cr.get("derived") or {}
    ns = ", ".join(str(n) for n in cr.get("ns") or []) or "1, 10, 50, 200"
    rtt = cr.get("rtt_ms", 50.0)
    where = f"at {rtt:g} ms RTT, N = {ns} at once"
    err = f" — {cr['error']}" if cr.get("error") else ""
    failures = sum(v.get("failures") or 0 for v in d.values())
    fail_note = f" — {failures} of its activations failed" if failures else ""

    def note(n):
        return err or ((f" — worst at N = {n}" if n is not None else "") + fail_note)
    rows = []
    m, n = _worst_n(d, "first_p50_vs_reference")
    rows.append((f"Activations at once ({where}), first burst: ims-action via the launcher, p50 ÷ the cached Node "
                 "action's p50 (worst N)", m, GOALS["crowd_first_p50_vs_cached"], "max", "×", "{:.3f}", note(n)))
    m, n = _worst_n(d, "first_max_vs_reference")
    rows.append((f"Activations at once ({where}), first burst: ims-action via the launcher, max ÷ the cached Node "
                 "action's max (worst N)", m, GOALS["crowd_first_max_vs_cached"], "max", "×", "{:.3f}", note(n)))
    m, n = _worst_n(d, "second_p50_ms")
    rows.append((f"Activations at once ({where}), second burst (connections open): ims-action via the launcher, p50 "
                 f"(≤ 1.3 RTT + 10 ms; worst N)", m, second_burst_goal_ms(rtt), "max", " ms", "{:.1f}", note(n)))
    m, n = _worst_n(d, "tokens_per_run")
    rows.append((f"Activations at once ({where}): ims-action's IMS token requests per container, both bursts "
                 "(one credential; worst N and run)", m, GOALS["crowd_tokens_per_run"], "max", "", "{:g}", note(n)))
    # issue 18: the binary's RSS with 200 activations in flight stays under 32 MiB
    rss = {n: e.get("child_maxrss_kib") for n, e in ((cr.get("summary") or {}).get(CROWD_OURS) or {}).items()
           if e.get("child_maxrss_kib")}
    top = max(rss, key=int) if rss else None
    rows.append((f"Activations at once ({where}): peak RSS of the ims-action binary behind the launcher, "
                 f"N = {top or 'the largest'} in flight", rss[top] / 1024 if top else None,
                 GOALS["crowd_binary_rss_mib"], "max", " MiB", "{:.1f}", err))
    return rows
