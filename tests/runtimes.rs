//! End to end: narwhal as the OCI hook of runc, crun and podman.
//!
//! Every test runs in a private "host" network namespace (the test
//! thread's; the runtime, the hook and the test's own connections live in
//! it), starts real containers from a busybox rootfs, and talks to them
//! over real TCP. Containers are removed on drop, also when a test fails.

mod common;
#[path = "common/runtime.rs"]
mod rt;

use std::collections::BTreeSet;
use std::process::Stdio;

use common::syslog;

use rt::{fetch, http_addr, nw_links, serve, Env, Runtime, Spec};

const BODY: &str = "narwhal\n";

/// The host link narwhal made for a container (exactly one nw-* link).
fn only_nw_link() -> serde_json::Value {
    let links: Vec<_> = rt::host_links()
        .into_iter()
        .filter(|l| l["ifname"].as_str().is_some_and(|n| n.starts_with("nw-")))
        .collect();
    assert_eq!(links.len(), 1, "expected one narwhal link: {links:?}");
    links.into_iter().next().unwrap()
}

fn families(addr_show: &serde_json::Value) -> BTreeSet<String> {
    addr_field(addr_show, "family").collect()
}

fn addresses(addr_show: &serde_json::Value) -> Vec<String> {
    addr_field(addr_show, "local").collect()
}

/// `field` of every address in an `ip -j addr show` dump.
fn addr_field<'a>(
    addr_show: &'a serde_json::Value,
    field: &'a str,
) -> impl Iterator<Item = String> + 'a {
    addr_show
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["addr_info"].as_array().unwrap())
        .map(move |a| a[field].as_str().unwrap().to_string())
}

