#!/usr/bin/env python3
"""A multicast receiver that answers, counts and reports: the measuring half.

Joins a group, answers every message, and keeps statistics per sender:
messages received, lost (gaps in the sequence numbers), duplicated and
reordered. Run it, then socket_multicast_sender.py (or multicast_sender.py):

    python3 socket_multicast_receiver.py
    python3 socket_multicast_receiver.py --interface lo --name left
    python3 socket_multicast_receiver.py --json --quiet --report-interval 1

It answers a protocol message (see docs/measuring.md, "The wire protocol") with a
protocol ack, and a plain text datagram, such as the textbook sender's, with
b'ack'. When a sender ends its run it says so with an end-of-run message:
messages up to its last one that never came count as lost, and the receiver
answers with its own report of the session. Anything else is counted as
malformed and not answered. The summary is printed when it stops (Ctrl-C,
SIGTERM, or --count messages taken).
Exit status: 0 success, 1 a socket error, 2 bad usage.

Top to bottom:
    constants          every setting of the program's own, named
    shared blocks      the code both socket scripts hold alike, written from blocks/ by sync.py
    the socket         the UDP sockets that join the groups, as each system lays out its options
    sessions           what the receiver counts: Session, SessionTable, classify, HostDrops
    answers            the acks and reports it sends back: HeldAcks, RateLimit, Answerer, FastLane
    the receiver       TrainLane (a train at once), Receiver (answer, count, print), read_some, run
    printing           a line per datagram (paced), the reports and the summary
    the command line   the options, their validators and checks, the Settings the core takes
    main               parse, check, open the socket, run, print the summary
"""

import argparse
import collections
import errno
import functools
import hashlib
import heapq
import hmac
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
import typing

# ==== constants ====
DEFAULT_GROUP = "224.10.10.10"
DEFAULT_PORT = 10000
MAX_DATAGRAM = 65535  # the largest IPv4 datagram: a buffer this size never cuts one short
RECEIVE_BUFFER = 4 * 1024 * 1024  # room for bursts while acks are being sent
READS_PER_WAKEUP = 256  # datagrams read before looking at signals, due acks and reports
IDLE_WAIT = 0.25  # seconds a blocking receive waits at most (Linux), between stop checks
# A receive timeout runs late by up to two kernel ticks (8 ms measured at 250 Hz,
# 20 at 100 Hz): a blocking receive wakes this much before anything is due.
TIMER_SLACK = 0.025
# A read that takes only what is queued, a send that waits for no room (0: not named here).
NO_WAIT = getattr(socket, "MSG_DONTWAIT", 0)
LINES_PER_SECOND = 20  # more than a reader can follow: the rest are counted, not printed
GROUP_FIELDS = ("received", "lost", "duplicates", "reordered", "too_late")  # summed by group
WORST_SHOWN = 5  # groups (and sessions, with several groups) named in the text summary
MAX_SESSIONS = 1024  # sessions tracked at once (and addresses rate-limited, answered)
RETIRED_BITS = 1 << 23  # with a key: a 1 MiB filter of the sessions evicted
# SO_RXQ_OVFL: Linux's number for it (Python does not name it); with it set,
# each datagram comes with the count of datagrams the socket's full buffer dropped.
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)
# SO_MEMINFO: Linux's number for it (4.12 and later; Python does not name it): the
# socket's memory counters, an array of 32-bit numbers whose ninth (SK_MEMINFO_DROPS)
# is the datagrams it dropped so far, counted at the moment we ask.
SO_MEMINFO = getattr(socket, "SO_MEMINFO", 55)
SK_MEMINFO_DROPS = 8
DROPS_READ_EVERY = 0.05  # seconds between two readings of many sockets' drop counts
NOT_NOW = {errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS}  # a send that cannot go out now
MAX_SEQUENCE = 2**64 - 1  # the highest sequence number the header holds: no next one
# Several groups on one socket (Linux): the options that keep to a socket only the groups
# it joined (IP_MULTICAST_ALL, IPV6_MULTICAST_ALL) and that tell each datagram's
# destination, its group (IP_PKTINFO, IPV6_RECVPKTINFO): (level, option, the kind of
# control message, where the address starts in it) by IP version.
MULTICAST_ALL = {4: (0, 49), 6: (41, 29)}
PKTINFO = {4: (0, 8, 8, 8), 6: (41, 49, 50, 0)}
# The per-socket limit of groups, where Linux tells it (IPv6 has none but memory).
MAX_MEMBERSHIPS = "/proc/sys/net/ipv4/igmp_max_memberships"
# Trains (Linux 5.0 and later): UDP_GRO lets one read bring many datagrams of one size,
# with a control message of this (level, kind) telling the size (Linux's numbers).
TRAIN_MESSAGE = (getattr(socket, "SOL_UDP", 17), getattr(socket, "UDP_GRO", 104))
# Room for four control messages: the drop count, the train's datagram size, the TTL
# and the destination (in the order the kernel writes them: none may be cut off).
ANCILLARY_SPACE = (3 * socket.CMSG_SPACE(4) + socket.CMSG_SPACE(20)
                   if hasattr(socket, "CMSG_SPACE") else 0)
# A plain int: arithmetic on socket.MSG_TRUNC (an enum.IntFlag) runs Python code,
# microseconds per datagram before the answer goes out.
MSG_TRUNC = int(getattr(socket, "MSG_TRUNC", 0))


# ==== shared blocks ====
# Blocks: protocol, authentication, output, arguments, signals, pipe, counting,
# receiving
# Generated from blocks/ by python3 blocks/sync.py: edit them there, never here.
# ---- block protocol: generated from blocks/protocol.py (python3 blocks/sync.py) ----
# The wire protocol, version 1. Every message starts with this header, in
# network byte order: magic, version, kind, flags, one byte (0 in a message; in an
# ack or a report the receiver's instance, a number from 1 to 255 it picked at
# start, which tells apart two receivers that answer under one name from one
# host), the sender's session id, the sequence number and the send time
# (nanoseconds on the sender's monotonic clock, echoed back untouched).
HEADER = struct.Struct("!4sBBBxQQQ")
MAGIC = b"MCK1"
VERSION = 1
DATA, ACK, END, REPORT = 1, 2, 3, 4  # the kinds of message
NO_ACK = 0x01  # flag in a message: receivers count it but do not answer it
REORDERED = 0x02  # flag in an ack: the receiver got this message after a later one
END_SEEN = 0x04  # flag in a report: the receiver has seen the sender's end of run
UNSENT_COUNT = 0x08  # flag in a report: REPORT_UNSENT follows the counts
ARRIVAL = 0x10  # flag in an ack or a report: how the message arrived follows (ACK_ARRIVAL...)
SHARED_DROPS = 0x20  # flag in a report: other traffic came to its socket during the session,
# so some of the drops it counts for the session may have been that traffic's
INSTANCE = 7  # the header's byte that holds a receiver's instance
ACK_EXTRA = struct.Struct("!I")  # after an ack's header: microseconds it was held back
# After a report's header: microseconds held back, then the receiver's counts
# for the session: received, lost, duplicates, reordered, and dropped by its host
# while the session lasted (from its first datagram to the report).
REPORT_EXTRA = struct.Struct("!IQQQQQ")
# Then (UNSENT_COUNT): the session's acks it did not send: refused by its rate limit
# (--max-ack-rate), or by a send buffer that was full (a slow link).
REPORT_UNSENT = struct.Struct("!Q")
# With ARRIVAL, after the ack's extra: the TTL (IPv6: hop limit) the message answered
# arrived with. After the report's counts: the TTL its end of run arrived with, the
# microseconds from the receiver's join to its first message of the session
# (NOT_MEASURED if it cannot tell) and that message's send time, echoed.
ACK_ARRIVAL = struct.Struct("!B")
REPORT_ARRIVAL = struct.Struct("!BIQ")
NOT_MEASURED = 2**32 - 1
# The mesh (the sender's --mesh): each peer's probes are DATA messages with the MESH flag,
# to the group under its session id (even) and to each peer under that id plus one
# (unicast), PROBE_EXTRA after the header (the TTL they were sent with), then its name.
# Its SUMMARY to the group says what it counts: SUMMARY_HEAD (part, parts, its multicast
# TTL, its name's length), the name, then a SUMMARY_CELL for each peer and kind: the
# peer's address (IPv4 mapped into IPv6), the kind (0 multicast, 1 unicast), the TTL its
# latest probe came with (0: not told), its probes received, lost, duplicated and
# reordered here, our probes sent to it, and their round trips' p50 and p99 (microseconds,
# NOT_MEASURED if none).
SUMMARY = 5
MESH = 0x40  # flag in a message: a mesh peer's probe
LAST_SUMMARY = 0x04  # flag in a summary: the peer's rounds are done, its counts of sent final
PROBE_EXTRA = struct.Struct("!B")
SUMMARY_HEAD = struct.Struct("!BBBB")
SUMMARY_CELL = struct.Struct("!16sBBIIIIIII")
PLAIN_ACK = b"ack"  # what a textbook receiver answers
MAX_NAME = 200  # bytes of a receiver's name
MAX_JUMP = 1 << 24  # a sequence further ahead than this is rubbish, not loss
END_REPEATS = 3  # end-of-run messages a sender sends, so that one loss does not hide the end
# No answer is larger than the datagram it answers, so nobody can use a receiver to
# amplify traffic: a sender pads a message that asks for an ack to ACK_ROOM bytes
# (room for a name of 32 bytes; a receiver cuts a longer one to fit), and an end of
# run to REPORT_ROOM bytes (room for a report with any name).
ACK_ROOM = HEADER.size + ACK_EXTRA.size + ACK_ARRIVAL.size + 32
REPORT_ROOM = (HEADER.size + REPORT_EXTRA.size + REPORT_UNSENT.size + REPORT_ARRIVAL.size
               + MAX_NAME)


# The answers, as named records: each packed and read by the two functions beside
# it, the receiver packing, the sender reading. A new figure is a field here, its
# bytes in the pack and unpack below, and its printing.
class Ack(typing.NamedTuple):
    """An ack: the message's header fields echoed, the receiver's instance, the
    microseconds it held the ack back, the TTL the message came with (None: not
    told) and the receiver's name."""
    flags: int
    session: int
    sequence: int
    sent_ns: int
    instance: int = 0
    held_us: int = 0
    ttl: typing.Optional[int] = None
    name: bytes = b""


def pack_ack(ack, room=65535):
    """The ack's bytes, its name cut (on a whole character) to fit room bytes; None if
    even the rest does not fit."""
    flags = ack.flags | (ARRIVAL if ack.ttl is not None else 0)
    fixed = bytearray(HEADER.pack(MAGIC, VERSION, ACK, flags, ack.session, ack.sequence,
                                  ack.sent_ns) + ACK_EXTRA.pack(ack.held_us))
    fixed[INSTANCE] = ack.instance
    if ack.ttl is not None:
        fixed += ACK_ARRIVAL.pack(ack.ttl)
    return with_name(fixed, ack.name, room)


def unpack_ack(data):
    """The Ack in data (kind ACK, without its tag); None if it is too short."""
    _, _, _, flags, session, sequence, sent_ns = HEADER.unpack_from(data)
    name_at = HEADER.size + ACK_EXTRA.size + (ACK_ARRIVAL.size if flags & ARRIVAL else 0)
    if len(data) < name_at:
        return None
    [held_us] = ACK_EXTRA.unpack_from(data, HEADER.size)
    ttl = data[HEADER.size + ACK_EXTRA.size] if flags & ARRIVAL else None
    return Ack(flags, session, sequence, sent_ns, data[INSTANCE], held_us, ttl,
               bytes(data[name_at:name_at + MAX_NAME]))


