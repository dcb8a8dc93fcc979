//! Helpers for tests/runtimes.rs: real containers started by runc, crun
//! and podman with narwhal as their OCI hook, and a syslog socket the test
//! reads. Everything lives under a temporary directory per test and is
//! removed on drop, also when the test fails.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::syslog::Syslog;
use crate::common::{self, wait_until};

/// How long a container may take to start or stop, and a log line to arrive.
/// Generous: a slow CI machine must not fail a test; nothing asserts on it.
const DEADLINE: Duration = common::WAIT;

/// The port the container's httpd listens on.
pub const PORT: u16 = 8080;

/// The OCI runtimes under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Runc,
    Crun,
    Podman,
}

impl Runtime {
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Crun => "crun",
            Runtime::Podman => "podman",
        }
    }

    /// Whether the runtime shows a failing hook's stderr to its caller
    /// (crun drops it; podman runs crun).
    pub fn shows_hook_stderr(self) -> bool {
        self == Runtime::Runc
    }
}

/// A command of `prog`, wrapped for crun when needed: crun 1.8 refuses a
/// hybrid cgroup layout (cgroup v1 controllers plus a cgroup2 at
/// /sys/fs/cgroup/unified), so crun (and podman, which runs crun) runs in
/// a private mount namespace without that cgroup2 mount. Harmless where
/// the mount does not exist.
fn wrapped(prog: &str, needs_cgroup_fix: bool) -> Command {
    if !needs_cgroup_fix {
        return Command::new(prog);
    }
    let mut c = Command::new("unshare");
    c.args([
        "-m",
        "--",
        "sh",
        "-c",
        "if grep -qs ' /sys/fs/cgroup/unified ' /proc/self/mounts; then \
         umount /sys/fs/cgroup/unified || exit 125; fi; exec \"$0\" \"$@\"",
        prog,
    ]);
    c
}

/// What to run: the container's annotations and its shell command.
#[derive(Debug, Clone)]
pub struct Spec {
    pub annotations: Vec<(String, String)>,
    pub script: String,
}

impl Spec {
    pub fn new(annotations: &[(&str, &str)], script: &str) -> Spec {
        Spec {
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            script: script.to_string(),
        }
    }
}

/// A shell command that binds the web server to each of `addrs` (as
/// `httpd -p` wants them: `198.51.100.2:8080`, `[2001:db8::2]:8080`) before
/// anything else and exits non-zero if one bind fails: it can only
/// succeed if the network was configured before the workload started.
pub fn serve(addrs: &[String]) -> String {
    let mut s = String::new();
    for a in addrs {
        s.push_str(&format!("httpd -p {a} -h /www || exit 41; "));
    }
    s.push_str("exec sleep 100000");
    s
}

pub fn http_addr(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{PORT}")
    } else {
        format!("{ip}:{PORT}")
    }
}

/// The hook arguments narwhal is given for `stage`.
pub fn hook_args(stage: &str, syslog: &Path) -> Vec<String> {
    vec![
        "narwhal".into(),
        "hook".into(),
        stage.into(),
        "--syslog-socket".into(),
        syslog.to_str().unwrap().into(),
    ]
}

/// The narwhal binary under test.
pub fn narwhal_path() -> String {
    env!("CARGO_BIN_EXE_narwhal").to_string()
}

/// The shipped `hooks.d/narwhal.json` (oci-hooks(5)), pointed at the
/// binary under test and the test syslog socket, written to `dir`. The
/// shipped file is checked on the way: one hook for both stages, which
/// narwhal tells apart by the state's status.
pub fn write_hooks_dir(dir: &Path, syslog: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks.d/narwhal.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(v["version"], "1.0.0");
    assert_eq!(v["stages"], json!(["createRuntime", "poststop"]));
    assert_eq!(v["hook"]["path"], "/usr/bin/narwhal");
    assert_eq!(v["hook"]["args"], json!(["narwhal", "hook"]));
    assert!(v["when"]["annotations"].is_object());
    v["hook"]["path"] = json!(narwhal_path());
    v["hook"]["args"] = json!([
        "narwhal",
        "hook",
        "--syslog-socket",
        syslog.to_str().unwrap()
    ]);
    std::fs::write(
        dir.join("narwhal.json"),
        serde_json::to_vec_pretty(&v).unwrap(),
    )
    .unwrap();
}

