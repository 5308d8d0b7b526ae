# What a socket that receives multicast needs, as each system lays it out: the
# joins, a shared port and the TTL each datagram came with. The receiver's sockets
# and a mesh peer's use them.
# Source-specific joins, where Python does not name the options (it names
# IP_ADD_SOURCE_MEMBERSHIP from 3.12 on): each system's own numbers, from its
# headers (Linux <linux/in.h>, macOS and FreeBSD <netinet/in.h>, Windows <ws2ipdef.h>).
IP_ADD_SOURCE_MEMBERSHIP = {"linux": 39, "darwin": 70, "freebsd": 70, "win32": 15}
MCAST_JOIN_SOURCE_GROUP = {"linux": 46, "darwin": 82, "freebsd": 82, "win32": 45}
# AF_INET6 inside a sockaddr_in6 that is packed for another system (tests build those).
AF_INET6_OF = {"linux": 10, "darwin": 30, "freebsd": 28, "win32": 23}
# The TTL (IPv6: hop limit) each datagram arrived with: (level, the option that asks
# for it, the kind of control message that brings it) by system and IP version, by
# number where Python does not name them. Linux gives an int, macOS and BSD an IPv4
# TTL as one byte. Windows has no recvmsg: no TTL there.
ARRIVAL_TTL = {("linux", 4): (0, 12, 2), ("linux", 6): (41, 51, 52),        # IP_RECVTTL
               ("darwin", 4): (0, 24, 24), ("darwin", 6): (41, 37, 47),     # IPV6_RECV-
               ("freebsd", 4): (0, 65, 65), ("freebsd", 6): (41, 37, 47)}   # HOPLIMIT


def share_port(sock, platform=sys.platform):
    """Let several receivers on one host listen on the same port."""
    # SO_REUSEADDR: several sockets may bind one port; each of them gets its
    # own copy of every multicast datagram.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if platform == "darwin" or "bsd" in platform:
        # SO_REUSEPORT: macOS and the BSDs want this one too before a second
        # socket may bind the same port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)


def ask_for_arrival_ttl(sock, version, platform=sys.platform):
    """Have each datagram come with the TTL it arrived with, where the system can tell."""
    arrival = ARRIVAL_TTL.get((system_of(platform), version))
    if arrival is not None:
        # IP_RECVTTL (IPv6: IPV6_RECVHOPLIMIT): each datagram comes with the TTL it
        # arrived with; the sender's TTL minus this is the routers it crossed.
        try:
            sock.setsockopt(arrival[0], arrival[1], 1)
        except OSError:  # a system that refuses it: no TTL to tell, all else works
            pass


def join(sock, group, interface, sources=(), platform=sys.platform):
    """Join the group on one interface: from any source, or only from sources (SSM)."""
    for level, option, request in membership_requests(group, interface, sources, platform):
        sock.setsockopt(level, option, request)


def membership_requests(group, interface, sources=(), platform=sys.platform):
    """The (level, option, bytes) of each setsockopt that joins the group, as the
    platform's headers lay them out; each layout is checked byte for byte by tests."""
    system = system_of(platform)
    if family_of(group) == socket.AF_INET6:
        if not sources:
            # IPV6_JOIN_GROUP: join on one interface, named by its index (0: the
            # system's choice): a struct ipv6_mreq, the group's 16 bytes, then the index.
            request = socket.inet_pton(socket.AF_INET6, group) + struct.pack("=I", interface)
            return [(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, request)]
        # MCAST_JOIN_SOURCE_GROUP: join, taking only this source's datagrams. A
        # struct group_source_req: the interface index, padding up to 8 bytes where
        # a sockaddr_storage is aligned to 8 (macOS packs the struct to 4: none), then
        # the group and the source, each a sockaddr_in6 in 128 bytes of sockaddr_storage.
        padding = {"darwin": 0, "win32": 4}.get(system, struct.calcsize("@P") - 4)
        head = struct.pack("=I", interface) + bytes(padding)
        return [(socket.IPPROTO_IPV6, MCAST_JOIN_SOURCE_GROUP[system],
                 head + sockaddr_in6(group, system) + sockaddr_in6(source, system))
                for source in sources]
    group_bytes = socket.inet_aton(group)
    interface_bytes = socket.inet_aton(interface or "0.0.0.0")
    if not sources:
        # IP_ADD_MEMBERSHIP: ask the kernel to join the group on one interface,
        # which also tells the switches and routers (IGMP) to forward it here.
        # A struct ip_mreq: the group's 4 bytes, then the interface's (0.0.0.0:
        # the interface the routing table picks for the group).
        return [(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group_bytes + interface_bytes)]
    # IP_ADD_SOURCE_MEMBERSHIP: join, taking only this source's datagrams.
    # A struct ip_mreq_source, whose fields Linux orders group, interface,
    # source, and macOS, the BSDs and Windows group, source, interface.
    return [(socket.IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP[system],
             group_bytes + interface_bytes + socket.inet_aton(source) if system == "linux"
             else group_bytes + socket.inet_aton(source) + interface_bytes)
            for source in sources]


def sockaddr_in6(address, system):
    """A struct sockaddr_in6 (port, flow info and scope 0) in a 128-byte sockaddr_storage.
    macOS and the BSDs start it with its length (28) and a one-byte family."""
    family = (struct.pack("=BB", 28, AF_INET6_OF[system]) if system in ("darwin", "freebsd")
              else struct.pack("=H", AF_INET6_OF[system]))
    return (family + bytes(6) + socket.inet_pton(socket.AF_INET6, address)
            + bytes(4)).ljust(128, b"\0")


def system_of(platform):
    """The system whose layouts a platform uses: the BSDs lay out as FreeBSD."""
    for system in ("linux", "darwin", "win32"):
        if platform.startswith(system):
            return system
    return "freebsd"
