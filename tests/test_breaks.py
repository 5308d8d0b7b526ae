"""Promises the rest of the suite did not hold the scripts to: each test here fails
when its promise is broken (each was watched failing so).

- A signal after the run: once the senders' work is done they ignore SIGINT and
  SIGTERM, so a signal that lands while they print the summary or exit neither
  cuts the summary short nor changes the exit status. (At exit Python gives back
  the default handlers of signals it handled, which would kill the process.)
- Padding: a message that asks for an ack is padded to ACK_ROOM bytes, so a
  receiver's ack holds a name of up to 32 bytes (the default message leaves room
  for 14) and --expect NAME matches it.
- A lost end of run: the sender sends it END_REPEATS (3) times; with the first two
  dropped on the way (nft in a network namespace), the receivers still see the end
  and report.
- The tags (--key-file): a forged ack or message, unsigned or with a wrong tag, is
  refused, on 127.0.0.1 alone.
"""

import hashlib
import hmac
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import unittest

from . import netlab, support
from .support import GROUP, events, json_lines, only, summary_of

HEADER = struct.Struct("!4sBBBxQQQ")  # the wire protocol's header, as in docs/measuring.md
DATA, ACK, END = 1, 2, 3
AUTHENTICATED = 0x80
TAG_SIZE = 16

# Sends SIGINT and SIGTERM to its own process when the process starts writing a line
# that begins with MULTICAST_TEST_SIGNAL_AT to stdout (the summary's first line), and
# again at its exit, after Python has finished (a library's destructor runs then).
SIGNAL_AFTER_RUN = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void signal_both(const char *when) {
    static const char said[] = "signal_after_run: SIGINT and SIGTERM ";
    static __typeof__(write) *real_write;
    if (!real_write) real_write = dlsym(RTLD_NEXT, "write");
    real_write(2, said, sizeof said - 1);
    real_write(2, when, strlen(when));
    real_write(2, "\n", 1);
    kill(getpid(), SIGINT);
    kill(getpid(), SIGTERM);
}

ssize_t write(int fd, const void *data, size_t size) {
    static __typeof__(write) *real;
    static int fired;
    const char *start = getenv("MULTICAST_TEST_SIGNAL_AT");
    if (!real) real = dlsym(RTLD_NEXT, "write");
    if (fd == 1 && !fired && start && size >= strlen(start)
            && memcmp(data, start, strlen(start)) == 0) {
        fired = 1;
        signal_both("at the summary");
    }
    return real(fd, data, size);
}

__attribute__((destructor)) static void at_exit(void) {
    if (getenv("MULTICAST_TEST_SIGNAL_AT"))
        signal_both("at exit");
}
"""


def tag(key, datagram):
    """HMAC-SHA256 over the datagram, cut to 16 bytes: docs/measuring.md's tag."""
    return hmac.new(key, datagram, hashlib.sha256).digest()[:TAG_SIZE]


LocalCase = support.LocalCase  # scripts on 127.0.0.1, on a port of their own


