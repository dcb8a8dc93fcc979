#!/usr/bin/env bash
# Many hosts at scale: HOSTS hosts x PER_HOST containers announce their
# routes with BIRD (packaging/bird/narwhal.conf) to one router.
#
#   bench/multihost.sh [NARWHAL] [HOSTS] [PER_HOST]   (default: release, 10, 100; root)
#
# Measured, each host setting up its containers one after another, hosts
# one after another (a burst of HOSTS x PER_HOST setups):
#   - narwhal's setup time without BIRD, with BIRD running on every
#     host and the router, and without BIRD again (mean per setup, process
#     start included; the load of a shared machine drifts);
#   - the time until the router has every route (both families), from the
#     start of the burst and after its last setup;
#   - BIRD's memory on the router and on one host (`birdc show memory`,
#     and the resident set from /proc);
#   - the time until the router has dropped every route after the burst of
#     removals.
# Topology and BIRD configurations: tests/e2e/multihost-demo.sh (sourced).
# Container i.j: 198.19.i.j and 2001:db8:c:i::j (no aggregation).
#
# Isolation: the script re-runs itself under `unshare --mount` with a tmpfs
# on /run/netns, so its namespaces are visible to it only; the trap kills
# the BIRDs it started (by pid) and deletes every namespace.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

if [ "${NARWHAL_MH_INNER:-}" != 1 ]; then
  [ "$(id -u)" = 0 ] || { echo "bench/multihost.sh: run me as root" >&2; exit 2; }
  bash "$root/tests/e2e/deps.sh" multihost
  NARWHAL_MH_INNER=1 exec unshare --mount --propagation private -- "$0" "$@"
fi
mount -t tmpfs -o mode=0755,size=16m narwhal-mh-bench /run/netns

NARWHAL=$(readlink -f "${1:-$root/target/$(rustc -vV | sed -n "s/^host: //p")/release/narwhal}")
HOSTS=${2:-10}
PER_HOST=${3:-100}
[ -x "$NARWHAL" ] || { echo "no narwhal binary at $NARWHAL (make build)" >&2; exit 2; }
[ "$PER_HOST" -le 250 ] && [ "$HOSTS" -le 99 ] || { echo "at most 99 hosts x 250 containers" >&2; exit 2; }

MH_LIB=1
# shellcheck source=../tests/e2e/multihost-demo.sh
. "$root/tests/e2e/multihost-demo.sh"
mh_setup_work
trap 'mh_cleanup; rm -rf "$MH_WORK"' EXIT INT TERM

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
total=$((HOSTS * PER_HOST))

# the router's routes from BIRD, per family
router_routes() { ip -n "$(mh_ns r)" "$1" route show proto bird | wc -l; }

# Set up (or with "remove": remove) every container, host after host; each
# host runs its loop in its own namespace. Prints the mean ms per call.
burst() {
  local what=${1:-up} i t0 t1
  t0=$(now)
  for i in $(seq 1 "$HOSTS"); do
    ip netns exec "$(mh_ns "h$i")" bash -c '
      set -e
      for j in $(seq 1 '"$PER_HOST"'); do
        ns=/run/netns/mh-c'"$i"'.$j-'"$MH_TAG"'
        if [ '"$what"' = up ]; then
          '"$NARWHAL"' --netns "$ns" -4 198.19.'"$i"'.$j -6 2001:db8:c:'"$i"'::$j
        else
          '"$NARWHAL"' remove --netns "$ns" >/dev/null
        fi
      done'
  done
  t1=$(now)
  awk -v a="$t0" -v b="$t1" -v n="$total" 'BEGIN { printf "%.2f", (b - a) * 1000 / n }'
}

echo "== $HOSTS hosts x $PER_HOST containers, narwhal $NARWHAL"
mh_router
for i in $(seq 1 "$HOSTS"); do
  mh_host "$i"
  for j in $(seq 1 "$PER_HOST"); do mh_add_ns "$(mh_ns "c$i.$j")"; done
done
echo "kernel $(uname -r), $(nproc) CPUs, $(bird --version 2>&1), load average $(cut -d" " -f1-3 /proc/loadavg)"

# 1. without BIRD
up_plain=$(burst up)
rm_plain=$(burst remove)
echo "setup without BIRD: $up_plain ms per container; removal $rm_plain ms"

# 2. with BIRD: every session up first
for n in r $(seq -f 'h%g' 1 "$HOSTS"); do mh_bird "$n"; done
sessions=$((2 * HOSTS))
mh_wait "$sessions BGP sessions up" \
  "[ \$(mh_birdc r show protocols | grep -c Established) = $sessions ]" 120 >/dev/null
# A burst (up or remove) with BIRD running: mean ms per call, then the time
# until the router has WANT routes per family, after the burst's first and
# after its last call.
converge() {
  local what=$1 want=$2 t0 t1 t2 per
  t0=$(now)
  per=$(burst "$what")
  t1=$(now)
  mh_wait "router has $want routes per family" \
    "[ \$(router_routes -4) = $want ] && [ \$(router_routes -6) = $want ]" 300 >/dev/null
  t2=$(now)
  echo "$what with BIRD: $per ms per container; router has $want+$want routes $(secs "$t0" "$t2") s after the first call, $(secs "$t1" "$t2") s after the last"
}

# CPU seconds BIRD NAME has used so far (user + system)
bird_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' \
    "/proc/$(cat "$MH_WORK/$1.pid")/stat"
}

converge up "$total"
hosts_cpu=0
for i in $(seq 1 "$HOSTS"); do hosts_cpu=$(awk -v a="$hosts_cpu" -v b="$(bird_cpu "h$i")" 'BEGIN { print a + b }'); done
echo "BIRD CPU since start: router $(bird_cpu r) s, all hosts together $hosts_cpu s"
for n in r h1; do
  pid=$(cat "$MH_WORK/$n.pid")
  mem=$(mh_birdc "$n" show memory | awk '/^Total:/ { print $2, $3 }')
  rss=$(awk '/^VmRSS:/ { print $2, $3 }' "/proc/$pid/status")
  echo "BIRD memory, $n: $mem (birdc show memory total), RSS $rss"
done
converge remove 0

# 3. without BIRD again (the machine's load drifts: A-B-A)
for n in r $(seq -f 'h%g' 1 "$HOSTS"); do mh_kill_bird "$n"; done
up_plain=$(burst up)
rm_plain=$(burst remove)
echo "setup without BIRD, again: $up_plain ms per container; removal $rm_plain ms"
echo "load average at the end: $(cut -d" " -f1-3 /proc/loadavg)"
