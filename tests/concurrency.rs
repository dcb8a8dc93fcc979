//! Many narwhal processes at once: 200 containers configured and removed by
//! 16 concurrent workers (command line and hook modes mixed), and 50
//! simultaneous attempts on one container (exactly one wins, the others
//! fail cleanly, nothing leaks), and simultaneous removals of one container.

mod common;
#[path = "common/hostile.rs"]
mod hostile;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};

use common::syslog::Syslog;
use common::{link_names, one_line_error, run_narwhal, NsProc};
use hostile::*;
use narwhal::naming;

const CONTAINERS: usize = 200;
const WORKERS: usize = 16;

/// How container `i` is configured and removed.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Pid,
    Netns,
    Hook,
}

struct Ctr {
    ns: NsProc,
    mode: Mode,
    id: String,
    v4: String,
    v6: String,
}

impl Ctr {
    fn key(&self) -> String {
        match self.mode {
            Mode::Hook => self.id.clone(),
            Mode::Pid | Mode::Netns => self.ns.pid().to_string(),
        }
    }
    fn host_if(&self) -> String {
        naming::host_ifname(&self.key())
    }
    fn up(&self, syslog: &Syslog) -> Output {
        let addrs = ["-4", &self.v4, "-6", &self.v6];
        match self.mode {
            Mode::Pid => {
                let mut a = vec!["--pid".to_string(), self.ns.pid().to_string()];
                a.extend(addrs.iter().map(|s| s.to_string()));
                run_narwhal(&a, None, &[])
            }
            Mode::Netns => {
                let mut a = vec!["--netns".to_string(), self.ns.netns().display().to_string()];
                a.extend(addrs.iter().map(|s| s.to_string()));
                run_narwhal(&a, None, &[])
            }
            Mode::Hook => {
                let state = oci_state(
                    &self.id,
                    "creating",
                    Some(self.ns.pid() as i64),
                    "/nonexistent/bundle",
                    &[("narwhal.ipv4", &self.v4), ("narwhal.ipv6", &self.v6)],
                );
                run_narwhal(&hook_args("createRuntime", syslog), Some(&state), &[])
            }
        }
    }
    fn down(&self, syslog: &Syslog) -> Output {
        match self.mode {
            Mode::Pid => run_narwhal(
                &[
                    "remove".to_string(),
                    "--pid".into(),
                    self.ns.pid().to_string(),
                ],
                None,
                &[],
            ),
            Mode::Netns => run_narwhal(
                &[
                    "remove".to_string(),
                    "--netns".into(),
                    self.ns.netns().display().to_string(),
                ],
                None,
                &[],
            ),
            Mode::Hook => {
                let state = oci_state(
                    &self.id,
                    "stopped",
                    None,
                    "/nonexistent/bundle",
                    &[("narwhal.ipv4", &self.v4)],
                );
                run_narwhal(&hook_args("poststop", syslog), Some(&state), &[])
            }
        }
    }
}

fn hook_args(stage: &str, syslog: &Syslog) -> Vec<OsString> {
    vec![
        "hook".into(),
        stage.into(),
        "--syslog-socket".into(),
        syslog.path().into(),
    ]
}

/// Container `i`'s addresses: 198.51.100.10.. then 198.18.0.10..; 2001:db8::c:i.
fn addresses(i: usize) -> (String, String) {
    let v4 = if i < 100 {
        format!("198.51.100.{}", 10 + i)
    } else {
        format!("198.18.0.{}", 10 + i - 100)
    };
    (v4, format!("2001:db8::c:{i:x}"))
}

/// Run `job(i)` for every i in 0..n on `workers` threads at once (spawned
/// from the calling thread, so they share its private host namespace).
fn parallel<T: Send>(n: usize, workers: usize, job: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new((0..n).map(|_| None).collect::<Vec<Option<T>>>());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let r = job(i);
                results.lock().unwrap()[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(Option::unwrap)
        .collect()
}

/// Problems with the addresses of link `ifname` in `dump` (an `ip -j addr`
/// dump): `want` must be there, and nothing else but the kernel's EUI-64
/// link-local address of the link's own MAC.
fn check_addrs(dump: &serde_json::Value, ifname: &str, want: &[String]) -> Option<String> {
    let Some(link) = common::find_link(dump, ifname) else {
        return Some(format!("no link {ifname}"));
    };
    let mut got = addrs_of(dump, ifname).unwrap();
    let ll = format!(
        "{} peer -/64 scope link",
        eui64_link_local(link["address"].as_str().unwrap())
    );
    got.retain(|a| *a != ll);
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
    let want = set(want);
    (set(&got) != want || got.len() != want.len())
        .then(|| format!("{ifname}: addresses {got:?}, want {want:?} (+ {ll})"))
}

/// Expected host-side addresses for a container.
fn host_addrs(v4: &str, v6: &str) -> Vec<String> {
    vec![
        format!("169.254.0.1 peer {v4}/32 scope link"),
        format!("fe80::1 peer {v6}/128 scope link"),
    ]
}

/// Expected container-side addresses.
fn ctr_addrs(v4: &str, v6: &str) -> Vec<String> {
    vec![
        format!("{v4} peer 169.254.0.1/32 scope global"),
        format!("{v6} peer fe80::1/128 scope global"),
    ]
}

/// The routes to the containers in the host: destination -> device.
fn host_routes() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for fam in ["-4", "-6"] {
        for r in common::ip_json(None, &[fam, "route", "show"])
            .as_array()
            .unwrap()
        {
            if let (Some(d), Some(dev)) = (r["dst"].as_str(), r["dev"].as_str()) {
                m.insert(d.to_string(), dev.to_string());
            }
        }
    }
    m
}