class Arrival(typing.NamedTuple):
    """How a session's messages came to a receiver, in its report."""
    ttl: int  # the TTL (IPv6: hop limit) its end of run arrived with; 0: not known
    join_to_first_us: int  # from its join to the session's first message it got
    first_sent_ns: int  # that message's send time, echoed


class Report(typing.NamedTuple):
    """A receiver's report on one session, its answer to the end of run."""
    flags: int
    session: int
    last_seq: int
    sent_ns: int
    instance: int = 0
    held_us: int = 0
    received: int = 0
    lost: int = 0
    duplicates: int = 0
    reordered: int = 0
    host_drops: int = 0  # dropped by its host while the session lasted
    unsent: typing.Optional[int] = None  # its acks it did not send (None: not told)
    arrival: typing.Optional[Arrival] = None
    name: bytes = b""


def pack_report(report, room=65535):
    """The report's bytes, its name cut to fit room bytes; None if the rest does not."""
    flags = (report.flags | (UNSENT_COUNT if report.unsent is not None else 0)
             | (ARRIVAL if report.arrival is not None else 0))
    fixed = bytearray(
        HEADER.pack(MAGIC, VERSION, REPORT, flags, report.session, report.last_seq,
                    report.sent_ns)
        + REPORT_EXTRA.pack(report.held_us, report.received, report.lost, report.duplicates,
                            report.reordered, report.host_drops))
    fixed[INSTANCE] = report.instance
    if report.unsent is not None:
        fixed += REPORT_UNSENT.pack(report.unsent)
    if report.arrival is not None:
        fixed += REPORT_ARRIVAL.pack(*report.arrival)
    return with_name(fixed, report.name, room)


def unpack_report(data):
    """The Report in data (kind REPORT, without its tag); None if it is too short."""
    _, _, _, flags, session, last_seq, sent_ns = HEADER.unpack_from(data)
    unsent_at = HEADER.size + REPORT_EXTRA.size
    arrival_at = unsent_at + (REPORT_UNSENT.size if flags & UNSENT_COUNT else 0)
    name_at = arrival_at + (REPORT_ARRIVAL.size if flags & ARRIVAL else 0)
    if len(data) < name_at:
        return None
    counts = REPORT_EXTRA.unpack_from(data, HEADER.size)
    unsent = REPORT_UNSENT.unpack_from(data, unsent_at)[0] if flags & UNSENT_COUNT else None
    arrival = (Arrival(*REPORT_ARRIVAL.unpack_from(data, arrival_at)) if flags & ARRIVAL
               else None)
    return Report(flags, session, last_seq, sent_ns, data[INSTANCE], *counts, unsent, arrival,
                  bytes(data[name_at:name_at + MAX_NAME]))


def with_name(fixed, name, room):
    """fixed (a bytearray) and as much of name as fits in room bytes, cut on a whole
    UTF-8 character; None if fixed alone is larger than room."""
    if len(fixed) > room:
        return None
    return bytes(fixed + name[:room - len(fixed)].decode("utf-8", "ignore").encode("utf-8"))


@functools.lru_cache(maxsize=64)
def counting_words(count):
    """Two integers whose count 4-byte big-endian words read 1, 1, 1, ... and 0, 1, 2, ...:
    first * the one + the other reads first, first + 1, first + 2, ..."""
    return (sum(1 << 32 * (count - 1 - at) for at in range(count)),
            sum(at << 32 * (count - 1 - at) for at in range(count)))


def numbers_column(first, count):
    """The low words of a train's sequence numbers, first to first + count - 1 (all below
    2**32), in network byte order, as a column of 4-byte words: one integer's bytes."""
    ones, steps = counting_words(count)
    return memoryview((steps + first * ones).to_bytes(4 * count, "big")).cast("I")
# ---- end of block protocol ----


# ---- block authentication: generated from blocks/authentication.py (python3 blocks/sync.py) ----
AUTHENTICATED = 0x80  # flag in any kind: the datagram ends with an HMAC-SHA256 tag
TAG_SIZE = 16  # bytes of the tag: HMAC-SHA256 cut to 128 bits, as in TWAMP
MIN_KEY = 16  # bytes a key must have at least


def sign(datagram, key):
    """The datagram with its tag: HMAC-SHA256 over all of it, cut to TAG_SIZE bytes."""
    return datagram + hmac.new(key, datagram, hashlib.sha256).digest()[:TAG_SIZE]


def verify(datagram, key):
    """The datagram without its tag if the tag is right, else None (constant time)."""
    body, tag = datagram[:-TAG_SIZE], datagram[-TAG_SIZE:]
    expected = hmac.new(key, body, hashlib.sha256).digest()[:TAG_SIZE]
    return body if len(datagram) > TAG_SIZE and hmac.compare_digest(tag, expected) else None


class Key(bytes):
    """A key, and the file it came from (for the warning); never printed."""

    path = None

    def __repr__(self):
        return "Key(...)"


def key_file(path):
    """The key in a file: its bytes, less one trailing newline, at least MIN_KEY of them."""
    try:
        with open(path, "rb") as stream:
            key = stream.read(65536)
    except OSError as error:
        raise argparse.ArgumentTypeError(
            f"cannot read the key file {path!r}: {error.strerror}") from None
    key = key[:-2] if key.endswith(b"\r\n") else key[:-1] if key.endswith(b"\n") else key
    if len(key) < MIN_KEY:
        raise argparse.ArgumentTypeError(
            f"the key file {path!r} holds {len(key)} bytes (valid: at least {MIN_KEY})")
    key = Key(key)
    key.path = path
    return key


def warn_if_readable_by_others(key, program):
    """A key that every user of this host can read is no secret: say so."""
    if key is None:
        return
    path = key.path
    try:
        if os.stat(path).st_mode & 0o004:
            print(f"{program}: warning: the key file {path} is readable by every user of "
                  f"this host (chmod 600 {path})", file=sys.stderr)
    except OSError:
        pass
# ---- end of block authentication ----


# ---- block output: generated from blocks/output.py (python3 blocks/sync.py) ----
class Output:
    """Prints each event as a line of text, or as a JSON object with --json."""

    def __init__(self, as_json):
        self.as_json = as_json

    def event(self, kind, line, **fields):
        if self.as_json:
            print(json.dumps({"type": kind, "time": round(time.time(), 6), **fields}))
        else:
            print(line)


def printable(text):
    """text with control characters escaped, so a name cannot forge output lines."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class LinePacer:
    """Lets through at most per_second lines a second and counts the rest: once a second
    is over, one line says how many of what were not printed (hint: how to print none)."""

    def __init__(self, out, per_second, what, hint=""):
        self.out, self.per_second, self.what, self.hint = out, per_second, what, hint
        self.window_start = time.monotonic()
        self.printed = 0
        self.unprinted = 0  # since the last note
        self.unprinted_total = 0

    def allow(self, now):
        return self.allow_many(now, 1) == 1

    def allow_many(self, now, count):
        """As allow() count times over: how many of count lines may be printed now."""
        if now - self.window_start >= 1.0:
            self.note(now)
        allowed = max(0, min(count, self.per_second - self.printed))
        self.printed += allowed
        self.unprinted += count - allowed
        self.unprinted_total += count - allowed
        return allowed

    def note(self, now, at_once=False):
        """Once a second is over (or at_once), say how many went unprinted in it."""
        if now - self.window_start < 1.0 and not at_once:
            return
        if self.unprinted:
            self.out.event("unprinted", f"... and {self.unprinted} more {self.what}, not "
                           f"printed: more than {self.per_second} a second{self.hint}",
                           count=self.unprinted, what=self.what)
        self.unprinted = 0
        self.window_start, self.printed = now, 0
# ---- end of block output ----


# ---- block arguments: generated from blocks/arguments.py (python3 blocks/sync.py) ----
MAX_SECONDS = 1_000_000  # about 11 days: the longest time any option takes
MAX_GROUPS = 10_000  # groups one run takes at most (--group, given again or as FIRST+N)


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


def group_range(text):
    """One group, or FIRST+N: FIRST and the N groups after it (239.1.0.0+999 is 1,000)."""
    first, plus, more = text.partition("+")
    start = multicast_group(first.strip())
    if not plus:
        return [start]
    if not more.strip().isdigit() or int(more) >= MAX_GROUPS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: after + comes how many groups follow {start} (0 to {MAX_GROUPS - 1})")
    address, more = ipaddress.ip_address(start), int(more)
    if int(address) + more >= 2 ** address.max_prefixlen or not (address + more).is_multicast:
        raise argparse.ArgumentTypeError(f"{text!r} runs past the last multicast group")
    return [str(address + offset) for offset in range(more + 1)]


def group_list(text):
    """Groups separated by commas, each one group or FIRST+N (group_range)."""
    groups = [group for part in text.split(",") if part.strip()
              for group in group_range(part.strip())]
    if not groups:
        raise argparse.ArgumentTypeError(f"{text!r} names no group")
    return groups


class GroupList(argparse.Action):
    """--group, given once or more: the groups of each, in order, in place of the default
    (a string until argparse turns it into its list, if no --group was given)."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = getattr(namespace, self.dest)
        setattr(namespace, self.dest, (given if isinstance(given, list) else []) + values)


def add_group_option(parser, environ, help):
    """-g/--group, as both scripts take it: groups, ranges, or MULTICAST_GROUP's list."""
    parser.add_argument("-g", "--group", metavar="ADDRESS[+N]", dest="groups", type=group_list,
                        action=GroupList, default=environ.get("MULTICAST_GROUP", DEFAULT_GROUP),
                        help=help)


def settle_groups(parser, args):
    """Keep each group of args.groups once, in the order given, and set args.group to the
    first; or end with the one-line error."""
    args.groups = list(dict.fromkeys(args.groups))
    if len(args.groups) > MAX_GROUPS:
        parser.error(f"{len(args.groups)} groups: at most {MAX_GROUPS} in one run")
    if len({family_of(group) for group in args.groups}) > 1:
        parser.error("the groups are not of one family: give only IPv4 or only IPv6 groups")
    args.group = args.groups[0]


def family_of(group):
    """The address family of a group: the family follows the group."""
    return socket.AF_INET6 if ":" in group else socket.AF_INET


def needs_interface(group):
    """Whether the group is only defined on one link (IPv6 scopes 1 and 2: ff01::, ff02::)."""
    return ":" in group and ipaddress.ip_address(group).packed[1] & 0x0F <= 2


def receiver_name(text):
    """A name for the acks: 1 to MAX_NAME bytes of UTF-8."""
    if not 1 <= len(text.encode("utf-8")) <= MAX_NAME:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a name (valid: 1 to {MAX_NAME} bytes)")
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
            return checked_for_ipv6_multicast(socket.if_nametoindex(text))
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
    return checked_for_ipv6_multicast(index)


