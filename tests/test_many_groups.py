"""Many groups on one receiver (issue 34, point 6), judged by the lab host's kernel.

`-g FIRST+N` names FIRST and the N groups after it. The receiver joins them all over as
many sockets as the kernel's limit per socket needs (net.ipv4.igmp_max_memberships, 20
by default, one per network namespace), and counts each group on its own; the sender
sends its messages to the groups in turn, each group a session of its own.

What the kernel says is the truth here: the memberships it lists for the receiver's
interface (/proc/net/igmp and /proc/net/igmp6, the receiver's namespace's own), the UDP
sockets it holds for the receiver's process, and nftables on the receiver's host: a
dynamic set that counts each group's data messages as they come in, and a rule that
drops every second data message of one group (never an end of run) with a counter.
"""

import ipaddress
import json
import shutil
import signal
import sys
import unittest

from . import netlab, support
from .support import events, only, summary_of

PORT = 10000  # the scripts' default
TABLE = "many_groups"  # the nftables table of these tests, on the receiver's host
# A data message: the protocol's magic b"MCK1" first in the UDP payload (at bit 64 of
# the transport header: after UDP's 8 bytes), its kind (1: data, 3: end of run) in the
# payload's sixth byte, byte 13 of the transport header (bit 104).
DATA = ["udp", "dport", str(PORT), "@th,64,32", "0x4d434b31", "@th,104,8", "1"]

# Runs the rest of its command line with at most N files open, as `ulimit -n N` would.
WITH_FILE_LIMIT = ("import os, resource, sys; limit = int(sys.argv[1]); "
                   "resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)); "
                   "os.execv(sys.argv[2], sys.argv[2:])")

# A member of the groups, on a lab host of its own: joins argv[2:] on port 10000, says
# "ready", and prints each data message as "group seq" (the protocol's sequence number:
# bytes 16 to 24 of the payload) in the order they come, until killed.
OBSERVER = r"""
import socket, struct, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.setsockopt(socket.IPPROTO_IP, 8, 1)  # IP_PKTINFO (Linux), not in Python
sock.bind(("0.0.0.0", int(sys.argv[1])))
for group in sys.argv[2:]:
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                    socket.inet_aton(group) + socket.inet_aton("0.0.0.0"))
print("ready", flush=True)
while True:
    data, ancillary, _, _ = sock.recvmsg(2048, socket.CMSG_SPACE(12))
    if data[:4] == b"MCK1" and data[5] == 1:
        group = socket.inet_ntoa(ancillary[0][2][8:12])  # in_pktinfo's destination
        print(group, struct.unpack_from("!Q", data, 16)[0], flush=True)
"""


def groups(first, count):
    """FIRST+N spelled out: first and the count - 1 groups after it, as strings."""
    start = ipaddress.ip_address(first)
    return [str(start + offset) for offset in range(count)]


def block(first):
    """The block the groups from first lie in (the nft rules' and the listings' filter)."""
    version = ipaddress.ip_address(first).version
    return ipaddress.ip_network(f"{first}/{16 if version == 4 else 112}", strict=False)


def memberships(lab, host, device="eth0", version=4):
    """The groups host's kernel lists as joined on device, as strings (IPv4:
    /proc/net/igmp; IPv6: /proc/net/igmp6; each network namespace has its own)."""
    if version == 6:
        table = lab.run(host, ["cat", "/proc/net/igmp6"]).stdout
        return {str(ipaddress.ip_address(bytes.fromhex(fields[2])))
                for fields in map(str.split, table.splitlines())
                if len(fields) > 2 and fields[1] == device}
    table = lab.run(host, ["cat", "/proc/net/igmp"]).stdout
    found, current = set(), None
    for line in table.splitlines()[1:]:
        fields = line.split()
        if not line.startswith(("\t", " ")):  # "2 eth0 : 3 V3": a device's first line
            current = fields[1] if len(fields) > 1 else None
        elif current == device and fields:  # a group, its 32 bits in the host's order
            found.add(str(ipaddress.ip_address(int(fields[0], 16).to_bytes(4, sys.byteorder))))
    return found


