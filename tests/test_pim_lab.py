"""The PIM-SM lab in network namespaces (lab/pimlab.py: three FRR routers configured by
lab/pim-router.sh, as in the Compose lab), where the kernel routes multicast, and in a
guest kernel where it does not (tests/test_guest.py runs this module there). Judged by
traffic (which receivers answer, the hops they report) and by the routers' own tables;
a failure shows the routers' logs, FRR's and the kernel's multicast tables."""

import contextlib
import importlib.util
import os
import shutil
import unittest

from . import support

spec = importlib.util.spec_from_file_location(
    "pimlab", os.path.join(support.PROJECT, "lab", "pimlab.py"))
pimlab = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pimlab)

RP = pimlab.RP
# Each router's interfaces, by construction of the lab (lab/pimlab.py's HOSTS).
R1_UP, R2_DOWN, R2_LAN, R3_LAN = "eth1", "eth1", "eth2", "eth1"


class PimLabTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        support.needs_kernel(cls, "ip_mroute", guest=True)
        support.skip_unless(os.geteuid() == 0, "the PIM lab makes namespaces: it needs root")
        support.skip_unless(shutil.which("vtysh") and os.path.exists("/usr/lib/frr/pimd"),
                            "FRR is not installed (Debian: frr)")
        cls.lab = pimlab.PimLab()
        if not cls.lab.wait_ready(90):
            evidence = cls.lab.evidence()
            cls.lab.close()
            raise AssertionError(f"the routers never all knew the RP {RP}:\n{evidence}")

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()

    @contextlib.contextmanager
    def evidence(self):
        """On a failed check inside, add what the routers and the kernel said."""
        try:
            yield
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.lab.evidence()}") from None

    def summary(self, events):
        found = [event for event in events if event["type"] == "summary"]
        self.assertEqual(len(found), 1, events)
        return found[0]

    def test_1_the_ttl_decides_who_hears_in_every_round_once_the_tree_stands(self):
        for ttl, heard in ((1, {"near"}), (2, {"near"}), (3, {"near", "pim2"}),
                           (4, {"near", "pim2", "pim3"})):
            # A round ends once as many have answered as should; one that answers
            # when it should not still shows in the summary.
            events = self.lab.send(ttl, 10, interval=0.1, timeout=3, expect=len(heard))
            rounds = pimlab.answered(events)
            with self.evidence():
                self.assertIn(heard, rounds, (ttl, rounds))
                first = rounds.index(heard)
                self.assertGreaterEqual(len(rounds) - first, 5, (ttl, rounds))
                self.assertTrue(all(found == heard for found in rounds[first:]),
                                (ttl, heard, rounds))
                self.assertEqual({entry["name"] for entry in self.summary(events)["receivers"]},
                                 heard, (ttl, events[-1]))

    def sending(self):
        """The sender, at TTL 4, in the background until the test ends; its address."""
        self.lab.start_sender(4)
        self.addCleanup(self.lab.stop_sender)
        return f"{pimlab.DEMO}.2"

    def test_2_the_tree_in_the_routers_tables(self):
        sender = self.sending()
        with self.evidence():
            self.assertTrue(support.wait_until(
                lambda: R1_UP in self.lab.mroutes("r1").get(sender, ())
                and {R2_LAN, R2_DOWN} <= self.lab.mroutes("r2").get(sender, set())
                and R3_LAN in self.lab.mroutes("r3").get(sender, ()), 60, interval=1),
                "the source tree (S,G) from r1 to both receivers' networks")
            # The shared tree (*,G) at the RP, r2: out toward pim2 and toward r3.
            self.assertLessEqual({R2_LAN, R2_DOWN}, self.lab.mroutes("r2").get("*", set()))

    def test_3_a_branch_is_pruned_when_its_last_receiver_leaves_and_grafted_back(self):
        sender = self.sending()
        with self.evidence():
            self.assertTrue(support.wait_until(
                lambda: R3_LAN in self.lab.mroutes("r3").get(sender, ()), 60, interval=1))
            self.lab.stop_receiver("pim3")
            # The IGMP leave (two queries a second apart), then a prune toward r2.
            self.assertTrue(support.wait_until(
                lambda: R3_LAN not in self.lab.mroutes("r3").get(sender, ()), 30, interval=1),
                "r3's network left the tree")
            self.assertIn(R2_LAN, self.lab.mroutes("r2").get(sender, ()))
            self.lab.start_receiver("pim3")
            self.assertTrue(support.wait_until(
                lambda: R2_DOWN in self.lab.mroutes("r2").get(sender, ())
                and R3_LAN in self.lab.mroutes("r3").get(sender, ()), 30, interval=1),
                "the branch to r3 is back")
        events = self.lab.stop_sender()
        with self.evidence():
            self.assertIn("pim3", {ack["name"] for event in events if event["type"] == "round"
                                   for ack in event["acks"]})

    def test_4_each_receiver_tells_how_many_routers_the_datagrams_crossed(self):
        events = self.lab.send(8, 8, interval=0.1, timeout=3, expect=3)
        hops = {entry["name"]: (entry["ttl_received"], entry["hops"])
                for entry in self.summary(events)["receivers"]}
        with self.evidence():
            self.assertEqual(hops, {"near": (8, 0), "pim2": (6, 2), "pim3": (5, 3)})


if __name__ == "__main__":
    unittest.main()