def checked_for_ipv6_multicast(index):
    """The interface index, unless (on Linux) the interface has no MULTICAST flag: then
    IPv6 multicast cannot go out of it or in (IPv4 on lo works without the flag)."""
    try:
        name = socket.if_indextoname(index)
        with open(f"/sys/class/net/{name}/flags") as flags:
            capable = int(flags.read(), 16) & 0x1000  # IFF_MULTICAST
    except (OSError, ValueError):
        return index  # not Linux, or unknown: the system will say
    if not capable:
        raise ValueError(f"{name} cannot carry IPv6 multicast: it has no MULTICAST flag "
                         f"(see 'ip link show {name}'): pass --interface with another")
    return index


def route_advice(group):
    """What to do when the system has no route for the group's family."""
    return (f"no route for multicast: add a route for "
            f"{'ff00::/8' if ':' in group else '224.0.0.0/4'} or a default route, "
            f"or pass --interface NAME")


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
# ---- end of block arguments ----


# ---- block signals: generated from blocks/signals.py (python3 blocks/sync.py) ----
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

    def ignore_from_now(self):
        """The work is done: no later signal may cut the summary or the exit short (at
        exit Python gives back the default handlers, which would kill the process)."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)
# ---- end of block signals ----


# ---- block pipe: generated from blocks/pipe.py (python3 blocks/sync.py) ----
def quiet_on_closed_pipe():
    """When our output pipe closes (`| head`), exit quietly, as json.tool does."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # nothing more to flush at exit
    return 1
# ---- end of block pipe ----


# ---- block counting: generated from blocks/counting.py (python3 blocks/sync.py) ----
# What a receiving end counts of one sender's numbered messages: Session, in
# constant memory. The receiver keeps one per session heard; a mesh peer one per
# peer and kind of probe.
SEQUENCE_WINDOW = 4096  # sequence numbers a session remembers, as bits: 512 bytes
WINDOW_MASK = (1 << SEQUENCE_WINDOW) - 1


class Session:
    """One sender's session as seen from here, in constant memory: its highest
    sequence number and a window of bits for the SEQUENCE_WINDOW numbers up to
    it (bit i set: highest - i came), as IPsec's anti-replay window. The one
    window serves counting (lost: the numbers of the session's span that never
    came), reordering (a number below the highest whose bit is clear) and replay
    (a bit already set). A number older than the window cannot be told: it came
    late, or again; it is counted as too late (not lost, not a duplicate), and with
    a key refused, as a replay may be."""

    __slots__ = ("address", "session", "highest", "lowest", "window", "received",
                 "duplicates", "reordered", "too_late", "end", "ends", "datagrams", "part",
                 "unsent", "first_heard", "first_sent", "drops_at_first", "datagrams_before",
                 "drops_at_report", "shared_at_report", "group", "host_lost")

    def __init__(self, address, session):
        self.address, self.session = address, session
        self.group = None  # the group it came to, where several were joined
        self.host_lost = 0  # with trains: numbers missing where the host dropped some
        self.highest = self.lowest = self.window = 0
        self.received = self.duplicates = self.reordered = self.too_late = 0
        self.end = None  # the last sequence number, once the sender's end of run came
        self.ends = self.datagrams = 0  # ends of run answered; datagrams of the session
        self.unsent = 0  # acks for its messages not sent: the rate limit, a full send buffer
        self.part = None  # the part of the session table it is in
        self.first_heard = None  # when its first message came (our monotonic clock)
        self.first_sent = 0  # and when the sender sent that one (its clock, nanoseconds)
        # The host's drops while the session lasts (HostDrops.during_session): the socket's
        # drop count when its first datagram was queued and the socket's datagrams before
        # it; then, at its latest report, the drops it told and whether other traffic
        # had come to the socket since its first datagram.
        self.drops_at_first = self.datagrams_before = None
        self.drops_at_report = self.shared_at_report = None

    def state(self, sequence):
        """'new' above the highest, 'gap' below it and not come, 'seen' came, 'old'
        older than the window: cannot tell."""
        if sequence > self.highest:
            return "new"
        offset = self.highest - sequence
        if offset >= SEQUENCE_WINDOW:
            return "old"
        return "seen" if self.window >> offset & 1 else "gap"

    def take(self, sequence, state=None):
        """Count one message (state: its state(), if known); return 'new', 'reordered',
        'duplicate' or 'too_late'."""
        state = state or self.state(sequence)
        if state == "seen":
            self.duplicates += 1
            return "duplicate"
        if state == "old":
            self.too_late += 1
            return "too_late"
        if state == "new":
            self.slide(sequence)
            self.window |= 1
        else:
            self.window |= 1 << (self.highest - sequence)
            self.reordered += 1
        self.lowest = min(self.lowest, sequence) if self.received else sequence
        self.received += 1
        return "new" if state == "new" else "reordered"

    def slide(self, highest):
        """Move the window up to a new highest number (its bit still clear)."""
        shift = highest - self.highest
        self.window = (self.window << shift) & WINDOW_MASK if shift < SEQUENCE_WINDOW else 0
        self.highest = highest

    def finish(self, last):
        """The sender's end of run: every number from 1 to last that never came is lost."""
        if self.end is None:
            self.end = last
            if last > self.highest:
                self.slide(last)

    @property
    def lost(self):
        """Numbers of the session's span that never came: from 1 to the end of run once
        it came, before that from the first number that came to the highest."""
        came = self.received + self.too_late  # too late to tell is not lost
        if self.end is not None:
            return max(0, max(self.end, self.highest) - came)
        return max(0, self.highest - self.lowest + 1 - came) if self.received else 0

    def as_dict(self):
        expected = self.received + self.lost
        return {"address": self.address, "session": f"{self.session:016x}",
                "received": self.received, "lost": self.lost,
                "duplicates": self.duplicates, "reordered": self.reordered,
                "too_late": self.too_late,
                "loss_pct": round(100.0 * self.lost / expected, 2) if expected else 0.0,
                "end_seen": self.end is not None, "last_seq": self.end}
# ---- end of block counting ----


# ---- block receiving: generated from blocks/receiving.py (python3 blocks/sync.py) ----
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
# ---- end of block receiving ----


# ==== the socket ====
def make_receiver_socket(group, port, interface, platform=sys.platform, sources=(),
                         several=False):
    """A UDP socket bound to the group's port that has joined the group; with several,
    bound to any address, to join more groups (join_all), telling each datagram's group."""
    version = 6 if ":" in group else 4
    sock = socket.socket(family_of(group), socket.SOCK_DGRAM)  # IPv4 or IPv6, as the group
    share_port(sock, platform)  # SO_REUSEADDR: more than one receiver per host
    # SO_RCVBUF: a bigger queue for datagrams that arrive while we are busy
    # (the kernel caps it at net.core.rmem_max).
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    if platform.startswith("linux"):
        # SO_RXQ_OVFL: tell us how many datagrams the kernel dropped because
        # this socket's queue was full, so that loss is not blamed on the network.
        sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
    address = "" if several else bind_address(group, platform)
    if several and platform.startswith("linux"):
        # IP_MULTICAST_ALL (IPv6: IPV6_MULTICAST_ALL) off: bound to any address, the socket
        # still gets only the groups it joined itself, not every group joined on the host.
        level, option = MULTICAST_ALL[version]
        sock.setsockopt(level, option, 0)
        # IP_PKTINFO (IPv6: IPV6_RECVPKTINFO): each datagram comes with the address it
        # was sent to, so that we know which of the groups it came to.
        level, option = PKTINFO[version][:2]
        sock.setsockopt(level, option, 1)
    # An IPv6 link-local group is bound with its link (the interface index).
    sock.bind((address, port, 0, interface) if ":" in group else (address, port))
    if not several:
        join(sock, group, interface, sources, platform)  # IP_ADD_MEMBERSHIP and its kin
    ask_for_arrival_ttl(sock, version, platform)  # IP_RECVTTL and its kin
    if platform.startswith("linux"):
        # SO_RCVTIMEO: a blocking receive returns after IDLE_WAIT at the latest,
        # so the loop can wait in the receive call itself (one system call per
        # datagram, not a poll and then a read) and still see a stop request.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, receive_timeout(IDLE_WAIT))
    else:
        sock.setblocking(False)
    return sock


class JoinLimit(Exception):
    """Not every group could be joined: the message names the limit and its setting."""


def join_all(groups, port, interface, platform=sys.platform, sources=()):
    """Sockets that between them have joined every group, and the monotonic time each
    group was joined. One group: one socket, bound to it. More: each socket joins groups
    until the system's per-socket limit refuses one (ENOBUFS: Linux's
    net.ipv4.igmp_max_memberships), and the next group goes to a new socket; if no
    socket can be opened (the open files limit), JoinLimit says so."""
    if len(groups) == 1:
        return [make_receiver_socket(groups[0], port, interface, platform, sources)], [
            time.monotonic()]
    sockets, joined_at = [], []
    try:
        with open(MAX_MEMBERSHIPS) as limit:  # read now: no file may open when sockets ran out
            per_socket = f"net.ipv4.igmp_max_memberships = {limit.read().strip()}"
    except OSError:
        per_socket = "the system's limit"

    def another():
        return open_another(groups, joined_at, sockets, per_socket, port, interface, platform)
    try:
        for group in groups:
            if not sockets:
                sockets.append(another())
            try:
                join(sockets[-1], group, interface, sources, platform)
            except OSError as error:  # this socket is full: the group goes to a new one
                if error.errno not in (errno.ENOBUFS, errno.ENOMEM):
                    raise
                sockets.append(another())
                join(sockets[-1], group, interface, sources, platform)
            joined_at.append(time.monotonic())
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets, joined_at


def open_another(groups, joined_at, sockets, per_socket, port, interface, platform):
    """One more socket for join_all, or JoinLimit naming what ran out."""
    try:
        return make_receiver_socket(groups[0], port, interface, platform, several=True)
    except OSError as error:
        if error.errno not in (errno.EMFILE, errno.ENFILE):
            raise
    raise JoinLimit(f"joined {len(joined_at)} of {len(groups)} groups over {len(sockets)} "
                    f"sockets (groups a socket may join: {per_socket}), then the open files "
                    f"limit (ulimit -n) refused another socket: raise one or the other")


def take_trains(sock, platform=sys.platform):
    """Let one read bring a whole train of datagrams (a sender's segmented send, or
    datagrams the network card merged); whether the system agreed."""
    if not platform.startswith("linux"):
        return False
    try:
        # UDP_GRO: the kernel keeps a train together; a control message tells its
        # datagrams' size, and read_some cuts it apart into them again.
        sock.setsockopt(TRAIN_MESSAGE[0], TRAIN_MESSAGE[1], 1)
    except OSError:  # a kernel before 5.0: one datagram a read, as ever
        return False
    return True


def control_messages(group, several, platform=sys.platform):
    """The (level, kind) of the control message that brings a datagram's TTL (None where
    the system has none), and with several groups the (level, kind, where the address
    starts) of the one that names the datagram's group (else None)."""
    version = 6 if ":" in group else 4
    arrival = ARRIVAL_TTL.get((system_of(platform), version))
    level, _, kind, at = PKTINFO[version]
    return arrival and (arrival[0], arrival[2]), (level, kind, at) if several else None


def bind_address(group, platform=sys.platform):
    """The address a receiver binds to: the group on Linux, elsewhere any address.

    On Linux a socket bound to the wildcard address ('') gets the datagrams of
    every group that any program on the host joined on that port
    (IP_MULTICAST_ALL); bound to the group, it gets only its own group's.
    Windows refuses to bind a multicast address, and macOS would then send
    the acks from the group address; both give a socket only the groups it
    joined itself, so there the wildcard address isolates as well."""
    return group if platform.startswith("linux") else ""


