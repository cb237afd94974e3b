"""The bench's one .env reader, held to the same cases as src/runtime/dotenv.rs."""
import tempfile
import unittest
from pathlib import Path

from imsbench import dotenv


class Dotenv(unittest.TestCase):
    def test_the_forms_aio_reads(self):
        v = dotenv.parse('# comment\nA=1\nexport B = two # note\nC="x\\ny"\nD=\'$NOT\'\n'
                         'E="multi\nline"\nbad line\nF=\n')
        self.assertEqual(v["A"], "1")
        self.assertEqual(v["B"], "two")
        self.assertEqual(v["C"], "x\ny")
        self.assertEqual(v["D"], "$NOT")
        self.assertEqual(v["E"], "multi\nline")
        self.assertEqual(v["F"], "")
        self.assertNotIn("bad line", v)

    def test_values_keep_equals_signs_hashes_and_escaped_quotes(self):
        v = dotenv.parse('K=a=b==\nH=x#y\nQ="say \\"hi\\""\nU="unterminated\n')
        self.assertEqual(v["K"], "a=b==")  # base64 padding survives
        self.assertEqual(v["H"], "x#y")  # only " #" starts a comment
        self.assertEqual(v["Q"], 'say "hi"')
        self.assertEqual(v["U"], "unterminated")

    def test_keys_must_be_names(self):
        v = dotenv.parse("GOOD_1=x\nbad key=y\n=z\nwith.dot-dash=w\n")
        self.assertEqual(v, {"GOOD_1": "x", "with.dot-dash": "w"})

    def test_reads_the_emulator_style_file(self):
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "e.env"
            p.write_text("# Emulator: http://127.0.0.1:1\nIMS_BASE_URL=http://127.0.0.1:1\n"
                         "IMS_ACTION_ALLOW_HOSTS=127.0.0.1:1\n")
            self.assertEqual(dotenv.read(p), {"IMS_BASE_URL": "http://127.0.0.1:1",
                                              "IMS_ACTION_ALLOW_HOSTS": "127.0.0.1:1"})


if __name__ == "__main__":
    unittest.main()
