"""lab/querier.py on the wire, its election, and lab/snoopinglab.py's snooping bridge.

Each test builds the snooping lab anew (a bridge in a namespace of its own, with
timers of seconds), so no querier of an earlier test is still trusted by the bridge.
What the hosts got is read from the kernel, not from the scripts: the nftables
counters in each host, a raw IGMP socket's copy of each query, `bridge -j mdb show`.
"""

import json
import os
import shutil
import socket
import struct
import subprocess
import time
import unittest

from . import support

snoopinglab = support.load("lab/snoopinglab.py")
QUERIER = support.script("lab/querier.py")
MEMBERSHIP, OTHER_QUERIER, QUERY_INTERVAL = 3, 6, 1  # seconds, shorter than the lesson's

# Run on a host: print, for each IGMP query it receives, when (monotonic seconds), the
# source address and the whole IP datagram in hex, as a raw IGMP socket hands it over.
CAPTURE = """
import socket, time
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
print("ready", flush=True)
while True:
    packet = sock.recv(65535)
    if packet[(packet[0] & 15) * 4] == 0x11:
        print(time.monotonic(), socket.inet_ntoa(packet[12:16]), packet.hex(), flush=True)
"""


def internet_sum(data):
    """RFC 1071's sum, folded: 0xFFFF over data whose checksum field is right."""
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def cannot_build():
    """Why the snooping lab cannot be built here, or None."""
    if os.geteuid() != 0:
        return "the snooping lab needs root (network namespaces, nftables)"
    for tool in ("ip", "bridge", "nft"):
        if shutil.which(tool) is None:
            return f"'{tool}' is not installed (Debian: iproute2, nftables)"
    return None


class SnoopingCase(support.ProcessTestCase):
    def setUp(self):
        super().setUp()
        reason = cannot_build()
        support.skip_unless(reason is None, reason)
        self.lab = snoopinglab.SnoopingLab(tag=f"sqt{os.getpid()}", membership=MEMBERSHIP,
                                           other_querier=OTHER_QUERIER)
        self.addCleanup(self.lab.close)

    def start(self, host, argv):
        return self.track(support.Watched(self.lab.command(host, argv)))

    def querier(self, host, *arguments):
        return self.start(host, [support.PYTHON, QUERIER, "--interface", "eth0", *arguments])

    def capture(self, host="bystander"):
        """The queries reaching host, one line each: time, source, datagram in hex."""
        watcher = self.start(host, [support.PYTHON, "-c", CAPTURE])
        self.assertTrue(watcher.wait_for_line("ready", 10), watcher.stderr)
        return watcher

    def queries(self, watcher, source=None, after=0.0):
        """The captured queries (time, source, bytes), from source, after a time."""
        found = []
        for line in list(watcher.lines)[1:]:
            when, address, packet = line.split()
            if (source is None or address == source) and float(when) > after:
                found.append((float(when), address, bytes.fromhex(packet)))
        return found

    def counter(self, host, name="arrivals"):
        """An nftables counter of host's, as the kernel reports it (JSON)."""
        result = subprocess.run(self.lab.command(host, ["nft", "-j", "list", "counter", "ip",
                                                        "lab", name]),
                                capture_output=True, text=True, timeout=10)
        self.assertEqual(result.returncode, 0, result.stderr)
        for item in json.loads(result.stdout)["nftables"]:
            if "counter" in item:
                return item["counter"]["packets"]
        raise AssertionError(result.stdout)

    def members(self):
        """The bridge's ports for the group, from `bridge -j mdb show`."""
        result = subprocess.run(["bridge", "-n", self.lab.ns("switch"), "-j", "mdb", "show"],
                                capture_output=True, text=True, timeout=10)
        self.assertEqual(result.returncode, 0, result.stderr)
        return sorted(entry["port"] for table in json.loads(result.stdout)
                      for entry in table.get("mdb", []) if entry["grp"] == support.GROUP)

    def growth(self, seconds):
        """What the member and the bystander got in the next `seconds`."""
        before = self.counter("member"), self.counter("bystander")
        time.sleep(seconds)  # a measuring window, not a wait for a condition
        return self.counter("member") - before[0], self.counter("bystander") - before[1]

    def frozen(self, host, seconds):
        """Whether host's counter stays still for `seconds`."""
        before = self.counter(host)
        time.sleep(seconds)  # a measuring window
        return self.counter(host) == before


