#!/usr/bin/env python3
"""The PIM-SM lab in network namespaces, without Docker: the same three FRR routers,
configured by the same lab/pim-router.sh as the Compose lab's containers.

    sudo python3 lab/pimlab.py          # on a kernel that routes multicast
    python3 lab/guest.py python3 lab/pimlab.py   # elsewhere: in a guest kernel

    demo network --r1-- 10.238.12.0/24 --r2-- 10.238.23.0/24 --r3-- 10.238.3.0/24 (pim3)
                                        |
                                  10.238.2.0/24 (pim2)          RP: 10.238.0.2 on r2

Hosts are network namespaces on Linux bridges (not containers): the sender and a
receiver ("near") on the demo network, a receiver behind r2 ("pim2") and one behind
r3 ("pim3"), the measuring pair's scripts. Each router runs in a namespace with a
mount namespace of its own, so each has its own /run/frr, as a container would.
It prints which receivers answer at TTL 1 to 4, the routers' multicast tables, and
a prune and a join, then removes everything it made. Needs root, iproute2,
util-linux, FRR (Debian's frr) and a kernel with CONFIG_IP_MROUTE.
"""

import json
import os
import signal
import subprocess
import sys
import time

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GROUP = "224.10.10.10"
RP = "10.238.0.2"  # on r2's loopback (lab/pim-router.sh)
DEMO = "192.168.238"  # the demo network's /24 (outside 10.238, as pim-router.sh wants)
RECEIVERS = ("near", "pim2", "pim3")
# name: [(bridge, address/24), ...] in the order of the host's interfaces eth0, eth1, ...
HOSTS = {
    "sender": [("demo", f"{DEMO}.2")],
    "near": [("demo", f"{DEMO}.3")],
    "r1": [("demo", f"{DEMO}.4"), ("l12", "10.238.12.1")],
    "r2": [("l12", "10.238.12.2"), ("l23", "10.238.23.2"), ("n2", "10.238.2.254")],
    "r3": [("l23", "10.238.23.3"), ("n3", "10.238.3.254")],
    "pim2": [("n2", "10.238.2.128")],
    "pim3": [("n3", "10.238.3.128")],
}
# Default routes: the demo network's hosts through r1 (where a container has Docker's
# bridge), the receivers behind r2 and r3 through the address their router takes.
GATEWAYS = {"sender": f"{DEMO}.4", "near": f"{DEMO}.4", "pim2": "10.238.2.1",
            "pim3": "10.238.3.1"}


def run(argv, check=True, timeout=30):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip()}")
    return result


