//! End to end with a real Docker daemon: `narwhal CONTAINER` and `narwhal
//! remove CONTAINER` against containers started with `--net=none`.
//!
//! The daemon is the tests' own (tests/e2e/dockerd.sh: socket
//! /run/narwhal-test/docker.sock, data root /var/lib/narwhal-test-docker),
//! started on first use and left running; `tests/e2e/dockerd.sh stop` stops
//! it. Each test thread then moves into a private network namespace (the
//! "host"): narwhal reaches dockerd through the socket file, which no
//! network namespace affects, and the host ends of the veth pairs land in
//! the private namespace. Containers have unique names and are removed on
//! drop, also when a test fails.

mod common;
#[path = "common/docker.rs"]
mod dock;

use std::time::Duration;

use common::wait_until;
use dock::{addrs, fails, find_link, has_peer_addr, host_link, narwhal, ok, Container};
use serde_json::Value;

/// Root, docker.io installed, daemon up, image imported, private host.
macro_rules! docker_test {
    () => {
        require_root!();
        if !dock::available(&format!("{}::{}", module_path!(), line!())) {
            return;
        }
        dock::setup();
        common::private_host();
    };
}

/// Every link of the private host other than `lo`, by name.
fn host_links() -> Vec<String> {
    common::link_names(None)
        .into_iter()
        .filter(|n| n != "lo")
        .collect()
}

/// Wait until both ends report carrier. The kernel publishes a veth's
/// carrier (operstate UP, no NO-CARRIER flag) asynchronously, up to about a
/// second after the link came up, though packets flow at once; snapshots
/// taken in that window differ from later ones in exactly these fields.
fn settled(c: &Container) {
    let h = c.host_if();
    wait_until(
        Duration::from_secs(6),
        "both ends to report carrier",
        || {
            let host = host_link(&h).ok_or("no host link")?;
            let ctr = find_link(&c.ip_json(&["link", "show"]), "eth0").ok_or("no eth0")?;
            for l in [&host, &ctr] {
                if l["operstate"] != "UP" || l["flags"].to_string().contains("NO-CARRIER") {
                    return Err(format!("not yet: {l}"));
                }
            }
            Ok(())
        },
    );
}

fn route<'a>(routes: &'a Value, dst: &str) -> Option<&'a Value> {
    routes.as_array().unwrap().iter().find(|r| r["dst"] == dst)
}

/// Assert the complete narwhal configuration of `c` with `v4`/`v6`, as a
/// user would read it back with `ip`.
fn assert_configured(c: &Container, v4: &str, v6: &str) {
    let h = c.host_if();
    // host end: nw-<short id>, a veth marked as narwhal's, up, ARP off
    assert_eq!(
        host_links(),
        vec![h.clone()],
        "the host holds narwhal's link and nothing else"
    );
    let link = host_link(&h).unwrap();
    assert_eq!(link["linkinfo"]["info_kind"], "veth", "{link}");
    assert_eq!(
        link["ifalias"],
        format!("narwhal:{}", c.short_id()),
        "{link}"
    );
    let flags = link["flags"].to_string();
    assert!(
        flags.contains("\"UP\"") && flags.contains("\"NOARP\""),
        "{link}"
    );
    let host_mac = link["address"].as_str().unwrap().to_string();

    let a = find_link(&common::ip_json(None, &["addr", "show"]), &h).unwrap();
    assert!(
        has_peer_addr(&addrs(&a, "inet"), "169.254.0.1", v4, 32),
        "host: {a}"
    );
    assert!(
        has_peer_addr(&addrs(&a, "inet6"), "fe80::1", v6, 128),
        "host: {a}"
    );
    let r4 = common::ip_json(None, &["-4", "route", "show"]);
    assert_eq!(
        route(&r4, v4).map(|r| &r["dev"]),
        Some(&Value::from(h.clone())),
        "host: {r4}"
    );
    let r6 = common::ip_json(None, &["-6", "route", "show"]);
    assert_eq!(
        route(&r6, v6).map(|r| &r["dev"]),
        Some(&Value::from(h.clone())),
        "host: {r6}"
    );

    // container end: eth0 with both addresses, default routes via the host
    let links = c.ip_json(&["-d", "link", "show"]);
    let eth0 = find_link(&links, "eth0").expect("eth0 in the container");
    assert_eq!(eth0["linkinfo"]["info_kind"], "veth", "{eth0}");
    let flags = eth0["flags"].to_string();
    assert!(
        flags.contains("\"UP\"") && flags.contains("\"NOARP\""),
        "{eth0}"
    );
    let a = find_link(&c.ip_json(&["addr", "show"]), "eth0").unwrap();
    assert!(
        has_peer_addr(&addrs(&a, "inet"), v4, "169.254.0.1", 32),
        "container: {a}"
    );
    assert!(
        has_peer_addr(&addrs(&a, "inet6"), v6, "fe80::1", 128),
        "container: {a}"
    );
    let r4 = c.ip_json(&["-4", "route", "show"]);
    let d =
        route(&r4, "default").unwrap_or_else(|| panic!("container: no IPv4 default route: {r4}"));
    assert_eq!(
        (&d["gateway"], &d["dev"]),
        (&Value::from("169.254.0.1"), &Value::from("eth0")),
        "{r4}"
    );
    let r6 = c.ip_json(&["-6", "route", "show"]);
    let d =
        route(&r6, "default").unwrap_or_else(|| panic!("container: no IPv6 default route: {r6}"));
    assert_eq!(
        (&d["gateway"], &d["dev"]),
        (&Value::from("fe80::1"), &Value::from("eth0")),
        "{r6}"
    );
    // no ARP/NDP: the host's addresses have permanent entries
    let neigh = c.ip_json(&["neigh", "show", "dev", "eth0"]);
    for gw in ["169.254.0.1", "fe80::1"] {
        let n = neigh.as_array().unwrap().iter().find(|n| n["dst"] == gw);
        let n = n.unwrap_or_else(|| panic!("container: no neighbour entry for {gw}: {neigh}"));
        assert_eq!(n["lladdr"], host_mac.as_str(), "{n}");
        assert!(n["state"].to_string().contains("PERMANENT"), "{n}");
    }

    // Docker disabled IPv6 for --net=none; narwhal enabled it on eth0 only
    assert_eq!(c.sysctl("ipv6/conf/eth0/disable_ipv6"), "0");
    assert_eq!(c.sysctl("ipv6/conf/default/disable_ipv6"), "1");
}

