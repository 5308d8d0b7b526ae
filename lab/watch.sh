#!/bin/sh
# Shows what crosses this container's networks, decoded by tcpdump: every IGMP
# join and leave, every PIM message (Hello, Join/Prune, Register), and every
# datagram of the demo (to and from its port), each with its TTL (tcpdump -v
# prints the IP header: "ttl 1").
set -eu
group=${MULTICAST_GROUP:-224.10.10.10}
port=${MULTICAST_PORT:-10000}
interfaces=$(ip -o -4 addr show | awk '$2 != "lo" {print $2}')
for interface in $interfaces; do
    echo "watching $interface ($(ip -o -4 addr show dev "$interface" | awk '{print $4; exit}'))" \
         "for IGMP, PIM and UDP port $port (group $group)"
done
# One network: its interface. Several: all of them, each line naming its own.
[ "$(echo "$interfaces" | wc -l)" -eq 1 ] && on=$interfaces || on=any
# -n: no name lookups; -l: a line at once (docker logs -f); -v: the IP header.
exec tcpdump -i "$on" -n -l -v "igmp or pim or udp port $port"
