"""The rule CI runs by: every skip fails the run, except a test skipped because this
machine's kernel lacks (or has) what it is about, as the kernel itself says; those
are listed at the end of the run."""

import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

from . import support

SAMPLE = """
import unittest
from tests import support

support.KERNEL_FEATURES["fake"] = ("/proc/net/no-such-file", "a fake feature")


class SampleTest(unittest.TestCase):
    def test_needs_what_the_kernel_lacks(self):
        support.needs_kernel(self, "fake")

    def test_needs_what_the_kernel_has(self):
        support.needs_kernel(self, "fake", present=False)
"""
MISSING_TOOL = """

    def test_needs_a_missing_tool(self):
        support.skip_unless(False, "'smcroute' is not installed")
"""


def run_sample(code):
    """Run a test module of code as CI runs the suite; return the CompletedProcess."""
    folder = tempfile.mkdtemp()
    with open(os.path.join(folder, "test_sample.py"), "w") as module:
        module.write(textwrap.dedent(code))
    try:
        return subprocess.run(
            [sys.executable, "-m", "unittest", "discover", "-s", folder, "-t", folder],
            capture_output=True, text=True, timeout=60, cwd=folder,
            env={**os.environ, "PYTHONPATH": support.PROJECT, support.NO_SKIP_VARIABLE: "1"})
    finally:
        os.remove(os.path.join(folder, "test_sample.py"))
        subprocess.run(["rm", "-rf", folder])


class SkipRuleTest(unittest.TestCase):
    def test_a_kernel_that_lacks_a_feature_is_excused_and_listed_at_the_end(self):
        result = run_sample(SAMPLE)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("OK (skipped=1)", result.stderr)
        self.assertTrue(result.stderr.rstrip().endswith(
            "not run on this kernel:\n  test_sample.SampleTest.test_needs_what_the_kernel_lacks"
            ": this kernel has no a fake feature: /proc/net/no-such-file is missing"),
            result.stderr)

    def test_a_missing_tool_is_not_excused(self):
        result = run_sample(SAMPLE + MISSING_TOOL)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("cannot run here, and skipping is not allowed: 'smcroute' is not "
                      "installed", result.stderr)

    def test_every_kernel_feature_is_read_from_the_kernel_itself(self):
        for path, _ in support.KERNEL_FEATURES.values():
            self.assertTrue(path.startswith("/proc/"), path)


if __name__ == "__main__":
    unittest.main()
