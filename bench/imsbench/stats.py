"""The statistics of the report: percentiles, summaries, ratios and counter deltas. Pure
functions (bench/tests/test_stats.py)."""
from __future__ import annotations

import math
import statistics


def pct(xs: list[float], p: float) -> float:
    """The p-th percentile, linear interpolation between closest ranks (numpy's default);
    NaN for no data."""
    s = sorted(xs)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(xs: list[float]) -> dict | None:
    """n, median, p10/p90/p99, min, max, mean; None for no data."""
    if not xs:
        return None
    return {"n": len(xs), "median": statistics.median(xs), "p10": pct(xs, 10), "p90": pct(xs, 90),
            "p99": pct(xs, 99), "min": min(xs), "max": max(xs), "mean": statistics.fmean(xs)}


def ratio(a: float | None, b: float | None) -> float | None:
    """a ÷ b, or None when either is missing or b is not positive."""
    if a is None or b is None or b <= 0 or math.isnan(a) or math.isnan(b):
        return None
    return a / b


def ratio_of_medians(xs: list[float], ys: list[float]) -> float | None:
    """median(xs) ÷ median(ys)."""
    if not xs or not ys:
        return None
    return ratio(statistics.median(xs), statistics.median(ys))


def per_round_ratios(xs: list[dict], ys: list[dict], key: str = "ms") -> list[float]:
    """For samples tagged with their "round", the ratio median(xs in round) ÷ median(ys in
    round) for every round both have: the spread of a ratio over runs taken side by side."""
    rounds = sorted({s["round"] for s in xs} & {s["round"] for s in ys})
    out = []
    for r in rounds:
        a = [s[key] for s in xs if s["round"] == r]
        b = [s[key] for s in ys if s["round"] == r]
        q = ratio(statistics.median(a), statistics.median(b))
        if q is not None:
            out.append(q)
    return out


def counter_delta(before: dict, after: dict) -> dict:
    """What happened between two `GET /__stats` snapshots of adobe-emulator: token requests (any
    path under /ims/), other service requests, tokens issued, TCP connections accepted and TLS
    handshakes (full and resumed)."""
    def reqs(s, ims: bool):
        return sum(n for p, n in s.get("requests", {}).items() if ("/ims/" in p) == ims)

    def issued(s):
        return sum(s.get("tokens_issued", {}).values())

    def conn(s, k):
        return s.get("connections", {}).get(k, 0)

    return {"token_requests": reqs(after, True) - reqs(before, True),
            "api_requests": reqs(after, False) - reqs(before, False),
            "tokens_issued": issued(after) - issued(before),
            "connections": conn(after, "accepted") - conn(before, "accepted"),
            "tls_handshakes": conn(after, "tls_handshakes") - conn(before, "tls_handshakes"),
            "tls_resumed": conn(after, "tls_resumed") - conn(before, "tls_resumed")}


def add_counts(total: dict, delta: dict) -> dict:
    """total += delta, key by key (missing keys count as 0)."""
    for k, v in delta.items():
        total[k] = total.get(k, 0) + v
    return total


def per_activation(counts: dict, activations: int) -> dict:
    """Each counter divided by the number of activations (None for none)."""
    return {k: (v / activations if activations else None) for k, v in counts.items()}
