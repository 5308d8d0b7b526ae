"""The routed lab's router, as lab/router.sh starts it in the Compose lab, judged from
outside in a lab of two networks: the sender (host 0) and the router (host 1) on one
bridge, the router's second interface and the far host (host 2) on another. The far
host's iptables counters (by TTL) and its kernel's UDP counters say what arrived.
The user-space router (lab/router.py) runs on any kernel; the kernel's (smcroute)
where the kernel routes multicast (in a guest kernel otherwise: tests/test_guest.py)."""

import os
import re
import shutil
import signal
import subprocess

from . import netlab, support

ROUTER = os.path.join(support.PROJECT, "lab", "router.py")
ROUTER_SH = os.path.join(support.PROJECT, "lab", "router.sh")
# The far network: the router's own address, the far hosts' gateway (which router.sh
# adds to the router, as in Compose), and the far host.
FAR_SUBNET = "10.78.0"
FAR_ROUTER, FAR_GATEWAY, FAR_HOST = (f"{FAR_SUBNET}.{host}" for host in (254, 1, 2))
FORWARDED = re.compile(r"^router: forwarded \S+ > 224\.10\.10\.10:10000, \d+ bytes of data, "
                       r"ttl (\d+) -> (\d+), eth0 -> eth1$")


class RouterLab(netlab.LabTestCase):
    """The lab, and what each router is held to."""

    hosts = 3  # 0: the sender, 1: the router, 2: the far host
    router = None  # MULTICAST_ROUTER: "user" or "kernel"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        lab, br = cls.lab, cls.lab.bridge_namespace
        router, far = lab.namespace(1), lab.namespace(2)
        try:
            lab.shell("\n".join([
                f"ip -n {br} link add br1 type bridge",
                f"ip -n {br} link set br1 up",
                f"ip -n {br} link set v2 nomaster",
                f"ip -n {br} link set v2 master br1",
                f"ip link add name w1 netns {br} type veth peer name eth1 netns {router}",
                f"ip -n {br} link set w1 master br1 up",
                f"ip -n {router} addr add {FAR_ROUTER}/24 dev eth1",
                f"ip -n {router} link set eth1 up",
                f"ip netns exec {router} sysctl -qw net.ipv4.ip_forward=1",
                f"ip -n {far} addr flush dev eth0",
                f"ip -n {far} addr add {FAR_HOST}/24 dev eth0",
                f"ip -n {far} route replace default via {FAR_GATEWAY}",
                # The far host counts the group's datagrams from the near side by the TTL they arrive with.
                f"ip netns exec {far} iptables -A INPUT -s {netlab.SUBNET}.0/24 "
                f"-d {support.GROUP} -p udp -m ttl --ttl-eq 1",
                f"ip netns exec {far} iptables -A INPUT -s {netlab.SUBNET}.0/24 "
                f"-d {support.GROUP} -p udp -m ttl --ttl-gt 1",
            ]))
        except netlab.LabError as error:
            cls.lab.close()
            support.skip_unless(False, f"no two-network lab here (iptables?): {error}")

    def setUp(self):
        super().setUp()
        self.lab.run(2, ["iptables", "-Z", "INPUT"])
        self.udp_before = self.udp_counters()
        # router.sh takes the far gateway's address each time it starts.
        self.addCleanup(self.lab.run, 1, ["ip", "addr", "del", f"{FAR_GATEWAY}/24",
                                          "dev", "eth1"])

    def far_counts(self):
        """Datagrams of the group that reached the far host: (with TTL 1, with more)."""
        table = self.lab.run(2, ["iptables", "-L", "INPUT", "-v", "-n", "-x"]).stdout
        counts = [int(line.split()[0]) for line in table.splitlines()
                  if support.GROUP in line]
        return tuple(counts)

    def udp_counters(self):
        """The far host kernel's UDP counters (/proc/net/snmp), by name."""
        lines = [line.split() for line in self.lab.run(2, ["cat", "/proc/net/snmp"]).stdout
                 .splitlines() if line.startswith("Udp:")]
        return dict(zip(lines[0][1:], map(int, lines[1][1:])))

    def start_router(self, *arguments):
        """The router: lab/router.sh as in Compose, or lab/router.py with arguments."""
        if arguments:  # router.py alone: the far gateway's address, as router.sh adds it
            self.lab.run(1, ["ip", "addr", "add", f"{FAR_GATEWAY}/24", "dev", "eth1"])
            argv = [support.PYTHON, ROUTER, "eth0", "eth1", support.GROUP, *arguments]
        else:
            argv = ["env", f"MULTICAST_ROUTER={self.router}",
                    f"MULTICAST_FAR_GATEWAY={FAR_GATEWAY}", f"PATH={os.environ['PATH']}",
                    "sh", ROUTER_SH]
        router = self.start(1, argv)
        ready = ("router: in user space" if self.router == "user" or arguments
                 else "router: kernel: ")
        self.assertTrue(support.wait_until(
            lambda: any(line.startswith(ready) for line in router.lines)
            or router.process.poll() is not None, 10), router.stderr)
        self.assertIsNone(router.process.poll(), router.stderr)
        if self.router == "kernel":  # smcroute: ready once the kernel holds its route
            self.assertTrue(support.wait_until(lambda: "eth1" in self.lab.run(
                1, ["cat", "/proc/net/ip_mr_vif"]).stdout, 10), router.stderr)
        return router

    def start_far_receiver(self, *argv):
        receiver = self.start(2, argv)
        self.assertTrue(support.wait_until(lambda: self.lab.joined(2, support.GROUP), 10),
                        receiver.stderr)
        return receiver

    def stop(self, router):
        router.signal(signal.SIGTERM)
        self.assertEqual(router.wait(5), 0, router.stderr)
        return router.lines



