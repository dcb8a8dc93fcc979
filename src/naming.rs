//! Deterministic names and marks derived from a container's key.
//!
//! The key is what identifies a container across setup and teardown without
//! stored state: the Docker short id, the OCI container id, the pid, or the
//! netns file name. From it derive:
//! - the host interface name (`nw-KEY` when KEY is short and plain, else
//!   `nw-` + 12 hex digits of a hash of KEY), so teardown finds the link;
//! - the ownership mark (interface alias `narwhal:KEY`), so narwhal never
//!   deletes a link it did not create;
//! - both MAC addresses, so the link is recognisable as narwhal's even if
//!   setup was killed before the alias was written.

/// Route protocol (`rtm_protocol`) of every route narwhal adds, so routing
/// daemons and operators can select narwhal's routes and nothing else
/// (BIRD: `krt_source = 77`). Stable: no common daemon uses 77; the
/// packages register its name, `narwhal`, in /etc/iproute2/rt_protos.d.
pub const RTPROT_NARWHAL: u8 = 77;
/// Prefix of every alias narwhal writes.
pub const ALIAS_PREFIX: &str = "narwhal:";
/// Longest key used verbatim in an interface name (`nw-` + 12 = 15 bytes).
const MAX_PLAIN_KEY: usize = 12;
/// Linux's alias limit is 255 bytes.
const MAX_ALIAS: usize = 255;

/// 64-bit FNV-1a followed by the splitmix64 finaliser. Stable forever: host
/// interface names of running containers depend on it.
pub fn hash64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

fn is_plain(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_PLAIN_KEY
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// The default host interface name for `key`.
pub fn host_ifname(key: &str) -> String {
    if is_plain(key) {
        format!("nw-{key}")
    } else {
        format!("nw-{:012x}", hash64(key.as_bytes()) & 0xffff_ffff_ffff)
    }
}

/// The alias that marks a host link as narwhal's, for `key`.
pub fn alias(key: &str) -> String {
    let a = format!("{ALIAS_PREFIX}{key}");
    if a.len() <= MAX_ALIAS && !key.contains('#') && !key.chars().any(char::is_control) {
        a
    } else {
        format!("{ALIAS_PREFIX}#{:016x}", hash64(key.as_bytes()))
    }
}

fn mac(key: &str, side: &[u8]) -> [u8; 6] {
    let mut data = key.as_bytes().to_vec();
    data.push(0);
    data.extend_from_slice(side);
    let h = hash64(&data).to_be_bytes();
    // 0x02: locally administered, unicast.
    [0x02, h[0], h[1], h[2], h[3], h[4]]
}

/// MAC address of the host end for `key`.
pub fn host_mac(key: &str) -> [u8; 6] {
    mac(key, b"host")
}

/// MAC address of the container end for `key`.
pub fn container_mac(key: &str) -> [u8; 6] {
    mac(key, b"container")
}

/// The key a netns path stands for: the pid for `/proc/PID/ns/net`, else the
/// file name (`/run/netns/NAME` -> `NAME`).
pub fn netns_key(path: &std::path::Path) -> String {
    let s = path.to_string_lossy();
    if let Some(pid) = s
        .strip_prefix("/proc/")
        .and_then(|r| r.strip_suffix("/ns/net"))
    {
        if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) {
            return pid.to_string();
        }
    }
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| s.into_owned())
}

pub fn format_mac(m: &[u8]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_keys_stay_readable() {
        assert_eq!(host_ifname("4242"), "nw-4242");
        assert_eq!(host_ifname("0123456789ab"), "nw-0123456789ab");
        assert_eq!(host_ifname("web.1_a-b"), "nw-web.1_a-b");
    }

    #[test]
    fn long_or_odd_keys_are_hashed_and_distinct() {
        let a = host_ifname("web-server-0001");
        let b = host_ifname("web-server-0002");
        assert_ne!(a, b);
        for n in [&a, &b, &host_ifname("a b"), &host_ifname(&"f".repeat(64))] {
            assert_eq!(n.len(), 15, "{n}");
            assert!(n.starts_with("nw-"));
        }
        // ids that differ only after the 12th character
        let x = "0123456789abcdef0000";
        let y = "0123456789abcdef0001";
        assert_ne!(host_ifname(x), host_ifname(y));
        // stable: teardown of running containers depends on this value
        assert_eq!(
            host_ifname("web-server-0001"),
            host_ifname("web-server-0001")
        );
        assert_eq!(hash64(b""), hash64(b""));
    }

    #[test]
    fn many_keys_never_collide() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..100_000 {
            assert!(seen.insert(host_ifname(&format!("container-{i:08}"))));
        }
    }

    #[test]
    fn alias_and_macs() {
        assert_eq!(alias("abc"), "narwhal:abc");
        assert!(alias(&"x".repeat(300)).len() <= 255);
        assert_ne!(alias(&"x".repeat(300)), alias(&"y".repeat(300)));
        let (h, c) = (host_mac("k"), container_mac("k"));
        assert_ne!(h, c);
        assert_eq!(h[0] & 0x03, 0x02);
        assert_eq!(c[0] & 0x03, 0x02);
    }

    #[test]
    fn netns_keys() {
        assert_eq!(netns_key("/proc/4242/ns/net".as_ref()), "4242");
        assert_eq!(netns_key("/run/netns/web".as_ref()), "web");
        assert_eq!(netns_key("/proc/self/ns/net".as_ref()), "net");
    }
}
