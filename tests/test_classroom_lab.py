"""A classroom on one host: two "PCs" (network namespaces on one LAN bridge), each
with a Docker engine and a host name of its own, then a Swarm of the two. The
kit's own commands from the README, run as a class would run them."""

import json
import os
import re
import subprocess
import unittest

from . import enginelab, support
from .support import GROUP, json_lines

IMAGE = "multicast-demo"
NAMES = ["node-a", "node-b"]


def compose_commands():
    """The Compose commands this host has: v1 and v2, as far as installed."""
    found = []
    for command in (["docker-compose"], ["docker", "compose"]):
        try:
            if subprocess.run([*command, "version"], capture_output=True,
                              timeout=30).returncode == 0:
                found.append(command)
        except (OSError, subprocess.SubprocessError):
            pass
    return found


class ClassroomLabTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        support.skip_unless(not enginelab.probe(), enginelab.probe())
        support.skip_unless(
            subprocess.run(["docker", "info"], capture_output=True).returncode == 0,
            "no Docker engine runs here to build the image ('docker info' fails)")
        support.skip_unless(compose_commands(), "no Compose to build the image with")
        built = subprocess.run([*compose_commands()[0], "--profile", "host", "build",
                                "multicast-host-receiver"], cwd=support.PROJECT,
                               capture_output=True, text=True, timeout=600)
        support.skip_unless(built.returncode == 0, "the image could not be built here: "
                                                   + built.stderr[-300:])
        cls.lab = enginelab.EngineLab(NAMES, image=IMAGE)
        cls.addClassCleanup(cls.lab.close)

    def setUp(self):
        self.addCleanup(self.remove_containers)

    def remove_containers(self):
        for index in range(len(NAMES)):
            ids = self.lab.docker(index, "ps", "-aq").stdout.split()
            if ids:
                self.lab.docker(index, "rm", "-f", *ids)

    def docker_ok(self, index, *argv, timeout=120):
        result = self.lab.docker(index, *argv, timeout=timeout)
        self.assertEqual(result.returncode, 0, f"docker {' '.join(argv)}: {result.stderr}")
        return result

    def receiver_in_docker(self, index, *arguments):
        """A measuring receiver on machine index's own network (docker run --network host)."""
        self.docker_ok(index, "run", "-d", "--name", "receiver", "--network", "host",
                       "--read-only", "--cap-drop", "ALL", IMAGE, "python3",
                       "socket_multicast_receiver.py", *arguments)
        self.assertTrue(support.wait_until(
            lambda: self.lab.lab.joined(index, GROUP), 20), self.lab.docker(
                index, "logs", "receiver").stderr)

    def sender_in_docker(self, index, *arguments, status=0):
        result = self.lab.docker(index, "run", "--rm", "--network", "host", IMAGE, "python3",
                                 "socket_multicast_sender.py", "--json", *arguments)
        self.assertEqual(result.returncode, status, result.stderr)
        return json_lines(result.stdout.splitlines())

    def test_docker_run_on_the_host_network_across_two_machines(self):
        self.receiver_in_docker(0)
        events = self.sender_in_docker(1, "--count", "3", "--interval", "0.2", "--expect",
                                       "node-a")
        [entry] = events[-1]["receivers"]
        self.assertEqual((entry["name"], entry["address"], entry["acks"], entry["hops"]),
                         ("node-a", self.lab.lab.address(0), 3, 0))

    def test_a_native_receiver_and_a_sender_in_docker(self):
        own_name = ["unshare", "--uts", "sh", "-c", 'hostname node-a && exec "$@"', "sh"]
        receiver = subprocess.Popen(self.lab.lab.command(0, [*own_name, *support.python_script(
            "socket_multicast_receiver.py", "--quiet")]), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        self.addCleanup(receiver.wait, 10)
        self.addCleanup(receiver.kill)
        self.assertTrue(support.wait_until(lambda: self.lab.lab.joined(0, GROUP), 10))
        events = self.sender_in_docker(1, "--count", "2", "--interval", "0.2")
        [entry] = events[-1]["receivers"]
        self.assertEqual((entry["name"], entry["acks"]), ("node-a", 2), "the PC's own name")

    def test_the_compose_host_profile_on_two_machines(self):
        for compose in compose_commands():
            with self.subTest(compose=" ".join(compose)):
                self.compose_on_two_machines(compose)

    def compose_on_two_machines(self, compose):
        def run(index, *argv, env=None):
            result = subprocess.run(
                [*compose, "-p", "classroom", "--profile", "host", *argv], cwd=support.PROJECT,
                env={**self.lab.env(index), **(env or {})}, capture_output=True, text=True,
                timeout=300, stdin=subprocess.DEVNULL)
            self.assertEqual(result.returncode, 0, result.stderr[-1500:])
            return result

        # MULTICAST_INTERFACE reaches the scripts: a wrong one is refused by name ...
        wrong = subprocess.run(
            [*compose, "-p", "classroom", "--profile", "host", "run", "--rm",
             "multicast-host-receiver"], cwd=support.PROJECT, capture_output=True, text=True,
            env={**self.lab.env(0), "MULTICAST_INTERFACE": "nosuch0"}, timeout=300,
            stdin=subprocess.DEVNULL)
        self.assertEqual(wrong.returncode, 2, wrong.stderr[-1500:])
        self.assertIn("nosuch0", wrong.stderr)
        interface = {"MULTICAST_INTERFACE": "eth0"}  # ... and a right one is used
        run(0, "up", "-d", "multicast-host-receiver", env=interface)
        self.addCleanup(run, 0, "down", "-t", "1")
        self.assertTrue(support.wait_until(lambda: self.lab.lab.joined(0, GROUP), 20))
        logs = lambda index, service: run(index, "logs", "--no-color", service).stdout
        self.assertTrue(support.wait_until(
            lambda: "joined on eth0" in logs(0, "multicast-host-receiver"), 10),
            logs(0, "multicast-host-receiver"))
        run(1, "up", "-d", "multicast-host-sender",
            env={**interface, "MULTICAST_EXPECT": "node-a", "MULTICAST_INTERVAL": "0.3"})
        self.addCleanup(run, 1, "down", "-t", "1")
        # The sender's machine runs the sender alone: no receiver there answers for the LAN.
        names = self.lab.docker(1, "ps", "--format", "{{.Names}}").stdout.split()
        self.assertEqual(len(names), 1, names)
        self.assertIn("sender", names[0])
        self.assertTrue(support.wait_until(
            lambda: re.search(r"seq \d+: 1 receiver: 10\.77\.0\.1 \(node-a\)",
                              logs(1, "multicast-host-sender")), 20),
            logs(1, "multicast-host-sender"))
        self.assertIn("from eth0 (10.77.0.2)", logs(1, "multicast-host-sender"))
        run(1, "down", "-t", "1")
        run(0, "down", "-t", "1")

    def test_a_sender_heard_by_nobody_names_the_interface_it_sent_from(self):
        result = self.lab.docker(1, "run", "--rm", "--network", "host", IMAGE, "python3",
                                 "socket_multicast_sender.py", "--count", "1")
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("no receiver answered: we sent from eth0 (10.77.0.2) with ttl 1",
                      result.stdout)

    def test_ttl_1_stays_on_the_lan(self):
        """The datagrams reach the other PC with TTL 1: no router passes them on."""
        self.receiver_in_docker(0)
        rule = ["INPUT", "-d", GROUP, "-m", "ttl", "--ttl-eq", "1", "-j", "ACCEPT"]
        self.assertEqual(self.lab.lab.run(0, ["iptables", "-I", *rule]).returncode, 0)
        self.addCleanup(self.lab.lab.run, 0, ["iptables", "-D", *rule])
        events = self.sender_in_docker(1, "--count", "3", "--interval", "0.1")
        listing = self.lab.lab.run(0, ["iptables", "-L", "INPUT", "-v", "-x", "-n"]).stdout
        counted = int(re.search(r"^\s*(\d+)\s+\d+\s+ACCEPT.*TTL match TTL == 1", listing,
                                re.M).group(1))
        self.assertEqual(counted, 6, "three messages and three ends of run, all with TTL 1")
        self.assertEqual(events[-1]["receivers"][0]["ttl_received"], 1)


class SwarmLabTest(unittest.TestCase):
    """`docker stack deploy` puts a named receiver on every node of a two-node Swarm."""

    @classmethod
    def setUpClass(cls):
        ClassroomLabTest.setUpClass.__func__(cls)
        lab = cls.lab
        manager = lab.lab.address(0)
        init = lab.docker(0, "swarm", "init", "--advertise-addr", manager)
        support.skip_unless(init.returncode == 0, f"no Swarm here: {init.stderr.strip()}")
        token = lab.docker(0, "swarm", "join-token", "-q", "worker").stdout.strip()
        joined = lab.docker(1, "swarm", "join", "--token", token, f"{manager}:2377")
        assert joined.returncode == 0, joined.stderr

    def manager(self, *argv, timeout=120):
        result = self.lab.docker(0, *argv, timeout=timeout)
        self.assertEqual(result.returncode, 0, f"docker {' '.join(argv)}: {result.stderr}")
        return result

    def running_on(self):
        tasks = self.lab.docker(0, "service", "ps", "multicast_receiver", "--filter",
                                "desired-state=running", "--format",
                                "{{.Node}} {{.CurrentState}}").stdout.splitlines()
        return sorted(line.split()[0] for line in tasks if " Running " in f" {line} ")

    def board(self):
        script = ("import urllib.request; print(urllib.request.urlopen("
                  "'http://127.0.0.1:8080/board.json', timeout=2).read().decode())")
        result = self.lab.lab.run(0, [support.PYTHON, "-c", script])
        try:
            return json.loads(result.stdout)
        except ValueError:
            return {}

    def test_a_receiver_on_every_node_and_a_drained_node_named_missing(self):
        self.manager("stack", "deploy", "--resolve-image", "never", "-c",
                     os.path.join(support.PROJECT, "multicast-stack.yml"), "multicast")
        self.addCleanup(self.lab.docker, 0, "stack", "rm", "multicast")
        self.assertTrue(support.wait_until(lambda: self.running_on() == NAMES, 90),
                        self.lab.docker(0, "service", "ps", "multicast_receiver").stdout)
        self.manager("run", "-d", "--name", "teacher", "--network", "host", IMAGE, "python3",
                     "socket_multicast_sender.py", "--count", "0", "--interval", "0.5",
                     "--json", "--expect", ",".join(NAMES), "--board", "8080")
        self.addCleanup(self.lab.docker, 0, "rm", "-f", "teacher")

        def rounds():
            lines = self.lab.docker(0, "logs", "teacher").stdout.splitlines()
            return [e for e in json_lines(lines) if e["type"] == "round"]

        self.assertTrue(support.wait_until(
            lambda: any(sorted(a["name"] for a in r["acks"]) == NAMES for r in rounds()), 30),
            rounds())
        self.assertEqual(sorted(row["name"] for row in self.board()["receivers"]), NAMES)
        self.manager("node", "update", "--availability", "drain", NAMES[1])
        self.addCleanup(self.lab.docker, 0, "node", "update", "--availability", "active",
                        NAMES[1])
        count = len(rounds())
        self.assertTrue(support.wait_until(
            lambda: any(r["missing"] == [{"address": self.lab.lab.address(1),
                                          "name": NAMES[1]}]
                        for r in rounds()[count:]), 30), rounds()[count:])
        self.assertTrue(support.wait_until(
            lambda: {row["name"]: row["state"] for row in self.board()["receivers"]}.get(
                NAMES[1]) in ("silent", "gone"), 10), self.board())


if __name__ == "__main__":
    unittest.main()
