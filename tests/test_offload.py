"""Trains against one datagram a call (issue 34, point 2): the same 100,000 datagrams
through both receive paths and both send paths must be counted the same, against the
list's own counts and against the kernel's.

A train is what UDP_SEGMENT makes of one send: many datagrams, each with its own
header, that the kernel cuts apart on the way; a receiver with UDP_GRO takes a whole
train in one read and cuts it apart itself (read_some), one without gets the datagrams.

- Receive paths: host 0 sends a crafted list of 1..100,000 (about 1% left out, 0.5%
  sent twice, 0.5% moved later) as trains of up to 64, to a default receiver and a
  --no-offload receiver on host 1 at once. Both count what the list says; the
  kernel's count of reads shows that the default one took trains. A train of numbers
  in a row goes the receiver's fast lane (TrainLane), one with a gap, a duplicate or
  a moved number in it the long way: both are taken.
  Break: read_some treats a train as one datagram -> it counts far too few.
- Send paths: the sender with trains and with --no-offload, 100,000 messages at
  --rate 20000, and an nft rule on host 1 that drops every 50th packet of data. Each
  receiver's loss, and the report the sender got, is what the rule dropped, in
  datagrams: a train crosses the veths as ONE packet of many datagrams, so these are
  counted from the rule's bytes. Break: Train.send numbers a train's datagrams
  alike -> loss, duplicates.
"""

import os
import random
import re
import shutil
import signal
import socket
import tempfile
import time
import unittest

from . import netlab, support
from .support import GROUP, only

REPORT_ROOM = support.load("socket_multicast_receiver.py").REPORT_ROOM  # an end's size

COUNT = 100_000  # the numbers of one run: 1..COUNT
SIZE = 100  # bytes of each data datagram
PORT = 10000
IP_UDP_HEADERS = 20 + 8  # what each packet on the wire has beside its UDP payload
SOL_UDP, UDP_SEGMENT, UDP_GRO = 17, 103, 104  # Linux's numbers (Python 3.12 names them)


def kernel_has_trains():
    """None if this kernel segments UDP sends (4.18) and merges them for a reader (5.0),
    else why not."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.getsockopt(SOL_UDP, UDP_SEGMENT)
            sock.setsockopt(SOL_UDP, UDP_GRO, 1)
        except OSError as error:
            return f"this kernel has no UDP_SEGMENT or UDP_GRO: {error}"
    return None


def crafted(count, seed=34):
    """The order numbers 1..count go out in: about 1% left out, 0.5% sent a second time
    1 to 300 places later, 0.5% moved 1 to 300 places later (they come after higher
    ones)."""
    rng = random.Random(seed)
    placed = []  # (place, number), sorted at the end
    for number in range(1, count + 1):
        draw = rng.random()
        if draw < 0.01:
            continue
        if draw >= 0.015:  # moved (below 0.02), or in its place
            shift = rng.randint(1, 300) + 0.5 if draw < 0.02 else 0
            placed.append((number + shift, number))
        else:  # twice: in its place, and later
            placed += [(number, number), (number + rng.randint(1, 300) + 0.5, number)]
    return [number for _, number in sorted(placed)]


def counts_of(numbers, last):
    """What the receiver must count of numbers arriving in this order, the end of run
    saying last: a number that came before is a duplicate; one below the highest so far
    that had not come is reordered; lost are those of 1..last that never came."""
    seen, highest, duplicates, reordered = set(), 0, 0, 0
    for number in numbers:
        if number in seen:
            duplicates += 1
            continue
        reordered += number < highest
        seen.add(number)
        highest = max(highest, number)
    return {"received": len(seen), "lost": last - len(seen), "duplicates": duplicates,
            "reordered": reordered}


# Sends the numbers in a file, in that order, as trains of up to 64 (one sendmsg with
# UDP_SEGMENT each: the kernel cuts them into datagrams of SIZE bytes), each datagram
# with its own header; waits while a receiver's socket (process pid's, on host 1) has
# more than a megabyte queued, so that no host drops any. Then the end of run three
# times, and the reports that come within 5 s; prints the trains and the reports.
TRAIN_SENDER = r"""
import json, socket, struct, sys, time
HEADER = struct.Struct("!4sBBBxQQQ")
path, group, port, size, end_size, session, last, pid = sys.argv[1:]
port, size, end_size, session, last = map(int, (port, size, end_size, session, last))
numbers = [int(number) for number in open(path).read().split()]

