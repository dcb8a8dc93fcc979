#!/usr/bin/env bash
# Install the Debian packages narwhal's tests, demo and benchmark need,
# only those that are missing. Usage: deps.sh [test|demo|bench|package|multihost]
set -euo pipefail
what=${1:-test}
case $what in
  demo) pkgs="runc busybox-static iproute2 util-linux" ;;
  test) pkgs="runc crun podman docker.io busybox-static iproute2 nftables util-linux containernetworking-plugins bird2 procps" ;;
  multihost) pkgs="bird2 busybox-static iproute2 util-linux procps" ;;
  bench) pkgs="busybox-static iproute2 util-linux containernetworking-plugins time procps runc podman strace" ;;
  package) pkgs="podman runc busybox-static man-db rpm util-linux jq iproute2" ;;
  *) echo "usage: $0 [test|demo|bench|package|multihost]" >&2; exit 2 ;;
esac
missing=()
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "deps.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
  exit 0
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q "${missing[@]}" >/dev/null
