"""The socket pair at scale and under the faults a real network has."""

import os
import signal
import time
import unittest

from . import netlab, support
from .support import GROUP, events, summary_of

SCALE = 200  # receivers in the scale test, one process and one namespace each

FLOOD = """
import os, random, socket, sys, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
random.seed(int(sys.argv[1]))
for number in range(int(sys.argv[2])):
    sock.sendto(os.urandom(random.randint(1, 1400)), ("{group}", 10000))
    if number % 50 == 49:
        time.sleep(0.005)  # about 10,000 a second: an attack during a run, not one burst
""".format(group=GROUP)


def backlog_drops():
    """Frames this machine's kernel dropped for a full backlog (all namespaces)."""
    with open("/proc/net/softnet_stat") as table:
        return sum(int(line.split()[1], 16) for line in table)


def udp_receive_errors(lab, host):
    """The kernel's count of datagrams dropped for a full socket buffer on host."""
    lines = [line.split() for line in lab.run(host, ["cat", "/proc/net/snmp"]).stdout.splitlines()
             if line.startswith("Udp:")]
    return int(lines[1][lines[0].index("RcvbufErrors")])


class LabCase(netlab.LabTestCase):
    hosts = 5

    def receiver(self, host, *arguments):
        child = self.start(host, support.python_script(
            "socket_multicast_receiver.py", "--json", "--quiet", "--name", f"r{host}",
            *arguments))
        return child

    def wait_ready(self, receivers, timeout=10):
        ready = support.wait_until(lambda: all(events(r, "start") for r in receivers), timeout)
        self.assertTrue(ready, [r.stderr for r in receivers if not events(r, "start")][:3])

    def sender(self, *arguments, host=0):
        return self.start(host, support.python_script(
            "socket_multicast_sender.py", "--json", *arguments))

    def wait_rounds(self, sender, count, timeout=20):
        self.assertTrue(support.wait_until(lambda: len(events(sender, "round")) >= count,
                                           timeout), sender.stderr)

    def stop(self, child, timeout=10):
        child.signal(signal.SIGTERM)
        return child.wait(timeout)


class ScaleTest(LabCase):
    hosts = SCALE + 1

    def test_two_hundred_receivers_every_ack_of_every_round(self):
        """Every ack of every round counts, within the deadline the design promises.

        A receiver's first ack needs the sender's MAC address (ARP). With 200
        hosts on one bridge and both cores busy, the kernel's backlog drops
        thousands of frames a run (/proc/net/softnet_stat), ARP requests among
        them, and a lost ARP request is repeated only after a second: the
        receiver's first acks then come about a second late (seen: 3 rounds
        short, one receiver with 3 late acks). The default --timeout 0.2 s
        cannot cover that; 2 s covers one lost request, not two in a row (seen
        once under CI's load: one ack of round 1 late). And when that backlog
        drops a message or an ack, the ack is missing for good (seen once in 20
        runs, with other tests running beside it): then up to 5 missing or
        late acks of 2,000 are allowed, each one of the frames the kernel
        counted as dropped (/proc/net/softnet_stat)."""
        receivers = [self.receiver(host) for host in range(1, SCALE + 1)]
        self.wait_ready(receivers, timeout=120)
        dropped_before = backlog_drops()
        sender = self.sender("--count", "10", "--interval", "0.1", "--timeout", "2",
                             "--expect", str(SCALE))
        status = sender.wait(180)
        dropped = backlog_drops() - dropped_before
        rounds = events(sender, "round")
        missing = sum(SCALE - len(r["acks"]) for r in rounds)
        summary = summary_of(sender)
        late = sum(r["late"] for r in summary["receivers"])
        self.assertEqual(len(rounds), 10)
        self.assertEqual(len(summary["receivers"]), SCALE)
        self.assertEqual({r["duplicates"] for r in summary["receivers"]}, {0},
                         self.who_was_missing(sender))
        if dropped == 0:  # nothing lost on the way: every ack of every round, in time
            self.assertEqual((status, missing, late), (0, 0, 0), self.who_was_missing(sender))
        else:  # the kernel's backlog dropped frames (mostly the ARP storm's copies):
            # a few acks may be among them, or wait for an ARP request repeated twice
            # (a second each: late), each one of those frames
            self.assertLessEqual(missing + late, min(dropped, 5),
                                 self.who_was_missing(sender))
        slowest = max(a["rtt_ms"] for r in rounds for a in r["acks"])
        print(f"\n200 receivers: the slowest ack of 2,000 came after {slowest:.1f} ms; "
              f"{missing} missing, {late} late, {dropped} frames dropped by the kernel's "
              f"backlog")

    @staticmethod
    def who_was_missing(sender):
        """Which receivers were missing in which round, and which were late at all."""
        everyone = {f"r{host}" for host in range(1, SCALE + 1)}
        lines = []
        for entry in events(sender, "round"):
            missing = everyone - {ack["name"] for ack in entry["acks"]}
            if missing:
                lines.append(f"round {entry['seq']}: missing {', '.join(sorted(missing))}")
        summaries = events(sender, "summary")
        if summaries:
            late = [f"{r['name']} ({r['late']} late)" for r in summaries[0]["receivers"]
                    if r.get("late")]
            lines.append("late: " + (", ".join(late) or "none"))
        return "\n" + "\n".join(lines or ["no round had anyone missing"])


