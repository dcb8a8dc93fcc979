//! What an operator's first week broke (issue #11), each on the real
//! kernel in private namespaces: filters of running containers, link
//! flaps, hidden hook errors, names, stale marks, forwarding, signals and
//! messages.

mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{ip_json, private_host, run_ok, snapshot, unique, NsProc};

fn nw(args: &[&str]) -> Output {
    common::narwhal().args(args).output().expect("run narwhal")
}

fn netns(c: &NsProc) -> String {
    c.netns().display().to_string()
}

fn setup(c: &NsProc, extra: &[&str]) -> Output {
    let ns = netns(c);
    let mut args = vec!["--netns", ns.as_str()];
    args.extend_from_slice(extra);
    nw(&args)
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "narwhal failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Exit `code` and exactly one line on stderr; returns it.
fn fails(o: &Output, code: i32) -> String {
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "{e}");
    assert_eq!(e.lines().count(), 1, "one line: {e}");
    e
}

/// Poll `cond` every 10 ms until it holds; panic naming `what` after 10 s.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn nft_tables() -> String {
    run_ok(Command::new("nft").args(["list", "tables"]))
}

/// The hook at `stage` for container `id` (init `c` at createRuntime).
fn hook(stage: &str, c: &NsProc, id: &str, annotations: &[(&str, &str)], syslog: &str) -> Output {
    common::run_hook(stage, c.pid(), id, annotations, syslog)
}

/// Item 1: A failed run never strips a running container's `--paranoid`
/// filter: not from the command line, not from the hook.
#[test]
fn a_failed_run_never_strips_a_running_containers_filter() {
    require_root!();
    private_host();
    let a = NsProc::new();
    ok(&setup(&a, &["--paranoid", "-4", "198.51.100.60"]));
    let table = format!("narwhal-nw-{}", a.pid());
    assert!(nft_tables().contains(&table));
    // the same container again, without --paranoid: refused at the link
    let e = fails(&setup(&a, &["-4", "198.51.100.61"]), 1);
    assert!(e.contains("already exists"), "{e}");
    assert!(
        nft_tables().contains(&table),
        "the running container's filter is gone"
    );

    // hook mode: two containers asking for one host interface
    let shared = unique("nws");
    let (b, c) = (NsProc::new(), NsProc::new());
    let ib = unique("hb");
    let ann = |ip| {
        vec![
            ("narwhal.ipv4", ip),
            ("narwhal.host-interface", shared.as_str()),
            ("narwhal.paranoid", "true"),
        ]
    };
    ok(&hook(
        "createRuntime",
        &b,
        &ib,
        &ann("198.51.100.62"),
        "/nonexistent",
    ));
    let o = hook(
        "createRuntime",
        &c,
        &unique("hc"),
        &ann("198.51.100.63"),
        "/nonexistent",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        nft_tables().contains(&format!("narwhal-{shared}")),
        "b's filter is gone"
    );
    // and b still works: its filter passes its own traffic
    run_ok(Command::new("busybox").args(["ping", "-c1", "-W5", "198.51.100.62"]));
    ok(&hook(
        "poststop",
        &b,
        &ib,
        &ann("198.51.100.62"),
        "/nonexistent",
    ));
    ok(&nw(&["remove", "--netns", &netns(&a)]));
}

/// Send one UDP datagram from `pid`'s namespace to `dst` and receive it on
/// `rx` (already bound): the link works in that direction.
fn udp_works(pid: u32, src: &'static str, dst: &'static str, rx: &UdpSocket) {
    common::udp_send_from(pid, src.parse().unwrap(), dst.parse().unwrap(), b"hello");
    rx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 16];
    let n = rx
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("nothing from {src} to {dst}: {e}"));
    assert_eq!(&buf[..n], b"hello");
}

