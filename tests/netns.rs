//! Privileged integration tests of the `narwhal` command line against the
//! real kernel: each test gives its thread a private "host" network
//! namespace and uses `unshare -n` processes as containers, runs the
//! narwhal binary with `--netns`/`--pid`, and reads the result back with
//! `ip -j`, /proc/sys and real TCP exchanges (busybox nc).
//!
//! Run as root: `cargo test --test netns`.

mod common;

use common::{
    failed, ip_json, link_names, private_host, run, run_narwhal, run_ok, snapshot, succeeded as ok,
    unique, KillOnDrop, NsProc, LIMIT,
};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::IpAddr;
use std::process::{Child, ChildStdin, Command, Output, Stdio};

const V4: &str = "198.51.100.2";
const V6: &str = "2001:db8::2";
const HOST_V4: &str = "169.254.0.1";
const HOST_V6: &str = "fe80::1";

// ---------------------------------------------------------------------------
// helpers: running narwhal

/// Run narwhal with `args` (under `timeout`), with extra environment.
fn nw_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    run_narwhal(args, None, env)
}

fn nw(args: &[&str]) -> Output {
    nw_env(args, &[])
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn netns_arg(c: &NsProc) -> String {
    c.netns().to_str().unwrap().to_string()
}

/// `narwhal --netns /proc/PID/ns/net ARGS`, must succeed; returns the
/// trace once both ends have settled.
fn up(c: &NsProc, args: &[&str]) -> String {
    let ns = netns_arg(c);
    let mut a = vec!["--netns", ns.as_str()];
    a.extend_from_slice(args);
    let trace = ok(&nw(&a));
    let opt = |name: &str| {
        args.iter()
            .position(|x| *x == name)
            .map(|i| args[i + 1].to_string())
    };
    let hif = opt("--host-interface").unwrap_or_else(|| host_if(c));
    let cif = opt("-i").unwrap_or_else(|| "eth0".into());
    settle(c, &hif, &cif);
    trace
}

/// Wait until the kernel reports both ends of the pair running (carrier
/// and operstate follow `link set up` asynchronously), so that later
/// snapshots compare a stable state.
fn settle(c: &NsProc, hif: &str, cif: &str) {
    wait_for(&format!("{hif} and {cif} to be running"), || {
        link(None, hif)["operstate"] == "UP" && link(Some(c), cif)["operstate"] == "UP"
    });
}

fn host_if(c: &NsProc) -> String {
    format!("nw-{}", c.pid())
}

// ---------------------------------------------------------------------------
// helpers: reading state back

/// A command in `ns` (None: the test thread's private host).
fn cmd_in(ns: Option<&NsProc>, prog: &str) -> Command {
    match ns {
        Some(n) => n.cmd(prog),
        None => Command::new(prog),
    }
}

/// `ip -j -d link show dev DEV`.
fn link(ns: Option<&NsProc>, dev: &str) -> Value {
    let v = ip_json(ns, &["-d", "link", "show", "dev", dev]);
    v[0].clone()
}

fn has_link(ns: Option<&NsProc>, dev: &str) -> bool {
    link_names(ns).iter().any(|n| n == dev)
}

fn flags(l: &Value) -> Vec<String> {
    l["flags"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect()
}

fn has_flag(l: &Value, f: &str) -> bool {
    flags(l).iter().any(|x| x == f)
}

fn mac(ns: Option<&NsProc>, dev: &str) -> String {
    link(ns, dev)["address"].as_str().unwrap().to_string()
}

/// One address as `ip -j addr` shows it: (family, local, peer, prefixlen, scope).
type Addr = (String, String, String, u64, String);

fn a(family: &str, local: &str, peer: &str, plen: u64, scope: &str) -> Addr {
    (family.into(), local.into(), peer.into(), plen, scope.into())
}

/// Every address on `dev`, sorted.
fn addrs(ns: Option<&NsProc>, dev: &str) -> Vec<Addr> {
    let v = ip_json(ns, &["addr", "show", "dev", dev]);
    let mut r: Vec<Addr> = v[0]["addr_info"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap_or("").to_string();
            (
                s("family"),
                s("local"),
                s("address"),
                i["prefixlen"].as_u64().unwrap(),
                s("scope"),
            )
        })
        .collect();
    r.sort();
    r
}

fn sorted(mut v: Vec<Addr>) -> Vec<Addr> {
    v.sort();
    v
}

/// Routes of family `fam` ("-4"/"-6") on `dev`.
fn routes(ns: Option<&NsProc>, fam: &str, dev: &str) -> Vec<Value> {
    ip_json(ns, &[fam, "route", "show", "dev", dev])
        .as_array()
        .unwrap()
        .clone()
}

/// Whether `rs` holds a route to `dst` ("default" or an address) via `gw`.
fn has_route(rs: &[Value], dst: &str, gw: Option<&str>) -> bool {
    rs.iter()
        .any(|r| r["dst"].as_str() == Some(dst) && r["gateway"].as_str() == gw)
}

/// Every neighbour entry in `ns` (`nud all`): (dst, dev, lladdr, state).
fn neighs(ns: Option<&NsProc>) -> Vec<(String, String, String, String)> {
    let v = ip_json(ns, &["neigh", "show", "nud", "all"]);
    let mut r: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let s = |k: &str| n[k].as_str().unwrap_or("").to_string();
            let st: Vec<&str> = n["state"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                .unwrap_or_default();
            (s("dst"), s("dev"), s("lladdr"), st.join(","))
        })
        .collect();
    r.sort();
    r
}

/// The unicast neighbour entries of `ns` are exactly `want` (dst, dev,
/// lladdr), all PERMANENT: nothing was learned by ARP/NDP (no INCOMPLETE,
/// REACHABLE, STALE, ... and no NOARP guesses). Multicast entries (NOARP,
/// computed from the group address) are allowed.
fn assert_only_permanent(ns: Option<&NsProc>, want: &[(&str, &str, &str)]) {
    assert_neighbours(ns, None, want)
}

