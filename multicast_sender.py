#!/usr/bin/env python3
"""Send a message to an IP multicast group and print the b'ack' replies.

The lecture's sender, made correct (start multicast_receiver.py first). Options also come
from the environment (--help); IPv6 and interface names: socket_multicast_sender.py.
Exit status: 0 if every round got an ack, 1 if not or on a socket error, 2 for bad usage.
"""

import argparse
import contextlib
import errno
import os
import select
import signal
import socket
import struct
import sys
from ipaddress import IPv4Address


def send_rounds(args, wake):
    """The lecture's sender, round after round; returns how many rounds got no ack."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # IP_MULTICAST_TTL: how many routers the message may cross (1: this network only).
    # The kernel reads one unsigned byte: 'B' (0 to 255); the lecture's 'b' fails above 127.
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, struct.pack("B", args.ttl))
    # IP_MULTICAST_IF: send out of the interface with this address (0.0.0.0: the route's choice).
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                    socket.inet_aton(args.interface or "0.0.0.0"))
    rounds, silent_rounds, acks = 0, 0, None
    with contextlib.suppress(InterruptedError):  # a signal: every finished round is counted
        print(f"multicast_sender.py: sending to {args.group}:{args.port}, ttl {args.ttl}, "
              f"from {args.interface or 'the default interface'}", file=sys.stderr)
        wait(wake, None, 0.05)  # `docker logs` shows that stderr line before the next one
        while args.count == 0 or rounds < args.count:
            if rounds:
                wait(wake, None, args.interval)
            print(f"sending {args.message!r}")
            wait(wake, None, 0.05)  # time for `docker-compose up` to show this line first
            wait(wake, sock, None, send=True)  # a slow link fills the buffer: a stop wakes this
            sock.sendto(args.message, (args.group, args.port))
            silent_before, acks = acks == 0, 0
            print("waiting to receive")
            while wait(wake, sock, args.timeout):  # the lecture's sock.settimeout()
                data, server = sock.recvfrom(65535)
                print(f"received {data!r} from {server}")
                acks += data == b"ack"
                print("waiting to receive")
            print("timed out, no more responses")
            rounds += 1
            silent_rounds += acks == 0
            if acks == 0 and not silent_before:  # once for each streak of silent rounds
                print(f"multicast_sender.py: no ack in round {rounds}: is a receiver running on "
                      f"this network, and does a TTL of {args.ttl} reach it?", file=sys.stderr)
    for signum in (signal.SIGINT, signal.SIGTERM):  # from here on, no signal cuts the exit short
        signal.signal(signum, signal.SIG_IGN)
    print("closing socket")
    sock.close()
    return silent_rounds or (rounds == 0 and acks == 0)  # or stopped before the first ack


def wait(wake, sock, seconds, send=False):
    """Wait until sock has a datagram (send: room for one) or seconds pass; a signal interrupts."""
    reading, writing = ([], [sock]) if send else ([sock] if sock else [], [])
    ready, room, _ = select.select([wake] + reading, writing, [], seconds)
    if wake in ready:
        raise InterruptedError("SIGINT or SIGTERM")
    return bool(ready or room)


OPTIONS = (  # flags, default, type, what is valid, what it is (for --help and errors)
    ("-g --group", "224.10.10.10", str, lambda a: IPv4Address(a).is_multicast, "an IPv4 group"),
    ("-p --port", "10000", int, lambda n: 0 < n < 65536, "a UDP port, 1 to 65535"),
    ("-t --ttl", "1", int, lambda n: 0 <= n < 256, "a TTL, 0 to 255: routers it may cross"),
    ("-i --interface", "", str, lambda a: not a or IPv4Address(a), "an IPv4 address of this host"),
    ("-c --count", "1", int, lambda n: 0 <= n < 2**63, "a number of rounds, 0: until stopped"),
    ("--interval", "1", float, lambda s: 0 <= s <= 1e6, "the seconds between rounds"),
    ("--timeout", "0.2", float, lambda s: 0 < s <= 1e6, "the seconds of silence ending a round"),
    ("-m --message", "very important data", str.encode, lambda b: len(b) <= 65507,
     "a message of at most 65507 bytes"))


def build_parser(environ=os.environ):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.error = lambda message: parser.exit(2, f"{parser.prog}: error: {message}\n")
    for flags, default, kind, valid, meaning in OPTIONS:
        def checked(text, kind=kind, valid=valid, meaning=meaning):
            with contextlib.suppress(ValueError):  # not a number, not an address
                if valid(kind(text)):
                    return kind(text)
            raise argparse.ArgumentTypeError(f"{text[:80]!r} is not {meaning}")
        variable = "MULTICAST_" + flags.split()[-1][2:].upper()
        parser.add_argument(*flags.split(), type=checked, default=environ.get(variable, default),
                            help=f"{meaning} (default: {default or None}; environment: {variable})")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # each line at once in `docker logs`
    wake, wake_writer = socket.socketpair()  # a signal writes a byte here: it wakes wait()
    wake_writer.setblocking(False)
    signal.set_wakeup_fd(wake_writer.fileno())
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)  # the byte is all it takes
    try:
        return 1 if send_rounds(args, wake) else 0
    except BrokenPipeError:  # stdout closed (`| head`): leave quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError as error:
        if error.errno in (errno.ENETUNREACH, errno.EADDRNOTAVAIL):
            error.strerror = (f"no interface has the address {args.interface}" if args.interface
                              else "no route for multicast: add a route for 224.0.0.0/4 or a "
                              "default route, or pass --interface ADDRESS")
        print(f"multicast_sender.py: error: {error.strerror or error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