def receive_timeout(seconds):
    """SO_RCVTIMEO's value, a struct timeval; never zero, which would mean forever."""
    microseconds = max(1, int(seconds * 1e6))
    return struct.pack("@ll", microseconds // 1_000_000, microseconds % 1_000_000)


def kernel_drops(sock, platform=sys.platform):
    """The datagrams the kernel has dropped for this socket so far, counted now (the
    same count as the drops column of /proc/net/udp); None where it cannot tell:
    another system, a Linux older than 4.12, a closed socket, a stand-in for one."""
    if not platform.startswith("linux") or not isinstance(sock, socket.socket):
        return None
    size = 4 * (SK_MEMINFO_DROPS + 1)
    try:
        # SO_MEMINFO: the socket's memory counters as the kernel has them now; the
        # drops among them are not stamped on a datagram, so they never lag.
        meminfo = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, size)
    except OSError:  # a kernel without it, or the socket is closed
        return None
    if len(meminfo) < size:  # a kernel whose counters end before the drops
        return None
    return struct.unpack_from("=I", meminfo, 4 * SK_MEMINFO_DROPS)[0]


# ==== sessions ====
class SessionTable:
    """The sessions heard: at most MAX_SESSIONS, each in constant memory.

    When it is full, a new session takes the place of the one least recently
    heard among those with one datagram so far (a made-up session id costs one
    datagram), else among the finished ones (end of run seen), else among the
    live ones: no flood of ids locks a real sender out. Each eviction is counted.
    With a key a session is known by its id alone (the id is signed, the source
    address is not), and an evicted session's id goes into a filter of fixed
    size (RETIRED_BITS), so that no message of it is ever answered again."""

    def __init__(self, keyed, groups=1):
        self.keyed, self.groups = keyed, groups  # room for two senders' sessions a group
        self.parts = {"probation": {}, "finished": {}, "live": {}}  # in eviction order
        self.evicted = 0
        self.retired = bytearray(RETIRED_BITS // 8) if keyed else None
        # The session heard last, which the next datagram is most often of too: then it
        # is found without a look in each part, and is already last in its part.
        self.latest = None

    def key(self, address, session):
        return session if self.keyed else (address, session)

    def __len__(self):
        return sum(len(part) for part in self.parts.values())

    def values(self):
        """Every session, live ones last."""
        return [stats for part in self.parts.values() for stats in part.values()]

    def get(self, address, session):
        """The session's statistics, made if new (evicting one if the table is full);
        None for a session retired from a keyed table."""
        latest = self.latest
        if latest is not None and latest.session == session and (
                self.keyed or latest.address == address):
            return latest
        key = self.key(address, session)
        for part in self.parts.values():
            stats = part.get(key)
            if stats is not None:
                return stats
        if self.retired is not None and self.was_retired(session):
            return None
        if len(self) >= max(MAX_SESSIONS, 2 * self.groups):
            self.evict()
        stats = Session(address, session)
        self.place(key, stats, "probation")
        return stats

    def find(self, address, session):
        """The session's statistics if it is in the table (None if not), making none."""
        key = self.key(address, session)
        return next((part[key] for part in self.parts.values() if key in part), None)

    def heard(self, stats, datagrams=1):
        """More datagrams of this session: it is now the most recently heard of its part."""
        stats.datagrams += datagrams
        part = ("probation" if stats.datagrams == 1 else
                "finished" if stats.end is not None else "live")
        if stats is self.latest and part == stats.part:
            return  # heard last, and in the same part: its last entry already
        key = self.key(stats.address, stats.session)
        del self.parts[stats.part][key]
        self.place(key, stats, part)
        self.latest = stats

    def place(self, key, stats, part):
        stats.part = part
        self.parts[part][key] = stats  # a dict keeps the order of insertion: oldest first

    def evict(self):
        for part in self.parts.values():
            if part:
                key = next(iter(part))
                if part[key] is self.latest:
                    self.latest = None
                del part[key]
                self.evicted += 1
                if self.retired is not None:
                    for bit in self.bits(key):
                        self.retired[bit >> 3] |= 1 << (bit & 7)
                return

    def was_retired(self, session):
        return all(self.retired[bit >> 3] >> (bit & 7) & 1 for bit in self.bits(session))

    @staticmethod
    def bits(session):
        digest = hashlib.blake2b(session.to_bytes(8, "big"), digest_size=16).digest()
        return [int.from_bytes(digest[i:i + 4], "big") % RETIRED_BITS for i in (0, 4, 8, 12)]


def classify(data, address, table, key, answered=False):
    """What one datagram is and what to answer: the receiver's whole reading of the
    protocol, the mirror of the sender's parse_reply(). It counts the datagram in the
    table and returns (what, answer, detail):
    - ("plain", b"ack" or None, text): text, as the textbook sender sends;
    - ("message", an Ack or None, (session, sequence, verdict, stats)): a data message
      (None too if answered: the fast lane has sent its ack already);
    - ("end", a Report or None, stats): a sender's end of run (the report's counts;
      its host drops, unsent acks and arrival are filled in by the Receiver);
    - ("malformed", None, reason) and ("refused", None, reason): never answered.
    An answer is never larger than the datagram it answers (Answerer cuts the name
    to fit), so nobody can use a receiver to amplify their traffic."""
    if data[:4] != MAGIC:
        if key is not None:  # text carries no tag: with a key it is not answered
            return "refused", None, "unauthenticated"
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            return "malformed", None, "not text"
        return "plain", PLAIN_ACK if len(data) >= len(PLAIN_ACK) else None, text
    if len(data) < HEADER.size:
        return "malformed", None, f"a header of {len(data)} bytes"
    _, version, kind, flags, session, sequence, sent_ns = HEADER.unpack_from(data)
    if version == VERSION and kind == SUMMARY:  # a mesh peer's (sender --mesh): not for us
        return "refused", None, "mesh_summary"
    if version != VERSION or kind not in (DATA, END) or sequence == 0:
        return "malformed", None, (f"protocol version {version}" if version != VERSION
                                   else f"message kind {kind}" if kind not in (DATA, END)
                                   else "sequence 0")
    if key is not None and (not flags & AUTHENTICATED or verify(data, key) is None):
        return "refused", None, "bad_tag" if flags & AUTHENTICATED else "unauthenticated"
    signed = AUTHENTICATED if key is not None else 0  # the flag our answers carry
    stats = table.get(address[0], session)
    if stats is None:
        return "refused", None, "replayed"  # a session retired from the table
    if (stats.received or stats.end is not None) and sequence > stats.highest + MAX_JUMP:
        return "malformed", None, f"sequence {sequence} jumps more than {MAX_JUMP} ahead"
    if stats.first_heard is None:
        stats.first_heard, stats.first_sent = time.monotonic(), sent_ns
    if kind == END:
        if sequence < stats.highest and stats.end is None:
            return "malformed", None, f"end of run at {sequence}, below seq {stats.highest}"
        if key is not None and stats.ends >= END_REPEATS:
            return "refused", None, "replayed"  # more ends than a sender sends
        stats.finish(sequence)
        stats.ends += 1
        table.heard(stats)
        return "end", Report(END_SEEN | signed, session, stats.end, sent_ns,
                             received=stats.received, lost=stats.lost,
                             duplicates=stats.duplicates, reordered=stats.reordered), stats
    state = stats.state(sequence)
    if key is not None and state in ("seen", "old"):
        return "refused", None, "replayed"  # a signed message taken before: never again
    answer = None if flags & NO_ACK or answered else Ack(
        (REORDERED if state == "gap" else 0) | signed, session, sequence, sent_ns)
    verdict = stats.take(sequence, state)
    table.heard(stats)
    return "message", answer, (session, sequence, verdict, stats)


def session_report(receiver, stats, answer, ttl):
    """The Report that answers a session's end of run: classify()'s answer, with the
    host's drops while it lasted, the acks not sent, and how its messages arrived."""
    drops, shared = receiver.drops.during_session(stats, receiver.drops.since_open())
    stats.drops_at_report, stats.shared_at_report = drops, shared
    joined = receiver.joined_at.get(stats.group, receiver.joined)
    # If other traffic came, some of these drops may have been its.
    return answer._replace(flags=answer.flags | (SHARED_DROPS if shared else 0),
                           host_drops=drops, unsent=stats.unsent,
                           arrival=report_arrival(stats, ttl, joined))


def report_arrival(stats, ttl, joined):
    """A report's Arrival: the TTL its end of run came with (0: not known), the time
    from our join (joined, on our monotonic clock) to the session's first message, and
    that one's send time."""
    if stats.first_heard is None:
        return Arrival(ttl or 0, NOT_MEASURED, 0)
    join_to_first_us = int((stats.first_heard - joined) * 1e6)
    return Arrival(ttl or 0, min(join_to_first_us, NOT_MEASURED - 1), stats.first_sent)


class HostDrops:
    """The datagrams this host dropped because our receive buffer was full: since the
    socket opened, and while each session lasted, from its first datagram to its report
    (Session.drops_at_first...). Every datagram the socket brings is counted here too,
    so that a session can tell whether other traffic shared the socket meanwhile."""

    def __init__(self, sockets):
        self.sockets = sockets
        self.trains = False  # a train came: its drops are told by the gaps from now on
        self.datagrams = 0  # every datagram the sockets brought, whatever it was
        # Dropped since the sockets opened: as the latest datagram of each was stamped when
        # it was queued (SO_RXQ_OVFL), all together, and as the kernel counted them at our
        # latest look (SO_MEMINFO, since_open()).
        self.stamps = [0] * len(sockets)
        self.stamped = self.read = 0
        self.read_at = -math.inf  # when the kernel's counts were read last
        self.gap_lost = 0  # with trains: the numbers missing where the count went up
        self.before_trains = 0  # dropped before the first train came

    def train_came(self):
        """The first train came: the kernel counts a train it drops as one drop, so from
        now on the host's drops are the numbers missing where its count went up."""
        # Before: the drops the datagrams so far were stamped with (the kernel's count now
        # may hold trains dropped before this one).
        self.before_trains, self.trains = self.stamped, True

    def arrived(self, drops, which=0):
        """One more datagram, from the which-th socket; drops is that socket's drop count
        when it was queued (None: as the datagram before). Whether, with trains, the count
        went up since the datagram before: the numbers missing just before it were dropped
        here (the kernel counts a whole train it drops as one)."""
        self.datagrams += 1
        if drops is None or drops == self.stamps[which]:
            return False
        self.stamped += drops - self.stamps[which]
        self.stamps[which] = drops
        return self.trains

    @staticmethod
    def highest_before(data, address, table):
        """The highest number its session had before this datagram came (None: none)."""
        if len(data) < HEADER.size or data[:4] != MAGIC:
            return None
        stats = table.find(address[0], HEADER.unpack_from(data)[4])
        return stats.highest if stats is not None and stats.received else None

    def count_gap(self, what, detail, before):
        """With trains: the numbers from before up to this datagram's (an end of run's
        last included) never came, and the host dropped a train meanwhile: counted as its."""
        stats = detail[3] if what == "message" else detail if what == "end" else None
        if stats is not None and stats.highest > before:
            missing = stats.highest - before - (what == "message")
            stats.host_lost += missing
            self.gap_lost += missing

    def mark_start(self, stats, group=None):
        """At a session's first datagram: where its span of host drops starts (and the
        group it came to, where several were joined)."""
        if stats.drops_at_first is None:
            stats.drops_at_first = self.stamped
            stats.datagrams_before = self.datagrams - 1
            stats.group = group

    def since_open(self, fresh=False):
        """Datagrams this host dropped since the socket opened because our buffer was
        full. The stamps lag: a datagram carries the count of when it was queued, so
        drops while the buffer stays full are seen only when a later one is queued;
        where the kernel tells its count as it is now, that count is taken (of many
        sockets, at most every DROPS_READ_EVERY seconds, unless fresh)."""
        if self.trains:  # the kernel's counts are of trains: the gaps tell datagrams
            return self.before_trains + self.gap_lost
        now = time.monotonic()
        if fresh or len(self.sockets) == 1 or now >= self.read_at + DROPS_READ_EVERY:
            counts = [kernel_drops(sock) for sock in self.sockets]
            if None not in counts:
                self.read, self.read_at = sum(counts), now
        return max(self.stamped, self.read)

    def during_session(self, stats, drops_now):
        """A session's host drops, from its first datagram up to now (drops_now: the
        socket's count now), and whether other datagrams came to the socket meanwhile
        (another session's, text, anything), so that some of those drops may be theirs."""
        others = self.datagrams - stats.datagrams_before - stats.datagrams
        if self.trains:
            return min(stats.host_lost, stats.lost), others > 0
        return max(0, drops_now - stats.drops_at_first), others > 0


# ==== answers ====
class HeldAcks:
    """Answers held back by a random delay, so many receivers do not answer at once."""

    def __init__(self):
        self.queue = []  # heap of (due time, order, queued at, datagram, destination)
        self.order = 0

    def hold(self, datagram, destination, delay):
        now = time.monotonic()
        self.order += 1
        heapq.heappush(self.queue, (now + delay, self.order, now, datagram, destination))

    def due(self, now):
        """Take every answer whose time has come: (datagram, destination, held seconds)."""
        while self.queue and self.queue[0][0] <= now:
            _, _, queued, datagram, destination = heapq.heappop(self.queue)
            yield datagram, destination, now - queued

    def next_due(self):
        return self.queue[0][0] if self.queue else None

    def all(self, now):
        """Take every answer, due or not: on the way out, late beats never."""
        while self.queue:
            _, _, queued, datagram, destination = heapq.heappop(self.queue)
            yield datagram, destination, now - queued


class RateLimit:
    """At most rate answers a second to each address (a token bucket per address).

    allow() comes before an answer and is cheap while a bucket has tokens (they
    only grow with time, so no clock is needed); spend() comes after it.

    The table holds at most MAX_SESSIONS addresses, the least recently used first
    (a dict keeps the order of insertion, and each use puts its address last).
    A bucket idle for a second is full again, as good as none: it is the first to
    make room. When every address in the table was used within the last second (a
    flood from many sources, perhaps spoofed), a new address still gets a place,
    the least recently used one's: nobody is locked out. It starts with one
    answer's worth instead of a second's, so that churning the table buys nobody
    a burst of answers; the answers that costs it are counted apart (table_full)."""

    def __init__(self, rate):
        self.rate = rate
        self.buckets = {}  # address -> (tokens, when they were counted, started short)
        self.evicted = 0  # addresses used within the last second that made room
        self.rate_limited = 0  # answers refused: more than rate a second to one address
        self.table_full = 0  # answers refused to an address that came to a full table

    def allow(self, address):
        """Whether one more answer may go to address (refilling its bucket if empty)."""
        if self.has_token(address):
            return True
        now = time.monotonic()
        tokens, started_short = self.refill(address, now)
        if tokens >= 1:
            return True
        if started_short:
            self.table_full += 1
        else:
            self.rate_limited += 1
        return False

    def has_token(self, address):
        """Whether address's bucket holds a token (it can only fill up from here)."""
        return self.buckets.get(address, (0,))[0] >= 1

    def spend(self, address):
        """One answer went (or is held) to address: refill the bucket to now, take a token."""
        now = time.monotonic()
        tokens, started_short = self.refill(address, now)
        self.buckets[address] = (tokens - 1, now, started_short)

    def refill(self, address, now):
        """Refill address's bucket (made if new) up to now and make it the most recently
        used; return its tokens and whether it started short and has not been full since."""
        bucket = self.buckets.pop(address, None)
        tokens, then, started_short = bucket if bucket is not None else self.new_bucket(now)
        tokens = min(self.rate, tokens + (now - then) * self.rate)
        started_short = started_short and tokens < self.rate
        self.buckets[address] = (tokens, now, started_short)  # last: the most recent
        return tokens, started_short

    def new_bucket(self, now):
        """A bucket for a new address, with room made for it if the table is full."""
        if len(self.buckets) < MAX_SESSIONS:
            return self.rate, now, False  # one second's worth
        oldest = next(iter(self.buckets))
        _, then, _ = self.buckets.pop(oldest)
        if now - then >= 1.0:  # idle for a second: its bucket was full, nothing is lost
            return self.rate, now, False
        self.evicted += 1  # every address was used within the last second
        return 1, now, True  # one answer's worth: churning the table buys no burst


def send_without_waiting(sock, datagram, destination):
    """Send datagram now, or raise OSError (EAGAIN, ENOBUFS: see NOT_NOW) at once.

    On Linux the receiver's socket blocks (it waits in its receive), and a send on a
    blocking socket waits for room in its send buffer, for as long as a slow link
    takes to drain it: a stop request would wait too. Elsewhere the socket is
    non-blocking already; a stand-in for a socket (the tests') takes no flags."""
    if NO_WAIT and isinstance(sock, socket.socket):
        # MSG_DONTWAIT: this one send does not wait; a full buffer is an error instead.
        return sock.sendto(datagram, NO_WAIT, destination)
    return sock.sendto(datagram, destination)


class Answerer:
    """Sends the answers: at once, or held back by a random delay up to --ack-jitter."""

    def __init__(self, sock, name, jitter, out, key=None, max_rate=0, instance=0):
        self.sock = sock
        self.name = name
        self.instance = instance  # the header's INSTANCE byte in our answers
        self.jitter = jitter
        self.out = out
        self.key = key
        self.limit = RateLimit(max_rate) if max_rate else None  # with a key too
        self.held = HeldAcks()
        self.answered = {}  # destination address -> [acks, reports] sent there
        self.too_big = 0  # answers not sent: larger than the datagram they answer
        self.not_sent = 0  # answers not sent: no room in the socket's send buffer then

    @property
    def rate_limited(self):
        """Answers not sent: more than max_rate a second to one address."""
        return self.limit.rate_limited if self.limit is not None else 0

    @property
    def table_full(self):
        """Answers not sent: to an address that came while the rate limit's table was full."""
        return self.limit.table_full if self.limit is not None else 0

    def send(self, answer, destination, room, hold=True, session=None):
        """Answer now, or hold the answer back by a random delay: an Ack, a Report or
        b'ack'. room is the size of the datagram answered, which the answer may not
        exceed; session the Session whose count of unsent acks a full buffer adds to."""
        if self.limit is not None and not self.limit.allow(destination[0]):
            return False  # at most max_rate answers a second to one address (counted there)
        if hold and self.jitter > 0:
            self.held.hold((answer, room, session), destination, random.uniform(0, self.jitter))
        else:
            self.answer((answer, room, session), destination, 0.0)
        if self.limit is not None:
            self.limit.spend(destination[0])  # after the answer: the sender's clock runs
        return True

    def answer(self, pending, destination, held):
        """Send one answer, saying how long it was held back, with as much of our name
        as fits in the size of the datagram answered."""
        answer, room, session = pending
        if answer == PLAIN_ACK:
            datagram, slot = answer, 0
        else:
            tag = TAG_SIZE if self.key is not None else 0
            record = answer._replace(instance=self.instance, name=self.name,
                                     held_us=min(int(held * 1e6), 2**32 - 1))
            slot = 0 if isinstance(answer, Ack) else 1
            datagram = (pack_ack if slot == 0 else pack_report)(record, room - tag)
            if datagram is None:  # no answer larger than what it answers
                self.too_big += 1
                return
            if self.key is not None:
                datagram = sign(datagram, self.key)
        try:
            send_without_waiting(self.sock, datagram, destination)
        except OSError as error:
            if error.errno in NOT_NOW:  # a full send buffer (a slow link): not waited for
                self.not_sent += 1
                if session is not None:
                    session.unsent += 1
                return
            # One unreachable sender must not stop the others' acks.
            self.out.event("error", f"could not answer {destination[0]}: {error.strerror}",
                           address=destination[0], error=error.strerror)
            return
        self.count(destination[0], slot)

    def count(self, address, slot):
        """One more ack (slot 0) or report (slot 1) went to address."""
        if address in self.answered or len(self.answered) < MAX_SESSIONS:
            self.answered.setdefault(address, [0, 0])[slot] += 1

    def may_answer(self, address):
        """Whether an answer to address would pass the rate limit, now and later."""
        return self.limit is None or self.limit.has_token(address)

    def acked_at_once(self, address):
        """The fast lane sent an ack to address, past send(): take its token, count it."""
        if self.limit is not None:
            self.limit.spend(address)
        self.count(address, 0)

    def send_due(self):
        """Send every held answer whose time has come; return when the next is due."""
        now = time.monotonic()
        for answer, destination, held in self.held.due(now):
            self.answer(answer, destination, held)
        return self.held.next_due()

    def send_all(self):
        """Send every held answer now: on the way out, late beats never."""
        now = time.monotonic()
        for answer, destination, held in self.held.all(now):
            self.answer(answer, destination, held)


class FastLane:
    """The round trip's fast lane: answers the message the receiver expects
    next at once, before anything else is done with it, as a blocking echo
    would; handle() then only counts it. After an idle wait the CPU's caches
    are cold and every step costs a microsecond or more on the sender's clock
    (measured from the receive to the ack: 48 us the long way, 17 us here, 1.4
    in a six-line echo), so the lane unpacks nothing: it compares the
    datagram's first 24 bytes with the prediction, and the ack is the
    message's own header with another kind. Everything else goes the long way.
    tests/test_counting.py checks that both ways send the same answers."""

    TTL_AT = HEADER.size + ACK_EXTRA.size  # where the ack says the TTL it arrived with

    def __init__(self, sock, answers, name, instance, usable):
        self.sock = sock
        self.answers = answers
        self.usable = usable  # no key to check and no jitter to wait
        self.expected = None  # (host, first 24 bytes) of the message it may answer
        # The ack, held back for 0 microseconds; its session, sequence, send time and TTL
        # are written in for each message answered.
        self.ack = bytearray(pack_ack(Ack(0, 0, 0, 0, instance, 0, 0, name)))

    def expect(self, host, session, sequence, size):
        """After a new message of a session (of size bytes, without flags), predict the
        next one. The invariant, kept here alone: the lane answers only where the long
        way would send the very same ack: no key, no jitter, a token left in the rate
        limit, the same host, the next sequence number, no flags, room for the whole ack
        in the datagram (the next one is checked for that too), and its TTL known."""
        if (self.usable and sequence < MAX_SEQUENCE and size >= len(self.ack)
                and self.answers.may_answer(host)):
            self.expected = (host, HEADER.pack(MAGIC, VERSION, DATA, 0, session, sequence + 1,
                                               0)[:24])

    def ack_at_once(self, buffer, size, address, ttl):
        """Answer the datagram in buffer, which arrived with ttl, if it is the one
        expected; whether it did."""
        expected = self.expected
        if (expected is None or size < len(self.ack) or not buffer.startswith(expected[1])
                or address[0] != expected[0] or ttl is None):
            return False
        ack = self.ack
        ack[8:HEADER.size] = buffer[8:HEADER.size]  # session, sequence, send time
        ack[self.TTL_AT] = ttl
        try:
            send_without_waiting(self.sock, ack, address)
        except OSError:
            return False  # the long way tries again, and counts or says why it failed
        self.answers.acked_at_once(address[0])
        return True


# ==== the receiver ====
class TrainLane:
    """The trains' fast lane: a train of messages that ask for no ack, all of one
    session, numbered one after the other from above the highest that came before, is
    counted in one step as handle() would count each of its datagrams (a slide of the
    window and a few sums), after one look at all its headers at once. Anything else in a
    train goes the long way, datagram by datagram. tests/test_counting.py checks that
    both ways count the same."""

    HEAD = MAGIC + bytes([VERSION, DATA, NO_ACK, 0])  # what each datagram starts with

    def __init__(self, receiver):
        self.receiver = receiver
        self.usable = receiver.key is None  # no key: no tag to check on each datagram
        self.layouts = {}  # (datagrams, size) -> a Struct of every header's first 24 bytes
        self.columns = {}  # (datagrams, session) -> the words every header holds alike

    def layout(self, datagrams, size):
        layout = self.layouts.get((datagrams, size))
        if layout is None:
            if len(self.layouts) >= 64:  # trains of ever other shapes: keep a few
                self.layouts.clear()
            layout = self.layouts[datagrams, size] = struct.Struct(
                "!" + f"8s8sQ{size - 24}x" * datagrams)
        return layout

    def in_a_row(self, view, size, train, datagrams):
        """(session, first number) if every datagram of the train starts with HEAD, all of
        one session, numbered one after the other; else (None, None)."""
        first = int.from_bytes(view[16:24], "big")
        if train % 4 or first + datagrams > 2**32:  # each header's fields, unpacked
            fields = self.layout(datagrams, train).unpack_from(view)
            sessions = fields[1::3]
            if (fields[0::3].count(self.HEAD) == datagrams and sessions.count(sessions[0])
                    == datagrams and fields[2::3] == tuple(range(first, first + datagrams))):
                return int.from_bytes(sessions[0], "big"), first
            return None, None
        # A whole number of 4-byte words each: each header word of every datagram side by
        # side (a column), compared at once with what it must be: magic ... the number's
        # high word, alike in all, and its low word, counting up.
        words, step = view[:size].cast("I"), train // 4
        session = view[8:16].tobytes()
        if words[5::step] == numbers_column(first, datagrams) and all(
                words[at::step] == column
                for at, column in enumerate(self.alike(datagrams, session))):
            return int.from_bytes(session, "big"), first
        return None, None

    def alike(self, datagrams, session):
        """The columns of the header words every datagram of such a train holds alike."""
        columns = self.columns.get((datagrams, session))
        if columns is None:
            if len(self.columns) >= 64:  # trains of ever other shapes: keep a few
                self.columns.clear()
            columns = self.columns[datagrams, session] = [
                memoryview(word * datagrams).cast("I")
                for word in (self.HEAD[:4], self.HEAD[4:], session[:4], session[4:], bytes(4))]
        return columns

    def take(self, view, size, train, address, ttl, drops, group, which):
        """Count the train in view[:size], of datagrams of train bytes, if it may go this
        way (ttl, drops, group, which: as handle() takes them); whether it did."""
        datagrams = size // train
        if not self.usable or datagrams * train != size or train < HEADER.size:
            return False
        session, first = self.in_a_row(view, size, train, datagrams)
        if session is None:
            return False
        receiver = self.receiver
        stats = receiver.table.get(address[0], session)
        last = first + datagrams - 1
        if (stats is None or stats.end is not None or first <= stats.highest
                or stats.received and last > stats.highest + MAX_JUMP):
            return False
        hosts = receiver.drops
        if hosts.arrived(drops, which) and stats.received:  # as count_gap()
            hosts.gap_lost += first - stats.highest - 1
            stats.host_lost += first - stats.highest - 1
        if stats.first_heard is None:
            stats.first_heard = time.monotonic()
            stats.first_sent = HEADER.unpack_from(view)[6]
        if stats.drops_at_first is None:
            hosts.mark_start(stats, group)
        hosts.datagrams += datagrams - 1
        stats.lowest = stats.lowest if stats.received else first
        stats.slide(last)
        stats.window |= (1 << datagrams) - 1  # last, and the datagrams - 1 before it
        stats.received += datagrams
        receiver.table.heard(stats, datagrams)
        receiver.received += datagrams
        receiver.taken += datagrams
        receiver.lane.expected = None
        receiver.printer.train(view, train, address, session, first, datagrams, ttl)
        return True


class Receiver:
    """Reads datagrams, answers them as classify() says, counts them and prints them."""

    def __init__(self, sockets, settings, out, joined_at=()):
        self.sockets = sockets if isinstance(sockets, list) else [sockets]  # join_all's
        sock = self.sock = self.sockets[0]  # the one every answer goes out of
        self.settings, self.out, self.name = settings, out, settings.name.encode("utf-8")
        self.key = settings.key
        self.table = SessionTable(settings.key is not None, len(settings.groups))
        self.auth = collections.Counter()  # unauthenticated, bad_tag, replayed: not answered
        self.instance = random.randrange(1, 256)  # tells us apart from a namesake here
        self.answers = Answerer(sock, self.name, settings.ack_jitter, out, settings.key,
                                settings.max_ack_rate, self.instance)
        self.printer = DatagramPrinter(out, settings.quiet)
        self.buffer = bytearray(MAX_DATAGRAM)  # every datagram is read into this one buffer
        # Linux, one socket: it blocks (up to IDLE_WAIT), and reads that must not wait say so.
        self.blocking = (len(self.sockets) == 1 and isinstance(sock, socket.socket)
                         and sock.gettimeout() is None)
        self.received = 0  # new and reordered messages and plain datagrams, not duplicates
        self.taken = 0  # every datagram answered or counted, duplicates included
        self.malformed = self.plain = 0
        self.drops = HostDrops(self.sockets)  # every datagram, and those this host dropped
        self.started = self.joined = time.monotonic()  # the socket joined just before
        self.joined_at = dict(zip(settings.groups, joined_at))  # each group's join, if told
        self.join_seconds = 0.0  # the time joining them all took (main tells it)
        self.ttl_message, self.group_message = control_messages(settings.group,
                                                                len(settings.groups) > 1)
        self.last_report = (self.started, 0)
        self.lane = FastLane(sock, self.answers, self.name, self.instance,
                             settings.key is None and not settings.ack_jitter)
        self.train_lane = TrainLane(self)

    @property
    def sessions(self):
        """Every session's statistics, by its key in the table."""
        return {self.table.key(stats.address, stats.session): stats
                for stats in self.table.values()}

    def handle(self, data, address, truncated, answered=False, ttl=None, drops=None,
               group=None, which=0):
        """Classify one datagram, answer it (unless the fast lane did), count it, print it.

        data: bytes, or a view of the receive buffer; ttl: the TTL (IPv6: hop limit) it
        came with (None: not told); drops: the which-th socket's drop count when it was
        queued (None: as before); group: where several were joined, the one it came to."""
        self.lane.expected = None  # anything may change what comes next: predicted anew
        dropped = self.drops.arrived(drops, which)  # a train dropped before this one
        if truncated:
            self.reject(address, f"cut to {len(data)} bytes")
            return
        before = self.drops.highest_before(data, address, self.table) if dropped else None
        what, answer, detail = classify(data, address, self.table, self.key, answered)
        if before is not None:
            self.drops.count_gap(what, detail, before)
        if what == "malformed":
            self.reject(address, detail)
        elif what == "refused":
            self.auth[detail] += 1
        elif what == "end":
            self.taken += 1
            self.drops.mark_start(detail, group)
            if answer is not None:
                self.answers.send(session_report(self, detail, answer, ttl), address,
                                  len(data))
            if detail.ends == 1:
                self.printer.end(detail, address)
        else:
            self.taken += 1
            if answer is not None and not answered:  # answer first: the sender's clock runs
                if what == "message":
                    stats = detail[3]
                    if not self.answers.send(answer._replace(ttl=ttl), address, len(data),
                                             session=stats):
                        stats.unsent += 1  # the rate limit refused it
                else:
                    self.answers.send(answer, address, len(data), hold=False)
            if what == "plain":
                self.plain += 1
                self.received += 1
                self.printer.plain(data, address, detail)
                return
            session, sequence, verdict, stats = detail
            if stats.drops_at_first is None:  # its first datagram
                self.drops.mark_start(stats, group)
            self.received += verdict != "duplicate"
            if verdict == "new" and not data[6]:  # no flags: the next one may be predicted
                self.lane.expect(address[0], session, sequence, len(data))
            if not self.printer.quiet:
                self.printer.message(data, address, session, sequence, verdict, ttl)

    def close(self):
        """Close the sockets (which also leaves the groups), reading their drops a last time."""
        self.drops.since_open(fresh=True)
        for sock in self.sockets:
            sock.close()

    def reject(self, address, reason):
        """Count a datagram that is neither the protocol nor text; never answer it."""
        self.malformed += 1
        self.printer.malformed(address, reason)


def read_some(receiver, block=False, which=0):
    """Read what is queued on the which-th socket, at most READS_PER_WAKEUP datagrams;
    or with block, wait for one datagram (up to the receive timeout) and read it.

    The bound keeps a flood from starving the rest of the loop: a stop
    request, the held acks and the reports are looked at between batches.
    Each datagram lands in one preallocated buffer (recvmsg_into): no
    allocation per datagram."""
    sock, buffer, count = receiver.sockets[which], receiver.buffer, receiver.settings.count
    view, handle, ack_at_once = memoryview(buffer), receiver.handle, receiver.lane.ack_at_once
    ttl_message, group_message = receiver.ttl_message, receiver.group_message
    group = None
    fast = hasattr(sock, "recvmsg_into")
    wait = 0 if block else NO_WAIT  # no wait: only what is queued
    for _ in range(1 if block else READS_PER_WAKEUP):
        if count and receiver.taken >= count:
            return
        try:
            if fast:
                size, ancillary, flags, address = sock.recvmsg_into([buffer], ANCILLARY_SPACE,
                                                                    wait)
            else:  # Windows has no recvmsg: no drop count, no sign of a cut datagram
                size, address = sock.recvfrom_into(buffer)
                ancillary, flags = (), 0
        except BlockingIOError:
            return
        ttl, train = None, 0
        drops = 0 if fast else None  # Linux adds the drop count once it is above 0
        for level, kind, value in ancillary:
            if (level, kind) == ttl_message and value:  # an int, or on BSD one byte
                ttl = value[0] if len(value) == 1 else int.from_bytes(value[:4], sys.byteorder)
            elif (level, kind) == (socket.SOL_SOCKET, SO_RXQ_OVFL) and len(value) >= 4:
                drops = struct.unpack("=I", value[:4])[0]
            elif group_message and (level, kind) == group_message[:2]:
                group = group_of(value, group_message[2])
            elif (level, kind) == TRAIN_MESSAGE:
                train = int.from_bytes(value[:4], sys.byteorder)
        if 0 < train < size:  # a train: each of its datagrams in turn (the last may be short)
            if not receiver.drops.trains:
                receiver.drops.train_came()
            if not flags & MSG_TRUNC and receiver.train_lane.take(view, size, train, address,
                                                                  ttl, drops, group, which):
                continue
            for start in range(0, size, train):
                end = min(start + train, size)
                handle(view[start:end], address, bool(flags & MSG_TRUNC) and end == size,
                       False, ttl, drops, group, which)
            continue
        # The message the receiver expects next is answered first (see FastLane).
        answered = not flags & MSG_TRUNC and ack_at_once(buffer, size, address, ttl)
        handle(view[:size], address, bool(flags & MSG_TRUNC), answered, ttl, drops, group,
               which)


@functools.lru_cache(maxsize=MAX_GROUPS)  # a group's message is the same bytes each time
def group_of(pktinfo, at):
    """The destination address in an IP_PKTINFO (IPv6: IPV6_PKTINFO) control message: an
    in_pktinfo (the interface index, the local address, then the destination's 4 bytes)
    or an in6_pktinfo (the destination's 16 bytes, then the interface index)."""
    if at:
        return socket.inet_ntop(socket.AF_INET, pktinfo[at:at + 4])
    return socket.inet_ntop(socket.AF_INET6, pktinfo[:16])


def run(receiver, selector, stop):
    """Serve until stopped or until --count messages are taken."""
    settings, pacer = receiver.settings, receiver.printer.pacer
    interval, count = settings.report_interval, settings.count
    next_report = time.monotonic() + interval if interval else None
    timeout = IDLE_WAIT  # the receive timeout set now (SO_RCVTIMEO, Linux)
    while not stop.requested and not (count and receiver.taken >= count):
        deadlines = [receiver.answers.send_due(), next_report]
        if not settings.quiet and pacer.unprinted:
            deadlines.append(pacer.window_start + 1.0)
        deadlines = [d for d in deadlines if d is not None]
        wait = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        if receiver.blocking and (wait is None or wait > TIMER_SLACK):
            # Nothing due soon: wait in the receive call itself (one system call
            # per datagram, as a blocking echo), waking early enough for what is due.
            wanted = IDLE_WAIT if wait is None else min(IDLE_WAIT, wait - TIMER_SLACK)
            if abs(wanted - timeout) >= 0.001:  # a system call only on a change
                timeout = wanted
                receiver.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                                         receive_timeout(timeout))
            read_some(receiver, block=True)
            read_some(receiver)  # and what else has come meanwhile
        else:
            for key, _ in selector.select(wait):
                if key.data is not None:  # one of our sockets: its place in the list
                    read_some(receiver, which=key.data)
                else:
                    key.fileobj.recv(64)  # the signal's wake-up byte
        now = time.monotonic()
        pacer.note(now)
        if next_report is not None and now >= next_report:
            print_report(receiver, now)
            next_report = max(next_report + interval, now)
    receiver.answers.send_all()  # answer everything that was taken