/// [`assert_only_permanent`] for the entries on `only_dev` (all if None).
fn assert_neighbours(ns: Option<&NsProc>, only_dev: Option<&str>, want: &[(&str, &str, &str)]) {
    let all = neighs(ns);
    let mut unicast = Vec::new();
    for (dst, dev, lladdr, state) in &all {
        if only_dev.is_some_and(|d| d != dev) {
            continue;
        }
        let ip: IpAddr = dst.parse().unwrap_or_else(|_| panic!("neighbour {dst}"));
        if ip.is_multicast() {
            assert_eq!(state, "NOARP", "{all:?}");
            continue;
        }
        unicast.push((dst.clone(), dev.clone(), lladdr.clone(), state.clone()));
    }
    let mut want: Vec<_> = want
        .iter()
        .map(|(d, i, m)| {
            (
                d.to_string(),
                i.to_string(),
                m.to_string(),
                "PERMANENT".to_string(),
            )
        })
        .collect();
    want.sort();
    unicast.sort();
    assert_eq!(unicast, want, "neighbour table of {}", side_name(ns));
}

fn side_name(ns: Option<&NsProc>) -> String {
    match ns {
        None => "host".into(),
        Some(n) => format!("container {}", n.pid()),
    }
}

/// `/proc/sys/KEY` read from inside `ns` (KEY like `net/ipv6/conf/eth0/autoconf`).
fn sysctl(ns: Option<&NsProc>, key: &str) -> String {
    run_ok(cmd_in(ns, "cat").arg(format!("/proc/sys/{key}")))
        .trim()
        .to_string()
}

fn sysctl_if(ns: Option<&NsProc>, fam: u8, dev: &str, name: &str) -> String {
    sysctl(ns, &format!("net/ipv{fam}/conf/{dev}/{name}"))
}

fn sysctl_set(ns: Option<&NsProc>, key: &str, value: &str) {
    run_ok(cmd_in(ns, "sh").args(["-c", &format!("echo {value} > /proc/sys/{key}")]));
}

/// A link that is not a veth, for name clashes: `dummy` when the kernel
/// has it, else `bridge` (left down). Returns the kind used.
fn add_foreign_link(ns: Option<&NsProc>, name: &str) -> String {
    for kind in ["dummy", "bridge"] {
        let o = run(cmd_in(ns, "ip").args(["link", "add", name, "type", kind]));
        if o.status.success() {
            return kind.to_string();
        }
    }
    panic!("cannot create a dummy or bridge link {name}");
}

/// Wait (bounded) until `f` holds.
fn wait_for(what: &str, f: impl FnMut() -> bool) {
    common::wait_until(common::WAIT, what, f)
}

// ---------------------------------------------------------------------------
// helpers: TCP