def udp_sockets(pid):
    """Process pid's UDP sockets as its network namespace's kernel lists them
    (/proc/PID/net/udp and udp6, found by inode): [receive queue in bytes, ...]."""
    inodes = support.socket_inodes(pid)
    queues = []
    for name in ("udp", "udp6"):
        with open(f"/proc/{pid}/net/{name}") as table:
            for fields in map(str.split, list(table)[1:]):
                if fields[9] in inodes:
                    queues.append(int(fields[4].split(":")[1], 16))
    return queues


class ManyGroupsCase(netlab.LabTestCase):
    hosts = 3
    SENDER, RECEIVER, OBSERVER = 0, 1, 2

    def setUp(self):
        super().setUp()
        support.skip_unless(shutil.which("nft"), "'nft' is not installed (Debian: nftables)")
        table = self.lab.run(self.RECEIVER, ["nft", "add", "table", "inet", TABLE])
        support.skip_unless(table.returncode == 0, f"nft cannot filter here: {table.stderr}")
        self.addCleanup(self.lab.run, self.RECEIVER, ["nft", "delete", "table", "inet", TABLE])
        self.nft("add", "chain", "inet", TABLE, "input",
                 "{ type filter hook input priority 0; }")
        self.set_memberships_limit(20)  # the kernel's default, whatever a test left
        self.addCleanup(self.set_memberships_limit, 20)

    def nft(self, *words):
        result = self.lab.run(self.RECEIVER, ["nft", *words])
        self.assertEqual(result.returncode, 0, f"nft {' '.join(words)}: {result.stderr}")
        return result.stdout

    def set_memberships_limit(self, limit):
        result = self.lab.run(self.RECEIVER, ["sysctl", "-qw",
                                              f"net.ipv4.igmp_max_memberships={limit}"])
        self.assertEqual(result.returncode, 0, result.stderr)

    def count_each_group(self, first):
        """Count each group's data messages as they reach the receiver's host (nft: a
        dynamic set, a counter in each element)."""
        version = ipaddress.ip_address(first).version
        kind, match = ("ipv4_addr", "ip") if version == 4 else ("ipv6_addr", "ip6")
        self.nft("add", "set", "inet", TABLE, "arrived",
                 f"{{ type {kind}; size 65535; flags dynamic; counter; }}")
        self.nft("add", "rule", "inet", TABLE, "input", match, "daddr", str(block(first)), *DATA,
                 "update", "@arrived", "{", match, "daddr", "}")

    def drop_every_second(self, group):
        """Drop every second data message to group on the receiver's host (the first,
        the third, ...), counted; ends of run pass."""
        match = "ip" if ipaddress.ip_address(group).version == 4 else "ip6"
        self.nft("add", "counter", "inet", TABLE, "dropped")
        self.nft("add", "rule", "inet", TABLE, "input", match, "daddr", group, *DATA,
                 "numgen", "inc", "mod", "2", "0", "counter", "name", "dropped", "drop")

    def arrived(self):
        """{group: data messages that reached the receiver's host}, nft's counts."""
        listing = json.loads(self.nft("-j", "list", "set", "inet", TABLE, "arrived"))
        [found] = [item["set"] for item in listing["nftables"] if "set" in item]
        return {item["elem"]["val"]: item["elem"]["counter"]["packets"]
                for item in found.get("elem", [])}

    def dropped(self):
        listing = json.loads(self.nft("-j", "list", "counter", "inet", TABLE, "dropped"))
        [found] = [item["counter"] for item in listing["nftables"] if "counter" in item]
        return found["packets"]

    def receiver(self, *arguments, prefix=()):
        """A receiver on the receiver's host (JSON, quiet), once it said it started."""
        child = self.start(self.RECEIVER, [*prefix, *support.python_script(
            "socket_multicast_receiver.py", "--json", "--quiet", *arguments)])
        self.assertTrue(support.wait_until(lambda: events(child, "start")
                                           or child.process.poll() is not None, 20),
                        "no start event in 20 s")
        self.assertIsNone(child.process.poll(), child.stderr)
        return child

    def send(self, *arguments, timeout=60):
        """Run a sender (JSON) to its end; its summary, once its exit status is 0."""
        sender = self.start(self.SENDER, support.python_script(
            "socket_multicast_sender.py", "--json", *arguments))
        self.assertEqual(sender.wait(timeout), 0, sender.stderr + sender.output()[-3000:])
        return summary_of(sender)

    def stop(self, receiver, sent):
        """Once the receiver's host has had every data message sent (or dropped it) and
        the receiver has read all that its sockets queued: SIGINT, exit status 0, its
        summary."""
        self.assertTrue(support.wait_until(lambda: sum(self.arrived().values()) >= sent, 10),
                        f"{sum(self.arrived().values())} of {sent} data messages arrived")
        self.assertIsNone(receiver.process.poll(), receiver.stderr)
        pid = receiver.process.pid
        if not support.wait_until(lambda: not any(udp_sockets(pid)), 10):
            queues = udp_sockets(pid)
            self.fail(f"the receiver left {sum(queues)} bytes unread in "
                      f"{sum(map(bool, queues))} of its {len(queues)} sockets")
        receiver.signal(signal.SIGINT)
        self.assertEqual(receiver.wait(10), 0, receiver.stderr)
        return summary_of(receiver)

    def assert_joined(self, receiver, wanted):
        """The kernel lists every group wanted on the receiver's eth0, and no other of
        their block; the start event tells their number, and the UDP sockets the kernel
        holds for the receiver's process."""
        version = ipaddress.ip_address(wanted[0]).version
        listed = {group for group in memberships(self.lab, self.RECEIVER, version=version)
                  if ipaddress.ip_address(group) in block(wanted[0])}
        self.assertEqual(len(listed), len(wanted), "the groups the kernel lists on eth0")
        self.assertEqual(listed, set(wanted))
        start = only(receiver, "start")
        self.assertEqual(start["groups"], len(wanted))
        self.assertEqual(start["sockets"], len(udp_sockets(receiver.process.pid)),
                         "the sockets it says it opened, and the kernel's count")
        return start

    def assert_each(self, found, expected, what):
        """found == expected, two dicts by group; else how many are wrong, and which (the
        first five: a thousand groups make too long a message)."""
        wrong = [f"{group} {found.get(group)}, not {value}" for group, value in expected.items()
                 if found.get(group) != value]
        wrong += [f"{group} {value}, not ours" for group, value in found.items()
                  if group not in expected]
        self.assertEqual(len(wrong), 0, f"{what}: {len(wrong)} of {len(expected)} groups "
                                        f"wrong, the first five: {'; '.join(wrong[:5])}")

    def assert_counted_apart(self, summary, wanted, per_group, lossy=None, dropped=0):
        """Each group of wanted in the receiver's summary, in order, with its own counts:
        per_group each, lossy's dropped of them lost; the totals their sums."""
        self.assertEqual([entry["group"] for entry in summary["groups"]], wanted)
        expected = {group: (per_group, 0, 0, 0) for group in wanted}
        if lossy is not None:
            expected[lossy] = (per_group - dropped, dropped, 0, 0)
        self.assert_each({entry["group"]: (entry["received"], entry["lost"], entry["duplicates"],
                                           entry["reordered"]) for entry in summary["groups"]},
                         expected, f"the receiver's (received, lost, duplicates, reordered), "
                                   f"its host's drops {summary['host_drops']}")
        self.assertEqual((summary["received"], summary["lost"], summary["duplicates"]),
                         (per_group * len(wanted) - dropped, dropped, 0), "its totals")
        silent = [entry["group"] for entry in summary["groups"]
                  if not isinstance(entry["first_ms"], (int, float)) or entry["first_ms"] < 0]
        self.assertEqual(silent, [], "groups without a time to their first datagram")

    def assert_sent(self, sent, wanted, expected):
        """The sender's summary names the groups in order, each with expected: (sent,
        received, lost), the last two from the receiver's reports."""
        self.assertEqual([entry["group"] for entry in sent["groups"]], wanted)
        self.assert_each({entry["group"]: (entry["sent"], entry["received"], entry["lost"])
                          for entry in sent["groups"]}, expected,
                         "the sender's (sent, received, lost)")


