//! Address ownership and source checks (issue #10), on the real kernel in
//! private namespaces: one holder per address, host-owned and gateway
//! addresses refused, racers, narwhal's route protocol, the shared source
//! check on a host with loose `rp_filter` and default routes, and
//! `narwhal list --json`.

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{ip_json, private_host, run_ok, snapshot, unique, NsProc};

/// `narwhal ARGS…` in this thread's (private) host namespace.
fn nw(args: &[&str]) -> Output {
    common::narwhal().args(args).output().expect("run narwhal")
}

fn setup(c: &NsProc, addrs: &[&str]) -> Output {
    let netns = c.netns().display().to_string();
    let mut args = vec!["--netns", netns.as_str()];
    args.extend_from_slice(addrs);
    nw(&args)
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "narwhal failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Exit 1 and exactly one line on stderr; returns it.
fn refused(o: &Output) -> String {
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert_eq!(e.lines().count(), 1, "one line: {e}");
    e
}

/// The hook at createRuntime for container `id` whose init is `c`.
fn hook(c: &NsProc, id: &str, annotations: &[(&str, &str)]) -> Output {
    common::run_hook("createRuntime", c.pid(), id, annotations, "/nonexistent")
}

fn cmd(prog: &str) -> Command {
    Command::new(prog)
}

/// Write a sysctl of this thread's (private) host namespace.
fn sysctl_write(path: &str, value: &str) {
    run_ok(cmd("sh").args(["-c", &format!("echo {value} > /proc/sys/{path}")]));
}

/// UDP sockets bound to `v4` and `v6` inside the namespace of `pid`.
fn bind_in(pid: u32, v4: &'static str, v6: &'static str) -> (UdpSocket, UdpSocket) {
    let bind = |a: &str| common::udp_bind_in(pid, a.parse().unwrap());
    (bind(v4), bind(v6))
}

/// No `eth0` in `c`'s namespace.
fn no_eth0(c: &NsProc) -> bool {
    let links = ip_json(Some(c), &["link", "show"]);
    !links
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["ifname"] == "eth0")
}

const A4: &str = "198.51.100.40";
const A6: &str = "2001:db8::40";

#[test]
fn one_holder_per_address_cli_and_hook() {
    require_root!();
    private_host();
    for (first, second, addr) in [
        (vec!["-4", A4], vec!["-4", A4], A4),
        (vec!["-6", A6], vec!["-6", A6], A6),
        (
            vec!["-4", A4, "-6", A6],
            vec!["-4", "198.51.100.41", "-6", A6],
            A6,
        ),
    ] {
        let (a, b) = (NsProc::new(), NsProc::new());
        ok(&setup(&a, &first));
        let before = (snapshot(None), snapshot(Some(&a)), snapshot(Some(&b)));
        let e = refused(&setup(&b, &second));
        let holder = format!("host interface nw-{} (narwhal:{})", a.pid(), a.pid());
        assert!(
            e.contains(&format!("{addr} is already in use by {holder} (host side)")),
            "{e}"
        );
        // the hook refuses it the same way
        let id = unique("own");
        let mut ann = vec![];
        for pair in second.chunks(2) {
            ann.push((
                if pair[0] == "-4" {
                    "narwhal.ipv4"
                } else {
                    "narwhal.ipv6"
                },
                pair[1],
            ));
        }
        let o = hook(&b, &id, &ann);
        assert_eq!(o.status.code(), Some(1));
        // the cause comes first; the missing syslog is only noted after it
        let e = String::from_utf8_lossy(&o.stderr)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        assert!(
            e.starts_with(&format!("narwhal: createRuntime {id}: ")),
            "{e}"
        );
        assert!(
            e.contains(&format!("{addr} is already in use by {holder}")),
            "{e}"
        );
        let after = (snapshot(None), snapshot(Some(&a)), snapshot(Some(&b)));
        assert!(after == before, "a refused request changed something");
        ok(&nw(&[
            "remove",
            "--netns",
            &a.netns().display().to_string(),
        ]));
    }
}