def queued():  # the most that a socket on our port holds, in pid's network namespace
    with open(f"/proc/{pid}/net/udp") as table:
        rows = [line.split() for line in list(table)[1:]]
    return max([int(row[4].split(":")[1], 16) for row in rows
                if row[1].endswith(f":{port:04X}")] or [0])

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
cut = [(17, 103, struct.pack("=H", size))]  # SOL_UDP, UDP_SEGMENT: datagrams of size
buffer, trains = bytearray(64 * size), 0
for first in range(0, len(numbers), 64):
    train = numbers[first:first + 64]
    for at, number in enumerate(train):  # DATA, NO_ACK
        HEADER.pack_into(buffer, at * size, b"MCK1", 1, 1, 1, session, number, 0)
    deadline = time.monotonic() + 10
    while queued() > 1_000_000 and time.monotonic() < deadline:
        time.sleep(0.001)
    sock.sendmsg([memoryview(buffer)[:len(train) * size]], cut, 0, (group, port))
    trains += 1
end = HEADER.pack(b"MCK1", 1, 3, 1, session, last, 0).ljust(end_size, b"\0")
reports, deadline = [], time.monotonic() + 5
for _ in range(3):
    sock.sendto(end, (group, port))
    time.sleep(0.02)
while len(reports) < 6 and time.monotonic() < deadline:
    sock.settimeout(max(0.001, deadline - time.monotonic()))
    try:
        data = sock.recv(2048)
    except socket.timeout:
        break
    if data[5] == 4:  # a report: after the header and the hold time (REPORT_EXTRA),
        # received, lost, duplicates, reordered, host drops
        reports.append(struct.unpack_from("!QQQQQ", data, HEADER.size + 4))
print(json.dumps({"trains": trains, "reports": reports}), flush=True)
"""


def udp_rows(lab, host):
    """The rows of host's /proc/net/udp for our port: {"rx_queue", "drops"} each."""
    rows = [line.split() for line in lab.run(host, ["cat", "/proc/net/udp"]).stdout
            .splitlines()[1:]]
    return [{"rx_queue": int(row[4].split(":")[1], 16), "drops": int(row[-1])}
            for row in rows if row[1].endswith(f":{PORT:04X}")]