class ManyGroupsTest(ManyGroupsCase):
    def lossy_run(self, first, count, lossy):
        """count groups from first, 10 data messages each; every second one to the group
        lossy dropped by nft on the receiver's host: each group counted on its own."""
        wanted = groups(first, count)
        spec = f"{first}+{count - 1}"
        self.count_each_group(first)
        self.drop_every_second(lossy)
        receiver = self.receiver("-g", spec)
        self.assert_joined(receiver, wanted)
        sent = self.send("-g", spec, "--rate", "2000", "--no-ack", "--count", str(10 * count))
        summary = self.stop(receiver, 10 * count)
        # the kernel's counts first, then the receiver's, then what its reports told the sender
        self.assert_each(self.arrived(), {group: 10 for group in wanted},
                         "data messages that reached the receiver's host")
        dropped = self.dropped()
        self.assertEqual(dropped, 5, "nft dropped every second data message of one group")
        self.assert_counted_apart(summary, wanted, 10, lossy, dropped)
        self.assert_sent(sent, wanted, {group: (10, 5, 5) if group == lossy else (10, 10, 0)
                                        for group in wanted})
        self.assertIsInstance(summary["join_seconds"], (int, float))
        self.assertEqual(summary["sockets"], only(receiver, "start")["sockets"])
        return summary

    def test_a_thousand_ipv4_groups_each_counted_one_losing_half_to_nft(self):
        summary = self.lossy_run("239.1.0.0", 1000, "239.1.2.77")
        self.assertGreaterEqual(summary["sockets"], 1000 // 20, "20 groups a socket at most")

    def test_a_hundred_ipv6_groups_each_counted_one_losing_half_to_nft(self):
        self.lossy_run("ff15::5:0", 100, "ff15::5:30")

    def test_round_mode_takes_the_groups_in_turn(self):
        """Message 1 to the first group, 2 to the second, 3 to the third, 4 to the first
        again...: each group a session of its own, numbered 1, 2 (seen by a plain
        member of the groups on a third host, in the order they came)."""
        wanted = groups("239.1.0.0", 3)
        self.count_each_group("239.1.0.0")
        receiver = self.receiver("-g", "239.1.0.0+2")
        self.assert_joined(receiver, wanted)
        observer = self.start(self.OBSERVER, [support.PYTHON, "-c", OBSERVER, str(PORT),
                                              *wanted])
        self.assertTrue(observer.wait_for_line("ready", 10), observer.stderr)
        self.assertTrue(support.wait_until(
            lambda: set(wanted) <= memberships(self.lab, self.OBSERVER), 5))
        sent = self.send("-g", "239.1.0.0+2", "--count", "6", "--interval", "0")
        summary = self.stop(receiver, 6)
        self.assert_each(self.arrived(), {group: 2 for group in wanted},
                         "data messages that reached the receiver's host")
        self.assert_counted_apart(summary, wanted, 2)
        self.assert_sent(sent, wanted, {group: (2, 2, 0) for group in wanted})
        self.assertTrue(support.wait_until(lambda: len(observer.lines) >= 7, 5),
                        observer.output())
        self.assertEqual(observer.lines[1:], [f"{group} {seq}" for seq in (1, 2)
                                              for group in wanted])


class FileLimitTest(ManyGroupsCase):
    """1,000 groups at 20 a socket need 50 sockets; with `ulimit -n 24` the receiver has
    not that many: it says which limits, on one line, and exits 1. With the kernel's
    limit per socket raised in its namespace, 24 files are enough."""

    LIMIT = [support.PYTHON, "-c", WITH_FILE_LIMIT, "24"]

    def test_too_few_files_for_the_sockets_is_one_line_naming_the_limits(self):
        result = self.lab.run(self.RECEIVER, [*self.LIMIT, *support.python_script(
            "socket_multicast_receiver.py", "-g", "239.1.0.0+999", "--json", "--quiet")])
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        for name in ("ulimit -n", "igmp_max_memberships"):
            self.assertIn(name, result.stderr)

    def test_the_same_files_are_enough_with_the_kernels_limit_raised(self):
        self.set_memberships_limit(1000)
        wanted = groups("239.1.0.0", 1000)
        self.count_each_group("239.1.0.0")
        receiver = self.receiver("-g", "239.1.0.0+999", prefix=self.LIMIT)
        start = self.assert_joined(receiver, wanted)
        self.assertLess(start["sockets"], 1000 // 20, "fewer sockets than at 20 a socket")
        sent = self.send("-g", "239.1.0.0+999", "--rate", "4000", "--no-ack", "--count", "1000")
        self.assert_counted_apart(self.stop(receiver, 1000), wanted, 1)
        self.assert_sent(sent, wanted, {group: (1, 1, 0) for group in wanted})


if __name__ == "__main__":
    unittest.main()
