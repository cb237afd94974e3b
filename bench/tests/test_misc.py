"""Small pure parts: params, the lean-variant check, ELF facts, the address plan, options."""
import contextlib
import io
import json
import struct
import unittest

from imsbench import build, cli, flows, launcher, netns, sizes
from imsbench.errors import BenchError


class Flows(unittest.TestCase):
    def test_params_take_base_url_overrides_and_the_operation(self):
        env = {k: f"v-{k}" for k in flows.S2S_KEYS}
        p = flows.flow_params(env, flows.FLOWS["s2s"], IMS_BASE_URL="https://10.0.0.2:1", NOT_A_KEY="x")
        self.assertEqual(p["IMS_BASE_URL"], "https://10.0.0.2:1")
        self.assertEqual(p["OPERATION"], "aem-quota")
        self.assertNotIn("NOT_A_KEY", p)
        with self.assertRaises(flows.MissingInput):
            flows.flow_params({}, flows.FLOWS["s2s"])

    def test_jwt_metascopes_become_bare_names(self):
        self.assertEqual(flows.jwt_auth_metascopes("a, http://127.0.0.1:9/s/b,https://ims/s/c"),
                         "a,b,https://ims/s/c")

    def test_results(self):
        self.assertTrue(flows.result_ok({"statusCode": 200, "body": {}}))
        self.assertTrue(flows.result_ok({"body": {}}))
        self.assertFalse(flows.result_ok({"error": {"statusCode": 502}}))
        self.assertFalse(flows.result_ok({"statusCode": 500}))
        self.assertFalse(flows.result_ok(None))


class Lean(unittest.TestCase):
    FULL = 'x\nconst { Core } = require("@adobe/aio-sdk");\ny\n'

    def test_only_the_require_line_may_differ(self):
        lean = self.FULL.replace('require("@adobe/aio-sdk");', 'require("../lean-core"); '
                                 '// BENCH(lean): Core.Logger without @adobe/aio-sdk')
        self.assertFalse(build.lean_drift(self.FULL, lean))
        self.assertTrue(build.lean_drift(self.FULL, lean + "z\n"))
        self.assertTrue(build.lean_drift(self.FULL, self.FULL), "an unswapped copy is drift too")


class Elf(unittest.TestCase):
    def test_a_bare_elf64_header_is_static_and_stripped(self):
        hdr = bytearray(64)
        hdr[:6] = b"\x7fELF\x02\x01"
        struct.pack_into("<HHHHH", hdr, 0x36, 56, 0, 64, 0, 0)
        self.assertEqual(sizes.elf_facts(bytes(hdr)), {"elf64": True, "stripped": True, "static": True,
                                                       "interp": False, "needed": 0})

    def test_not_elf(self):
        self.assertEqual(sizes.elf_facts(b"#!/bin/sh\n"), {"elf64": False})


class Options(unittest.TestCase):
    def test_defaults_and_quick(self):
        a = cli.parse_args([])
        self.assertEqual((a.rtts, a.wan_cold_rounds, a.sections), ([0.0, 10.0, 50.0], 20, set(cli.SECTIONS)))
        q = cli.parse_args(["--quick", "--rtts", "5,50", "--sections", "wan"])
        self.assertEqual((q.rtts, q.wan_cold_rounds, q.sections), ([5.0, 50.0], 3, {"wan"}))
        self.assertIn("quick", str(q.out))

    def test_results_json_keeps_samples_on_one_line(self):
        res = {"a": [1, 2.5, -3e-05], "b": {"c": [{"round": 0, "ms": 1.5}], "d": []}, "e": "x"}
        text = cli.dump_json(res)
        self.assertIn('"a": [1, 2.5, -3e-05]', text)
        self.assertEqual(json.loads(text), res)

    def test_bad_options_are_refused(self):
        for argv in (["--rtts", "x"], ["--rtts", "10,10"], ["--rtts", "-1"], ["--sections", "nope"]):
            with self.assertRaises(SystemExit, msg=argv), contextlib.redirect_stderr(io.StringIO()):
                cli.parse_args(argv)

    def test_each_rtt_gets_two_addresses_of_its_own(self):
        plan = netns.address_plan([0, 10, 50])
        ips = [ip for hosts in plan.values() for ip in hosts.values()]
        self.assertEqual(len(set(ips)), 6)
        self.assertNotIn(netns.LOCAL_IP, ips)
        self.assertEqual(plan[50], {"ims": "10.77.0.14", "api": "10.77.0.15"})

    def test_the_delay_lines_last_words(self):
        log = "noise\ndelay_line: 41696 packets forwarded, 0 dropped, 159 sent over 100 us late\n"
        self.assertEqual(netns.parse_counts(log), {"forwarded": 41696, "dropped": 0, "late": 159})
        self.assertEqual(netns.parse_counts("killed"), {})


class LauncherSeal(unittest.TestCase):
    def test_each_action_binds_its_params_through_the_env_file(self):
        yml, env = launcher.manifest({"aem-quota-rtt0": {"IMS_BASE_URL": "https://10.77.0.10:1", "OPERATION": "aem-quota"},
                                      "aem-quota-rtt50": {"IMS_BASE_URL": "https://10.77.0.14:1"}})
        self.assertIn("      aem-quota-rtt0:\n        inputs:\n          IMS_BASE_URL: $A0_IMS_BASE_URL\n", yml)
        self.assertIn("          IMS_BASE_URL: $A1_IMS_BASE_URL\n", yml)
        self.assertNotIn("10.77", yml, "values live in the .env file only")
        self.assertEqual(env.splitlines()[0], 'A0_IMS_BASE_URL="https://10.77.0.10:1"')

    def test_a_value_that_does_not_fit_one_line_is_refused(self):
        with self.assertRaises(BenchError):
            launcher.manifest({"a": {"JWT_PRIVATE_KEY": "-----BEGIN\nx"}})


if __name__ == "__main__":
    unittest.main()
