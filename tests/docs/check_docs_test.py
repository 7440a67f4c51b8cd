#!/usr/bin/env python3
"""Tests of check_docs.py: a small repository is written to a temporary folder, the checker runs on it as a separate
process, and each test plants one problem (or one thing that must not be reported) and looks at the exit status and
the report. Python 3 standard library only; run: python3 tests/docs/check_docs_test.py"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check_docs.py")

# Built from pieces so that this file does not hold the paths it plants.
WORK = "/" + "work"
HOME = "/" + "home"
SHARED = ".." + "/shared"

CLEAN = {
    "README.md": "# Demo\n\nSee [the protocol](docs/PROTOCOL.md#ingest-post-v1batch) and [docs](docs/).\n"
                 "[ref]: docs/PROTOCOL.md#limits\n",
    "docs/PROTOCOL.md": "# Protocol\n\n## Ingest: `POST /v1/batch`\n\nBack to the [readme](../README.md).\n\n"
                        "## Limits\n\nSee [Ingest](#ingest-post-v1batch) and [Limits](PROTOCOL.md#limits).\n\n"
                        "Setext heading\n--------------\n\n[up](#setext-heading)\n",
    "src/main.cc": "// The format of docs/PROTOCOL.md; the limits (PROTOCOL.md).\n"
                   "char tmpl[] = \"/tmp/demo-XXXXXX\";  // a mkdtemp template is fine\n"
                   "const char* kUrl = \"https://example.com/wo"  # split so the literal names no path itself
                   "rk/NOTES.md\";  // a URL is not a path here\n",
}


class CheckDocsTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="check-docs-test-")
        self.write(CLEAN)

    def tearDown(self):
        shutil.rmtree(self.root)

    def write(self, files):
        for rel, text in files.items():
            path = os.path.join(self.root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)

    def check(self):
        r = subprocess.run([sys.executable, CHECKER, self.root], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return r.returncode, r.stdout.decode("utf-8", "replace")

    def assert_clean(self):
        rc, out = self.check()
        self.assertEqual(rc, 0, out)

    def assert_reported(self, *needles):
        rc, out = self.check()
        self.assertEqual(rc, 1, out)
        for n in needles:
            self.assertIn(n, out)

    def test_a_clean_tree_passes(self):
        self.assert_clean()

    def test_a_dead_relative_link_is_caught(self):
        self.write({"docs/GUIDE.md": "# Guide\n\nRead [the design](DESIGN.md) first.\n"})
        self.assert_reported("docs/GUIDE.md:3: dead link: DESIGN.md")

    def test_a_link_out_of_the_repository_is_caught(self):
        self.write({"docs/GUIDE.md": "# Guide\n\nRead [the notes](../../notes/x.md).\n"})
        self.assert_reported("docs/GUIDE.md:3: link leaves the repository")

    def test_a_dead_anchor_is_caught(self):
        self.write({"docs/GUIDE.md": "# Guide\n\nSee [limits](PROTOCOL.md#limit) and [me](#guide).\n"})
        self.assert_reported("docs/GUIDE.md:3: dead anchor: PROTOCOL.md#limit")
        rc, out = self.check()
        self.assertNotIn("#guide", out)

    def test_repeated_headings_get_numbered_anchors(self):
        self.write({"docs/GUIDE.md": "# Guide\n\n## Step\n\n## Step\n\n[a](#step) [b](#step-1) [c](#step-2)\n"})
        self.assert_reported("docs/GUIDE.md:7: dead anchor: #step-2")
        rc, out = self.check()
        self.assertNotIn("#step-1", out)

    def test_links_in_code_and_urls_are_not_followed(self):
        # (A Markdown file *named* in code is still checked: see test_a_document_named_but_missing_is_caught.)
        self.write({"docs/GUIDE.md": "# Guide\n\n```\n[x](nowhere.txt)\n```\n\n`[y](nowhere/)` "
                                     "[z](https://example.com/nowhere.md) [m](mailto:a@example.com)\n"})
        self.assert_clean()

    def test_a_planted_absolute_path_is_caught(self):
        self.write({"scripts/build.sh": "#!/bin/sh\ncd %s/main && make\n" % WORK})
        self.assert_reported("scripts/build.sh:2: an absolute path of a build machine", WORK)

    def test_an_absolute_path_in_a_document_is_caught(self):
        self.write({"docs/GUIDE.md": "# Guide\n\nThe design is in `%s/shared/design/X.md`.\n" % WORK})
        self.assert_reported("docs/GUIDE.md:3: an absolute path of a build machine")

    def test_a_folder_beside_the_checkout_is_caught(self):
        self.write({"src/a.cc": "// see %s/design/PROTOCOL.md\n" % SHARED})
        self.assert_reported("src/a.cc:1: a folder outside the repository")

    def test_a_home_directory_is_caught(self):
        self.write({"src/a.cc": "const char* kDir = \"%s/ana/build\";\n" % HOME})
        self.assert_reported("src/a.cc:1: a user's home directory", HOME + "/ana")

    def test_a_document_named_but_missing_is_caught(self):
        self.write({"src/a.cc": "// The admin API (ENVIRONMENT.md, docs/STYLE.md).\n"})
        self.assert_reported("src/a.cc:1: names ENVIRONMENT.md", "src/a.cc:1: names docs/STYLE.md")

    def test_only_tracked_files_are_checked_in_a_git_repository(self):
        if shutil.which("git") is None:
            self.skipTest("git is not installed")
        git = ["git", "-C", self.root, "-c", "user.name=t", "-c", "user.email=t@example.com"]
        subprocess.run(git + ["init", "-q"], check=True)
        subprocess.run(git + ["add", "-A"], check=True)
        self.write({"notes.txt": "scratch: %s/main\n" % WORK})  # untracked: not part of the repository
        self.assert_clean()
        subprocess.run(git + ["add", "notes.txt"], check=True)
        self.assert_reported("notes.txt:1: an absolute path of a build machine")

    def test_an_unmarked_command_or_program_block_is_caught(self):
        self.write({"docs/GUIDE.md": "# Guide\n\n```sh\nmake install\n```\n\nText.\n\n```c\nint main(void);\n```\n"})
        self.assert_reported("docs/GUIDE.md:3: a ```sh block that no test runs",
                             "docs/GUIDE.md:9: a ```c block that no test runs")
        self.write({"README.md": "# Demo\n\n```console\n$ ferryctl --version\n```\n"})
        self.assert_reported("README.md:3: a ```console block that no test runs")

    def test_illustrative_blocks_and_other_languages_pass(self):
        self.write({"docs/GUIDE.md": "# Guide\n\n<!-- illustrative -->\n```sh\nmake install\n```\n\n"
                                     "```json\n{}\n```\n\n```\nplain\n```\n\n1. Step:\n   <!-- illustrative -->\n"
                                     "   ```cpp\n   int x;\n   ```\n",
                    # Blocks outside README.md and docs/ are not checked.
                    "examples/NOTES.md": "# Notes\n\n```sh\nmake\n```\n"})
        self.assert_clean()

    def test_a_tested_block_needs_a_test_that_names_it(self):
        self.write({"docs/GUIDE.md": "# Guide\n\n<!-- test: guide-setup -->\n```sh\necho set up\n```\n"})
        self.assert_reported("docs/GUIDE.md:4: <!-- test: guide-setup --> but no file under tests/ names guide-setup")
        self.write({"tests/docs/CMakeLists.txt": "add_test(NAME guide COMMAND run guide-setup)\n"})
        self.assert_clean()

    def test_extract_prints_the_marked_blocks_in_order(self):
        self.write({"docs/GUIDE.md": "# Guide\n\n<!-- test: two -->\n```sh\necho one\n```\n\n"
                                     "<!-- test: other -->\n```sh\necho other\n```\n\n"
                                     "<!-- test: two -->\n```sh\necho two\n```\n"})
        r = subprocess.run([sys.executable, CHECKER, "--extract", os.path.join(self.root, "docs/GUIDE.md"), "two"],
                           stdout=subprocess.PIPE, check=True)
        self.assertEqual(r.stdout.decode(), "echo one\necho two\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
