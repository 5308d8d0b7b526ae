"""docker-compose.yml end to end, with a real Docker engine, under Compose v1 and v2."""

import os
import re
import shutil
import subprocess
import time
import unittest

from . import support

CONTAINERS = ["multicast-receiver", "multicast-sender", "multicast-receiver-2",
              "multicast-receiver-3", "multicast-receiver-4"]
ACK = re.compile(r"^received b'ack' from \('([\d.]+)', 10000\)$")
WAITING = "waiting to receive message"


def run(argv, timeout=60):
    return subprocess.run(argv, cwd=support.PROJECT, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def works(argv):
    try:
        return run(argv, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def base_image():
    with open(os.path.join(support.PROJECT, "Dockerfile")) as dockerfile:
        for line in dockerfile:
            if line.upper().startswith("FROM "):
                return line.split()[1]
    raise AssertionError("the Dockerfile has no FROM line")


def rounds(sender_log):
    """The ack addresses of each finished round in the sender's log."""
    finished, current = [], None
    for line in sender_log.splitlines():
        if line.startswith("sending "):
            current = []
        elif current is not None and ACK.match(line):
            current.append(ACK.match(line).group(1))
        elif current is not None and line == "timed out, no more responses":
            finished.append(current)
            current = None
    return finished


class ComposeTest:
    """The checks, run once for each Compose command (the subclasses)."""

    compose = None  # the command that runs Compose, e.g. ["docker-compose"]

    @classmethod
    def setUpClass(cls):
        support.skip_unless(shutil.which("docker") and works(["docker", "info"]),
                            "no Docker daemon is reachable ('docker info' fails)")
        support.skip_unless(works([*cls.compose, "version"]),
                            f"'{' '.join(cls.compose)}' is not installed")
        support.skip_unless(works(["docker", "image", "inspect", base_image()]),
                            f"the base image {base_image()} is not on this machine "
                            "(no registry to pull it from: see .ci/run)")
        existing = run(["docker", "ps", "-aq", *sum(
            (["--filter", f"name=^{name}$"] for name in CONTAINERS), [])]).stdout.split()
        support.skip_unless(not existing, "a multicast demo is already running here "
                                          "(docker-compose down first)")
        cls.project = f"mctest{os.getpid()}{cls.__name__.lower()}"

    def compose_run(self, *arguments, timeout=300):
        result = run([*self.compose, "-p", self.project, *arguments], timeout=timeout)
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        return result

    def tearDown(self):
        run([*self.compose, "-p", self.project, "--profile", "crowd", "down",
             "--remove-orphans", "-t", "1"], timeout=120)

    def logs(self, container):
        return run(["docker", "logs", container]).stdout

    def test_demo_end_to_end(self):
        self.compose_run("up", "--build", "-d")

        # No start-up race: the sender started after the receiver joined,
        # so its very first round is acknowledged.
        self.assertTrue(support.wait_until(lambda: rounds(self.logs("multicast-sender")), 30),
                        self.logs("multicast-sender"))
        first = rounds(self.logs("multicast-sender"))[0]
        self.assertEqual(len(first), 1, self.logs("multicast-sender"))
        sender_lines = self.logs("multicast-sender").splitlines()
        self.assertEqual(sender_lines[:2], ["sending b'very important data'",
                                            "waiting to receive"])
        self.assertRegex(sender_lines[2], ACK)
        self.assertEqual(sender_lines[3:5], ["waiting to receive",
                                             "timed out, no more responses"])

        receiver_lines = self.logs("multicast-receiver").splitlines()
        self.assertEqual(receiver_lines[0], WAITING)
        self.assertRegex(receiver_lines[1], r"^received 19 bytes from \('[\d.]+', \d+\)$")
        self.assertEqual(receiver_lines[2], "b'very important data'")
        self.assertRegex(receiver_lines[3], r"^sending acknowledgement to \('[\d.]+', \d+\)$")
        self.assertEqual(receiver_lines[4:6], ["", WAITING])

        # docker exec works, as an unprivileged user, in a hardened container.
        shell = run(["docker", "exec", "multicast-receiver", "bash", "-c", "id -u"])
        self.assertEqual(shell.returncode, 0, shell.stderr)
        self.assertNotEqual(shell.stdout.strip(), "0")
        inspect = run(["docker", "inspect", "-f",
                       "{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} "
                       "{{.HostConfig.SecurityOpt}} {{.Config.User}}", "multicast-receiver"])
        self.assertRegex(inspect.stdout.strip(),
                         r"^true \[(CAP_)?ALL\] \[no-new-privileges(:true)?\] multicast")
        network = run(["docker", "network", "inspect", "multicast-network"])
        self.assertEqual(network.returncode, 0, network.stderr)

        # SIGTERM ends both scripts cleanly (exit 0), not killed after the grace time.
        started = time.monotonic()
        self.compose_run("stop", "-t", "10")
        stop_seconds = time.monotonic() - started
        for name in ("multicast-sender", "multicast-receiver"):
            status = run(["docker", "inspect", "-f", "{{.State.ExitCode}}", name])
            self.assertEqual(status.stdout.strip(), "0", f"{name} did not stop on SIGTERM")
            self.assertEqual(self.logs(name).splitlines()[-1], "closing socket")
        self.assertLess(stop_seconds, 10, "a container waited for SIGKILL")

    def test_crowd_profile_gives_acks_from_four_receivers(self):
        self.compose_run("--profile", "crowd", "up", "--build", "-d")
        self.assertTrue(
            support.wait_until(
                lambda: any(len(set(r)) == 4 for r in rounds(self.logs("multicast-sender"))),
                40),
            self.logs("multicast-sender"))


class ComposeV1Test(ComposeTest, unittest.TestCase):
    compose = ["docker-compose"]


class ComposeV2Test(ComposeTest, unittest.TestCase):
    compose = ["docker", "compose"]


if __name__ == "__main__":
    unittest.main()