# ==== printing ====
class DatagramPrinter:
    """The line for each datagram: none with --quiet; else at most LINES_PER_SECOND a
    second (the pacer counts the rest), and a session's end of run whatever the pace."""

    def __init__(self, out, quiet):
        self.out = out
        self.quiet = quiet
        self.pacer = LinePacer(out, LINES_PER_SECOND, "datagrams", " (--quiet prints none)")

    def may_print(self):
        return not self.quiet and self.pacer.allow(time.monotonic())

    def message(self, data, address, session, sequence, verdict, ttl):
        if self.may_print():
            self.line(data, address, session, sequence, verdict, ttl)

    def train(self, view, size, address, session, first, datagrams, ttl):
        """The lines of a train of new messages (TrainLane's), as far as the pace lets."""
        if not self.quiet:
            for index in range(self.pacer.allow_many(time.monotonic(), datagrams)):
                self.line(view[index * size:(index + 1) * size], address, session,
                          first + index, "new", ttl)

    def line(self, data, address, session, sequence, verdict, ttl):
        message = bytes(data[HEADER.size:]).rstrip(b"\0")
        note = "" if verdict == "new" else f" ({verdict})"
        arrived = "" if ttl is None else f", ttl {ttl}"
        self.out.event("message", f"received seq {sequence} from {address[0]}:"
                       f"{address[1]}{note}, session {session:016x}, {len(data)} "
                       f"bytes{arrived}: {message!r}", address=address[0],
                       port=address[1], session=f"{session:016x}", seq=sequence,
                       bytes=len(data), ttl=ttl, verdict=verdict)

    def plain(self, data, address, text):
        if self.may_print():
            self.out.event("plain", f"received {len(data)} bytes from {address[0]}:"
                           f"{address[1]}: {bytes(data)!r}", address=address[0],
                           port=address[1], bytes=len(data), text=text)

    def malformed(self, address, reason):
        if self.may_print():  # under a flood of rubbish a line each would add to it
            self.out.event("malformed", f"malformed datagram from {address[0]}:{address[1]}: "
                           f"{reason}", address=address[0], reason=reason)

    def end(self, stats, address):
        """A session's end of run, the first one that came."""
        if self.quiet:
            return
        self.pacer.note(time.monotonic(), at_once=True)
        entry = stats.as_dict()
        self.out.event("end", f"end of session {entry['session']} from {address[0]}: last seq "
                       f"{stats.end}, {entry['received']} received, {entry['lost']} lost "
                       f"({entry['loss_pct']}%)", address=address[0], session=entry["session"],
                       last_seq=stats.end, received=entry["received"], lost=entry["lost"])


