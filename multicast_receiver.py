#!/usr/bin/env python3
"""Join an IP multicast group and answer every message with b'ack'.

The receiver half of the classic multicast demo. Run it, then run
multicast_sender.py on the same network:

    python3 multicast_receiver.py
    python3 multicast_receiver.py --interface lo   # one machine, no network

Every option can also come from an environment variable (see --help);
a flag on the command line wins over its variable. The lecture's lines go to
stdout; one line on stderr says which group, port and interface it uses.
Exit status: 0 when stopped (or --count answered), 1 on a socket error,
2 for bad usage.
"""

import argparse
import errno
import ipaddress
import os
import signal
import socket
import struct
import sys

DEFAULT_GROUP = "224.10.10.10"
DEFAULT_PORT = 10000
ACK = b"ack"
MAX_DATAGRAM = 65535  # the largest IPv4 datagram: a buffer this size never cuts one short


def make_receiver_socket(group, port, interface, platform=sys.platform, sources=()):
    """A UDP socket bound to the group's port that has joined the group."""
    sock = socket.socket(family_of(group), socket.SOCK_DGRAM)  # IPv4 or IPv6, as the group
    share_port(sock, platform)  # SO_REUSEADDR: more than one receiver per host
    address = bind_address(group, platform)
    # An IPv6 link-local group is bound with its link (the interface index).
    sock.bind((address, port, 0, interface) if ":" in group else (address, port))
    join(sock, group, interface, sources, platform)  # IP_ADD_MEMBERSHIP, and more: below
    return sock


# ---- shared block: joining (identical in both receivers) ----
# Source-specific joins, where Python does not name the options (it names
# IP_ADD_SOURCE_MEMBERSHIP from 3.12 on): each system's own numbers.
IP_ADD_SOURCE_MEMBERSHIP = {"linux": 39, "darwin": 70, "win32": 15}
MCAST_JOIN_SOURCE_GROUP = {"linux": 46, "darwin": 82, "win32": 45}


def option_number(numbers, platform):
    """A socket option's number on this platform (the BSDs number them as macOS)."""
    for prefix, number in numbers.items():
        if platform.startswith(prefix):
            return number
    return numbers["darwin"]


def join(sock, group, interface, sources=(), platform=sys.platform):
    """Join the group on one interface: from any source, or only from sources (SSM)."""
    if family_of(group) == socket.AF_INET6:
        if not sources:
            # IPV6_JOIN_GROUP: join on one interface, named by its index (0:
            # the system's choice): the group's 16 bytes, then the index.
            request = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", interface)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, request)
        for source in sources:
            # MCAST_JOIN_SOURCE_GROUP: join, taking only this source's datagrams. A
            # struct group_source_req: the interface index (then padding to 8
            # bytes on 64-bit systems), the group and the source, each a
            # sockaddr_in6 in a 128-byte sockaddr_storage.
            request = struct.pack("@I", interface).ljust(struct.calcsize("@P"), b"\0")
            for address in (group, source):
                sockaddr = struct.pack("@H", socket.AF_INET6) + bytes(6) + socket.inet_pton(
                    socket.AF_INET6, address) + bytes(4)
                request += sockaddr.ljust(128, b"\0")
            sock.setsockopt(socket.IPPROTO_IPV6,
                            option_number(MCAST_JOIN_SOURCE_GROUP, platform), request)
        return
    group_bytes = socket.inet_aton(group)
    interface_bytes = socket.inet_aton(interface or "0.0.0.0")
    if not sources:
        # IP_ADD_MEMBERSHIP: ask the kernel to join the group on one interface,
        # which also tells the switches and routers (IGMP) to forward it here.
        # The option takes a struct ip_mreq: the group's 4 bytes and then the
        # interface's 4 bytes. The textbook's struct.pack('4sL', ...) makes 16
        # bytes on 64-bit Linux and only works by accident; 0.0.0.0 means
        # "the interface the routing table picks for the group".
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                        group_bytes + interface_bytes)
    for source in sources:
        # IP_ADD_SOURCE_MEMBERSHIP: join, taking only this source's datagrams.
        # A struct ip_mreq_source, whose fields Linux orders group, interface,
        # source, and macOS, the BSDs and Windows group, source, interface.
        source_bytes = socket.inet_aton(source)
        request = (group_bytes + interface_bytes + source_bytes
                   if platform.startswith("linux") else
                   group_bytes + source_bytes + interface_bytes)
        sock.setsockopt(socket.IPPROTO_IP, option_number(IP_ADD_SOURCE_MEMBERSHIP, platform),
                        request)


