//! End to end with a real Docker daemon and narwhal as its OCI runtime:
//! `docker run --runtime narwhal --net=none -e NARWHAL_IPV4=… …`.
//!
//! The daemon is the tests' own (tests/e2e/dockerd.sh), which registers
//! the runtime `narwhal` (this build's binary, `runtime --allow
//! 198.18.14.0/24,2001:db8:14::/48`). runc runs narwhal's hooks from the
//! daemon's network namespace, the machine's root namespace, so the host
//! ends land there: no private host is possible. Each test therefore owns
//! a slice of the test prefixes and first routes it `unreachable` in the
//! root namespace (removed on drop), so that nothing it sends can leave the
//! machine. Containers have unique names and are removed on drop.

mod common;
#[path = "common/docker.rs"]
mod dock;

use std::process::Output;
use std::time::Duration;

use dock::{docker, host_link, ok, Container};
use narwhal::naming;
use serde_json::Value;

/// Root, docker.io installed, daemon up with the runtime, image imported.
macro_rules! runtime_test {
    () => {
        require_root!();
        if !dock::available(&format!("{}::{}", module_path!(), line!())) {
            return;
        }
        dock::setup();
    };
}

/// The test's slice `n` of the allowed prefixes, routed `unreachable` in
/// the root namespace while it lives: IPv4 198.18.14.(32n)/27, IPv6
/// 2001:db8:14:n::/64. Container addresses come from [`Slice::v4`] and
/// [`Slice::v6`], whose more specific routes narwhal adds.
struct Slice {
    n: u8,
}

impl Slice {
    fn new(n: u8) -> Slice {
        assert!(n < 8);
        let s = Slice { n };
        for (fam, p) in s.prefixes() {
            ok(std::process::Command::new("ip").args([fam, "route", "replace", "unreachable", &p]));
        }
        s
    }

