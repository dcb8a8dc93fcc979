#!/usr/bin/env bash
# Many hosts: containers on two hosts reach each other over plain routing;
# each host's BIRD announces its narwhal routes to a router with BGP.
#
#   tests/e2e/multihost-demo.sh [NARWHAL]   (default: target/<host triple>/release/narwhal; as root)
#
# Everything lives in network namespaces this script creates (ip netns
# mh-*-PID): a router, two hosts wired to it with veth pairs, and a
# container per host. Each host and the router run BIRD 2 (bird2); the
# hosts include packaging/bird/narwhal.conf, as a real host does. narwhal
# sets up each container from inside its host namespace; the containers
# then talk to each other over IPv4 and IPv6, one container is removed
# and the router drops its route. Whatever happens, the trap kills the
# BIRD processes it started (by PID) and removes every namespace.
#
# bench/multihost.sh sources this file for its functions (MH_LIB=1).
set -euo pipefail

MH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MH_TAG=${MH_TAG:-$$}
MH_WORK=${MH_WORK:-}
MH_HOLD=${MH_HOLD:-3}            # BGP hold time, seconds (BIRD's minimum)
MH_NS=()                         # namespaces made, for cleanup
MH_BIRDS=()                      # pid files of BIRDs started

mh_ns() { echo "mh-$1-$MH_TAG"; }   # r, h1, h2, c1.1, ...

mh_add_ns() {
  ip netns add "$1"
  MH_NS+=("$1")
  ip -n "$1" link set lo up
}

# The router: one namespace, forwarding, BIRD exporting what BGP learns
# into its kernel (proto bird).
mh_router() {
  local r; r=$(mh_ns r)
  mh_add_ns "$r"
  ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  cat >"$MH_WORK/r.conf" <<EOF
log "$MH_WORK/r.log" all;
router id 198.18.0.1;
protocol device { scan time 10; }
protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; merge paths on; }
protocol kernel { ipv6 { import none; export where source = RTS_BGP; }; merge paths on; }
filter hosts4 { if net ~ [ 198.51.100.0/24{24,32}, 198.19.0.0/16{16,32} ] then accept; reject; }
filter hosts6 { if net ~ [ 2001:db8:c::/48{48,128} ] then accept; reject; }
template bgp host {
  local as 65000;
  hold time $MH_HOLD; keepalive time 1;
  connect delay time 1; connect retry time 2; error wait time 1, 5;
}
EOF
}

# Host i: namespace h<i>, uplink up0 = 198.18.i.2/30, 2001:db8:ff:i::2/64
# (router end h<i>: .1, ::1), default routes to the router, forwarding on,
# and a session pair on the router. OWN4/OWN6: prefixes this host announces
# as a whole (BIRD set syntax, may be empty).
mh_host() {
  local i=$1 own4=${2:-} own6=${3:-} h r
  h=$(mh_ns "h$i"); r=$(mh_ns r)
  mh_add_ns "$h"
  ip link add up0 netns "$h" type veth peer name "h$i" netns "$r"
  ip -n "$r" addr add "198.18.$i.1/30" dev "h$i"
  ip -n "$r" addr add "2001:db8:ff:$i::1/64" dev "h$i" nodad
  ip -n "$r" link set "h$i" up
  ip -n "$h" addr add "198.18.$i.2/30" dev up0
  ip -n "$h" addr add "2001:db8:ff:$i::2/64" dev up0 nodad
  ip -n "$h" link set up0 up
  ip -n "$h" route add default via "198.18.$i.1"
  ip -n "$h" -6 route add default via "2001:db8:ff:$i::1"
  ip netns exec "$h" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  cat >>"$MH_WORK/r.conf" <<EOF
protocol bgp h${i}_4 from host { neighbor 198.18.$i.2 as $((65100 + i)); ipv4 { import filter hosts4; export none; }; }
protocol bgp h${i}_6 from host { neighbor 2001:db8:ff:$i::2 as $((65100 + i)); ipv6 { import filter hosts6; export none; }; }
EOF
  local statics=""
  [ -n "$own4" ] && statics+="protocol static { ipv4; route $own4 unreachable; }"$'\n'
  [ -n "$own6" ] && statics+="protocol static { ipv6; route $own6 unreachable; }"$'\n'
  # the shape of examples/bird/host-ebgp.conf, with this host's numbers
  cat >"$MH_WORK/h$i.conf" <<EOF
log "$MH_WORK/h$i.log" all;
router id 198.18.$i.2;
define NARWHAL_OWN4 = [ ${own4:+$own4+} ];
define NARWHAL_OWN6 = [ ${own6:+$own6+} ];
include "$MH_REPO/packaging/bird/narwhal.conf";
$statics
template bgp tor {
  local as $((65100 + i));
  hold time $MH_HOLD; keepalive time 1;
  connect delay time 1; connect retry time 2; error wait time 1, 5;
}
protocol bgp tor4 from tor {
  neighbor 198.18.$i.1 as 65000; source address 198.18.$i.2;
  ipv4 { import none; export filter narwhal_export4; };
}
protocol bgp tor6 from tor {
  neighbor 2001:db8:ff:$i::1 as 65000; source address 2001:db8:ff:$i::2;
  ipv6 { import none; export filter narwhal_export6; };
}
EOF
}

