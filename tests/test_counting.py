"""The socket pair's counting, in-process: each case is a bug once found by reading the code."""

import argparse
import errno
import random
import struct
import sys
import time
import unittest
from unittest import mock

from . import support

sender_module = support.load("socket_multicast_sender.py")
receiver_module = support.load("socket_multicast_receiver.py")
HEADER = sender_module.HEADER
MAGIC = b"MCK1"


class FakeSocket:
    """Records what would have been sent."""

    def __init__(self):
        self.sent = []

    def sendto(self, data, destination):
        self.sent.append((bytes(data), destination))  # as a real socket copies it


class Quiet:
    """An Output that keeps the events instead of printing them."""

    def __init__(self):
        self.events = []

    def event(self, kind, line, **fields):
        self.events.append((kind, line, fields))


def make_sender(**overrides):
    args = sender_module.build_parser(environ={}).parse_args(["--json"])
    for key, value in overrides.items():
        setattr(args, key, value)
    sender = sender_module.Sender(FakeSocket(), sender_module.settings_from(args), Quiet())
    return sender


def make_receiver(**overrides):
    args = receiver_module.build_parser(environ={"MULTICAST_NAME": "r"}).parse_args(
        ["--quiet", "--ack-jitter", "0"])
    for key, value in overrides.items():
        setattr(args, key, value)
    if isinstance(args.key, bytes):
        args.key = receiver_module.Key(args.key)
    with mock.patch.object(receiver_module.random, "randrange", lambda low, high: 7):
        return receiver_module.Receiver(FakeSocket(), receiver_module.settings_from(args),
                                        Quiet())  # instance 7


def ack(session, sequence, sent_ns=0, name=b"r", flags=0, instance=7):
    header = bytearray(HEADER.pack(MAGIC, 1, 2, flags, session, sequence, sent_ns))
    header[7] = instance  # the receiver's instance
    return bytes(header) + struct.pack("!I", 0) + name


def message(session, sequence, kind=1, flags=0):
    """A message, or an end of run (kind 3), padded as the sender pads them."""
    room = sender_module.REPORT_ROOM if kind == 3 else sender_module.ACK_ROOM
    return (HEADER.pack(MAGIC, 1, kind, flags, session, sequence, 0) + b"data").ljust(room,
                                                                                     b"\0")


class SenderCountingTest(unittest.TestCase):
    def test_loss_so_far_ignores_acks_of_messages_still_open(self):
        peer = sender_module.Peer("10.0.0.2", "r")
        for sequence in [1, 2, 4, 5, 6, 7, 8, 9, 10]:  # 3 lost; 6 to 10 still open
            peer.take(sequence, 1.0, True, False, 5)
        self.assertEqual(sender_module.loss_of(peer, 5, True)["either_way"], 1)
        self.assertEqual(sender_module.loss_of(peer, 10, True)["either_way"], 1)
        self.assertEqual(len(peer.open_acks), 0, "closed acks are not kept")

    def test_loss_is_counted_from_the_senders_first_message(self):
        peer = sender_module.Peer("10.0.0.2", "r")
        peer.take(6, 1.0, True, False, 0)
        peer.take(5, 1.0, True, False, 0)  # overtaken by the ack of 6 (jitter)
        self.assertEqual(sender_module.loss_of(peer, 7, True)["either_way"], 5,
                         "1 to 4 and 7 got no ack")

    def test_an_ack_of_another_session_is_stray_even_with_a_high_sequence(self):
        sender = make_sender()
        sender.sequence = 3
        sender.on_reply(sender_module.parse_reply(ack(sender.session ^ 1, 10**6)),
                        "10.0.0.2", time.monotonic_ns())
        self.assertEqual((sender.counts["stray"], sender.counts["malformed"]), (1, 0))

    def test_remembered_sequences_stay_bounded_when_every_ack_is_late(self):
        peer = sender_module.Peer("10.0.0.2", "r")
        for sequence in range(1, 30001):
            peer.take(sequence, 1.0, False, False, sequence)
        self.assertLessEqual(peer.acked.bit_length(), sender_module.SEQUENCE_WINDOW)
        self.assertEqual(peer.late, 30000)

    def test_names_are_cut_and_escaped(self):
        sender = make_sender()
        sender.sequence = 1
        now = time.monotonic_ns()
        sender.on_reply(sender_module.parse_reply(ack(sender.session, 1, now, b"x" * 300)),
                        "10.0.0.2", now)
        sender.on_reply(sender_module.parse_reply(
            ack(sender.session, 1, now, b"evil\nseq 9: 5 receivers")), "10.0.0.3", now)
        names = sorted(peer.name for peer in sender.peers.values())
        self.assertEqual(len(names[1]), 200)
        labels = [peer.label() for peer in sender.peers.values()]
        self.assertFalse(any("\n" in label for label in labels))
        self.assertIn("10.0.0.3 (evil\\nseq 9: 5 receivers)", labels)

    def test_receivers_tracked_are_capped_and_the_rest_counted(self):
        sender = make_sender()
        sender.sequence = 1
        now = time.monotonic_ns()
        old = sender_module.MAX_PEERS
        sender_module.MAX_PEERS = 3
        try:
            for host in range(5):
                sender.on_reply(sender_module.parse_reply(ack(sender.session, 1, now)),
                                f"10.0.0.{host}", now)
        finally:
            sender_module.MAX_PEERS = old
        self.assertEqual((len(sender.peers), sender.counts["untracked"]), (3, 2))

    def test_a_plain_ack_to_the_end_of_run_is_not_a_duplicate(self):
        sender = make_sender()
        sender.sequence, sender.last_send_ns = 1, time.monotonic_ns()
        sender.on_reply(("plain", None), "10.0.0.2", time.monotonic_ns())
        sender.ended = True
        sender.on_reply(("plain", None), "10.0.0.2", time.monotonic_ns())
        [peer] = sender.peers.values()
        self.assertEqual((peer.acks, peer.duplicates, sender.counts["end_acks"]), (1, 0, 1))


