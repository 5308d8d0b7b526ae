#!/usr/bin/env python3
"""Benchmarks: the two pairs next to ping, iperf2 and each other, in one run.

    python3 tests/bench.py            # the full run (a few minutes)
    python3 tests/bench.py --quick    # small counts, as CI runs it
    python3 tests/bench.py --only offloads,cost_growth --plot docs/cost.svg

Builds its own namespace lab (as in the tests), measures everything on the
same path in the same run, and prints one Markdown table. It installs
nothing: it says what is missing (ping: iputils-ping, iperf2: iperf,
gcc for the C pair, Docker for the Compose rows) and leaves those rows out. The goals in the
last column are reported, never asserted.
"""

import argparse
import glob
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests import netlab, support  # noqa: E402

GROUP = "224.10.10.10"
SENDER, FIRST = 0, 1
# Section 7's paced pair: datagrams a second by size, well under what its receiver takes
# (about 3.7 and 1.4 million at full rate, with host drops in some runs).
PACED = {100: 1_000_000, 1400: 500_000}
TEXTBOOK_PROBE = """
import json, socket, struct, sys, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # as the textbook sender sets it up
sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, struct.pack("B", 1))
sock.settimeout(1.0)
rtts = []
for _ in range(int(sys.argv[1])):
    started = time.perf_counter()
    sock.sendto(b"very important data", ("%s", int(sys.argv[2])))
    sock.recvfrom(65535)
    rtts.append((time.perf_counter() - started) * 1000)
    time.sleep(0.01)
print(json.dumps(rtts))
""" % GROUP
# The least any Python responder can do: receive, answer, nothing else.
MINIMAL_ECHO = """
import socket
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("%s", 10002))
sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                socket.inet_aton("%s") + socket.inet_aton("0.0.0.0"))
print("ready", flush=True)
while True:
    data, address = sock.recvfrom(65535)
    sock.sendto(b"ack", address)
""" % (GROUP, GROUP)


# A group member without the key that answers every message it sees with forged acks,
# each under a new name (f0, f1, ...), until it has used argv[1] names.
FORGER = support.GROUP_MEMBER + r"""
HEADER = struct.Struct("!4sBBBxQQQ")
names, used = int(sys.argv[1]), 0
while used < names:
    data, source = sock.recvfrom(65535)
    if not data.startswith(b"MCK1"):
        continue
    _, _, kind, _, session, sequence, sent = HEADER.unpack_from(data)
    for _ in range(10):  # ten names for each message
        forged = bytearray(HEADER.pack(b"MCK1", 1, 2, 0, session, sequence, sent))
        forged[7] = 1
        sock.sendto(bytes(forged) + struct.pack("!I", 0) + b"f%d" % used, source)
        used += 1
print(used, flush=True)
"""


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def spread(values, fmt):
    """' (lowest-highest)' of a row's runs."""
    return f" ({fmt.format(min(values))}-{fmt.format(max(values))})" if len(values) > 1 else ""


def percentile(values, p):
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * p // 100) - 1)]


def json_events(lines, kind):
    return [e for e in (json.loads(line) for line in lines if line.startswith("{"))
            if e["type"] == kind]


def down_phases(since, until):
    """Where a `down` between two wall-clock times went, from Docker's own events:
    Compose starting up (to the first stop), stopping the containers, removing
    them, removing the networks, and Compose finishing. None without events."""
    events = subprocess.run(["docker", "events", "--since", f"{since:.6f}", "--until",
                             f"{until:.6f}", "--format", "{{json .}}"],
                            capture_output=True, text=True, timeout=30).stdout
    times = {}  # action -> [seconds after since]
    for line in events.splitlines():
        event = json.loads(line)
        action = f"{event['Type']} {event['Action']}"
        times.setdefault(action, []).append(event["timeNano"] / 1e9 - since)
    marks = [min(times.get("container kill", [None])), max(times.get("container stop", [0])),
             max(times.get("container destroy", [0])), max(times.get("network destroy", [0]))]
    if None in marks or 0 in marks:
        return None
    start, stopped, removed, networks = marks
    return (f"Compose starting {start:.2f}, stopping {stopped - start:.2f}, removing "
            f"containers {removed - stopped:.2f}, networks {networks - removed:.2f} "
            f"({len(times['network destroy'])}), Compose ending {until - since - networks:.2f}")


# CPU time of processes. A live process: the sum over its threads of the time on a CPU
# the scheduler counts (/proc/PID/task/*/schedstat, in ns; /proc/PID/stat's utime and
# stime, in ticks of 10 ms, where there is no schedstat). A process that has ended: its
# user and system time as the kernel hands it to the parent that reaps it (rusage).

def process_cpu(pid):
    """Seconds of CPU process pid has used so far; None if it is gone."""
    try:
        total = 0
        for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
            with open(path) as stream:
                total += int(stream.read().split()[0])
        if total:
            return total / 1e9
        with open(f"/proc/{pid}/stat") as stream:
            fields = stream.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def reaped_cpu(wait):
    """Call wait() (which reaps one child process); return (its result, the CPU seconds
    of the child reaped meanwhile). Nothing else may be reaped during the call."""
    before = children_cpu()
    result = wait()
    return result, children_cpu() - before


def namespace_counters(pid):
    """The counters of the network namespace process pid runs in, from its /proc/PID/net
    (what `nstat` and `ip -s link show eth0` say there): UDP datagrams out and in, the
    datagrams its host dropped for want of room in a socket's buffer (RcvbufErrors), the
    datagrams it could not send (SndbufErrors: ENOBUFS, which a UDP socket without
    IP_RECVERR does not report), and eth0's bytes out and in (with each frame's Ethernet
    header). None if it is gone."""
    try:
        with open(f"/proc/{pid}/net/snmp") as stream:
            names, values = [line.split()[1:] for line in stream if line.startswith("Udp:")]
        with open(f"/proc/{pid}/net/dev") as stream:
            eth0 = next(line.split(":", 1)[1].split() for line in stream
                        if line.strip().startswith("eth0:"))
    except (OSError, ValueError, StopIteration):
        return None
    udp = dict(zip(names, map(int, values)))
    return {"datagrams out": udp["OutDatagrams"], "datagrams in": udp["InDatagrams"],
            "host drops": udp["RcvbufErrors"], "send drops": udp["SndbufErrors"],
            "bytes out": int(eth0[8]), "bytes in": int(eth0[0])}


def backlog_drops():
    """Packets this machine's CPUs dropped for want of room in their input queues
    (/proc/net/softnet_stat's second column; net.core.netdev_max_backlog): where a veth
    hands a packet to the namespace at its other end, every lab's and the machine's own."""
    with open("/proc/net/softnet_stat") as stream:
        return sum(int(line.split()[1], 16) for line in stream)


class DropWatch(threading.Thread):
    """The datagrams dropped by the host for want of room in port's UDP sockets, as
    /proc/net/udp's drops column in the namespace of process pid shows them, read every
    50 ms while the block runs: the highest count of each socket, summed (iperf2 opens
    a new socket after each test and closes the one that counted)."""

    def __init__(self, pid, port):
        super().__init__(daemon=True)
        self.path, self.suffix = f"/proc/{pid}/net/udp", f":{port:04X}"
        self.highest, self.done = {}, threading.Event()

    def run(self):
        while not self.done.wait(0.05):
            try:
                with open(self.path) as stream:
                    lines = stream.read().splitlines()[1:]
            except OSError:
                return
            for fields in (line.split() for line in lines):
                if fields[1].endswith(self.suffix):  # fields[9] is the socket's inode
                    self.highest[fields[9]] = max(self.highest.get(fields[9], 0),
                                                  int(fields[-1]))

    def total(self):
        return sum(self.highest.values()) if self.highest else None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        time.sleep(0.1)  # one more look after the last datagram
        self.done.set()
        self.join()