class FaultTest(LabCase):
    def test_receiver_killed_and_restarted_is_counted_lost_then_again(self):
        first = self.receiver(1)
        self.wait_ready([first, self.receiver(2)])
        sender = self.sender("--count", "0", "--interval", "0.05", "--expect", "2")
        self.wait_rounds(sender, 3)
        first.process.kill()  # no goodbye
        first.wait()
        self.assertTrue(support.wait_until(
            lambda: sum(1 for r in events(sender, "round")
                        if {"address": self.lab.address(1), "name": "r1"} in r["missing"]) >= 3,
            10))
        again = self.receiver(1)
        self.wait_ready([again])
        self.assertTrue(support.wait_until(
            lambda: [a["name"] for a in events(sender, "round")[-1]["acks"]].count("r1") == 1
            and len(events(sender, "round")[-3]["acks"]) == 2, 10))
        self.assertEqual(self.stop(sender), 1, "rounds without r1 fail --expect 2")
        rounds = events(sender, "round")
        without = sum(1 for r in rounds if "r1" not in [a["name"] for a in r["acks"]])
        r1 = {r["name"]: r for r in summary_of(sender)["receivers"]}["r1"]
        self.assertGreaterEqual(without, 3)
        self.assertEqual((r1["acks"], r1["lost"], r1["duplicates"]),
                         (len(rounds) - without, without, 0))
        self.assertEqual(len(summary_of(sender)["receivers"]), 2, "the same receiver again")

    def test_restarted_sender_is_a_new_session_at_the_receivers(self):
        receiver = self.receiver(1)
        self.wait_ready([receiver])
        sessions = []
        for count in (3, 5):
            sender = self.sender("--count", str(count), "--interval", "0")
            self.assertEqual(sender.wait(20), 0, sender.stderr)
            sessions.append((events(sender, "start")[0]["session"], count))
        self.assertEqual(self.stop(receiver), 0)
        summary = summary_of(receiver)
        self.assertEqual(sorted((s["session"], s["received"]) for s in summary["senders"]),
                         sorted(sessions))
        self.assertEqual((summary["lost"], summary["duplicates"], summary["reordered"]),
                         (0, 0, 0))

    def outage(self, cut, restore, sender_arguments=()):
        """Run rounds, cut a link for two seconds, restore it; return the rounds."""
        receivers = [self.receiver(host) for host in (1, 2)]
        self.wait_ready(receivers)
        sender = self.sender("--count", "0", "--interval", "0.05", "--expect", "2",
                             *sender_arguments)
        self.wait_rounds(sender, 3)
        self.assertEqual(self.lab.shell(cut).returncode, 0)
        cut_at = len(events(sender, "round"))
        deadline = time.monotonic() + 2.0
        support.wait_until(lambda: time.monotonic() >= deadline, 3)  # the outage itself
        self.assertEqual(self.lab.shell(restore).returncode, 0)
        restored_at = len(events(sender, "round"))
        self.wait_rounds(sender, restored_at + 5)
        self.assertEqual(self.stop(sender), 1)
        for receiver in receivers:
            self.assertEqual(self.stop(receiver), 0, "the receiver survived")
        rounds = events(sender, "round")
        self.assertTrue(all(len(r["acks"]) == 2 for r in rounds[:cut_at]))
        self.assertTrue(any(not r["ok"] for r in rounds[cut_at:restored_at]))
        self.assertTrue(all(r["ok"] for r in rounds[-3:]), "recovered without a restart")
        return rounds, summary_of(sender)

    def test_receiver_link_down_two_seconds_then_up(self):
        bridge = self.lab.bridge_namespace
        rounds, summary = self.outage(f"ip -n {bridge} link set v1 down",
                                      f"ip -n {bridge} link set v1 up")
        by_name = {r["name"]: r for r in summary["receivers"]}
        missed = sum(1 for r in rounds if "r1" not in [a["name"] for a in r["acks"]])
        self.assertGreater(missed, 0)
        self.assertEqual(by_name["r1"]["lost"], missed)
        self.assertEqual(by_name["r2"]["lost"], 0)

    def test_sender_link_down_two_seconds_then_up(self):
        host = self.lab.namespace(0)
        rounds, summary = self.outage(
            f"ip -n {host} link set eth0 down",
            # a link going down takes its routes along; put the default one back
            f"ip -n {host} link set eth0 up; ip -n {host} route replace default dev eth0",
            sender_arguments=("--interface", self.lab.address(0)))
        missed = sum(1 for r in rounds if not r["acks"])
        self.assertGreater(missed, 0)
        self.assertGreater(summary["send_errors"], 0)
        for entry in summary["receivers"]:
            self.assertEqual(entry["lost"], missed)

    def test_stopped_receiver_late_acks_are_not_counted_twice(self):
        stalled = self.receiver(1)
        self.wait_ready([stalled, self.receiver(2)])
        sender = self.sender("--count", "0", "--interval", "0.05", "--expect", "2")
        self.wait_rounds(sender, 3)
        stalled.signal(signal.SIGSTOP)
        self.wait_rounds(sender, len(events(sender, "round")) + 5)
        stalled.signal(signal.SIGCONT)
        self.assertTrue(support.wait_until(
            lambda: all(len(r["acks"]) == 2 for r in events(sender, "round")[-2:]), 10))
        self.assertEqual(self.stop(sender), 1)
        rounds = events(sender, "round")
        missed = sum(1 for r in rounds if "r1" not in [a["name"] for a in r["acks"]])
        r1 = {r["name"]: r for r in summary_of(sender)["receivers"]}["r1"]
        self.assertGreaterEqual(missed, 5)
        self.assertEqual((r1["acks"], r1["duplicates"]), (len(rounds) - missed, 0))
        self.assertGreater(r1["late"], 0, "the stalled receiver answered late")
        self.assertLessEqual(r1["late"], missed)
        # Its report says it got every message: late acks are not lost, by either way.
        self.assertEqual(r1["loss"]["there"], 0)
        self.assertEqual(r1["lost"], missed - r1["late"])
        self.assertEqual(self.stop(stalled), 0)
        [seen] = summary_of(stalled)["senders"]
        self.assertEqual(seen["lost"], 0, "the messages waited in its socket buffer")

    def test_flood_of_random_datagrams(self):
        receivers = {host: self.receiver(host) for host in (1, 2, 3)}
        self.wait_ready(list(receivers.values()))
        dropped_before = {host: udp_receive_errors(self.lab, host) for host in receivers}
        sender = self.sender("--count", "0", "--interval", "0.05", "--expect", "3")
        flood = self.start(4, [support.PYTHON, "-c", FLOOD, "7", "10000"])
        self.assertEqual(flood.wait(60), 0, flood.stderr)
        rounds_after_flood = len(events(sender, "round")) + 3
        self.wait_rounds(sender, rounds_after_flood)
        self.assertEqual(self.stop(sender), 0, "every round answered by all three")
        for host, receiver in receivers.items():
            self.assertEqual(self.stop(receiver), 0)
            summary = summary_of(receiver)
            dropped = udp_receive_errors(self.lab, host) - dropped_before[host]
            self.assertEqual(summary["malformed"] + summary["plain"] + dropped, 10000,
                             f"r{host}: every datagram accounted for")
            self.assertGreater(summary["malformed"], 9000)