def report(session, last, received, lost, host_drops=0, held=0, name=b"r", instance=7):
    header = bytearray(HEADER.pack(MAGIC, 1, 4, 0x04 | 0x08, session, last, 0))
    header[7] = instance
    return (bytes(header) + sender_module.REPORT_EXTRA.pack(0, received, lost, 0, 0, host_drops)
            + sender_module.REPORT_UNSENT.pack(held) + name)


class VerdictTest(unittest.TestCase):
    """Each kind of loss is named apart, and --max-loss judges exact counts."""

    def run_of(self, sent, acked, reports, **overrides):
        """A sender after sent messages; acked: sequences acked by "r" from 10.0.0.2."""
        sender = make_sender(**overrides)
        now = time.monotonic_ns()
        sender.sequence = sent
        for sequence in acked:
            sender.on_reply(sender_module.parse_reply(ack(sender.session, sequence, now)),
                            "10.0.0.2", now)
        sender.close_all()
        for counts in reports:
            sender.on_reply(sender_module.parse_reply(report(sender.session, sent, *counts)),
                            "10.0.0.2", now)
        reasons = sender_module.print_summary(sender, 0)
        [(_, text, fields)] = [e for e in sender.out.events if e[0] == "summary"]
        return reasons, text, fields

    def test_one_lost_of_three_hundred_thousand_fails_max_loss_0(self):
        reasons, text, _ = self.run_of(300_000, range(1, 300_000), [], max_loss=0.0)
        self.assertEqual(len(reasons), 1)
        self.assertIn("lost 0.0% (1 unacked", reasons[0])

    def test_acks_lost_on_the_way_back_are_not_blamed_on_the_way_there(self):
        acked = [n for n in range(1, 1001) if n % 10]  # 100 acks lost on the way back
        reasons, text, fields = self.run_of(1000, acked, [(1000, 0)], max_loss=5.0)
        self.assertEqual(fields["receivers"][0]["loss"]["back"], 100)
        self.assertEqual(fields["receivers"][0]["loss"]["there"], 0)
        self.assertIn("100 on the way back (acks)", reasons[0])
        self.assertNotIn("on the way there", reasons[0])

    def test_host_drops_and_unsent_acks_are_named_not_blamed_on_the_network(self):
        acked = range(1, 801)  # 100 refused by its rate limit, 100 its host dropped
        reasons, text, fields = self.run_of(1000, acked, [(900, 100, 100, 100)], max_loss=0.0)
        self.assertEqual(reasons, [])
        self.assertIn("100 dropped by its own host (a full socket buffer: not the network)",
                      text)
        self.assertIn("100 acks it did not send (its rate limit", text)
        self.assertEqual(fields["receivers"][0]["lost"], 0)

    def test_a_pass_never_stands_bare_beside_loss(self):
        reasons, text, fields = self.run_of(300, [], [(137, 163)], no_ack=True, rate=100.0)
        self.assertEqual(reasons, [])
        self.assertIn("verdict: pass (1 receiver lost messages, at most 54.33%; no --max-loss "
                      "given)", text)
        self.assertIn("no acks asked for (--no-ack)", text)
        self.assertNotIn("0 lost", text)

    def test_a_receiver_whose_acks_all_vanish_is_not_lossless(self):
        reasons, text, fields = self.run_of(1000, [], [(1000, 0)], max_loss=1.0)
        self.assertEqual(fields["receivers"][0]["lost"], 1000)
        self.assertEqual(len(reasons), 1)

    def test_two_receivers_with_one_name_on_one_host_are_told_apart(self):
        sender = make_sender()
        now = time.monotonic_ns()
        sender.sequence = 1
        for instance in (3, 9):
            data = bytearray(ack(sender.session, 1, now))
            data[7] = instance
            sender.on_reply(sender_module.parse_reply(bytes(data)), "10.0.0.2", now)
        self.assertEqual(len(sender.peers), 2)
        self.assertEqual(sum(peer.duplicates for peer in sender.peers.values()), 0)
        sender.close_all()
        sender_module.print_summary(sender, 0)
        [(_, text, _)] = [e for e in sender.out.events if e[0] == "summary"]
        self.assertIn("two or more receivers answer as 'r' from 10.0.0.2", text)
        self.assertIn("10.0.0.2 (r) #3", text)

    def test_rates_are_over_the_sending_time_and_the_run_is_shown_apart(self):
        sender = make_sender()
        sender.sequence = 300
        sender.first_send_at, sender.last_send_at = 100.0, 103.0
        sender.started = time.monotonic() - 3.6
        sender.close_all()
        sender_module.print_summary(sender, 0)
        [(_, text, fields)] = [e for e in sender.out.events if e[0] == "summary"]
        self.assertIn("300 sent in 3.0 s (100.0/s), the run took 3.6 s;", text)
        self.assertEqual(fields["send_seconds"], 3.0)

    def test_each_hint_follows_the_facts(self):
        sender = make_sender()
        sender.sequence = 3
        sender.counts["send_errors"] = 3
        self.assertIn("every send failed", sender_module.no_answer_hint(sender, {}))
        sender.counts["send_errors"] = 0
        self.assertIn("none with our key's tag",
                      sender_module.no_answer_hint(sender, {"unauthenticated": 5}))
        sender.where = "eth1 (10.0.0.9)"
        self.assertIn("we sent from eth1 (10.0.0.9) with ttl 1; check that one runs",
                      sender_module.no_answer_hint(sender, {"unauthenticated": 0}))


