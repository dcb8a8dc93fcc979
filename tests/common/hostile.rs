//! Helpers for the hostile-input, fault-injection and concurrency tests: a
//! whole-host state snapshot (links, addresses, routes, neighbours,
//! nftables ruleset, /run/netns), OCI state documents, addresses as `ip`
//! shows them, and a small deterministic PRNG.
#![allow(dead_code)]

use crate::common::{self, NsProc};

/// [`common::private_host`], plus a private /run/netns: the calling thread
/// gets its own mount namespace (mounts not propagated either way) with an
/// empty tmpfs on /run/netns, which the processes it spawns (narwhal) see.
/// So [`host_state`] can tell whether narwhal created or removed a named
/// network namespace, without seeing other users' `ip netns add`.
pub fn private_host() {
    common::private_host();
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare(CLONE_NEWNS)");
    common::run_ok(std::process::Command::new("mount").args(["--make-rprivate", "/"]));
    std::fs::create_dir_all("/run/netns").expect("mkdir /run/netns");
    common::run_ok(std::process::Command::new("mount").args([
        "-t",
        "tmpfs",
        "narwhal-test",
        "/run/netns",
    ]));
}

/// Everything observable in the calling thread's network namespace and on
/// the machine that narwhal could plausibly change: links, addresses,
/// routes, neighbours, the nftables ruleset ([`common::host_state`]), and
/// the names in /run/netns (private: see [`private_host`]).
pub fn host_state() -> String {
    let mut s = common::host_state();
    let mut names: Vec<String> = match std::fs::read_dir("/run/netns") {
        Ok(d) => d
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) => vec![format!("<{e}>")],
    };
    names.sort();
    s.push_str(&format!("/run/netns: {names:?}\n"));
    s
}

/// The state of the host ([`host_state`]) and of a stand-in container, for
/// before/after comparisons.
pub struct States {
    host: String,
    ctr: String,
}

impl States {
    pub fn of(ctr: &NsProc) -> States {
        States {
            host: host_state(),
            ctr: common::snapshot(Some(ctr)),
        }
    }

    /// What changed since: one problem per side that changed, with the
    /// first differing line.
    pub fn changes(&self, ctr: &NsProc) -> Vec<String> {
        let now = States::of(ctr);
        let mut problems = Vec::new();
        for (side, before, after) in [
            ("host", &self.host, &now.host),
            ("container", &self.ctr, &now.ctr),
        ] {
            if before != after {
                problems.push(format!(
                    "the {side} changed:\n{}",
                    common::first_difference(before, after)
                ));
            }
        }
        problems
    }
}

/// An OCI state document. `pid: None` leaves the field out.
pub fn oci_state(
    id: &str,
    status: &str,
    pid: Option<i64>,
    bundle: &str,
    annotations: &[(&str, &str)],
) -> Vec<u8> {
    let a: serde_json::Map<String, serde_json::Value> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), (*v).into()))
        .collect();
    let mut v = serde_json::json!({
        "ociVersion": "1.0.2", "id": id, "status": status, "bundle": bundle,
    });
    if let Some(p) = pid {
        v["pid"] = p.into();
    }
    if !a.is_empty() {
        v["annotations"] = a.into();
    }
    serde_json::to_vec(&v).unwrap()
}

/// The modified EUI-64 link-local address the kernel gives an interface
/// with MAC `mac` ("02:10:e6:8f:d5:c7" -> "fe80::10:e6ff:fe8f:d5c7").
pub fn eui64_link_local(mac: &str) -> String {
    let b: Vec<u8> = mac
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect();
    let a = std::net::Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([b[0] ^ 0x02, b[1]]),
        u16::from_be_bytes([b[2], 0xff]),
        u16::from_be_bytes([0xfe, b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
    );
    a.to_string()
}

/// The addresses of link `ifname` as a sorted list of "local peer/plen scope".
pub fn addrs_of(addr_dump: &serde_json::Value, ifname: &str) -> Option<Vec<String>> {
    let link = common::find_link(addr_dump, ifname)?;
    let mut v: Vec<String> = link["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{} peer {}/{} scope {}",
                a["local"].as_str().unwrap_or("?"),
                a["address"].as_str().unwrap_or("-"),
                a["prefixlen"],
                a["scope"].as_str().unwrap_or("?")
            )
        })
        .collect();
    v.sort();
    Some(v)
}

/// xorshift64*: deterministic, seedable, good enough to spread delays.
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Prng {
        // splitmix64 of the seed, so that small seeds give unrelated streams
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Prng((z ^ (z >> 31)) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The kernel thread id of the caller (its /proc/TID/ns/net is the
/// thread's own namespace, e.g. the private host).
pub fn gettid() -> i32 {
    nix::unistd::gettid().as_raw()
}
