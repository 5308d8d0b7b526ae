"""Hostile traffic from a forger host: it cannot exhaust a receiver's memory, lock a real
sender out, get a signed message answered twice, or have receivers amplify its traffic.
Each attack is judged on the victim's side: an iptables counter, /proc, the real run."""

import os
import re
import signal
import sys
import tempfile
import unittest

from . import netlab, support
from .support import GROUP, only

SENDER, FORGER, VICTIM = 0, 1, 2
RECEIVERS = range(3, 11)  # eight receivers
RSS_BOUND_MIB = 64  # the receiver's memory bound under these floods (docs/measuring.md)

FLOOD_SCRIPT = r"""
import socket, struct, sys
HEADER = struct.Struct("!4sBBBxQQQ")
mode, count, sources = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
socks = []
for source in sources:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    socks.append(sock)
sent = 0
for n in range(count):
    sock = socks[(n // 8) % len(socks)]  # a session from one address
    if mode == "jumps":  # a made-up session, then jumps just short of the receiver's limit
        session = n // 8
        sequence = 1 + (n % 8) * ((1 << 24) - 1)
    else:  # "ids": one datagram each of ever new session ids
        session, sequence = (1 << 40) + n, 1
    sock.sendto(HEADER.pack(b"MCK1", 1, 1, 1, session, sequence, 0), ("{group}", 10000))
    sent += 1
print(sent, flush=True)
"""

SPOOF_SCRIPT = r"""
import socket, struct, sys, time
victim, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
burst = sys.argv[4:] == ["burst"]  # all at once, else 500 a second
HEADER = struct.Struct("!4sBBBxQQQ")
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)  # IP_HDRINCL
for n in range(1, count + 1):
    payload = HEADER.pack(b"MCK1", 1, 1, 0, 99, n, 0).ljust(size, b"\0")
    udp = struct.pack("!HHHH", 40000, 10000, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n & 0xFFFF, 0, 1, 17, 0,
                     socket.inet_aton(victim), socket.inet_aton("{group}"))
    raw.sendto(ip + udp, ("{group}", 0))
    if n % 50 == 0 and not burst:
        time.sleep(0.1)  # 500 a second
print(count, flush=True)
"""