#[test]
fn addresses_of_the_host_and_the_gateway_are_refused() {
    require_root!();
    private_host();
    // a stand-in uplink with an address, and one on lo
    let up = unique("nwu");
    common::uplink(&up);
    run_ok(cmd("ip").args(["addr", "add", "198.51.100.50/24", "dev", &up]));
    run_ok(cmd("ip").args(["addr", "add", "2001:db8::50/64", "dev", &up, "nodad"]));
    run_ok(cmd("ip").args(["addr", "add", "198.51.100.51/32", "dev", "lo"]));
    run_ok(cmd("ip").args(["addr", "add", "2001:db8::51/128", "dev", "lo"]));
    let c = NsProc::new();
    let before = (snapshot(None), snapshot(Some(&c)));
    for (flag, addr) in [
        ("-4", "198.51.100.50"),
        ("-6", "2001:db8::50"),
        ("-4", "198.51.100.51"),
        ("-6", "2001:db8::51"),
    ] {
        let e = refused(&setup(&c, &[flag, addr]));
        assert!(
            e.contains(&format!(
                "{addr} is already in use by this host (host side)"
            )),
            "{e}"
        );
    }
    for (args, addr) in [
        (vec!["-4", "169.254.0.1"], "169.254.0.1"),
        (
            vec!["-4", "169.254.0.1", "--host-ipv4", "198.51.100.1"],
            "169.254.0.1",
        ),
        (vec!["-6", "fe80::1"], "fe80::1"),
    ] {
        let e = refused(&setup(&c, &args));
        let fam = if addr.contains(':') { "IPv6" } else { "IPv4" };
        assert!(
            e.contains(&format!(
                "invalid {fam} address '{addr}': is narwhal's gateway address"
            )),
            "{e}"
        );
    }
    assert!(
        (snapshot(None), snapshot(Some(&c))) == before,
        "a refusal changed something"
    );
}

#[test]
fn twenty_racers_for_one_address_exactly_one_wins() {
    require_root!();
    private_host();
    let racers: Vec<NsProc> = (0..20).map(|_| NsProc::new()).collect();
    let host_before = snapshot(None);
    let children: Vec<_> = racers
        .iter()
        .map(|c| {
            common::narwhal()
                .args([
                    "--netns",
                    &c.netns().display().to_string(),
                    "-4",
                    A4,
                    "-6",
                    A6,
                ])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let winners: Vec<usize> = (0..outs.len())
        .filter(|&i| outs[i].status.success())
        .collect();
    assert_eq!(winners.len(), 1, "exactly one racer wins: {winners:?}");
    for (i, o) in outs.iter().enumerate() {
        if i != winners[0] {
            let e = refused(o);
            assert!(
                e.contains("already in use") || e.contains("File exists"),
                "{e}"
            );
            // the losers changed nothing in their own namespace
            assert!(no_eth0(&racers[i]), "racer {i} kept eth0");
        }
    }
    // the host holds exactly the winner's link
    let links = ip_json(None, &["link", "show"]);
    let nw: Vec<_> = links
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["ifname"].as_str().unwrap().starts_with("nw-"))
        .collect();
    assert_eq!(nw.len(), 1, "{links}");
    ok(&nw_remove(&racers[winners[0]]));
    assert_eq!(snapshot(None), host_before);
}

fn nw_remove(c: &NsProc) -> Output {
    nw(&["remove", "--netns", &c.netns().display().to_string()])
}

#[test]
fn host_routes_carry_narwhals_protocol_for_both_families() {
    require_root!();
    private_host();
    let c = NsProc::new();
    ok(&setup(&c, &["-4", A4, "-6", A6]));
    let h = format!("nw-{}", c.pid());
    for (fam, dst) in [("-4", A4), ("-6", A6)] {
        let routes = ip_json(None, &[fam, "route", "show", "dev", &h]);
        let r = routes
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["dst"] == dst)
            .unwrap_or_else(|| panic!("no route to {dst}: {routes}"));
        // without /etc/iproute2/rt_protos.d/narwhal.conf, ip prints the number
        let proto = r["protocol"].as_str().unwrap_or_default();
        assert!(proto == "77" || proto == "narwhal", "{r}");
        // and no kernel-made route to the container besides narwhal's
        assert_eq!(
            routes
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["dst"] == dst)
                .count(),
            1,
            "{routes}"
        );
    }
}

