"""The socket pair: protocol, statistics against a known truth, JSON, exit statuses."""

import collections
import select
import signal
import socket
import struct
import threading
import time
import unittest

from . import support
from .support import GROUP, json_lines, summary_of

HEADER = struct.Struct("!4sBBBxQQQ")  # the wire protocol's header, version 1, as in docs/measuring.md


# A receiver that answers every message exactly 80 ms after it came (--ack-jitter would
# be random, and now and then as quick as the others): argv[1] is the port.
SLOW_RECEIVER = f"""
import socket, struct, sys, time
HEADER = struct.Struct("!4sBBBxQQQ")
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("{GROUP}", int(sys.argv[1])))
sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                socket.inet_aton("{GROUP}") + socket.inet_aton("127.0.0.1"))
print("ready", flush=True)
while True:
    data, source = sock.recvfrom(65535)
    _, _, kind, _, session, sequence, sent = HEADER.unpack_from(data)
    if kind == 1:
        time.sleep(0.08)
        ack = bytearray(HEADER.pack(b"MCK1", 1, 2, 0, session, sequence, sent))
        ack[7] = 1  # its instance
        sock.sendto(bytes(ack) + struct.pack("!I", 0) + b"slow", source)
"""


class LocalTest(support.LocalCase):
    """Sender and receivers over 127.0.0.1."""

    def receiver(self, name, *arguments, port=None):
        return super().receiver("--name", name, *arguments, port=port)

    def test_the_join_delay_is_measured_only_for_a_receiver_that_joined_late(self):
        self.receiver("early")
        sender = self.start("socket_multicast_sender.py", "--rate", "100", "--count", "300",
                            "--json")
        self.assertTrue(support.wait_until(lambda: len(sender.lines) >= 1, 5))
        support.wait_until(lambda: False, 0.5)  # the stream flows before the next one joins
        self.receiver("late")
        self.assertEqual(sender.wait(20), 0, sender.stderr)
        by_name = {entry["name"]: entry for entry in json_lines(sender.lines)[-1]["receivers"]}
        self.assertIsNone(by_name["early"]["join_to_first_ms"], "it was there before us")
        self.assertIsNotNone(by_name["late"]["join_to_first_ms"], by_name["late"])
        self.assertGreaterEqual(by_name["late"]["join_to_first_ms"], 0)
        self.assertEqual(by_name["late"]["hops"], 0)

    def test_round_lines_summary_and_board_tell_one_story(self):
        """One run with rounds cut short (--expect) and a late joiner: a round lists only
        acks of its own message that came while it was open, a receiver it did not wait
        for is not missing, and the board's last state gives each receiver the summary's
        acks and loss."""
        self.receiver("a", "--ack-jitter", "0")
        self.receiver("b", "--ack-jitter", "0")
        slow = self.track(support.Watched([support.PYTHON, "-c", SLOW_RECEIVER, str(self.port)]))
        self.assertTrue(slow.wait_for_line("ready"), slow.stderr)  # answers after its round
        sender = self.start("socket_multicast_sender.py", "--count", "20", "--interval",
                            "0.15", "--timeout", "0.5", "--expect", "a,b", "--json", "--live")
        self.assertTrue(support.wait_until(lambda: len(support.events(sender, "round")) >= 4,
                                           10), sender.stderr)
        self.receiver("late", "--ack-jitter", "0")  # missed the first rounds
        self.assertEqual(sender.wait(30), 0, sender.stderr)
        rounds = support.events(sender, "round")
        listed = collections.Counter(ack["name"] for event in rounds for ack in event["acks"])
        for event in rounds:
            self.assertEqual(event["missing"], [], event)  # every round was cut short
            self.assertNotIn("slow", {ack["name"] for ack in event["acks"]}, event)
        self.assertEqual(sum("slow" in {entry["name"] for entry in event["not_waited_for"]}
                             for event in rounds), 19, rounds)  # all but the first
        summary = summary_of(sender)
        by_name = {entry["name"]: entry for entry in summary["receivers"]}
        self.assertEqual((listed["a"], listed["b"]), (20, 20))
        # Its acks came in time, after their rounds: counted, never lost or late.
        self.assertEqual([by_name["slow"][count] for count in ("acks", "late", "lost")],
                         [20, 0, 0], by_name["slow"])
        # Loss counts from the sender's first message: the rounds before it joined.
        self.assertGreaterEqual(by_name["late"]["lost"], 3, by_name["late"])
        self.assertEqual(sum(by_name["late"][count] for count in ("lost", "acks", "late")), 20,
                         by_name["late"])
        board = support.events(sender, "board")[-1]
        self.assertTrue(board["stopped"])
        rows = {row["name"]: row for row in board["receivers"]}
        for entry in summary["receivers"]:
            self.assertEqual((rows[entry["name"]]["acks"], rows[entry["name"]]["loss_pct"]),
                             (entry["acks"], entry["loss_pct"]), (entry, board))

    def test_a_textbook_receiver_in_throughput_mode_is_counted_by_address_alone(self):
        """Its b'ack' names no message: at 1,000 a second, no loss, duplicate or RTT is
        made up for it; its replies are counted for its address."""
        receiver = self.track(support.Watched(support.python_script(
            "multicast_receiver.py", "-i", "127.0.0.1", "-p", str(self.port))))
        self.assertTrue(receiver.wait_for_line("waiting to receive message"), receiver.stderr)
        sender = self.start("socket_multicast_sender.py", "--rate", "1000", "--count", "1000",
                            "--json")
        self.assertEqual(sender.wait(30), 0, sender.output() + sender.stderr)
        summary = summary_of(sender)
        self.assertEqual(summary["receivers"], [], summary)
        [plain] = summary["plain_acks"]
        self.assertEqual(plain["address"], "127.0.0.1")
        self.assertGreaterEqual(plain["replies"], 990)
        self.assertLessEqual(plain["replies"], 1000)

    def test_json_summary_counts_every_ack_of_every_receiver(self):
        self.receiver("left")
        self.receiver("right")
        sender = self.start("socket_multicast_sender.py", "--count", "3", "--interval", "0.05",
                            "--expect", "2", "--json")
        self.assertEqual(sender.wait(20), 0, sender.stderr)
        events = json_lines(sender.lines)
        self.assertEqual(len(events), len(sender.lines), "every line is one JSON object")
        self.assertEqual([e["type"] for e in events], ["start", "round", "round", "round",
                                                        "summary"])
        summary = events[-1]
        self.assertEqual(summary["sent"], 3)
        self.assertEqual((summary["stray"], summary["malformed"]), (0, 0))
        by_name = {r["name"]: r for r in summary["receivers"]}
        self.assertEqual(sorted(by_name), ["left", "right"])
        for entry in by_name.values():
            self.assertEqual(entry["address"], "127.0.0.1")
            self.assertEqual((entry["acks"], entry["lost"], entry["duplicates"],
                              entry["reordered"], entry["loss_pct"]), (3, 0, 0, 0, 0.0))
            rtt = entry["rtt_ms"]
            self.assertLessEqual(rtt["min"], rtt["p50"])
            self.assertLessEqual(rtt["p50"], rtt["p99"])
            self.assertLessEqual(rtt["p99"], rtt["max"])
            self.assertLessEqual(rtt["min"], rtt["avg"])
            self.assertLessEqual(rtt["avg"], rtt["max"])
            self.assertGreaterEqual(rtt["mdev"], 0)
        for event in events[1:4]:
            self.assertTrue(event["ok"])
            self.assertEqual(sorted(a["name"] for a in event["acks"]), ["left", "right"])

    def test_too_few_receivers_is_exit_1(self):
        self.receiver("only")
        sender = self.start("socket_multicast_sender.py", "--count", "2", "--interval", "0",
                            "--expect", "2")
        self.assertEqual(sender.wait(20), 1)
        self.assertEqual(sender.stderr.splitlines(), [
            "socket_multicast_sender.py: 2 of 2 rounds heard from fewer than 2 receivers"])
        self.assertTrue(all("(expected 2)" in line for line in sender.lines
                            if line.startswith("seq ")))

    def test_with_expect_a_round_ends_once_every_expected_receiver_answered(self):
        self.receiver("left")
        self.receiver("right")
        # With a 60 s timeout, whole rounds would take 5 minutes: this sender is done in 30 s.
        sender = self.start("socket_multicast_sender.py", "--count", "5", "--interval", "0",
                            "--timeout", "60", "--expect", "left,right", "--json")
        self.assertEqual(sender.wait(30), 0, sender.output() + sender.stderr)
        self.assertEqual([len(r["acks"]) for r in support.events(sender, "round")], [2] * 5)

    def test_an_expected_receiver_given_by_its_address(self):
        self.receiver("left")
        sender = self.start("socket_multicast_sender.py", "--count", "2", "--interval", "0",
                            "--expect", "127.0.0.1")
        self.assertEqual(sender.wait(20), 0, sender.output() + sender.stderr)
        sender = self.start("socket_multicast_sender.py", "--count", "2", "--interval", "0",
                            "--expect", "127.0.0.1,127.0.0.9", "--json")
        self.assertEqual(sender.wait(20), 1)
        [entry] = [r for r in summary_of(sender)["receivers"] if r.get("listed")]
        self.assertEqual((entry["listed"], entry["acks"]), ("127.0.0.9", 0))

    def test_rubbish_is_counted_malformed_and_valid_messages_still_answered(self):
        receiver = self.receiver("sturdy")
        rubbish = [b"\xff\xfe\x00binary", b"MCK1", b"MCK1" + bytes([9]) + bytes(40),
                   HEADER.pack(b"MCK1", 1, 2, 0, 1, 1, 1), HEADER.pack(b"MCK1", 1, 7, 0, 1, 1, 1)]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                            socket.inet_aton("127.0.0.1"))
            for datagram in rubbish + [b"", b"ok"]:
                sock.sendto(datagram, (GROUP, self.port))
            answered = select.select([sock], [], [], 2)[0] and sock.recv(100)
        # Empty and two-byte text is plain text, but b'ack' would be larger: no answer.
        self.assertEqual(answered, [], "no answer larger than the datagram")
        sender = self.start("socket_multicast_sender.py", "--json")
        self.assertEqual(sender.wait(20), 0, sender.stderr)
        summary = self.stop(receiver)
        self.assertEqual((summary["malformed"], summary["plain"], summary["received"]),
                         (len(rubbish), 2, 3))
        reasons = [e["reason"] for e in json_lines(receiver.lines) if e["type"] == "malformed"]
        self.assertEqual(reasons, ["not text", "a header of 4 bytes", "protocol version 9",
                                   "message kind 2", "message kind 7"])

    def test_sender_restart_is_a_new_session(self):
        receiver = self.receiver("steady")
        sessions = []
        for _ in range(2):
            sender = self.start("socket_multicast_sender.py", "--count", "2", "--interval",
                                "0", "--json")
            self.assertEqual(sender.wait(20), 0, sender.stderr)
            sessions.append(json_lines(sender.lines)[0]["session"])
        summary = self.stop(receiver)
        self.assertNotEqual(sessions[0], sessions[1])
        self.assertEqual(sorted(s["session"] for s in summary["senders"]), sorted(sessions))
        for entry in summary["senders"]:
            self.assertEqual((entry["received"], entry["lost"], entry["duplicates"],
                              entry["reordered"]), (2, 0, 0, 0))

    def test_textbook_pair_and_socket_pair_talk_to_each_other(self):
        receiver = self.receiver("modern")
        textbook = self.start("multicast_sender.py")
        self.assertEqual(textbook.wait(20), 0, textbook.stderr)
        self.assertIn(f"received b'ack' from ('127.0.0.1', {self.port})", textbook.lines)
        self.assertEqual(self.stop(receiver)["plain"], 1)

        classic = self.start("multicast_receiver.py")
        self.assertTrue(classic.wait_for_line("waiting to receive message"))
        sender = self.start("socket_multicast_sender.py", "--json", "--count", "2",
                            "--interval", "0")
        self.assertEqual(sender.wait(20), 0, sender.stderr)
        [entry] = summary_of(sender)["receivers"]
        self.assertEqual((entry["address"], entry["name"], entry["acks"], entry["lost"]),
                         ("127.0.0.1", "", 2, 0))

    def test_stops_at_once_on_sigterm_with_a_summary(self):
        receiver = self.receiver("brief")
        sender = self.start("socket_multicast_sender.py", "--count", "0", "--interval", "30",
                            "--json")
        self.assertTrue(support.wait_until(
            lambda: any(e["type"] == "round" for e in json_lines(sender.lines)), 5))
        for child in (sender, receiver):
            started = time.monotonic()
            summary = self.stop(child)
            self.assertLess(time.monotonic() - started, 1.0)
            self.assertEqual(summary.get("sent", summary.get("received")), 1)

    def test_a_long_round_does_not_delay_a_stop(self):
        # The sender waits for a round's acks in the receive call itself, in
        # slices: a stop request is seen within one, then the round under way
        # gets at most a second more and the end of run half a second.
        sender = self.start("socket_multicast_sender.py", "--count", "1", "--timeout", "30",
                            "--json")
        self.assertTrue(support.wait_until(
            lambda: any(e["type"] == "start" for e in json_lines(sender.lines)), 5))
        started = time.monotonic()
        sender.signal(signal.SIGTERM)
        sender.wait(10)
        self.assertLess(time.monotonic() - started, 3.0, sender.stderr)  # 1.8 s measured
        self.assertEqual(summary_of(sender)["sent"], 1)

    def test_a_stopped_receiver_still_sends_the_acks_it_held_back(self):
        receiver = self.receiver("slow", "--ack-jitter", "60")  # holds each ack up to 60 s
        sender = self.start("socket_multicast_sender.py", "--json", "--timeout", "3")
        self.assertTrue(support.wait_until(
            lambda: any(e["type"] == "message" for e in json_lines(receiver.lines)), 5))
        self.stop(receiver)
        self.assertEqual(sender.wait(10), 0, sender.stderr)
        [entry] = summary_of(sender)["receivers"]
        self.assertEqual((entry["acks"], entry["lost"]), (1, 0))

    def test_throughput_mode_waits_the_whole_timeout_for_the_last_acks(self):
        self.receiver("patient", "--ack-jitter", "1.5")  # holds each ack up to 1.5 s
        sender = self.start("socket_multicast_sender.py", "--json", "--rate", "100",
                            "--count", "5", "--timeout", "3")
        self.assertEqual(sender.wait(20), 0, sender.stderr)
        [entry] = summary_of(sender)["receivers"]
        self.assertEqual((entry["acks"], entry["lost"], entry["late"]), (5, 0, 0))

    def test_throughput_mode_stopped_by_a_signal_counts_no_false_loss(self):
        self.receiver("steady", "--quiet")
        sender = self.start("socket_multicast_sender.py", "--json", "--rate", "400",
                            "--count", "0", "--report-interval", "0.1")
        self.assertTrue(support.wait_until(
            lambda: len([e for e in json_lines(sender.lines) if e["type"] == "report"]) >= 5,
            10))
        summary = self.stop(sender)
        [entry] = summary["receivers"]
        self.assertGreater(summary["sent"], 100)
        self.assertEqual((entry["acks"], entry["lost"]), (summary["sent"], 0))

    def test_duplicates_and_reordering_from_a_relay(self):
        """A relay between sender and receiver duplicates every 5th message and
        holds back every 7th until the one after it has gone (a held message is not
        duplicated): both ends must count exactly that."""
        relay_port = support.free_udp_port()
        relay = Relay(GROUP, relay_port, GROUP, self.port)
        self.addCleanup(relay.close)
        receiver = self.receiver("behind-relay")
        sender = self.start("socket_multicast_sender.py", "--json", "--rate", "200",
                            "--count", "70", "--expect", "1", port=relay_port)
        self.assertEqual(sender.wait(30), 0, sender.stderr)
        received = self.stop(receiver)
        duplicated = len([n for n in range(1, 71) if n % 5 == 0 and n % 7 != 3])
        swapped = len([n for n in range(1, 71) if n % 7 == 3])
        self.assertEqual(relay.forwarded, 70 + duplicated)
        [entry] = received["senders"]
        self.assertEqual((entry["received"], entry["lost"], entry["duplicates"],
                          entry["reordered"]), (70, 0, duplicated, swapped))
        [peer] = summary_of(sender)["receivers"]
        self.assertEqual((peer["acks"], peer["lost"], peer["duplicates"], peer["reordered"]),
                         (70, 0, duplicated, swapped))


