#!/usr/bin/env bash
# End-to-end test of narwhal's packages, as root:
#
#   1. build the .deb (make -f packaging/Makefile.inc deb), install it;
#   2. check the binary, the hook configuration, the man page (rendered by
#      man, with every annotation), the shell completions;
#   3. run a podman container WITHOUT --hooks-dir, so that podman finds the
#      installed hook in /usr/share/containers/oci/hooks.d, with narwhal.ipv4
#      and narwhal.ipv6 annotations; check eth0's addresses in the container,
#      the host link, and ping both addresses; stop and remove the container
#      and check the host link is gone;
#   4. dpkg -r, and check that every file the package installed is gone;
#   5. build the .rpm and check its file list and licence.
#
# podman and its container run inside a throwaway network namespace (a
# holder process made with `unshare -n`), so the host end of the veth pair
# never appears in the machine's root namespace.
#
# Installs what it needs (apt-get; cargo-deb and cargo-generate-rpm with
# cargo install) when missing. Prints one line per check and a final
# "package: N passed, M failed" line; exits non-zero on any failure.
# Not root: skips (exit 0), unless NARWHAL_REQUIRE_PRIVILEGED=1 (exit 1).
set -uo pipefail

cd "$(dirname "$0")/../.."
SRC=$PWD

CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1
V4=198.51.100.77
V6=2001:db8::77
HOOKS_JSON=/usr/share/containers/oci/hooks.d/narwhal.json

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
# check DESCRIPTION COMMAND...: one check, passes when COMMAND succeeds.
check() {
    local what=$1
    shift
    if "$@" >/dev/null; then ok "$what"; else bad "$what"; fi
}
summary() { echo "package: $pass passed, $fail failed"; }
# A failure after which nothing else can be checked.
fatal() {
    bad "$*"
    exit 1 # the EXIT trap cleans up and prints the summary
}

if [ "$(id -u)" != 0 ]; then
    if [ "${NARWHAL_REQUIRE_PRIVILEGED:-}" = 1 ]; then
        echo "package.sh: must run as root (NARWHAL_REQUIRE_PRIVILEGED=1)" >&2
        echo "package: 0 passed, 1 failed"
        exit 1
    fi
    echo "package.sh: SKIPPED: must run as root"
    exit 0
fi

WORK=$(mktemp -d /tmp/narwhal-package.XXXXXX)
CTR=narwhal-pkg-$$
HOLDER=
NSKEEP=
INSTALLED_BY_US=

cleanup() {
    set +e
    [ -n "$NSKEEP" ] && kill "$NSKEEP" 2>/dev/null && wait "$NSKEEP" 2>/dev/null
    if [ -n "$HOLDER" ]; then
        if nsenter -t "$HOLDER" -n podman container exists "$CTR" 2>/dev/null; then
            nsenter -t "$HOLDER" -n podman --cgroup-manager cgroupfs --runtime runc rm -f -t 0 "$CTR" >/dev/null 2>&1
        fi
        kill "$HOLDER" 2>/dev/null
        wait "$HOLDER" 2>/dev/null
    fi
    if [ -n "$INSTALLED_BY_US" ] && dpkg-query -W narwhal >/dev/null 2>&1; then
        dpkg -P narwhal >/dev/null 2>&1
    fi
    rm -rf "$WORK"
    summary
    [ "$fail" = 0 ] && exit 0
    exit 1
}
trap 'bad "interrupted"; exit 1' INT TERM
trap cleanup EXIT

