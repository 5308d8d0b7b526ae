"""Helpers shared by the tests: paths, skips, free ports, and watched processes."""

import atexit
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
GROUP = "224.10.10.10"  # the lecture's group
LECTURE = os.path.join(PROJECT, "tests", "lecture")  # the lecture's own code, verbatim

# The start of a Python program, run on a lab host, that joins the group on port 10000
# and says "ready": a member of the group, as any host may be (a forger, a capturer).
GROUP_MEMBER = f"""
import hashlib, hmac, socket, struct, sys, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("{GROUP}", 10000))
sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                socket.inet_aton("{GROUP}") + socket.inet_aton("0.0.0.0"))
print("ready", flush=True)
"""

# Set (as .ci/run does) to turn every skip into a failure, so a machine that
# lacks something cannot pass by skipping the tests that need it.
NO_SKIP_VARIABLE = "MULTICAST_TESTS_NO_SKIP"


def script(name):
    """The absolute path of one of the project's scripts."""
    return os.path.join(PROJECT, name)


def skip_unless(condition, reason):
    """Skip the test (fail it where skips are not allowed) unless condition holds."""
    if condition:
        return
    if os.environ.get(NO_SKIP_VARIABLE):
        raise AssertionError(f"cannot run here, and skipping is not allowed: {reason}")
    raise unittest.SkipTest(reason)


# What a test may need from this machine's kernel, each found in the kernel's own
# /proc: (the file that exists only where the kernel has it, what it is).
KERNEL_FEATURES = {
    "ip_mroute": ("/proc/net/ip_mr_vif", "IPv4 multicast routing (CONFIG_IP_MROUTE)"),
    "ip6_mroute": ("/proc/net/ip6_mr_vif", "IPv6 multicast routing (CONFIG_IPV6_MROUTE)"),
}
NOT_RUN_ON_THIS_KERNEL = []  # (test, reason), listed at the end of the run


class KernelSkip(unittest.SkipTest):
    """The one skip allowed where skips are not: this machine's kernel lacks (or has)
    a feature the test is about, as the kernel itself says."""


def needs_kernel(test, feature, present=True, guest=False):
    """Skip test, even where skips are not allowed, unless this machine's kernel has
    feature (or, with present=False, lacks it); the skip is listed at the end of the run.
    guest=True: tests/test_guest.py runs the test in a guest kernel that has it."""
    path, name = KERNEL_FEATURES[feature]
    if os.path.exists(path) == present:
        return
    reason = (f"this kernel has no {name}: {path} is missing" if present
              else f"this kernel has {name}, so this test of a kernel without it cannot run")
    if guest:
        reason += "; run in a guest kernel by tests.test_guest"
    if not NOT_RUN_ON_THIS_KERNEL:
        atexit.register(_list_not_run)
    NOT_RUN_ON_THIS_KERNEL.append((f"{test.__module__}.{test.__qualname__}"
                                   if isinstance(test, type) else test.id(), reason))
    raise KernelSkip(f"not run on this kernel: {reason}")


def _list_not_run():
    print("\nnot run on this kernel:", file=sys.stderr)
    for test, reason in NOT_RUN_ON_THIS_KERNEL:
        print(f"  {test}: {reason}", file=sys.stderr)


def free_udp_port(address="127.0.0.1"):
    """A UDP port the kernel says is free right now (bind to 0, read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout, interval=0.02):
    """Poll predicate until it is true or timeout seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class Watched:
    """A child process whose stdout lines are collected as they come."""

    def __init__(self, argv, env=None):
        self.argv = argv
        self.lines = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env)
        self._errors = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._error_reader = threading.Thread(target=self._read_errors, daemon=True)
        self._error_reader.start()

    def _read_errors(self):
        for line in self.process.stderr:
            self._errors.append(line)

    @property
    def stderr(self):
        return "".join(self._errors)

    def _read(self):
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, text, timeout=5.0, count=1):
        """Wait until text has been printed as a whole line count times; return success."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.lines.count(text) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.process.poll() is not None
                                      and not self._reader.is_alive()):
                    return self.lines.count(text) >= count
                self._changed.wait(min(remaining, 0.1))
            return True

    def wait(self, timeout=10.0):
        """Wait for the process to end; return its exit status and keep its output."""
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self._reader.join(timeout)
        self._error_reader.join(timeout)
        self.process.stdout.close()
        self.process.stderr.close()
        return status

    def signal(self, signum=signal.SIGTERM):
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.wait()

    def output(self):
        return "\n".join(self.lines)


def python_script(name, *arguments):
    """The argv that runs one of the project's scripts with the test's Python."""
    return [PYTHON, script(name), *arguments]


class ProcessTestCase(unittest.TestCase):
    """A test case whose child processes are killed after each test."""

    def setUp(self):
        self.children = []

    def tearDown(self):
        for child in self.children:
            child.kill()

    def track(self, child):
        """Kill child after this test; return it."""
        self.children.append(child)
        return child


class LocalCase(ProcessTestCase):
    """Scripts on 127.0.0.1, on a port of their own."""

    def setUp(self):
        super().setUp()
        self.port = free_udp_port()

    def start(self, name, *arguments, env=None, argv_prefix=(), interface="127.0.0.1",
              port=None):
        return self.track(Watched(
            [*argv_prefix, *python_script(name, "-i", interface, "-p", str(port or self.port),
                                          *arguments)], env=env))

    def receiver(self, *arguments, argv_prefix=(), port=None):
        """A socket receiver (JSON output), once it has said it listens."""
        child = self.start("socket_multicast_receiver.py", "--json", *arguments,
                           argv_prefix=argv_prefix, port=port)
        self.assertTrue(wait_until(lambda: events(child, "start"), 5), child.stderr)
        return child

    def stop(self, child):
        """SIGTERM; its exit status must be 0; its summary."""
        child.signal(signal.SIGTERM)
        self.assertEqual(child.wait(5), 0, child.stderr)
        return summary_of(child)


def socket_inodes(pid):
    """The inodes of process pid's sockets, as /proc/PID/net/udp lists them."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:["):-1])
    return inodes


def load(name):
    """Import one of the project's scripts as a module (nothing runs at import)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(name[:-3], script(name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def json_lines(lines):
    """The JSON objects among a script's output lines."""
    import json
    return [json.loads(line) for line in list(lines) if line.startswith("{")]


def events(watched, kind):
    """The JSON events of one type that a watched script printed."""
    return [event for event in json_lines(watched.lines) if event["type"] == kind]


def only(watched, kind):
    """The one JSON event of this type; fails, showing the output, if not one."""
    found = events(watched, kind)
    if len(found) != 1:
        raise AssertionError(f"expected one {kind}:\n{watched.output()}\n{watched.stderr}")
    return found[0]


def summary_of(watched):
    return only(watched, "summary")