class QueryBytesTest(SnoopingCase):
    """The bytes of a query against RFC 2236 (IGMPv2) and RFC 3376 (IGMPv3)."""

    def first_query(self, *arguments):
        watcher = self.capture()
        querier = self.querier("querier", *arguments)
        self.assertTrue(support.wait_until(
            lambda: self.queries(watcher, self.lab.address("querier")), 5), querier.stderr)
        return self.queries(watcher, self.lab.address("querier"))[0][2]

    def check_ip_header(self, packet, total_length):
        # RFC 1112 / 2236 / 3376: IPv4, a 24-byte header (20 + the 4-byte option),
        # precedence Internetwork Control, TTL 1, protocol 2 (IGMP), from the querier's
        # address to 224.0.0.1, and the Router Alert option (RFC 2113): 94 04 00 00.
        self.assertEqual(packet[0], 0x46, packet.hex())
        self.assertEqual(packet[1], 0xC0, packet.hex())
        self.assertEqual(struct.unpack("!H", packet[2:4])[0], total_length)
        self.assertEqual(len(packet), total_length)
        self.assertEqual(packet[8], 1, "TTL")
        self.assertEqual(packet[9], 2, "protocol")
        self.assertEqual(packet[12:16], socket.inet_aton(self.lab.address("querier")))
        self.assertEqual(packet[16:20], socket.inet_aton("224.0.0.1"))
        self.assertEqual(packet[20:24], bytes.fromhex("94040000"))
        self.assertEqual(internet_sum(packet[:24]), 0xFFFF, "IP header checksum")

    def test_igmpv2_general_query(self):
        packet = self.first_query("--interval", "2", "--version", "2")
        self.check_ip_header(packet, 32)
        # RFC 2236, 2: type 0x11, max response 10 (tenths: 1 s, half the 2 s interval),
        # checksum 0xeef5 (the one's complement of 0x110a), group 0.0.0.0.
        self.assertEqual(packet[24:].hex(), "110aeef500000000")
        self.assertEqual(internet_sum(packet[24:]), 0xFFFF)

    def test_igmpv3_general_query(self):
        packet = self.first_query("--interval", "2", "--version", "3")
        self.check_ip_header(packet, 36)
        # RFC 3376, 4.1: 0x11, max resp code 10, checksum, group 0, then Resv 0 S 0
        # QRV 2 in one byte, QQIC 2 (seconds), no sources.
        self.assertEqual(packet[24:].hex(), "110aecf3" "00000000" "02" "02" "0000")
        self.assertEqual(internet_sum(packet[24:]), 0xFFFF)

    def test_igmpv3_codes_above_127(self):
        """A 300 s interval: max response 100 tenths (10 s, literal), QQIC 300 as
        RFC 3376 4.1.7's float: 1 001 0010 = (16 + 2) << (1 + 3) = 288."""
        packet = self.first_query("--interval", "300", "--version", "3")
        self.check_ip_header(packet, 36)
        self.assertEqual(packet[24:].hex(), "1164ec09" "00000000" "02" "92" "0000")


class ElectionTest(SnoopingCase):
    def test_the_lower_address_queries_and_the_other_falls_silent(self):
        """RFC 2236 3 / RFC 3376 6.6.2, counted on the wire at the bystander."""
        rival_address, querier_address = (self.lab.address(host) for host in
                                          ("rival", "querier"))
        self.assertLess(socket.inet_aton(querier_address), socket.inet_aton(rival_address))
        wire = self.capture()
        rival = self.querier("rival", "--interval", str(QUERY_INTERVAL))
        self.assertTrue(support.wait_until(
            lambda: len(self.queries(wire, rival_address)) >= 2, 5), rival.stderr)
        lower = self.querier("querier", "--interval", str(QUERY_INTERVAL))
        self.assertTrue(support.wait_until(
            lambda: len(self.queries(wire, querier_address)) >= 5, 10), lower.stderr)
        first = self.queries(wire, querier_address)[0][0]
        # From the lower address's first query on, the rival sends none (0.2 s for
        # one that was on its way), while the lower one sends one a second.
        self.assertEqual(self.queries(wire, rival_address, after=first + 0.2), [],
                         rival.output())
        self.assertTrue(support.wait_until(lambda: any(
            "a lower address than ours" in line for line in rival.lines), 5), rival.output())
        lower.signal()
        self.assertEqual(lower.wait(5), 0, lower.stderr)
        last = self.queries(wire, querier_address)[-1][0]
        # Other Querier Present Interval: 2 x 1 s + half of 0.5 s = 2.25 s after the
        # last query it heard, the rival queries again.
        self.assertTrue(support.wait_until(
            lambda: self.queries(wire, rival_address, after=last), 6), rival.output())
        resumed = self.queries(wire, rival_address, after=last)[0][0] - last
        self.assertGreater(resumed, 2.0, rival.output())
        self.assertLess(resumed, 3.5, rival.output())
        self.assertTrue(support.wait_until(lambda: any(
            "we are the querier again" in line for line in rival.lines), 5), rival.output())
        self.assertIn("querier: stopped: ", lower.output().splitlines()[-1])