/// A `busybox nc` process in `ns`, with stdin/stdout piped.
fn nc(ns: Option<&NsProc>, args: &[&str]) -> Child {
    cmd_in(ns, "timeout")
        .args([LIMIT, "busybox", "nc"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn busybox nc")
}

fn send(w: &mut ChildStdin, s: &str) {
    w.write_all(s.as_bytes()).unwrap();
    w.flush().unwrap();
}

/// A TCP round trip: a listener on `port` in `server`, a client in `client`
/// connecting to `dst`. The client sends a request; once the server has
/// received it, the server answers and closes. Both payloads are checked.
fn tcp_round_trip(server: Option<&NsProc>, client: Option<&NsProc>, dst: &str, port: u16) {
    let p = port.to_string();
    let what = format!(
        "{} -> {} [{dst}]:{port}",
        side_name(client),
        side_name(server)
    );
    let request = format!("request from {} to {dst}\n", side_name(client));
    let reply = format!("reply from {} at {dst}\n", side_name(server));

    let mut srv = nc(server, &["-l", "-p", &p]);
    wait_for(&format!("listener on {port}"), || {
        !run_ok(cmd_in(server, "ss").args(["-Hltn", "sport", "=", &format!(":{port}")]))
            .trim()
            .is_empty()
    });
    let mut cli = nc(client, &[dst, &p]);
    let mut cli_in = cli.stdin.take().unwrap();
    send(&mut cli_in, &request);

    let mut srv_out = BufReader::new(srv.stdout.take().unwrap());
    let mut got = String::new();
    srv_out.read_line(&mut got).unwrap();
    if got != request {
        let mut e = String::new();
        let _ = cli.stderr.take().unwrap().read_to_string(&mut e);
        panic!("{what}: server received {got:?}, want {request:?} (client: {e})");
    }
    let mut srv_in = srv.stdin.take().unwrap();
    send(&mut srv_in, &reply);
    drop(srv_in); // server half-closes: the client sees the reply, then EOF

    let mut answer = String::new();
    cli.stdout
        .take()
        .unwrap()
        .read_to_string(&mut answer)
        .unwrap();
    drop(cli_in);
    let co = cli.wait_with_output().unwrap();
    assert_eq!(answer, reply, "{what}: client received");
    assert!(
        co.status.success(),
        "{what}: client {}: {}",
        co.status,
        String::from_utf8_lossy(&co.stderr)
    );
    let mut rest = String::new();
    srv_out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "{what}: server received extra data");
    let so = srv.wait_with_output().unwrap();
    assert!(
        so.status.success(),
        "{what}: server {}: {}",
        so.status,
        String::from_utf8_lossy(&so.stderr)
    );
}

/// TCP both ways over both families with the default host addresses.
fn tcp_dual_stack(c: &NsProc, v4: &str, v6: &str, ifname: &str) {
    tcp_round_trip(Some(c), None, v4, 8004);
    tcp_round_trip(Some(c), None, v6, 8006);
    tcp_round_trip(None, Some(c), HOST_V4, 9004);
    tcp_round_trip(None, Some(c), &format!("{HOST_V6}%{ifname}"), 9006);
}

// ---------------------------------------------------------------------------
// helpers: the expected configuration

/// The default dual-stack configuration of container `c` (key = its pid),
/// checked on both sides.
fn assert_dual_stack(c: &NsProc, v4: &str, v6: &str) {
    let h = host_if(c);
    let ctr = Some(c);
    // the pair: veth, ARP off, up, linked across the two namespaces
    let hl = link(None, &h);
    let cl = link(ctr, "eth0");
    for (side, l) in [("host", &hl), ("container", &cl)] {
        assert_eq!(l["linkinfo"]["info_kind"], "veth", "{side}: {l}");
        assert!(has_flag(l, "NOARP") && has_flag(l, "UP"), "{side}: {l}");
        assert_eq!(l["mtu"], 1500, "{side}: {l}");
        assert!(
            l.get("link_netnsid").is_some(),
            "{side}: peer in another netns: {l}"
        );
        assert!(l.get("master").is_none(), "{side}: no bridge: {l}");
        // no kernel-made link-local address to be reached through a guess
        assert_eq!(l["inet6_addr_gen_mode"], "none", "{side}: {l}");
    }
    assert_eq!(hl["ifalias"], format!("narwhal:{}", c.pid()));
    assert_eq!(
        hl["link_index"], cl["ifindex"],
        "host end's peer is the container's eth0"
    );
    assert_eq!(
        cl["link_index"], hl["ifindex"],
        "container end's peer is the host's {h}"
    );
    let (hmac, cmac) = (mac(None, &h), mac(ctr, "eth0"));

    // host side
    assert_eq!(
        addrs(None, &h),
        sorted(vec![
            a("inet", HOST_V4, v4, 32, "link"),
            a("inet6", HOST_V6, v6, 128, "link")
        ])
    );
    let r4 = routes(None, "-4", &h);
    assert!(has_route(&r4, v4, None), "host route to {v4}: {r4:?}");
    assert!(r4.iter().all(|r| r.get("gateway").is_none()), "{r4:?}");
    let r6 = routes(None, "-6", &h);
    assert!(
        has_route(&r6, v6, None),
        "host route {v6}/128 dev {h}: {r6:?}"
    );
    assert!(r6.iter().all(|r| r.get("gateway").is_none()), "{r6:?}");
    assert_eq!(sysctl_if(None, 4, &h, "rp_filter"), "1");
    assert_eq!(sysctl_if(None, 6, &h, "disable_ipv6"), "0");
    assert_eq!(sysctl_if(None, 6, &h, "autoconf"), "0");
    assert_eq!(sysctl_if(None, 6, &h, "accept_ra"), "0");

    // container side
    assert_eq!(
        addrs(ctr, "eth0"),
        sorted(vec![
            a("inet", v4, HOST_V4, 32, "global"),
            a("inet6", v6, HOST_V6, 128, "global")
        ])
    );
    let r4 = routes(ctr, "-4", "eth0");
    assert!(has_route(&r4, "default", Some(HOST_V4)), "{r4:?}");
    let r6 = routes(ctr, "-6", "eth0");
    assert!(has_route(&r6, "default", Some(HOST_V6)), "{r6:?}");
    assert!(
        has_route(&r6, HOST_V6, None),
        "route fe80::1/128 dev eth0: {r6:?}"
    );
    assert!(has_flag(&link(ctr, "lo"), "UP"), "lo is up");
    assert_eq!(sysctl_if(ctr, 6, "eth0", "disable_ipv6"), "0");
    assert_eq!(sysctl_if(ctr, 6, "eth0", "autoconf"), "0");
    assert_eq!(sysctl_if(ctr, 6, "eth0", "accept_ra"), "0");

    // static neighbours: each side has the other's real MAC
    assert_neighbours(None, Some(&h), &[(v4, &h, &cmac), (v6, &h, &cmac)]);
    assert_only_permanent(ctr, &[(HOST_V4, "eth0", &hmac), (HOST_V6, "eth0", &hmac)]);
}

// ---------------------------------------------------------------------------
// 1. dual stack

#[test]
fn dual_stack_configures_both_sides_exactly() {
    require_root!();
    private_host();
    // the private host inherits IPv4 forwarding from the machine: make the
    // default known, to see that narwhal leaves it alone without --forwarding
    sysctl_set(None, "net/ipv4/conf/default/forwarding", "0");
    sysctl_set(None, "net/ipv6/conf/default/forwarding", "0");
    let c = NsProc::new();
    let stderr = up(&c, &["-4", V4, "-6", V6]);
    assert_eq!(stderr, "", "no output without --trace");
    assert_dual_stack(&c, V4, V6);
    let h = host_if(&c);
    // no forwarding unless asked for
    assert_eq!(sysctl_if(None, 4, &h, "forwarding"), "0");
    assert_eq!(sysctl_if(None, 6, &h, "forwarding"), "0");
}

/// The link is complete when narwhal returns, not some time later: the
/// kernel finishes IPv6 addresses and carrier changes in work queues, and
/// narwhal waits for them. Read with dumps only (a single-link query would
/// itself make the kernel finish pending carrier work), right after exit.
#[test]
fn complete_when_narwhal_returns() {
    require_root!();
    private_host();
    for i in 0..20 {
        let c = NsProc::new();
        let ns = netns_arg(&c);
        let (v4, v6) = (
            format!("198.51.100.{}", 100 + i),
            format!("2001:db8::{:x}", 0x100 + i),
        );
        ok(&nw(&["--netns", &ns, "-4", &v4, "-6", &v6]));
        let h = host_if(&c);
        let host_routes = ip_json(None, &["-6", "route", "show", "table", "all"]);
        let ctr_routes = ip_json(Some(&c), &["-6", "route", "show", "table", "all"]);
        let has = |rs: &Value, dst: &str, dev: &str, kind: Option<&str>, proto: &str| {
            rs.as_array().unwrap().iter().any(|r| {
                r["dst"] == dst
                    && r["dev"] == dev
                    && r["protocol"] == proto
                    && kind.is_none_or(|k| r["type"] == k)
            })
        };
        assert!(
            has(&host_routes, HOST_V6, &h, Some("local"), "kernel"),
            "host: no local route for {HOST_V6} on {h} when narwhal returned: {host_routes}"
        );
        assert!(
            has(&ctr_routes, &v6, "eth0", Some("local"), "kernel"),
            "container: no local route for {v6} when narwhal returned: {ctr_routes}"
        );
        assert!(
            !has(&host_routes, &v6, &h, None, "kernel"),
            "host: a kernel-made route to {v6} besides narwhal's: {host_routes}"
        );
        let up = |ns: Option<&NsProc>, dev: &str| {
            ip_json(ns, &["link", "show"])
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["ifname"] == dev && l["operstate"] == "UP")
        };
        assert!(up(None, &h), "{h} not running when narwhal returned");
        assert!(
            up(Some(&c), "eth0"),
            "eth0 not running when narwhal returned"
        );
    }
}

// ---------------------------------------------------------------------------
// 2. single stack

