#!/usr/bin/env python3
"""A multicast receiver that answers, counts and reports: the measuring half.

Joins a group, answers every message, and keeps statistics per sender:
messages received, lost (gaps in the sequence numbers), duplicated and
reordered. Run it, then socket_multicast_sender.py (or multicast_sender.py):

    python3 socket_multicast_receiver.py
    python3 socket_multicast_receiver.py --interface 127.0.0.1 --name left
    python3 socket_multicast_receiver.py --json --quiet --report-interval 1

It answers a protocol message (see README.md, "The wire protocol") with a
protocol ack, and a plain text datagram, such as the textbook sender's, with
b'ack'. Anything else is counted as malformed and not answered. The summary
is printed when it stops (Ctrl-C, SIGTERM, or --count messages taken).
Exit status: 0 success, 1 a socket error, 2 bad usage.
"""

import argparse
import errno
import heapq
import ipaddress
import json
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
PLAIN_ACK = b"ack"
MAX_DATAGRAM = 65535  # the largest IPv4 datagram: a buffer this size never cuts one short
RECEIVE_BUFFER = 4 * 1024 * 1024  # room for bursts while acks are being sent

# The wire protocol, version 1. Every message starts with this header, in
# network byte order: magic, version, kind, flags, one pad byte, the sender's
# session id, the sequence number and the sender's send time (nanoseconds on
# its own monotonic clock, echoed back untouched).
HEADER = struct.Struct("!4sBBBxQQQ")
MAGIC = b"MCK1"
VERSION = 1
DATA, ACK = 1, 2
NO_ACK = 0x01  # flag in a message: the sender asks not to be answered (throughput mode)
REORDERED = 0x02  # flag in an ack: the message arrived after a later one
ACK_EXTRA = struct.Struct("!I")  # after an ack's header: microseconds it was held back
SEQUENCE_WINDOW = 4096  # sequence numbers remembered per sender, for duplicates


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


def seconds(text):
    """A number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (valid: 0 or more)")
    return value


def receiver_name(text):
    """A name for the acks: 1 to 200 bytes of UTF-8."""
    if not 1 <= len(text.encode("utf-8")) <= 200:
        raise argparse.ArgumentTypeError(f"{text!r} is not a name (valid: 1 to 200 bytes)")
    return text


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
        description="Join a multicast group, answer every message and count what arrives.",
        epilog="Environment: MULTICAST_GROUP, MULTICAST_PORT, MULTICAST_INTERFACE, "
               "MULTICAST_COUNT, MULTICAST_NAME, MULTICAST_ACK_JITTER, "
               "MULTICAST_REPORT_INTERVAL.")
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
                        help="messages to take before exiting, 0 for no limit "
                             "(default: %(default)s)")
    parser.add_argument("-n", "--name", metavar="NAME", type=receiver_name,
                        default=environ.get("MULTICAST_NAME") or socket.gethostname(),
                        help="the name the acks carry; give each receiver on one host "
                             "its own (default: the host name, %(default)s)")
    parser.add_argument("--ack-jitter", metavar="SECONDS", type=seconds,
                        default=environ.get("MULTICAST_ACK_JITTER", "0.01"),
                        help="hold each ack back by a random delay up to this long, so "
                             "many receivers do not answer at once (default: %(default)s)")
    parser.add_argument("--report-interval", metavar="SECONDS", type=seconds,
                        default=environ.get("MULTICAST_REPORT_INTERVAL", "0"),
                        help="print rate and loss this often, 0 for never "
                             "(default: %(default)s)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="do not print a line for every datagram")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per line instead of text")
    return parser


class SenderStats:
    """What one sender's session looked like from here: sequence numbers seen."""

    def __init__(self, address, session, sequence):
        self.address = address
        self.session = session
        self.highest = sequence
        self.missing = set()  # gaps below highest that may still be filled
        self.received = 1
        self.lost_for_good = 0  # gaps that fell out of the window
        self.duplicates = 0
        self.reordered = 0

    def take(self, sequence):
        """Count one message; return 'new', 'reordered' or 'duplicate'."""
        if sequence > self.highest:
            self.missing.update(range(max(self.highest + 1, sequence - SEQUENCE_WINDOW),
                                      sequence))
            self.lost_for_good += max(0, sequence - SEQUENCE_WINDOW - self.highest - 1)
            self.highest = sequence
            self.received += 1
            if self.received % 256 == 0:
                self._forget_old_gaps()
            return "new"
        if sequence in self.missing:
            self.missing.discard(sequence)
            self.received += 1
            self.reordered += 1
            return "reordered"
        self.duplicates += 1
        return "duplicate"

    def _forget_old_gaps(self):
        """Gaps older than the window will not be filled now: count them as lost."""
        oldest = self.highest - SEQUENCE_WINDOW
        old = {sequence for sequence in self.missing if sequence < oldest}
        self.missing -= old
        self.lost_for_good += len(old)

    @property
    def lost(self):
        return self.lost_for_good + len(self.missing)

    def as_dict(self):
        expected = self.received + self.lost
        return {"address": self.address, "session": f"{self.session:016x}",
                "received": self.received, "lost": self.lost,
                "duplicates": self.duplicates, "reordered": self.reordered,
                "loss_pct": round(100.0 * self.lost / expected, 2) if expected else 0.0}