class SignalAfterTheRunTest(LocalCase):
    """SIGINT and SIGTERM at the summary's first line and again at exit, from the
    sender's own process (an LD_PRELOAD library): the summary whole, the status its own.
    Break: no StopRequest.ignore_from_now() (textbook: no SIG_IGN) -> killed at exit."""

    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.mkdtemp()
        source = os.path.join(cls.folder, "signal_after_run.c")
        cls.shim = os.path.join(cls.folder, "signal_after_run.so")
        with open(source, "w", encoding="utf-8") as stream:
            stream.write(SIGNAL_AFTER_RUN)
        compiler = shutil.which("cc") or shutil.which("gcc")
        built = compiler and subprocess.run(
            [compiler, "-shared", "-fPIC", "-o", cls.shim, source, "-ldl"],
            capture_output=True).returncode == 0
        support.skip_unless(built, "no C compiler to build the signal_after_run library")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.folder, ignore_errors=True)

    def signalled(self, name, first_line, *arguments):
        """Run the sender to its end with the signals at first_line and at exit."""
        env = dict(os.environ, LD_PRELOAD=self.shim, MULTICAST_TEST_SIGNAL_AT=first_line)
        sender = self.start(name, *arguments, env=env)
        status = sender.wait(20)
        self.assertEqual(re.findall(r"signal_after_run: .*", sender.stderr),
                         ["signal_after_run: SIGINT and SIGTERM at the summary",
                          "signal_after_run: SIGINT and SIGTERM at exit"], sender.stderr)
        return status, sender

    def test_the_socket_sender_ends_as_it_would_without_them(self):
        self.receiver("--name", "steady")
        arguments = ("--count", "2", "--interval", "0", "--expect", "steady")
        with self.subTest("text"):
            status, sender = self.signalled("socket_multicast_sender.py", "--- ", *arguments)
            self.assertEqual(status, 0, sender.output() + sender.stderr)
            heading = sender.lines.index(f"--- {GROUP}:{self.port} multicast statistics ---")
            summary = sender.lines[heading:]
            self.assertRegex(summary[1], r"^2 sent in ")
            self.assertRegex(summary[2], r"^127\.0\.0\.1 \(steady\): 2 acks, 0 lost")
            self.assertRegex(summary[3], r"^  its report: 2 received, 0 lost")
            self.assertEqual(summary[4:], ["verdict: pass"])
        with self.subTest("json"):
            status, sender = self.signalled("socket_multicast_sender.py", '{"type": "summary"',
                                            "--json", *arguments)
            self.assertEqual(status, 0, sender.output() + sender.stderr)
            summary = json_lines(sender.lines)[-1]
            self.assertEqual((summary["type"], summary["sent"], summary["verdict"]["ok"]),
                             ("summary", 2, True))

    def test_the_textbook_sender_ends_as_it_would_without_them(self):
        receiver = self.start("multicast_receiver.py")
        self.assertTrue(receiver.wait_for_line("waiting to receive message"), receiver.stderr)
        status, sender = self.signalled("multicast_sender.py", "closing socket")
        self.assertEqual(status, 0, sender.output() + sender.stderr)
        self.assertEqual(sender.lines[-2:], ["timed out, no more responses", "closing socket"])


class PaddingTest(LocalCase):
    """A name of 15 to 32 bytes comes back whole with the default message (which
    leaves room for 14), in every round. Break: no padding to ACK_ROOM -> names cut."""

    NAMES = ("fifteen-bytes-1", "a-name-of-exactly-thirty-two-b-2")

    def expect_whole(self, names):
        sender = self.start("socket_multicast_sender.py", "--count", "3", "--interval", "0",
                            "--expect", ",".join(names), "--json")
        self.assertEqual(sender.wait(20), 0, sender.output() + sender.stderr)
        rounds = events(sender, "round")
        self.assertEqual(len(rounds), 3)
        for event in rounds:
            self.assertEqual(sorted(ack["name"] for ack in event["acks"]), sorted(names), event)

    def test_names_up_to_32_bytes_come_back_whole(self):
        self.assertEqual([len(name.encode()) for name in self.NAMES], [15, 32])
        for name in self.NAMES:
            self.receiver("--name", name)
        self.expect_whole(self.NAMES)

    def test_a_long_host_name_comes_back_whole(self):
        """No --name: the host name (here 28 bytes, in a UTS namespace of its own)."""
        host = "classroom-pc-17.school.local"
        own_host = ["unshare", "--uts", *([] if os.geteuid() == 0 else ["--user",
                                                                        "--map-root-user"]),
                    "sh", "-c", f'hostname {host} && exec "$@"', "sh"]
        works = shutil.which("unshare") and subprocess.run(
            [*own_host, "true"], capture_output=True).returncode == 0
        support.skip_unless(works, "cannot make a UTS namespace (unshare --uts) here")
        receiver = self.receiver(argv_prefix=own_host)
        self.assertEqual(only(receiver, "start")["name"], host)
        self.expect_whole([host])