    fn prefixes(&self) -> [(&'static str, String); 2] {
        [
            ("-4", format!("198.18.14.{}/27", 32 * self.n)),
            ("-6", format!("2001:db8:14:{}::/64", self.n)),
        ]
    }

    /// Container `i` (1..=30) of this slice.
    fn v4(&self, i: u8) -> String {
        assert!((1..=30).contains(&i));
        format!("198.18.14.{}", 32 * self.n + i)
    }

    fn v6(&self, i: u8) -> String {
        let a: std::net::Ipv6Addr = format!("2001:db8:14:{}::{i:x}", self.n).parse().unwrap();
        a.to_string() // as the kernel prints it
    }
}

impl Drop for Slice {
    fn drop(&mut self) {
        for (fam, p) in self.prefixes() {
            let _ = std::process::Command::new("ip")
                .args([fam, "route", "del", "unreachable", &p])
                .status();
        }
    }
}

const PORT: &str = "8080";

/// The workload: busybox httpd bound to the container's own IPv6 and IPv4
/// addresses as its first instructions (it exits if they are not there).
fn serve(v4: &str, v6: &str) -> String {
    format!("httpd -p [{v6}]:{PORT} -h /www && exec httpd -f -p {v4}:{PORT} -h /www")
}

/// `docker run -d --runtime narwhal --net=none ARGS… IMAGE sh -c CMD` into
/// the guard `c`; the output of `docker run`.
fn run_into(c: &mut Container, args: &[&str], cmd: &str) -> Output {
    let o = common::run(
        docker()
            .args([
                "run",
                "-d",
                "--runtime",
                "narwhal",
                "--net=none",
                "--name",
                &c.name,
            ])
            .args(args)
            .args([dock::IMAGE, "sh", "-c", cmd]),
    );
    if o.status.success() {
        c.id = dock::stdout(&o).trim().to_string();
        assert_eq!(c.id.len(), 64, "docker run printed {o:?}");
    }
    o
}

/// A running container serving on `v4` and `v6`, configured by narwhal
/// from `NARWHAL_*` variables plus `env`.
fn serving(v4: &str, v6: &str, env: &[&str], extra: &[&str]) -> Container {
    let mut c = Container::named();
    let mut args = vec![
        "-e".to_string(),
        format!("NARWHAL_IPV4={v4}"),
        "-e".to_string(),
        format!("NARWHAL_IPV6={v6}"),
    ];
    for e in env {
        args.extend(["-e".to_string(), e.to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run_into(&mut c, &args, &serve(v4, v6));
    assert!(o.status.success(), "docker run: {o:?}");
    c
}

/// `busybox wget` from the root namespace.
fn wget(url: &str) -> Result<String, String> {
    let o = common::run(
        std::process::Command::new("timeout").args(["10", "busybox", "wget", "-q", "-O", "-", url]),
    );
    if o.status.success() {
        Ok(dock::stdout(&o))
    } else {
        Err(format!("wget {url}: {o:?}"))
    }
}

/// The host reaches the container's httpd on both addresses.
fn reaches(v4: &str, v6: &str) {
    for url in [
        format!("http://{v4}:{PORT}/"),
        format!("http://[{v6}]:{PORT}/"),
    ] {
        let got = common::wait_until(Duration::from_millis(10000), &format!("GET {url}"), || {
            wget(&url)
        });
        assert_eq!(got, "narwhal\n", "{url}");
    }
}

/// narwhal's host interface for a Docker container under the runtime: the
/// key is the OCI container id, Docker's full id.
fn host_if(c: &Container) -> String {
    naming::host_ifname(&c.id)
}

/// The host link is narwhal's for this container and routes both addresses.
fn assert_host_side(c: &Container, v4: &str, v6: &str) {
    let h = host_if(c);
    let link = host_link(&h).unwrap_or_else(|| panic!("no host link {h} for {}", c.name));
    assert_eq!(link["ifalias"], naming::alias(&c.id), "{link}");
    for (fam, addr) in [("-4", v4), ("-6", v6)] {
        let r = common::ip_json(None, &[fam, "route", "show", addr]);
        assert_eq!(r[0]["dev"], Value::from(h.clone()), "route to {addr}: {r}");
    }
}

/// Wait until nothing of narwhal's is left for `c` in the root namespace:
/// no host link, no routes to its addresses, no filter table.
fn assert_gone(c: &Container, v4: &str, v6: &str) {
    let h = host_if(c);
    common::wait_until(
        Duration::from_millis(30000),
        &format!("{h} to vanish"),
        || match host_link(&h) {
            None => Ok(()),
            Some(l) => Err(format!("still there: {l}")),
        },
    );
    for (fam, addr) in [("-4", v4), ("-6", v6)] {
        let r = common::ip_json(None, &[fam, "route", "show", addr]);
        assert_eq!(r, Value::Array(vec![]), "route to {addr} left behind");
    }
    let tables = common::run_ok(std::process::Command::new("nft").args(["list", "tables"]));
    assert!(!tables.contains(&format!("narwhal-{h}")), "{tables}");
}

fn started_at(c: &Container) -> String {
    c.inspect()["State"]["StartedAt"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn workload_binds_its_own_addresses_and_the_host_reaches_both() {
    runtime_test!();
    let s = Slice::new(0);
    let (v4, v6) = (s.v4(2), s.v6(2));
    let c = serving(&v4, &v6, &[], &[]);
    assert_host_side(&c, &v4, &v6);
    reaches(&v4, &v6);
    // the container holds eth0 with both addresses and nothing else but lo
    let links = c.ip_json(&["addr", "show"]);
    assert_eq!(dock::link_names(&links), ["lo", "eth0"], "{links}");
    let eth0 = dock::find_link(&links, "eth0").unwrap();
    assert!(
        dock::has_peer_addr(&dock::addrs(&eth0, "inet"), &v4, "169.254.0.1", 32),
        "{eth0}"
    );
    assert!(
        dock::has_peer_addr(&dock::addrs(&eth0, "inet6"), &v6, "fe80::1", 128),
        "{eth0}"
    );
    // the bundle carries the settings as annotations and narwhal's hooks
    let config: Value = serde_json::from_slice(&std::fs::read(c.bundle_config()).unwrap()).unwrap();
    assert_eq!(config["annotations"]["narwhal.ipv4"], v4.as_str());
    assert_eq!(config["annotations"]["narwhal.ipv6"], v6.as_str());
    let allow = dock::ALLOW.join(",");
    for stage in ["createRuntime", "poststop"] {
        let hooks = config["hooks"][stage].as_array().unwrap();
        let ours: Vec<&Value> = hooks
            .iter()
            .filter(|h| h["path"] == env!("CARGO_BIN_EXE_narwhal"))
            .collect();
        assert_eq!(ours.len(), 1, "{stage}: {hooks:?}");
        assert_eq!(
            ours[0]["args"],
            serde_json::json!(["narwhal", "hook", "--allow", allow, stage])
        );
    }
}

#[test]
fn docker_rm_f_leaves_nothing() {
    runtime_test!();
    let s = Slice::new(1);
    let (v4, v6) = (s.v4(2), s.v6(2));
    // with the filter too, which poststop must delete
    let c = serving(&v4, &v6, &["NARWHAL_PARANOID=true"], &[]);
    assert_host_side(&c, &v4, &v6);
    let h = host_if(&c);
    let tables = common::run_ok(std::process::Command::new("nft").args(["list", "tables"]));
    assert!(
        tables.contains(&format!("table netdev narwhal-{h}")),
        "{tables}"
    );
    reaches(&v4, &v6);
    ok(docker().args(["rm", "-f", &c.name]));
    assert_gone(&c, &v4, &v6);
}

#[test]
fn docker_restart_brings_the_network_back_before_the_workload() {
    runtime_test!();
    let s = Slice::new(2);
    let (v4, v6) = (s.v4(2), s.v6(2));
    let c = serving(&v4, &v6, &[], &[]);
    reaches(&v4, &v6);
    let before = started_at(&c);
    ok(docker().args(["restart", "-t", "1", &c.name]));
    assert_ne!(started_at(&c), before, "not restarted");
    // httpd bound both addresses first thing, so they were there
    assert_eq!(c.inspect()["State"]["Running"], true);
    assert_host_side(&c, &v4, &v6);
    reaches(&v4, &v6);
    ok(docker().args(["rm", "-f", &c.name]));
    assert_gone(&c, &v4, &v6);
}

#[test]
fn crash_with_restart_always_brings_the_network_back() {
    runtime_test!();
    let s = Slice::new(3);
    let (v4, v6) = (s.v4(2), s.v6(2));
    let c = serving(&v4, &v6, &[], &["--restart=always"]);
    reaches(&v4, &v6);
    let pid = c.pid();
    // the workload crashes: SIGKILL to the container's init, which this
    // test started
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    common::wait_until(
        Duration::from_millis(60000),
        "the container to run again",
        || {
            let st = c.inspect();
            // while Docker restarts it, the state may say running with
            // pid 0: wait for the new init's pid
            let new_pid = st["State"]["Pid"].as_i64().unwrap_or(0);
            let again = st["RestartCount"].as_i64() >= Some(1)
                && st["State"]["Running"] == true
                && new_pid > 0
                && new_pid != pid;
            if again {
                Ok(())
            } else {
                Err(format!("state: {}", st["State"]))
            }
        },
    );
    // one restart was enough: the first start of the workload found its
    // addresses (httpd exits otherwise, and Docker would restart it again)
    assert_eq!(c.inspect()["RestartCount"], 1);
    assert_host_side(&c, &v4, &v6);
    reaches(&v4, &v6);
    ok(docker().args(["rm", "-f", &c.name]));
    assert_gone(&c, &v4, &v6);
}

/// `config.json` with what differs between two containers of the same
/// image and command replaced: their ids and their root file systems.
fn normalised_config(c: &Container) -> Value {
    let text = std::fs::read_to_string(c.bundle_config())
        .unwrap()
        .replace(&c.id, "ID")
        .replace(c.short_id(), "ID");
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["root"]["path"] = "ROOT".into();
    v
}

#[test]
fn container_without_settings_is_untouched() {
    runtime_test!();
    // the same container under runc and under narwhal; its command mentions
    // "narwhal." so that narwhal reads the whole config
    let cmd = "echo narwhal.ipv4 >/dev/null; exec sleep 1000";
    let mut plain = Container::named();
    let o = common::run(docker().args([
        "run",
        "-d",
        "--net=none",
        "--name",
        &plain.name,
        dock::IMAGE,
        "sh",
        "-c",
        cmd,
    ]));
    assert!(o.status.success(), "{o:?}");
    plain.id = dock::stdout(&o).trim().to_string();
    let mut wrapped = Container::named();
    let o = run_into(&mut wrapped, &[], cmd);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(normalised_config(&wrapped), normalised_config(&plain));
    let links = wrapped.ip_json(&["link", "show"]);
    assert_eq!(dock::link_names(&links), ["lo"], "{links}");
    assert!(host_link(&host_if(&wrapped)).is_none());
}

/// `docker run` of a container with `env`: it must fail, and its output
/// (stderr) must hold `want`; nothing of narwhal's may be left for it.
/// Returns that output.
fn refused(env: &[&str], want: &str) -> String {
    let mut c = Container::named();
    let mut args = Vec::new();
    for e in env {
        args.extend(["-e", e]);
    }
    let o = run_into(&mut c, &args, "exec sleep 1000");
    let err = dock::stderr(&o);
    assert!(!o.status.success(), "{env:?}: docker run succeeded: {o:?}");
    assert!(err.contains(want), "{env:?}: {err}");
    assert!(err.contains("narwhal: "), "{env:?}: {err}");
    // the container never ran
    let st = ok(docker().args(["inspect", "-f", "{{.State.Status}} {{.Id}}", &c.name]));
    let (status, id) = st.trim().split_once(' ').unwrap();
    assert_eq!(status, "created", "{env:?}");
    c.id = id.to_string();
    assert!(host_link(&host_if(&c)).is_none(), "{env:?}: host link left");
    for addr in env.iter().filter_map(|e| e.split_once('=')).map(|(_, v)| v) {
        if let Ok(ip) = addr.parse::<std::net::IpAddr>() {
            let fam = if ip.is_ipv4() { "-4" } else { "-6" };
            let r = common::ip_json(None, &[fam, "route", "show", addr]);
            assert_eq!(r, Value::Array(vec![]), "{env:?}: route to {addr} left");
        }
    }
    err
}

#[test]
fn bad_settings_stop_the_container_with_the_cause() {
    runtime_test!();
    let s = Slice::new(4);
    refused(
        &[&format!("NARWHAL_IPV4={}", s.v4(2)), "NARWHAL_IPV44=x"],
        "unknown environment variable 'NARWHAL_IPV44' (known: NARWHAL_IPV4, NARWHAL_IPV6",
    );
    refused(
        &["NARWHAL_IPV4=198.18.14.300"],
        "invalid IPv4 address '198.18.14.300'",
    );
    refused(
        &[&format!("NARWHAL_IPV6={}", s.v6(2)), "NARWHAL_MTU=1000"],
        "MTU",
    );
    // the hook's own failure (an interface name the container already has)
    // shows too, and is rolled back
    let err = refused(
        &[&format!("NARWHAL_IPV4={}", s.v4(3)), "NARWHAL_INTERFACE=lo"],
        "interface lo already exists in the container namespace",
    );
    assert!(err.contains("error running hook"), "{err}");
}

#[test]
fn address_outside_the_allow_list_is_refused() {
    runtime_test!();
    // 198.18.15.0/24 and 2001:db8:15::/48 are test prefixes outside ALLOW
    let allowed = dock::ALLOW.join(",");
    for (env, bad) in [
        (
            ["NARWHAL_IPV4=198.18.15.2", "NARWHAL_IPV6=2001:db8:14:7::2"],
            "198.18.15.2",
        ),
        (
            ["NARWHAL_IPV4=198.18.14.226", "NARWHAL_IPV6=2001:db8:15::2"],
            "2001:db8:15::2",
        ),
    ] {
        refused(
            &env,
            &format!("address {bad} is not allowed (allowed prefixes: {allowed})"),
        );
    }
    // a host-side address becomes the host's own: the default, or allowed
    refused(
        &["NARWHAL_IPV4=198.18.14.227", "NARWHAL_HOST_IPV4=198.18.15.1"],
        &format!("host address 198.18.15.1 is not allowed (the default or the allowed prefixes: {allowed})"),
    );
}

#[test]
fn twenty_containers_in_parallel() {
    runtime_test!();
    let s = Slice::new(5);
    let n = 20u8;
    let containers: Vec<Container> = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..=n)
            .map(|i| {
                let (v4, v6) = (s.v4(i), s.v6(i));
                scope.spawn(move || serving(&v4, &v6, &[], &[]))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, c) in (1..=n).zip(&containers) {
        assert_host_side(c, &s.v4(i), &s.v6(i));
        reaches(&s.v4(i), &s.v6(i));
    }
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    ok(docker().args(["rm", "-f"]).args(&names));
    for (i, c) in (1..=n).zip(&containers) {
        assert_gone(c, &s.v4(i), &s.v6(i));
    }
}

/// `narwhal hook --allow` (the hooks the runtime adds, or hooks.d) refuses
/// on its own: no Docker here, a private host and a stand-in container.
#[test]
fn hook_enforces_the_allow_list_too() {
    require_root!();
    common::private_host();
    let ctr = common::NsProc::new();
    let hook = |addr: &str| {
        let state = serde_json::json!({
            "ociVersion": "1.0.2",
            "id": "allow-test",
            "status": "creating",
            "pid": ctr.pid(),
            "bundle": "/nonexistent",
            "annotations": { "narwhal.ipv4": addr },
        });
        let mut child = common::narwhal()
            .args(["hook", "--syslog-socket", "/nonexistent", "--allow"])
            .args(["198.51.100.0/24,2001:db8::/32", "createRuntime"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(state.to_string().as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let (host_before, ctr_before) = (common::snapshot(None), common::snapshot(Some(&ctr)));
    let o = hook("198.18.0.2");
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = dock::stderr(&o);
    assert!(
        err.contains(
            "narwhal: createRuntime allow-test: address 198.18.0.2 is not allowed \
             (allowed prefixes: 198.51.100.0/24,2001:db8::/32)"
        ),
        "{err}"
    );
    assert_eq!(common::snapshot(None), host_before, "host changed");
    assert_eq!(
        common::snapshot(Some(&ctr)),
        ctr_before,
        "container changed"
    );
    // an allowed address goes through
    let o = hook("198.51.100.2");
    assert!(o.status.success(), "{o:?}");
    assert!(host_link(&naming::host_ifname("allow-test")).is_some());
}
