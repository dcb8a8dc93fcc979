#!/usr/bin/env bash
# narwhal benchmark: setup/teardown latency against the kernel floor, the
# 2015 shell steps and the CNI ptp plugin; hook overhead for containers that
# do not use narwhal; scaling with 1000 containers; throughput; peak RSS.
#
# Usage: bench/run.sh [NARWHAL_BINARY] [driver options...]
#   NARWHAL_BINARY   default target/<host triple>/release/narwhal (`make bench` builds it)
#   driver options   e.g. --iterations 50 --scale 0,100 (bench/driver.py --help)
# Env: NARWHAL_BENCH_STRICT=1 exits 3 when a target fails.
#
# Needs root, iproute2, util-linux (unshare, setpriv), procps (sysctl),
# python3, /usr/bin/time (package `time`, installed here when missing) and
# containernetworking-plugins (ptp variants are skipped without it).
#
# Isolation: the script re-runs itself under `unshare --net --mount`. That
# private network namespace is the "host" for every variant; named container
# namespaces live on a tmpfs over /run/netns visible only in the private
# mount namespace. Nothing is visible outside, and everything goes away with
# the processes; the driver also deletes what it made on exit or Ctrl-C.
# Addresses: 198.51.100.0/24, 198.18.0.0/15, 2001:db8::/32 only.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

if [ "${NARWHAL_BENCH_INNER:-}" = 1 ]; then
	# Inside the private network + mount namespace.
	mount -t tmpfs -o mode=0755,size=16m narwhal-bench /run/netns
	mount -t sysfs sysfs /sys # /sys/class/net of this namespace (seed.sh reads it)
	ip link set lo up
	exec python3 "$here/driver.py" "$@"
fi

bin=${1:-target/$(rustc -vV | sed -n "s/^host: //p")/release/narwhal}
[ $# -gt 0 ] && shift
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
if [ ! -x "$bin" ]; then
	echo "bench/run.sh: no narwhal binary at $bin (build it: make build, or make bench)" >&2
	exit 2
fi
if [ "$(id -u)" != 0 ]; then
	echo "bench/run.sh: must run as root (creates network namespaces and veth pairs)" >&2
	exit 2
fi
missing=()
for t in ip unshare setpriv sysctl python3; do
	command -v "$t" >/dev/null || missing+=("$t")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "bench/run.sh: missing commands: ${missing[*]}" >&2
	exit 2
fi
if [ ! -x /usr/bin/time ]; then
	echo "bench/run.sh: installing package time (for /usr/bin/time)" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null ||
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null; }
fi
[ -x /usr/lib/cni/ptp ] || echo "bench/run.sh: /usr/lib/cni/ptp missing (package containernetworking-plugins): ptp variants skipped" >&2

# /run/netns must exist as a mount point target; remove it again if we made it.
made_netns_dir=
if [ ! -d /run/netns ]; then
	mkdir -p /run/netns
	made_netns_dir=1
fi
cleanup() {
	if [ -n "$made_netns_dir" ]; then rmdir /run/netns 2>/dev/null || true; fi
}
trap cleanup EXIT

cmd="bench/run.sh ${bin#"$root"/}${*:+ $*}"
echo "bench/run.sh: benchmarking $bin (about 5-10 minutes on 2 cores)" >&2
# Foreground child: Ctrl-C reaches the driver, which cleans up and exits.
set +e
NARWHAL_BENCH_INNER=1 unshare --net --mount --propagation private -- \
	bash "$here/run.sh" "$bin" --output "$root/BENCHMARKS.md" --command "$cmd" "$@"
rc=$?
set -e
exit $rc
