"""The measuring receiver under pressure, against the kernel's own counters: the host's
drops of a stalled flood, per session; the rate limit's table full of spoofed
addresses; and stops honoured behind a slow link that fills its send buffer."""

import signal
import socket
import subprocess
import time
import unittest

from . import netlab, support
from .support import GROUP, only

receiver_module = support.load("socket_multicast_receiver.py")
HEADER, REPORT_EXTRA = receiver_module.HEADER, receiver_module.REPORT_EXTRA
NO_ACK, SHARED_DROPS = receiver_module.NO_ACK, receiver_module.SHARED_DROPS


def message(session, sequence, kind=1, flags=NO_ACK, size=None):
    """A message (or an end of run, kind 3) padded as the sender pads it, or to size."""
    room = receiver_module.REPORT_ROOM if kind == 3 else receiver_module.ACK_ROOM
    return HEADER.pack(b"MCK1", 1, kind, flags, session, sequence, 0).ljust(size or room,
                                                                            b"\0")


def backlog_drops():
    """Frames this machine's kernel dropped for a full backlog before any socket saw them
    (all namespaces: a busy machine's other traffic too)."""
    with open("/proc/net/softnet_stat") as table:
        return sum(int(line.split()[1], 16) for line in table)


def socket_row(pid):
    """The line of /proc/net/udp (as process pid's network namespace has it) of pid's
    own UDP socket, found by its inode: {"tx_queue", "rx_queue", "drops"}, or None."""
    inodes = support.socket_inodes(pid)
    with open(f"/proc/{pid}/net/udp") as table:
        for line in list(table)[1:]:
            fields = line.split()
            if fields[9] in inodes:
                tx_queue, rx_queue = (int(queue, 16) for queue in fields[4].split(":"))
                return {"tx_queue": tx_queue, "rx_queue": rx_queue, "drops": int(fields[-1])}
    return None


def send_buffer_errors(pid):
    """The kernel's count of UDP sends that found their socket's send buffer full, in
    process pid's network namespace (SndbufErrors in /proc/net/snmp)."""
    with open(f"/proc/{pid}/net/snmp") as table:
        names, values = [line.split() for line in table if line.startswith("Udp:")][:2]
    return int(values[names.index("SndbufErrors")])


class HostDropsTest(support.ProcessTestCase):
    """A receiver stopped (SIGSTOP) while a flood fills its socket, then continued: its
    drops as the kernel counts them, since the socket opened and per session. On
    127.0.0.1, to a port of the test's own."""

    def setUp(self):
        super().setUp()
        self.port = support.free_udp_port()
        self.receiver = self.track(support.Watched(support.python_script(
            "socket_multicast_receiver.py", "--interface", "127.0.0.1", "-p", str(self.port),
            "--json", "--quiet", "--ack-jitter", "0")))
        self.assertTrue(support.wait_until(lambda: self.receiver.lines, 5),
                        self.receiver.stderr)
        self.pid = self.receiver.process.pid
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(self.sock.close)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                             socket.inet_aton("127.0.0.1"))
        self.sock.settimeout(0.1)
        self.addCleanup(self.receiver.signal, signal.SIGCONT)  # then it can be killed

    def send(self, datagram):
        self.sock.sendto(datagram, (GROUP, self.port))

    def stalled_flood(self, session):
        """Stop the receiver, send session's messages (1400 bytes, no acks asked) until
        the kernel has dropped some, continue it and wait until it has read every
        datagram queued; return the number of messages sent and the frames the kernel's
        backlog dropped meanwhile (before any socket saw them)."""
        backlog_before = backlog_drops()
        self.receiver.signal(signal.SIGSTOP)
        sent, deadline = 0, time.monotonic() + 20
        while socket_row(self.pid)["drops"] < 500 and time.monotonic() < deadline:
            for _ in range(500):
                sent += 1
                self.send(message(session, sent, size=1400))
        self.assertGreaterEqual(socket_row(self.pid)["drops"], 500, "the buffer never filled")
        self.receiver.signal(signal.SIGCONT)
        self.assertTrue(support.wait_until(lambda: socket_row(self.pid)["rx_queue"] == 0, 10),
                        "the receiver did not read what was queued")
        return sent, backlog_drops() - backlog_before

    def reports(self, count):
        """The next count reports that come back: (drops, SHARED_DROPS set) each."""
        found, deadline = [], time.monotonic() + 5
        while len(found) < count and time.monotonic() < deadline:
            try:
                data = self.sock.recv(2048)
            except socket.timeout:
                continue
            if data[5] == 4:
                found.append((REPORT_EXTRA.unpack_from(data, HEADER.size)[5],
                              bool(data[6] & SHARED_DROPS)))
        self.assertEqual(len(found), count, self.receiver.output()[-2000:])
        return found

    def stop(self):
        self.receiver.signal(signal.SIGTERM)
        self.assertEqual(self.receiver.wait(5), 0, self.receiver.stderr)
        return only(self.receiver, "summary")

    def test_drops_of_a_stalled_flood_are_the_kernels_count(self):
        """No datagram is queued after the flood's drops, so none carries their count
        (SO_RXQ_OVFL lags): the summary has them from the kernel's own count."""
        sent, backlog = self.stalled_flood(session=1)
        kernel = socket_row(self.pid)["drops"]  # read while the socket is still open
        summary = self.stop()
        [session] = summary["senders"]
        self.assertEqual((summary["host_drops"], session["host_drops"]), (kernel, kernel))
        # Every message came or was dropped by the socket (or, on a busy machine, before
        # it by the kernel's backlog).
        self.assertLessEqual(session["received"] + kernel, sent)
        self.assertGreaterEqual(session["received"] + kernel + backlog, sent)
        self.assertFalse(session["shared_drops"])

    def test_a_clean_session_after_a_flooded_one_reports_no_host_drops(self):
        sent, _ = self.stalled_flood(session=1)
        kernel = socket_row(self.pid)["drops"]
        for _ in range(3):  # the flooded session's end of run: its report
            self.send(message(1, sent, kind=3))
        self.assertEqual(self.reports(3), [(kernel, False)] * 3)
        for sequence in range(1, 11):  # a second session, nothing dropped
            self.send(message(2, sequence))
        for _ in range(3):
            self.send(message(2, 10, kind=3))
        self.assertEqual(self.reports(3), [(0, False)] * 3)
        self.assertEqual(socket_row(self.pid)["drops"], kernel)
        summary = self.stop()
        self.assertEqual(summary["host_drops"], kernel)
        self.assertEqual([(s["session"], s["host_drops"]) for s in summary["senders"]],
                         [(f"{1:016x}", kernel), (f"{2:016x}", 0)])


