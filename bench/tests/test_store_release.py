"""Sections 6 and 7: the token store's runs reduced and rendered, and this release against the one
before (where its binary comes from, the comparison, the report, the targets)."""
import os
import stat
import tempfile
import types
import unittest
from pathlib import Path
from unittest import mock

from imsbench import release, render_md, store, targets
from imsbench.errors import BenchError
from tests import fixture


class StoreSummary(unittest.TestCase):
    def setUp(self):
        self.summ = fixture.store()["summary"]

    def test_stores_in_a_fixed_order_with_every_runs_counts(self):
        self.assertEqual(list(self.summ["stores"]), ["memory", "redis", "adobe-state", "adobe-state+20ms"])
        st = self.summ["stores"]
        self.assertEqual(st["memory"]["one_shot"]["token_requests"], [20, 20])
        self.assertEqual(st["redis"]["actionloop"]["token_requests"], [1, 1])
        self.assertEqual(st["adobe-state"]["actionloop"]["token_requests"], [1, 2], "counts are kept, not averaged")
        self.assertEqual(st["redis"]["actionloop"]["store_requests_per_warm_activation"], 0.0)

    def test_warm_hit_cost_is_the_store_minus_memory_per_run_then_the_median(self):
        w = self.summ["stores"]["redis"]["warm_hit"]
        self.assertEqual([round(x, 3) for x in w["cost_ms_runs"]], [1.3, 1.5])
        self.assertAlmostEqual(w["cost_ms"], 1.4)
        self.assertEqual(self.summ["stores"]["memory"]["warm_hit"]["cost_ms"], 0.0)
        self.assertEqual(self.summ["stores"]["redis"]["warm_hit"]["from"], "the shared store (cold TMPDIR)")

    def test_failing_cases_add_up_and_the_worst_counts(self):
        f = self.summ["failing"]
        self.assertEqual(list(f), ["none", "redis refused", "redis hung", "adobe-state 503", "adobe-state hung"])
        self.assertEqual((f["redis hung"]["samples"], f["redis hung"]["ok"]), (30, 30))
        self.assertEqual(self.summ["failing_worst_added_ms"], 186.3)
        self.assertFalse(self.summ["redis_missing"])

    def test_no_redis_is_said(self):
        run = fixture.store_run()
        for part in ("cold_burst", "warm_hit_one_shot"):
            del run[part]["redis"]
        summ = store.summarize([run])
        self.assertTrue(summ["redis_missing"])
        rows = {r[0]: r for r in targets.store_rows({"summary": summ})}
        burst = next(r for name, r in rows.items() if "cold one-shot containers" in name)
        self.assertIsNone(burst[1])
        self.assertIn("not installed", burst[6])

    def test_argv_passes_the_options_to_the_example(self):
        cfg = types.SimpleNamespace(ims_action_path="/b/ims-action", store_containers=20, store_activations=50,
                                    store_samples=30, ims_latency_ms=300, state_latency_ms=20)
        a = store.argv(cfg, "/t/store-bench")
        self.assertEqual(a[:3], ["/t/store-bench", "--bin", "/b/ims-action"])
        self.assertEqual(a[a.index("--activations") + 1], "50")
        self.assertEqual(a[a.index("--state-latency-ms") + 1], "20")


class StoreTargets(unittest.TestCase):
    def rows(self, st):
        return {t["target"]: t for t in targets.targets({"store": st})}

    def test_one_token_request_per_burst_with_redis_and_the_failing_bound(self):
        rows = self.rows(fixture.store())
        burst = rows["Redis store: IMS token requests for 20 cold one-shot containers started together (worst run)"]
        self.assertEqual((burst["status"], burst["measured"]), ("PASS", 1))
        loop = rows["Redis store: IMS token requests for 1,000 activations over 20 actionloop containers started "
                    "together (worst run)"]
        self.assertEqual(loop["status"], "PASS")
        failing = next(t for n, t in rows.items() if n.startswith("A failing store"))
        self.assertEqual((failing["status"], failing["measured"]), ("PASS", 186.3))

    def test_a_second_token_request_in_any_run_is_a_miss(self):
        st = fixture.store()
        st["runs"][1]["cold_burst"]["redis"]["one_shot"]["token_requests"] = 2
        st["runs"][0]["failing_store"]["redis hung"]["added_median_ms"] = 250.0
        st["summary"] = store.summarize(st["runs"])
        rows = self.rows(st)
        burst = next(t for n, t in rows.items() if "cold one-shot containers" in n)
        self.assertEqual((burst["status"], burst["measured"]), ("MISS", 2))
        failing = next(t for n, t in rows.items() if n.startswith("A failing store"))
        self.assertEqual(failing["status"], "MISS")


class StoreMarkdown(unittest.TestCase):
    def setUp(self):
        self.md = "\n".join(render_md.store_section(fixture.store()))

    def test_tables_say_what_they_count(self):
        self.assertIn("## 6. The shared token store", self.md)
        row = next(ln for ln in self.md.splitlines() if ln.startswith("| Adobe I/O State |"))
        self.assertIn("| **1, 2** |", row, "runs that differ are listed one by one")
        redis = next(ln for ln in self.md.splitlines() if ln.startswith("| Redis |") and "**1**" in ln)
        self.assertTrue(redis.endswith("| 0 |"), redis)  # no store request per warm activation
        cost = next(ln for ln in self.md.splitlines() if ln.startswith("| Redis |") and "cost" not in ln
                    and "shared store" in ln)
        self.assertIn("**+1.40**", cost)
        self.assertIn("| Adobe I/O State, 20 ms added to every State request |", self.md)
        self.assertIn("| redis hung | 30 | 30 |", self.md)
        for bad in ("None", "nan", "{", "}"):
            self.assertNotIn(bad, self.md)

    def test_a_failed_section_says_so(self):
        md = "\n".join(render_md.store_section({"error": "store-bench exited 2"}))
        self.assertIn("Not measured: store-bench exited 2.", md)