class Receiver:
    """The event loop: read datagrams, answer them, count them, report."""

    def __init__(self, sock, args, out):
        self.sock = sock
        self.args = args
        self.out = out
        self.name = args.name.encode("utf-8")
        self.senders = {}  # (address, session) -> SenderStats
        self.pending_acks = []  # heap of (due time, order, queued at, datagram, destination)
        self.order = 0
        self.taken = 0
        self.malformed = 0
        self.plain = 0
        self.started = time.monotonic()
        self.last_report = (self.started, 0)

    def handle(self, data, address, truncated):
        """Classify one datagram, count it and schedule its answer."""
        where = f"{address[0]}:{address[1]}"
        if truncated:
            self.reject(where, address, f"cut to {len(data)} bytes")
            return
        if data.startswith(MAGIC):
            self.handle_protocol(data, address, where)
            return
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            self.reject(where, address, "not text")
            return
        self.plain += 1
        self.taken += 1
        self.schedule(PLAIN_ACK, address, 0.0)  # answer first, then print
        if not self.args.quiet:
            self.out.event("plain", f"received {len(data)} bytes from {where}: {data!r}",
                           address=address[0], port=address[1], bytes=len(data), text=text)

    def handle_protocol(self, data, address, where):
        if len(data) < HEADER.size:
            reason = f"a header of {len(data)} bytes"
        else:
            _, version, kind, flags, session, sequence, sent_ns = HEADER.unpack_from(data)
            reason = (f"protocol version {version}" if version != VERSION else
                      f"message kind {kind}" if kind != DATA else None)
        if reason:
            self.reject(where, address, reason)
            return
        key = (address[0], session)
        stats = self.senders.get(key)
        if stats is None:
            stats = self.senders[key] = SenderStats(address[0], session, sequence)
            verdict = "new"
        else:
            verdict = stats.take(sequence)
        self.taken += 1
        if not flags & NO_ACK:  # answer first, then print
            ack_flags = REORDERED if verdict == "reordered" else 0
            header = HEADER.pack(MAGIC, VERSION, ACK, ack_flags, session, sequence, sent_ns)
            self.schedule(header, address, random.uniform(0, self.args.ack_jitter))
        if not self.args.quiet:
            message = data[HEADER.size:].rstrip(b"\0")
            note = "" if verdict == "new" else f" ({verdict})"
            self.out.event("message", f"received seq {sequence} from {where}{note}, "
                           f"session {session:016x}, {len(data)} bytes: {message!r}",
                           address=address[0], port=address[1], session=f"{session:016x}",
                           seq=sequence, bytes=len(data), verdict=verdict)

    def reject(self, where, address, reason):
        """Count a datagram that is neither the protocol nor text; never answer it."""
        self.malformed += 1
        if not self.args.quiet:  # under a flood of rubbish a line each would add to it
            self.out.event("malformed", f"malformed datagram from {where}: {reason}",
                           address=address[0], reason=reason)

    def schedule(self, datagram, destination, delay):
        """Answer now, or queue the answer to go out after delay seconds."""
        now = time.monotonic()
        if delay <= 0:
            self.answer(datagram, destination, 0.0)
            return
        self.order += 1
        heapq.heappush(self.pending_acks, (now + delay, self.order, now, datagram, destination))

    def send_due_acks(self):
        """Send every queued answer whose time has come; return seconds until the next."""
        now = time.monotonic()
        while self.pending_acks and self.pending_acks[0][0] <= now:
            _, _, queued, datagram, destination = heapq.heappop(self.pending_acks)
            self.answer(datagram, destination, now - queued)
        return self.pending_acks[0][0] - now if self.pending_acks else None

    def flush_acks(self):
        """Send every held-back answer now: on the way out, late beats never."""
        now = time.monotonic()
        while self.pending_acks:
            _, _, queued, datagram, destination = heapq.heappop(self.pending_acks)
            self.answer(datagram, destination, now - queued)

    def answer(self, datagram, destination, held):
        """Send one answer; a protocol ack says how long it was held back."""
        if datagram != PLAIN_ACK:
            datagram += ACK_EXTRA.pack(min(int(held * 1e6), 2**32 - 1)) + self.name
        try:
            self.sock.sendto(datagram, destination)
        except OSError as error:  # one unreachable sender must not stop the others' acks
            self.out.event("error", f"could not answer {destination[0]}: {error.strerror}",
                           address=destination[0], error=error.strerror)

    def report(self, now):
        """One line of rate and loss since the last report."""
        since, taken_then = self.last_report
        rate = (self.taken - taken_then) / (now - since) if now > since else 0.0
        lost = sum(stats.lost for stats in self.senders.values())
        self.out.event("report", f"{now - self.started:7.1f} s: {self.taken} received "
                       f"({rate:.1f}/s), {lost} lost, {self.malformed} malformed",
                       seconds=round(now - self.started, 3), received=self.taken,
                       rate_pps=round(rate, 1), lost=lost, malformed=self.malformed)
        self.last_report = (now, self.taken)

    def summary(self):
        senders = [stats.as_dict() for stats in self.senders.values()]
        totals = {field: sum(entry[field] for entry in senders)
                  for field in ("received", "lost", "duplicates", "reordered")}
        totals["received"] += self.plain
        elapsed = time.monotonic() - self.started
        lines = [f"--- {self.args.group}:{self.args.port} receiver statistics ---",
                 f"{totals['received']} received, {totals['lost']} lost, "
                 f"{totals['duplicates']} duplicates, {totals['reordered']} reordered, "
                 f"{self.malformed} malformed, {self.plain} plain, in {elapsed:.1f} s"]
        for entry in senders:
            lines.append(f"from {entry['address']} session {entry['session']}: "
                         f"{entry['received']} received, {entry['lost']} lost "
                         f"({entry['loss_pct']}%), {entry['duplicates']} duplicates, "
                         f"{entry['reordered']} reordered")
        self.out.event("summary", "\n".join(lines), **totals, malformed=self.malformed,
                       plain=self.plain, seconds=round(elapsed, 3), senders=senders)