# Text from ever other spoofed source addresses, 10.99.0.0/16, to the group (raw
# socket, IP_HDRINCL), about 10,000 a second, until killed; "ready" after the first
# round of all of them.
SPOOF_SCRIPT = r"""
import socket, struct, sys, time
group, sources = sys.argv[1], int(sys.argv[2])
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
payload = b"spoofed text"
udp = struct.pack("!HHHH", 40000, 10000, 8 + len(payload), 0) + payload
n = 0
while True:
    for index in range(sources):
        source = socket.inet_aton(f"10.99.{index >> 8}.{index & 255}")
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n & 0xFFFF, 0, 1, 17, 0,
                         source, socket.inet_aton(group))
        raw.sendto(ip + udp, (group, 0))
        n += 1
        if n % 100 == 0:
            time.sleep(0.01)
    if n == sources:
        print("ready", flush=True)
"""

# A sender of count messages that ask for acks, 50 ms apart, each waiting up to a
# second for its ack; prints the sequence numbers acked.
REAL_SENDER_SCRIPT = r"""
import socket, struct, sys, time
HEADER = struct.Struct("!4sBBBxQQQ")
group, count, room = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
acked = []
for sequence in range(1, count + 1):
    sock.sendto(HEADER.pack(b"MCK1", 1, 1, 0, 77, sequence, 0).ljust(room, b"\0"),
                (group, 10000))
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            data = sock.recv(2048)
        except socket.timeout:
            break
        if data[5] == 2 and HEADER.unpack_from(data)[5] == sequence:
            acked.append(sequence)
            break
    time.sleep(0.05)
print(" ".join(map(str, acked)), flush=True)
"""