def print_report(receiver, now):
    """One line of rate and loss since the last report."""
    since, received_then = receiver.last_report
    rate = (receiver.received - received_then) / (now - since) if now > since else 0.0
    lost = sum(stats.lost for stats in receiver.table.values())
    host_drops = receiver.drops.since_open()
    receiver.out.event(
        "report", f"{now - receiver.started:7.1f} s: {receiver.received} received "
        f"({rate:.1f}/s), {lost} lost, {receiver.malformed} malformed, "
        f"{host_drops} dropped by this host since the start",
        seconds=round(now - receiver.started, 3), received=receiver.received,
        rate_pps=round(rate, 1), lost=lost, malformed=receiver.malformed,
        host_drops=host_drops)
    receiver.last_report = (now, receiver.received)


def group_counts(receiver):
    """Each group's counts, in the order joined: the sums of the sessions that came to
    it, its senders (sessions), and the milliseconds from its join to its first
    datagram (first_ms, None if nothing came), as mcjoin tells them."""
    groups = {group: dict(group=group, **dict.fromkeys(GROUP_FIELDS, 0), senders=0,
                          first_ms=None) for group in receiver.settings.groups}
    for stats in receiver.table.values():
        entry = groups.get(stats.group or receiver.settings.group)
        if entry is None or not stats.datagrams:  # to this host's address, or refused
            continue
        for field in GROUP_FIELDS:
            entry[field] += getattr(stats, field)
        entry["senders"] += 1
        joined = receiver.joined_at.get(entry["group"], receiver.joined)
        first_ms = round((stats.first_heard - joined) * 1000, 3)
        entry["first_ms"] = min(first_ms, entry["first_ms"] or first_ms)
    return list(groups.values())


