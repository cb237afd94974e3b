"""Tests of scripts/check-docs.py (run by `make docs-check`): each check passes on a small repository
that is right, and fails, naming the problem, when one thing in it is broken."""

import importlib.util
import os
import shutil
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = importlib.util.spec_from_file_location("check_docs", os.path.join(HERE, "..", "check-docs.py"))
check_docs = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(check_docs)

ERROR_RS = '''
pub enum Error {
    /// Inputs absent.
    MissingInputs { names: Vec<String>, hint: Option<String> },
    Forbidden(String),
    Timeout { service: Service, detail: String },
}

impl Error {
    pub fn status_code(&self) -> u16 {
        match self {
            Error::Forbidden(_) => 403,
            _ => 400,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingInputs { names, .. } => write!(f, "missing parameter(s) '{}'", names.join(",")),
            Error::Forbidden(why) => write!(f, "forbidden: {why}"),
            Error::Timeout { service, detail } => write!(f, "{service} did not answer in time: {detail}"),
        }
    }
}

#[cfg(test)]
mod tests {
    fn t() { log::warn!("a test may warn without a marker"); }
}
'''

BACKEND_RS = '''
pub enum StoreError {
    Unavailable(&'static str),
    Status(u16),
}
impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Unavailable(why) => write!(f, "unavailable: {why}"),
            StoreError::Status(status) => write!(f, "answered HTTP {status}"),
        }
    }
}
'''

WEB_RS = '''
pub fn check(org: Option<&str>) -> Result<(), Error> {
    match org {
        // ops: org-not-allowed
        Some(_) => Err(Error::Forbidden(
            "the caller's IMS org \\
             (x-gw-ims-org-id) is not allowed".into(),
        )),
        None => Ok(()),
    }
}
'''

OPERATIONS_MD = '''# What to do when…

| message | fix |
|---|---|
| `missing parameter(s) 'A,B'` (`Error::MissingInputs`) | set them |
| `forbidden: …` (`Error::Forbidden`) | |
| <a id="org-not-allowed"></a>`forbidden: the caller's IMS org (x-gw-ims-org-id) is not allowed` | add the org |
| `IMS did not answer in time: …` (`Error::Timeout`) | later |
| `unavailable: timed out` (`StoreError::Unavailable`), `answered HTTP 503` (`StoreError::Status`) | |
'''

README_MD = '''# Project

See [the docs](docs/guide.md#second-part) and [ops](docs/operations.md).

## Quickstart

```sh
make demo    # runs the demo
make test    # runs the tests
```
'''

GUIDE_MD = '''# Guide

## First part

Back to the [README](../README.md#quickstart); [ops](operations.md#org-not-allowed).

## Second part
'''

MAKEFILE = '''test: lint unit ## tests
lint:
\tcargo fmt
unit: build
\tcargo test
demo:
\tscripts/demo.sh
'''

CI_RUN = '''#!/usr/bin/env bash
set -e
make test
make demo
'''


