"""This release against the one before it (section `release`): the stripped binary's size, and
the same cold one-shot activation (OAuth S2S → AEM quota, token included: one IMS request) run
by both binaries side by side in one run, alternating, on loopback and at 50 ms RTT through the
delay line.

"Before" is the release at git commit BEFORE_COMMIT, which predates sealed configuration and
the token store: both binaries run it as a non-web activation with plain params, which both
accept. Where the "before" binary comes from, in order:

1. `--before-bin PATH` or the environment variable IMS_ACTION_BEFORE_BIN;
2. bench/.build/before-<commit>/ims-action, built by an earlier run;
3. built here: `git archive <commit>` of this clone into bench/.build/before-<commit>/src/, built
   with that commit's own scripts/build-static.sh (what its `make build` runs), in a target
   folder of its own. When the commit is not in the clone (a shallow clone, a tarball) or the
   build fails, the comparison is left out and BENCHMARKS.md says why.
"""
from __future__ import annotations

import copy
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from .emulator import Emulator
from .errors import BenchError
from .flows import FLOWS, flow_params
from .machine import BusyWatch, log
from .paths import BUILD, ROOT
from .procs import run_once
from .sizes import binary_facts
from .stats import counter_delta, per_round_ratios, ratio, summary
from .wan import Wan, rtt_key

BEFORE_COMMIT = "cf51052"
BEFORE_ENV = "IMS_ACTION_BEFORE_BIN"
# How the outer process (outside the network namespace) tells the re-executed one what it found.
RESOLVED_ENV = "IMSBENCH_BEFORE"
BINS = ("before", "after")
RELEASE_RTT_MS = 50.0
LOOPBACK_FLOWS = ("s2s", "jwt")
# The parts of the comparison, as keys of the section's results: where, and which flow.
PARTS = {"loopback": ("loopback", "OAuth S2S"), "loopback_jwt": ("loopback", "JWT"),
         "wan": (f"{RELEASE_RTT_MS:g} ms RTT, HTTPS", "OAuth S2S")}
PART_OF_FLOW = {"s2s": "loopback", "jwt": "loopback_jwt"}


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)


def commit_info(commit: str) -> dict | None:
    """The full hash, date and subject of `commit` in this clone; None when it is not there."""
    if not shutil.which("git"):
        return None
    r = _git("log", "-1", "--format=%H%x00%cs%x00%s", f"{commit}^{{commit}}", "--")
    if r.returncode != 0 or "\0" not in r.stdout:
        return None
    full, date, subject = r.stdout.strip().split("\0", 2)
    return {"commit": full, "short": full[:7], "date": date, "subject": subject}


def cached_path(commit: str) -> Path:
    return BUILD / f"before-{commit}" / "ims-action"


def own_workspace(cargo_toml: str) -> str:
    """The manifest with an empty `[workspace]` table when it has none, so that cargo treats the
    extracted tree as a workspace of its own rather than as a stray member of the repository's
    workspace around it (bench/.build is inside the clone). Changes nothing that is built."""
    if any(line.strip() == "[workspace]" for line in cargo_toml.splitlines()):
        return cargo_toml
    return cargo_toml.rstrip("\n") + "\n\n[workspace]\n"


def build_before(commit: str) -> Path:
    """Extracts `commit` and builds its static binary; returns where it is."""
    home = BUILD / f"before-{commit}"
    src = home / "src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    log(f"building the release before this one ({commit}) in {src.relative_to(ROOT)}")
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit], capture_output=True)
    if tar.returncode != 0:
        raise BenchError(f"git archive {commit} failed: {tar.stderr.decode(errors='replace').strip()[:200]}")
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as t:
        t.extractall(src, filter="data")
    manifest = src / "Cargo.toml"
    manifest.write_text(own_workspace(manifest.read_text()))
    env = {k: v for k, v in os.environ.items() if k != "CARGO_TARGET_DIR"}
    r = subprocess.run([str(src / "scripts" / "build-static.sh")], cwd=src, env=env)
    built = src / "dist" / "ims-action"
    if r.returncode != 0 or not built.exists():
        raise BenchError(f"the build of {commit} failed (exit {r.returncode})")
    shutil.copy2(built, cached_path(commit))
    return cached_path(commit)


