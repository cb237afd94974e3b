"""BENCHMARKS.md from the results of a run (bench/results.json): pure functions of that dict."""
from __future__ import annotations

from . import fmt
from .crowd import BURSTS, OURS as CROWD_OURS, REFERENCE as CROWD_REFERENCE, SUBJECTS as CROWD_SUBJECTS, \
    second_burst_goal_ms
from .flows import FLOWS
from .loopback import SUBJECTS
from .paths import MIB
from .release import BINS, PARTS
from .store import FAILING_BOUND_MS
from .targets import GOALS, target_rtt
from .wan import COLD, LIMIT_OF, PEERS, WARM

MODE_TITLE = {"cold": "cold", "warm": "warm"}


def render(res: dict, svg_rel: str, wan_svg_rel: str | None = None) -> str:
    L: list[str] = []
    L += header(res)
    L += meaning(res)
    L += targets_table(res)
    if res.get("wan"):
        L += wan_section(res["wan"], wan_svg_rel)
    if res.get("cold"):
        L += cold_section(res["cold"])
    if res.get("warm"):
        L += warm_section(res["warm"], res.get("tokens"))
    if res.get("sizes"):
        L += sizes_section(res["sizes"], res.get("cold"))
    if res.get("tokens"):
        L += tokens_section(res["tokens"])
    if res.get("store"):
        L += store_section(res["store"])
    if res.get("release"):
        L += release_section(res["release"])
    if res.get("crowd"):
        L += crowd_section(res["crowd"])
    if res.get("cold"):
        L += ["## Picture: process overhead", "",
              f"![Cold start on loopback and peak RSS, ims-action vs Adobe's Node.js samples]({svg_rel})", ""]
    return "\n".join(L)


def header(res: dict) -> list[str]:
    m, b = res["machine"], res["busy"]
    L = ["# Benchmarks", "",
         "Written by `make bench` (`bench/run.py`, the `bench/imsbench` package); do not edit by hand. Method and "
         "caveats: [bench/README.md](bench/README.md). Raw figures: [bench/results.json](bench/results.json).", ""]
    if res.get("quick"):
        L += ["> **Smoke run (`--quick`)**: too few samples for the figures below to mean much.", ""]
    L += ["| | |", "|---|---|",
          f"| Machine | {m['cores']} cores, {m['cpu_model']}, {m['mem_gib']} GiB, Linux {m['kernel']} |",
          f"| Date | {m['date_utc']} |",
          f"| Commit | `{m['commit']}` |",
          f"| Toolchain | {m['rustc']}; Node {m['node']}; Python {m['python']} |"]
    pv = res.get("peer_versions", {})
    if pv:
        L.append("| Peer packages | " + ", ".join(f"`{k}` {v}" for k, v in pv.items())
                 + " (bench/peer-node/package-lock.json) |")
    L.append(f"| Load average (1/5/15 min) | start {b['load_start']}, end {b['load_end']} |")
    if b["busy_samples"] > 0:
        ex = "; ".join(b["busy_examples"]) or "high load"
        where = []
        for x in b.get("busy_labels", []):
            part = " ".join(x.split()[:2]) if x.startswith("wan") else x.split()[0]
            if part not in where:
                where.append(part)
        L.append(f"| **Machine busy** | yes: compilers seen in {b['busy_samples']} of {b['samples']} samples "
                 f"({', '.join(where)}; e.g. `{ex[:80]}`); treat the figures as provisional |")
    else:
        L.append(f"| Machine busy | no: no compiler seen in {b['samples']} samples between measurements, "
                 f"1-min load at most {b['load1_max']} |")
    L.append("")
    return L


def meaning(res: dict) -> list[str]:
    L = ["## What the numbers measure", ""]
    if res.get("wan"):
        L.append("- **Over a network (section 1)**: what a user's activation takes when Adobe is a real round trip "
                 "away: HTTPS, a new TCP connection and TLS handshake wherever the client opens one, every packet "
                 "delayed by half the round-trip time (RTT) each way. Each subject sits beside **the limit**, "
                 "the same requests made by a minimal client through the same link and server; "
                 "\"÷ limit\" is the subject's median over the limit's median.")
    if res.get("cold"):
        L.append("- **Process overhead (section 2)**: the same cold activation on loopback without TLS, where "
                 "a round trip costs microseconds, so what remains is the cost of starting each process and "
                 "loading its code. The large ratios there (hundreds of times) are that overhead, not what a "
                 "user waits for at a realistic RTT.")
    if res.get("warm"):
        L.append("- **Warm on loopback (section 3)**: microseconds of per-activation work (pipes, parsing); "
                 "information only.")
    if res.get("store"):
        L.append("- **The shared token store (section 6)**: how many IMS token requests a burst of cold "
                 "containers makes with each store, what reading the token from each store costs a one-shot "
                 "activation, and what a failing store adds; on loopback, counted at the emulator and Redis.")
    if res.get("release"):
        L.append("- **This release against the one before (section 7)**: the stripped binary and the same cold "
                 "one-shot activation run by both binaries side by side, on loopback and at 50 ms RTT.")
    if res.get("crowd"):
        L.append("- **Activations at once in one container (section 8)**: a burst of N activations in one Node "
                 "process, as the Node.js runtime runs them with `limits.concurrency` above 1, over HTTPS at "
                 f"{(res['crowd'].get('rtt_ms') or 50):g} ms RTT: what the last of a burst waits for.")
    L.append("")
    return L