class RefusalTest(SnoopingCase):
    def test_bad_options_are_refused_in_one_line(self):
        for arguments, env, named in (
                (["--interface", "eth0", "--interval", "0"], {}, "'0' is not a number"),
                (["--interface", "eth0", "--interval", "banana"], {}, "'banana'"),
                (["--interface", "eth0"], {"MULTICAST_QUERY_INTERVAL": "-5"}, "'-5'"),
                (["--interface", "eth0", "--version", "4"], {}, "invalid choice: 4"),
                (["--interface", "nosuch"], {}, "there is no interface nosuch"),
                (["--interface", "lo"], {}, "lo cannot do multicast"),
                ([], {}, "required: -I/--interface")):
            result = subprocess.run(
                self.lab.command("querier", [support.PYTHON, QUERIER, *arguments]),
                capture_output=True, text=True, timeout=10, env={**os.environ, **env})
            self.assertEqual(result.returncode, 2, (arguments, result.stderr))
            self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
            self.assertIn(named, result.stderr)
            self.assertNotIn("Traceback", result.stderr)
            self.assertEqual(result.stdout, "")

    def test_a_signal_stops_it_at_once_with_a_summary(self):
        querier = self.querier("querier", "--interval", "60")
        self.assertTrue(support.wait_until(lambda: len(querier.lines) >= 2, 5), querier.stderr)
        started = time.monotonic()
        querier.signal()
        self.assertEqual(querier.wait(5), 0, querier.stderr)
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertEqual(querier.lines[-1], "querier: stopped: 1 query sent, 0 heard from "
                                            "others")


class SnoopingTimelineTest(SnoopingCase):
    """The bridge's timeline, judged by the hosts' nftables counters and its mdb."""

    def start_stream(self):
        self.lab.start_sender()
        self.lab.start_member()
        self.assertTrue(support.wait_until(lambda: self.members() == ["p-member"], 5))

    def test_flooding_on_the_querier_prunes_and_its_absence_stops_the_stream(self):
        self.start_stream()
        member, bystander = self.growth(1)
        self.assertGreater(bystander, 5, "no querier: flooded to every port")
        self.assertGreater(member, 5)
        querier = self.lab.start_querier(interval=QUERY_INTERVAL)
        # Within one query interval (and a half for the bystander's counter to settle)
        # the bridge trusts its table: the bystander gets nothing more.
        self.assertTrue(support.wait_until(lambda: self.frozen("bystander", 1.5),
                                           QUERY_INTERVAL + 4), querier)
        # The stream goes on for the member past several membership intervals.
        member, bystander = self.growth(2 * MEMBERSHIP)
        self.assertGreater(member, 10 * MEMBERSHIP, "the member's stream went on")
        self.assertEqual(bystander, 0)
        self.assertEqual(self.members(), ["p-member"])
        stopped = time.monotonic()
        self.lab.stop("querier")
        # No queries: no reports; the membership runs out while the bridge still
        # trusts the querier it heard, and the group reaches nobody.
        self.assertTrue(support.wait_until(lambda: self.members() == [], MEMBERSHIP + 3))
        self.assertTrue(support.wait_until(lambda: self.frozen("member", 1),
                                           MEMBERSHIP + 3))
        self.assertLess(time.monotonic() - stopped, OTHER_QUERIER)
        self.assertEqual(self.growth(0.5)[1], 0)
        # Once the bridge's other-querier timer runs out, it floods to everyone again.
        self.assertTrue(support.wait_until(lambda: min(self.growth(0.5)) > 2,
                                           OTHER_QUERIER + 3))
        self.assertGreater(time.monotonic() - stopped, OTHER_QUERIER - 1)

    def test_flooding_off_no_querier_nobody_and_the_queries_stop_at_the_ports(self):
        self.lab.set_flood(False)
        self.start_stream()
        # No querier: the bridge ignores its table (the member is in it) and floods,
        # and flooding is off: nobody gets the group.
        self.assertEqual(self.growth(1.5), (0, 0))
        self.assertEqual(self.members(), ["p-member"])
        queries = self.counter("member", "queries")
        self.lab.start_querier(interval=QUERY_INTERVAL)
        self.assertTrue(support.wait_until(lambda: self.growth(0.5)[0] > 2, 4))
        self.assertEqual(self.counter("bystander"), 0)
        # This kernel withholds the queries (to 224.0.0.1, flooded) from ports with
        # flooding off too: the member hears at most the first, stops reporting, and
        # its membership runs out although the querier goes on.
        self.assertTrue(support.wait_until(lambda: self.members() == [], MEMBERSHIP + 4))
        self.assertEqual(self.growth(1), (0, 0))
        self.assertLessEqual(self.counter("member", "queries") - queries, 1)
        # Flooding on for the member's port alone: the queries reach it, it answers,
        # and its stream goes on past several membership intervals; the bystander's
        # port stays closed.
        subprocess.run(["bridge", "-n", self.lab.ns("switch"), "link", "set", "dev",
                        "p-member", "mcast_flood", "on"], check=True, timeout=10)
        self.assertTrue(support.wait_until(lambda: self.members() == ["p-member"],
                                           QUERY_INTERVAL + 2))
        queries = self.counter("member", "queries")
        member, bystander = self.growth(2 * MEMBERSHIP)
        self.assertGreater(member, 10 * MEMBERSHIP)
        self.assertEqual(bystander, 0)
        self.assertGreaterEqual(self.counter("member", "queries") - queries,
                                2 * MEMBERSHIP // QUERY_INTERVAL - 1)


if __name__ == "__main__":
    unittest.main()