/// Every run in `outs` (the one of container i at i) succeeded.
fn assert_all_succeeded(what: &str, ctrs: &[Ctr], outs: &[Output]) {
    let failed: Vec<String> = outs
        .iter()
        .enumerate()
        .filter(|(_, o)| !o.status.success())
        .map(|(i, o)| {
            format!(
                "container {i} ({:?}): {}",
                ctrs[i].mode,
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} {what} failed:\n{}",
        failed.len(),
        failed.join("")
    );
}

#[test]
fn two_hundred_containers_sixteen_at_a_time() {
    require_root!();
    hostile::private_host();
    let syslog = Syslog::new();
    let initial = host_state();
    let tag = common::unique("c");
    let ctrs: Vec<Ctr> = (0..CONTAINERS)
        .map(|i| {
            let (v4, v6) = addresses(i);
            let mode = [Mode::Pid, Mode::Netns, Mode::Hook][i % 3];
            Ctr {
                ns: NsProc::new(),
                mode,
                id: format!("{tag}-{i}"),
                v4,
                v6,
            }
        })
        .collect();

    let ups = parallel(CONTAINERS, WORKERS, |i| ctrs[i].up(&syslog));
    assert_all_succeeded("setups", &ctrs, &ups);

    // The host: exactly 200 nw- links, each with its container's peers.
    let dump = common::ip_json(None, &["addr", "show"]);
    let nw: BTreeSet<String> = common::ifnames(&dump)
        .into_iter()
        .filter(|n| n.starts_with("nw-"))
        .collect();
    let want_nw: BTreeSet<String> = ctrs.iter().map(Ctr::host_if).collect();
    assert_eq!(want_nw.len(), CONTAINERS, "host interface names collide");
    assert_eq!(nw, want_nw, "the host's nw- links");
    let routes = host_routes();
    let mut problems = Vec::new();
    for c in &ctrs {
        let h = c.host_if();
        problems.extend(check_addrs(&dump, &h, &host_addrs(&c.v4, &c.v6)));
        for dst in [&c.v4, &c.v6] {
            if routes.get(dst.as_str()) != Some(&h) {
                problems.push(format!(
                    "host route to {dst}: {:?}, want dev {h}",
                    routes.get(dst.as_str())
                ));
            }
        }
        // The container: lo and eth0, eth0 with exactly its addresses.
        let cd = common::ip_json(Some(&c.ns), &["addr", "show"]);
        let names = common::ifnames(&cd);
        if names != ["lo", "eth0"] {
            problems.push(format!("container {}: links {names:?}", c.key()));
        }
        problems.extend(
            check_addrs(&cd, "eth0", &ctr_addrs(&c.v4, &c.v6))
                .map(|p| format!("container {}: {p}", c.key())),
        );
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );

    let downs = parallel(CONTAINERS, WORKERS, |i| ctrs[i].down(&syslog));
    assert_all_succeeded("removals", &ctrs, &downs);
    common::assert_same(&initial, &host_state(), "the host is not as before");
    for c in &ctrs {
        assert_eq!(link_names(Some(&c.ns)), ["lo"], "container {}", c.key());
    }
}

/// `n` runs of narwhal with `args`/`stdin`, released together by a barrier.
fn simultaneously(n: usize, args: &[OsString], stdin: Option<&[u8]>) -> Vec<Output> {
    let barrier = Barrier::new(n);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    run_narwhal(args, stdin, &[])
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// 50 simultaneous setups of one container (command line, then hook): one
/// succeeds, 49 exit 1 with one line naming the interface that exists, and
/// the result is one correctly configured pair; removing it leaves nothing.
#[test]
fn fifty_simultaneous_attempts_on_one_container() {
    require_root!();
    hostile::private_host();
    let syslog = Syslog::new();
    let initial = host_state();
    let (v4, v6) = ("198.18.0.77".to_string(), "2001:db8::77".to_string());
    for mode in [Mode::Netns, Mode::Hook] {
        let c = Ctr {
            ns: NsProc::new(),
            mode,
            id: common::unique("same"),
            v4: v4.clone(),
            v6: v6.clone(),
        };
        let ctr_initial = link_names(Some(&c.ns));
        let (args, stdin): (Vec<OsString>, Option<Vec<u8>>) = match mode {
            Mode::Hook => (
                hook_args("createRuntime", &syslog),
                Some(oci_state(
                    &c.id,
                    "creating",
                    Some(c.ns.pid() as i64),
                    "/nonexistent/bundle",
                    &[("narwhal.ipv4", &v4), ("narwhal.ipv6", &v6)],
                )),
            ),
            _ => (
                [
                    "--netns",
                    c.ns.netns().to_str().unwrap(),
                    "-4",
                    &v4,
                    "-6",
                    &v6,
                ]
                .iter()
                .map(OsString::from)
                .collect(),
                None,
            ),
        };
        let outs = simultaneously(50, &args, stdin.as_deref());
        let winners = outs.iter().filter(|o| o.status.success()).count();
        assert_eq!(winners, 1, "{mode:?}: exactly one of 50 must succeed");
        let host_if = c.host_if();
        for o in outs.iter().filter(|o| !o.status.success()) {
            let msg = one_line_error(o).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
            assert!(
                msg.contains(&format!("link add {host_if} ")) && msg.contains("File exists"),
                "{mode:?}: {msg}"
            );
            assert!(
                !msg.contains("rolled back"),
                "{mode:?}: a loser had something to roll back: {msg}"
            );
        }
        // Exactly one pair, correctly configured.
        let dump = common::ip_json(None, &["addr", "show"]);
        let nw: Vec<String> = common::ifnames(&dump)
            .into_iter()
            .filter(|n| n != "lo")
            .collect();
        assert_eq!(nw, [host_if.as_str()], "{mode:?}: host links");
        assert_eq!(
            check_addrs(&dump, &host_if, &host_addrs(&v4, &v6)),
            None,
            "{mode:?}"
        );
        let cd = common::ip_json(Some(&c.ns), &["addr", "show"]);
        assert_eq!(
            link_names(Some(&c.ns)),
            ["lo", "eth0"],
            "{mode:?}: container links"
        );
        assert_eq!(
            check_addrs(&cd, "eth0", &ctr_addrs(&v4, &v6)),
            None,
            "{mode:?}"
        );
        let routes = host_routes();
        assert_eq!(routes.get(v4.as_str()), Some(&host_if));
        assert_eq!(routes.get(v6.as_str()), Some(&host_if));

        let out = c.down(&syslog);
        assert!(
            out.status.success(),
            "{mode:?}: remove: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        common::assert_same(
            &initial,
            &host_state(),
            &format!("{mode:?}: host not as before"),
        );
        assert_eq!(link_names(Some(&c.ns)), ctr_initial);
    }
}

/// Teardown is idempotent, also when several run at once (a runtime retrying
/// poststop, an operator's `narwhal remove` racing it): 20 rounds of one
/// setup followed by 50 simultaneous removals (command line and hook
/// alternating); every removal exits 0 and nothing is left.
#[test]
fn simultaneous_removals_all_succeed() {
    require_root!();
    hostile::private_host();
    let syslog = Syslog::new();
    let initial = host_state();
    let mut failures = Vec::new();
    for round in 0..20 {
        let mode = if round % 2 == 0 {
            Mode::Pid
        } else {
            Mode::Hook
        };
        let c = Ctr {
            ns: NsProc::new(),
            mode,
            id: common::unique("rm"),
            v4: "198.51.100.78".into(),
            v6: "2001:db8::78".into(),
        };
        let out = c.up(&syslog);
        assert!(
            out.status.success(),
            "setup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (args, stdin): (Vec<OsString>, Option<Vec<u8>>) = match mode {
            Mode::Hook => (
                hook_args("poststop", &syslog),
                Some(oci_state(
                    &c.id,
                    "stopped",
                    None,
                    "/nonexistent/bundle",
                    &[("narwhal.ipv4", &c.v4)],
                )),
            ),
            _ => (
                ["remove", "--pid", &c.ns.pid().to_string()]
                    .iter()
                    .map(OsString::from)
                    .collect(),
                None,
            ),
        };
        let outs = simultaneously(50, &args, stdin.as_deref());
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &c.host_if()])
            .output();
        for o in outs.iter().filter(|o| !o.status.success()) {
            failures.push(format!(
                "round {round} ({mode:?}): {}",
                String::from_utf8_lossy(&o.stderr).trim_end()
            ));
        }
        common::assert_same(
            &initial,
            &host_state(),
            &format!("round {round}: host not as before"),
        );
    }
    assert!(
        failures.is_empty(),
        "{} of 1000 simultaneous removals failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