class Relay:
    """Forwards a group to another group on 127.0.0.1, duplicating and reordering,
    and passes the acks back to the sender."""

    def __init__(self, group_in, port_in, group_out, port_out):
        self.inbound = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.inbound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.inbound.bind((group_in, port_in))
        self.inbound.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                                socket.inet_aton(group_in) + socket.inet_aton("127.0.0.1"))
        self.outbound = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.outbound.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                 socket.inet_aton("127.0.0.1"))
        self.destination = (group_out, port_out)
        self.forwarded = 0
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        sender, held = None, None
        while self.running:
            ready = select.select([self.inbound, self.outbound], [], [], 0.05)[0]
            if self.outbound in ready:  # an ack: back to the sender
                data = self.outbound.recv(65535)
                if sender:
                    self.inbound.sendto(data, sender)
            if self.inbound in ready:
                data, sender = self.inbound.recvfrom(65535)
                _, _, kind, _, _, sequence, _ = HEADER.unpack_from(data)
                if kind != 1:  # not a data message (the end of run): passed on as it is
                    self.outbound.sendto(data, self.destination)
                    continue
                if sequence % 7 == 3:
                    held = data  # goes out after the next one
                    continue
                self.send(data)
                if sequence % 5 == 0:
                    self.send(data)
                if held:
                    self.send(held)
                    held = None

    def send(self, data):
        self.outbound.sendto(data, self.destination)
        self.forwarded += 1

    def close(self):
        self.running = False
        self.thread.join(2)
        self.inbound.close()
        self.outbound.close()


if __name__ == "__main__":
    unittest.main()