class RateTableLabTest(netlab.LabTestCase):
    """A forger floods the group with text from 2,048 spoofed addresses, twice what the
    rate limit's table holds, each answered within the second; a sender that starts
    meanwhile must still get every ack."""

    hosts = 3
    RECEIVER, FORGER, SENDER = 0, 1, 2

    def test_a_new_sender_is_answered_while_spoofed_addresses_fill_the_rate_table(self):
        # The receiver's answers to the spoofed addresses go to the forger (one
        # neighbour, not 2,048 to look up on the link), which drops them: it does not
        # forward (else it would look each one up on the link itself).
        for host, command in ((self.RECEIVER, ["ip", "route", "add", "10.99.0.0/16", "via",
                                               self.lab.address(self.FORGER)]),
                              (self.FORGER, ["sysctl", "-qw", "net.ipv4.ip_forward=0"])):
            result = self.lab.run(host, command)
            self.assertEqual(result.returncode, 0, result.stderr)
        receiver = self.start(self.RECEIVER, support.python_script(
            "socket_multicast_receiver.py", "--json", "--quiet"))
        self.assertTrue(support.wait_until(lambda: self.lab.joined(self.RECEIVER, GROUP), 5),
                        receiver.stderr)
        forger = self.start(self.FORGER, [support.PYTHON, "-c", SPOOF_SCRIPT, GROUP, "2048"])
        self.assertTrue(forger.wait_for_line("ready", 10), forger.stderr)
        real = self.lab.run(self.SENDER, [support.PYTHON, "-c", REAL_SENDER_SCRIPT, GROUP, "20",
                                          str(receiver_module.ACK_ROOM)], timeout=60)
        self.assertEqual(real.returncode, 0, real.stderr)
        forger.kill()
        receiver.signal(signal.SIGTERM)
        self.assertEqual(receiver.wait(10), 0, receiver.stderr)
        summary = only(receiver, "summary")
        self.assertEqual(real.stdout.split(), [str(n) for n in range(1, 21)], summary)
        self.assertGreater(summary["addresses_evicted"], 2048)
        self.assertEqual(summary["rate_limited"], 0)


# Messages that ask for acks, as fast as one socket sends them, until killed.
FLOOD_SCRIPT = r"""
import socket, struct, sys
HEADER = struct.Struct("!4sBBBxQQQ")
group, room = sys.argv[1], int(sys.argv[2])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sequence = 0
while True:
    sequence += 1
    sock.sendto(HEADER.pack(b"MCK1", 1, 1, 0, 88, sequence, 0).ljust(room, b"\0"),
                (group, 10000))
"""


class SlowLinkStopTest(netlab.LabTestCase):
    """Behind a slow link (a token bucket of 8 kbit/s on the receiver's side, toward the
    sender) a flood of messages that ask for acks fills the receiver's send buffer:
    a stop is honoured all the same, within a second or two, with the summary.

    The queue of the token bucket is a megabyte, so that the acks wait in it and
    fill the socket's send buffer: with the small queue of `limit 3000` the
    bucket drops the acks at once and the send buffer never fills (measured)."""

    hosts = 2
    SENDER, RECEIVER = 0, 1

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        result = cls.lab.run(cls.RECEIVER, ["tc", "qdisc", "add", "dev", "eth0", "root", "tbf",
                                            "rate", "8kbit", "burst", "1600", "limit",
                                            "1000000"])
        if result.returncode != 0:
            cls.lab.close()
        support.skip_unless(result.returncode == 0,
                            f"no tbf qdisc here (tc said {result.stderr.strip()!r})")

    def stop_behind_slow_link(self, signum, *arguments):
        receiver = self.start(self.RECEIVER, support.python_script(
            "socket_multicast_receiver.py", "--json", "--quiet", *arguments))
        self.assertTrue(support.wait_until(lambda: self.lab.joined(self.RECEIVER, GROUP), 5),
                        receiver.stderr)
        flood = self.start(self.SENDER, [support.PYTHON, "-c", FLOOD_SCRIPT, GROUP,
                                         str(receiver_module.ACK_ROOM)])
        pid = receiver.process.pid
        # Its send buffer full of acks (the default is 212,992 bytes on Linux), and acks
        # refused for it (a receiver that waits for room has none refused: no wait here).
        self.assertTrue(support.wait_until(lambda: socket_row(pid)["tx_queue"] > 150_000, 10),
                        f"the send buffer did not fill: {socket_row(pid)}")
        support.wait_until(lambda: send_buffer_errors(pid) >= 10, 2)
        started = time.monotonic()
        receiver.signal(signum)
        try:
            status = receiver.process.wait(2.0)
        except subprocess.TimeoutExpired:
            status = None
        took = time.monotonic() - started
        flood.kill()
        self.assertEqual(status, 0, f"{signal.Signals(signum).name}: still running "
                                    f"{took:.1f} s later" if status is None else
                         receiver.stderr)
        receiver.wait(5)  # its output, to the end
        summary = only(receiver, "summary")
        self.assertGreater(summary["not_sent"], 0)
        self.assertNotIn("Traceback", receiver.stderr)
        return took, summary

    def test_sigterm_stops_a_receiver_whose_acks_are_held_back_by_jitter(self):
        took, summary = self.stop_behind_slow_link(signal.SIGTERM)  # --ack-jitter 0.01
        self.assertLess(took, 2.0)

    def test_sigint_stops_a_receiver_whose_acks_go_at_once(self):
        took, summary = self.stop_behind_slow_link(signal.SIGINT, "--ack-jitter", "0",
                                                   "--max-ack-rate", "0")
        self.assertLess(took, 2.0)


if __name__ == "__main__":
    unittest.main()
