//! Shared helpers for the privileged integration tests. Each test works in
//! namespaces it creates: the test thread unshares its own network
//! namespace (a private "host"), and "containers" are `unshare -n` child
//! processes killed by pid on drop.
//!
//! The one of each kind that every test file uses: running narwhal
//! ([`run_narwhal`]), the one-line error contract ([`one_line_error`],
//! [`failed`]), waiting on a condition ([`wait_until`]), a private syslog
//! socket ([`syslog::Syslog`]), temporary directories (the `tempfile`
//! crate, see [`temp_dir`]) and before/after state snapshots.
#![allow(dead_code)]

pub mod syslog;

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Whether this test may run. Not root: skip with a visible reason, unless
/// NARWHAL_REQUIRE_PRIVILEGED=1 (CI), where a skip is a failure.
pub fn privileged(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("NARWHAL_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
        panic!("{test}: needs root, and NARWHAL_REQUIRE_PRIVILEGED=1 forbids skipping");
    }
    eprintln!("SKIPPED {test}: needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)");
    false
}

#[macro_export]
macro_rules! require_root {
    () => {
        if !common::privileged(&format!("{}::{}", module_path!(), line!())) {
            return;
        }
    };
}

/// The narwhal binary under test.
pub fn narwhal() -> Command {
    Command::new(env!("CARGO_BIN_EXE_narwhal"))
}

/// A short unique name: `prefix` + pid + counter (fits in an interface name
/// when prefix has at most 3 characters).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}{}",
        std::process::id() % 100_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Give the calling test thread a private network namespace ("the host")
/// with lo up. Processes it spawns inherit it.
///
/// The host is one where narwhal has run before: it has the shared source
/// check ([`prime_source_check`]), so the steps a setup prints, and what
/// a lifecycle leaves, do not depend on whether it is the first setup.
pub fn private_host() {
    private_host_unprimed();
    prime_source_check();
}

/// [`private_host`] where narwhal has never run: no shared source check.
pub fn private_host_unprimed() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    run_ok(Command::new("ip").args(["link", "set", "lo", "up"]));
}

/// A child process killed (by its pid) and reaped on drop, also when the
/// test fails.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process in a fresh network namespace: a stand-in container.
pub struct NsProc {
    child: KillOnDrop,
}

impl NsProc {
    pub fn new() -> NsProc {
        let child = Command::new("unshare")
            .args(["-n", "sleep", "infinity"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare -n sleep");
        let p = NsProc {
            child: KillOnDrop(child),
        };
        let own = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        wait_until(WAIT, "unshare -n to create a namespace", || {
            std::fs::read_link(p.netns()).is_ok_and(|l| l != own)
        });
        p
    }
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }
    pub fn netns(&self) -> PathBuf {
        format!("/proc/{}/ns/net", self.pid()).into()
    }
    /// Run a command inside this namespace (nsenter -n).
    pub fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-n", "-t", &self.pid().to_string(), "--", prog]);
        c
    }
}

// ---------------------------------------------------------------------------
// waiting

/// How long [`wait_until`] callers wait by default: generous, so that a slow
/// or loaded machine never fails a test; nothing asserts on time.
pub const WAIT: Duration = Duration::from_secs(60);

/// What a [`wait_until`] poll returns: `bool` (ready or not yet), or
/// `Result<T, E>` (ready with a value, or not yet because of `E`, which the
/// panic message then shows).
pub trait Ready {
    type Value;
    fn ready(self) -> Result<Self::Value, String>;
}

impl Ready for bool {
    type Value = ();
    fn ready(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err(String::new())
        }
    }
}

