"""docker-compose.yml end to end, with a real Docker engine, under Compose v1 and v2."""

import datetime
import json
import os
import re
import shutil
import socket
import subprocess
import time
import unittest
import urllib.request

from . import support

PIM_ROUTERS = ["multicast-pim-r1", "multicast-pim-r2", "multicast-pim-r3"]
CONTAINERS = ["multicast-receiver", "multicast-sender", "multicast-router",
              "multicast-receiver-far", "multicast-watch", "multicast-watch-far",
              *PIM_ROUTERS, "multicast-receiver-pim2", "multicast-receiver-pim3",
              "multicast-watch-pim", "multicast-board", "multicast-board-pc1",
              "multicast-board-pc2", "multicast-board-pc3", "multicast-querier",
              "multicast-bystander", "multicast-mesh-board", "multicast-mesh-far"]
PROFILES = ["--profile", "crowd", "--profile", "routed", "--profile", "watch",
            "--profile", "pim", "--profile", "board", "--profile", "snooping",
            "--profile", "mesh", "--profile", "routed-mesh"]
NETWORKS = ["multicast-network", "multicast-far"]  # the file's names; each test class
# gives them names and subnets of its own (MULTICAST_NETWORK, MULTICAST_FAR_NETWORK,
# MULTICAST_FAR_SUBNET, MULTICAST_PIM_PREFIX), so that a network dockerd cannot remove
# ("has active endpoints", moby/moby#43286) fails one class, not the next one too.
ACK = re.compile(r"^received b'ack' from \('([\d.]+)', \d+\)$")
WAITING = "waiting to receive message"
PIM_WHY = ("cannot route: this kernel has no IPv4 multicast routing (built without "
           "CONFIG_IP_MROUTE), which PIM needs; Debian's and Ubuntu's stock kernels have it "
           "(the routed lab works on any kernel)")


def run(argv, timeout=60, env=None):
    return subprocess.run(argv, cwd=support.PROJECT, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL,
                          env=None if env is None else {**os.environ, **env})


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


def stamp(line):
    """The time of a `docker logs --timestamps` line, as text that sorts in time order
    (Docker leaves out a fraction's trailing zeros)."""
    whole, _, fraction = line.split(" ", 1)[0].rstrip("Z").partition(".")
    return f"{whole}.{fraction.ljust(9, '0')}"


