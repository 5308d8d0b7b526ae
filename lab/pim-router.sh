#!/bin/sh
# One router of the PIM-SM lab: `sh /lab/pim-router.sh 1` (or 2, 3). Three FRR
# routers in a row, the sender's network on r1, the rendezvous point (RP) on
# r2's loopback, a receivers' network behind r2 and one behind r3:
#
#   demo network --r1-- P.12.0/24 --r2-- P.23.0/24 --r3-- P.3.0/24 (receiver pim3)
#                                   |
#                                P.2.0/24 (receiver pim2)         RP: P.0.2 on r2
#
# P is MULTICAST_PIM_PREFIX (10.238 unless set). Docker does not keep the order
# of a container's interfaces, so each one is found by the subnet of its address.
# zebra (the routing table) and staticd (the static routes) run in the
# background, pimd (IGMP and PIM) in the foreground, logging to Docker's log.
set -eu
router=${1:?usage: pim-router.sh 1|2|3}
group=${MULTICAST_GROUP:-224.10.10.10}
p=${MULTICAST_PIM_PREFIX:-10.238}
rp=$p.0.2

# The interface with an address in subnet $1 (a /24 given as its first three bytes).
interface_in() {
    found=$(ip -o -4 addr show | awk -v net="$1." 'index($4, net) == 1 {print $2; exit}')
    [ -n "$found" ] || { echo "pim-r$router: no interface in $1.0/24" >&2; exit 1; }
    echo "$found"
}

# A network's default gateway is an address Docker leaves free (inhibit_ipv4):
# the router behind which the network lies takes it in place of the address
# Docker gave it (one address, one IGMP querier), so its hosts' acks go there.
take_gateway() {
    interface=$(interface_in "$1")
    given=$(ip -o -4 addr show dev "$interface" | awk '{print $4; exit}')
    ip addr del "$given" dev "$interface"
    ip addr add "$1.1/24" dev "$interface"
}

if ! [ -e /proc/net/ip_mr_vif ]; then
    echo "pim-r$router: cannot route: this kernel has no IPv4 multicast routing (built" \
         "without CONFIG_IP_MROUTE), which PIM needs; Debian's and Ubuntu's stock kernels" \
         "have it (the routed lab works on any kernel)" >&2
    exit 1
fi

# Docker gave this container a default route through a gateway that nobody
# holds; the routes below replace it.
ip route del default 2>/dev/null || true
case $router in
1)  near=$(ip -o -4 addr show | awk -v net="$p." '$2 != "lo" && index($4, net) != 1 {print $2; exit}')
    [ -n "$near" ] || { echo "pim-r1: no interface on the demo's network" >&2; exit 1; }
    pim_interfaces="$near $(interface_in "$p.12")"
    igmp_interfaces="$near"
    routes="ip route $rp/32 $p.12.2
ip route $p.0.0/16 $p.12.2" ;;
2)  take_gateway "$p.2"
    ip addr add "$rp/32" dev lo
    pim_interfaces="$(interface_in "$p.12") $(interface_in "$p.2") $(interface_in "$p.23") lo"
    igmp_interfaces="$(interface_in "$p.2")"
    routes="ip route 0.0.0.0/0 $p.12.1
ip route $p.3.0/24 $p.23.3" ;;
3)  take_gateway "$p.3"
    pim_interfaces="$(interface_in "$p.23") $(interface_in "$p.3")"
    igmp_interfaces="$(interface_in "$p.3")"
    routes="ip route $rp/32 $p.23.2
ip route 0.0.0.0/0 $p.23.2" ;;
*)  echo "pim-router.sh: no router $router (1, 2 or 3)" >&2; exit 2 ;;
esac

# Each daemon reads a file of its own; all of them are written here, from the
# environment, at every start.
config=${MULTICAST_FRR_CONFIG:-/tmp/frr}  # lab/pimlab.py gives each router its own
mkdir -p "$config"
# zebra: let a default route answer pimd's "which way to this source?" (its
# reverse path forwarding check); FRR ignores default routes there unless told.
{ echo "hostname multicast-pim-r$router"; echo "ip nht resolve-via-default"; } > "$config/zebra.conf"
{ echo "hostname multicast-pim-r$router"; echo "$routes"; } > "$config/staticd.conf"
{
    echo "hostname multicast-pim-r$router"
    echo "log stdout informational"
    echo "ip pim rp $rp ${MULTICAST_PIM_GROUPS:-224.0.0.0/4}"
    for interface in $pim_interfaces; do
        echo "interface $interface"
        echo " ip pim"
        case " $igmp_interfaces " in *" $interface "*) echo " ip igmp" ;; esac
    done
} > "$config/pimd.conf"

echo "pim-r$router: PIM on $pim_interfaces; IGMP on $igmp_interfaces; RP $rp for" \
     "${MULTICAST_PIM_GROUPS:-224.0.0.0/4} (the demo's group: $group)"
for interface in $pim_interfaces; do
    echo "pim-r$router:   $interface $(ip -o -4 addr show dev "$interface" | awk '{printf "%s ", $4}')"
done
echo "$routes" | sed "s/^/pim-r$router: static /"

# -d: in the background; -f: the file above; -i: its PID file; -u/-g root: stay
# root inside the container (its capabilities are all it has); -A: its vty
# (vtysh reaches the daemons through /run/frr, not through this address).
for daemon in zebra staticd; do
    "/usr/lib/frr/$daemon" -d -f "$config/$daemon.conf" -i "/run/frr/$daemon.pid" \
        -u root -g root -A 127.0.0.1
done
# FRR 8.4 refuses the static RP when pimd reads its file before zebra has told
# it a path to the RP ("No Path to RP address specified"), which depends on how
# fast zebra is: so once pimd runs, the RP is given again through vtysh until
# pimd lists it (in the background; pimd stays in the foreground).
(
    for _ in $(seq 100); do
        sleep 0.2
        vtysh -c 'show ip pim rp-info' 2>/dev/null | grep -q "^$rp " && exit 0
        vtysh -c 'configure terminal' -c "ip pim rp $rp ${MULTICAST_PIM_GROUPS:-224.0.0.0/4}" \
            >/dev/null 2>&1 || true
    done
    echo "pim-r$router: pimd did not take the RP $rp" >&2
) &
exec /usr/lib/frr/pimd -f "$config/pimd.conf" -i /run/frr/pimd.pid -u root -g root -A 127.0.0.1