/// One test's world: a temporary directory, the syslog socket, and for
/// podman a private storage and hooks directory.
pub struct Env {
    pub rt: Runtime,
    pub dir: tempfile::TempDir,
    pub syslog: Syslog,
}

impl Env {
    pub fn new(rt: Runtime) -> Env {
        // short: unix socket paths below it must stay under 108 bytes
        let dir = common::temp_dir(&rt.name()[..2]);
        let syslog = Syslog::new();
        if rt == Runtime::Podman {
            write_hooks_dir(&dir.path().join("hooks"), syslog.path());
        }
        Env { rt, dir, syslog }
    }

    /// podman with private storage, state and lock directories (no image
    /// is needed: containers run with --rootfs), the test's hooks
    /// directory, and no dependence on systemd or journald.
    fn podman(&self) -> Command {
        let d = self.dir.path();
        let mut c = wrapped("podman", true);
        c.args(podman_private_args(d))
            .arg("--hooks-dir")
            .arg(d.join("hooks"));
        c
    }

    /// runc or crun (wrapped for the cgroup layout).
    fn oci(&self) -> Command {
        match self.rt {
            Runtime::Runc => wrapped("runc", false),
            Runtime::Crun => wrapped("crun", true),
            Runtime::Podman => unreachable!(),
        }
    }

    /// The runtime's command line tool.
    pub fn cmd(&self) -> Command {
        match self.rt {
            Runtime::Podman => self.podman(),
            _ => self.oci(),
        }
    }

    /// Start a container named `name` (the OCI container id for runc and
    /// crun; the container name for podman, whose ids are random). Ok: it
    /// runs. Err: the runtime failed; the text is everything it printed.
    pub fn start(&self, name: &str, spec: &Spec) -> Result<Container<'_>, String> {
        let bundle = self.dir.path().join(name);
        std::fs::create_dir_all(&bundle).unwrap();
        let out = bundle.join("runtime.out");
        let err = bundle.join("runtime.err");
        // The container inherits the runtime's stdio: files, not pipes,
        // or reading the runtime's output would wait for the container.
        let mut c = match self.rt {
            Runtime::Podman => self.podman_run(name, &bundle, spec),
            _ => {
                self.write_bundle(&bundle, spec);
                let mut c = self.oci();
                c.arg("run")
                    .arg("-d")
                    .arg("--bundle")
                    .arg(&bundle)
                    .arg(name);
                c
            }
        };
        let status = c
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .status()
            .unwrap_or_else(|e| panic!("run {c:?}: {e}"));
        let text = format!(
            "{}{}",
            std::fs::read_to_string(&out).unwrap_or_default(),
            std::fs::read_to_string(&err).unwrap_or_default()
        );
        let mut ctr = Container {
            env: self,
            name: name.to_string(),
            id: name.to_string(),
            pid: 0,
            live: true,
        };
        if !status.success() {
            // Whatever the runtime left behind (podman keeps a created
            // container) goes now; the drop guard would do it too.
            ctr.remove();
            return Err(format!("{} exited with {status}: {text}", self.rt.name()));
        }
        if self.rt == Runtime::Podman {
            ctr.id = text
                .lines()
                .find(|l| l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()))
                .unwrap_or_else(|| panic!("no container id in podman's output: {text}"))
                .to_string();
        }
        ctr.pid = ctr.query_pid();
        Ok(ctr)
    }

    fn podman_run(&self, name: &str, bundle: &Path, spec: &Spec) -> Command {
        // podman writes /etc/hosts and friends into the rootfs: a copy.
        let rootfs = bundle.join("rootfs");
        common::run_ok(
            Command::new("cp")
                .arg("-a")
                .arg(common::busybox_rootfs())
                .arg(&rootfs),
        );
        let mut c = self.podman();
        c.args(["run", "-d", "--name", name, "--network", "none"]);
        for (k, v) in &spec.annotations {
            c.arg("--annotation").arg(format!("{k}={v}"));
        }
        c.args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=4096:4096",
        ]);
        c.arg("--rootfs").arg(&rootfs);
        c.args(["sh", "-c", &spec.script]);
        c
    }

    /// An OCI bundle: `runc spec` edited. The rootfs is the shared busybox
    /// tree, read-only.
    pub fn write_bundle(&self, bundle: &Path, spec: &Spec) {
        common::run_ok(Command::new("runc").arg("spec").current_dir(bundle));
        let path = bundle.join("config.json");
        let mut c: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(["sh", "-c", spec.script]);
        c["root"] = json!({"path": common::busybox_rootfs(), "readonly": true});
        c["hostname"] = json!("narwhal-test");
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
        ns.push(json!({"type": "network"}));
        let ann: serde_json::Map<String, Value> = spec
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        c["annotations"] = Value::Object(ann);
        let hook = |stage: &str| json!([{"path": narwhal_path(), "args": hook_args(stage, self.syslog.path())}]);
        c["hooks"] = json!({"createRuntime": hook("createRuntime"), "poststop": hook("poststop")});
        std::fs::write(&path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    }
}

