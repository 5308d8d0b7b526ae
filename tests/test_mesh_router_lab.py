"""The TTL lesson as a matrix: socket_multicast_sender.py --mesh on three hosts of two
networks, a router between them. Two near peers share network 1 with the router; the
far peer is alone on network 2. The router's namespace forwards unicast (ip_forward,
the hosts' routes through it), and lab/router.py, the user-space multicast router,
forwards the mesh's group, one process for each direction. Every peer runs the one
command, naming the others in --expect, so that each probes the others by unicast
before it hears them. At --ttl 1 every host's matrix shows the far peer's multicast,
both ways, all lost (as many as its sender said it sent), while the near peers'
multicast and all the unicast (which crosses the router) are clean; at --ttl 2 every
cell is clean, and those that cross the router came one hop with a TTL of 1."""

import re
import signal

from . import netlab, support
from .support import events, summary_of

ROUTER = support.script("lab/router.py")
GROUP = "239.7.7.7"  # the mesh's group: the routers forward this one, any port
COUNT, INTERVAL = 60, 0.05  # three seconds of probes
NEAR, ROUTER_HOST, FAR = (0, 1), 2, 3  # the lab's hosts
NAMES = {0: "near1", 1: "near2", FAR: "far"}
# Network 2: the router's address there (the far host's gateway), and the far host.
FAR_GATEWAY, FAR_HOST = "10.78.0.1", "10.78.0.2"
UNICAST_TTL = 64  # the mesh's unicast probes leave with this TTL (MESH_UNICAST_TTL)