class BothRouters:
    """What either router is held to (mixed into a RouterLab)."""

    def test_ttl_2_crosses_with_ttl_1_and_the_far_receiver_answers_the_sender(self):
        router = self.start_router()
        self.start_far_receiver(*support.python_script("multicast_receiver.py"))
        near = self.lab.run(0, support.python_script(
            "multicast_sender.py", "--ttl", "1", "--count", "3", "--interval", "0.1"))
        self.assertNotIn("received b'ack'", near.stdout)
        self.assertEqual(self.far_counts(), (0, 0))
        far = self.lab.run(0, support.python_script(
            "multicast_sender.py", "--ttl", "2", "--count", "4", "--interval", "0.1"))
        # The far receiver answered the sender's own address: the source was kept.
        self.assertEqual(far.stdout.count(f"received b'ack' from ('{FAR_HOST}', 10000)"), 4,
                         far.stdout + "".join(router.lines))
        self.assertEqual(self.far_counts(), (4, 0))  # every one arrived with TTL 1
        udp = self.udp_counters()
        self.assertEqual(udp["InCsumErrors"] - self.udp_before["InCsumErrors"], 0)
        self.assertEqual(udp["InDatagrams"] - self.udp_before["InDatagrams"], 4)
        lines = self.stop(router)
        if self.router == "user":  # smcroute says nothing of each datagram
            self.assertEqual(sum(1 for line in lines if line.endswith(
                ": ttl 1: it may not cross a router")), 3, lines)
            self.assertEqual([FORWARDED.match(line).groups() for line in lines
                              if FORWARDED.match(line)], [("2", "1")] * 4, lines)
            self.assertEqual(lines[-1], "router: stopped: 4 forwarded, 3 dropped")

    def test_from_the_far_side_too_ttl_2_crosses_with_ttl_1_and_ttl_1_stays(self):
        """router.sh forwards both ways: the far side's group comes back near by the same
        rule, and a near receiver's acks reach the far sender through the router."""
        router = self.start_router()
        self.lab.run(0, ["ip", "route", "add", f"{FAR_SUBNET}.0/24", "via",
                         self.lab.address(1)])
        self.addCleanup(self.lab.run, 0, ["ip", "route", "del", f"{FAR_SUBNET}.0/24"])
        for ttl in ("eq", "gt"):  # the near host counts the far side's group by its TTL
            rule = ["INPUT", "-s", f"{FAR_SUBNET}.0/24", "-d", support.GROUP, "-p", "udp",
                    "-m", "ttl", f"--ttl-{ttl}", "1"]
            self.lab.run(0, ["iptables", "-A", *rule])
            self.addCleanup(self.lab.run, 0, ["iptables", "-D", *rule])
        self.start(0, support.python_script("multicast_receiver.py"))
        self.assertTrue(support.wait_until(lambda: self.lab.joined(0, support.GROUP), 10))
        stays = self.lab.run(2, support.python_script(
            "multicast_sender.py", "--ttl", "1", "--count", "3", "--interval", "0.1"))
        self.assertNotIn("received b'ack'", stays.stdout)
        crosses = self.lab.run(2, support.python_script(
            "multicast_sender.py", "--ttl", "2", "--count", "4", "--interval", "0.1"))
        self.assertEqual(crosses.stdout.count(
            f"received b'ack' from ('{self.lab.address(0)}', 10000)"), 4,
            crosses.stdout + "".join(router.lines))
        table = self.lab.run(0, ["iptables", "-L", "INPUT", "-v", "-n", "-x"]).stdout
        self.assertEqual([int(line.split()[0]) for line in table.splitlines()
                          if FAR_SUBNET in line], [4, 0], table)  # each with TTL 1
        lines = self.stop(router)
        if self.router == "user":
            self.assertEqual(sum(1 for line in lines if line.endswith(
                ": ttl 1: it may not cross a router")), 3, lines)
            self.assertEqual(sum(1 for line in lines if line.endswith(
                ", ttl 2 -> 1, eth1 -> eth0")), 4, lines)

    def test_the_measuring_receiver_behind_it_counts_one_hop(self):
        self.start_router()
        self.start_far_receiver(*support.python_script("socket_multicast_receiver.py",
                                                       "--name", "far", "--quiet"))
        result = self.lab.run(0, support.python_script(
            "socket_multicast_sender.py", "--ttl", "5", "--count", "5", "--interval", "0.1",
            "--expect", "far", "--json"))
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        far = support.json_lines(result.stdout.splitlines())[-1]["receivers"][0]
        self.assertEqual((far["name"], far["ttl_received"], far["hops"], far["lost"]),
                         ("far", 4, 1, 0), far)