impl Drop for Env {
    /// podman leaves work behind: when a container exits, conmon starts
    /// `podman container cleanup` with this environment's directories,
    /// which may still be writing there after `podman rm` returned. Wait
    /// (never kill: they are not ours) until no process refers to the
    /// directory, so that removing it is final.
    fn drop(&mut self) {
        // (not while a failed test unwinds: a second panic would abort)
        if self.rt != Runtime::Podman || std::thread::panicking() {
            return;
        }
        let dir = self.dir.path().to_str().unwrap().as_bytes().to_vec();
        wait_until(DEADLINE, "podman's cleanup processes to finish", || {
            !std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| c.windows(dir.len()).any(|w| w == dir))
            })
        });
    }
}

/// A running container; removed on drop if the test did not.
pub struct Container<'a> {
    env: &'a Env,
    /// The name given at start.
    pub name: String,
    /// The OCI container id the hook sees (podman: the 64-digit id).
    pub id: String,
    /// The container's init process, as seen from here (0 if it had
    /// already exited when the runtime returned).
    pub pid: u32,
    live: bool,
}

impl Container<'_> {
    fn query_pid(&self) -> u32 {
        let out = match self.env.rt {
            Runtime::Podman => common::run_ok(self.env.cmd().args([
                "inspect",
                "--format",
                "{{.State.Pid}}",
                &self.name,
            ])),
            _ => {
                let s: Value = serde_json::from_str(&common::run_ok(
                    self.env.cmd().args(["state", &self.name]),
                ))
                .unwrap();
                s["pid"].to_string()
            }
        };
        // 0: the container has already exited (see `alive`).
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("no pid for {}: {out}", self.name))
    }

    /// The container's network namespace file.
    pub fn netns(&self) -> PathBuf {
        format!("/proc/{}/ns/net", self.pid).into()
    }

    /// Whether the container's process still runs (not a zombie).
    pub fn alive(&self) -> bool {
        if self.pid == 0 {
            return false;
        }
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            Ok(s) => !s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')),
            Err(_) => false,
        }
    }

    /// What the container printed (runc and crun: the runtime's output
    /// file, which the container inherited; podman: podman logs).
    pub fn output(&self) -> String {
        match self.env.rt {
            Runtime::Podman => {
                let o = common::run(self.env.cmd().args(["logs", &self.name]));
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            }
            _ => {
                let b = self.env.dir.path().join(&self.name);
                format!(
                    "{}{}",
                    std::fs::read_to_string(b.join("runtime.out")).unwrap_or_default(),
                    std::fs::read_to_string(b.join("runtime.err")).unwrap_or_default()
                )
            }
        }
    }

    /// Wait until the workload listens on port 8080 on `n4` IPv4 and `n6`
    /// IPv6 sockets (read from the container's /proc/PID/net/tcp{,6}).
    /// Panics, with the container's output, if it exits first.
    pub fn wait_listening(&self, n4: usize, n6: usize) {
        let what = format!(
            "{} container {} to listen on {n4} IPv4 and {n6} IPv6 sockets",
            self.env.rt.name(),
            self.name
        );
        wait_until(DEADLINE, &what, || {
            let count = |f: &str| {
                std::fs::read_to_string(format!("/proc/{}/net/{f}", self.pid))
                    .unwrap_or_default()
                    .lines()
                    .skip(1)
                    .filter(|l| {
                        let c: Vec<&str> = l.split_whitespace().collect();
                        c.len() > 3 && c[3] == "0A" && c[1].ends_with(&format!(":{PORT:04X}"))
                    })
                    .count()
            };
            let (l4, l6) = (count("tcp"), count("tcp6"));
            if l4 == n4 && l6 == n6 {
                return Ok(());
            }
            if !self.alive() {
                panic!(
                    "{} container {} exited before listening ({l4} IPv4, {l6} IPv6 listeners); output:\n{}",
                    self.env.rt.name(),
                    self.name,
                    self.output()
                );
            }
            Err(format!("{l4}/{n4} IPv4, {l6}/{n6} IPv6 listeners"))
        });
    }

    /// `ip -j ARGS` inside the container's network namespace.
    pub fn ip_json(&self, args: &[&str]) -> Value {
        let out = common::run_ok(
            Command::new("nsenter")
                .args(["-n", "-t", &self.pid.to_string(), "--", "ip", "-j"])
                .args(args),
        );
        if out.trim().is_empty() {
            return json!([]);
        }
        serde_json::from_str(&out).unwrap()
    }

    /// Stop the container the way a user does, running its poststop hook:
    /// runc/crun `kill` then `delete`; podman `rm -f`.
    pub fn stop_and_delete(mut self) {
        match self.env.rt {
            Runtime::Podman => {
                common::run_ok(self.env.cmd().args(["rm", "-f", "-t", "0", &self.name]));
            }
            _ => {
                common::run_ok(self.env.cmd().args(["kill", &self.name, "KILL"]));
                wait_until(DEADLINE, &format!("{} to stop", self.name), || {
                    let s: Value = serde_json::from_str(&common::run_ok(
                        self.env.cmd().args(["state", &self.name]),
                    ))
                    .unwrap();
                    if s["status"] == "stopped" {
                        Ok(())
                    } else {
                        Err(format!("state {s}"))
                    }
                });
                common::run_ok(self.env.cmd().args(["delete", &self.name]));
            }
        }
        self.live = false;
    }

    /// Best-effort removal (drop guard).
    fn remove(&mut self) {
        if !self.live {
            return;
        }
        self.live = false;
        let _ = match self.env.rt {
            Runtime::Podman => self
                .env
                .cmd()
                .args(["rm", "-f", "-t", "0", &self.name])
                .output(),
            _ => self.env.cmd().args(["delete", "-f", &self.name]).output(),
        };
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        self.remove();
    }
}