#[test]
fn setup_by_name_configures_both_ends() {
    docker_test!();
    let c = Container::run();
    // what Docker gives a --net=none container
    assert!(find_link(&c.ip_json(&["link", "show"]), "eth0").is_none());
    assert_eq!(c.sysctl("ipv6/conf/default/disable_ipv6"), "1");

    let o = common::run(narwhal().args(["-4", "198.51.100.11", "-6", "2001:db8::11", &c.name]));
    assert!(o.status.success(), "{o:?}");
    assert_eq!(dock::stdout(&o), "");
    assert_eq!(dock::stderr(&o), "");
    assert_configured(&c, "198.51.100.11", "2001:db8::11");
}

const PORT: &str = "8080";

/// `busybox wget` from the host (the test thread's namespace).
fn host_wget(url: &str) -> Result<String, String> {
    let o = common::run(
        std::process::Command::new("timeout").args(["10", "busybox", "wget", "-q", "-O", "-", url]),
    );
    if o.status.success() {
        Ok(dock::stdout(&o))
    } else {
        Err(format!("wget {url} from the host: {o:?}"))
    }
}

/// `wget` inside the container.
fn container_wget(c: &Container, url: &str) -> Result<String, String> {
    let o = common::run(&mut c.exec(&["timeout", "10", "wget", "-q", "-O", "-", url]));
    if o.status.success() {
        Ok(dock::stdout(&o))
    } else {
        Err(format!("wget {url} in the container: {o:?}"))
    }
}

#[test]
fn tcp_both_ways_over_ipv4_and_ipv6() {
    docker_test!();
    let c = Container::run();
    let (v4, v6) = ("198.51.100.12", "2001:db8::12");
    ok(narwhal().args(["-4", v4, "-6", v6, &c.name]));
    let h = c.host_if();

    // host -> container: busybox httpd in the container on each address
    for addr in [v4.to_string(), format!("[{v6}]")] {
        ok(&mut c.exec(&["httpd", "-p", &format!("{addr}:{PORT}"), "-h", "/www"]));
        let url = format!("http://{addr}:{PORT}/");
        let got = wait_until(Duration::from_secs(10), &format!("GET {url}"), || {
            host_wget(&url)
        });
        assert_eq!(got, "narwhal\n", "{url}");
    }

    // container -> host: httpd on the host end's addresses
    let www = common::temp_dir("docker");
    let token = format!("host side {}\n", common::unique("t"));
    std::fs::write(www.path().join("index.html"), &token).unwrap();
    let mut servers = Vec::new();
    for bind in ["169.254.0.1".to_string(), format!("[fe80::1%{h}]")] {
        let child = std::process::Command::new("busybox")
            .args(["httpd", "-f", "-p", &format!("{bind}:{PORT}"), "-h"])
            .arg(www.path())
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        servers.push(common::KillOnDrop(child));
    }
    for url in [
        format!("http://169.254.0.1:{PORT}/"),
        format!("http://[fe80::1%eth0]:{PORT}/"),
    ] {
        let got = wait_until(Duration::from_secs(10), &format!("GET {url}"), || {
            container_wget(&c, &url)
        });
        assert_eq!(got, token, "{url}");
    }
    // the servers are still ours (not some other process answering)
    for s in &mut servers {
        assert!(s.0.try_wait().unwrap().is_none(), "host httpd exited early");
    }
}