class ReleaseCompare(unittest.TestCase):
    def test_ratio_of_medians_and_per_pair_spread(self):
        rel = fixture.release(before_ms=1.0, after_ms=1.5)
        lb = rel["loopback"]
        self.assertAlmostEqual(lb["ratio"], (1.5 + 0.045) / (1.0 + 0.045))
        self.assertAlmostEqual(lb["added_ms"], 0.5)
        self.assertEqual(lb["per_round"]["n"], 10)
        self.assertEqual(lb["before"]["token_requests"]["mean"], 1)
        self.assertEqual(len(lb["samples_ms"]["after"]), 10)

    def test_targets_within_five_percent(self):
        rows = {t["target"]: t for t in targets.targets({"release": fixture.release(before_ms=1.0, after_ms=1.03)})}
        lb = rows["Cold start, this release ÷ the one before (cf51052), OAuth S2S, loopback"]
        self.assertEqual(lb["status"], "PASS")
        self.assertEqual(rows["Cold start, this release ÷ the one before (cf51052), JWT, loopback"]["status"], "PASS")
        wan = rows["Cold start, this release ÷ the one before (cf51052), OAuth S2S, 50 ms RTT, HTTPS"]
        self.assertEqual(wan["status"], "PASS")
        rows = {t["target"]: t for t in targets.targets({"release": fixture.release(before_ms=1.0, after_ms=2.0)})}
        miss = rows["Cold start, this release ÷ the one before (cf51052), OAuth S2S, loopback"]
        self.assertEqual(miss["status"], "MISS")
        self.assertIn("% over", miss["text"])

    def test_markdown_side_by_side(self):
        md = "\n".join(render_md.release_section(fixture.release(before_ms=1.0, after_ms=1.5)))
        self.assertIn("| Stripped static binary | 2.35 MiB (2,466,760 B) | 2.81 MiB (2,946,184 B) | 1.194× (+479,424 B) |",
                      md)
        row = next(ln for ln in md.splitlines() if ln.startswith("| Cold start, OAuth S2S, loopback"))
        self.assertIn("**1.48×**, +0.50 ms", row)
        faster = "\n".join(render_md.release_section(fixture.release(before_ms=1.5, after_ms=1.0)))
        self.assertIn("−0.50 ms", faster)
        self.assertIn("| Cold start, JWT, loopback, ms |", md)
        self.assertIn("| Cold start, OAuth S2S, 50 ms RTT, HTTPS, ms |", md)
        self.assertIn("commit `cf51052` (2026-11-22, \"Parsed-key cache\")", md)
        for bad in ("None", "nan", "{", "}"):
            self.assertNotIn(bad, md)

    def test_without_a_before_binary_the_report_says_why(self):
        rel = fixture.release()
        rel["before"].update(path=None, source=None, why="commit cf51052 is not in this clone")
        for k in ("loopback", "loopback_jwt", "wan"):
            del rel[k]
        del rel["sizes"]["before"]
        md = "\n".join(render_md.release_section(rel))
        self.assertIn("**Not compared**: no before binary (commit cf51052 is not in this clone).", md)
        self.assertIn("2.81 MiB", md)
        rows = [t for t in targets.targets({"release": rel}) if t["target"].startswith("Cold start, this release")]
        self.assertEqual([t["status"] for t in rows], ["n/a", "n/a", "n/a"])
        self.assertIn("not in this clone", rows[0]["note"])


class BeforeBinary(unittest.TestCase):
    def setUp(self):
        clean = {k: v for k, v in os.environ.items() if k not in (release.BEFORE_ENV, release.RESOLVED_ENV)}
        patcher = mock.patch.dict(os.environ, clean, clear=True)
        patcher.start()
        self.addCleanup(patcher.stop)
        self.cfg = types.SimpleNamespace(before_commit="0000000", before_bin=None)

    def test_the_manifest_becomes_a_workspace_of_its_own_once(self):
        toml = '[package]\nname = "ims-action"\n'
        once = release.own_workspace(toml)
        self.assertTrue(once.endswith("\n[workspace]\n"))
        self.assertEqual(release.own_workspace(once), once)

    def test_a_binary_given_in_the_environment_is_used(self):
        with tempfile.TemporaryDirectory() as d:
            exe = Path(d) / "old"
            exe.write_text("#!/bin/sh\n")
            exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
            os.environ[release.BEFORE_ENV] = str(exe)
            got = release.resolve_before(self.cfg, build=True)
            self.assertEqual((got["path"], got["source"]), (str(exe.resolve()), f"given ({release.BEFORE_ENV})"))
            os.environ[release.BEFORE_ENV] = str(Path(d) / "missing")
            with self.assertRaises(BenchError):
                release.resolve_before(self.cfg, build=True)

    def test_a_commit_not_in_the_clone_is_reported_not_fatal(self):
        got = release.resolve_before(self.cfg, build=True)
        self.assertIsNone(got["path"])
        self.assertIn("not in this clone", got["why"])
        self.assertIn(release.BEFORE_ENV, got["why"])
        got = release.resolve_before(self.cfg, build=False)
        self.assertIn("--no-build", got["why"])

    def test_the_run_in_the_namespace_inherits_the_decision(self):
        release.export_resolved({"path": "/p", "source": "s", "why": None, "commit": {"short": "x"}})
        self.assertEqual(release.resolve_before(self.cfg, build=True)["path"], "/p")


if __name__ == "__main__":
    unittest.main()
