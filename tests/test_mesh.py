"""The mesh's pieces without a network: what a peer counts of each kind of probe, what
its summaries carry (packed by one peer, read by another, the same figures), how a
matrix is put together from its own counts and the others' summaries, and that a
receiver on the same group counts a summary aside, never as malformed. The network
itself: tests/test_mesh_lab.py."""

import ipaddress
import time
import unittest

from . import support

sender = support.load("socket_multicast_sender.py")
receiver = support.load("socket_multicast_receiver.py")


class Wire:
    """A socket that keeps what is sent through it."""

    def __init__(self):
        self.sent = []

    def sendto(self, data, destination):
        self.sent.append((bytes(data), destination[0]))


class Quiet:
    def __init__(self):
        self.events = []

    def event(self, kind, line, **fields):
        self.events.append((kind, fields))


def mesh_at(address, name, *options):
    parser = sender.build_parser(environ={})
    args = parser.parse_args(["--mesh", "-g", "239.7.7.7", "--name", name, *options])
    sender.check_options(parser, args)
    return sender.Mesh(Wire(), sender.settings_from(args), Quiet(), address)


def deliver(datagrams, to, source):
    for data, _ in datagrams:
        sender.take_mesh_datagram(to, data, source, 1)


class MeshTest(unittest.TestCase):
    def setUp(self):
        self.anna, self.ben = mesh_at("10.0.0.1", "anna"), mesh_at("10.0.0.2", "ben")

    def probes(self, rounds, skip=()):
        """anna's rounds of probes to ben, but those in skip (its rounds' numbers)."""
        for number in range(1, rounds + 1):
            self.anna.sock.sent.clear()
            self.anna.probe()
            if number not in skip:
                deliver(self.anna.sock.sent, self.ben, "10.0.0.1")

    def test_probes_are_counted_by_kind_and_each_is_answered_no_larger(self):
        self.ben = mesh_at("10.0.0.2", "b" * 60)  # a name longer than a probe has room for
        deliver([(self.ben_probe(), None)], self.anna, "10.0.0.2")  # anna learns ben
        self.probes(10, skip=(4, 5))
        self.anna.sock.sent.clear()
        self.anna.probe()  # round 11: its multicast probe twice, its unicast one never
        deliver(self.anna.sock.sent[:1] * 2, self.ben, "10.0.0.1")
        kept = list(self.anna.sock.sent)
        self.probes(1)  # round 12, then round 11's unicast probe: reordered
        deliver(kept[1:], self.ben, "10.0.0.1")
        peer = self.ben.peers["10.0.0.1"]
        multicast, unicast = peer.came["multicast"], peer.came["unicast"]
        self.assertEqual((multicast.received, peer.lost("multicast"), multicast.duplicates,
                          multicast.reordered), (10, 2, 1, 0))
        self.assertEqual((unicast.received, peer.lost("unicast"), unicast.duplicates,
                          unicast.reordered), (10, 2, 0, 1))
        acks = [data for data, where in self.ben.sock.sent]
        self.assertEqual(len(acks), 20, "each probe answered once, a duplicate not again")
        probe_size = len(kept[0][0])
        self.assertGreater(sender.HEADER.size + 5 + 60, probe_size, "the whole name would not fit")
        self.assertTrue(all(len(ack) <= probe_size for ack in acks))
        deliver(self.ben.sock.sent, self.anna, "10.0.0.2")
        rtt = self.anna.peers["10.0.0.2"].rtt
        self.assertEqual((rtt["multicast"].count, rtt["unicast"].count), (10, 10))
        self.ben.share()
        deliver(self.ben.sock.sent[-1:], self.anna, "10.0.0.2")
        told = sender.mesh_cell(self.anna, "10.0.0.1", "10.0.0.2", "unicast", {})
        self.assertEqual((told["received"], told["lost"], told["duplicates"], told["reordered"]),
                         (10, 2, 0, 1))

    def ben_probe(self):
        self.ben.probe()
        data = self.ben.sock.sent[0][0]
        self.ben.sock.sent.clear()
        return data

    def test_a_summary_carries_the_counts_to_every_peer_and_the_matrix_is_whole(self):
        deliver([(self.ben_probe(), None)], self.anna, "10.0.0.2")
        self.probes(20, skip=(7,))
        self.ben.sock.sent.clear()
        self.ben.share()
        deliver(self.ben.sock.sent, self.anna, "10.0.0.2")
        cells = {(c["from"], c["to"], c["kind"]): c for c in sender.mesh_matrix(self.anna)}
        self.assertEqual(len(cells), 4)
        out = cells["10.0.0.1", "10.0.0.2", "multicast"]
        self.assertEqual((out["sent"], out["received"], out["lost"], out["loss_pct"]),
                         (20, 19, 1, 5.0))
        self.assertEqual((out["from_name"], out["to_name"], out["ttl"], out["hops"]),
                         ("anna", "ben", 1, 0))
        back = cells["10.0.0.2", "10.0.0.1", "multicast"]
        self.assertEqual((back["received"], back["lost"]), (1, 0))

    def test_nothing_came_counts_all_sent_as_lost_once_a_summary_said_so(self):
        deliver([(self.ben_probe(), None)], self.anna, "10.0.0.2")
        self.probes(5, skip=range(1, 6))
        self.assertIsNone(sender.mesh_cell(self.anna, "10.0.0.2", "10.0.0.1", "unicast",
                                           {})["loss_pct"])
        self.ben.peer("10.0.0.1", self.anna.session, "anna")  # ben knows anna, hears nothing
        self.anna.sock.sent.clear()
        self.anna.share()
        deliver(self.anna.sock.sent, self.ben, "10.0.0.1")
        cell = sender.mesh_cell(self.ben, "10.0.0.1", "10.0.0.2", "multicast", {})
        self.assertEqual((cell["received"], cell["lost"], cell["loss_pct"]), (0, 5, 100.0))

    def test_a_summary_from_an_address_whose_probes_carry_another_session_is_ignored(self):
        deliver([(self.ben_probe(), None)], self.anna, "10.0.0.2")
        self.ben.share()
        summary = self.ben.sock.sent[-1][0]
        sender.take_mesh_datagram(self.anna, summary, "10.0.0.9", 1)  # not ben's address
        self.assertEqual(self.anna.ignored["summary from no peer heard"], 1)
        self.assertNotIn("10.0.0.9", self.anna.peers)

    def test_a_receiver_counts_a_summary_aside(self):
        self.ben.share()
        what, answer, detail = receiver.classify(self.ben.sock.sent[0][0], ("10.0.0.2", 1),
                                                 receiver.SessionTable(False), None)
        self.assertEqual((what, answer, detail), ("refused", None, "mesh_summary"))

    def test_a_flood_of_forged_peers_evicts_none_that_probes(self):
        started = time.monotonic()
        real = [f"10.0.1.{host}" for host in range(1, 101)]
        for round_number in (1, 2):  # each real peer heard twice
            for address in real:
                sender.take_mesh_datagram(self.ben, self.probe_from(address, round_number),
                                          address, 1)
        for host in range(1000):  # a thousand forged peers, one probe each
            address = f"10.9.{host // 250}.{host % 250 + 1}"
            sender.take_mesh_datagram(self.ben, self.probe_from(address, 1), address, 1)
        self.assertEqual(len(self.ben.peers), sender.MAX_MESH_PEERS)
        self.assertTrue(set(real) <= set(self.ben.peers))
        self.assertEqual(self.ben.evicted, 1000 + 100 - sender.MAX_MESH_PEERS)
        # Each new peer's line is paced: at most MESH_PEER_LINES a second, the rest counted.
        self.ben.heard_lines.note(time.monotonic(), at_once=True)
        seconds = time.monotonic() - started
        events = [kind for kind, _ in self.ben.out.events]
        unprinted = sum(fields["count"] for kind, fields in self.ben.out.events
                        if kind == "unprinted")
        self.assertLessEqual(events.count("peer"), sender.MESH_PEER_LINES * (1 + seconds))
        self.assertEqual(events.count("peer") + unprinted, 1100)

    @staticmethod
    def probe_from(address, sequence):
        session = int(ipaddress.ip_address(address)) << 8
        return (sender.HEADER.pack(sender.MAGIC, sender.VERSION, sender.DATA, sender.MESH,
                                   session, sequence, 0) + sender.PROBE_EXTRA.pack(1) + b"x")

    def test_at_the_default_interval_a_silent_peer_is_grey_within_two_seconds(self):
        anna = mesh_at("10.0.0.1", "anna")  # --interval 1, the default
        deliver([(self.ben_probe(), None)], anna, "10.0.0.2")
        ben = anna.peers["10.0.0.2"]

        def state_after(silent):
            ben.heard_at = sender.time.monotonic() - silent
            return sender.mesh_board_state(anna)["peers"][1]["state"]
        self.assertEqual(state_after(1.0), "heard", "a round's silence is no sign")
        self.assertEqual(state_after(1.2), "gone")
        # The state is given to the board every BOARD_EVERY, the page looks every 0.25 s.
        self.assertLessEqual(1.0 + sender.MESH_GONE_SLACK + sender.BOARD_EVERY + 0.25, 2.0)
        self.assertIn("? 250 : 1000", sender.BOARD_PAGE.decode())