def targets_table(res: dict) -> list[str]:
    L = ["## Targets", "", "| Target | Result |", "|---|---|"]
    for t in res.get("targets", []):
        L.append(f"| {t['target']} | {t['text']}{t['note']} |")
    L.append("")
    return L


# ---- section 1: over a network -------------------------------------------------------------

def _med(e: dict | None):
    return ((e or {}).get("ms") or {}).get("median")


def _row(mode: str, s: str, label: str, e: dict | None, d: dict | None, limit_ms) -> str:
    if not e or not e.get("ms"):
        return f"| {mode} | {label} | 0 | – | – | – | – | – | – | – | – |"
    st, pa = e["ms"], e.get("per_activation", {})
    is_limit = s == LIMIT_OF[mode]
    vs = "(the limit)" if is_limit else (f"**{fmt.times(d.get('vs_limit'))}×**" if d else "–")
    if mode == "cold" and s == "ours" and d and d.get("vs_concurrent_limit") is not None:
        vs += f"; **{fmt.times(d['vs_concurrent_limit'])}×** ÷ the concurrent limit"
    lim = "" if is_limit else fmt.ms(limit_ms)
    hs = fmt.per(pa.get("tls_handshakes"))
    if pa.get("tls_resumed"):
        hs += f" ({fmt.per(pa['tls_resumed'])} resumed)"
    failed = f" ({e['failures']} failed)" if e.get("failures") else ""
    return (f"| {mode} | {label}{failed} | {st['n']} | {fmt.ms(st['median'])} | {fmt.ms(st['p90'])} | "
            f"{fmt.ms(st['p99'])} | {lim} | {vs} | {fmt.per(pa.get('token_requests'))} | "
            f"{fmt.per(pa.get('connections'))} | {hs} |")


