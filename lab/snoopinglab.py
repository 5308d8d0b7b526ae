#!/usr/bin/env python3
"""The snooping switch and its querier, in network namespaces: a field failure to watch.

    sudo python3 lab/snoopinglab.py

A Linux bridge that snoops IGMP (multicast_snooping 1), with no querier of its
own, and hosts on it:

    sender     10.78.0.1  sends a datagram to 224.10.10.10:10000 ten times a second
    member     10.78.0.2  joins the group
    bystander  10.78.0.3  joins nothing
    querier    10.78.0.4  runs lab/querier.py when the timeline says so
    rival      10.78.0.5  a second querier (for the tests of the election)

The bridge's timers are shortened from minutes to seconds (the membership
interval, 260 s by default, to 5 s; the time it trusts a querier it heard, 255 s,
to 12 s). Each line of the timeline is one interval: how many of the group's
datagrams reached the member's and the bystander's network stack, and how many
IGMP queries reached the member (nftables counters on each host, whatever the
host then does with them), and the ports the bridge lists as the group's members
(`bridge mdb show`). Five steps: no querier, the querier, the querier gone, then
unregistered flooding off (as on switches that prune unknown groups) without and
with the querier. Everything it made is removed at the end.
Needs root, iproute2 and nftables (nft).
"""

import os
import signal
import subprocess
import sys
import time

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GROUP, PORT = "224.10.10.10", 10000
SUBNET = "10.78.0"
HOSTS = ("sender", "member", "bystander", "querier", "rival")  # rival: a second querier
MEMBERSHIP = 5  # seconds a port stays a member with no report (the bridge's default: 260)
OTHER_QUERIER = 12  # seconds the bridge trusts a querier it heard (default: 255)
QUERY_INTERVAL = 2  # seconds between the lab querier's queries
STEP = 2  # seconds per line of the timeline

# Ten datagrams a second to the group, TTL 1, out of eth0.
SENDER = f"""
import socket, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
while True:
    sock.sendto(b"lesson", ("{GROUP}", {PORT}))
    time.sleep(0.1)
"""
# Join the group on eth0 and stay; the kernel reports the membership, and answers queries.
MEMBER = f"""
import socket
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("{GROUP}", {PORT}))
sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                socket.inet_aton("{GROUP}") + socket.inet_aton("0.0.0.0"))
while True:
    sock.recv(2048)
"""


def run(argv, check=True, timeout=30):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip()}")
    return result