class UserRouterLabTest(BothRouters, RouterLab):
    router = "user"

    def test_what_a_router_must_not_forward_is_dropped_and_named(self):
        router = self.start_router("--log-rate", "10")
        self.start_far_receiver(*support.python_script("multicast_receiver.py"))
        sends = [  # (host, what it sends with TTL 5, the reason the router must give)
            (0, "sock.sendto(b'x' * 3000, GROUP)", "3028 bytes, more than the far side's "
                                                   "MTU of 1500"),
            (0, "sock.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, bytes([7, 7, 4]) "
                "+ bytes(5)); sock.sendto(b'options', GROUP)",
             "IP options (this router forwards plain 20-byte headers only)"),
            (1, "sock.sendto(b'from the router itself', GROUP)", "sent by this router"),
        ]
        for host, send, reason in sends:
            program = ("import socket; GROUP = ('224.10.10.10', 10000); "
                       "sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                       "sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 5); "
                       "sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, "
                       f"socket.inet_aton('{self.lab.address(host)}')); {send}")
            sent = self.lab.run(host, [support.PYTHON, "-c", program])
            self.assertEqual(sent.returncode, 0, sent.stderr)
            self.assertTrue(support.wait_until(
                lambda: any(line.endswith(f": {reason}") for line in router.lines), 5),
                (reason, router.lines))
        # From the far side, with a TTL to spare: never back to the near side.
        self.lab.run(2, support.python_script("multicast_sender.py", "--ttl", "5",
                                              "--count", "1"))
        lines = self.stop(router)
        self.assertEqual(self.far_counts(), (0, 0), lines)
        self.assertEqual(lines[-1], "router: stopped: 0 forwarded, 3 dropped")

    def test_router_sh_says_which_router_runs(self):
        router = self.start_router()
        self.assertEqual(router.lines[0], "router: user space: lab/router.py forwards "
                                          "(MULTICAST_ROUTER=user)")
        self.assertRegex(router.lines[1], rf"^router: forwarding {support.GROUP} both ways "
                                          rf"between eth0 \(10\.77\.0\.2/24\) and eth1 ")

    def test_a_flood_is_logged_at_a_bounded_rate_and_counted_exactly(self):
        router = self.start_router("--log-rate", "5")
        self.start_far_receiver(*support.python_script("socket_multicast_receiver.py",
                                                       "--quiet"))
        result = self.lab.run(0, support.python_script(
            "socket_multicast_sender.py", "--ttl", "2", "--rate", "2000", "--count", "4000",
            "--no-ack", "--json"), timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        lines = self.stop(router)
        arrived = self.far_counts()[0]
        self.assertGreaterEqual(arrived, 4000)
        self.assertEqual(lines[-1], f"router: stopped: {arrived} forwarded, 0 dropped")
        decisions = sum(1 for line in lines if line.startswith("router: forwarded"))
        not_shown = sum(int(found[1]) for found in (re.match(
            r"^router: (\d+) more decisions in that second, not shown$", line)
            for line in lines) if found)
        self.assertEqual(decisions + not_shown, arrived, lines[-5:])
        # At most 5 a second: 2 s of sending gives 15 or so, never thousands.
        self.assertLess(decisions, 5 * 6, lines[:40])

    def test_bad_arguments_get_one_line_and_status_2(self):
        for arguments, error in ((["eth0", "eth0", support.GROUP], "must differ"),
                                 (["eth0", "eth1", "10.0.0.1"], "not an IPv4 multicast"),
                                 (["eth0", "eth1", "banana"], "not an IPv4 address")):
            result = subprocess.run([support.PYTHON, ROUTER, *arguments], capture_output=True,
                                    text=True, timeout=10)
            self.assertEqual(result.returncode, 2, result.stderr)
            self.assertIn(error, result.stderr.splitlines()[-1])
            self.assertNotIn("Traceback", result.stderr)
        missing = self.lab.run(1, [support.PYTHON, ROUTER, "eth0", "nosuch", support.GROUP])
        self.assertEqual((missing.returncode, missing.stderr.count("\n")), (1, 1),
                         missing.stderr)


class KernelRouterLabTest(BothRouters, RouterLab):
    """The same lab with the kernel's router, where the kernel routes multicast."""

    router = "kernel"

    @classmethod
    def setUpClass(cls):
        support.needs_kernel(cls, "ip_mroute", guest=True)
        support.skip_unless(shutil.which("smcrouted"), "smcroute is not installed")
        super().setUpClass()
