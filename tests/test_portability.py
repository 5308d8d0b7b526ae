"""Every platform branch of the receivers, simulated here on Linux with real sockets.

Linux is tested for real everywhere else; macOS, the BSDs and Windows are
supported by design: these tests run the code each of them takes. (The textbook
pair has one branch: it binds the group on Linux and the wildcard address elsewhere.)"""

import select
import socket
import unittest

from . import support
from .support import GROUP
from .test_counting import make_receiver

OTHER_GROUP = "224.10.10.11"
measuring = support.load("socket_multicast_receiver.py")
PLATFORMS = ("linux", "darwin", "freebsd14", "win32")


class WithoutRecvmsg:
    """A socket as Windows' Python has it: no recvmsg."""

    def __init__(self, sock):
        self.sock = sock

    def recvfrom_into(self, buffer):
        return self.sock.recvfrom_into(buffer)

    def sendto(self, data, destination):
        return self.sock.sendto(data, destination)


def send(group, port, data):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                        socket.inet_aton("127.0.0.1"))
        sock.sendto(data, (group, port))


class BindingTest(unittest.TestCase):
    def receivers(self, module, platform, port):
        """A receiver of each group on one port, made as platform would make it."""
        mine = module.make_receiver_socket(GROUP, port, "127.0.0.1", platform=platform)
        self.addCleanup(mine.close)
        other = module.make_receiver_socket(OTHER_GROUP, port, "127.0.0.1", platform=platform)
        self.addCleanup(other.close)
        return mine, other

    def test_each_platform_binds_where_it_isolates_groups(self):
        for module in (measuring,):
            for platform in PLATFORMS:
                with self.subTest(module=module.__name__, platform=platform):
                    port = support.free_udp_port()
                    mine, _ = self.receivers(module, platform, port)
                    expected = GROUP if platform == "linux" else "0.0.0.0"
                    self.assertEqual(mine.getsockname(), (expected, port))
                    reuse_port = mine.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
                    self.assertEqual(bool(reuse_port), platform in ("darwin", "freebsd14"))

    def test_on_linux_a_receiver_gets_only_its_own_group(self):
        for module in (measuring,):
            with self.subTest(module=module.__name__):
                port = support.free_udp_port()
                mine, other = self.receivers(module, "linux", port)
                mine.setblocking(False)
                send(OTHER_GROUP, port, b"not for me")
                send(GROUP, port, b"for me")
                self.assertTrue(select.select([mine], [], [], 2)[0])
                self.assertEqual(mine.recv(100), b"for me")
                self.assertEqual(select.select([mine], [], [], 0.2)[0], [])

    def test_without_recvmsg_the_receivers_read_with_recvfrom(self):
        port = support.free_udp_port()
        sock = measuring.make_receiver_socket(GROUP, port, "127.0.0.1", platform="win32")
        self.addCleanup(sock.close)
        receiver = make_receiver()
        receiver.sock = receiver.answers.sock = WithoutRecvmsg(sock)
        send(GROUP, port, b"hello again")
        self.assertTrue(select.select([sock], [], [], 2)[0])
        sock.setblocking(False)
        measuring.read_some(receiver)
        self.assertEqual((receiver.plain, receiver.received), (1, 1))
        self.assertEqual(receiver.answers.answered, {"127.0.0.1": [1, 0]})


if __name__ == "__main__":
    unittest.main()