class Output:
    """Prints each event as a line of text, or as a JSON object with --json."""

    def __init__(self, as_json):
        self.as_json = as_json

    def event(self, kind, line, **fields):
        if self.as_json:
            print(json.dumps({"type": kind, **fields}))
        else:
            print(line)


def make_receiver_socket(group, port, interface):
    """A non-blocking UDP socket bound to the group's port that has joined the group."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # SO_REUSEADDR: let several receivers on one host listen on the same port;
    # each of them gets its own copy of every multicast datagram.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # SO_RCVBUF: a bigger queue for datagrams that arrive while we are busy
    # (the kernel caps it at net.core.rmem_max).
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    # Bind to the group address, not '': a socket bound to the wildcard
    # address gets every group joined on this host (Linux's IP_MULTICAST_ALL).
    sock.bind((group, port))
    # IP_ADD_MEMBERSHIP: join the group on one interface. The value is a
    # struct ip_mreq: the group's 4 bytes, then the interface's 4 bytes
    # (0.0.0.0: the interface the routing table picks for the group).
    membership = socket.inet_aton(group) + socket.inet_aton(interface or "0.0.0.0")
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    sock.setblocking(False)
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


class StopRequest:
    """SIGTERM and SIGINT set a flag and wake the event loop through a socket."""

    def __init__(self, selector):
        self.requested = False
        self.wakeup, writer = socket.socketpair()
        self.writer = writer
        for end in (self.wakeup, writer):
            end.setblocking(False)
        signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.request)
        selector.register(self.wakeup, selectors.EVENT_READ)

    def request(self, signum, frame):
        self.requested = True


def run(receiver, selector, stop):
    """Serve until stopped or until --count messages are taken."""
    args = receiver.args
    next_report = time.monotonic() + args.report_interval if args.report_interval else None
    while not stop.requested and not (args.count and receiver.taken >= args.count):
        waits = [receiver.send_due_acks()]
        if next_report is not None:
            waits.append(next_report - time.monotonic())
        waits = [max(0.0, wait) for wait in waits if wait is not None]
        for key, _ in selector.select(min(waits) if waits else None):
            if key.fileobj is receiver.sock:
                drain(receiver)
            else:
                key.fileobj.recv(64)  # the signal's wake-up byte
        if next_report is not None and time.monotonic() >= next_report:
            receiver.report(time.monotonic())
            next_report += args.report_interval
    receiver.flush_acks()  # answer everything that was taken


def drain(receiver):
    """Read every datagram waiting on the socket."""
    while not (receiver.args.count and receiver.taken >= receiver.args.count):
        try:
            data, _, flags, address = receiver.sock.recvmsg(MAX_DATAGRAM)
        except BlockingIOError:
            return
        receiver.handle(data, address, bool(flags & socket.MSG_TRUNC))


def main(argv=None):
    args = build_parser().parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # every line shows up at once in `docker logs`
    out = Output(args.json)
    selector = selectors.DefaultSelector()
    stop = StopRequest(selector)
    try:
        sock = make_receiver_socket(args.group, args.port, args.interface)
    except OSError as error:
        print(f"{os.path.basename(sys.argv[0])}: error: {explain(error, args.port)}",
              file=sys.stderr)
        return 1
    selector.register(sock, selectors.EVENT_READ)
    out.event("start", f"listening on {args.group}:{args.port} as {args.name}",
              group=args.group, port=args.port, name=args.name,
              interface=args.interface or "")
    receiver = Receiver(sock, args, out)
    status = 0
    try:
        run(receiver, selector, stop)
    except OSError as error:
        print(f"{os.path.basename(sys.argv[0])}: error: {explain(error, args.port)}",
              file=sys.stderr)
        status = 1
    sock.close()  # closing the socket also leaves the group
    receiver.summary()
    return status


if __name__ == "__main__":
    sys.exit(main())
