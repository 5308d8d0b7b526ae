#!/usr/bin/env python3
"""A multicast router in user space, for kernels that cannot route multicast.

    python3 router.py NEAR FAR GROUP [--both-ways]
    e.g.  python3 router.py eth1 eth0 224.10.10.10

It does by hand what a kernel's multicast router does to each datagram of the
group (RFC 1812, 5.3.1): it takes the datagram on the NEAR interface, forwards
it only if it arrived with a TTL above 1, writes TTL - 1, and sends it out of
the FAR interface with the sender's source address kept, so that a far
receiver answers the sender itself. A datagram whose TTL runs out is dropped
without a word to its sender: routers send no ICMP error about multicast.
With --both-ways it does the same from FAR to NEAR too, as two static routes
would (lab/router.sh asks for it: the routed lab's mesh has peers on both sides).

Where it differs from the kernel's router: it checks no reverse path (anything
of the group arriving on NEAR is forwarded), its one output interface is fixed
(as a static route of smcroute's is), and it joins the group on NEAR as any
member would, so a snooping switch there sees a member. Standard library only;
it needs CAP_NET_RAW (raw sockets). Ctrl-C or SIGTERM stops it with a summary.
"""

import argparse
import collections
import functools
import selectors
import signal
import socket
import struct
import sys
import time

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)  # Linux's number
IP_HEADER = struct.Struct("!BBHHHBBH4s4s")  # a header without options: 20 bytes
UDP_HEADER = struct.Struct("!HHHH")  # source port, destination port, length, checksum
MORE_FRAGMENTS, FRAGMENT_OFFSET = 0x2000, 0x1FFF


def open_sockets(near, far, group):
    """The socket that hears the group on NEAR, and the one that sends on FAR."""
    hear = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
    # A raw UDP socket receives every UDP datagram this host takes in, IP header
    # included. SO_BINDTODEVICE: only those that came in on NEAR, so nothing this
    # router sends out of FAR (or hears there) can come back in and loop.
    hear.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, near.encode())
    # IP_ADD_MEMBERSHIP: join the group on NEAR (struct ip_mreqn: group, no address,
    # the interface's index). The kernel takes in a group's datagrams only once joined.
    hear.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack(
        "4s4si", socket.inet_aton(group), bytes(4), socket.if_nametoindex(near)))
    # IPPROTO_RAW: we write the IP header ourselves (IP_HDRINCL), source address and
    # TTL included; the kernel fills in only the total length and the header's checksum.
    send = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    # SO_BINDTODEVICE: out of FAR, whatever the routing table says about the group.
    send.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, far.encode())
    # IP_MULTICAST_LOOP 0: no copy of what we send for this host's own sockets.
    send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    return hear, send


def checksum(data):
    """The Internet checksum (RFC 1071): the one's complement of the one's complement
    sum of the 16-bit words."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def route(packet, group, far_mtu):
    """What a router does with one datagram: (the datagram to send, or None; why)."""
    if len(packet) < IP_HEADER.size + UDP_HEADER.size:
        return None, "too short for an IP and a UDP header"
    (version_and_length, tos, total_length, identification, fragment, ttl, protocol,
     _, source, destination) = IP_HEADER.unpack_from(packet)
    if destination != group:
        return None, "not the group"  # any other UDP datagram this host takes in
    if is_this_host(socket.inet_ntoa(source)):
        return None, "sent by this router"
    if version_and_length != 0x45:
        return None, "IP options (this router forwards plain 20-byte headers only)"
    if fragment & (MORE_FRAGMENTS | FRAGMENT_OFFSET):
        return None, "a fragment (the kernel hands whole datagrams to a raw socket)"
    if total_length != len(packet):
        return None, f"its header says {total_length} bytes, {len(packet)} arrived"
    # The rule of every multicast router: forward only a TTL above the interface's
    # threshold (1 here, as in the kernel), and lower it by one.
    if ttl <= 1:
        return None, f"ttl {ttl}: it may not cross a router"
    if len(packet) > far_mtu:
        return None, f"{len(packet)} bytes, more than the far side's MTU of {far_mtu}"
    header = IP_HEADER.pack(version_and_length, tos, total_length, identification,
                            fragment, ttl - 1, protocol, 0, source, destination)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    # The UDP checksum covers no TTL, so a router never has to touch it. But a datagram
    # read from a raw socket on the sender's own machine (or over a veth, as between
    # containers) may carry only the start of its checksum: the sender's kernel left
    # the rest to the network card, which a veth does not have. Computed here in full,
    # or the far host drops it (UdpInCsumErrors). 0 means "no checksum" in IPv4.
    udp = packet[20:]
    source_port, destination_port, length, udp_checksum = UDP_HEADER.unpack_from(udp)
    if length != len(udp):
        return None, f"its UDP header says {length} bytes, {len(udp)} arrived"
    if udp_checksum != 0:
        pseudo_header = source + destination + struct.pack("!BBH", 0, socket.IPPROTO_UDP,
                                                            length)
        udp_checksum = checksum(pseudo_header + udp[:6] + b"\0\0" + udp[8:]) or 0xFFFF
    return header + udp[:6] + struct.pack("!H", udp_checksum) + udp[8:], "forwarded"


@functools.lru_cache(maxsize=1024)
def is_this_host(address):
    """Whether address is one of this host's own: binding to it works only then."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True