/// `narwhal --trace` of the command line for the same addresses, on a
/// stand-in container: the steps the hook must log, one line each. Names,
/// MAC addresses and the namespace path differ per container and are
/// normalised by `norm`.
fn reference_steps(v4: &str, v6: &str) -> Vec<String> {
    let ns = common::NsProc::new();
    let pid = ns.pid().to_string();
    let o = common::run(common::narwhal().args(["--trace", "--pid", &pid, "-4", v4, "-6", v6]));
    assert!(
        o.status.success(),
        "narwhal --trace: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    common::run_ok(common::narwhal().args(["remove", "--pid", &pid]));
    let host_if = format!("nw-{pid}");
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .map(|l| norm(l, &host_if, &pid, &pid))
        .collect()
}

fn norm(line: &str, host_if: &str, key: &str, pid: &str) -> String {
    let line = line
        .replace(&format!("/proc/{pid}/ns/net"), "NETNS")
        .replace(&format!("narwhal:{key}"), "narwhal:KEY")
        .replace(host_if, "HOSTIF");
    line.split(' ')
        .map(|t| {
            let mac = t.len() == 17
                && t.bytes().enumerate().all(|(i, b)| {
                    if i % 3 == 2 {
                        b == b':'
                    } else {
                        b.is_ascii_hexdigit()
                    }
                });
            if mac {
                "MAC"
            } else {
                t
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A container with IPv4 and IPv6 whose first command binds a web server
/// to both addresses: the network exists before the workload. The host
/// fetches a page over both families; the hook logs each step to syslog.
/// After kill and delete (poststop), while the test still holds the
/// container's namespace: the runtime made that namespace (podman too,
/// with `--network none`), so it ends with the container and poststop
/// leaves the pair to it; the pair lives exactly as long as the namespace.
/// Then the host is as before. (A namespace given by path outlives the
/// container: poststop then deletes the link, as with Docker.)
fn dual_stack(r: Runtime) {
    common::private_host();
    let (v4, v6) = ("198.51.100.10", "2001:db8::10");
    let reference = reference_steps(v4, v6);
    let before = common::snapshot(None);
    let env = Env::new(r);
    let name = common::unique("nwd");
    let spec = Spec::new(
        &[("narwhal.ipv4", v4), ("narwhal.ipv6", v6)],
        &serve(&[http_addr(v4), http_addr(v6)]),
    );
    let ctr = env.start(&name, &spec).unwrap_or_else(|e| panic!("{e}"));
    ctr.wait_listening(1, 1);
    assert_eq!(fetch(v4).as_deref(), Ok(BODY), "IPv4 host -> container");
    assert_eq!(fetch(v6).as_deref(), Ok(BODY), "IPv6 host -> container");

    // The container's interface holds both addresses, the host link is
    // marked as this container's.
    let eth0 = ctr.ip_json(&["addr", "show", "dev", "eth0"]);
    let a = addresses(&eth0);
    assert!(
        a.contains(&v4.to_string()) && a.contains(&v6.to_string()),
        "{eth0}"
    );
    let link = only_nw_link();
    let host_if = link["ifname"].as_str().unwrap().to_string();
    assert_eq!(link["ifalias"], format!("narwhal:{}", ctr.id), "{link}");
    if r != Runtime::Podman {
        assert_eq!(host_if, format!("nw-{name}"), "a short id is used verbatim");
    }

    // Syslog: facility daemon, ident narwhal, info; one line per applied
    // step, the same steps as the command line applies.
    let id = &ctr.id.clone();
    let done = format!("createRuntime {id}: done");
    let msgs = env.syslog.wait_for("createRuntime ... done", |t| t == done);
    for m in &msgs {
        assert_eq!(
            (m.facility, m.severity),
            (syslog::LOG_DAEMON, syslog::LOG_INFO),
            "{}",
            m.raw
        );
        assert_eq!(m.ident, "narwhal", "{}", m.raw);
        assert!(!m.text.contains('\n'), "{}", m.raw);
    }
    let texts: Vec<&str> = msgs.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts.first().copied(),
        Some(
            format!(
                "createRuntime {id}: configuring {host_if} (pid {})",
                ctr.pid
            )
            .as_str()
        ),
        "{}",
        syslog::texts(&msgs)
    );
    assert_eq!(texts.last().copied(), Some(done.as_str()));
    let prefix = format!("createRuntime {id}: ");
    let pid = ctr.pid.to_string();
    let steps: Vec<String> = texts[1..texts.len() - 1]
        .iter()
        .map(|t| {
            let s = t.strip_prefix(&prefix).unwrap_or_else(|| panic!("{t}"));
            norm(s, &host_if, id, &pid)
        })
        .collect();
    // the shared source check is made once per host: whether a run logs it
    // depends on the runs before it
    let once = |s: &&String| !s.starts_with("host: nft add table inet narwhal ");
    let reference: Vec<&String> = reference.iter().filter(once).collect();
    let steps: Vec<&String> = steps.iter().filter(once).collect();
    assert_eq!(steps, reference, "hook log lines vs narwhal --trace");

    let hold = std::fs::File::open(ctr.netns()).unwrap();
    ctr.stop_and_delete();
    let post = format!("poststop {id}: {host_if} goes with the container's namespace");
    env.syslog.wait_for(&post, |t| t == post);
    assert_eq!(
        nw_links(),
        std::slice::from_ref(&host_if),
        "the namespace is held"
    );
    drop(hold);
    rt::await_no_nw_links("the pair to go with the namespace");
    assert_eq!(common::snapshot(None), before, "host as before");
}

/// One address family only: it works, and the other family is absent on
/// both ends.
fn single_family(r: Runtime, six: bool) {
    common::private_host();
    let before = common::snapshot(None);
    let env = Env::new(r);
    let name = common::unique(if six { "nw6" } else { "nw4" });
    let (ip, key, fam, other) = if six {
        ("2001:db8::20", "narwhal.ipv6", "inet6", "inet")
    } else {
        ("198.51.100.20", "narwhal.ipv4", "inet", "inet6")
    };
    let spec = Spec::new(&[(key, ip)], &serve(&[http_addr(ip)]));
    let ctr = env.start(&name, &spec).unwrap_or_else(|e| panic!("{e}"));
    ctr.wait_listening(usize::from(!six), usize::from(six));
    assert_eq!(fetch(ip).as_deref(), Ok(BODY));

    let eth0 = ctr.ip_json(&["addr", "show", "dev", "eth0"]);
    assert!(addresses(&eth0).contains(&ip.to_string()), "{eth0}");
    assert_eq!(
        families(&eth0),
        BTreeSet::from([fam.to_string()]),
        "no {other} in the container: {eth0}"
    );
    let host_if = only_nw_link()["ifname"].as_str().unwrap().to_string();
    let host = common::ip_json(None, &["addr", "show", "dev", &host_if]);
    assert_eq!(
        families(&host),
        BTreeSet::from([fam.to_string()]),
        "no {other} on the host side: {host}"
    );

    ctr.stop_and_delete();
    rt::await_no_nw_links("the pair to go");
    assert_eq!(common::snapshot(None), before);
}

/// No narwhal annotation: the hook (configured for every container with
/// runc and crun) leaves the container and the host alone and logs nothing.
fn no_annotations(r: Runtime) {
    common::private_host();
    let before = common::snapshot(None);
    let env = Env::new(r);
    let name = common::unique("nwn");
    let spec = Spec::new(&[("org.example.role", "web")], "exec sleep 100000");
    let ctr = env.start(&name, &spec).unwrap_or_else(|e| panic!("{e}"));
    assert!(ctr.alive());
    let names = common::ifnames(&ctr.ip_json(&["link", "show"]));
    assert_eq!(names, ["lo"], "the container's namespace has only lo");
    assert_eq!(common::snapshot(None), before, "host untouched");
    ctr.stop_and_delete();
    assert_eq!(common::snapshot(None), before, "host untouched");
    assert_eq!(env.syslog.messages(), vec![], "nothing to log");
}

/// Bad annotations: the runtime refuses to start the container, narwhal's
/// one-line message reaches the user (runc: in the error output; crun
/// and podman drop a hook's stderr: in syslog), and the host is exactly as
/// before (podman runs no poststop after a failed createRuntime, so
/// nothing may be left behind).
fn bad_annotations(r: Runtime) {
    common::private_host();
    let env = Env::new(r);
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("narwhal.ipv4", "198.51.100.300")],
            "invalid IPv4 address '198.51.100.300': not an IP address",
        ),
        (
            &[("narwhal.ipv44", "198.51.100.40")],
            "unknown annotation 'narwhal.ipv44' (known: narwhal.ipv4, ",
        ),
        (
            &[
                ("narwhal.ipv4", "198.51.100.40"),
                ("narwhal.interface", "eth0123456789abc"),
            ],
            "invalid interface name 'eth0123456789abc': longer than 15 bytes",
        ),
        (
            &[
                ("narwhal.ipv6", "2001:db8::40"),
                ("narwhal.host-interface", "nw-0123456789abc"),
            ],
            "invalid host interface name 'nw-0123456789abc': longer than 15 bytes",
        ),
    ];
    for (annotations, want) in cases {
        let before = common::snapshot(None);
        let name = common::unique("nwb");
        let spec = Spec::new(annotations, "exec sleep 100000");
        let out = match env.start(&name, &spec) {
            Ok(c) => panic!("{annotations:?}: container {} started", c.name),
            Err(out) => out,
        };
        if r.shows_hook_stderr() {
            assert!(
                out.contains(want),
                "{annotations:?}: runtime output lacks {want:?}: {out}"
            );
        }
        let msgs = env.syslog.wait_for(want, |t| t.contains(want));
        let m = msgs.iter().find(|m| m.text.contains(want)).unwrap();
        assert_eq!(
            (m.facility, m.severity),
            (syslog::LOG_DAEMON, syslog::LOG_ERR),
            "{}",
            m.raw
        );
        assert!(!m.text.contains('\n'));
        // The message names the stage and the container (podman: its
        // 64-digit id; the stage is inferred from the state's status).
        // An annotation error is found before narwhal looks at the id.
        if !want.starts_with("unknown annotation") {
            let rest = m
                .text
                .strip_prefix("createRuntime ")
                .unwrap_or_else(|| panic!("{}", m.raw));
            let (id, _) = rest.split_once(": ").unwrap();
            if r == Runtime::Podman {
                assert!(
                    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{}",
                    m.raw
                );
            } else {
                assert_eq!(id, name, "{}", m.raw);
            }
        }
        assert_eq!(
            common::snapshot(None),
            before,
            "{annotations:?}: host as before"
        );
    }
}

/// Two containers whose ids share their first 12 characters run at the
/// same time (started concurrently) and get distinct host links, each
/// marked with its own full id, each reachable at its own address.
fn long_ids(r: Runtime) {
    common::private_host();
    let before = common::snapshot(None);
    let env = Env::new(r);
    let base = format!("nwtest0123456789{}", common::unique("-"));
    let (a, b) = (format!("{base}-a"), format!("{base}-b"));
    assert_eq!(a[..12], b[..12]);
    let ips = ["198.51.100.51", "198.51.100.52"];
    let specs: Vec<Spec> = ips
        .iter()
        .map(|ip| Spec::new(&[("narwhal.ipv4", ip)], &serve(&[http_addr(ip)])))
        .collect();
    let (ca, cb) = std::thread::scope(|s| {
        let ta = s.spawn(|| env.start(&a, &specs[0]));
        let tb = s.spawn(|| env.start(&b, &specs[1]));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    let (ca, cb) = (
        ca.unwrap_or_else(|e| panic!("{e}")),
        cb.unwrap_or_else(|e| panic!("{e}")),
    );
    ca.wait_listening(1, 0);
    cb.wait_listening(1, 0);
    assert_eq!(fetch(ips[0]).as_deref(), Ok(BODY));
    assert_eq!(fetch(ips[1]).as_deref(), Ok(BODY));

    let links: Vec<serde_json::Value> = rt::host_links()
        .into_iter()
        .filter(|l| l["ifname"].as_str().is_some_and(|n| n.starts_with("nw-")))
        .collect();
    assert_eq!(links.len(), 2, "{links:?}");
    let aliases: BTreeSet<String> = links
        .iter()
        .map(|l| l["ifalias"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        aliases,
        BTreeSet::from([format!("narwhal:{}", ca.id), format!("narwhal:{}", cb.id)])
    );
    for l in &links {
        let n = l["ifname"].as_str().unwrap();
        assert!(n.len() <= 15, "{n}");
        assert_ne!(n, &format!("nw-{}", &a[..12]), "not the truncated id");
    }
    let b_link = links
        .iter()
        .find(|l| l["ifalias"] == format!("narwhal:{}", cb.id))
        .map(|l| l["ifname"].as_str().unwrap().to_string());
    ca.stop_and_delete();
    common::wait_until(common::WAIT, "the first container's pair to go", || {
        let now = nw_links();
        if now.len() == 1 {
            Ok(now)
        } else {
            Err(format!("{now:?}"))
        }
    });
    assert_eq!(
        nw_links().first(),
        b_link.as_ref(),
        "deleting one container leaves the other's link"
    );
    cb.stop_and_delete();
    rt::await_no_nw_links("the second container's pair to go");
    assert_eq!(common::snapshot(None), before);
}

/// `runc run` / `crun run` in the foreground of a container that exits at
/// once: the runtime made the container's namespace (no path in
/// config.json), so it ends with the container and Linux removes the pair
/// with it. The poststop hook leaves the pair to the namespace instead of
/// deleting the link itself (~20 ms of RCU waits) or waiting for the
/// namespace to end (up to an RCU grace period after the hook's own socket
/// in it closed); the pair goes a moment later. Run again at once under the
/// same name, as a supervisor restarting a job does, the container gets
/// its network all the same (a setup waits for the old pair), and in the
/// end the host is as before.
fn oneshot(r: Runtime) {
    common::private_host();
    let before = common::snapshot(None);
    let env = Env::new(r);
    let name = common::unique("nwo");
    let bundle = env.dir.path().join(&name);
    std::fs::create_dir_all(&bundle).unwrap();
    let spec = Spec::new(
        &[
            ("narwhal.ipv4", "198.51.100.30"),
            ("narwhal.ipv6", "2001:db8::30"),
        ],
        "ip -o addr show dev eth0",
    );
    env.write_bundle(&bundle, &spec);
    let host_if = format!("nw-{name}");
    for run in 1..=2 {
        let out = common::run_ok(
            env.cmd()
                .arg("run")
                .arg("--bundle")
                .arg(&bundle)
                .arg(&name)
                .stdin(Stdio::null()),
        );
        assert!(
            out.contains("198.51.100.30") && out.contains("2001:db8::30"),
            "run {run}: the workload saw its addresses: {out}"
        );
        let msgs = env
            .syslog
            .wait_for("poststop", |t| t.starts_with(&format!("poststop {name}: ")));
        let post: Vec<&str> = msgs
            .iter()
            .map(|m| m.text.as_str())
            .filter(|t| t.starts_with("poststop "))
            .collect();
        let by_kernel = [
            format!("poststop {name}: {host_if} goes with the container's namespace"),
            format!("poststop {name}: {host_if} already gone"),
        ];
        assert!(
            post.len() == 1 && by_kernel.iter().any(|k| k == post[0]),
            "run {run}: poststop left the pair to the kernel: {post:?}"
        );
    }
    rt::await_no_nw_links("the pair to go with the namespace");
    assert_eq!(common::snapshot(None), before, "host as before");
}

mod oneshot {
    use super::*;

    #[test]
    fn runc() {
        require_root!();
        oneshot(Runtime::Runc);
    }

    #[test]
    fn crun() {
        require_root!();
        oneshot(Runtime::Crun);
    }
}

macro_rules! runtime_tests {
    ($($rt:ident: $variant:expr;)*) => {$(
        mod $rt {
            use super::*;

            #[test]
            fn dual_stack_before_workload_and_poststop_cleanup() {
                require_root!();
                dual_stack($variant);
            }

            #[test]
            fn ipv4_only() {
                require_root!();
                single_family($variant, false);
            }

            #[test]
            fn ipv6_only() {
                require_root!();
                single_family($variant, true);
            }

            #[test]
            fn without_annotations_untouched() {
                require_root!();
                no_annotations($variant);
            }

            #[test]
            fn bad_annotations_refused() {
                require_root!();
                bad_annotations($variant);
            }

            #[test]
            fn long_ids_concurrent_distinct_links() {
                require_root!();
                long_ids($variant);
            }
        }
    )*};
}

runtime_tests! {
    runc: Runtime::Runc;
    crun: Runtime::Crun;
    podman: Runtime::Podman;
}
