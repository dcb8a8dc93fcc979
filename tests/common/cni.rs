//! Helpers shared by the CNI tests (tests/cni.rs, tests/podman_cni.rs).
#![allow(dead_code)]

use std::path::Path;

/// host-local's leases of network `net` in its data directory `dir` (one
/// file per address, named after it), sorted.
pub fn leases(dir: &Path, net: &str) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir.join(net)) else {
        return vec![];
    };
    let mut v: Vec<String> = rd
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
        .collect();
    v.sort();
    v
}
