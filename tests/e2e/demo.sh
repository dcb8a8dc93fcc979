#!/usr/bin/env bash
# The main job, end to end: a runc container whose network narwhal sets up
# as its OCI hook, before the container's first process starts.
#
#   tests/e2e/demo.sh [NARWHAL]      (default: target/<host triple>/release/narwhal; as root)
#
# Everything happens in a private network namespace that stands for the
# host (ip netns narwhal-demo-PID): runc, the hook's host side and the
# client live there, so the machine's own network is never touched. The
# container asks for 198.51.100.10 and 2001:db8::10 with annotations; its
# first command binds a web server to both addresses (which fails unless
# the network already exists), and the host fetches a page over IPv4 and
# IPv6. Then the container is deleted (its veth pair goes with its network
# namespace; poststop checks the link is the container's and leaves it to
# Linux), the host namespace too, and the script shows that nothing remains. Whatever
# happens, the trap removes what the script made.
set -euo pipefail

NARWHAL=${1:-target/$(rustc -vV | sed -n "s/^host: //p")/release/narwhal}
V4=198.51.100.10
V6=2001:db8::10
PORT=8080
ID=demo-$$                 # OCI container id: host link nw-demo-<pid>
NS=narwhal-demo-$$         # the stand-in host
HOST_IF=nw-$ID

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run me as root (narwhal needs CAP_NET_ADMIN and CAP_SYS_ADMIN)"
[ -x "$NARWHAL" ] || die "no narwhal binary at $NARWHAL (build it: make build)"
NARWHAL=$(readlink -f "$NARWHAL")
REPO=$(cd "$(dirname "$0")/../.." && pwd)

# --- packages ----------------------------------------------------------
missing=()
for p in runc busybox-static iproute2 util-linux; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "demo.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q "${missing[@]}" >/dev/null
fi

# --- cleanup, on any exit ----------------------------------------------
WORK=$(mktemp -d /tmp/narwhal-demo.XXXXXX)
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if ip netns list 2>/dev/null | grep -qw "$NS"; then
    nsenter --net="/run/netns/$NS" -- runc delete -f "$ID" >/dev/null 2>&1 || true
    ip netns del "$NS" 2>/dev/null || true
  fi
  runc delete -f "$ID" >/dev/null 2>&1 || true
  rm -rf "$WORK"
  if [ $rc -ne 0 ]; then
    echo "demo.sh: FAILED (exit $rc); everything the demo made is removed" >&2
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Enter the stand-in host's network namespace only (`ip netns exec` would
# also remount /sys, hiding the cgroup mounts runc needs).
inns() { nsenter --net="/run/netns/$NS" -- "$@"; }

# --- the container's root file system: busybox -----------------------
ROOTFS=$REPO/target/tmp/busybox-rootfs       # built by the test suite
if [ ! -x "$ROOTFS/bin/sh" ]; then
  ROOTFS=$WORK/rootfs
  mkdir -p "$ROOTFS"/{bin,proc,sys,dev,etc,tmp,www}
  cp /bin/busybox "$ROOTFS/bin/busybox"
  for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -s busybox "$ROOTFS/bin/$a"
  done
  echo narwhal > "$ROOTFS/www/index.html"
fi
BODY=$(cat "$ROOTFS/www/index.html")

# --- the bundle: annotations ask for addresses, hooks call narwhal -----
BUNDLE=$WORK/bundle
mkdir -p "$BUNDLE"
cat > "$BUNDLE/config.json" <<EOF
{
  "ociVersion": "1.0.2-dev",
  "annotations": {
    "narwhal.ipv4": "$V4",
    "narwhal.ipv6": "$V6"
  },
  "hooks": {
    "createRuntime": [{"path": "$NARWHAL", "args": ["narwhal", "hook", "createRuntime"]}],
    "poststop": [{"path": "$NARWHAL", "args": ["narwhal", "hook", "poststop"]}]
  },
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": ["sh", "-c", "httpd -p $V4:$PORT -h /www || exit 41; httpd -p [$V6]:$PORT -h /www || exit 41; exec sleep 100000"],
    "env": ["PATH=/bin"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
      "effective": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
      "permitted": ["CAP_NET_BIND_SERVICE", "CAP_KILL"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "root": {"path": "$ROOTFS", "readonly": true},
  "hostname": "demo",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
  ],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
    "maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"],
    "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
  }
}
EOF