#[test]
fn ipv4_only_disables_ipv6_on_both_ends() {
    require_root!();
    private_host();
    let c = NsProc::new();
    let h = host_if(&c);
    up(&c, &["-4", V4]);
    assert_eq!(addrs(None, &h), vec![a("inet", HOST_V4, V4, 32, "link")]);
    assert_eq!(
        addrs(Some(&c), "eth0"),
        vec![a("inet", V4, HOST_V4, 32, "global")]
    );
    assert_eq!(sysctl_if(None, 6, &h, "disable_ipv6"), "1");
    assert_eq!(sysctl_if(Some(&c), 6, "eth0", "disable_ipv6"), "1");
    assert_eq!(sysctl_if(None, 4, &h, "rp_filter"), "1");
    assert!(routes(Some(&c), "-6", "eth0").is_empty());
    assert!(has_route(
        &routes(Some(&c), "-4", "eth0"),
        "default",
        Some(HOST_V4)
    ));
    let (hmac, cmac) = (mac(None, &h), mac(Some(&c), "eth0"));
    tcp_round_trip(Some(&c), None, V4, 8004);
    tcp_round_trip(None, Some(&c), HOST_V4, 9004);
    assert_only_permanent(None, &[(V4, &h, &cmac)]);
    assert_only_permanent(Some(&c), &[(HOST_V4, "eth0", &hmac)]);
}

#[test]
fn ipv6_only_has_no_ipv4_address() {
    require_root!();
    private_host();
    let c = NsProc::new();
    let h = host_if(&c);
    up(&c, &["-6", V6]);
    assert_eq!(addrs(None, &h), vec![a("inet6", HOST_V6, V6, 128, "link")]);
    assert_eq!(
        addrs(Some(&c), "eth0"),
        vec![a("inet6", V6, HOST_V6, 128, "global")]
    );
    assert!(routes(Some(&c), "-4", "eth0").is_empty());
    assert!(routes(None, "-4", &h).is_empty());
    assert!(has_route(
        &routes(Some(&c), "-6", "eth0"),
        "default",
        Some(HOST_V6)
    ));
    assert_eq!(sysctl_if(None, 6, &h, "disable_ipv6"), "0");
    assert_eq!(sysctl_if(Some(&c), 6, "eth0", "disable_ipv6"), "0");
    let (hmac, cmac) = (mac(None, &h), mac(Some(&c), "eth0"));
    tcp_round_trip(Some(&c), None, V6, 8006);
    tcp_round_trip(None, Some(&c), &format!("{HOST_V6}%eth0"), 9006);
    assert_only_permanent(None, &[(V6, &h, &cmac)]);
    assert_only_permanent(Some(&c), &[(HOST_V6, "eth0", &hmac)]);
}

// ---------------------------------------------------------------------------
// 3. every option

#[test]
fn every_option() {
    require_root!();
    private_host();
    let c = NsProc::new();
    let ctr = Some(&c);
    let hif = unique("nwh");
    let (v4, v6, hv4, hv6) = (
        "198.51.100.7",
        "2001:db8::7",
        "198.18.0.1",
        "2001:db8:ffff::1",
    );
    let pid = c.pid().to_string();
    let ip_forward = sysctl(None, "net/ipv4/ip_forward");
    // (namespaces inherit IPv4 forwarding from the machine: make it known)
    sysctl_set(ctr, "net/ipv4/conf/default/forwarding", "0");
    let o = nw(&[
        "--pid",
        &pid,
        "-4",
        v4,
        "-6",
        v6,
        "--host-ipv4",
        hv4,
        "--host-ipv6",
        hv6,
        "-i",
        "net0",
        "--host-interface",
        &hif,
        "--mtu",
        "1400",
        "--forwarding",
        "--trace",
    ]);
    let trace = ok(&o);
    assert_eq!(out(&o), "");
    settle(&c, &hif, "net0");

    // links: names, MTU on both ends, alias keyed by the pid
    assert!(!has_link(ctr, "eth0"));
    let hl = link(None, &hif);
    let cl = link(ctr, "net0");
    assert_eq!(hl["mtu"], 1400);
    assert_eq!(cl["mtu"], 1400);
    assert_eq!(hl["ifalias"], format!("narwhal:{pid}"));
    assert_eq!(hl["link_index"], cl["ifindex"]);
    assert!(has_flag(&hl, "NOARP") && has_flag(&hl, "UP"));
    assert!(has_flag(&cl, "NOARP") && has_flag(&cl, "UP"));
    assert!(
        !has_link(None, &format!("nw-{pid}")),
        "--host-interface replaces the default name"
    );

    // addresses and routes with the custom host addresses
    // (IPv6 derives an address's scope from the address itself)
    assert_eq!(
        addrs(None, &hif),
        sorted(vec![
            a("inet", hv4, v4, 32, "link"),
            a("inet6", hv6, v6, 128, "global")
        ])
    );
    assert_eq!(
        addrs(ctr, "net0"),
        sorted(vec![
            a("inet", v4, hv4, 32, "global"),
            a("inet6", v6, hv6, 128, "global")
        ])
    );
    assert!(has_route(&routes(ctr, "-4", "net0"), "default", Some(hv4)));
    let r6 = routes(ctr, "-6", "net0");
    assert!(
        has_route(&r6, "default", Some(hv6)) && has_route(&r6, hv6, None),
        "{r6:?}"
    );
    assert!(has_route(&routes(None, "-6", &hif), v6, None));

    // forwarding for each configured family, on the host interface only
    assert_eq!(sysctl_if(None, 4, &hif, "forwarding"), "1");
    // IPv6: per interface only with force_forwarding (Linux 6.17+)
    assert_eq!(sysctl_if(None, 6, &hif, "force_forwarding"), "1");
    assert_eq!(
        sysctl(None, "net/ipv4/ip_forward"),
        ip_forward,
        "the host-wide switch is left alone"
    );
    assert_eq!(
        sysctl_if(ctr, 4, "net0", "forwarding"),
        "0",
        "not in the container"
    );

    // --trace: one `host: `/`container: ` line per change, matching the state
    let (hmac, cmac) = (mac(None, &hif), mac(ctr, "net0"));
    for l in trace.lines() {
        assert!(
            l.starts_with("host: ") || l.starts_with("container: "),
            "trace line {l:?}"
        );
    }
    for want in [
        format!(
            "host: link add {hif} address {hmac} mtu 1400 group 77 arp off type veth peer name net0 address {cmac} mtu 1400 arp off netns /proc/{pid}/ns/net"
        ),
        format!("host: link set {hif} alias narwhal:{pid}"),
        format!("host: sysctl net.ipv4.conf.{hif}.rp_filter=1"),
        format!("host: sysctl net.ipv4.conf.{hif}.forwarding=1"),
        format!("host: sysctl net.ipv6.conf.{hif}.force_forwarding=1"),
        "container: sysctl net.ipv6.conf.net0.autoconf=0".to_string(),
        format!("container: addr add {v4} peer {hv4}/32 nodad dev net0"),
        format!("container: addr add {v6} peer {hv6}/128 nodad dev net0"),
        format!("container: neigh add {hv4} lladdr {hmac} nud permanent dev net0"),
        format!("container: neigh add {hv6} lladdr {hmac} nud permanent dev net0"),
        "container: link set net0 up".to_string(),
        format!("container: route add default via {hv4} dev net0"),
        format!("container: route add default via {hv6} dev net0"),
        format!("host: addr add {hv4} peer {v4}/32 scope link noprefixroute nodad dev {hif}"),
        format!("host: addr add {hv6} peer {v6}/128 noprefixroute nodad dev {hif}"),
        format!("host: neigh add {v4} lladdr {cmac} nud permanent dev {hif}"),
        format!("host: neigh add {v6} lladdr {cmac} nud permanent dev {hif}"),
        format!("host: link set {hif} up"),
        format!("host: route add {v4}/32 dev {hif} src {hv4}"),
        format!("host: route add {v6}/128 dev {hif}"),
        "container: link set lo up".to_string(),
    ] {
        assert!(trace.lines().any(|l| l == want), "trace lacks {want:?}:\n{trace}");
    }

    // it works, without ARP/NDP
    tcp_round_trip(ctr, None, v4, 8004);
    tcp_round_trip(ctr, None, v6, 8006);
    tcp_round_trip(None, ctr, hv4, 9004);
    tcp_round_trip(None, ctr, hv6, 9006);
    assert_only_permanent(None, &[(v4, &hif, &cmac), (v6, &hif, &cmac)]);
    assert_only_permanent(ctr, &[(hv4, "net0", &hmac), (hv6, "net0", &hmac)]);
}