/// Item 2: A link flap loses neighbours, routes and IPv6 addresses: `check`
/// says what is missing, on which side; `check --repair` restores it, and
/// only it; the container keeps running and talks again.
#[test]
fn check_and_repair_after_link_flaps() {
    require_root!();
    private_host();
    let c = NsProc::new();
    let (v4, v6) = ("198.51.100.64", "2001:db8::64");
    ok(&setup(&c, &["-4", v4, "-6", v6]));
    let h = format!("nw-{}", c.pid());
    let ns = netns(&c);
    assert_eq!(
        ok(&nw(&["check", "--netns", &ns])),
        "",
        "healthy: nothing to say"
    );

    // a flap of either end; check finds the addresses on the other end
    type Flap<'a> = (&'a str, Box<dyn Fn(&str) -> Command + 'a>, &'a [String]);
    let flaps: [Flap; 2] = [
        (
            "host end",
            Box::new(|s| {
                let mut c = Command::new("ip");
                c.args(["link", "set", h.as_str(), s]);
                c
            }),
            &[
                format!("missing: host: route add {v4}/32 dev {h} src 169.254.0.1"),
                format!(
                    "missing: host: addr add fe80::1 peer {v6}/128 noprefixroute nodad dev {h}"
                ),
                format!("missing: host: route add {v6}/128 dev {h}"),
            ],
        ),
        (
            "container end",
            Box::new(|s| {
                let mut c = c.cmd("ip");
                c.args(["link", "set", "eth0", s]);
                c
            }),
            &[
                "missing: container: route add default via 169.254.0.1 dev eth0".to_string(),
                format!("missing: container: addr add {v6} peer fe80::1/128 nodad dev eth0"),
                "missing: container: route add default via fe80::1 dev eth0".to_string(),
            ],
        ),
    ];
    for (end, flap, wants) in flaps {
        run_ok(&mut flap("down"));
        run_ok(&mut flap("up"));
        let o = nw(&["check", "--netns", &ns]);
        let e = fails(&o, 1);
        assert!(e.contains("problem(s) on"), "{e}");
        let report = String::from_utf8_lossy(&o.stdout).into_owned();
        for want in wants {
            assert!(
                report.lines().any(|l| l == want),
                "{end}: check lacks {want:?}:\n{report}"
            );
        }
        assert!(
            report.lines().all(|l| l.starts_with("missing: ")),
            "{end}: {report}"
        );
        let out = ok(&nw(&["--trace", "check", "--repair", "--netns", &ns]));
        assert_eq!(out, "", "{out}");
        assert_eq!(ok(&nw(&["check", "--netns", &ns])), "", "{end}: repaired");
    }
    let before_pid = c.pid();
    assert_eq!(before_pid, c.pid(), "the container kept running");
    let rx4 = UdpSocket::bind("0.0.0.0:7101").unwrap();
    udp_works(c.pid(), "198.51.100.64:0", "169.254.0.1:7101", &rx4);
    let rx6 = UdpSocket::bind("[::]:7106").unwrap();
    let idx = ip_json(Some(&c), &["link", "show", "eth0"])[0]["ifindex"]
        .as_u64()
        .unwrap();
    let gw6: &'static str = Box::leak(format!("[fe80::1%{idx}]:7106").into_boxed_str());
    udp_works(c.pid(), "[2001:db8::64]:0", gw6, &rx6);
    ok(&nw(&["remove", "--netns", &ns]));
}

/// Item 3: Without syslog, the hook's error is still the first line a runtime
/// shows; the missing syslog is only noted after it.
#[test]
fn hook_error_comes_first_without_syslog() {
    require_root!();
    private_host();
    let c = NsProc::new();
    let id = unique("hs");
    let o = hook(
        "createRuntime",
        &c,
        &id,
        &[("narwhal.ipv4", "198.51.100.65"), ("narwhal.ipv44", "x")],
        "/nonexistent/log",
    );
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = e.lines().collect();
    assert!(
        lines[0].starts_with(&format!(
            "narwhal: createRuntime {id}: unknown annotation 'narwhal.ipv44'"
        )),
        "{e}"
    );
    assert!(
        lines
            .iter()
            .skip(1)
            .all(|l| l.starts_with("narwhal: warning: no syslog at /nonexistent/log")),
        "{e}"
    );
}

/// Item 4: Names the kernel would rewrite (`x%d`), that nftables cannot parse,
/// or that are sysctl directories: refused before any change.
#[test]
fn names_the_kernel_rewrites_or_nftables_cannot_parse_are_refused() {
    require_root!();
    private_host();
    let c = NsProc::new();
    let before = (snapshot(None), snapshot(Some(&c)), nft_tables());
    for name in ["x%d", "nw+1", "nw\"x", "nw;x", "all", "default"] {
        for flag in ["--host-interface", "--interface"] {
            let e = fails(
                &setup(&c, &["--paranoid", "-4", "198.51.100.66", flag, name]),
                1,
            );
            assert!(e.contains("interface name"), "{flag} {name}: {e}");
        }
    }
    assert!(
        (snapshot(None), snapshot(Some(&c)), nft_tables()) == before,
        "a refusal changed something"
    );
}

fn marks() -> Vec<String> {
    match std::fs::read_dir("/run/narwhal/filters") {
        Err(_) => vec![],
        Ok(d) => d
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
    }
}

/// narwhal with `nft` out of reach (a private mount namespace where the
/// directory that holds it is an empty tmpfs).
fn without_nft(args: &[&str]) -> Output {
    let nft = run_ok(Command::new("sh").args(["-c", "readlink -f \"$(command -v nft)\""]));
    let dir = Path::new(nft.trim())
        .parent()
        .expect("nft not found")
        .to_owned();
    with_mounts(
        &format!("mount -t tmpfs narwhal-test {}", dir.display()),
        args,
    )
}

