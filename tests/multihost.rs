//! Many hosts: each host's BIRD announces narwhal's routes (route protocol
//! 77, learnt with packaging/bird/narwhal.conf) to a router with eBGP, and
//! containers on different hosts reach each other through it.
//!
//! The router and the hosts are namespaces (`unshare -n` processes) wired
//! with veth pairs; BIRD 2 runs in each, started by the test and killed by
//! pid on drop. Times (route withdrawn, moved, host dead) are printed, not
//! asserted; every wait polls the router's routing decision
//! (`ip route get`) with a deadline.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{private_host, run, run_ok, unique, NsProc};

/// BGP hold time of every session (BIRD's minimum): a dead host's routes
/// go this long after its last keepalive.
const HOLD: u32 = 3;
/// How long any wait may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(30);

const INCLUDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/bird/narwhal.conf");

/// A scratch directory for configurations, sockets and logs; removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        let d = std::env::temp_dir().join(unique("narwhal-mh-"));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A BIRD process in a namespace, killed (by its pid) on drop.
struct Bird {
    child: Child,
    log: PathBuf,
}

impl Bird {
    fn start(ns: &NsProc, dir: &Path, name: &str, config: &str) -> Bird {
        let conf = dir.join(format!("{name}.conf"));
        let log = dir.join(format!("{name}.log"));
        std::fs::write(&conf, format!("log \"{}\" all;\n{config}", log.display())).unwrap();
        let out = run(Command::new("bird").arg("-p").arg("-c").arg(&conf));
        assert!(
            out.status.success(),
            "{name}: bird -p: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // -f: in the foreground, so that the child is bird itself (nsenter
        // execs it) and its pid is the one to kill
        let child = ns
            .cmd("bird")
            .arg("-f")
            .arg("-c")
            .arg(&conf)
            .arg("-s")
            .arg(dir.join(format!("{name}.ctl")))
            .arg("-P")
            .arg(dir.join(format!("{name}.pid")))
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn bird (apt-get install bird2)");
        Bird { child, log }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<_> = log.lines().rev().take(15).collect();
            eprintln!("{}:\n{}", self.log.display(), tail.join("\n"));
        }
    }
}

/// A namespace that forwards both families, with lo up: a router or host.
fn router_ns() -> NsProc {
    let ns = NsProc::new();
    run_ok(ns.cmd("ip").args(["link", "set", "lo", "up"]));
    for s in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
        run_ok(ns.cmd("sysctl").args(["-qw", s]));
    }
    ns
}

/// A veth pair from interface `a.1` in `a.0` to `b.1` in `b.0`.
fn veth(a: (&NsProc, &str), b: (&NsProc, &str)) {
    let (pa, pb) = (a.0.pid().to_string(), b.0.pid().to_string());
    run_ok(Command::new("ip").args([
        "link", "add", a.1, "netns", &pa, "type", "veth", "peer", "name", b.1, "netns", &pb,
    ]));
}

/// Give `dev` in `ns` an IPv4 and an IPv6 address (CIDR) and bring it up.
fn address(ns: &NsProc, dev: &str, v4: &str, v6: &str) {
    let ip = |args: &[&str]| run_ok(ns.cmd("ip").args(args));
    ip(&["addr", "add", v4, "dev", dev]);
    ip(&["addr", "add", v6, "dev", dev, "nodad"]);
    ip(&["link", "set", dev, "up"]);
}

/// Settings every session shares: short timers so that tests run fast.
fn timers() -> String {
    format!(
        "hold time {HOLD}; keepalive time 1; connect delay time 1; \
         connect retry time 2; error wait time 1, 5;"
    )
}

/// A router and hosts 1..=n wired to it: host i's uplink `up0` has
/// 198.18.i.2/30 and 2001:db8:ff:i::2/64, the router's end .1 and ::1.
struct Net {
    router: NsProc,
    hosts: Vec<NsProc>,
    birds: Vec<Option<Bird>>, // router first, then host i at index i
    dir: Dir,
}