#[test]
fn pid_target_is_keyed_by_pid() {
    require_root!();
    private_host();
    let c = NsProc::new();
    let pid = c.pid().to_string();
    let stderr = ok(&nw(&["--pid", &pid, "-4", V4, "-6", V6]));
    assert_eq!(stderr, "");
    settle(&c, &host_if(&c), "eth0");
    assert_dual_stack(&c, V4, V6);
}

// ---------------------------------------------------------------------------
// 4. real TCP, no ARP/NDP

#[test]
fn tcp_both_ways_both_families_without_arp() {
    require_root!();
    private_host();
    let c = NsProc::new();
    up(&c, &["-4", V4, "-6", V6]);
    tcp_dual_stack(&c, V4, V6, "eth0");
    // only the static entries: nothing was resolved or learned
    assert_dual_stack(&c, V4, V6);
}

// ---------------------------------------------------------------------------
// 5. a namespace with IPv6 disabled, like Docker --net=none

#[test]
fn ipv6_disabled_beforehand_still_works() {
    require_root!();
    private_host();
    let c = NsProc::new();
    let ctr = Some(&c);
    sysctl_set(ctr, "net/ipv6/conf/all/disable_ipv6", "1");
    sysctl_set(ctr, "net/ipv6/conf/default/disable_ipv6", "1");
    up(&c, &["-4", V4, "-6", V6]);
    assert_eq!(sysctl_if(ctr, 6, "eth0", "disable_ipv6"), "0");
    // only narwhal's interface is changed
    assert_eq!(sysctl(ctr, "net/ipv6/conf/all/disable_ipv6"), "1");
    assert_eq!(sysctl(ctr, "net/ipv6/conf/default/disable_ipv6"), "1");
    assert_dual_stack(&c, V4, V6);
    tcp_dual_stack(&c, V4, V6, "eth0");
    assert_dual_stack(&c, V4, V6);
}

// ---------------------------------------------------------------------------
// 6. failure paths

/// Snapshots of the private host and of `c`.
fn both(c: &NsProc) -> (String, String) {
    (snapshot(None), snapshot(Some(c)))
}

fn assert_unchanged(c: &NsProc, before: &(String, String), what: &str) {
    let after = both(c);
    assert_eq!(before.0, after.0, "{what}: host namespace changed");
    assert_eq!(before.1, after.1, "{what}: container namespace changed");
}

#[test]
fn interface_already_in_container() {
    require_root!();
    private_host();
    let c = NsProc::new();
    add_foreign_link(Some(&c), "eth0");
    let before = both(&c);
    let o = nw(&["--netns", &netns_arg(&c), "-4", V4, "-6", V6]);
    let e = failed(&o);
    assert!(
        e.contains(&format!("host: link add {}", host_if(&c))),
        "{e}"
    );
    assert!(e.contains("File exists"), "{e}");
    assert!(
        e.contains("interface eth0 already exists in the container namespace"),
        "{e}"
    );
    assert!(e.contains("--net=none"), "{e}");
    assert_unchanged(&c, &before, "eth0 taken");
}

#[test]
fn host_name_taken_by_a_foreign_link() {
    require_root!();
    private_host();
    let c = NsProc::new();
    let h = host_if(&c);
    let kind = add_foreign_link(None, &h);
    let before = both(&c);
    let e = failed(&nw(&["--netns", &netns_arg(&c), "-4", V4]));
    assert!(e.contains(&format!("host: link add {h}")), "{e}");
    assert!(e.contains("File exists"), "{e}");
    assert!(
        e.contains(&format!(
            "host interface {h} already exists in the host namespace (not narwhal's"
        )),
        "{e}"
    );
    assert_unchanged(&c, &before, "host name taken");
    let l = link(None, &h);
    assert_eq!(
        l["linkinfo"]["info_kind"],
        kind.as_str(),
        "the existing link is untouched"
    );
    assert!(
        l.get("ifalias").is_none(),
        "no alias written on a foreign link: {l}"
    );
    assert!(!has_link(Some(&c), "eth0"));
}

