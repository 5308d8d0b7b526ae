MAX_SECONDS = 1_000_000  # about 11 days: the longest time any option takes
MAX_GROUPS = 10_000  # groups one run takes at most (--group, given again or as FIRST+N)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr, exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def multicast_group(text):
    """A multicast group: IPv4 224.0.0.0 to 239.255.255.255, or IPv6 ff00::/8."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    if address is None or not address.is_multicast:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a multicast group (valid: 224.0.0.0 to 239.255.255.255, "
            f"or an IPv6 group in ff00::/8)")
    return str(address)


def group_range(text):
    """One group, or FIRST+N: FIRST and the N groups after it (239.1.0.0+999 is 1,000)."""
    first, plus, more = text.partition("+")
    start = multicast_group(first.strip())
    if not plus:
        return [start]
    if not more.strip().isdigit() or int(more) >= MAX_GROUPS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: after + comes how many groups follow {start} (0 to {MAX_GROUPS - 1})")
    address, more = ipaddress.ip_address(start), int(more)
    if int(address) + more >= 2 ** address.max_prefixlen or not (address + more).is_multicast:
        raise argparse.ArgumentTypeError(f"{text!r} runs past the last multicast group")
    return [str(address + offset) for offset in range(more + 1)]


def group_list(text):
    """Groups separated by commas, each one group or FIRST+N (group_range)."""
    groups = [group for part in text.split(",") if part.strip()
              for group in group_range(part.strip())]
    if not groups:
        raise argparse.ArgumentTypeError(f"{text!r} names no group")
    return groups


class GroupList(argparse.Action):
    """--group, given once or more: the groups of each, in order, in place of the default
    (a string until argparse turns it into its list, if no --group was given)."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = getattr(namespace, self.dest)
        setattr(namespace, self.dest, (given if isinstance(given, list) else []) + values)


def add_group_option(parser, environ, help):
    """-g/--group, as both scripts take it: groups, ranges, or MULTICAST_GROUP's list."""
    parser.add_argument("-g", "--group", metavar="ADDRESS[+N]", dest="groups", type=group_list,
                        action=GroupList, default=environ.get("MULTICAST_GROUP", DEFAULT_GROUP),
                        help=help)


def settle_groups(parser, args):
    """Keep each group of args.groups once, in the order given, and set args.group to the
    first; or end with the one-line error."""
    args.groups = list(dict.fromkeys(args.groups))
    if len(args.groups) > MAX_GROUPS:
        parser.error(f"{len(args.groups)} groups: at most {MAX_GROUPS} in one run")
    if len({family_of(group) for group in args.groups}) > 1:
        parser.error("the groups are not of one family: give only IPv4 or only IPv6 groups")
    args.group = args.groups[0]


def family_of(group):
    """The address family of a group: the family follows the group."""
    return socket.AF_INET6 if ":" in group else socket.AF_INET


def needs_interface(group):
    """Whether the group is only defined on one link (IPv6 scopes 1 and 2: ff01::, ff02::)."""
    return ":" in group and ipaddress.ip_address(group).packed[1] & 0x0F <= 2


def receiver_name(text):
    """A name for the acks: 1 to MAX_NAME bytes of UTF-8."""
    if not 1 <= len(text.encode("utf-8")) <= MAX_NAME:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a name (valid: 1 to {MAX_NAME} bytes)")
    return text


def port_number(text):
    """A UDP port, 1 to 65535."""
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (valid: 1 to 65535)")
    return int(text)


def count_number(text):
    """A whole number, 0 to 2**63 - 1."""
    if not text.strip().isdigit() or int(text) >= 2**63:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (valid: 0 to {2**63 - 1})")
    return int(text)


def bounded_number(text, what, upper):
    """A finite number from 0 to upper; what names it in the error."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= upper:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what} (valid: 0 to {upper:g})")
    return value


def seconds(text):
    """A number of seconds, 0 to MAX_SECONDS."""
    return bounded_number(text, "a number of seconds", MAX_SECONDS)


def interface_names():
    """The names of this host's network interfaces."""
    try:
        return [name for _, name in socket.if_nameindex()]
    except (OSError, AttributeError):
        return []