class Fixture(unittest.TestCase):
    """A small repository that passes every check; each test breaks one thing."""

    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.files = {
            "README.md": README_MD,
            "docs/guide.md": GUIDE_MD,
            "docs/operations.md": OPERATIONS_MD,
            "src/error.rs": ERROR_RS,
            "src/token/store/backend.rs": BACKEND_RS,
            "src/action/web.rs": WEB_RS,
            "Makefile": MAKEFILE,
            ".ci/run": CI_RUN,
        }
        for path, text in self.files.items():
            self.write(path, text)

    def tearDown(self):
        shutil.rmtree(self.root)

    def write(self, path, text):
        full = os.path.join(self.root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as f:
            f.write(text)

    def edit(self, path, old, new):
        text = self.files[path]
        self.assertIn(old, text)
        self.files[path] = text.replace(old, new)
        self.write(path, self.files[path])

    def problems(self):
        return check_docs.check(self.root)

    def assertFails(self, *needles):
        problems = self.problems()
        self.assertTrue(problems, "expected a problem")
        joined = "\n".join(problems)
        for n in needles:
            self.assertIn(n, joined)

    def test_the_fixture_passes(self):
        self.assertEqual(self.problems(), [])

    def test_a_missing_file_fails(self):
        self.edit("README.md", "docs/guide.md#second-part", "docs/gide.md#second-part")
        self.assertFails("README.md:3", "docs/gide.md does not exist")

    def test_a_missing_anchor_fails(self):
        self.edit("docs/guide.md", "## Second part", "## Part two")
        self.assertFails("README.md:3", "no heading or id 'second-part' in docs/guide.md")

    def test_an_anchor_into_the_same_file_is_checked(self):
        self.edit("docs/guide.md", "## Second part\n", "## Second part\n\nSee [above](#first-parts).\n")
        self.assertFails("docs/guide.md:9", "'first-parts'")

    def test_links_in_code_are_not_links(self):
        self.edit("docs/guide.md", "## Second part\n", "## Second part\n\n`[x](nowhere.md)`\n\n```\n[y](nowhere.md)\n```\n")
        self.assertEqual(self.problems(), [])

    def test_an_unlinked_doc_fails(self):
        self.write("docs/orphan.md", "# Orphan\n")
        self.assertFails("docs/orphan.md: not reachable from README.md")

    def test_a_doc_reached_through_another_passes(self):
        self.write("docs/deeper.md", "# Deeper\n")
        self.edit("docs/guide.md", "## Second part\n", "## Second part\n\n[deeper](deeper.md)\n")
        self.assertEqual(self.problems(), [])

    def test_an_error_kind_without_an_entry_fails(self):
        self.edit("src/error.rs", "    Forbidden(String),\n", "    Forbidden(String),\n    Internal(String),\n")
        self.assertFails("no entry names `Error::Internal`")

    def test_a_changed_error_template_fails(self):
        self.edit("src/error.rs", '"{service} did not answer in time: {detail}"', '"{service} was too slow: {detail}"')
        self.assertFails("the message of `Error::Timeout`", "'was too slow'")

    def test_a_store_error_without_an_entry_fails(self):
        self.edit("src/token/store/backend.rs", "    Status(u16),\n", "    Status(u16),\n    TooLarge,\n")
        self.assertFails("`StoreError::TooLarge`")

    def test_a_marker_without_a_row_fails(self):
        self.edit("docs/operations.md", '<a id="org-not-allowed"></a>', "")
        self.assertFails("src/action/web.rs:4: marker 'ops: org-not-allowed' has no row",
                         "docs/guide.md:5: link 'operations.md#org-not-allowed'")

    def test_a_changed_marked_message_fails(self):
        self.edit("src/action/web.rs", "is not allowed", "may not call")
        self.assertFails("the message marked 'ops: org-not-allowed' is not quoted",
                         "(x-gw-ims-org-id) may not call")

    def test_a_place_that_needs_a_marker_fails_without_one(self):
        self.edit("src/action/web.rs", "        None => Ok(()),\n",
                  "        None => {\n            log::warn!(\"no org at all\");\n            Ok(())\n        }\n")
        self.assertFails("src/action/web.rs:10: '\\blog::(warn|error)!' with no `// ops: <key>` marker")

    def test_a_pattern_is_not_a_construction(self):
        self.assertIsNone(check_docs.NEEDS_MARKER[1][1].search("Error::Forbidden(_) => 403,"))
        self.assertIsNone(check_docs.NEEDS_MARKER[1][1].search("Ok(Err(e @ Error::Configuration(_))) => {"))
        self.assertIsNotNone(check_docs.NEEDS_MARKER[1][1].search("Err(Error::Forbidden("))
        self.assertIsNotNone(check_docs.NEEDS_MARKER[1][1].search("Err(Error::Configuration(why.clone()))"))

    def test_a_quickstart_command_ci_does_not_run_fails(self):
        self.edit(".ci/run", "make demo\n", "")
        self.assertFails("Quickstart command 'make demo' is not run by CI")

    def test_a_prerequisite_of_a_ci_target_counts(self):
        self.edit("README.md", "make demo    # runs the demo", "make unit")
        self.edit(".ci/run", "make demo\n", "")
        self.assertEqual(self.problems(), [])

    def test_a_make_target_the_makefile_lacks_fails(self):
        self.edit("docs/guide.md", "## Second part\n", "## Second part\n\nRun `make lint` and `make lnit`.\n")
        self.assertEqual(self.problems(), ["docs/guide.md: `make lnit` is not a target of the Makefile"])

    def test_make_targets_in_blocks_and_with_variables_are_checked(self):
        self.edit("docs/guide.md", "## Second part\n", "## Second part\n\n```sh\nUI_PORT=1 make demo\nmake V=1 bench\n```\n")
        self.assertEqual(self.problems(), ["docs/guide.md: `make bench` is not a target of the Makefile"])


class Pieces(unittest.TestCase):
    def test_github_slugs(self):
        cases = {
            "Tokens, retries and time": "tokens-retries-and-time",
            "`IMS_ACTION_LOG_LEVEL`, not `LOG_LEVEL`, in `.env`": "ims_action_log_level-not-log_level-in-env",
            "What to do when…": "what-to-do-when",
            "6. The shared token store": "6-the-shared-token-store",
            "The seal: the deployment's parameters differ from the build":
                "the-seal-the-deployments-parameters-differ-from-the-build",
            "Apache OpenWhisk with `wsk`": "apache-openwhisk-with-wsk",
            "IMS and the APIs (4xx, 502, 504)": "ims-and-the-apis-4xx-502-504",
        }
        for heading, slug in cases.items():
            self.assertEqual(check_docs.slug(heading), slug, heading)

    def test_repeated_headings_are_numbered(self):
        found = check_docs.anchors("# A\n## Notes\n## Notes\n## Notes\n")
        self.assertEqual(found, {"a", "notes", "notes-1", "notes-2"})

    def test_rust_strings_follow_continuations_and_escapes(self):
        code = 'format!("one \\\n      two \\"q\\" {x}", y) // "not this"\nlet c = \'"\';\nr#"raw "x""#'
        self.assertEqual(check_docs.rust_strings(code), ['one two "q" {x}', 'raw "x"'])

    def test_fragments_are_the_longest_fixed_piece(self):
        self.assertEqual(check_docs.fragment("{a}: the certificate expires on {d} ({n} days left); refresh it in the console"),
                         "days left); refresh it in the console")
        self.assertIsNone(check_docs.fragment("{}: {e}"))

    def test_enum_variants(self):
        self.assertEqual(check_docs.enum_variants(ERROR_RS, "Error"), ["MissingInputs", "Forbidden", "Timeout"])


if __name__ == "__main__":
    unittest.main()
