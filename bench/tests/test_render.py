"""Targets, the derived ratios, BENCHMARKS.md and the charts, from a synthetic run."""
import unittest
import xml.etree.ElementTree as ET

from imsbench import fmt, render_md, render_svg, targets, wan
from tests import fixture


class Formats(unittest.TestCase):
    def test_numbers_read_well(self):
        self.assertEqual([fmt.ms(x) for x in (0.823, 50.12, 586.4, 1065.2)], ["0.82", "50.1", "586", "1,065"])
        self.assertEqual([fmt.us(x) for x in (3.21, 1234.5)], ["3.2", "1,234"])
        self.assertEqual([fmt.times(x) for x in (713.2, 61.04, 4.213, 1.0031, 0.6561)],
                         ["713", "61", "4.21", "1.003", "0.656"])
        self.assertEqual([fmt.per(x) for x in (0, 1.0, 2, 0.005, 1.5)], ["0", "1", "2", "0.005", "1.50"])
        for f in (fmt.ms, fmt.us, fmt.times, fmt.mib, fmt.per):
            self.assertEqual(f(None), "–")
            self.assertEqual(f(float("nan")), "–")
        self.assertEqual(fmt.esc('a<b & "c">'), "a&lt;b &amp; &quot;c&quot;&gt;")
        self.assertEqual([fmt.signed_ms(x) for x in (1.4, -0.7, 0.0, -184.2)], ["+1.40", "−0.70", "+0.00", "−184"])


class Derived(unittest.TestCase):
    def test_each_subject_against_its_limit_and_the_peers(self):
        w = fixture.wan()
        d = wan.derive(w)
        lim = w["cold"]["limit6"]["50"]["ms"]["median"]
        ours = w["cold"]["ours"]["50"]["ms"]["median"]
        self.assertAlmostEqual(d["cold"]["ours"]["50"]["vs_limit"], ours / lim)
        self.assertEqual(d["cold"]["limit6"]["50"]["vs_limit"], 1.0)
        aio = w["warm"]["node-aio"]["10"]["ms"]["median"]
        self.assertAlmostEqual(d["warm"]["ours"]["10"]["node-aio_vs"], aio / w["warm"]["ours"]["10"]["ms"]["median"])
        self.assertIn("node-cached_vs", d["warm"]["appbuilder"]["0"])
        self.assertNotIn("node-cached_vs", d["cold"]["ours"]["0"])

    def test_a_missing_limit_gives_no_ratio(self):
        w = fixture.wan()
        del w["warm"]["limit"]
        self.assertIsNone(wan.derive(w)["warm"]["ours"]["50"]["vs_limit"])


class Targets(unittest.TestCase):
    def rows(self, **kw):
        return {t["target"]: t for t in targets.targets(fixture.results(**kw))}

    def test_verdicts(self):
        self.assertEqual(targets.verdict(1.01, 1.02, "max", "×", "{:.3f}")["status"], "PASS")
        miss = targets.verdict(1.0404, 1.02, "max", "×", "{:.3f}")
        self.assertEqual(miss["status"], "MISS")
        self.assertIn("2.0 % over", miss["text"])
        self.assertIn("1.50× short", targets.verdict(200, 300, "min")["text"])
        self.assertEqual(targets.verdict(None, 1, "max")["status"], "n/a")

    def test_the_wan_targets_are_judged_at_50_ms(self):
        rows = self.rows(warm_ours_at_50=50.6)
        warm = next(t for name, t in rows.items() if name.startswith("Warm activation at 50 ms RTT, ims-action"))
        self.assertEqual(warm["status"], "PASS")
        lim = fixture.wan()["warm"]["limit"]["50"]["ms"]["median"]
        self.assertAlmostEqual(warm["measured"], 50.6 / lim)
        rows = self.rows(warm_ours_at_50=60.0)
        warm = next(t for name, t in rows.items() if name.startswith("Warm activation at 50 ms RTT, ims-action"))
        self.assertEqual(warm["status"], "MISS")

    def test_the_kept_rows_are_all_there(self):
        names = list(self.rows())
        for part in ("Cold activation at 50 ms", "App Builder route", "Process overhead (loopback), OAuth S2S: Adobe",
                     "Process overhead (loopback), JWT: lean", "Peak RSS", "Stripped static binary",
                     "Token requests per 1,000 warm activations, OAuth S2S"):
            self.assertTrue(any(part in n for n in names), part)
        self.assertFalse(any("bare-request" in n for n in names), "the loopback ≤ 1.2× row is gone")

    def test_the_largest_rtt_stands_in_for_50_ms(self):
        self.assertEqual(targets.target_rtt({"rtts": ["0", "20"]}), "20")
        self.assertEqual(targets.target_rtt({"rtts": ["50", "100"]}), "50")
        self.assertIsNone(targets.target_rtt({}))