say "host: a private network namespace $NS stands for the host"
ip netns add "$NS"
inns ip link set lo up
inns ip -br link

say "runc run $ID  (annotations narwhal.ipv4=$V4 narwhal.ipv6=$V6; hook $NARWHAL)"
# The container inherits runc's stdio: its output goes to a file.
if ! inns runc run -d --bundle "$BUNDLE" "$ID" >"$WORK/container.log" 2>&1; then
  cat "$WORK/container.log" >&2
  die "runc could not start the container"
fi
PID=$(inns runc state "$ID" | sed -n 's/^ *"pid": *\([0-9]*\),*$/\1/p')
echo "container $ID runs, pid $PID"

# Wait for both listeners (the first command binds them; if the network
# had not existed, it would have exited with 41 instead).
for _ in $(seq 1 300); do
  n=$(cat /proc/"$PID"/net/tcp /proc/"$PID"/net/tcp6 2>/dev/null \
      | awk -v p=":$(printf %04X $PORT)" '$4 == "0A" && $2 ~ p"$"' | wc -l)
  [ "$n" -ge 2 ] && break
  if ! kill -0 "$PID" 2>/dev/null; then
    cat "$WORK/container.log" >&2
    die "the container's first command failed: its addresses were not there"
  fi
  sleep 0.1
done
[ "$n" -ge 2 ] || die "the container never listened on both addresses"

say "container: eth0 (runc exec $ID ip addr show eth0; ip route; ip -6 route)"
inns runc exec "$ID" ip addr show eth0
inns runc exec "$ID" ip route
inns runc exec "$ID" ip -6 route

say "host: $HOST_IF (ip addr show $HOST_IF; routes to the container)"
inns ip addr show "$HOST_IF"
inns ip route show dev "$HOST_IF"
inns ip -6 route show dev "$HOST_IF"

say "host -> container over TCP: wget http://$V4:$PORT/ and http://[$V6]:$PORT/"
for url in "http://$V4:$PORT/" "http://[$V6]:$PORT/"; do
  got=$(inns timeout 20 busybox wget -q -O - "$url") || die "wget $url failed"
  printf '%-28s -> %s\n' "$url" "$got"
  [ "$got" = "$BODY" ] || die "wget $url: expected '$BODY', got '$got'"
done

say "runc kill $ID; runc delete $ID  ($HOST_IF goes with the container's namespace)"
inns runc kill "$ID" KILL
for _ in $(seq 1 300); do
  inns runc state "$ID" 2>/dev/null | grep -q '"status": "stopped"' && break
  sleep 0.1
done
inns runc delete "$ID"
# Linux removes the pair with the namespace, a moment after the container
for _ in $(seq 1 100); do
  inns ip link show "$HOST_IF" >/dev/null 2>&1 || break
  sleep 0.02
done
inns ip -br link
if inns ip link show "$HOST_IF" >/dev/null 2>&1; then
  die "$HOST_IF is still there 2 s after the container was deleted"
fi

say "ip netns del $NS"
ip netns del "$NS"

say "nothing remains"
left=0
if ip netns list | grep -qw "$NS"; then echo "namespace $NS remains"; left=1; fi
if runc list -q 2>/dev/null | grep -qx "$ID"; then echo "container $ID remains"; left=1; fi
if ip -br link | grep -q "^$HOST_IF"; then echo "link $HOST_IF remains in the root namespace"; left=1; fi
[ $left = 0 ] || die "leftovers"
echo "no container $ID, no namespace $NS, no link $HOST_IF"
echo
echo "demo.sh: OK"