class HostileLabTest(netlab.LabTestCase):
    hosts = 11

    def tearDown(self):
        super().tearDown()
        for host in range(self.hosts):
            self.lab.run(host, ["iptables", "-F"])

    def receiver(self, host, *arguments):
        child = self.start(host, support.python_script(
            "socket_multicast_receiver.py", "--json", "-q", "--name", f"r{host}", *arguments))
        self.assertTrue(support.wait_until(lambda: self.lab.joined(host, GROUP), 5),
                        child.stderr)
        return child

    def stop(self, child):
        child.signal(signal.SIGTERM)
        self.assertEqual(child.wait(10), 0, child.stderr)
        return only(child, "summary")

    def count(self, host, *rule):
        """Add an ACCEPT rule on host; return a function that reads its (packets, bytes)."""
        result = self.lab.run(host, ["iptables", "-A", *rule, "-j", "ACCEPT"])
        self.assertEqual(result.returncode, 0, result.stderr)
        chain, position = rule[0], len(re.findall(r"^\s*\d+\s+\d+\s+ACCEPT", self.lab.run(
            host, ["iptables", "-L", rule[0], "-v", "-x", "-n"]).stdout, re.M)) - 1

        def read():
            listing = self.lab.run(host, ["iptables", "-L", chain, "-v", "-x", "-n"]).stdout
            rows = re.findall(r"^\s*(\d+)\s+(\d+)\s+ACCEPT", listing, re.M)
            return tuple(map(int, rows[position]))
        return read

    def flood(self, mode, count, sources):
        for address in sources[1:]:
            self.lab.run(FORGER, ["ip", "addr", "add", f"{address}/24", "dev", "eth0"])
            self.addCleanup(self.lab.run, FORGER, ["ip", "addr", "del", f"{address}/24",
                                                   "dev", "eth0"])
        result = self.lab.run(FORGER, [support.PYTHON, "-c", FLOOD_SCRIPT.replace(
            "{group}", GROUP), mode, str(count), ",".join(sources)], timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr)
        return int(result.stdout)

    def rss_mib(self, child):
        with open(f"/proc/{child.process.pid}/status") as status:
            kib = [int(line.split()[1]) for line in status if line.startswith("VmRSS:")]
        return kib[0] / 1024

    def real_run(self, *arguments):
        sender = self.start(SENDER, support.python_script(
            "socket_multicast_sender.py", "--json", "--count", "5", "--interval", "0.05",
            "--expect", "1", *arguments))
        self.assertEqual(sender.wait(60), 0, sender.output() + sender.stderr)
        [entry] = only(sender, "summary")["receivers"]
        return entry

    def test_jumping_sequences_from_many_addresses_cost_bounded_memory(self):
        host = RECEIVERS[0]
        receiver = self.receiver(host)
        # The receiver's Python process; `ip netns exec` starts it as its own child.
        arrived = self.count(host, "INPUT", "-d", GROUP, "-p", "udp", "--dport", "10000")
        sources = [self.lab.address(FORGER)] + [f"10.77.0.{n}" for n in range(100, 140)]
        sent = self.flood("jumps", 40_000, sources)
        self.assertTrue(support.wait_until(lambda: arrived()[0] >= sent, 10), arrived())
        rss = self.rss_mib(receiver)
        summary = self.stop(receiver)
        self.assertLess(rss, RSS_BOUND_MIB, f"{sent} datagrams took it to {rss:.0f} MiB")
        print(f"\n{sent} datagrams of jumping sessions: the receiver at {rss:.1f} MiB",
              file=sys.stderr)
        self.assertEqual(summary["evicted"], sent // 8 - 1024)

    def test_a_hundred_thousand_junk_session_ids_lock_no_one_out(self):
        host = RECEIVERS[0]
        receiver = self.receiver(host)
        self.flood("ids", 100_000, [self.lab.address(FORGER)])
        replies = self.count(SENDER, "INPUT", "-p", "udp", "-s", self.lab.address(host),
                             "--sport", "10000")
        entry = self.real_run()
        self.assertEqual((entry["acks"], entry["lost"]), (5, 0))
        self.assertIsNotNone(entry["report"], "the receiver's report never came")
        self.assertEqual((entry["report"]["received"], entry["report"]["lost"]), (5, 0))
        self.assertGreaterEqual(replies()[0], 5 + 1, "5 acks and at least one report")
        summary = self.stop(receiver)
        self.assertGreater(summary["evicted"], 98_000)

    def test_spoofed_probes_are_never_answered_with_more_bytes(self):
        receivers = [self.receiver(host, "--ack-jitter", "0") for host in RECEIVERS]
        victim = self.count(VICTIM, "INPUT", "-p", "udp", "--sport", "10000")
        spoofed = self.count(FORGER, "OUTPUT", "-p", "udp", "-d", GROUP)
        padded = str(support.load("socket_multicast_sender.py").ACK_ROOM)
        for size in ("32", padded):  # a bare header, and a probe padded as a sender pads it
            result = self.lab.run(FORGER, [support.PYTHON, "-c", SPOOF_SCRIPT.replace(
                "{group}", GROUP), self.lab.address(VICTIM), "500", size], timeout=60)
            self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(support.wait_until(lambda: spoofed()[0] == 1000, 5), spoofed())
        support.wait_until(lambda: False, 0.5)  # the last answers on their way
        packets, answered_bytes = victim()
        _, sent_bytes = spoofed()
        # Each of the 8 receivers answered at most the bytes it was sent: the bare
        # headers not at all (an ack does not fit in 32 bytes), the padded ones in full.
        self.assertLessEqual(answered_bytes, len(RECEIVERS) * sent_bytes)
        self.assertEqual(packets, len(RECEIVERS) * 500, "each padded probe, once a receiver")
        for receiver in receivers:
            summary = self.stop(receiver)
            self.assertEqual(summary["too_big"], 500)

    def test_a_burst_after_an_idle_time_gets_no_more_than_one_seconds_answers(self):
        host = RECEIVERS[0]
        receiver = self.receiver(host, "--ack-jitter", "0", "--max-ack-rate", "50")
        victim = self.count(VICTIM, "INPUT", "-p", "udp", "-s", self.lab.address(host),
                            "--sport", "10000")
        answered = []
        for idle in (0, 3):  # a burst, then three seconds of silence, then another
            support.wait_until(lambda: False, idle)
            before = victim()[0]
            result = self.lab.run(FORGER, [support.PYTHON, "-c", SPOOF_SCRIPT.replace(
                "{group}", GROUP), self.lab.address(VICTIM), "200",
                str(support.load("socket_multicast_sender.py").ACK_ROOM), "burst"], timeout=60)
            self.assertEqual(result.returncode, 0, result.stderr)
            support.wait_until(lambda: False, 0.5)  # the last answers on their way
            answered.append(victim()[0] - before)
        # A bucket of one second's worth (50): an idle time saves up no more. Without the
        # cap the second burst would get 50 + 3 x 50 answers.
        for burst in answered:  # 50, and a token or two refilled while the burst came in
            self.assertTrue(50 <= burst <= 52, answered)
        self.assertEqual(self.stop(receiver)["rate_limited"], 400 - sum(answered))

    def test_a_signed_message_is_answered_once_even_after_a_thousand_sessions(self):
        folder = tempfile.mkdtemp()
        key = os.path.join(folder, "key")
        with open(key, "wb") as stream:
            stream.write(b"0123456789abcdef0123456789abcdef")
        host = RECEIVERS[0]
        receiver = self.receiver(host, "--key-file", key)
        # More sessions than the table holds, signed as key holders would sign them.
        result = self.lab.run(FORGER, [support.PYTHON, "-c", SESSIONS_SCRIPT.replace(
            "{group}", GROUP), key, "1100"], timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        captured = os.path.join(folder, "captured")
        capture = self.start(FORGER, [support.PYTHON, "-c", CAPTURE_SCRIPT, captured])
        self.assertTrue(capture.wait_for_line("ready"))
        self.assertEqual(self.real_run("--key-file", key)["acks"], 5)
        self.assertEqual(capture.wait(20), 0, capture.stderr)
        answers = self.count(FORGER, "INPUT", "-p", "udp", "-s", self.lab.address(host),
                             "--sport", "10000")
        before = answers()[0]
        result = self.lab.run(FORGER, [support.PYTHON, "-c", REPLAY_SCRIPT.replace(
            "{group}", GROUP), captured, "1000"], timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        support.wait_until(lambda: False, 0.5)
        self.assertEqual(answers()[0] - before, 0, "a replayed message was answered")
        summary = self.stop(receiver)
        self.assertGreaterEqual(summary["auth"]["replayed"], 1000)


CAPTURE_SCRIPT = support.GROUP_MEMBER + r"""
while True:
    data, source = sock.recvfrom(65535)
    if data[:4] == b"MCK1" and data[5] == 1:  # the real sender's first signed message
        open(sys.argv[1], "wb").write(data)
        break
"""

SESSIONS_SCRIPT = r"""
import hashlib, hmac, socket, struct, sys
key = open(sys.argv[1], "rb").read().strip()
HEADER = struct.Struct("!4sBBBxQQQ")
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for session in range(1, int(sys.argv[2]) + 1):
    data = HEADER.pack(b"MCK1", 1, 1, 0x81, session, 1, 0)
    sock.sendto(data + hmac.new(key, data, hashlib.sha256).digest()[:16], ("{group}", 10000))
"""

REPLAY_SCRIPT = r"""
import socket, sys
data = open(sys.argv[1], "rb").read()
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 0))
for _ in range(int(sys.argv[2])):
    sock.sendto(data, ("{group}", 10000))
"""


if __name__ == "__main__":
    unittest.main()
