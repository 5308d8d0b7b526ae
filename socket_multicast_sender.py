#!/usr/bin/env python3
"""A multicast sender that measures: who answered, what was lost, how fast.

Sends numbered messages to a group and keeps statistics for every receiver
that answers: acks, lost, duplicated, reordered and late acks, and the
round-trip time. Start socket_multicast_receiver.py (or multicast_receiver.py)
on the network first, then:

    python3 socket_multicast_sender.py --count 5
    python3 socket_multicast_sender.py --count 10 --expect 3 --json
    python3 socket_multicast_sender.py --rate 1000 --count 10000 --report-interval 1

Round mode (the default) sends a message, waits --timeout seconds for the
acks, prints who answered, and pauses --interval seconds before the next
round. Throughput mode (--rate) sends at a fixed rate without waiting; with
--no-ack the receivers only count. An ack counts if it arrives within
--timeout of its message's send; a later one is counted as late.
Exit status: 0 success; 1 if a round got fewer than --expect receivers
(throughput mode: fewer receivers answered at all), or on a socket error;
2 bad usage.
"""

import argparse
import collections
import errno
import ipaddress
import json
import math
import os
import random
import selectors
import signal
import socket
import struct
import sys
import time

DEFAULT_GROUP = "224.10.10.10"
DEFAULT_PORT = 10000
DEFAULT_MESSAGE = "very important data"
PLAIN_ACK = b"ack"  # what a textbook receiver answers
MAX_PAYLOAD = 65507  # 65535 minus the IPv4 (20) and UDP (8) headers
MAX_DATAGRAM = 65535
RECEIVE_BUFFER = 4 * 1024 * 1024  # room for the acks of hundreds of receivers at once
RTT_SAMPLES = 10000  # RTTs kept per receiver for the percentiles (a random sample beyond)
SEQUENCE_WINDOW = 4096  # acked sequence numbers remembered per receiver, for duplicates

# The wire protocol, version 1. Every message starts with this header, in
# network byte order: magic, version, kind, flags, one pad byte, the sender's
# session id, the sequence number and the send time (nanoseconds on this
# host's monotonic clock, echoed back untouched by the receiver).
HEADER = struct.Struct("!4sBBBxQQQ")
MAGIC = b"MCK1"
VERSION = 1
DATA, ACK = 1, 2
NO_ACK = 0x01  # flag in a message: receivers count it but do not answer it
REORDERED = 0x02  # flag in an ack: the receiver got this message after a later one
ACK_EXTRA = struct.Struct("!I")  # after an ack's header: microseconds it was held back


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


def non_negative(text, what):
    """A finite number, 0 or more; what names it in the error."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def seconds(text):
    """A number of seconds, 0 or more."""
    return non_negative(text, "a number of seconds (valid: 0 or more)")


def timeout_seconds(text):
    """A number of seconds above 0."""
    value = seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is too short (valid: more than 0 seconds)")
    return value


def payload(text):
    """A message that fits in one UDP datagram after the protocol's header."""
    data = text.encode("utf-8")
    if len(data) > MAX_PAYLOAD - HEADER.size:
        raise argparse.ArgumentTypeError(
            f"the message is {len(data)} bytes; one datagram holds at most "
            f"{MAX_PAYLOAD - HEADER.size} after the {HEADER.size}-byte header")
    return data


def datagram_size(text):
    """A UDP payload size, from the header's size up to one datagram."""
    if not text.strip().isdigit() or not HEADER.size <= int(text) <= MAX_PAYLOAD:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a datagram size (valid: {HEADER.size} to {MAX_PAYLOAD})")
    return int(text)


