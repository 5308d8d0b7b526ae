"""The sender's rows, in-process: one per receiver's life, found by an index, bounded
against forged names, and merged only in what is printed."""

import time
import unittest
from unittest import mock

from .test_counting import ack, make_sender, report, sender_module

SECOND = 1_000_000_000


def take(sender, data, address="10.0.0.2", at_ns=None):
    at_ns = time.monotonic_ns() if at_ns is None else at_ns
    sender.on_reply(sender_module.parse_reply(data), address, at_ns)


def send(sender, count, at_ns):
    """As if count messages went out at at_ns: their sequence numbers, open."""
    first = sender.sequence + 1
    for sequence in range(first, first + count):
        sender.open.append((at_ns, sequence))
    sender.sequence += count
    sender.last_send_ns = at_ns
    return range(first, first + count)


def answered_once(count, prefix=b"r"):
    """A sender after one message, answered by count receivers named prefix0, prefix1..."""
    sender = make_sender()
    now = time.monotonic_ns()
    send(sender, 1, now)
    for number in range(count):
        take(sender, ack(sender.session, 1, now, name=prefix + b"%d" % number), at_ns=now)
    return sender, now


def summary(sender, short_rounds=0):
    sender.close_all()
    reasons = sender_module.print_summary(sender, short_rounds)
    [(_, text, fields)] = [e for e in sender.out.events if e[0] == "summary"]
    return reasons, text, fields


class OneRowPerLifeTest(unittest.TestCase):
    def test_two_namesakes_in_throughput_mode_trailing_acks_invent_nothing(self):
        # Acks always trail the sends in throughput mode: each of two receivers with one
        # name on one host answers every message, one of them a few messages behind.
        sender = make_sender(rate=1000.0, max_loss=0.0)
        start = time.monotonic_ns()
        for step in range(300):
            now = start + step * 1_000_000
            [sequence] = send(sender, 1, now)
            take(sender, ack(sender.session, sequence, now, instance=3), at_ns=now + 100)
            if sequence > 5:  # the second one started later, and answers 5 behind
                late = sequence - 5
                take(sender, ack(sender.session, late, start + (late - 1) * 1_000_000, instance=9),
                     at_ns=now + 200)
        for late in range(296, 301):
            take(sender, ack(sender.session, late, start + (late - 1) * 1_000_000, instance=9),
                 at_ns=now + 300)
        reasons, text, fields = summary(sender)
        rows = {row["instance"]: row for row in fields["receivers"]}
        self.assertEqual(sorted(rows), [3, 9])
        self.assertEqual([(row["acks"], row["duplicates"], row["restarts"])
                          for row in (rows[3], rows[9])], [(300, 0, 0)] * 2)
        self.assertEqual((rows[3]["lost"], rows[9]["lost"]), (0, 0))
        self.assertEqual(reasons, [])
        self.assertIn("two or more receivers answer as 'r' from 10.0.0.2", text)
        self.assertNotIn("restarted", text)

    def test_a_restart_between_rounds_is_one_receiver_told_as_restarted(self):
        sender = make_sender(max_loss=50.0)
        start = time.monotonic_ns()
        for round_number in range(1, 11):
            now = start + round_number * SECOND
            send(sender, 1, now)
            instance = 3 if round_number <= 4 else 9  # restarted after round 4 ...
            if round_number not in (5, 6):  # ... and back for round 7
                take(sender, ack(sender.session, round_number, now, instance=instance),
                     at_ns=now + 1000)
            sender.close_all()
        take(sender, report(sender.session, 10, 4, 0, instance=9), at_ns=start + 11 * SECOND)
        reasons, text, fields = summary(sender)
        [row] = fields["receivers"]
        self.assertEqual((row["acks"], row["lost"], row["duplicates"], row["restarts"]),
                         (8, 2, 0, 1))
        self.assertEqual(row["instance"], 9)
        self.assertIn("restarted 1 time during the run", text)
        self.assertNotIn("two or more receivers", text)
        self.assertIn("its report (from its latest start): 4 received", text)
        self.assertIn("2 unacked (its report covers only its latest start", text)
        self.assertNotIn("no report came", text)
        self.assertEqual(reasons, [])

    def test_lives_that_overlap_in_time_are_never_merged(self):
        sender = make_sender()
        now = time.monotonic_ns()
        send(sender, 3, now)
        take(sender, ack(sender.session, 1, now, instance=3), at_ns=now + 10)
        take(sender, ack(sender.session, 2, now, instance=9), at_ns=now + 20)  # after 3's
        take(sender, ack(sender.session, 3, now, instance=3), at_ns=now + 30)  # 3 again
        rows = sender_module.receivers(sender)
        self.assertEqual(len(rows), 2)
        self.assertTrue(all(row.namesake for row, _ in rows))

    def test_the_round_line_does_not_call_a_restarted_receiver_missing(self):
        sender = make_sender()
        start = time.monotonic_ns()
        for round_number, instance in ((1, 3), (2, 9)):
            now = start + round_number * SECOND
            send(sender, 1, now)
            sender.round_open = True
            take(sender, ack(sender.session, round_number, now, instance=instance),
                 at_ns=now + 1000)
            sender.close_all()
            self.assertTrue(sender_module.print_round(sender))
        line = [e for e in sender.out.events if e[0] == "round"][-1]
        self.assertEqual((line[2]["missing"], len(line[2]["acks"])), ([], 1), line[1])

    def test_a_reply_never_scans_the_rows(self):
        sender, now = answered_once(50, b"n")

        class NoScan(dict):
            def __iter__(self):
                raise AssertionError("a reply scanned the rows")
            values = items = keys = __iter__

        sender.peers = NoScan(sender.peers)
        sender.lives = NoScan(sender.lives)
        take(sender, ack(sender.session, 1, now, name=b"new"), at_ns=now)
        take(sender, ack(sender.session, 1, now, name=b"n7", instance=8), at_ns=now)
        self.assertEqual(len(sender.peers), 52)


