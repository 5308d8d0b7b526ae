"""IPv6 groups and source-specific multicast in the measuring pair, across lab hosts."""

import re
import signal
import unittest

from . import netlab, support
from .support import only

SENDER, RECEIVER, OTHER_SENDER = 0, 1, 2
GROUPS6 = ("ff02::10", "ff05::10", "ff15::10")  # link-local, site-local, transient


class Ipv6LabTest(netlab.LabTestCase):
    hosts = 3

    def tearDown(self):
        super().tearDown()
        self.lab.run(RECEIVER, ["ip6tables", "-F"])

    def receiver(self, script, group, *arguments):
        child = self.start(RECEIVER, support.python_script(script, "-g", group, *arguments))
        self.assertTrue(support.wait_until(lambda: self.lab.joined(RECEIVER, group), 5),
                        child.stderr)
        return child

    def test_the_socket_pair_over_ipv6_counts_everything(self):
        for group in GROUPS6:
            with self.subTest(group=group):
                receiver = self.receiver("socket_multicast_receiver.py", group, "-i", "eth0",
                                         "--json", "-q", "--name", "six")
                sender = self.start(SENDER, support.python_script(
                    "socket_multicast_sender.py", "-g", group, "-i", "eth0", "--json",
                    "--count", "3", "--interval", "0"))
                self.assertEqual(sender.wait(20), 0, sender.stderr)
                [entry] = only(sender, "summary")["receivers"]
                self.assertEqual((entry["name"], entry["acks"], entry["lost"],
                                  entry["report"]["received"]), ("six", 3, 0, 3))
                receiver.signal(signal.SIGTERM)
                self.assertEqual(receiver.wait(5), 0)
                [session] = only(receiver, "summary")["senders"]
                self.assertEqual((session["received"], session["lost"], session["end_seen"]),
                                 (3, 0, True))

    def test_the_textbook_pair_refuses_ipv6_and_names_the_measuring_pair(self):
        for name in ("multicast_sender.py", "multicast_receiver.py"):
            result = self.lab.run(RECEIVER, support.python_script(name, "-g", "ff15::10"))
            self.assertEqual(result.returncode, 2)
            self.assertIn("'ff15::10' is not an IPv4", result.stderr)

    def test_injected_loss_over_ipv6_against_the_ip6tables_counter(self):
        group = "ff15::10"
        # Data messages only (99 bytes: IPv6 40, UDP 8, header 32, message 19), so
        # that the end of run gets through and the rule's counter is all the loss.
        rule = self.lab.run(RECEIVER, ["ip6tables", "-A", "INPUT", "-d", group, "-m",
                                       "length", "--length", "99", "-m", "statistic",
                                       "--mode", "random", "--probability", "0.3", "-j",
                                       "DROP"])
        self.assertEqual(rule.returncode, 0, rule.stderr)
        receiver = self.receiver("socket_multicast_receiver.py", group, "-q", "--json")
        sender = self.start(SENDER, support.python_script(
            "socket_multicast_sender.py", "-g", group, "--json", "--rate", "500",
            "--count", "1000", "--no-ack"))
        self.assertEqual(sender.wait(30), 0, sender.stderr)
        listing = self.lab.run(RECEIVER, ["ip6tables", "-L", "INPUT", "-v", "-x", "-n"]).stdout
        dropped = int(re.search(r"^\s*(\d+)\s+\d+\s+DROP", listing, re.M)[1])
        receiver.signal(signal.SIGTERM)
        self.assertEqual(receiver.wait(5), 0)
        [session] = only(receiver, "summary")["senders"]
        [entry] = only(sender, "summary")["receivers"]
        summary = only(receiver, "summary")
        self.assertGreater(dropped, 200)
        self.assertEqual(session["lost"], entry["report"]["lost"])
        self.assertEqual(session["lost"], dropped + summary["host_drops"])

    def test_a_source_specific_join_takes_only_that_source(self):
        for group, source, mcfilter in (
                ("232.1.1.1", self.lab.address(SENDER), "/proc/net/mcfilter"),
                ("ff35::1", self.lab.address6(SENDER), "/proc/net/mcfilter6")):
            for script in ("socket_multicast_receiver.py",):
                with self.subTest(group=group, receiver=script):
                    child = self.start(RECEIVER, support.python_script(
                        script, "-g", group, "--source", source))
                    table = support.wait_until(lambda: self.kernel_lists(mcfilter, source), 5)
                    self.assertTrue(table, child.stderr)
                    self.assertNotIn("warning", child.stderr)
                    chosen = self.start(SENDER, support.python_script(
                        "socket_multicast_sender.py", "-g", group))
                    other = self.start(OTHER_SENDER, support.python_script(
                        "socket_multicast_sender.py", "-g", group))
                    self.assertEqual(chosen.wait(20), 0, chosen.stderr)
                    self.assertEqual(other.wait(20), 1, "the other source gets no ack")
                    child.kill()

    def kernel_lists(self, mcfilter, source):
        """Whether the receiver host's kernel lists source in its source filters."""
        table = self.lab.run(RECEIVER, ["cat", mcfilter]).stdout.lower()
        wanted = (support.socket.inet_pton(support.socket.AF_INET6, source).hex()
                  if ":" in source else
                  "0x" + support.socket.inet_aton(source).hex())
        return wanted in table

    def test_an_ssm_group_without_a_source_gets_a_warning(self):
        child = self.start(RECEIVER, support.python_script(
            "socket_multicast_receiver.py", "-g", "232.1.1.1", "--count", "1"))
        self.assertTrue(support.wait_until(lambda: "SSM" in child.stderr, 5), child.stderr)


if __name__ == "__main__":
    unittest.main()
