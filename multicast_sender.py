#!/usr/bin/env python3
"""Send a message to an IP multicast group and collect the b'ack' replies.

The sender half of the classic multicast demo. Start multicast_receiver.py
somewhere on the network first, then:

    python3 multicast_sender.py
    python3 multicast_sender.py --interface lo          # one machine, no network
    python3 multicast_sender.py --count 0 --interval 5  # a round every 5 s until stopped

After each send it waits for replies; when none has come for --timeout
seconds the round is over. Every option can also come from an environment
variable (see --help); a flag on the command line wins over its variable.
The lecture's lines go to stdout; on stderr one line says which group, port,
TTL and interface it uses, and one line after a round with no ack says what
to check.
Exit status: 0 if every round got at least one ack, 1 if not (or on a
socket error), 2 for bad usage.
"""

import argparse
import collections
import errno
import ipaddress
import os
import signal
import socket
import struct
import sys
import time

DEFAULT_GROUP = "224.10.10.10"
DEFAULT_PORT = 10000
DEFAULT_MESSAGE = "very important data"
ACK = b"ack"
MAX_PAYLOAD = 65507  # 65535 minus the IPv4 (20) and UDP (8) headers
MAX_DATAGRAM = 65535


def make_sender_socket(ttl, interface, timeout, family=socket.AF_INET):
    """A UDP socket set up to send multicast and wait for replies."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        # IPV6_MULTICAST_HOPS: IPv6's name for the TTL, the hop limit: how many
        # routers the datagram may cross (an int, 0 to 255).
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ttl)
        if interface:
            # IPV6_MULTICAST_IF: send out of this interface, named by its index.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, interface)
        sock.settimeout(timeout)
        return sock
    # IP_MULTICAST_TTL: how many routers the datagram may cross. 1 keeps it
    # on the local network. The kernel wants one unsigned byte ('B', 0 to
    # 255); the textbook's signed 'b' breaks above 127.
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, struct.pack("B", ttl))
    if interface:
        # IP_MULTICAST_IF: send out of this interface instead of the one the
        # routing table picks for 224.0.0.0/4 (usually the default route's).
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
    sock.settimeout(timeout)
    return sock


def run_round(sock, message, destination):
    """Send once, then print replies until none comes in time; return the acks."""
    print(f"sending {message!r}")
    sock.sendto(message, destination)
    acks = 0
    while True:
        print("waiting to receive")
        try:
            data, server = sock.recvfrom(MAX_DATAGRAM)
        except socket.timeout:
            print("timed out, no more responses")
            return acks
        print(f"received {data!r} from {server}")
        if data == ACK:
            acks += 1


def run_rounds(sock, args, where, tally):
    """Send --count rounds (0: until stopped), counting in tally those with no ack."""
    program = os.path.basename(sys.argv[0])
    rounds, previous_acks = 0, None
    while args.count == 0 or rounds < args.count:
        if rounds > 0:
            time.sleep(args.interval)
        try:
            acks = run_round(sock, args.message,
                             destination(args.group, args.port, args.interface))
        except OSError as error:
            if rounds == 0:  # nothing ever went out: a set-up problem
                raise
            print(f"could not send: {error.strerror}")  # a network fault: go on
            acks = 0
        rounds += 1
        if acks == 0:
            tally["rounds without ack"] += 1
            if previous_acks != 0:  # say it once for each streak of silent rounds
                print(f"{program}: no ack in round {rounds}: check that a receiver runs "
                      f"on {args.group}:{args.port}, that it joined on the network of "
                      f"{where}, and that a TTL of {args.ttl} reaches it", file=sys.stderr)
        previous_acks = acks


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    settle_interface(parser, args)
    sys.stdout.reconfigure(line_buffering=True)  # every line shows up at once in `docker logs`
    program = os.path.basename(sys.argv[0])
    stop = StopOnSignal()
    sock = None
    tally = collections.Counter()
    try:
        try:
            sock = make_sender_socket(args.ttl, args.interface, args.timeout,
                                      family_of(args.group))
            where, source = describe_interface(args.group, args.port, args.interface)
            if source:  # else the first send says what is wrong
                print(f"{program}: sending to {args.group}:{args.port} from {where}, "
                      f"ttl {args.ttl}", file=sys.stderr)
            run_rounds(sock, args, where, tally)
        except Stop:
            pass
        finally:
            stop.stopping = True  # from here on a signal changes nothing
    except Stop:  # a signal in the instant the work ended
        pass
    except BrokenPipeError:
        return quiet_on_closed_pipe()
    except OSError as error:
        print(f"{program}: error: {explain(error)}", file=sys.stderr)
        tally["socket errors"] += 1
    stop.ignore_from_now()
    if sock is not None:
        try:
            print("closing socket")
        except BrokenPipeError:
            quiet_on_closed_pipe()
        sock.close()
    return 1 if tally else 0


def explain(error):
    """One line that says what a socket error means and what to do about it."""
    if error.errno in (errno.ENETUNREACH, errno.ENODEV, errno.EADDRNOTAVAIL):
        return ("no route for multicast: add a route for 224.0.0.0/4 or a default "
                "route, or pass --interface NAME")
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"not allowed: {error.strerror} (a firewall?)"
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


def ttl_number(text):
    """A time-to-live, 0 to 255."""
    if not text.strip().isdigit() or not 0 <= int(text) <= 255:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TTL (valid: 0 to 255)")
    return int(text)


def timeout_seconds(text):
    """A number of seconds above 0."""
    value = seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is too short (valid: more than 0 seconds)")
    return value


def payload(text):
    """A message that fits in one UDP datagram."""
    data = text.encode("utf-8")
    if len(data) > MAX_PAYLOAD:
        raise argparse.ArgumentTypeError(
            f"the message is {len(data)} bytes; one UDP datagram holds at most {MAX_PAYLOAD}")
    return data


def build_parser(environ=os.environ):
    parser = OneLineParser(
        description="Send a message to a multicast group and print the acknowledgements.",
        epilog="Environment: MULTICAST_GROUP, MULTICAST_PORT, MULTICAST_INTERFACE, "
               "MULTICAST_TTL, MULTICAST_MESSAGE, MULTICAST_COUNT, MULTICAST_INTERVAL, "
               "MULTICAST_TIMEOUT.")
    parser.add_argument("-g", "--group", metavar="ADDRESS", type=multicast_group,
                        default=environ.get("MULTICAST_GROUP", DEFAULT_GROUP),
                        help="multicast group to send to, IPv4 or IPv6 (default: %(default)s)")
    parser.add_argument("-p", "--port", metavar="PORT", type=port_number,
                        default=environ.get("MULTICAST_PORT", str(DEFAULT_PORT)),
                        help="UDP port of the receivers (default: %(default)s)")
    parser.add_argument("-i", "--interface", metavar="NAME|ADDRESS", type=local_interface,
                        default=environ.get("MULTICAST_INTERFACE") or None,
                        help="interface to send on, by name or IPv4 or IPv6 address "
                             "(default: the system's choice)")
    parser.add_argument("-t", "--ttl", metavar="HOPS", type=ttl_number,
                        default=environ.get("MULTICAST_TTL", "1"),
                        help="how many routers the message may cross, 0 to 255 (IPv6: the hop limit); "
                             "1 stays on the local network (default: %(default)s)")
    parser.add_argument("-m", "--message", metavar="TEXT", type=payload,
                        default=environ.get("MULTICAST_MESSAGE", DEFAULT_MESSAGE),
                        help="what to send (default: %(default)s)")
    parser.add_argument("-c", "--count", metavar="N", type=count_number,
                        default=environ.get("MULTICAST_COUNT", "1"),
                        help="rounds to send, 0 for no limit (default: %(default)s)")
    parser.add_argument("--interval", metavar="SECONDS", type=seconds,
                        default=environ.get("MULTICAST_INTERVAL", "1"),
                        help="pause between rounds (default: %(default)s)")
    parser.add_argument("--timeout", metavar="SECONDS", type=timeout_seconds,
                        default=environ.get("MULTICAST_TIMEOUT", "0.2"),
                        help="a round ends when no reply has come for this long "
                             "(default: %(default)s)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
