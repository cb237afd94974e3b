"""The statistics behind every figure of BENCHMARKS.md."""
import math
import unittest

from imsbench import stats


class Percentiles(unittest.TestCase):
    def test_interpolates_between_closest_ranks_like_numpy(self):
        xs = [15, 20, 35, 40, 50]
        self.assertEqual(stats.pct(xs, 0), 15)
        self.assertEqual(stats.pct(xs, 100), 50)
        self.assertEqual(stats.pct(xs, 50), 35)
        self.assertAlmostEqual(stats.pct(xs, 40), 29.0)  # numpy.percentile(xs, 40) == 29.0
        self.assertAlmostEqual(stats.pct(xs, 90), 46.0)
        self.assertAlmostEqual(stats.pct(list(range(1, 101)), 99), 99.01)

    def test_order_does_not_matter_and_nothing_is_nan(self):
        self.assertEqual(stats.pct([3, 1, 2], 50), 2)
        self.assertTrue(math.isnan(stats.pct([], 50)))
        self.assertEqual(stats.pct([7], 99), 7)


class Summaries(unittest.TestCase):
    def test_summary_of_samples(self):
        s = stats.summary([4.0, 1.0, 3.0, 2.0])
        self.assertEqual(s["n"], 4)
        self.assertEqual(s["median"], 2.5)  # the mean of the two middle values
        self.assertEqual((s["min"], s["max"]), (1.0, 4.0))
        self.assertAlmostEqual(s["mean"], 2.5)
        self.assertAlmostEqual(s["p90"], 3.7)
        self.assertAlmostEqual(s["p99"], 3.97)
        self.assertIsNone(stats.summary([]))


class Ratios(unittest.TestCase):
    def test_ratio_refuses_what_cannot_be_divided(self):
        self.assertEqual(stats.ratio(6, 3), 2)
        self.assertIsNone(stats.ratio(None, 3))
        self.assertIsNone(stats.ratio(1, 0))
        self.assertIsNone(stats.ratio(1, None))
        self.assertIsNone(stats.ratio(float("nan"), 1))

    def test_ratio_of_medians(self):
        self.assertEqual(stats.ratio_of_medians([10, 30, 20], [1, 2, 100]), 10)
        self.assertIsNone(stats.ratio_of_medians([], [1]))

    def test_per_round_ratios_pair_runs_taken_side_by_side(self):
        peer = [{"round": 0, "ms": 100}, {"round": 1, "ms": 300}, {"round": 2, "ms": 50}]
        ours = [{"round": 0, "ms": 1}, {"round": 0, "ms": 3}, {"round": 1, "ms": 3}]
        # round 0: 100 / median(1, 3) = 50; round 1: 300 / 3 = 100; round 2 has no run of ours
        self.assertEqual(stats.per_round_ratios(peer, ours), [50, 100])


class Counters(unittest.TestCase):
    def test_delta_of_two_emulator_snapshots(self):
        before = {"requests": {"/ims/token/v3": 2, "/adobe/stats/statistics/contentRequestsQuota": 5},
                  "tokens_issued": {"a": 2},
                  "connections": {"accepted": 10, "tls_handshakes": 9, "tls_resumed": 1}}
        after = {"requests": {"/ims/token/v3": 3, "/ims/exchange/jwt": 1,
                              "/adobe/stats/statistics/contentRequestsQuota": 7},
                 "tokens_issued": {"a": 3, "b": 1},
                 "connections": {"accepted": 12, "tls_handshakes": 11, "tls_resumed": 1}}
        self.assertEqual(stats.counter_delta(before, after),
                         {"token_requests": 2, "api_requests": 2, "tokens_issued": 2, "connections": 2,
                          "tls_handshakes": 2, "tls_resumed": 0})

    def test_an_emulator_without_connection_counters_counts_zero(self):
        d = stats.counter_delta({"requests": {}}, {"requests": {"/ims/token/v3": 1}})
        self.assertEqual((d["token_requests"], d["connections"], d["tls_handshakes"]), (1, 0, 0))

    def test_counts_add_up_and_divide_per_activation(self):
        total = {}
        stats.add_counts(total, {"activations": 1, "connections": 2})
        stats.add_counts(total, {"activations": 1, "connections": 0, "token_requests": 1})
        self.assertEqual(total, {"activations": 2, "connections": 2, "token_requests": 1})
        self.assertEqual(stats.per_activation({"connections": 2, "token_requests": 1}, 2),
                         {"connections": 1.0, "token_requests": 0.5})
        self.assertEqual(stats.per_activation({"connections": 2}, 0), {"connections": None})


if __name__ == "__main__":
    unittest.main()
