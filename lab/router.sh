#!/bin/sh
# The routed lab's multicast router, between the near network (the demo's)
# and the far one. The kernel forwards multicast; smcroute tells it what to
# forward: the demo's group, from the near side to the far side. The kernel
# forwards a datagram only if its TTL is above 1 and lowers the TTL by one,
# so TTL 1 stays near and TTL 2 arrives far with TTL 1.
set -eu
group=${MULTICAST_GROUP:-224.10.10.10}
far_gateway=${MULTICAST_FAR_GATEWAY:?set MULTICAST_FAR_GATEWAY}

# Which interface is which: the far one has an address in the gateway's /24.
far=$(ip -o -4 addr show | awk -v p="${far_gateway%.*}." 'index($4, p) == 1 {print $2; exit}')
near=$(ip -o -4 addr show | awk -v f="$far" '$2 != "lo" && $2 != f {print $2; exit}')
[ -n "$far" ] && [ -n "$near" ] || { echo "router: no near or no far interface" >&2; exit 1; }

# The far hosts' default gateway: Docker leaves this address unassigned on the
# far network (inhibit_ipv4), and the router takes it, so unicast from the far
# side (the acks) comes through here rather than through the Docker host,
# which keeps bridge networks apart.
ip addr add "$far_gateway/$(ip -o -4 addr show dev "$far" | awk '{split($4, a, "/"); print a[2]; exit}')" dev "$far"

echo "router: forwarding $group from $near ($(ip -o -4 addr show dev "$near" | awk '{print $4; exit}'))" \
     "to $far ($(ip -o -4 addr show dev "$far" | awk '{print $4}' | tr '\n' ' '))"
printf 'mroute from %s group %s to %s\n' "$near" "$group" "$far" > /tmp/smcroute.conf
cat /tmp/smcroute.conf
# -n: stay in the foreground (its lines go to Docker's log); -P and -u: its
# PID file and control socket in /tmp, the only writable place; -l info: say
# what it forwards.
exec smcrouted -n -f /tmp/smcroute.conf -P /tmp/smcroute.pid -u /tmp/smcroute.sock -l info
