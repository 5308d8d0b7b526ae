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