def group_lines(receiver, groups):
    """A few lines on many groups: how many came clean, the worst, the silent."""
    lossy = sorted((entry for entry in groups if entry["lost"]), key=lambda entry: -entry[
        "lost"] / (entry["lost"] + entry["received"]))
    silent = [entry["group"] for entry in groups if not entry["senders"]]
    firsts = sorted(entry["first_ms"] for entry in groups if entry["first_ms"] is not None)
    sockets = len(receiver.sockets)
    lines = [f"{len(groups)} groups, joined in {receiver.join_seconds:.3f} s over "
             f"{sockets} socket{'s' * (sockets != 1)}: {len(groups) - len(lossy) - len(silent)} "
             f"without loss, {len(lossy)} with loss, {len(silent)} silent (nothing came)"]
    if firsts:
        lines.append(f"first datagram after each group's join: {firsts[0]:.1f} to "
                     f"{firsts[-1]:.1f} ms (median {firsts[len(firsts) // 2]:.1f} ms)")
    if lossy:
        lines.append("worst: " + ", ".join(
            f"{entry['group']} lost {entry['lost']} of {entry['lost'] + entry['received']}"
            for entry in lossy[:WORST_SHOWN]) + (", ..." if len(lossy) > WORST_SHOWN else ""))
    if silent:
        lines.append("silent: " + ", ".join(silent[:WORST_SHOWN])
                     + (", ..." if len(silent) > WORST_SHOWN else ""))
    return lines