class MemoryTest(unittest.TestCase):
    """Over 127.0.0.1: memory does not grow with the number of messages."""

    def rss_kib(self, pid):
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def test_receiver_and_sender_memory_stays_flat(self):
        support.skip_unless(os.path.exists("/proc/self/status"), "no /proc here")
        port = str(support.free_udp_port())
        receiver = support.Watched(support.python_script(
            "socket_multicast_receiver.py", "-i", "127.0.0.1", "-p", port, "--json", "-q",
            "--report-interval", "0.1", "--ack-jitter", "0.001"))
        self.addCleanup(receiver.kill)
        self.assertTrue(support.wait_until(lambda: receiver.lines, 5), receiver.stderr)
        sender = support.Watched(support.python_script(
            "socket_multicast_sender.py", "-i", "127.0.0.1", "-p", port, "--json",
            "--rate", "8000", "--count", "100000", "--report-interval", "0.1"))
        self.addCleanup(sender.kill)
        readings = {"receiver": {}, "sender": {}}

        def read(name, child, count_field):
            for report in events(child, "report"):
                count = report[count_field]
                key = 1000 if count >= 1000 and count < 10000 else (
                    100000 if count >= 95000 else None)
                if key and key not in readings[name] and child.process.poll() is None:
                    readings[name][key] = self.rss_kib(child.process.pid)

        def measured():
            read("receiver", receiver, "received")
            read("sender", sender, "sent")
            return all(len(r) == 2 for r in readings.values()) or sender.process.poll() is not None

        support.wait_until(measured, 60, interval=0.01)
        self.assertEqual(sender.wait(60), 0, sender.stderr)
        for name, reading in readings.items():
            self.assertEqual(sorted(reading), [1000, 100000], f"{name}: {readings}")
            self.assertLess(reading[100000] - reading[1000], 4096,
                            f"{name} grew by more than 4 MiB: {readings}")
        receiver.signal(signal.SIGTERM)
        self.assertEqual(receiver.wait(5), 0)
        self.assertGreaterEqual(summary_of(receiver)["received"], 100000 * 0.99)


if __name__ == "__main__":
    unittest.main()
