#!/usr/bin/env python3
"""A bystander: a host that joined no group, counting the group's datagrams that
reach it anyway.

    python3 bystander.py --interface eth0 [--every 5]

A switch (or a Linux bridge, as Docker's networks are) that snoops IGMP sends a
group's datagrams only to the ports of its members, but only while it hears a
querier; without one it floods them to every port. This host joined nothing,
so whatever of the group reaches it was flooded. Once per interval it says how
many arrived, and how many IGMP queries it heard (queries go to every host).

It counts with a packet socket (AF_PACKET): it sees each frame the interface
received, before the kernel's IP layer throws away a group nobody here joined.
That needs CAP_NET_RAW and nothing else. Ctrl-C or SIGTERM stops it at once with
a one-line summary.
"""

import argparse
import os
import select
import signal
import socket
import struct
import sys
import time

ETH_P_IP = 0x0800  # the Ethernet type of IPv4
PACKET_OUTGOING = 4  # a packet socket's "sent by this host", not received
IGMP_QUERY = 0x11
DEFAULT_EVERY = 5.0  # seconds: the querier's default interval


def classify(packet, group, port):
    """'datagram' for a UDP datagram to the group and port, 'query' for an IGMP
    query, else None. packet is an IPv4 packet, header first."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    header_length = (packet[0] & 0x0F) * 4
    protocol, destination = packet[9], packet[16:20]
    if protocol == socket.IPPROTO_IGMP and packet[header_length:header_length + 1] == \
            bytes([IGMP_QUERY]):
        return "query"
    if protocol == socket.IPPROTO_UDP and destination == group and \
            packet[header_length + 2:header_length + 4] == struct.pack("!H", port):
        return "datagram"
    return None


def verdict(datagrams, queries, queried):
    """What this interval's counts mean, in a student's words. queried: the how-many-th
    interval this is since a querier's first query (0: no querier heard lately)."""
    if datagrams and queries and queried >= 3:
        return ("flooded although a querier is heard: this bridge does not snoop "
                "(on the host: cat /sys/class/net/BRIDGE/bridge/multicast_snooping)")
    if datagrams and queried and not queries:
        return ("flooded again: no query since the last interval, and the bridge's timer "
                "for the querier it heard ran out")
    if datagrams and queried:
        return ("flooded until the querier was heard: the bridge trusts its table only "
                "once the members had the query's response time to answer")
    if datagrams:
        return "flooded to everyone: the bridge hears no querier, so it sends the group " \
               "to every port"
    if queries or queried:
        return "only to members: a querier is heard, and the bridge sends the group " \
               "only to the ports that answered it"
    return ("none reached me, and no query: the bridge still trusts a querier it heard "
            "(a Linux bridge for 255 s after its last query), or nothing is sent")


class Bystander:
    def __init__(self, interface, group, port, every):
        self.interface, self.every = interface, every
        self.group, self.port = socket.inet_aton(group), port
        self.group_text = f"{group} port {port}"
        # A packet socket for IPv4 frames (ETH_P_IP) on the one interface, as
        # datagrams: the kernel strips the Ethernet header and tells which way it went.
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        self.sock.bind((interface, ETH_P_IP))
        self.total = {"datagram": 0, "query": 0}
        self.intervals = 0

    def read(self, counts):
        while True:
            try:
                packet, address = self.sock.recvfrom(65535, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            if address[2] == PACKET_OUTGOING:
                continue
            kind = classify(packet, self.group, self.port)
            if kind:
                counts[kind] += 1
                self.total[kind] += 1

    def run(self, wake):
        print(f"bystander: on {self.interface}, a member of no group; counting what "
              f"reaches it of {self.group_text}, and the IGMP queries, every "
              f"{self.every:g} s", flush=True)
        started = time.monotonic()
        querier_since = None  # the interval of the first query, while queries come
        silent = 0  # intervals since the last query
        while True:
            counts = {"datagram": 0, "query": 0}
            end = started + (self.intervals + 1) * self.every
            while time.monotonic() < end:
                ready, _, _ = select.select([self.sock, wake], [], [],
                                            max(0.0, end - time.monotonic()))
                if wake in ready:
                    return
                self.read(counts)
            self.intervals += 1
            datagrams, queries = counts["datagram"], counts["query"]
            # A querier is there from its first query until two intervals pass without
            # one (one may go by: a query late by a little falls into the next).
            silent = 0 if queries else silent + 1
            if queries and querier_since is None:
                querier_since = self.intervals
            elif silent >= 2:
                querier_since = None
            queried = 0 if querier_since is None else self.intervals - querier_since + 1
            print(f"bystander: {self.intervals * self.every:g} s: {datagrams} datagram"
                  f"{'' if datagrams == 1 else 's'} of the group reached me, "
                  f"{queries} quer{'y' if queries == 1 else 'ies'} heard: "
                  f"{verdict(datagrams, queries, queried)}", flush=True)


# ---- block labcli: generated from blocks/labcli.py (python3 blocks/sync.py) ----
# The lab tools' command line: one-line errors, and intervals in seconds.
def seconds(text):
    """An interval in seconds, from 1 to 3600 (an argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 1 to 3600")
    return value


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr, exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")
# ---- end of block labcli ----


def build_parser():
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-I", "--interface", required=True, metavar="NAME",
                        help="the interface to count on, e.g. eth0")
    parser.add_argument("--every", type=seconds, metavar="SECONDS",
                        default=os.environ.get("MULTICAST_QUERY_INTERVAL", str(DEFAULT_EVERY)),
                        help="seconds per line (default: %(default)s; MULTICAST_QUERY_INTERVAL)")
    parser.add_argument("--group", default=os.environ.get("MULTICAST_GROUP", "224.10.10.10"),
                        help="the group (default: %(default)s; MULTICAST_GROUP)")
    parser.add_argument("--port", type=int, default=os.environ.get("MULTICAST_PORT", "10000"),
                        help="its UDP port (default: %(default)s; MULTICAST_PORT)")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        socket.if_nametoindex(args.interface)
    except OSError:
        parser.error(f"there is no interface {args.interface}")
    try:
        if not 224 <= socket.inet_aton(args.group)[0] <= 239:
            parser.error(f"{args.group} is no IPv4 multicast group (224.0.0.0 to 239.255.255.255)")
    except OSError:
        parser.error(f"{args.group} is no IPv4 address")
    wake, signalled = socket.socketpair()
    signalled.setblocking(False)
    signal.set_wakeup_fd(signalled.fileno())  # SIGINT and SIGTERM write a byte to `wake`
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        bystander = Bystander(args.interface, args.group, args.port, args.every)
        bystander.run(wake)
    except OSError as error:
        print(f"bystander: {error.strerror or error} on {args.interface}"
              f"{' (packet sockets need CAP_NET_RAW)' if error.errno == 1 else ''}",
              file=sys.stderr)
        return 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(f"bystander: stopped: {bystander.total['datagram']} datagrams of the group and "
          f"{bystander.total['query']} queries reached me in {bystander.intervals} "
          f"interval{'' if bystander.intervals == 1 else 's'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
