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


def make_receiver_socket(group, port, interface, platform=sys.platform):
    """A UDP socket bound to the group's port that has joined the group."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    share_port(sock, platform)  # SO_REUSEADDR: more than one receiver per host
    sock.bind((bind_address(group, platform), port))
    # IP_ADD_MEMBERSHIP: ask the kernel to join the group on one interface,
    # which also tells the switches and routers (IGMP) to forward it here.
    # The option takes a struct ip_mreq: the group's 4 bytes and then the
    # interface's 4 bytes. The textbook's struct.pack('4sL', ...) makes 16
    # bytes on 64-bit Linux and only works by accident; 0.0.0.0 means
    # "the interface the routing table picks for the group".
    membership = socket.inet_aton(group) + socket.inet_aton(interface or "0.0.0.0")
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    return sock


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
    args = build_parser().parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # every line shows up at once in `docker logs`
    program = os.path.basename(sys.argv[0])
    stop = StopOnSignal()
    sock = None
    status = 0
    try:
        try:
            sock = make_receiver_socket(args.group, args.port, args.interface)
            where, source = describe_interface(args.group, args.port, args.interface)
            if source:
                print(f"{program}: listening on {args.group}:{args.port}, joined on {where}",
                      file=sys.stderr)
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
    """An IPv4 multicast address, 224.0.0.0 to 239.255.255.255."""
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        address = None
    if address is None or not address.is_multicast:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an IPv4 multicast group (valid: 224.0.0.0 to 239.255.255.255)")
    return text


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


def local_interface(text):
    """One of this host's interfaces, by name (eth0) or IPv4 address; its address."""
    names = interface_names()
    if text in names:
        address = interface_address(text)
        if address is None:
            raise argparse.ArgumentTypeError(f"interface {text} has no IPv4 address")
        return address
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an interface of this host (interfaces: "
            f"{', '.join(names) or 'none found'}; or give an IPv4 address)") from None
    if address.is_multicast or address.is_unspecified:
        raise argparse.ArgumentTypeError(f"{text!r} is not an interface address")
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind((text, 0))  # only succeeds for an address this host has
    except OSError:
        raise argparse.ArgumentTypeError(
            f"{text} is not an address of this host (see 'ip -4 addr')") from None
    finally:
        probe.close()
    return text


def describe_interface(group, port, interface):
    """Which interface and source address traffic for the group uses, in words."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            if interface:
                probe.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                 socket.inet_aton(interface))
            probe.connect((group, port))  # sends nothing: only asks the routing table
            source = probe.getsockname()[0]
        except OSError:
            return interface or "no interface (no route for multicast)", interface
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
               "MULTICAST_COUNT.")
    parser.add_argument("-g", "--group", metavar="ADDRESS", type=multicast_group,
                        default=environ.get("MULTICAST_GROUP", DEFAULT_GROUP),
                        help="multicast group to join (default: %(default)s)")
    parser.add_argument("-p", "--port", metavar="PORT", type=port_number,
                        default=environ.get("MULTICAST_PORT", str(DEFAULT_PORT)),
                        help="UDP port to listen on (default: %(default)s)")
    parser.add_argument("-i", "--interface", metavar="NAME|ADDRESS", type=local_interface,
                        default=environ.get("MULTICAST_INTERFACE") or None,
                        help="interface to join on, by name or IPv4 address "
                             "(default: the system's choice)")
    parser.add_argument("-c", "--count", metavar="N", type=count_number,
                        default=environ.get("MULTICAST_COUNT", "0"),
                        help="messages to answer before exiting, 0 for no limit "
                             "(default: %(default)s)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
