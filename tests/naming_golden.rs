//! Golden values for the names and marks narwhal derives from a container's
//! key (`narwhal::naming`). They are documented as stable forever: teardown
//! finds and recognises the host link of a running container by them, so a
//! new narwhal must derive exactly what an old one did. The literals were
//! computed once (and cross-checked with an independent implementation of
//! the documented hash: 64-bit FNV-1a, then the splitmix64 finaliser); a
//! change here breaks every running container's teardown.
//!
//! No privileges needed.

use narwhal::naming::{alias, container_mac, format_mac, host_ifname, host_mac};

#[test]
fn host_interface_names() {
    let long_id = "3f1c9a2b7d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4";
    let cases: &[(&str, &str)] = &[
        // short keys of [A-Za-z0-9_.-] are used verbatim
        ("4242", "nw-4242"),
        ("web", "nw-web"),
        ("web.1_a-b", "nw-web.1_a-b"),
        ("nw-foo", "nw-nw-foo"),
        // 12 characters: the longest verbatim key (nw- + 12 = 15 bytes)
        ("0123456789ab", "nw-0123456789ab"),
        // 13 characters: hashed
        ("0123456789abc", "nw-d5ac8c69e67f"),
        // long keys: hashed, and keys sharing a prefix stay apart
        ("web-server-0001", "nw-4864d6cfdb4e"),
        ("web-server-0002", "nw-0e550453e7cc"),
        (long_id, "nw-1e3075ad2149"),
        (&"f".repeat(64), "nw-da2324a3634f"),
        // characters outside [A-Za-z0-9_.-], and the empty key: hashed
        ("a b", "nw-20b4ee2205a3"),
        ("a/b", "nw-cb644b87bd2d"),
        ("ab:cd", "nw-8642e04d5c52"),
        ("é", "nw-03617480019e"),
        ("", "nw-15e9a9b5e89b"),
    ];
    for (key, want) in cases {
        assert_eq!(host_ifname(key), *want, "host_ifname({key:?})");
    }
}

#[test]
fn mac_addresses() {
    let cases: &[(&str, &str, &str)] = &[
        // (key, host end, container end)
        ("4242", "02:f6:3b:e2:7c:4a", "02:f3:dd:29:97:88"),
        ("3f1c9a2b7d4e", "02:9f:b2:11:7f:ad", "02:37:17:1e:06:d1"),
        ("web-server-0001", "02:72:c5:46:dc:23", "02:69:11:e1:ed:9a"),
    ];
    for (key, host, container) in cases {
        assert_eq!(format_mac(&host_mac(key)), *host, "host_mac({key:?})");
        assert_eq!(
            format_mac(&container_mac(key)),
            *container,
            "container_mac({key:?})"
        );
    }
}

#[test]
fn aliases() {
    let cases: &[(&str, &str)] = &[
        ("4242", "narwhal:4242"),
        ("web-server-0001", "narwhal:web-server-0001"),
        // '#', control characters and over-long keys: hashed
        ("a#b", "narwhal:#a842a38a7538bec8"),
        ("a\nb", "narwhal:#ea087df8da96d952"),
        (&"x".repeat(300), "narwhal:#a35b39f73adb54f2"),
    ];
    for (key, want) in cases {
        assert_eq!(alias(key), *want, "alias({key:?})");
    }
}