# Start BIRD NAME (r, h1, ...) in its namespace; it daemonizes and writes
# its pid file, which cleanup uses.
mh_bird() {
  local n=$1
  ip netns exec "$(mh_ns "$n")" bird -c "$MH_WORK/$n.conf" -s "$MH_WORK/$n.ctl" -P "$MH_WORK/$n.pid"
  MH_BIRDS+=("$MH_WORK/$n.pid")
}

mh_birdc() { local n=$1; shift; birdc -s "$MH_WORK/$n.ctl" "$@"; }

# Kill BIRD NAME by the pid in its pid file; wait until it is gone.
mh_kill_bird() {
  local pid
  pid=$(cat "$MH_WORK/$1.pid" 2>/dev/null) || return 0
  kill -9 "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.01; done
}

# Wait (polling, up to $3 s, default 60) until command "$2" succeeds; print
# the seconds it took. $1: what, for the error.
mh_wait() {
  local what=$1 cond=$2 limit=${3:-60} t0 now
  t0=$(date +%s.%N)
  while ! eval "$cond" >/dev/null 2>&1; do
    now=$(date +%s.%N)
    if awk -v a="$t0" -v b="$now" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
      echo "timed out after ${limit}s waiting for: $what" >&2
      return 1
    fi
    sleep 0.02
  done
  now=$(date +%s.%N)
  awk -v a="$t0" -v b="$now" 'BEGIN { printf "%.2f\n", b - a }'
}

# The router's next hop for ADDR ("" when none): which host it routes to.
mh_route_via() {
  ip -n "$(mh_ns r)" -j route get "$1" 2>/dev/null |
    sed -n 's/.*"gateway":"\([^"]*\)".*/\1/p'
}

# A container C on host i: its namespace and narwhal run inside the host.
mh_container() {
  local i=$1 c=$2 v4=$3 v6=$4
  mh_add_ns "$(mh_ns "$c")"
  ip netns exec "$(mh_ns "h$i")" "$NARWHAL" --netns "/run/netns/$(mh_ns "$c")" -4 "$v4" -6 "$v6"
}

mh_remove() {
  local i=$1 c=$2
  ip netns exec "$(mh_ns "h$i")" "$NARWHAL" remove --netns "/run/netns/$(mh_ns "$c")"
}

mh_cleanup() {
  local p pid n
  for p in "${MH_BIRDS[@]}"; do
    pid=$(cat "$p" 2>/dev/null) || continue
    kill -9 "$pid" 2>/dev/null || true
  done
  for n in "${MH_NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  MH_BIRDS=() MH_NS=()
}

mh_setup_work() {
  [ -n "$MH_WORK" ] || MH_WORK=$(mktemp -d /tmp/narwhal-mh.XXXXXX)
  chmod 755 "$MH_WORK"
}