/// narwhal in a private mount namespace, after the shell commands `mounts`.
fn with_mounts(mounts: &str, args: &[&str]) -> Output {
    let script = format!("{mounts} && exec \"$0\" \"$@\"");
    Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .arg(env!("CARGO_BIN_EXE_narwhal"))
        .args(args)
        .output()
        .unwrap()
}

/// Item 5: A `--paranoid` run that fails leaves no mark; a plain setup never
/// needs nft once the shared source check is there.
#[test]
fn a_failed_paranoid_run_leaves_no_mark_and_blocks_nothing() {
    require_root!();
    private_host();
    // the shared source check of this host exists (made by a first setup)
    let first = NsProc::new();
    ok(&setup(&first, &["-4", "198.51.100.67"]));
    let c = NsProc::new();
    let mine = |m: &String| m.ends_with(&format!("-nw-{}", c.pid()));
    let host_before = snapshot(None);
    let ns = netns(&c);
    let o = without_nft(&["--netns", &ns, "--paranoid", "-4", "198.51.100.68"]);
    let e = fails(&o, 1);
    assert!(
        e.contains("nft not found") && e.contains("nftables package"),
        "{e}"
    );
    assert!(!marks().iter().any(mine), "a failed run left a mark");
    assert_eq!(snapshot(None), host_before);
    ok(&without_nft(&["--netns", &ns, "-4", "198.51.100.68"]));
    ok(&without_nft(&["remove", "--netns", &ns]));
}

/// Read a counter from `/proc/net/snmp` (IPv4) of this namespace.
fn ip_counter(name: &str) -> u64 {
    let t = std::fs::read_to_string("/proc/thread-self/net/snmp").unwrap();
    let mut lines = t.lines().filter(|l| l.starts_with("Ip: "));
    let (head, vals) = (lines.next().unwrap(), lines.next().unwrap());
    let i = head.split_whitespace().position(|h| h == name).unwrap();
    vals.split_whitespace().nth(i).unwrap().parse().unwrap()
}

/// An IPv6 counter of one interface (`/proc/net/dev_snmp6/IF`).
fn ip6_counter(ifname: &str, name: &str) -> u64 {
    let t = std::fs::read_to_string(format!("/proc/thread-self/net/dev_snmp6/{ifname}")).unwrap();
    t.lines()
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().parse().unwrap()))
        .unwrap()
}

fn send(pid: u32, src: &'static str, dst: &'static str) {
    common::udp_send_from(pid, src.parse().unwrap(), dst.parse().unwrap(), b"fwd");
}

fn bind_in(pid: u32, addr: &'static str) -> UdpSocket {
    let s = common::udp_bind_in(pid, addr.parse().unwrap());
    s.set_nonblocking(true).unwrap();
    s
}

fn received(s: &UdpSocket) -> bool {
    let mut buf = [0u8; 8];
    s.recv(&mut buf).is_ok()
}

/// Item 6: `--forwarding` forwards what the container sends, per configured
/// family, on a host that does not forward; without it the host decides.
#[test]
fn forwarding_does_what_the_docs_say_per_family() {
    require_root!();
    private_host();
    // a fresh namespace does not forward: ip_forward=0, all.forwarding=0
    let (a, b, f) = (NsProc::new(), NsProc::new(), NsProc::new());
    ok(&setup(&a, &["-4", "198.51.100.70", "-6", "2001:db8::70"]));
    ok(&setup(&b, &["-4", "198.51.100.71", "-6", "2001:db8::71"]));
    ok(&setup(
        &f,
        &["-4", "198.51.100.72", "-6", "2001:db8::72", "--forwarding"],
    ));
    let rx4 = bind_in(b.pid(), "198.51.100.71:7200");
    let rx6 = bind_in(b.pid(), "[2001:db8::71]:7200");

    // without --forwarding: dropped, and the kernel counts why
    let n4 = ip_counter("InAddrErrors");
    send(a.pid(), "198.51.100.70:0", "198.51.100.71:7200");
    wait_until("the IPv4 drop to be counted", || {
        ip_counter("InAddrErrors") > n4
    });
    let ha = format!("nw-{}", a.pid());
    let n6 = ip6_counter(&ha, "Ip6InAddrErrors");
    send(a.pid(), "[2001:db8::70]:0", "[2001:db8::71]:7200");
    wait_until("the IPv6 drop to be counted", || {
        ip6_counter(&ha, "Ip6InAddrErrors") > n6
    });
    assert!(
        !received(&rx4) && !received(&rx6),
        "forwarded without --forwarding"
    );

    // with --forwarding: both families forwarded
    send(f.pid(), "198.51.100.72:0", "198.51.100.71:7200");
    send(f.pid(), "[2001:db8::72]:0", "[2001:db8::71]:7200");
    wait_until("IPv4 forwarded", || received(&rx4));
    wait_until("IPv6 forwarded", || received(&rx6));

    // without it, on a host that forwards: the host decides
    run_ok(Command::new("sh").args([
        "-c",
        "echo 1 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding",
    ]));
    send(a.pid(), "198.51.100.70:0", "198.51.100.71:7200");
    send(a.pid(), "[2001:db8::70]:0", "[2001:db8::71]:7200");
    wait_until("IPv4 forwarded by the host's setting", || received(&rx4));
    wait_until("IPv6 forwarded by the host's setting", || received(&rx6));
}