def source_address(text):
    """A source for a source-specific join: a unicast IPv4 or IPv6 address."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    if address is None or address.is_multicast or address.is_unspecified:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a source address (valid: the unicast address of a sender)")
    return str(address)


def settle_sources(parser, args, program, environ=os.environ):
    """Check the sources (a flag wins over MULTICAST_SOURCE, sources separated by
    commas) against the group's family; warn about an SSM group without them."""
    if args.source is None:
        try:
            args.source = [source_address(text.strip()) for text in
                           environ.get("MULTICAST_SOURCE", "").split(",") if text.strip()]
        except argparse.ArgumentTypeError as error:
            parser.error(f"MULTICAST_SOURCE: {error}")
    ipv6 = family_of(args.group) == socket.AF_INET6
    for source in args.source:
        if (":" in source) != ipv6:
            parser.error(f"source {source} and group {args.group} are not of one family "
                         f"(give an IPv{6 if ipv6 else 4} source)")
    group = ipaddress.ip_address(args.group)
    ssm = (group in ipaddress.ip_network("232.0.0.0/8") if not ipv6
           else group.packed[0] == 0xFF and group.packed[1] >> 4 == 3)
    if ssm and not args.source:
        print(f"{program}: warning: {args.group} is a source-specific (SSM) group: a network "
              f"that enforces SSM delivers it only to a join that names the source "
              f"(--source ADDRESS), so nothing may arrive", file=sys.stderr)
# ---- end of shared block ----


# ---- shared block: binding (identical in both receivers) ----
def share_port(sock, platform=sys.platform):
    """Let several receivers on one host listen on the same port."""
    # SO_REUSEADDR: several sockets may bind one port; each of them gets its
    # own copy of every multicast datagram.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if platform == "darwin" or "bsd" in platform:
        # SO_REUSEPORT: macOS and the BSDs want this one too before a second
        # socket may bind the same port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)


def bind_address(group, platform=sys.platform):
    """The address a receiver binds to: the group on Linux, elsewhere any address.

    On Linux a socket bound to the wildcard address ('') gets the datagrams of
    every group that any program on the host joined on that port
    (IP_MULTICAST_ALL); bound to the group, it gets only its own group's.
    Windows refuses to bind a multicast address, and macOS would then send
    the acks from the group address; both give a socket only the groups it
    joined itself, so there the wildcard address isolates as well."""
    return group if platform.startswith("linux") else ""
# ---- end of shared block ----


def receive(sock):
    """One datagram: (data, sender's address, whether it was cut short)."""
    if hasattr(sock, "recvmsg"):  # Windows has no recvmsg: there a datagram
        data, _, flags, address = sock.recvmsg(MAX_DATAGRAM)  # cannot be seen cut
        return data, address, bool(flags & socket.MSG_TRUNC)
    data, address = sock.recvfrom(MAX_DATAGRAM)
    return data, address, False


def serve(sock, count):
    """Answer messages until count of them are answered (0: forever)."""
    answered = 0
    while count == 0 or answered < count:
        print("waiting to receive message")
        data, address, truncated = receive(sock)
        if truncated:
            print(f"warning: the datagram from {address} was cut to {len(data)} bytes")
        print(f"received {len(data)} bytes from {address}")
        print(data)
        print(f"sending acknowledgement to {address}")
        try:
            sock.sendto(ACK, address)
        except OSError as error:  # one unreachable sender must not stop the others' acks
            print(f"could not send acknowledgement: {error.strerror}")
        print()
        answered += 1


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    program = os.path.basename(sys.argv[0])
    settle_interface(parser, args)
    settle_sources(parser, args, program)
    sys.stdout.reconfigure(line_buffering=True)  # every line shows up at once in `docker logs`
    stop = StopOnSignal()
    sock = None
    status = 0
    try:
        try:
            sock = make_receiver_socket(args.group, args.port, args.interface,
                                        sources=args.source)
            where, source = describe_interface(args.group, args.port, args.interface)
            if source:
                only = f", only from {', '.join(args.source)}" if args.source else ""
                print(f"{program}: listening on {args.group}:{args.port}, joined on {where}"
                      f"{only}", file=sys.stderr)
            serve(sock, args.count)
        except Stop:
            pass
        finally:
            stop.stopping = True  # from here on a signal changes nothing
    except Stop:  # a signal in the instant the work ended
        pass
    except BrokenPipeError:
        return quiet_on_closed_pipe()
    except OSError as error:
        print(f"{program}: error: {explain(error, args.port)}", file=sys.stderr)
        status = 1
    stop.ignore_from_now()
    if sock is not None:
        try:
            print("closing socket")
        except BrokenPipeError:
            quiet_on_closed_pipe()
        sock.close()  # closing the socket also leaves the group (IGMP leave)
    return status


