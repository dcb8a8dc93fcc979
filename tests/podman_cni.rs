//! End to end: podman 4.3 with its CNI backend runs narwhal as the plugin
//! of a conflist (host-local IPAM) from a private containers.conf, with
//! private storage, in a private "host" network namespace. The container's
//! first command binds its own addresses, so it only starts if the network
//! was there first; the host reaches both; `podman rm` leaves nothing.
//!
//! podman runs runc here: runc accepts this machine's hybrid cgroup layout
//! without the private mount namespace crun needs, which would hide
//! podman's /run/netns mounts from the next podman command.

#[path = "common/cni.rs"]
mod cni_common;
mod common;
#[path = "common/runtime.rs"]
mod rt;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cni_common::leases;
use serde_json::json;

const V4: &str = "198.51.100.30";
const V6: &str = "2001:db8::30";

/// podman with the test's private configuration and storage.
fn podman(dir: &Path) -> Command {
    let mut c = Command::new("timeout");
    c.arg("120").arg("podman");
    c.args(rt::podman_private_args(dir))
        .args(["--runtime", "runc"]);
    c.env("CONTAINERS_CONF", dir.join("containers.conf"));
    c
}

/// Removes the container on drop, also when the test fails.
struct Ctr<'a> {
    dir: &'a Path,
    name: String,
}

impl Drop for Ctr<'_> {
    fn drop(&mut self) {
        let _ = podman(self.dir)
            .args(["rm", "-f", "-t", "0", &self.name])
            .output();
    }
}

fn netdev_tables() -> String {
    common::run_ok(Command::new("nft").args(["-j", "list", "tables", "netdev"]))
}

#[test]
fn podman_cni_backend_runs_narwhal() {
    require_root!();
    common::private_host();
    let before = common::snapshot(None);
    let tables_before = netdev_tables();
    let tmp = common::temp_dir("pc");
    let dir = tmp.path();
    let net = common::unique("nwt");
    for d in ["net", "bin", "leases"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_narwhal"), dir.join("bin/narwhal")).unwrap();
    std::fs::write(
        dir.join("containers.conf"),
        format!(
            "[network]\nnetwork_backend = \"cni\"\nnetwork_config_dir = \"{d}/net\"\n\
             cni_plugin_dirs = [\"{d}/bin\", \"/usr/lib/cni\"]\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let conflist = json!({"cniVersion": "1.0.0", "name": net, "plugins": [{
        "type": "narwhal", "paranoid": true, "capabilities": {"ips": true},
        "ipam": {"type": "host-local", "dataDir": dir.join("leases"),
                 "ranges": [[{"subnet": "198.51.100.0/24"}], [{"subnet": "2001:db8::/64"}]]}}]});
    std::fs::write(
        dir.join("net").join(format!("{net}.conflist")),
        conflist.to_string(),
    )
    .unwrap();
    let rootfs = dir.join("rootfs");
    common::run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(common::busybox_rootfs())
            .arg(&rootfs),
    );

    let name = common::unique("nwc");
    let ctr = Ctr {
        dir,
        name: name.clone(),
    };
    let script = rt::serve(&[rt::http_addr(V4), rt::http_addr(V6)]);
    common::run_ok(
        podman(dir)
            .args([
                "run",
                "-d",
                "--name",
                &name,
                "--network",
                &net,
                "--ip",
                V4,
                "--ip6",
                V6,
            ])
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=4096:4096",
            ])
            .arg("--rootfs")
            .arg(&rootfs)
            .args(["sh", "-c", &script]),
    );
    // the workload bound both addresses at once, or it has exited (41)
    let start = Instant::now();
    let reached = loop {
        let r = (rt::fetch(V4), rt::fetch(V6));
        if let (Ok(a), Ok(b)) = &r {
            break (a.clone(), b.clone());
        }
        let state = common::run_ok(podman(dir).args(["inspect", "-f", "{{.State.Status}}", &name]));
        assert!(
            state.trim() == "running" && start.elapsed() < Duration::from_secs(60),
            "container {} ({}): {r:?}; logs: {}",
            name,
            state.trim(),
            common::run_ok(podman(dir).args(["logs", &name]))
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(reached, ("narwhal\n".to_string(), "narwhal\n".to_string()));
    assert_eq!(
        leases(&dir.join("leases"), &net),
        [V4.to_string(), V6.to_string()]
    );
    let links = rt::nw_links();
    assert_eq!(links.len(), 1, "{links:?}");
    assert!(netdev_tables().contains("narwhal"), "no paranoid filter");

    common::run_ok(podman(dir).args(["rm", "-f", "-t", "0", &name]));
    drop(ctr);
    assert!(
        rt::nw_links().is_empty(),
        "links left: {:?}",
        rt::nw_links()
    );
    assert!(
        leases(&dir.join("leases"), &net).is_empty(),
        "leases left: {:?}",
        leases(&dir.join("leases"), &net)
    );
    assert_eq!(netdev_tables(), tables_before, "filters left");
    let after = common::snapshot(None);
    assert_eq!(
        after,
        before,
        "{}",
        common::first_difference(&before, &after)
    );
}