class ReceiverCountingTest(unittest.TestCase):
    def test_an_absurd_jump_is_malformed_not_loss(self):
        receiver = make_receiver()
        receiver.handle(message(7, 1), ("10.0.0.1", 5000), False)
        receiver.handle(message(7, 2**63), ("10.0.0.1", 5000), False)
        receiver.handle(message(7, 2**63, kind=3), ("10.0.0.1", 5000), False)
        [stats] = receiver.sessions.values()
        self.assertEqual((stats.received, stats.lost, receiver.malformed), (1, 0, 2))
        self.assertEqual(len(receiver.answers.sock.sent), 1, "only the real message is answered")

    def test_the_end_of_run_counts_the_tail_as_lost_and_is_answered_with_a_report(self):
        receiver = make_receiver()
        for sequence in (1, 2, 4):
            receiver.handle(message(7, sequence, flags=1), ("10.0.0.1", 5000), False)
        receiver.handle(message(7, 10, kind=3, flags=1), ("10.0.0.1", 5000), False)
        [stats] = receiver.sessions.values()
        self.assertEqual((stats.received, stats.lost, stats.end), (3, 7, 10))
        [(report, destination)] = receiver.answers.sock.sent
        kind, sequence = report[5], HEADER.unpack_from(report)[5]
        counts = receiver_module.REPORT_EXTRA.unpack_from(report, HEADER.size)[1:]
        self.assertEqual((kind, sequence, counts, destination),
                         (4, 10, (3, 7, 0, 0, 0), ("10.0.0.1", 5000)))

    def test_the_end_of_run_counts_the_head_as_lost_too(self):
        receiver = make_receiver()
        for sequence in (3, 4):
            receiver.handle(message(7, sequence, flags=1), ("10.0.0.1", 5000), False)
        receiver.handle(message(7, 5, kind=3, flags=1), ("10.0.0.1", 5000), False)
        [stats] = receiver.sessions.values()
        self.assertEqual((stats.received, stats.lost), (2, 3), "1, 2 and 5 never came")

    def test_report_and_summary_agree_on_received(self):
        receiver = make_receiver(report_interval=1)
        for sequence in (1, 2, 2, 3):
            receiver.handle(message(7, sequence), ("10.0.0.1", 5000), False)
        receiver.handle(b"plain text", ("10.0.0.1", 5000), False)
        receiver_module.print_report(receiver, time.monotonic())
        receiver_module.print_summary(receiver)
        report = [f for kind, _, f in receiver.out.events if kind == "report"][0]
        summary = [f for kind, _, f in receiver.out.events if kind == "summary"][0]
        self.assertEqual((report["received"], summary["received"]), (4, 4))

    def test_sessions_tracked_are_capped_by_eviction(self):
        receiver = make_receiver()
        with mock.patch.object(receiver_module, "MAX_SESSIONS", 2):
            for session in range(4):
                receiver.handle(message(session, 1), ("10.0.0.1", 5000), False)
        self.assertEqual((len(receiver.sessions), receiver.table.evicted), (2, 2))
        self.assertEqual(len(receiver.answers.sock.sent), 4, "every message is still answered")

    def test_reordering_at_the_edges_and_data_after_the_end(self):
        receiver = make_receiver()
        for sequence in (5, 4, 6):
            receiver.handle(message(7, sequence), ("10.0.0.1", 5000), False)
        receiver.handle(message(7, 6, kind=3), ("10.0.0.1", 5000), False)
        [stats] = receiver.sessions.values()
        self.assertEqual((stats.received, stats.lost, stats.duplicates, stats.reordered),
                         (3, 3, 0, 1))
        receiver.handle(message(7, 2), ("10.0.0.1", 5000), False)  # late, after the end
        self.assertEqual((stats.received, stats.lost, stats.duplicates, stats.reordered),
                         (4, 2, 0, 2))
        flags = [data[6] for data, _ in receiver.sock.sent if data[5] == 2]
        self.assertEqual(flags, [0, 2, 0, 2], "an ack says the message came after a later one")


class ClassifyTest(unittest.TestCase):
    """classify() and the session table, without sockets: hostile traffic costs bounded
    memory, locks nobody out, is never answered twice with a key, and is never amplified."""

    KEY = b"sixteen-byte-key"

    def test_a_session_costs_constant_memory_whatever_its_numbers(self):
        table = receiver_module.SessionTable(keyed=False)
        for sequence in (1, 4097, 2**24, 2**24 + 4095, 2**25):
            receiver_module.classify(message(7, sequence), ("10.0.0.1", 5000), table, None)
        [stats] = table.values()
        self.assertLessEqual(sys.getsizeof(stats.window), sys.getsizeof(2**4096))
        self.assertEqual((stats.received, stats.lost), (5, 2**25 - 5))

    def test_junk_session_ids_are_evicted_first_and_a_real_run_is_counted_exactly(self):
        table = receiver_module.SessionTable(keyed=False)
        real = ("10.0.0.1", 5000)
        receiver_module.classify(message(1, 1), real, table, None)
        receiver_module.classify(message(1, 2), real, table, None)  # live: two datagrams
        for junk in range(100_000):
            what, _, _ = receiver_module.classify(message(1000 + junk, 9), ("10.6.6.6", 1),
                                                  table, None)
            self.assertEqual(what, "message")
        self.assertEqual(len(table), receiver_module.MAX_SESSIONS)
        self.assertEqual(table.evicted, 100_000 - receiver_module.MAX_SESSIONS + 1)
        for sequence in range(3, 11):
            receiver_module.classify(message(1, sequence), real, table, None)
        what, report, stats = receiver_module.classify(message(1, 10, kind=3), real, table,
                                                       None)
        self.assertEqual((what, report.received, report.lost, report.duplicates,
                          report.reordered), ("end", 10, 0, 0, 0))
        fresh = ("10.0.0.2", 5000)  # a sender that starts after the flood gets a place
        receiver_module.classify(message(2, 1), fresh, table, None)
        self.assertIn((fresh[0], 2), {(s.address, s.session) for s in table.values()})

    def signed(self, data):
        data = bytearray(data)
        data[6] |= 0x80
        return receiver_module.sign(bytes(data), self.KEY)

    def test_with_a_key_a_message_is_answered_once_ever(self):
        table = receiver_module.SessionTable(keyed=True)
        first = self.signed(message(5, 1))
        answers = [receiver_module.classify(first, ("10.0.0.1", 5000), table, self.KEY)[0]
                   for _ in range(3)]
        self.assertEqual(answers, ["message", "refused", "refused"])
        # From another address too (the source address is not signed).
        self.assertEqual(receiver_module.classify(first, ("10.0.0.9", 1), table, self.KEY)[2],
                         "replayed")
        with mock.patch.object(receiver_module, "MAX_SESSIONS", 2):
            for session in (6, 7):  # session 5 is evicted to make room
                receiver_module.classify(self.signed(message(session, 1)), ("10.0.0.1", 5000),
                                         table, self.KEY)
            self.assertEqual(table.evicted, 1)
            for sequence in (1, 2):  # its messages, old or new, are never answered again
                what, answer, reason = receiver_module.classify(
                    self.signed(message(5, sequence)), ("10.0.0.1", 5000), table, self.KEY)
                self.assertEqual((what, answer, reason), ("refused", None, "replayed"))

    def test_no_answer_is_larger_than_the_datagram_it_answers(self):
        rng = random.Random(4)
        for key in (None, self.KEY):
            receiver = make_receiver(name="a-rather-long-receiver-name-" + "x" * 150, key=key,
                                     max_ack_rate=0)
            receiver.table = receiver_module.SessionTable(keyed=key is not None)
            for _ in range(3000):
                sequence = rng.choice([1, 2, 3, 5, 9])
                datagram = HEADER.pack(MAGIC, 1, rng.choice([1, 1, 3]), 0, rng.choice([1, 2]),
                                       sequence, 0) + bytes(rng.choice([0, 4, 36, 300]))
                datagram = rng.choice([datagram, b"ok", b"a", b"plain text", datagram[:40]])
                if key is not None and datagram.startswith(MAGIC):
                    datagram = self.signed(datagram)
                before = len(receiver.sock.sent)
                receiver.handle(datagram, ("10.0.0.1", 5000), False)
                for answer, _ in receiver.sock.sent[before:]:
                    self.assertLessEqual(len(answer), len(datagram), (datagram, answer))
            self.assertGreater(len(receiver.sock.sent), 500 if key is None else 5)
            self.assertGreater(receiver.answers.too_big, 0)
        short_end = HEADER.pack(MAGIC, 1, 3, 0, 9, 1, 0)  # an older sender's end of run
        receiver = make_receiver()
        receiver.handle(short_end, ("10.0.0.1", 5000), False)
        self.assertEqual((receiver.sock.sent, receiver.answers.too_big), ([], 1))