impl<T, E: std::fmt::Display> Ready for Result<T, E> {
    type Value = T;
    fn ready(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// Poll `poll` (every few milliseconds) until it is ready and return its
/// value; panic naming `what` (and the last reason it was not ready) once
/// `deadline` has passed. A wait for a condition, never a timing assertion.
pub fn wait_until<R: Ready>(
    deadline: Duration,
    what: &str,
    mut poll: impl FnMut() -> R,
) -> R::Value {
    let start = Instant::now();
    loop {
        let why = match poll().ready() {
            Ok(v) => return v,
            Err(why) => why,
        };
        if start.elapsed() > deadline {
            let sep = if why.is_empty() { "" } else { ": " };
            panic!("still waiting for {what} after {deadline:?}{sep}{why}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------
// running narwhal and other programs

/// Bound on every narwhal run by [`run_narwhal`] (`timeout(1)`): only a hang
/// comes close, and then shows as exit status 124.
pub const LIMIT: &str = "60";

/// Run the narwhal binary (under `timeout LIMIT`) with `args`, feeding
/// `stdin` (closed at once when `None`) and adding `env`.
pub fn run_narwhal<S: AsRef<OsStr>>(
    args: &[S],
    stdin: Option<&[u8]>,
    env: &[(&str, &str)],
) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.args(["--kill-after=5", LIMIT])
        .arg(narwhal().get_program())
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    feed(cmd, stdin)
}

/// Spawn `cmd` with piped stdout/stderr, feed `stdin`, wait for the output.
/// A writer thread feeds stdin, so a program that stops reading early
/// (oversized input) cannot block the test.
pub fn feed(mut cmd: Command, stdin: Option<&[u8]>) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut pipe = child.stdin.take().unwrap();
    let data = stdin.map(<[u8]>::to_vec).unwrap_or_default();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&data); // EPIPE when it stops reading: fine
    });
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait for {cmd:?}: {e}"));
    writer.join().unwrap();
    out
}

/// narwhal succeeded; returns its stderr (the trace, if asked for).
pub fn succeeded(o: &Output) -> String {
    assert!(
        o.status.success(),
        "narwhal failed ({}): {}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The one-line error contract: exit status 1, stdout empty, exactly one
/// newline-terminated line on stderr starting with `narwhal: `. Returns the
/// message without that prefix, or what is wrong.
pub fn one_line_error(out: &Output) -> Result<String, String> {
    one_line_error_with(out, 1)
}

/// [`one_line_error`] with exit status `code`.
pub fn one_line_error_with(out: &Output, code: i32) -> Result<String, String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(code) {
        return Err(format!(
            "exit status {}, want {code}; stderr: {stderr:?}",
            out.status
        ));
    }
    if !out.stdout.is_empty() {
        return Err(format!(
            "stdout is not empty: {:?}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    let Some(body) = stderr.strip_suffix('\n') else {
        return Err(format!(
            "stderr is not one newline-terminated line: {stderr:?}"
        ));
    };
    if body.contains('\n') || body.contains('\r') {
        return Err(format!("stderr has more than one line: {stderr:?}"));
    }
    match body.strip_prefix("narwhal: ") {
        Some(m) => Ok(m.to_string()),
        None => Err(format!(
            "stderr does not start with 'narwhal: ': {stderr:?}"
        )),
    }
}

/// [`one_line_error`], which must hold: returns the message.
pub fn failed(out: &Output) -> String {
    one_line_error(out).unwrap_or_else(|e| panic!("narwhal's one-line error: {e}"))
}

/// Failure injection (`NARWHAL_FAIL_STEP=N` fails before step N) exists in
/// debug builds of narwhal only. A test relying on it calls this first with
/// its setup `args`: injecting at step 1 (before any change) must fail with
/// the injected cause, or the test fails here instead of passing vacuously.
pub fn assert_failure_injection(args: &[&str]) {
    let out = run_narwhal(args, None, &[("NARWHAL_FAIL_STEP", "1")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(1) && stderr.contains("injected failure (NARWHAL_FAIL_STEP)"),
        "narwhal ignores NARWHAL_FAIL_STEP=1 ({}; stderr {stderr:?}): \
         failure injection needs a debug build (cargo test without --release)",
        out.status
    );
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

pub fn run_ok(cmd: &mut Command) -> String {
    let o = run(cmd);
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `ip -j ARGS` parsed (in the namespace of `ns`, or the thread's own).
pub fn ip_json(ns: Option<&NsProc>, args: &[&str]) -> serde_json::Value {
    let mut c = match ns {
        Some(n) => n.cmd("ip"),
        None => Command::new("ip"),
    };
    let out = run_ok(c.arg("-j").args(args));
    if out.trim().is_empty() {
        return serde_json::Value::Array(vec![]);
    }
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j {args:?}: {e}: {out}"))
}

/// Names of the links in a namespace (the thread's own with `None`).
pub fn link_names(ns: Option<&NsProc>) -> Vec<String> {
    ifnames(&ip_json(ns, &["link", "show"]))
}

/// The interface names of an `ip -j link`/`ip -j addr` dump, in its order.
pub fn ifnames(dump: &serde_json::Value) -> Vec<String> {
    dump.as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .map(String::from)
        .collect()
}

/// The entry for `ifname` in an `ip -j link`/`ip -j addr` dump.
pub fn find_link<'a>(dump: &'a serde_json::Value, ifname: &str) -> Option<&'a serde_json::Value> {
    dump.as_array()
        .unwrap()
        .iter()
        .find(|l| l["ifname"] == ifname)
}

/// A fresh directory under the system temp dir (`/tmp/nwTAG-XXXXXX`: short,
/// for unix socket paths), removed with its contents on drop.
pub fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("nw{tag}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("create a temporary directory: {e}"))
}

/// Make this (private) host look like one where narwhal has run before:
/// the first setup on a host makes the shared source check (nftables
/// table `inet narwhal`), which stays when its containers go. Tests that
/// compare the host before and after a whole container lifecycle start
/// from here.
pub fn prime_source_check() {
    let c = NsProc::new();
    let netns = c.netns().display().to_string();
    for args in [
        &["--netns", netns.as_str(), "-4", "198.18.255.254"][..],
        &["remove", "--netns", netns.as_str()],
    ] {
        let o = narwhal().args(args).output().expect("run narwhal");
        assert!(
            o.status.success(),
            "prime the source check: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// Everything narwhal could change in the calling thread's namespace:
/// links, addresses, routes, neighbours ([`snapshot`]) and the whole
/// nftables ruleset.
pub fn host_state() -> String {
    let mut s = snapshot(None);
    let nft = run_ok(Command::new("nft").args(["list", "ruleset"]));
    s.push_str(&format!("nft: {nft}\n"));
    s
}

/// Everything observable about a namespace's network state, for
/// before/after comparisons (links, addresses, routes, neighbours).
pub fn snapshot(ns: Option<&NsProc>) -> String {
    snapshot_with(|args| ip_json(ns, args))
}

/// [`snapshot`] with another way to run `ip -j ARGS` (e.g. via nsenter).
pub fn snapshot_with(ip_json: impl Fn(&[&str]) -> serde_json::Value) -> String {
    let mut s = String::new();
    for args in [
        &["-d", "link", "show"][..],
        &["addr", "show"],
        &["-4", "route", "show", "table", "all"],
        &["-6", "route", "show", "table", "all"],
        &["neigh", "show"],
    ] {
        let mut v = ip_json(args);
        strip_volatile(&mut v);
        s.push_str(&format!("{args:?}: {v}\n"));
    }
    s
}

/// Two snapshots are equal; else panic naming `what` and the first line
/// where they differ.
pub fn assert_same(before: &str, after: &str, what: &str) {
    assert!(
        before == after,
        "{what}: {}",
        first_difference(before, after)
    );
}

/// The first line where two snapshots differ, for readable failures.
pub fn first_difference(a: &str, b: &str) -> String {
    for (x, y) in a.lines().zip(b.lines()) {
        if x != y {
            return format!("before: {x}\n after: {y}");
        }
    }
    format!(
        "line counts differ: {} vs {}",
        a.lines().count(),
        b.lines().count()
    )
}

/// Drop counters and timers that change without anyone changing anything.
pub fn strip_volatile(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for k in [
                "stats64",
                "stats",
                "valid_life_time",
                "preferred_life_time",
                "used",
                "confirmed",
                "updated",
                "probes",
            ] {
                m.remove(k);
            }
            for (_, x) in m.iter_mut() {
                strip_volatile(x);
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_volatile),
        _ => {}
    }
}

/// A busybox rootfs (from Debian's busybox-static) for runtime tests,
/// built once per target dir.
pub fn busybox_rootfs() -> PathBuf {
    // one builder per process (tests run on parallel threads); other test
    // binaries may build at the same time: each builds in its own
    // directory and the first rename wins
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("busybox-rootfs");
    if dir.join("bin/sh").exists() {
        return dir;
    }
    let tmp = tempfile::Builder::new()
        .prefix("busybox-rootfs.")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("create a temporary directory");
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp", "www"] {
        std::fs::create_dir_all(tmp.path().join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", tmp.path().join("bin/busybox"))
        .expect("busybox-static is installed");
    let list = run_ok(Command::new("/bin/busybox").arg("--list"));
    for applet in list.lines().filter(|a| !a.is_empty() && *a != "busybox") {
        let _ = std::os::unix::fs::symlink("busybox", tmp.path().join("bin").join(applet));
    }
    std::fs::write(tmp.path().join("www/index.html"), "narwhal\n").unwrap();
    // a rootfs is world-readable (tempfile creates the directory 0700)
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // the first rename wins; a loser's directory goes with `tmp`
    let _ = std::fs::rename(tmp.path(), &dir);
    dir
}

/// `narwhal hook STAGE` for container `id` whose init process is `pid`,
/// with these annotations and no bundle, logging to `syslog`.
pub fn run_hook(
    stage: &str,
    pid: u32,
    id: &str,
    annotations: &[(&str, &str)],
    syslog: &str,
) -> Output {
    let ann: serde_json::Map<String, serde_json::Value> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), (*v).into()))
        .collect();
    let status = if stage == "poststop" {
        "stopped"
    } else {
        "creating"
    };
    let state = serde_json::json!({
        "ociVersion": "1.0.2", "id": id, "status": status,
        "pid": pid, "bundle": "/nonexistent", "annotations": ann,
    });
    run_narwhal(
        &["hook", stage, "--syslog-socket", syslog],
        Some(state.to_string().as_bytes()),
        &[],
    )
}

/// Run `f` on a thread that has joined the network namespace of `pid`
/// (sockets it makes stay there).
pub fn in_netns_of<T: Send + 'static>(pid: u32, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
            .unwrap_or_else(|e| panic!("open /proc/{pid}/ns/net: {e}"));
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("join the netns of {pid}: {e}"));
        f()
    })
    .join()
    .expect("netns thread panicked")
}

/// Send one UDP datagram from `src` (an address of `pid`'s namespace) to
/// `dst`.
pub fn udp_send_from(
    pid: u32,
    src: std::net::SocketAddr,
    dst: std::net::SocketAddr,
    payload: &'static [u8],
) {
    in_netns_of(pid, move || {
        let s = std::net::UdpSocket::bind(src).unwrap_or_else(|e| panic!("bind {src}: {e}"));
        s.send_to(payload, dst)
            .unwrap_or_else(|e| panic!("send from {src} to {dst}: {e}"));
    })
}

/// A UDP socket bound to `addr` in `pid`'s namespace.
pub fn udp_bind_in(pid: u32, addr: std::net::SocketAddr) -> std::net::UdpSocket {
    in_netns_of(pid, move || {
        std::net::UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"))
    })
}

/// A stand-in uplink in this (private) host: a veth pair `name`/`namep`,
/// both ends up.
pub fn uplink(name: &str) {
    let peer = format!("{name}p");
    run_ok(Command::new("ip").args(["link", "add", name, "type", "veth", "peer", "name", &peer]));
    run_ok(Command::new("ip").args(["link", "set", name, "up"]));
    run_ok(Command::new("ip").args(["link", "set", &peer, "up"]));
}