#[test]
fn list_json_describes_every_link() {
    require_root!();
    private_host();
    let (a, b) = (NsProc::new(), NsProc::new());
    ok(&setup(&a, &["-4", A4, "-6", A6]));
    ok(&setup(
        &b,
        &["-4", "198.51.100.41", "--paranoid", "--forwarding"],
    ));
    let out = nw(&["list", "--json"]);
    ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("list --json is JSON");
    let list = v.as_array().expect("an array");
    assert_eq!(list.len(), 2, "{v}");
    let find = |c: &NsProc| {
        let name = format!("nw-{}", c.pid());
        list.iter()
            .find(|e| e["host_interface"] == name)
            .unwrap_or_else(|| panic!("{name}: {v}"))
            .clone()
    };
    let ea = find(&a);
    assert_eq!(ea["key"], a.pid().to_string());
    assert_eq!(ea["container_addresses"], serde_json::json!([A4, A6]));
    assert_eq!(
        ea["host_addresses"],
        serde_json::json!(["169.254.0.1", "fe80::1"])
    );
    assert_eq!(ea["filter"], false);
    assert_eq!(ea["forwarding_ipv4"], false);
    assert_eq!(ea["container_alive"], true);
    let mac = ip_json(Some(&a), &["link", "show", "eth0"])[0]["address"].clone();
    assert_eq!(ea["container_mac"], mac);
    let eb = find(&b);
    assert_eq!(eb["filter"], true);
    assert_eq!(eb["forwarding_ipv4"], true);
    assert_eq!(
        eb["forwarding_ipv6"],
        serde_json::Value::Null,
        "IPv6 off: {eb}"
    );
    // the table for people names both
    let t = String::from_utf8(nw(&["list"]).stdout).unwrap();
    assert!(
        t.contains(&format!("nw-{}", a.pid())) && t.contains(&format!("nw-{}", b.pid())),
        "{t}"
    );
    ok(&nw_remove(&b));
}

/// Send UDP `payload` from `src` to `dst:port` inside the namespace of
/// process `pid` (the address must be configured there).
fn send_from(pid: u32, src: IpAddr, dst: IpAddr, port: u16, payload: &'static [u8]) {
    common::udp_send_from(
        pid,
        SocketAddr::new(src, 0),
        SocketAddr::new(dst, port),
        payload,
    );
}

/// Read datagrams until `marker` arrives (or 10 s pass); returns all.
fn until_marker(s: &UdpSocket, marker: &[u8]) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    while Instant::now() < deadline {
        if let Ok(n) = s.recv(&mut buf) {
            got.push(buf[..n].to_vec());
            if &buf[..n] == marker {
                return got;
            }
        }
    }
    let debug =
        run_ok(cmd("sh").args(["-c", "nft list ruleset; ip -s link; ip route; ip -6 route"]));
    panic!(
        "the genuine marker {:?} never arrived; got {got:?}\n{debug}",
        String::from_utf8_lossy(marker)
    );
}

