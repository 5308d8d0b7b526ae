"""A network lab: hosts in network namespaces of their own, on one Linux bridge.

    with Lab(hosts=3) as lab:
        receiver = lab.popen(1, ["python3", "multicast_receiver.py"])
        lab.run(0, ["python3", "multicast_sender.py"])

Host i has the address lab.address(i) on its eth0 (10.77.0.0/24), the IPv6
addresses lab.address6(i) (fd77::/64) and lab.link_local6(i), default routes
through eth0 (as in a Docker container, so "the system's choice" of
interface works) and its own loopback. The bridge lives in a namespace of its
own too, so nothing of the lab touches this machine's real interfaces or
its iptables (where dockerd sets FORWARD to DROP for bridged traffic).

As root the namespaces are made with `ip netns`. Without root the same
commands run inside a user and mount namespace made with `unshare`
(an "anchor"), where this user is root for the lab's purposes only.
"""

import itertools
import os
import shutil
import signal
import socket
import subprocess

from . import support

SUBNET = "10.77.0"
SUBNET6 = "fd77"  # fd77::/64: the hosts' IPv6 unique local addresses
PREFIX_LENGTH = 24
MAX_HOSTS = 250
_serial = itertools.count()


class LabError(Exception):
    """The lab could not be built on this machine; the message says why."""


def _run(argv, **kwargs):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          **kwargs)


