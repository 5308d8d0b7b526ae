"""The socket pair across hosts: a sender and three receivers, interop, injected loss."""

import os
import re
import signal
import unittest

from . import netlab, support
from .support import GROUP, LECTURE, json_lines, summary_of

SENDER, RECEIVERS, OTHER = 0, (1, 2, 3), 4


class SocketPairLabTest(netlab.LabTestCase):
    hosts = 5

    def tearDown(self):
        super().tearDown()
        for host in RECEIVERS:
            self.lab.run(host, ["iptables", "-F", "INPUT"])

    def start_receiver(self, host, argv, ours=True):
        receiver = self.start(host, argv)
        ready = support.wait_until(
            lambda: self.lab.joined(host, GROUP) and (receiver.lines or not ours), 5)
        self.assertTrue(ready, f"no membership on host {host}: {receiver.stderr}")
        return receiver

    def socket_receivers(self, hosts=RECEIVERS):
        return {host: self.start_receiver(host, support.python_script(
            "socket_multicast_receiver.py", "--json", "--name", f"r{host}")) for host in hosts}

    def socket_sender(self, *arguments):
        return self.start(SENDER, support.python_script(
            "socket_multicast_sender.py", "--json", *arguments))

    def test_three_receivers_five_rounds_nothing_lost(self):
        self.socket_receivers()
        sender = self.socket_sender("--count", "5", "--interval", "0.1", "--expect", "3")
        self.assertEqual(sender.wait(30), 0, sender.stderr)
        summary = summary_of(sender)
        self.assertEqual(summary["sent"], 5)
        self.assertEqual(
            sorted((r["address"], r["name"], r["acks"], r["lost"], r["duplicates"], r["late"])
                   for r in summary["receivers"]),
            [(self.lab.address(h), f"r{h}", 5, 0, 0, 0) for h in RECEIVERS])

    def test_a_receiver_that_stops_is_named_and_the_exit_status_is_1(self):
        receivers = self.socket_receivers()
        sender = self.socket_sender("--count", "0", "--interval", "0.1", "--expect", "3")

        def rounds():
            return [e for e in json_lines(sender.lines) if e["type"] == "round"]

        self.assertTrue(support.wait_until(lambda: len(rounds()) >= 2, 10), sender.stderr)
        self.assertTrue(all(r["ok"] for r in rounds()))
        receivers[3].signal(signal.SIGTERM)
        self.assertEqual(receivers[3].wait(5), 0)
        gone = {"address": self.lab.address(3), "name": "r3"}
        self.assertTrue(support.wait_until(
            lambda: any(gone in r["missing"] for r in rounds()), 10), sender.output())
        sender.signal(signal.SIGTERM)
        self.assertEqual(sender.wait(10), 1)
        self.assertRegex(sender.stderr.strip(),
                         r"^socket_multicast_sender.py: \d+ of \d+ rounds heard from fewer "
                         r"than 3 receivers$")
        short = [r for r in rounds() if not r["ok"]]
        self.assertTrue(short and all(r["missing"] == [gone] for r in short))
        by_name = {r["name"]: r for r in summary_of(sender)["receivers"]}
        self.assertEqual(by_name["r3"]["lost"], len(short))
        self.assertEqual(by_name["r1"]["lost"], 0)

    def test_every_sender_works_with_every_receiver(self):
        receivers = {
            "multicast_receiver.py": (support.python_script("multicast_receiver.py"), True),
            "socket_multicast_receiver.py": (
                support.python_script("socket_multicast_receiver.py", "-n", "other"), True),
            "lecture_receiver.py": (
                [support.PYTHON, "-u", os.path.join(LECTURE, "lecture_receiver.py")], False),
        }
        senders = {
            "multicast_sender.py": support.python_script("multicast_sender.py"),
            "socket_multicast_sender.py": support.python_script(
                "socket_multicast_sender.py", "--json"),
            "lecture_sender.py": [support.PYTHON, "-u",
                                  os.path.join(LECTURE, "lecture_sender.py")],
        }
        ack_line = f"received b'ack' from ('{self.lab.address(OTHER)}', 10000)"
        for receiver_name, (receiver_argv, ours) in receivers.items():
            for sender_name, sender_argv in senders.items():
                with self.subTest(sender=sender_name, receiver=receiver_name):
                    receiver = self.start_receiver(OTHER, receiver_argv, ours)
                    sender = self.start(SENDER, sender_argv)
                    self.assertEqual(sender.wait(20), 0, sender.stderr)
                    if sender_name == "socket_multicast_sender.py":
                        [entry] = summary_of(sender)["receivers"]
                        self.assertEqual((entry["address"], entry["acks"], entry["lost"]),
                                         (self.lab.address(OTHER), 1, 0))
                    else:
                        self.assertIn(ack_line, sender.lines)
                    receiver.kill()

    def test_injected_random_loss_is_reported_within_a_point(self):
        """iptables drops a share of one receiver's multicast at random; its own
        counter is the truth the sender's and receiver's figures are held to."""
        for percent in (10, 30):
            with self.subTest(loss=percent):
                lossy, clean = RECEIVERS[0], RECEIVERS[1]
                rule = self.lab.run(lossy, [
                    "iptables", "-A", "INPUT", "-d", GROUP, "-m", "statistic", "--mode",
                    "random", "--probability", str(percent / 100), "-j", "DROP"])
                self.assertEqual(rule.returncode, 0, rule.stderr)
                receivers = self.socket_receivers((lossy, clean))
                sent = 1000
                sender = self.socket_sender("--rate", "500", "--count", str(sent))
                self.assertEqual(sender.wait(60), 0, sender.stderr)
                counters = self.lab.run(lossy, ["iptables", "-L", "INPUT", "-v", "-x", "-n"])
                dropped = int(re.search(r"^\s*(\d+)\s+\d+\s+DROP", counters.stdout, re.M)[1])
                truth = 100.0 * dropped / sent
                self.assertLess(abs(truth - percent), 6, "the rule's own drop rate")
                by_name = {r["name"]: r for r in summary_of(sender)["receivers"]}
                self.assertLessEqual(abs(by_name[f"r{lossy}"]["loss_pct"] - truth), 1.0)
                self.assertEqual(by_name[f"r{clean}"]["lost"], 0)
                for host, receiver in receivers.items():
                    receiver.signal(signal.SIGTERM)
                    self.assertEqual(receiver.wait(5), 0)
                    [entry] = summary_of(receiver)["senders"]
                    expected = truth if host == lossy else 0.0
                    self.assertLessEqual(abs(entry["loss_pct"] - expected), 1.0)
                self.lab.run(lossy, ["iptables", "-F", "INPUT"])


if __name__ == "__main__":
    unittest.main()
