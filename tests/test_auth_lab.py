"""Authenticated probes and acks against a forger on the network, and no reflection.

The forger host joins the group and sees every message, as any member can."""

import os
import re
import signal
import tempfile
import unittest

from . import netlab, support
from .support import GROUP, events, only

SENDER, FIRST, SECOND, FORGER = 0, 1, 2, 3
SPOOFED = "10.77.0.250"  # a source address the forger takes, as a spoofing attacker would

FORGER_SCRIPT = support.GROUP_MEMBER + r"""
mode, seconds = sys.argv[1], float(sys.argv[2])
HEADER = struct.Struct("!4sBBBxQQQ")
sock.settimeout(0.1)
captured = []
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    try:
        data, source = sock.recvfrom(65535)
    except socket.timeout:
        continue
    if not data.startswith(b"MCK1") or source[0] == "{forger}":
        continue
    _, version, kind, flags, session, sequence, sent = HEADER.unpack_from(data)
    captured.append(data)
    if kind != 1 or mode != "ack":
        continue
    unsigned = HEADER.pack(b"MCK1", 1, 2, 0, session, sequence, sent) + struct.pack("!I", 0)
    sock.sendto(unsigned + b"forger", source)
    signed = HEADER.pack(b"MCK1", 1, 2, 0x80, session, sequence, sent) + struct.pack("!I", 0)
    signed += b"r1"
    sock.sendto(signed + hmac.new(b"not the key at all", signed, hashlib.sha256).digest()[:16],
                source)
if mode == "replay":
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("{forger}"))
    for data in captured:
        sock.sendto(data, ("{group}", 10000))
print(len(captured), flush=True)
"""

SPOOF_SCRIPT = r"""
import socket, struct, sys, time
HEADER = struct.Struct("!4sBBBxQQQ")
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("{spoofed}", 0))
started = time.monotonic()
for sequence in range(1, 10001):
    sock.sendto(HEADER.pack(b"MCK1", 1, 1, 0, 77, sequence, 0) + b"spoof", ("{group}", 10000))
    if sequence % 100 == 0:
        time.sleep(0.01)  # about 10,000 a second: an attack, not one burst
print(time.monotonic() - started, flush=True)
"""