class Lab:
    def __init__(self, hosts):
        if not 1 <= hosts <= MAX_HOSTS:
            raise ValueError(f"a lab has 1 to {MAX_HOSTS} hosts")
        for tool in ("ip", "unshare", "nsenter"):
            if shutil.which(tool) is None:
                raise LabError(f"'{tool}' is not installed (Debian: iproute2, util-linux)")
        self.hosts = hosts
        self.tag = f"mclab{os.getpid()}n{next(_serial)}"
        self.bridge_namespace = f"{self.tag}-br"
        self._anchor = None
        self._created = False
        try:
            self._start_anchor()
            self._build()
        except BaseException:
            self.close()
            raise

    # Names and commands

    def namespace(self, index):
        return f"{self.tag}-h{index}"

    def address(self, index):
        return f"{SUBNET}.{index + 1}"

    def address6(self, index):
        """Host index's IPv6 unique local address (ULA)."""
        return f"{SUBNET6}::{index + 1:x}"

    def link_local6(self, index):
        return f"fe80::{index + 1:x}"

    def _outer(self):
        """The prefix that reaches the namespaces: nothing as root, nsenter otherwise."""
        if self._anchor is None:
            return []
        return ["nsenter", "-t", str(self._anchor.pid), "-U", "-m", "-n",
                "--preserve-credentials"]

    def command(self, index, argv):
        """The argv that runs argv on host index."""
        return [*self._outer(), "ip", "netns", "exec", self.namespace(index), *argv]

    def bridge_command(self, argv):
        """The argv that runs argv in the bridge's namespace."""
        return [*self._outer(), "ip", "netns", "exec", self.bridge_namespace, *argv]

    def run(self, index, argv, timeout=30, **kwargs):
        """Run argv on host index to its end; return the CompletedProcess."""
        return _run(self.command(index, argv), timeout=timeout, **kwargs)

    def popen(self, index, argv, **kwargs):
        return subprocess.Popen(self.command(index, argv), **kwargs)

    def joined(self, index, group, device="eth0"):
        """Whether host index's kernel lists group among device's memberships."""
        if ":" in group:  # /proc/net/igmp6: index, device, group in hex, ...
            wanted = socket.inet_pton(socket.AF_INET6, group).hex()
            table = self.run(index, ["cat", "/proc/net/igmp6"]).stdout
            return any(line.split()[1:3] == [device, wanted] for line in table.splitlines())
        wanted = socket.inet_aton(group)[::-1].hex().upper()  # /proc shows it little-endian
        table = self.run(index, ["cat", "/proc/net/igmp"]).stdout
        members, current = set(), None
        for line in table.splitlines()[1:]:
            if not line.startswith(("\t", " ")):
                current = line.split()[1] if len(line.split()) > 1 else None
            elif current == device and line.split():
                members.add(line.split()[0])
        return wanted in members

    def shell(self, script, timeout=120):
        """Run a shell script where the lab's `ip netns` names are valid."""
        result = _run([*self._outer(), "sh", "-e", "-c", script], timeout=timeout)
        if result.returncode != 0:
            raise LabError(f"lab set-up failed: {result.stderr.strip()[-500:]}")
        return result

    # Building and tearing down

    def _start_anchor(self):
        if os.geteuid() == 0:
            return
        self._anchor = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "--mount", "--net",
             "--propagation", "private", "sh", "-c",
             "mount -t tmpfs lab /run && echo ready && exec sleep 86400"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if self._anchor.stdout.readline().strip() != "ready":
            error = self._anchor.stderr.read().strip()
            self._anchor.wait()
            self._anchor = None
            raise LabError(f"no namespaces without root here: unshare said {error!r}")

    def _build(self):
        br = self.bridge_namespace
        lines = [f"ip netns add {br}",
                 f"ip -n {br} link add br0 type bridge",
                 f"ip -n {br} link set br0 addrgenmode none",
                 f"ip -n {br} link set br0 up"]
        self._created = True
        for index in range(self.hosts):
            host = self.namespace(index)
            lines += [
                f"ip netns add {host}",
                f"ip link add name v{index} netns {br} type veth peer name eth0 netns {host}",
                f"ip -n {br} link set v{index} addrgenmode none",
                f"ip -n {br} link set v{index} master br0 up",
                # IPv6 addresses made by hand with nodad: usable at once, no
                # second of duplicate address detection.
                f"printf '%s\\n' 'link set lo up' 'link set eth0 addrgenmode none'"
                f" 'link set eth0 up'"
                f" 'addr add {self.address(index)}/{PREFIX_LENGTH} dev eth0'"
                f" 'addr add {self.address6(index)}/64 dev eth0 nodad'"
                f" 'addr add {self.link_local6(index)}/64 dev eth0 nodad'"
                f" 'route add default dev eth0' | ip -n {host} -batch -",
                f"ip -n {host} -6 route add default dev eth0",
            ]
        self.shell("\n".join(lines))

    def close(self):
        """Remove every namespace of the lab; processes still in them are the caller's."""
        if self._created and self._anchor is None:
            names = [self.bridge_namespace] + [self.namespace(i) for i in range(self.hosts)]
            _run(["sh", "-c", "; ".join(f"ip netns del {n} 2>/dev/null" for n in names)])
        if self._anchor is not None:
            self._anchor.send_signal(signal.SIGKILL)
            self._anchor.wait()
            self._anchor.stdout.close()
            self._anchor.stderr.close()
            self._anchor = None
        self._created = False

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def probe():
    """None if a lab can be built here, else the reason why not."""
    try:
        with Lab(hosts=1) as lab:
            result = lab.run(0, ["ip", "-br", "addr", "show", "eth0"])
            if lab.address(0) not in result.stdout:
                return f"the lab's host has no address: {result.stderr.strip()}"
    except (LabError, OSError, subprocess.SubprocessError) as error:
        return str(error)
    return None


class LabTestCase(support.ProcessTestCase):
    """Tests that share one lab of `hosts` hosts, built once for the class.

    Processes started with start() are killed after each test."""

    hosts = 2

    @classmethod
    def setUpClass(cls):
        reason = probe()
        support.skip_unless(reason is None, f"no network namespace lab here: {reason}")
        cls.lab = Lab(hosts=cls.hosts)

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()

    def start(self, host, argv):
        """Run argv on host, its output collected line by line."""
        return self.track(support.Watched(self.lab.command(host, argv)))