class TrainTest(unittest.TestCase):
    """A train (the sender's Train) carries the very datagrams one send each would send."""

    class Socket:
        def __init__(self):
            self.sent = []

        def sendmsg(self, buffers, ancillary, flags, destination):
            self.sent.append(bytes(buffers[0]))
            return len(buffers[0])

        def sendto(self, data, destination):
            self.sent.append(bytes(data))

    def test_trains_only_where_no_software_router_can_take_one_for_one_datagram(self):
        class Kernel:  # knows UDP_SEGMENT
            def getsockopt(self, level, option):
                return 0

        def fits(**settings):
            sender = make_sender(**{"rate": 0.0, "ttl": 1, **settings})
            sender.sock = Kernel()
            return sender_module.trains_fit(sender)

        with mock.patch.object(sender_module.sys, "platform", "linux"):
            self.assertTrue(fits())
            self.assertFalse(fits(ttl=2), "a router may be on the way")
            self.assertFalse(fits(rate=None), "round mode")
            self.assertFalse(fits(no_offload=True))
            self.assertFalse(fits(groups=["239.1.0.0", "239.1.0.1"]))
        with mock.patch.object(sender_module.sys, "platform", "darwin"):
            self.assertFalse(fits())

    def test_a_train_is_the_datagrams_of_one_send_each(self):
        # The numbers written straight in (--no-ack, 100 bytes: 25 words), or packed
        # (101 bytes; acks; a key).
        class OldKernel(self.Socket):  # before Linux 6.9: 64 datagrams a train at most
            def sendmsg(self, buffers, ancillary, flags, destination):
                if len(buffers[0]) > 64 * struct.unpack("=H", ancillary[0][2])[0]:
                    raise OSError(errno.EINVAL, "Invalid argument")
                return super().sendmsg(buffers, ancillary, flags, destination)

        for extra in (["--no-ack"], ["--no-ack", "101"], [], ["-m", "hello", "--size", "300"],
                      ["--no-ack", "--key-file", "KEY"], ["--no-ack", "old kernel"]):
            with self.subTest(extra=extra):
                pair = []
                for _ in range(2):
                    sender = make_sender(rate=0.0, size=101 if "101" in extra else 100,
                                         no_ack="--no-ack" in extra,
                                         message=b"hello" if "hello" in extra else
                                         sender_module.DEFAULT_MESSAGE.encode(),
                                         key=b"k" * 16 if "KEY" in extra else None)
                    sender.sock = self.Socket()
                    pair.append(sender)
                train, plain = pair
                if "old kernel" in extra:
                    train.sock = OldKernel()
                plain.session, plain.groups = train.session, train.groups
                cars = sender_module.Train(train)
                self.assertEqual((cars.send(130), cars.send(3)), (130, 3))
                plain.send_many(133)
                got = [data[at:at + cars.slot] for data in train.sock.sent
                       for at in range(0, len(data), cars.slot)]
                self.assertEqual([len(data) // cars.slot for data in train.sock.sent],
                                 [64, 64, 2, 3] if "old kernel" in extra else [128, 2, 3],
                                 "128 a train at most, 64 where the kernel refuses more")
                if "--no-ack" in extra:  # no send times: every byte the same
                    self.assertEqual(got, plain.sock.sent)
                else:  # all but the send time
                    self.assertEqual([data[:24] + data[32:] for data in got],
                                     [data[:24] + data[32:] for data in plain.sock.sent])
                    self.assertEqual([entry[1] for entry in train.open], list(range(1, 134)))
                self.assertEqual((train.sequence, plain.sequence), (133, 133))


    def test_at_full_rate_each_turn_sends_whole_full_trains(self):
        """--rate 0 sends BATCH at least a turn, in trains as full as the kernel takes:
        100-byte messages 128 a train, 1,400-byte ones 46 (the 64 KiB limit)."""
        class Kernel(self.Socket):  # knows UDP_SEGMENT; no replies come
            def getsockopt(self, level, option):
                return 0

            def recvfrom(self, size):
                raise BlockingIOError

        for size, cars in ((100, 128), (1400, 46)):
            sender = make_sender(rate=0.0, ttl=1, size=size, no_ack=True, count=4 * 128 * 46)
            sender.sock = Kernel()
            with mock.patch.object(sender_module.sys, "platform", "linux"):
                sender_module.run_rate(sender, None, mock.Mock(requested=False))
            self.assertEqual({len(data) // size for data in sender.sock.sent}, {cars}, size)
            self.assertEqual(sender.sequence, 4 * 128 * 46)


class TrainLaneTest(unittest.TestCase):
    """A train counted in one step (TrainLane) must count exactly as its datagrams one
    by one: the sessions, their windows and order, the totals and the host's drops."""

    def trains(self, seed, size, count=600):
        """Trains of two senders: in order, with gaps, dropped before (the drop count goes
        up), repeated, reordered, mixed, one with a flag or a short last datagram."""
        rng = random.Random(seed)
        top, drops = {7: 0, 8: 0}, 0
        for _ in range(count):
            session = rng.choice([7, 8])
            length = rng.randint(2, 64)
            start = rng.choice([top[session] + 1] * 10 + [top[session] + 5,
                                                          max(1, top[session] - 10)]
                               + [top[session] + 2**30] * bool(top[session]))  # rubbish
            numbers = list(range(start, start + length))
            kind = rng.random()
            if kind < 0.05:
                numbers[rng.randrange(length)] += 1  # a gap inside the train
            elif kind < 0.1:
                drops += 1  # a train dropped just before this one
                numbers = [number + 64 for number in numbers]
            if start < top[session] + 2**30:  # the receiver takes no jump as a new top
                top[session] = max(top[session], numbers[-1])
            datagrams = [message(session, number, flags=1).ljust(size, b"\0")
                         for number in numbers]
            if rng.random() < 0.05:  # one of another session, or one that asks for an ack
                odd = rng.randrange(length)
                datagrams[odd] = message(rng.choice([15 - session, session]), numbers[odd],
                                         flags=rng.choice([0, 1])).ljust(size, b"\0")
            train = b"".join(datagrams)
            yield (train[:-rng.randrange(1, 40)] if rng.random() < 0.03 else train), drops

    def run_both(self, seed, size, quiet=True):
        results = []
        for lane in (True, False):
            receiver = make_receiver(quiet=quiet)
            receiver.drops.train_came()
            taken = 0
            for train, drops in self.trains(seed, size):
                view = memoryview(train)
                if lane and receiver.train_lane.take(view, len(train), size,
                                                     ("10.0.0.1", 5000), None, drops, None, 0):
                    taken += 1
                    continue
                for start in range(0, len(train), size):
                    receiver.handle(view[start:start + size], ("10.0.0.1", 5000), False,
                                    False, None, drops)
            sessions = [(key, stats.highest, stats.lowest, stats.window, stats.received,
                         stats.duplicates, stats.reordered, stats.lost, stats.datagrams,
                         stats.host_lost, stats.drops_at_first, stats.datagrams_before)
                        for key, stats in receiver.sessions.items()]
            lines = [(kind, fields.get("seq")) for kind, _, fields in receiver.out.events]
            results.append((taken, sessions, receiver.received, receiver.taken,
                            receiver.drops.datagrams, receiver.drops.gap_lost, lines,
                            receiver.printer.pacer.unprinted_total, receiver.sock.sent))
        return results

    def test_both_ways_count_the_same(self):
        # 100 bytes: the headers compared a word column at a time; 102: unpacked.
        for seed, size in zip(range(8), [100, 102] * 4):
            with self.subTest(seed=seed, size=size), mock.patch.object(
                    receiver_module.time, "monotonic", lambda: 1000.0):
                (taken, *fast), (_, *slow) = self.run_both(seed, size, quiet=seed % 4 < 2)
                self.assertGreater(taken, 200, "a third of the trains at least go the fast way")
                self.assertEqual(fast, slow)


class FastLaneTest(unittest.TestCase):
    """The receiver's fast lane (FastLane) must send exactly what the long way sends."""

    class Clock:  # one time per datagram, the same for both ways
        now = 1000.0

        def monotonic(self):
            return self.now

    def traffic(self, seed, count=3000):
        """Ordinary, reordered, repeated and hostile datagrams from two hosts."""
        rng, ttls = random.Random(seed), random.Random(-seed)
        highest = {}
        address, session = ("10.0.0.1", 5000), 7
        for _ in range(count):
            if rng.random() < 0.2:  # another sender's turn (runs of one sender are common)
                address = (rng.choice(["10.0.0.1", "10.0.0.2"]), 5000)
                session = rng.choice([7, 8])
            top = highest.get((address, session), 0)
            sequence = rng.choice([top + 1] * 8 + [top + 3, max(1, top - 2), max(1, top - 1),
                                                   top, top + 2**30])
            if sequence < top + 2**30:  # the receiver rejects the jump: it is no new top
                highest[(address, session)] = max(top, sequence)
            kind = rng.choice([1] * 12 + [3, 5])
            flags = rng.choice([0] * 10 + [1, 0x80, 2])
            version = rng.choice([1] * 20 + [2])
            datagram = HEADER.pack(MAGIC, version, kind, flags, session, sequence, 99) + b"data"
            if rng.random() < 0.9:  # as a sender pads it; else too small for the whole ack
                datagram = datagram.ljust(sender_module.REPORT_ROOM if kind == 3
                                          else sender_module.ACK_ROOM, b"\0")
            if flags & 0x80:
                datagram += bytes(16)  # a tag this key-less receiver cannot check
            datagram = rng.choice([datagram] * 20 + [datagram[:20], datagram[:28], b"plain text"])
            ttl = ttls.choice([64] * 10 + [1, None])  # None: a system that does not tell
            yield rng.uniform(0, 0.01), datagram, address, ttl

    def run_both(self, seed):
        clock = self.Clock()
        results = []
        with mock.patch.object(receiver_module, "time", clock):
            for lane in (True, False):
                clock.now = 1000.0
                receiver = make_receiver(max_ack_rate=70)
                buffer = bytearray(receiver_module.MAX_DATAGRAM)  # as read_some() reads
                taken = 0
                for step, datagram, address, ttl in self.traffic(seed):
                    clock.now += step
                    buffer[:len(datagram)] = datagram  # what lies beyond is an older one's
                    answered = lane and receiver.lane.ack_at_once(buffer, len(datagram), address,
                                                                  ttl)
                    taken += answered
                    receiver.handle(datagram, address, False, answered, ttl)
                results.append((receiver, taken))
        return results

    def test_both_ways_send_the_same_answers_and_count_the_same(self):
        for seed in range(3):
            (fast, taken), (slow, _) = self.run_both(seed)
            self.assertGreater(taken, 100, "the fast lane took too few to say anything")
            self.assertLess(taken, len(fast.sock.sent), "only the long way sent some")
            self.assertEqual(fast.sock.sent, slow.sock.sent)
            self.assertEqual(*[(r.received, r.taken, r.malformed, r.plain, r.table.evicted,
                                r.answers.answered, r.answers.rate_limited, r.answers.too_big,
                                {k: s.as_dict() for k, s in r.sessions.items()})
                               for r in (fast, slow)])
            self.assertGreater(slow.answers.rate_limited, 0, "the rate limit was never hit")

    def test_the_highest_sequence_number_has_no_next_one_to_expect(self):
        receiver = make_receiver()
        receiver.handle(message(7, 2**64 - 1), ("10.0.0.1", 5000), False)  # no traceback
        self.assertIsNone(receiver.lane.expected)
        self.assertEqual(len(receiver.sock.sent), 1, "it is still answered")

    def test_the_expected_message_from_another_host_goes_the_long_way(self):
        receiver = make_receiver()
        buffer = bytearray(receiver_module.MAX_DATAGRAM)
        for host, sequence in (("10.0.0.1", 1), ("10.0.0.1", 2), ("10.0.0.2", 3)):
            buffer[:len(message(7, sequence))] = message(7, sequence)
            answered = receiver.lane.ack_at_once(buffer, len(message(7, sequence)), (host, 5000),
                                                 64)
            receiver.handle(message(7, sequence), (host, 5000), False, answered, 64)
            self.assertEqual(answered, sequence == 2, f"message {sequence} from {host}")


class ArrivalTest(unittest.TestCase):
    """How a message arrived: the TTL in acks and reports, hops and the join delay."""

    def test_an_ack_carries_the_ttl_its_message_came_with_and_the_sender_counts_hops(self):
        receiver = make_receiver()
        sender = make_sender(ttl=8)
        sender.sequence = 1
        receiver.handle(message(sender.session, 1), ("10.0.0.1", 5000), False, ttl=5)
        (data, _), = receiver.sock.sent
        reply = sender_module.parse_reply(data)
        kind, record = reply
        self.assertEqual((kind, record.ttl, record.name), ("ack", 5, b"r"))
        sender.on_reply(reply, "10.0.0.2", 0)
        entry = next(iter(sender.peers.values())).as_dict(1, True, 8)
        self.assertEqual((entry["ttl_received"], entry["hops"]), (5, 3))

    def test_without_a_ttl_the_ack_is_as_before_and_hops_are_unknown(self):
        receiver = make_receiver()
        receiver.handle(message(7, 1), ("10.0.0.1", 5000), False)
        (data, _), = receiver.sock.sent
        self.assertEqual(data, ack(7, 1))
        self.assertIsNone(sender_module.parse_reply(data)[1].ttl)

    def test_a_report_tells_the_ttl_and_the_join_delay_of_a_receiver_that_came_late(self):
        receiver = make_receiver()
        receiver.joined = time.monotonic() - 0.25  # it joined a quarter of a second ago
        session, first_sent = 7, 10**12
        first = HEADER.pack(MAGIC, 1, 1, 0, session, 5, first_sent) + bytes(40)
        receiver.handle(first, ("10.0.0.1", 5000), False, ttl=3)
        receiver.handle(message(session, 5, kind=3), ("10.0.0.1", 5000), False, ttl=3)
        kind, report = sender_module.parse_reply(receiver.sock.sent[-1][0])
        ttl, join_us, echoed = report.arrival
        self.assertEqual((kind, ttl, echoed), ("report", 3, first_sent))
        self.assertAlmostEqual(join_us / 1e6, 0.25, delta=0.05)
        late = sender_module.Peer("10.0.0.1", "r")
        sender_module.take_report(late, report, 8, first_sent - 10**9)  # we began a second before
        self.assertEqual((late.ttl_received, round(late.join_to_first_ms / 250)), (3, 1))
        early = sender_module.Peer("10.0.0.1", "r")
        sender_module.take_report(early, report, 8, first_sent - 10**6)  # there before we began
        self.assertIsNone(early.join_to_first_ms)


class ErrorEventTest(unittest.TestCase):
    def test_an_answer_that_cannot_be_sent_is_an_error_event_with_the_readmes_fields(self):
        from .test_trust_lab import readme_json_fields

        class Unreachable(FakeSocket):
            def sendto(self, data, destination):
                raise OSError(101, "Network is unreachable")

        receiver = make_receiver()
        receiver.answers.sock = Unreachable()
        receiver.handle(message(7, 1), ("10.0.0.1", 5000), False)
        [(kind, line, fields)] = receiver.out.events
        self.assertEqual((kind, line), ("error", "could not answer 10.0.0.1: "
                                                 "Network is unreachable"))
        self.assertEqual(set(fields), readme_json_fields()["receiver", "error"])


class RateLimitTest(unittest.TestCase):
    def test_a_burst_after_an_idle_time_gets_one_second_of_answers_not_more(self):
        clock = [1000.0]
        with mock.patch.object(receiver_module.time, "monotonic", lambda: clock[0]):
            limit = receiver_module.RateLimit(10)

            def burst(count):
                allowed = 0
                for _ in range(count):
                    if limit.allow("10.0.0.1"):
                        limit.spend("10.0.0.1")
                        allowed += 1
                return allowed
            self.assertEqual(burst(50), 10)  # a full bucket: one second's worth
            clock[0] += 0.5
            self.assertEqual(burst(50), 5)  # half a second refills half of it
            clock[0] += 3600  # an hour of silence fills the bucket only to its cap
            self.assertEqual(burst(1000), 10)
            self.assertEqual(burst(1), 0)
            self.assertTrue(limit.allow("10.0.0.2"), "another address has its own bucket")


class ExpectationTest(unittest.TestCase):
    def test_a_count_a_list_or_a_file(self):
        parse = sender_module.parse_expectation
        self.assertEqual(parse("3"), (3, []))
        self.assertEqual(parse("left, 10.0.0.9,left"), (2, ["left", "10.0.0.9"]))
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as roster:
            roster.write("# the class\nleft\n\n  right  # second row\n")
        self.assertEqual(parse("@" + roster.name), (2, ["left", "right"]))
        with self.assertRaises(argparse.ArgumentTypeError):
            parse("@" + roster.name + ".missing")


class SharedBlocksTest(unittest.TestCase):
    """The measuring pair's shared code has one source (blocks/); the textbook pair shares none."""

    EXPECTED = {"socket_multicast_sender.py": ["protocol", "authentication", "output",
                                               "arguments", "signals", "pipe", "counting", "receiving",
                                               "board_page"],
                "socket_multicast_receiver.py": ["protocol", "authentication", "output",
                                                 "arguments", "signals", "pipe", "counting",
                                                 "receiving"],
                "lab/querier.py": ["labcli"], "lab/bystander.py": ["labcli"]}

    def test_each_socket_script_holds_its_blocks_as_blocks_has_them(self):
        sync = support.load("blocks/sync.py")
        for name, expected in self.EXPECTED.items():
            with open(support.script(name), encoding="utf-8") as source:
                text = source.read()
            self.assertEqual(sync.blocks_in(text), expected, name)
            self.assertTrue(text == sync.synced(text),
                            f"{name} differs from blocks/: run python3 blocks/sync.py")
        self.assertEqual(sync.main(["--check"]), 0)

    def test_the_textbook_pair_repeats_no_run_of_six_lines(self):
        def runs(name):
            with open(support.script(name), encoding="utf-8") as source:
                lines = [line.strip() for line in source if line.strip()
                         and not line.strip().startswith(("#", "import ", "from "))]
            return {tuple(lines[start:start + 6]) for start in range(len(lines) - 5)}
        shared = runs("multicast_sender.py") & runs("multicast_receiver.py")
        self.assertEqual(shared, set())



class SessionDropsTest(unittest.TestCase):
    """The host's drops per session: from the session's first datagram to its report,
    by the kernel's count of the moment where it tells one, flagged when other
    traffic shared the socket meanwhile; and since the socket opened in the summary."""

    SOURCE = ("10.0.0.1", 5000)

    def report_of(self, receiver):
        """The drops and the SHARED_DROPS flag of the latest answer, a report."""
        data = receiver.sock.sent[-1][0]
        self.assertEqual(data[5], 4, "a report")
        drops = receiver_module.REPORT_EXTRA.unpack_from(data, HEADER.size)[5]
        return drops, bool(data[6] & receiver_module.SHARED_DROPS)

    def session(self, receiver, session, stamps, kernel=None, between=()):
        """Messages of session (one per stamp: the drop count each was queued with), each
        followed by the datagrams in between, then its end of run with the kernel's
        count then (None: a kernel that does not tell)."""
        for sequence, stamp in enumerate(stamps, 1):
            receiver.handle(message(session, sequence, flags=1), self.SOURCE, False,
                            drops=stamp)
            for datagram, source in between:
                receiver.handle(datagram, source, False, drops=stamp)
        with mock.patch.object(receiver_module, "kernel_drops", lambda sock: kernel):
            receiver.handle(message(session, len(stamps), kind=3, flags=1), self.SOURCE,
                            False, drops=stamps[-1])
        return self.report_of(receiver)

    def test_a_flooded_session_then_a_clean_one_each_reports_its_own_drops(self):
        receiver = make_receiver()
        # 40 dropped before the session began, 55 while it lasted: the stamps lag (the
        # last datagram queued says 60), the kernel's count at the report does not.
        self.assertEqual(self.session(receiver, 7, [40, 40, 60], kernel=95), (55, False))
        self.assertEqual(self.session(receiver, 8, [95, 95], kernel=95), (0, False))
        with mock.patch.object(receiver_module, "kernel_drops", lambda sock: 95):
            receiver_module.print_summary(receiver)
        [(_, text, fields)] = [e for e in receiver.out.events if e[0] == "summary"]
        self.assertEqual(fields["host_drops"], 95, "since the socket opened")
        self.assertEqual([(s["session"][-1], s["host_drops"], s["shared_drops"])
                          for s in fields["senders"]], [("7", 55, False), ("8", 0, False)])
        self.assertIn("this host dropped 95 datagrams since the socket opened", text)
        self.assertIn("55 dropped by this host while it lasted", text)

    def test_without_the_kernels_count_the_stamps_are_used(self):
        receiver = make_receiver()
        self.assertEqual(self.session(receiver, 7, [3, 3, 10], kernel=None), (7, False))

    def test_other_traffic_during_a_session_is_flagged(self):
        receiver = make_receiver()
        self.assertEqual(self.session(receiver, 7, [0, 0], kernel=0), (0, False))
        text = [(b"plain text", ("10.0.0.2", 6000))]
        self.assertEqual(self.session(receiver, 8, [0, 2], kernel=5, between=text), (5, True))
        other = [(message(9, 1, flags=1), ("10.0.0.3", 7000))]  # another session, at once
        self.assertEqual(self.session(receiver, 10, [5], kernel=5, between=other), (0, True))
        self.assertEqual(self.session(receiver, 11, [5, 5, 5], kernel=5), (0, False))
        with mock.patch.object(receiver_module, "kernel_drops", lambda sock: 8):
            receiver_module.print_summary(receiver)  # session 9 still going: up to now
        [(_, text, fields)] = [e for e in receiver.out.events if e[0] == "summary"]
        nine = [s for s in fields["senders"] if s["session"].endswith("9")]
        self.assertEqual([(s["host_drops"], s["shared_drops"]) for s in nine], [(3, True)])
        self.assertIn("other traffic came too", text)

    def test_with_trains_the_gaps_where_the_count_went_up_are_the_hosts(self):
        receiver = make_receiver()
        receiver.drops.train_came()  # the kernel counts a train it drops as one drop
        def take(sequences, stamp, kind=1):
            for sequence in sequences:
                receiver.handle(message(7, sequence, kind=kind, flags=1), self.SOURCE, False,
                                drops=stamp)
        take(range(1, 9), 0)
        take(range(17, 25), 1)  # 9 to 16, a train, dropped here: the count went up by one
        take(range(31, 33), 1)  # 25 to 30 lost on the way: the count stayed
        take([40], 2, kind=3)  # the end of run at 40; 33 to 40 dropped here before it
        self.assertEqual(self.report_of(receiver), (16, False))
        [stats] = receiver.sessions.values()
        self.assertEqual(stats.lost, 22)
        receiver_module.print_summary(receiver)
        [(_, text, fields)] = [e for e in receiver.out.events if e[0] == "summary"]
        self.assertEqual((fields["host_drops"], fields["senders"][0]["host_drops"]), (16, 16))

    def test_the_kernels_own_count_is_this_sockets_drops_column(self):
        import socket
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            support.skip_unless(receiver_module.kernel_drops(sock) is not None,
                                "this kernel does not tell a socket's drops (SO_MEMINFO, "
                                "Linux 4.12 and later)")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.bind(("127.0.0.1", 0))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                for _ in range(50):
                    sender.sendto(bytes(1000), sock.getsockname())
            port = f"{sock.getsockname()[1]:04X}"
            with open("/proc/net/udp") as table:
                [column] = [int(line.split()[-1]) for line in table
                            if line.split()[1] == f"0100007F:{port}"]
            self.assertGreater(column, 0)
            self.assertEqual(receiver_module.kernel_drops(sock), column)
            self.assertIsNone(receiver_module.kernel_drops(sock, platform="darwin"))
        self.assertIsNone(receiver_module.kernel_drops(sock), "a closed socket")
        self.assertIsNone(receiver_module.kernel_drops(FakeSocket()))


class RateLimitTableTest(unittest.TestCase):
    """The rate limit's table of addresses, full of spoofed ones, locks nobody out and
    buys nobody a burst; what it refuses is counted apart from the rate limit's own."""

    def setUp(self):
        self.clock = [1000.0]
        patcher = mock.patch.object(receiver_module.time, "monotonic", lambda: self.clock[0])
        patcher.start()
        self.addCleanup(patcher.stop)
        self.spoofed = (f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
                        for n in range(1 << 16, 1 << 24))

    def fill(self, receiver, count=receiver_module.MAX_SESSIONS + 100):
        """Text from count new spoofed addresses (more than the table holds), 10 us apart."""
        for _ in range(count):
            receiver.handle(b"spoofed", (next(self.spoofed), 4000), False)
            self.clock[0] += 0.00001

    def test_a_new_sender_is_answered_every_time_while_spoofed_addresses_fill_it(self):
        receiver = make_receiver()  # --max-ack-rate 1000
        real = ("192.0.2.7", 5000)
        for sequence in range(1, 21):
            self.fill(receiver)  # pushes the real sender out of the table each time
            receiver.handle(message(5, sequence), real, False)
            self.clock[0] += 0.01
        acks = [HEADER.unpack_from(data)[5] for data, to in receiver.sock.sent if to == real]
        self.assertEqual(acks, list(range(1, 21)))
        limit = receiver.answers.limit
        self.assertLessEqual(len(limit.buckets), receiver_module.MAX_SESSIONS)
        self.assertGreater(limit.evicted, 20 * 100)
        self.assertEqual((limit.rate_limited, limit.table_full), (0, 0))

    def test_churning_the_table_buys_no_burst_and_is_counted_apart(self):
        receiver = make_receiver(max_ack_rate=10)
        victim = ("192.0.2.9", 5000)

        def burst():
            before = len(receiver.sock.sent)
            for _ in range(50):
                receiver.handle(b"spoofed as the victim", victim, False)
            return sum(to == victim for _, to in receiver.sock.sent[before:])
        self.assertEqual(burst(), 10, "a bucket holds one second's worth")
        self.fill(receiver)
        self.assertEqual(burst(), 1, "back in a full table: one answer's worth, not ten")
        self.assertEqual((receiver.answers.rate_limited, receiver.answers.table_full), (40, 49))
        receiver_module.print_summary(receiver)
        [(_, text, fields)] = [e for e in receiver.out.events if e[0] == "summary"]
        self.assertEqual((fields["rate_limited"], fields["table_full"]), (40, 49))
        self.assertGreater(fields["addresses_evicted"], 100)
        self.assertIn("49 answers were refused to newcomers", text)
        self.clock[0] += 1.0  # a second later its bucket is like any other
        self.assertEqual(burst(), 10)


class NoWaitTest(unittest.TestCase):
    """An answer goes out at once or not at all: never a wait for room to send."""

    def test_an_answer_with_no_room_is_counted_not_waited_for(self):
        import errno
        import socket

        class FullBuffer(socket.socket):
            def sendto(self, *arguments):
                self.calls.append(arguments)
                raise OSError(self.errors.pop(0), "no room")

        full = FullBuffer(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(full.close)
        full.calls, full.errors = [], [errno.EAGAIN, errno.EAGAIN, errno.ENOBUFS]
        receiver = make_receiver()
        receiver.sock = receiver.answers.sock = receiver.lane.sock = full
        receiver.handle(message(7, 1), ("10.0.0.1", 5000), False)
        receiver.handle(b"plain text", ("10.0.0.1", 5000), False)
        receiver.handle(message(8, 1, kind=3), ("10.0.0.1", 5000), False)
        self.assertEqual([arguments[1] for arguments in full.calls], [socket.MSG_DONTWAIT] * 3)
        self.assertEqual((receiver.answers.not_sent, receiver.answers.answered), (3, {}))
        self.assertEqual(receiver.out.events, [], "no line for each answer not sent")
        receiver_module.print_summary(receiver)
        [(_, text, fields)] = [e for e in receiver.out.events if e[0] == "summary"]
        self.assertEqual(fields["not_sent"], 3)
        self.assertIn("3 answers not sent: the socket's send buffer was full", text)


if __name__ == "__main__":
    unittest.main()