def resolve_before(cfg, build: bool) -> dict:
    """{"path": executable or None, "source": how it was found, "why": why not, "commit": ...}."""
    inherited = os.environ.get(RESOLVED_ENV)
    if inherited:
        return json.loads(inherited)
    commit = cfg.before_commit
    info = commit_info(commit)
    out = {"path": None, "source": None, "why": None, "commit": info or {"short": commit}}
    given = cfg.before_bin or os.environ.get(BEFORE_ENV)
    if given:
        p = Path(given).resolve()
        if not os.access(p, os.X_OK):
            raise BenchError(f"the 'before' binary {p} (--before-bin / {BEFORE_ENV}) is not an executable")
        out.update(path=str(p), source=f"given ({'--before-bin' if cfg.before_bin else BEFORE_ENV})")
        return out
    cached = cached_path(commit)
    if cached.exists():
        out.update(path=str(cached), source=f"built from git {commit} by an earlier run ({cached.relative_to(ROOT)})")
        return out
    if not build:
        out["why"] = f"not built (--no-build, and no {cached.relative_to(ROOT)}); set {BEFORE_ENV}"
        return out
    if info is None:
        out["why"] = (f"commit {commit} is not in this clone (shallow clone or no git history: "
                      f"`git fetch --unshallow`, or set {BEFORE_ENV} to its binary)")
        return out
    try:
        out.update(path=str(build_before(commit)), source=f"built from git {commit} (its scripts/build-static.sh)")
    except (BenchError, OSError, tarfile.TarError) as e:
        out["why"] = f"{e}; set {BEFORE_ENV} to its binary"
    return out


def export_resolved(before: dict) -> None:
    """Hands the resolution to the run re-executed in the network namespace (it inherits the
    environment), so that it neither builds nor decides again."""
    os.environ[RESOLVED_ENV] = json.dumps(before)


# ---- measuring ---------------------------------------------------------------------------

def pairs(run_one, n: int, warmup: int, label: str) -> dict:
    """`warmup` + `n` rounds; each round runs both binaries once, the order alternating. Returns
    the samples per binary, tagged with their round, and the failures."""
    samples = {b: [] for b in BINS}
    fails = {b: 0 for b in BINS}
    wrong_count = {b: 0 for b in BINS}
    for rnd in range(warmup + n):
        order = BINS if rnd % 2 == 0 else BINS[::-1]
        for b in order:
            ms, ok, tokens, rss = run_one(b)
            if rnd < warmup:
                continue
            if not ok:
                fails[b] += 1
                continue
            if tokens != 1:  # the activation compared is the one that fetches its token
                wrong_count[b] += 1
            samples[b].append({"round": rnd - warmup, "ms": ms, "maxrss_kb": rss, "token_requests": tokens})
        if (rnd + 1) % 20 == 0 or rnd + 1 == warmup + n:
            log(f"release {label}: round {rnd + 1}/{warmup + n}")
    return {"samples": samples, "failures": fails, "token_count_off": wrong_count}


def compare(measured: dict) -> dict:
    """Medians, spreads and the ratio after ÷ before (of the medians, and p10–p90 of the per-round
    ratios: each round holds one run of each). Pure (bench/tests)."""
    s = measured["samples"]
    out = {b: {"ms": summary([x["ms"] for x in s[b]]),
               "rss_kib": summary([x["maxrss_kb"] for x in s[b] if x.get("maxrss_kb") is not None]),
               "token_requests": summary([x["token_requests"] for x in s[b]]),
               "failures": measured["failures"][b], "token_count_off": measured["token_count_off"][b]}
           for b in BINS}
    med = {b: (out[b]["ms"] or {}).get("median") for b in BINS}
    out["ratio"] = ratio(med["after"], med["before"])
    out["added_ms"] = (med["after"] - med["before"]) if None not in med.values() else None
    out["per_round"] = summary(per_round_ratios(s["after"], s["before"]))
    out["samples_ms"] = {b: [round(x["ms"], 3) for x in s[b]] for b in BINS}
    return out


def loopback_part(cfg, helpers, workdir: Path, bins: dict) -> dict:
    """Plain HTTP on 127.0.0.1, as in section 2: what is left is each binary's own work. Both
    flows: OAuth S2S (the comparison the target is set on) and JWT, whose token request is
    signed on the spot."""
    emu = Emulator(cfg.emulator_path, workdir, cfg.emulator_log, name="release-emulator")
    out = {}
    try:
        base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
                "IMS_ACTION_ALLOW_HOSTS": emu.env.get("IMS_ACTION_ALLOW_HOSTS", "127.0.0.1")}
        for fk in LOOPBACK_FLOWS:
            params = json.dumps(flow_params(emu.env, FLOWS[fk]), separators=(",", ":"))

            def run_one(b, params=params):
                env = dict(base, TMPDIR=tempfile.mkdtemp(prefix="tmp-", dir=workdir))  # token included
                before = emu.stats()
                r = run_once(helpers, [bins[b], params], env)
                d = counter_delta(before, emu.stats())
                return r["wall_ns"] / 1e6, r["ok"], d["token_requests"], r["maxrss_kb"]

            try:
                smoke_check(run_one, f"loopback {fk}")
                out[fk] = compare(pairs(run_one, cfg.release_pairs, cfg.release_warmup, f"loopback {fk}"))
            except BenchError as e:
                out[f"{fk}_error"] = str(e)
                log(f"release loopback {fk}: failed: {e}")
        return out
    finally:
        emu.stop()


