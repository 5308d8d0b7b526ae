#!/usr/bin/env python3
"""Join an IP multicast group and answer every message with b'ack'.

The receiver half of the classic multicast demo. Run it, then run
multicast_sender.py on the same network:

    python3 multicast_receiver.py
    python3 multicast_receiver.py --interface 127.0.0.1   # one machine, no network

Every option can also come from an environment variable (see --help);
a flag on the command line wins over its variable.
"""

import argparse
import errno
import ipaddress
import os
import signal
import socket
import sys

DEFAULT_GROUP = "224.10.10.10"
DEFAULT_PORT = 10000
ACK = b"ack"
MAX_DATAGRAM = 65535  # the largest IPv4 datagram: a buffer this size never cuts one short


class Stop(Exception):
    """Raised by the signal handler to leave the receive loop."""


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
    """A whole number, 0 or more."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (valid: 0 or more)")
    return int(text)


def local_interface(text):
    """The IPv4 address of one of this host's interfaces."""
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv4 address") from None
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


def build_parser(environ=os.environ):
    parser = OneLineParser(
        description="Join a multicast group and answer each message with b'ack'.",
        epilog="Environment: MULTICAST_GROUP, MULTICAST_PORT, MULTICAST_INTERFACE, MULTICAST_COUNT.")
    parser.add_argument("-g", "--group", metavar="ADDRESS", type=multicast_group,
                        default=environ.get("MULTICAST_GROUP", DEFAULT_GROUP),
                        help="multicast group to join (default: %(default)s)")
    parser.add_argument("-p", "--port", metavar="PORT", type=port_number,
                        default=environ.get("MULTICAST_PORT", str(DEFAULT_PORT)),
                        help="UDP port to listen on (default: %(default)s)")
    parser.add_argument("-i", "--interface", metavar="ADDRESS", type=local_interface,
                        default=environ.get("MULTICAST_INTERFACE") or None,
                        help="IPv4 address of the interface to join on "
                             "(default: the system's choice)")
    parser.add_argument("-c", "--count", metavar="N", type=count_number,
                        default=environ.get("MULTICAST_COUNT", "0"),
                        help="messages to answer before exiting, 0 for no limit "
                             "(default: %(default)s)")
    return parser


def make_receiver_socket(group, port, interface):
    """A UDP socket bound to the group's port that has joined the group."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # SO_REUSEADDR: let several receivers on one host listen on the same port;
    # each of them gets its own copy of every multicast datagram.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Bind to the group address, not '': on Linux a socket bound to the
    # wildcard address gets the datagrams of every group that any program on
    # this host has joined on that port (IP_MULTICAST_ALL). Binding to the
    # group lets through only this group's traffic.
    sock.bind((group, port))
    # IP_ADD_MEMBERSHIP: ask the kernel to join the group on one interface,
    # which also tells the switches and routers (IGMP) to forward it here.
    # The option takes a struct ip_mreq: the group's 4 bytes and then the
    # interface's 4 bytes. The textbook's struct.pack('4sL', ...) makes 16
    # bytes on 64-bit Linux and only works by accident; 0.0.0.0 means
    # "the interface the routing table picks for the group".
    membership = socket.inet_aton(group) + socket.inet_aton(interface or "0.0.0.0")
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    return sock


def explain(error, port):
    """One line that says what a socket error means and what to do about it."""
    if error.errno in (errno.ENETUNREACH, errno.ENODEV, errno.EADDRNOTAVAIL):
        return ("no route for multicast: add a route for 224.0.0.0/4 or a default "
                "route, or pass --interface ADDRESS")
    if error.errno == errno.EADDRINUSE:
        return f"port {port} is already in use by a program that does not share it"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"not allowed: {error.strerror} (a firewall, or a port below 1024?)"
    return error.strerror or str(error)


def stop_on_signal(signum, frame):
    raise Stop()


def serve(sock, count):
    """Answer messages until count of them are answered (0: forever)."""
    answered = 0
    while count == 0 or answered < count:
        print("waiting to receive message")
        data, _, flags, address = sock.recvmsg(MAX_DATAGRAM)
        if flags & socket.MSG_TRUNC:
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
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    sock = None
    try:
        sock = make_receiver_socket(args.group, args.port, args.interface)
        serve(sock, args.count)
    except Stop:
        pass
    except OSError as error:
        print(f"{os.path.basename(sys.argv[0])}: error: {explain(error, args.port)}",
              file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if sock is not None:
            print("closing socket")
            sock.close()  # closing the socket also leaves the group (IGMP leave)
    return 0


if __name__ == "__main__":
    sys.exit(main())