class PimLab:
    """The lab, built at once; close() removes it."""

    def __init__(self, tag=None):
        self.tag = tag or f"pim{os.getpid()}"
        self.routers, self.receivers = {}, {}
        try:
            self.build()
            for number in (1, 2, 3):
                self.start_router(number)
            for name in RECEIVERS:
                self.start_receiver(name)
        except BaseException:
            self.close()
            raise

    def ns(self, host):
        return f"{self.tag}-{host}"

    def build(self):
        switch = self.ns("switch")
        lines = [f"ip netns add {switch}"]
        for bridge in ("demo", "l12", "l23", "n2", "n3"):
            lines += [f"ip -n {switch} link add {bridge} type bridge",
                      f"ip -n {switch} link set {bridge} up"]
        for host, links in HOSTS.items():
            lines += [f"ip netns add {self.ns(host)}", f"ip -n {self.ns(host)} link set lo up"]
            for index, (bridge, address) in enumerate(links):
                port = f"{host}-{index}"
                lines += [f"ip link add {port} netns {switch} type veth peer name eth{index} "
                          f"netns {self.ns(host)}",
                          f"ip -n {switch} link set {port} master {bridge} up",
                          f"ip -n {self.ns(host)} addr add {address}/24 dev eth{index}",
                          f"ip -n {self.ns(host)} link set eth{index} up"]
        for host, gateway in GATEWAYS.items():
            lines.append(f"ip -n {self.ns(host)} route add default via {gateway}")
        for router in ("r1", "r2", "r3"):
            lines.append(f"ip netns exec {self.ns(router)} sysctl -qw net.ipv4.ip_forward=1")
        result = subprocess.run(["sh", "-e", "-c", "\n".join(lines)], capture_output=True,
                                text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"building the lab: {result.stderr.strip()}")

    def start_router(self, number):
        """lab/pim-router.sh in the router's namespaces; its pimd stays in the foreground."""
        host = f"r{number}"
        log = open(os.path.join(self.logs(), f"{host}.log"), "w")
        # A mount namespace of its own: FRR's sockets, PID files and configuration in a
        # /run of its own (not /tmp: the project itself may be there), and an /etc/group
        # in which root is in FRR's vty group (as the pim image makes it).
        script = ("mount -t tmpfs lab /run && mkdir -p /run/frr /run/frr-config && "
                  "awk -F: -v OFS=: '$1 == \"frrvty\" && $4 !~ /(^|,)root(,|$)/ "
                  "{$4 = ($4 == \"\" ? \"root\" : $4 \",root\")} 1' /etc/group > /run/group && "
                  "mount --bind /run/group /etc/group && "
                  "MULTICAST_FRR_CONFIG=/run/frr-config "
                  f"exec sh {PROJECT}/lab/pim-router.sh {number}")
        self.routers[host] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(host), "unshare", "--mount", "--propagation",
             "private", "sh", "-c", script], stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, env={**os.environ, "MULTICAST_GROUP": GROUP})
        log.close()

    def logs(self):
        folder = os.path.join("/tmp", f"{self.tag}-logs")
        os.makedirs(folder, exist_ok=True)
        return folder

    def log(self, host):
        with open(os.path.join(self.logs(), f"{host}.log")) as lines:
            return lines.read()

    def vtysh(self, router, command):
        """A vtysh command on router (r1, r2, r3), in its own namespaces."""
        process = self.routers[router]
        children = run(["pgrep", "-P", str(process.pid)], check=False).stdout.split()
        pid = str(process.pid) if not children else children[0]
        return run(["nsenter", "-t", pid, "-n", "-m", "vtysh", "-c", command],
                   check=False).stdout

    def wait_ready(self, timeout=90):
        """Wait until every router's pimd runs and knows the RP; return whether they do."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(f"{RP} " in self.vtysh(router, "show ip pim rp-info")
                   for router in ("r1", "r2", "r3")):
                return True
            time.sleep(1)
        return False

    def mroutes(self, router):
        """The router's multicast routes for the group: source ('*' for the shared tree)
        -> the set of its outgoing interfaces, from FRR's own table."""
        try:
            table = json.loads(self.vtysh(router, "show ip mroute json") or "{}")
        except ValueError:
            return {}
        return {source: set(entry.get("oil", {}))
                for source, entry in table.get(GROUP, {}).items()}

    def start_receiver(self, name):
        self.receivers[name] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(name), sys.executable,
             os.path.join(PROJECT, "socket_multicast_receiver.py"), "--group", GROUP,
             "--name", name, "--quiet"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop_receiver(self, name):
        process = self.receivers.pop(name)
        process.send_signal(signal.SIGTERM)
        process.wait(10)

    def send(self, ttl, count, interval=0.25, timeout=1.0, expect=0):
        """Run the measuring sender; return its JSON events. With expect N, a round
        ends once N receivers have answered (else it lasts the timeout)."""
        result = run(["ip", "netns", "exec", self.ns("sender"), sys.executable,
                      os.path.join(PROJECT, "socket_multicast_sender.py"), "--group", GROUP,
                      "--ttl", str(ttl), "--count", str(count), "--interval", str(interval),
                      "--timeout", str(timeout), "--expect", str(expect), "--json"],
                     check=False, timeout=count * (interval + timeout) + 60)
        if result.returncode not in (0, 1):
            raise RuntimeError(f"the sender failed: {result.stderr.strip()}")
        return [json.loads(line) for line in result.stdout.splitlines()
                if line.startswith("{")]

    def start_sender(self, ttl, interval=0.25):
        """The sender in the background, until stop_sender()."""
        self.sender = subprocess.Popen(
            ["ip", "netns", "exec", self.ns("sender"), sys.executable,
             os.path.join(PROJECT, "socket_multicast_sender.py"), "--group", GROUP,
             "--ttl", str(ttl), "--count", "0", "--interval", str(interval), "--json"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True)

    def stop_sender(self):
        """Stop the background sender (once); return its JSON events."""
        if self.sender.returncode is not None:
            return []
        self.sender.send_signal(signal.SIGTERM)
        output, _ = self.sender.communicate(timeout=15)
        return [json.loads(line) for line in output.splitlines() if line.startswith("{")]

    def evidence(self):
        """What a failed check should show: the routers' logs and tables, the kernel's."""
        parts = []
        for router in ("r1", "r2", "r3"):
            parts.append(f"--- {router}: log\n{self.log(router)[-3000:]}")
            parts.append(f"--- {router}: show ip mroute\n{self.vtysh(router, 'show ip mroute')}")
            for table in ("ip_mr_vif", "ip_mr_cache"):
                kernel = run(["ip", "netns", "exec", self.ns(router), "cat",
                              f"/proc/net/{table}"], check=False)
                parts.append(f"--- {router}: /proc/net/{table}\n{kernel.stdout}{kernel.stderr}")
        return "\n".join(parts)

    def close(self):
        for process in [*self.receivers.values(), *self.routers.values(),
                        getattr(self, "sender", None)]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.receivers.values(), *self.routers.values()]:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        for host in [*HOSTS, "switch"]:
            run(["ip", "netns", "del", self.ns(host)], check=False)
        self.routers, self.receivers = {}, {}


