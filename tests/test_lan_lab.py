"""What a LAN can do to multicast, emulated on the lab's Linux bridge."""

import subprocess
import unittest

from . import netlab, support
from .support import GROUP

RECEIVER, SENDER = 0, 1


class LanLabTest(netlab.LabTestCase):
    def bridge(self, *argv):
        result = subprocess.run(self.lab.bridge_command(list(argv)),
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_client_isolation_stops_multicast_between_clients(self):
        """Wi-Fi client isolation, as a bridge's isolated ports: no datagram crosses
        from one client to another, and the sender says which interface it used."""
        self.start(RECEIVER, support.python_script("socket_multicast_receiver.py", "--quiet"))
        self.assertTrue(support.wait_until(lambda: self.lab.joined(RECEIVER, GROUP), 5))
        for port in ("v0", "v1"):
            self.bridge("bridge", "link", "set", "dev", port, "isolated", "on")
            self.addCleanup(self.bridge, "bridge", "link", "set", "dev", port, "isolated", "off")
        isolated = self.lab.run(SENDER, support.python_script(
            "socket_multicast_sender.py", "--count", "2", "--interval", "0.1"))
        self.assertEqual(isolated.returncode, 1, isolated.stderr)
        self.assertIn("no receiver answered: we sent from eth0 (10.77.0.2) with ttl 1",
                      isolated.stdout)
        for port in ("v0", "v1"):
            self.bridge("bridge", "link", "set", "dev", port, "isolated", "off")
        joined = self.lab.run(SENDER, support.python_script(
            "socket_multicast_sender.py", "--count", "2", "--interval", "0.1"))
        self.assertEqual(joined.returncode, 0, joined.stdout)


if __name__ == "__main__":
    unittest.main()