#[test]
fn applying_twice_fails_and_keeps_the_first() {
    require_root!();
    private_host();
    let c = NsProc::new();
    up(&c, &["-4", V4, "-6", V6]);
    let before = both(&c);
    let e = failed(&nw(&["--netns", &netns_arg(&c), "-4", V4, "-6", V6]));
    let h = host_if(&c);
    assert!(e.contains(&format!("host interface {h} already exists in the host namespace (narwhal's, for '{}'; remove it first: narwhal remove --host-interface {h})", c.pid())), "{e}");
    assert_unchanged(&c, &before, "second run");
    // another host name, same container: the container's eth0 clashes
    let e = failed(&nw(&[
        "--netns",
        &netns_arg(&c),
        "-4",
        "198.51.100.3",
        "--host-interface",
        &unique("nwx"),
    ]));
    assert!(
        e.contains("interface eth0 already exists in the container namespace"),
        "{e}"
    );
    assert_unchanged(&c, &before, "second run under another host name");
    assert_dual_stack(&c, V4, V6);
    tcp_dual_stack(&c, V4, V6, "eth0");
}

#[test]
fn own_namespace_is_refused() {
    require_root!();
    private_host();
    let c = NsProc::new(); // only for the snapshot comparison
    let before = both(&c);
    let tid = nix::unistd::gettid().to_string();
    // a process of the (private) host, for --pid
    let host_proc = common::KillOnDrop(
        Command::new("sleep")
            .arg("infinity")
            .spawn()
            .expect("spawn sleep"),
    );
    let hp = host_proc.0.id().to_string();
    for args in [
        vec!["--netns", "/proc/self/ns/net"],
        vec!["--netns", "/proc/thread-self/ns/net"],
        // the test thread lives in the private host (the process's pid
        // would name the machine's root namespace instead)
        vec!["--pid", tid.as_str()],
        vec!["--pid", hp.as_str()],
    ] {
        let mut a = args.clone();
        a.extend(["-4", V4, "-6", V6]);
        let e = failed(&nw(&a));
        assert!(
            e.contains("is the host's own network namespace"),
            "{args:?}: {e}"
        );
        assert_unchanged(&c, &before, &format!("{args:?}"));
    }
}

#[test]
fn invalid_inputs_change_nothing() {
    require_root!();
    private_host();
    let c = NsProc::new();
    let before = both(&c);
    let ns = netns_arg(&c);
    let cases: &[(&[&str], &str)] = &[
        (
            &["-4", "198.51.100.300"],
            "invalid IPv4 address '198.51.100.300': not an IP address",
        ),
        (
            &["-6", "2001:db8::g"],
            "invalid IPv6 address '2001:db8::g': not an IP address",
        ),
        (
            &["-4", "224.0.0.1"],
            "invalid IPv4 address '224.0.0.1': multicast address",
        ),
        (
            &["-6", "ff02::1"],
            "invalid IPv6 address 'ff02::1': multicast address",
        ),
        (
            &["-4", V4, "--host-ipv4", V4],
            "invalid host IPv4 address '198.51.100.2': equals the container address",
        ),
        (
            &["-6", V6, "--host-ipv6", V6],
            "invalid host IPv6 address '2001:db8::2': equals the container address",
        ),
        (
            &["-4", V4, "-i", "abcdefghijklmnop"],
            "invalid interface name 'abcdefghijklmnop': longer than 15 bytes",
        ),
        (
            &["-4", V4, "--host-interface", "abcdefghijklmnop"],
            "invalid host interface name 'abcdefghijklmnop': longer than 15 bytes",
        ),
        (
            &["-4", V4, "-6", V6, "--mtu", "1279"],
            "invalid MTU '1279': IPv6 needs at least 1280",
        ),
    ];
    for (args, want) in cases {
        let mut a = vec!["--netns", ns.as_str()];
        a.extend_from_slice(args);
        let e = failed(&nw(&a));
        assert_eq!(e, *want, "{args:?}");
        assert_unchanged(&c, &before, &format!("{args:?}"));
    }
    // MTU 1279 is fine without IPv6 (and proves the namespace was usable)
    up(&c, &["-4", V4, "--mtu", "1279"]);
    assert_eq!(link(None, &host_if(&c))["mtu"], 1279);
}

#[test]
fn bad_namespace_paths() {
    require_root!();
    private_host();
    let c = NsProc::new();
    let before = both(&c);
    let missing = format!("/nonexistent-{}", unique("ns"));
    let not_a_netns = tempfile::NamedTempFile::new().expect("create a temporary file");
    std::fs::write(not_a_netns.path(), "x").unwrap();
    let file = not_a_netns.path().to_str().unwrap().to_string();
    let uts = format!("/proc/{}/ns/uts", c.pid());
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--netns", &missing],
            format!("open network namespace {missing}: No such file or directory"),
        ),
        (
            vec!["--netns", &file],
            format!("{file} is not a network namespace"),
        ),
        (
            vec!["--netns", "/tmp"],
            "/tmp is not a network namespace".to_string(),
        ),
        (
            vec!["--netns", &uts],
            format!("{uts} is not a network namespace"),
        ),
        (
            vec!["--pid", "2147483647"],
            "open network namespace /proc/2147483647/ns/net: No such file or directory".to_string(),
        ),
        (vec!["--pid", "0"], "invalid PID '0'".to_string()),
        (vec!["--pid", "abc"], "invalid PID 'abc'".to_string()),
    ];
    for (args, want) in &cases {
        let mut a = args.clone();
        a.extend(["-4", V4, "-6", V6]);
        let e = failed(&nw(&a));
        assert!(
            e.contains(want.as_str()),
            "{args:?}: want {want:?} in {e:?}"
        );
        assert_unchanged(&c, &before, &format!("{args:?}"));
    }
}