def explain(error, port):
    """One line that says what a socket error means and what to do about it."""
    if error.errno in (errno.ENETUNREACH, errno.ENODEV, errno.EADDRNOTAVAIL):
        return ("no route for multicast: add a route for 224.0.0.0/4 or a default "
                "route, or pass --interface NAME")
    if error.errno == errno.EADDRINUSE:
        return f"port {port} is already in use by a program that does not share it"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"not allowed: {error.strerror} (a firewall, or a port below 1024?)"
    return error.strerror or str(error)


# ---- shared block: stop (identical in both textbook scripts) ----
class Stop(Exception):
    """Raised by the signal handler to leave the blocking loop."""


class StopOnSignal:
    """SIGTERM and SIGINT raise Stop once; a second signal changes nothing."""

    def __init__(self):
        self.stopping = False
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self)

    def __call__(self, signum, frame):
        if not self.stopping:
            self.stopping = True
            raise Stop()

    def ignore_from_now(self):
        """Ignore both signals to the end, even while Python shuts down."""
        self.stopping = True  # first: a signal in the next call changes nothing
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)
# ---- end of shared block ----


# ---- shared block: arguments (identical in all four scripts) ----
MAX_SECONDS = 1_000_000  # about 11 days: the longest time any option takes


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr, exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def multicast_group(text):
    """A multicast group: IPv4 224.0.0.0 to 239.255.255.255, or IPv6 ff00::/8."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    if address is None or not address.is_multicast:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a multicast group (valid: 224.0.0.0 to 239.255.255.255, "
            f"or an IPv6 group in ff00::/8)")
    return str(address)


def family_of(group):
    """The address family of a group: the family follows the group."""
    return socket.AF_INET6 if ":" in group else socket.AF_INET


def needs_interface(group):
    """Whether the group is only defined on one link (IPv6 scopes 1 and 2: ff01::, ff02::)."""
    return ":" in group and ipaddress.ip_address(group).packed[1] & 0x0F <= 2


def port_number(text):
    """A UDP port, 1 to 65535."""
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (valid: 1 to 65535)")
    return int(text)


def count_number(text):
    """A whole number, 0 to 2**63 - 1."""
    if not text.strip().isdigit() or int(text) >= 2**63:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (valid: 0 to {2**63 - 1})")
    return int(text)


def bounded_number(text, what, upper):
    """A finite number from 0 to upper; what names it in the error."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= upper:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what} (valid: 0 to {upper:g})")
    return value


def seconds(text):
    """A number of seconds, 0 to MAX_SECONDS."""
    return bounded_number(text, "a number of seconds", MAX_SECONDS)


def interface_names():
    """The names of this host's network interfaces."""
    try:
        return [name for _, name in socket.if_nameindex()]
    except (OSError, AttributeError):
        return []


def interface_address(name):
    """The IPv4 address of the interface called name, or None (where it is unknown)."""
    try:
        import fcntl  # not on Windows
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            # SIOCGIFADDR (Linux's 0x8915): the interface's IPv4 address.
            answer = fcntl.ioctl(probe.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
    except (ImportError, OSError):
        return None
    return socket.inet_ntoa(answer[20:24])


def ipv6_interface_index(text):
    """The index of the interface that has the IPv6 address text (fe80::1%eth0 names it)."""
    if "%" in text:
        return socket.if_nametoindex(text.split("%", 1)[1])
    wanted = ipaddress.ip_address(text).packed.hex()
    try:
        with open("/proc/net/if_inet6") as table:  # Linux: address, index, ...
            for line in table:
                if line.split()[0] == wanted:
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return None


def local_interface(text):
    """One of this host's interfaces: a name (eth0), an IPv4 or an IPv6 address."""
    names = interface_names()
    if text in names:
        return text
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an interface of this host (interfaces: "
            f"{', '.join(names) or 'none found'}; or give an IP address)") from None
    if address.is_multicast or address.is_unspecified:
        raise argparse.ArgumentTypeError(f"{text!r} is not an interface address")
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_DGRAM)
    try:  # binding only succeeds for an address this host has
        probe.bind((text, 0) if family == socket.AF_INET else
                   socket.getaddrinfo(text, 0, family, socket.SOCK_DGRAM)[0][4])
    except OSError:
        raise argparse.ArgumentTypeError(
            f"{text} is not an address of this host (see 'ip addr')") from None
    finally:
        probe.close()
    return text


