//! Contract tests of CNI mode: the narwhal binary run with CNI's
//! environment and a network configuration on stdin, as a runtime runs a
//! plugin, inside a private "host" network namespace with `unshare -n`
//! processes as containers. The reference plugins (host-local, tuning) come
//! from Debian's containernetworking-plugins in /usr/lib/cni.
//!
//! Run as root: `cargo test --test cni`.

#[path = "common/cni.rs"]
mod cni_common;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cni_common::leases;
use common::{ip_json, private_host, run, snapshot, unique, NsProc};
use serde_json::{json, Value};

const CNI_PATH: &str = "/usr/lib/cni";
const VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
const V4: &str = "198.51.100.2";
const V6: &str = "2001:db8::2";

/// One attachment's CNI environment.
#[derive(Clone)]
struct Att {
    id: String,
    ifname: String,
    netns: Option<PathBuf>,
    args: Option<String>,
}

impl Att {
    fn new(ns: &NsProc) -> Att {
        Att {
            id: unique("ctr"),
            ifname: "eth0".into(),
            netns: Some(ns.netns()),
            args: None,
        }
    }
}

/// What a plugin answered.
struct Answer {
    ok: bool,
    json: Value,
    stderr: String,
}

/// Run `plugin` (a path) for `cmd` with `conf` on stdin.
fn exec(plugin: &Path, cmd: &str, conf: &Value, a: &Att) -> Answer {
    let mut c = Command::new("timeout");
    c.arg("30")
        .arg(plugin)
        .env_clear()
        .env("CNI_COMMAND", cmd)
        .env("CNI_CONTAINERID", &a.id)
        .env("CNI_IFNAME", &a.ifname)
        .env("CNI_PATH", CNI_PATH)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(n) = &a.netns {
        c.env("CNI_NETNS", n);
    }
    if let Some(args) = &a.args {
        c.env("CNI_ARGS", args);
    }
    let mut child = c.spawn().expect("spawn plugin");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.to_string().as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    Answer {
        ok: o.status.success(),
        json: serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn narwhal_path() -> PathBuf {
    common::narwhal().get_program().into()
}

fn cni(cmd: &str, conf: &Value, a: &Att) -> Answer {
    exec(&narwhal_path(), cmd, conf, a)
}

fn ok(cmd: &str, conf: &Value, a: &Att) -> Value {
    let r = cni(cmd, conf, a);
    assert!(r.ok, "{cmd} failed: {} {}", r.json, r.stderr);
    r.json
}

/// The error code of a failed call (and that stdout is CNI's error JSON).
fn fails(cmd: &str, conf: &Value, a: &Att) -> (u64, String) {
    let r = cni(cmd, conf, a);
    assert!(!r.ok, "{cmd} must fail: {}", r.json);
    let code = r.json["code"]
        .as_u64()
        .unwrap_or_else(|| panic!("no error JSON: {}", r.json));
    assert!(r.json["cniVersion"].is_string(), "{}", r.json);
    (code, r.json["msg"].as_str().unwrap_or_default().to_string())
}

fn conf(version: &str, net: &str, extra: Value) -> Value {
    let mut c = json!({"cniVersion": version, "name": net, "type": "narwhal"});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn with_prev(mut c: Value, prev: &Value) -> Value {
    c["prevResult"] = prev.clone();
    c
}

fn links() -> Vec<String> {
    ip_json(None, &["link", "show"])
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .collect()
}

/// The addresses of `ifname` (in `ns`, or the host) as "local peer/len".
fn addrs(ns: Option<&NsProc>, ifname: &str) -> Vec<String> {
    let v = ip_json(ns, &["addr", "show", "dev", ifname]);
    let mut out = vec![];
    for a in v[0]["addr_info"].as_array().unwrap() {
        if let Some(peer) = a["address"].as_str() {
            out.push(format!(
                "{} peer {peer}/{}",
                a["local"].as_str().unwrap(),
                a["prefixlen"]
            ));
        }
    }
    out.sort();
    out
}

fn pings(ip: &str) -> bool {
    run(Command::new("/bin/busybox").args(["ping", "-c1", "-W5", ip]))
        .status
        .success()
}

fn nw_links() -> Vec<String> {
    links()
        .into_iter()
        .filter(|l| l.starts_with("nw-"))
        .collect()
}

/// Wait until `done` holds (the kernel destroys a dead namespace's links
/// in a work queue), at most 10 s.
fn poll(done: impl Fn() -> bool, what: &str) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < end, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------

#[test]
fn version_answers_in_the_version_asked() {
    let a = Att {
        id: "x".into(),
        ifname: "eth0".into(),
        netns: None,
        args: None,
    };
    for v in VERSIONS {
        let r = ok("VERSION", &json!({"cniVersion": v}), &a);
        assert_eq!(r["cniVersion"], *v);
        assert_eq!(r["supportedVersions"], json!(VERSIONS));
    }
    // runtimes also probe with an empty or unknown version
    let r = ok("VERSION", &json!({}), &a);
    assert_eq!(r["cniVersion"], "1.1.0");
    let (code, msg) = fails("ADD", &conf("0.2.0", "n", json!({})), &a);
    assert_eq!(code, 1, "{msg}");
    assert!(msg.contains("0.2.0"), "{msg}");
}

#[test]
fn add_check_del_in_every_version() {
    require_root!();
    private_host();
    for v in VERSIONS {
        let ns = NsProc::new();
        let a = Att::new(&ns);
        let net = unique("n");
        let c = conf(
            v,
            &net,
            json!({"runtimeConfig": {"ips": [format!("{V4}/24"), format!("{V6}/64")]}}),
        );
        let r = ok("ADD", &c, &a);
        assert_eq!(r["cniVersion"], *v, "{r}");
        let ifs = r["interfaces"].as_array().unwrap();
        assert_eq!(ifs.len(), 2, "{r}");
        let host_if = ifs[0]["name"].as_str().unwrap();
        assert!(ifs[0].get("sandbox").is_none());
        assert_eq!(ifs[1]["name"], "eth0");
        assert_eq!(ifs[1]["sandbox"], ns.netns().display().to_string());
        // the MACs the result gives are the kernel's
        let hl = ip_json(None, &["link", "show", "dev", host_if]);
        assert_eq!(hl[0]["address"], ifs[0]["mac"]);
        let cl = ip_json(Some(&ns), &["link", "show", "dev", "eth0"]);
        assert_eq!(cl[0]["address"], ifs[1]["mac"]);
        let ips = r["ips"].as_array().unwrap();
        assert_eq!(ips[0]["address"], format!("{V4}/32"));
        assert_eq!(ips[0]["gateway"], "169.254.0.1");
        assert_eq!(ips[1]["address"], format!("{V6}/128"));
        assert_eq!(ips[1]["gateway"], "fe80::1");
        for ip in ips {
            assert_eq!(ip["interface"], 1);
            // 0.3.x and 0.4.0 carry "version"; 1.x dropped it
            assert_eq!(
                ip.get("version").is_some(),
                v.starts_with("0."),
                "{v}: {ip}"
            );
        }
        assert_eq!(
            r["routes"][0],
            json!({"dst": "0.0.0.0/0", "gw": "169.254.0.1"})
        );
        assert_eq!(r["routes"][1], json!({"dst": "::/0", "gw": "fe80::1"}));
        assert_eq!(
            addrs(Some(&ns), "eth0"),
            [
                format!("{V4} peer 169.254.0.1/32"),
                format!("{V6} peer fe80::1/128")
            ]
        );
        assert!(pings(V4) && pings(V6), "{v}: container unreachable");
        if *v != "0.3.0" && *v != "0.3.1" {
            ok("CHECK", &with_prev(c.clone(), &r), &a);
        } else {
            assert_eq!(fails("CHECK", &with_prev(c.clone(), &r), &a).0, 1);
        }
        ok("DEL", &with_prev(c.clone(), &r), &a);
        assert!(
            !links().contains(&host_if.to_string()),
            "{v}: {host_if} left"
        );
        let left = ip_json(Some(&ns), &["link", "show"]);
        assert_eq!(
            left.as_array().unwrap().len(),
            1,
            "{v}: container links left: {left}"
        );
        ok("DEL", &with_prev(c, &r), &a); // twice: still success
    }
}

#[test]
fn every_address_source_in_precedence_order() {
    require_root!();
    private_host();
    let v4 = |n: u8| format!("198.51.100.{n}");
    // (netconf extra, CNI_ARGS, the address that wins)
    let cases: Vec<(Value, Option<String>, String)> = vec![
        (
            json!({"runtimeConfig": {"ips": [v4(11)]}, "args": {"cni": {"ips": [v4(12)]}}, "addresses": [v4(14)]}),
            Some(format!("IgnoreUnknown=1;IP={}", v4(13))),
            v4(11),
        ),
        (
            json!({"args": {"cni": {"ips": [format!("{}/24", v4(12))]}}, "addresses": [v4(14)]}),
            Some(format!("IP={}", v4(13))),
            v4(12),
        ),
        // podman: a bare address in CNI_ARGS
        (
            json!({"addresses": [v4(14)]}),
            Some(format!("IgnoreUnknown=1;IP={}", v4(13))),
            v4(13),
        ),
        (
            json!({"addresses": [{"address": format!("{}/32", v4(14))}]}),
            None,
            v4(14),
        ),
    ];
    for (extra, args, want) in cases {
        let ns = NsProc::new();
        let mut a = Att::new(&ns);
        a.args = args;
        let c = conf("1.0.0", &unique("n"), extra);
        let r = ok("ADD", &c, &a);
        assert_eq!(r["ips"][0]["address"], format!("{want}/32"), "{c}");
        assert_eq!(
            addrs(Some(&ns), "eth0"),
            [format!("{want} peer 169.254.0.1/32")]
        );
        assert!(pings(&want));
        ok("DEL", &c, &a);
    }
    // no source at all
    let ns = NsProc::new();
    let (code, msg) = fails("ADD", &conf("1.0.0", "n", json!({})), &Att::new(&ns));
    assert_eq!(code, 7, "{msg}");
}

#[test]
fn settings_use_the_annotation_names() {
    require_root!();
    private_host();
    let ns = NsProc::new();
    let mut a = Att::new(&ns);
    a.ifname = "net1".into();
    let c = conf(
        "1.1.0",
        &unique("n"),
        json!({"addresses": [V4], "mtu": 1400, "forwarding": true, "paranoid": true,
               "host-ipv4": "198.51.100.1"}),
    );
    let r = ok("ADD", &c, &a);
    let host_if = r["interfaces"][0]["name"].as_str().unwrap().to_string();
    assert_eq!(r["ips"][0]["gateway"], "198.51.100.1");
    assert_eq!(
        ip_json(Some(&ns), &["link", "show", "dev", "net1"])[0]["mtu"],
        1400
    );
    assert_eq!(
        ip_json(None, &["link", "show", "dev", &host_if])[0]["mtu"],
        1400
    );
    let fwd =
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{host_if}/forwarding")).unwrap();
    assert_eq!(fwd.trim(), "1");
    let tables = run(Command::new("nft").args(["-j", "list", "tables", "netdev"]));
    assert!(
        String::from_utf8_lossy(&tables.stdout).contains("narwhal"),
        "no paranoid filter"
    );
    ok("CHECK", &with_prev(c.clone(), &r), &a);
    ok("DEL", &c, &a);
    let tables = run(Command::new("nft").args(["-j", "list", "tables", "netdev"]));
    assert!(
        !String::from_utf8_lossy(&tables.stdout).contains("narwhal"),
        "filter left"
    );
}

#[test]
fn malformed_and_invalid_netconfs_answer_error_json() {
    require_root!();
    private_host();
    let ns = NsProc::new();
    let a = Att::new(&ns);
    let before = snapshot(None);
    let good = |extra: Value| conf("1.0.0", "n", extra);
    let cases: Vec<(Value, u64, &str)> = vec![
        (json!("not an object"), 6, "not a JSON object"),
        (json!({"cniVersion": "1.0.0"}), 7, "no \"name\""),
        (good(json!({"addresses": [V4], "mtu": "lots"})), 7, "MTU"),
        (good(json!({"addresses": [V4], "mtu": [1]})), 7, "\"mtu\""),
        (
            good(json!({"addresses": [V4, "198.51.100.3"]})),
            7,
            "two container addresses",
        ),
        (
            good(json!({"addresses": ["198.51.100.300"]})),
            7,
            "not an IP address",
        ),
        (good(json!({"addresses": ["127.0.0.2"]})), 7, "loopback"),
        (
            good(json!({"addresses": [V4], "host-ipv6": "fe80::1"})),
            7,
            "without a container IPv6",
        ),
        (
            good(json!({"addresses": [V4], "paranoid": "maybe"})),
            7,
            "paranoid",
        ),
        (
            good(json!({"addresses": [V4], "interface": "eth1"})),
            7,
            "CNI_IFNAME",
        ),
        (
            good(json!({"addresses": [V4], "ipam": {"type": "../../bin/sh"}})),
            7,
            "ipam",
        ),
        (
            good(json!({"ipam": {"type": "no-such-ipam"}})),
            101,
            "not found",
        ),
        (
            conf("1.0.0", "bad/name", json!({"addresses": [V4]})),
            7,
            "network name",
        ),
    ];
    for (c, want, text) in cases {
        let (code, msg) = fails("ADD", &c, &a);
        assert_eq!(code, want, "{c}: {msg}");
        assert!(msg.contains(text), "{c}: '{msg}' lacks '{text}'");
    }
    // stdin that is not JSON at all
    let mut c = Command::new(narwhal_path());
    c.env("CNI_COMMAND", "ADD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"cniVersion\":")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["code"], 6, "{v}");
    // the environment
    let c = good(json!({"addresses": [V4]}));
    let mut bad = a.clone();
    bad.id = "a/b".into();
    assert_eq!(fails("ADD", &c, &bad).0, 4);
    let mut bad = a.clone();
    bad.netns = None;
    assert_eq!(fails("ADD", &c, &bad).0, 4);
    let mut bad = a.clone();
    bad.ifname = "x".repeat(16);
    assert_eq!(fails("ADD", &c, &bad).0, 4);
    let mut bad = a.clone();
    bad.netns = Some("/proc/self/ns/mnt".into());
    assert_eq!(fails("ADD", &c, &bad).0, 4);
    assert_eq!(fails("FROB", &c, &a).0, 4);
    let mut bad = a.clone();
    bad.netns = Some("/run/netns/narwhal-no-such-ns".into());
    assert_eq!(fails("ADD", &c, &bad).0, 3);
    assert_eq!(snapshot(None), before, "a failed ADD changed the host");
}

fn host_local(dir: &Path) -> Value {
    json!({"type": "host-local", "dataDir": dir,
           "ranges": [[{"subnet": "198.51.100.0/24", "rangeStart": "198.51.100.10", "rangeEnd": "198.51.100.20"}],
                      [{"subnet": "2001:db8:1::/64"}]]})
}

#[test]
fn host_local_leases_are_taken_and_released() {
    require_root!();
    private_host();
    let dir = tempfile::tempdir().unwrap();
    let net = unique("n");
    let ns = NsProc::new();
    let a = Att::new(&ns);
    let c = conf("1.0.0", &net, json!({"ipam": host_local(dir.path())}));
    let r = ok("ADD", &c, &a);
    let got = leases(dir.path(), &net);
    assert_eq!(got.len(), 2, "{got:?}");
    let v4 = r["ips"][0]["address"]
        .as_str()
        .unwrap()
        .trim_end_matches("/32")
        .to_string();
    let v6 = r["ips"][1]["address"]
        .as_str()
        .unwrap()
        .trim_end_matches("/128")
        .to_string();
    assert!(got.contains(&v4) && got.contains(&v6), "{got:?} vs {r}");
    assert_eq!(r["ips"][0]["gateway"], "169.254.0.1");
    assert!(pings(&v4) && pings(&v6));
    ok("CHECK", &with_prev(c.clone(), &r), &a);
    ok("DEL", &with_prev(c.clone(), &r), &a);
    assert!(leases(dir.path(), &net).is_empty());
    ok("DEL", &c, &a); // lease and link already gone

    // requested addresses go through IPAM, which records them as leases
    let mut c_ips = c.clone();
    c_ips["runtimeConfig"] = json!({"ips": ["198.51.100.15", "2001:db8:1::15"]});
    let mut a_env = Att::new(&ns);
    a_env.args = Some("IgnoreUnknown=1;IP=198.51.100.16".into());
    for (cf, att, want) in [(&c_ips, &a, "198.51.100.15"), (&c, &a_env, "198.51.100.16")] {
        let r = ok("ADD", cf, att);
        assert_eq!(r["ips"][0]["address"], format!("{want}/32"), "{r}");
        assert!(leases(dir.path(), &net).contains(&want.to_string()));
        ok("DEL", cf, att);
    }
    assert!(leases(dir.path(), &net).is_empty());
    let mut both = c.clone();
    both["addresses"] = json!([V4]);
    assert_eq!(fails("ADD", &both, &a).0, 7);

    // a failed ADD (the MTU is checked after IPAM answered) gives the lease back
    let bad = conf(
        "1.0.0",
        &net,
        json!({"ipam": host_local(dir.path()), "mtu": 70000}),
    );
    let before = snapshot(None);
    let (code, msg) = fails("ADD", &bad, &Att::new(&ns));
    assert_eq!(code, 7, "{msg}");
    assert!(
        leases(dir.path(), &net).is_empty(),
        "lease kept after a failed ADD"
    );
    // a kernel failure too: the host interface name is taken
    let a2 = Att::new(&ns);
    let key = format!("{net}/{}/eth0", a2.id);
    let name = narwhal::naming::host_ifname(&key);
    let peer = unique("pe");
    common::run_ok(
        Command::new("ip").args(["link", "add", &name, "type", "veth", "peer", "name", &peer]),
    );
    let (code, msg) = fails("ADD", &c, &a2);
    assert_eq!(code, 100, "{msg}");
    assert!(msg.contains(&name), "{msg}");
    assert!(
        leases(dir.path(), &net).is_empty(),
        "lease kept after a failed ADD"
    );
    common::run_ok(Command::new("ip").args(["link", "del", &name]));
    assert_eq!(snapshot(None), before);
    assert!(
        ip_json(Some(&ns), &["link", "show"])
            .as_array()
            .unwrap()
            .len()
            == 1
    );
}

#[test]
fn check_catches_drift_on_either_side() {
    require_root!();
    private_host();
    // (side, command that breaks it, what the message names)
    let breaks: Vec<(bool, Vec<&str>, &str)> = vec![
        (
            true,
            vec![
                "addr",
                "del",
                "169.254.0.1",
                "peer",
                "198.51.100.2/32",
                "dev",
                "HOST",
            ],
            "host: ",
        ),
        (true, vec!["link", "set", "HOST", "down"], "host: "),
        (
            false,
            vec!["route", "del", "default"],
            "missing: container: route add default via 169.254.0.1 dev eth0",
        ),
        (
            false,
            vec![
                "-6",
                "addr",
                "del",
                "2001:db8::2",
                "peer",
                "fe80::1/128",
                "dev",
                "eth0",
            ],
            "missing: container: addr add 2001:db8::2 peer fe80::1/128",
        ),
        (
            false,
            vec!["link", "set", "eth0", "address", "02:00:00:00:00:99"],
            "another MAC",
        ),
    ];
    for (host_side, cmd, want) in breaks {
        let ns = NsProc::new();
        let a = Att::new(&ns);
        let c = conf("1.0.0", &unique("n"), json!({"addresses": [V4, V6]}));
        let r = ok("ADD", &c, &a);
        let host_if = r["interfaces"][0]["name"].as_str().unwrap();
        ok("CHECK", &with_prev(c.clone(), &r), &a);
        let args: Vec<&str> = cmd
            .iter()
            .map(|s| if *s == "HOST" { host_if } else { s })
            .collect();
        let mut ip = if host_side {
            Command::new("ip")
        } else {
            ns.cmd("ip")
        };
        common::run_ok(ip.args(&args));
        let (code, msg) = fails("CHECK", &with_prev(c.clone(), &r), &a);
        assert_eq!(code, 102, "{msg}");
        assert!(msg.contains(want), "{cmd:?}: '{msg}' lacks '{want}'");
        ok("DEL", &c, &a);
    }
    // a prevResult that is not what narwhal made
    let ns = NsProc::new();
    let a = Att::new(&ns);
    let c = conf("1.0.0", &unique("n"), json!({"addresses": [V4]}));
    let mut r = ok("ADD", &c, &a);
    r["ips"][0]["address"] = json!("198.51.100.3/32");
    let (code, msg) = fails("CHECK", &with_prev(c.clone(), &r), &a);
    assert_eq!(code, 102, "{msg}");
    ok("DEL", &c, &a);
}

#[test]
fn del_without_netns_and_after_the_namespace_died() {
    require_root!();
    private_host();
    let dir = tempfile::tempdir().unwrap();
    let net = unique("n");
    let c = conf("1.0.0", &net, json!({"ipam": host_local(dir.path())}));
    for keep_path in [true, false] {
        let ns = NsProc::new();
        let mut a = Att::new(&ns);
        let r = ok("ADD", &c, &a);
        let host_if = r["interfaces"][0]["name"].as_str().unwrap().to_string();
        drop(ns); // the container dies: its end, and so the pair, goes
        poll(
            || !links().contains(&host_if),
            "the pair goes with the namespace",
        );
        if !keep_path {
            a.netns = None;
        }
        ok("DEL", &c, &a);
        assert!(leases(dir.path(), &net).is_empty(), "lease left");
        ok("DEL", &c, &a);
    }
    // DEL for a container narwhal never saw
    let a = Att {
        id: "never".into(),
        ifname: "eth0".into(),
        netns: None,
        args: None,
    };
    ok("DEL", &c, &a);
}

#[test]
fn gc_removes_this_networks_stale_attachments_only() {
    require_root!();
    private_host();
    let (n1, n2) = (unique("n"), unique("n"));
    let nss: Vec<NsProc> = (0..3).map(|_| NsProc::new()).collect();
    let atts: Vec<Att> = nss.iter().map(Att::new).collect();
    let c1 = conf("1.1.0", &n1, json!({"addresses": [V4]}));
    let c1b = conf("1.1.0", &n1, json!({"addresses": ["198.51.100.3"]}));
    let c2 = conf("1.1.0", &n2, json!({"addresses": ["198.51.100.4"]}));
    let h = |r: &Value| r["interfaces"][0]["name"].as_str().unwrap().to_string();
    let keep = h(&ok("ADD", &c1, &atts[0]));
    let stale = h(&ok("ADD", &c1b, &atts[1]));
    let other = h(&ok("ADD", &c2, &atts[2]));
    let mut gc = c1.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": atts[0].id, "ifname": "eth0"}]);
    let none = Att {
        id: String::new(),
        ifname: String::new(),
        netns: None,
        args: None,
    };
    ok("GC", &gc, &none);
    let now = nw_links();
    assert!(now.contains(&keep) && now.contains(&other), "{now:?}");
    assert!(!now.contains(&stale), "{now:?}");
    ok("GC", &gc, &none); // nothing left to do
                          // no list: refused, rather than taken as "nothing is valid"
    let (code, msg) = fails("GC", &c1, &none);
    assert_eq!(code, 7, "{msg}");
    assert!(nw_links().contains(&keep));
    ok("DEL", &c1, &atts[0]);
    ok("DEL", &c2, &atts[2]);
}

#[test]
fn status_says_whether_narwhal_can_work() {
    require_root!();
    private_host();
    let none = Att {
        id: String::new(),
        ifname: String::new(),
        netns: None,
        args: None,
    };
    let dir = tempfile::tempdir().unwrap();
    ok(
        "STATUS",
        &conf("1.1.0", "n", json!({"ipam": host_local(dir.path())})),
        &none,
    );
    ok("STATUS", &conf("1.1.0", "n", json!({})), &none);
    let (code, msg) = fails(
        "STATUS",
        &conf("1.1.0", "n", json!({"ipam": {"type": "no-such-ipam"}})),
        &none,
    );
    assert_eq!(code, 50, "{msg}");
}

#[test]
fn chained_with_tuning() {
    require_root!();
    private_host();
    let dir = tempfile::tempdir().unwrap();
    let ns = NsProc::new();
    let a = Att::new(&ns);
    let net = unique("n");
    // a conflist as libcni runs it: narwhal, then tuning with narwhal's result
    let c = conf("1.0.0", &net, json!({"ipam": host_local(dir.path())}));
    let r = ok("ADD", &c, &a);
    let tuning = json!({"cniVersion": "1.0.0", "name": net, "type": "tuning",
                        "allmulti": true, "prevResult": r});
    let t = exec(&Path::new(CNI_PATH).join("tuning"), "ADD", &tuning, &a);
    assert!(t.ok, "tuning: {} {}", t.json, t.stderr);
    let flags = ip_json(Some(&ns), &["link", "show", "dev", "eth0"])[0]["flags"].clone();
    assert!(
        flags.as_array().unwrap().contains(&json!("ALLMULTI")),
        "{flags}"
    );
    // CHECK along the chain with the final result, then DEL in reverse
    let fin = t.json.clone();
    ok("CHECK", &with_prev(c.clone(), &fin), &a);
    let tc = exec(
        &Path::new(CNI_PATH).join("tuning"),
        "CHECK",
        &with_prev(tuning.clone(), &fin),
        &a,
    );
    assert!(tc.ok, "tuning CHECK: {} {}", tc.json, tc.stderr);
    let td = exec(
        &Path::new(CNI_PATH).join("tuning"),
        "DEL",
        &with_prev(tuning, &fin),
        &a,
    );
    assert!(td.ok, "tuning DEL: {} {}", td.json, td.stderr);
    ok("DEL", &with_prev(c, &fin), &a);
    assert!(nw_links().is_empty() && leases(dir.path(), &net).is_empty());
    // narwhal after another plugin keeps that plugin's result first
    let prev = json!({"cniVersion": "1.0.0", "interfaces": [{"name": "dummy0"}],
                      "ips": [{"address": "198.51.100.200/24", "interface": 0}],
                      "dns": {"nameservers": ["198.51.100.53"]}});
    let c2 = with_prev(conf("1.0.0", &net, json!({"addresses": [V4]})), &prev);
    let r = ok("ADD", &c2, &a);
    assert_eq!(r["interfaces"][0]["name"], "dummy0");
    assert_eq!(r["ips"][0]["address"], "198.51.100.200/24");
    assert_eq!(r["ips"][1]["interface"], 2);
    assert_eq!(r["dns"]["nameservers"][0], "198.51.100.53");
    ok("CHECK", &with_prev(c2.clone(), &r), &a);
    ok("DEL", &c2, &a);
}

/// A conflist run the way libcni runs it: ADD through the chain, each
/// plugin getting the previous result; CHECK; DEL in reverse order.
fn run_conflist(list: &Value, a: &Att) -> Value {
    let plugin_conf = |p: &Value, prev: Option<&Value>| {
        let mut c = p.clone();
        c["cniVersion"] = list["cniVersion"].clone();
        c["name"] = list["name"].clone();
        if let Some(r) = prev {
            c["prevResult"] = r.clone();
        }
        // what a runtime passes for the capabilities the examples declare
        if p["capabilities"]["bandwidth"] == true {
            c["runtimeConfig"] =
                json!({"bandwidth": {"ingressRate": 1_000_000, "ingressBurst": 100_000}});
        }
        c
    };
    let path = |p: &Value| -> PathBuf {
        match p["type"].as_str().unwrap() {
            "narwhal" => narwhal_path(),
            t => Path::new(CNI_PATH).join(t),
        }
    };
    let plugins = list["plugins"].as_array().unwrap();
    let mut prev: Option<Value> = None;
    for p in plugins {
        let r = exec(&path(p), "ADD", &plugin_conf(p, prev.as_ref()), a);
        assert!(r.ok, "{} ADD: {} {}", p["type"], r.json, r.stderr);
        prev = Some(r.json);
    }
    let fin = prev.unwrap();
    for p in plugins {
        let r = exec(&path(p), "CHECK", &plugin_conf(p, Some(&fin)), a);
        assert!(r.ok, "{} CHECK: {} {}", p["type"], r.json, r.stderr);
    }
    for p in plugins.iter().rev() {
        let r = exec(&path(p), "DEL", &plugin_conf(p, Some(&fin)), a);
        assert!(r.ok, "{} DEL: {} {}", p["type"], r.json, r.stderr);
    }
    fin
}

#[test]
fn example_conflists_work() {
    require_root!();
    private_host();
    let dir = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cni");
    let mut n = 0;
    for e in std::fs::read_dir(examples).unwrap() {
        let p = e.unwrap().path();
        let mut list: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        // private lease store and network name
        list["name"] = json!(unique("ex"));
        for pl in list["plugins"].as_array_mut().unwrap() {
            if pl["ipam"]["type"] == "host-local" {
                pl["ipam"]["dataDir"] = json!(dir.path());
            }
        }
        let ns = NsProc::new();
        let r = run_conflist(&list, &Att::new(&ns));
        let v4 = r["ips"][0]["address"]
            .as_str()
            .unwrap()
            .trim_end_matches("/32")
            .to_string();
        assert!(
            r["ips"][0]["address"].as_str().unwrap().ends_with("/32"),
            "{}: {r}",
            p.display()
        );
        assert!(nw_links().is_empty(), "{}: links left", p.display());
        assert!(leases(dir.path(), list["name"].as_str().unwrap()).is_empty());
        assert!(!v4.is_empty());
        n += 1;
    }
    assert_eq!(n, 3);
}

/// The operator's bound in the network configuration: `allow` lists the
/// prefixes container addresses must lie in, whatever the runtime asks for
/// (CNI_ARGS, runtimeConfig); outside them ADD fails (code 7) and changes
/// nothing.
#[test]
fn allow_bounds_the_addresses_a_runtime_may_ask_for() {
    require_root!();
    private_host();
    let ns = NsProc::new();
    let before = common::snapshot(None);
    let mut a = Att::new(&ns);
    a.args = Some(format!("IgnoreUnknown=1;IP={V4}"));
    let net = unique("n");
    let bounded = conf(
        "1.0.0",
        &net,
        json!({"allow": ["198.18.0.0/15", "2001:db8::/32"]}),
    );
    let (code, msg) = fails("ADD", &bounded, &a);
    assert_eq!(code, 7, "{msg}");
    assert!(msg.contains(V4) && msg.contains("198.18.0.0/15"), "{msg}");
    assert_eq!(
        common::snapshot(None),
        before,
        "a refused ADD changed the host"
    );
    let (code, msg) = fails(
        "ADD",
        &conf("1.0.0", &net, json!({"allow": "198.51.100.0/25x"})),
        &a,
    );
    assert_eq!(code, 7, "{msg}");
    let open = conf(
        "1.0.0",
        &net,
        json!({"allow": "198.51.100.0/24, 2001:db8::/32"}),
    );
    ok("ADD", &open, &a);
    ok("DEL", &open, &a);
}
