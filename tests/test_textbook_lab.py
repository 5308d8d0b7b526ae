"""The textbook pair across hosts: one sender and two receivers in network namespaces."""

import os
import re
import unittest

from . import netlab, support
from .support import GROUP, LECTURE

WAITING = "waiting to receive message"
SENDER, FIRST, SECOND, NO_ROUTE = range(4)


class TextbookLabTest(netlab.LabTestCase):
    hosts = 4

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lab.run(NO_ROUTE, ["ip", "route", "del", "default"])

    def start_receivers(self, argv_for_host, ready):
        receivers = [self.start(host, argv_for_host(host)) for host in (FIRST, SECOND)]
        for host, receiver in zip((FIRST, SECOND), receivers):
            self.assertTrue(support.wait_until(lambda: ready(host, receiver), 5),
                            f"receiver on host {host} did not join: {receiver.stderr}")
        return receivers

    def our_receivers(self, *arguments, own_interface=False):
        def argv(host):
            interface = ["-i", self.lab.address(host)] if own_interface else []
            return support.python_script("multicast_receiver.py", *interface, *arguments)
        return self.start_receivers(
            argv,
            lambda host, receiver: WAITING in receiver.lines and self.lab.joined(host, GROUP))

    def lecture_receivers(self):
        return self.start_receivers(
            lambda host: [support.PYTHON, "-u", os.path.join(LECTURE, "lecture_receiver.py")],
            lambda host, receiver: self.lab.joined(host, GROUP))

    def acks_in_rounds(self, sender_lines):
        """The set of ack lines of each round of a sender's output."""
        rounds, current = [], None
        for line in sender_lines:
            if line.startswith("sending "):
                current = set()
                rounds.append(current)
            elif line.startswith("received ") and current is not None:
                current.add(line)
        return rounds

    def expected_acks(self):
        return {f"received b'ack' from ('{self.lab.address(host)}', 10000)"
                for host in (FIRST, SECOND)}

    def test_every_round_is_acknowledged_by_both_receivers(self):
        receivers = self.our_receivers("--count", "3")
        sender = self.start(SENDER, support.python_script(
            "multicast_sender.py", "--count", "3", "--interval", "0.2"))
        self.assertEqual(sender.wait(20), 0, sender.stderr)
        self.assertEqual(self.acks_in_rounds(sender.lines), [self.expected_acks()] * 3)
        round_lines = ["sending b'very important data'"] + ["waiting to receive",
                                                            "<ack>"] * 2 + [
            "waiting to receive", "timed out, no more responses"]
        shape = ["<ack>" if line.startswith("received b'ack' from") else line
                 for line in sender.lines]
        self.assertEqual(shape, round_lines * 3 + ["closing socket"])
        origin = re.escape(f"('{self.lab.address(SENDER)}', ") + r"\d+\)"
        expected = [WAITING, f"received 19 bytes from {origin}",
                    re.escape("b'very important data'"),
                    f"sending acknowledgement to {origin}", ""] * 3 + ["closing socket"]
        for receiver in receivers:
            self.assertEqual(receiver.wait(5), 0, receiver.stderr)
            self.assertEqual(len(receiver.lines), len(expected), receiver.output())
            for line, pattern in zip(receiver.lines, expected):
                self.assertRegex(line, f"^{pattern}$")

    def test_lecture_sender_gets_acks_from_our_receivers(self):
        self.our_receivers()
        lecture = self.start(SENDER, [support.PYTHON, "-u",
                                      os.path.join(LECTURE, "lecture_sender.py")])
        self.assertEqual(lecture.wait(20), 0, lecture.stderr)
        self.assertEqual(set(lecture.lines[:-1]), self.expected_acks())
        self.assertEqual(lecture.lines[-1], "timed out, no more responses")

    def test_our_sender_gets_acks_from_lecture_receivers(self):
        receivers = self.lecture_receivers()
        sender = self.start(SENDER, support.python_script("multicast_sender.py"))
        self.assertEqual(sender.wait(20), 0, sender.stderr)
        self.assertEqual(self.acks_in_rounds(sender.lines), [self.expected_acks()])
        origin = re.escape(f"('{self.lab.address(SENDER)}', ") + r"\d+\)"
        for receiver in receivers:
            self.assertTrue(support.wait_until(lambda: receiver.lines, 5))
            self.assertRegex(receiver.lines[0], f"^received 19 bytes from {origin}$")

    def test_explicit_interface_works_like_the_default(self):
        self.our_receivers("--count", "1", own_interface=True)
        sender = self.start(SENDER, support.python_script(
            "multicast_sender.py", "-i", self.lab.address(SENDER)))
        self.assertEqual(sender.wait(20), 0, sender.stderr)
        self.assertEqual(self.acks_in_rounds(sender.lines), [self.expected_acks()])

    def test_no_multicast_route_is_one_actionable_line(self):
        for name in ("multicast_sender.py", "multicast_receiver.py"):
            result = self.lab.run(NO_ROUTE, support.python_script(name))
            self.assertEqual(result.returncode, 1, result.stderr)
            lines = result.stderr.splitlines()
            if name == "multicast_sender.py":  # it says where it sends before it tries
                self.assertRegex(lines.pop(0), r"^multicast_sender\.py: sending to ")
            self.assertEqual(lines,
                             [f"{name}: error: no route for multicast: add a route for "
                              "224.0.0.0/4 or a default route, or pass --interface ADDRESS"])


if __name__ == "__main__":
    unittest.main()
