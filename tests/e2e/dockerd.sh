#!/bin/sh
# A private Docker daemon for narwhal's end-to-end tests (tests/docker.rs,
# tests/docker_runtime.rs).
#
#   tests/e2e/dockerd.sh [start]   start it unless it answers already; wait
#                                  until `docker version` answers; print the
#                                  socket path (the only line on stdout).
#                                  With NARWHAL_BIN=PATH, the runtime
#                                  `narwhal` runs `PATH runtime --allow …`
#   tests/e2e/dockerd.sh status    exit 0 and print the socket path if it answers
#   tests/e2e/dockerd.sh stop      stop it (SIGTERM to the pid in its pidfile;
#                                  its containers and its containerd go with it)
#   tests/e2e/dockerd.sh purge     stop it, then delete its data root and
#                                  runtime directory
#
# Everything it owns is its own: socket, pidfile, exec root and log under
# /run/narwhal-test, images and containers under /var/lib/narwhal-test-docker,
# its own containerd (started by dockerd under the exec root, or, when a
# system containerd runs, a containerd namespace of its own), its own cgroup
# parent. No bridge, no iptables rules, no ip_forward change: the tests'
# containers all run with --net=none.
#
# Start it from the machine's root network namespace: the daemon keeps the
# namespace it was started in.
#
# The daemon registers the OCI runtime `narwhal` (`docker run --runtime
# narwhal`) as the packaged daemon.json snippet does, with the test's
# allow-list in runtimeArgs; its path is a script here that execs
# $NARWHAL_BIN, rewritten by every `start` that sets NARWHAL_BIN, so the
# running daemon always uses the narwhal binary of the latest test build.
set -eu

DIR=/run/narwhal-test
SOCK=$DIR/docker.sock
PIDFILE=$DIR/docker.pid
LOG=$DIR/dockerd.log
LOCK=$DIR/lock
DATA=/var/lib/narwhal-test-docker
CONFIG=$DIR/daemon.json
DOCKER=/usr/bin/docker   # not /usr/local/bin/docker: a different client
RUNTIME=$DIR/narwhal-runtime
# the test prefixes narwhal's runtime accepts (tests/common/docker.rs ALLOW)
ALLOW=198.18.14.0/24,2001:db8:14::/48
# Debian's docker.io installs the daemon as /usr/sbin/dockerd
DOCKERD=/usr/sbin/dockerd
[ -x "$DOCKERD" ] || DOCKERD=/usr/bin/dockerd
WAIT=${NARWHAL_DOCKERD_WAIT:-120}   # seconds to wait for the daemon

answers() {
    "$DOCKER" -H "unix://$SOCK" version >/dev/null 2>&1
}

# Whether the answering daemon knows the runtime `narwhal` (a daemon
# started by an older version of this script does not).
has_runtime() {
    "$DOCKER" -H "unix://$SOCK" info --format '{{json .Runtimes}}' 2>/dev/null |
        grep -q '"narwhal"'
}

# (Re)write the script the runtime `narwhal` runs, atomically.
write_runtime() {
    if [ -n "${NARWHAL_BIN:-}" ]; then
        [ -x "$NARWHAL_BIN" ] || die "NARWHAL_BIN=$NARWHAL_BIN is not executable"
        body="exec '$NARWHAL_BIN' \"\$@\""
    elif [ -e "$RUNTIME" ]; then
        return 0
    else
        body="echo 'narwhal-runtime: start tests/e2e/dockerd.sh with NARWHAL_BIN set' >&2; exit 1"
    fi
    printf '#!/bin/sh\n%s\n' "$body" >"$RUNTIME.tmp"
    chmod 0755 "$RUNTIME.tmp"
    mv -f "$RUNTIME.tmp" "$RUNTIME"
}

# The pid in the pidfile, if that process is alive and is a dockerd.
daemon_pid() {
    [ -s "$PIDFILE" ] || return 1
    pid=$(cat "$PIDFILE")
    case $pid in '' | *[!0-9]*) return 1 ;; esac
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] || return 1
    echo "$pid"
}

die() {
    echo "dockerd.sh: $*" >&2
    exit 1
}

start() {
    [ "$(id -u)" = 0 ] || die "must run as root"
    [ -x "$DOCKERD" ] || die "$DOCKERD not found (install docker.io)"
    [ -x "$DOCKER" ] || die "$DOCKER not found (install docker.io)"
    mkdir -p "$DIR"
    chmod 0711 "$DIR"
    # one starter at a time; fd 9 is the lock and must not leak into dockerd
    exec 9>"$LOCK"
    flock 9
    write_runtime
    if answers; then
        if has_runtime; then
            echo "$SOCK"
            return 0
        fi
        echo "dockerd.sh: restarting dockerd to register the runtime narwhal" >&2
        stop_locked
    fi
    if ! pid=$(daemon_pid); then
        rm -f "$PIDFILE" "$SOCK"
        cat >"$CONFIG" <<EOF
{"runtimes": {"narwhal": {"path": "$RUNTIME", "runtimeArgs": ["runtime", "--allow", "$ALLOW"]}}}
EOF
        : >"$LOG"
        # setsid: no controlling terminal, own process group; stdio to the
        # log so that no caller's pipe stays open
        setsid "$DOCKERD" \
            --config-file "$CONFIG" \
            --host "unix://$SOCK" \
            --pidfile "$PIDFILE" \
            --data-root "$DATA" \
            --exec-root "$DIR/exec" \
            --containerd-namespace narwhal-test \
            --containerd-plugins-namespace narwhal-test-plugins \
            --cgroup-parent narwhal-test \
            --bridge=none \
            --iptables=false \
            --ip6tables=false \
            --ip-forward=false \
            --ip-masq=false \
            --userland-proxy=false \
            </dev/null >>"$LOG" 2>&1 9>&- &
        pid=$!
    fi
    i=0
    while ! answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$LOG" >&2 || true
            die "dockerd (pid $pid) exited; log: $LOG"
        fi
        i=$((i + 1))
        if [ "$i" -gt $((WAIT * 5)) ]; then
            tail -n 30 "$LOG" >&2 || true
            die "dockerd (pid $pid) does not answer on $SOCK after ${WAIT}s; log: $LOG"
        fi
        sleep 0.2
    done
    echo "$SOCK"
}

stop() {
    [ -d "$DIR" ] || return 0
    exec 9>"$LOCK"
    flock 9
    stop_locked
}

# stop, with the lock held
stop_locked() {
    if ! pid=$(daemon_pid); then
        echo "dockerd.sh: not running" >&2
        return 0
    fi
    kill -TERM "$pid"
    i=0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        [ "$i" -le 300 ] || die "dockerd (pid $pid) still running 60s after SIGTERM"
        sleep 0.2
    done
    echo "dockerd.sh: stopped dockerd (pid $pid)" >&2
}

purge() {
    stop
    # nothing may still be mounted below the data root
    if grep -q " $DATA[/ ]" /proc/self/mounts; then
        die "$DATA still has mounts; not deleting it"
    fi
    rm -rf "$DATA" "$DIR"
}

case ${1:-start} in
start) start ;;
status)
    answers || exit 1
    echo "$SOCK"
    ;;
stop) stop ;;
purge) purge ;;
*) die "usage: $0 [start|status|stop|purge]" ;;
esac