class MeshRouterLabTest(netlab.LabTestCase):
    hosts = 4  # 0, 1: the near peers; 2: the router; 3: the far peer

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        lab, br = cls.lab, cls.lab.bridge_namespace
        router, far = lab.namespace(ROUTER_HOST), lab.namespace(FAR)
        try:
            lab.shell("\n".join([
                # Network 2: a bridge of its own, the far host moved onto it, and the
                # router's second interface.
                f"ip -n {br} link add br1 type bridge",
                f"ip -n {br} link set br1 up",
                f"ip -n {br} link set v{FAR} nomaster",
                f"ip -n {br} link set v{FAR} master br1",
                f"ip link add name w{ROUTER_HOST} netns {br} type veth "
                f"peer name eth1 netns {router}",
                f"ip -n {br} link set w{ROUTER_HOST} master br1 up",
                f"ip -n {router} addr add {FAR_GATEWAY}/24 dev eth1",
                f"ip -n {router} link set eth1 up",
                f"ip netns exec {router} sysctl -qw net.ipv4.ip_forward=1",
                f"ip -n {far} addr flush dev eth0",
                f"ip -n {far} addr add {FAR_HOST}/24 dev eth0",
                f"ip -n {far} route replace default via {FAR_GATEWAY}",
                *(f"ip -n {lab.namespace(host)} route add 10.78.0.0/24 "
                  f"via {lab.address(ROUTER_HOST)}" for host in NEAR),
            ]))
        except netlab.LabError as error:
            cls.lab.close()
            support.skip_unless(False, f"no two-network lab here: {error}")
        cls.addresses = {host: lab.address(host) for host in NEAR}
        cls.addresses[FAR] = FAR_HOST

    def start_routers(self):
        """lab/router.py twice: network 1 to 2, and 2 to 1."""
        routers = [self.start(ROUTER_HOST, [support.PYTHON, ROUTER, near, far, GROUP])
                   for near, far in (("eth0", "eth1"), ("eth1", "eth0"))]
        for router in routers:
            self.assertTrue(support.wait_until(
                lambda: any(line.startswith("router: in user space") for line in router.lines)
                or router.process.poll() is not None, 10), router.stderr)
            self.assertIsNone(router.process.poll(), router.stderr)
        return routers

    def stop_router(self, router):
        """SIGTERM; its exit status must be 0; (forwarded, dropped) and its lines."""
        router.signal(signal.SIGTERM)
        self.assertEqual(router.wait(5), 0, router.stderr)
        stopped = re.match(r"^router: stopped: (\d+) forwarded, (\d+) dropped$",
                           router.lines[-1])
        self.assertTrue(stopped, router.lines[-1:])
        return (int(stopped[1]), int(stopped[2])), router.lines

    def run_mesh(self, ttl):
        """Every peer with --ttl ttl, the others' addresses in --expect; each summary,
        once all have ended (status 0: each heard every peer it expected)."""
        peers = {}
        for host, address in self.addresses.items():
            others = ",".join(other for other in self.addresses.values() if other != address)
            peers[host] = self.start(host, support.python_script(
                "socket_multicast_sender.py", "--mesh", "--json", "-g", GROUP,
                "--name", NAMES[host], "--ttl", str(ttl), "--count", str(COUNT),
                "--interval", str(INTERVAL), "--expect", others))
        for peer in peers.values():
            self.assertTrue(support.wait_until(lambda: events(peer, "start"), 10),
                            peer.stderr)
        summaries = {}
        for host, peer in peers.items():
            status = peer.wait(30)
            summary = summary_of(peer)
            self.assertEqual(status, 0, f"{summary['verdict']}\n{peer.stderr}")
            self.assertEqual((summary["address"], summary["rounds"]),
                             (self.addresses[host], COUNT))
            summaries[host] = summary
        return summaries

    def cells(self, summary):
        """A summary's matrix by (from host, to host, kind); every cell of the four
        peers, each named."""
        host_of = {address: host for host, address in self.addresses.items()}
        cells = {}
        for cell in summary["matrix"]:
            self.assertEqual((cell["from_name"], cell["to_name"]),
                             (NAMES[host_of[cell["from"]]], NAMES[host_of[cell["to"]]]), cell)
            cells[host_of[cell["from"]], host_of[cell["to"]], cell["kind"]] = cell
        self.assertEqual(len(cells), len(summary["matrix"]))
        self.assertEqual(len(cells), 3 * 2 * 2, summary["matrix"])
        return cells

    def assert_clean(self, cell, ttl, hops):
        """Every probe counted came (from the first that came), none twice, with the TTL
        of a datagram that crossed `hops` routers; all the sender sent, told."""
        self.assertEqual(cell["sent"], COUNT, cell)
        self.assertEqual((cell["lost"], cell["loss_pct"], cell["duplicates"]),
                         (0, 0.0, 0), cell)
        # Counted from the first probe that came: a peer that started later missed some.
        self.assertGreater(cell["received"], COUNT // 2, cell)
        self.assertLessEqual(cell["received"], COUNT, cell)
        self.assertEqual((cell["ttl"], cell["hops"]), (ttl, hops), cell)
        self.assertIsNotNone(cell["rtt_p50_ms"], cell)  # the receiver's acks came

    def crosses(self, source, target):
        return FAR in (source, target)

    def check_unicast(self, cells):
        for (source, target, kind), cell in cells.items():
            if kind == "unicast":
                with self.subTest(cell=(source, target, kind)):
                    hops = 1 if self.crosses(source, target) else 0
                    self.assert_clean(cell, UNICAST_TTL - hops, hops)

    def test_at_ttl_1_the_far_peers_multicast_is_lost_both_ways_and_unicast_crosses(self):
        routers = self.start_routers()
        summaries = self.run_mesh(ttl=1)
        for host, summary in summaries.items():
            with self.subTest(host=NAMES[host]):
                cells = self.cells(summary)
                self.check_unicast(cells)
                for (source, target, kind), cell in cells.items():
                    if kind != "multicast":
                        continue
                    with self.subTest(cell=(source, target, kind)):
                        if not self.crosses(source, target):
                            self.assert_clean(cell, 1, 0)
                            continue
                        # Nothing came: lost is what the sender said it sent, all of it.
                        self.assertEqual(
                            {name: cell[name] for name in (
                                "sent", "received", "lost", "loss_pct", "duplicates",
                                "reordered", "ttl", "hops", "rtt_p50_ms", "rtt_p99_ms")},
                            {"sent": COUNT, "received": 0, "lost": COUNT, "loss_pct": 100.0,
                             "duplicates": 0, "reordered": 0, "ttl": None, "hops": None,
                             "rtt_p50_ms": None, "rtt_p99_ms": None}, cell)
        for router in routers:  # each took the group's datagrams, and forwarded none
            (forwarded, dropped), lines = self.stop_router(router)
            self.assertEqual(forwarded, 0, lines)
            self.assertGreaterEqual(dropped, COUNT, lines)
            decisions = [line for line in lines if line.startswith(("router: forwarded",
                                                                    "router: dropped"))]
            self.assertTrue(decisions, lines)
            for line in decisions:
                self.assertTrue(line.startswith("router: dropped ")
                                and line.endswith(": ttl 1: it may not cross a router"), line)

    def test_at_ttl_2_every_way_is_clean_and_the_far_one_is_one_hop(self):
        routers = self.start_routers()
        summaries = self.run_mesh(ttl=2)
        for host, summary in summaries.items():
            with self.subTest(host=NAMES[host]):
                cells = self.cells(summary)
                self.check_unicast(cells)
                for (source, target, kind), cell in cells.items():
                    if kind == "multicast":
                        with self.subTest(cell=(source, target, kind)):
                            hops = 1 if self.crosses(source, target) else 0
                            self.assert_clean(cell, 2 - hops, hops)
        # Network 1 to 2: both near peers' probes at least; 2 to 1: the far peer's.
        for router, least in zip(routers, (2 * COUNT, COUNT)):
            (forwarded, dropped), lines = self.stop_router(router)
            self.assertEqual(dropped, 0, lines)
            self.assertGreaterEqual(forwarded, least, lines)
