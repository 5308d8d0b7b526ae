#!/usr/bin/env python3
"""A multicast sender that measures: who answered, what was lost, how fast.

Sends numbered messages to a group and keeps statistics for every receiver
that answers: acks, lost, duplicated, reordered and late acks, and the
round-trip time. At the end it tells the receivers the run is over, and each
socket_multicast_receiver.py answers with its own report (what it received
and lost), shown beside the sender's figures. Start the receivers first
(socket_multicast_receiver.py or multicast_receiver.py), then:

    python3 socket_multicast_sender.py --count 5
    python3 socket_multicast_sender.py --count 10 --expect left,right --json
    python3 socket_multicast_sender.py --rate 1000 --count 10000 --max-loss 1

Round mode (the default) sends a message, waits --timeout seconds for the
acks, prints who answered, and pauses --interval seconds before the next
round. Throughput mode (--rate) sends at a fixed rate without waiting; with
--no-ack the receivers only count, and their reports tell the loss. An ack
counts if it arrives within --timeout of its message's send; a later one is
counted as late.
Exit status: 0 success; 1 when the verdict fails (a round heard from fewer
than --expect receivers, a listed receiver never answered, a receiver lost
more than --max-loss percent or its loss is unknown) or on a socket error;
2 bad usage.

Top to bottom:
    constants         every setting of the program's own, named
    shared blocks     what both scripts need, one source each in blocks/ (and the board's page)
    the socket        make_sender_socket: the multicast options, one teaching comment each
    receivers' rows   RttStats, Peer (one life of a receiver), merging lives, finding rows
    the sender        Sender, Groups (in turn), Train (many a call); parse_reply, count_reply
    the run           waits that a stop wakes, round mode, throughput mode, the end of run
    printing          the round lines, reports, the summary and the verdict
    the mesh          --mesh: every host sends and answers; MeshPeer, Mesh, the matrix
    the board         --board's state, server and page, and --live in a terminal
    the command line  Settings, the option checks, build_parser and each option's validator
    main              sets it all up, runs, prints the summary, exits 0, 1 or 2
"""

import argparse
import array
import bisect
import collections
import errno
import functools
import hashlib
import heapq
import hmac
import ipaddress
import itertools
import json
import math
import os
import random
import selectors
import signal
import socket
import struct
import sys
import threading
import time
import typing

# ==== constants ====
DEFAULT_GROUP = "224.10.10.10"
DEFAULT_PORT = 10000
DEFAULT_MESSAGE = "very important data"
MAX_PAYLOAD = 65507  # 65535 minus the IPv4 (20) and UDP (8) headers
MAX_DATAGRAM = 65535
RECEIVE_BUFFER = 4 * 1024 * 1024  # room for the acks of hundreds of receivers at once
IDLE_WAIT = 0.25  # seconds a receive call waits at most, between looks at a stop request
READS_PER_WAKEUP = 256  # replies read before the loop looks at the clock and signals again
BATCH = 64  # messages sent back to back at --rate 0 before replies and the clock are looked at
# Segmentation offload (--rate on Linux, Train): Linux's numbers where Python does not
# name them; at most 128 datagrams a send from Linux 6.9 on, 64 before (more: EINVAL, and
# the train is sent again with 64), and 65,000 bytes (a larger train reaches a receiver
# that merges them as single datagrams).
SOL_UDP, UDP_SEGMENT = getattr(socket, "SOL_UDP", 17), getattr(socket, "UDP_SEGMENT", 103)
MAX_SEGMENTS, OLD_MAX_SEGMENTS, MAX_TRAIN = 128, 64, 65000
# What a kernel answers when it will not cut a train on this path (then nothing went out).
REFUSED = {errno.EINVAL, errno.EMSGSIZE, errno.EIO, errno.ENOPROTOOPT, errno.EOPNOTSUPP}
RTT_SAMPLES = (10000, 1000, 100)  # RTTs kept for the percentiles (a random sample beyond)
SAMPLE_TIERS = (100, 1000)  # by place: the first 100 receivers keep 10,000, the next 900 1,000
LATEST_RTTS = 101  # the latest RTTs per receiver, whose median the board shows
# The receivers' rows are bounded against forged names: 106 MiB at the very most
# (10,000 rows, every RTT sample full, the open acks at their budget; tracemalloc).
MAX_PEERS = 10000  # receivers tracked; replies from further ones are only counted
NEW_PEERS_PER_SECOND = 1000  # new receivers taken on per second at most (forged names)
OPEN_ACKS_BUDGET = 1_000_000  # acks of open messages kept, all rows together (about 40 MB)
WORST_SHOWN = 5  # groups named in the summary's text, the worst first
# Ends of run a second at most, sent END_BATCH at a time: each asks for a report, and a
# receiver answers one address at most 1000 times a second (its --max-ack-rate's default).
END_RATE, END_BATCH = 1000, 50
END_GAP = 0.02  # seconds between the end-of-run messages (END_REPEATS of them)
REPORT_WAIT = 0.5  # seconds to wait at least for the receivers' reports
# The live board (--board): a page for the projector, and the same in a terminal.
BOARD_EVERY = 0.5  # seconds between two states the board is given
GONE_ROUNDS = 5  # rounds (throughput mode: seconds) a receiver is silent before it is gone
MAX_BOARD_CLIENTS = 64  # connections at once; a new one beyond this closes the oldest
BOARD_REQUEST_TIME = 5.0  # seconds a connection has to send its request and take the answer
MAX_REQUEST = 8192  # bytes of a request's head
MAX_BOARD_ROWS = 200  # receivers the board shows (a classroom fits; the rest are counted)


# The mesh (--mesh): every peer sends and answers.
MESH_KINDS = ("multicast", "unicast")  # the probes' kinds, in their wire order
# Seconds between two of a peer's summaries, up to MESH_SUMMARY_PEERS peers; beyond, in
# proportion, so that what each peer takes in of the others' summaries grows as the
# number of peers, not as its square (each summary tells of every peer).
MESH_SUMMARY_EVERY, MESH_SUMMARY_PEERS = 1.0, 30
MESH_LINGER = 5.0  # seconds at most a peer listens on after its rounds, for the others' ends
MESH_QUIET = 1.0  # and once all have ended, seconds with no news of last counts before it ends
MAX_MESH_PEERS = 256  # peers kept; a new one beyond evicts the least recently heard
MESH_PART = 1200  # bytes of a summary datagram at most: under any link's MTU
MESH_RTTS = 1000  # round trips kept for the percentiles, per peer and kind
MESH_MAX_ACK_RATE = 1000  # acks a second to one address at most, as a receiver's default
# A peer is gone once silent for its interval (1 s at most) and this long: with the
# board's state every BOARD_EVERY and the page's look every 0.25 s, grey within 2 s.
MESH_GONE_SLACK = 0.15
MESH_STATUS_EVERY = 10.0  # seconds between two status lines while a mesh runs
MESH_UNICAST_TTL = 64  # the unicast probes' TTL, which they carry: peers count the hops
MESH_PEER_LINES = 20  # 'peer ... heard' lines a second at most: the rest are counted
NOT_NOW = {errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS}  # a send that cannot go out now


# ==== shared blocks ====
# Blocks: protocol, authentication, output, arguments, signals, pipe, counting, receiving,
# board_page
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


