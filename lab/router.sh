#!/bin/sh
# The routed lab's multicast router, between the near network (the demo's)
# and the far one. It forwards the demo's group from the near side to the far
# side and back (the mesh has peers on both), and only a datagram whose TTL is
# above 1, lowering the TTL by one, so TTL 1 stays on its side and TTL 2
# arrives on the other with TTL 1. Two routers can do it:
#   kernel: the kernel's own multicast forwarding, told what to forward by
#           smcroute; needs a kernel built with CONFIG_IP_MROUTE.
#   user:   lab/router.py, the same rule in a short Python program; any kernel.
# MULTICAST_ROUTER=auto (the default) takes the kernel's where there is one.
set -eu
group=${MULTICAST_GROUP:-224.10.10.10}
far_gateway=${MULTICAST_FAR_GATEWAY:?set MULTICAST_FAR_GATEWAY}
router=${MULTICAST_ROUTER:-auto}
here=$(dirname "$0")  # /lab in the lab image

# The kernel can route IPv4 multicast when it lists its multicast interfaces.
if [ -e /proc/net/ip_mr_vif ]; then kernel_routes=yes; else kernel_routes=no; fi
missing="this kernel has no IPv4 multicast routing (built without CONFIG_IP_MROUTE)"
case $router:$kernel_routes in
auto:yes|kernel:yes) echo "router: kernel: the kernel forwards, smcroute tells it what" \
                          "(MULTICAST_ROUTER=$router)" ;;
auto:no)    echo "router: user space: $missing, so lab/router.py forwards instead" ;;
kernel:no)  echo "router: MULTICAST_ROUTER=kernel, but $missing;" \
                 "MULTICAST_ROUTER=user or auto forwards in user space" >&2
            exit 1 ;;
user:*)     echo "router: user space: lab/router.py forwards (MULTICAST_ROUTER=user)" ;;
*)          echo "router: MULTICAST_ROUTER=$router: use kernel, user or auto" >&2
            exit 2 ;;
esac

# Which interface is which: the far one has an address in the gateway's /24.
far=$(ip -o -4 addr show | awk -v p="${far_gateway%.*}." 'index($4, p) == 1 {print $2; exit}')
near=$(ip -o -4 addr show | awk -v f="$far" '$2 != "lo" && $2 != f {print $2; exit}')
[ -n "$far" ] && [ -n "$near" ] || { echo "router: no near or no far interface" >&2; exit 1; }

# The far hosts' default gateway: Docker leaves this address unassigned on the
# far network (inhibit_ipv4), and the router takes it, so unicast from the far
# side (the acks) comes through here rather than through the Docker host,
# which keeps bridge networks apart.
ip addr add "$far_gateway/$(ip -o -4 addr show dev "$far" | awk '{split($4, a, "/"); print a[2]; exit}')" dev "$far"

echo "router: forwarding $group both ways between $near ($(ip -o -4 addr show dev "$near" | awk '{print $4; exit}'))" \
     "and $far ($(ip -o -4 addr show dev "$far" | awk '{print $4}' | tr '\n' ' '))"
if [ "$router" = user ] || [ "$kernel_routes" = no ]; then
    exec python3 "$here/router.py" "$near" "$far" "$group" --both-ways
fi
printf 'mroute from %s group %s to %s\n' "$near" "$group" "$far" "$far" "$group" "$near" \
    > /tmp/smcroute.conf
cat /tmp/smcroute.conf
# -n: stay in the foreground (its lines go to Docker's log); -P and -u: its
# PID file and control socket in /tmp, the only writable place; -l info: say
# what it forwards.
exec smcrouted -n -f /tmp/smcroute.conf -P /tmp/smcroute.pid -u /tmp/smcroute.sock -l info
