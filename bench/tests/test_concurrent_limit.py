"""ims-action's cold row against the concurrent limit (the API's connection opened while the
token is fetched): derived, rendered in its row, judged as a target."""
import unittest

from imsbench import fmt, render_md, targets, wan
from tests import fixture


class ConcurrentLimit(unittest.TestCase):
    def test_derived_for_the_cold_subjects(self):
        w = fixture.wan()
        d = wan.derive(w)
        con = w["cold"]["limit4"]["50"]["ms"]["median"]
        ours = w["cold"]["ours"]["50"]["ms"]["median"]
        self.assertAlmostEqual(d["cold"]["ours"]["50"]["vs_concurrent_limit"], ours / con)
        self.assertNotIn("vs_concurrent_limit", d["warm"]["ours"]["50"])

    def test_in_ims_actions_cold_row_and_the_targets(self):
        res = fixture.results()
        res["targets"] = targets.targets(res)
        d = res["wan"]["derived"]["cold"]["ours"]["50"]["vs_concurrent_limit"]
        row = next(t for t in res["targets"] if "÷ the concurrent limit" in t["target"])
        self.assertAlmostEqual(row["measured"], d)
        md = render_md.render(res, "x.svg", "y.svg")
        table = md[md.index("### At 50 ms RTT"):md.index("### At 10 ms RTT")]
        ours = next(ln for ln in table.splitlines() if "| cold | ims-action, one-shot" in ln)
        self.assertIn(f"**{fmt.times(d)}×** ÷ the concurrent limit", ours)
        node = next(ln for ln in table.splitlines() if "| cold | Adobe's sample as published" in ln)
        self.assertNotIn("concurrent", node)


if __name__ == "__main__":
    unittest.main()