#[test]
fn failure_at_every_step_rolls_back() {
    require_root!();
    private_host();
    let c = NsProc::new();
    let ns = netns_arg(&c);
    let args = ["--netns", ns.as_str(), "-4", V4, "-6", V6, "--trace"];
    common::assert_failure_injection(&args);
    // the steps, from a successful traced run (then removed again)
    let trace = ok(&nw(&args));
    let steps: Vec<&str> = trace.lines().collect();
    assert!(steps.len() > 20, "{trace}");
    assert!(steps[0].starts_with("host: link add "), "{trace}");
    ok(&nw(&["remove", "--netns", &ns]));
    let before = both(&c);
    let h = host_if(&c);

    for n in 1..=steps.len() {
        let o = nw_env(&args, &[("NARWHAL_FAIL_STEP", &n.to_string())]);
        let e = err(&o);
        assert_eq!(o.status.code(), Some(1), "step {n}: {e}");
        let last = e.lines().last().unwrap_or("");
        // the trace shows the steps applied before the failure
        assert_eq!(e.lines().count(), n, "step {n}: {e}");
        assert_eq!(
            e.lines().take(n - 1).collect::<Vec<_>>(),
            steps[..n - 1],
            "step {n}"
        );
        assert!(last.starts_with("narwhal: "), "step {n}: {last}");
        assert!(
            last.contains(&format!("{}: injected failure", steps[n - 1])),
            "step {n}: {last}"
        );
        if n > 1 {
            assert!(
                last.contains(&format!("rolled back: host: link del {h}")),
                "step {n}: {last}"
            );
        } else {
            assert!(
                !last.contains("rolled back"),
                "nothing to roll back before step 1: {last}"
            );
        }
        assert!(!last.contains("ROLLBACK INCOMPLETE"), "step {n}: {last}");
        assert_unchanged(
            &c,
            &before,
            &format!("failure before step {n} ({})", steps[n - 1]),
        );
    }
    // one past the last step: no failure, the same steps
    let o = nw_env(
        &args,
        &[("NARWHAL_FAIL_STEP", &(steps.len() + 1).to_string())],
    );
    assert_eq!(ok(&o).lines().collect::<Vec<_>>(), steps);
    settle(&c, &h, "eth0");
    assert_dual_stack(&c, V4, V6);
}

// ---------------------------------------------------------------------------
// 7. remove

#[test]
fn remove_then_remove_again() {
    require_root!();
    private_host();
    let c = NsProc::new();
    let h = host_if(&c);
    let host_before = snapshot(None);
    up(&c, &["-4", V4, "-6", V6]);
    let ns = netns_arg(&c);
    let o = nw(&["remove", "--netns", &ns, "--trace"]);
    assert_eq!(ok(&o), format!("host: link del {h}\n"));
    assert_eq!(out(&o), format!("removed {h}\n"));
    assert!(!has_link(None, &h));
    assert!(
        !has_link(Some(&c), "eth0"),
        "the container end went with it"
    );
    assert_eq!(
        snapshot(None),
        host_before,
        "host back to its state before setup"
    );

    let o = nw(&["remove", "--netns", &ns]);
    assert_eq!(ok(&o), "");
    assert_eq!(
        out(&o),
        format!("nothing to remove: no host interface {h}\n")
    );
    let o = nw(&["remove", "--pid", &c.pid().to_string()]);
    ok(&o);
    assert_eq!(
        out(&o),
        format!("nothing to remove: no host interface {h}\n")
    );

    // set up again after remove: works
    up(&c, &["-4", V4, "-6", V6]);
    assert_dual_stack(&c, V4, V6);
    let o = nw(&["remove", "--pid", &c.pid().to_string()]);
    ok(&o);
    assert_eq!(out(&o), format!("removed {h}\n"));
}

#[test]
fn remove_after_the_namespace_died() {
    require_root!();
    private_host();
    let c = NsProc::new();
    let h = host_if(&c);
    let (pid, ns) = (c.pid().to_string(), netns_arg(&c));
    up(&c, &["-4", V4, "-6", V6]);
    assert!(has_link(None, &h));
    drop(c); // kills the container: its namespace goes, and the pair with it
    wait_for(&format!("{h} to disappear with the container"), || {
        !has_link(None, &h)
    });
    assert!(neighs(None).is_empty(), "{:?}", neighs(None));
    for args in [
        ["remove", "--pid", pid.as_str()],
        ["remove", "--netns", ns.as_str()],
    ] {
        let o = nw(&args);
        ok(&o);
        assert_eq!(
            out(&o),
            format!("nothing to remove: no host interface {h}\n"),
            "{args:?}"
        );
    }
}

/// What Linux says of a pair's namespace, through narwhal's kernel layer:
/// a namespace that something still holds lives on after its last process
/// (a wait for its end times out); once nothing holds it, it has ended and
/// Linux removes the pair with it.
#[test]
fn the_kernel_tells_when_a_pairs_namespace_ends() {
    use narwhal::kernel::{Kernel, System};
    use narwhal::net::Side;
    use std::time::Duration;
    require_root!();
    private_host();
    let c = NsProc::new();
    let h = host_if(&c);
    up(&c, &["-4", V4, "-6", V6]);
    let hold = std::fs::File::open(c.netns()).unwrap();
    drop(c); // the container's last process
    let mut k = System::open(None).unwrap();
    let link = k.link(Side::Host, &h).unwrap().expect("the host link");
    assert!(
        !k.netns_ended(&link, Duration::from_millis(50)).unwrap(),
        "a namespace still held has not ended"
    );
    assert!(has_link(None, &h));
    drop(hold);
    assert!(k.netns_ended(&link, Duration::from_secs(10)).unwrap());
    assert!(k
        .await_removal(link.index, Duration::from_secs(10))
        .unwrap());
    assert!(!has_link(None, &h));
}

/// A setup that finds a narwhal pair in its way (one of its addresses, or
/// its host interface name) whose container has stopped waits for the pair
/// to go with its namespace, as a container started again at once meets
/// (the pair of a stopped runtime-made namespace is left to Linux, which
/// removes it when the namespace ends); a pair whose namespace something
/// still holds stops it after the grace, naming the pair, with nothing
/// changed.
#[test]
fn setup_waits_for_a_pair_that_goes_with_its_namespace() {
    require_root!();
    private_host();
    for same_name in [false, true] {
        let a = NsProc::new();
        let name = unique("nwg");
        let mut args = vec!["-4", V4, "-6", V6];
        if same_name {
            args.extend(["--host-interface", name.as_str()]);
        }
        up(&a, &args);
        let holder = if same_name { name.clone() } else { host_if(&a) };
        let hold = std::fs::File::open(a.netns()).unwrap();
        drop(a);
        let b = NsProc::new();
        let before = (snapshot(None), snapshot(Some(&b)));
        let ns = netns_arg(&b);
        let e = failed(&nw(&[&["--netns", ns.as_str()][..], &args].concat()));
        assert!(e.contains(&holder), "names the pair in the way: {e}");
        assert_eq!(
            before,
            (snapshot(None), snapshot(Some(&b))),
            "nothing changed"
        );
        // the last process in that namespace leaves a moment later (like
        // the RCU-deferred release of a socket opened in it): the setup
        // waits for the namespace to end and the pair to go, then succeeds
        let fd = std::os::fd::AsRawFd::as_raw_fd(&hold);
        let net = format!("--net=/proc/{}/fd/{fd}", std::process::id());
        let mut last = KillOnDrop(
            Command::new("nsenter")
                .args([net.as_str(), "sleep", "0.1"])
                .spawn()
                .unwrap(),
        );
        wait_for("sleep to enter the namespace", || {
            std::fs::read_link(format!("/proc/{}/exe", last.0.id()))
                .is_ok_and(|e| e.ends_with("sleep"))
        });
        drop(hold);
        up(&b, &args);
        assert!(last.0.try_wait().unwrap().is_some(), "waited for it");
        if same_name {
            assert_eq!(link(None, &name)["ifalias"], format!("narwhal:{}", b.pid()));
        } else {
            assert!(!has_link(None, &holder), "{holder} went");
            assert_dual_stack(&b, V4, V6);
        }
        let ifname = if same_name { name.clone() } else { host_if(&b) };
        ok(&nw(&["remove", "--host-interface", &ifname]));
    }
}

