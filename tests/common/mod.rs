//! Shared helpers for the privileged integration tests. Each test works in
//! namespaces it creates: the test thread unshares its own network
//! namespace (a private "host"), and "containers" are `unshare -n` child
//! processes killed by pid on drop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

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
pub fn private_host() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    run_ok(Command::new("ip").args(["link", "set", "lo", "up"]));
}

/// A process in a fresh network namespace: a stand-in container.
pub struct NsProc {
    child: Child,
}

impl NsProc {
    pub fn new() -> NsProc {
        let child = Command::new("unshare")
            .args(["-n", "sleep", "infinity"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare -n sleep");
        let p = NsProc { child };
        // wait until the child has its own namespace
        let own = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        for _ in 0..500 {
            if let Ok(l) = std::fs::read_link(p.netns()) {
                if l != own {
                    return p;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        panic!("unshare -n did not create a namespace");
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn netns(&self) -> PathBuf {
        format!("/proc/{}/ns/net", self.child.id()).into()
    }
    /// Run a command inside this namespace (nsenter -n).
    pub fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-n", "-t", &self.pid().to_string(), "--", prog]);
        c
    }
}

impl Drop for NsProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("busybox-rootfs.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp", "www"] {
        std::fs::create_dir_all(tmp.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", tmp.join("bin/busybox")).expect("busybox-static is installed");
    let list = run_ok(Command::new("/bin/busybox").arg("--list"));
    for applet in list.lines().filter(|a| !a.is_empty() && *a != "busybox") {
        let _ = std::os::unix::fs::symlink("busybox", tmp.join("bin").join(applet));
    }
    std::fs::write(tmp.join("www/index.html"), "narwhal\n").unwrap();
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => {}
        Err(_) => {
            let _ = std::fs::remove_dir_all(&tmp); // another test won the race
        }
    }
    dir
}