class Markdown(unittest.TestCase):
    def setUp(self):
        self.res = fixture.results()
        self.res["targets"] = targets.targets(self.res)
        self.md = render_md.render(self.res, "docs/bench.svg", "docs/bench-wan.svg")

    def test_the_50_ms_table_comes_first(self):
        at = [self.md.index(f"### At {r} ms RTT") for r in ("50", "10", "0")]
        self.assertEqual(at, sorted(at))
        self.assertLess(self.md.index("## Targets"), self.md.index("## 1. Over a network"))

    def test_rows_carry_limit_ratio_and_counts(self):
        table = self.md[self.md.index("### At 50 ms RTT"):self.md.index("### At 10 ms RTT")]
        limit_row = next(ln for ln in table.splitlines() if "| cold | limit: per host" in ln)
        self.assertIn("(the limit)", limit_row)
        self.assertTrue(limit_row.endswith("| 1 | 2 | 2 |"), limit_row)  # token, connections, handshakes
        ours = next(ln for ln in table.splitlines() if "| warm | ims-action, ActionLoop" in ln)
        self.assertIn("| 50.6 |", ours)
        self.assertTrue(ours.endswith("| 0 | 0 | 0 |"), ours)
        lim = self.res["wan"]["warm"]["limit"]["50"]["ms"]["median"]
        self.assertIn(f"**{fmt.times(50.6 / lim)}×**", ours)

    def test_says_what_the_numbers_measure_and_nothing_is_missing(self):
        self.assertIn("process and loading its code", self.md)
        self.assertIn("## 2. Process overhead", self.md)
        self.assertIn("gave way to the targets of section 1", self.md)
        self.assertIn("forwarded 1,000 packets in the run, dropped 0 and sent 3 (0.30%)", self.md)
        self.assertIn("![Latency vs RTT per subject, cold and warm](docs/bench-wan.svg)", self.md)
        for bad in ("None", "nan", "{", "}"):
            self.assertNotIn(bad, self.md)

    def test_peer_table_has_a_column_per_rtt(self):
        line = next(ln for ln in self.md.splitlines()
                    if ln.startswith("| warm: Node with a 5-minute token cache and keep-alive ÷ ims-action"))
        self.assertEqual(line.count("×"), 3)

    def test_headline(self):
        h = render_md.headline(self.res)
        self.assertTrue(h.startswith("At 50 ms from Adobe, over HTTPS: a warm activation takes 50.6 ms"), h)

    def test_a_wan_only_run_renders(self):
        res = {k: v for k, v in self.res.items() if k not in ("cold", "warm", "tokens", "sizes")}
        res["targets"] = targets.targets(res)
        md = render_md.render(res, "x.svg", "y.svg")
        self.assertIn("not measured", md)
        self.assertNotIn("## 2.", md)


class Charts(unittest.TestCase):
    def test_latency_vs_rtt_chart_is_svg_with_a_line_per_subject(self):
        svg = render_svg.render_wan_svg(fixture.results())
        root = ET.fromstring(svg)
        paths = root.findall("{http://www.w3.org/2000/svg}path")
        self.assertEqual(len(paths), len(wan.COLD) + len(wan.WARM))
        self.assertIn("ims-action ActionLoop", svg)
        self.assertIn(">50.6<", svg)  # the value at 50 ms labels the line

    def test_loopback_chart_is_svg(self):
        svg = render_svg.render_cold_svg(fixture.results())
        root = ET.fromstring(svg)
        self.assertEqual(len(root.findall("{http://www.w3.org/2000/svg}rect")), 1 + 2 * 3 * 2 + 3)
        self.assertIn("600×", svg)

    def test_ticks(self):
        self.assertEqual(render_svg.nice_step(0.3), 0.5)
        self.assertEqual(render_svg.nice_step(26), 50)
        self.assertEqual(render_svg.nice_step(20), 20)
        self.assertEqual(render_svg.linear_ticks(108), [0, 25, 50, 75, 100, 125])


if __name__ == "__main__":
    unittest.main()