def packet_rate(text):
    """Messages per second, 0 for as fast as possible."""
    return non_negative(text, "a rate (valid: messages per second, 0 for as fast as possible)")


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
        description="Send numbered messages to a multicast group and measure the answers.",
        epilog="Environment: MULTICAST_GROUP, MULTICAST_PORT, MULTICAST_INTERFACE, "
               "MULTICAST_TTL, MULTICAST_MESSAGE, MULTICAST_COUNT, MULTICAST_INTERVAL, "
               "MULTICAST_TIMEOUT, MULTICAST_EXPECT, MULTICAST_RATE, MULTICAST_SIZE, "
               "MULTICAST_REPORT_INTERVAL.")
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
                        help="how many routers the messages may cross, 0 to 255 "
                             "(default: %(default)s)")
    parser.add_argument("-m", "--message", metavar="TEXT", type=payload,
                        default=environ.get("MULTICAST_MESSAGE", DEFAULT_MESSAGE),
                        help="the text each message carries (default: %(default)s)")
    parser.add_argument("-c", "--count", metavar="N", type=count_number,
                        default=environ.get("MULTICAST_COUNT", "1"),
                        help="messages (rounds) to send, 0 for no limit (default: %(default)s)")
    parser.add_argument("--interval", metavar="SECONDS", type=seconds,
                        default=environ.get("MULTICAST_INTERVAL", "1"),
                        help="pause between rounds (default: %(default)s)")
    parser.add_argument("--timeout", metavar="SECONDS", type=timeout_seconds,
                        default=environ.get("MULTICAST_TIMEOUT", "0.2"),
                        help="how long after its send an ack still counts "
                             "(default: %(default)s)")
    parser.add_argument("-e", "--expect", metavar="N", type=count_number,
                        default=environ.get("MULTICAST_EXPECT", "1"),
                        help="receivers every round must hear from, else exit "
                             "status 1 (default: %(default)s)")
    parser.add_argument("-r", "--rate", metavar="PPS", type=packet_rate,
                        default=environ.get("MULTICAST_RATE"),
                        help="throughput mode: send this many messages per second "
                             "without waiting for rounds, 0 for as fast as possible "
                             "(default: round mode)")
    parser.add_argument("--no-ack", action="store_true",
                        help="ask the receivers not to answer (throughput mode)")
    parser.add_argument("-s", "--size", metavar="BYTES", type=datagram_size,
                        default=environ.get("MULTICAST_SIZE"),
                        help="pad every datagram with zero bytes to this size "
                             "(default: header and message only)")
    parser.add_argument("--report-interval", metavar="SECONDS", type=seconds,
                        default=environ.get("MULTICAST_REPORT_INTERVAL", "0"),
                        help="throughput mode: print rate and loss this often, "
                             "0 for never (default: %(default)s)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per line instead of text")
    return parser


class Peer:
    """One receiver as seen from here: its acks and their round-trip times."""

    def __init__(self, address, name, first_sequence):
        self.address = address
        self.name = name
        self.first_sequence = first_sequence
        self.acks = 0
        self.duplicates = 0
        self.reordered = 0
        self.late = 0
        self.highest = 0
        self.acked = set()  # recent sequence numbers acked, for duplicates
        self.rtt_count = 0
        self.rtt_sum = 0.0
        self.rtt_squares = 0.0
        self.rtt_min = math.inf
        self.rtt_max = 0.0
        self.rtt_sample = []

    def label(self):
        return f"{self.address} ({self.name})" if self.name else self.address

    def take(self, sequence, rtt_ms, in_time, reordered):
        """Count one ack; return 'ack', 'late' or 'duplicate'.

        Reordering is the receiver's to see (acks are spread out on purpose,
        so their order here means nothing): it flags the ack."""
        if sequence < self.highest - SEQUENCE_WINDOW:  # too old to tell: surely late
            self.late += 1
            return "late"
        if sequence in self.acked:
            self.duplicates += 1
            return "duplicate"
        self.acked.add(sequence)
        if not in_time:
            self.late += 1
            return "late"
        self.acks += 1
        self.reordered += reordered
        self.record_rtt(rtt_ms)
        self.highest = max(self.highest, sequence)
        if len(self.acked) > 2 * SEQUENCE_WINDOW:
            self.acked = {s for s in self.acked if s >= self.highest - SEQUENCE_WINDOW}
        return "ack"

    def record_rtt(self, rtt_ms):
        self.rtt_count += 1
        self.rtt_sum += rtt_ms
        self.rtt_squares += rtt_ms * rtt_ms
        self.rtt_min = min(self.rtt_min, rtt_ms)
        self.rtt_max = max(self.rtt_max, rtt_ms)
        if len(self.rtt_sample) < RTT_SAMPLES:
            self.rtt_sample.append(rtt_ms)
        else:  # keep a uniform random sample of all RTTs (reservoir sampling)
            slot = random.randrange(self.rtt_count)
            if slot < RTT_SAMPLES:
                self.rtt_sample[slot] = rtt_ms

    def lost(self, closed_through):
        """Messages from its first ack up to closed_through that got no ack in time."""
        return max(0, closed_through - self.first_sequence + 1 - self.acks)

    def rtt(self):
        if not self.rtt_count:
            return None
        mean = self.rtt_sum / self.rtt_count
        ordered = sorted(self.rtt_sample)

        def percentile(p):
            return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

        return {"min": round(self.rtt_min, 3), "avg": round(mean, 3),
                "max": round(self.rtt_max, 3),
                "mdev": round(math.sqrt(max(0.0, self.rtt_squares / self.rtt_count
                                            - mean * mean)), 3),
                "p50": round(percentile(50), 3), "p99": round(percentile(99), 3)}

    def as_dict(self, closed_through):
        lost = self.lost(closed_through)
        expected = self.acks + lost
        return {"address": self.address, "name": self.name, "acks": self.acks, "lost": lost,
                "duplicates": self.duplicates, "reordered": self.reordered, "late": self.late,
                "loss_pct": round(100.0 * lost / expected, 2) if expected else 0.0,
                "rtt_ms": self.rtt()}