# ---- block board_page: generated from blocks/board_page.py (python3 blocks/sync.py) ----
# The live board's page (--board): HTML, style and script in one, served as it is.
# It asks for /board.json every second and draws a row per receiver, or for a mesh
# (--mesh, four times a second) a matrix per kind of probe; names are set as text
# only, so a name from the network cannot run as code.
BOARD_PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>multicast board</title>
<style>
  /* As large as the rows allow: up to 30 fit on one screen, more scroll. */
  body { margin: 0; padding: 1.2vw 2vw; background: #10151c; color: #e8edf2;
         font: clamp(1vw, calc(80vh / (var(--rows, 1) + 3) / 1.55), 2.1vw)/1.3 system-ui,
               sans-serif; }
  header { display: flex; flex-wrap: wrap; gap: 0 2.5vw; align-items: baseline; }
  h1 { font-size: 1.25em; margin: 0 1vw 0 0; }
  .figure b { font-size: 1.25em; }
  #banner { display: none; margin: .6vw 0; padding: .4vw 1vw; background: #8a2b2b;
            font-weight: bold; }
  body.stopped #banner { display: block; }
  body.stopped table { opacity: .45; }
  table { width: 100%; border-collapse: collapse; margin-top: .4em; table-layout: fixed; }
  th { text-align: left; color: #9fb0c0; font-weight: normal; font-size: .7em; }
  td, th { padding: .12em .6vw; white-space: nowrap; overflow: hidden;
           text-overflow: ellipsis; }
  td.num, th.num { text-align: right; }
  tr.answering td.state { color: #5fd38a; }
  tr.silent td { color: #f0c05a; }
  tr.gone td { color: #6b7785; }
  tr.lossy td.loss { color: #ff6b6b; font-weight: bold; }
  tr.answering td:first-child { border-left: .5vw solid #5fd38a; }
  tr.silent td:first-child { border-left: .5vw solid #f0c05a; }
  tr.gone td:first-child { border-left: .5vw solid #3a4552; }
  tr.never td { color: #ff6b6b; }
  body.compact { font-size: 1vw; }  /* beyond 30 rows: small, and the page scrolls */
  td.unnamed { font-style: italic; color: #9fb0c0; }
  /* A mesh: a matrix per kind, side by side, rows sending, columns receiving; each
     cell's colour its loss, its numbers on hover. 30 peers fit a 1920 x 1080 screen. */
  body.mesh { font-size: 1.3vw; }
  #matrices { display: none; gap: 2vw; }
  body.mesh #matrices { display: flex; }
  body.mesh #receivers { display: none; }
  .matrix { flex: 1; min-width: 0; }
  .matrix h2 { font-size: 1em; margin: .3em 0; color: #9fb0c0; font-weight: normal; }
  .matrix table { table-layout: fixed; width: 100%; }
  .matrix td, .matrix th { padding: 0; text-align: center; border: 1px solid #10151c;
    height: calc(min(70vh, 42vw) / var(--n, 1));
    font-size: clamp(6px, calc(min(70vh, 42vw) / var(--n, 1) / 2.6), 1.4vw); }
  .matrix th.corner { width: 6vw; }
  .matrix th.row { text-align: right; padding-right: .4vw; color: #e8edf2; }
  .matrix th.col { color: #e8edf2; writing-mode: vertical-rl; transform: rotate(180deg);
                   height: 4.5em; vertical-align: bottom; text-align: left; }
  .matrix td.none { background: #1c2530; color: #6b7785; }
  .matrix td.clean { background: #1f7a45; }
  .matrix td.light { background: #9a9a2a; }
  .matrix td.heavy { background: #b8661f; }
  .matrix td.lost { background: #a02b2b; font-weight: bold; }
  .matrix td.self { background: #10151c; }
  .matrix .gone { opacity: .35; filter: grayscale(1); }
  body.dense .matrix td { color: transparent; }  /* beyond 40 peers: colours only */
</style></head>
<body>
<header><h1>multicast board</h1>
  <span class="figure">group <b id="group">-</b></span>
  <span class="figure">ttl <b id="ttl">-</b></span>
  <span class="figure">sent <b id="sent">-</b></span>
  <span class="figure"><span id="answering-label">answering</span> <b id="answering">-</b>
  </span></header>
<div id="banner">sender stopped</div>
<div id="matrices"></div>
<table id="receivers">
<colgroup><col style="width:17%"><col style="width:20%"><col style="width:17%">
<col style="width:8%"><col style="width:9%"><col style="width:13%"><col style="width:7%">
<col style="width:9%"></colgroup>
<thead><tr><th>receiver</th><th>address</th><th>state</th><th class="num">acks</th>
<th class="num">loss</th><th class="num">rtt p50</th><th class="num">hops</th>
<th class="num">heard</th></tr></thead><tbody id="rows"></tbody></table>
<script>
"use strict";
// Names come from the network: they are only ever set as text, never as markup.
function cell(row, text, kind) {
  const td = document.createElement("td");
  td.textContent = text;
  if (kind) td.className = kind;
  row.appendChild(td);
}
function stateText(r, mode) {
  if (r.state !== "silent") return r.state;
  return "silent " + r.silent + (mode === "rounds" ? " round" + (r.silent === 1 ? "" : "s")
                                                   : " s");
}
function show(s) {
  document.body.classList.toggle("stopped", s.stopped);
  document.getElementById("banner").textContent =
    s.stopped ? "sender stopped: its run is over" : "sender stopped";
  document.getElementById("group").textContent = s.group + ":" + s.port;
  document.getElementById("ttl").textContent = s.ttl;
  document.getElementById("sent").textContent = s.sent;
  document.getElementById("answering").textContent =
    s.answering + (s.expected === null ? "" : " / " + s.expected);
  const rows = document.createDocumentFragment();
  for (const r of s.receivers) {
    const tr = document.createElement("tr");
    tr.className = r.state + (r.loss_pct ? " lossy" : "");
    cell(tr, r.name || "(no name)", r.name ? "" : "unnamed");
    cell(tr, r.address);
    cell(tr, stateText(r, s.mode), "state");
    cell(tr, r.acks, "num");
    cell(tr, r.loss_pct === null ? "-" : Math.round(r.loss_pct * 10) / 10 + "%", "num loss");
    cell(tr, r.rtt_p50_ms === null ? "-" : r.rtt_p50_ms + " ms", "num");
    cell(tr, r.hops === null ? "-" : r.hops, "num");
    cell(tr, r.last_heard_s === null ? "-" : r.last_heard_s + " s", "num");
    rows.appendChild(tr);
  }
  for (const name of s.never_heard) {
    const tr = document.createElement("tr");
    tr.className = "never";
    cell(tr, name); cell(tr, "-"); cell(tr, "never heard", "state");
    for (let i = 0; i < 5; i++) cell(tr, "-", "num");
    rows.appendChild(tr);
  }
  if (s.not_shown) {
    const tr = document.createElement("tr");
    tr.className = "never";
    cell(tr, "and " + s.not_shown + " more receivers, not shown");
    rows.appendChild(tr);
  }
  const count = s.receivers.length + s.never_heard.length;
  document.body.style.setProperty("--rows", count);
  document.body.classList.toggle("compact", count > 30);
  document.getElementById("rows").replaceChildren(rows);
}
function lossClass(value) {
  if (value === null) return "none";
  if (value[0] === 0) return "clean";
  return value[0] < 1 ? "light" : value[0] < 10 ? "heavy" : "lost";
}
function showMesh(s) {
  document.body.classList.add("mesh");
  document.body.classList.toggle("stopped", s.stopped);
  document.getElementById("banner").textContent = "this peer stopped: its run is over";
  document.getElementById("group").textContent = s.group + ":" + s.port;
  document.getElementById("ttl").textContent = s.ttl;
  document.getElementById("sent").textContent = s.rounds + " rounds";
  const heard = s.peers.filter(p => p.state === "heard" || p.state === "me").length;
  document.getElementById("answering-label").textContent = "heard";
  document.getElementById("answering").textContent = heard + " / " + s.peers.length + " peers";
  const n = s.peers.length, away = s.peers.map(p => p.state !== "heard" && p.state !== "me");
  document.body.style.setProperty("--n", n + 1);
  document.body.classList.toggle("dense", n > 40);
  const all = document.createDocumentFragment();
  for (const kind of ["multicast", "unicast"]) {
    const box = document.createElement("div"), title = document.createElement("h2");
    box.className = "matrix";
    title.textContent = kind + " loss %: rows send, columns receive";
    const table = document.createElement("table"), head = document.createElement("tr");
    const corner = document.createElement("th");
    corner.className = "corner";
    head.appendChild(corner);
    s.peers.forEach((p, j) => {
      const th = document.createElement("th");
      th.className = "col" + (away[j] ? " gone" : "");
      th.textContent = (p.name || p.address).slice(0, 10);
      th.title = p.name + " (" + p.address + "): " + p.state;
      head.appendChild(th);
    });
    table.appendChild(head);
    s.matrix[kind].forEach((row, i) => {
      const tr = document.createElement("tr"), th = document.createElement("th");
      th.className = "row" + (away[i] ? " gone" : "");
      th.textContent = (s.peers[i].name || s.peers[i].address).slice(0, 10);
      th.title = s.peers[i].address + ": " + s.peers[i].state;
      tr.appendChild(th);
      row.forEach((value, j) => {
        const td = document.createElement("td");
        if (i === j) { td.className = "self"; tr.appendChild(td); return; }
        td.className = lossClass(value) + (away[i] || away[j] ? " gone" : "");
        td.textContent = value === null ? "?" : Math.round(value[0] * 10) / 10;
        td.title = s.peers[i].name + " to " + s.peers[j].name + ", " + kind + ": " +
          (value === null ? "not told yet" : value[1] + " received, " + value[2] +
           " lost (" + value[0] + "%)" + (value[3] === null ? "" : ", rtt p50 " + value[3] +
           " ms") + (value[4] === null ? "" : ", " + value[4] + " hops"));
        tr.appendChild(td);
      });
      table.appendChild(tr);
    });
    box.append(title, table);
    all.appendChild(box);
  }
  document.getElementById("matrices").replaceChildren(all);
}
async function update() {
  try {
    const answer = await fetch("board.json", {cache: "no-store"});
    if (!answer.ok) throw new Error(answer.status);
    const state = await answer.json();
    if (state.mesh) showMesh(state); else show(state);
  } catch (error) {
    document.body.classList.add("stopped");  // no sender: say so, keep the old rows dim
    document.getElementById("banner").textContent = "sender stopped";
  }
  setTimeout(update, document.body.classList.contains("mesh") ? 250 : 1000);
}
update();
</script></body></html>
""".encode("utf-8")
# ---- end of block board_page ----


# ==== the socket ====
def make_sender_socket(ttl, interface, family=socket.AF_INET):
    """A non-blocking UDP socket set up to send multicast and read the acks."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        # IPV6_MULTICAST_HOPS: IPv6's name for the TTL, the hop limit (an int).
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ttl)
        if interface:
            # IPV6_MULTICAST_IF: send out of this interface, named by its index.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, interface)
    else:
        # IP_MULTICAST_TTL: how many routers the datagrams may cross; one
        # unsigned byte ('B', 0 to 255). 1 keeps them on the local network.
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, struct.pack("B", ttl))
        if interface:
            # IP_MULTICAST_IF: send out of this interface instead of the one the
            # routing table picks for 224.0.0.0/4.
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                            socket.inet_aton(interface))
    # SO_RCVBUF: room for many acks arriving together (capped by net.core.rmem_max).
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.setblocking(False)
    return sock


# ==== receivers' rows ====
class RttStats:
    """Round-trip times: running min, max, mean and deviation, and a sample for percentiles."""

    def __init__(self, room=RTT_SAMPLES[0]):
        self.count = 0
        self.total = 0.0
        self.squares = 0.0
        self.low = math.inf
        self.high = 0.0
        self.room = room  # RTTs the sample holds at most
        self.sample = array.array("d")  # 8 bytes an RTT
        self.latest = collections.deque(maxlen=LATEST_RTTS)  # for the board

    def record(self, rtt_ms):
        self.count += 1
        self.total += rtt_ms
        self.squares += rtt_ms * rtt_ms
        self.low = min(self.low, rtt_ms)
        self.high = max(self.high, rtt_ms)
        self.latest.append(rtt_ms)
        if len(self.sample) < self.room:
            self.sample.append(rtt_ms)
        else:  # keep a uniform random sample of all RTTs (reservoir sampling)
            slot = random.randrange(self.count)
            if slot < self.room:
                self.sample[slot] = rtt_ms

    @classmethod
    def merged(cls, parts):
        """One receiver's RTTs over its lives (restarts): the sums, and the samples
        joined (each life's sample stands for its own RTTs, so a percentile of the join
        leans to the lives with more of the sample: close enough to show)."""
        whole = cls(sum(part.room for part in parts))
        for part in parts:
            whole.count += part.count
            whole.total += part.total
            whole.squares += part.squares
            whole.low = min(whole.low, part.low)
            whole.high = max(whole.high, part.high)
            whole.sample.extend(part.sample)
            whole.latest.extend(part.latest)
        return whole

    def latest_median(self):
        """The median of the latest RTTs: cheap enough to work out twice a second."""
        return round(sorted(self.latest)[len(self.latest) // 2], 3) if self.latest else None

    def as_dict(self):
        if not self.count:
            return None
        mean = self.total / self.count
        ordered = sorted(self.sample)

        def percentile(p):
            return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

        deviation = math.sqrt(max(0.0, self.squares / self.count - mean * mean))
        return {"min": round(self.low, 3), "avg": round(mean, 3), "max": round(self.high, 3),
                "mdev": round(deviation, 3), "p50": round(percentile(50), 3),
                "p99": round(percentile(99), 3)}


class Peer:
    """One life of one receiver as seen from here: its acks, and its own report at the
    end. A receiver restarted is a new life (its instance changes); merge_lives()
    joins the lives of one receiver for what is printed."""

    def __init__(self, address, name, instance=0, room=RTT_SAMPLES[0], now=0.0, tally=None):
        self.address = address
        self.name = name
        self.instance = instance  # its header's INSTANCE byte (0: an older receiver)
        self.namesake = False  # another receiver answers under this name from this host
        self.restarts = 0  # in a merged row: the lives before its latest
        self.acks = 0  # acks that came in time
        self.open_acks = []  # heap: acked sequences of messages still open
        self.tally = [0] if tally is None else tally  # open acks of all rows that share it
        self.closed_acks = 0  # acks in time of messages whose time is over
        self.duplicates = 0
        self.reordered = 0
        self.late = 0
        self.unchecked = 0  # acks too far out of order to tell whether they are duplicates
        self.highest = 0
        self.lowest = math.inf  # the first sequence it acked
        self.acked = 0  # bit i: the ack of highest - i came (SEQUENCE_WINDOW bits)
        self.rtt = RttStats(room)
        self.report = None  # the receiver's own counts, once its report came
        self.reports = {}  # with several groups: each group's report, by its number
        self.first_heard = self.last_heard = now  # its first and latest reply (monotonic s)
        self.ttl_received = None  # the TTL (hop limit) our latest message it told of came with
        self.join_to_first_ms = None  # from its join to its first message, if it joined late

    def label(self):
        name = printable(self.name)
        label = f"{self.address} ({name})" if name else self.address
        return f"{label} #{self.instance}" if self.namesake else label

    def take(self, sequence, rtt_ms, in_time, reordered, closed_through):
        """Count one ack; return 'ack', 'late' or 'duplicate'. Late is by its send time
        alone: an ack in time too far out of order to check counts, and is 'unchecked'.

        Reordering is the receiver's to see (acks are spread out on purpose,
        so their order here means nothing): it flags the ack."""
        behind = self.highest - sequence
        self.lowest = min(self.lowest, sequence)
        if behind >= SEQUENCE_WINDOW:  # older than what we remember: cannot tell
            self.unchecked += 1
        elif behind >= 0:
            if self.acked >> behind & 1:
                self.duplicates += 1
                return "duplicate"
            self.acked |= 1 << behind
        else:  # a new highest: the window slides ahead
            self.acked = (self.acked << -behind | 1) & WINDOW_MASK
            self.highest = sequence
        if not in_time:
            self.late += 1
            return "late"
        self.acks += 1
        self.reordered += reordered
        heapq.heappush(self.open_acks, sequence)
        self.tally[0] += 1
        self.close(closed_through)  # the heap holds only the acks of open messages
        while self.tally[0] > OPEN_ACKS_BUDGET and self.open_acks:
            # Over budget (forged acks under many names, or a vast run): count this
            # row's oldest open acks as closed now. Only a report's "unacked so far"
            # can be off by them, never the summary: by then every message is closed.
            self.close(self.open_acks[0])
        self.rtt.record(rtt_ms)
        return "ack"

    def close(self, closed_through):
        """Count the acks of messages whose time is over (up to closed_through)."""
        while self.open_acks and self.open_acks[0] <= closed_through:
            heapq.heappop(self.open_acks)
            self.closed_acks += 1
            self.tally[0] -= 1

    def as_dict(self, closed_through, acks_asked=True, ttl_sent=None, rtt=True):
        """Its figures; without rtt, no RTT statistics (they sort a sample of 10,000)."""
        loss = loss_of(self, closed_through, acks_asked)
        parts = [loss[way] for way in ("there", "back", "either_way")]
        lost = None if all(part is None for part in parts) else sum(p or 0 for p in parts)
        sent = max(closed_through, (self.report or {}).get("last_seq") or 0)
        return {"address": self.address, "name": self.name, "instance": self.instance,
                "restarts": self.restarts, "namesake": self.namesake,
                "acks": self.acks, "lost": lost, "duplicates": self.duplicates,
                "reordered": self.reordered, "late": self.late, "unchecked": self.unchecked,
                "loss_pct": None if lost is None else
                round(100.0 * lost / sent, 2) if sent else 0.0,
                "loss": loss, "rtt_ms": self.rtt.as_dict() if rtt else None,
                "report": self.report,
                "ttl_received": self.ttl_received,
                "hops": None if ttl_sent is None else hops_of(self, ttl_sent),
                "join_to_first_ms": self.join_to_first_ms}


def loss_of(peer, closed_through, acks_asked):
    """Where a receiver's messages were lost, as far as we can tell: from its report when it
    came (the authority), else from the acks; all counted from our first message."""
    peer.close(closed_through)
    report = peer.report
    if report is None or peer.restarts and acks_asked:
        # Lost: no ack at all; an ack that came late says the message got there.
        either = max(0, closed_through - peer.closed_acks - peer.late) if acks_asked else None
        return {"there": None, "back": None, "either_way": either, "host": None,
                "unsent": None, "host_shared": False}
    # Its host's drops explain at most its own loss: beyond that they were other
    # traffic's (its socket's drops are counted for all who send to it).
    host = min(report["host_drops"], report["lost"])
    there = report["lost"] - host
    unsent = report["unsent"]
    back = (max(0, report["received"] - peer.closed_acks - peer.late - (unsent or 0))
            if acks_asked else None)
    return {"there": there, "back": back, "either_way": None, "host": host, "unsent": unsent,
            "host_shared": bool(report.get("shared_drops"))}


def merge_lives(lives, closed_through):
    """One row for one receiver's lives, one after the other (it restarted): the
    sums of their counts, the latest life's report and instance."""
    if len(lives) == 1:
        return lives[0]
    latest = lives[-1]
    whole = Peer(latest.address, latest.name, latest.instance)
    whole.restarts = len(lives) - 1
    whole.namesake = latest.namesake
    for life in lives:
        life.close(closed_through)
        for field in ("acks", "closed_acks", "duplicates", "reordered", "late",
                      "unchecked"):
            setattr(whole, field, getattr(whole, field) + getattr(life, field))
        whole.open_acks += life.open_acks
        whole.highest = max(whole.highest, life.highest)
        whole.lowest = min(whole.lowest, life.lowest)
        whole.ttl_received = life.ttl_received or whole.ttl_received
        whole.join_to_first_ms = whole.join_to_first_ms or life.join_to_first_ms
    heapq.heapify(whole.open_acks)
    whole.rtt = RttStats.merged([life.rtt for life in lives])
    whole.report = latest.report
    whole.first_heard, whole.last_heard = lives[0].first_heard, latest.last_heard
    return whole


def find_peer(sender, address, name, instance, now):
    """The row of (address, name, instance), found by its key alone; a new one if
    there is room (MAX_PEERS, NEW_PEERS_PER_SECOND), else None and counted.

    With a key a receiver is known by its name and instance alone: they are
    signed, the address is not, so a valid ack replayed from elsewhere is a
    duplicate. A receiver restarted answers with a new instance: a new row, a new
    life of it (receivers() tells lives from namesakes, by time)."""
    key = (name, instance) if sender.key is not None else (address, name, instance)
    peer = sender.peers.get(key)
    if peer is not None:
        return peer
    second = int(now)
    if sender.new_peers[0] != second:
        sender.new_peers = [second, 0]
    if len(sender.peers) >= MAX_PEERS or sender.new_peers[1] >= NEW_PEERS_PER_SECOND:
        sender.counts["untracked"] += 1
        return None
    sender.new_peers[1] += 1
    room = RTT_SAMPLES[bisect.bisect(SAMPLE_TIERS, len(sender.peers))]
    peer = sender.peers[key] = Peer(address, name, instance, room, now, sender.open_entries)
    sender.lives.setdefault(key[:-1], []).append(peer)
    return peer


def follows(life, before):
    """Whether life began after before ended: first heard after before's last reply,
    and answering only messages after the last one before answered."""
    return before.last_heard < life.first_heard and before.highest < life.lowest


def receivers(sender):
    """One row per receiver, as (row, its lives): the lives of one name (from one
    address) one after another, each first heard after the one before fell silent,
    are one receiver restarted, merged; lives that overlap in time are namesakes,
    two receivers, kept apart."""
    rows = []
    for lives in sender.lives.values():
        chains = []
        for life in lives:  # in the order they were first heard
            before = [chain for chain in chains if follows(life, chain[-1])]
            if before:
                max(before, key=lambda chain: chain[-1].last_heard).append(life)
            else:
                chains.append([life])
        for chain in chains:
            for life in chain:
                life.namesake = len(chains) > 1
            rows.append((merge_lives(chain, sender.closed_through), chain))
    return rows


# ==== the sender ====
class Sender:
    """Sends the messages and counts every reply that comes back."""

    def __init__(self, sock, settings, out):
        self.sock, self.settings, self.out, self.key = sock, settings, out, settings.key
        self.session = random.getrandbits(64)
        self.expect = settings.expect or (1, [])  # (count, names) that must answer
        # With --expect a round ends once they have all answered (unless --wait-all).
        self.end_rounds_early = settings.expect is not None and not settings.wait_all
        self.flags = (NO_ACK if settings.no_ack else 0) | (AUTHENTICATED if settings.key else 0)
        self.buffer = message_buffer(settings)
        self.groups = Groups(settings, self.session)  # where each message goes, in turn
        self.timeout_ns = int(settings.timeout * 1e9)
        self.sequence = self.last_send_ns = 0  # the latest message sent, and its send time
        self.open = collections.deque()  # (send time, sequence) of messages still open
        self.closed_through = 0  # every message up to this one has had its time
        self.peers = {}  # (address, name, instance) -> Peer, a receiver's life
        self.lives = {}  # (address, name) -> its lives, in the order first heard
        self.new_peers = [0, 0]  # this second, and the rows it added
        self.open_entries = [0]  # the rows' open acks, all together (OPEN_ACKS_BUDGET)
        self.plain = collections.Counter()  # throughput mode: address -> b'ack' replies
        self.round_acks = []  # (peer, rtt) of the round under way
        self.round_open = False  # a round's message is out and its line not yet printed
        self.round_cut_short = False  # it ended once the expected had answered
        self.ended = False  # the end of run has gone out: plain acks now answer it
        self.counts = collections.Counter()  # replies by kind: stray, malformed, untracked...
        self.send_failed = None  # why the latest message could not go out
        self.started = time.monotonic()
        self.first_send_at = self.last_send_at = 0.0  # after the first and the last batch
        self.first_send_ns = 0  # the first message's send time, with acks (the header's)
        self.board = self.live = None  # --board's server, --live's terminal board
        self.where = "the default interface"  # the interface we send from, in words
        self.next_board = 0.0  # when the boards get the state next

    def send(self):
        """Send the next message; False if the socket's buffer is full for now."""
        return self.send_many(1) == 1

    def send_many(self, count):
        """Send up to count messages back to back; return how many went out. The hot path:
        each is built in place in one buffer, on local names, the clock read only for acks."""
        buffer, pack, sendto, key = self.buffer, HEADER.pack_into, self.sock.sendto, self.key
        flags, sessions, destinations = self.flags, self.groups.sessions, self.groups.destinations
        session, destination, groups = sessions[0], destinations[0], len(sessions)
        clock = time.monotonic_ns if not self.settings.no_ack else int  # int(): 0, no RTT
        sequence, done = self.sequence, 0
        self.send_failed = None
        try:
            for done in range(count):
                now_ns = clock()
                turn = sequence
                if groups > 1:  # the groups take turns (Groups)
                    turn, which = divmod(sequence, groups)
                    session, destination = sessions[which], destinations[which]
                pack(buffer, 0, MAGIC, VERSION, DATA, flags, session, turn + 1, now_ns)
                try:
                    sendto(buffer if key is None else sign(bytes(buffer), key), destination)
                except BlockingIOError:
                    return done
                except OSError as error:
                    if sequence == 0:  # nothing ever went out: a set-up problem, not a fault
                        raise
                    # The network failed under us (a link went down): lost to all; go on.
                    self.counts["send_errors"] += 1
                    self.send_failed = error.strerror
                sequence += 1
                if now_ns:
                    self.first_send_ns = self.first_send_ns or now_ns
                    self.last_send_ns = now_ns
                    self.open.append((now_ns, sequence))
                    self.close_expired(now_ns)
            return count
        finally:
            if sequence > self.sequence:  # the sending time, without the waits
                self.last_send_at = time.monotonic()
                self.first_send_at = self.first_send_at or self.last_send_at
            self.sequence = sequence

    def close_expired(self, now_ns):
        """Messages older than the timeout can get no more acks that count."""
        while self.open and now_ns - self.open[0][0] > self.timeout_ns:
            self.closed_through = self.open.popleft()[1]

    def close_all(self):
        self.open.clear()
        self.closed_through = self.sequence

    def read_some(self):
        """Read the replies waiting on the socket, at most READS_PER_WAKEUP of them."""
        for _ in range(READS_PER_WAKEUP):
            try:
                data, address = self.sock.recvfrom(MAX_DATAGRAM)
            except BlockingIOError:
                return
            now_ns = time.monotonic_ns()  # the arrival time, before any parsing
            self.on_reply(parse_reply(data, self.key), address[0], now_ns)

    def on_reply(self, reply, address, now_ns):
        count_reply(self, reply, address, now_ns)


class Groups:
    """The groups messages go to in turn: message m (from 1) goes to group (m - 1) % n, as
    its own message (m - 1) // n + 1, in a session of its own (our session id plus the
    group's place), so that each group's receivers count it as a sender of its own."""

    def __init__(self, settings, session):
        self.names = settings.groups
        self.destinations = [destination(group, settings.port, settings.interface)
                             for group in settings.groups]
        self.sessions = [(session + which) % 2**64 for which in range(len(settings.groups))]
        self.which = {session: which for which, session in enumerate(self.sessions)}
        self.acks = [0] * len(settings.groups)  # acks in time, by group

    def wire(self, message):
        """(group number, session, sequence number on the wire) of our message number."""
        turn, which = divmod(message - 1, len(self.sessions))
        return which, self.sessions[which], turn + 1

    def message(self, session, sequence):
        """Our message number of a session's sequence number; None: not our session."""
        which = self.which.get(session)
        return None if which is None else (sequence - 1) * len(self.sessions) + which + 1

    def sent(self, which, messages):
        """How many of our first messages went to group number which."""
        return max(0, (messages - which + len(self.sessions) - 1) // len(self.sessions))


class Train:
    """Throughput mode's segmentation offload (Linux 4.18 and later): up to `most`
    messages built back to back in one buffer, each with its own header, number and
    send time, handed to the kernel in one system call, which cuts them into datagrams
    as they go out: the receivers get what one send each would give them. A kernel or a
    path that refuses (a datagram larger than the link's MTU, say) sends nothing, and
    the sender goes on one send each (refused is then True)."""

    def __init__(self, sender):
        self.sender, self.refused = sender, False
        self.timed = not sender.settings.no_ack  # each message its send time (for the RTT)
        self.slot = len(sender.buffer) + (TAG_SIZE if sender.key is not None else 0)
        self.most = max(1, min(MAX_SEGMENTS, MAX_TRAIN // self.slot))
        self.buffer = bytearray(self.slot * self.most)
        # What every message holds but its number and time: the header's first 16 bytes
        # (magic to session), and what follows the header (with room for a tag).
        self.head = HEADER.pack(MAGIC, VERSION, DATA, sender.flags, sender.groups.sessions[0],
                                0, 0)[:16]
        self.tail = bytes(sender.buffer[HEADER.size:]) + bytes(self.slot - len(sender.buffer))
        self.layouts = {}  # messages -> a Struct of that many messages back to back
        for at in range(0, len(self.buffer), self.slot):  # every message, numbered 0 for now
            self.buffer[at:at + self.slot] = self.head + bytes(16) + self.tail
        # Without acks or a key only the numbers change: where a message is a whole number
        # of 4-byte words, they are written straight in, every message's at once (its
        # sequence number's low word is the header's sixth).
        self.words = memoryview(self.buffer).cast("I") if self.slot % 4 == 0 else None
        # UDP_SEGMENT, for each send: cut what it carries into datagrams of this many bytes.
        self.segment = [(SOL_UDP, UDP_SEGMENT, struct.pack("=H", self.slot))]

    def layout(self, messages):
        """So many whole messages back to back, packed in one call: head, number, time, tail."""
        if messages not in self.layouts:
            self.layouts[messages] = struct.Struct("!" + f"16sQQ{len(self.tail)}s" * messages)
        return self.layouts[messages]

    def send(self, count):
        """Send up to count messages, in trains; return how many went out."""
        sender, done = self.sender, 0
        while done < count and not self.refused:
            size = min(count - done, self.most)
            numbers = range(sender.sequence + 1, sender.sequence + size + 1)
            times = [time.monotonic_ns() for _ in numbers] if self.timed else None
            if times is None and sender.key is None and self.words and numbers[-1] < 2**32:
                step = self.slot // 4
                self.words[5:5 + size * step:step] = numbers_column(numbers[0], size)
            else:
                self.layout(size).pack_into(self.buffer, 0, *itertools.chain.from_iterable(zip(
                    itertools.repeat(self.head), numbers, times or itertools.repeat(0),
                    itertools.repeat(self.tail))))
            if sender.key is not None:
                for at in range(0, size * self.slot, self.slot):
                    self.buffer[at:at + self.slot] = sign(
                        bytes(self.buffer[at:at + self.slot - TAG_SIZE]), sender.key)
            try:
                sender.sock.sendmsg([memoryview(self.buffer)[:size * self.slot]], self.segment,
                                    0, sender.groups.destinations[0])
            except BlockingIOError:
                break
            except OSError as error:
                if error.errno == errno.EINVAL and size > OLD_MAX_SEGMENTS:
                    self.most = OLD_MAX_SEGMENTS  # a kernel before 6.9: nothing went out
                    continue
                if error.errno in REFUSED:
                    self.refused = True  # nothing went out: one send each from now on
                    break
                if sender.sequence == 0:  # as send_many: a set-up problem
                    raise
                sender.counts["send_errors"] += size  # as send_many: lost to all; go on
                sender.send_failed = error.strerror
            self.sent(size, times)
            done += size
        return done

    def sent(self, size, times):
        """The sender's books after a train went out, as send_many keeps them."""
        sender = self.sender
        if times:
            sender.first_send_ns = sender.first_send_ns or times[0]
            sender.last_send_ns = times[-1]
            sender.open.extend(zip(times, range(sender.sequence + 1, sender.sequence + size + 1)))
            sender.close_expired(times[-1])
        sender.sequence += size
        sender.last_send_at = time.monotonic()
        sender.first_send_at = sender.first_send_at or sender.last_send_at


def trains_fit(sender):
    """Whether trains may carry this run: Linux, --rate, one group (each message goes
    to the next group otherwise), TTL 1 (a train may cross a virtual link whole, and a
    router in software that reads raw packets, as lab/router.py, would forward it as
    one datagram), no --no-offload, two messages to a train at least, and a kernel
    that knows the option (an older one would ignore it)."""
    settings = sender.settings
    if not (sys.platform.startswith("linux") and settings.rate is not None
            and settings.offload and len(settings.groups) == 1 and settings.ttl <= 1
            and 2 * (len(sender.buffer) + TAG_SIZE) <= MAX_TRAIN):
        return False
    try:
        sender.sock.getsockopt(SOL_UDP, UDP_SEGMENT)
    except OSError:  # ENOPROTOOPT: a kernel before 4.18
        return False
    return True


def message_buffer(settings):
    """Every message in one buffer: the header is packed into its start, in place. Its
    size is --size, or room for the answer's name (see ACK_ROOM), whichever is more."""
    size = max(settings.size or 0, 0 if settings.no_ack else ACK_ROOM)
    padding = b"\0" * max(0, size - HEADER.size - len(settings.message))
    return bytearray(HEADER.size) + settings.message + padding


def send_end_of_run(sender, whiches):
    """Send the end of run to these groups (by number), padded to room for any report;
    waits up to END_GAP for room in the socket's buffer for each."""
    groups = sender.groups
    sender.sock.settimeout(END_GAP)
    try:
        for which in whiches:
            last = groups.sent(which, sender.sequence)
            header = HEADER.pack(MAGIC, VERSION, END, sender.flags, groups.sessions[which], last,
                                 time.monotonic_ns()) + bytes(REPORT_ROOM - HEADER.size)
            try:
                sender.sock.sendto(header if sender.key is None else sign(header, sender.key),
                                   groups.destinations[which])
            except OSError:  # the end of run is repeated: one that cannot go out is no fault
                pass
    finally:
        sender.sock.setblocking(False)  # sending must never wait


def parse_reply(data, key=None):
    """What a reply is, as (kind, what): ('ack', Ack), ('report', Report), ('plain',
    None), ('malformed', why), or with a key ('unauthenticated', None) or ('bad_tag',
    None). Pure: no socket."""
    signed = data.startswith(MAGIC) and len(data) > HEADER.size and data[6] & AUTHENTICATED
    if key is not None:  # only a reply with our key's tag counts
        if not signed:
            return "unauthenticated", None
        data = verify(data, key)
        if data is None:
            return "bad_tag", None
    elif signed:
        data = data[:-TAG_SIZE]  # signed, but without a key we cannot check it
    if data == PLAIN_ACK:
        return "plain", None
    if not data.startswith(MAGIC) or len(data) < HEADER.size:
        return "malformed", "not the protocol"
    version, kind = data[4], data[5]
    if version != VERSION:
        return "malformed", f"protocol version {version}"
    record = unpack_ack(data) if kind == ACK else unpack_report(data) if kind == REPORT else None
    if record is None:
        return "malformed", f"message kind {kind} of {len(data)} bytes"
    return ("ack" if kind == ACK else "report"), record


def count_reply(sender, reply, address, now_ns):
    """Count one parsed reply (parse_reply) from address, arrived at now_ns: the
    mirror of the receiver's classify()."""
    kind, record = reply
    if kind == "plain":  # a textbook receiver: counted for the latest message
        if sender.ended or sender.sequence == 0:  # its answer to our end of run, or stray
            sender.counts["end_acks" if sender.ended else "stray"] += 1
            return
        if sender.settings.rate is not None:  # throughput: a b'ack' names none of many messages
            count_plain(sender, address)
            return
        _, session, sequence = sender.groups.wire(sender.sequence)
        kind, record = "ack", Ack(0, session, sequence, sender.last_send_ns)
    elif kind in ("malformed", "unauthenticated", "bad_tag"):
        sender.counts[kind] += 1  # forged or rubbish: never makes a receiver "answered"
        return
    # Our number of the message it answers (one group: its sequence number).
    sequence = sender.groups.message(record.session,
                                     record.sequence if kind == "ack" else record.last_seq)
    if sequence is None:  # meant for another sender: check this first
        sender.counts["stray"] += 1
        return
    if not 0 < sequence <= sender.sequence:
        sender.counts["malformed"] += 1
        return
    name = record.name.decode("utf-8", "replace")
    peer = find_peer(sender, address, name, record.instance, now_ns / 1e9)
    if peer is None:
        return
    peer.last_heard = now_ns / 1e9
    if kind == "report":
        take_report(peer, record._replace(last_seq=sequence), sender.settings.ttl,
                    sender.first_send_ns, sender.groups.which[record.session])
        return
    if record.ttl is not None:
        peer.ttl_received = record.ttl
    sender.close_expired(now_ns)  # so that an ack too late is one for a closed message
    elapsed_ns = now_ns - record.sent_ns
    rtt_ms = max(0.0, elapsed_ns / 1e6 - record.held_us / 1000)
    verdict = peer.take(sequence, rtt_ms, elapsed_ns <= sender.timeout_ns,
                        bool(record.flags & REORDERED), sender.closed_through)
    # A round lists only the acks of its own message that came while it was open; one
    # that comes after its round line (with --expect a round ends once the expected
    # have answered) still counts, but in no round's line.
    if verdict == "ack":
        sender.groups.acks[sender.groups.which[record.session]] += 1
        if sequence == sender.sequence and sender.round_open:
            sender.round_acks.append((peer, rtt_ms))


def take_report(peer, report, ttl_sent, first_send_ns, which=0):
    """A receiver's report (a Report, its last_seq our message number) of group number
    which: its own counts, and how our messages came: the TTL of the end of run, and
    the join delay (as RFC 3918's group join delay) if it joined while we were already
    sending: from its join to the first message it got. Its counts of all our groups
    together are peer.report."""
    peer.reports[which] = {"received": report.received, "lost": report.lost,
                           "duplicates": report.duplicates, "reordered": report.reordered,
                           "host_drops": report.host_drops, "unsent": report.unsent,
                           "shared_drops": bool(report.flags & SHARED_DROPS),
                           "last_seq": report.last_seq}
    peer.report = combined(peer.reports.values())
    arrival = report.arrival
    if arrival is None:
        return
    if arrival.ttl:
        peer.ttl_received = arrival.ttl
    if arrival.join_to_first_us != NOT_MEASURED and first_send_ns and arrival.first_sent_ns:
        joined_ns = arrival.first_sent_ns - arrival.join_to_first_us * 1000  # our clock
        if joined_ns > first_send_ns:  # it joined after our first message went out
            peer.join_to_first_ms = round(arrival.join_to_first_us / 1000, 3)


def combined(reports):
    """One receiver's reports of several groups as one: the counts summed; its host's
    drops, counted for each over the same time on the same sockets, the most of any."""
    reports = list(reports)
    if len(reports) == 1:
        return reports[0]
    whole = {field: sum(report[field] for report in reports)
             for field in ("received", "lost", "duplicates", "reordered")}
    unsent = [report["unsent"] for report in reports if report["unsent"] is not None]
    return dict(whole, unsent=sum(unsent) if unsent else None,
                host_drops=max(report["host_drops"] for report in reports),
                shared_drops=True, last_seq=max(report["last_seq"] for report in reports))


def count_plain(sender, address):
    """Throughput mode: a textbook receiver's b'ack' carries no sequence number, so it
    is counted per address only, with no loss, RTT or duplicate made up for it."""
    if address in sender.plain or len(sender.plain) < MAX_PEERS:
        sender.plain[address] += 1
    else:
        sender.counts["untracked"] += 1


# ==== the run ====
def wait(sender, selector, stop, until, stoppable=True, done=lambda: False):
    """Process replies until the monotonic time until, a stop request, or done()."""
    while not (stoppable and stop.requested) and not done():
        now = time.monotonic()
        remaining = until - now
        if remaining <= 0:
            return
        show_board(sender, now)
        for key, _ in selector.select(min(remaining, BOARD_EVERY)):
            if key.fileobj is sender.sock:
                sender.read_some()
            else:
                key.fileobj.recv(64)  # the signal's wake-up byte


def wait_in_receive(sender, seconds):
    """Wait up to seconds for one reply in the receive call itself and take it;
    False if none came. A round's wait is this, as in a blocking echo client:
    the kernel wakes us straight into the read, with no event loop in between."""
    sock = sender.sock
    sock.settimeout(seconds)  # a wait in poll(), precise to the millisecond
    try:
        data, address = sock.recvfrom(MAX_DATAGRAM)
    except socket.timeout:  # TimeoutError from Python 3.10 on
        return False
    finally:
        sock.setblocking(False)  # sending must never wait
    now_ns = time.monotonic_ns()  # the arrival time, before any parsing
    sender.on_reply(parse_reply(data, sender.key), address[0], now_ns)
    return True


def run_rounds(sender, selector, stop):
    """Round mode: send, wait --timeout for acks, report; return the short rounds."""
    settings = sender.settings
    short_rounds = 0
    while not stop.requested and (settings.count == 0 or sender.sequence < settings.count):
        if sender.sequence:
            wait(sender, selector, stop, time.monotonic() + settings.interval)
            if stop.requested:
                break
        sent = sender.send()
        while not sent and not stop.requested:  # the buffer is full: wait until it drains
            wait(sender, selector, stop, time.monotonic() + 0.001)
            sent = sender.send()
        if not sent:  # stopped while the link was still busy
            break
        sender.round_open, sender.round_cut_short = True, False
        deadline = time.monotonic() + settings.timeout
        remaining = settings.timeout
        while not stop.requested and remaining > 0:  # the acks, as they come
            if wait_in_receive(sender, min(remaining, IDLE_WAIT)):
                sender.read_some()  # and the replies that came with it
                if sender.end_rounds_early and heard_enough(sender):
                    sender.round_cut_short = True
                    break
            remaining = deadline - time.monotonic()
        if stop.requested:  # finish the round under way, if it ends within a second
            wait(sender, selector, stop, min(deadline, time.monotonic() + 1.0), stoppable=False)
        sender.read_some()
        sender.close_all()
        if not print_round(sender):
            short_rounds += 1
        show_board(sender, time.monotonic())
    return short_rounds


def run_rate(sender, selector, stop):
    """Throughput mode: send at --rate without waiting for rounds.

    Each turn sends what is due (at --rate 0: a batch of BATCH, or the whole trains
    that hold BATCH at least), then reads the replies and looks at the clock: a few
    system calls per batch, not per datagram."""
    settings = sender.settings
    gap = 1.0 / settings.rate if settings.rate else 0.0
    train = Train(sender) if trains_fit(sender) else None  # segmentation offload
    next_send = time.monotonic()
    next_report = next_send + settings.report_interval if settings.report_interval else None
    last_report = (next_send, 0)
    while not stop.requested and (settings.count == 0 or sender.sequence < settings.count):
        now = time.monotonic()
        # No burst to catch up after a stall: at most 0.1 s worth at once.
        due = (min(int((now - next_send) / gap) + 1, max(1, int(0.1 / gap))) if gap
               else BATCH if train is None else train.most * -(-BATCH // train.most))
        if settings.count:
            due = min(due, settings.count - sender.sequence)
        if now >= next_send:
            sent = sender.send_many(due) if train is None else train.send(due)
            if train is not None and train.refused:  # one send each from now on
                train = None
                sent += sender.send_many(due - sent)
            next_send = max(next_send + sent * gap, now - 0.1) if gap else now
            if sent < due:
                selector.select(0.001)  # the socket's buffer is full
            sender.read_some()
        else:
            wait(sender, selector, stop, next_send)
        show_board(sender, now)
        if next_report is not None and now >= next_report:
            sender.close_expired(time.monotonic_ns())
            print_report(sender, *last_report)
            last_report = (now, sender.sequence)
            next_report = max(next_report + settings.report_interval, now)
    if not settings.no_ack:  # the last messages' acks may still come: wait out their time
        patience = min(settings.timeout, 1.0) if stop.requested else settings.timeout
        wait(sender, selector, stop, time.monotonic() + patience, stoppable=False)
        sender.read_some()
    sender.close_all()
    return 0


def end_run(sender, selector, stop):
    """Tell the receivers the run is over, and wait a while for their reports."""
    if sender.sequence == 0:
        return
    sender.ended = True
    ends = range(min(sender.sequence, len(sender.groups.sessions)))  # groups that had messages
    for _ in range(END_REPEATS):
        for first in range(0, len(ends), END_BATCH):  # paced: each asks for a report
            if first:
                wait(sender, selector, stop, time.monotonic() + END_BATCH / END_RATE,
                     stoppable=False)
            send_end_of_run(sender, ends[first:first + END_BATCH])
        wait(sender, selector, stop, time.monotonic() + END_GAP, stoppable=False)
    # Whom to wait for: each receiver's latest life, if any of its lives answered.
    ackers = [lives[-1] for row, lives in receivers(sender) if row.acks or row.late]
    # An ack of the last message may still come in time (one held back by its
    # receiver's --ack-jitter can come after its report): wait for it too, at most
    # until the last message's time is over.
    last_ack_due = 0.0 if sender.settings.no_ack else sender.last_send_at + sender.settings.timeout
    groups = min(sender.sequence, len(sender.groups.sessions))  # reports each receiver sends

    def all_reported():  # with acks we know whom to wait for; without, wait it out
        return (bool(ackers) and all(len(peer.reports) == groups for peer in ackers)
                and (stop.requested or time.monotonic() >= last_ack_due
                     or all(peer.highest >= sender.sequence for peer in ackers)))

    patience = REPORT_WAIT if stop.requested else max(REPORT_WAIT, sender.settings.timeout)
    wait(sender, selector, stop, time.monotonic() + patience, stoppable=False,
         done=all_reported)


# ==== printing ====
def listed_but_unheard(names, peers):
    """The --expect names and addresses that none of these receivers matches."""
    return [entry for entry in names
            if not any(entry in (peer.name, peer.address) for peer in peers)]


def heard_enough(sender):
    """Whether this round has heard from every receiver --expect asks for."""
    expect, names = sender.expect
    heard = {peer for peer, _ in sender.round_acks}
    return len(heard) >= expect and not listed_but_unheard(names, heard)


def hops_of(peer, ttl_sent):
    """The routers between us and a receiver: our TTL minus the TTL it got (None: not
    known, or a TTL above ours, which no router gives)."""
    ttl = peer.ttl_received
    return ttl_sent - ttl if ttl is not None and ttl <= ttl_sent else None


def print_round(sender):
    """Print who answered this round; return whether the receivers expected did."""
    expect, names = sender.expect
    heard = {peer for peer, _ in sender.round_acks}
    unheard = [row for row, lives in receivers(sender) if not any(l in heard for l in lives)]
    # A round cut short did not wait for the others: they are not missing (yet).
    missing, not_waited_for = ([], unheard) if sender.round_cut_short else (unheard, [])
    never = listed_but_unheard(names, sender.peers.values())
    enough = heard_enough(sender)
    ttl = sender.settings.ttl
    answers = ", ".join(f"{peer.label()} {rtt:.3f} ms" + (
        f" ({hops_of(peer, ttl)} hop{'s' * (hops_of(peer, ttl) != 1)})"
        if hops_of(peer, ttl) else "") for peer, rtt in sender.round_acks)
    which, _, _ = sender.groups.wire(sender.sequence)
    group = f" to {sender.groups.names[which]}" if len(sender.groups.names) > 1 else ""
    text = f"seq {sender.sequence}{group}: {len(heard)} receiver{'s' * (len(heard) != 1)}"
    if sender.send_failed:
        text += f" (not sent: {sender.send_failed})"
    text += f": {answers}" if answers else ""
    if not enough:
        text += f" (expected {expect})"
    if missing or never:
        text += "; missing: " + ", ".join(
            [peer.label() for peer in missing]
            + [f"{printable(entry)} (never answered)" for entry in never])
    if not_waited_for:
        text += "; not waited for: " + ", ".join(peer.label() for peer in not_waited_for)
    if not (sender.live and sender.live.in_place):  # the board in place shows the rounds
        sender.out.event(
            "round", text, seq=sender.sequence, group=sender.groups.names[which],
            expected=expect, ok=enough,
            send_error=sender.send_failed,
            acks=[{"address": peer.address, "name": peer.name, "instance": peer.instance,
                   "rtt_ms": round(rtt, 3),
                   "ttl_received": peer.ttl_received, "hops": hops_of(peer, ttl)}
                  for peer, rtt in sender.round_acks],
            missing=[{"address": peer.address, "name": peer.name} for peer in missing]
            + [{"listed": entry} for entry in never],
            not_waited_for=[{"address": peer.address, "name": peer.name}
                            for peer in not_waited_for])
    sender.round_acks, sender.round_open = [], False
    return enough


def print_report(sender, since, sent_then):
    """Throughput mode: the rate since the last report, and each receiver's loss so far."""
    now = time.monotonic()
    rate = (sender.sequence - sent_then) / (now - since) if now > since else 0.0
    peers = [row.as_dict(sender.closed_through, not sender.settings.no_ack)
             for row, _ in receivers(sender)]
    text = f"{now - sender.started:7.1f} s: {sender.sequence} sent ({rate:.1f}/s)"
    for entry in peers:
        text += f"; {entry['address']} ({printable(entry['name'])}) {entry['acks']} acks" + (
            f", {entry['lost']} unacked" if entry["lost"] is not None else "")
    sender.out.event("report", text, seconds=round(now - sender.started, 3),
                     sent=sender.sequence, rate_pps=round(rate, 1),
                     receivers=[{k: e[k] for k in ("address", "name", "acks", "lost")}
                                for e in peers])


def report_loss(report):
    """A receiver's own loss percentage from its report."""
    expected = report["received"] + report["lost"]
    return round(100.0 * report["lost"] / expected, 2) if expected else 0.0


def where_lost(entry):
    """In words, where a receiver's messages were lost, and what was not the network's."""
    loss = entry["loss"]
    parts = []
    if loss["either_way"]:
        why = ("no report came" if entry["report"] is None else
               "its report covers only its latest start")
        parts.append(f"{loss['either_way']} unacked ({why}: on the way there or "
                     f"back)")
    for way, words in (("there", "on the way there"), ("back", "on the way back (acks)")):
        if loss[way]:
            parts.append(f"{loss[way]} {words}")
    if loss["host"]:
        parts.append(f"{loss['host']} dropped by its own host (a full socket buffer: not "
                     f"the network" + ("; its socket took other traffic too, whose drops "
                                       "count there as well" if loss["host_shared"] else "")
                     + ")")
    if loss["unsent"]:
        parts.append(f"{loss['unsent']} acks it did not send (its rate limit, --max-ack-rate, "
                     f"or a full send buffer: not the network)")
    return ", ".join(parts)


def judge(sender, short_rounds):
    """The verdict: (reasons to fail, a note for a pass that saw loss)."""
    settings = sender.settings
    expect, names = sender.expect
    peers = [row for row, _ in receivers(sender)]
    reasons = []
    if settings.rate is None:
        if short_rounds:
            reasons.append(f"{short_rounds} of {sender.sequence} rounds heard from fewer "
                           f"than {expect} receivers")
    else:
        answered = [peer for peer in peers if (peer.report if settings.no_ack else peer.acks)]
        answered += [] if settings.no_ack else list(sender.plain)
        if len(answered) < expect:
            what = "sent a report" if settings.no_ack else "answered"
            reasons.append(f"{len(answered)} of {expect} expected receivers {what}")
    reasons += [f"{printable(entry)} never answered"
                for entry in listed_but_unheard(names, peers) if entry not in sender.plain]
    lossy = []
    for peer in peers:
        entry = peer.as_dict(sender.closed_through, not settings.no_ack, settings.ttl)
        if entry["lost"] is None:
            if settings.max_loss is not None:
                reasons.append(f"{peer.label()}: no report came, so its loss is unknown")
            continue
        sent = max(sender.closed_through, 1)
        if settings.max_loss is not None and entry["lost"] * 100 > settings.max_loss * sent:
            reasons.append(f"{peer.label()} lost {entry['loss_pct']}% ({where_lost(entry)}; "
                           f"above {settings.max_loss:g}%)")
        elif entry["lost"]:
            lossy.append(entry["loss_pct"])
    note = ""
    if lossy and settings.max_loss is None:
        note = (f" ({len(lossy)} receiver{'s' * (len(lossy) != 1)} lost messages, at most "
                f"{max(lossy)}%; no --max-loss given)")
    return reasons, note


def receiver_lines(peer, entry, acks_asked):
    """The summary's lines for one receiver: the acks, its own report, where it lost."""
    if acks_asked:
        line = (f"{peer.label()}: {entry['acks']} acks, {entry['lost']} lost "
                f"({entry['loss_pct']}%), {entry['duplicates']} duplicates, "
                f"{entry['reordered']} reordered, {entry['late']} late")
    else:
        line = f"{peer.label()}: no acks asked for (--no-ack)"
    rtt = entry["rtt_ms"]
    if rtt:
        line += (f"; rtt min/avg/max/mdev = {rtt['min']}/{rtt['avg']}/{rtt['max']}/"
                 f"{rtt['mdev']} ms, p50 {rtt['p50']} ms, p99 {rtt['p99']} ms")
    report = entry["report"]
    if peer.restarts:
        line += (f" (restarted {peer.restarts} time{'s' * (peer.restarts != 1)} during the "
                 f"run: its loss counts from the acks, its report from its latest start)")
    arrival = []
    if entry["ttl_received"] is not None:
        arrival.append(f"ttl {entry['ttl_received']} on arrival" + (
            "" if entry["hops"] is None else
            f", {entry['hops']} hop{'s' * (entry['hops'] != 1)} (routers) on the way"))
    if entry["join_to_first_ms"] is not None:
        arrival.append(f"first message {entry['join_to_first_ms']} ms after it joined")
    if arrival:
        line += "; " + ", ".join(arrival)
    lines = [line, "  its report: none came (a textbook receiver, or lost on the way)"
             if report is None else
             f"  its report{' (from its latest start)' if peer.restarts else ''}: "
             f"{report['received']} received, {report['lost']} lost "
             f"({report_loss(report)}%), {report['duplicates']} duplicates, "
             f"{report['reordered']} reordered, {report['host_drops']} dropped by its "
             f"host, up to seq {report['last_seq']}"]
    if entry["lost"] is not None and where_lost(entry):
        lines.append(f"  lost {entry['lost']} ({entry['loss_pct']}%): {where_lost(entry)}")
    return lines


def group_entries(sender):
    """Each group's figures: messages sent, acks in time, and what the receivers' reports
    (each receiver's latest life) say they received and lost of it."""
    groups = sender.groups
    latest = [lives[-1] for _, lives in receivers(sender)]
    entries = []
    for which, name in enumerate(groups.names):
        reports = [peer.reports[which] for peer in latest if which in peer.reports]
        entries.append({"group": name, "sent": groups.sent(which, sender.sequence),
                        "acks": groups.acks[which], "reports": len(reports),
                        **{field: sum(report[field] for report in reports) for field in
                           ("received", "lost", "duplicates", "reordered")}})
    return entries


def group_lines(groups, acks_asked):
    """A few lines on many groups: what each got, and the worst as the reports tell."""
    sent = sorted(entry["sent"] for entry in groups)
    acks = sorted(entry["acks"] for entry in groups)
    lossy = sorted((entry for entry in groups if entry["lost"]),
                   key=lambda entry: -entry["lost"] / (entry["lost"] + entry["received"]))
    def span(values):
        return f"{values[0]}" if values[0] == values[-1] else f"{values[0]} to {values[-1]}"

    line = (f"{len(groups)} groups in turn, {span(sent)} messages each"
            + (f", {span(acks)} acks each" if acks_asked else ""))
    most = max(entry["reports"] for entry in groups)  # receivers that reported at all
    short = [entry for entry in groups if entry["reports"] < most]
    lines = [line + f"; the receivers' reports: {len(groups) - len(lossy)} groups without "
             f"loss, {len(lossy)} with loss" + (f", {len(short)} with a report missing (not "
                                                 f"counted: lost, or refused by a receiver's "
                                                 f"--max-ack-rate)" if short else "")]
    if lossy:
        lines.append("worst: " + ", ".join(
            f"{entry['group']} lost {entry['lost']} of {entry['lost'] + entry['received']}"
            for entry in lossy[:WORST_SHOWN]) + (", ..." if len(lossy) > WORST_SHOWN else ""))
    return lines


def print_summary(sender, short_rounds):
    """The totals, every receiver's figures and report, and the verdict; return the reasons
    it failed (none: it passed)."""
    settings = sender.settings
    elapsed = time.monotonic() - sender.started
    sending = sender.last_send_at - sender.first_send_at
    counts = sender.counts
    acks_asked = not settings.no_ack
    rows = [row for row, _ in receivers(sender)]
    entries = [row.as_dict(sender.closed_through, acks_asked, settings.ttl) for row in rows]
    rate = f" ({sender.sequence / sending:.1f}/s)" if sending > 0 else ""
    answering = len(rows) + len(sender.plain)
    groups = group_entries(sender)
    where = (f"{settings.group}:{settings.port}" if len(groups) == 1 else
             f"{settings.group} to {settings.groups[-1]}, port {settings.port},")
    lines = [f"--- {where} multicast statistics ---",
             f"{sender.sequence} sent in {sending:.1f} s{rate}, the run took {elapsed:.1f} s; "
             f"{answering} receiver{'s' * (answering != 1)}, {counts['stray']} stray, "
             f"{counts['malformed']} malformed, {counts['send_errors']} send errors"]
    if len(groups) > 1:
        lines += group_lines(groups, acks_asked)
    for row, entry in zip(rows, entries):
        lines += receiver_lines(row, entry, acks_asked)
    namesakes = sorted({(row.address, row.name) for row in rows if row.namesake})
    for address, name in namesakes:
        lines.append(f"two or more receivers answer as {printable(name)!r} from {address} "
                     f"(told apart by #instance): give each its own --name")
    for address, replies in sender.plain.items():
        lines.append(f"{address}: {replies} plain b'ack' replies (a textbook receiver: they "
                     f"name no message, so throughput mode counts no loss or RTT for it)")
    for entry in listed_but_unheard(sender.expect[1], sender.peers.values()):
        if entry in sender.plain:
            continue
        lines.append(f"{printable(entry)}: 0 acks, {sender.sequence} lost (100.0%), "
                     f"never answered")
        entries.append({"address": None, "name": None, "listed": entry, "acks": 0,
                          "lost": sender.sequence, "loss_pct": 100.0, "report": None})
    forged = {"unauthenticated": counts["unauthenticated"], "bad_tag": counts["bad_tag"]}
    if not sender.peers and not sender.plain and sender.sequence:
        lines.append(no_answer_hint(sender, forged))
    if any(forged.values()):
        lines.append(f"{sum(forged.values())} replies without our key's tag, not counted: "
                     f"{forged['unauthenticated']} unsigned, {forged['bad_tag']} with a bad tag")
    if counts["untracked"]:
        lines.append(f"{counts['untracked']} replies from receivers beyond the first "
                     f"{MAX_PEERS}, or beyond {NEW_PEERS_PER_SECOND} new ones in a second, "
                     f"were not counted")
    reasons, note = judge(sender, short_rounds)
    lines.append("verdict: " + ("pass" + note if not reasons else "FAIL: " + "; ".join(reasons)))
    sender.out.event("summary", "\n".join(lines), sent=sender.sequence,
                     seconds=round(elapsed, 3), send_seconds=round(sending, 3),
                     receivers=entries, stray=counts["stray"],
                     malformed=counts["malformed"], send_errors=counts["send_errors"],
                     untracked=counts["untracked"], end_acks=counts["end_acks"], forged=forged,
                     plain_acks=[{"address": address, "replies": replies}
                                 for address, replies in sender.plain.items()],
                     short_rounds=short_rounds, groups=groups,
                     verdict={"ok": not reasons, "reasons": reasons, "note": note.strip(" ()"),
                              "max_loss": settings.max_loss})
    return reasons


def no_answer_hint(sender, forged):
    """What to check when no receiver answered, pointing the way the facts point."""
    if sender.counts["send_errors"] >= sender.sequence:
        return ("nothing went out: every send failed (see the round lines): check the "
                "interface and the route for the group")
    if any(forged.values()):
        return ("replies came, but none with our key's tag: do the receivers read the same "
                "key file?")
    return (f"no receiver answered: we sent from {sender.where} with ttl {sender.settings.ttl}; "
            f"check that one runs on this group and port on a network that interface "
            f"reaches, that it joined on its interface facing us, and that its answers can "
            f"come back (a firewall on the way back?)")


# ==== the mesh ====
# --mesh: one process on each host both sends and answers. Each peer sends a numbered
# probe to the group, and one to each peer it has heard (unicast, as omping does, so
# that a multicast problem is told from a reachability problem); it answers every probe
# with an ack (the round trip), counts the probes that come from each peer of each kind
# (a Session each: loss, duplicates, reordering from the first probe it got), and says
# what it counts in a summary on the group once a second. From the summaries every peer
# holds the whole matrix: who hears whom, both ways.
class MeshPeer:
    """Another peer as heard from here: its probes to us by kind (counted, and the TTL
    the latest came with), our probes to it by kind (their round trips, from its acks),
    and what its latest summaries told: its count of each peer's probes, and its own
    probes to each."""

    def __init__(self, address, session, name=b""):
        self.address, self.session, self.name = address, session, name
        self.came = {kind: Session(address, session) for kind in MESH_KINDS}
        self.ttl = dict.fromkeys(MESH_KINDS)  # the TTL its latest probe of a kind came with
        self.sent_ttl = None  # the TTL of its multicast probes, as they or its summaries told
        self.rtt = {kind: RttStats(MESH_RTTS) for kind in MESH_KINDS}
        self.unicast_sent = 0  # our unicast probes to it
        self.sent_to_us = dict.fromkeys(MESH_KINDS)  # its probes to us, as its summaries told
        self.told = {}  # (address, kind) -> a SUMMARY_CELL's fields, as its summaries told them
        self.finished = False  # its last summary came: it sends no more probes
        self.heard_at = 0.0  # when its latest probe came (our monotonic clock)

    def lost(self, kind):
        """Its probes of this kind that never came: from the first that came to the
        highest, or to its last once its last summary told how many it sent; all it
        sent, as its summaries told, if none came."""
        came, sent = self.came[kind], self.sent_to_us[kind] or 0
        if not came.received:
            return sent
        top = max(came.highest, sent if self.finished else 0)
        return max(0, top - came.lowest + 1 - came.received - came.too_late)


class Mesh:
    """This host's peer: sends the probes and the summaries, and keeps the peers heard
    (at most MAX_MESH_PEERS: see evict)."""

    def __init__(self, sock, settings, out, me):
        self.sock, self.settings, self.out, self.me = sock, settings, out, me
        self.name = settings.name.encode("utf-8")
        self.key = settings.key
        self.session = random.getrandbits(64) & ~1  # its probes: this to the group, +1 unicast
        self.peers = collections.OrderedDict()  # address -> MeshPeer, least recently heard first
        self.rounds = self.summaries = self.evicted = 0
        self.ignored = collections.Counter()  # datagrams not taken, by reason
        self.send_errors = collections.Counter()  # sends that failed, by the error's text
        self.acks_sent = collections.Counter()  # address -> acks sent it this second
        self.acks_second = 0  # which second of our monotonic clock acks_sent counts
        self.finished = False  # our rounds are done: our summaries say so
        self.news_at = self.shared_at = 0.0  # the latest last counts heard; our latest summary
        self.share_now = False  # a peer's last summary came: ours follows at once
        self.destination = destination(settings.group, settings.port, settings.interface)
        self.board = self.live = None  # --board's server, --live's terminal board
        self.next_board = 0.0
        self.heard_lines = LinePacer(out, MESH_PEER_LINES, "peers heard")

    def peer(self, address, session, name=""):
        """The peer at this address, made if new (evict() makes room) or anew if it
        restarted (a new session); now the most recently heard."""
        peer = self.peers.get(address)
        unicast_sent = 0
        if peer is not None and peer.session not in (None, session):
            del self.peers[address]  # restarted: its counts start again, but our unicast
            peer, unicast_sent = None, peer.unicast_sent  # probes' numbers go on
        if peer is None:
            if len(self.peers) >= MAX_MESH_PEERS:
                self.evict()
            peer = self.peers[address] = MeshPeer(address, None)
            peer.unicast_sent = unicast_sent
        self.peers.move_to_end(address)
        peer.heard_at = time.monotonic()
        if peer.session is None:
            peer.session, peer.name = session, name.encode("utf-8")
            if self.heard_lines.allow(peer.heard_at):
                self.out.event("peer", f"peer {printable(name)} ({address}) heard",
                               address=address, name=name, peers=len(self.peers))
        return peer

    def evict(self):
        """Make room: the least recently heard of the peers heard once (a forged address
        costs one probe), else the least recently heard."""
        newcomer = next((address for address, peer in self.peers.items() if sum(
            came.received for came in peer.came.values()) <= 1), next(iter(self.peers)))
        del self.peers[newcomer]
        self.evicted += 1

    def probe(self):
        """One round: a probe to the group, and one to each peer heard."""
        self.rounds += 1
        self.send(self.session, self.rounds, self.settings.ttl, self.destination)
        for peer in self.peers.values():  # heard, or listed by address in --expect
            peer.unicast_sent += 1
            self.send(self.session | 1, peer.unicast_sent, MESH_UNICAST_TTL,
                      destination(peer.address, self.settings.port, None))

    def send(self, session, sequence, ttl, where):
        fixed = HEADER.pack(MAGIC, VERSION, DATA, MESH | self.signed(), session, sequence,
                            time.monotonic_ns()) + PROBE_EXTRA.pack(ttl) + self.name
        room = ACK_ROOM - (TAG_SIZE if self.key is not None else 0)  # an ack of ours fits
        self.send_datagram(fixed + bytes(max(0, room - len(fixed))), where)

    def signed(self):
        return AUTHENTICATED if self.key is not None else 0

    def send_datagram(self, datagram, where):
        if self.key is not None:
            datagram = sign(datagram, self.key)
        try:
            self.sock.sendto(datagram, where)
        except OSError as error:  # a full buffer, or an ICMP error of an earlier send
            self.send_errors[error.strerror or "full"] += 1

    def summary_every(self):
        """Seconds from one of our summaries to the next (see MESH_SUMMARY_PEERS)."""
        return MESH_SUMMARY_EVERY * max(1.0, len(self.peers) / MESH_SUMMARY_PEERS)

    def share(self):
        """A summary of what we count, in datagrams of at most MESH_PART bytes, to the
        group, and by unicast to each peer that may not hear the group from us."""
        self.summaries += 1
        self.shared_at, self.share_now = time.monotonic(), False
        unheard = [peer for peer in self.peers.values() if needs_copies(self, peer)]
        for datagram in summary_datagrams(self):
            self.send_datagram(datagram, self.destination)
            for peer in unheard:
                self.send_datagram(datagram, destination(peer.address, self.settings.port,
                                                         None))


def needs_copies(mesh, peer):
    """Whether a peer may not hear our summaries on the group (then it gets them by
    unicast too): none of its multicast probes has come to us, or it told us that none
    of ours has come to it."""
    told = peer.told.get((mesh.me, "multicast"))
    return peer.session is not None and (
        not peer.came["multicast"].received or told is not None and not told[1])


def summary_datagrams(mesh):
    """Our summary: a cell for each peer heard and kind, in parts of MESH_PART bytes at
    most (26 at most: MAX_MESH_PEERS bounds them)."""
    cells = [mesh_cell_record(peer, kind, mesh.rounds)
             for peer in mesh.peers.values() if peer.session is not None for kind in MESH_KINDS]
    per_part = max(1, (MESH_PART - HEADER.size - SUMMARY_HEAD.size - len(mesh.name)
                       - TAG_SIZE) // SUMMARY_CELL.size)
    parts = [cells[at:at + per_part] for at in range(0, len(cells), per_part)] or [[]]
    flags = (LAST_SUMMARY if mesh.finished else 0) | mesh.signed()
    return [HEADER.pack(MAGIC, VERSION, SUMMARY, flags, mesh.session, mesh.summaries,
                        time.monotonic_ns())
            + SUMMARY_HEAD.pack(number, len(parts), mesh.settings.ttl, len(mesh.name))
            + mesh.name + b"".join(part) for number, part in enumerate(parts)]


def mesh_cell_record(peer, kind, rounds):
    """What we tell of one peer and kind: its probes' counts here, and ours to it."""
    came, rtt = peer.came[kind], peer.rtt[kind].as_dict()
    sent = rounds if kind == "multicast" else peer.unicast_sent
    if ":" in peer.address:
        mapped = socket.inet_pton(socket.AF_INET6, peer.address)
    else:  # IPv4 mapped into IPv6
        mapped = bytes(10) + b"\xff\xff" + socket.inet_aton(peer.address)
    capped = [min(value, 2**32 - 1) for value in (
        came.received, peer.lost(kind), came.duplicates, came.reordered, sent)]
    times = [min(NOT_MEASURED, round(rtt[p] * 1000)) if rtt else NOT_MEASURED
             for p in ("p50", "p99")]
    return SUMMARY_CELL.pack(mapped, MESH_KINDS.index(kind), peer.ttl[kind] or 0,
                             *capped, *times)


def take_mesh_datagram(mesh, data, address, ttl):
    """Count, answer or take in one datagram that came to a mesh peer."""
    if len(data) < HEADER.size or data[:4] != MAGIC:
        mesh.ignored["not ours"] += 1
        return
    _, version, kind, flags, session, sequence, sent_ns = HEADER.unpack_from(data)
    if version != VERSION or kind in (DATA, SUMMARY) and session & ~1 == mesh.session:
        mesh.ignored["other version" if version != VERSION else "our own"] += 1
        return
    if mesh.key is not None:
        data = verify(data, mesh.key) if flags & AUTHENTICATED else None
        if data is None:
            mesh.ignored["unauthenticated"] += 1
            return
    if kind == DATA and flags & MESH and sequence and len(data) >= HEADER.size + 1:
        take_probe(mesh, data, address, session, sequence, sent_ns, ttl)
    elif kind == ACK and address in mesh.peers and session & ~1 == mesh.session:
        ack = unpack_ack(data)
        rtt_ms = (time.monotonic_ns() - sent_ns) / 1e6
        if ack is not None and 0 <= rtt_ms < 3600e3:
            mesh.peers[address].rtt[MESH_KINDS[session & 1]].record(rtt_ms)
    elif kind == SUMMARY:
        take_summary(mesh, data, address, flags, session)
    else:
        mesh.ignored["not a mesh peer's"] += 1


def take_probe(mesh, data, address, session, sequence, sent_ns, ttl):
    """A peer's probe: counted as its kind, answered with an ack no larger than it."""
    kind = MESH_KINDS[session & 1]
    name = bytes(data[HEADER.size + PROBE_EXTRA.size:]).rstrip(b"\0")[:MAX_NAME]
    peer = mesh.peer(address, session & ~1, name.decode("utf-8", "replace"))
    came = peer.came[kind]
    if came.received and sequence > came.highest + MAX_JUMP:
        mesh.ignored["jumps ahead"] += 1
        return
    verdict = came.take(sequence)
    if ttl is not None:
        peer.ttl[kind] = ttl
    if kind == "multicast":
        peer.sent_ttl = PROBE_EXTRA.unpack_from(data, HEADER.size)[0]
    ack = pack_ack(Ack((REORDERED if verdict == "reordered" else 0) | mesh.signed(), session,
                       sequence, sent_ns, ttl=ttl, name=mesh.name), len(data))
    if verdict not in ("new", "reordered") or ack is None:
        return
    if int(time.monotonic()) != mesh.acks_second:  # a new second for the rate limit
        mesh.acks_sent.clear()
        mesh.acks_second = int(time.monotonic())
    if mesh.acks_sent[address] >= MESH_MAX_ACK_RATE:
        mesh.ignored["not answered: over the rate"] += 1
        return
    mesh.acks_sent[address] += 1
    mesh.send_datagram(ack, destination(address, mesh.settings.port, None))


def take_summary(mesh, data, address, flags, session):
    """A peer's summary: taken only from the address its probes come from, with the
    session they carry; its cells replace what it told before."""
    peer = mesh.peers.get(address)
    at = HEADER.size + SUMMARY_HEAD.size
    if peer is None or peer.session != session or len(data) < at:
        mesh.ignored["summary from no peer heard"] += 1
        return
    _, _, peer.sent_ttl, name_length = SUMMARY_HEAD.unpack_from(data, HEADER.size)
    start = at + name_length
    cells = bytes(data[start:start + (len(data) - start) // SUMMARY_CELL.size * SUMMARY_CELL.size])
    news = False
    for packed, kind, *figures in SUMMARY_CELL.iter_unpack(cells):
        if kind >= len(MESH_KINDS):
            continue
        way = unmapped(packed), MESH_KINDS[kind]
        if way not in peer.told and len(peer.told) >= 2 * MAX_MESH_PEERS:
            continue  # bounded: a summary names no more peers than a table holds
        news = news or peer.told.get(way) != figures
        peer.told[way] = figures
        if way[0] == mesh.me:
            peer.sent_to_us[way[1]] = figures[5]
    if flags & LAST_SUMMARY and (news or not peer.finished):
        # Its last counts, or its count of our probes now final: the others hear of it at
        # once, and nobody ends while such news still goes round (MESH_QUIET).
        mesh.news_at, mesh.share_now = time.monotonic(), not peer.finished or mesh.share_now
    peer.finished, peer.heard_at = bool(flags & LAST_SUMMARY), time.monotonic()


@functools.lru_cache(maxsize=2 * MAX_MESH_PEERS)
def unmapped(packed):
    """An address as a summary carries it (16 bytes, IPv4 mapped into IPv6), as text."""
    if packed[:12] == bytes(10) + b"\xff\xff":
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    return socket.inet_ntop(socket.AF_INET6, packed)


def mesh_matrix(mesh):
    """Every cell known: from each peer to each other, by kind. A cell's counts are the
    receiving peer's (from its first probe that came), its round trips and probes sent
    the sending peer's; what no summary has told yet is None."""
    names = {mesh.me: mesh.settings.name}
    names.update((peer.address, peer.name.decode("utf-8", "replace"))
                 for peer in mesh.peers.values())
    hosts = [mesh.me, *mesh.peers]
    cells = []
    for source in hosts:
        for target in hosts:
            if source != target:
                cells += [mesh_cell(mesh, source, target, kind, names) for kind in MESH_KINDS]
    return cells


def mesh_cell(mesh, source, target, kind, names):
    cell = {"from": source, "to": target, "kind": kind, "from_name": names.get(source),
            "to_name": names.get(target), "sent": None, "received": None, "lost": None,
            "duplicates": None, "reordered": None, "loss_pct": None, "ttl": None, "hops": None,
            "rtt_p50_ms": None, "rtt_p99_ms": None}
    if target == mesh.me:
        peer = mesh.peers[source]
        came = peer.came[kind]
        if came.received or peer.lost(kind):
            cell.update(received=came.received, lost=peer.lost(kind),
                        duplicates=came.duplicates, reordered=came.reordered, ttl=peer.ttl[kind])
    elif (source, kind) in mesh.peers[target].told:
        received, lost, duplicates, reordered = mesh.peers[target].told[source, kind][1:5]
        if received or lost:
            cell.update(received=received, lost=lost, duplicates=duplicates,
                        reordered=reordered, ttl=mesh.peers[target].told[source, kind][0] or None)
    if source == mesh.me:
        peer = mesh.peers[target]
        rtt = peer.rtt[kind].as_dict()
        cell["sent"] = mesh.rounds if kind == "multicast" else peer.unicast_sent
        if rtt:
            cell.update(rtt_p50_ms=rtt["p50"], rtt_p99_ms=rtt["p99"])
    elif (target, kind) in mesh.peers[source].told:
        *_, sent, p50, p99 = mesh.peers[source].told[target, kind]
        cell["sent"] = sent
        for name, value in (("rtt_p50_ms", p50), ("rtt_p99_ms", p99)):
            cell[name] = None if value == NOT_MEASURED else value / 1000
    sent_ttl = (MESH_UNICAST_TTL if kind == "unicast" else mesh.settings.ttl if source == mesh.me
                else mesh.peers[source].sent_ttl)
    if cell["ttl"] is not None and sent_ttl is not None:
        cell["hops"] = max(0, sent_ttl - cell["ttl"])  # the routers it crossed
    if cell["received"] is not None:
        counted = cell["received"] + cell["lost"]
        cell["loss_pct"] = round(100.0 * cell["lost"] / counted, 2) if counted else 0.0
    return cell


def make_mesh_socket(settings):
    """A sender's socket that also listens: bound to the group's port on any address (the
    unicast probes come to it too) and joined to the group."""
    family = family_of(settings.group)
    sock = make_sender_socket(settings.ttl, settings.interface, family)
    version = 6 if family == socket.AF_INET6 else 4
    if version == 4:
        # IP_TTL: the TTL of our unicast datagrams, set so that the peers can tell the
        # routers a probe crossed (it goes in the probe too).
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, MESH_UNICAST_TTL)
    else:
        # IPV6_UNICAST_HOPS: the same for IPv6, its hop limit.
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, MESH_UNICAST_TTL)
    share_port(sock)  # SO_REUSEADDR: another peer or receiver on this host may listen too
    sock.bind(("", settings.port, 0, 0) if version == 6 else ("", settings.port))
    join(sock, settings.group, settings.interface)  # IP_ADD_MEMBERSHIP and its kin
    ask_for_arrival_ttl(sock, version)  # IP_RECVTTL and its kin
    return sock


def own_address(settings):
    """The address our datagrams leave from, as the peers see it: -i's, or the one
    the routing table picks toward the group."""
    if isinstance(settings.interface, str):
        return settings.interface
    family = family_of(settings.group)
    with socket.socket(family, socket.SOCK_DGRAM) as lookup:
        lookup.connect(destination(settings.group, settings.port, settings.interface))
        return lookup.getsockname()[0].split("%")[0]


def run_mesh(mesh, selector, stop):
    """Probe each --interval (--count rounds, or until stopped) and share a summary each
    summary_every(), taking in what comes meanwhile; then say we are done and listen
    on until every peer has said so too, MESH_LINGER at most."""
    settings = mesh.settings
    next_round = next_summary = time.monotonic()
    next_status = next_round + MESH_STATUS_EVERY
    while not stop.requested and not (settings.count and mesh.rounds >= settings.count):
        now = time.monotonic()
        if now >= next_round:
            mesh.probe()
            next_round = max(next_round + settings.interval, now)
        if now >= next_summary:
            mesh.share()
            next_summary = max(next_summary + mesh.summary_every(), now)
        if now >= next_status:
            print_mesh_status(mesh)
            next_status = max(next_status + MESH_STATUS_EVERY, now)
        mesh_wait(mesh, selector, stop, min(next_round, next_summary, next_status))
    mesh.finished = True
    mesh.share()
    until = time.monotonic() + (0 if stop.requested else MESH_LINGER)
    while not stop.requested and time.monotonic() < until and not (all(
            peer.finished for peer in mesh.peers.values() if peer.session is not None)
            and time.monotonic() - mesh.news_at >= MESH_QUIET):
        mesh_wait(mesh, selector, stop, min(until, time.monotonic() + MESH_QUIET / 2))
        if mesh.share_now or time.monotonic() - mesh.shared_at >= mesh.summary_every():
            mesh.share()


def mesh_wait(mesh, selector, stop, until):
    """Take in what comes until the monotonic time until, a stop request, or (our rounds
    done) news that calls for our summary at once."""
    level, kind = ARRIVAL_TTL.get((system_of(sys.platform), 6 if ":" in mesh.me else 4),
                                  (None, None, None))[::2]
    while not stop.requested and not (mesh.finished and mesh.share_now):
        now = time.monotonic()
        mesh.heard_lines.note(now)
        if (mesh.board or mesh.live) and now >= mesh.next_board:
            show_mesh_board(mesh, now)
        remaining = until - now
        if remaining <= 0:
            return
        for key, _ in selector.select(min(remaining, BOARD_EVERY)):
            if key.fileobj is not mesh.sock:
                key.fileobj.recv(64)  # the signal's wake-up byte
                continue
            for _ in range(READS_PER_WAKEUP):
                try:
                    data, ancillary, _, address = mesh.sock.recvmsg(MAX_DATAGRAM, 64)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:  # an ICMP error for an earlier send: go on
                    mesh.ignored["icmp errors"] += 1
                    continue
                ttl = next((value[0] if len(value) == 1 else
                            int.from_bytes(value[:4], sys.byteorder)
                            for got_level, got_kind, value in ancillary
                            if (got_level, got_kind) == (level, kind) and value), None)
                take_mesh_datagram(mesh, data, address[0].split("%")[0], ttl)


def show_mesh_board(mesh, now, stopped=False):
    """Give the board and the terminal board the mesh's state (every BOARD_EVERY)."""
    mesh.next_board = now + BOARD_EVERY
    give_boards(mesh, mesh_board_state(mesh, stopped))


def print_mesh_status(mesh):
    """A line while the mesh runs: the peers heard, and the ways that lose."""
    cells = [cell for cell in mesh_matrix(mesh) if cell["loss_pct"] is not None]
    losing = sorted((cell for cell in cells if cell["lost"]), key=lambda cell: -cell["loss_pct"])
    heard = sum(peer.session is not None for peer in mesh.peers.values())
    worst = (f" (worst: {printable(losing[0]['from_name'] or losing[0]['from'])} to "
             f"{printable(losing[0]['to_name'] or losing[0]['to'])} {losing[0]['kind']}, "
             f"{losing[0]['loss_pct']:.1f}%)" if losing else "")
    mesh.out.event("status", f"round {mesh.rounds}: {heard} peers heard; {len(losing)} of "
                   f"{len(cells)} ways known lose probes{worst}", rounds=mesh.rounds,
                   peers=heard, ways=len(cells), losing=len(losing))


def print_mesh_summary(mesh):
    """The whole matrix (loss by kind), each peer both ways, and the verdict; return
    the reasons it failed."""
    settings, cells = mesh.settings, mesh_matrix(mesh)
    hosts = [mesh.me, *mesh.peers]
    names = {cell["from"]: cell["from_name"] for cell in cells}
    names[mesh.me] = settings.name
    lines = [f"--- mesh {settings.group}:{settings.port}: {len(hosts)} peers, {mesh.rounds} "
             f"rounds from {mesh.me} ({printable(settings.name)}) ---"]
    by_cell = {(cell["from"], cell["to"], cell["kind"]): cell for cell in cells}
    lines += matrix_lines(hosts, names, by_cell)
    for address in mesh.peers:
        lines += mesh_peer_lines(address, by_cell, mesh.me)
    reasons = judge_mesh(mesh, cells)
    if mesh.evicted:
        lines.append(f"{mesh.evicted} peers evicted from a full table ({MAX_MESH_PEERS})")
    lines.append("verdict: " + ("pass" if not reasons else "FAIL: " + "; ".join(reasons)))
    mesh.out.event("summary", "\n".join(lines), mesh=True, address=mesh.me,
                   name=settings.name, session=f"{mesh.session:016x}", rounds=mesh.rounds,
                   peers=[{"address": address, "name": names.get(address),
                           "finished": peer.finished} for address, peer in mesh.peers.items()],
                   matrix=cells, evicted=mesh.evicted, ignored=dict(mesh.ignored),
                   send_errors=dict(mesh.send_errors),
                   verdict={"ok": not reasons, "reasons": reasons,
                            "max_loss": settings.max_loss})
    return reasons


def matrix_lines(hosts, names, by_cell):
    """Each kind's loss as a table: a row for each sending peer, a column for each
    receiving one."""
    label = {host: printable(names.get(host) or "?")[:12] for host in hosts}
    width = max(7, *(len(text) + 2 for text in label.values()))
    lines = []
    for kind in MESH_KINDS:
        lines.append(f"{kind} loss %, from each row to each column (?: not told yet):")
        lines.append(" " * width + "".join(f"{label[host]:>{width}}" for host in hosts))
        for source in hosts:
            row = []
            for target in hosts:
                cell = by_cell.get((source, target, kind))
                row.append("-" if cell is None else "?" if cell["loss_pct"] is None
                           else f"{cell['loss_pct']:.1f}")
            lines.append(f"{label[source]:<{width}}" + "".join(f"{text:>{width}}" for text in row))
    return lines


def mesh_peer_lines(address, by_cell, me):
    """One peer, each kind both ways: our probes to it (its count, our round trips), and
    its probes to us (our count, the TTL they came with)."""
    first = by_cell[me, address, "multicast"]
    lines = [f"{printable(first['to_name'] or '?')} ({address}):"]
    for kind in MESH_KINDS:
        for way, cell in (("to it", by_cell[me, address, kind]),
                          ("from it", by_cell[address, me, kind])):
            head = f"  {kind} {way}".ljust(20)
            if cell["loss_pct"] is None:
                lines.append(f"{head}not told yet")
                continue
            tail = (f"; rtt p50 {cell['rtt_p50_ms']:.3f} ms, p99 {cell['rtt_p99_ms']:.3f} ms"
                    if way == "to it" and cell["rtt_p50_ms"] is not None else
                    f"; ttl {cell['ttl']} ({cell['hops']} hops)" if way == "from it"
                    and cell["hops"] is not None else "")
            lines.append(f"{head}{cell['received']} received, {cell['lost']} lost "
                         f"({cell['loss_pct']:.1f}%), {cell['duplicates']} duplicates, "
                         f"{cell['reordered']} reordered{tail}")
    return lines


def judge_mesh(mesh, cells):
    """Why the run fails: a peer in --expect never heard; with --max-loss, a way to or
    from us that lost more, or whose loss is not known."""
    reasons = []
    expected = (mesh.settings.expect or (0, []))
    heard = [peer for peer in mesh.peers.values() if peer.session is not None]
    for entry in expected[1]:
        if not any(entry in (peer.address, peer.name.decode("utf-8", "replace"))
                   for peer in heard):
            reasons.append(f"{printable(entry)} never heard")
    if len(heard) < expected[0]:
        reasons.append(f"{len(heard)} peers heard, {expected[0]} expected")
    if mesh.settings.max_loss is not None:
        for cell in cells:
            if mesh.me not in (cell["from"], cell["to"]):
                continue
            way = f"{cell['from_name'] or cell['from']} to {cell['to_name'] or cell['to']}"
            if cell["loss_pct"] is None:
                reasons.append(f"{cell['kind']} {printable(way)}: loss not known")
            elif cell["loss_pct"] > mesh.settings.max_loss:
                reasons.append(f"{cell['kind']} {printable(way)}: lost {cell['loss_pct']}%")
    return reasons


def main_mesh(settings, out, selector, stop, program):
    """--mesh's main: open the socket, run, print the matrix; the exit status."""
    try:
        me = own_address(settings)
        sock = make_mesh_socket(settings)
    except OSError as error:
        print(f"{program}: error: {explain(error, settings.group)}", file=sys.stderr)
        return 1
    selector.register(sock, selectors.EVENT_READ)
    mesh = Mesh(sock, settings, out, me)
    try:
        mesh.board = Board(*settings.board) if settings.board else None
    except OSError as error:
        print(f"{program}: error: --board {settings.board[0]}:{settings.board[1]}: "
              f"{error.strerror or error}", file=sys.stderr)
        return 1
    mesh.live = TerminalBoard(out) if settings.live else None
    for entry in (settings.expect or (0, []))[1]:
        if valid_address(entry, family_of(settings.group)):
            mesh.peers.setdefault(entry, MeshPeer(entry, None))  # probed before it is heard
    keyed = ", signed with the key" if settings.key else ""
    out.event("start", f"mesh peer {printable(settings.name)} at {me} on {settings.group}:"
              f"{settings.port}, ttl {settings.ttl}, session {mesh.session:016x}{keyed}",
              mesh=True, group=settings.group, port=settings.port, address=me,
              name=settings.name, session=f"{mesh.session:016x}", ttl=settings.ttl,
              authenticated=settings.key is not None)
    try:
        run_mesh(mesh, selector, stop)
    except OSError as error:
        print(f"{program}: error: {explain(error, settings.group)}", file=sys.stderr)
        return 1
    if mesh.board or mesh.live:
        show_mesh_board(mesh, time.monotonic(), stopped=True)
    stop.ignore_from_now()
    sock.close()
    mesh.heard_lines.note(time.monotonic(), at_once=True)
    reasons = print_mesh_summary(mesh)
    if reasons:
        print(f"{program}: " + "; ".join(reasons), file=sys.stderr)
    return 1 if reasons else 0


def valid_address(text, family):
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return (address.version == 6) == (family == socket.AF_INET6)


# ==== the board ====
def board_state(sender, stopped=False):
    """What the board shows, as a dict (/board.json): the run, and a row for each of
    the first MAX_BOARD_ROWS receivers (the others are only counted: the state is
    built on the sending path, and forged names must not slow it)."""
    settings, now = sender.settings, time.monotonic()
    rounds = settings.rate is None
    expect, names = sender.expect
    rows, answering, shown = [], 0, receivers(sender)
    for place, (peer, _) in enumerate(shown):
        heard = now - peer.last_heard if peer.last_heard else None
        silent = max(0, sender.closed_through - peer.highest) if rounds else (
            int(heard) if heard is not None and heard >= 1 else 0)
        state = ("answering" if silent == 0 and (peer.acks or not rounds)
                 else "gone" if silent >= GONE_ROUNDS else "silent")
        answering += state == "answering"
        if place >= MAX_BOARD_ROWS:
            continue
        entry = peer.as_dict(sender.closed_through, not settings.no_ack, settings.ttl, rtt=False)
        rows.append({"name": printable(peer.name), "address": peer.address, "state": state,
                     "silent": silent, "acks": peer.acks, "loss_pct": entry["loss_pct"],
                     "rtt_p50_ms": peer.rtt.latest_median(), "hops": entry["hops"],
                     "last_heard_s": None if heard is None else round(heard, 1)})
    return {"group": settings.group, "port": settings.port, "ttl": settings.ttl,
            "session": f"{sender.session:016x}", "mode": "rounds" if rounds else "rate",
            "sent": sender.sequence, "answering": answering,
            "expected": expect if settings.expect is not None else None,
            "never_heard": [printable(name) for name in
                            listed_but_unheard(names, sender.peers.values())],
            "not_shown": max(0, len(shown) - MAX_BOARD_ROWS),
            "stopped": stopped, "receivers": rows}


def mesh_board_state(mesh, stopped=False):
    """What the board shows of a mesh (/board.json): each peer (the first MAX_BOARD_ROWS)
    with its state, and for each kind a matrix of [loss %, received, lost, rtt p50 ms,
    hops] (None: not told yet), rows sending, columns receiving."""
    now, cells = time.monotonic(), mesh_matrix(mesh)
    gone_after = min(mesh.settings.interval, MESH_SUMMARY_EVERY) + MESH_GONE_SLACK
    hosts = [mesh.me, *mesh.peers][:MAX_BOARD_ROWS]
    rows = [{"address": mesh.me, "name": printable(mesh.settings.name), "state": "me",
             "last_heard_s": 0.0}]
    for address in hosts[1:]:
        peer = mesh.peers[address]
        silent = now - peer.heard_at
        rows.append({"address": address, "name": printable(peer.name.decode("utf-8", "replace")),
                     "state": "never" if peer.session is None else "stopped" if peer.finished
                     else "gone" if silent > gone_after else "heard",
                     "last_heard_s": None if peer.session is None else round(silent, 1)})
    place = {address: at for at, address in enumerate(hosts)}
    matrices = {kind: [[None] * len(hosts) for _ in hosts] for kind in MESH_KINDS}
    for cell in cells:
        if cell["from"] in place and cell["to"] in place and cell["loss_pct"] is not None:
            matrices[cell["kind"]][place[cell["from"]]][place[cell["to"]]] = [
                cell["loss_pct"], cell["received"], cell["lost"], cell["rtt_p50_ms"],
                cell["hops"]]
    return {"mesh": True, "group": mesh.settings.group, "port": mesh.settings.port,
            "ttl": mesh.settings.ttl, "rounds": mesh.rounds, "stopped": stopped,
            "peers": rows, "matrix": matrices, "not_shown": 1 + len(mesh.peers) - len(hosts)}


def mesh_board_lines(state):
    """A mesh's board as text: a header line, the matrices, the peers not heard lately."""
    lines = [f"mesh {state['group']}:{state['port']} ttl {state['ttl']}: {state['rounds']} "
             f"rounds, {len(state['peers'])} peers" + (" (stopped)" if state["stopped"] else "")]
    hosts = [row["address"] for row in state["peers"]]
    names = {row["address"]: row["name"] for row in state["peers"]}
    by_cell = {(source, target, kind): {"loss_pct": None if value is None else value[0]}
               for kind, matrix in state["matrix"].items()
               for source, row in zip(hosts, matrix) for target, value in zip(hosts, row)
               if source != target}
    lines += matrix_lines(hosts, names, by_cell)
    lines += [f"  {row['name'][:24]:24} {row['address']:15} {row['state']}"
              for row in state["peers"] if row["state"] in ("gone", "stopped", "never")]
    if state["not_shown"]:
        lines.append(f"  and {state['not_shown']} more peers, not shown")
    return lines


def board_lines(state):
    """The board as text: a header line and one line per receiver."""
    if state.get("mesh"):
        return mesh_board_lines(state)
    expected = f" of {state['expected']} expected" if state["expected"] is not None else ""
    unit = "rounds" if state["mode"] == "rounds" else "s"
    lines = [f"{state['group']}:{state['port']} ttl {state['ttl']}: {state['sent']} sent, "
             f"{state['answering']} answering{expected}"
             + (" (sender stopped)" if state["stopped"] else "")]
    for row in state["receivers"]:
        what = row["state"] if row["state"] != "silent" else f"silent {row['silent']} {unit}"
        loss = "-" if row["loss_pct"] is None else f"{row['loss_pct']}%"
        rtt = "-" if row["rtt_p50_ms"] is None else f"{row['rtt_p50_ms']} ms"
        hops = "-" if row["hops"] is None else row["hops"]
        lines.append(f"  {row['name'][:24] or '-':24} {row['address']:15} {what:16} "
                     f"{row['acks']:7} acks  loss {loss:7} rtt {rtt:10} hops {hops}")
    lines += [f"  {name[:24]:24} never heard" for name in state["never_heard"]]
    if state["not_shown"]:
        lines.append(f"  and {state['not_shown']} more receivers, not shown")
    return lines


def show_board(sender, now, stopped=False):
    """Give the board and the terminal board the state, at most every BOARD_EVERY."""
    if (sender.board or sender.live) and (stopped or now >= sender.next_board):
        sender.next_board = now + BOARD_EVERY
        give_boards(sender, board_state(sender, stopped))


def give_boards(owner, state):
    """The state to the owner's (a Sender's or a Mesh's) board and terminal board."""
    if owner.board:
        owner.board.publish(state)
    if owner.live:
        owner.live.show(state)


class TerminalBoard:
    """--live: the board redrawn in place on a terminal (instead of a line per
    round), or elsewhere a `board` event every BOARD_EVERY seconds (plain lines,
    or with --json one object with the board's state)."""

    def __init__(self, out, stream=sys.stdout):
        self.out, self.stream = out, stream
        self.in_place = stream.isatty() and not out.as_json

    def show(self, state):
        lines = board_lines(state)
        if self.in_place:  # home, clear the screen, draw
            self.stream.write("\x1b[H\x1b[J" + "\n".join(lines) + "\n")
            self.stream.flush()
        else:
            self.out.event("board", "\n".join("board: " + line for line in lines), **state)


class Board:
    """--board: a small web server in a thread of its own, serving the page and the
    latest state as JSON. The sending thread gives it the state (publish); the
    server only ever reads those bytes, never the counts, and nothing it does
    can block the sending: every socket is non-blocking, a connection has
    BOARD_REQUEST_TIME seconds in all, and at most MAX_BOARD_CLIENTS are open."""

    def __init__(self, address, port):
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.listener = socket.create_server((address, port), family=family, backlog=128)
        self.listener.setblocking(False)
        self.state = b"{}"
        self.clients = {}  # socket -> [deadline, bytes received, bytes still to send]
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        threading.Thread(target=self.serve, name="board", daemon=True).start()

    def publish(self, state):
        self.state = json.dumps(state).encode("utf-8")  # one reference: swapped at once

    def serve(self):
        while True:
            for key, events in self.selector.select(1.0):
                try:
                    if key.fileobj is self.listener:
                        self.accept()
                    elif events & selectors.EVENT_READ:
                        self.read(key.fileobj)
                    else:
                        self.write(key.fileobj)
                except Exception:  # whatever a client does, it loses only its connection
                    if key.fileobj is not self.listener:
                        self.close(key.fileobj)
            now = time.monotonic()
            for client, (deadline, _, _) in list(self.clients.items()):
                if now > deadline:  # a client that never finishes its request
                    self.close(client)

    def accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            client.setblocking(False)
            if len(self.clients) >= MAX_BOARD_CLIENTS:
                self.close(min(self.clients, key=lambda c: self.clients[c][0]))
            self.clients[client] = [time.monotonic() + BOARD_REQUEST_TIME, b"", b""]
            self.selector.register(client, selectors.EVENT_READ)

    def read(self, client):
        data = client.recv(4096)
        if not data:
            return self.close(client)
        entry = self.clients[client]
        entry[1] += data
        if b"\r\n\r\n" not in entry[1] and b"\n\n" not in entry[1]:
            if len(entry[1]) > MAX_REQUEST:
                self.answer(client, 431, "Request Header Fields Too Large", b"too large\n")
            return
        self.answer(client, *self.respond(entry[1]))

    def respond(self, request):
        """(status, reason, body, content type, head only) for a request's bytes."""
        words = request.split(b"\n", 1)[0].split()
        if len(words) != 3 or not words[2].startswith(b"HTTP/"):
            return 400, "Bad Request", b"bad request\n"
        method, path = words[0], words[1].split(b"?", 1)[0]
        if path not in (b"/", b"/board.json"):
            return 404, "Not Found", b"not found\n"
        if method not in (b"GET", b"HEAD"):
            return 405, "Method Not Allowed", b"only GET and HEAD\n"
        if path == b"/":
            return 200, "OK", BOARD_PAGE, "text/html; charset=utf-8", method == b"HEAD"
        return 200, "OK", self.state, "application/json", method == b"HEAD"

    def answer(self, client, status, reason, body, kind="text/plain; charset=utf-8",
               head_only=False):
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
                f"X-Content-Type-Options: nosniff\r\nConnection: close\r\n"
                + ("Allow: GET, HEAD\r\n" if status == 405 else "") + "\r\n")
        self.clients[client][2] = head.encode("ascii") + (b"" if head_only else body)
        self.selector.modify(client, selectors.EVENT_WRITE)
        self.write(client)

    def write(self, client):
        entry = self.clients[client]
        sent = client.send(entry[2])
        entry[2] = entry[2][sent:]
        if not entry[2]:
            self.close(client)

    def close(self, client):
        if self.clients.pop(client, None) is not None:
            self.selector.unregister(client)
        client.close()


# ==== the command line ====
class Settings(typing.NamedTuple):
    """What the core needs from the command line, checked: the Sender and the run
    read this, never argparse's names."""
    group: str  # the multicast group, IPv4 or IPv6; the first, if several
    groups: typing.List[str]  # every group, each in turn gets the next message
    port: int
    interface: typing.Any  # as the sockets want it: an address, an index or None
    ttl: int  # IP_MULTICAST_TTL (IPv6: the hop limit)
    message: bytes  # the payload after the header
    size: typing.Optional[int]  # pad each message to this many bytes
    count: int  # messages to send; 0: until stopped
    interval: float  # round mode: seconds between a round's end and the next message
    timeout: float  # seconds an ack counts as in time
    rate: typing.Optional[float]  # throughput mode: messages a second (0: as fast as it can)
    no_ack: bool  # ask the receivers not to answer each message
    expect: typing.Optional[tuple]  # (count, names) of receivers that must answer
    wait_all: bool  # a round waits its whole timeout even once the expected answered
    key: typing.Optional[bytes]  # sign and check everything with this key
    max_loss: typing.Optional[float]  # the verdict fails a receiver that lost more (percent)
    report_interval: typing.Optional[float]  # throughput mode: a report line this often
    offload: bool  # throughput mode: send in trains the kernel cuts up (not --no-offload)
    board: typing.Optional[tuple]  # (address, port) of the live board's page
    live: bool  # the board in the terminal
    json: bool  # one JSON object a line
    mesh: bool  # one peer of a mesh: send, answer, count who hears whom
    name: str  # the mesh peer's name


def settings_from(args):
    """The Settings in parsed and checked arguments."""
    values = dict(vars(args), group=args.groups[0], offload=not args.no_offload)
    return Settings(*(values[field] for field in Settings._fields))


def check_options(parser, args):
    """The options that depend on each other; one line and exit status 2 if they clash."""
    if args.size is not None and args.size < HEADER.size + len(args.message):
        parser.error(f"--size {args.size} is smaller than the header and message "
                     f"({HEADER.size + len(args.message)} bytes)")
    if args.no_ack and args.rate is None:
        parser.error("--no-ack goes with --rate (round mode waits for acks)")
    if args.key is not None and HEADER.size + len(args.message) + TAG_SIZE > MAX_PAYLOAD:
        parser.error(f"the message is {len(args.message)} bytes; with a key one datagram "
                     f"holds at most {MAX_PAYLOAD - HEADER.size - TAG_SIZE} after the "
                     f"{HEADER.size}-byte header and before the {TAG_SIZE}-byte tag")
    if args.key is not None and args.size is not None and args.size + TAG_SIZE > MAX_PAYLOAD:
        parser.error(f"--size {args.size}: with a key the tag's {TAG_SIZE} bytes follow, "
                     f"so at most {MAX_PAYLOAD - TAG_SIZE}")
    settle_groups(parser, args)
    settle_interface(parser, args)
    if args.count is None:
        args.count = 0 if args.mesh else 1  # a mesh runs until stopped
    if args.mesh:
        clashes = [(option, why) for option, why, given in (
            ("--rate", "a mesh sends rounds of probes", args.rate is not None),
            ("--no-ack", "a mesh's probes are answered", args.no_ack),
            ("--size", "a mesh's probes are of one size", args.size is not None),
            ("more than one --group", "a mesh is one group's", len(args.groups) > 1)) if given]
        if clashes:
            parser.error(f"--mesh does not take {clashes[0][0]} ({clashes[0][1]})")


def build_parser(environ=os.environ):
    parser = OneLineParser(
        description="Send numbered messages to a multicast group and measure the answers.",
        epilog="Environment: MULTICAST_GROUP (groups separated by commas), MULTICAST_PORT, "
               "MULTICAST_INTERFACE, MULTICAST_TTL, MULTICAST_MESSAGE, MULTICAST_COUNT, "
               "MULTICAST_INTERVAL, MULTICAST_TIMEOUT, MULTICAST_EXPECT, MULTICAST_RATE, "
               "MULTICAST_SIZE, MULTICAST_REPORT_INTERVAL, MULTICAST_MAX_LOSS, "
               "MULTICAST_KEY_FILE, MULTICAST_BOARD, MULTICAST_NAME.")
    add_group_option(parser, environ, "multicast group to send to, IPv4 or IPv6; FIRST+N is "
                     "FIRST and the N groups after it; may be given more than once: the groups "
                     "take turns, one message each (default: %(default)s)")
    parser.add_argument("-p", "--port", metavar="PORT", type=port_number,
                        default=environ.get("MULTICAST_PORT", str(DEFAULT_PORT)),
                        help="UDP port of the receivers (default: %(default)s)")
    parser.add_argument("-i", "--interface", metavar="NAME|ADDRESS", type=local_interface,
                        default=environ.get("MULTICAST_INTERFACE") or None,
                        help="interface to send on, by name or IPv4 or IPv6 address "
                             "(default: the system's choice)")
    parser.add_argument("-t", "--ttl", metavar="HOPS", type=ttl_number,
                        default=environ.get("MULTICAST_TTL", "1"),
                        help="how many routers the messages may cross, 0 to 255 (IPv6: the "
                             "hop limit) (default: %(default)s)")
    parser.add_argument("-m", "--message", metavar="TEXT", type=payload,
                        default=environ.get("MULTICAST_MESSAGE", DEFAULT_MESSAGE),
                        help="the text each message carries, at most 65475 bytes of UTF-8 "
                             "(65459 with a key) (default: %(default)s)")
    parser.add_argument("-c", "--count", metavar="N", type=count_number,
                        default=environ.get("MULTICAST_COUNT"),
                        help="messages (rounds) to send, 0 for no limit (default: 1; with "
                             "--mesh 0)")
    parser.add_argument("--interval", metavar="SECONDS", type=seconds,
                        default=environ.get("MULTICAST_INTERVAL", "1"),
                        help="pause between rounds (default: %(default)s)")
    parser.add_argument("--timeout", metavar="SECONDS", type=timeout_seconds,
                        default=environ.get("MULTICAST_TIMEOUT", "0.2"),
                        help="how long after its send an ack still counts "
                             "(default: %(default)s)")
    parser.add_argument("-e", "--expect", metavar="N|NAMES|@FILE", type=parse_expectation,
                        default=environ.get("MULTICAST_EXPECT") or None,
                        help="receivers that must answer, else exit status 1: a count, "
                             "a comma-separated list of names or addresses, or @FILE "
                             "with one per line; given, a round ends once they all have "
                             "answered (default: 1, and a round lasts --timeout)")
    parser.add_argument("--wait-all", action="store_true",
                        help="with --expect, still wait the whole --timeout in each round, "
                             "for receivers beyond the expected ones")
    parser.add_argument("--max-loss", metavar="PERCENT", type=loss_percent,
                        default=environ.get("MULTICAST_MAX_LOSS") or None,
                        help="exit status 1 when the network lost more than this of a "
                             "receiver's messages, on the way there and back together, or "
                             "its loss is unknown (default: no limit)")
    parser.add_argument("-r", "--rate", metavar="PPS", type=packet_rate,
                        default=environ.get("MULTICAST_RATE"),
                        help="throughput mode: send this many messages per second "
                             "without waiting for rounds, 0 for as fast as possible "
                             "(default: round mode)")
    parser.add_argument("--no-ack", action="store_true",
                        help="ask the receivers not to answer each message; they report "
                             "at the end (throughput mode)")
    parser.add_argument("--no-offload", action="store_true",
                        help="throughput mode: one system call per message, not trains of "
                             "them that the kernel cuts up (UDP_SEGMENT, Linux)")
    parser.add_argument("-s", "--size", metavar="BYTES", type=datagram_size,
                        default=environ.get("MULTICAST_SIZE"),
                        help="pad every datagram with zero bytes to this size, 32 to 65507 "
                             "(65491 with a key) (default: the header and message, at least "
                             f"{ACK_ROOM} bytes when acks are asked for)")
    parser.add_argument("--report-interval", metavar="SECONDS", type=seconds,
                        default=environ.get("MULTICAST_REPORT_INTERVAL", "0"),
                        help="throughput mode: print rate and loss this often, "
                             "0 for never (default: %(default)s)")
    parser.add_argument("-k", "--key-file", metavar="PATH", dest="key", type=key_file,
                        default=environ.get("MULTICAST_KEY_FILE") or None,
                        help="a file holding the shared key (at least 16 bytes): sign every "
                             "message, count only acks signed with it (default: none)")
    parser.add_argument("--mesh", action="store_true",
                        help="run as one peer of a mesh: send probes to the group and to "
                             "each peer heard, answer theirs, and show who hears whom, "
                             "multicast beside unicast (round mode options; run it on "
                             "every host)")
    parser.add_argument("-n", "--name", metavar="NAME", type=receiver_name,
                        default=environ.get("MULTICAST_NAME") or socket.gethostname()[:MAX_NAME],
                        help="with --mesh, the name this peer goes by (default: the host "
                             "name, %(default)s)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per line instead of text")
    parser.add_argument("--board", metavar="[ADDRESS:]PORT", type=board_address,
                        default=environ.get("MULTICAST_BOARD") or None,
                        help="serve a live board of the receivers at http://ADDRESS:PORT/ "
                             "(its state at /board.json) while sending; ADDRESS 127.0.0.1 "
                             "unless given (default: no board)")
    parser.add_argument("--live", action="store_true",
                        help="show the board in the terminal too: redrawn in place on a "
                             "terminal, else a `board` event every half second")
    return parser


def parse_expectation(text):
    """--expect: a count, NAME,NAME,... (names or addresses), or @FILE (one per line)."""
    text = text.strip()
    if text.isdigit():
        return count_number(text), []
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as roster_file:
                lines = [line.split("#", 1)[0].strip() for line in roster_file]
        except (OSError, UnicodeDecodeError) as error:
            raise argparse.ArgumentTypeError(
                f"cannot read the receiver list {text[1:]!r}: "
                f"{getattr(error, 'strerror', None) or error}") from None
        names = [line for line in lines if line]
        if not names:
            raise argparse.ArgumentTypeError(f"the receiver list {text[1:]!r} names no "
                                             f"receiver (one name or address a line)")
    else:
        names = [name.strip() for name in text.split(",") if name.strip()]
    if not names or any(len(name.encode("utf-8")) > MAX_NAME for name in names):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a count or a list of receivers (valid: a number, NAME,NAME,... "
            f"of names or addresses up to {MAX_NAME} bytes, or @FILE)")
    return len(set(names)), sorted(set(names), key=names.index)


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
    """Messages per second: 0 for as fast as possible, else 1e-6 to 1e9."""
    value = bounded_number(text, "a rate in messages per second, 0 for as fast as possible",
                           1e9)
    if 0 < value < 1e-6:
        raise argparse.ArgumentTypeError(
            f"{text!r} is too slow a rate (valid: 0, or 0.000001 to 1e+09 per second)")
    return value


def loss_percent(text):
    """A loss percentage, 0 to 100."""
    return bounded_number(text, "a loss percentage", 100)


def board_address(text):
    """--board: PORT (on the loopback only), or ADDRESS:PORT ([ADDRESS]:PORT for IPv6)."""
    address, _, port = text.rpartition(":")
    address = address.strip("[]") or "127.0.0.1"
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give PORT or ADDRESS:PORT, "
                                         f"the address as digits") from None
    return address, port_number(port)


def explain(error, group):
    """One line that says what a socket error means and what to do about it."""
    if error.errno in (errno.ENETUNREACH, errno.ENODEV, errno.EADDRNOTAVAIL):
        return route_advice(group)
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"not allowed: {error.strerror} (a firewall?)"
    return error.strerror or str(error)


# ==== main ====
def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    check_options(parser, args)
    settings = settings_from(args)
    sys.stdout.reconfigure(line_buffering=True)  # every line shows up at once in `docker logs`
    program = os.path.basename(sys.argv[0])
    warn_if_readable_by_others(args.key, program)
    if args.rate is not None and not args.no_ack and (args.rate == 0 or args.rate > 1000):
        print(f"{program}: warning: receivers answer one address at most 1000 times a "
              f"second by default: raise their --max-ack-rate, or use --no-ack",
              file=sys.stderr)
    out = Output(args.json)
    selector = selectors.DefaultSelector()
    stop = StopRequest(selector)
    if args.mesh:
        try:
            return main_mesh(settings, out, selector, stop, program)
        except BrokenPipeError:
            return quiet_on_closed_pipe()
    try:
        try:
            sock = make_sender_socket(args.ttl, args.interface, family_of(args.group))
            selector.register(sock, selectors.EVENT_READ)
            sender = Sender(sock, settings, out)
            if args.board:
                try:
                    sender.board = Board(*args.board)
                except OSError as error:
                    address, port = args.board
                    print(f"{program}: error: --board {address}:{port}: "
                          f"{error.strerror or error}", file=sys.stderr)
                    return 1
            if args.live:
                sender.live = TerminalBoard(out)
            where, source = describe_interface(args.group, args.port, args.interface)
            sender.where = where
            keyed = ", signed with the key" if args.key else ""
            to = (f"{args.group}:{args.port}" if len(args.groups) == 1 else
                  f"{len(args.groups)} groups from {args.group} to {args.groups[-1]} in turn, "
                  f"port {args.port},")
            out.event("start", f"sending to {to} from {where}, ttl "
                      f"{args.ttl}, session {sender.session:016x}{keyed}", group=args.group,
                      groups=len(args.groups),
                      port=args.port, session=f"{sender.session:016x}", ttl=args.ttl,
                      interface=where, source=source, authenticated=args.key is not None)
            if args.rate is None:
                short_rounds = run_rounds(sender, selector, stop)
            else:
                short_rounds = run_rate(sender, selector, stop)
            end_run(sender, selector, stop)
            show_board(sender, time.monotonic(), stopped=True)
            stop.ignore_from_now()
        except BrokenPipeError:
            raise
        except OSError as error:
            print(f"{program}: error: {explain(error, args.group)}", file=sys.stderr)
            return 1
        sock.close()
        reasons = print_summary(sender, short_rounds)
        if reasons:
            print(f"{program}: " + "; ".join(reasons), file=sys.stderr)
        return 1 if reasons else 0
    except BrokenPipeError:
        return quiet_on_closed_pipe()


if __name__ == "__main__":
    sys.exit(main())
