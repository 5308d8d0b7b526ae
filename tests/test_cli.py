"""The four scripts' command lines: defaults, environment, and one-line errors."""

import os
import subprocess
import unittest

from . import support


load = support.load


sender = load("multicast_sender.py")
receiver = load("multicast_receiver.py")
socket_sender = load("socket_multicast_sender.py")
socket_receiver = load("socket_multicast_receiver.py")
SENDERS = ("multicast_sender.py", "socket_multicast_sender.py")
RECEIVERS = ("multicast_receiver.py", "socket_multicast_receiver.py")
SCRIPTS = SENDERS + RECEIVERS


def run_script(name, *arguments, env=None):
    return subprocess.run(support.python_script(name, *arguments), capture_output=True,
                          text=True, timeout=20, env=env, stdin=subprocess.DEVNULL)


class DefaultsTest(unittest.TestCase):
    def test_sender_defaults_are_the_lecture_values(self):
        for module in (sender, socket_sender):
            parser = module.build_parser(environ={})
            args = parser.parse_args([])
            if module is socket_sender:
                module.check_options(parser, args)
            self.assertEqual(args.group if module is sender else args.groups[0], "224.10.10.10")
            self.assertEqual(args.port, 10000)
            self.assertEqual(args.ttl, 1)
            self.assertEqual(args.message, b"very important data")
            self.assertEqual(args.count, 1)
            self.assertEqual(args.interval, 1.0)
            self.assertEqual(args.timeout, 0.2)
            self.assertFalse(args.interface)

    def test_a_mesh_runs_until_stopped_unless_given_a_count(self):
        for argv, count in ((["--mesh"], 0), (["--mesh", "-c", "5"], 5), ([], 1)):
            parser = socket_sender.build_parser(environ={})
            args = parser.parse_args(argv)
            socket_sender.check_options(parser, args)
            self.assertEqual(args.count, count, argv)

    def test_receiver_defaults_are_the_lecture_values(self):
        for module in (receiver, socket_receiver):
            args = module.build_parser(environ={}).parse_args([])
            group = args.group if module is receiver else args.groups
            self.assertEqual((group, args.port, args.count),
                             ("224.10.10.10" if module is receiver else ["224.10.10.10"],
                              10000, 0))
            self.assertFalse(args.interface)

    def test_socket_pair_defaults(self):
        args = socket_sender.build_parser(environ={}).parse_args([])
        self.assertEqual(
            (args.expect, args.rate, args.no_ack, args.size, args.json, args.max_loss),
            (None, None, False, None, False, None))  # --expect not given: 1, whole rounds
        args = socket_receiver.build_parser(environ={"MULTICAST_NAME": "left"}).parse_args([])
        self.assertEqual((args.name, args.ack_jitter, args.report_interval, args.json),
                         ("left", 0.01, 0.0, False))

    def test_environment_sets_every_sender_option(self):
        environ = {"MULTICAST_GROUP": "239.1.2.3", "MULTICAST_PORT": "4000",
                   "MULTICAST_INTERFACE": "127.0.0.1", "MULTICAST_TTL": "200",
                   "MULTICAST_MESSAGE": "hi", "MULTICAST_COUNT": "0",
                   "MULTICAST_INTERVAL": "2.5", "MULTICAST_TIMEOUT": "0.5"}
        for module in (sender, socket_sender):
            args = module.build_parser(environ=environ).parse_args([])
            self.assertEqual(
                (args.group if module is sender else args.groups[0], args.port, args.interface,
                 args.ttl, args.message, args.count, args.interval, args.timeout),
                ("239.1.2.3", 4000, "127.0.0.1", 200, b"hi", 0, 2.5, 0.5))

    def test_a_flag_wins_over_its_environment_variable(self):
        environ = {"MULTICAST_PORT": "4000", "MULTICAST_COUNT": "7"}
        for module in (receiver, socket_receiver):
            args = module.build_parser(environ=environ).parse_args(["-p", "5000"])
            self.assertEqual((args.port, args.count), (5000, 7))

    def test_help_shows_every_default(self):
        for name, defaults in (
                ("multicast_sender.py", ["224.10.10.10", "10000", "(default: 1;",
                                         "very important data", "(default: 0.2;",
                                         "MULTICAST_INTERVAL"]),
                ("multicast_receiver.py", ["224.10.10.10", "10000", "(default: 0;",
                                           "MULTICAST_INTERFACE"])):
            result = run_script(name, "--help", env={})
            self.assertEqual(result.returncode, 0)
            help_text = " ".join(result.stdout.split())
            for default in defaults:
                self.assertIn(default, help_text, name)