class Output:
    """Prints each event as a line of text, or as a JSON object with --json."""

    def __init__(self, as_json):
        self.as_json = as_json

    def event(self, kind, line, **fields):
        if self.as_json:
            print(json.dumps({"type": kind, **fields}))
        else:
            print(line)


class Sender:
    """Sends the messages and counts every reply that comes back."""

    def __init__(self, sock, args, out):
        self.sock = sock
        self.args = args
        self.out = out
        self.session = random.getrandbits(64)
        self.flags = NO_ACK if args.no_ack else 0
        padding = b"\0" * max(0, (args.size or 0) - HEADER.size - len(args.message))
        self.body = args.message + padding  # what follows the header, the same every time
        self.destination = (args.group, args.port)
        self.timeout_ns = int(args.timeout * 1e9)
        self.sequence = 0
        self.last_send_ns = 0
        self.open = collections.deque()  # (send time, sequence) of messages still open
        self.closed_through = 0  # every message up to this one has had its time
        self.peers = {}  # (address, name) -> Peer
        self.round_acks = []  # (peer, rtt) of the round under way
        self.stray = 0
        self.malformed = 0
        self.send_errors = 0
        self.send_failed = None  # why the latest message could not go out
        self.started = time.monotonic()

    def send(self):
        """Send the next message; False if the socket's buffer is full for now."""
        now_ns = time.monotonic_ns()
        header = HEADER.pack(MAGIC, VERSION, DATA, self.flags, self.session,
                             self.sequence + 1, now_ns)
        try:
            self.sock.sendto(header + self.body, self.destination)
        except BlockingIOError:
            return False
        except OSError as error:
            if self.sequence == 0:  # nothing ever went out: a set-up problem, not a fault
                raise
            # The network failed under us (a link went down): the message is
            # lost for every receiver, and we carry on.
            self.send_errors += 1
            self.send_failed = error.strerror
        else:
            self.send_failed = None
        self.sequence += 1
        self.last_send_ns = now_ns
        if not self.args.no_ack:
            self.open.append((now_ns, self.sequence))
            self.close_expired(now_ns)
        return True

    def close_expired(self, now_ns):
        """Messages older than the timeout can get no more acks that count."""
        while self.open and now_ns - self.open[0][0] > self.timeout_ns:
            self.closed_through = self.open.popleft()[1]

    def close_all(self):
        self.open.clear()
        self.closed_through = self.sequence

    def drain(self):
        """Read every reply waiting on the socket."""
        while True:
            try:
                data, address = self.sock.recvfrom(MAX_DATAGRAM)
            except BlockingIOError:
                return
            self.on_reply(data, address[0], time.monotonic_ns())

    def on_reply(self, data, address, now_ns):
        if data == PLAIN_ACK:  # a textbook receiver: counted for the latest message
            sequence, sent_ns, held_ms, name = self.sequence, self.last_send_ns, 0.0, ""
            flags = 0
        elif data.startswith(MAGIC) and len(data) >= HEADER.size + ACK_EXTRA.size:
            _, version, kind, flags, session, sequence, sent_ns = HEADER.unpack_from(data)
            if version != VERSION or kind != ACK or not 0 < sequence <= self.sequence:
                self.malformed += 1
                return
            if session != self.session:  # an ack meant for another sender
                self.stray += 1
                return
            held_ms = ACK_EXTRA.unpack_from(data, HEADER.size)[0] / 1000
            name = data[HEADER.size + ACK_EXTRA.size:].decode("utf-8", "replace")
        else:
            self.malformed += 1
            return
        if sequence == 0:
            self.stray += 1  # a plain ack before anything was sent
            return
        key = (address, name)
        peer = self.peers.get(key)
        if peer is None:
            peer = self.peers[key] = Peer(address, name, sequence)
        elapsed_ns = now_ns - sent_ns
        rtt_ms = max(0.0, elapsed_ns / 1e6 - held_ms)
        verdict = peer.take(sequence, rtt_ms, elapsed_ns <= self.timeout_ns,
                            bool(flags & REORDERED))
        if verdict == "ack" and sequence == self.sequence:
            self.round_acks.append((peer, rtt_ms))

    def wait(self, selector, stop, until, stoppable=True):
        """Process replies until the monotonic time until (or a stop request)."""
        while not (stoppable and stop.requested):
            remaining = until - time.monotonic()
            if remaining <= 0:
                return
            for key, _ in selector.select(remaining):
                if key.fileobj is self.sock:
                    self.drain()
                else:
                    key.fileobj.recv(64)  # the signal's wake-up byte

    def finish_round(self):
        """Print who answered this round; return whether enough receivers did."""
        heard = {peer for peer, _ in self.round_acks}
        missing = [peer for peer in self.peers.values() if peer not in heard]
        enough = len(heard) >= self.args.expect
        answers = ", ".join(f"{peer.label()} {rtt:.3f} ms" for peer, rtt in self.round_acks)
        text = f"seq {self.sequence}: {len(heard)} receiver{'s' * (len(heard) != 1)}"
        if self.send_failed:
            text += f" (not sent: {self.send_failed})"
        text += f": {answers}" if answers else ""
        if not enough:
            text += f" (expected {self.args.expect})"
        if missing:
            text += "; missing: " + ", ".join(peer.label() for peer in missing)
        self.out.event("round", text, seq=self.sequence, expected=self.args.expect,
                       ok=enough, send_error=self.send_failed,
                       acks=[{"address": peer.address, "name": peer.name,
                              "rtt_ms": round(rtt, 3)} for peer, rtt in self.round_acks],
                       missing=[{"address": peer.address, "name": peer.name}
                                for peer in missing])
        self.round_acks = []
        return enough

    def report(self, since, sent_then):
        now = time.monotonic()
        rate = (self.sequence - sent_then) / (now - since) if now > since else 0.0
        peers = [peer.as_dict(self.closed_through) for peer in self.peers.values()]
        text = f"{now - self.started:7.1f} s: {self.sequence} sent ({rate:.1f}/s)"
        for entry in peers:
            text += f"; {entry['address']} ({entry['name']}) {entry['acks']} acks, " \
                    f"{entry['lost']} lost"
        self.out.event("report", text, seconds=round(now - self.started, 3),
                       sent=self.sequence, rate_pps=round(rate, 1),
                       receivers=[{k: e[k] for k in ("address", "name", "acks", "lost")}
                                  for e in peers])

    def summary(self, short_rounds):
        elapsed = time.monotonic() - self.started
        receivers = [peer.as_dict(self.closed_through) for peer in self.peers.values()]
        lines = [f"--- {self.args.group}:{self.args.port} multicast statistics ---",
                 f"{self.sequence} sent in {elapsed:.1f} s "
                 f"({self.sequence / elapsed if elapsed else 0:.1f}/s), "
                 f"{len(receivers)} receiver{'s' * (len(receivers) != 1)}, {self.stray} stray, "
                 f"{self.malformed} malformed, {self.send_errors} send errors"]
        for peer, entry in zip(self.peers.values(), receivers):
            line = (f"{peer.label()}: {entry['acks']} acks, {entry['lost']} lost "
                    f"({entry['loss_pct']}%), {entry['duplicates']} duplicates, "
                    f"{entry['reordered']} reordered, {entry['late']} late")
            rtt = entry["rtt_ms"]
            if rtt:
                line += (f"; rtt min/avg/max/mdev = {rtt['min']}/{rtt['avg']}/{rtt['max']}/"
                         f"{rtt['mdev']} ms, p50 {rtt['p50']} ms, p99 {rtt['p99']} ms")
            lines.append(line)
        self.out.event("summary", "\n".join(lines), sent=self.sequence,
                       seconds=round(elapsed, 3), receivers=receivers, stray=self.stray,
                       malformed=self.malformed, send_errors=self.send_errors,
                       short_rounds=short_rounds)


