#!/usr/bin/env bash
# Creates the network image builds run on (`proctor-build`) and the firewall rules that keep a
# build's RUN steps away from this host and private networks while they still reach the
# internet (package mirrors). Idempotent: run it again after a reboot or an engine restart.
# See docs/sandbox.md, "The build network".
#
#   scripts/build-network.sh            # create the network, insert the rules
#   scripts/build-network.sh status     # show the network and the rules
set -euo pipefail
source "$(dirname "$0")/env.sh"

network=${PROCTOR_BUILD_NETWORK:-proctor-build}
subnet=${PROCTOR_BUILD_SUBNET:-172.31.240.0/24}
gateway=${PROCTOR_BUILD_GATEWAY:-172.31.240.1}
# Rules match the bridge interface, not the source address: a build step with CAP_NET_RAW
# could forge a source address, never the interface its packets enter the host by.
bridge=${PROCTOR_BUILD_BRIDGE:-proctor-build0}
blocked_ranges=(10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 100.64.0.0/10 169.254.0.0/16)

# The resolvers builds need: the engine's embedded DNS forwards a build's lookups to these,
# from the build's own network namespace, so a resolver in a blocked range needs a hole.
resolvers() { awk '$1 == "nameserver" && $2 ~ /^[0-9.]+$/ { print $2 }' /etc/resolv.conf; }

create_network() {
  if docker network inspect "$network" >/dev/null 2>&1; then
    local actual
    actual=$(docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}} {{index .Options "com.docker.network.bridge.name"}}' "$network")
    [ "$actual" = "$subnet $bridge" ] ||
      die "network $network exists as '$actual', not '$subnet $bridge': remove it (docker network rm $network) and run this again"
    return
  fi
  log "creating docker network $network ($subnet, bridge $bridge)"
  # A concurrent run may create it between the check and here; that is fine.
  docker network create --driver bridge --subnet "$subnet" --gateway "$gateway" \
    -o "com.docker.network.bridge.name=$bridge" \
    --label proctor.role=build-network "$network" >/dev/null ||
    docker network inspect "$network" >/dev/null
}

# Inserts a rule at the top of a chain unless it is already there.
ensure_rule() {
  local chain=$1
  shift
  iptables -C "$chain" "$@" 2>/dev/null || iptables -I "$chain" 1 "$@"
}

insert_rules() {
  # DOCKER-USER sees forwarded traffic before Docker's own rules, and the engine keeps its
  # content across restarts. Every rule is scoped to the build bridge, so replies to other
  # networks' connections are never touched. The blocks go in first, the holes after, so
  # that the holes (inserted at the top) come first.
  iptables -N DOCKER-USER 2>/dev/null || true
  local range resolver proto
  for range in "${blocked_ranges[@]}"; do
    ensure_rule DOCKER-USER -i "$bridge" -d "$range" -j REJECT --reject-with icmp-admin-prohibited
  done
  for resolver in $(resolvers); do
    for proto in udp tcp; do
      ensure_rule DOCKER-USER -i "$bridge" -d "$resolver" -p "$proto" --dport 53 -j RETURN
    done
  done
  # Packets of connections this host opened towards a build container (none are expected)
  # and ICMP errors about a build's own connections stay allowed.
  ensure_rule DOCKER-USER -i "$bridge" -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN

  # INPUT: anything from the build bridge addressed to this host itself (the gateway, the
  # host's primary address, docker0's address…), except DNS to a resolver on this host.
  ensure_rule INPUT -i "$bridge" -j REJECT --reject-with icmp-admin-prohibited
  for resolver in $(resolvers); do
    for proto in udp tcp; do
      ensure_rule INPUT -i "$bridge" -d "$resolver" -p "$proto" --dport 53 -j ACCEPT
    done
  done
  ensure_rule INPUT -i "$bridge" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
}

case ${1:-start} in
  start)
    create_network
    insert_rules
    ;;
  status)
    docker network inspect -f '{{.Name}} {{range .IPAM.Config}}{{.Subnet}}{{end}}' "$network" || true
    iptables -S DOCKER-USER | grep -- "-i $bridge" || echo "no DOCKER-USER rules for $bridge"
    iptables -S INPUT | grep -- "-i $bridge" || echo "no INPUT rules for $bridge"
    ;;
  *) die "usage: $0 [start|status]" ;;
esac