class SnoopingLab:
    """The bridge in a namespace of its own (never this machine's root namespace, where
    dockerd drops forwarded frames) and the hosts; close() removes them."""

    def __init__(self, tag=None, membership=MEMBERSHIP, other_querier=OTHER_QUERIER):
        self.tag = tag or f"snoop{os.getpid()}"
        self.membership, self.other_querier = membership, other_querier
        self.processes = {}
        try:
            self.build()
        except BaseException:
            self.close()
            raise

    def ns(self, host):
        return f"{self.tag}-{host}"

    def address(self, host):
        return f"{SUBNET}.{HOSTS.index(host) + 1}"

    def build(self):
        switch = self.ns("switch")
        lines = [f"ip netns add {switch}",
                 f"ip -n {switch} link add br0 type bridge",
                 # Snooping on, the bridge's own querier off; its timers are in
                 # hundredths of a second.
                 f"ip -n {switch} link set br0 type bridge mcast_snooping 1 mcast_querier 0"
                 f" mcast_membership_interval {self.membership * 100}"
                 f" mcast_querier_interval {self.other_querier * 100}",
                 f"ip -n {switch} link set br0 up"]
        for host in HOSTS:
            port = f"p-{host}"
            lines += [f"ip netns add {self.ns(host)}",
                      f"ip link add {port} netns {switch} type veth peer name eth0 "
                      f"netns {self.ns(host)}",
                      f"ip -n {switch} link set {port} master br0 up",
                      f"ip -n {self.ns(host)} link set lo up",
                      f"ip -n {self.ns(host)} addr add {self.address(host)}/24 dev eth0",
                      f"ip -n {self.ns(host)} link set eth0 up",
                      f"ip -n {self.ns(host)} route add default dev eth0"]
        for host in ("member", "bystander"):
            # Two counters in the host's nftables, before it decides what to keep: the
            # group's datagrams, and the IGMP queries, that reached it.
            lines.append(f"ip netns exec {self.ns(host)} nft -f - <<'EOF'\n"
                         f"table ip lab {{\n  counter arrivals {{\n  }}\n"
                         f"  counter queries {{\n  }}\n"
                         f"  chain arrive {{\n    type filter hook prerouting priority 0;\n"
                         f"    ip daddr {GROUP} udp dport {PORT} counter name arrivals\n"
                         f"    igmp type membership-query counter name queries\n"
                         f"  }}\n}}\nEOF")
        result = subprocess.run(["sh", "-e", "-c", "\n".join(lines)], capture_output=True,
                                text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"building the lab: {result.stderr.strip()}")

    def set_flood(self, on):
        """Unregistered flooding on or off on every port: whether the bridge sends a
        group it has no member for to every port (on, Linux's default) or to none."""
        for host in HOSTS:
            run(["bridge", "-n", self.ns("switch"), "link", "set", "dev", f"p-{host}",
                 "mcast_flood", "on" if on else "off"])

    def command(self, host, argv):
        return ["ip", "netns", "exec", self.ns(host), *argv]

    def start(self, host, argv):
        self.processes[host] = subprocess.Popen(
            self.command(host, argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        return self.processes[host]

    def start_sender(self):
        return self.start("sender", [sys.executable, "-c", SENDER])

    def start_member(self):
        return self.start("member", [sys.executable, "-c", MEMBER])

    def start_querier(self, host="querier", interval=QUERY_INTERVAL, version=2):
        return self.start(host, [sys.executable, os.path.join(PROJECT, "lab", "querier.py"),
                                 "--interface", "eth0", "--interval", str(interval),
                                 "--version", str(version)])

    def stop(self, host):
        """SIGTERM to host's process; its output."""
        process = self.processes.pop(host)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
        return output

    def arrived(self, host, counter="arrivals"):
        """How many of the group's datagrams (or, counter "queries", IGMP queries)
        reached host's network stack so far."""
        listing = run(self.command(host, ["nft", "list", "counter", "ip", "lab", counter]))
        words = listing.stdout.split()
        return int(words[words.index("packets") + 1])

    def mdb(self):
        """The bridge's table of members, one entry per line, as `bridge mdb show` says."""
        table = run(["bridge", "-n", self.ns("switch"), "mdb", "show"]).stdout
        return [line.strip() for line in table.splitlines() if line.strip()]

    def member_ports(self):
        """The ports the bridge has as members of the group."""
        return [line.split(" port ")[1].split()[0] for line in self.mdb()
                if f" grp {GROUP} " in f"{line} " and " port " in line]

    def close(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.communicate()
        self.processes = {}
        for host in (*HOSTS, "switch"):
            run(["ip", "netns", "del", self.ns(host)], check=False)


def timeline(lab, seconds, title):
    """Print a line per STEP: what the member and the bystander got, the queries that
    reached the member, and the bridge's table."""
    print(f"\n{title}")
    print("  time  member  bystander  queries  bridge's members of the group")
    counters = (("member", "arrivals"), ("bystander", "arrivals"), ("member", "queries"))
    start = time.monotonic()
    last = [lab.arrived(host, counter) for host, counter in counters]
    for step in range(1, seconds // STEP + 1):
        time.sleep(max(0.0, start + step * STEP - time.monotonic()))
        now = [lab.arrived(host, counter) for host, counter in counters]
        member, bystander, queries = (new - old for new, old in zip(now, last))
        print(f"  {step * STEP:3d} s  {member:6d}  {bystander:9d}  {queries:7d}  "
              f"{', '.join(lab.member_ports()) or 'none'}", flush=True)
        last = now


def lesson():
    try:
        lab = SnoopingLab()
    except (RuntimeError, OSError) as error:  # not root, no iproute2, no nft, ...
        print(f"snoopinglab: {error}", file=sys.stderr)
        return 1
    try:
        print(f"a snooping bridge without a querier of its own; membership interval "
              f"{MEMBERSHIP} s, other-querier interval {OTHER_QUERIER} s")
        print(f"each line: the group's datagrams that reached each host in {STEP} s "
              f"(about {STEP * 10} sent)")
        lab.start_sender()
        lab.start_member()
        timeline(lab, 6, "1. no querier: the bridge floods the group to every port")
        lab.start_querier()
        timeline(lab, 8, f"2. lab/querier.py starts: a query every {QUERY_INTERVAL} s")
        lab.stop("querier")
        timeline(lab, 18, "3. the querier stops")
        lab.set_flood(False)
        lab.stop("member")
        lab.start_member()
        timeline(lab, 6, "4. unregistered flooding off on every port; the member joins "
                         "again; no querier")
        lab.start_querier()
        timeline(lab, 12, "5. flooding off, and the querier starts again")
    finally:
        lab.close()
    return 0


if __name__ == "__main__":
    sys.exit(lesson())
