#!/usr/bin/env bash
# narwhal scaling benchmark (issue #15): setup CPU and wall time with 0,
# 1,000 and 3,000 narwhal containers already on the host (dual-stack and
# IPv4-only, interleaved with the bare `ip link add … peer … netns` floor),
# and `runc run` of busybox `true` and `podman run --rm … true` with and
# without the narwhal hook.
#
# Usage: bench/scale.sh [NARWHAL_BINARY] [bench/scale.py options...]
#   e.g. --levels 0,1000 --n 20 --variant main= --variant nl=nlconf
# Root. Isolation as bench/run.sh: the script re-runs itself under
# `unshare --net --mount`; that private namespace is the host, the
# containers are named namespaces on a private tmpfs over /run/netns, and
# everything goes with the processes (scale.py also deletes what it made, on
# Ctrl-C and after --time-limit too). /sys is left as it is: runc needs
# its cgroup mounts (podman runs, see scale.py). Addresses: 198.18.0.0/15, 198.51.100.0/24,
# 2001:db8::/32 only. About 5 minutes per variant on 2 cores.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ "${NARWHAL_SCALE_INNER:-}" = 1 ]; then
	mount -t tmpfs -o mode=0755,size=64m narwhal-scale /run/netns
	# crun (podman) refuses a hybrid cgroup layout; as in the tests, drop
	# the cgroup2 mount beside the v1 controllers (private mount namespace)
	if grep -qs ' /sys/fs/cgroup/unified ' /proc/self/mounts; then umount /sys/fs/cgroup/unified; fi
	ip link set lo up
	exec python3 "$here/scale.py" "$@"
fi

bin=${1:-target/$(rustc -vV | sed -n "s/^host: //p")/release/narwhal}
[ $# -gt 0 ] && shift
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
[ -x "$bin" ] || { echo "bench/scale.sh: no narwhal binary at $bin" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "bench/scale.sh: must run as root" >&2; exit 2; }
for t in ip unshare setpriv python3 busybox; do
	command -v "$t" >/dev/null || { echo "bench/scale.sh: missing $t" >&2; exit 2; }
done
made=
if [ ! -d /run/netns ]; then mkdir -p /run/netns; made=1; fi
trap '[ -z "$made" ] || rmdir /run/netns 2>/dev/null || true' EXIT
set +e
NARWHAL_SCALE_INNER=1 unshare --net --mount --propagation private -- \
	bash "$here/scale.sh" "$bin" "$@"
rc=$?
set -e
exit $rc
