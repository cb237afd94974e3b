"""Section 8, activations at once in one container: the bursts reduced, the targets, the report,
the options, and bench/peer-node/crowd.js driving a stand-in action (real Node, no network)."""
import contextlib
import copy
import json
import os
import select
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from imsbench import cli, crowd, netns, render_md, targets
from imsbench.paths import CROWD_JS
from tests import fixture


class Reduction(unittest.TestCase):
    def setUp(self):
        self.c = fixture.crowd()
        self.summ = self.c["summary"]

    def test_every_containers_activations_are_pooled_per_burst(self):
        first = self.summ["appbuilder"]["200"]["first"]
        self.assertEqual(first["runs"], 2)
        self.assertEqual(first["activations"], 400)
        self.assertEqual(first["ms"]["n"], 400)
        self.assertEqual(first["ms"]["median"], 299.5)  # 200 + 0..199, twice
        self.assertEqual(first["ms"]["max"], 399.0)
        self.assertEqual(self.summ["node-cached"]["10"]["second"]["ms"]["max"], 64.0)

    def test_counts_are_kept_per_container_not_summed(self):
        aio = self.summ["node-aio"]["200"]
        self.assertEqual(aio["first"]["token_requests"], [200, 200])
        self.assertEqual(aio["second"]["token_requests"], [200, 200])
        self.assertEqual(aio["first"]["connections"], [400, 400])
        self.assertEqual(aio["second"]["connections"], [0, 0])
        self.assertEqual(self.summ["appbuilder"]["10"]["first"]["tls_handshakes"], [2, 2])

    def test_failed_activations_are_counted_and_left_out_of_the_times(self):
        raw = [fixture.crowd_record("appbuilder", 4, 0, 100.0, 50.0, failed=((3,), ())),
               fixture.crowd_record("appbuilder", 4, 1, 100.0, 50.0)]
        e = crowd.summarize(raw, [4])["appbuilder"]["4"]["first"]
        self.assertEqual(e["failures"], 1)
        self.assertEqual(e["activations"], 8)
        self.assertEqual(e["ms"]["n"], 7)
        self.assertEqual(e["ms"]["max"], 103.0)  # from the container where the 4th succeeded

    def test_a_container_that_failed_is_reported_not_measured(self):
        raw = [fixture.crowd_record("appbuilder", 4, 0, 100.0, 50.0),
               {"subject": "appbuilder", "n": 4, "run": 1, "error": "crowd.js gave no answer within 60 s"}]
        e = crowd.summarize(raw, [4])["appbuilder"]["4"]
        self.assertEqual(e["errors"], ["crowd.js gave no answer within 60 s"])
        self.assertEqual(e["first"]["runs"], 1)

    def test_peak_rss_of_the_launchers_child(self):
        self.assertEqual(self.summ["appbuilder"]["200"]["child_maxrss_kib"], 4000)
        self.assertIsNone(self.summ["node-cached"]["200"]["child_maxrss_kib"])
        self.assertEqual(self.summ["node-cached"]["200"]["node_maxrss_kib"], 45_000)

    def test_burst_record_keeps_times_failures_and_counts(self):
        b = {"n": 2, "ok": 1, "ms": [1.23456, 2.0], "failed": [1], "issued_ms": 0.01234, "errors": ["{}"],
             "rss_kib": {"self": 1, "children": [2]}}
        delta = {"token_requests": 1, "api_requests": 2, "tokens_issued": 1, "connections": 2, "tls_handshakes": 2,
                 "tls_resumed": 0} | crowd.plain_delta({"listen_drops": 5, "syn_retransmits": 1, "ims_connects": 3,
                                                        "api_connects": 3},
                                                       {"listen_drops": 77, "syn_retransmits": 73, "ims_connects": 4,
                                                        "api_connects": 4})
        r = crowd.burst_record(b, delta)
        self.assertEqual(r["ms"], [1.235, 2.0])
        self.assertEqual(r["failed"], [1])
        self.assertEqual(r["counts"], {"token_requests": 1, "connections": 2, "tls_handshakes": 2, "ims_connects": 1,
                                       "api_connects": 1, "listen_drops": 72, "syn_retransmits": 72,
                                       "api_requests": 2, "tls_resumed": 0})

    def test_kernel_tcp_counters_from_proc_net_netstat(self):
        text = ("TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPSynRetrans\n"
                "TcpExt: 0 70 72 73\n"
                "IpExt: InNoRoutes\n"
                "IpExt: 4\n")
        self.assertEqual(crowd.parse_netstat(text), {"TcpExt": {"SyncookiesSent": 0, "ListenOverflows": 70,
                                                                "ListenDrops": 72, "TCPSynRetrans": 73},
                                                     "IpExt": {"InNoRoutes": 4}})
        self.assertEqual(set(crowd.kernel_tcp()), {"listen_drops", "syn_retransmits"})  # this machine's, any values