def rtt_table(wan: dict, rk: str) -> list[str]:
    L = ["| Mode | Subject | n | median ms | p90 ms | p99 ms | its limit, median ms | ÷ limit | token requests | "
         "TCP connections | TLS handshakes |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for mode, names in (("cold", COLD), ("warm", WARM)):
        limit_ms = _med((wan.get(mode, {}).get(LIMIT_OF[mode]) or {}).get(rk))
        for s, label in names.items():
            if s not in wan.get(mode, {}):
                continue
            e = wan[mode][s].get(rk)
            d = (wan.get("derived", {}).get(mode, {}).get(s) or {}).get(rk)
            L.append(_row(mode, s, label, e, d, limit_ms))
    return L


def peer_table(wan: dict) -> list[str]:
    rtts = wan["rtts"]
    L = ["| Comparison (peer's median ÷ ours) | " + " | ".join(f"{r} ms" for r in rtts) + " |",
         "|---|" + "---:|" * len(rtts)]
    names = {"cold": COLD, "warm": WARM}
    for mode in ("cold", "warm"):
        derived = wan.get("derived", {}).get(mode, {})
        for ours in ("ours", "appbuilder"):
            if ours not in derived:
                continue
            for p in PEERS[mode]:
                if p not in wan.get(mode, {}):
                    continue
                cells = [fmt.times((derived[ours].get(r) or {}).get(f"{p}_vs")) + "×" for r in rtts]
                who = "ims-action" if ours == "ours" else "the App Builder route"
                L.append(f"| {mode}: {names[mode][p]} ÷ {who} | " + " | ".join(cells) + " |")
    return L


def wan_section(wan: dict, svg_rel: str | None) -> list[str]:
    c = wan["config"]
    L = ["## 1. Over a network: HTTPS with a real round trip", "",
         "Every subject talks HTTPS to one adobe-emulator through a delay line (`bench/delay_line.c`, a TUN link "
         "in a network namespace of its own) that holds **every packet** (TCP handshake, TLS records, ACKs) for "
         "RTT/2 in each direction. IMS and the API have addresses of their own for each RTT, so each needs its own "
         "connection, as `ims-na1.adobelogin.com` and `api.adobeaemcloud.com` do. The emulator serves a "
         "certificate from a throwaway CA: ims-action trusts it through `SSL_CERT_FILE` (added to its Mozilla "
         "roots), Node through `NODE_EXTRA_CA_CERTS`. The flow is OAuth Server-to-Server → the AEM Data Service "
         "quota. The RTTs, the subjects and the limits all run side by side in one run:",
         "",
         f"- **cold**: one process per activation, token included (ims-action's token file store starts empty "
         f"each time); {c['cold_warmup']} warm-up round(s), then {c['cold_rounds']} rounds, each running every "
         f"subject at every RTT in rotating order ({c['cold_reps']}× for ims-action and the limits). The cold "
         "limit opens, per host, a new TCP connection, does a TLS 1.3 handshake and sends the request: IMS, then "
         "the API (≈ 6 RTT). The second limit, the concurrent one, opens the API's connection while the token "
         "is fetched (≈ 4 RTT); ims-action does the same, so its row also shows its median ÷ this limit.",
         f"- **warm**: many activations in one long-lived process, the token cached after the first; per RTT, "
         f"{c['warm_warmup']} warm-up activations each, then {c['warm_blocks']} blocks of {c['warm_block']} "
         "activations per subject in rotating order. The warm limit is the API request on an open TLS connection "
         "(≈ 1 RTT). Processes are driven with the ActionLoop protocol (a JSON line on stdin, the result line "
         "on fd 3), Node through `bench/peer-node/loop.js`; latency is timed from writing the line to reading "
         "the result.",
         "- **App Builder route**: `actions/ims-action/index.js` (the Node launcher) running the same binary; "
         "cold = a new Node process requiring the launcher and calling its `main` once, warm = one Node process.",
         "- **Counts** are the emulator's, per activation: token requests, TCP connections accepted, TLS "
         "handshakes.",
         ""]
    probe = wan["link"]["probe"]
    L += ["The link as measured (a TCP connect is one round trip; the excess is wake-up latency on this VM):", "",
          "| RTT set | TCP connect median | min–max |", "|---:|---:|---:|"]
    for rk in wan["rtts"]:
        p = probe.get(rk, {})
        L.append(f"| {rk} ms | {fmt.ms(p.get('median_ms'))} ms | {fmt.ms(p.get('min_ms'))}–{fmt.ms(p.get('max_ms'))} ms |")
    L.append("")
    pk = wan["link"].get("packets") or {}
    if pk.get("forwarded"):
        L += [f"The delay line forwarded {pk['forwarded']:,} packets in the run, dropped {pk['dropped']:,} and sent "
              f"{pk['late']:,} ({pk['late'] / pk['forwarded']:.2%}) more than 100 µs after their due time.", ""]
    if not wan["link"].get("realtime"):
        L += ["The delay line ran without real-time priority (no CAP_SYS_NICE): packets may leave late when the "
              "subjects keep the cores busy.", ""]
    if wan.get("failed"):
        L += ["Left out after failing their smoke run: " + "; ".join(f"`{k}` ({v[:120]})" for k, v in wan["failed"].items()), ""]
    rk_t = target_rtt(wan)
    for rk in sorted(wan["rtts"], key=lambda r: (r != rk_t, -float(r))):
        L += [f"### At {rk} ms RTT", ""]
        L += rtt_table(wan, rk)
        L.append("")
    L += ["### Against the Node peers", "",
          "How many times ims-action's (or the App Builder route's) median the peer's median is, at each RTT, "
          "from the same runs as above.", ""]
    L += peer_table(wan)
    L.append("")
    if svg_rel:
        L += [f"![Latency vs RTT per subject, cold and warm]({svg_rel})", ""]
    return L


# ---- section 2: process overhead on loopback ----------------------------------------------

def cold_section(cold: dict) -> list[str]:
    L = ["## 2. Process overhead: cold start on loopback", "",
         f"One activation per process against the plain-HTTP emulator on loopback, token exchange included "
         f"(ims-action's token file store starts empty each run). {cold['warmup_rounds']} warm-up round(s), then "
         f"{cold['rounds']} measured rounds; each round runs ims-action {cold['ours_per_round']}× and each Node "
         "variant once, in rotating order. Wall time from `posix_spawn` to `wait4`; ratios are peer median ÷ "
         "ims-action median (spread: p10–p90 of the per-round ratios). A round trip costs microseconds here, so "
         "these ratios measure the cost of starting a process and loading its code, nothing a network adds.", ""]
    for fk, fo in cold["flows"].items():
        L += [f"### {FLOWS[fk]['title']}", "",
              "| Subject | n | median ms | p10–p90 ms | min–max ms | peak RSS MiB (median, max) | token requests | "
              "ratio vs ims-action |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for s, label in SUBJECTS.items():
            so = fo["subjects"].get(s)
            if so is None:
                continue
            w, r = so["wall_ms"], so["rss_kib"]
            if not w:
                L.append(f"| {label} | 0 | – | – | – | – | – | failed ({so['failures']} failures; see log) |")
                continue
            rt = fo["ratios"].get(s)
            rtxt = "1×" if s == "ours" else "–" if s == "ours-cached" else (
                f"**{fmt.times(rt['of_medians'])}×** ({fmt.times(rt['per_round']['p10'])}–"
                f"{fmt.times(rt['per_round']['p90'])})" if rt and rt.get("per_round") else "–")
            c = so.get("counts") or {}
            tok = fmt.per(c.get("token_requests", 0) / c["activations"]) if c.get("activations") else "–"
            fl = f" ({so['failures']} failed)" if so["failures"] else ""
            L.append(f"| {label}{fl} | {w['n']} | {fmt.ms(w['median'])} | {fmt.ms(w['p10'])}–{fmt.ms(w['p90'])} | "
                     f"{fmt.ms(w['min'])}–{fmt.ms(w['max'])} | {fmt.mib(r['median'])}, {fmt.mib(r['max'])} | {tok} | "
                     f"{rtxt} |")
        L.append("")
    fl = cold["floor"]
    if fl["wall_ms"]:
        L += [f"Floor on this machine: a static C program that does nothing takes {fmt.ms(fl['wall_ms']['median'])} ms "
              f"(p10–p90 {fmt.ms(fl['wall_ms']['p10'])}–{fmt.ms(fl['wall_ms']['p90'])}) and "
              f"{fmt.mib(fl['rss_kib']['median'])} MiB peak RSS measured the same way; it is the least any process "
              "can score.", ""]
    L += ["The row \"token from its file store\" is one-shot ims-action when the previous activation left its "
          "token in the temp folder, as in a warm dockerskeleton container (one process per activation): no "
          "token request, one API request. Before this section started each run with an empty store, every "
          "ims-action run after the first took this path, so the ratios it reported compared a cached token "
          "with Node fetching one.", ""]
    return L


# ---- section 3: warm on loopback -----------------------------------------------------------

def warm_section(warm: dict, tokens: dict | None) -> list[str]:
    L = ["## 3. Warm activations on loopback (information)", "",
         f"One long-lived ims-action driven through the ActionLoop protocol for the OAuth S2S → AEM quota call, "
         f"against the plain-HTTP emulator on loopback. Per placement, after {warm['warmup']} warm-up activations, "
         f"{warm['blocks']} blocks of {warm['block_size']} activations alternate with blocks of the bare request: "
         "the same `GET …/contentRequestsQuota` with the same headers and a cached token, sent in a tight loop "
         "over one keep-alive connection by a minimal raw-socket client. These are microseconds of pipe hand-offs "
         "and parsing that no user perceives next to a network round trip; the former target (≤ 1.2× the bare "
         "request) gave way to the targets of section 1, and its figure stays here as information.", ""]
    names = {"ours": "ims-action, ActionLoop", "bare": "bare request",
             "httpclient": "same request via Python `http.client` (reference)",
             "echo": "ActionLoop protocol alone: a C loop that answers without any request (reference)"}
    titles = {"one-core": "driver, ims-action and emulator pinned to one core (no cross-core wake-ups)",
              "free": "no pinning (the scheduler places the processes on both cores)"}
    for mode, mo in warm["modes"].items():
        cpus = ",".join(str(c) for c in mo["cpus"])
        L += [f"**{titles.get(mode, mode)}**, CPU {cpus}:", "",
              "| Client | n | median µs | p10–p90 µs | p99 µs | max µs | activations/s |",
              "|---|---:|---:|---:|---:|---:|---:|"]
        for k, label in names.items():
            ko = mo["kinds"][k]
            st = ko["lat_us"]
            fl = f" ({ko['failures']} failed)" if ko["failures"] else ""
            L.append(f"| {label}{fl} | {st['n']:,} | {fmt.us(st['median'])} | {fmt.us(st['p10'])}–{fmt.us(st['p90'])} | "
                     f"{fmt.us(st['p99'])} | {fmt.us(st['max'])} | {ko['per_s']:,.0f} |")
        L += ["", f"ims-action ÷ bare: median {mo['ratio_median']:.2f}×, p99 {mo['ratio_p99']:.2f}×. The pipe round "
              f"trip alone plus the bare request come to {fmt.us(mo['protocol_floor_us'])} µs, so no ActionLoop action "
              f"can score better than {mo['best_possible_ratio']:.2f}× here; ims-action takes "
              f"{mo['ratio_vs_protocol_floor']:.2f}× that.", ""]
    L.append(f"Peak RSS of the ActionLoop process after {warm['actionloop_activations']:,} activations: "
             f"{fmt.mib(warm['actionloop_rss_kib'])} MiB.")
    tok = (tokens or {}).get("flows", {}).get("s2s", {}).get("node-aio")
    if tok and tok.get("lat_us"):
        L += ["", f"For context, Adobe's sample warm in one Node process (timed inside Node, a token request every "
              f"time as published): median {fmt.us(tok['lat_us']['median'])} µs, p99 {fmt.us(tok['lat_us']['p99'])} µs "
              "per activation."]
    L.append("")
    return L


# ---- sections 4 and 5 ----------------------------------------------------------------------

def sizes_section(sz: dict, cold: dict | None) -> list[str]:
    L = ["## 4. Resources", "", "| What | Size |", "|---|---:|"]
    bi = sz["binary"]
    kind = ", ".join([("stripped" if bi.get("stripped") else "not stripped"),
                      ("static" if bi.get("static") else "dynamic")])
    L.append(f"| `{bi['path']}` ({kind}) | {bi['bytes'] / MIB:.2f} MiB ({bi['bytes']:,} B) |")
    if bi["stripped_bytes"] != bi["bytes"]:
        L.append(f"| same, after `strip` | {bi['stripped_bytes'] / MIB:.2f} MiB |")
    z = sz["zip"]
    L.append(f"| `{z['path']}` | " + (f"{z['bytes'] / MIB:.2f} MiB ({z['bytes']:,} B) |" if z["bytes"] else "not built |"))
    if sz.get("node_modules_bytes"):
        L.append(f"| peer: `bench/peer-node/node_modules` (unbundled, all three dependencies) | "
                 f"{sz['node_modules_bytes'] / MIB:,.0f} MiB |")
    L.append("")
    if cold:
        L += ["Peak RSS (`ru_maxrss` of each process, median of the cold runs on loopback):", "",
              "| Subject | " + " | ".join(FLOWS[fk]["short"] for fk in cold["flows"]) + " |",
              "|---|" + "---:|" * len(cold["flows"])]
        for s, label in SUBJECTS.items():
            if s == "ours-cached" or any(s not in fo["subjects"] for fo in cold["flows"].values()):
                continue
            cells = [fmt.mib((cold["flows"][fk]["subjects"][s]["rss_kib"] or {}).get("median")) + " MiB"
                     for fk in cold["flows"]]
            L.append(f"| {label} | " + " | ".join(cells) + " |")
        L.append("")
    return L


def tokens_section(tk: dict) -> list[str]:
    scaled = " (scaled to 1,000)" if tk["peer_activations"] != 1000 else ""
    L = ["## 5. Token requests per 1,000 activations", "",
         f"Counted by the emulator (`GET /__stats`: requests to `/ims/…` paths) around sequential activations on "
         f"loopback: ims-action as {tk['activations']:,} activations of one ActionLoop process; Adobe's sample as "
         f"{tk['peer_activations']:,} calls of its `main` in one Node process{scaled}, i.e. a warm container, its "
         "best case.", "",
         "| Flow | ims-action | Adobe sample (Node) |", "|---|---:|---:|"]
    for fk, fo in tk["flows"].items():
        o, p = fo["ours"], fo["node-aio"]
        L.append(f"| {FLOWS[fk]['title']} | {o['per_1000']:,g} ({o['ok']:,}/{tk['activations']:,} ok) | "
                 f"{p['per_1000']:,g} ({p['ok']:,}/{tk['peer_activations']:,} ok) |")
    L.append("")
    return L


# ---- section 6: the shared token store ----------------------------------------------------

def _counts(xs: list | None) -> str:
    """One integer per run: "1", or "1, 1, 2" when the runs differ."""
    xs = [x for x in (xs or []) if x is not None]
    if not xs:
        return "–"
    return f"{xs[0]:,}" if len(set(xs)) == 1 else ", ".join(f"{x:,}" for x in xs)


def _ok(xs: list | None, of) -> str:
    xs = [x for x in (xs or []) if x is not None]
    if not xs or not of:
        return "–"
    bad = [x for x in xs if x != of]
    return "all" if not bad else f"{min(xs):,}/{of:,} (worst run)"


STORE_LABEL = {"memory": "memory (nothing shared)", "redis": "Redis",
               "adobe-state": "Adobe I/O State"}


def store_label(name: str, state_latency_ms) -> str:
    if name.startswith("adobe-state+"):
        return f"Adobe I/O State, {state_latency_ms} ms added to every State request"
    return STORE_LABEL.get(name, name)


def store_section(st: dict) -> list[str]:
    L = ["## 6. The shared token store", ""]
    if st.get("error"):
        return L + [f"Not measured: {st['error']}.", ""]
    c, summ = st["config"], st["summary"]
    runs = c["runs"]
    L += [f"Measured by `examples/store-bench.rs` (run {runs}× by `make bench`, every figure below from those "
          "runs; raw output in `bench/results.json`). It holds an adobe-emulator in-process (IMS, the AEM API and "
          "the Adobe I/O State REST API), starts a `redis-server` of its own on loopback, and runs the bench's "
          "`dist/ims-action` with `IMS_ACTION_TOKEN_STORE` set to each store in turn, the OAuth S2S → AEM quota "
          "flow, plain HTTP on 127.0.0.1. \"memory\" is no shared store: what every container did before.", ""]
    if summ.get("redis_missing"):
        L += ["`redis-server` is not installed on this machine: no Redis figures.", ""]
    L += ["### Cold containers started together", "",
          f"{c['containers']} one-shot processes started at once, each with an empty `TMPDIR` (a cold container "
          f"each); then {c['containers']} actionloop processes, the first activation of each sent at once, then "
          f"{c['activations'] - 1} more each ({c['containers'] * c['activations']:,} activations in all). IMS "
          f"answers the burst's token requests after {c['ims_latency_ms']} ms, so that the containers really "
          "overlap the first fetch. **IMS token requests** are the tokens the emulator issued for the credential "
          "(one figure per run when the runs differ); **store requests** are State REST requests at the emulator "
          "or Redis commands (`INFO commandstats`), claims, polls and writes included.", "",
          "| Store | one-shot: IMS token requests | answered 200 | store requests | burst took, ms | "
          "actionloop: IMS token requests | answered 200 | store requests, cold | store requests per warm activation |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, so in summ["stores"].items():
        o, a = so["one_shot"], so["actionloop"]
        L.append(f"| {store_label(name, c['state_latency_ms'])} | **{_counts(o['token_requests'])}** | "
                 f"{_ok(o['ok'], o['containers'])} | {_counts(o['store_requests'])} | {fmt.ms(o['wall_ms'])} | "
                 f"**{_counts(a['token_requests'])}** | {_ok(a['ok'], a['activations'])} | "
                 f"{_counts(a['store_requests_cold'])} | {fmt.per(a['store_requests_per_warm_activation'])} |")
    L += ["", "### The cost of each store on a warm hit", "",
          "A warm actionloop container answers from memory and makes no store request (last column above). A "
          "one-shot container starts a new process per activation, so it reads the store every time its own file "
          f"has no token: each of {c['samples']} sequential one-shot activations per store and run gets an empty "
          "`TMPDIR` and finds the token in the shared store. \"memory\" is the same process finding the token in "
          "its own file (the same `TMPDIR` every time): the least a one-shot activation costs. Wall time of the "
          "whole process (spawn to exit), measured by store-bench; **cost** is the store's median minus "
          "memory's in the same run, then the median over runs.", "",
          "| Store | the token comes from | one-shot activation, median ms | p90 ms | cost per activation, ms | "
          "store requests per activation |",
          "|---|---|---:|---:|---:|---:|"]
    for name, so in summ["stores"].items():
        w = so["warm_hit"]
        cost = "(the baseline)" if name == "memory" else f"**{fmt.signed_ms(w['cost_ms'])}**"
        err = f" ({'; '.join(w['errors'])})" if w.get("errors") else ""
        L.append(f"| {store_label(name, c['state_latency_ms'])}{err} | {w['from'] or '–'} | {fmt.ms(w['median_ms'])} | "
                 f"{fmt.ms(w['p90_ms'])} | {cost} | {fmt.per(w['store_requests_per_activation'])} |")
    L += ["", "### What a failing store costs", "",
          "Cold one-shot activations that must fetch their token from IMS anyway (an empty `TMPDIR`, nothing in "
          "the store), with a store that refuses the connection, accepts it and never answers, or answers every "
          "State request with 503, against no store at all. **Added** is the case's median minus the median "
          f"without a store, then the median over runs; the bound is {FAILING_BOUND_MS:.0f} ms for the store's own "
          "requests in all (issue 12).", "",
          "| Store | activations | answered 200 | median ms | added, ms | slowest activation, ms | IMS token requests |",
          "|---|---:|---:|---:|---:|---:|---:|"]
    for case, f in summ["failing"].items():
        added = "(the baseline)" if case == "none" else f"**{fmt.signed_ms(f['added_median_ms'])}**"
        L.append(f"| {'no store' if case == 'none' else case} | {f['samples']} | {f['ok']} | {fmt.ms(f['median_ms'])} | "
                 f"{added} | {fmt.ms(f['max_ms'])} | {f['token_requests']} |")
    L.append("")
    return L


# ---- section 7: this release against the one before ---------------------------------------

def _size(b: dict | None) -> str:
    if not b:
        return "–"
    kind = "" if b.get("stripped") and b.get("static") else " (" + ", ".join(
        x for x in ("" if b.get("stripped") else "not stripped", "" if b.get("static") else "not static") if x) + ")"
    return f"{b['stripped_bytes'] / MIB:.2f} MiB ({b['stripped_bytes']:,} B){kind}"


def _ms_cell(part: dict | None, b: str) -> str:
    st = ((part or {}).get(b) or {}).get("ms")
    if not st:
        return "–"
    return f"{fmt.ms(st['median'])} ({fmt.ms(st['p10'])}–{fmt.ms(st['p90'])})"


def _ratio_cell(part: dict | None) -> str:
    if not part or part.get("ratio") is None:
        return "–"
    pr = part.get("per_round") or {}
    spread = f" (per pair {fmt.times(pr['p10'])}–{fmt.times(pr['p90'])})" if pr else ""
    return f"**{fmt.times(part['ratio'])}×**, {fmt.signed_ms(part['added_ms'])} ms{spread}"


def release_section(rel: dict) -> list[str]:
    bf = rel.get("before") or {}
    info = bf.get("commit") or {}
    short = info.get("short", "?")
    L = ["## 7. This release against the one before", ""]
    desc = f"commit `{short}`" + (f" ({info['date']}, \"{info['subject']}\")" if info.get("subject") else "")
    L += [f"\"Before\" is the release at {desc}, which predates sealed configuration and the token store; "
          "\"after\" is this commit's `make build`."
          + (f" The before binary: {bf['source']}." if bf.get("source") else ""), ""]
    if not bf.get("path"):
        L += [f"**Not compared**: no before binary ({bf.get('why')}).", "",
              f"| | after |", "|---|---:|", f"| Stripped static binary | {_size(rel['sizes'].get('after'))} |", ""]
        return L
    c = rel.get("config", {})
    lb, wn = rel.get("loopback"), rel.get("wan")
    L += ["Cold start: the same cold one-shot activation (OAuth S2S → AEM quota, and on loopback JWT → Analytics "
          "report too; plain params as a non-web activation, which both binaries accept; an empty `TMPDIR` each "
          "run, so the token is fetched: one IMS request, counted at the emulator) run by both binaries in the same "
          f"run, alternating (before, after; then after, before), {c.get('warmup')} warm-up pair(s) left out. On "
          f"loopback: {c.get('pairs')} pairs per flow against the plain-HTTP emulator, where what remains is each "
          "binary's own work. "
          + (f"At {wn.get('rtt_ms', 50):g} ms RTT: {c.get('wan_pairs')} pairs over HTTPS through the delay line "
             "of section 1 (IMS and the API on addresses of their own: two TCP and TLS handshakes each). "
             if wn else "")
          + "Wall time from `posix_spawn` to `wait4`; medians, p10–p90 in brackets; the ratio is after ÷ before "
          "of the medians, with the spread of the per-pair ratios.", "",
          f"| | before (`{short}`) | after (this commit) | after ÷ before |", "|---|---:|---:|---:|"]
    sb, sa = rel["sizes"].get("before"), rel["sizes"].get("after")
    grow = ""
    if sb and sa:
        d = sa["stripped_bytes"] - sb["stripped_bytes"]
        grow = f"{sa['stripped_bytes'] / sb['stripped_bytes']:.3f}× ({d:+,} B)"
    L.append(f"| Stripped static binary | {_size(sb)} | {_size(sa)} | {grow} |")
    measured = [(key, rel[key], where, flow) for key, (where, flow) in PARTS.items() if rel.get(key)]
    for _, part, where, flow in measured:
        L.append(f"| Cold start, {flow}, {where}, ms | {_ms_cell(part, 'before')} | {_ms_cell(part, 'after')} | "
                 f"{_ratio_cell(part)} |")
    for _, part, where, flow in measured:
        if where == "loopback":
            rss = [fmt.mib(((part.get(b) or {}).get("rss_kib") or {}).get("median")) + " MiB" for b in BINS]
            L.append(f"| Peak RSS, cold start, {flow}, loopback (median) | {rss[0]} | {rss[1]} | |")
    for _, part, where, flow in measured:
        tok = [fmt.per(((part.get(b) or {}).get("token_requests") or {}).get("mean")) for b in BINS]
        fails = [part.get(b, {}).get("failures", 0) for b in BINS]
        extra = f" ({fails[0]} / {fails[1]} failed runs left out)" if any(fails) else ""
        L.append(f"| IMS token requests per activation, {flow}, {where}{extra} | {tok[0]} | {tok[1]} | |")
    for key, (where, flow) in PARTS.items():
        if rel.get(f"{key}_error"):
            L += ["", f"{flow}, {where}: not measured: {rel[f'{key}_error']}"]
    L.append("")
    return L


# ---- section 8: activations at once in one container --------------------------------------

def _burst_cell(e: dict | None) -> str:
    """p50 / p90 / max of a burst, and its failures."""
    st = (e or {}).get("ms")
    if not st:
        return "–" if not (e or {}).get("failures") else f"all {e['failures']} failed"
    fl = f" ({e['failures']} failed)" if e.get("failures") else ""
    return f"{fmt.ms(st['median'])} / {fmt.ms(st['p90'])} / {fmt.ms(st['max'])}{fl}"


def _pair(first: list | None, second: list | None) -> str:
    return f"{_counts(first)} / {_counts(second)}"


def _connects(b: dict) -> str:
    """A burst's new connections as "IMS + API" from the link's counts (one figure per container
    when they differ), or the emulator's total when the link did not count them."""
    ims, api = b.get("ims_connects"), b.get("api_connects")
    if not ims or not api or len(ims) != len(api):
        return _counts(b.get("connections"))
    cells = [f"{i:,} + {a:,}" for i, a in zip(ims, api)]
    return cells[0] if len(set(cells)) == 1 else ", ".join(cells)


def crowd_section(cr: dict) -> list[str]:
    rtt = cr.get("rtt_ms") or 50.0
    L = ["## 8. Activations at once in one container", ""]
    if cr.get("error"):
        return L + [f"Not measured: {cr['error']}.", ""]
    summ, d, ns = cr.get("summary") or {}, cr.get("derived") or {}, [str(n) for n in cr.get("ns") or []]
    subjects = [s for s in CROWD_SUBJECTS if s in summ]
    probe = (cr.get("link") or {}).get("probe") or {}
    L += [f"At {rtt:g} ms RTT over HTTPS, through the delay line of section 1 (IMS and the API on addresses of "
          "their own), N activations start together in **one Node process**, as the Node.js runtime runs them "
          "when an action's `limits.concurrency` is above 1 (Adobe's default is 200): `bench/peer-node/crowd.js` "
          "requires the action once and calls its `main(params)` N times in one tick, the `__OW_*` variables set "
          "before each call. Each container (a new Node process, an empty `TMPDIR`) runs two bursts: the "
          "**first** opens the connections and fetches the token; the **second**, right after it, finds them "
          f"open. {cr.get('runs')} container(s) per subject and N, the order of the subjects rotating. Each "
          "activation is timed from the burst's start to its answer; p50 / p90 / max in ms over the successful "
          "activations of every container. Counts are the emulator's, per burst (one figure per container when "
          "they differ). The subjects: **ims-action via the launcher** (`actions/ims-action/index.js` with the "
          "binary as `bin/exec` and a seal, as `aio app deploy` ships it), **Adobe's sample** as published (a "
          "token request per call), and **Node with a token cache and keep-alive** (section 1's careful peer), "
          "which the targets hold ims-action against. The first burst also carries what a fresh container does "
          "once, on its first activation: the launcher starts the binary; Node loads its built-in `fetch` "
          "(undici) on first use.", ""]
    link = []
    if probe.get("median_ms") is not None:
        link.append(f"The link as measured: TCP connect median {fmt.ms(probe['median_ms'])} ms "
                    f"({fmt.ms(probe.get('min_ms'))}–{fmt.ms(probe.get('max_ms'))} ms).")
    pk = (cr.get("link") or {}).get("packets") or {}
    if pk.get("forwarded"):
        link.append(f"The delay line forwarded {pk['forwarded']:,} packets in this section, dropped {pk['dropped']:,} "
                    f"and sent {pk['late']:,} ({pk['late'] / pk['forwarded']:.2%}) more than 100 µs after their due "
                    "time.")
    if link:
        L += [" ".join(link), ""]
    if cr.get("failed"):
        L += ["Left out after failing their smoke run: "
              + "; ".join(f"`{k}` ({v[:120]})" for k, v in cr["failed"].items()), ""]
    heads = " | ".join(CROWD_SUBJECTS[s] for s in subjects)
    ref = CROWD_SUBJECTS[CROWD_REFERENCE]
    for burst, title, last in (
            ("first", "First burst: a fresh container", f"ims-action ÷ {ref}, p50 / max"),
            ("second", "Second burst, right after: connections open",
             f"ims-action p50 against {fmt.ms(second_burst_goal_ms(rtt))} ms (1.3 RTT + 10 ms)")):
        L += [f"### {title}", "", "p50 / p90 / max, ms.", "",
              f"| N at once | {heads} | {last} |", "|---:|" + "---:|" * (len(subjects) + 1)]
        for n in ns:
            cells = [_burst_cell(((summ.get(s) or {}).get(n) or {}).get(burst)) for s in subjects]
            dn = d.get(n) or {}
            if burst == "first":
                tail = (f"**{fmt.times(dn.get('first_p50_vs_reference'))}×** / "
                        f"**{fmt.times(dn.get('first_max_vs_reference'))}×**")
            else:
                p50 = dn.get("second_p50_ms")
                tail = "–" if p50 is None else (
                    f"{fmt.ms(p50)} ms, " + ("met" if p50 <= second_burst_goal_ms(rtt) else "**missed**"))
            L.append(f"| {n} | " + " | ".join(cells) + f" | {tail} |")
        L.append("")
    # the kernel's count of SYNs dropped at a full listen queue: a column only when there were any
    dropped = any(x for by_n in summ.values() for e in by_n.values() for b in BURSTS
                  for x in ((e.get(b) or {}).get("listen_drops") or []))
    L += ["### IMS token requests and TCP connections per burst", "",
          "first burst / second burst. Token requests and TLS handshakes are the emulator's counts; TCP "
          "connections are the connection attempts (SYNs) the delay line carried to IMS and to the API, which "
          "the emulator cannot tell apart. Peak RSS over the container's life (`VmHWM`), of the Node process and "
          "of the launcher's child (the ims-action binary).", "",
          "| N at once | Subject | IMS token requests | TCP connections, IMS + API | TLS handshakes | "
          + ("SYNs dropped (listen queue full) | " if dropped else "") + "peak RSS, Node / child MiB |",
          "|---:|---|---:|---:|---:|" + ("---:|" if dropped else "") + "---:|"]
    for n in ns:
        for s in subjects:
            e = (summ.get(s) or {}).get(n) or {}
            f, sc = e.get("first") or {}, e.get("second") or {}
            child = fmt.mib(e.get("child_maxrss_kib")) if s == CROWD_OURS else ""
            err = f" ({len(e['errors'])} container(s) failed)" if e.get("errors") else ""
            L.append(f"| {n} | {CROWD_SUBJECTS[s]}{err} | {_pair(f.get('token_requests'), sc.get('token_requests'))} | "
                     f"{_connects(f)} / {_connects(sc)} | "
                     f"{_pair(f.get('tls_handshakes'), sc.get('tls_handshakes'))} | "
                     + (f"{_pair(f.get('listen_drops'), sc.get('listen_drops'))} | " if dropped else "")
                     + f"{fmt.mib(e.get('node_maxrss_kib'))}" + (f" / {child}" if child else "") + " |")
    if dropped:
        L += ["", "**SYNs dropped**: the kernel of the bench's network namespace dropped connection attempts because "
              "the emulator's listen queue was full (its accept backlog of 1024 is shared by IMS and "
              "the API); each such connection waited about a second for its SYN (or its handshake's last ACK) to be "
              "sent again. That wait "
              "comes from the emulator's listen queue, not from the subject: rows with drops overstate what "
              "opening that many connections at once costs."]
    L += ["", "HTTP/2 to the API (one connection carrying every activation in flight) is not measured: ims-action's "
          "HTTP client, ureq, speaks HTTP/1.1 only, and the Rust HTTP/2 clients (`h2`, through hyper or reqwest) "
          "need an async runtime (tokio), several hundred KiB more in a binary held to 3 MiB and a second, async "
          "style beside the blocking one. What it would save is the first burst's extra connections (their "
          "handshakes' CPU on both ends, not round trips: HTTP/1.1 opens them in parallel, each in the same two "
          "round trips as one); the second burst already runs on open connections.", ""]
    return L


def headline(res: dict) -> str | None:
    """One sentence for the README: the warm and cold medians at the target RTT."""
    wan = res.get("wan")
    rk = target_rtt(wan or {})
    if not rk:
        return None

    def med(mode, s):
        return _med((wan.get(mode, {}).get(s) or {}).get(rk))
    w_ours, w_aio, w_cached = med("warm", "ours"), med("warm", "node-aio"), med("warm", "node-cached")
    c_ours, c_aio = med("cold", "ours"), med("cold", "node-aio")
    if None in (w_ours, w_aio, c_ours, c_aio):
        return None
    return (f"At {rk} ms from Adobe, over HTTPS: a warm activation takes {fmt.ms(w_ours)} ms "
            f"(Adobe's sample: {fmt.ms(w_aio)} ms; a Node action with a token cache and keep-alive: "
            f"{fmt.ms(w_cached)} ms); a cold one {fmt.ms(c_ours)} ms (Adobe's sample: {fmt.ms(c_aio)} ms).")


__all__ = ["render", "headline", "GOALS"]