impl Net {
    /// `own[i-1]`: the prefixes host i announces as a whole (IPv4, IPv6).
    fn new(own: &[(&str, &str)]) -> Net {
        private_host();
        let dir = Dir::new();
        let router = router_ns();
        let mut rconf = format!(
            "router id 198.18.0.1;\nprotocol device {{ }}\n\
             protocol kernel {{ ipv4 {{ import none; export where source = RTS_BGP; }}; }}\n\
             protocol kernel {{ ipv6 {{ import none; export where source = RTS_BGP; }}; }}\n\
             template bgp host {{ local as 65000; {} }}\n\
             filter hosts4 {{ if net ~ [ 198.51.100.0/24{{24,32}} ] then accept; reject; }}\n\
             filter hosts6 {{ if net ~ [ 2001:db8:c::/48{{48,128}} ] then accept; reject; }}\n",
            timers()
        );
        let mut hosts = Vec::new();
        let mut birds = vec![None];
        for (n, (own4, own6)) in own.iter().enumerate() {
            let i = n + 1;
            let h = router_ns();
            let (up0, rif) = ("up0", format!("h{i}"));
            veth((&h, up0), (&router, &rif));
            address(
                &router,
                &rif,
                &format!("198.18.{i}.1/30"),
                &format!("2001:db8:ff:{i}::1/64"),
            );
            address(
                &h,
                up0,
                &format!("198.18.{i}.2/30"),
                &format!("2001:db8:ff:{i}::2/64"),
            );
            let ip_h = |args: &[&str]| run_ok(h.cmd("ip").args(args));
            ip_h(&["route", "add", "default", "via", &format!("198.18.{i}.1")]);
            let gw6 = format!("2001:db8:ff:{i}::1");
            ip_h(&["-6", "route", "add", "default", "via", &gw6]);
            let asn = 65100 + i;
            rconf.push_str(&format!(
                "protocol bgp h{i}_4 from host {{ neighbor 198.18.{i}.2 as {asn}; \
                 ipv4 {{ import filter hosts4; export none; }}; }}\n\
                 protocol bgp h{i}_6 from host {{ neighbor 2001:db8:ff:{i}::2 as {asn}; \
                 ipv6 {{ import filter hosts6; export none; }}; }}\n"
            ));
            let set = |p: &str| {
                if p.is_empty() {
                    String::new()
                } else {
                    format!("{p}+")
                }
            };
            let mut hconf = format!(
                "router id 198.18.{i}.2;\n\
                 define NARWHAL_OWN4 = [ {} ];\ndefine NARWHAL_OWN6 = [ {} ];\n\
                 include \"{INCLUDE}\";\n",
                set(own4),
                set(own6)
            );
            for (fam, p) in [("ipv4", own4), ("ipv6", own6)] {
                if !p.is_empty() {
                    hconf.push_str(&format!(
                        "protocol static {{ {fam}; route {p} unreachable; }}\n"
                    ));
                }
            }
            hconf.push_str(&format!(
                "template bgp tor {{ local as {asn}; {} }}\n\
                 protocol bgp tor4 from tor {{ neighbor 198.18.{i}.1 as 65000; \
                 source address 198.18.{i}.2; \
                 ipv4 {{ import none; export filter narwhal_export4; }}; }}\n\
                 protocol bgp tor6 from tor {{ neighbor 2001:db8:ff:{i}::1 as 65000; \
                 source address 2001:db8:ff:{i}::2; \
                 ipv6 {{ import none; export filter narwhal_export6; }}; }}\n",
                timers()
            ));
            birds.push(Some(Bird::start(&h, &dir.0, &format!("h{i}"), &hconf)));
            hosts.push(h);
        }
        birds[0] = Some(Bird::start(&router, &dir.0, "r", &rconf));
        Net {
            router,
            hosts,
            birds,
            dir,
        }
    }

    /// The pid of host i's BIRD (0: the router's).
    fn bird_pid(&self, i: usize) -> nix::unistd::Pid {
        let b = self.birds[i].as_ref().unwrap();
        nix::unistd::Pid::from_raw(b.child.id() as i32)
    }

