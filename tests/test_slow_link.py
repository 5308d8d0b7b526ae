"""Behind a slow link a stop is never ignored: SIGTERM and SIGINT end a sender that waits
for room to send, within 2 s, with its usual last lines and exit status.

The sender's host sends through a tbf qdisc of 8 kbit/s whose queue is longer than a
socket's send buffer, so a few large datagrams fill the buffer and the next send has
to wait minutes for room. (With a short queue, `limit 3000`, the qdisc drops what does
not fit and no send ever waits: the buffer never fills.) A blocking sendto() sleeps
in the kernel through both signals (Python runs the handler and calls it again, PEP
475); a non-blocking send retried without looking at the stop spins as long. Each
sender is stopped while it waits so, as the kernel shows it (tests/netlab.py's lab:
host 0's eth0 is one end of a veth, the other end in the lab's bridge namespace)."""

import os
import shutil
import signal
import subprocess
import time
import unittest

from . import netlab, support

SENDER = 0
RATE = "8kbit"
SIZE = 60000  # bytes of each datagram: about 94 kB of send buffer each, in 41 fragments
MESSAGE = "x" * SIZE
STOPS = (signal.SIGTERM, signal.SIGINT)
STOP_WITHIN = 2.0  # seconds from the signal to the exit


def proc(pid, name):
    """The text of /proc/PID/NAME ('' once the process is gone)."""
    try:
        with open(f"/proc/{pid}/{name}", encoding="ascii") as stream:
            return stream.read()
    except OSError:
        return ""


def queued_to_send(pid):
    """Bytes (with the kernel's overhead) the UDP sockets of pid's network namespace hold
    in their send buffers: the tx_queue column of /proc/PID/net/udp."""
    rows = proc(pid, "net/udp").splitlines()[1:]
    return sum(int(row.split()[4].split(":")[0], 16) for row in rows)


def udp_counter(text, name):
    """A counter of the Udp lines of /proc/net/snmp (a heading line, then the values)."""
    heading, values = [line.split() for line in text.splitlines() if line.startswith("Udp:")]
    return int(values[heading.index(name)])


def sleeps_to_send(pid, size):
    """Whether pid sleeps until its socket has room: in a blocking sendto(fd, data, size,
    ...), or in a select() on the socket's room to write without a timeout. From
    /proc/PID/syscall: the call's number and its arguments ("running" if it runs); in
    select(n, read, write, except, timeout) write is a pointer, timeout NULL."""
    fields = proc(pid, "syscall").split()
    if len(fields) < 6:
        return False
    arguments = [int(field, 16) for field in fields[1:6]]
    return arguments[2] == size or (arguments[2] != 0 and arguments[4] == 0)


