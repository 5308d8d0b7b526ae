"""The socket pair's whole truth, across hosts: tail loss, verdicts, a roster, floods.

Every figure is held to an outside truth: the packet counter of the iptables
rule that dropped the datagrams."""

import re
import signal
import time
import unittest

from . import netlab, support
from .support import GROUP, events, only

SENDER, FIRST, SECOND = 0, 1, 2
# Data messages (version 1, kind 1) whose sequence number is above 200:
# the u32 match reads the UDP payload at the IP header's length + 8.
TAIL_DATA = "0>>22&0x3C@12>>16=0x0101&&0>>22&0x3C@28=201:0xFFFFFFFF"


class TrustLabTest(netlab.LabTestCase):
    hosts = 4

    def tearDown(self):
        super().tearDown()
        for host in range(self.hosts):
            self.lab.run(host, ["iptables", "-F", "INPUT"])

    def receiver(self, host, *arguments):
        child = self.start(host, support.python_script(
            "socket_multicast_receiver.py", "--json", "--name", f"r{host}", *arguments))
        self.assertTrue(support.wait_until(
            lambda: self.lab.joined(host, GROUP) and events(child, "start"), 5), child.stderr)
        return child

    def sender(self, *arguments):
        return self.start(SENDER, support.python_script(
            "socket_multicast_sender.py", "--json", *arguments))

    def iptables(self, host, *rule):
        result = self.lab.run(host, ["iptables", "-A", "INPUT", "-d", GROUP, *rule])
        self.assertEqual(result.returncode, 0, result.stderr)

    def dropped(self, host):
        listing = self.lab.run(host, ["iptables", "-L", "INPUT", "-v", "-x", "-n"]).stdout
        return int(re.search(r"^\s*(\d+)\s+\d+\s+DROP", listing, re.M)[1])

    def stop(self, child):
        child.signal(signal.SIGTERM)
        self.assertEqual(child.wait(5), 0, child.stderr)

    def check_tail_loss(self, *mode):
        self.iptables(FIRST, "-p", "udp", "-m", "u32", "--u32", TAIL_DATA, "-j", "DROP")
        receiver = self.receiver(FIRST, "--quiet")
        # One datagram a call: the rule matches each message's own number (a train crosses
        # these veths whole, and the rule would see only its first message's).
        sender = self.sender("--rate", "500", "--count", "300", "--no-offload", *mode)
        self.assertEqual(sender.wait(30), 0, sender.stderr)
        truth = self.dropped(FIRST)
        self.assertEqual(truth, 100, "the rule dropped the last 100 messages")
        self.stop(receiver)
        [session] = only(receiver, "summary")["senders"]
        self.assertEqual((session["received"], session["lost"], session["end_seen"]),
                         (200, truth, True))
        [entry] = only(sender, "summary")["receivers"]
        self.assertEqual((entry["report"]["received"], entry["report"]["lost"]), (200, truth))
        return entry, truth

    def test_tail_loss_without_acks_is_counted_and_reported_to_the_sender(self):
        self.check_tail_loss("--no-ack")

    def test_tail_loss_with_acks_matches_the_rules_counter_at_both_ends(self):
        entry, truth = self.check_tail_loss()
        self.assertEqual((entry["acks"], entry["lost"]), (200, truth))

    def test_max_loss_fails_a_lossy_receiver_by_name_and_passes_a_clean_one(self):
        # Data messages only (IPv4 20 bytes, UDP 8, a message padded to ACK_ROOM), so that
        # the ends of run get through and the report tells where the loss was.
        data_size = 28 + support.load("socket_multicast_sender.py").ACK_ROOM
        self.iptables(FIRST, "-m", "length", "--length", str(data_size), "-m", "statistic",
                      "--mode", "random", "--probability", "0.3", "-j", "DROP")
        self.receiver(FIRST, "--quiet")
        self.receiver(SECOND, "--quiet")
        sender = self.sender("--rate", "500", "--count", "500", "--max-loss", "5",
                             "--expect", "2")
        self.assertEqual(sender.wait(30), 1, sender.stderr)
        verdict = only(sender, "summary")["verdict"]
        self.assertFalse(verdict["ok"])
        [reason] = verdict["reasons"]
        self.assertRegex(reason, rf"^{re.escape(self.lab.address(FIRST))} \(r{FIRST}\) lost "
                                 r"[\d.]+% \(\d+ on the way there; above 5%\)$")
        self.assertIn(reason, sender.stderr)
        self.lab.run(FIRST, ["iptables", "-F", "INPUT"])
        clean = self.sender("--rate", "500", "--count", "500", "--max-loss", "5",
                            "--no-ack", "--expect", f"r{FIRST},r{SECOND}")
        self.assertEqual(clean.wait(30), 0, clean.stderr)
        self.assertEqual(only(clean, "summary")["verdict"]["reasons"], [])

    def test_a_listed_receiver_that_never_answers_is_named_from_the_first_round(self):
        self.receiver(FIRST)
        self.receiver(SECOND)
        sender = self.sender("--count", "2", "--interval", "0.1",
                             "--expect", f"r{FIRST},r{SECOND},r3")
        self.assertEqual(sender.wait(30), 1, sender.stderr)
        first_round = events(sender, "round")[0]
        self.assertEqual((first_round["ok"], first_round["missing"]),
                         (False, [{"listed": "r3"}]))
        summary = only(sender, "summary")
        [ghost] = [r for r in summary["receivers"] if r.get("listed") == "r3"]
        self.assertEqual((ghost["acks"], ghost["loss_pct"]), (0, 100.0))
        self.assertIn("r3 never answered", summary["verdict"]["reasons"])

    def test_a_flooded_receiver_stops_within_a_second_and_reports_on_time(self):
        receiver = self.receiver(FIRST, "--report-interval", "0.5")
        flood = ("--rate", "0", "--count", "0", "--no-ack", "--size", "100")
        sender = self.sender(*flood)  # two floods: more than one receiver can read
        self.start(3, support.python_script("socket_multicast_sender.py", "--json", *flood))
        self.assertTrue(support.wait_until(lambda: len(events(receiver, "report")) >= 4, 10),
                        receiver.output()[-2000:])
        reports = events(receiver, "report")
        late = [round(r["seconds"] - 0.5 * (n + 1), 3) for n, r in enumerate(reports[:4])]
        self.assertTrue(all(0 <= delay <= 0.25 for delay in late), late)
        started = time.monotonic()
        self.stop(receiver)
        self.assertLess(time.monotonic() - started, 1.0)
        summary = only(receiver, "summary")
        self.assertGreater(summary["received"], 1000)
        sender.signal(signal.SIGTERM)
        self.assertEqual(sender.wait(5), 1, "the receiver stopped before it could report")
        self.assertEqual(only(sender, "summary")["verdict"]["reasons"],
                         ["0 of 1 expected receivers sent a report"])

    def kernel_drops(self):  # the last column of the socket's line in /proc/net/udp
        udp = self.lab.run(FIRST, ["cat", "/proc/net/udp"]).stdout.splitlines()[1:]
        return sum(int(line.split()[-1]) for line in udp
                   if line.split()[1].endswith(f":{10000:04X}"))

    def test_drops_of_a_full_buffer_are_told_apart_and_match_the_kernels_counter(self):
        receiver = self.receiver(FIRST, "--quiet")
        receiver.signal(signal.SIGSTOP)  # its buffer fills up and the kernel drops the rest
        sender = self.sender("--rate", "4000", "--count", "8000", "--no-ack", "--size", "1400",
                             "--no-offload")  # the kernel counts a dropped train as one
        kernel_drops = self.kernel_drops
        self.assertTrue(support.wait_until(lambda: kernel_drops() > 100, 10))
        receiver.signal(signal.SIGCONT)
        self.assertEqual(sender.wait(30), 0, sender.stderr)
        kernel_drops = kernel_drops()
        self.stop(receiver)
        summary = only(receiver, "summary")
        [session] = summary["senders"]
        self.assertGreater(kernel_drops, 0)
        self.assertEqual((summary["host_drops"], session["lost"]), (kernel_drops, kernel_drops))
        [entry] = only(sender, "summary")["receivers"]
        self.assertEqual(entry["report"]["host_drops"], kernel_drops)

    def test_with_trains_the_drops_of_a_full_buffer_are_every_datagram_lost(self):
        """The kernel counts a train it drops as one drop: with trains, the receiver counts
        the numbers missing where its count went up, and all the loss here is its host's."""
        receiver = self.receiver(FIRST, "--quiet")
        receiver.signal(signal.SIGSTOP)
        sender = self.sender("--rate", "4000", "--count", "8000", "--no-ack", "--size", "1400")
        self.assertTrue(support.wait_until(lambda: self.kernel_drops() > 20, 10))
        receiver.signal(signal.SIGCONT)
        self.assertEqual(sender.wait(30), 0, sender.stderr)
        trains_dropped = self.kernel_drops()
        self.stop(receiver)
        summary = only(receiver, "summary")
        [session] = summary["senders"]
        self.assertEqual(session["received"] + session["lost"], 8000)
        self.assertGreater(session["lost"], trains_dropped, "a train dropped is many datagrams")
        self.assertEqual((summary["host_drops"], session["host_drops"]),
                         (session["lost"], session["lost"]))
        [entry] = only(sender, "summary")["receivers"]
        self.assertEqual((entry["report"]["host_drops"], entry["loss"]["there"]),
                         (session["lost"], 0))

    def test_printing_every_datagram_costs_no_more_than_a_point_of_loss(self):
        """Side by side, one flood: a receiver that prints against one with --quiet."""
        loud = self.receiver(FIRST)
        quiet = self.receiver(SECOND, "--quiet")
        # A million a second: what a quiet receiver takes whole on this 2-core machine with
        # the sender beside it (at --rate 0, full trains, the three share too little CPU
        # and which receiver falls behind is the scheduler's choice, not the printing's).
        sender = self.sender("--rate", "1000000", "--count", "100000", "--no-ack", "--size",
                             "100")
        self.assertEqual(sender.wait(60), 0, sender.stderr)
        self.stop(loud)
        self.stop(quiet)
        [loud_session] = only(loud, "summary")["senders"]
        [quiet_session] = only(quiet, "summary")["senders"]
        self.assertLessEqual(loud_session["loss_pct"], quiet_session["loss_pct"] + 1.0,
                             (loud_session, quiet_session))
        self.assertTrue(events(loud, "unprinted"))
        self.assertLess(len(loud.lines), 2000)

    def test_every_json_event_has_a_time_and_the_fields_the_readme_lists(self):
        receiver = self.receiver(FIRST, "--report-interval", "0.2")
        rounds = self.sender("--count", "2", "--interval", "0.3", "--live")
        self.assertEqual(rounds.wait(30), 0, rounds.stderr)
        rubbish = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                   f"[s.sendto(d, ('{GROUP}', 10000)) for d in (b'hello', b'\\xff')]")
        self.assertEqual(self.lab.run(SECOND, [support.PYTHON, "-c", rubbish]).returncode, 0)
        flood = self.sender("--rate", "400", "--count", "400", "--report-interval", "0.3")
        self.assertEqual(flood.wait(30), 0, flood.stderr)
        self.stop(receiver)
        now = time.time()
        documented = readme_json_fields()
        for script, child in (("sender", rounds), ("sender", flood), ("receiver", receiver)):
            lines = support.json_lines(child.lines)
            self.assertEqual(len(lines), len(child.lines), "every line is JSON")
            for event in lines:
                self.assertLess(abs(event["time"] - now), 60)
                self.assertEqual(set(event) - {"type", "time"},
                                 documented[script, event["type"]], event)
        seen = {("receiver", e["type"]) for e in support.json_lines(receiver.lines)} | {
            ("sender", e["type"]) for e in support.json_lines(rounds.lines + flood.lines)}
        self.assertEqual(set(documented) - seen, {("receiver", "error")})


def readme_json_fields():
    """docs/measuring.md's table of JSON events: (script, type) -> set of field names."""
    with open(support.script("docs/measuring.md"), encoding="utf-8") as readme:
        text = readme.read()
    table = text[text.index("## JSON output"):text.index("## The wire protocol")]
    rows = re.findall(r"^\| (sender|receiver) \| `(\w+)` \| (.*) \|$", table, re.M)
    return {(script, kind): set(re.findall(r"`(\w+)`", fields))
            for script, kind, fields in rows}

if __name__ == "__main__":
    unittest.main()