#[test]
fn remove_by_name_then_nothing_to_remove() {
    docker_test!();
    let c = Container::run();
    let host_before = common::snapshot(None);
    let ctr_before = c.snapshot();
    ok(narwhal().args(["-4", "198.51.100.13", "-6", "2001:db8::13", &c.name]));
    let h = c.host_if();
    assert!(host_link(&h).is_some());

    let o = common::run(narwhal().args(["remove", &c.name]));
    assert!(o.status.success(), "{o:?}");
    assert_eq!(dock::stdout(&o), format!("removed {h}\n"));
    assert!(host_link(&h).is_none(), "{h} is still there");
    assert!(
        find_link(&c.ip_json(&["link", "show"]), "eth0").is_none(),
        "eth0 went with its peer"
    );
    assert_eq!(
        common::snapshot(None),
        host_before,
        "host back to how it was"
    );
    assert_eq!(c.snapshot(), ctr_before, "container back to how it was");

    let o = common::run(narwhal().args(["remove", &c.name]));
    assert!(o.status.success(), "second remove: {o:?}");
    let out = dock::stdout(&o);
    assert!(
        out.starts_with("nothing to remove") && out.contains(&h),
        "{out}"
    );
    assert_eq!(common::snapshot(None), host_before);
}

#[test]
fn by_full_id_and_by_short_id() {
    docker_test!();
    let before = common::snapshot(None);
    let full = Container::run();
    let short = Container::run();
    ok(narwhal().args(["-4", "198.51.100.14", &full.id]));
    ok(narwhal().args([
        "-4",
        "198.51.100.15",
        "-6",
        "2001:db8::15",
        short.short_id(),
    ]));

    let mut names = host_links();
    names.sort();
    let mut want = vec![full.host_if(), short.host_if()];
    want.sort();
    assert_eq!(names, want);
    for (c, v4) in [(&full, "198.51.100.14"), (&short, "198.51.100.15")] {
        let link = host_link(&c.host_if()).unwrap();
        assert_eq!(link["ifalias"], format!("narwhal:{}", c.short_id()));
        let a = find_link(&c.ip_json(&["addr", "show"]), "eth0").unwrap();
        assert!(
            has_peer_addr(&addrs(&a, "inet"), v4, "169.254.0.1", 32),
            "{a}"
        );
    }
    // IPv4 only: IPv6 stays off on both ends
    assert_eq!(full.sysctl("ipv6/conf/eth0/disable_ipv6"), "1");
    assert!(addrs(
        &find_link(&common::ip_json(None, &["addr", "show"]), &full.host_if()).unwrap(),
        "inet6"
    )
    .is_empty());

    let o = common::run(narwhal().args(["remove", &full.id]));
    assert_eq!(
        dock::stdout(&o),
        format!("removed {}\n", full.host_if()),
        "{o:?}"
    );
    let o = common::run(narwhal().args(["remove", short.short_id()]));
    assert_eq!(
        dock::stdout(&o),
        format!("removed {}\n", short.host_if()),
        "{o:?}"
    );
    assert_eq!(common::snapshot(None), before);
}

#[test]
fn stopped_container_is_refused_and_host_unchanged() {
    docker_test!();
    let c = Container::run();
    c.stop();
    let before = common::snapshot(None);
    let err = fails(narwhal().args(["-4", "198.51.100.16", "-6", "2001:db8::16", &c.name]));
    assert!(
        err.contains(&format!("Docker container '{}' is not running", c.name)),
        "{err}"
    );
    assert_eq!(common::snapshot(None), before, "host changed");
}

#[test]
fn unknown_container_is_refused() {
    docker_test!();
    let name = format!("narwhal-test-{}", common::unique("none"));
    let before = common::snapshot(None);
    let err = fails(narwhal().args(["-4", "198.51.100.17", &name]));
    assert!(
        err.contains(&format!("no such Docker container '{name}'")),
        "{err}"
    );
    let err = fails(narwhal().args(["remove", &name]));
    assert!(
        err.contains(&format!("no such Docker container '{name}'")),
        "{err}"
    );
    assert_eq!(common::snapshot(None), before, "host changed");
}