class AuthLabTest(netlab.LabTestCase):
    hosts = 4

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.keys = tempfile.mkdtemp()
        for name, key in (("right", b"0123456789abcdef0123456789abcdef"),
                          ("wrong", b"fedcba9876543210fedcba9876543210")):
            path = os.path.join(cls.keys, name)
            with open(path, "wb") as stream:
                stream.write(key + b"\n")
            os.chmod(path, 0o644)  # the lab's root reads it in any case

    def tearDown(self):
        super().tearDown()
        for host in range(self.hosts):
            self.lab.run(host, ["iptables", "-F"])

    def key(self, name):
        return os.path.join(self.keys, name)

    def receiver(self, host, *arguments):
        child = self.start(host, support.python_script(
            "socket_multicast_receiver.py", "--json", "--quiet", "--name", f"r{host}",
            *arguments))
        self.assertTrue(support.wait_until(
            lambda: self.lab.joined(host, GROUP) and events(child, "start"), 5), child.stderr)
        return child

    def forger(self, mode, seconds):
        script = FORGER_SCRIPT.replace("{group}", GROUP).replace(
            "{forger}", self.lab.address(FORGER))
        child = self.start(FORGER, [support.PYTHON, "-c", script, mode, str(seconds)])
        self.assertTrue(child.wait_for_line("ready", 5), child.stderr)
        self.assertTrue(support.wait_until(lambda: self.lab.joined(FORGER, GROUP), 5))
        return child

    def queued(self, host):
        """Bytes waiting in the receive queues of host's sockets on port 10000."""
        udp = self.lab.run(host, ["cat", "/proc/net/udp"]).stdout.splitlines()[1:]
        return sum(int(line.split()[4].split(":")[1], 16) for line in udp
                   if line.split()[1].endswith(f":{10000:04X}"))

    def sender(self, *arguments):
        return self.start(SENDER, support.python_script(
            "socket_multicast_sender.py", "--json", *arguments))

    def stop(self, child):
        child.signal(signal.SIGTERM)
        self.assertEqual(child.wait(5), 0, child.stderr)

    def test_forged_acks_are_counted_apart_and_never_make_a_receiver(self):
        self.receiver(FIRST, "--key-file", self.key("right"))
        self.receiver(SECOND, "--key-file", self.key("right"))
        forger = self.forger("ack", 6)
        sender = self.sender("--key-file", self.key("right"), "--count", "5", "--interval",
                             "0.2", "--expect", "r1,r2", "--max-loss", "0")
        self.assertEqual(sender.wait(30), 0, sender.stderr)
        forger.wait(10)
        summary = only(sender, "summary")
        self.assertEqual(sorted((r["name"], r["acks"], r["lost"]) for r in summary["receivers"]),
                         [("r1", 5, 0), ("r2", 5, 0)])
        self.assertEqual(summary["forged"], {"unauthenticated": 5, "bad_tag": 5})
        self.assertTrue(all(len(r["acks"]) == 2 for r in events(sender, "round")))

    def test_replayed_messages_are_never_answered_twice(self):
        receivers = [self.receiver(host, "--key-file", self.key("right"))
                     for host in (FIRST, SECOND)]
        forger = self.forger("replay", 3)
        sender = self.sender("--key-file", self.key("right"), "--count", "5", "--interval", "0.1")
        self.assertEqual(sender.wait(30), 0, sender.stderr)
        self.assertEqual(forger.wait(10), 0, forger.stderr)
        self.assertEqual(forger.lines[-1], "8", "five messages and three ends captured")
        for host, receiver in zip((FIRST, SECOND), receivers):
            self.assertTrue(support.wait_until(lambda: self.queued(host) == 0, 5))
            self.stop(receiver)
            summary = only(receiver, "summary")
            self.assertEqual(summary["auth"], {"unauthenticated": 0, "bad_tag": 0,
                                               "replayed": 8})
            self.assertEqual(summary["answered"], [
                {"address": self.lab.address(SENDER), "acks": 5, "reports": 3}])

    def test_a_receiver_with_another_key_answers_nothing_and_says_why(self):
        receiver = self.receiver(FIRST, "--key-file", self.key("wrong"))
        sender = self.sender("--key-file", self.key("right"), "--count", "3", "--interval", "0")
        self.assertEqual(sender.wait(30), 1, sender.stderr)
        self.stop(receiver)
        summary = only(receiver, "summary")
        self.assertEqual((summary["answered"], summary["auth"]["bad_tag"]), ([], 6))
        text = self.start(FIRST, support.python_script(
            "socket_multicast_receiver.py", "--key-file", self.key("wrong"), "--count", "0"))
        self.assertTrue(support.wait_until(lambda: self.lab.joined(FIRST, GROUP), 5))
        self.assertEqual(self.sender("--key-file", self.key("right")).wait(30), 1)
        self.stop(text)
        self.assertIn("not answered, for the key: 0 unsigned, 4 with a bad tag, 0 replayed "
                      "(a bad tag: the sender signs with another key)", text.lines)

    def test_spoofed_messages_get_at_most_the_ack_rate_and_real_rounds_still_pass(self):
        receivers = [self.receiver(host) for host in (FIRST, SECOND)]
        self.lab.run(FORGER, ["ip", "addr", "add", f"{SPOOFED}/24", "dev", "eth0"])
        self.addCleanup(self.lab.run, FORGER, ["ip", "addr", "del", f"{SPOOFED}/24",
                                               "dev", "eth0"])
        for host in (FIRST, SECOND):  # the truth: what reaches the spoofed address
            result = self.lab.run(FORGER, ["iptables", "-A", "INPUT", "-d", SPOOFED, "-s",
                                           self.lab.address(host), "-j", "ACCEPT"])
            self.assertEqual(result.returncode, 0, result.stderr)
        sender = self.sender("--count", "0", "--interval", "0.1", "--expect", "2")
        spoof = self.lab.run(FORGER, [support.PYTHON, "-c", SPOOF_SCRIPT.replace(
            "{group}", GROUP).replace("{spoofed}", SPOOFED)], timeout=60)
        self.assertEqual(spoof.returncode, 0, spoof.stderr)
        seconds = float(spoof.stdout)
        self.stop(sender)
        self.assertTrue(all(r["ok"] for r in events(sender, "round")), sender.output())
        listing = self.lab.run(FORGER, ["iptables", "-L", "INPUT", "-v", "-x", "-n"]).stdout
        reflected = [int(n) for n in re.findall(r"^\s*(\d+)\s+\d+\s+ACCEPT", listing, re.M)]
        for receiver, arrived in zip(receivers, reflected):
            self.stop(receiver)
            summary = only(receiver, "summary")
            [spoofed] = [s for s in summary["senders"] if s["address"] == SPOOFED]
            [answered] = [a for a in summary["answered"] if a["address"] == SPOOFED]
            self.assertEqual(answered["acks"], arrived)
            self.assertLessEqual(arrived, 1000 * seconds + 1000)
            self.assertEqual(arrived + summary["rate_limited"], spoofed["received"])
            self.assertGreater(summary["rate_limited"], 0)


class KeySecrecyTest(support.ProcessTestCase):
    """The key is in no command line, no environment and no output."""

    def test_the_key_never_shows(self):
        key = b"this-key-must-never-show-up-anywhere"
        with tempfile.NamedTemporaryFile(delete=False) as stream:
            stream.write(key)
        os.chmod(stream.name, 0o600)
        port = str(support.free_udp_port())
        receiver = self.track(support.Watched(support.python_script(
            "socket_multicast_receiver.py", "-i", "127.0.0.1", "-p", port, "--json"),
            env={**os.environ, "MULTICAST_KEY_FILE": stream.name}))
        self.assertTrue(support.wait_until(lambda: receiver.lines, 5), receiver.stderr)
        sender = self.track(support.Watched(support.python_script(
            "socket_multicast_sender.py", "-i", "127.0.0.1", "-p", port, "--json",
            "--key-file", stream.name, "--count", "0", "--interval", "0.1")))
        self.assertTrue(support.wait_until(lambda: len(sender.lines) >= 3, 5), sender.stderr)
        for child in (sender, receiver):
            for part in ("cmdline", "environ"):
                with open(f"/proc/{child.process.pid}/{part}", "rb") as stream_:
                    self.assertNotIn(key, stream_.read(), part)
        for child in (sender, receiver):
            child.signal(signal.SIGTERM)
            child.wait(5)
            self.assertNotIn(key.decode(), child.output() + child.stderr)
        self.assertTrue(only(sender, "summary")["receivers"][0]["acks"] >= 2)


if __name__ == "__main__":
    unittest.main()