class BadInputTest(unittest.TestCase):
    """Every bad value: one line on stderr naming it, exit status 2, no traceback."""

    def assert_rejected(self, name, arguments, named, env=None):
        result = run_script(name, *arguments, env=env)
        self.assertEqual(result.returncode, 2, result.stderr)
        lines = result.stderr.splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertIn(named, lines[0])
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual(result.stdout, "")

    def test_group_outside_the_multicast_range(self):
        for name in SCRIPTS:
            for value in ("10.0.0.1", "240.0.0.1", "banana", "224.10.10"):
                self.assert_rejected(name, ["-g", value], value)

    def test_port_outside_1_to_65535(self):
        for name in SCRIPTS:
            for value in ("0", "65536", "-1", "http"):
                self.assert_rejected(name, ["--port=" + value], value)

    def test_ttl_outside_0_to_255(self):
        for name in SENDERS:
            for value in ("256", "-1", "1.5"):
                self.assert_rejected(name, ["--ttl=" + value], value)

    def test_message_too_long_for_one_datagram(self):
        self.assert_rejected("multicast_sender.py", ["-m", "x" * 65508], "at most 65507 bytes")
        # the socket pair's header takes 32 bytes of the datagram
        self.assert_rejected("socket_multicast_sender.py", ["-m", "x" * 65476], "65476 bytes")

    def test_every_message_size_accepted_can_be_sent_with_and_without_a_key(self):
        import tempfile
        with tempfile.NamedTemporaryFile(delete=False) as stream:
            stream.write(b"0123456789abcdef")
        os.chmod(stream.name, 0o600)
        port = str(support.free_udp_port())
        for key, largest in (([], 65475), (["--key-file", stream.name], 65459)):
            result = run_script("socket_multicast_sender.py", "-i", "127.0.0.1", "-p", port,
                                "--timeout", "0.05", "-m", "x" * largest, *key)
            self.assertIn("1 sent in", result.stdout, result.stderr)
            self.assertNotIn("error", result.stderr)
            self.assert_rejected("socket_multicast_sender.py",
                                 ["-m", "x" * (largest + 1), *key], f"{largest}")

    def test_interface_this_host_does_not_have(self):
        # 203.0.113.0/24 is reserved for documentation: no host has it.
        for name in SCRIPTS:
            self.assert_rejected(name, ["-i", "nosuch0"], "nosuch0")
        for name in ("socket_multicast_sender.py", "socket_multicast_receiver.py"):
            self.assert_rejected(name, ["-i", "203.0.113.77"], "203.0.113.77")
        for name in ("multicast_sender.py", "multicast_receiver.py"):  # the socket says so
            result = run_script(name, "-i", "203.0.113.77", "-p", str(support.free_udp_port()))
            self.assertEqual((result.returncode, result.stdout), (1, ""), result.stderr)
            self.assertEqual(result.stderr.splitlines(), [
                f"{name}: error: no interface has the address 203.0.113.77"])

    def test_bad_count_interval_and_timeout(self):
        for name in SENDERS:
            self.assert_rejected(name, ["-c", "-3"], "-3")
            self.assert_rejected(name, ["--interval", "-1"], "-1")
            self.assert_rejected(name, ["--timeout", "0"], "0")
            self.assert_rejected(name, ["--timeout", "nan"], "nan")
        for name in RECEIVERS:
            self.assert_rejected(name, ["-c", "many"], "many")

    def test_bad_socket_pair_options(self):
        import tempfile
        with tempfile.NamedTemporaryFile("w", delete=False) as empty:
            empty.write("# nobody yet\n")
        self.assert_rejected("socket_multicast_sender.py", ["--expect", "@" + empty.name],
                             f"the receiver list {empty.name!r} names no receiver")
        self.assert_rejected("socket_multicast_receiver.py", ["-g", "ff35::1", "--source",
                                                              "fe80::1%eth0"],
                             "give the source without its %zone")
        name = "socket_multicast_sender.py"
        self.assert_rejected(name, ["--rate", "-1"], "-1")
        self.assert_rejected(name, ["--rate", "fast"], "fast")
        self.assert_rejected(name, ["--expect", ","], "','")
        self.assert_rejected(name, ["--expect", "@/nonexistent/roster"], "/nonexistent/roster")
        self.assert_rejected(name, ["--expect", "x" * 201], "x" * 201)
        self.assert_rejected(name, ["--max-loss", "101"], "101")
        self.assert_rejected(name, ["--max-loss", "-1"], "-1")
        self.assert_rejected(name, ["--size", "10"], "10")
        self.assert_rejected(name, ["--size", "40"], "--size 40")  # header + message is 51
        self.assert_rejected(name, ["--no-ack"], "--no-ack")
        self.assert_rejected(name, ["--report-interval", "-2"], "-2")
        name = "socket_multicast_receiver.py"
        self.assert_rejected(name, ["--name", ""], "''")
        self.assert_rejected(name, ["--ack-jitter", "soon"], "soon")
        self.assert_rejected(name, ["--report-interval", "inf"], "inf")

    def test_bad_environment_variable(self):
        for name in SENDERS:
            self.assert_rejected(name, [], "abc", env={"MULTICAST_TTL": "abc"})
        for name in RECEIVERS:
            self.assert_rejected(name, [], "99999", env={"MULTICAST_PORT": "99999"})
        self.assert_rejected("socket_multicast_sender.py", [], "x",
                             env={"MULTICAST_EXPECT": "@x"})
        self.assert_rejected("socket_multicast_sender.py", [], "lots",
                             env={"MULTICAST_MAX_LOSS": "lots"})

    def test_numbers_beyond_their_upper_bound(self):
        """Values that were accepted and then crashed: now one line and exit status 2."""
        self.assert_rejected("socket_multicast_sender.py", ["--interval", "2200000"], "2200000")
        self.assert_rejected("socket_multicast_sender.py", ["--timeout", "1e11"], "1e11")
        self.assert_rejected("socket_multicast_sender.py", ["--rate", "1e-300"], "1e-300")
        self.assert_rejected("socket_multicast_sender.py", ["--rate", "2e9"], "2e9")
        self.assert_rejected("socket_multicast_sender.py", ["-c", "9" * 30], "9" * 30)
        self.assert_rejected("socket_multicast_receiver.py", ["--report-interval", "2200000"],
                             "2200000")
        self.assert_rejected("socket_multicast_receiver.py", ["--ack-jitter", "1e300"],
                             "1e300")
        self.assert_rejected("multicast_sender.py", ["--interval", "1e10"], "1e10")
        self.assert_rejected("multicast_sender.py", ["--timeout", "1e7"], "1e7")

    def test_an_interface_by_name(self):
        for name in ("socket_multicast_sender.py", "socket_multicast_receiver.py"):
            module = load(name)
            parser = module.build_parser(environ={})
            args = parser.parse_args(["-i", "lo"])
            module.settle_groups(parser, args)
            module.settle_interface(parser, args)
            self.assertEqual(args.interface, "127.0.0.1")
            # lo has no MULTICAST flag: IPv6 multicast cannot use it (IPv4 on lo can).
            result = run_script(name, "-i", "lo", "-g", "ff15::1")
            self.assertEqual(result.returncode, 2)
            self.assertEqual(result.stderr.splitlines(), [
                f"{name}: error: lo cannot carry IPv6 multicast: it has no MULTICAST flag "
                "(see 'ip link show lo'): pass --interface with another (see --help)"])
        result = run_script("socket_multicast_receiver.py", "-i", "nosuch0")
        self.assertRegex(result.stderr, r"interfaces: .*\blo\b")

    def test_bad_key_files(self):
        import tempfile
        folder = tempfile.mkdtemp()
        for name in ("socket_multicast_sender.py", "socket_multicast_receiver.py"):
            for content, named in ((b"", "holds 0 bytes"), (b"fifteen-bytes!!\n", "15 bytes"),
                                   (b"\n", "holds 0 bytes")):
                path = os.path.join(folder, "key")
                with open(path, "wb") as stream:
                    stream.write(content)
                self.assert_rejected(name, ["--key-file", path], named)
            self.assert_rejected(name, ["--key-file", folder], "Is a directory")
            self.assert_rejected(name, ["-k", folder + "/none"], "No such file")
        self.assert_rejected("socket_multicast_receiver.py", ["--max-ack-rate", "-5"], "-5")

    def test_a_key_file_read_as_its_bytes_less_one_newline(self):
        import tempfile
        with tempfile.NamedTemporaryFile(delete=False) as stream:
            stream.write(b"sixteen-byte-key\n")
        key = socket_receiver.key_file(stream.name)
        self.assertEqual((bytes(key), repr(key)), (b"sixteen-byte-key", "Key(...)"))
        os.chmod(stream.name, 0o644)
        result = run_script("socket_multicast_sender.py", "--key-file", stream.name,
                            "-i", "127.0.0.1", "-p", str(support.free_udp_port()),
                            "--timeout", "0.05")
        self.assertIn(f"warning: the key file {stream.name} is readable by every user",
                      result.stderr)
        self.assertNotIn("sixteen-byte-key", result.stdout + result.stderr)

    def test_ipv6_and_ssm_mistakes(self):
        for name in ("multicast_sender.py", "multicast_receiver.py"):  # IPv4 only
            self.assert_rejected(name, ["-g", "ff05::1"], "'ff05::1' is not an IPv4")
        for name in ("socket_multicast_sender.py", "socket_multicast_receiver.py"):
            self.assert_rejected(name, ["-g", "ff02::1"], "ff02::1 is a link-local group")
            self.assert_rejected(name, ["-g", "ff05::1", "-i", "127.0.0.1"],
                                 "127.0.0.1 is an IPv4 address but ff05::1 is an IPv6 group")
            self.assert_rejected(name, ["-g", "fe80::1"], "'fe80::1'")
        for name in ("socket_multicast_receiver.py",):
            self.assert_rejected(name, ["--source", "224.1.1.1"], "'224.1.1.1'")
            self.assert_rejected(name, ["-g", "232.1.1.1", "--source", "fd00::1"],
                                 "source fd00::1 and group 232.1.1.1")
            self.assert_rejected(name, [], "MULTICAST_SOURCE",
                                 env={"MULTICAST_SOURCE": "10.0.0.1,nonsense"})

    def test_unknown_option(self):
        for name in SCRIPTS:
            self.assert_rejected(name, ["--colour"], "--colour")


if __name__ == "__main__":
    unittest.main()