class Derived(unittest.TestCase):
    def test_ratios_to_the_cached_node_action_and_tokens_per_container(self):
        d = fixture.crowd()["derived"]
        self.assertAlmostEqual(d["200"]["first_p50_vs_reference"], 299.5 / 399.5)
        self.assertAlmostEqual(d["200"]["first_max_vs_reference"], 399.0 / 499.0)
        self.assertEqual(d["200"]["second_p50_ms"], 4099.5)
        self.assertEqual(d["1"]["second_p50_ms"], 51.0)
        self.assertEqual(d["10"]["tokens_per_run"], 1)

    def test_the_worst_container_decides_the_token_count(self):
        raw = fixture.crowd_raw()
        raw[0]["bursts"][1]["counts"]["token_requests"] = 1  # run 0, N = 1: a second token
        c = dict(fixture.crowd(), raw=raw, summary=crowd.summarize(raw, [1, 10, 200]))
        self.assertEqual(crowd.derive(c)["1"]["tokens_per_run"], 2)

    def test_no_reference_no_ratio(self):
        c = fixture.crowd()
        del c["summary"]["node-cached"]
        d = crowd.derive(c)
        self.assertIsNone(d["10"]["first_p50_vs_reference"])
        self.assertEqual(d["10"]["second_p50_ms"], 55.5)  # judged against the round trip: still there

    def test_second_burst_goal(self):
        self.assertEqual(crowd.second_burst_goal_ms(50.0), 75.0)


class Link(unittest.TestCase):
    def test_the_delay_lines_syn_counts(self):
        self.assertEqual(netns.parse_syns("syns 14=3 15=12\n"), {14: 3, 15: 12})
        self.assertEqual(netns.parse_syns("syns\n"), {})
        self.assertIsNone(netns.parse_syns("ready sched=fifo\n"))
        self.assertIsNone(netns.parse_syns("syns 14=x\n"))


