#!/usr/bin/env bash
# Where one narwhal setup spends its time, next to the bare veth floor:
# syscalls, netlink round trips by message type, thread spawns, setns calls
# (strace -f), and CPU time, context switches and CPU migrations over many
# runs (perf stat software counters, if perf is installed).
#
# Then a per-step attribution of the dual-stack setup: time inside the
# syscalls that do the kernel work, by kind (netlink request type, /proc/sys
# open and write, settle pauses), median of 10 runs under `strace -f -T`
# (bench/attrib.py).
#
# Usage: bench/profile.sh [NARWHAL_BINARY] [RUNS]   (default
# target/<host triple>/release/narwhal, 100). Root. NWP_EXISTING=N first makes N
# dual-stack narwhal containers (198.18.0.0/15, 2001:db8:1::/64), so the
# numbers show the setup on a host with N containers; NARWHAL_PROTO is
# passed on to narwhal (prototypes, see src/proto.rs). Same isolation as bench/run.sh: a
# private network + mount namespace acting as the host; nothing outside is
# touched. Needs strace; perf (package linux-perf) is optional.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ "${NARWHAL_PROFILE_INNER:-}" = 1 ]; then
	nw=$1 runs=$2 tmp=$3
	mount -t tmpfs -o mode=0755,size=16m narwhal-profile /run/netns
	mount -t sysfs sysfs /sys
	ip link set lo up
	ip netns add nwp-c
	ip netns add nwp-f
	existing=${NWP_EXISTING:-0}
	if [ "$existing" -gt 0 ]; then
		seq 0 $((existing - 1)) | sed 's/^/netns add nwp-e/' | ip -batch -
		seq 0 $((existing - 1)) | xargs -P 2 -I I sh -c \
			'"$0" --netns /run/netns/nwp-eI -4 198.18.$((I / 250)).$((I % 250 + 2)) -6 2001:db8:1::$(printf %x $((I + 1)))' "$nw"
		echo "bench/profile.sh: $existing existing narwhal containers" >&2
	fi
	c=/run/netns/nwp-c f=/run/netns/nwp-f
	setup_ds=("$nw" --netns "$c" -4 198.51.100.2 -6 2001:db8::2)
	setup_v4=("$nw" --netns "$c" -4 198.51.100.2)
	remove=("$nw" remove --netns "$c")
	floor_add=(ip link add nwp-f0 type veth peer name eth0 netns "$f")
	floor_del=(ip link del nwp-f0)
	for _ in 1 2 3; do "${setup_ds[@]}"; "${remove[@]}" >/dev/null; done

	# one traced run of each command; UNDO restores the state before it
	trace() { # NAME UNDO -- CMD...
		local name=$1 undo=$2; shift 3
		strace -f -qq -o "$tmp/$name.c" -c "$@" >/dev/null
		eval "$undo" >/dev/null
		strace -f -qq -o "$tmp/$name.t" -e trace=sendto,sendmsg,openat -e signal=none -s 64 "$@" >/dev/null
		eval "$undo" >/dev/null
	}
	trace setup_ds "${remove[*]}" -- "${setup_ds[@]}"
	trace setup_v4 "${remove[*]}" -- "${setup_v4[@]}"
	trace floor_add "${floor_del[*]}" -- "${floor_add[@]}"
	"${setup_ds[@]}"
	trace remove "${setup_ds[*]}" -- "${remove[@]}"
	"${remove[@]}" >/dev/null
	"${floor_add[@]}"
	trace floor_del "${floor_add[*]}" -- "${floor_del[@]}"
	"${floor_del[@]}"

	# software counters over many runs
	perfstat() { # NAME UNDO-CMD -- CMD...
		local name=$1 undo=$2; shift 3
		: >"$tmp/$name.p"
		for _ in $(seq "$runs"); do
			perf stat -x, -e task-clock,context-switches,cpu-migrations,page-faults \
				-o "$tmp/$name.p" --append "$@" >/dev/null
			eval "$undo" >/dev/null
		done
	}
	if command -v perf >/dev/null && perf stat -e task-clock true >/dev/null 2>&1; then
		perfstat setup_ds "${remove[*]}" -- "${setup_ds[@]}"
		perfstat setup_v4 "${remove[*]}" -- "${setup_v4[@]}"
		perfstat floor_add "${floor_del[*]}" -- "${floor_add[@]}"
		"${setup_ds[@]}"
		perfstat remove "${setup_ds[*]}" -- "${remove[@]}"
		"${remove[@]}" >/dev/null
		"${floor_add[@]}"
		perfstat floor_del "${floor_add[*]}" -- "${floor_del[@]}"
		"${floor_del[@]}"
	fi
	for i in $(seq 10); do
		strace -f -T -qq -o "$tmp/attr.$i" "${setup_ds[@]}" >/dev/null
		"${remove[@]}" >/dev/null
	done
	python3 "$here/attrib.py" "$tmp"/attr.* >"$tmp/attrib.md"
	python3 - "$tmp" "$runs" <<'EOF'
