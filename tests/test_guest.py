"""Where this machine's kernel cannot route multicast, the routing tests run in a guest
kernel that can (lab/guest.py: Debian's kernel under QEMU, with virtme-ng): the PIM
lab (tests/test_pim_lab.py) and the routed lab's kernel router
(tests/test_router_lab.py). One guest for all of them; its whole output is shown
when one fails. Where the kernel routes multicast they run on this machine instead."""

import importlib.util
import os
import re
import unittest

from . import support

spec = importlib.util.spec_from_file_location(
    "guest", os.path.join(support.PROJECT, "lab", "guest.py"))
guest = importlib.util.module_from_spec(spec)
spec.loader.exec_module(guest)

IN_THE_GUEST = ["tests.test_pim_lab", "tests.test_router_lab.KernelRouterLabTest"]


class GuestTest(unittest.TestCase):
    def test_the_routing_tests_pass_in_a_guest_kernel(self):
        support.needs_kernel(self, "ip_mroute", present=False)
        support.skip_unless(os.geteuid() == 0, "the guest's labs make namespaces: root only")
        try:
            guest.vng_command()
            guest.kernel_image()
        except guest.GuestError as error:
            support.skip_unless(False, f"no guest kernel here: {error}")
        # The guest's kernel must route multicast, and every test must run: no skip.
        command = (f"test -e /proc/net/ip_mr_vif && uname -r && {support.NO_SKIP_VARIABLE}=1 "
                   f"python3 -m unittest -v {' '.join(IN_THE_GUEST)}")
        result = guest.boot(command, kvm=guest.kvm_works(), timeout=900, capture=True,
                            cwd=support.PROJECT)
        output = result.stdout
        self.assertEqual(result.returncode, 0, f"the guest's output:\n{output[-30000:]}")
        ran = re.search(r"^Ran (\d+) tests? in", output, re.M)
        self.assertTrue(ran and int(ran[1]) >= 6, output[-30000:])
        self.assertRegex(output, r"(?m)^OK$", output[-30000:])


if __name__ == "__main__":
    unittest.main()