class Targets(unittest.TestCase):
    def rows(self, c):
        return [t for t in targets.targets({"crowd": c}) if t["target"].startswith("Activations at once")]

    def test_the_binarys_memory_at_the_largest_n(self):
        rss = self.rows(fixture.crowd())[4]
        self.assertIn("N = 200 in flight", rss["target"])
        self.assertAlmostEqual(rss["measured"], 4000 / 1024)
        self.assertEqual((rss["status"], rss["goal"]), ("PASS", 32.0))
        c = fixture.crowd()
        c["summary"]["appbuilder"]["200"]["child_maxrss_kib"] = 40 * 1024
        self.assertEqual(self.rows(c)[4]["status"], "MISS")

    def test_rows_judged_at_the_worst_n(self):
        p50, mx, second, tokens, _ = self.rows(fixture.crowd())
        self.assertEqual(p50["status"], "PASS")
        self.assertAlmostEqual(p50["measured"], 299.5 / 399.5)
        self.assertEqual(p50["goal"], 1.1)
        self.assertIn("worst at N = 200", p50["note"])
        self.assertEqual(mx["status"], "PASS")
        self.assertEqual(mx["goal"], 1.25)
        self.assertEqual(second["status"], "MISS")
        self.assertEqual(second["measured"], 4099.5)
        self.assertEqual(second["goal"], 75.0)
        self.assertIn("worst at N = 200", second["note"])
        self.assertEqual(tokens["status"], "PASS")
        self.assertEqual(tokens["note"], "", "every N scored the same: no worst N to name")
        self.assertIn("N = 1, 10, 200", tokens["target"])

    def test_the_first_burst_misses_when_slower_than_the_cached_node_action(self):
        c = fixture.crowd()
        cached = c["summary"]["node-cached"]["10"]["first"]["ms"]["median"]
        c["summary"]["appbuilder"]["10"]["first"]["ms"]["median"] = 1.2 * cached
        c["derived"] = crowd.derive(c)
        p50 = self.rows(c)[0]
        self.assertEqual(p50["status"], "MISS")
        self.assertIn("worst at N = 10", p50["note"])

    def test_a_second_token_is_a_miss(self):
        raw = fixture.crowd_raw()
        raw[-3]["bursts"][1]["counts"]["token_requests"] = 1
        c = dict(fixture.crowd(), raw=raw, summary=crowd.summarize(raw, [1, 10, 200]))
        c["derived"] = crowd.derive(c)
        self.assertEqual(self.rows(c)[3]["status"], "MISS")

    def test_failed_activations_are_said_beside_the_verdict(self):
        raw = fixture.crowd_raw()
        raw[0]["bursts"][0]["failed"] = [0]
        c = dict(fixture.crowd(), raw=raw, summary=crowd.summarize(raw, [1, 10, 200]))
        c["derived"] = crowd.derive(c)
        self.assertTrue(all("1 of its activations failed" in t["note"] for t in self.rows(c)[:4]))

    def test_not_measured_and_failed_sections(self):
        self.assertTrue(all(t["status"] == "n/a" for t in self.rows(None)))
        rows = self.rows({"error": "cannot create a network namespace"})
        self.assertTrue(all(t["status"] == "n/a" and "network namespace" in t["note"] for t in rows))