/// On a host with loose reverse-path filtering (`all.rp_filter=2`, the
/// systemd default) and default routes for both families, a container
/// sends from addresses that are not its own (routable via the default
/// routes), to the host and to another container: nothing forged is
/// delivered, genuine traffic is; the shared check counted the drops.
#[test]
fn forged_sources_are_dropped_on_a_loose_rp_filter_host_with_default_routes() {
    require_root!();
    private_host();
    sysctl_write("net/ipv4/conf/all/rp_filter", "2");
    sysctl_write("net/ipv4/conf/default/rp_filter", "2");
    // a router: containers reach each other through it
    sysctl_write("net/ipv4/ip_forward", "1");
    sysctl_write("net/ipv6/conf/all/forwarding", "1");
    let up = unique("nwu");
    common::uplink(&up);
    run_ok(cmd("ip").args(["addr", "add", "198.18.0.1/24", "dev", &up]));
    run_ok(cmd("ip").args(["addr", "add", "2001:db8:ff::1/64", "dev", &up, "nodad"]));
    run_ok(cmd("ip").args(["route", "add", "default", "via", "198.18.0.254"]));
    run_ok(cmd("ip").args([
        "-6",
        "route",
        "add",
        "default",
        "via",
        "2001:db8:ff::fe",
        "dev",
        &up,
    ]));
    let (a, b) = (NsProc::new(), NsProc::new());
    ok(&setup(&a, &["-4", A4, "-6", A6]));
    ok(&setup(&b, &["-4", "198.51.100.41", "-6", "2001:db8::41"]));
    // A takes addresses that are not its own, routable via the defaults
    for (fam, addr) in [("-4", "198.51.100.99/32"), ("-6", "2001:db8::99/128")] {
        let mut args = vec![fam, "addr", "add", addr, "dev", "eth0"];
        if fam == "-6" {
            args.push("nodad");
        }
        run_ok(a.cmd("ip").args(args));
    }
    // receivers: on the host's uplink address, and in B
    let host4 = UdpSocket::bind("198.18.0.1:7001").unwrap();
    let host6 = UdpSocket::bind("[2001:db8:ff::1]:7001").unwrap();
    let (b4, b6) = bind_in(b.pid(), "198.51.100.41:7001", "[2001:db8::41]:7001");
    let cases: [(&UdpSocket, &str, &str, &str); 4] = [
        (&host4, "198.18.0.1", "198.51.100.99", A4),
        (&host6, "2001:db8:ff::1", "2001:db8::99", A6),
        (&b4, "198.51.100.41", "198.51.100.99", A4),
        (&b6, "2001:db8::41", "2001:db8::99", A6),
    ];
    for (sock, dst, forged, own) in cases {
        let dst: IpAddr = dst.parse().unwrap();
        send_from(a.pid(), forged.parse().unwrap(), dst, 7001, b"forged");
        send_from(a.pid(), own.parse().unwrap(), dst, 7001, b"genuine");

        let got = until_marker(sock, b"genuine");
        assert_eq!(
            got,
            vec![b"genuine".to_vec()],
            "to {dst}: only the genuine datagram arrives"
        );
    }
    let rules = run_ok(cmd("nft").args(["list", "chain", "inet", "narwhal", "source-check"]));
    assert!(!rules.contains("counter packets 0 "), "{rules}");
}

/// The shared source check: the first setup on a host makes it; a first
/// setup that fails takes it away again (the host is exactly as before);
/// once made it stays for the containers to come, and `narwhal check`
/// reports it missing after a ruleset flush, and `--repair` restores it.
#[test]
fn the_first_setup_makes_the_shared_source_check() {
    require_root!();
    common::private_host_unprimed();
    let tables = || run_ok(cmd("nft").args(["list", "tables"]));
    assert!(!tables().contains("inet narwhal"));
    let c = NsProc::new();
    let before = (snapshot(None), tables());
    // a failure after the check was made: step 3 is the first one after it
    let o = common::narwhal()
        .args(["--netns", &c.netns().display().to_string(), "-4", A4])
        .env("NARWHAL_FAIL_STEP", "3")
        .output()
        .unwrap();
    let e = refused(&o);
    assert!(
        e.contains("rolled back: host: nft delete table inet narwhal (unless another narwhal link uses it), host: link del"),
        "{e}"
    );
    assert!(
        (snapshot(None), tables()) == before,
        "the failed first setup left something"
    );
    ok(&setup(&c, &["-4", A4]));
    assert!(tables().contains("table inet narwhal"), "{}", tables());
    let ns = c.netns().display().to_string();
    ok(&nw(&["check", "--netns", &ns]));
    run_ok(cmd("nft").arg("flush").arg("ruleset"));
    let o = nw(&["check", "--netns", &ns]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("missing: host: nft add table inet narwhal")
    );
    ok(&nw(&["check", "--repair", "--netns", &ns]));
    assert!(tables().contains("table inet narwhal"));
    ok(&nw_remove(&c));
}
