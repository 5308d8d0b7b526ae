#!/usr/bin/env python3
"""An IGMP querier: what keeps a snooping switch's table of members alive.

    python3 querier.py --interface eth0 [--interval 5] [--version 2|3]

A switch that snoops IGMP sends a group's datagrams only to the ports where a
member answered; it learns them from the members' reports. Hosts report when
they join, and after that only when asked: a querier asks. Every INTERVAL
seconds it sends a general query ("which groups do you want?") to 224.0.0.1,
the all-hosts group, with a TTL of 1 (it is for this link only) and the IP
Router Alert option (RFC 2113: routers and switches look inside). Each host
that is a member of a group answers with a report within the query's maximum
response time, and the switch renews that group's entry on the host's port. With
no querier the entries time out (the membership interval), and the switch
either floods the group to every port or, with unregistered flooding off,
sends it to nobody.

One querier per link: RFC 2236 (IGMPv2, 3) and RFC 3376 (IGMPv3, 6.6.2) elect
the one with the lowest IP address. This one listens for other queries on the
interface and falls silent while a querier with a lower address is heard, for
the Other Querier Present Interval (robustness 2 x interval + half the maximum
response time); once that passes with no query from it, it asks again.

Standard library only; it needs CAP_NET_RAW (raw sockets) and nothing else.
Ctrl-C or SIGTERM stops it at once with a summary.
"""

import argparse
import fcntl
import os
import select
import signal
import socket
import struct
import sys
import time

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)  # Linux's number
SIOCGIFADDR = 0x8915  # Linux's ioctl: an interface's IPv4 address
IFF_MULTICAST = 0x1000  # Linux's interface flag: the interface can do multicast
ALL_HOSTS = "224.0.0.1"  # every multicast host on the link is a member (RFC 1112)
IGMP_QUERY = 0x11  # a Membership Query, in IGMPv1, v2 and v3 alike
ROUTER_ALERT = bytes([0x94, 0x04, 0, 0])  # IP option 148, 4 bytes, value 0 (RFC 2113)
ROBUSTNESS = 2  # RFC 2236 and 3376's default: how many lost queries a link may have
DEFAULT_INTERVAL = 5.0  # seconds: RFC 2236's 125 s is far longer than a lesson's step


def checksum(data):
    """The Internet checksum (RFC 1071): the one's complement of the one's complement
    sum of the 16-bit words."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def max_response(interval):
    """The hosts' time to answer, in tenths of a second: RFC 2236's default of 10 s,
    but below the interval (half of it), so each round of answers ends before the next."""
    return max(1, min(100, int(interval * 10 / 2)))


def code_of(value):
    """A number as IGMPv3 writes it in one byte (RFC 3376, 4.1.1 and 4.1.7): as itself
    below 128, else as a float: 1, 3 bits of exponent, 4 of mantissa."""
    if value < 128:
        return value
    for exponent in range(8):
        mantissa = (value >> (exponent + 3)) - 16
        if mantissa < 16:
            return 0x80 | exponent << 4 | max(0, mantissa)
    return 0xFF


def general_query(version, interval):
    """The IGMP message of a general query (the IP header is the kernel's)."""
    tenths = max_response(interval)
    if version == 2:
        # RFC 2236, 2: type, max response time (tenths of a second), checksum, group
        # (0.0.0.0: a general query, about every group). 8 bytes.
        message = struct.pack("!BBH4s", IGMP_QUERY, tenths, 0, bytes(4))
    else:
        # RFC 3376, 4.1: the same 8 bytes (max response as a code), then: 4 bits
        # reserved, S (0: routers do process it), QRV (the querier's robustness),
        # QQIC (its interval in seconds, as a code) and the number of sources (0).
        message = struct.pack("!BBH4sBBH", IGMP_QUERY, code_of(tenths), 0, bytes(4),
                              ROBUSTNESS, code_of(int(interval)), 0)
    return message[:2] + struct.pack("!H", checksum(message)) + message[4:]


def interface_address(sock, name):
    """The interface's IPv4 address (the kernel's SIOCGIFADDR), or None."""
    try:
        answer = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()))
    except OSError:
        return None
    return socket.inet_ntoa(answer[20:24])


def check_interface(name):
    """Why the interface cannot have a querier, or None if it can."""
    try:
        socket.if_nametoindex(name)
        with open(f"/sys/class/net/{name}/flags") as flags:
            multicast = int(flags.read(), 16) & IFF_MULTICAST
    except OSError:
        return f"there is no interface {name}"
    if not multicast:
        return f"{name} cannot do multicast (no MULTICAST flag: ip link set {name} multicast on)"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        if interface_address(sock, name) is None:
            return f"{name} has no IPv4 address, and a query must come from one"
    return None


