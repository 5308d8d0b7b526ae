"""The textbook pair over 127.0.0.1: real sockets on one machine, no network."""

import re
import signal
import subprocess
import time
import unittest

from . import support

WAITING = "waiting to receive message"


def lecture_round(acks):
    """The sender's lines for one round, as the lecture prints them."""
    lines = ["sending b'very important data'", "waiting to receive"]
    for ack in acks:
        lines += [f"received b'ack' from {ack}", "waiting to receive"]
    return lines + ["timed out, no more responses"]


class LoopbackTest(support.ProcessTestCase):
    def setUp(self):
        super().setUp()
        self.port = support.free_udp_port()

    def start(self, name, *arguments):
        return self.track(support.Watched(support.python_script(name, *arguments)))

    def start_receiver(self, *arguments):
        receiver = self.start("multicast_receiver.py", "-i", "127.0.0.1",
                              "-p", str(self.port), *arguments)
        self.assertTrue(receiver.wait_for_line(WAITING), receiver.stderr)
        return receiver

    def send(self, *arguments):
        sender = self.start("multicast_sender.py", "-i", "127.0.0.1", "-p", str(self.port),
                            *arguments)
        return sender.wait(20), sender

    def test_round_trip_prints_the_lecture_lines(self):
        receiver = self.start_receiver("--count", "2")
        status, sender = self.send("--count", "2", "--interval", "0.1")
        self.assertEqual(status, 0, sender.stderr)
        ack = f"('127.0.0.1', {self.port})"
        self.assertEqual(sender.lines,
                         lecture_round([ack]) + lecture_round([ack]) + ["closing socket"])
        self.assertEqual(receiver.wait(5), 0, receiver.stderr)
        origin = r"\('127\.0\.0\.1', \d+\)"
        expected = [WAITING, f"received 19 bytes from {origin}", re.escape("b'very important data'"),
                    f"sending acknowledgement to {origin}", ""] * 2 + ["closing socket"]
        self.assertEqual(len(receiver.lines), len(expected), receiver.output())
        for line, pattern in zip(receiver.lines, expected):
            self.assertRegex(line, f"^{pattern}$")

    def test_a_reply_that_is_not_ack_is_shown_but_not_counted(self):
        """A member of the group that answers something else: the round's lines show
        its reply, as the lecture's do, but the round has no ack (status 1, the hint)."""
        member = self.track(support.Watched([support.PYTHON, "-c", f"""
import socket
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("{support.GROUP}", {self.port}))
sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                socket.inet_aton("{support.GROUP}") + socket.inet_aton("127.0.0.1"))
print("ready", flush=True)
while True:
    data, address = sock.recvfrom(65535)
    sock.sendto(b"nak", address)
"""]))
        self.assertTrue(member.wait_for_line("ready"), member.stderr)
        status, sender = self.send("--count", "1")
        self.assertIn(f"received b'nak' from ('127.0.0.1', {self.port})", sender.lines)
        self.assertEqual(status, 1, sender.output())
        self.assertIn("no ack in round 1", sender.stderr)

    def test_stopped_in_its_first_round_before_an_ack_it_exits_1(self):
        sender = self.start("multicast_sender.py", "-i", "127.0.0.1", "-p",
                            str(self.port), "--timeout", "30")
        self.assertTrue(sender.wait_for_line("waiting to receive"), sender.stderr)
        sender.signal(signal.SIGTERM)
        self.assertEqual(sender.wait(5), 1, sender.output())
        self.assertEqual(sender.lines[-1], "closing socket")

    def test_custom_message_is_sent_and_counted_in_bytes(self):
        receiver = self.start_receiver("--count", "1")
        status, sender = self.send("-m", "héllo")
        self.assertEqual(status, 0, sender.stderr)
        self.assertEqual(sender.lines[0], "sending b'h\\xc3\\xa9llo'")
        receiver.wait(5)
        self.assertRegex(receiver.lines[1], r"^received 6 bytes from ")
        self.assertEqual(receiver.lines[2], "b'h\\xc3\\xa9llo'")

    def test_two_receivers_share_the_port_and_both_answer(self):
        self.start_receiver()
        self.start_receiver()
        status, sender = self.send()
        self.assertEqual(status, 0, sender.stderr)
        ack = f"received b'ack' from ('127.0.0.1', {self.port})"
        self.assertEqual(sender.lines.count(ack), 2, sender.output())

    def test_receiver_gets_only_its_own_group(self):
        # Another program on this host joins a second group on the same port.
        # A receiver bound to the wildcard address would get that group's
        # traffic too (IP_MULTICAST_ALL); ours must not.
        own = self.start_receiver("-g", "224.10.10.10")
        other = self.start_receiver("-g", "224.10.10.11")
        status, sender = self.send("-g", "224.10.10.11")
        self.assertEqual(status, 0, sender.stderr)
        self.assertEqual(sender.lines.count(f"received b'ack' from ('127.0.0.1', {self.port})"),
                         1, sender.output())
        self.assertTrue(other.wait_for_line("", timeout=2))
        self.assertEqual(own.lines, [WAITING])

    def test_sender_without_receivers_times_out_and_exits_1(self):
        status, sender = self.send("--timeout", "0.1")
        self.assertEqual(status, 1)
        self.assertEqual(sender.lines, lecture_round([]) + ["closing socket"])

    def test_receiver_stops_at_once_on_sigterm_and_sigint(self):
        for signum in (signal.SIGTERM, signal.SIGINT):
            receiver = self.start_receiver()
            started = time.monotonic()
            receiver.signal(signum)
            self.assertEqual(receiver.wait(5), 0, receiver.stderr)
            self.assertLess(time.monotonic() - started, 1.0)
            self.assertEqual(receiver.lines, [WAITING, "closing socket"])
            self.assertEqual(receiver.stderr.splitlines(), [
                f"multicast_receiver.py: listening on 224.10.10.10:{self.port}, "
                "joined on 127.0.0.1's interface"])

    def test_endless_sender_stops_at_once_on_sigterm(self):
        self.start_receiver()
        sender = self.start("multicast_sender.py", "-i", "127.0.0.1", "-p", str(self.port),
                            "--count", "0", "--interval", "30")
        self.assertTrue(sender.wait_for_line("timed out, no more responses"))
        started = time.monotonic()
        sender.signal(signal.SIGTERM)
        self.assertEqual(sender.wait(5), 0, sender.stderr)
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertEqual(sender.lines[-1], "closing socket")
        self.assertEqual(sender.stderr.splitlines(), [
            f"multicast_sender.py: sending to 224.10.10.10:{self.port}, ttl 1, from 127.0.0.1"])

    def test_two_signals_at_once_still_close_cleanly(self):
        """SIGINT and SIGTERM together (Ctrl-C while Docker stops it): no traceback."""
        for name in ("multicast_receiver.py", "multicast_sender.py"):
            for _ in range(10):
                extra = ["--interval", "30"] if name == "multicast_sender.py" else []
                child = self.start(name, "-i", "127.0.0.1", "-p", str(self.port),
                                   "--count", "0", *extra)
                # the sender: once a round without a receiver is over (exit status 1)
                first = (WAITING if name == "multicast_receiver.py"
                         else "timed out, no more responses")
                self.assertTrue(child.wait_for_line(first), child.stderr)
                child.signal(signal.SIGINT)
                child.signal(signal.SIGTERM)
                status = child.wait(5)
                self.assertNotIn("Traceback", child.stderr)
                self.assertEqual(child.lines[-1], "closing socket", child.output())
                self.assertEqual(status, 0 if name == "multicast_receiver.py" else 1)

    def test_a_silent_round_says_what_to_check(self):
        status, sender = self.send("--timeout", "0.1", "--count", "3", "--interval", "0")
        self.assertEqual(status, 1)
        advice = [line for line in sender.stderr.splitlines() if "no ack" in line]
        self.assertEqual(advice, [
            "multicast_sender.py: no ack in round 1: is a receiver running on this network, "
            "and does a TTL of 1 reach it?"])

    def test_output_into_a_closed_pipe_ends_quietly(self):
        for name in ("multicast_receiver.py", "multicast_sender.py",
                     "socket_multicast_receiver.py", "socket_multicast_sender.py"):
            extra = [] if name.endswith("receiver.py") else ["--interval", "0.01"]
            argv = support.python_script(name, "-i", "127.0.0.1", "-p", str(self.port),
                                         "--count", "0", *extra)
            with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL) as child:
                child.stdout.readline()
                child.stdout.close()  # as `| head -1` does
                if name.endswith("receiver.py"):  # it prints only when something arrives
                    self.send("--count", "3", "--interval", "0.05")
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    raise
                errors = child.stderr.read().decode()
            self.assertNotIn("Traceback", errors, name)
            self.assertNotIn("BrokenPipe", errors, name)


if __name__ == "__main__":
    unittest.main()