class SlowLinkTest(netlab.LabTestCase):
    hosts = 1

    @classmethod
    def setUpClass(cls):
        support.skip_unless(shutil.which("tc"), "'tc' is not installed (Debian: iproute2)")
        support.skip_unless(proc("self", "syscall"), "this kernel has no /proc/PID/syscall")
        super().setUpClass()
        # A socket's send buffer starts at net.core.wmem_default; the link's queue holds
        # four of them, so the buffer fills before the queue drops anything.
        cls.send_buffer = int(cls.lab.run(SENDER, ["cat", "/proc/sys/net/core/wmem_default"])
                              .stdout)

    def slow_link(self):
        """A fresh tbf qdisc on the sender's eth0 (a new one: the last test's queue is gone)."""
        self.lab.run(SENDER, ["tc", "qdisc", "del", "dev", "eth0", "root"])
        added = self.lab.run(SENDER, ["tc", "qdisc", "add", "dev", "eth0", "root", "tbf",
                                      "rate", RATE, "burst", "1600",
                                      "limit", str(4 * self.send_buffer)])
        shown = self.lab.run(SENDER, ["tc", "qdisc", "show", "dev", "eth0"]).stdout
        support.skip_unless(added.returncode == 0 and " tbf " in shown,
                            f"no tbf qdisc here (CONFIG_NET_SCH_TBF): tc said "
                            f"{added.stderr.strip()!r}")

    def snmp(self):
        return self.lab.run(SENDER, ["cat", "/proc/net/snmp"]).stdout

    def stop_while_waiting(self, name, arguments, waiting, signum):
        """Start the sender behind a fresh slow link, wait until waiting(pid) says it waits
        for room to send, then send signum; return (its exit status, the sender)."""
        self.slow_link()
        sender = self.start(SENDER, support.python_script(name, *arguments))
        pid = sender.process.pid  # `ip netns exec` (and nsenter) exec: the same process
        self.assertTrue(support.wait_until(lambda: waiting(pid), 20, interval=0.01),
                        f"{name} never waited for room to send: {queued_to_send(pid)} bytes "
                        f"queued, syscall {proc(pid, 'syscall')!r}\n{sender.stderr}")
        started = time.monotonic()
        sender.signal(signum)
        try:
            status = sender.wait(5)
        except subprocess.TimeoutExpired:
            self.fail(f"{name} still ran 5 s after {signum.name}, waiting to send "
                      f"(killed)\n{sender.stderr}")
        took = time.monotonic() - started
        self.assertLess(took, STOP_WITHIN, f"{name} took {took:.2f} s after {signum.name}")
        self.assertNotIn("Traceback", sender.stderr)
        return status, sender

    def textbook_waits(self, pid):
        """The textbook sender sleeps until its full buffer has room."""
        return queued_to_send(pid) >= self.send_buffer // 2 and sleeps_to_send(pid, SIZE)

    def socket_sender_waits(self, before):
        """The socket sender found its buffer full: a send failed for room (SndbufErrors
        counts each one, EAGAIN included) and it retries. Its counters are read only once
        it is in the lab's namespace: before `ip netns exec` (or nsenter) has moved there,
        /proc/PID/net is this machine's own, whose count may be anything."""
        own = os.readlink("/proc/self/ns/net")

        def waits(pid):
            try:
                moved = os.readlink(f"/proc/{pid}/ns/net") != own
            except OSError:  # gone
                return False
            text = proc(pid, "net/snmp") if moved else ""
            return bool(text) and udp_counter(text, "SndbufErrors") > before
        return waits

    def test_the_textbook_sender_stops_while_its_send_waits_for_room(self):
        for signum in STOPS:
            with self.subTest(signum.name):
                status, sender = self.stop_while_waiting(
                    "multicast_sender.py", ["-m", MESSAGE, "--count", "0", "--interval", "0"],
                    self.textbook_waits, signum)
                # Every round before it was silent (nothing gets through in 0.2 s): status 1.
                self.assertEqual(status, 1, sender.stderr)
                self.assertEqual(sender.lines[-3:], ["timed out, no more responses",
                                                     f"sending {MESSAGE.encode()!r}",
                                                     "closing socket"])
                self.assertIn("no ack in round 1", sender.stderr)

    def test_the_textbook_sender_stopped_in_its_first_round_exits_1(self):
        """Its message is in the link's queue, no ack has come: stopped, it exits 1."""
        for signum in STOPS:
            with self.subTest(signum.name):
                self.slow_link()
                sender = self.start(SENDER, support.python_script(
                    "multicast_sender.py", "-m", MESSAGE, "--timeout", "30"))
                self.assertTrue(sender.wait_for_line("waiting to receive", 10), sender.stderr)
                started = time.monotonic()
                sender.signal(signum)
                self.assertEqual(sender.wait(5), 1, sender.stderr)
                self.assertLess(time.monotonic() - started, STOP_WITHIN)
                self.assertEqual(sender.lines, [f"sending {MESSAGE.encode()!r}",
                                                "waiting to receive", "closing socket"])

    def check_summary(self, sender, status):
        """The measuring sender's usual end: its statistics, a verdict, status 1 (no
        receiver answered: nothing got through the link in time)."""
        heading = f"--- {support.GROUP}:10000 multicast statistics ---"
        self.assertIn(heading, sender.lines, sender.stderr)
        summary = sender.lines[sender.lines.index(heading):]
        self.assertRegex(summary[1], r"^[1-9]\d* sent in ")
        self.assertTrue(summary[-1].startswith("verdict: FAIL: "), summary)
        self.assertEqual(status, 1, sender.stderr)

    def test_the_socket_sender_in_rounds_stops_while_its_buffer_is_full(self):
        for signum in STOPS:
            with self.subTest(signum.name):
                before = udp_counter(self.snmp(), "SndbufErrors")
                status, sender = self.stop_while_waiting(
                    "socket_multicast_sender.py",
                    ["--size", str(SIZE), "--count", "0", "--interval", "0"],
                    self.socket_sender_waits(before), signum)
                self.check_summary(sender, status)
                self.assertIn("rounds heard from fewer than 1 receivers", sender.stderr)

    def test_the_socket_sender_at_full_rate_stops_while_its_buffer_is_full(self):
        for signum in STOPS:
            with self.subTest(signum.name):
                before = udp_counter(self.snmp(), "SndbufErrors")
                status, sender = self.stop_while_waiting(
                    "socket_multicast_sender.py",
                    ["--size", str(SIZE), "--count", "0", "--rate", "0"],
                    self.socket_sender_waits(before), signum)
                self.check_summary(sender, status)
                self.assertIn("0 of 1 expected receivers answered", sender.stderr)


if __name__ == "__main__":
    unittest.main()
