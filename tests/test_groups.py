"""Several groups in one run: the ranges on the command line, the sender's turns, the
receiver's count per group, and the sockets it spreads the joins over (on 127.0.0.1;
the 1,000-group lab with a group's loss injected is tests/test_many_groups.py)."""

import argparse
import resource
import subprocess
import unittest

from . import support
from .test_counting import make_receiver, make_sender, message

sender_module = support.load("socket_multicast_sender.py")
receiver_module = support.load("socket_multicast_receiver.py")


def parse(module, *argv, environ=None):
    parser = module.build_parser(environ=environ or {})
    args = parser.parse_args(list(argv))
    module.settle_groups(parser, args)
    return args


class RangeTest(unittest.TestCase):
    def test_first_plus_n_is_first_and_the_n_after_it(self):
        groups = receiver_module.group_range("239.1.0.0+999")
        self.assertEqual((len(groups), groups[0], groups[255], groups[-1]),
                         (1000, "239.1.0.0", "239.1.0.255", "239.1.3.231"))
        self.assertEqual(receiver_module.group_range("ff15::1:fffe+2"),
                         ["ff15::1:fffe", "ff15::1:ffff", "ff15::2:0"])
        self.assertEqual(receiver_module.group_range("224.10.10.10"), ["224.10.10.10"])

    def test_given_again_in_order_each_once_and_from_the_environment(self):
        for module in (sender_module, receiver_module):
            args = parse(module, "-g", "239.1.0.0+2", "-g", "239.0.0.9", "-g", "239.1.0.1")
            self.assertEqual(args.groups, ["239.1.0.0", "239.1.0.1", "239.1.0.2", "239.0.0.9"])
            self.assertEqual(args.group, "239.1.0.0")
            args = parse(module, environ={"MULTICAST_GROUP": "239.2.0.0+1, 239.3.0.0"})
            self.assertEqual(args.groups, ["239.2.0.0", "239.2.0.1", "239.3.0.0"])
            args = parse(module, "-g", "239.4.0.0", environ={"MULTICAST_GROUP": "239.2.0.0"})
            self.assertEqual(args.groups, ["239.4.0.0"], "a flag wins over the environment")

    def test_bad_ranges_are_refused_in_one_line(self):
        for text in ("239.255.255.255+1", "239.1.0.0+x", "239.1.0.0+-1", "10.0.0.1+3",
                     "239.1.0.0+10000", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff+1", ""):
            with self.subTest(text=text), self.assertRaises(argparse.ArgumentTypeError):
                receiver_module.group_list(text)
        for argv in (["-g", "239.1.0.0", "-g", "ff15::1"], ["-g", "239.0.0.0+9999", "-g",
                                                            "238.0.0.0+1"]):
            with self.subTest(argv=argv):
                result = subprocess.run(support.python_script(
                    "socket_multicast_receiver.py", *argv), capture_output=True, text=True,
                    timeout=20, stdin=subprocess.DEVNULL)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
                self.assertNotIn("Traceback", result.stderr)


class TurnsTest(unittest.TestCase):
    def test_the_groups_take_turns_each_its_own_session_and_numbers(self):
        sender = make_sender(groups=["239.1.0.0", "239.1.0.1", "239.1.0.2"])
        sender.send_many(7)
        sent = [(sender_module.HEADER.unpack_from(data), to) for data, to in sender.sock.sent]
        self.assertEqual([to[0] for _, to in sent],
                         ["239.1.0.0", "239.1.0.1", "239.1.0.2"] * 2 + ["239.1.0.0"])
        self.assertEqual([header[5] for header, _ in sent], [1, 1, 1, 2, 2, 2, 3])
        sessions = [header[4] for header, _ in sent]
        self.assertEqual(len(set(sessions)), 3)
        self.assertEqual(sessions[:3], sessions[3:6])
        groups = sender.groups
        for number in range(1, 8):
            which, session, sequence = groups.wire(number)
            self.assertEqual(groups.message(session, sequence), number)
        self.assertEqual([groups.sent(which, 7) for which in range(3)], [3, 2, 2])
        self.assertIsNone(groups.message(sessions[0] + 3, 1), "another sender's session")

    def test_each_groups_end_of_run_says_its_own_last_number(self):
        sender = make_sender(groups=["239.1.0.0", "239.1.0.1", "239.1.0.2"])
        sender.sock.settimeout = sender.sock.setblocking = lambda value: None
        sender.send_many(4)
        sender.sock.sent.clear()
        sender_module.send_end_of_run(sender, range(3))
        ends = {to[0]: sender_module.HEADER.unpack_from(data)[5] for data, to in sender.sock.sent}
        self.assertEqual(ends, {"239.1.0.0": 2, "239.1.0.1": 1, "239.1.0.2": 1})

    def test_reports_of_several_groups_add_up_and_drops_are_not_counted_twice(self):
        sender = make_sender(groups=["239.1.0.0", "239.1.0.1"])
        sender.send_many(10)
        groups = sender.groups
        for which, (received, lost, drops) in enumerate([(4, 1, 3), (5, 0, 3)]):
            report = receiver_module.Report(
                receiver_module.END_SEEN, groups.sessions[which], 5, 0, instance=9,
                received=received, lost=lost, host_drops=drops, unsent=0, name=b"r")
            kind, record = sender_module.parse_reply(receiver_module.pack_report(report))
            sender.on_reply((kind, record), "10.0.0.1", 1)
        [peer] = sender.peers.values()
        self.assertEqual((peer.report["received"], peer.report["lost"],
                          peer.report["host_drops"], peer.report["last_seq"]), (9, 1, 3, 10))
        entries = sender_module.group_entries(sender)
        self.assertEqual([(e["sent"], e["received"], e["lost"]) for e in entries],
                         [(5, 4, 1), (5, 5, 0)])


class PerGroupCountTest(unittest.TestCase):
    def test_each_group_counts_its_own_sessions(self):
        receiver = make_receiver(groups=["239.1.0.0", "239.1.0.1", "239.1.0.2"])
        source = ("10.0.0.1", 5000)
        for sequence in (1, 2, 4, 5):  # group 0: 3 never came
            receiver.handle(message(10, sequence), source, False, group="239.1.0.0")
        for sequence in (1, 2, 2, 3):  # group 1: 2 came twice
            receiver.handle(message(11, sequence), source, False, group="239.1.0.1")
        receiver.handle(b"MCK1" + bytes([1, 3, 0, 0]) + (11).to_bytes(8, "big")
                        + (4).to_bytes(8, "big") + bytes(8), source, False, group="239.1.0.1")
        counts = {entry["group"]: (entry["received"], entry["lost"], entry["duplicates"],
                                   entry["senders"])
                  for entry in receiver_module.group_counts(receiver)}
        self.assertEqual(counts, {"239.1.0.0": (4, 1, 0, 1), "239.1.0.1": (3, 1, 1, 1),
                                  "239.1.0.2": (0, 0, 0, 0)})
        receiver.join_seconds = 0.001
        receiver_module.print_summary(receiver)
        [(_, text, fields)] = [event for event in receiver.out.events if event[0] == "summary"]
        self.assertIn("3 groups, joined in 0.001 s over 1 socket: 0 without loss, 2 with loss, "
                      "1 silent (nothing came)", text)
        self.assertIn("worst: 239.1.0.1 lost 1 of 4, 239.1.0.0 lost 1 of 5", text)
        self.assertEqual([entry["group"] for entry in fields["groups"]],
                         ["239.1.0.0", "239.1.0.1", "239.1.0.2"])


class LoopbackGroupsTest(support.LocalCase):
    """Real processes on 127.0.0.1: the kernel's own table says what was joined."""

    GROUPS = 30  # more than one socket holds at the default limit of 20

    def memberships(self):
        with open("/proc/net/igmp") as table:
            lines = table.read().splitlines()
        start = next(i for i, line in enumerate(lines) if line.split()[1:2] == ["lo"])
        end = next((i for i in range(start + 1, len(lines)) if not lines[i][0].isspace()),
                   len(lines))
        return {lines[i].split()[0] for i in range(start + 1, end)}

    def test_every_group_joined_and_counted_over_several_sockets(self):
        receiver = self.receiver("-g", f"239.77.0.0+{self.GROUPS - 1}", "--quiet")
        [start] = support.events(receiver, "start")
        with open(receiver_module.MAX_MEMBERSHIPS) as limit:
            per_socket = int(limit.read())
        self.assertEqual((start["groups"], start["sockets"]),
                         (self.GROUPS, -(-self.GROUPS // per_socket)))
        # /proc/net/igmp: each group as the hex of its address in host byte order.
        joined = {f"{int.from_bytes(bytes([239, 77, 0, n]), 'little'):08X}"
                  for n in range(self.GROUPS)}
        self.assertLessEqual(joined, self.memberships())
        sender = self.start("socket_multicast_sender.py", "-g", f"239.77.0.0+{self.GROUPS - 1}",
                            "--rate", "3000", "--no-ack", "--count", str(self.GROUPS * 7 + 3),
                            "--json")
        self.assertEqual(sender.wait(30), 0, sender.stderr)
        summary = self.stop(receiver)
        got = [(entry["group"], entry["received"], entry["lost"]) for entry in summary["groups"]]
        self.assertEqual(got, [(f"239.77.0.{n}", 8 if n < 3 else 7, 0)
                               for n in range(self.GROUPS)])
        sent = support.summary_of(sender)
        self.assertEqual([entry["received"] for entry in sent["groups"]],
                         [8 if n < 3 else 7 for n in range(self.GROUPS)])

    def test_running_out_of_sockets_is_one_line_naming_both_limits(self):
        def few_files():
            resource.setrlimit(resource.RLIMIT_NOFILE, (12, 12))

        result = subprocess.run(support.python_script(
            "socket_multicast_receiver.py", "-i", "127.0.0.1", "-p", str(self.port), "-g",
            "239.78.0.0+999"), capture_output=True, text=True, timeout=20,
            stdin=subprocess.DEVNULL, preexec_fn=few_files)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        self.assertRegex(result.stderr, r"joined \d+ of 1000 groups over \d+ sockets")
        self.assertIn("ulimit -n", result.stderr)
        self.assertIn("igmp_max_memberships", result.stderr)


if __name__ == "__main__":
    unittest.main()
