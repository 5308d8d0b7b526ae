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