def answered(events):
    """The names that answered in each round of the sender's JSON events."""
    return [{ack["name"] for ack in event["acks"]} for event in events
            if event["type"] == "round"]


def lesson():
    """The lesson for a class: the TTL table, the routers' tables, a prune and a join."""
    if not os.path.exists("/proc/net/ip_mr_vif"):
        print("pimlab: this kernel has no IPv4 multicast routing (built without "
              "CONFIG_IP_MROUTE): run it in a guest kernel, python3 lab/guest.py "
              "python3 lab/pimlab.py", file=sys.stderr)
        return 1
    try:
        lab = PimLab()
    except (RuntimeError, OSError) as error:  # not root, no iproute2, ...
        print(f"pimlab: {error}", file=sys.stderr)
        return 1
    try:
        if not lab.wait_ready():
            print(f"pimlab: the routers never all knew the RP:\n{lab.evidence()}",
                  file=sys.stderr)
            return 1
        time.sleep(2)  # the routers' first PIM Hellos and IGMP queries
        print("which receivers answer at each TTL (acks in 6 rounds of 1.5 s each):")
        for ttl in (1, 2, 3, 4):
            rounds = answered(lab.send(ttl, 6, interval=0.1, timeout=1.5))
            counts = [f"{name} {sum(name in found for found in rounds)}/{len(rounds)}"
                      for name in RECEIVERS if any(name in found for found in rounds)]
            print(f"  ttl {ttl}: {', '.join(counts) or 'none'}")
        lab.start_sender(4)
        time.sleep(3)
        for router in ("r1", "r2", "r3"):
            print(f"\n$ vtysh -c 'show ip mroute'   # on {router}")
            print(lab.vtysh(router, "show ip mroute").rstrip())
        lab.stop_receiver("pim3")
        time.sleep(5)
        print("\npim3 left; r3 five seconds later:")
        print(lab.vtysh("r3", "show ip mroute").rstrip())
        lab.start_receiver("pim3")
        time.sleep(3)
        print("\npim3 back; r3 three seconds later:")
        print(lab.vtysh("r3", "show ip mroute").rstrip())
        summary = [event for event in lab.stop_sender() if event["type"] == "summary"]
        print("\nhops (routers crossed) of each receiver:", ", ".join(
            f"{entry['name']} {entry['hops']}" for entry in summary[-1]["receivers"]
            if entry.get("name")) if summary else "none")
    finally:
        lab.close()
    return 0


if __name__ == "__main__":
    sys.exit(lesson())