class Markdown(unittest.TestCase):
    def setUp(self):
        self.res = fixture.results()
        self.res["targets"] = targets.targets(self.res)
        self.md = render_md.render(self.res, "docs/bench.svg", "docs/bench-wan.svg")
        self.sec = self.md[self.md.index("## 8. Activations at once in one container"):]

    def test_tables_per_burst_with_a_column_per_subject(self):
        first = self.sec[self.sec.index("### First burst"):self.sec.index("### Second burst")]
        head = next(ln for ln in first.splitlines() if ln.startswith("| N at once"))
        for label in crowd.SUBJECTS.values():
            self.assertIn(label, head)
        row = next(ln for ln in first.splitlines() if ln.startswith("| 200 |"))
        self.assertIn("| 300 / 379 / 399 |", row)  # p50 / p90 / max of 200 + 0..199
        self.assertIn(f"**{render_md.fmt.times(299.5 / 399.5)}×**", row)

    def test_second_burst_said_met_or_missed(self):
        second = self.sec[self.sec.index("### Second burst"):self.sec.index("### IMS token requests")]
        self.assertIn("75.0 ms (1.3 RTT + 10 ms)", second)
        self.assertIn("| 1 | 51.0 / 51.0 / 51.0 |", second)
        self.assertTrue(next(ln for ln in second.splitlines() if ln.startswith("| 1 |")).endswith("51.0 ms, met |"))
        self.assertIn("**missed**", next(ln for ln in second.splitlines() if ln.startswith("| 200 |")))

    def test_counts_per_burst_and_the_childs_memory(self):
        counts = self.sec[self.sec.index("### IMS token requests"):]
        aio = next(ln for ln in counts.splitlines() if ln.startswith("| 200 | Adobe's sample"))
        self.assertIn("| 200 / 200 | 200 + 200 / 0 + 0 | 400 / 0 |", aio)
        ours = next(ln for ln in counts.splitlines() if ln.startswith("| 200 | ims-action"))
        self.assertTrue(ours.endswith("| 0 / 0 | 43.9 / 3.9 |"), ours)
        cached = next(ln for ln in counts.splitlines() if ln.startswith("| 200 | Node"))
        self.assertIn("| 72 / 0 |", cached)
        self.assertIn("**SYNs dropped**", counts)

    def test_no_drops_no_note(self):
        c = fixture.crowd()
        for by_n in c["summary"].values():
            for e in by_n.values():
                for b in crowd.BURSTS:
                    e[b]["listen_drops"] = [0 for _ in e[b]["listen_drops"]]
        sec = "\n".join(render_md.crowd_section(c))
        self.assertNotIn("**SYNs dropped**", sec)
        self.assertNotIn("SYNs dropped (listen queue full)", sec, "no column of zeros")
        ours = next(ln for ln in sec.splitlines() if ln.startswith("| 200 | ims-action"))
        self.assertTrue(ours.endswith("| 1 / 0 | 1 + 1 / 0 + 0 | 2 / 0 | 43.9 / 3.9 |"), ours)

    def test_the_link_as_measured(self):
        self.assertIn("TCP connect median 50.3 ms (50.1–52.0 ms). The delay line forwarded 100 packets in this "
                      "section, dropped 0 and sent 0 (0.00%)", self.sec)

    def test_listed_in_what_the_numbers_measure_and_clean(self):
        self.assertIn("**Activations at once in one container (section 8)**", self.md)
        self.assertIn("HTTP/2 to the API", self.sec)
        self.assertIn("Activations at once (at 50 ms RTT, N = 1, 10, 200 at once)", self.md)
        for bad in ("None", "nan", "{", "}"):
            self.assertNotIn(bad, self.sec)

    def test_runs_that_differ_show_each(self):
        res = copy.deepcopy(self.res)
        res["crowd"]["summary"]["node-cached"]["10"]["first"]["token_requests"] = [10, 1]
        sec = render_md.crowd_section(res["crowd"])
        self.assertTrue(any("| 10, 1 / 0 |" in ln for ln in sec if ln.startswith("| 10 | Node")))

    def test_connections_per_host_per_container_or_the_emulators_total(self):
        self.assertEqual(render_md._connects({"ims_connects": [10, 10], "api_connects": [10, 10],
                                              "connections": [20, 20]}), "10 + 10")
        self.assertEqual(render_md._connects({"ims_connects": [10, 1], "api_connects": [10, 10],
                                              "connections": [20, 11]}), "10 + 10, 1 + 10")
        self.assertEqual(render_md._connects({"connections": [20, 20]}), "20")

    def test_a_failed_section_says_why(self):
        self.assertEqual(render_md.crowd_section({"error": "no namespace"})[2], "Not measured: no namespace.")


class Options(unittest.TestCase):
    def test_sizes_runs_and_rtt(self):
        a = cli.parse_args([])
        self.assertIn("crowd", a.sections)
        self.assertEqual((a.crowd_ns, a.crowd_runs, a.crowd_rtt), ([1, 10, 50, 200], 3, 50.0))
        q = cli.parse_args(["--quick", "--sections", "crowd"])
        self.assertEqual((q.crowd_ns, q.crowd_runs), ([1, 10, 50], 1))
        b = cli.parse_args(["--crowd-n", "5,20", "--crowd-runs", "2", "--crowd-rtt", "10"])
        self.assertEqual((b.crowd_ns, b.crowd_runs, b.crowd_rtt), ([5, 20], 2, 10.0))
        for bad in (["--crowd-n", "0"], ["--crowd-n", "1,1"], ["--crowd-n", "x"], ["--crowd-runs", "0"]):
            with self.assertRaises(SystemExit), open(os.devnull, "w") as null:
                with contextlib.redirect_stderr(null):
                    cli.parse_args(bad)


