"""Receivers that answer under one name from one host, over 127.0.0.1: each is its own
row, counted as it answered; a receiver restarted is one row, told as restarted."""

import signal
import unittest

from . import support
from .support import json_lines, summary_of


class NamesakeTest(support.LocalCase):
    def twins(self, *arguments, count=2, besides=()):
        """count receivers named "twin", each with its own instance number (and none of
        those besides)."""
        children, instances = [], set(besides)
        while len(children) < count:
            child = self.receiver("--name", "twin", *arguments)
            [start] = [e for e in json_lines(child.lines) if e["type"] == "start"]
            if start["instance"] in instances:  # one in 255: pick again, as a user would
                child.kill()
                continue
            instances.add(start["instance"])
            children.append(child)
        return children

    def answered(self, child):
        """The acks a receiver sent us (its own summary), after it stopped."""
        entries = self.stop(child)["answered"]
        return sum(entry["acks"] for entry in entries if entry["address"] == "127.0.0.1")

    def check_rows(self, sender, twins, no_ack=False):
        self.assertEqual(sender.wait(60), 0, sender.stderr)
        summary = summary_of(sender)
        rows = {row["instance"]: row for row in summary["receivers"]}
        instances = [json_lines(child.lines)[0]["instance"] for child in twins]
        self.assertEqual(sorted(rows), sorted(instances), summary)
        for child, instance in zip(twins, instances):
            row = rows[instance]
            self.assertEqual((row["duplicates"], row["restarts"], row["namesake"]),
                             (0, 0, True), row)
            if no_ack:
                self.assertIsNotNone(row["report"], row)
            else:
                self.assertEqual(row["acks"] + row["late"], self.answered(child), row)
                self.assertEqual(row["loss"]["back"], 0, row)
        self.assertEqual(summary["verdict"]["ok"], True, summary["verdict"])

    def test_namesakes_started_together_at_1000_and_10000_a_second(self):
        for rate in (1000, 10000):
            with self.subTest(rate=rate):
                twins = self.twins("--ack-jitter", "0.005")
                sender = self.start("socket_multicast_sender.py", "--rate", str(rate),
                                    "--count", str(rate), "--expect", "2", "--json")
                self.check_rows(sender, twins)

    def test_a_namesake_started_during_the_run(self):
        [first] = self.twins(count=1)
        sender = self.start("socket_multicast_sender.py", "--rate", "1000", "--count", "3000",
                            "--report-interval", "0.2", "--json")
        self.assertTrue(support.wait_until(  # about a second into the run
            lambda: len(support.events(sender, "report")) >= 5, 10), sender.stderr)
        [second] = self.twins(count=1, besides={json_lines(first.lines)[0]["instance"]})
        self.check_rows(sender, [first, second])

    def test_namesakes_without_acks_each_send_a_report(self):
        twins = self.twins()
        sender = self.start("socket_multicast_sender.py", "--rate", "1000", "--count", "1000",
                            "--no-ack", "--expect", "2", "--json")
        self.check_rows(sender, twins, no_ack=True)

    def test_namesakes_in_rounds_with_ack_jitter(self):
        twins = self.twins("--ack-jitter", "0.02")
        sender = self.start("socket_multicast_sender.py", "--count", "10", "--interval", "0",
                            "--timeout", "0.3", "--wait-all", "--expect", "2", "--json")
        self.check_rows(sender, twins)
        for event in support.events(sender, "round"):
            self.assertEqual((len(event["acks"]), event["missing"]), (2, []), event)

    def test_a_receiver_restarted_mid_run_is_one_row_told_as_restarted(self):
        first = self.receiver("--name", "again", "--ack-jitter", "0")
        sender = self.start("socket_multicast_sender.py", "--count", "30", "--interval",
                            "0.05", "--timeout", "0.2", "--json")
        self.assertTrue(support.wait_until(lambda: len(support.events(sender, "round")) >= 5,
                                           10), sender.stderr)
        first.signal(signal.SIGKILL)
        first.wait(5)
        self.receiver("--name", "again", "--ack-jitter", "0")
        self.assertEqual(sender.wait(30), 1, "the rounds without it fail: " + sender.stderr)
        summary = summary_of(sender)
        [row] = summary["receivers"]
        rounds = support.events(sender, "round")
        answered = sum(1 for event in rounds if event["acks"])
        self.assertEqual((row["restarts"], row["acks"], row["duplicates"], row["namesake"]),
                         (1, answered, 0, False))
        self.assertEqual(row["lost"], 30 - answered)
        # Once its new life answered, no round calls it missing.
        first_life = rounds[0]["acks"][0]["instance"]
        back = next(i for i, event in enumerate(rounds)
                    if event["acks"] and event["acks"][0]["instance"] != first_life)
        self.assertTrue(all(event["missing"] == [] for event in rounds[back:]), rounds[back:])


if __name__ == "__main__":
    unittest.main()