fn stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('T'))
        })
        .unwrap_or(false)
}

/// Item 7: SIGTERM (and SIGINT) in the middle of a setup: everything is rolled
/// back, the error says why, exit 1.
#[test]
fn a_termination_signal_during_setup_rolls_back() {
    require_root!();
    private_host();
    for sig in ["TERM", "INT"] {
        let c = NsProc::new();
        let before = (snapshot(None), snapshot(Some(&c)));
        let child = common::narwhal()
            .args([
                "--netns",
                &netns(&c),
                "-4",
                "198.51.100.73",
                "-6",
                "2001:db8::73",
            ])
            .env("NARWHAL_PAUSE_STEP", "12")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        wait_until("narwhal to pause mid-setup", || stopped(pid));
        run_ok(Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]));
        run_ok(Command::new("kill").args(["-CONT", &pid.to_string()]));
        let o = child.wait_with_output().unwrap();
        let e = fails(&o, 1);
        assert!(e.contains(&format!("interrupted by SIG{sig}")), "{e}");
        assert!(
            e.contains("rolled back: ") && e.contains("host: link del"),
            "{e}"
        );
        assert!(
            (snapshot(None), snapshot(Some(&c))) == before,
            "SIG{sig}: not rolled back"
        );
    }
}

/// Item 9: Messages that say what happened, and what to type.
#[test]
fn messages_name_the_cause() {
    require_root!();
    private_host();
    let c = NsProc::new();
    // an unknown hook stage is a usage error
    let o = hook("preStart", &c, "x", &[], "/nonexistent");
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // the gateway as container address names the container address
    let e = fails(&setup(&c, &["-4", "169.254.0.1"]), 1);
    assert!(e.contains("invalid IPv4 address '169.254.0.1'"), "{e}");

    // a zombie
    let z = Command::new("true").spawn().unwrap();
    wait_until("a zombie", || {
        std::fs::read_to_string(format!("/proc/{}/stat", z.id())).is_ok_and(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
    });
    let e = fails(
        &nw(&["--pid", &z.id().to_string(), "-4", "198.51.100.74"]),
        1,
    );
    assert!(
        e.contains(&format!("process {} has exited (it is a zombie)", z.id())),
        "{e}"
    );
    drop(z);

    // --trace before a subcommand; removing a hook container by its id
    let id = unique("mo");
    ok(&hook(
        "createRuntime",
        &c,
        &id,
        &[("narwhal.ipv4", "198.51.100.75")],
        "/nonexistent",
    ));
    let e = fails(
        &setup(
            &c,
            &[
                "-4",
                "198.51.100.76",
                "--host-interface",
                &common_host_if(&id),
            ],
        ),
        1,
    );
    assert!(
        e.contains(&format!(
            "narwhal remove --host-interface {}",
            common_host_if(&id)
        )),
        "{e}"
    );
    let o = nw(&["--trace", "remove", "--oci-id", &id]);
    let out = ok(&o);
    assert!(out.starts_with("removed "), "{out}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("host: link del"),
        "--trace before remove"
    );
    assert!(ip_json(Some(&c), &["link", "show"])
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["ifname"] != "eth0"));

    // narwhal's own state directory unusable: the message names the path
    let o = with_mounts(
        "mkdir -p /run/narwhal && mount -t tmpfs nwtest /run/narwhal && : > /run/narwhal/filters",
        &["--netns", &netns(&c), "--paranoid", "-4", "198.51.100.78"],
    );
    let e = fails(&o, 1);
    assert!(e.contains("/run/narwhal/filters"), "{e}");

    // not root: says so
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_narwhal"))
        .args(["--netns", &netns(&c), "-4", "198.51.100.77"])
        .output()
        .unwrap();
    let e = fails(&o, 1);
    assert!(
        e.contains("narwhal needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)"),
        "{e}"
    );
}

fn common_host_if(key: &str) -> String {
    narwhal::naming::host_ifname(key)
}