def make_sender_socket(ttl, interface):
    """A non-blocking UDP socket set up to send multicast and read the acks."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # IP_MULTICAST_TTL: how many routers the datagrams may cross; one
    # unsigned byte ('B', 0 to 255). 1 keeps them on the local network.
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, struct.pack("B", ttl))
    if interface:
        # IP_MULTICAST_IF: send out of this interface instead of the one the
        # routing table picks for 224.0.0.0/4.
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
    # SO_RCVBUF: room for many acks arriving together (capped by net.core.rmem_max).
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.setblocking(False)
    return sock


def explain(error):
    """One line that says what a socket error means and what to do about it."""
    if error.errno in (errno.ENETUNREACH, errno.ENODEV, errno.EADDRNOTAVAIL):
        return ("no route for multicast: add a route for 224.0.0.0/4 or a default "
                "route, or pass --interface ADDRESS")
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"not allowed: {error.strerror} (a firewall?)"
    return error.strerror or str(error)


class StopRequest:
    """SIGTERM and SIGINT set a flag and wake the event loop through a socket."""

    def __init__(self, selector):
        self.requested = False
        self.wakeup, self.writer = socket.socketpair()
        for end in (self.wakeup, self.writer):
            end.setblocking(False)
        signal.set_wakeup_fd(self.writer.fileno(), warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.request)
        selector.register(self.wakeup, selectors.EVENT_READ)

    def request(self, signum, frame):
        self.requested = True


def run_rounds(sender, selector, stop):
    """Round mode: send, wait --timeout for acks, report; return the short rounds."""
    args = sender.args
    short_rounds = 0
    while not stop.requested and (args.count == 0 or sender.sequence < args.count):
        if sender.sequence:
            sender.wait(selector, stop, time.monotonic() + args.interval)
            if stop.requested:
                break
        while not sender.send():  # the buffer is full: wait until it drains
            selector.select(0.001)
        deadline = time.monotonic() + args.timeout
        sender.wait(selector, stop, deadline)
        if stop.requested:  # finish the round under way, if it ends within a second
            sender.wait(selector, stop, min(deadline, time.monotonic() + 1.0), stoppable=False)
        sender.drain()
        sender.close_all()
        if not sender.finish_round():
            short_rounds += 1
    return short_rounds


def run_rate(sender, selector, stop):
    """Throughput mode: send at --rate without waiting for rounds."""
    args = sender.args
    gap = 1.0 / args.rate if args.rate else 0.0
    next_send = time.monotonic()
    next_report = next_send + args.report_interval if args.report_interval else None
    last_report = (next_send, 0)
    while not stop.requested and (args.count == 0 or sender.sequence < args.count):
        now = time.monotonic()
        if now >= next_send:
            if sender.send():
                next_send = max(next_send + gap, now - 0.1)  # no burst to catch up
            else:
                selector.select(0.001)  # the socket's buffer is full
            if sender.sequence % 64 == 0 or gap:
                sender.drain()
        else:
            sender.wait(selector, stop, next_send)
        if next_report is not None and now >= next_report:
            sender.close_expired(time.monotonic_ns())
            sender.report(*last_report)
            last_report = (now, sender.sequence)
            next_report += args.report_interval
    if not args.no_ack:  # the last messages' acks may still come, even when stopping
        sender.wait(selector, stop, time.monotonic() + min(args.timeout, 1.0), stoppable=False)
        sender.drain()
    sender.close_all()
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.size is not None and args.size < HEADER.size + len(args.message):
        parser.error(f"--size {args.size} is smaller than the header and message "
                     f"({HEADER.size + len(args.message)} bytes)")
    if args.no_ack and args.rate is None:
        parser.error("--no-ack goes with --rate (round mode waits for acks)")
    sys.stdout.reconfigure(line_buffering=True)  # every line shows up at once in `docker logs`
    out = Output(args.json)
    selector = selectors.DefaultSelector()
    stop = StopRequest(selector)
    status = 0
    try:
        sock = make_sender_socket(args.ttl, args.interface)
        selector.register(sock, selectors.EVENT_READ)
        sender = Sender(sock, args, out)
        out.event("start", f"sending to {args.group}:{args.port}, session "
                  f"{sender.session:016x}, ttl {args.ttl}", group=args.group, port=args.port,
                  session=f"{sender.session:016x}", ttl=args.ttl)
        if args.rate is None:
            short_rounds = run_rounds(sender, selector, stop)
        else:
            run_rate(sender, selector, stop)
            answered = sum(1 for peer in sender.peers.values() if peer.acks)
            short_rounds = int(not args.no_ack and answered < args.expect)
    except OSError as error:
        print(f"{os.path.basename(sys.argv[0])}: error: {explain(error)}", file=sys.stderr)
        return 1
    sock.close()
    sender.summary(short_rounds)
    if short_rounds:
        status = 1
        print(f"{os.path.basename(sys.argv[0])}: {short_rounds} of {sender.sequence} rounds "
              f"heard from fewer than {args.expect} receivers"
              if args.rate is None else
              f"{os.path.basename(sys.argv[0])}: fewer than {args.expect} receivers answered",
              file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