def print_summary(receiver):
    """The totals, each sender's session, and whom we answered."""
    settings, pacer = receiver.settings, receiver.printer.pacer
    if not settings.quiet:
        pacer.note(time.monotonic(), at_once=True)
    host_drops = receiver.drops.since_open()  # the kernel's own count, if the socket is open
    sessions = []
    for stats in receiver.table.values():
        entry = stats.as_dict()
        if stats.drops_at_report is not None:  # as its latest report told the sender
            drops, shared = stats.drops_at_report, stats.shared_at_report
        else:  # still going: up to now
            drops, shared = receiver.drops.during_session(stats, host_drops)
        entry.update(host_drops=drops, shared_drops=shared,
                     group=stats.group or settings.group)
        sessions.append(entry)
    totals = {field: sum(entry[field] for entry in sessions)
              for field in ("lost", "duplicates", "reordered")}
    elapsed = time.monotonic() - receiver.started
    where = (f"{settings.group}:{settings.port}" if len(settings.groups) == 1 else
             f"{settings.group} to {settings.groups[-1]}, port {settings.port},")
    lines = [f"--- {where} receiver statistics ---",
             f"{receiver.received} received, {totals['lost']} lost, "
             f"{totals['duplicates']} duplicates, {totals['reordered']} reordered, "
             f"{receiver.malformed} malformed, {receiver.plain} plain, in {elapsed:.1f} s"]
    if host_drops:
        lines.append(f"this host dropped {host_drops} datagrams since the socket opened, "
                     f"because the receive buffer was full (a session's own are counted in "
                     f"its lost; the network did not lose them)")
    groups = group_counts(receiver)
    several = len(groups) > 1
    if several:
        lines += group_lines(receiver, groups)
    if several and len(sessions) > WORST_SHOWN:
        lines.append(f"{len(sessions)} sessions, one per group and sender: each in --json")
    for entry in sessions if not several or len(sessions) <= WORST_SHOWN else ():
        end = (f"end of run seen at seq {entry['last_seq']}" if entry["end_seen"] else
               "no end of run seen: loss after the last message that came is not counted")
        drops = ""
        if host_drops:  # from its first datagram to its report (or to now)
            drops = (f", {entry['host_drops']} dropped by this host while it lasted"
                     + (" (other traffic came too: some may have been that traffic's)"
                        if entry["shared_drops"] and entry["host_drops"] else ""))
        to = f" to {entry['group']}" if len(settings.groups) > 1 else ""
        lines.append(f"from {entry['address']} session {entry['session']}{to}: "
                     f"{entry['received']} received, {entry['lost']} lost "
                     f"({entry['loss_pct']}%), {entry['duplicates']} duplicates, "
                     f"{entry['reordered']} reordered{drops}"
                     + (f", {entry['too_late']} too late to tell (more than {SEQUENCE_WINDOW} "
                        f"behind: late or again; not lost)" if entry["too_late"] else "")
                     + f"; {end}")
    answered = [{"address": address, "acks": acks, "reports": reports}
                for address, (acks, reports) in receiver.answers.answered.items()]
    if answered:
        lines.append("answered " + ", ".join(
            f"{entry['address']} with {entry['acks']} acks and {entry['reports']} reports"
            for entry in answered))
    else:
        lines.append("answered nobody")
    auth = {reason: receiver.auth[reason]
            for reason in ("unauthenticated", "bad_tag", "replayed")}
    if any(auth.values()):
        lines.append(f"not answered, for the key: {auth['unauthenticated']} unsigned, "
                     f"{auth['bad_tag']} with a bad tag, {auth['replayed']} replayed"
                     + (" (a bad tag: the sender signs with another key)"
                        if auth["bad_tag"] else ""))
    if receiver.auth["mesh_summary"]:
        lines.append(f"{receiver.auth['mesh_summary']} mesh summaries not counted (from "
                     f"socket_multicast_sender.py --mesh on this group)")
    answers = receiver.answers
    if answers.rate_limited:
        lines.append(f"{answers.rate_limited} answers refused: more than "
                     f"{settings.max_ack_rate} a second to one address (--max-ack-rate)")
    addresses_evicted = answers.limit.evicted if answers.limit is not None else 0
    if addresses_evicted or answers.table_full:
        lines.append(f"the rate limit's table was full ({MAX_SESSIONS} addresses, each "
                     f"heard from within the last second): {addresses_evicted} addresses made "
                     f"room for new ones, and {answers.table_full} answers were refused "
                     f"to newcomers (they start with one answer's worth, not a second's)")
    if answers.not_sent:
        lines.append(f"{answers.not_sent} answers not sent: the socket's send buffer was "
                     f"full (a slow link?); dropped at once, not waited for")
    if receiver.table.evicted:
        lines.append(f"{receiver.table.evicted} sessions evicted to make room (at most "
                     f"{max(MAX_SESSIONS, 2 * receiver.table.groups)} at once; those with one "
                     f"datagram go first)")
    if receiver.answers.too_big:
        lines.append(f"{receiver.answers.too_big} answers not sent: larger than the "
                     f"datagram they answer (a sender of an older version)")
    if pacer.unprinted_total:
        lines.append(f"{pacer.unprinted_total} datagrams were counted but not "
                     f"printed (more than {LINES_PER_SECOND} a second)")
    receiver.out.event("summary", "\n".join(lines), received=receiver.received, **totals,
                       malformed=receiver.malformed, plain=receiver.plain,
                       host_drops=host_drops, evicted=receiver.table.evicted,
                       too_big=receiver.answers.too_big,
                       unprinted=pacer.unprinted_total, seconds=round(elapsed, 3),
                       senders=sessions, answered=answered, auth=auth,
                       rate_limited=answers.rate_limited, table_full=answers.table_full,
                       addresses_evicted=addresses_evicted, not_sent=answers.not_sent,
                       groups=groups, join_seconds=round(receiver.join_seconds, 6),
                       sockets=len(receiver.sockets))


# ==== the command line ====
def source_address(text):
    """A source for a source-specific join: a unicast IPv4 or IPv6 address."""
    if "%" in text:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give the source without its %zone; the interface is --interface")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    if address is None or address.is_multicast or address.is_unspecified:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a source address (valid: the unicast address of a sender)")
    return str(address)


def ack_rate(text):
    """Answers a second to one address: a whole number, 0 for no limit."""
    if not text.strip().isdigit() or int(text) > 10**9:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ack rate (valid: 0 to 1000000000 a second, 0 for no limit)")
    return int(text)


def build_parser(environ=os.environ):
    parser = OneLineParser(
        description="Join a multicast group, answer every message and count what arrives.",
        epilog="Environment: MULTICAST_GROUP (groups separated by commas), MULTICAST_PORT, "
               "MULTICAST_INTERFACE, MULTICAST_COUNT, MULTICAST_NAME, MULTICAST_ACK_JITTER, "
               "MULTICAST_REPORT_INTERVAL, MULTICAST_KEY_FILE, MULTICAST_MAX_ACK_RATE, "
               "MULTICAST_SOURCE (sources separated by commas).")
    add_group_option(parser, environ, "multicast group to join, IPv4 or IPv6; FIRST+N joins "
                     "FIRST and the N groups after it; may be given more than once "
                     "(default: %(default)s)")
    parser.add_argument("-p", "--port", metavar="PORT", type=port_number,
                        default=environ.get("MULTICAST_PORT", str(DEFAULT_PORT)),
                        help="UDP port to listen on (default: %(default)s)")
    parser.add_argument("-i", "--interface", metavar="NAME|ADDRESS", type=local_interface,
                        default=environ.get("MULTICAST_INTERFACE") or None,
                        help="interface to join on, by name or IPv4 or IPv6 address "
                             "(default: the system's choice)")
    parser.add_argument("-c", "--count", metavar="N", type=count_number,
                        default=environ.get("MULTICAST_COUNT", "0"),
                        help="messages to take before exiting, 0 for no limit "
                             "(default: %(default)s)")
    parser.add_argument("-s", "--source", metavar="ADDRESS", type=source_address,
                        action="append",
                        help="join source-specifically: take only this sender's datagrams; "
                             "may be given more than once (default: any source)")
    parser.add_argument("-n", "--name", metavar="NAME", type=receiver_name,
                        default=environ.get("MULTICAST_NAME") or socket.gethostname()[:MAX_NAME],
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
    parser.add_argument("-k", "--key-file", metavar="PATH", dest="key", type=key_file,
                        default=environ.get("MULTICAST_KEY_FILE") or None,
                        help="a file holding the shared key (at least 16 bytes): answer only "
                             "messages signed with it, and sign every answer (default: none)")
    parser.add_argument("--max-ack-rate", metavar="N", type=ack_rate,
                        default=environ.get("MULTICAST_MAX_ACK_RATE", "1000"),
                        help="answer each address at most N times a second (with a key "
                             "too), so that a spoofed sender cannot make us a reflector; 0 for "
                             "no limit (default: %(default)s)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="do not print a line for each datagram (without it, at most "
                             f"{LINES_PER_SECOND} a second are printed and the rest counted)")
    parser.add_argument("--no-offload", action="store_true",
                        help="read one datagram at a time, never a train of them the kernel "
                             "kept together (UDP_GRO, Linux; never with --count)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per line instead of text")
    return parser


def check_options(parser, args, program, environ=os.environ):
    """The checks of one option against another, once all are parsed: each failure ends
    with its one-line error, exit status 2. The interface must suit the group's family
    (settle_interface turns it into what the sockets want); so must the sources (a flag
    wins over MULTICAST_SOURCE, sources separated by commas); an SSM group without them
    gets a warning."""
    settle_groups(parser, args)
    settle_interface(parser, args)
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


class Settings(typing.NamedTuple):
    """What the receiver's core (Receiver, read_some, run, print_summary) takes from the
    command line, checked: one field per value, and nothing it does not use."""
    group: str  # the multicast group joined, IPv4 or IPv6, the first if several (--group)
    groups: typing.List[str]  # every group joined, in the order given (--group)
    port: int  # the UDP port it listens on (--port)
    name: str  # the name our answers carry, 1 to MAX_NAME bytes of UTF-8 (--name)
    key: typing.Optional[Key]  # answer only what it signs, sign every answer (--key-file)
    ack_jitter: float  # seconds an answer is held back at most, at random (--ack-jitter)
    max_ack_rate: int  # answers a second to one address at most, 0: no limit (--max-ack-rate)
    count: int  # messages to take before stopping, 0: no limit (--count)
    report_interval: float  # seconds between rate-and-loss reports, 0: none (--report-interval)
    quiet: bool  # no line for each datagram (--quiet)
    offload: bool  # take trains of datagrams in one read (UDP_GRO), not --no-offload


def settings_from(args):
    """The Settings in the parsed command line (checked by check_options)."""
    return Settings(group=args.groups[0], groups=args.groups, port=args.port, name=args.name,
                    key=args.key,
                    ack_jitter=args.ack_jitter, max_ack_rate=args.max_ack_rate,
                    count=args.count, report_interval=args.report_interval, quiet=args.quiet,
                    offload=not args.no_offload)


# ==== main ====
def explain(error, port, group):
    """One line that says what a socket error means and what to do about it."""
    if error.errno in (errno.ENETUNREACH, errno.ENODEV, errno.EADDRNOTAVAIL):
        return route_advice(group)
    if error.errno == errno.EADDRINUSE:
        return f"port {port} is already in use by a program that does not share it"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"not allowed: {error.strerror} (a firewall, or a port below 1024?)"
    if error.errno in (errno.ENOBUFS, errno.ENOMEM):
        return (f"the system refused to join {group}: {error.strerror} (the groups a socket "
                f"may join: net.ipv4.igmp_max_memberships)")
    return error.strerror or str(error)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    program = os.path.basename(sys.argv[0])
    check_options(parser, args, program)
    sys.stdout.reconfigure(line_buffering=True)  # every line shows up at once in `docker logs`
    out = Output(args.json)
    selector = selectors.DefaultSelector()
    stop = StopRequest(selector)
    try:
        joining = time.monotonic()
        try:
            sockets, joined_at = join_all(args.groups, args.port, args.interface,
                                          sources=args.source)
        except JoinLimit as error:
            print(f"{program}: error: {error}", file=sys.stderr)
            return 1
        except OSError as error:
            print(f"{program}: error: {explain(error, args.port, args.group)}", file=sys.stderr)
            return 1
        for which, sock in enumerate(sockets):
            selector.register(sock, selectors.EVENT_READ, which)
            if not args.no_offload and not args.count:  # --count: exactly, not by the train
                take_trains(sock)
        warn_if_readable_by_others(args.key, program)
        where, _ = describe_interface(args.group, args.port, args.interface)
        keyed = ", answering only messages signed with the key" if args.key else ""
        only = f", only from {', '.join(args.source)}" if args.source else ""
        receiver = Receiver(sockets, settings_from(args), out, joined_at)
        joined = (f"{args.group}:{args.port}" if len(args.groups) == 1 else
                  f"{len(args.groups)} groups from {args.group} to {args.groups[-1]} on port "
                  f"{args.port} (joined in {joined_at[-1] - joining:.3f} s over "
                  f"{len(sockets)} socket{'s' * (len(sockets) != 1)})")
        out.event("start", f"listening on {joined}, joined on {where}{only}, "
                  f"as {printable(args.name)}{keyed}", group=args.group, port=args.port,
                  groups=len(args.groups), sockets=len(sockets),
                  join_seconds=round(joined_at[-1] - joining, 6),
                  name=args.name, instance=receiver.instance, interface=where,
                  joined_on=where, sources=args.source, authenticated=args.key is not None)
        receiver.join_seconds = joined_at[-1] - joining
        status = 0
        try:
            run(receiver, selector, stop)
            stop.ignore_from_now()
        except BrokenPipeError:
            raise
        except OSError as error:
            print(f"{program}: error: {explain(error, args.port, args.group)}", file=sys.stderr)
            status = 1
        receiver.close()  # closing the socket also leaves the group
        print_summary(receiver)
        return status
    except BrokenPipeError:
        return quiet_on_closed_pipe()


if __name__ == "__main__":
    sys.exit(main())