import collections, os, re, statistics, sys
tmp, runs = sys.argv[1], sys.argv[2]
NL = {"0x10": "RTM_NEWLINK", "0x11": "RTM_DELLINK", "0x12": "RTM_GETLINK", "0x13": "RTM_SETLINK",
      "0x14": "RTM_NEWADDR", "0x18": "RTM_NEWROUTE", "0x1a": "RTM_GETROUTE", "0x1c": "RTM_NEWNEIGH"}
names = [("setup_ds", "narwhal --netns -4 -6 (dual-stack setup)"),
         ("setup_v4", "narwhal --netns -4 (IPv4-only setup)"),
         ("floor_add", "ip link add … type veth peer … netns (floor)"),
         ("remove", "narwhal remove --netns"),
         ("floor_del", "ip link del (floor)")]
print("| command | syscalls | threads spawned | setns | netlink requests | /proc/sys writes |"
      " CPU ms (median) | context switches | CPU migrations | page faults |")
print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
for key, label in names:
    calls = {}
    with open(f"{tmp}/{key}.c") as f:
        for line in f:
            p = line.split()
            if len(p) >= 5 and p[-1].isidentifier() and p[-1] != "total" and p[3].isdigit():
                calls[p[-1]] = int(p[3])
    total = sum(calls.values())
    types = collections.Counter()
    sysctl = 0
    with open(f"{tmp}/{key}.t") as f:
        for line in f:
            if " openat(" in line:
                # absolute, or relative to a /proc/sys/net directory fd
                sysctl += ('"/proc/sys/' in line or re.search(r'openat\(\d+, "ipv[46]/', line) is not None) \
                    and "O_WRONLY" in line
                continue
            for t in re.findall(r"nlmsg_type=(\w+)", line):
                types[NL.get(t, t)] += 1
    nl = ", ".join(f"{v} {k}" for k, v in types.most_common())
    nreq = sum(types.values())
    perf = {}
    pf = f"{tmp}/{key}.p"
    if os.path.exists(pf):
        vals = collections.defaultdict(list)
        with open(pf) as f:
            for line in f:
                p = line.strip().split(",")
                if len(p) > 3 and not line.startswith("#"):
                    try:
                        vals[p[2]].append(float(p[0]))
                    except ValueError:
                        pass
        perf = {k: statistics.median(v) for k, v in vals.items()}
    cpu = f"{perf['task-clock']:.2f}" if "task-clock" in perf else "n/a"
    cs = f"{perf['context-switches']:.0f}" if "context-switches" in perf else "n/a"
    mig = f"{perf['cpu-migrations']:.0f}" if "cpu-migrations" in perf else "n/a"
    pgf = f"{perf['page-faults']:.0f}" if "page-faults" in perf else "n/a"
    print(f"| {label} | {total} | {calls.get('clone3', 0) + calls.get('clone', 0)} | "
          f"{calls.get('setns', 0)} | {nreq}: {nl} | {sysctl} | {cpu} | {cs} | {mig} | {pgf} |")
print()
print(f"CPU time, context switches, migrations, page faults: median of {runs} runs "
      "(perf stat software counters, all threads). Syscall and request counts: one run under strace -f.")
EOF
	echo
	echo "Dual-stack setup with ${existing} existing containers${NARWHAL_PROTO:+, NARWHAL_PROTO=$NARWHAL_PROTO}:"
	echo
	cat "$tmp/attrib.md"
	exit 0
fi

nw=${1:-target/$(rustc -vV | sed -n "s/^host: //p")/release/narwhal}
runs=${2:-100}
case $nw in /*) ;; *) nw=$PWD/$nw ;; esac
[ -x "$nw" ] || { echo "bench/profile.sh: no narwhal binary at $nw" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "bench/profile.sh: must run as root" >&2; exit 2; }
command -v strace >/dev/null || { echo "bench/profile.sh: strace missing (apt-get install strace)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
NARWHAL_PROFILE_INNER=1 unshare --net --mount --propagation private -- \
	bash "$here/profile.sh" "$nw" "$runs" "$tmp"
