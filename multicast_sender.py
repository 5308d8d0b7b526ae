#!/usr/bin/env python3
"""Send a message to an IP multicast group and collect the b'ack' replies.

The sender half of the classic multicast demo. Start multicast_receiver.py
somewhere on the network first, then:

    python3 multicast_sender.py
    python3 multicast_sender.py --interface 127.0.0.1   # one machine, no network
    python3 multicast_sender.py --count 0 --interval 5  # a round every 5 s until stopped

After each send it waits for replies; when none has come for --timeout
seconds the round is over. Every option can also come from an environment
variable (see --help); a flag on the command line wins over its variable.
Exit status: 0 if every round got at least one ack, 1 if not (or on a
socket error), 2 for bad usage.
"""

import argparse
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


class Stop(Exception):
    """Raised by the signal handler to leave the send loop."""


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


def ttl_number(text):
    """A time-to-live, 0 to 255."""
    if not text.strip().isdigit() or not 0 <= int(text) <= 255:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TTL (valid: 0 to 255)")
    return int(text)


def count_number(text):
    """A whole number, 0 or more."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (valid: 0 or more)")
    return int(text)


def seconds(text):
    """A number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (valid: 0 or more)")
    return value


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
        description="Send a message to a multicast group and print the acknowledgements.",
        epilog="Environment: MULTICAST_GROUP, MULTICAST_PORT, MULTICAST_INTERFACE, "
               "MULTICAST_TTL, MULTICAST_MESSAGE, MULTICAST_COUNT, MULTICAST_INTERVAL, "
               "MULTICAST_TIMEOUT.")
    parser.add_argument("-g", "--group", metavar="ADDRESS", type=multicast_group,
                        default=environ.get("MULTICAST_GROUP", DEFAULT_GROUP),
                        help="multicast group to send to (default: %(default)s)")
    parser.add_argument("-p", "--port", metavar="PORT", type=port_number,
                        default=environ.get("MULTICAST_PORT", str(DEFAULT_PORT)),
                        help="UDP port of the receivers (default: %(default)s)")
    parser.add_argument("-i", "--interface", metavar="ADDRESS", type=local_interface,
                        default=environ.get("MULTICAST_INTERFACE") or None,
                        help="IPv4 address of the interface to send on "
                             "(default: the system's choice)")
    parser.add_argument("-t", "--ttl", metavar="HOPS", type=ttl_number,
                        default=environ.get("MULTICAST_TTL", "1"),
                        help="how many routers the message may cross, 0 to 255; "
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


def make_sender_socket(ttl, interface, timeout):
    """A UDP socket set up to send multicast and wait for replies."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # IP_MULTICAST_TTL: how many routers the datagram may cross. 1 keeps it
    # on the local network, 0 on this host. The kernel wants one unsigned
    # byte ('B', 0 to 255); the textbook's signed 'b' breaks above 127.
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


def explain(error):
    """One line that says what a socket error means and what to do about it."""
    if error.errno in (errno.ENETUNREACH, errno.ENODEV, errno.EADDRNOTAVAIL):
        return ("no route for multicast: add a route for 224.0.0.0/4 or a default "
                "route, or pass --interface ADDRESS")
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"not allowed: {error.strerror} (a firewall?)"
    return error.strerror or str(error)


def stop_on_signal(signum, frame):
    raise Stop()


def main(argv=None):
    args = build_parser().parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # every line shows up at once in `docker logs`
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    sock = None
    rounds_without_ack = 0
    try:
        sock = make_sender_socket(args.ttl, args.interface, args.timeout)
        rounds = 0
        while args.count == 0 or rounds < args.count:
            if rounds > 0:
                time.sleep(args.interval)
            try:
                acks = run_round(sock, args.message, (args.group, args.port))
            except OSError as error:
                if rounds == 0:  # nothing ever went out: a set-up problem
                    raise
                print(f"could not send: {error.strerror}")  # a network fault: go on
                acks = 0
            if acks == 0:
                rounds_without_ack += 1
            rounds += 1
    except Stop:
        pass
    except OSError as error:
        print(f"{os.path.basename(sys.argv[0])}: error: {explain(error)}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if sock is not None:
            print("closing socket")
            sock.close()
    return 1 if rounds_without_ack else 0


if __name__ == "__main__":
    sys.exit(main())