class EndOfRunLossTest(netlab.LabTestCase):
    """The sender's first two end-of-run messages dropped on its way out (nft, in its
    namespace, by the kind byte, two at most): both receivers still see the end and
    report it. Break: the end of run sent once -> no end, no report."""

    hosts = 3
    SENDER, RECEIVERS = 0, (1, 2)

    def setUp(self):
        super().setUp()
        support.skip_unless(shutil.which("nft"), "'nft' is not installed (Debian: nftables)")
        room = support.load("socket_multicast_sender.py").REPORT_ROOM
        length = 20 + 8 + room  # an end of run: IPv4 and UDP headers, padded to REPORT_ROOM
        table = self.lab.run(self.SENDER, ["nft", "add", "table", "inet", "lose_ends"])
        support.skip_unless(table.returncode == 0, f"nft cannot filter here: {table.stderr}")
        self.addCleanup(self.lab.run, self.SENDER, ["nft", "delete", "table", "inet",
                                                    "lose_ends"])
        for command in (["add", "chain", "inet", "lose_ends", "out",
                         "{ type filter hook output priority 0; }"],
                        ["add", "rule", "inet", "lose_ends", "out", "ip", "daddr", GROUP,
                         "udp", "dport", "10000", "@th,64,32", "0x4d434b31",  # b"MCK1"
                         "@th,104,8", str(END),  # the kind: the payload's sixth byte
                         # matches until the bytes it saw reach two and a half ends
                         "quota", "until", str(length * 5 // 2), "bytes", "counter", "drop"]):
            result = self.lab.run(self.SENDER, ["nft", *command])
            self.assertEqual(result.returncode, 0, result.stderr)

    def dropped(self):
        listing = self.lab.run(self.SENDER, ["nft", "list", "table", "inet", "lose_ends"])
        return [int(n) for n in re.findall(r"counter packets (\d+)", listing.stdout)]

    def test_the_receivers_see_the_third_end_and_report(self):
        receivers = []
        for host in self.RECEIVERS:
            child = self.start(host, support.python_script(
                "socket_multicast_receiver.py", "--json", "--name", f"r{host}"))
            self.assertTrue(support.wait_until(
                lambda: self.lab.joined(host, GROUP) and events(child, "start"), 5),
                child.stderr)
            receivers.append(child)
        sender = self.start(self.SENDER, support.python_script(
            "socket_multicast_sender.py", "--json", "--count", "3", "--interval", "0",
            "--expect", "r1,r2"))
        self.assertEqual(sender.wait(20), 0, sender.output() + sender.stderr)
        reports = {entry["name"]: entry["report"] for entry in summary_of(sender)["receivers"]}
        for host, child in zip(self.RECEIVERS, receivers):
            self.assertIsNotNone(reports[f"r{host}"], f"no report from r{host}: {reports}")
            self.assertEqual((reports[f"r{host}"]["last_seq"], reports[f"r{host}"]["received"]),
                             (3, 3))
            self.assertTrue(support.wait_until(lambda: events(child, "end"), 2), child.output())
            [end] = events(child, "end")
            self.assertEqual((end["last_seq"], end["received"], end["lost"]), (3, 3, 0))
        self.assertEqual(self.dropped(), [2], "the first two ends were dropped on the way")


class AckForger:
    """A member of the group on 127.0.0.1 that answers each data message with three
    acks it cannot make right: unsigned, tagged with another key, and tagged with the
    sender's own key over a name changed afterwards."""

    def __init__(self, port, key, wrong_key):
        self.key, self.wrong_key = key, wrong_key
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((GROUP, port))
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                             socket.inet_aton(GROUP) + socket.inet_aton("127.0.0.1"))
        self.answered = 0  # data messages answered
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            if not select.select([self.sock], [], [], 0.05)[0]:
                continue
            data, source = self.sock.recvfrom(65535)
            if data[:4] != b"MCK1" or data[5] != DATA:
                continue
            _, _, _, _, session, sequence, sent = HEADER.unpack_from(data)
            body = struct.pack("!I", 0) + b"forger"  # held 0 us, then the name
            unsigned = HEADER.pack(b"MCK1", 1, ACK, 0, session, sequence, sent) + body
            signed = HEADER.pack(b"MCK1", 1, ACK, AUTHENTICATED, session, sequence, sent) + body
            changed = (signed + tag(self.key, signed)).replace(b"forger", b"forgex")
            for ack in (unsigned, signed + tag(self.wrong_key, signed), changed):
                self.sock.sendto(ack, source)
            self.answered += 1

    def close(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()


class TagTest(LocalCase):
    """Break: the tag not verified (the sender's parse_reply(), the receiver's classify())."""

    def setUp(self):
        super().setUp()
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder, True)
        self.keys = {}
        for name, key in (("right", b"0123456789abcdef0123456789abcdef"),
                          ("wrong", b"fedcba9876543210fedcba9876543210")):
            path = os.path.join(folder, name)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as stream:
                stream.write(key + b"\n")
            self.keys[name] = (key, path)

    def test_forged_acks_never_count_as_an_answer(self):
        """Each round waits its whole --timeout (no --expect), so every forged ack, sent
        at once, is read before the round ends: the counts are exact."""
        key, path = self.keys["right"]
        forger = AckForger(self.port, key, self.keys["wrong"][0])
        self.addCleanup(forger.close)
        arguments = ("--count", "2", "--interval", "0", "--timeout", "0.5", "--key-file", path,
                     "--json")
        for honest in (False, True):
            with self.subTest(honest=honest):
                if honest:  # a receiver with the key: it alone answers
                    self.receiver("--name", "honest", "--key-file", path, "--quiet")
                sender = self.start("socket_multicast_sender.py", *arguments)
                status = sender.wait(20)
                summary = summary_of(sender)
                self.assertEqual([entry["name"] for entry in summary["receivers"]],
                                 ["honest"] if honest else [], summary)
                self.assertEqual(summary["forged"], {"unauthenticated": 2, "bad_tag": 4})
                for event in events(sender, "round"):
                    self.assertEqual([ack["name"] for ack in event["acks"]],
                                     ["honest"] if honest else [], event)
                self.assertEqual(status, 0 if honest else 1, sender.output() + sender.stderr)
        self.assertEqual(forger.answered, 4)

    def test_forged_messages_are_neither_answered_nor_counted(self):
        key, path = self.keys["right"]
        receiver = self.receiver("--name", "keyed", "--key-file", path, "--ack-jitter", "0")
        session, padding = 0x5EC5, bytes(200)  # room for any ack

        def message(sequence, flags):
            return HEADER.pack(b"MCK1", 1, DATA, flags, session, sequence, 0) + padding

        right = message(4, AUTHENTICATED)
        changed = message(3, AUTHENTICATED)
        forged = [message(1, 0),  # no tag
                  message(2, AUTHENTICATED) + tag(self.keys["wrong"][0], message(2, AUTHENTICATED)),
                  changed[:-1] + b"!" + tag(key, changed)]  # changed after it was tagged
        answers = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                            socket.inet_aton("127.0.0.1"))
            for datagram in forged + [right + tag(key, right)]:  # the right one last
                sock.sendto(datagram, (GROUP, self.port))

            def answered_the_right_one():  # answers come in the order of the messages
                while select.select([sock], [], [], 0)[0]:
                    answers.append(sock.recv(65535))
                return any(HEADER.unpack_from(a)[5] == 4 for a in answers)
            self.assertTrue(support.wait_until(answered_the_right_one, 5), receiver.output())
        self.assertEqual([HEADER.unpack_from(a)[5] for a in answers], [4], "answered")
        [answer] = answers
        self.assertEqual(HEADER.unpack_from(answer)[2], ACK)
        self.assertEqual(answer[-TAG_SIZE:], tag(key, answer[:-TAG_SIZE]), "signed by it")
        summary = self.stop(receiver)
        self.assertEqual(summary["auth"], {"unauthenticated": 1, "bad_tag": 2, "replayed": 0})
        self.assertEqual(summary["received"], 1)
        self.assertEqual([e["seq"] for e in events(receiver, "message")], [4])


if __name__ == "__main__":
    unittest.main()