def resolve_interface(text, group):
    """The interface as the group's family wants it: IPv4 an address (None: the
    system's choice), IPv6 an interface index (0: the system's choice).
    Raises ValueError with a one-line reason."""
    ipv6 = family_of(group) == socket.AF_INET6
    if text is None:
        if needs_interface(group):
            raise ValueError(f"{group} is a link-local group, defined on each link apart: "
                             f"say which with --interface NAME")
        return 0 if ipv6 else None
    if text in interface_names():
        if ipv6:
            return socket.if_nametoindex(text)
        address = interface_address(text)
        if address is None:
            raise ValueError(f"interface {text} has no IPv4 address")
        return address
    version = ipaddress.ip_address(text.split("%", 1)[0]).version
    if version != (6 if ipv6 else 4):
        raise ValueError(f"{text} is an IPv{version} address but {group} is an IPv"
                         f"{6 if ipv6 else 4} group: give an interface name or an IPv"
                         f"{6 if ipv6 else 4} address")
    if not ipv6:
        return text
    index = ipv6_interface_index(text)
    if index is None:
        raise ValueError(f"cannot tell which interface has {text}: give its name")
    return index


def settle_interface(parser, args):
    """Turn args.interface into what the sockets want, or end with the one-line error."""
    try:
        args.interface = resolve_interface(args.interface, args.group)
    except ValueError as error:
        parser.error(str(error))


def destination(group, port, interface):
    """The socket address of a group: IPv6 adds flow info and the interface index."""
    return (group, port, 0, interface or 0) if ":" in group else (group, port)


def describe_interface(group, port, interface):
    """Which interface and source address traffic for the group uses, in words."""
    family = family_of(group)
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            if family == socket.AF_INET6 and interface:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, interface)
            elif interface:
                probe.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                 socket.inet_aton(interface))
            probe.connect(destination(group, port, interface))  # asks the routing table only
            source = probe.getsockname()[0]
        except OSError:
            return "no interface (no route for multicast)", None
    if family == socket.AF_INET6:
        index = interface or ipv6_interface_index(source)
        try:
            names = [socket.if_indextoname(index)] if index else []
        except OSError:
            names = []
    else:
        names = [name for name in interface_names() if interface_address(name) == source]
    return (f"{names[0]} ({source})" if names else source), source
# ---- end of shared block ----


# ---- shared block: pipe (identical in all four scripts) ----
def quiet_on_closed_pipe():
    """When our output pipe closes (`| head`), exit quietly, as json.tool does."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # nothing more to flush at exit
    return 1
# ---- end of shared block ----


def build_parser(environ=os.environ):
    parser = OneLineParser(
        description="Join a multicast group and answer each message with b'ack'.",
        epilog="Environment: MULTICAST_GROUP, MULTICAST_PORT, MULTICAST_INTERFACE, "
               "MULTICAST_COUNT, MULTICAST_SOURCE (sources separated by commas).")
    parser.add_argument("-g", "--group", metavar="ADDRESS", type=multicast_group,
                        default=environ.get("MULTICAST_GROUP", DEFAULT_GROUP),
                        help="multicast group to join, IPv4 or IPv6 (default: %(default)s)")
    parser.add_argument("-p", "--port", metavar="PORT", type=port_number,
                        default=environ.get("MULTICAST_PORT", str(DEFAULT_PORT)),
                        help="UDP port to listen on (default: %(default)s)")
    parser.add_argument("-i", "--interface", metavar="NAME|ADDRESS", type=local_interface,
                        default=environ.get("MULTICAST_INTERFACE") or None,
                        help="interface to join on, by name or IPv4 or IPv6 address "
                             "(default: the system's choice)")
    parser.add_argument("-c", "--count", metavar="N", type=count_number,
                        default=environ.get("MULTICAST_COUNT", "0"),
                        help="messages to answer before exiting, 0 for no limit "
                             "(default: %(default)s)")
    parser.add_argument("-s", "--source", metavar="ADDRESS", type=source_address,
                        action="append",
                        help="join source-specifically: take only this sender's datagrams; "
                             "may be given more than once (default: any source)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
