"""lab/check.py, the check before class, against what this machine's kernel, its Docker
bridge and its Compose commands say themselves."""

import os
import shutil
import subprocess
import tempfile
import unittest

from . import support

CHECK = os.path.join(support.PROJECT, "lab", "check.py")


def run_check(env=None):
    return subprocess.run([support.PYTHON, CHECK], capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL, env=env)


def version(argv):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return result.stdout.strip() if result.returncode == 0 else None


class CheckTest(unittest.TestCase):
    def test_each_line_is_what_the_machine_says(self):
        support.skip_unless(shutil.which("docker") and version(["docker", "info", "-f",
                                                                 "{{.KernelVersion}}"]),
                            "no Docker daemon is reachable ('docker info' fails)")
        support.skip_unless(version(["docker", "info", "-f", "{{.KernelVersion}}"])
                            == os.uname().release,
                            "Docker's kernel is not this machine's (a VM's): nothing here "
                            "to hold the check's lines against")
        result = run_check()
        lines = result.stdout.splitlines()
        routes4 = os.path.exists("/proc/net/ip_mr_vif")
        routes6 = os.path.exists("/proc/net/ip6_mr_vif")
        self.assertEqual(result.returncode, 0 if routes4 else 1, result.stdout + result.stderr)
        for name, argv in (("docker-compose", ["docker-compose", "version", "--short"]),
                           ("docker compose", ["docker", "compose", "version", "--short"])):
            found = version(argv)
            if found:
                self.assertIn(f"{name} {found}", lines[0])
        self.assertIn(f"kernel {os.uname().release} (this machine's)", lines[0])
        self.assertEqual(lines[1], "the demo and the crowd, watch and board profiles: yes")
        self.assertEqual(lines[2], "the routed lab: " + (
            "yes, the kernel routes (smcroute)" if routes4 else
            "yes, in user space (lab/router.py), as the kernel cannot route multicast"))
        self.assertEqual(lines[3], "the PIM lab: " + (
            "yes" if routes4 else "no: FRR's routers need the kernel's IPv4 multicast routing"))
        self.assertEqual(lines[4], f"the kernel's multicast routing: IPv4 "
                         f"{'yes' if routes4 else 'no'} (CONFIG_IP_MROUTE, /proc/net/ip_mr_vif), "
                         f"IPv6 {'yes' if routes6 else 'no'} (CONFIG_IPV6_MROUTE, "
                         f"/proc/net/ip6_mr_vif)")
        bridge = "/sys/class/net/docker0/bridge"
        with open(f"{bridge}/multicast_snooping") as snooping, \
                open(f"{bridge}/multicast_querier") as querier:
            snooping, querier = snooping.read().strip(), querier.read().strip()
        self.assertRegex(lines[5], f"^Docker's bridges: IGMP snooping "
                         f"{'on' if snooping == '1' else 'off'}, .*\\(docker0: "
                         f"multicast_snooping {snooping}, multicast_querier {querier}\\)$")
        self.assertEqual(len(lines), 6, lines)

    def test_without_docker_one_line_and_status_2(self):
        empty = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, empty)
        result = run_check(env={**os.environ, "PATH": empty})
        self.assertEqual(result.returncode, 2)
        self.assertEqual(len(result.stdout.splitlines()), 1, result.stdout)
        self.assertIn("no engine answers `docker info`", result.stdout)
        self.assertEqual(result.stderr, "")


if __name__ == "__main__":
    unittest.main()