def interface_address(name):
    """The IPv4 address of the interface called name, or None (where it is unknown)."""
    try:
        import fcntl  # not on Windows
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            # SIOCGIFADDR (Linux's 0x8915): the interface's IPv4 address.
            answer = fcntl.ioctl(probe.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
    except (ImportError, OSError):
        return None
    return socket.inet_ntoa(answer[20:24])


def ipv6_interface_index(text):
    """The index of the interface that has the IPv6 address text (fe80::1%eth0 names it)."""
    if "%" in text:
        return socket.if_nametoindex(text.split("%", 1)[1])
    wanted = ipaddress.ip_address(text).packed.hex()
    try:
        with open("/proc/net/if_inet6") as table:  # Linux: address, index, ...
            for line in table:
                if line.split()[0] == wanted:
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return None


def local_interface(text):
    """One of this host's interfaces: a name (eth0), an IPv4 or an IPv6 address."""
    names = interface_names()
    if text in names:
        return text
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an interface of this host (interfaces: "
            f"{', '.join(names) or 'none found'}; or give an IP address)") from None
    if address.is_multicast or address.is_unspecified:
        raise argparse.ArgumentTypeError(f"{text!r} is not an interface address")
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_DGRAM)
    try:  # binding only succeeds for an address this host has
        probe.bind((text, 0) if family == socket.AF_INET else
                   socket.getaddrinfo(text, 0, family, socket.SOCK_DGRAM)[0][4])
    except OSError:
        raise argparse.ArgumentTypeError(
            f"{text} is not an address of this host (see 'ip addr')") from None
    finally:
        probe.close()
    return text


def resolve_interface(text, group):
    """The interface as the group's family wants it: IPv4 an address (None: the
    system's choice), IPv6 an interface index (0: the system's choice).
    Raises ValueError with a one-line reason."""
    ipv6 = family_of(group) == socket.AF_INET6
    if text is None:
        if needs_interface(group):
            raise ValueError(f"{group} is a link-local group, defined on each link apart: "
                             f"say which with --interface NAME")
        return 0 if ipv6 else None
    if text in interface_names():
        if ipv6:
            return checked_for_ipv6_multicast(socket.if_nametoindex(text))
        address = interface_address(text)
        if address is None:
            raise ValueError(f"interface {text} has no IPv4 address")
        return address
    version = ipaddress.ip_address(text.split("%", 1)[0]).version
    if version != (6 if ipv6 else 4):
        raise ValueError(f"{text} is an IPv{version} address but {group} is an IPv"
                         f"{6 if ipv6 else 4} group: give an interface name or an IPv"
                         f"{6 if ipv6 else 4} address")
    if not ipv6:
        return text
    index = ipv6_interface_index(text)
    if index is None:
        raise ValueError(f"cannot tell which interface has {text}: give its name")
    return checked_for_ipv6_multicast(index)


def checked_for_ipv6_multicast(index):
    """The interface index, unless (on Linux) the interface has no MULTICAST flag: then
    IPv6 multicast cannot go out of it or in (IPv4 on lo works without the flag)."""
    try:
        name = socket.if_indextoname(index)
        with open(f"/sys/class/net/{name}/flags") as flags:
            capable = int(flags.read(), 16) & 0x1000  # IFF_MULTICAST
    except (OSError, ValueError):
        return index  # not Linux, or unknown: the system will say
    if not capable:
        raise ValueError(f"{name} cannot carry IPv6 multicast: it has no MULTICAST flag "
                         f"(see 'ip link show {name}'): pass --interface with another")
    return index


def route_advice(group):
    """What to do when the system has no route for the group's family."""
    return (f"no route for multicast: add a route for "
            f"{'ff00::/8' if ':' in group else '224.0.0.0/4'} or a default route, "
            f"or pass --interface NAME")


def settle_interface(parser, args):
    """Turn args.interface into what the sockets want, or end with the one-line error."""
    try:
        args.interface = resolve_interface(args.interface, args.group)
    except ValueError as error:
        parser.error(str(error))


def destination(group, port, interface):
    """The socket address of a group: IPv6 adds flow info and the interface index."""
    return (group, port, 0, interface or 0) if ":" in group else (group, port)


def describe_interface(group, port, interface):
    """Which interface and source address traffic for the group uses, in words."""
    family = family_of(group)
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            if family == socket.AF_INET6 and interface:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, interface)
            elif interface:
                probe.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                 socket.inet_aton(interface))
            probe.connect(destination(group, port, interface))  # asks the routing table only
            source = probe.getsockname()[0]
        except OSError:
            return "no interface (no route for multicast)", None
    if family == socket.AF_INET6:
        index = interface or ipv6_interface_index(source)
        try:
            names = [socket.if_indextoname(index)] if index else []
        except OSError:
            names = []
    else:
        names = [name for name in interface_names() if interface_address(name) == source]
    return (f"{names[0]} ({source})" if names else source), source
