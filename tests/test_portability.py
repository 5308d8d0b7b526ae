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
        receiver.sock = receiver.sockets[0] = receiver.answers.sock = WithoutRecvmsg(sock)
        send(GROUP, port, b"hello again")
        self.assertTrue(select.select([sock], [], [], 2)[0])
        sock.setblocking(False)
        measuring.read_some(receiver)
        self.assertEqual((receiver.plain, receiver.received), (1, 1))
        self.assertEqual(receiver.answers.answered, {"127.0.0.1": [1, 0]})


class LayoutTest(unittest.TestCase):
    """Each join's bytes for the systems this machine is not, against their headers.

    The layouts, as the headers give them (little-endian, 64-bit):
    - struct ip_mreq (all four): group, interface: 4 + 4 bytes.
    - struct ip_mreq_source: Linux <linux/in.h> group, interface, source; macOS and
      FreeBSD <netinet/in.h>, Windows <ws2ipdef.h> group, source, interface.
    - struct ipv6_mreq (all four): the group's 16 bytes, then a 4-byte interface index.
    - struct group_source_req: a 4-byte interface index, then two struct
      sockaddr_storage (128 bytes each). A sockaddr_storage is aligned to 8 bytes
      (Linux: unsigned long __ss_align; FreeBSD: __int64_t __ss_align; Windows:
      __int64 __ss_align), so 4 bytes of padding follow the index: 264 bytes in all
      (golang.org/x/net's zsys_linux_amd64.go and zsys_freebsd_amd64.go:
      sizeofGroupSourceReq = 0x108). macOS wraps the struct in #pragma pack(4):
      no padding, 260 bytes (zsys_darwin.go: sizeofGroupSourceReq = 0x104).
    - struct sockaddr_in6: Linux and Windows start with a 2-byte family (10 and 23);
      macOS and FreeBSD with a 1-byte length (28) and a 1-byte family (30 and 28);
      then port (2), flow info (4), the address (16), scope id (4): 28 bytes.
    - Option numbers: IP_ADD_SOURCE_MEMBERSHIP Linux 39, macOS and FreeBSD 70,
      Windows 15; MCAST_JOIN_SOURCE_GROUP Linux 46, macOS and FreeBSD 82, Windows 45.
    """

    GROUP4, SOURCE4, INTERFACE4 = "232.1.1.1", "10.0.0.9", "10.0.0.2"
    GROUP6, SOURCE6 = "ff35::1", "fd00::9"

    def requests(self, platform, group, interface, sources=()):
        return measuring.membership_requests(group, interface, sources, platform)

    def test_ipv4_any_source_is_an_8_byte_ip_mreq_everywhere(self):
        for platform in PLATFORMS:
            [(level, option, data)] = self.requests(platform, GROUP, "127.0.0.1")
            self.assertEqual((level, option), (socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP))
            self.assertEqual(data, bytes([224, 10, 10, 10, 127, 0, 0, 1]))

    def test_ipv4_source_specific_layouts(self):
        group, source, interface = bytes([232, 1, 1, 1]), bytes([10, 0, 0, 9]), bytes(
            [10, 0, 0, 2])
        expected = {"linux": (39, group + interface + source),
                    "darwin": (70, group + source + interface),
                    "freebsd14": (70, group + source + interface),
                    "win32": (15, group + source + interface)}
        for platform, (option, data) in expected.items():
            with self.subTest(platform=platform):
                [(level, number, request)] = self.requests(
                    platform, self.GROUP4, self.INTERFACE4, [self.SOURCE4])
                self.assertEqual((level, number, request), (socket.IPPROTO_IP, option, data))

    def test_ipv6_any_source_is_a_20_byte_ipv6_mreq_everywhere(self):
        for platform in PLATFORMS:
            [(level, option, data)] = self.requests(platform, "ff15::10", 3)
            self.assertEqual((level, option), (socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP))
            self.assertEqual(data, bytes.fromhex("ff150000000000000000000000000010") +
                             bytes([3, 0, 0, 0]))

    def test_ipv6_source_specific_layouts(self):
        group = bytes.fromhex("ff350000000000000000000000000001")
        source = bytes.fromhex("fd000000000000000000000000000009")

        def storage(start, address):  # a sockaddr_in6 in a sockaddr_storage
            return (start + bytes(2 + 4) + address + bytes(4)).ljust(128, b"\0")
        index = bytes([3, 0, 0, 0])
        expected = {
            "linux": (46, index + bytes(4) + storage(bytes([10, 0]), group)
                      + storage(bytes([10, 0]), source)),
            "darwin": (82, index + storage(bytes([28, 30]), group)
                       + storage(bytes([28, 30]), source)),
            "freebsd14": (82, index + bytes(4) + storage(bytes([28, 28]), group)
                          + storage(bytes([28, 28]), source)),
            "win32": (45, index + bytes(4) + storage(bytes([23, 0]), group)
                      + storage(bytes([23, 0]), source))}
        for platform, (option, data) in expected.items():
            with self.subTest(platform=platform):
                [(level, number, request)] = self.requests(platform, self.GROUP6, 3,
                                                           [self.SOURCE6])
                self.assertEqual((level, number), (socket.IPPROTO_IPV6, option))
                self.assertEqual(len(request), 260 if platform == "darwin" else 264)
                self.assertEqual(request, data)

    def test_the_linux_layouts_are_the_ones_this_kernel_takes(self):
        """The same bytes, given to this machine's kernel, join (/proc/net/mcfilter6)."""
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            measuring.join(sock, self.GROUP6, socket.if_nametoindex("lo"), ["::1"], "linux")
            with open("/proc/net/mcfilter6") as table:
                rows = [line.split() for line in table]
            self.assertIn(("ff350000000000000000000000000001", "0" * 31 + "1"),
                          [(row[2], row[3]) for row in rows[1:]])


if __name__ == "__main__":
    unittest.main()
