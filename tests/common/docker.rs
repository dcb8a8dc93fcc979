//! Helpers for the end-to-end tests against a real Docker daemon: the
//! test's private dockerd (tests/e2e/dockerd.sh), the test image, and
//! containers removed on drop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use crate::common::{self, run, run_ok};

/// The private daemon's socket (see tests/e2e/dockerd.sh).
pub const SOCKET: &str = "/run/narwhal-test/docker.sock";
/// The image every test container runs: busybox imported from
/// `common::busybox_rootfs()`.
pub const IMAGE: &str = "narwhal-test-busybox";
/// Where the private daemon's containerd keeps the bundles of running
/// containers (its exec root and containerd namespace, tests/e2e/dockerd.sh).
pub const BUNDLES: &str =
    "/run/narwhal-test/exec/containerd/daemon/io.containerd.runtime.v2.task/narwhal-test";
/// The prefixes the private daemon's runtime `narwhal` accepts
/// (`runtime --allow`, tests/e2e/dockerd.sh).
pub const ALLOW: [&str; 2] = ["198.18.14.0/24", "2001:db8:14::/48"];
/// The Docker client of the docker.io package (/usr/local/bin/docker is
/// another one).
pub const DOCKER: &str = "/usr/bin/docker";

pub fn docker_host() -> String {
    format!("unix://{SOCKET}")
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/dockerd.sh")
}

fn dockerd_installed() -> bool {
    ["/usr/sbin/dockerd", "/usr/bin/dockerd"]
        .iter()
        .any(|p| Path::new(p).exists())
        && Path::new(DOCKER).exists()
}

/// Whether the Docker tests can run: dockerd and the docker client are
/// installed. Skips visibly when they are not, unless
/// NARWHAL_REQUIRE_PRIVILEGED=1 (CI), where that is a failure.
pub fn available(test: &str) -> bool {
    if dockerd_installed() {
        return true;
    }
    if std::env::var("NARWHAL_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
        panic!(
            "{test}: docker.io is not installed (/usr/sbin/dockerd, /usr/bin/docker), \
             and NARWHAL_REQUIRE_PRIVILEGED=1 forbids skipping"
        );
    }
    eprintln!("SKIPPED {test}: docker.io is not installed (/usr/sbin/dockerd, /usr/bin/docker)");
    false
}

/// Make sure the private dockerd answers and the test image exists (once per
/// test binary). Must be called before `common::private_host()`: the daemon
/// keeps the network namespace it is started in.
pub fn setup() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let same_netns = std::fs::read_link("/proc/thread-self/ns/net").unwrap()
        == std::fs::read_link("/proc/self/ns/net").unwrap();
    assert!(
        same_netns,
        "docker::setup() must run before common::private_host()"
    );
    if let Err(e) = READY.get_or_init(start_and_import) {
        panic!("{e}");
    }
}