# --- what the test needs ----------------------------------------------------
need_debs=()
need() { # need COMMAND DEBIAN-PACKAGE
    command -v "$1" >/dev/null 2>&1 || need_debs+=("$2")
}
need podman podman
need man man-db
need rpm rpm
need unshare util-linux
need nsenter util-linux
need ip iproute2
need jq jq
need gzip gzip
need make make
need bash bash
[ -x /bin/busybox ] || need_debs+=(busybox-static)
if [ ${#need_debs[@]} -gt 0 ]; then
    echo "package.sh: installing ${need_debs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log"; fatal "apt-get update"; }
    apt-get install -y -q --no-install-recommends "${need_debs[@]}" >"$WORK/apt.log" 2>&1 ||
        { cat "$WORK/apt.log"; fatal "apt-get install ${need_debs[*]}"; }
fi
# man-db on a minimal image: the man pages of narwhal must not be excluded.
if [ -e /etc/dpkg/dpkg.cfg.d/excludes ] && grep -q '/usr/share/man' /etc/dpkg/dpkg.cfg.d/excludes; then
    fatal "dpkg excludes /usr/share/man (/etc/dpkg/dpkg.cfg.d/excludes): man page checks would be meaningless"
fi
if ! cargo deb --version >/dev/null 2>&1; then
    echo "package.sh: cargo install cargo-deb $CARGO_DEB_VERSION"
    cargo install --locked --quiet cargo-deb --version "$CARGO_DEB_VERSION" || fatal "cargo install cargo-deb"
fi
if ! cargo generate-rpm --version >/dev/null 2>&1; then
    echo "package.sh: cargo install cargo-generate-rpm $CARGO_GENERATE_RPM_VERSION"
    cargo install --locked --quiet cargo-generate-rpm --version "$CARGO_GENERATE_RPM_VERSION" ||
        fatal "cargo install cargo-generate-rpm"
fi

if dpkg-query -W -f='${Status}' narwhal 2>/dev/null | grep -q 'ok installed'; then
    fatal "narwhal is installed already (dpkg -r narwhal first): this test installs and removes it"
fi

# --- build the .deb -----------------------------------------------------------
echo "package.sh: building the .deb (make -f packaging/Makefile.inc deb)"
make -s -f packaging/Makefile.inc deb PKGDIR="$WORK/pkg" >"$WORK/deb.log" 2>&1 ||
    { tail -30 "$WORK/deb.log"; fatal "make deb"; }
debs=("$WORK"/pkg/narwhal_*.deb)
[ ${#debs[@]} = 1 ] && [ -f "${debs[0]}" ] || fatal "make deb made one .deb (found: ${debs[*]})"
DEB=${debs[0]}
ok "make deb: $(basename "$DEB")"

depends=$(dpkg-deb -f "$DEB" Depends)
# a static binary: nothing but nft (the source check and --paranoid filters)
check "Depends is minimal (nftables, no iproute2): '$depends'" \
    bash -c '[[ "$1" != *iproute2* ]] && [[ "$1" == *nftables* ]]' _ "$depends"
dpkg-deb --fsys-tarfile "$DEB" | tar -xO ./usr/bin/narwhal >"$WORK/narwhal.bin"
check "the packaged binary is static-pie (no ELF interpreter, no shared libraries, position-independent)" \
    bash -c '! readelf -lW "$1" | grep -q INTERP && ! readelf -dW "$1" | grep -q NEEDED && readelf -hW "$1" | grep -q "DYN "' _ "$WORK/narwhal.bin"
check "package licence metadata: usr/share/doc/narwhal/copyright names MIT OR Apache-2.0" \
    bash -c 'dpkg-deb --fsys-tarfile "$1" | tar -xO ./usr/share/doc/narwhal/copyright | grep -q "MIT OR Apache-2.0"' _ "$DEB"

# --- install ------------------------------------------------------------------
INSTALLED_BY_US=1
dpkg -i "$DEB" >"$WORK/dpkg-i.log" 2>&1 || { cat "$WORK/dpkg-i.log"; fatal "dpkg -i"; }
ok "dpkg -i"
dpkg-query -L narwhal >"$WORK/files.list" || fatal "dpkg -L narwhal"

for f in /usr/bin/narwhal "$HOOKS_JSON" /usr/share/man/man8/narwhal.8.gz \
    /usr/share/bash-completion/completions/narwhal /usr/share/zsh/vendor-completions/_narwhal \
    /usr/share/fish/vendor_completions.d/narwhal.fish /usr/share/doc/narwhal/README.md \
    /usr/share/doc/narwhal/LICENSE-MIT /usr/share/doc/narwhal/LICENSE-APACHE \
    /usr/share/doc/narwhal/copyright /usr/lib/NetworkManager/conf.d/90-narwhal.conf \
    /usr/lib/systemd/network/10-narwhal.network /etc/iproute2/rt_protos.d/narwhal.conf \
    /usr/lib/cni/narwhal /usr/share/narwhal/bird/narwhal.conf; do
    check "installed: $f" grep -qxF "$f" "$WORK/files.list"
done
check "/usr/bin/narwhal is executable and prints its version" \
    bash -c '[ -x /usr/bin/narwhal ] && [ "$(/usr/bin/narwhal --version)" = "narwhal $(sed -n "s/^version = \"\(.*\)\"/\1/p" Cargo.toml | head -1)" ]'

# The hook configuration: oci-hooks(5), the absolute installed path.
# One hook object per file (oci-hooks(5)); narwhal infers the stage from the
# state's status. Its `when` must select containers with narwhal.ipv4/ipv6.
check "hook JSON: createRuntime and poststop run /usr/bin/narwhal hook for narwhal.ipv4/ipv6 annotations" \
    jq -e '.version == "1.0.0"
        and .hook.path == "/usr/bin/narwhal"
        and .hook.args == ["narwhal", "hook"]
        and (.stages | sort) == ["createRuntime", "poststop"]
        and ([.when.annotations | keys[] as $re | "narwhal.ipv4" | test($re)] | any)
        and ([.when.annotations | keys[] as $re | "narwhal.ipv6" | test($re)] | any)
        and ([.when.annotations | keys[] as $re | "io.podman.annotations.label" | test($re)] | any | not)' "$HOOKS_JSON"

# --- man page -------------------------------------------------------------------
MAN=/usr/share/man/man8/narwhal.8.gz
if MANWIDTH=80 man -l "$MAN" >"$WORK/man.txt" 2>"$WORK/man.err"; then
    ok "man -l $MAN renders ($(wc -l <"$WORK/man.txt") lines)"
else
    bad "man -l $MAN: $(head -3 "$WORK/man.err")"
fi
check "man page renders without groff warnings" \
    bash -c 'MANWIDTH=80 man --warnings -l "$1" 2>&1 >/dev/null | { ! grep .; }' _ "$MAN"
for word in createRuntime poststop narwhal.ipv4 narwhal.ipv6 narwhal.host-ipv4 narwhal.host-ipv6 \
    narwhal.interface narwhal.host-interface narwhal.mtu narwhal.forwarding narwhal.paranoid \
    "EXIT STATUS" FILES EXAMPLES "$HOOKS_JSON" /dev/log --syslog-socket --host-interface "nw-KEY"; do
    # man hyphenates long words at line ends: search the page unbroken.
    check "man page mentions '$word'" \
        bash -c 'MANWIDTH=1000 man -l "$1" 2>/dev/null | grep -qF -- "$2"' _ "$MAN" "$word"
done

# --- completions ----------------------------------------------------------------
check "bash completion completes 'narwhal re' to remove" \
    bash -c 'source /usr/share/bash-completion/completions/narwhal
        COMP_WORDS=(narwhal re); COMP_CWORD=1; COMP_LINE="narwhal re"; COMP_POINT=${#COMP_LINE}
        _narwhal narwhal re narwhal; [[ " ${COMPREPLY[*]} " == *" remove "* ]]'
check "bash completion completes 'narwhal --host-i' to --host-interface" \
    bash -c 'source /usr/share/bash-completion/completions/narwhal
        COMP_WORDS=(narwhal --host-i); COMP_CWORD=1; COMP_LINE="narwhal --host-i"; COMP_POINT=${#COMP_LINE}
        _narwhal narwhal --host-i narwhal; [[ " ${COMPREPLY[*]} " == *" --host-interface "* ]]'
check "zsh completion defines #compdef narwhal" grep -q '^#compdef narwhal' /usr/share/zsh/vendor-completions/_narwhal
check "fish completion completes narwhal's hook sub-command" \
    grep -q 'complete -c narwhal .*-a "hook"' /usr/share/fish/vendor_completions.d/narwhal.fish

# --- podman with the installed hook -------------------------------------------
# A busybox root file system.
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{bin,proc,sys,dev,etc,tmp}
cp /bin/busybox "$ROOTFS/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$ROOTFS/bin/$applet"
done

# The throwaway "host" namespace: podman, conmon, the runtime and so the
# hook's host end live in it.
unshare -n sleep infinity &
HOLDER=$!
for _ in $(seq 50); do
    [ "$(readlink /proc/$HOLDER/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break
    sleep 0.1
done
[ "$(readlink /proc/$HOLDER/ns/net)" != "$(readlink /proc/self/ns/net)" ] || fatal "unshare -n: no private network namespace"
inhost() { nsenter -t "$HOLDER" -n "$@"; }
inhost ip link set lo up

# crun 1.8.1 refuses this host's hybrid cgroup layout; runc works.
PODMAN=(podman --cgroup-manager cgroupfs --runtime runc)
echo "package.sh: podman run --annotation narwhal.ipv4=$V4 --annotation narwhal.ipv6=$V6 (no --hooks-dir)"
if ! CID=$(inhost "${PODMAN[@]}" run -d --name "$CTR" --network none \
    --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 \
    --annotation "narwhal.ipv4=$V4" --annotation "narwhal.ipv6=$V6" \
    --rootfs "$ROOTFS" /bin/sleep 600 2>"$WORK/podman.err"); then
    cat "$WORK/podman.err"
    fatal "podman run with the installed hook"
fi
ok "podman run with the installed hook: container ${CID:0:12}"

CPID=$(inhost "${PODMAN[@]}" inspect -f '{{.State.Pid}}' "$CTR")
[ -n "$CPID" ] && [ "$CPID" -gt 0 ] || fatal "podman inspect: no pid for $CTR"
nsenter -t "$CPID" -n ip -j addr show dev eth0 >"$WORK/eth0.json" 2>"$WORK/eth0.err" || true
check "container eth0 holds $V4/32 (peer 169.254.0.1)" \
    jq -e --arg a "$V4" 'any(.[0].addr_info[]; .family == "inet" and .local == $a and .prefixlen == 32 and .address == "169.254.0.1")' "$WORK/eth0.json"
check "container eth0 holds $V6/128 (peer fe80::1)" \
    jq -e --arg a "$V6" 'any(.[0].addr_info[]; .family == "inet6" and .local == $a and .prefixlen == 128 and .address == "fe80::1")' "$WORK/eth0.json"
check "container eth0 is up with ARP off" \
    jq -e '(.[0].flags | index("UP") != null and index("NOARP") != null)' "$WORK/eth0.json"

# The host end: the only link in the holder namespace marked narwhal:<id>.
inhost ip -j -d link show >"$WORK/host-links.json"
HOSTIF=$(jq -r --arg m "narwhal:$CID" '.[] | select(.ifalias == $m) | .ifname' "$WORK/host-links.json")
check "host end nw-… carries the alias narwhal:<container id>" \
    bash -c '[ "$(printf "%s\n" "$1" | grep -c "^nw-")" = 1 ]' _ "$HOSTIF"
if [ -n "$HOSTIF" ]; then
    check "host end $HOSTIF routes $V4/32 and $V6/128" \
        bash -c 'nsenter -t "$1" -n ip -j -4 route show dev "$2" | jq -e --arg a "$3" "any(.[]; .dst == \$a)" >/dev/null &&
                 nsenter -t "$1" -n ip -j -6 route show dev "$2" | jq -e --arg a "$4" "any(.[]; .dst == \$a)" >/dev/null' \
        _ "$HOLDER" "$HOSTIF" "$V4" "$V6"
    # the package names route protocol 77 in /etc/iproute2/rt_protos.d
    check "ip route prints the host routes as proto narwhal" \
        bash -c 'nsenter -t "$1" -n ip -j -4 route show dev "$2" | jq -e --arg a "$3" "any(.[]; .dst == \$a and .protocol == \"narwhal\")" >/dev/null' \
        _ "$HOLDER" "$HOSTIF" "$V4"
fi
check "host namespace reaches the container: ping $V4" inhost /bin/busybox ping -c 1 -W 5 "$V4"
check "host namespace reaches the container: ping $V6" inhost /bin/busybox ping -6 -c 1 -W 5 "$V6"
check "the machine's root namespace has no narwhal link for the container" \
    bash -c '! ip -j link show | jq -e --arg m "narwhal:$1" "any(.[]; .ifalias == \$m)" >/dev/null' _ "$CID"

# Keep the container's network namespace alive past the container (a
# process still in it): podman made that namespace (--network none), so it
# ends with the container, and poststop leaves the pair to it. The pair
# lives exactly as long as the namespace.
nsenter -t "$CPID" -n sleep 600 &
NSKEEP=$!
for _ in $(seq 50); do
    [ "$(readlink /proc/$NSKEEP/ns/net)" = "$(readlink /proc/$CPID/ns/net)" ] && break
    sleep 0.1
done
[ "$(readlink /proc/$NSKEEP/ns/net)" = "$(readlink /proc/$CPID/ns/net)" ] || fatal "cannot hold the container's network namespace"
inhost "${PODMAN[@]}" stop -t 0 "$CTR" >/dev/null 2>&1
inhost "${PODMAN[@]}" rm -f "$CTR" >/dev/null 2>&1
check "podman rm: container gone" bash -c '! nsenter -t "$1" -n podman container exists "$2"' _ "$HOLDER" "$CTR"
check "after stop and rm, namespace still held: it keeps its eth0" \
    bash -c 'nsenter -t "$1" -n ip link show dev eth0 >/dev/null 2>&1' _ "$NSKEEP"
if [ -n "$HOSTIF" ]; then
    check "after stop and rm, namespace still held: host end $HOSTIF stays with it" \
        bash -c 'nsenter -t "$1" -n ip link show dev "$2" >/dev/null 2>&1' _ "$HOLDER" "$HOSTIF"
fi
kill "$NSKEEP" 2>/dev/null
wait "$NSKEEP" 2>/dev/null
NSKEEP=
# Linux removes the pair with the namespace, a moment after its last process
for _ in $(seq 250); do
    [ "$(nsenter -t "$HOLDER" -n ip -j link show | jq -r '.[].ifname')" = lo ] && break
    sleep 0.02
done
if [ -n "$HOSTIF" ]; then
    check "once the namespace ended: host end $HOSTIF is gone" bash -c '! nsenter -t "$1" -n ip link show dev "$2" >/dev/null 2>&1' _ "$HOLDER" "$HOSTIF"
fi
check "once the namespace ended: the holder namespace has only lo" \
    bash -c '[ "$(nsenter -t "$1" -n ip -j link show | jq -r ".[].ifname")" = lo ]' _ "$HOLDER"
kill "$HOLDER" 2>/dev/null
wait "$HOLDER" 2>/dev/null
HOLDER=

# --- remove -----------------------------------------------------------------
# remove keeps the configuration files under /etc (Debian policy); purge
# takes them too
conffiles=$(dpkg-query -W -f='${Conffiles}' narwhal | awk '{print $1}')
if dpkg -r narwhal >"$WORK/dpkg-r.log" 2>&1; then ok "dpkg -r narwhal"; else cat "$WORK/dpkg-r.log"; bad "dpkg -r narwhal"; fi
left=()
while IFS= read -r f; do
    [ -d "$f" ] && continue # shared directories (/usr, /usr/share/man/man8, ...) stay
    printf '%s\n' "$conffiles" | grep -qxF "$f" && continue
    [ -e "$f" ] || [ -L "$f" ] && left+=("$f")
done <"$WORK/files.list"
check "dpkg -r removed every file it installed but its conffiles (left: ${left[*]:-none})" [ ${#left[@]} = 0 ]
check "dpkg -r removed /usr/share/doc/narwhal" [ ! -e /usr/share/doc/narwhal ]
if dpkg -P narwhal >"$WORK/dpkg-p.log" 2>&1; then ok "dpkg -P narwhal"; else cat "$WORK/dpkg-p.log"; bad "dpkg -P narwhal"; fi
INSTALLED_BY_US=
for f in $conffiles; do
    check "dpkg -P removed the conffile $f" [ ! -e "$f" ]
done

# --- .rpm -----------------------------------------------------------------------
echo "package.sh: building the .rpm (make -f packaging/Makefile.inc rpm)"
if make -s -f packaging/Makefile.inc rpm PKGDIR="$WORK/pkg" >"$WORK/rpm.log" 2>&1; then
    rpms=("$WORK"/pkg/narwhal-*.rpm)
    if [ ${#rpms[@]} = 1 ] && [ -f "${rpms[0]}" ]; then
        RPM=${rpms[0]}
        ok "make rpm: $(basename "$RPM")"
        rpm -qlp "$RPM" >"$WORK/rpm.list" 2>/dev/null
        for f in /usr/bin/narwhal "$HOOKS_JSON" /usr/share/man/man8/narwhal.8.gz \
            /usr/share/bash-completion/completions/narwhal /usr/share/zsh/site-functions/_narwhal \
            /usr/share/fish/vendor_completions.d/narwhal.fish /usr/share/doc/narwhal/README.md \
            /usr/share/licenses/narwhal/LICENSE-MIT /usr/share/licenses/narwhal/LICENSE-APACHE; do
            check "rpm -qlp lists $f" grep -qxF "$f" "$WORK/rpm.list"
        done
        check "rpm licence is 'MIT OR Apache-2.0'" \
            bash -c '[ "$(rpm -qp --qf "%{LICENSE}" "$1" 2>/dev/null)" = "MIT OR Apache-2.0" ]' _ "$RPM"
        rpm -qdp "$RPM" >"$WORK/rpm-docs.list" 2>/dev/null
        for f in /usr/share/doc/narwhal/README.md /usr/share/man/man8/narwhal.8.gz \
            /usr/share/licenses/narwhal/LICENSE-MIT /usr/share/licenses/narwhal/LICENSE-APACHE; do
            check "rpm marks $f as documentation" grep -qxF "$f" "$WORK/rpm-docs.list"
        done
        check "rpm marks nothing outside /usr/share/doc, man and licences as documentation" \
            bash -c '! grep -v -e "^/usr/share/doc/narwhal/" -e "^/usr/share/man/" -e "^/usr/share/licenses/narwhal/" "$1"' _ "$WORK/rpm-docs.list"
        check "rpm: /usr/bin/narwhal mode 0755" \
            bash -c 'rpm -qp --dump "$1" 2>/dev/null | awk "\$1 == \"/usr/bin/narwhal\" {print \$5}" | grep -qx "0100755"' _ "$RPM"
    else
        bad "make rpm made one .rpm (found: ${rpms[*]})"
    fi
else
    tail -30 "$WORK/rpm.log"
    bad "make rpm"
fi

# --- make install / uninstall, staged in a DESTDIR ----------------------------
STAGE=$WORK/stage
if make -s -f packaging/Makefile.inc install DESTDIR="$STAGE" PREFIX=/usr/local >"$WORK/install.log" 2>&1; then
    ok "make install DESTDIR=… PREFIX=/usr/local"
    for f in usr/local/bin/narwhal usr/local/share/man/man8/narwhal.8.gz \
        usr/local/share/bash-completion/completions/narwhal usr/local/share/zsh/site-functions/_narwhal \
        usr/local/share/fish/vendor_completions.d/narwhal.fish usr/local/share/doc/narwhal/README.md \
        usr/local/share/doc/narwhal/LICENSE-MIT usr/local/share/doc/narwhal/LICENSE-APACHE \
        usr/share/containers/oci/hooks.d/narwhal.json usr/lib/NetworkManager/conf.d/90-narwhal.conf \
        usr/lib/systemd/network/10-narwhal.network etc/iproute2/rt_protos.d/narwhal.conf \
        usr/local/share/narwhal/bird/narwhal.conf usr/lib/cni/narwhal; do
        check "make install: /$f" [ -f "$STAGE/$f" ]
    done
    check "make install PREFIX=/usr/local: the man page names /usr/local/bin/narwhal, not /usr/bin" \
        bash -c 'zcat "$1" | grep -q "/usr/local/bin/narwhal" && ! zcat "$1" | grep -q "\"/usr/bin/narwhal\""' _ "$STAGE/usr/local/share/man/man8/narwhal.8.gz"
    check "make install: the hook JSON names /usr/local/bin/narwhal" \
        jq -e '.hook.path == "/usr/local/bin/narwhal" and .hook.args == ["narwhal", "hook"]' \
        "$STAGE/usr/share/containers/oci/hooks.d/narwhal.json"
    if make -s -f packaging/Makefile.inc uninstall DESTDIR="$STAGE" PREFIX=/usr/local >"$WORK/uninstall.log" 2>&1; then
        left=$(find "$STAGE" ! -type d | tr '\n' ' ')
        check "make uninstall removed every file (left: ${left:-none})" [ -z "$left" ]
        dirs=$(find "$STAGE" -mindepth 1 -type d | tr '\n' ' ')
        check "make uninstall removed the directories install made (left: ${dirs:-none})" [ -z "$dirs" ]
    else
        cat "$WORK/uninstall.log"
        bad "make uninstall"
    fi
else
    tail -30 "$WORK/install.log"
    bad "make install"
fi
