"""Who hears whom: socket_multicast_sender.py --mesh on six hosts of a namespace lab, each
running the one command. Every host prints the whole matrix (each peer to each other,
multicast and unicast); nftables on one host drops part of one peer's multicast probes
to it, and exactly that cell of every host's matrix shows the loss, as many probes as
nft's counter says it dropped, while every other way, that pair's unicast and the way
back included, stays clean. With a key, a host without it is in nobody's matrix."""

import json
import os
import shutil
import tempfile
import time

from . import netlab, support
from .support import events, summary_of

PORT = 10000  # the scripts' default
GROUP = "239.7.7.7"
TABLE = "mesh"  # the nftables table of these tests, on the dropping host
# A probe: the protocol's magic first in the UDP payload (bit 64 of the transport header,
# after UDP's 8 bytes) and its kind, 1 (data), in the payload's sixth byte (bit 104).
PROBE = ["udp", "dport", str(PORT), "@th,64,32", "0x4d434b31", "@th,104,8", "1"]
ROUNDS, INTERVAL = 400, 0.02  # eight seconds of probes: room for the drops in the middle
DROPS = 12  # probes dropped before the rule goes


class MeshLabTest(netlab.LabTestCase):
    hosts = 6
    C, D = 2, 3  # host C's multicast to host D is dropped in part

    def peer(self, host, *arguments):
        return self.start(host, support.python_script(
            "socket_multicast_sender.py", "--mesh", "--json", "-g", GROUP, "--name", f"h{host}",
            "--count", str(ROUNDS), "--interval", str(INTERVAL), *arguments))

    def nft(self, host, *words):
        result = self.lab.run(host, ["nft", *words])
        self.assertEqual(result.returncode, 0, f"nft {' '.join(words)}: {result.stderr}")
        return result.stdout

    def filtering(self, host):
        """A table and an input chain of our own on host, gone after the test."""
        support.skip_unless(shutil.which("nft"), "'nft' is not installed (Debian: nftables)")
        table = self.lab.run(host, ["nft", "add", "table", "inet", TABLE])
        support.skip_unless(table.returncode == 0, f"nft cannot filter here: {table.stderr}")
        self.addCleanup(self.lab.run, host, ["nft", "delete", "table", "inet", TABLE])
        self.nft(host, "add", "chain", "inet", TABLE, "input",
                 "{ type filter hook input priority 0; }")

    def counter(self, host, name):
        listing = json.loads(self.nft(host, "-j", "list", "counter", "inet", TABLE, name))
        [found] = [item["counter"] for item in listing["nftables"] if "counter" in item]
        return found["packets"]

    def wait_heard(self, peers, count):
        for peer in peers:
            self.assertTrue(support.wait_until(
                lambda: len(events(peer, "peer")) >= count, 30),
                f"a peer heard {len(events(peer, 'peer'))} of {count}:\n{peer.output()}"
                f"\n{peer.stderr}")

    def finish(self, peers):
        summaries = []
        for peer in peers:
            status = peer.wait(60)
            summary = summary_of(peer)
            self.assertEqual(status, 0, f"{summary['verdict']}\n{peer.stderr}")
            summaries.append(summary)
        return summaries

    def test_one_way_multicast_loss_shows_in_exactly_one_cell_of_every_hosts_matrix(self):
        self.filtering(self.D)
        self.nft(self.D, "add", "counter", "inet", TABLE, "dropped")
        peers = [self.peer(host) for host in range(self.hosts)]
        self.wait_heard(peers, self.hosts - 1)
        # From now on every third multicast probe of C's that reaches D is dropped,
        # counted; after DROPS of them, none.
        self.nft(self.D, "add", "rule", "inet", TABLE, "input", "ip", "saddr",
                 self.lab.address(self.C), "ip", "daddr", GROUP, *PROBE, "numgen", "inc",
                 "mod", "3", "0", "counter", "name", "dropped", "drop")
        self.assertTrue(support.wait_until(lambda: self.counter(self.D, "dropped") >= DROPS, 30))
        self.nft(self.D, "flush", "chain", "inet", TABLE, "input")
        dropped = self.counter(self.D, "dropped")
        self.assertFalse([peer for peer in peers if events(peer, "summary")],
                         "a peer ended before the drops did: the run is too short here")
        addresses = [self.lab.address(host) for host in range(self.hosts)]
        lossy = (addresses[self.C], addresses[self.D], "multicast")
        for host, summary in enumerate(self.finish(peers)):
            with self.subTest(host=host):
                cells = {(cell["from"], cell["to"], cell["kind"]): cell
                         for cell in summary["matrix"]}
                self.assertEqual(len(cells), self.hosts * (self.hosts - 1) * 2)
                self.assertEqual(cells[lossy]["lost"], dropped, cells[lossy])
                for way, cell in cells.items():
                    self.assertIsNotNone(cell["received"], cell)
                    self.assertGreater(cell["received"], ROUNDS // 2, cell)
                    self.assertEqual(cell["duplicates"], 0, cell)
                    if way != lossy:
                        self.assertEqual(cell["lost"], 0, cell)
                    self.assertEqual(cell["ttl"], 1 if cell["kind"] == "multicast" else 64)
                    self.assertEqual((cell["from_name"], cell["to_name"]),
                                     (f"h{addresses.index(cell['from'])}",
                                      f"h{addresses.index(cell['to'])}"))
                    if cell["from"] == addresses[host]:  # our own probes: their round trips
                        self.assertIsNotNone(cell["rtt_p50_ms"], cell)
                self.assertGreater(cells[lossy]["received"] + dropped,
                                   cells[lossy]["received"])

    def test_with_a_key_a_host_without_it_is_in_nobodys_matrix(self):
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        key = os.path.join(directory, "key")
        with open(key, "w") as stream:
            stream.write("a mesh key of at least sixteen bytes\n")
        os.chmod(key, 0o600)
        keyed = [self.peer(host, "--key-file", key, "--expect", "4")
                 for host in range(self.hosts - 1)]
        stranger = self.peer(self.hosts - 1)  # the same probes, summaries, but no key
        self.wait_heard(keyed, self.hosts - 2)
        self.wait_heard([stranger], self.hosts - 1)  # it hears them: they are not secret
        addresses = {self.lab.address(host) for host in range(self.hosts - 1)}
        for summary in self.finish(keyed):
            hosts = {cell["from"] for cell in summary["matrix"]}
            self.assertEqual(hosts, addresses)
            self.assertGreater(summary["ignored"].get("unauthenticated", 0), 0)
            for cell in summary["matrix"]:
                self.assertEqual(cell["lost"], 0, cell)
        stranger.wait(60)

    def test_a_way_that_carries_no_multicast_shows_all_lost_and_its_unicast_clean(self):
        self.filtering(self.D)
        self.nft(self.D, "add", "rule", "inet", TABLE, "input", "ip", "saddr",
                 self.lab.address(self.C), "ip", "daddr", GROUP, "drop")  # probes, summaries
        peers = [self.peer(host, "--count", "100") for host in range(self.hosts)]
        addresses = [self.lab.address(host) for host in range(self.hosts)]
        way = (addresses[self.C], addresses[self.D])
        for host, summary in enumerate(self.finish(peers)):
            with self.subTest(host=host):
                cells = {(cell["from"], cell["to"], cell["kind"]): cell
                         for cell in summary["matrix"]}
                self.assertEqual(len(cells), self.hosts * (self.hosts - 1) * 2)
                dead = cells[(*way, "multicast")]
                self.assertEqual((dead["received"], dead["lost"], dead["loss_pct"]),
                                 (0, 100, 100.0), dead)
                for other, cell in cells.items():
                    if other != (*way, "multicast"):
                        self.assertEqual(cell["lost"], 0, cell)
                        self.assertGreater(cell["received"], 0, cell)

    def test_a_peer_stopped_and_started_again_is_counted_anew_not_as_loss(self):
        first = [self.peer(host) for host in range(3)]
        self.wait_heard(first, 2)
        first[2].signal()
        self.assertEqual(first[2].wait(30), 0, first[2].stderr)
        again = self.peer(2)
        self.assertTrue(support.wait_until(lambda: len(events(first[0], "peer")) >= 3, 30),
                        first[0].output())
        addresses = [self.lab.address(host) for host in range(3)]
        for summary in self.finish([first[0], first[1], again]):
            for cell in summary["matrix"]:
                self.assertEqual((cell["lost"], cell["duplicates"]), (0, 0), cell)
                self.assertGreater(cell["received"], 0, cell)
            self.assertEqual({cell["from"] for cell in summary["matrix"]}, set(addresses))

    def board_state(self, host, port):
        fetch = (f"import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
                 f"'http://127.0.0.1:{port}/board.json', timeout=2).read().decode())")
        result = self.lab.run(host, [support.PYTHON, "-c", fetch])
        return json.loads(result.stdout) if result.returncode == 0 and result.stdout else None

    def test_the_board_shows_the_matrix_and_greys_a_peer_killed_within_two_seconds(self):
        port = 8080
        peers = [self.peer(0, "--board", f"127.0.0.1:{port}", "--count", "0")]
        peers += [self.peer(host, "--count", "0") for host in range(1, self.hosts)]
        self.wait_heard(peers, self.hosts - 1)
        addresses = [self.lab.address(host) for host in range(self.hosts)]

        def told_all():
            state = self.board_state(0, port)
            return state if state and len(state["peers"]) == self.hosts and all(
                value is not None for kind in state["matrix"].values()
                for i, row in enumerate(kind) for j, value in enumerate(row) if i != j) else None
        state = support.wait_until(told_all, 10)
        self.assertTrue(state, self.board_state(0, port))
        self.assertEqual(sorted(row["address"] for row in state["peers"]), addresses)
        self.assertEqual([row["state"] for row in state["peers"]],
                         ["me"] + ["heard"] * (self.hosts - 1))
        peers[5].kill()  # no last summary: it just falls silent
        killed = time.monotonic()
        gone = support.wait_until(
            lambda: (self.board_state(0, port) or {}).get("peers", [{}])[-1:] and
            {row["address"]: row["state"] for row in self.board_state(0, port)["peers"]}
            .get(addresses[5]) == "gone", 5, interval=0.05)
        self.assertTrue(gone)
        self.assertLess(time.monotonic() - killed, 2.0, "greyed within 2 s")
        peers[4].signal()  # its last summary says it stopped
        self.assertTrue(support.wait_until(lambda: {
            row["address"]: row["state"] for row in self.board_state(0, port)["peers"]}
            .get(addresses[4]) == "stopped", 5))
        for peer in peers[:4]:
            peer.signal()
        for peer in peers[:5]:
            peer.wait(30)