fn start_and_import() -> Result<(), String> {
    let o = Command::new("sh")
        .arg(script())
        .arg("start")
        .env("NARWHAL_BIN", env!("CARGO_BIN_EXE_narwhal"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run {}: {e}", script().display()))?;
    let said = String::from_utf8_lossy(&o.stdout);
    if !o.status.success() || said.trim() != SOCKET {
        return Err(format!(
            "{} start failed ({}): {}{}",
            script().display(),
            o.status,
            said,
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    let has_image = docker()
        .args(["image", "inspect", IMAGE])
        .output()
        .map_err(|e| e.to_string())?;
    if has_image.status.success() {
        return Ok(());
    }
    let rootfs = common::busybox_rootfs();
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn tar: {e}"))?;
    let import = docker()
        .args(["import", "-", IMAGE])
        .stdin(tar.stdout.take().unwrap())
        .output()
        .map_err(|e| format!("docker import: {e}"))?;
    let tar_status = tar.wait().map_err(|e| e.to_string())?;
    if !tar_status.success() || !import.status.success() {
        return Err(format!(
            "import of {IMAGE} from {} failed: tar {tar_status}, docker import {}: {}",
            rootfs.display(),
            import.status,
            String::from_utf8_lossy(&import.stderr)
        ));
    }
    Ok(())
}

/// The docker client, pointed at the private daemon.
pub fn docker() -> Command {
    let mut c = Command::new(DOCKER);
    c.args(["-H", &docker_host()]);
    c.stdin(Stdio::null());
    c
}

/// The narwhal binary, pointed at the private daemon.
pub fn narwhal() -> Command {
    let mut c = common::narwhal();
    c.env("DOCKER_HOST", docker_host());
    c.stdin(Stdio::null());
    c
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run `cmd`; it must succeed. Returns stdout.
pub fn ok(cmd: &mut Command) -> String {
    run_ok(cmd)
}

/// Run `cmd`; it must fail with narwhal's one-line error
/// ([`common::failed`]), whose message is returned.
pub fn fails(cmd: &mut Command) -> String {
    common::failed(&run(cmd))
}

/// A container of the private daemon, started with `--net=none` and
/// removed (`docker rm -f`) on drop, also when the test panics.
///
/// The private daemon runs in this machine's own namespace, so narwhal's
/// first setup there makes the host-wide source check (`table inet
/// narwhal`). When the last guard of this test process goes, the check
/// goes too, unless a narwhal link (interface group 77) still needs it.
/// The count is held while a guard is made and while the check is
/// removed, so no container of this process is being set up meanwhile.
pub struct Container {
    pub name: String,
    pub id: String,
}

/// Live [`Container`] guards of this test process.
static LIVE: Mutex<usize> = Mutex::new(0);

fn live() -> std::sync::MutexGuard<'static, usize> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Remove the shared source check unless a narwhal link exists (as `make
/// test-cleanup` does after the whole suite).
fn release_source_check() {
    let links = Command::new("ip")
        .args(["-o", "link", "show", "group", "77"])
        .output();
    if links.is_ok_and(|o| o.status.success() && o.stdout.is_empty()) {
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", "narwhal"])
            .stderr(Stdio::null())
            .status();
    }
}

impl Container {
    /// `docker run -d --net=none --name NAME IMAGE sleep 1000`.
    pub fn run() -> Container {
        let mut c = Container::named();
        // the guard exists before the container does
        let out = ok(docker()
            .args(["run", "-d", "--net=none", "--name", &c.name])
            .args([IMAGE, "sleep", "1000"]));
        c.id = out.trim().to_string();
        assert_eq!(c.id.len(), 64, "docker run printed {out:?}");
        c
    }

    /// A guard for a container not created yet: a unique name, no id.
    /// Create it with `docker run --name NAME …` and record the id.
    pub fn named() -> Container {
        *live() += 1;
        Container {
            name: format!("narwhal-test-{}", common::unique("")),
            id: String::new(),
        }
    }

    /// The bundle `config.json` containerd wrote for the running container.
    pub fn bundle_config(&self) -> PathBuf {
        Path::new(BUNDLES).join(&self.id).join("config.json")
    }

    /// `docker inspect NAME`, parsed.
    pub fn inspect(&self) -> Value {
        let out = ok(docker().args(["inspect", &self.name]));
        let v: Value = serde_json::from_str(&out).unwrap();
        v[0].clone()
    }

    /// The host pid of the container's init process.
    pub fn pid(&self) -> i64 {
        let v = self.inspect();
        assert_eq!(v["State"]["Running"], true, "{} is not running", self.name);
        v["State"]["Pid"].as_i64().unwrap()
    }

    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// The host interface narwhal names for this container.
    pub fn host_if(&self) -> String {
        format!("nw-{}", self.short_id())
    }

    /// `docker exec NAME ARGS...`
    pub fn exec(&self, args: &[&str]) -> Command {
        let mut c = docker();
        c.args(["exec", &self.name]).args(args);
        c
    }

    /// A host program run in the container's network namespace (`nsenter
    /// -n`), e.g. the host's iproute2, which speaks JSON.
    pub fn nsenter(&self, prog: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-n", "-t", &self.pid().to_string(), "--", prog]);
        c
    }

    /// `ip -j ARGS` in the container's network namespace, parsed.
    pub fn ip_json(&self, args: &[&str]) -> Value {
        let out = ok(self.nsenter("ip").arg("-j").args(args));
        if out.trim().is_empty() {
            return Value::Array(vec![]);
        }
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j {args:?}: {e}: {out}"))
    }

    /// The container namespace's network state, as `common::snapshot`.
    pub fn snapshot(&self) -> String {
        common::snapshot_with(|args| self.ip_json(args))
    }

    /// A file under /proc/sys/net inside the container, as the container
    /// sees it.
    pub fn sysctl(&self, path: &str) -> String {
        ok(&mut self.exec(&["cat", &format!("/proc/sys/net/{path}")]))
            .trim()
            .to_string()
    }

    /// `docker stop -t 0` (the container's `sleep` ignores SIGTERM as pid 1).
    pub fn stop(&self) {
        ok(docker().args(["stop", "-t", "0", &self.name]));
        assert_eq!(self.inspect()["State"]["Running"], false);
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker()
            .args(["rm", "-f", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let mut n = live();
        *n -= 1;
        if *n == 0 {
            release_source_check();
        }
    }
}

/// The link named `ifname` in the test thread's namespace (`ip -j -d link`).
pub fn host_link(ifname: &str) -> Option<Value> {
    find_link(&common::ip_json(None, &["-d", "link", "show"]), ifname)
}

/// The entry for `ifname` in an `ip -j link`/`ip -j addr` listing.
pub fn find_link(list: &Value, ifname: &str) -> Option<Value> {
    common::find_link(list, ifname).cloned()
}

/// The interface names in an `ip -j link`/`ip -j addr` listing, in order.
pub fn link_names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap())
        .collect()
}

/// The `addr_info` entries of `link` of the given family ("inet", "inet6").
pub fn addrs(link: &Value, family: &str) -> Vec<Value> {
    link["addr_info"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|x| x["family"] == family)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `addrs` holds `local` with peer `peer`/`plen`.
pub fn has_peer_addr(addrs: &[Value], local: &str, peer: &str, plen: u64) -> bool {
    addrs
        .iter()
        .any(|a| a["local"] == local && a["address"] == peer && a["prefixlen"] == plen)
}