#[test]
fn container_with_an_eth0_is_refused_with_net_none_hint() {
    docker_test!();
    // a container whose namespace already has an eth0, as a container on a
    // Docker network would
    let c = Container::run();
    ok(c.nsenter("ip").args([
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "name",
        "eth0-peer",
    ]));
    let (host_before, ctr_before) = (common::snapshot(None), c.snapshot());
    let err = fails(narwhal().args(["-4", "198.51.100.18", "-6", "2001:db8::18", &c.name]));
    assert!(
        err.contains(&format!("set up Docker container {}", c.name)),
        "{err}"
    );
    assert!(
        err.contains("interface eth0 already exists in the container namespace"),
        "{err}"
    );
    assert!(err.contains("--net=none"), "{err}");
    assert_eq!(common::snapshot(None), host_before, "host changed");
    assert_eq!(c.snapshot(), ctr_before, "container changed");
}

#[test]
fn second_setup_of_configured_container_is_refused() {
    docker_test!();
    let c = Container::run();
    let (v4, v6) = ("198.51.100.19", "2001:db8::19");
    ok(narwhal().args(["-4", v4, "-6", v6, &c.name]));
    settled(&c);
    let (host_before, ctr_before) = (common::snapshot(None), c.snapshot());

    // same key: the host interface exists, and is narwhal's for this container
    let err = fails(narwhal().args(["-4", "198.51.100.20", &c.name]));
    assert!(
        err.contains(&format!(
            "host interface {} already exists in the host namespace (narwhal's, for '{}'",
            c.host_if(),
            c.short_id()
        )),
        "{err}"
    );
    // another host interface name: the container's eth0 is in the way
    let other = common::unique("nwx");
    let err = fails(narwhal().args(["--host-interface", &other, "-4", "198.51.100.20", &c.name]));
    assert!(
        err.contains("interface eth0 already exists in the container namespace"),
        "{err}"
    );
    assert!(err.contains("--net=none"), "{err}");

    assert_eq!(common::snapshot(None), host_before, "host changed");
    assert_eq!(c.snapshot(), ctr_before, "container changed");
    assert_configured(&c, v4, v6);
}

#[test]
fn docker_stop_takes_the_host_link_along() {
    docker_test!();
    let before = common::snapshot(None);
    let c = Container::run();
    ok(narwhal().args(["-4", "198.51.100.21", "-6", "2001:db8::21", &c.name]));
    let h = c.host_if();
    assert!(host_link(&h).is_some());

    c.stop();
    // the kernel tears a dead namespace down asynchronously: wait for it
    wait_until(
        Duration::from_secs(60),
        &format!("{h} to vanish after docker stop"),
        || match host_link(&h) {
            None => Ok(()),
            Some(l) => Err(format!("still there: {l}")),
        },
    );
    assert_eq!(common::snapshot(None), before, "host back to how it was");

    let o = common::run(narwhal().args(["remove", &c.name]));
    assert!(o.status.success(), "{o:?}");
    let out = dock::stdout(&o);
    assert!(
        out.starts_with("nothing to remove") && out.contains("not running"),
        "{out}"
    );
}

/// `docker rm -f web; narwhal remove web`: the link went with the
/// container, the `--paranoid` filter did not; `remove` finds it by the
/// name its mark carries and removes it.
#[test]
fn remove_by_name_after_docker_rm_takes_the_filter() {
    docker_test!();
    let c = Container::run();
    let nft_before = common::run_ok(std::process::Command::new("nft").args(["list", "tables"]));
    ok(narwhal().args(["--paranoid", "-4", "198.51.100.19", &c.name]));
    let h = c.host_if();
    let table = format!("narwhal-{h}");
    let tables = || common::run_ok(std::process::Command::new("nft").args(["list", "tables"]));
    assert!(tables().contains(&table), "{}", tables());
    ok(dock::docker().args(["rm", "-f", &c.name]));
    wait_until(
        Duration::from_secs(60),
        &format!("{h} to vanish after docker rm"),
        || host_link(&h).is_none(),
    );
    assert!(
        tables().contains(&table),
        "the filter outlives the container"
    );
    let o = common::run(narwhal().args(["remove", &c.name]));
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        dock::stdout(&o),
        format!("removed filter {table} ({h} was already gone)\n")
    );
    assert!(!tables().contains(&table), "{}", tables());
    let after = tables();
    assert_eq!(
        after
            .lines()
            .filter(|l| !l.contains("inet narwhal"))
            .collect::<Vec<_>>(),
        nft_before
            .lines()
            .filter(|l| !l.contains("inet narwhal"))
            .collect::<Vec<_>>()
    );
    // a name nothing is left for: says what to type
    let err = fails(narwhal().args(["remove", &c.name]));
    assert!(
        err.contains("narwhal remove --host-interface IFACE"),
        "{err}"
    );
}