    fn host(&self, i: usize) -> &NsProc {
        &self.hosts[i - 1]
    }

    /// Host i's address on its uplink: the router's next hop to host i.
    fn uplink(i: usize, addr: &str) -> String {
        if addr.contains(':') {
            format!("2001:db8:ff:{i}::2")
        } else {
            format!("198.18.{i}.2")
        }
    }

    /// Where the router sends packets for `addr`: host i, or None.
    fn router_host(&self, addr: &str) -> Option<usize> {
        let out = run(self.router.cmd("ip").args(["-j", "route", "get", addr]));
        if !out.status.success() {
            return None; // no route
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let gw = v[0]["gateway"].as_str()?;
        (1..=self.hosts.len()).find(|&i| Net::uplink(i, addr) == gw)
    }

    /// Poll until the router sends `addr` to `want`; the time since `start`.
    fn wait_router(&self, start: Instant, addr: &str, want: Option<usize>) -> Duration {
        loop {
            let now = self.router_host(addr);
            if now == want {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < DEADLINE,
                "router: {addr} goes to host {now:?}, want {want:?} (logs in {})",
                self.dir.0.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Wait from now until the router sends both of a container's addresses
    /// to `want`, and print how long each took, after `what`.
    fn report(&self, what: &str, (v4, v6): (&str, &str), want: Option<usize>) {
        let t = Instant::now();
        let d4 = self.wait_router(t, v4, want);
        let d6 = self.wait_router(t, v6, want);
        println!("multihost: {what}: IPv4 {}, IPv6 {}", ms(d4), ms(d6));
    }

    /// narwhal run inside host i for container `c`.
    fn narwhal(&self, i: usize, args: &[&str]) {
        let bin = env!("CARGO_BIN_EXE_narwhal");
        run_ok(self.host(i).cmd(bin).args(args));
    }

    fn up(&self, i: usize, c: &NsProc, v4: &str, v6: &str) {
        let pid = c.pid().to_string();
        self.narwhal(i, &["--pid", &pid, "-4", v4, "-6", v6]);
    }

    fn remove(&self, i: usize, c: &NsProc) {
        self.narwhal(i, &["remove", "--pid", &c.pid().to_string()]);
    }
}

/// One TCP exchange: a listener in `server` answers a fresh token, the
/// client in `client` connects to `dst` and must receive it.
fn tcp(server: &NsProc, client: &NsProc, dst: &str, port: u16) {
    let token = unique("reply-");
    let p = port.to_string();
    let mut srv = server
        .cmd("busybox")
        .args(["nc", "-l", "-p", &p, "-e", "echo", &token])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while run_ok(
        server
            .cmd("ss")
            .args(["-Hltn", "sport", "=", &format!(":{p}")]),
    )
    .trim()
    .is_empty()
    {
        assert!(start.elapsed() < DEADLINE, "no listener on {p}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let got = run(client
        .cmd("busybox")
        .args(["nc", "-w", "10", dst, &p])
        .stdin(Stdio::null()));
    let _ = srv.kill();
    let _ = srv.wait();
    assert_eq!(
        String::from_utf8_lossy(&got.stdout).trim(),
        token,
        "TCP to [{dst}]:{p}: {}",
        String::from_utf8_lossy(&got.stderr)
    );
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// Host 1 owns 198.51.100.0/26 and 2001:db8:c:1::/64 (announced once);
/// host 2 owns 198.51.100.64/26 and 2001:db8:c:2::/64.
const OWN: [(&str, &str); 2] = [
    ("198.51.100.0/26", "2001:db8:c:1::/64"),
    ("198.51.100.64/26", "2001:db8:c:2::/64"),
];

#[test]
fn containers_on_two_hosts_talk_removal_and_move_reach_the_router() {
    require_root!();
    let net = Net::new(&OWN);
    let (a, b, m) = (NsProc::new(), NsProc::new(), NsProc::new());
    // a: inside host 1's prefixes; b: outside host 2's, announced as /32, /128
    let (a4, a6) = ("198.51.100.10", "2001:db8:c:1::10");
    let (b4, b6) = ("198.51.100.200", "2001:db8:c:9::20");
    let (m4, m6) = ("198.51.100.11", "2001:db8:c:1::11");
    net.up(1, &a, a4, a6);
    net.up(1, &m, m4, m6);
    net.up(2, &b, b4, b6);
    let t = Instant::now();
    for addr in [a4, a6, m4, m6] {
        net.wait_router(t, addr, Some(1));
    }
    for addr in [b4, b6] {
        net.wait_router(t, addr, Some(2));
    }
    // host 1's containers are covered by its aggregate: no /32, /128
    let r4 = run_ok(net.router.cmd("ip").args(["-4", "route", "show", a4]));
    assert!(r4.trim().is_empty(), "router has a /32 for {a4}: {r4}");
    let r6 = run_ok(net.router.cmd("ip").args(["-6", "route", "show", a6]));
    assert!(r6.trim().is_empty(), "router has a /128 for {a6}: {r6}");

    // container <-> container across hosts, both families, both ways
    tcp(&b, &a, b4, 7004);
    tcp(&b, &a, b6, 7006);
    tcp(&a, &b, a4, 7014);
    tcp(&a, &b, a6, 7016);

    // removal: the router drops b's routes (host 2 owns no prefix for them)
    net.remove(2, &b);
    net.report(
        "container removed -> router dropped its routes, after narwhal exited",
        (b4, b6),
        None,
    );

    // move: m's addresses (inside host 1's aggregate) go to a container on
    // host 2, which announces them as /32, /128: the router follows
    net.remove(1, &m);
    let moved = NsProc::new();
    net.up(2, &moved, m4, m6);
    net.report(
        "address moved to host 2 -> router follows, after narwhal exited",
        (m4, m6),
        Some(2),
    );
    // and it is reachable there from host 1's container
    tcp(&moved, &a, m4, 7024);
    tcp(&moved, &a, m6, 7026);
    // a, still on host 1, is still reached through the aggregate
    assert_eq!(net.router_host(a4), Some(1));
    assert_eq!(net.router_host(a6), Some(1));

    // the moved container dies without narwhal: its namespace goes, the
    // kernel deletes the link and its routes, the router follows (back to
    // host 1's aggregate)
    drop(moved);
    net.report(
        "container's namespace gone -> router back to the aggregate",
        (m4, m6),
        Some(1),
    );
}

#[test]
fn a_dead_hosts_routes_are_withdrawn() {
    require_root!();
    let net = Net::new(&[("", ""), ("", "")]);
    let (a, b) = (NsProc::new(), NsProc::new());
    let (a4, a6) = ("198.51.100.30", "2001:db8:c:3::30");
    let (b4, b6) = ("198.51.100.40", "2001:db8:c:4::40");
    net.up(1, &a, a4, a6);
    net.up(2, &b, b4, b6);
    let t = Instant::now();
    for (addr, h) in [(a4, 1), (a6, 1), (b4, 2), (b6, 2)] {
        net.wait_router(t, addr, Some(h));
    }
    tcp(&b, &a, b6, 7036);

    // host 1 stops answering (BIRD frozen: no keepalive, no TCP close, as
    // when a host dies): the router keeps its routes until the hold time
    // runs out
    let pid = net.bird_pid(1);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    net.report(
        &format!("host silent -> router withdrew its routes (hold time {HOLD} s)"),
        (a4, a6),
        None,
    );
    assert_eq!(net.router_host(b4), Some(2), "host 2 is unaffected");
    assert_eq!(net.router_host(b6), Some(2), "host 2 is unaffected");

    // host 2's BIRD crashes (SIGKILL): the kernel closes its sessions, and
    // the router drops the routes without waiting for the hold time
    nix::sys::signal::kill(net.bird_pid(2), nix::sys::signal::Signal::SIGKILL).unwrap();
    net.report(
        "host's BIRD killed -> router withdrew its routes",
        (b4, b6),
        None,
    );
}

/// examples/bird/host-ibgp.conf as host `me` (11 or 12) runs it: the
/// shipped include file, no syslog; host 12's is host 11's with the two
/// hosts' numbers swapped.
fn ibgp_example(me: u8) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bird/host-ibgp.conf");
    let text = std::fs::read_to_string(src)
        .unwrap()
        .replace("/usr/share/narwhal/bird/narwhal.conf", INCLUDE)
        .replace("log syslog all;", "");
    if me == 11 {
        return text;
    }
    text.replace("0.11", "0.@")
        .replace("::11", "::@")
        .replace("0.12", "0.11")
        .replace("::12", "::11")
        .replace('@', "12")
}

/// Hosts that share a network route to each other directly with iBGP
/// (examples/bird/host-ibgp.conf, unchanged but for the numbers): each
/// host's BIRD writes the other host's container routes to its kernel.
#[test]
fn ibgp_example_hosts_route_to_each_other() {
    require_root!();
    private_host();
    let dir = Dir::new();
    let (h11, h12) = (router_ns(), router_ns());
    veth((&h11, "lan"), (&h12, "lan"));
    let mut birds = Vec::new();
    for (n, h) in [(11, &h11), (12, &h12)] {
        address(
            h,
            "lan",
            &format!("198.18.0.{n}/24"),
            &format!("2001:db8:ff:1::{n}/64"),
        );
        birds.push(Bird::start(h, &dir.0, &format!("h{n}"), &ibgp_example(n)));
    }
    let (a, b) = (NsProc::new(), NsProc::new());
    let bin = env!("CARGO_BIN_EXE_narwhal");
    for (h, c, n) in [(&h11, &a, 11), (&h12, &b, 12)] {
        let (v4, v6) = (format!("198.51.100.{n}"), format!("2001:db8:c::{n}"));
        let pid = c.pid().to_string();
        run_ok(h.cmd(bin).args(["--pid", &pid, "-4", &v4, "-6", &v6]));
    }
    // each host has the other's containers from BGP (proto bird), via it
    let start = Instant::now();
    for (h, other) in [(&h11, 12), (&h12, 11)] {
        for (fam, dst, gw) in [
            (
                "-4",
                format!("198.51.100.{other}"),
                format!("198.18.0.{other}"),
            ),
            (
                "-6",
                format!("2001:db8:c::{other}"),
                format!("2001:db8:ff:1::{other}"),
            ),
        ] {
            loop {
                let r = run_ok(
                    h.cmd("ip")
                        .args([fam, "route", "show", "proto", "bird", &dst]),
                );
                if r.contains(&format!("via {gw} ")) {
                    break;
                }
                assert!(
                    start.elapsed() < DEADLINE,
                    "no BGP route to {dst} via {gw}: {r:?} (logs in {})",
                    dir.0.display()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    println!(
        "multihost: iBGP example: both hosts have each other's routes after {}",
        ms(start.elapsed())
    );
    tcp(&b, &a, "198.51.100.12", 7044);
    tcp(&a, &b, "2001:db8:c::11", 7046);
    drop(birds);
}

/// The shipped examples are valid BIRD 2 configurations with the shipped
/// include file.
#[test]
fn example_configurations_parse() {
    let dir = Dir::new();
    for name in ["host-ebgp.conf", "host-ibgp.conf"] {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/bird")
            .join(name);
        let text = std::fs::read_to_string(&src)
            .unwrap()
            .replace("/usr/share/narwhal/bird/narwhal.conf", INCLUDE);
        assert_ne!(
            text,
            std::fs::read_to_string(&src).unwrap(),
            "{name} includes the installed narwhal.conf"
        );
        let conf = dir.0.join(name);
        std::fs::write(&conf, text).unwrap();
        let out = run(Command::new("bird").arg("-p").arg("-c").arg(&conf));
        assert!(
            out.status.success(),
            "bird -p {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
