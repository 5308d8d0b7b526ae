#!/bin/sh
# Shows what crosses this container's network, decoded by tcpdump: every IGMP
# join and leave, and every datagram of the demo (to and from its port), each
# with its TTL (tcpdump -v prints the IP header: "ttl 1").
set -eu
group=${MULTICAST_GROUP:-224.10.10.10}
port=${MULTICAST_PORT:-10000}
echo "watching eth0 for IGMP and for UDP port $port (group $group)"
# -n: no name lookups; -l: a line at once (docker logs -f); -v: the IP header.
exec tcpdump -i eth0 -n -l -v "igmp or udp port $port"
