#!/bin/sh
# A mesh peer on the near side of the routed lab (docker-compose --profile
# routed-mesh). The far side's unicast comes back through the router (the far
# hosts' gateway); ours must go out through it too, where Docker's gateway would
# take it to the Docker host, which keeps bridge networks apart. So, as root with
# NET_ADMIN: a route to the far network through the router. Then the mesh, as the
# unprivileged user with no capability left (setpriv: a new user id drops them).
set -eu
far_subnet=${MULTICAST_FAR_SUBNET:?set MULTICAST_FAR_SUBNET}

# The router's address on this network, once Docker's name server has it (10 s at most).
router=""
for _ in $(seq 50); do
    router=$(getent ahostsv4 multicast-router | awk '{print $1; exit}')
    [ -n "$router" ] && break
    sleep 0.2
done
[ -n "$router" ] || { echo "mesh peer: no multicast-router on this network" >&2; exit 1; }
ip route add "$far_subnet" via "$router"
echo "mesh peer: unicast to $far_subnet goes through the router at $router"
exec setpriv --reuid=multicast --regid=multicast --clear-groups --inh-caps=-all \
    python3 /app/socket_multicast_sender.py --mesh "$@"