def growth(sizes, costs):
    """How a cost grows from the smallest size to the largest, in words, from the
    numbers: the ratio of the costs against the ratio of the sizes, and the exponent k
    of cost ~ size^k that joins the two ends."""
    if len(sizes) < 2 or not costs[0] or not costs[-1]:
        return "not enough points"
    size_ratio, cost_ratio = sizes[-1] / sizes[0], costs[-1] / costs[0]
    k = math.log(cost_ratio) / math.log(size_ratio)
    word = ("falls" if k < -0.1 else "flat" if k < 0.1 else "grows slowly (sublinear)"
            if k < 0.8 else "linear" if k < 1.2 else "faster than linear" if k < 1.8
            else "quadratic" if k < 2.2 else "faster than quadratic")
    return f"{cost_ratio:.2f}x for {size_ratio:,.0f}x: {word} (~size^{k:.2f})"


def svg_chart(x0, y0, width, height, title, xlabel, series, note=None):
    """One small line chart with log-scaled axes: series is [(name, colour, [(x, y)])]."""
    out = [f'<text x="{x0 + width / 2}" y="{y0 - 12}" text-anchor="middle" '
           f'font-weight="bold">{title}</text>',
           f'<rect x="{x0}" y="{y0}" width="{width}" height="{height}" fill="none" '
           'stroke="#888"/>']
    points = [p for _, _, values in series for p in values if p[1] > 0]
    if not points:
        return out + [f'<text x="{x0 + width / 2}" y="{y0 + height / 2}" '
                      f'text-anchor="middle" fill="#555">{note or "not measured"}</text>']
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    lx = (math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs))) or 1)
    ly = (math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys))))
    ly = (ly[0], ly[1] if ly[1] > ly[0] else ly[0] + 1)

    def at(x, y):
        return (x0 + width * (math.log10(x) - lx[0]) / (lx[1] - lx[0]),
                y0 + height * (1 - (math.log10(y) - ly[0]) / (ly[1] - ly[0])))

    for decade in range(lx[0], lx[1] + 1):
        x, _ = at(10 ** decade, 10 ** ly[0])
        out += [f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + height}" '
                'stroke="#ddd"/>',
                f'<text x="{x:.1f}" y="{y0 + height + 16}" text-anchor="middle">'
                f'{10 ** decade:,}</text>']
    steps = (1, 2, 5) if ly[1] - ly[0] <= 2 else (1,)  # 1, 2, 5 in each decade when few
    for value in [m * 10.0 ** d for d in range(ly[0], ly[1] + 1) for m in steps]:
        if value > 10.0 ** ly[1]:
            break
        _, y = at(10 ** lx[0], value)
        out += [f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + width}" y2="{y:.1f}" '
                'stroke="#ddd"/>',
                f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{value:g}</text>']
    out += [f'<text x="{x0 + width / 2}" y="{y0 + height + 34}" text-anchor="middle">'
            f'{xlabel} (log scale)</text>',
            f'<text x="{x0 - 52}" y="{y0 + height / 2}" text-anchor="middle" '
            f'transform="rotate(-90 {x0 - 52} {y0 + height / 2})">CPU µs per datagram '
            '(log scale)</text>']
    for number, (name, colour, values) in enumerate(series):
        shown = [at(x, y) for x, y in values if y > 0]
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
                   + " ".join(f"{x:.1f},{y:.1f}" for x, y in shown) + '"/>')
        out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in shown]
        below = number % 2  # the second series' figures under its points

        def anchor(x):
            return "end" if x > x0 + width - 30 else "start" if x < x0 + 30 else "middle"

        out += [f'<text x="{x:.1f}" y="{y + 14 if below else y - 7:.1f}" font-size="10" '
                f'text-anchor="{anchor(x)}">{v:.0f}</text>'
                for (x, y), (_, v) in zip(shown, [p for p in values if p[1] > 0])]
        out += [f'<line x1="{x0 + 10}" y1="{y0 + 14 + 16 * number}" x2="{x0 + 30}" '
                f'y2="{y0 + 14 + 16 * number}" stroke="{colour}" stroke-width="2"/>',
                f'<text x="{x0 + 36}" y="{y0 + 18 + 16 * number}">{name}</text>']
    if note:
        out.append(f'<text x="{x0 + width / 2}" y="{y0 + height + 50}" text-anchor="middle" '
                   f'font-size="10" fill="#555">{note}</text>')
    return out


def write_svg(path, caption, charts):
    """charts: [(title, xlabel, series, note)], drawn side by side."""
    width, height = 340, 240
    total = 100 + len(charts) * (width + 100)
    body = []
    for number, (title, xlabel, series, note) in enumerate(charts):
        body += svg_chart(90 + number * (width + 100), 50, width, height, title, xlabel,
                          series, note)
    escaped = caption.replace("&", "&amp;").replace("<", "&lt;")
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="370" '
                     f'font-family="sans-serif" font-size="12">\n'
                     f'<rect width="100%" height="100%" fill="white"/>\n'
                     + "\n".join(body) +
                     f'\n<text x="{total / 2}" y="360" text-anchor="middle" font-size="10" '
                     f'fill="#555">{escaped}</text>\n</svg>\n')


def remove_images(project):
    """Untag the images a Compose project built, keeping their layers as the build cache."""
    names = subprocess.run(["docker", "images", "--format", "{{.Repository}}",
                            "--filter", f"reference={project}*"],
                           capture_output=True, text=True, timeout=60).stdout.split()
    if names:
        subprocess.run(["docker", "rmi", "--no-prune", *names], capture_output=True, timeout=120)


