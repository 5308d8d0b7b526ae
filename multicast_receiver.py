#!/usr/bin/env python3
"""Join an IP multicast group and answer every message with b'ack'.

The lecture's receiver, made correct (then run multicast_sender.py); options also come from
the environment (--help). IPv4 only: IPv6 and more are in socket_multicast_receiver.py.
Exit status: 0 when stopped or --count messages are answered, 1 on a socket error, 2 for bad usage.
"""

import argparse
import errno
import os
import select
import signal
import socket
import sys
from ipaddress import IPv4Address


def make_receiver_socket(group, port, interface):
    """A UDP socket bound to the group's port that has joined the group."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # SO_REUSEADDR: more receivers on this host may bind the port; each gets every datagram.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Bind to the group, not to '' as the lecture does: on Linux a socket bound to '' gets
    # every group joined on this port by any program here (Windows needs '' and isolates).
    sock.bind((group if sys.platform.startswith("linux") else "", port))
    # IP_ADD_MEMBERSHIP: join the group on one interface (0.0.0.0: the route's choice); IGMP
    # then asks switches and routers to deliver it here. Its struct ip_mreq is 8 bytes, the
    # group's address and the interface's; the lecture's '4sL' makes 16 on 64-bit Linux.
    membership = socket.inet_aton(group) + socket.inet_aton(interface or "0.0.0.0")
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    return sock


def answer_messages(sock, wake, count):
    """Print and acknowledge each message until count are answered (0: until a signal)."""
    answered = 0
    while count == 0 or answered < count:
        print("waiting to receive message")
        if wake in select.select([sock, wake], [], [])[0]:  # a signal came: `wake` has a byte
            return
        data, address = sock.recvfrom(65535)  # the lecture's 1024 would cut longer messages
        print(f"received {len(data)} bytes from {address}")
        print(data)
        print(f"sending acknowledgement to {address}")
        try:
            sock.sendto(b"ack", address)
        except OSError as error:  # one sender gone must not stop the acks to the others
            print(f"could not send acknowledgement: {error.strerror}")
        print()
        answered += 1


def ipv4_address(text, multicast):
    """The text, if it is an IPv4 address that is (or is not) a multicast group."""
    try:
        if text == "" and not multicast or IPv4Address(text).is_multicast == multicast:
            return text
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text[:80]!r} is not an IPv4 " + (
        "multicast group (IPv6: socket_multicast_receiver.py)" if multicast else "address"))


def whole_number(text, lowest, highest):
    """The text as a whole number from lowest to highest."""
    if text.strip().isdigit() and lowest <= int(text) <= highest:
        return int(text)
    raise argparse.ArgumentTypeError(f"{text[:80]!r} is not a number from {lowest} to {highest}")


def build_parser(environ=os.environ):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.error = lambda message: parser.exit(2, f"{parser.prog}: error: {message}\n")
    parser.add_argument("-g", "--group", type=lambda text: ipv4_address(text, True),
                        default=environ.get("MULTICAST_GROUP", "224.10.10.10"),
                        help="IPv4 group to join (default: %(default)s; MULTICAST_GROUP)")
    parser.add_argument("-p", "--port", type=lambda text: whole_number(text, 1, 65535),
                        default=environ.get("MULTICAST_PORT", "10000"),
                        help="UDP port to listen on (default: %(default)s; MULTICAST_PORT)")
    parser.add_argument("-i", "--interface", type=lambda text: ipv4_address(text, False),
                        default=environ.get("MULTICAST_INTERFACE", ""),
                        help="join on the interface with this address (MULTICAST_INTERFACE)")
    parser.add_argument("-c", "--count", type=lambda text: whole_number(text, 0, 2**63 - 1),
                        default=environ.get("MULTICAST_COUNT", "0"),
                        help="answer this many, 0: no end (default: %(default)s; MULTICAST_COUNT)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # each line at once in `docker logs`
    wake, signalled = socket.socketpair()
    signalled.setblocking(False)
    signal.set_wakeup_fd(signalled.fileno())  # SIGINT and SIGTERM write a byte to `wake`
    signal.signal(signal.SIGINT, lambda signum, frame: None)  # instead of KeyboardInterrupt
    signal.signal(signal.SIGTERM, lambda signum, frame: None)  # instead of dying at once
    try:
        sock = make_receiver_socket(args.group, args.port, args.interface)
        print(f"multicast_receiver.py: listening on {args.group}:{args.port}, joined on "
              f"{args.interface or 'the default route'}'s interface", file=sys.stderr)
        select.select([wake], [], [], 0.05)  # `docker logs` shows that stderr line first
        answer_messages(sock, wake, args.count)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # from here on no signal cuts the exit short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("closing socket")
        sock.close()
        return 0
    except BrokenPipeError:  # stdout closed (`| head`): leave quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError as error:
        reason = (f"no interface has the address {args.interface}" if args.interface else
                  "no route for multicast: add a route for 224.0.0.0/4 or a default route, "
                  "or pass --interface ADDRESS") if error.errno == errno.ENODEV else None
        print(f"multicast_receiver.py: error: {reason or error.strerror or error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
