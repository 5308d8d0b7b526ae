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
HELD_COUNT = 0x08  # flag in a report: REPORT_HELD follows the counts
ARRIVAL = 0x10  # flag in an ack or a report: how the message arrived follows (ACK_ARRIVAL...)
SHARED_DROPS = 0x20  # flag in a report: other traffic came to its socket during the session,
# so some of the drops it counts for the session may have been that traffic's
INSTANCE = 7  # the header's byte that holds a receiver's instance
ACK_EXTRA = struct.Struct("!I")  # after an ack's header: microseconds it was held back
# After a report's header: microseconds held back, then the receiver's counts
# for the session: received, lost, duplicates, reordered, and dropped by its host
# while the session lasted (from its first datagram to the report).
REPORT_EXTRA = struct.Struct("!IQQQQQ")
REPORT_HELD = struct.Struct("!Q")  # then: the acks its rate limit held back (HELD_COUNT)
# With ARRIVAL, after the ack's extra: the TTL (IPv6: hop limit) the message answered
# arrived with. After the report's counts: the TTL its end of run arrived with, the
# microseconds from the receiver's join to its first message of the session
# (NOT_MEASURED if it cannot tell) and that message's send time, echoed.
ACK_ARRIVAL = struct.Struct("!B")
REPORT_ARRIVAL = struct.Struct("!BIQ")
NOT_MEASURED = 2**32 - 1
PLAIN_ACK = b"ack"  # what a textbook receiver answers
MAX_NAME = 200  # bytes of a receiver's name
MAX_JUMP = 1 << 24  # a sequence further ahead than this is rubbish, not loss
END_REPEATS = 3  # end-of-run messages a sender sends, so that one loss does not hide the end
# No answer is larger than the datagram it answers, so nobody can use a receiver to
# amplify traffic: a sender pads a message that asks for an ack to ACK_ROOM bytes
# (room for a name of 32 bytes; a receiver cuts a longer one to fit), and an end of
# run to REPORT_ROOM bytes (room for a report with any name).
ACK_ROOM = HEADER.size + ACK_EXTRA.size + ACK_ARRIVAL.size + 32
REPORT_ROOM = (HEADER.size + REPORT_EXTRA.size + REPORT_HELD.size + REPORT_ARRIVAL.size
               + MAX_NAME)