[ "${MH_LIB:-}" = 1 ] && return 0

# --- the demo ---------------------------------------------------------------
NARWHAL=${1:-target/$(rustc -vV | sed -n "s/^host: //p")/release/narwhal}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "multihost-demo.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run me as root"
[ -x "$NARWHAL" ] || die "no narwhal binary at $NARWHAL (build it: make build)"
NARWHAL=$(readlink -f "$NARWHAL")
bash "$MH_REPO/tests/e2e/deps.sh" multihost

mh_setup_work
finish() {
  local rc=$?
  trap - EXIT INT TERM
  mh_cleanup
  [ $rc -eq 0 ] || { tail -n 20 "$MH_WORK"/*.log 2>/dev/null; echo "multihost-demo.sh: FAILED (exit $rc); everything it made is removed" >&2; }
  rm -rf "$MH_WORK"
  exit $rc
}
trap finish EXIT INT TERM

say "a router and two hosts (network namespaces), BIRD on each"
mh_router
# host 1 owns 198.51.100.0/26 and 2001:db8:c:1::/64: announced once
mh_host 1 198.51.100.0/26 2001:db8:c:1::/64
mh_host 2 198.51.100.64/26 2001:db8:c:2::/64
for n in r h1 h2; do mh_bird "$n"; done

say "a container on each host, set up by narwhal inside its host"
mh_container 1 c1 198.51.100.11 2001:db8:c:1::11
# host 2's container has an address outside host 2's prefixes: a /32, /128
mh_container 2 c2 198.51.100.200 2001:db8:c:9::12
ip -n "$(mh_ns h1)" route show proto 77
ip -n "$(mh_ns h2)" -6 route show proto 77

say "the router learns the routes with BGP"
mh_wait "router route to 198.51.100.200" '[ "$(mh_route_via 198.51.100.200)" = 198.18.2.2 ]' >/dev/null
mh_wait "router route to 2001:db8:c:9::12" '[ -n "$(mh_route_via 2001:db8:c:9::12)" ]' >/dev/null
mh_wait "router route to 198.51.100.0/26" '[ "$(mh_route_via 198.51.100.11)" = 198.18.1.2 ]' >/dev/null
ip -n "$(mh_ns r)" route show proto bird
ip -n "$(mh_ns r)" -6 route show proto bird

say "container 1 -> container 2 and back, IPv4 and IPv6 (TCP)"
c1=$(mh_ns c1) c2=$(mh_ns c2)
for dst in 198.51.100.200 2001:db8:c:9::12; do
  ip netns exec "$c2" busybox nc -l -p 7000 -e echo "hello from host 2" &
  srv=$!
  mh_wait "listener in c2" "ip netns exec $c2 ss -Hltn | grep -q :7000" >/dev/null
  got=$(ip netns exec "$c1" busybox nc -w 5 "$dst" 7000 </dev/null)
  wait "$srv" || true
  [ "$got" = "hello from host 2" ] || die "container 1 -> $dst: got '$got'"
  echo "c1 -> $dst: $got"
done
ip netns exec "$c2" busybox ping -c 1 -W 5 198.51.100.11 | grep 'bytes from'
ip netns exec "$c2" busybox ping -c 1 -W 5 2001:db8:c:1::11 | grep 'bytes from'

say "container 2 goes away: the router drops its route"
mh_remove 2 c2
s=$(mh_wait "router drops 198.51.100.200" '[ -z "$(mh_route_via 198.51.100.200)" ]')
echo "IPv4 route withdrawn after ${s}s"
s=$(mh_wait "router drops 2001:db8:c:9::12" '[ -z "$(mh_route_via 2001:db8:c:9::12)" ]')
echo "IPv6 route withdrawn after ${s}s"

say "cleanup"
mh_cleanup
left=$(ip netns list 2>/dev/null | grep -c -- "-$MH_TAG" || true)
echo "namespaces left: $left"
[ "$left" = 0 ] || die "namespaces left behind"
echo "multihost demo: OK"