def open_socket(name):
    """One raw IGMP socket: it sends our queries and hears everyone's on the interface."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
    # SO_BINDTODEVICE: hear only what came in on this interface, the link we query.
    sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, name.encode())
    # IP_MULTICAST_IF (struct ip_mreqn: no group, no address, the interface's index):
    # send out of this interface, from its address, whatever the routing table says.
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                    struct.pack("4s4si", bytes(4), bytes(4), socket.if_nametoindex(name)))
    # IP_MULTICAST_TTL 1: a query is for this link; no router may pass it on.
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    # IP_MULTICAST_LOOP 0: no copy of our own queries for this host; we hear others only.
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    # IP_TOS 0xc0: precedence "Internetwork Control", as RFC 3376 (4) asks of IGMP.
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0xC0)
    # IP_OPTIONS: the Router Alert option in each datagram's IP header (RFC 2236 and
    # RFC 3376 ask for it): "look inside, even if the group is not yours".
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, ROUTER_ALERT)
    sock.setblocking(False)
    return sock


def heard_query(packet):
    """The source address of an IGMP query (a raw socket's datagram, IP header first),
    or None if it is something else (a report, a leave)."""
    header_length = (packet[0] & 0x0F) * 4
    if len(packet) < header_length + 8 or packet[header_length] != IGMP_QUERY:
        return None
    return socket.inet_ntoa(packet[12:16])


def as_number(address):
    return struct.unpack("!I", socket.inet_aton(address))[0]


class Querier:
    """Sends the queries, and keeps quiet while a lower address queries the link."""

    def __init__(self, name, interval, version):
        self.name, self.interval, self.version = name, interval, version
        self.sock = open_socket(name)
        self.address = interface_address(self.sock, name)
        self.query = general_query(version, interval)
        # RFC 2236, 8.5 (RFC 3376, 8.5): how long another querier may be silent before
        # we take over: robustness x query interval + half the query response interval.
        self.other_present = ROBUSTNESS * interval + max_response(interval) / 20
        self.other = None  # the lower address we defer to, while it queries
        self.other_until = 0.0
        self.outranked = set()  # the higher addresses we heard query, and outrank
        self.sent = self.heard = 0

    def send(self):
        self.sock.sendto(self.query, (ALL_HOSTS, 0))
        self.sent += 1
        print(f"querier: IGMPv{self.version} general query {self.sent} from {self.address} "
              f"to {ALL_HOSTS} on {self.name}, ttl 1, answers within "
              f"{max_response(self.interval) / 10:g} s; next in {self.interval:g} s",
              flush=True)

    def hear(self, now):
        """Read what came in; defer to a lower address that queries."""
        while True:
            try:
                packet = self.sock.recv(65535)
            except BlockingIOError:
                return
            source = heard_query(packet)
            if source is None or source == self.address:
                continue
            self.heard += 1
            if as_number(source) > as_number(self.address):
                if source not in self.outranked:  # a line the first time only
                    self.outranked.add(source)
                    print(f"querier: heard a query from {source}, a higher address than "
                          f"ours ({self.address}): we stay the querier", flush=True)
                continue
            if self.other is None:
                print(f"querier: heard a query from {source}, a lower address than ours "
                      f"({self.address}): it is the querier; we fall silent while it is heard "
                      f"(for {self.other_present:g} s after its last query)", flush=True)
            self.other, self.other_until = source, now + self.other_present

    def run(self, wake):
        """Query until a signal writes to wake."""
        print(f"querier: on {self.name} ({self.address}): an IGMPv{self.version} general "
              f"query every {self.interval:g} s; a lower address that queries wins",
              flush=True)
        next_query = time.monotonic()
        while True:
            now = time.monotonic()
            if self.other is not None and now >= self.other_until:
                print(f"querier: no query from {self.other} for {self.other_present:g} s: "
                      f"we are the querier again", flush=True)
                self.other, next_query = None, now
            if self.other is None and now >= next_query:
                self.send()
                next_query = now + self.interval
            deadline = self.other_until if self.other is not None else next_query
            ready, _, _ = select.select([self.sock, wake], [], [], max(0.0, deadline - now))
            if wake in ready:
                return
            if self.sock in ready:
                self.hear(time.monotonic())


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
                        help="the interface whose link it queries, e.g. eth0")
    parser.add_argument("--interval", type=seconds, metavar="SECONDS",
                        default=os.environ.get("MULTICAST_QUERY_INTERVAL",
                                               str(DEFAULT_INTERVAL)),
                        help="seconds between queries (default: %(default)s; "
                             "MULTICAST_QUERY_INTERVAL)")
    parser.add_argument("--version", type=int, choices=(2, 3), default=2,
                        help="IGMP version of the queries (default: %(default)s)")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    reason = check_interface(args.interface)
    if reason:
        parser.error(reason)
    wake, signalled = socket.socketpair()
    signalled.setblocking(False)
    signal.set_wakeup_fd(signalled.fileno())  # SIGINT and SIGTERM write a byte to `wake`
    signal.signal(signal.SIGINT, lambda signum, frame: None)  # instead of KeyboardInterrupt
    signal.signal(signal.SIGTERM, lambda signum, frame: None)  # instead of dying at once
    try:
        querier = Querier(args.interface, args.interval, args.version)
        querier.run(wake)
    except OSError as error:
        print(f"querier: {error.strerror or error} on {args.interface}"
              f"{' (raw sockets need CAP_NET_RAW)' if error.errno == 1 else ''}",
              file=sys.stderr)
        return 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # from here on no signal cuts the exit short
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(f"querier: stopped: {querier.sent} quer{'y' if querier.sent == 1 else 'ies'} sent, "
          f"{querier.heard} heard from others", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