/// `busybox wget` from the test's (host) namespace; the body, or Err with
/// wget's message.
pub fn fetch(ip: &str) -> Result<String, String> {
    let url = format!("http://{}/", http_addr(ip));
    let o =
        common::run(Command::new("timeout").args(["20", "busybox", "wget", "-q", "-O", "-", &url]));
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(format!(
            "wget {url}: {}{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

/// Host links of this (the test's private host) namespace, with details.
pub fn host_links() -> Vec<Value> {
    common::ip_json(None, &["-d", "link", "show"])
        .as_array()
        .unwrap()
        .clone()
}

/// The names of narwhal's links (nw-*) here.
/// Wait until no narwhal link is left on the host: the pair of a stopped
/// runc or crun container goes with its namespace, a moment after poststop.
pub fn await_no_nw_links(what: &str) {
    wait_until(DEADLINE, what, || {
        let left = nw_links();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("left: {left:?}"))
        }
    });
}

pub fn nw_links() -> Vec<String> {
    host_links()
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .filter(|n| n.starts_with("nw-"))
        .map(String::from)
        .collect()
}

/// podman's options for storage, state and temporary files of its own
/// under `dir`, and no dependence on systemd or journald.
pub fn podman_private_args(dir: &std::path::Path) -> Vec<std::ffi::OsString> {
    let mut a: Vec<std::ffi::OsString> = Vec::new();
    for (flag, sub) in [
        ("--root", "storage"),
        ("--runroot", "run"),
        ("--tmpdir", "tmp"),
    ] {
        a.push(flag.into());
        a.push(dir.join(sub).into());
    }
    for s in [
        "--storage-driver",
        "vfs",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "file",
    ] {
        a.push(s.into());
    }
    a
}