#[test]
fn remove_refuses_links_that_are_not_narwhals() {
    require_root!();
    private_host();
    let c = NsProc::new();
    // a non-veth link
    let d = unique("nwd");
    let kind = add_foreign_link(None, &d);
    // a veth without narwhal's mark
    let (v, p) = (unique("nwv"), unique("nwp"));
    run_ok(Command::new("ip").args(["link", "add", &v, "type", "veth", "peer", "name", &p]));
    let before = both(&c);
    let e = failed(&nw(&["remove", "--host-interface", &d]));
    assert_eq!(
        e,
        format!("refusing to remove host interface {d}: it is not a veth ({kind})")
    );
    let e = failed(&nw(&["remove", "--host-interface", &v]));
    assert_eq!(
        e,
        format!(
            "refusing to remove host interface {v}: narwhal did not create it (no narwhal: alias)"
        )
    );
    assert_unchanged(&c, &before, "refused remove");
    assert!(has_link(None, &d) && has_link(None, &v));
    // and one that is narwhal's, by name: removed
    up(&c, &["-4", V4]);
    let h = host_if(&c);
    let o = nw(&["remove", "--host-interface", &h]);
    ok(&o);
    assert_eq!(out(&o), format!("removed {h}\n"));
    assert!(!has_link(None, &h));
}

#[test]
fn remove_refuses_another_containers_link() {
    require_root!();
    private_host();
    let ca = NsProc::new();
    let cb = NsProc::new();
    // A's link carries the name B's would have
    let hb = host_if(&cb);
    up(&ca, &["-4", V4, "--host-interface", &hb]);
    let before = both(&ca);
    let e = failed(&nw(&["remove", "--pid", &cb.pid().to_string()]));
    assert_eq!(
        e,
        format!(
            "refusing to remove host interface {hb}: it belongs to another container (narwhal:{})",
            ca.pid()
        )
    );
    assert_unchanged(&ca, &before, "refused remove");
    tcp_round_trip(Some(&ca), None, V4, 8004);
    // A's own key names another interface; by name, any narwhal link goes
    let o = nw(&["remove", "--pid", &ca.pid().to_string()]);
    assert_eq!(
        out(&o),
        format!("nothing to remove: no host interface {}\n", host_if(&ca))
    );
    let o = nw(&["remove", "--host-interface", &hb]);
    ok(&o);
    assert!(!has_link(None, &hb));
}

// ---------------------------------------------------------------------------
// 8. two containers side by side

#[test]
fn two_containers_are_separate_point_to_point_links() {
    require_root!();
    private_host();
    let ca = NsProc::new();
    let cb = NsProc::new();
    let (a4, a6, b4, b6) = (
        "198.51.100.10",
        "2001:db8::10",
        "198.51.100.11",
        "2001:db8::11",
    );
    up(&ca, &["-4", a4, "-6", a6]);
    up(&cb, &["-4", b4, "-6", b6]);
    let (ha, hb) = (host_if(&ca), host_if(&cb));
    assert_ne!(ha, hb);
    assert_dual_stack(&ca, a4, a6);
    let (la, lb) = (link(None, &ha), link(None, &hb));
    assert_ne!(la["ifindex"], lb["ifindex"]);
    assert_eq!(la["link_index"], link(Some(&ca), "eth0")["ifindex"]);
    assert_eq!(lb["link_index"], link(Some(&cb), "eth0")["ifindex"]);
    for l in [&la, &lb] {
        assert!(l.get("master").is_none(), "no bridge: {l}");
    }
    assert!(ip_json(None, &["link", "show", "type", "bridge"])
        .as_array()
        .unwrap()
        .is_empty());
    for (c, v4, v6) in [(&ca, a4, a6), (&cb, b4, b6)] {
        tcp_dual_stack(c, v4, v6, "eth0");
    }
    // A tries B: the packets go to the host (L3, via A's gateway); B is
    // never resolved on A's link
    let _ = run(ca
        .cmd("timeout")
        .args(["5", "busybox", "nc", "-w", "2", b4, "8004"])
        .stdin(Stdio::null()));
    let _ = run(ca
        .cmd("timeout")
        .args(["5", "busybox", "nc", "-w", "2", b6, "8006"])
        .stdin(Stdio::null()));
    let route = ip_json(Some(&ca), &["route", "get", b4]);
    assert_eq!(route[0]["gateway"], HOST_V4, "{route}");
    assert_eq!(route[0]["dev"], "eth0");
    let bmac = mac(Some(&cb), "eth0");
    for (dst, _, lladdr, _) in neighs(Some(&ca)) {
        assert!(
            dst != b4 && dst != b6,
            "A has a neighbour entry for B: {dst}"
        );
        assert_ne!(lladdr, bmac, "A knows B's MAC");
    }
    let (hmac_a, hmac_b) = (mac(None, &ha), mac(None, &hb));
    let (cmac_a, cmac_b) = (mac(Some(&ca), "eth0"), mac(Some(&cb), "eth0"));
    assert_only_permanent(
        Some(&ca),
        &[(HOST_V4, "eth0", &hmac_a), (HOST_V6, "eth0", &hmac_a)],
    );
    assert_only_permanent(
        Some(&cb),
        &[(HOST_V4, "eth0", &hmac_b), (HOST_V6, "eth0", &hmac_b)],
    );
    assert_only_permanent(
        None,
        &[
            (a4, &ha, &cmac_a),
            (a6, &ha, &cmac_a),
            (b4, &hb, &cmac_b),
            (b6, &hb, &cmac_b),
        ],
    );
}