def wan_part(cfg, helpers, workdir: Path, bins: dict) -> dict:
    """HTTPS through the delay line at RELEASE_RTT_MS, IMS and the API on addresses of their own,
    as in section 1 (only inside the bench's network namespace)."""
    wcfg = copy.copy(cfg)
    wcfg.rtts = [RELEASE_RTT_MS]
    wan_dir = workdir / "wan"
    wan_dir.mkdir(exist_ok=True)
    wan = Wan(wcfg, helpers, wan_dir)
    try:
        params = json.dumps(wan.params[RELEASE_RTT_MS], separators=(",", ":"))

        def run_one(b):
            env = dict(wan.env, TMPDIR=tempfile.mkdtemp(prefix="tmp-", dir=workdir))
            before = wan.emu.stats()
            r = run_once(helpers, [bins[b], params], env)
            d = counter_delta(before, wan.emu.stats())
            return r["wall_ns"] / 1e6, r["ok"], d["token_requests"], r["maxrss_kb"]

        smoke_check(run_one, f"{rtt_key(RELEASE_RTT_MS)} ms RTT")
        out = compare(pairs(run_one, cfg.release_wan_pairs, cfg.release_warmup, f"{rtt_key(RELEASE_RTT_MS)} ms RTT"))
        out["rtt_ms"] = RELEASE_RTT_MS
        return out
    finally:
        wan.close()


def smoke_check(run_one, label: str) -> None:
    for b in BINS:
        ms, ok, tokens, _ = run_one(b)
        log(f"release smoke {label} {b:6}: {'ok' if ok else 'FAILED'} {ms:8.1f} ms, {tokens} token request(s)")
        if not ok:
            raise BenchError(f"the {b} binary failed its smoke run ({label})")


def release_section(cfg, helpers, workdir: Path, before: dict, with_wan: bool) -> dict:
    out = {"before": {k: before.get(k) for k in ("source", "why", "commit")},
           "after": {"path": cfg.ims_action_path},
           "config": {"pairs": cfg.release_pairs, "wan_pairs": cfg.release_wan_pairs, "warmup": cfg.release_warmup}}
    out["sizes"] = {"after": binary_facts(Path(cfg.ims_action_path), "after")}
    if not before.get("path"):
        log(f"release: no 'before' binary: {before.get('why')}")
        return out
    out["before"]["path"] = before["path"]
    out["sizes"]["before"] = binary_facts(Path(before["path"]), "before")
    bins = {"before": before["path"], "after": cfg.ims_action_path}
    workdir = workdir / "release"
    workdir.mkdir(exist_ok=True)
    try:
        lb = loopback_part(cfg, helpers, workdir, bins)
        for fk in LOOPBACK_FLOWS:
            key = PART_OF_FLOW[fk]
            if fk in lb:
                out[key] = part = lb[fk]
                log(f"release loopback {fk}: before {part['before']['ms']['median']:.2f} ms, "
                    f"after {part['after']['ms']['median']:.2f} ms (×{part['ratio']:.3f})")
            elif f"{fk}_error" in lb:
                out[f"{key}_error"] = lb[f"{fk}_error"]
        BusyWatch.sample("release loopback")
    except (BenchError, OSError) as e:
        out["loopback_error"] = str(e)
        log(f"release loopback: failed: {e}")
    if with_wan:
        try:
            out["wan"] = wan_part(cfg, helpers, workdir, bins)
            BusyWatch.sample("release wan")
            log(f"release {RELEASE_RTT_MS:g} ms RTT: before {out['wan']['before']['ms']['median']:.1f} ms, "
                f"after {out['wan']['after']['ms']['median']:.1f} ms (×{out['wan']['ratio']:.3f})")
        except (BenchError, OSError) as e:
            out["wan_error"] = str(e)
            log(f"release wan: failed: {e}")
    return out