class Bench:
    def __init__(self, quick, only=()):
        self.quick = quick
        self.only = only  # the names of the sections to run; empty: all
        self.rows = []  # (section, measurement, textbook, socket, reference, ratio, goal)
        self.notes = []
        self.children = []
        self.lab = None

    # Helpers

    def start(self, host, argv):
        child = support.Watched(self.lab.command(host, argv))
        self.children.append(child)
        return child

    def stop_all(self):
        for child in self.children:
            child.kill()
        self.children = []

    def receivers(self, kind, hosts, *arguments, folder=support.PROJECT):
        """Start receivers of one kind on hosts (the scripts in folder); wait until every
        one has joined."""
        def argv(host):
            if kind == "textbook":
                return support.python_script("multicast_receiver.py", *arguments)
            return [support.PYTHON, os.path.join(folder, "socket_multicast_receiver.py"),
                    "--name", f"r{host}", *arguments]

        children = [self.start(host, argv(host)) for host in hosts]
        if not support.wait_until(lambda: all(c.lines for c in children), 180):
            raise RuntimeError(f"{kind} receivers did not start: {children[0].stderr}")
        return children

    def row(self, *cells):
        self.rows.append(cells)

    # 1. Round-trip time

    def rtt(self):
        """ping, the textbook pair and the socket pair on one path, in alternating
        blocks so that a slow moment of the machine falls on all of them alike.
        The socket receiver runs twice: with its default output (a line per
        message, at most 20 a second) and with --quiet, as the Python floor."""
        blocks, per_block = (4, 6) if self.quick else (10, 30)
        if not shutil.which("ping"):
            self.notes.append("ping is not installed (Debian: iputils-ping): no ping column")
        self.start(FIRST, support.python_script("multicast_receiver.py", "-p", "10000"))
        self.start(FIRST, support.python_script("socket_multicast_receiver.py", "-p", "10001",
                                                "--ack-jitter", "0"))
        self.start(FIRST, support.python_script("socket_multicast_receiver.py", "-p", "10003",
                                                "--ack-jitter", "0", "--quiet"))
        self.start(FIRST, [support.PYTHON, "-c", MINIMAL_ECHO])
        support.wait_until(lambda: all(c.lines for c in self.children), 10)
        results = {name: [] for name in ("ping", "textbook", "floor", "socket", "quiet")}

        def measure(name):
            if name == "ping":
                result = self.lab.run(SENDER, ["ping", "-c", str(per_block), "-i", "0.01",
                                               self.lab.address(FIRST)], timeout=120)
                return [float(t) for t in re.findall(r"time=([\d.]+) ms", result.stdout)]
            if name in ("textbook", "floor"):
                probe = self.lab.run(SENDER, [support.PYTHON, "-c", TEXTBOOK_PROBE,
                                              str(per_block),
                                              "10000" if name == "textbook" else "10002"],
                                     timeout=120)
                return json.loads(probe.stdout)
            # One message every 10 ms, as ping -i 0.01 and the textbook probe: a host
            # that idles longer between packets also wakes up more slowly.
            sender = self.lab.run(SENDER, support.python_script(
                "socket_multicast_sender.py", "--json", "-p",
                "10001" if name == "socket" else "10003", "--count", str(per_block),
                "--interval", "0.005", "--timeout", "0.005"), timeout=120)
            return [ack["rtt_ms"] for event in json_events(sender.stdout.splitlines(), "round")
                    for ack in event["acks"]]

        order = [name for name in results if name != "ping" or shutil.which("ping")]
        for block in range(blocks):  # forward, then backward: a drift falls on all alike
            for name in (order if block % 2 == 0 else order[::-1]):
                results[name] += measure(name)
        ping, textbook, socket_pair, quiet, floor = (
            results[name] for name in ("ping", "textbook", "socket", "quiet", "floor"))
        count = blocks * per_block
        for p, name in ((50, "p50"), (99, "p99")):
            t, s = percentile(textbook, p), percentile(socket_pair, p)
            reference = percentile(ping, p) if ping else None
            ratio = s / reference if reference else None
            goal = ""
            if p == 50 and ratio is not None:
                goal = "within 3x of ping: " + ("met" if ratio <= 3 else f"missed ({ratio:.2f}x)")
            self.row("1. ack RTT", f"{name} ms ({count} messages each, one per 10 ms)",
                     f"{t:.3f}", f"{s:.3f}", f"{reference:.3f} (ping)" if reference else "-",
                     f"{ratio:.2f}" if ratio else "-", goal)
        lowest = percentile(floor, 50)
        self.row("1. ack RTT", "p50 ms of a minimal blocking Python echo, same path and probe",
                 "-", "-", f"{lowest:.3f} (Python floor)",
                 f"{percentile(socket_pair, 50) / lowest:.2f}", "")
        ratio = percentile(quiet, 50) / lowest
        self.row("1. ack RTT", "p50 ms, the socket receiver with --quiet (prints nothing, "
                 "as the floor)", "-", f"{percentile(quiet, 50):.3f}",
                 f"{lowest:.3f} (Python floor)", f"{ratio:.2f}",
                 "at most 1.15x the floor: " + ("met" if ratio <= 1.15 else
                                                 f"missed ({ratio:.2f}x)"))

    # 2. Throughput

    def throughput(self):
        """Ours and iperf2 in alternating runs (five each, two in quick mode): the
        median of each row, with the spread (lowest to highest) beside it."""
        seconds, runs = (1, 2) if self.quick else (2, 5)
        has_iperf = shutil.which("iperf")
        if not has_iperf:
            self.notes.append("iperf2 is not installed (Debian: iperf): no iperf2 column")
        for size in (100, 1400):
            ours, theirs = [], []
            for _ in range(runs):
                ours.append(self.throughput_ours(size, seconds))
                if has_iperf:
                    result = self.throughput_iperf(size, seconds)
                    if result:
                        theirs.append(result)
            for label, index, fmt in (("sent pkt/s", 0, "{:,.0f}"),
                                      ("received pkt/s", 1, "{:,.0f}"), ("loss %", 2, "{:.2f}")):
                mine = median([run[index] for run in ours])
                reference = median([run[index] for run in theirs]) if theirs else None
                ratio = (f"{mine / reference:.2f}" if reference and index < 2 else "-")
                goal = ""
                if reference is not None and index == 1:
                    short = 100 * (1 - mine / reference)
                    goal = "at least iperf2's: " + ("met" if mine >= reference else
                                                    f"missed by {short:.0f}%")
                if reference is not None and index == 2:
                    goal = "no more loss than iperf2: " + (
                        "met" if mine <= reference + 0.005 else
                        f"missed by {mine - reference:.2f} points")
                self.row("2. throughput", f"{size} B, {label} (median of {runs})", "-",
                         fmt.format(mine) + spread([run[index] for run in ours], fmt),
                         (fmt.format(reference) + spread([run[index] for run in theirs], fmt)
                          + " (iperf2)") if reference is not None else "-", ratio, goal)

    def authentication(self):
        """The cost of the key: throughput at 100 B with and without it, alternating."""
        seconds, runs = (1, 2) if self.quick else (2, 5)
        key = os.path.join(self.lab_folder(), "bench.key")
        with open(key, "w") as stream:
            stream.write("0123456789abcdef0123456789abcdef\n")
        os.chmod(key, 0o600)
        plain, signed = [], []
        for _ in range(runs):
            plain.append(self.throughput_ours(100, seconds))
            signed.append(self.throughput_ours(100, seconds, "--key-file", key))
        for label, index in (("sent pkt/s", 0), ("received pkt/s", 1)):
            without = median([run[index] for run in plain])
            with_key = median([run[index] for run in signed])
            self.row("2. throughput", f"100 B, {label} with the key (median of {runs})", "-",
                     f"{with_key:,.0f}" + spread([run[index] for run in signed], "{:,.0f}"),
                     f"{without:,.0f}" + spread([run[index] for run in plain], "{:,.0f}")
                     + " (no key)", f"{with_key / without:.2f}", "")

    def board(self):
        """The cost of the live board: throughput at 100 B with --board and without,
        alternating (the board served, and its state built every half second)."""
        seconds, runs = (1, 2) if self.quick else (2, 5)
        plain, shown = [], []
        for _ in range(runs):
            plain.append(self.throughput_ours(100, seconds))
            shown.append(self.throughput_ours(100, seconds, "--board", "18080"))
        without = median([run[0] for run in plain])
        with_board = median([run[0] for run in shown])
        self.row("2. throughput", f"100 B, sent pkt/s with --board (median of {runs})", "-",
                 f"{with_board:,.0f}" + spread([run[0] for run in shown], "{:,.0f}"),
                 f"{without:,.0f}" + spread([run[0] for run in plain], "{:,.0f}")
                 + " (no board)", f"{with_board / without:.2f}", "")

    def forged_names(self):
        """The cost of a forger: the sender's rate at --rate 2000 with --board, with and
        without a group member that answers with acks under 10,000 forged names,
        alternating (the rows it may add are capped a second, their state bounded)."""
        runs = 2 if self.quick else 5
        clean, forged = [], []
        for _ in range(runs):
            for results, forger in ((clean, False), (forged, True)):
                [receiver] = self.receivers("socket", [FIRST], "--quiet")
                if forger:
                    forger_child = self.start(2, [sys.executable, "-c", FORGER, "10000"])
                    support.wait_until(lambda: forger_child.lines, 30)
                sender = self.start(SENDER, support.python_script(
                    "socket_multicast_sender.py", "--json", "--rate", "2000", "--count",
                    "8000", "--board", "18081"))
                sender.wait(120)
                [summary] = json_events(sender.lines, "summary")
                results.append((summary["sent"] / summary["send_seconds"],
                                len(summary["receivers"]), summary["untracked"]))
                self.stop_all()
        without = median([run[0] for run in clean])
        with_forger = median([run[0] for run in forged])
        rows = max(run[1] for run in forged)
        ratio = with_forger / without
        self.row("2. throughput", f"sent pkt/s at --rate 2000 with --board, a forger "
                 f"answering under 10,000 names (median of {runs}; {rows} rows kept)", "-",
                 f"{with_forger:,.0f}" + spread([run[0] for run in forged], "{:,.0f}"),
                 f"{without:,.0f}" + spread([run[0] for run in clean], "{:,.0f}")
                 + " (no forger)", f"{ratio:.2f}",
                 "within 10%: " + ("met" if ratio >= 0.9 else "missed"))

    def earlier(self):
        """This pair against an earlier version of itself (MULTICAST_BENCH_BASELINE, a git
        revision; by default the last of 2026-12-01), alternating, on the same path:
        received pkt/s at 100 B on the plain path (no trains: one datagram a call, as
        then), and the RTT p50 with --quiet receivers. A ratio below 1 is a regression."""
        revision = os.environ.get("MULTICAST_BENCH_BASELINE") or subprocess.run(
            ["git", "-C", support.PROJECT, "rev-list", "-1", "--before=2026-12-02T00:00:00Z",
             "HEAD"], capture_output=True, text=True).stdout.strip()
        folder = self.lab_folder()
        for name in ("socket_multicast_sender.py", "socket_multicast_receiver.py"):
            shown = subprocess.run(["git", "-C", support.PROJECT, "show",
                                    f"{revision}:{name}"], capture_output=True)
            if not revision or shown.returncode:
                self.notes.append(f"no earlier version to compare with ({revision or 'none'}:"
                                  f" {shown.stderr.decode().strip()[:100]})")
                return
            with open(os.path.join(folder, name), "wb") as stream:
                stream.write(shown.stdout)
        versions = {"now": support.PROJECT, "earlier": folder}
        seconds, runs, rounds = (1, 2, 60) if self.quick else (2, 5, 300)
        received = {version: [] for version in versions}
        rtts = {version: [] for version in versions}
        for run in range(runs):
            order = list(versions) if run % 2 == 0 else list(versions)[::-1]
            for version in order:
                plain = ["--no-offload"] if version == "now" else []  # one datagram a call
                received[version].append(self.throughput_ours(100, seconds, *plain,
                                                              folder=versions[version])[1])
                rtts[version] += self.rtt_of(versions[version], rounds // runs)
        label = f"{revision[:7]}, {runs} runs alternating"
        now, then = median(received["now"]), median(received["earlier"])
        self.row("6. against itself", f"100 B, received pkt/s, now (--no-offload: one datagram "
                 f"a call, as then) and at {label}", "-",
                 f"{now:,.0f}" + spread(received["now"], "{:,.0f}"),
                 f"{then:,.0f}" + spread(received["earlier"], "{:,.0f}") + " (earlier)",
                 f"{now / then:.2f}", "no regression: " + ("met" if now >= 0.97 * then else
                                                          f"missed ({now / then:.2f}x)"))
        now, then = percentile(rtts["now"], 50), percentile(rtts["earlier"], 50)
        self.row("6. against itself", f"RTT p50 ms (--quiet receiver), now and at {label}", "-",
                 f"{now:.3f}", f"{then:.3f} (earlier)", f"{now / then:.2f}",
                 "no regression: " + ("met" if now <= 1.03 * then else
                                      f"missed ({now / then:.2f}x)"))

    def rtt_of(self, folder, count):
        """RTTs of count rounds, one every 10 ms, with the scripts in folder."""
        def script(name, *arguments):
            return [support.PYTHON, os.path.join(folder, name), *arguments]

        [receiver] = [self.start(FIRST, script("socket_multicast_receiver.py", "-p", "10005",
                                               "--ack-jitter", "0", "--quiet"))]
        support.wait_until(lambda: receiver.lines, 10)
        sender = self.lab.run(SENDER, script(
            "socket_multicast_sender.py", "--json", "-p", "10005", "--count", str(count),
            "--interval", "0.005", "--timeout", "0.005"), timeout=120)
        self.stop_all()
        return [ack["rtt_ms"] for event in json_events(sender.stdout.splitlines(), "round")
                for ack in event["acks"]]

    def lab_folder(self):
        import tempfile
        return tempfile.mkdtemp(prefix="multicast-bench")

    def throughput_ours(self, size, seconds, *extra, folder=support.PROJECT):
        shared = [] if "--board" in extra else extra  # the key goes to both sides
        [receiver] = self.receivers("socket", [FIRST], "--quiet", "--json", *shared,
                                    folder=folder)
        count = int((60000 if self.quick else 150000) * seconds)
        sender = self.start(SENDER, [support.PYTHON,
                                     os.path.join(folder, "socket_multicast_sender.py"),
                                     "--json", "--rate", "0", "--no-ack", "--size", str(size),
                                     "--count", str(count), *extra])
        sender.wait(300)
        [sent] = json_events(sender.lines, "summary")
        time.sleep(0.2)  # let the receiver empty its socket buffer
        receiver.signal(signal.SIGTERM)
        receiver.wait(10)
        [got] = json_events(receiver.lines, "summary")
        self.stop_all()
        elapsed = sent["send_seconds"]  # from the first batch to the last: no waits
        return (sent["sent"] / elapsed, got["received"] / elapsed,
                100.0 * (sent["sent"] - got["received"]) / sent["sent"])

    def throughput_iperf(self, size, seconds):
        server = self.start(FIRST, ["iperf", "-s", "-u", "-B", GROUP, "-p", "5001", "-e"])
        support.wait_until(lambda: self.lab.joined(FIRST, GROUP), 5)
        with DropWatch(server.process.pid, 5001) as drops:
            client = self.lab.run(SENDER, ["iperf", "-c", GROUP, "-p", "5001", "-u", "-T",
                                           "1", "-b", "10000000pps", "-l", str(size), "-t",
                                           str(seconds), "-e"], timeout=60)
        support.wait_until(lambda: any("Lost/Total" in line for line in server.lines), 5)
        support.wait_until(lambda: re.search(r"(\d+)/\s*(\d+)\s+\(", server.output()), 5)
        self.stop_all()
        sent_match = re.search(r"Sent (\d+) datagrams", client.stdout)
        lost_match = re.search(r"(\d+)/\s*(\d+)\s+\(", server.output())
        if not sent_match:
            self.notes.append("iperf2's client output not understood, a run left out: "
                              + " / ".join(client.stdout[-300:].split("\n")))
            return None
        if not lost_match:  # its server reports once the client's last datagram came
            self.notes.append(f"iperf2's server gave no Lost/Total line within 5 s ({size} "
                              "bytes; its client's closing datagrams lost?): a run left out")
            return None
        sent = int(sent_match[1])
        lost, total = int(lost_match[1]), int(lost_match[2])
        return (sent / seconds, (total - lost) / seconds,
                100.0 * (sent - (total - lost)) / sent, drops.total())

    # 3. Many receivers

    def many(self):
        rounds = 3 if self.quick else 10
        for count in ((1, 10) if self.quick else (1, 10, 50, 200)):
            results = {}
            for kind in ("textbook", "socket"):
                hosts = list(range(FIRST, FIRST + count))
                self.receivers(kind, hosts, *(["--quiet"] if kind == "socket" else []))
                name = "multicast_sender.py" if kind == "textbook" else "socket_multicast_sender.py"
                extra = ["--json"] if kind == "socket" else []
                started = time.monotonic()
                sender = self.start(SENDER, support.python_script(
                    name, "--count", str(rounds), "--interval", "0", *extra))
                sender.wait(600)
                elapsed = time.monotonic() - started
                if kind == "textbook":  # a late ack counts in the next round: cap at N
                    per_round, current = [], 0
                    for line in sender.lines:
                        if line.startswith("sending"):
                            current = 0
                        elif line.startswith("received"):
                            current += 1
                        elif line.startswith("timed out"):
                            per_round.append(current)
                    counted = sum(min(c, count) for c in per_round)
                else:
                    counted = sum(len(r["acks"]) for r in json_events(sender.lines, "round"))
                results[kind] = (100.0 * counted / (count * rounds), elapsed / rounds)
                self.stop_all()
            t, s = results["textbook"], results["socket"]
            self.row("3. many receivers", f"N={count}: acks counted in their round %",
                     f"{t[0]:.1f}", f"{s[0]:.1f}", "-", "-",
                     "100% with 200: " + ("met" if s[0] == 100 else f"missed: {s[0]:.1f}%")
                     if count == 200 else "")
            self.row("3. many receivers", f"N={count}: seconds per round (start-up included)",
                     f"{t[1]:.3f}", f"{s[1]:.3f}", "-", "-", "")

    # 4. Compose

    def compose(self):
        def works(argv):
            try:
                return subprocess.run(argv, capture_output=True, timeout=30).returncode == 0
            except (OSError, subprocess.SubprocessError):
                return False

        with open(os.path.join(support.PROJECT, "Dockerfile")) as dockerfile:
            base = next(line.split()[1] for line in dockerfile if line.upper().startswith("FROM"))
        if not (shutil.which("docker-compose") and works(["docker", "info"])
                and works(["docker", "image", "inspect", base])):
            self.notes.append("no Docker daemon, docker-compose or base image: no Compose rows")
            return
        for name, command in (("v1", ["docker-compose"]), ("v2", ["docker", "compose"])):
            if not works([*command, "version"]):
                self.notes.append(f"Compose {name} is not installed: no row for it")
                continue
            compose = [*command, "-p", f"bench{os.getpid()}{name}"]
            run = dict(cwd=support.PROJECT, capture_output=True, text=True, timeout=600)
            subprocess.run([*compose, "build"], **run)
            ups, downs = [], []
            for _ in range(1 if self.quick else 3):
                try:
                    started = time.monotonic()
                    subprocess.run([*compose, "up", "-d"], **run)
                    acked = support.wait_until(lambda: "received b'ack'" in subprocess.run(
                        ["docker", "logs", "multicast-sender"], **run).stdout, 60, interval=0.05)
                    ups.append(time.monotonic() - started if acked else None)
                finally:
                    started, since = time.monotonic(), time.time()
                    subprocess.run([*compose, "down"], **run)
                    downs.append(time.monotonic() - started)
                    phases = down_phases(since, time.time())
            remove_images(compose[-1])
            runs = f"median of {len(downs)}" if len(downs) > 1 else "one run"
            up = "no ack" if None in ups else f"{median(ups):.2f}" + spread(ups, "{:.2f}")
            down = median(downs)
            self.row("4. Compose", f"{name}: `up` to first ack, s (images built; {runs})", up,
                     "-", "-", "-", "")
            self.row("4. Compose", f"{name}: `down`, s ({runs})",
                     f"{down:.2f}" + spread(downs, "{:.2f}"), "-", "-", "-",
                     "under 1 s: " + ("met" if down < 1 else f"missed by {down - 1:.2f} s"))
            if phases:
                self.row("4. Compose", f"{name}: where the last `down`'s time went, s", "-",
                         "-", "-", "-", phases)

    # 5. Receiver cost

    def cost(self):
        count = 10000 if self.quick else 50000
        results = {}
        for kind in ("textbook", "socket"):
            [receiver] = self.receivers(kind, [FIRST], *(["--quiet"] if kind == "socket" else []))
            sender = self.start(SENDER, support.python_script(
                "socket_multicast_sender.py", "--rate", "5000", "--no-ack", "--count",
                str(count), "--json"))
            sender.wait(300)
            time.sleep(0.2)
            pid = receiver.process.pid
            with open(f"/proc/{pid}/status") as status:
                peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            results[kind] = (peak / 1024, cpu * 10000 / count)
            self.stop_all()
        t, s = results["textbook"], results["socket"]
        self.row("5. receiver", f"peak RSS, MiB ({count:,} messages)", f"{t[0]:.1f}",
                 f"{s[0]:.1f}", "-", "-", "")
        self.row("5. receiver", "CPU s per 10,000 messages", f"{t[1]:.3f}", f"{s[1]:.3f}",
                 "-", "-", "")

    # 7. The pair, iperf2 and a C pair with the kernel's offloads

    def help_of(self, name):
        result = subprocess.run(support.python_script(name, "--help"), capture_output=True,
                                text=True, timeout=30)
        return result.stdout

    def c_pair(self):
        """The C pair (tests/bench_pair.c) built with gcc into a temporary folder once per
        run; None (and a note) where it cannot be built."""
        if not hasattr(self, "_c_pair"):
            self._c_pair = None
            source = os.path.join(support.PROJECT, "tests", "bench_pair.c")
            if not shutil.which("gcc"):
                self.notes.append("gcc is not installed (Debian: gcc): no C pair column")
                return None
            binary = os.path.join(tempfile.mkdtemp(prefix="multicast-bench"), "bench_pair")
            built = subprocess.run(["gcc", "-O2", "-o", binary, source], capture_output=True,
                                   text=True, timeout=120)
            if built.returncode:
                self.notes.append(f"tests/bench_pair.c did not build: {built.stderr[-300:]}")
                return None
            self._c_pair = binary
        return self._c_pair

    def pair_run(self, size, seconds, count, sender_extra=(), receiver_extra=(), rate=0):
        """One run of the measuring pair, --rate rate (0: as fast as it can) --no-ack:
        rates, loss, the host's drops (the receiver's summary), and each side's CPU after
        its start-up."""
        [receiver] = self.receivers("socket", [FIRST], "--quiet", "--json", *receiver_extra)
        receiver_start = process_cpu(receiver.process.pid)
        sender = self.start(SENDER, support.python_script(
            "socket_multicast_sender.py", "--json", "--rate", str(rate), "--no-ack", "--size",
            str(size), "--count", str(count), *sender_extra))
        support.wait_until(lambda: sender.lines, 30, interval=0.001)  # its start line
        sender_start = process_cpu(sender.process.pid) or 0.0
        _, sender_cpu = reaped_cpu(lambda: sender.wait(300))
        [sent] = json_events(sender.lines, "summary")
        time.sleep(0.2)  # let the receiver empty its socket buffer
        receiver.signal(signal.SIGTERM)
        _, receiver_cpu = reaped_cpu(lambda: receiver.wait(10))
        [got] = json_events(receiver.lines, "summary")
        self.stop_all()
        elapsed = sent["send_seconds"]
        return {"sent": sent["sent"], "received": got["received"],
                "rate": got["received"] / elapsed, "sent_rate": sent["sent"] / elapsed,
                "drops": got.get("host_drops"),
                "sender_cpu": sender_cpu - sender_start,
                "receiver_cpu": receiver_cpu - (receiver_start or 0.0)}

    def c_run(self, size, seconds, offloads=True):
        """One run of the C pair for a fixed time: the same measures as pair_run (its
        drops are the kernel's count of buffers, each up to 64 datagrams with GRO)."""
        binary = self.c_pair()
        arguments = [GROUP, "10010"]
        receiver = self.start(FIRST, [binary, "recv", *arguments, self.lab.address(FIRST),
                                      str(size), str(seconds + 30)]
                              + ([] if offloads else ["no-offload"]))
        support.wait_until(lambda: receiver.lines, 10)
        receiver_start = process_cpu(receiver.process.pid) or 0.0
        result, sender_cpu = reaped_cpu(lambda: self.lab.run(SENDER, [
            binary, "send", *arguments, self.lab.address(SENDER), str(size), str(seconds)]
            + ([] if offloads else ["no-offload"]), timeout=seconds + 60))
        _, receiver_cpu = reaped_cpu(lambda: receiver.wait(seconds + 40))
        self.stop_all()
        try:
            sent = json.loads(result.stdout)
            got = json.loads(receiver.lines[-1])
        except (ValueError, IndexError):
            self.notes.append(f"the C pair failed: {result.stderr[-200:]} "
                              f"{receiver.stderr[-200:]}")
            return None
        return {"sent": sent["sent"], "received": got["received"],
                "rate": got["received"] / sent["seconds"],
                "sent_rate": sent["sent"] / sent["seconds"], "drops": got["host_drops"],
                "sender_cpu": sender_cpu, "receiver_cpu": receiver_cpu - receiver_start,
                "offloads": f"GSO {'on' if sent['gso'] else 'off'}, "
                            f"GRO {'on' if got['gro'] else 'off'}"
                            + (f", {got['received'] / got['coalesced']:.0f} datagrams a "
                               "buffer" if got.get("coalesced") else "")}

    def iperf_run(self, size, seconds):
        result = self.throughput_iperf(size, seconds)
        if not result:
            return None
        sent_rate, rate, _, drops = result
        return {"sent": sent_rate * seconds, "received": rate * seconds, "rate": rate,
                "sent_rate": sent_rate, "drops": drops}

    def offloads(self):
        """Received datagrams/s of the measuring pair (--rate 0 --no-ack), iperf2 and the
        C pair (tests/bench_pair.c: GSO and GRO, and without them), alternating (the
        order reversed every other run), the median of each; the host's drops; and the
        CPU seconds of each pair's sender and receiver per million datagrams."""
        seconds, runs = (1, 2) if self.quick else (2, 5)
        tools = {"pair": lambda size, count: self.pair_run(size, seconds, count),
                 # Paced at a rate its receiver takes whole: a rate to report with no
                 # host drops (the goal: 3x iperf2 at 100 bytes without them).
                 "pair, paced": lambda size, count: self.pair_run(
                     size, seconds, PACED[size] * seconds, rate=PACED[size])}
        sender_help = self.help_of("socket_multicast_sender.py")
        receiver_help = self.help_of("socket_multicast_receiver.py")
        if "--no-offload" in sender_help or "--no-offload" in receiver_help:
            tools["pair --no-offload"] = lambda size, count: self.pair_run(
                size, seconds, count,
                ["--no-offload"] if "--no-offload" in sender_help else [],
                ["--no-offload"] if "--no-offload" in receiver_help else [])
        else:
            self.notes.append("the measuring pair has no --no-offload: only its default "
                              "path is measured")
        if shutil.which("iperf"):
            tools["iperf2"] = lambda size, count: self.iperf_run(size, seconds)
        else:
            self.notes.append("iperf2 is not installed (Debian: iperf): no iperf2 column "
                              "in section 7")
        if self.c_pair():
            tools["C pair"] = lambda size, count: self.c_run(size, seconds)
            tools["C pair, no offloads"] = lambda size, count: self.c_run(size, seconds, False)
        for size in (100, 1400):
            results = {name: [] for name in tools}
            counts = dict.fromkeys(tools, (60000 if self.quick else 150000) * seconds)
            for run in range(runs):
                for name in (list(tools) if run % 2 == 0 else list(tools)[::-1]):
                    result = tools[name](size, counts[name])
                    if result:
                        results[name].append(result)
                        # A faster pair sends for as long: about `seconds` at its rate.
                        counts[name] = max(counts[name], int(result["sent_rate"] * seconds))
            self.offload_rows(size, runs, results)

    def offload_rows(self, size, runs, results):
        def rate(name):
            values = [r["rate"] for r in results.get(name, [])]
            return (median(values), values) if values else (None, [])

        def drops(name):
            values = [r["drops"] for r in results.get(name, []) if r["drops"] is not None]
            loss = [100.0 * (r["sent"] - r["received"]) / r["sent"]
                    for r in results.get(name, []) if r["sent"]]
            shown = (f"host drops {median(values):,.0f} (at most {max(values):,})"
                     if values else "host drops unknown")
            return (f"{shown}, loss {median(loss):.2f}% (at most {max(loss):.2f}%)"
                    if loss else shown), values

        label = "7. pair, iperf2, C"
        for name in [n for n in ("pair", "pair, paced", "pair --no-offload")
                     if results.get(n)]:
            mine, values = rate(name)
            text, drop_values = drops(name)
            cell = f"{mine:,.0f}" + spread(values, "{:,.0f}") + f"; {text}"
            shown = f"pair --rate {PACED[size]:,}" if name == "pair, paced" else name
            references = [r for r in (("iperf2",) if name == "pair, paced" else
                                      ("iperf2", "C pair", "C pair, no offloads"))
                          if results.get(r)]
            if not references:
                self.row(label, f"{size} B, received datagrams/s, {shown} (median of "
                         f"{len(values)})", "-", cell, "-", "-", "")
            for reference in references:
                theirs, their_values = rate(reference)
                their_text, their_drops = drops(reference)
                extra = results[reference][-1].get("offloads")
                ratio = mine / theirs
                goal = ""
                if size == 100 and name == "pair, paced" and reference == "iperf2":
                    met = ratio >= 3 and not any(drop_values)
                    goal = "at least 3x iperf2, no host drops: " + (
                        "met" if met else f"missed ({ratio:.2f}x, host drops "
                        f"{max(drop_values) if drop_values else 'unknown'})")
                if size == 100 and name == "pair" and reference == "C pair":
                    goal = "at least 0.7x the C pair: " + (
                        "met" if ratio >= 0.7 else f"missed ({ratio:.2f}x)")
                self.row(label, f"{size} B, received datagrams/s, {shown} (median of "
                         f"{len(values)}) against {reference}"
                         + (f" ({extra})" if extra else ""), "-", cell,
                         f"{theirs:,.0f}" + spread(their_values, "{:,.0f}")
                         + f"; {their_text} ({reference})", f"{ratio:.2f}", goal)
        # Where the time goes: CPU s per million datagrams, sender (per million sent)
        # and receiver (per million received).
        cpu = {}
        for name in ("pair", "pair --no-offload", "C pair", "C pair, no offloads"):
            runs_of = [r for r in results.get(name, []) if r["sent"] and r["received"]]
            if runs_of:
                cpu[name] = (median([1e6 * r["sender_cpu"] / r["sent"] for r in runs_of]),
                             median([1e6 * r["receiver_cpu"] / r["received"]
                                     for r in runs_of]))
        for name in [n for n in ("pair", "pair --no-offload") if n in cpu]:
            for reference in [r for r in ("C pair", "C pair, no offloads") if r in cpu]:
                (s, r), (cs, cr) = cpu[name], cpu[reference]
                self.row(label, f"{size} B, CPU s per million datagrams, sender + receiver, "
                         f"{name} against {reference}", "-", f"{s:.2f} + {r:.2f}",
                         f"{cs:.2f} + {cr:.2f} ({reference})", f"{(s + r) / (cs + cr):.1f}",
                         "")
            if not any(r in cpu for r in ("C pair", "C pair, no offloads")):
                s, r = cpu[name]
                self.row(label, f"{size} B, CPU s per million datagrams, sender + receiver, "
                         f"{name}", "-", f"{s:.2f} + {r:.2f}", "-", "-", "")

    # 8. Cost growth

    def growth_run(self, hosts, sender_extra=(), receiver_extra=(), least=0):
        """The measuring pair with acks at a fixed rate, receivers on hosts: CPU µs per
        datagram of the sender (per datagram sent) and of each receiver (per datagram
        it received), after start-up; and the receivers' summaries. At least `least`
        datagrams (one for each group)."""
        rate, count = self.growth_pace()
        count = max(count, least)
        receivers = self.receivers("socket", hosts, "--quiet", "--json", *receiver_extra)
        started = [process_cpu(r.process.pid) or 0.0 for r in receivers]
        sender = self.start(SENDER, support.python_script(
            "socket_multicast_sender.py", "--json", "--rate", str(rate), "--count",
            str(count), *sender_extra))
        support.wait_until(lambda: sender.lines, 30, interval=0.001)
        sender_start = process_cpu(sender.process.pid) or 0.0
        _, sender_cpu = reaped_cpu(lambda: sender.wait(600))
        [sent] = json_events(sender.lines, "summary")
        time.sleep(0.5)
        used = [(process_cpu(r.process.pid) or 0.0) - start
                for r, start in zip(receivers, started)]
        for receiver in receivers:
            receiver.signal(signal.SIGTERM)
        summaries = []
        for receiver in receivers:
            receiver.wait(30)
            summaries += json_events(receiver.lines, "summary")
        self.stop_all()
        per_receiver = [1e6 * cpu / s["received"] for cpu, s in zip(used, summaries)
                        if s["received"]]
        acks = sum(r.get("acks", 0) for r in sent.get("receivers", []))
        late = sum(r.get("late", 0) for r in sent.get("receivers", []))
        return {"sender": 1e6 * (sender_cpu - sender_start) / sent["sent"],
                "receiver": median(per_receiver) if per_receiver else 0.0,
                "received": sum(s["received"] for s in summaries), "sent": sent["sent"],
                "acked": 100.0 * acks / (sent["sent"] * len(hosts)),
                "late": 100.0 * late / (sent["sent"] * len(hosts)), "summaries": summaries}

    def growth_pace(self):
        """Datagrams a second and how many: slow enough that 100 Python receivers and
        the sender of their acks fit on two cores."""
        return (50, 100) if self.quick else (50, 250)

    def cost_growth(self):
        """CPU µs per datagram as receivers grow (one lab of 101 hosts: every datagram is
        flooded to the same ports at each point) and as groups grow on one receiver."""
        rate_note = "acks on, {}/s, {:,} datagrams".format(*self.growth_pace())
        counts = (1, 10) if self.quick else (1, 10, 100)
        runs = 1 if self.quick else 3
        self.growth = {"receivers": [], "groups": [], "groups_note": None,
                       "caption": rate_note}
        self.lab = netlab.Lab(hosts=1 + max(counts))
        try:
            for count in counts:
                results = [self.growth_run(list(range(FIRST, FIRST + count)))
                           for _ in range(runs)]
                sender = median([r["sender"] for r in results])
                receiver = median([r["receiver"] for r in results])
                self.growth["receivers"].append((count, sender, receiver))
                acked = median([r["acked"] for r in results])
                late = median([r["late"] for r in results])
                self.row("8. cost growth", f"{count} receiver{'s' if count > 1 else ''}: CPU "
                         f"µs per datagram, sender / receiver (median of {runs}; {rate_note})",
                         "-", f"{sender:.1f} / {receiver:.1f}", "-", "-",
                         f"acks counted: {acked:.1f}%, late: {late:.1f}%")
        finally:
            self.stop_all()
            self.lab.close()
        sizes = [c for c, _, _ in self.growth["receivers"]]
        for side, index in (("sender", 1), ("receiver", 2)):
            words = growth(sizes, [p[index] for p in self.growth["receivers"]])
            self.row("8. cost growth", f"growth with receivers, {side} (largest ÷ smallest)",
                     "-", words, "-", "-", "")
        receiver_help = self.help_of("socket_multicast_receiver.py")
        sender_help = self.help_of("socket_multicast_sender.py")
        if not all(re.search(r"FIRST\+N|\[\+N\]", text) for text in (receiver_help,
                                                                     sender_help)):
            self.growth["groups_note"] = "the pair has no -g FIRST+N yet"
            self.notes.append("the measuring pair's --help does not mention FIRST+N: the "
                              "groups axis of section 8 is left out")
            return
        group_counts = (1, 100) if self.quick else (1, 100, 1000)
        self.lab = netlab.Lab(hosts=2)
        try:
            for count in group_counts:
                group = "239.1.0.0" + (f"+{count - 1}" if count > 1 else "")
                results = [self.growth_run([FIRST], ["-g", group], ["-g", group], count)
                           for _ in range(runs)]
                sender = median([r["sender"] for r in results])
                receiver = median([r["receiver"] for r in results])
                joins = [s.get("join_seconds") for r in results for s in r["summaries"]
                         if s.get("join_seconds") is not None]
                heard = [sum(1 for g in s.get("groups", []) if g.get("received"))
                         for r in results for s in r["summaries"]]
                self.growth["groups"].append((count, sender, receiver))
                self.row("8. cost growth", f"{count} group{'s' if count > 1 else ''} on one "
                         f"receiver: CPU µs per datagram, sender / receiver (median of {runs};"
                         f" {rate_note}, or one a group)", "-", f"{sender:.1f} / {receiver:.1f}",
                         "-", "-",
                         (f"joined in {1000 * median(joins):.1f} ms" if joins else "")
                         + (f"; {min(heard)} groups heard" if heard and count > 1 else ""))
        finally:
            self.stop_all()
            self.lab.close()
            self.lab = None
        sizes = [c for c, _, _ in self.growth["groups"]]
        for side, index in (("sender", 1), ("receiver", 2)):
            words = growth(sizes, [p[index] for p in self.growth["groups"]])
            self.row("8. cost growth", f"growth with groups, {side} (largest ÷ smallest)",
                     "-", words, "-", "-", "")

    # 9. The mesh

    def mesh(self):
        """socket_multicast_sender.py --mesh as the peers grow (6, 30, 100; quick: 6, 30):
        one peer a host, each N in a lab of its own. Once every peer has heard all the
        others, each peer's CPU, and the datagrams and bytes its namespace sends and
        receives, over a steady window; then each peer's summary (SIGTERM): its matrix,
        the loss it counted, its rounds, its round trips. The growth in words is of the
        points where the machine kept up: a point where it did not (the peers' CPU near
        all the cores, datagrams dropped, rounds late) measures the machine, not the mesh."""
        sizes = (6, 30) if self.quick else (6, 30, 100)
        window = 5 if self.quick else 10
        points = []  # (size, figures, why it is saturated or None)
        for size in sizes:
            print(f"measuring: mesh of {size} peers ...", file=sys.stderr, flush=True)
            self.lab = netlab.Lab(hosts=size)
            try:
                points.append((size, *self.mesh_run(size, window)))
            finally:
                self.stop_all()
                self.lab.close()
                self.lab = None
        kept = [(size, figures) for size, figures, saturated in points if not saturated]
        left_out = "; ".join(f"{size} peers left out: {saturated}"
                             for size, _, saturated in points if saturated)
        for name, key in (("CPU s a second per peer", "cpu"),
                          ("datagrams sent a second per peer", "datagrams out"),
                          ("bytes sent a second per peer", "bytes out"),
                          ("datagrams received a second per peer", "datagrams in"),
                          ("bytes received a second per peer", "bytes in")):
            values = [median(figures[key]) for _, figures, _ in points]
            steps = ", ".join(f"{a}→{b}: ~N^{math.log(y / x) / math.log(b / a):.2f}"
                              for a, b, x, y in zip(sizes, sizes[1:], values, values[1:])
                              if x and y)
            self.row("9. mesh", f"growth with peers, {name} (median), "
                     f"{' to '.join(str(size) for size, _ in kept)} peers", "-",
                     growth([size for size, _ in kept], [median(f[key]) for _, f in kept]),
                     "-", "-", f"each step as measured: {steps}"
                     + (f" ({left_out})" if left_out else ""))

    def mesh_neighbours(self, size):
        """Every host's neighbour table filled in advance: each other host's address and
        MAC as a permanent entry. One kernel keeps the neighbours of all its namespaces
        in one table, and its limit (net.ipv4.neigh.default.gc_thresh3, 1,024 by default)
        counts them all: 100 peers need 9,900, and past the limit a send fails with
        ENOBUFS, which UDP hides (SndbufErrors) — a peer that cannot even send its
        probes. Permanent entries are outside the limit (Linux 4.19 on); hosts of their
        own would each have a table of their own."""
        names = " ".join(self.lab.namespace(host) for host in range(size))
        listing = self.lab.shell(f"for n in {names}; do ip -n $n -br link show eth0; done")
        macs = [line.split()[2] for line in listing.stdout.splitlines()]
        for host in range(size):
            entries = "\n".join(f"neigh replace {self.lab.address(other)} lladdr "
                                 f"{macs[other]} nud permanent dev eth0"
                                 for other in range(size) if other != host)
            self.lab.shell(f"ip -n {self.lab.namespace(host)} -batch - <<'END'\n"
                           f"{entries}\nEND")

    def mesh_run(self, size, window, interval=1):
        """One mesh of size peers (host i runs the peer hI), measured; its rows. Returns
        each peer's figures a second over the window ({name: [one value a peer]}) and why
        the machine did not keep up (None if it did)."""
        self.mesh_neighbours(size)
        started = time.monotonic()
        peers = [self.start(host, support.python_script(
            "socket_multicast_sender.py", "--mesh", "-g", GROUP, "--name", f"h{host}",
            "--count", "3600", "--interval", str(interval), "--json"))
            for host in range(size)]  # --count: an end, should the bench not stop them

        def heard(peer):  # its {"type": "peer", ...} lines: one for each peer it heard
            return sum(line.startswith('{"type": "peer"') for line in list(peer.lines))

        full = support.wait_until(lambda: all(heard(p) >= size - 1 for p in peers),
                                  30 + size, interval=0.5)
        meshed = time.monotonic() - started
        time.sleep(2 * interval)  # the summaries' unicast copies end once the peers tell
        figures, totals = self.mesh_window(peers, window)
        stopped = time.time()
        for peer in peers:
            peer.signal(signal.SIGTERM)
        ends = self.mesh_summaries(peers, stopped, interval)
        label, what, cpu = "9. mesh", f"{size} peers", figures["cpu"]
        cells = size * (size - 1) * 2
        self.row(label, f"{what}: CPU s a second per peer, median / max ({window} s, "
                 f"--interval {interval})", "-", f"{median(cpu):.4f} / {max(cpu):.4f}", "-",
                 "-", f"all peers together: {sum(cpu):.2f} of {os.cpu_count()} cores")
        self.row(label, f"{what}: sent a second per peer, UDP datagrams / eth0 bytes "
                 "(median)", "-", f"{median(figures['datagrams out']):,.1f} / "
                 f"{median(figures['bytes out']):,.0f}", "-", "-",
                 f"received: {median(figures['datagrams in']):,.1f} datagrams / "
                 f"{median(figures['bytes in']):,.0f} bytes")
        self.row(label, f"{what}: the peers' summaries (SIGTERM)", "-",
                 f"{ends['complete']} of {size} with all {cells:,} cells", "-", "-",
                 (f"every peer heard all the others in {meshed:.1f} s" if full else
                  f"not every peer heard all the others in {meshed:.0f} s")
                 + f"; cells not told yet: {ends['untold']:,} of {size * cells:,}")
        lost, counted = ends["lost"], ends["counted"]
        self.row(label, f"{what}: probes lost (each peer's own count), drops, rounds, "
                 "round trips", "-", f"{100.0 * lost / counted if counted else 0:.2f}% "
                 f"({lost:,} of {counted:,})", "-", "-",
                 f"in the window: {totals['host drops']:,} datagrams dropped for socket "
                 f"buffers, {totals['send drops']:,} sends failed, {totals['backlog']:,} "
                 f"dropped by the CPUs' input queues (machine-wide); rounds behind "
                 f"schedule, most: {ends['late']}; rtt p50 {ends['rtt']:.2f} ms (median "
                 "of the peers')")
        saturated = ", ".join(reason for reason, found in (
            (f"CPU-bound ({sum(cpu):.2f} of {os.cpu_count()} cores)",
             sum(cpu) >= 0.9 * os.cpu_count()),
            (f"{totals['host drops']:,} datagrams dropped for socket buffers",
             totals["host drops"]),
            (f"rounds up to {ends['late']} behind", ends["late"] > 1)) if found)
        return figures, saturated or None

    def mesh_window(self, peers, window):
        """Over window seconds: each peer's CPU s a second and its namespace's counters a
        second ({name: [one value a peer]}), and the counters' totals, with the
        machine's input queues' drops ("backlog")."""
        def look():
            return [(process_cpu(p.process.pid), namespace_counters(p.process.pid))
                    for p in peers]

        before, began, backlog = look(), time.monotonic(), backlog_drops()
        time.sleep(window)
        after, seconds = look(), time.monotonic() - began
        figures, totals = {"cpu": []}, {"backlog": backlog_drops() - backlog}
        for (cpu0, counters0), (cpu1, counters1) in zip(before, after):
            if None in (cpu0, cpu1, counters0, counters1):
                continue  # a peer that ended
            figures["cpu"].append((cpu1 - cpu0) / seconds)
            for key in counters0:
                figures.setdefault(key, []).append((counters1[key] - counters0[key]) / seconds)
                totals[key] = totals.get(key, 0) + counters1[key] - counters0[key]
        return figures, totals

    def mesh_summaries(self, peers, stopped, interval):
        """Wait for the peers' ends (SIGTERM sent at the wall-clock time stopped) and read
        their summaries: how many hold the whole matrix, its cells not told yet, the
        probes each counted as lost of those it counted, the most rounds a peer was
        behind its schedule, and the median of the peers' round trips (p50)."""
        ends = {"complete": 0, "untold": 0, "lost": 0, "counted": 0, "late": 0}
        rtts, cells = [], len(peers) * (len(peers) - 1) * 2
        for peer in peers:
            peer.wait(300)
            events = {event["type"]: event for event in (
                json.loads(line) for line in peer.lines
                if line.startswith(('{"type": "start"', '{"type": "summary"')))}
            peer.lines.clear()  # a summary of 100 peers is 5 MB of JSON
            if not {"start", "summary"} <= set(events):
                continue  # no summary: it holds no matrix
            start, summary = events["start"], events["summary"]
            me, matrix = summary["address"], summary["matrix"]
            ends["complete"] += len(matrix) == cells
            ends["untold"] += sum(cell["received"] is None for cell in matrix)
            own = [cell for cell in matrix if cell["to"] == me and cell["received"] is not None]
            ends["lost"] += sum(cell["lost"] for cell in own)
            ends["counted"] += sum(cell["received"] + cell["lost"] for cell in own)
            due = int((stopped - start["time"]) / interval) + 1  # rounds on schedule
            ends["late"] = max(ends["late"], due - summary["rounds"])
            mine = [cell["rtt_p50_ms"] for cell in matrix
                    if cell["from"] == me and cell["rtt_p50_ms"] is not None]
            if mine:
                rtts.append(median(mine))
        ends["rtt"] = median(rtts) if rtts else 0.0
        return ends

    def plot(self, path):
        data = getattr(self, "growth", None)
        if not data:
            print("bench.py: no cost growth measured, no plot written", file=sys.stderr)
            return
        charts = []
        for axis, xlabel in (("receivers", "receivers"), ("groups", "groups on one receiver")):
            points = data[axis]
            series = [("sender", "#c0392b", [(c, s) for c, s, _ in points]),
                      ("receiver (median)", "#2471a3", [(c, r) for c, _, r in points])]
            charts.append((f"CPU per datagram as {axis} grow", xlabel,
                           series if points else [], data.get("groups_note")
                           if axis == "groups" else None))
        write_svg(path, f"tests/bench.py{' --quick' if self.quick else ''}, "
                  f"{time.strftime('%Y-%m-%d')}: the measuring pair, {data['caption']}",
                  charts)

    # The run

    def run(self):
        reason = netlab.probe()
        if reason:
            raise SystemExit(f"bench.py: cannot build the namespace lab: {reason}")
        # One path (two hosts) for the path measurements: on a bigger bridge every
        # datagram is also flooded to the idle ports, which costs both tools alike.
        many = 1 + (10 if self.quick else 200)
        sections = ((self.rtt, 2), (self.throughput, 2), (self.authentication, 2),
                    (self.board, 2), (self.forged_names, 3),
                    (self.many, many), (self.compose, 0), (self.cost, 2), (self.earlier, 2),
                    (self.offloads, 2), (self.cost_growth, 0), (self.mesh, 0))
        for section, hosts in sections:
            if self.only and section.__name__ not in self.only:
                continue
            print(f"measuring: {section.__name__} ...", file=sys.stderr, flush=True)
            self.lab = netlab.Lab(hosts=hosts) if hosts else None
            try:
                section()
            finally:
                self.stop_all()
                if self.lab:
                    self.lab.close()

    def table(self):
        cpu = "unknown CPU"
        if os.path.exists("/proc/cpuinfo"):
            with open("/proc/cpuinfo") as info:
                cpu = next((line.split(":", 1)[1].strip() for line in info
                            if line.startswith("model name")), cpu)
        lines = [f"Measured {time.strftime('%Y-%m-%d')}{' (quick mode)' if self.quick else ''}"
                 f" on {os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
                 f"Python {platform.python_version()}; one sender and receivers in network "
                 "namespaces on one bridge.", "",
                 "| measure | what | textbook pair | socket pair | reference | "
                 "socket ÷ reference | goal |",
                 "| --- | --- | --- | --- | --- | --- | --- |"]
        lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in self.rows]
        lines += [f"\nNote: {note}" for note in self.notes]
        return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small counts, about a minute (as CI runs it)")
    parser.add_argument("--only", metavar="SECTION[,SECTION]", default="",
                        help="run only these sections: rtt, throughput, authentication, "
                        "board, forged_names, many, compose, cost, earlier, offloads, "
                        "cost_growth, mesh")
    parser.add_argument("--plot", metavar="PATH",
                        help="write the cost growth chart (section 8) as SVG to PATH, "
                        "e.g. docs/cost.svg (default: no chart)")
    args = parser.parse_args(argv)
    bench = Bench(args.quick, [name for name in args.only.split(",") if name])
    bench.run()
    print(bench.table())
    if args.plot:
        bench.plot(args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
