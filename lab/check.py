#!/usr/bin/env python3
"""Which of the kit's Docker labs can run here, and why not: a check before class.

    python3 lab/check.py

It asks Docker for its version and its kernel, looks for both Compose commands,
and asks that kernel (from inside a container, so it is Docker's kernel even
where Docker runs in a VM, as Docker Desktop does) whether it can route IPv4
and IPv6 multicast, and whether Docker's bridges snoop IGMP. A few lines; exit
status 0 when every lab can run, 1 when one cannot, 2 when Docker cannot be asked.
"""

import json
import os
import subprocess
import sys

# What the kernel says, read inside a container on the host's network: the files
# exist only where the kernel has the feature.
PROBE = ("for f in /proc/net/igmp /proc/net/ip_mr_vif /proc/net/ip6_mr_vif; do "
         "test -e $f && echo $f; done; "
         "for f in /sys/class/net/docker0/bridge/multicast_snooping "
         "/sys/class/net/docker0/bridge/multicast_querier; do "
         "test -e $f && echo $f $(cat $f); done; true")


def output(argv):
    """The command's stdout, stripped, or None if it cannot run or fails."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                                stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def base_image():
    """The demo's base image, from the Dockerfile beside this folder."""
    dockerfile = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Dockerfile")
    with open(dockerfile) as lines:
        return next(line.split()[1] for line in lines if line.upper().startswith("FROM "))


def main():
    info = output(["docker", "info", "--format", "{{json .}}"])
    if info is None:
        print("Docker: no engine answers `docker info` here, so no lab can run: start "
              "Docker (or run the scripts without it, see the README)")
        return 2
    info = json.loads(info)
    composes = [f"{name} {version}" for name, version in (
        ("docker-compose", output(["docker-compose", "version", "--short"])),
        ("docker compose", output(["docker", "compose", "version", "--short"]))) if version]
    kernel = info.get("KernelVersion", "?")
    where = "this machine's" if kernel == os.uname().release else "a VM's"
    print(f"Docker {info.get('ServerVersion', '?')} on {info.get('OperatingSystem', '?')}, "
          f"kernel {kernel} ({where}); Compose: {', '.join(composes) or 'none found'}")
    probe = output(["docker", "run", "--rm", "--network", "host", base_image(), "sh", "-c",
                    PROBE])
    if probe is None:
        print(f"its kernel: not asked (`docker run {base_image()}` failed: build the demo "
              f"once with `docker-compose build`, then check again)")
        return 2
    found = dict((line.split() + [""])[:2] for line in probe.splitlines())
    multicast = "/proc/net/igmp" in found
    routes4, routes6 = "/proc/net/ip_mr_vif" in found, "/proc/net/ip6_mr_vif" in found
    labs = {
        "the demo and the crowd, watch and board profiles": (bool(composes) and multicast, "yes" if multicast else
                                      "no: this kernel has no IP multicast (CONFIG_IP_MULTICAST)"),
        "the routed lab": (bool(composes) and multicast, "yes, the kernel routes (smcroute)"
                           if routes4 else "yes, in user space (lab/router.py), as the kernel "
                           "cannot route multicast"),
        "the PIM lab": (bool(composes) and routes4, "yes" if routes4 else "no: FRR's routers need the "
                "kernel's IPv4 multicast routing"),
    }
    for lab, (can, why) in labs.items():
        print(f"{lab}: {why if composes else 'no: no Compose (docker-compose or docker compose)'}")
    print(f"the kernel's multicast routing: IPv4 {'yes' if routes4 else 'no'} "
          f"(CONFIG_IP_MROUTE, /proc/net/ip_mr_vif), IPv6 {'yes' if routes6 else 'no'} "
          f"(CONFIG_IPV6_MROUTE, /proc/net/ip6_mr_vif)")
    snooping = found.get("/sys/class/net/docker0/bridge/multicast_snooping")
    querier = found.get("/sys/class/net/docker0/bridge/multicast_querier")
    if snooping is None:
        print("Docker's bridges: docker0 not found, IGMP snooping unknown")
    else:
        print(f"Docker's bridges: IGMP snooping {'on' if snooping == '1' else 'off'}, "
              f"{'a' if querier == '1' else 'no'} querier of their own "
              f"(docker0: multicast_snooping {snooping}, multicast_querier {querier})")
    return 0 if all(can for can, _ in labs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
