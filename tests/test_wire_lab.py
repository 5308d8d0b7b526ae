"""What the senders put on the wire, held to the lab's iptables counters and the kernel's tables."""

import re
import unittest

from . import netlab, support
from .support import GROUP

SENDER, RECEIVER, TWO_INTERFACES = 0, 1, 2
SECOND = "10.99.0.1"  # the address of second0 on TWO_INTERFACES


class WireLabTest(netlab.LabTestCase):
    hosts = 3

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A second interface: one end of a veth pair whose other end stays on the host.
        result = cls.lab.run(TWO_INTERFACES, ["sh", "-c", (
            "ip link add second0 type veth peer name second1 && "
            f"ip addr add {SECOND}/24 dev second0 && "
            "ip link set second0 up && ip link set second1 up")])
        if result.returncode != 0:
            cls.lab.close()
            raise AssertionError(f"no second interface: {result.stderr}")

    def tearDown(self):
        super().tearDown()
        for host in range(self.hosts):
            self.lab.run(host, ["iptables", "-F"])

    def rule(self, host, *rule):
        result = self.lab.run(host, ["iptables", "-A", *rule, "-j", "ACCEPT"])
        self.assertEqual(result.returncode, 0, result.stderr)

    def counters(self, host, chain):
        """The packet counter of each rule in chain, in order."""
        listing = self.lab.run(host, ["iptables", "-L", chain, "-v", "-x", "-n"]).stdout
        return [int(m[1]) for m in re.finditer(r"^\s*(\d+)\s+\d+\s+ACCEPT", listing, re.M)]

    def receiver(self, host, script="multicast_receiver.py", *arguments):
        child = self.start(host, support.python_script(script, *arguments))
        self.assertTrue(support.wait_until(lambda: self.lab.joined(host, GROUP), 5),
                        child.stderr)
        return child

    def test_the_ttl_on_the_wire_is_the_one_asked_for(self):
        self.receiver(RECEIVER)
        for script, per_run in (("multicast_sender.py", 3), ("socket_multicast_sender.py", 6)):
            for ttl in (1, 200):
                with self.subTest(script=script, ttl=ttl):
                    self.lab.run(RECEIVER, ["iptables", "-F"])
                    self.rule(RECEIVER, "INPUT", "-d", GROUP, "-m", "ttl", "--ttl-eq", str(ttl))
                    self.rule(RECEIVER, "INPUT", "-d", GROUP)  # every other TTL
                    sender = self.start(SENDER, support.python_script(
                        script, "--ttl", str(ttl), "--count", "3", "--interval", "0"))
                    self.assertEqual(sender.wait(20), 0, sender.stderr)
                    # three messages (and the socket sender's three end-of-run messages)
                    self.assertEqual(self.counters(RECEIVER, "INPUT"), [per_run, 0])

    def test_the_ipv6_hop_limit_on_the_wire_is_the_one_asked_for(self):
        group = "ff15::10"
        self.start(RECEIVER, support.python_script("socket_multicast_receiver.py", "-g", group,
                                                   "-q"))
        self.assertTrue(support.wait_until(lambda: self.lab.joined(RECEIVER, group), 5))
        self.addCleanup(self.lab.run, RECEIVER, ["ip6tables", "-F"])
        for hops in (1, 200):
            with self.subTest(hops=hops):
                self.lab.run(RECEIVER, ["ip6tables", "-F"])
                for match in (["-m", "hl", "--hl-eq", str(hops)], []):  # then every other
                    result = self.lab.run(RECEIVER, ["ip6tables", "-A", "INPUT", "-d", group,
                                                     *match, "-j", "ACCEPT"])
                    self.assertEqual(result.returncode, 0, result.stderr)
                sender = self.start(SENDER, support.python_script(
                    "socket_multicast_sender.py", "-g", group, "--ttl", str(hops),
                    "--count", "3", "--interval", "0", "--json"))
                self.assertEqual(sender.wait(20), 0, sender.stderr)
                listing = self.lab.run(RECEIVER, ["ip6tables", "-L", "INPUT", "-v", "-x",
                                                  "-n"]).stdout
                counts = [int(m[1]) for m in re.finditer(r"^\s*(\d+)\s+\d+\s+ACCEPT",
                                                         listing, re.M)]
                self.assertEqual(counts, [6, 0], "three messages and three ends of run")
                # The receiver read the same hop limit (IPV6_RECVHOPLIMIT): one link, 0 hops.
                [entry] = support.events(sender, "summary")[0]["receivers"]
                self.assertEqual((entry["ttl_received"], entry["hops"]), (hops, 0))

    def test_the_receiver_reads_the_ttl_that_is_on_the_wire(self):
        self.receiver(RECEIVER, "socket_multicast_receiver.py", "-q")
        self.rule(RECEIVER, "INPUT", "-d", GROUP, "-m", "ttl", "--ttl-eq", "7")
        self.rule(RECEIVER, "INPUT", "-d", GROUP)  # every other TTL
        sender = self.start(SENDER, support.python_script(
            "socket_multicast_sender.py", "--ttl", "7", "--count", "3", "--interval", "0",
            "--json"))
        self.assertEqual(sender.wait(20), 0, sender.stderr)
        self.assertEqual(self.counters(RECEIVER, "INPUT"), [6, 0])
        [entry] = support.events(sender, "summary")[0]["receivers"]
        self.assertEqual((entry["ttl_received"], entry["hops"]), (7, 0))
        rounds = support.events(sender, "round")
        self.assertEqual([r["acks"][0]["ttl_received"] for r in rounds], [7, 7, 7])

    def test_padding_to_size_and_no_acks_when_asked(self):
        receiver = self.receiver(RECEIVER, "socket_multicast_receiver.py", "--json")
        self.rule(SENDER, "INPUT", "-p", "udp", "-s", self.lab.address(RECEIVER))
        sender = self.start(SENDER, support.python_script(
            "socket_multicast_sender.py", "--json", "--rate", "100", "--count", "5",
            "--size", "1000", "--no-ack"))
        self.assertEqual(sender.wait(20), 0, sender.stderr)
        messages = [e for e in support.json_lines(receiver.lines) if e["type"] == "message"]
        self.assertEqual([m["bytes"] for m in messages], [1000] * 5)
        self.assertEqual(self.counters(SENDER, "INPUT"), [3], "three reports and no ack")

    def test_a_receiver_joins_on_the_interface_named(self):
        for script, interfaces in (("multicast_receiver.py", (SECOND,)),  # addresses only
                                   ("socket_multicast_receiver.py", (SECOND, "second0"))):
            for interface in interfaces:
                with self.subTest(script=script, interface=interface):
                    child = self.start(TWO_INTERFACES, support.python_script(
                        script, "-i", interface))
                    self.assertTrue(support.wait_until(
                        lambda: self.lab.joined(TWO_INTERFACES, GROUP, device="second0"), 5),
                        child.stderr)
                    self.assertFalse(self.lab.joined(TWO_INTERFACES, GROUP, device="eth0"))
                    child.kill()

    def test_a_sender_sends_on_the_interface_named(self):
        for script, interfaces in (("multicast_sender.py", (SECOND,)),  # addresses only
                                   ("socket_multicast_sender.py", (SECOND, "second0"))):
            for interface in interfaces:
                with self.subTest(script=script, interface=interface):
                    self.lab.run(TWO_INTERFACES, ["iptables", "-F"])
                    self.rule(TWO_INTERFACES, "OUTPUT", "-o", "second0", "-d", GROUP)
                    self.rule(TWO_INTERFACES, "OUTPUT", "-o", "eth0", "-d", GROUP)
                    sender = self.start(TWO_INTERFACES, support.python_script(
                        script, "-i", interface, "--timeout", "0.05"))
                    sender.wait(20)
                    sent, elsewhere = self.counters(TWO_INTERFACES, "OUTPUT")
                    self.assertGreaterEqual(sent, 1)
                    self.assertEqual(elsewhere, 0)


if __name__ == "__main__":
    unittest.main()
