"""The charts under docs/: plain SVG written by hand (no plotting library), pure functions of the
results dict."""
from __future__ import annotations

import math

from . import fmt
from .flows import FLOWS
from .loopback import SUBJECTS
from .wan import COLD, WARM

FONT = 'font-family="Helvetica, Arial, sans-serif" font-size="11"'


def nice_step(x: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k that is ≥ x (axis ticks)."""
    if x <= 0:
        return 1
    e = 10 ** math.floor(math.log10(x))
    for m in (1, 2, 2.5, 5, 10):
        if m * e >= x * (1 - 1e-9):
            return m * e
    return 10 * e


def linear_ticks(hi: float, target: int = 5) -> list[float]:
    step = nice_step(hi / target)
    top = step * math.ceil(hi / step)
    return [i * step for i in range(int(round(top / step)) + 1)]


# ---- latency vs RTT ------------------------------------------------------------------------

STYLE = {
    # mode, subject: (colour, dashed, short legend)
    ("cold", "ours"): ("#d9480f", False, "ims-action one-shot"),
    ("cold", "appbuilder"): ("#f08c00", False, "App Builder route (launcher), new Node process"),
    ("cold", "node-lean"): ("#74a9cf", False, "Adobe sample, lean Node"),
    ("cold", "node-aio"): ("#1c4f86", False, "Adobe sample as published"),
    ("cold", "limit6"): ("#555555", True, "limit: IMS then API, new TLS each (≈6 RTT)"),
    ("cold", "limit4"): ("#999999", True, "limit: API connection opened early (≈4 RTT)"),
    ("warm", "ours"): ("#d9480f", False, "ims-action ActionLoop"),
    ("warm", "appbuilder"): ("#f08c00", False, "App Builder route (launcher), warm"),
    ("warm", "node-cached"): ("#2b8a3e", False, "Node, token cache + keep-alive"),
    ("warm", "node-aio"): ("#1c4f86", False, "Adobe sample, warm Node"),
    ("warm", "limit"): ("#555555", True, "limit: request on an open TLS connection (≈1 RTT)"),
}


def _panel(out: list[str], wan: dict, mode: str, names: dict, x0: float, y0: float, w: float, h: float,
           title: str) -> None:
    rtts = [float(r) for r in wan["rtts"]]
    series = []
    for s in names:
        by = wan.get(mode, {}).get(s)
        if not by:
            continue
        pts = [(float(rk), (e.get("ms") or {}).get("median")) for rk, e in by.items()]
        pts = [(x, y) for x, y in pts if y is not None]
        if pts:
            series.append((s, sorted(pts)))
    out.append(f'<text x="{x0 + w / 2:.1f}" y="{y0 - 14:.1f}" text-anchor="middle" font-weight="bold">{fmt.esc(title)}</text>')
    if not series:
        out.append(f'<text x="{x0 + w / 2:.1f}" y="{y0 + h / 2:.1f}" text-anchor="middle" fill="#a00">not measured</text>')
        return
    ymax = max(y for _, pts in series for _, y in pts)
    yt = linear_ticks(ymax * 1.08)
    ytop = yt[-1] or 1
    xmin, xmax = min(rtts), max(rtts)
    span = (xmax - xmin) or 1

    def X(v):
        return x0 + (v - xmin) / span * w

    def Y(v):
        return y0 + h - v / ytop * h

    for t in yt:
        out.append(f'<line x1="{x0}" y1="{Y(t):.1f}" x2="{x0 + w}" y2="{Y(t):.1f}" stroke="#e6e6e6"/>')
        out.append(f'<text x="{x0 - 5}" y="{Y(t) + 4:.1f}" text-anchor="end" fill="#666">{t:g}</text>')
    for r in rtts:
        out.append(f'<line x1="{X(r):.1f}" y1="{y0 + h}" x2="{X(r):.1f}" y2="{y0 + h + 4}" stroke="#888"/>')
        out.append(f'<text x="{X(r):.1f}" y="{y0 + h + 16}" text-anchor="middle" fill="#444">{r:g}</text>')
    out.append(f'<line x1="{x0}" y1="{y0 + h}" x2="{x0 + w}" y2="{y0 + h}" stroke="#888"/>')
    out.append(f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y0 + h}" stroke="#888"/>')
    out.append(f'<text x="{x0 + w / 2:.1f}" y="{y0 + h + 32}" text-anchor="middle" fill="#444">round-trip time to '
               'IMS and the API (ms)</text>')
    out.append(f'<text x="{x0 - 36}" y="{y0 + h / 2:.1f}" text-anchor="middle" fill="#444" '
               f'transform="rotate(-90 {x0 - 36} {y0 + h / 2:.1f})">median latency (ms)</text>')
    # value labels at the right end, nudged apart so they do not overlap
    ends = sorted(((Y(pts[-1][1]), s, pts[-1][1]) for s, pts in series), key=lambda t: t[0])
    placed, last = {}, -1e9
    for yy, s, v in ends:
        yy = max(yy, last + 12)
        placed[s] = (yy, v)
        last = yy
    for s, pts in series:
        colour, dashed, label = STYLE.get((mode, s), ("#000", False, s))
        d = " ".join(f"{'M' if i == 0 else 'L'}{X(x):.1f},{Y(y):.1f}" for i, (x, y) in enumerate(pts))
        dash = ' stroke-dasharray="5,4"' if dashed else ""
        out.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"{dash}>'
                   f'<title>{fmt.esc(label)}</title></path>')
        for x, y in pts:
            out.append(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="3" fill="{colour}">'
                       f'<title>{fmt.esc(label)}: {fmt.ms(y)} ms at {x:g} ms RTT</title></circle>')
        yy, v = placed[s]
        out.append(f'<text x="{X(pts[-1][0]) + 6:.1f}" y="{yy + 4:.1f}" fill="{colour}" font-size="10">{fmt.ms(v)}</text>')


def render_wan_svg(res: dict) -> str:
    wan = res["wan"]
    W, H = 900, 485
    m = res["machine"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" {FONT}>',
           f'<rect width="{W}" height="{H}" fill="#ffffff"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">'
           'OAuth S2S → AEM quota over HTTPS: median latency vs round-trip time</text>',
           f'<text x="{W / 2}" y="40" text-anchor="middle" fill="#555">'
           f'{fmt.esc(m["date_utc"])} · commit {fmt.esc(m["commit"])} · {m["cores"]} cores · adobe-emulator behind a '
           f'delay line (every packet waits RTT/2 each way){" · SMOKE RUN" if res.get("quick") else ""}</text>']
    _panel(out, wan, "cold", COLD, 70, 82, 300, 240, "Cold: new process, token included")
    _panel(out, wan, "warm", WARM, 520, 82, 300, 240, "Warm: long-lived process, token cached")
    y = 376
    for i, (mode, names) in enumerate((("cold", COLD), ("warm", WARM))):
        x = 40 + i * 450
        out.append(f'<text x="{x}" y="{y}" font-weight="bold">{mode}</text>')
        row = 0
        for s in names:
            if s not in wan.get(mode, {}):
                continue
            colour, dashed, label = STYLE.get((mode, s), ("#000", False, s))
            yy = y + 14 + row * 15
            dash = ' stroke-dasharray="5,4"' if dashed else ""
            out.append(f'<line x1="{x}" y1="{yy - 4}" x2="{x + 22}" y2="{yy - 4}" stroke="{colour}" stroke-width="2"{dash}/>')
            out.append(f'<text x="{x + 28}" y="{yy}">{fmt.esc(label)}</text>')
            row += 1
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---- process overhead on loopback (bars) ---------------------------------------------------

def render_cold_svg(res: dict) -> str:
    """Two bar panels: cold start on loopback (log scale) and peak RSS, per flow."""
    cold = res["cold"]["flows"]
    subjects = [s for s in SUBJECTS if s != "ours-cached"]
    colors = {"ours": "#d9480f", "node-lean": "#74a9cf", "node-aio": "#1c4f86"}
    legend = {"ours": "ims-action (Rust)", "node-lean": "Node, lean (no aio-sdk)",
              "node-aio": "Node, Adobe sample (aio-sdk)"}
    W, H = 760, 350
    top, bottom = 92, 280
    panels = [(50, 360, "Cold start on loopback (ms, log scale)", "wall_ms", True),
              (430, 740, "Peak RSS (MiB)", "rss_kib", False)]
    m = res["machine"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" {FONT}>',
           f'<rect width="{W}" height="{H}" fill="#ffffff"/>',
           f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">'
           'Process overhead: ims-action vs Adobe\'s Node.js samples on loopback (no network cost)</text>',
           f'<text x="{W / 2}" y="37" text-anchor="middle" fill="#555">'
           f'{fmt.esc(m["date_utc"])} · commit {fmt.esc(m["commit"])} · {m["cores"]} cores '
           f'{fmt.esc(m["cpu_model"][:40])} · medians of {res["cold"]["rounds"]} rounds'
           f'{" · SMOKE RUN" if res.get("quick") else ""}</text>',
           f'<text x="{W / 2}" y="54" text-anchor="middle" fill="#555">'
           'bars: medians; bold: how many times slower than ims-action</text>']
    flows = list(cold)
    for x0, x1, title, key, logscale in panels:
        vals = []
        for fk in flows:
            for s in subjects:
                st = (cold[fk]["subjects"].get(s) or {}).get(key)
                if st:
                    vals.append(st["median"] if key == "wall_ms" else st["median"] / 1024)
        if not vals:
            continue
        if logscale:
            lo = 10 ** math.floor(math.log10(min(vals)))
            hi = 10 ** math.ceil(math.log10(max(vals) * 1.05))
            ticks = [10 ** e for e in range(round(math.log10(lo)), round(math.log10(hi)) + 1)]

            def y(v, lo=lo, hi=hi):
                return bottom - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * (bottom - top)
        else:
            ticks = linear_ticks(max(vals) * 1.1, 4)
            hi = ticks[-1]

            def y(v, hi=hi):
                return bottom - v / hi * (bottom - top)
        out.append(f'<text x="{(x0 + x1) / 2}" y="{top - 26}" text-anchor="middle" font-weight="bold">{fmt.esc(title)}</text>')
        for t in ticks:
            yy = y(t)
            lab = (f"{t:g} ms" if t < 1000 else f"{t / 1000:g} s") if logscale else f"{t:g}"
            out.append(f'<line x1="{x0}" y1="{yy:.1f}" x2="{x1}" y2="{yy:.1f}" stroke="#e3e3e3"/>')
            out.append(f'<text x="{x0 - 4}" y="{yy + 3:.1f}" text-anchor="end" fill="#666">{lab}</text>')
        out.append(f'<line x1="{x0}" y1="{bottom}" x2="{x1}" y2="{bottom}" stroke="#888"/>')
        gw = (x1 - x0) / len(flows)
        bw = gw / (len(subjects) + 1.2)
        for gi, fk in enumerate(flows):
            gx = x0 + gi * gw + bw * 0.6
            for si, s in enumerate(subjects):
                st = (cold[fk]["subjects"].get(s) or {}).get(key)
                bx = gx + si * bw
                if not st:
                    out.append(f'<text x="{bx + bw / 2:.1f}" y="{bottom - 4}" text-anchor="middle" fill="#a00">n/a</text>')
                    continue
                v = st["median"] if key == "wall_ms" else st["median"] / 1024
                yy = y(v)
                lab = (fmt.ms(v) + " ms") if key == "wall_ms" else f"{v:.1f}"
                out.append(f'<rect x="{bx + 2:.1f}" y="{yy:.1f}" width="{bw - 4:.1f}" height="{bottom - yy:.1f}" '
                           f'fill="{colors[s]}"><title>{fmt.esc(legend[s])}, {fmt.esc(FLOWS[fk]["short"])}: '
                           f'{fmt.esc(lab)}</title></rect>')
                out.append(f'<text x="{bx + bw / 2:.1f}" y="{yy - 4:.1f}" text-anchor="middle" font-size="10">{fmt.esc(lab)}</text>')
                rt = cold[fk]["ratios"].get(s) if key == "wall_ms" else None
                if rt:
                    out.append(f'<text x="{bx + bw / 2:.1f}" y="{yy - 16:.1f}" text-anchor="middle" font-size="10" '
                               f'font-weight="bold" fill="{colors["ours"]}">{fmt.times(rt["of_medians"])}×</text>')
            out.append(f'<text x="{x0 + gi * gw + gw / 2:.1f}" y="{bottom + 16}" text-anchor="middle">'
                       f'{fmt.esc(FLOWS[fk]["short"])}</text>')
    lx = 120
    for s, label in legend.items():
        out.append(f'<rect x="{lx}" y="{H - 34}" width="12" height="12" fill="{colors[s]}"/>')
        out.append(f'<text x="{lx + 17}" y="{H - 24}">{fmt.esc(label)}</text>')
        lx += 190
    out.append("</svg>")
    return "\n".join(out) + "\n"