class ForgedNamesTest(unittest.TestCase):
    def test_new_rows_a_second_are_capped_and_the_rest_counted(self):
        sender = make_sender()
        now = time.monotonic_ns()
        send(sender, 1, now)
        second = (now // SECOND + 1) * SECOND  # all at the start of one second
        for number in range(1500):
            take(sender, ack(sender.session, 1, now, name=b"f%d" % number), at_ns=second)
        cap = sender_module.NEW_PEERS_PER_SECOND
        self.assertEqual((len(sender.peers), sender.counts["untracked"]), (cap, 1500 - cap))
        take(sender, ack(sender.session, 1, now, name=b"next"), at_ns=second + SECOND)
        self.assertEqual(len(sender.peers), cap + 1, "the next second takes new ones again")

    def test_open_acks_stay_within_their_budget_and_the_summary_is_exact(self):
        sender = make_sender()
        now = time.monotonic_ns()
        sequences = send(sender, 400, now)
        with mock.patch.object(sender_module, "OPEN_ACKS_BUDGET", 100):
            for name in (b"a", b"b", b"c"):
                for sequence in sequences:
                    take(sender, ack(sender.session, sequence, now, name=name), at_ns=now)
                    self.assertLessEqual(sender.open_entries[0], 100)
        self.assertEqual(sum(len(p.open_acks) for p in sender.peers.values()),
                         sender.open_entries[0])
        _, _, fields = summary(sender)
        self.assertEqual([(row["acks"], row["lost"]) for row in fields["receivers"]],
                         [(400, 0)] * 3)

    def test_rows_beyond_the_first_hundred_keep_smaller_rtt_samples(self):
        sender = make_sender()
        now = time.monotonic_ns()
        send(sender, 1, now)
        for number in range(1001):
            take(sender, ack(sender.session, 1, now, name=b"r%d" % number),
                 at_ns=now + number // 900 * SECOND)
        rooms = [peer.rtt.room for peer in sender.peers.values()]
        self.assertEqual((rooms[0], rooms[100], rooms[1000]), sender_module.RTT_SAMPLES)

    def test_the_board_builds_at_most_its_rows_and_counts_the_rest(self):
        sender, _ = answered_once(250)
        with mock.patch.object(sender_module.Peer, "as_dict", autospec=True,
                               side_effect=sender_module.Peer.as_dict) as built:
            state = sender_module.board_state(sender)
        self.assertEqual(built.call_count, sender_module.MAX_BOARD_ROWS)
        self.assertEqual((len(state["receivers"]), state["not_shown"], state["answering"]),
                         (sender_module.MAX_BOARD_ROWS, 50, 250))
        self.assertIn("  and 50 more receivers, not shown", sender_module.board_lines(state))


class LateIsByTimeTest(unittest.TestCase):
    def test_an_ack_in_time_far_out_of_order_counts_and_is_unchecked(self):
        peer = sender_module.Peer("10.0.0.2", "r")
        window = sender_module.SEQUENCE_WINDOW
        self.assertEqual(peer.take(window + 10, 1.0, True, False, 0), "ack")
        self.assertEqual(peer.take(5, 1.0, True, False, 0), "ack")
        self.assertEqual(peer.take(6, 1.0, False, False, 0), "late")
        self.assertEqual((peer.acks, peer.late, peer.unchecked, peer.duplicates), (2, 1, 2, 0))
        self.assertEqual(peer.take(window + 10, 1.0, True, False, 0), "duplicate")


class TooLateTest(unittest.TestCase):
    def test_a_message_beyond_the_receivers_window_is_too_late_not_lost_nor_duplicate(self):
        from .test_counting import make_receiver, message
        receiver = make_receiver(max_ack_rate=0)  # no rate limit: every answer goes
        window = sender_module.SEQUENCE_WINDOW
        for sequence in [*range(2, window + 11), 1]:  # 1 comes last, 4,105 places late
            receiver.handle(message(7, sequence), ("10.0.0.1", 5000), False)
        receiver.handle(message(7, window + 10, kind=3), ("10.0.0.1", 5000), False)
        [stats] = receiver.sessions.values()
        self.assertEqual((stats.received, stats.too_late, stats.duplicates, stats.lost),
                         (window + 9, 1, 0, 0))
        self.assertEqual(len(receiver.answers.sock.sent), window + 11, "each answered")

    def test_with_a_key_a_message_beyond_the_window_is_refused(self):
        from .test_counting import make_receiver, receiver_module
        key = b"k" * 16
        receiver = make_receiver(key=key)
        window = sender_module.SEQUENCE_WINDOW

        def signed(sequence):
            data = sender_module.HEADER.pack(b"MCK1", 1, 1, 0x80, 7, sequence, 0) + b"d" * 40
            return receiver_module.sign(data, receiver_module.Key(key))

        for sequence in (window + 10, 1):
            receiver.handle(signed(sequence), ("10.0.0.1", 5000), False)
        [stats] = receiver.sessions.values()
        self.assertEqual((stats.received, stats.too_late), (1, 0))
        self.assertEqual(len(receiver.answers.sock.sent), 1, "the old one is not answered")


class UnsentTest(unittest.TestCase):
    def test_an_ack_a_full_send_buffer_refused_is_told_in_the_report(self):
        import errno
        from .test_counting import FakeSocket, make_receiver, message

        class FullBuffer(FakeSocket):
            def sendto(self, data, destination):
                if data[5] == 2:  # acks: the buffer is full; the report gets through
                    raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
                super().sendto(data, destination)

        receiver = make_receiver()
        receiver.answers.sock = FullBuffer()
        for sequence in (1, 2, 3):
            receiver.handle(message(7, sequence), ("10.0.0.1", 5000), False)
        receiver.handle(message(7, 3, kind=3), ("10.0.0.1", 5000), False)
        [(data, _)] = receiver.answers.sock.sent
        kind, report = sender_module.parse_reply(data)
        self.assertEqual((kind, report.received, report.unsent), ("report", 3, 3))
        self.assertEqual(receiver.answers.not_sent, 3)

    def test_records_pack_and_unpack_to_themselves(self):
        arrival = sender_module.Arrival(3, 250, 10**12)
        report = sender_module.Report(0x04, 7, 9, 11, 5, 12, 8, 1, 0, 2, 3, 4, arrival, b"r")
        self.assertEqual(sender_module.unpack_report(sender_module.pack_report(report)),
                         report._replace(flags=report.flags | 0x08 | 0x10))
        ack = sender_module.Ack(0x02, 7, 9, 11, 5, 12, 64, "é".encode() * 3)
        self.assertEqual(sender_module.unpack_ack(sender_module.pack_ack(ack)),
                         ack._replace(flags=0x12))
        cut = sender_module.pack_ack(ack, sender_module.HEADER.size + 5 + 3)  # 1.5 characters
        self.assertEqual(sender_module.unpack_ack(cut).name, "é".encode())
        self.assertIsNone(sender_module.pack_ack(ack, sender_module.HEADER.size))


class HostDropsTest(unittest.TestCase):
    def test_host_drops_explain_no_more_than_the_sessions_own_loss(self):
        sender = make_sender(no_ack=True, rate=100.0, max_loss=1.0)
        now = time.monotonic_ns()
        send(sender, 2000, now)
        # 175 lost on the network; its socket dropped 16362 of other traffic before.
        take(sender, report(sender.session, 2000, 1825, 175, host_drops=16362), at_ns=now)
        reasons, text, fields = summary(sender)
        [row] = fields["receivers"]
        self.assertEqual((row["loss"]["there"], row["loss"]["host"]), (0, 175))
        # The receiver tells what its socket dropped in the session; this one more than
        # its loss: not its messages only, but they are all the loss it can explain.
        self.assertEqual(reasons, [])

    def test_shared_drops_are_said_to_be_shared(self):
        sender = make_sender(no_ack=True, rate=100.0)
        now = time.monotonic_ns()
        send(sender, 100, now)
        data = bytearray(report(sender.session, 100, 90, 10, host_drops=10))
        data[6] |= sender_module.SHARED_DROPS
        take(sender, bytes(data), at_ns=now)
        _, text, fields = summary(sender)
        self.assertIn("its socket took other traffic too", text)
        self.assertTrue(fields["receivers"][0]["loss"]["host_shared"])


if __name__ == "__main__":
    unittest.main()