class DecisionLog:
    """A line for each decision, at most `rate` lines a second; the rest are counted."""

    def __init__(self, rate):
        self.rate = rate
        self.second_started = time.monotonic()
        self.shown = self.not_shown = 0
        self.totals = collections.Counter()

    def decided(self, why, line):
        self.totals["forwarded" if why == "forwarded" else "dropped"] += 1
        self.tick()
        if self.shown < self.rate:
            self.shown += 1
            print(line, flush=True)
        else:
            self.not_shown += 1

    def tick(self, last=False):
        """Start a new second when one has passed (or on the last call), saying how
        many lines were not shown."""
        now = time.monotonic()
        if last or now - self.second_started >= 1.0:
            if self.not_shown:
                print(f"router: {self.not_shown} more decisions in that second, not shown",
                      flush=True)
            self.second_started, self.shown, self.not_shown = now, 0, 0


Way = collections.namedtuple("Way", "near far send far_mtu")  # one direction forwarded


def forward(ways, group, log):
    """Route the group's datagrams on each (in, out) pair of interfaces until stopped."""
    selector = selectors.DefaultSelector()
    for near, far in ways:
        hear, send = open_sockets(near, far, group)
        with open(f"/sys/class/net/{far}/mtu") as mtu_file:
            far_mtu = int(mtu_file.read())
        selector.register(hear, selectors.EVENT_READ, Way(near, far, send, far_mtu))
        print(f"router: in user space: forwarding {group} from {near} to {far} "
              f"(MTU {far_mtu}): ttl 2 and above, lowered by one", flush=True)
    while True:
        ready = selector.select(1.0)  # wake once a second to say how many lines were not shown
        log.tick()
        for key, _ in ready:
            forward_one(key.fileobj.recv(65535), group, key.data, log)


def forward_one(packet, group, way, log):
    """Route one datagram taken in on way.near out of way.far, or drop it, saying why."""
    datagram, why = route(packet, socket.inet_aton(group), way.far_mtu)
    if why == "not the group":
        return
    ttl, what = packet[8], describe(packet)
    if datagram is None:
        log.decided(why, f"router: dropped {what}: {why}")
        return
    try:
        way.send.sendto(datagram, (group, 0))
    except OSError as error:
        log.decided("send failed", f"router: dropped {what}: {way.far} refused it: {error}")
        return
    log.decided(why, f"router: forwarded {what}, ttl {ttl} -> {ttl - 1}, "
                     f"{way.near} -> {way.far}")


def describe(packet):
    """source:port > group:port, and the size of the data, for the log."""
    header_length = (packet[0] & 0x0F) * 4
    source, group = socket.inet_ntoa(packet[12:16]), socket.inet_ntoa(packet[16:20])
    if len(packet) < header_length + UDP_HEADER.size:
        return f"{source} > {group}, {len(packet)} bytes"
    source_port, group_port = struct.unpack_from("!HH", packet, header_length)
    return (f"{source}:{source_port} > {group}:{group_port}, "
            f"{len(packet) - header_length - UDP_HEADER.size} bytes of data")


def stop(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("near", help="the interface the group's datagrams come in on")
    parser.add_argument("far", help="the interface they are sent out of")
    parser.add_argument("group", help="the IPv4 multicast group, e.g. 224.10.10.10")
    parser.add_argument("--both-ways", action="store_true",
                        help="also forward the group from FAR to NEAR")
    parser.add_argument("--log-rate", type=int, default=10, metavar="LINES",
                        help="at most this many decision lines a second (default: 10)")
    args = parser.parse_args(argv)
    try:
        if not socket.inet_aton(args.group)[0] in range(224, 240):
            parser.error(f"{args.group} is not an IPv4 multicast group (224.0.0.0/4)")
    except OSError:
        parser.error(f"{args.group} is not an IPv4 address")
    if args.near == args.far:
        parser.error("the near and the far interface must differ")
    signal.signal(signal.SIGTERM, stop)  # docker stop: a summary, not a kill
    log = DecisionLog(args.log_rate)
    try:
        ways = [(args.near, args.far)] + ([(args.far, args.near)] if args.both_ways else [])
        forward(ways, args.group, log)
    except KeyboardInterrupt:
        pass
    except OSError as error:
        print(f"router: {error.strerror or error} ({args.near} -> {args.far})", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    log.tick(last=True)
    print(f"router: stopped: {log.totals['forwarded']} forwarded, "
          f"{log.totals['dropped']} dropped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