def udp_counters(lab, host):
    """Host's UDP counters from /proc/net/snmp: InDatagrams counts reads (a train
    taken whole is one), RcvbufErrors the datagrams (or trains) a full queue dropped."""
    lines = [line.split() for line in lab.run(host, ["cat", "/proc/net/snmp"]).stdout
             .splitlines() if line.startswith("Udp:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:])))


class OffloadLabCase(netlab.LabTestCase):
    hosts = 2
    SENDER, RECEIVER = 0, 1

    @classmethod
    def setUpClass(cls):
        reason = kernel_has_trains()
        support.skip_unless(reason is None, reason)
        super().setUpClass()

    def receivers(self):
        """A default receiver ("trains") and a --no-offload one ("datagrams") on host 1,
        once both have said they listen and the host has joined."""
        children = {}
        for name, extra in (("trains", []), ("datagrams", ["--no-offload"])):
            children[name] = self.start(self.RECEIVER, support.python_script(
                "socket_multicast_receiver.py", "--json", "--quiet", "--name", name,
                *extra))
        self.assertTrue(support.wait_until(
            lambda: self.lab.joined(self.RECEIVER, GROUP)
            and all(support.events(child, "start") for child in children.values()), 5),
            "".join(child.stderr for child in children.values()))
        return children

    def summaries(self, children):
        """Stop the receivers; their summaries by name, with the test's fields only, once
        each has been seen to hold one session that ended at COUNT and says the same."""
        fields = ("received", "lost", "duplicates", "reordered", "host_drops")
        found = {}
        for name, child in children.items():
            child.signal(signal.SIGTERM)
            self.assertEqual(child.wait(10), 0, child.stderr)
            summary = only(child, "summary")
            found[name] = {key: summary[key] for key in fields}
            [session] = summary["senders"]
            self.assertEqual({key: session[key] for key in (*fields, "last_seq", "too_late")},
                             {**found[name], "last_seq": COUNT, "too_late": 0}, name)
        return found


class ReceivePathsTest(OffloadLabCase):
    """The crafted list, as trains, to both receivers at once."""

    def test_both_receivers_count_the_lists_own_counts(self):
        numbers = crafted(COUNT)
        expected = counts_of(numbers, COUNT)
        # The list has what it should have: loss, duplicates and reordering, each plenty.
        self.assertTrue(900 < expected["lost"] < 1100 and 400 < expected["duplicates"] < 600
                        and 400 < expected["reordered"] < 600, expected)
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
            listing.write(" ".join(map(str, numbers)))
        self.addCleanup(os.remove, listing.name)
        children = self.receivers()
        before = udp_counters(self.lab, self.RECEIVER)
        started = time.monotonic()
        sent = self.lab.run(self.SENDER, [
            support.PYTHON, "-c", TRAIN_SENDER, listing.name, GROUP, str(PORT), str(SIZE),
            str(REPORT_ROOM), str(0x0FF10AD34), str(COUNT),
            str(children["trains"].process.pid)], timeout=60)
        took = time.monotonic() - started
        self.assertEqual(sent.returncode, 0, sent.stderr)
        result = support.json_lines(sent.stdout.splitlines())[0]
        rows = udp_rows(self.lab, self.RECEIVER)
        self.assertEqual([row["drops"] for row in rows], [0, 0],
                         f"the host dropped datagrams (sent in {took:.1f} s): {rows}")
        # Every report came (three from each receiver), so each has read everything.
        self.assertEqual(len(result["reports"]), 6, result)
        summaries = self.summaries(children)
        after = udp_counters(self.lab, self.RECEIVER)
        wanted = {**expected, "host_drops": 0}
        self.assertEqual(summaries, {"trains": wanted, "datagrams": wanted})
        # The reports the sender got say the same, host drops 0, three times each.
        report = [expected[key] for key in ("received", "lost", "duplicates", "reordered")]
        self.assertEqual(result["reports"], [report + [0]] * 6)
        # The kernel's reads: the --no-offload receiver read each datagram and end of
        # run on its own; the rest are the default receiver's, a train at a time.
        reads = after["InDatagrams"] - before["InDatagrams"]
        self.assertEqual(after["RcvbufErrors"], before["RcvbufErrors"])
        train_reads = reads - (len(numbers) + 3)
        self.assertEqual(train_reads, result["trains"] + 3,
                         f"{reads} reads in all for {len(numbers)} datagrams")


class SendPathsTest(OffloadLabCase):
    """The real sender, with trains and without, behind a rule that drops every 50th
    packet of data on host 1's way in.

    The receivers must keep up at 20,000 a second: a run in which host 1's kernel
    dropped datagrams for a full socket (a busy machine) cannot compare the paths, and
    is made again, ATTEMPTS times at most."""

    ATTEMPTS = 3

    def setUp(self):
        super().setUp()
        support.skip_unless(shutil.which("nft"), "'nft' is not installed (Debian: nftables)")
        table = self.nft("add", "table", "inet", "lossy", check=False)
        support.skip_unless(table.returncode == 0, f"nft cannot filter here: {table.stderr}")
        self.addCleanup(self.nft, "delete", "table", "inet", "lossy", check=False)

    def nft(self, *arguments, check=True):
        result = self.lab.run(self.RECEIVER, ["nft", *arguments])
        if check:
            self.assertEqual(result.returncode, 0, result.stderr)
        return result

    def lossy_table(self):
        """The rules, their counters at 0: count the data, and drop every 50th packet."""
        self.nft("delete", "table", "inet", "lossy")
        self.nft("add", "table", "inet", "lossy")
        data = ["ip", "daddr", GROUP, "udp", "dport", str(PORT), "@th,104,8", "1"]  # DATA
        self.nft("add", "chain", "inet", "lossy", "in",
                 "{ type filter hook input priority 0; }")
        self.nft("add", "rule", "inet", "lossy", "in", *data, "counter")
        self.nft("add", "rule", "inet", "lossy", "in", *data, "numgen", "inc", "mod", "50",
                 "0", "counter", "drop")

    def counters(self):
        """The rules' counters: [(packets, datagrams)] for all data, then the dropped.
        A packet is IP and UDP headers and k datagrams of SIZE bytes (k > 1: a train)."""
        listing = self.nft("list", "table", "inet", "lossy").stdout
        found = []
        for packets, size in re.findall(r"counter packets (\d+) bytes (\d+)", listing):
            packets, size = int(packets), int(size)
            payload = size - IP_UDP_HEADERS * packets
            self.assertEqual(payload % SIZE, 0, listing)
            found.append((packets, payload // SIZE))
        self.assertEqual(len(found), 2, listing)
        return found

    def send(self, *extra):
        """One run: COUNT messages at --rate 20000 to both receivers. Returns the
        sender and the receivers once every datagram queued for them has been read, or
        None if host 1 dropped some (its kernel's RcvbufErrors went up)."""
        self.lossy_table()
        children = self.receivers()
        before = udp_counters(self.lab, self.RECEIVER)["RcvbufErrors"]
        # --timeout: without acks the sender waits this long (at least 0.5 s) for the
        # reports; a receiver still reading when it stops waiting would give none.
        sender = self.start(self.SENDER, support.python_script(
            "socket_multicast_sender.py", "--json", "--rate", "20000", "--no-ack",
            "--count", str(COUNT), "--size", str(SIZE), "--timeout", "2", *extra))
        self.assertEqual(sender.wait(60), 0, sender.output()[-2000:] + sender.stderr)
        self.assertEqual(len(udp_rows(self.lab, self.RECEIVER)), 2, "a receiver is gone")
        self.assertTrue(support.wait_until(lambda: not any(
            row["rx_queue"] for row in udp_rows(self.lab, self.RECEIVER)), 20),
            "the receivers did not read what was queued")
        if udp_counters(self.lab, self.RECEIVER)["RcvbufErrors"] > before:
            for child in children.values():
                child.kill()
            return None
        return sender, children

    def run_sender(self, *extra):
        """Check each receiver's loss, and its report to the sender, against what the
        rule dropped; return the data's (packets, datagrams) on host 1's way in."""
        for _ in range(self.ATTEMPTS):
            run = self.send(*extra)
            if run is not None:
                break
        else:
            self.fail(f"host 1 dropped datagrams for a full socket in each of "
                      f"{self.ATTEMPTS} runs: too busy a machine to compare the paths")
        sender, children = run
        (packets, datagrams), (_, dropped) = counters = self.counters()
        self.assertEqual(datagrams, COUNT, counters)
        self.assertGreater(dropped, COUNT // 100, counters)
        wanted = {"received": COUNT - dropped, "lost": dropped, "duplicates": 0,
                  "reordered": 0, "host_drops": 0}
        self.assertEqual(self.summaries(children), {"trains": wanted, "datagrams": wanted})
        reports = {entry["name"]: entry["report"] for entry in only(sender, "summary")
                   ["receivers"]}
        for name in ("trains", "datagrams"):
            self.assertIsNotNone(reports.get(name), reports)
            self.assertEqual({key: reports[name][key] for key in wanted},
                             wanted, f"{name}'s report")
        return packets, datagrams

    def test_trains(self):
        packets, datagrams = self.run_sender()
        # The trains crossed the veths whole: a packet carried ten datagrams or so.
        self.assertLess(2 * packets, datagrams, "no trains on the wire")

    def test_one_datagram_a_call(self):
        packets, datagrams = self.run_sender("--no-offload")
        self.assertEqual(packets, datagrams)


if __name__ == "__main__":
    unittest.main()
