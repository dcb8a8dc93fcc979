#!/bin/sh
# seed.sh: the original narwhal shell tool's steps (2015), for benchmarks.
#
# One `ip`, `sysctl` or `cat` process per step, as the seed did: temporary
# namespace name (a symlink in /var/run/netns), veth pair created in the host
# under a temporary peer name, MAC addresses read back from /sys, peer moved
# into the container namespace, host side configured, then the container
# side configured by a shell run through `ip netns exec` (peer renamed to
# its final name, addresses with peer, ARP off, permanent neighbours,
# sysctls, routes). The set of kernel changes is the same as narwhal's plan,
# so the two are comparable; like narwhal it disables IPv6 on both ends when
# no IPv6 address is given. The seed's `docker inspect` calls are left out:
# the target is a namespace file, as with `narwhal --netns PATH`.
#
# Usage:
#   seed.sh [-4 IPV4] [-6 IPV6] [--host-ipv4 A] [--host-ipv6 A]
#           [-i IFACE] --host-interface IFACE --netns PATH
#   seed.sh remove --host-interface IFACE
set -e

die() { printf 'seed.sh: %s\n' "$*" >&2; exit 1; }

if [ "${1:-}" = remove ]; then
	shift
	[ "${1:-}" = --host-interface ] && [ -n "${2:-}" ] || die "usage: seed.sh remove --host-interface IFACE"
	# The seed's answer to "how do I remove a configuration?"
	exec ip link del "$2"
fi

while [ $# -gt 0 ]; do
	case "$1" in
	-4 | --ipv4) ipv4="$2"; shift ;;
	-6 | --ipv6) ipv6="$2"; shift ;;
	--host-ipv4) host_ipv4="$2"; shift ;;
	--host-ipv6) host_ipv6="$2"; shift ;;
	-i | --interface) interface="$2"; shift ;;
	--host-interface) host_interface="$2"; shift ;;
	--temp-interface) temp_interface="$2"; shift ;;
	--temp-namespace) temp_namespace="$2"; shift ;;
	--netns) netns="$2"; shift ;;
	*) die "unknown argument: $1" ;;
	esac
	shift
done
[ -n "$netns" ] || die "--netns PATH required"
[ -n "$host_interface" ] || die "--host-interface IFACE required"
[ -n "$ipv4$ipv6" ] || die "-4 or -6 required"
: "${interface:=eth0}"
: "${host_ipv4:=169.254.0.1}"
: "${host_ipv6:=fe80::1}"
: "${temp_interface:=nwt-$$}"
: "${temp_namespace:=nwt-$$}"

# Temporary name for the network namespace
mkdir -p /var/run/netns
ln -f -s "$netns" "/var/run/netns/$temp_namespace"
trap 'rm -f "/var/run/netns/$temp_namespace"' EXIT

# Create veth pair; remove it again on failure
ip link add "$host_interface" type veth peer name "$temp_interface"
trap 'ip link del "$host_interface"; rm -f "/var/run/netns/$temp_namespace"' EXIT

# Save link-layer addresses
host_ll="$(cat "/sys/class/net/$host_interface/address")"
temp_ll="$(cat "/sys/class/net/$temp_interface/address")"

# ARP off on both ends
ip link set "$host_interface" arp off
ip link set "$temp_interface" arp off

# Move the peer into the container namespace
ip link set "$temp_interface" netns "$temp_namespace"

# Host side
sysctl -q -w "net.ipv4.conf.$host_interface.rp_filter=1"
if [ -n "$ipv6" ]; then
	sysctl -q -w "net.ipv6.conf.$host_interface.autoconf=0"
	sysctl -q -w "net.ipv6.conf.$host_interface.accept_ra=0"
else
	sysctl -q -w "net.ipv6.conf.$host_interface.disable_ipv6=1"
fi
ip link set "$host_interface" up
if [ -n "$ipv4" ]; then
	ip -4 address add "$host_ipv4" peer "$ipv4/32" scope link dev "$host_interface"
	ip -4 neighbour replace "$ipv4" lladdr "$temp_ll" nud permanent dev "$host_interface"
fi
if [ -n "$ipv6" ]; then
	ip -6 address add "$host_ipv6" peer "$ipv6/128" scope link dev "$host_interface"
	ip -6 neighbour replace "$ipv6" lladdr "$temp_ll" nud permanent dev "$host_interface"
	ip -6 route add "$ipv6/128" dev "$host_interface"
fi

# Container side
ip netns exec "$temp_namespace" env \
	interface="$interface" \
	temp_interface="$temp_interface" \
	ipv4="$ipv4" \
	ipv6="$ipv6" \
	host_ipv4="$host_ipv4" \
	host_ipv6="$host_ipv6" \
	host_ll="$host_ll" \
	sh -e <<'EOF'
ip link set "$temp_interface" name "$interface"
if [ -n "$ipv6" ]; then
	sysctl -q -w "net.ipv6.conf.$interface.autoconf=0"
	sysctl -q -w "net.ipv6.conf.$interface.accept_ra=0"
else
	sysctl -q -w "net.ipv6.conf.$interface.disable_ipv6=1"
fi
ip link set "$interface" up
if [ -n "$ipv4" ]; then
	ip -4 address add "$ipv4" peer "$host_ipv4/32" dev "$interface"
	ip -4 neighbour replace "$host_ipv4" lladdr "$host_ll" nud permanent dev "$interface"
	ip -4 route add default via "$host_ipv4" dev "$interface"
fi
if [ -n "$ipv6" ]; then
	ip -6 address add "$ipv6" peer "$host_ipv6/128" dev "$interface"
	ip -6 neighbour replace "$host_ipv6" lladdr "$host_ll" nud permanent dev "$interface"
	ip -6 route add "$host_ipv6/128" dev "$interface"
	ip -6 route add default via "$host_ipv6" dev "$interface"
fi
ip link set lo up
EOF

# Success: keep the pair, drop only the temporary namespace name
trap 'rm -f "/var/run/netns/$temp_namespace"' EXIT