# A stand-in action for crowd.js: every activation waits at a gate that opens only once N
# activations are in flight at the same time (a driver that ran them one after the other would
# never open it), and fails if its activation id is one it has seen, or if the id the runtime's
# variables named when main was called changed under it.
GATED_ACTION = r"""
let inFlight = 0
let release
let gate = new Promise(r => { release = r })
const seen = new Set()
exports.main = async (params) => {
  const id = process.env.__OW_ACTIVATION_ID
  if (seen.has(id)) return { error: `activation id ${id} seen twice` }
  seen.add(id)
  if (++inFlight === params.N) release()
  await gate
  inFlight--
  if (inFlight === 0) gate = new Promise(r => { release = r })
  if (params.FAIL_ODD && Number(id.slice(-1)) % 2 === 1) return { error: { statusCode: 502 } }
  if (params.THROW) throw new Error('boom')
  return { statusCode: 200, body: { id } }
}
"""


@unittest.skipUnless(shutil.which("node"), "node is not on PATH")
class Driver(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="crowd-test-"))
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        (self.dir / "gated.js").write_text(GATED_ACTION)

    def start(self, params: dict):
        r, w = os.pipe()
        # fd 3 of crowd.js is the pipe's write end, as spawn_rss --dup gives it in the bench
        p = subprocess.Popen(["sh", "-c", 'fd=$1; shift; exec "$@" 3>&"$fd"', "sh", str(w),
                              "node", str(CROWD_JS), str(self.dir / "gated.js"), json.dumps(params)],
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             pass_fds=(w,))
        os.close(w)
        self.addCleanup(os.close, r)
        self.addCleanup(self.stop, p)
        buf = bytearray()

        def answer():
            while b"\n" not in buf:
                if not select.select([r], [], [], 20)[0]:
                    self.fail("crowd.js gave no answer within 20 s (activations not run at once?)")
                chunk = os.read(r, 65536)
                if not chunk:
                    self.fail(f"crowd.js exited: {p.stderr.read().decode()[-300:]}")
                buf.extend(chunk)
            i = buf.index(b"\n")
            line = bytes(buf[:i])
            del buf[:i + 1]
            return json.loads(line)
        self.assertEqual(answer(), {"ready": True})
        return p, answer

    @staticmethod
    def stop(p):
        if p.poll() is None:
            p.kill()
        p.wait()
        for f in (p.stdin, p.stderr):
            f.close()

    def burst(self, p, answer, n):
        p.stdin.write(json.dumps({"n": n}).encode() + b"\n")
        p.stdin.flush()
        return answer()

    def test_n_activations_at_once_each_with_its_own_id_twice(self):
        p, answer = self.start({"N": 25})
        for _ in range(2):  # the second burst continues the ids: none is seen twice
            b = self.burst(p, answer, 25)
            self.assertEqual((b["n"], b["ok"], b["failed"]), (25, 25, []))
            self.assertEqual(len(b["ms"]), 25)
            self.assertTrue(all(x >= 0 for x in b["ms"]))
            self.assertGreater(b["rss_kib"]["self"], 0)
        p.stdin.close()
        self.assertEqual(p.wait(timeout=20), 0, "stdin's end ends it")

    def test_failed_results_and_throws_are_counted_not_fatal(self):
        p, answer = self.start({"N": 4, "FAIL_ODD": True})
        b = self.burst(p, answer, 4)
        self.assertEqual((b["ok"], b["failed"]), (2, [0, 2]))  # ids bench…01 and …03
        self.assertEqual(len(b["errors"]), 2)
        p2, answer2 = self.start({"N": 3, "THROW": True})
        b = self.burst(p2, answer2, 3)
        self.assertEqual((b["ok"], b["failed"]), (0, [0, 1, 2]))
        self.assertIn("main threw: boom", b["errors"][0])


if __name__ == "__main__":
    unittest.main()