def free_ports(count):
    """count ports free on this host now (bound at once, so no two are the same)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def mesh_matrices(log):
    """The last matrices a mesh peer printed: {kind: {(row name, column name): text}}."""
    lines, matrices = log.splitlines(), {}
    for kind in ("multicast", "unicast"):
        at = max(n for n, line in enumerate(lines) if line.startswith(f"{kind} loss %"))
        columns = lines[at + 1].split()
        rows = [line.split() for line in lines[at + 2:at + 2 + len(columns)]]
        matrices[kind] = {(row[0], column): value
                          for row in rows for column, value in zip(columns, row[1:])}
    return matrices


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
        cls.networks = {"multicast-network": f"{cls.project}-near",
                        "multicast-far": f"{cls.project}-far"}
        cls.board_port, cls.mesh_board_port = free_ports(2)  # for the two boards
        cls.environment = {"MULTICAST_NETWORK": cls.networks["multicast-network"],
                           "MULTICAST_FAR_NETWORK": cls.networks["multicast-far"],
                           "MULTICAST_FAR_SUBNET": f"{cls.far_prefix}.0/24",
                           "MULTICAST_FAR_GATEWAY": f"{cls.far_prefix}.1",
                           "MULTICAST_PIM_PREFIX": cls.pim_prefix,
                           "MULTICAST_BOARD_PORT": str(cls.board_port),
                           "MULTICAST_MESH_BOARD_PORT": str(cls.mesh_board_port),
                           "MULTICAST_MESH_FAR_ADDRESS": f"{cls.far_prefix}.100"}

    @classmethod
    def tearDownClass(cls):
        # Untag the images this class built; their layers stay on as the build cache.
        names = run(["docker", "images", "--format", "{{.Repository}}", "--filter",
                     f"reference={cls.project}*"]).stdout.split()
        if names:
            run(["docker", "rmi", "--no-prune", *names], timeout=120)

    def compose_run(self, *arguments, timeout=300, env=None):
        result = run([*self.compose, "-p", self.project, *arguments], timeout=timeout,
                     env={**self.environment, **(env or {})})
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        return result

    def tearDown(self):
        # Stopped first, removed after: dockerd 20.10 sometimes keeps an endpoint of a
        # container removed while it was still being stopped, and then can never remove
        # its network (moby/moby#43286).
        run([*self.compose, "-p", self.project, *PROFILES, "stop", "-t", "1"], timeout=120,
            env=self.environment)
        run([*self.compose, "-p", self.project, *PROFILES, "down", "--remove-orphans",
             "-t", "1"], timeout=120, env=self.environment)

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

        # `docker logs` shows each script's start line (stderr) before its stdout.
        for name, start in (("multicast-sender", "multicast_sender.py: sending to"),
                            ("multicast-receiver", "multicast_receiver.py: listening on")):
            both = run(["docker", "logs", "--timestamps", name])
            lines = sorted(both.stdout.splitlines() + both.stderr.splitlines(), key=stamp)
            self.assertTrue(lines[0].split(" ", 1)[1].startswith(start), lines[:3])
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
        network = run(["docker", "network", "inspect", self.networks["multicast-network"]])
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

    def wait_for_rounds(self, predicate, timeout=40):
        """Wait until predicate(rounds of the sender's log) holds; return the rounds."""
        found = support.wait_until(lambda: predicate(rounds(self.logs("multicast-sender"))),
                                   timeout)
        self.assertTrue(found, self.logs("multicast-sender")[-3000:])
        return rounds(self.logs("multicast-sender"))

    def test_crowd_profile_gives_four_acks_and_scales_to_n_plus_one(self):
        fast = {"MULTICAST_INTERVAL": "0.5"}
        self.compose_run("--profile", "crowd", "up", "--build", "-d", env=fast)
        self.wait_for_rounds(lambda found: any(len(set(r)) == 4 for r in found))
        self.compose_run("--profile", "crowd", "up", "--build", "-d", "--scale",
                         "multicast-crowd=5", env=fast)
        self.wait_for_rounds(lambda found: any(len(set(r)) == 6 for r in found))

    def mesh_containers(self, *services):
        """The containers of these services (the mesh profile's by default)."""
        services = services or ["multicast-mesh", "multicast-mesh-board"]
        return [container for service in services for container in run(
            ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project="
             f"{self.project}", "--filter", f"label=com.docker.compose.service={service}"]
        ).stdout.split()]

    def mesh_logs(self, *services):
        return [self.logs(container) for container in self.mesh_containers(*services)]

    def test_mesh_profile_peers_each_print_the_whole_matrix(self):
        self.compose_run("--profile", "mesh", "up", "--build", "-d",
                         env={"MULTICAST_INTERVAL": "0.2"})
        heard = support.wait_until(lambda: [log.count(") heard\n") for log in
                                            self.mesh_logs()] == [2, 2, 2], 60)
        self.assertTrue(heard, self.mesh_logs())

        def board_told():  # the board peer's page, on this host: every way told
            state = self.board(self.mesh_board_port)
            return state.get("mesh") and len(state["peers"]) == 3 and all(
                cell is not None for kind in state["matrix"].values() for at, row in
                enumerate(kind) for to, cell in enumerate(row) if at != to)
        self.assertTrue(support.wait_until(board_told, 30), self.board(self.mesh_board_port))
        self.compose_run("--profile", "mesh", "stop", "-t", "10")
        for log in self.mesh_logs():
            lines = log.splitlines()
            self.assertRegex(lines[0], r"^mesh peer \w+ at [\d.]+ on 224\.10\.10\.10:10002")
            [head] = [line for line in lines if line.startswith("--- mesh")]
            self.assertIn(": 3 peers,", head)
            start = lines.index(head)
            for kind_line in (start + 1, start + 6):  # each kind's matrix: no loss anywhere
                self.assertIn("loss %", lines[kind_line])
                rows = lines[kind_line + 2:kind_line + 5]
                self.assertEqual([row.split()[1:] for row in rows],
                                 [["-", "0.0", "0.0"], ["0.0", "-", "0.0"],
                                  ["0.0", "0.0", "-"]], log)
            self.assertEqual(lines[-1], "verdict: pass", log)

    def test_routed_mesh_profile_shows_the_ttl_lesson_as_a_matrix(self):
        """--profile routed-mesh: at TTL 1 the far peer's multicast row and column are all
        lost in every peer's matrix while its unicast is clean; at TTL 2 every way is clean
        and the far peer's probes come one hop."""
        services = ["multicast-mesh-near", "multicast-mesh-far"]
        for ttl, far_loss in (("1", "100.0"), ("2", "0.0")):
            self.compose_run("--profile", "routed-mesh", "up", "--build", "-d",
                             env={"MULTICAST_INTERVAL": "0.2", "MULTICAST_TTL": ttl})
            # A stopped peer prints what it knows at once: wait until each knows every way
            # (its status line, every 10 s).
            told = re.compile(r"(?m)^round \d+: 2 peers heard; \d+ of 12 ways known ")
            self.assertTrue(support.wait_until(lambda: [bool(told.search(log)) for log in
                                                        self.mesh_logs(*services)]
                                               == [True] * 3, 60), self.mesh_logs(*services))
            # The near peers' route came from root; the mesh itself runs with no capability.
            status = run(["docker", "exec", self.mesh_containers(services[0])[0], "grep",
                          "^Cap[IPEA]", "/proc/1/status"]).stdout
            self.assertEqual(set(status.split()[1::2]), {"0000000000000000"}, status)
            self.compose_run("--profile", "routed-mesh", "stop", "-t", "10", *services)
            for log in self.mesh_logs(*services):
                matrices = mesh_matrices(log)
                for (row, column), value in matrices["multicast"].items():
                    if row != column:
                        self.assertEqual(value, far_loss if "far" in (row, column) else "0.0",
                                         (ttl, row, column, log))
                self.assertEqual({value for (row, column), value in
                                  matrices["unicast"].items() if row != column}, {"0.0"}, log)
                self.assertEqual(log.splitlines()[-1], "verdict: pass", log)
            [far_log] = self.mesh_logs("multicast-mesh-far")
            hops = re.findall(r"^  (\w+) from it +\d+ received.*; ttl (\d+) \((\d+) hops\)$",
                              far_log, re.M)
            self.assertEqual(sorted(hops), [("multicast", "1", "1")] * 2 * (ttl == "2") +
                             [("unicast", "63", "1")] * 2, far_log)

    def test_settings_come_from_the_environment(self):
        self.compose_run("up", "--build", "-d", env={
            "MULTICAST_MESSAGE": "steered", "MULTICAST_INTERVAL": "0.5",
            "MULTICAST_PORT": "10007"})
        found = self.wait_for_rounds(lambda found: len(found) >= 3)
        self.assertTrue(all(len(r) == 1 for r in found[:3]))
        receiver_log = self.logs("multicast-receiver")
        self.assertIn("b'steered'", receiver_log)
        self.assertRegex(self.logs("multicast-sender"), r"from \('[\d.]+', 10007\)")

    def test_two_terminals_keep_the_running_receiver(self):
        """`up multicast-receiver`, then `up multicast-sender`: the receiver is not recreated."""
        self.compose_run("up", "--build", "-d", "multicast-receiver")
        before = run(["docker", "inspect", "-f", "{{.Id}}", "multicast-receiver"]).stdout
        self.compose_run("up", "--build", "-d", "multicast-sender")
        self.wait_for_rounds(lambda found: len(found) >= 1 and len(found[0]) == 1)
        after = run(["docker", "inspect", "-f", "{{.Id}}", "multicast-receiver"]).stdout
        self.assertEqual(before, after)

    def test_ttl_decides_whether_the_user_space_router_forwards(self):
        self.check_routed_lab("user", "router: user space: lab/router.py forwards "
                                      "(MULTICAST_ROUTER=user)")

    def test_ttl_decides_whether_the_kernel_router_forwards(self):
        support.needs_kernel(self, "ip_mroute")
        self.check_routed_lab("kernel", "router: kernel: the kernel forwards, smcroute tells "
                                        "it what (MULTICAST_ROUTER=kernel)")

    def test_auto_takes_the_kernels_router_where_there_is_one(self):
        self.compose_run("--profile", "routed", "up", "--build", "-d", "multicast-router")
        self.assertTrue(support.wait_until(lambda: "router: forwarding" in self.router_log(),
                                           20), self.router_log())
        kernel_routes = os.path.exists("/proc/net/ip_mr_vif")  # Docker's kernel is this one
        self.assertEqual(self.router_log().splitlines()[0],
                         "router: kernel: the kernel forwards, smcroute tells it what "
                         "(MULTICAST_ROUTER=auto)" if kernel_routes else
                         "router: user space: this kernel has no IPv4 multicast routing "
                         "(built without CONFIG_IP_MROUTE), so lab/router.py forwards instead")

    def router_log(self):
        result = run(["docker", "logs", "multicast-router"])
        return result.stdout + result.stderr

    def check_routed_lab(self, router, first_line):
        """Routed lab: TTL 1 stays near; TTL 2 crosses the router, and the acks come back."""
        fast = {"MULTICAST_INTERVAL": "0.5", "MULTICAST_ROUTER": router}
        self.compose_run("--profile", "routed", "up", "--build", "-d", env=fast)
        self.wait_for_rounds(lambda found: len(found) >= 4)
        self.assertEqual(self.router_log().splitlines()[0], first_line)
        far_address = self.address("multicast-receiver-far", self.networks["multicast-far"])
        found = rounds(self.logs("multicast-sender"))
        self.assertTrue(all(len(r) == 1 and far_address not in r for r in found), found)
        self.assertEqual(self.logs("multicast-receiver-far").splitlines(), [WAITING])

        self.compose_run("--profile", "routed", "up", "--build", "-d",
                         env={**fast, "MULTICAST_TTL": "2"})  # recreates the sender only
        found = self.wait_for_rounds(lambda found: len(found) >= 4)
        self.assertTrue(all(far_address in r and len(r) == 2 for r in found[1:4]), found)
        far_log = self.logs("multicast-receiver-far")
        self.assertGreaterEqual(far_log.count("b'very important data'"), 3, far_log)
        # A measuring receiver on the far side: 1 hop, the router.
        self.compose_run("--profile", "routed", "run", "-d", "--name", f"{self.project}-far",
                         "multicast-receiver-far", "python3", "socket_multicast_receiver.py",
                         "--name", "far", "--quiet", env=fast)
        self.addCleanup(run, ["docker", "rm", "-f", f"{self.project}-far"])
        result = self.compose_run(
            "--profile", "routed", "run", "--rm", "multicast-sender", "python3",
            "socket_multicast_sender.py", "--ttl", "2", "--count", "5", "--interval", "0.2",
            "--json", timeout=120, env=fast)
        summary = support.json_lines(result.stdout.splitlines())[-1]
        far = [entry for entry in summary["receivers"] if entry.get("name") == "far"]
        self.assertEqual([(entry["ttl_received"], entry["hops"]) for entry in far], [(1, 1)],
                         summary)
        router_capabilities = run(["docker", "inspect", "-f",
                                   "{{.HostConfig.CapAdd}} {{.HostConfig.CapDrop}}",
                                   "multicast-router", "multicast-receiver-far"]
                                  ).stdout.splitlines()
        self.assertRegex(router_capabilities[0], r"NET_ADMIN")
        self.assertNotRegex(router_capabilities[1], r"NET_ADMIN")

    def test_without_kernel_multicast_routing_the_routers_say_why(self):
        """On a kernel without multicast routing: MULTICAST_ROUTER=kernel stops the routed
        lab's router with the reason, and `up -d` of the PIM lab fails at once, each
        router saying why."""
        support.needs_kernel(self, "ip_mroute", present=False)
        self.compose_run("--profile", "routed", "up", "--build", "-d", "multicast-router",
                         env={"MULTICAST_ROUTER": "kernel"})
        self.assertTrue(support.wait_until(lambda: self.exit_code("multicast-router") == "1",
                                           20), self.router_log())
        self.assertEqual(self.router_log().splitlines(), [
            "router: MULTICAST_ROUTER=kernel, but this kernel has no IPv4 multicast routing "
            "(built without CONFIG_IP_MROUTE); MULTICAST_ROUTER=user or auto forwards in "
            "user space"])
        self.compose_run("--profile", "pim", "build")
        started = time.monotonic()
        up = run([*self.compose, "-p", self.project, "--profile", "pim", "up", "-d"],
                 timeout=120, env=self.environment)
        self.assertNotEqual(up.returncode, 0, up.stdout + up.stderr)
        self.assertLess(time.monotonic() - started, 60)
        for router in PIM_ROUTERS:
            self.assertEqual(self.exit_code(router), "1", router)
            log = run(["docker", "logs", router])
            self.assertEqual((log.stdout + log.stderr).splitlines(), [
                f"pim-r{router[-1]}: {PIM_WHY}"])

    def exit_code(self, container):
        return run(["docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}",
                    container]).stdout.strip().replace("exited ", "")

    def address(self, container, network):
        return run(["docker", "inspect", "-f",
                    f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}',
                    container]).stdout.strip()

    def test_watch_shows_joins_leaves_and_ttls(self):
        self.compose_run("--profile", "watch", "up", "--build", "-d", "multicast-watch",
                         "multicast-watch-far")
        self.assertTrue(support.wait_until(
            lambda: "listening on eth0" in run(["docker", "logs", "multicast-watch"]).stderr
            + self.logs("multicast-watch"), 20))
        self.compose_run("up", "--build", "-d", env={"MULTICAST_INTERVAL": "0.5"})
        self.wait_for_rounds(lambda found: len(found) >= 2)
        receiver = self.address("multicast-receiver", self.networks["multicast-network"])
        sender = self.address("multicast-sender", self.networks["multicast-network"])
        self.compose_run("stop", "-t", "5", "multicast-receiver")

        def watched():
            return self.logs("multicast-watch")

        join = re.compile(rf"{re.escape(receiver)} > 224\.0\.0\.22: igmp v3 report, "
                          r"1 group record\(s\) \[gaddr 224\.10\.10\.10 to_ex")
        leave = re.compile(rf"{re.escape(receiver)} > 224\.0\.0\.22: igmp v3 report, "
                           r"1 group record\(s\) \[gaddr 224\.10\.10\.10 to_in")
        datagram = re.compile(rf"ttl 1, .*proto UDP .*\n\s+{re.escape(sender)}\.\d+ > "
                              r"224\.10\.10\.10\.10000: UDP, length 19")
        self.assertTrue(support.wait_until(lambda: leave.search(watched()), 20), watched())
        self.assertRegex(watched(), join)
        self.assertRegex(watched(), datagram)

    def test_up_shows_each_round_in_causal_order(self):
        """In `up`'s merged log the sender's `sending` line of a round stands before every
        receiver's `received` line of that round (19 rounds of 20 at least)."""
        argv = [*self.compose, "-p", self.project, "--profile", "crowd", "up", "--build",
                "--no-color"]
        up = subprocess.Popen(argv, cwd=support.PROJECT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                              env={**os.environ, **self.environment,
                                   "MULTICAST_INTERVAL": "0.3"})
        self.addCleanup(up.stdout.close)
        self.addCleanup(up.wait, 60)
        self.addCleanup(up.kill)
        order = []  # ("sender" or the receiver's service name), in the order `up` shows them
        first_lines = {}  # container -> its first lines of each kind, in the order shown
        deadline = time.monotonic() + 240
        while order.count("sender") < 25 and time.monotonic() < deadline:
            line = up.stdout.readline()
            if not line:
                break
            name, _, text = line.replace("\x1b[2K", "").partition(" | ")
            kind = next((kind for kind in ("multicast_receiver.py: listening",
                                           "multicast_sender.py: sending to",
                                           WAITING, "sending b'") if text.startswith(kind)),
                        None)
            if kind and kind not in first_lines.setdefault(name.strip(), []):
                first_lines[name.strip()].append(kind)
            if text.startswith("sending b'") and name.strip() == "multicast-sender":
                order.append("sender")
            elif text.startswith("received 19 bytes from"):
                order.append(name.strip())
        sends = [i for i, who in enumerate(order) if who == "sender"]
        receivers = sorted(set(order) - {"sender"})
        self.assertEqual((len(sends), len(receivers)), (25, 4), order)
        # Rounds 4 to 23 (every receiver has joined): in causal order, each receiver's
        # line of a round stands between that round's `sending` line and the next one.
        in_order = sum(1 for start, end in zip(sends[3:23], sends[4:24])
                       if sorted(order[start + 1:end]) == receivers)
        self.assertGreaterEqual(in_order, 19, order)
        # Cause before effect: each script's start line (on stderr) before its first
        # line on stdout.
        self.assertEqual(first_lines.pop("multicast-sender"),
                         ["multicast_sender.py: sending to", "sending b'"])
        self.assertEqual(len(first_lines), 4, first_lines)
        for name, kinds in first_lines.items():
            self.assertEqual(kinds, ["multicast_receiver.py: listening", WAITING], name)

    def board(self, port=None):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port or self.board_port}"
                                        "/board.json",
                                        timeout=2) as answer:
                return json.loads(answer.read())
        except (OSError, ValueError):
            return {}

    def test_one_down_removes_every_profile(self):
        if os.path.exists("/proc/net/ip_mr_vif"):
            self.compose_run(*PROFILES, "up", "--build", "-d")
        else:  # the PIM routers stop at once, so `up` fails: the rest first, then them
            without_pim = [word for pair in zip(PROFILES[::2], PROFILES[1::2])
                           if pair[1] != "pim" for word in pair]
            self.compose_run(*without_pim, "up", "--build", "-d")
            up = run([*self.compose, "-p", self.project, *PROFILES, "up", "--build", "-d"],
                     timeout=300, env=self.environment)
            self.assertNotEqual(up.returncode, 0, up.stderr)
        self.wait_for_rounds(lambda found: len(found) >= 1)
        # The board profile's sender serves its board on this host's loopback: its own
        # three receivers, by name, and none of the textbook ones (another port).
        self.assertTrue(support.wait_until(
            lambda: {row["name"] for row in self.board().get("receivers", [])}
            == {"pc1", "pc2", "pc3"}, 30), self.board())
        self.assertNotIn("MCK1", self.logs("multicast-receiver"))
        self.compose_run(*PROFILES, "stop", "-t", "5")  # (see tearDown)
        self.compose_run("down")  # a plain `down`, as the docs say
        left = run(["docker", "ps", "-aq", "--filter",
                    f"label=com.docker.compose.project={self.project}"]).stdout.split()
        self.assertEqual(left, [])
        networks = run(["docker", "network", "ls", "--format", "{{.Name}}"]).stdout.split()
        self.assertFalse(set(self.networks.values()) & set(networks), networks)
        ours = [name for name in networks if name.startswith(self.project)]
        self.assertEqual(ours, [], "the PIM lab's networks are gone too")

    def mroutes(self, router):
        """The router's multicast routes for the demo's group: source ('*' for the
        shared tree) -> the set of outgoing interfaces, from FRR's own table."""
        result = run(["docker", "exec", router, "vtysh", "-c", "show ip mroute json"])
        try:
            table = json.loads(result.stdout or "{}").get("224.10.10.10", {})
        except ValueError:
            return {}
        return {source: set(entry.get("oil", {})) for source, entry in table.items()}

    def interface_in(self, container, subnet):
        """The container's interface with an address in subnet (its first three bytes)."""
        lines = run(["docker", "exec", container, "ip", "-o", "-4", "addr"]).stdout
        found = re.search(rf"^\d+: (\S+)\s+inet {re.escape(subnet)}\.", lines, re.M)
        self.assertIsNotNone(found, lines)
        return found.group(1)

    def test_pim_lab_builds_the_tree_and_ttl_decides_who_hears(self):
        """PIM-SM lab: TTL 1 reaches the demo's network, 3 also pim2, 4 also pim3,
        in every round after the tree has formed; FRR's tables show the tree."""
        support.needs_kernel(self, "ip_mroute")
        fast = {"MULTICAST_INTERVAL": "0.5"}
        self.compose_run("--profile", "pim", "up", "--build", "-d", env=fast)
        near = self.address("multicast-receiver", self.networks["multicast-network"])
        network = self.networks["multicast-network"]
        pim2 = self.address("multicast-receiver-pim2", f"{network}-pim2")
        pim3 = self.address("multicast-receiver-pim3", f"{network}-pim3")
        for ttl, heard in (("1", {near}), ("2", {near}), ("3", {near, pim2}),
                           ("4", {near, pim2, pim3})):
            self.compose_run("--profile", "pim", "up", "-d",
                             env={**fast, "MULTICAST_TTL": ttl})
            # The tree has formed once a round is heard as expected; every round after it
            # must be the same (TTL 1 and 2 never reach a router's far side at all).
            found = self.wait_for_rounds(lambda found: heard in map(set, found), 60)
            first = [set(r) for r in found].index(heard)
            found = self.wait_for_rounds(lambda found: len(found) >= first + 5)
            self.assertTrue(all(set(r) == heard and len(r) == len(heard)
                                for r in found[first:]), (ttl, heard, found))
        sender = self.address("multicast-sender", self.networks["multicast-network"])
        # The source tree (S,G) from r1 down to both receivers' networks.
        r1_up = self.interface_in("multicast-pim-r1", f"{self.pim_prefix}.12")
        r2_lan = self.interface_in("multicast-pim-r2", f"{self.pim_prefix}.2")
        r2_down = self.interface_in("multicast-pim-r2", f"{self.pim_prefix}.23")
        r3_lan = self.interface_in("multicast-pim-r3", f"{self.pim_prefix}.3")
        self.assertTrue(support.wait_until(
            lambda: r1_up in self.mroutes("multicast-pim-r1").get(sender, ()), 20),
            self.mroutes("multicast-pim-r1"))
        self.assertLessEqual({r2_lan, r2_down}, self.mroutes("multicast-pim-r2").get(sender))
        self.assertIn(r3_lan, self.mroutes("multicast-pim-r3").get(sender))
        # Prune: the last receiver behind r3 leaves, and r3's network leaves the tree
        # within the IGMP leave time (two queries a second apart) and a few seconds.
        self.compose_run("--profile", "pim", "stop", "-t", "5", "multicast-receiver-pim3")
        self.assertTrue(support.wait_until(
            lambda: r3_lan not in self.mroutes("multicast-pim-r3").get(sender, ()), 10),
            self.mroutes("multicast-pim-r3"))
        self.assertIn(r2_lan, self.mroutes("multicast-pim-r2").get(sender, ()))
        # Join: it comes back, and so does the branch, and its acks.
        self.compose_run("--profile", "pim", "start", "multicast-receiver-pim3")
        self.assertTrue(support.wait_until(
            lambda: r2_down in self.mroutes("multicast-pim-r2").get(sender, ())
            and r3_lan in self.mroutes("multicast-pim-r3").get(sender, ()), 15),
            (self.mroutes("multicast-pim-r2"), self.mroutes("multicast-pim-r3")))
        count = len(rounds(self.logs("multicast-sender")))
        self.wait_for_rounds(lambda found: len(found) > count
                             and any(pim3 in r for r in found[count:]))
        # Only the routers have capabilities, and only those FRR needs.
        added = run(["docker", "inspect", "-f", "{{.HostConfig.CapAdd}}", *PIM_ROUTERS,
                     "multicast-receiver-pim3"]).stdout.splitlines()
        for line in added[:3]:
            self.assertEqual(sorted(re.findall(r"[A-Z_]+", line.replace("CAP_", ""))),
                             ["NET_ADMIN", "NET_BIND_SERVICE", "NET_RAW", "SYS_ADMIN"])
        self.assertNotIn("NET_ADMIN", added[3])

    def bystander_lines(self):
        """The bystander's counts, one (datagrams, queries, words) a line."""
        return [(int(m[1]), int(m[2]), m[3]) for m in re.finditer(
            r"^bystander: [\d.]+ s: (\d+) datagrams? of the group reached me, (\d+) "
            r"quer(?:y|ies) heard: (.*)$", self.logs("multicast-bystander"), re.M)]

    def host_port(self, container):
        """The host's end of the container's veth: the bridge's port of the container."""
        index = run(["docker", "exec", container, "cat", "/sys/class/net/eth0/iflink"])
        return socket.if_indextoname(int(index.stdout))

    def test_snooping_querier_stops_the_flood_and_the_bridges_timer_brings_it_back(self):
        """(a) No querier: the bystander gets the group. (b) The querier runs: within
        an interval it gets none, and the receiver still answers every round. (c) The
        querier stops: the flood comes back once the bridge's querier timer (shortened
        to 5 s here) runs out. An nftables counter on the bystander's bridge port judges
        the bystander's own count."""
        support.skip_unless(shutil.which("nft"), "no nft (nftables) on this host")
        fast = {"MULTICAST_INTERVAL": "0.5", "MULTICAST_QUERY_INTERVAL": "2"}
        self.compose_run("--profile", "snooping", "up", "--build", "-d",
                         "multicast-receiver", "multicast-bystander", env=fast)
        self.assertTrue(support.wait_until(
            lambda: "bystander: on eth0" in self.logs("multicast-bystander"), 20),
            self.logs("multicast-bystander"))
        network = run(["docker", "network", "inspect", "-f", "{{.Id}}",
                       self.networks["multicast-network"]]).stdout.strip()
        timer = f"/sys/class/net/br-{network[:12]}/bridge/multicast_querier_interval"
        with open(timer) as file:
            saved = file.read().strip()

        def restore():
            if os.path.exists(timer):
                with open(timer, "w") as file:
                    file.write(saved)
        self.addCleanup(restore)
        with open(timer, "w") as file:
            file.write("500")  # centiseconds: 5 s instead of 255 s
        # An nftables counter: the group's datagrams the bridge sends to the bystander.
        table = self.project
        counter = ["nft", "list", "chain", "bridge", table, "forward"]
        for rule in (["add", "table", "bridge", table],
                     ["add", "chain", "bridge", table, "forward",
                      "{ type filter hook forward priority 0; }"],
                     ["add", "rule", "bridge", table, "forward", "oifname",
                      self.host_port("multicast-bystander"), "ip", "daddr", "224.10.10.10",
                      "udp", "dport", "10000", "counter"]):
            self.assertEqual(run(["nft", *rule]).returncode, 0, rule)
        self.addCleanup(run, ["nft", "delete", "table", "bridge", table])

        def counted():
            return int(re.search(r"counter packets (\d+)", run(counter).stdout)[1])

        # (a) Flooded: the bystander counts what the sender sends.
        self.compose_run("--profile", "snooping", "up", "-d", "multicast-sender", env=fast)
        self.assertTrue(support.wait_until(lambda: sum(
            1 for line in self.bystander_lines() if line[0] > 0
            and line[2].startswith("flooded to everyone")) >= 2, 20), self.bystander_lines())
        self.assertGreater(counted(), 0)
        # (b) The querier: within one interval of its first query nothing more.
        self.compose_run("--profile", "snooping", "up", "-d", "multicast-querier", env=fast)
        started = len(self.bystander_lines())

        def quiet():
            """The first line without datagrams after the first query, in lines since the
            querier started, and how many lines that was after the first query."""
            lines = self.bystander_lines()[started:]
            first = next((i for i, line in enumerate(lines) if line[1]), None)
            after = [i for i, line in enumerate(lines) if first is not None and i >= first
                     and line[0] == 0]
            return after and (after[0], after[0] - first)

        self.assertTrue(support.wait_until(quiet, 12), self.bystander_lines())
        quiet, late = quiet()
        # Within one interval and the query's response time: the bridge trusts its table
        # once the members had that time to answer (so the next line or the one after).
        self.assertLessEqual(late, 2, self.bystander_lines())
        frozen, sent = counted(), len(rounds(self.logs("multicast-sender")))
        receiver = self.address("multicast-receiver", self.networks["multicast-network"])
        found = self.wait_for_rounds(lambda found: len(found) >= sent + 10)
        self.assertTrue(all(r == [receiver] for r in found[sent:]), found[sent:])
        self.assertEqual(counted(), frozen, "the bridge still floods to the bystander")
        self.assertTrue(all(line[0] == 0 and line[2].startswith("only to members")
                            for line in self.bystander_lines()[started + quiet:]),
                        self.bystander_lines())
        mdb = run(["bridge", "mdb", "show"]).stdout
        self.assertIn(f"port {self.host_port('multicast-receiver')} grp 224.10.10.10", mdb)
        # (c) The querier stops: flooded again once the bridge's timer (5 s) runs out.
        self.compose_run("--profile", "snooping", "stop", "-t", "5", "multicast-querier")
        self.assertTrue(support.wait_until(lambda: counted() > frozen, 15, interval=0.05))
        back = time.time()
        queries = [line for line in run(["docker", "logs", "--timestamps",
                                         "multicast-querier"]).stdout.splitlines()
                   if " general query " in line]
        last = datetime.datetime.fromisoformat(stamp(queries[-1])[:26]).replace(
            tzinfo=datetime.timezone.utc).timestamp()
        # The bridge's timer runs from the last query; the next datagram comes within
        # the sender's 0.5 s.
        self.assertTrue(4.9 < back - last < 7.5, back - last)
        self.assertTrue(support.wait_until(lambda: self.bystander_lines()[-1][2].startswith(
            "flooded to everyone"), 10), self.bystander_lines())
        restore()
        # The bystander's own count is the counter's, and SIGTERM stops it at once.
        self.compose_run("stop", "-t", "5", "multicast-sender")
        total = counted()
        self.compose_run("--profile", "snooping", "stop", "-t", "5", "multicast-bystander")
        self.assertEqual(self.exit_code("multicast-bystander"), "0")
        self.assertRegex(self.logs("multicast-bystander").splitlines()[-1],
                         rf"^bystander: stopped: {total} datagrams of the group and \d+ "
                         r"queries reached me in \d+ intervals$")
        self.assertEqual(self.exit_code("multicast-querier"), "0")
        # Only NET_RAW, as root (cap_add gives a non-root user no effective capability).
        added = run(["docker", "inspect", "-f", "{{.HostConfig.CapAdd}} {{.Config.User}} "
                     "{{.HostConfig.ReadonlyRootfs}}", "multicast-querier",
                     "multicast-bystander"]).stdout.splitlines()
        self.assertEqual([line.replace("CAP_", "") for line in added],
                         ["[NET_RAW] root true"] * 2)

    def test_bystander_says_so_where_the_bridge_does_not_snoop(self):
        """multicast_snooping 0 on the demo's bridge (put back after): the querier changes
        nothing, and the bystander says the bridge does not snoop."""
        fast = {"MULTICAST_INTERVAL": "0.5", "MULTICAST_QUERY_INTERVAL": "1"}
        self.compose_run("--profile", "snooping", "up", "--build", "-d",
                         "multicast-bystander", env=fast)
        network = run(["docker", "network", "inspect", "-f", "{{.Id}}",
                       self.networks["multicast-network"]]).stdout.strip()
        snooping = f"/sys/class/net/br-{network[:12]}/bridge/multicast_snooping"

        def write(value):
            if os.path.exists(snooping):
                with open(snooping, "w") as file:
                    file.write(value)
        write("0")
        self.addCleanup(write, "1")
        self.compose_run("--profile", "snooping", "up", "-d", "multicast-sender", env=fast)
        self.assertTrue(support.wait_until(
            lambda: any(line[0] for line in self.bystander_lines()), 15),
            self.bystander_lines())
        self.compose_run("--profile", "snooping", "up", "-d", "multicast-querier", env=fast)
        self.assertTrue(support.wait_until(lambda: any(
            line[2].startswith("flooded although a querier is heard: this bridge does not "
                               "snoop") for line in self.bystander_lines()), 15),
            self.bystander_lines())
        lines = self.bystander_lines()
        flooded = next(i for i, line in enumerate(lines) if line[0])
        self.assertTrue(all(line[0] > 0 for line in lines[flooded:]), lines)

    def test_socket_receivers_tell_how_many_routers_a_datagram_crossed(self):
        """hops = the sender's TTL minus the TTL on arrival: 0 on the sender's network,
        2 behind r2, 3 behind r3, as many as the routers on the way."""
        support.needs_kernel(self, "ip_mroute")
        self.compose_run("--profile", "pim", "up", "--build", "-d")
        for service, name in (("multicast-receiver", "near"),
                              ("multicast-receiver-pim2", "pim2"),
                              ("multicast-receiver-pim3", "pim3")):
            self.compose_run("--profile", "pim", "run", "-d", "--name",
                             f"{self.project}-{name}", service, "python3",
                             "socket_multicast_receiver.py", "--name", name, "--quiet")
            self.addCleanup(run, ["docker", "rm", "-f", f"{self.project}-{name}"])
        result = self.compose_run(
            "--profile", "pim", "run", "--rm", "multicast-sender", "python3",
            "socket_multicast_sender.py", "--ttl", "8", "--count", "40", "--interval",
            "0.25", "--json", timeout=180)
        summary = support.json_lines(result.stdout.splitlines())[-1]
        hops = {entry["name"]: (entry["ttl_received"], entry["hops"])
                for entry in summary["receivers"] if entry.get("name")}
        self.assertEqual(hops, {"near": (8, 0), "pim2": (6, 2), "pim3": (5, 3)}, summary)


class ComposeV1Test(ComposeTest, unittest.TestCase):
    compose = ["docker-compose"]
    far_prefix, pim_prefix = "10.237.0", "10.238"  # the file's defaults


class ComposeV2Test(ComposeTest, unittest.TestCase):
    compose = ["docker", "compose"]
    far_prefix, pim_prefix = "10.227.0", "10.228"


if __name__ == "__main__":
    unittest.main()
