//! Hostile input: every bad value narwhal can be handed on its command line,
//! in the OCI state on stdin (hook mode) or in annotations. For each one:
//! exit status 1, nothing on stdout, exactly one line on stderr starting
//! `narwhal: ` that names the offending value or key (hook mode: the same
//! message in syslog, at priority daemon.err), and neither the private
//! host nor the stand-in container changed (links, addresses, routes,
//! neighbours, nftables ruleset, /run/netns).

mod common;
#[path = "common/hostile.rs"]
mod hostile;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::Command;

use common::syslog::Syslog;
use common::{one_line_error, run_narwhal, NsProc};
use hostile::*;

enum Input {
    /// Command-line arguments.
    Cli(Vec<OsString>),
    /// `narwhal hook [STAGE] --syslog-socket S` with this on stdin.
    Hook {
        stage: Option<&'static str>,
        stdin: Vec<u8>,
    },
}

struct Case {
    name: String,
    input: Input,
    env: Vec<(&'static str, &'static str)>,
    /// Substrings the message must contain (the offending value or key).
    want: Vec<String>,
    /// Substrings the message must not contain.
    not_want: Vec<String>,
    /// The exit status: 1, or 2 for a usage error.
    code: i32,
}

/// Builds the table; knows the stand-in container and some scratch paths.
struct Table {
    cases: Vec<Case>,
    pid: u32,
    netns: String,
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

impl Table {
    fn cli(&mut self, name: &str, args: Vec<OsString>, want: &[&str]) -> &mut Case {
        self.cases.push(Case {
            name: format!("cli: {name}"),
            input: Input::Cli(args),
            env: vec![],
            want: want.iter().map(|s| s.to_string()).collect(),
            not_want: vec![],
            code: 1,
        });
        self.cases.last_mut().unwrap()
    }

    /// `narwhal --netns <container> ARGS`: settings checks with a valid target.
    fn cli_up(&mut self, name: &str, args: &[&str], want: &[&str]) -> &mut Case {
        let mut a = os(&["--netns", &self.netns.clone()]);
        a.extend(os(args));
        self.cli(name, a, want)
    }

    fn hook(
        &mut self,
        name: &str,
        stage: Option<&'static str>,
        stdin: Vec<u8>,
        want: &[&str],
    ) -> &mut Case {
        self.cases.push(Case {
            name: format!("hook: {name}"),
            input: Input::Hook { stage, stdin },
            env: vec![],
            want: want.iter().map(|s| s.to_string()).collect(),
            not_want: vec![],
            code: 1,
        });
        self.cases.last_mut().unwrap()
    }

    /// createRuntime for the stand-in container with these annotations.
    fn hook_ann(&mut self, name: &str, ann: &[(&str, &str)], want: &[&str]) -> &mut Case {
        let s = oci_state(
            "hostile-ctr",
            "creating",
            Some(self.pid as i64),
            "/nonexistent/bundle",
            ann,
        );
        self.hook(name, Some("createRuntime"), s, want)
    }
}

fn build_table(ctr: &NsProc, scratch: &tempfile::TempDir, zombie: &std::process::Child) -> Table {
    let mut t = Table {
        cases: vec![],
        pid: ctr.pid(),
        netns: ctr.netns().display().to_string(),
    };
    let pid = t.pid.to_string();

    // A pid whose process has exited. Kept a zombie (reaped by the caller
    // after the cases) so that the pid cannot be reused meanwhile: a reused
    // pid could name a namespace outside the test.
    let dead = zombie.id().to_string();
    // The test thread itself: /proc/TID/ns/net is the private host.
    let own = gettid().to_string();
    let regular = scratch.path().join("regular-file");
    std::fs::write(&regular, "not a namespace\n").unwrap();
    let regular = regular.display().to_string();
    let dir = scratch.path().display().to_string();
    let missing = scratch.path().join("no-such-netns").display().to_string();

    // ---- command line: targets ----
    t.cli(
        "non-numeric --pid",
        os(&["--pid", "12ab", "-4", "198.51.100.20"]),
        &["invalid PID '12ab'"],
    );
    t.cli(
        "empty --pid",
        os(&["--pid", "", "-4", "198.51.100.20"]),
        &["invalid PID ''"],
    );
    t.cli(
        "zero --pid",
        os(&["--pid", "0", "-4", "198.51.100.20"]),
        &["invalid PID '0'"],
    );
    t.cli(
        "negative --pid",
        os(&["--pid=-7", "-4", "198.51.100.20"]),
        &["invalid PID '-7'"],
    );
    t.cli(
        "--pid beyond i32",
        os(&["--pid", "99999999999", "-4", "198.51.100.20"]),
        &["invalid PID '99999999999'"],
    );
    t.cli(
        "dead --pid",
        os(&["--pid", &dead, "-4", "198.51.100.20"]),
        &[
            &format!("/proc/{dead}/ns/net"),
            &format!("process {dead} has exited (it is a zombie)"),
        ],
    );
    t.cli(
        "--pid of the host's own namespace",
        os(&["--pid", &own, "-4", "198.51.100.20"]),
        &[
            &format!("/proc/{own}/ns/net"),
            "host's own network namespace",
        ],
    );
    t.cli(
        "--netns of the host's own namespace",
        os(&["--netns", "/proc/self/ns/net", "-4", "198.51.100.20"]),
        &["/proc/self/ns/net", "host's own network namespace"],
    );
    t.cli(
        "--netns regular file",
        os(&["--netns", &regular, "-4", "198.51.100.20"]),
        &[&format!("{regular} is not a network namespace")],
    );
    t.cli(
        "--netns directory",
        os(&["--netns", &dir, "-4", "198.51.100.20"]),
        &[&format!("{dir} is not a network namespace")],
    );
    t.cli(
        "--netns nonexistent",
        os(&["--netns", &missing, "-4", "198.51.100.20"]),
        &[&missing, "No such file"],
    );
    t.cli(
        "--netns of another namespace type",
        os(&["--netns", "/proc/self/ns/mnt", "-4", "198.51.100.20"]),
        &["/proc/self/ns/mnt is not a network namespace"],
    );
    t.cli(
        "--netns character device",
        os(&["--netns", "/dev/null", "-4", "198.51.100.20"]),
        &["/dev/null is not a network namespace"],
    );
    for name in [
        "a/b",
        "..",
        "../../v1.41/containers/x",
        "-x",
        ".hidden",
        "a b",
    ] {
        let c = t.cli(
            &format!("Docker name {name:?}"),
            os(&["-4", "198.51.100.20", "--", name]),
            &[&format!("invalid Docker container name '{name}'")],
        );
        c.env = vec![("DOCKER_HOST", "unix:///nonexistent")];
        c.not_want = vec!["connect".into(), "/nonexistent".into()];
    }
    let c = t.cli(
        "remove: Docker name with '/'",
        os(&["remove", "a/../b"]),
        &["invalid Docker container name 'a/../b'"],
    );
    c.env = vec![("DOCKER_HOST", "unix:///nonexistent")];
    c.not_want = vec!["connect".into()];
    t.cli(
        "remove: non-numeric --pid",
        os(&["remove", "--pid", "x1"]),
        &["invalid PID 'x1'"],
    );
    t.cli(
        "remove: --host-interface lo (not a veth)",
        os(&["remove", "--host-interface", "lo"]),
        &["refusing to remove host interface lo", "not a veth"],
    );
    t.cli(
        "remove: --host-interface nw-foreign (no narwhal alias)",
        os(&["remove", "--host-interface", "nw-foreign"]),
        &[
            "refusing to remove host interface nw-foreign",
            "no narwhal: alias",
        ],
    );
    t.cli(
        "remove: --host-interface with '/'",
        os(&["remove", "--host-interface", "nw/x"]),
        &["host interface name 'nw/x'", "'/'"],
    );

    // ---- command line: settings ----
    t.cli_up(
        "IPv6 address given as -4",
        &["-4", "2001:db8::20"],
        &["IPv4 address '2001:db8::20'", "IPv6"],
    );
    t.cli_up(
        "IPv4 address given as -6",
        &["-6", "198.51.100.20"],
        &["IPv6 address '198.51.100.20'", "IPv4"],
    );
    t.cli_up(
        "multicast IPv4",
        &["-4", "224.0.0.5"],
        &["'224.0.0.5'", "multicast"],
    );
    t.cli_up(
        "multicast IPv6",
        &["-6", "ff02::1"],
        &["'ff02::1'", "multicast"],
    );
    t.cli_up(
        "unspecified IPv4",
        &["-4", "0.0.0.0"],
        &["'0.0.0.0'", "unspecified"],
    );
    t.cli_up("unspecified IPv6", &["-6", "::"], &["'::'", "unspecified"]);
    t.cli_up(
        "broadcast IPv4",
        &["-4", "255.255.255.255"],
        &["'255.255.255.255'", "broadcast"],
    );
    t.cli_up("loopback IPv6", &["-6", "::1"], &["'::1'", "loopback"]);
    t.cli_up(
        "IPv4-mapped IPv6",
        &["-6", "::ffff:198.51.100.20"],
        &["'::ffff:198.51.100.20'", "IPv4-mapped"],
    );
    t.cli_up(
        "IPv4 with prefix",
        &["-4", "198.51.100.20/24"],
        &["'198.51.100.20/24'", "prefix"],
    );
    t.cli_up(
        "IPv6 with prefix",
        &["-6", "2001:db8::20/64"],
        &["'2001:db8::20/64'", "prefix"],
    );
    t.cli_up(
        "IPv6 with zone",
        &["-6", "fe80::2%eth0"],
        &["'fe80::2%eth0'", "zone"],
    );
    t.cli_up(
        "IPv4 with trailing newline",
        &["-4", "198.51.100.20\n"],
        &["'198.51.100.20\\n'"],
    );
    t.cli_up(
        "garbage IPv4",
        &["-4", "198.51.100.999"],
        &["'198.51.100.999'", "not an IP address"],
    );
    t.cli_up(
        "host IPv4 = container IPv4",
        &["-4", "198.51.100.20", "--host-ipv4", "198.51.100.20"],
        &[
            "host IPv4 address '198.51.100.20'",
            "equals the container address",
        ],
    );
    t.cli_up(
        "host IPv6 = container IPv6",
        &["-6", "2001:db8::20", "--host-ipv6", "2001:db8::20"],
        &[
            "host IPv6 address '2001:db8::20'",
            "equals the container address",
        ],
    );
    t.cli_up(
        "host IPv6 without container IPv6",
        &["-4", "198.51.100.20", "--host-ipv6", "fe80::1"],
        &["host IPv6 address 'fe80::1'", "without a container IPv6"],
    );
    t.cli_up(
        "interface name with '/'",
        &["-4", "198.51.100.20", "-i", "eth/0"],
        &["interface name 'eth/0'", "'/'"],
    );
    t.cli_up(
        "interface name with a space",
        &["-4", "198.51.100.20", "-i", "eth 0"],
        &["interface name 'eth 0'", "whitespace"],
    );
    t.cli_up(
        "interface name with a control character",
        &["-4", "198.51.100.20", "-i", "eth\u{1}0"],
        &["interface name 'eth\\u{1}0'", "control"],
    );
    t.cli_up(
        "interface name with a newline",
        &["-4", "198.51.100.20", "-i", "eth\n0"],
        &["interface name 'eth\\n0'"],
    );
    t.cli_up(
        "interface name of 16 bytes",
        &["-4", "198.51.100.20", "-i", "abcdefghijklmnop"],
        &["interface name 'abcdefghijklmnop'", "longer than 15"],
    );
    t.cli_up(
        "interface name '.'",
        &["-4", "198.51.100.20", "-i", "."],
        &["interface name '.'", "reserved"],
    );
    t.cli_up(
        "interface name '..'",
        &["-4", "198.51.100.20", "-i", ".."],
        &["interface name '..'", "reserved"],
    );
    t.cli_up(
        "empty interface name",
        &["-4", "198.51.100.20", "-i", ""],
        &["interface name ''", "empty"],
    );
    t.cli_up(
        "host interface name with '/'",
        &["-4", "198.51.100.20", "--host-interface", "nw/x"],
        &["host interface name 'nw/x'", "'/'"],
    );
    t.cli_up(
        "host interface name with ':'",
        &["-4", "198.51.100.20", "--host-interface", "nw:x"],
        &["host interface name 'nw:x'", "':'"],
    );
    t.cli_up(
        "host interface name of 16 bytes (UTF-8)",
        &["-4", "198.51.100.20", "--host-interface", "nw-ééééééé"],
        &["host interface name 'nw-ééééééé'", "longer than 15"],
    );
    t.cli_up(
        "host interface of an existing link (lo)",
        &["-4", "198.51.100.20", "--host-interface", "lo"],
        &[
            "link add lo",
            "File exists",
            "host interface lo already exists",
            "not narwhal's",
        ],
    );
    t.cli_up(
        "container interface of an existing link (lo)",
        &["-4", "198.51.100.20", "-i", "lo"],
        &[
            "peer name lo",
            "File exists",
            "interface lo already exists in the container namespace",
        ],
    );
    t.cli_up(
        "MTU 0",
        &["-4", "198.51.100.20", "--mtu", "0"],
        &["MTU '0'", "outside"],
    );
    t.cli_up(
        "MTU 70000",
        &["-4", "198.51.100.20", "--mtu", "70000"],
        &["MTU '70000'", "outside"],
    );
    t.cli_up(
        "MTU 1279 with IPv6",
        &["-6", "2001:db8::20", "--mtu", "1279"],
        &["MTU '1279'", "IPv6 needs at least 1280"],
    );
    t.cli_up(
        "MTU -1",
        &["-4", "198.51.100.20", "--mtu=-1"],
        &["MTU '-1'", "whole number"],
    );
    t.cli_up(
        "MTU 1e3",
        &["-4", "198.51.100.20", "--mtu", "1e3"],
        &["MTU '1e3'", "whole number"],
    );
    t.cli_up(
        "MTU beyond u32",
        &["-4", "198.51.100.20", "--mtu", "4294967297"],
        &["MTU '4294967297'"],
    );

    // ---- hook: the state document ----
    let cr = Some("createRuntime");
    t.hook("empty stdin", cr, vec![], &["no OCI state on stdin"]);
    t.hook(
        "whitespace-only stdin",
        cr,
        b" \n\t\n".to_vec(),
        &["no OCI state on stdin"],
    );
    t.hook(
        "malformed JSON",
        cr,
        b"{\"id\": \"x\", \"status\": creating}".to_vec(),
        &["invalid OCI state on stdin", "line 1"],
    );
    let full = oci_state(
        "hostile-ctr",
        "creating",
        Some(t.pid as i64),
        "/nonexistent/bundle",
        &[("narwhal.ipv4", "198.51.100.20")],
    );
    t.hook(
        "truncated JSON",
        cr,
        full[..full.len() / 2].to_vec(),
        &["invalid OCI state on stdin", "EOF"],
    );
    t.hook(
        "JSON array",
        cr,
        b"[\"1.0.2\", \"x\", \"creating\", 1, \"/\"]".to_vec(),
        &["invalid OCI state on stdin", "expected a JSON object"],
    );
    t.hook(
        "JSON string",
        cr,
        b"\"hello\"".to_vec(),
        &["invalid OCI state on stdin"],
    );
    t.hook(
        "binary garbage",
        cr,
        (0u8..=255).rev().collect(),
        &["invalid OCI state on stdin"],
    );
    let mut huge =
        br#"{"ociVersion":"1.0.2","id":"x","status":"creating","pid":1,"bundle":"/","pad":""#
            .to_vec();
    huge.resize((1 << 20) + 4096, b'a');
    huge.extend_from_slice(b"\"}");
    t.hook("huge JSON (> 1 MiB)", cr, huge, &["exceeds 1 MiB"]);
    t.hook(
        "endless stdin (4 MiB of spaces then a state)",
        cr,
        [vec![b' '; 4 << 20], full.clone()].concat(),
        &["exceeds 1 MiB"],
    );
    let st = |pid: Option<i64>| {
        oci_state(
            "hostile-ctr",
            "creating",
            pid,
            "/nonexistent/bundle",
            &[("narwhal.ipv4", "198.51.100.20")],
        )
    };
    t.hook("missing pid", cr, st(None), &["hostile-ctr", "has no pid"]);
    t.hook(
        "zero pid",
        cr,
        st(Some(0)),
        &["hostile-ctr", "invalid pid 0"],
    );
    t.hook(
        "negative pid",
        cr,
        st(Some(-42)),
        &["hostile-ctr", "invalid pid -42"],
    );
    t.hook(
        "pid beyond i32",
        cr,
        st(Some(1 << 40)),
        &["invalid OCI state on stdin", "1099511627776"],
    );
    t.hook(
        "pid as a string",
        cr,
        br#"{"ociVersion":"1.0.2","id":"x","status":"creating","pid":"42","bundle":"/"}"#.to_vec(),
        &["invalid OCI state on stdin", "\"42\""],
    );
    t.hook(
        "dead pid",
        cr,
        st(Some(dead.parse().unwrap())),
        &[
            "hostile-ctr",
            &format!("/proc/{dead}/ns/net"),
            &format!("process {dead} has exited (it is a zombie)"),
        ],
    );
    t.hook(
        "pid in the host's own namespace",
        cr,
        st(Some(own.parse().unwrap())),
        &[
            "hostile-ctr",
            &format!("/proc/{own}/ns/net"),
            "host's own network namespace",
        ],
    );
    t.hook(
        "duplicate top-level key",
        cr,
        br#"{"ociVersion":"1.0.2","id":"x","status":"creating","pid":1,"pid":2,"bundle":"/"}"#
            .to_vec(),
        &["invalid OCI state on stdin", "duplicate field `pid`"],
    );
    t.hook(
        "no container id",
        cr,
        br#"{"ociVersion":"1.0.2","status":"creating","pid":1,"bundle":"/"}"#.to_vec(),
        &["no container id"],
    );
    t.hook(
        "container id with a control character",
        cr,
        oci_state("evil\u{1b}[2J", "creating", Some(1), "/", &[]),
        &["container id 'evil\\u{1b}[2J'", "control character"],
    );
    t.hook(
        "container id over 1024 bytes",
        cr,
        oci_state(&"x".repeat(1025), "creating", Some(1), "/", &[]),
        &["container id is too long (1025 bytes"],
    );
    t.hook(
        "unknown stage argument",
        Some("prestart"),
        st(Some(1)),
        &["unknown hook stage 'prestart'"],
    )
    .code = 2; // a usage error, like any bad command line
    t.hook(
        "stage inferred from status running",
        None,
        oci_state(
            "hostile-ctr",
            "running",
            Some(1),
            "/",
            &[("narwhal.ipv4", "198.51.100.20")],
        ),
        &["hostile-ctr", "status running"],
    );
    t.hook(
        "no status, no stage",
        None,
        br#"{"ociVersion":"1.0.2","id":"hostile-ctr","pid":1,"bundle":"/"}"#.to_vec(),
        &["hostile-ctr", "no status"],
    );
    let nb = scratch.path().join("no-such-bundle").display().to_string();
    t.hook(
        "bundle path that does not exist (no annotations)",
        cr,
        oci_state("hostile-ctr", "creating", Some(t.pid as i64), &nb, &[]),
        &[&format!("{nb}/config.json"), "No such file"],
    );
    t.hook(
        "relative bundle path (no annotations)",
        cr,
        oci_state(
            "hostile-ctr",
            "creating",
            Some(t.pid as i64),
            "rel/bundle",
            &[],
        ),
        &["hostile-ctr", "relative bundle path 'rel/bundle'"],
    );

    // ---- hook: annotations ----
    let v4 = ("narwhal.ipv4", "198.51.100.20");
    t.hook_ann(
        "narwhal.ipv4 of the wrong family",
        &[("narwhal.ipv4", "2001:db8::20")],
        &["hostile-ctr", "IPv4 address '2001:db8::20'"],
    );
    t.hook_ann(
        "narwhal.ipv6 of the wrong family",
        &[("narwhal.ipv6", "198.51.100.20")],
        &["IPv6 address '198.51.100.20'"],
    );
    t.hook_ann(
        "narwhal.ipv6 multicast",
        &[("narwhal.ipv6", "ff05::2")],
        &["IPv6 address 'ff05::2'", "multicast"],
    );
    t.hook_ann(
        "narwhal.ipv4 unspecified",
        &[("narwhal.ipv4", "0.0.0.0")],
        &["IPv4 address '0.0.0.0'", "unspecified"],
    );
    t.hook_ann(
        "narwhal.ipv4 with prefix",
        &[("narwhal.ipv4", "198.51.100.20/32")],
        &["'198.51.100.20/32'", "prefix"],
    );
    t.hook_ann(
        "narwhal.ipv6 with zone",
        &[("narwhal.ipv6", "fe80::2%eth0")],
        &["'fe80::2%eth0'", "zone"],
    );
    t.hook_ann(
        "narwhal.ipv4 padded with spaces",
        &[("narwhal.ipv4", " 198.51.100.20 ")],
        &["' 198.51.100.20 '", "not an IP address"],
    );
    t.hook_ann(
        "narwhal.host-ipv4 = narwhal.ipv4",
        &[v4, ("narwhal.host-ipv4", "198.51.100.20")],
        &["host IPv4 address '198.51.100.20'", "equals"],
    );
    t.hook_ann(
        "narwhal.host-ipv6 = narwhal.ipv6",
        &[
            ("narwhal.ipv6", "2001:db8::20"),
            ("narwhal.host-ipv6", "2001:db8:0::20"),
        ],
        &["host IPv6 address '2001:db8::20'", "equals"],
    );
    t.hook_ann(
        "narwhal.interface with '/'",
        &[v4, ("narwhal.interface", "../eth0")],
        &["interface name '../eth0'", "'/'"],
    );
    t.hook_ann(
        "narwhal.interface with a space",
        &[v4, ("narwhal.interface", "e 0")],
        &["interface name 'e 0'", "whitespace"],
    );
    t.hook_ann(
        "narwhal.interface with a control character",
        &[v4, ("narwhal.interface", "e\u{7f}0")],
        &["annotation 'narwhal.interface'", "control character"],
    );
    t.hook_ann(
        "narwhal.interface of 16 bytes",
        &[v4, ("narwhal.interface", "0123456789abcdef")],
        &["interface name '0123456789abcdef'", "longer than 15"],
    );
    t.hook_ann(
        "narwhal.interface '.'",
        &[v4, ("narwhal.interface", ".")],
        &["interface name '.'", "reserved"],
    );
    t.hook_ann(
        "narwhal.host-interface '..'",
        &[v4, ("narwhal.host-interface", "..")],
        &["host interface name '..'", "reserved"],
    );
    t.hook_ann(
        "narwhal.host-interface lo (exists, not ours)",
        &[v4, ("narwhal.host-interface", "lo")],
        &[
            "hostile-ctr",
            "link add lo",
            "host interface lo already exists",
        ],
    );
    t.hook_ann(
        "narwhal.mtu 0",
        &[v4, ("narwhal.mtu", "0")],
        &["MTU '0'", "outside"],
    );
    t.hook_ann(
        "narwhal.mtu 70000",
        &[v4, ("narwhal.mtu", "70000")],
        &["MTU '70000'", "outside"],
    );
    t.hook_ann(
        "narwhal.mtu 1279 with IPv6",
        &[("narwhal.ipv6", "2001:db8::20"), ("narwhal.mtu", "1279")],
        &["MTU '1279'", "IPv6 needs"],
    );
    t.hook_ann(
        "narwhal.mtu empty",
        &[v4, ("narwhal.mtu", "")],
        &["MTU ''", "whole number"],
    );
    t.hook_ann(
        "narwhal.forwarding=maybe",
        &[v4, ("narwhal.forwarding", "maybe")],
        &["forwarding value 'maybe'", "'true' or 'false'"],
    );
    t.hook_ann(
        "narwhal.forwarding=TRUE",
        &[v4, ("narwhal.forwarding", "TRUE")],
        &["forwarding value 'TRUE'"],
    );
    t.hook_ann(
        "unknown key narwhal.ipv44",
        &[v4, ("narwhal.ipv44", "198.51.100.21")],
        &["unknown annotation 'narwhal.ipv44'"],
    );
    t.hook_ann(
        "unknown key narwhal.ipv44 alone",
        &[("narwhal.ipv44", "198.51.100.21")],
        &["unknown annotation 'narwhal.ipv44'"],
    );
    t.hook_ann(
        "unknown key with a newline",
        &[v4, ("narwhal.x\ny", "1")],
        &["unknown annotation 'narwhal.x\\ny'"],
    );
    t.hook_ann(
        "annotation value over 256 bytes",
        &[v4, ("narwhal.host-interface", &"n".repeat(300))],
        &["annotation 'narwhal.host-interface' value is longer than 256 bytes"],
    );
    let p = t.pid;
    t.hook("duplicate annotation keys", cr, format!(r#"{{"ociVersion":"1.0.2","id":"hostile-ctr","status":"creating","pid":{p},"bundle":"/nonexistent","annotations":{{"narwhal.ipv4":"198.51.100.20","narwhal.ipv4":"198.51.100.21"}}}}"#).into_bytes(), &["invalid OCI state on stdin", "duplicate annotation 'narwhal.ipv4'"]);
    t.hook("non-string annotation value", cr, format!(r#"{{"ociVersion":"1.0.2","id":"hostile-ctr","status":"creating","pid":{p},"bundle":"/","annotations":{{"narwhal.ipv4":"198.51.100.20","narwhal.mtu":1500}}}}"#).into_bytes(), &["invalid OCI state on stdin", "1500"]);
    t.hook("annotations not an object", cr, format!(r#"{{"ociVersion":"1.0.2","id":"hostile-ctr","status":"creating","pid":{p},"bundle":"/","annotations":["narwhal.ipv4"]}}"#).into_bytes(), &["invalid OCI state on stdin"]);
    t.hook(
        "poststop: bad narwhal.host-interface",
        Some("poststop"),
        oci_state(
            "hostile-ctr",
            "stopped",
            None,
            "/nonexistent",
            &[v4, ("narwhal.host-interface", "nw/../x")],
        ),
        &["poststop hostile-ctr", "host interface name 'nw/../x'"],
    );
    t.hook(
        "poststop: narwhal.host-interface lo (not ours)",
        Some("poststop"),
        oci_state(
            "hostile-ctr",
            "stopped",
            None,
            "/nonexistent",
            &[v4, ("narwhal.host-interface", "lo")],
        ),
        &["refusing to remove host interface lo", "not a veth"],
    );
    t.hook(
        "poststop: narwhal.host-interface nw-foreign (no alias)",
        Some("poststop"),
        oci_state(
            "hostile-ctr",
            "stopped",
            None,
            "/nonexistent",
            &[v4, ("narwhal.host-interface", "nw-foreign")],
        ),
        &["refusing to remove host interface nw-foreign"],
    );

    // ---- command line: one more target (the stand-in, for `pid` use) ----
    t.cli(
        "--pid with leading '+'",
        os(&["--pid", &format!("+{pid}x"), "-4", "198.51.100.20"]),
        &[&format!("invalid PID '+{pid}x'")],
    );
    let mut nonutf8 = os(&["--netns"]);
    nonutf8.push(OsString::from_vec(b"/nonexistent/\xffns".to_vec()));
    nonutf8.extend(os(&["-4", "198.51.100.20"]));
    t.cli(
        "--netns with invalid UTF-8",
        nonutf8,
        &["/nonexistent/", "No such file"],
    );
    t
}

/// Wait until process `pid` (our child) has exited and is a zombie.
fn wait_for_zombie(pid: u32) {
    common::wait_until(common::WAIT, &format!("process {pid} to exit"), || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        // "PID (comm) STATE ...": the state follows the last ')'
        stat.rsplit(')')
            .next()
            .unwrap()
            .trim_start()
            .starts_with('Z')
    });
}

/// Runs one case; returns a description of what went wrong, if anything.
fn check(case: &Case, ctr: &NsProc, syslog: &Syslog) -> Result<(), String> {
    let before = States::of(ctr);
    syslog.drain();
    let out = match &case.input {
        Input::Cli(args) => run_narwhal(args, None, &case.env),
        Input::Hook { stage, stdin } => {
            let mut args: Vec<OsString> = os(&["hook"]);
            args.extend(stage.map(OsString::from));
            args.push("--syslog-socket".into());
            args.push(syslog.path().into());
            run_narwhal(&args, Some(stdin), &case.env)
        }
    };
    let mut problems = Vec::new();
    match common::one_line_error_with(&out, case.code) {
        Err(e) => problems.push(e),
        Ok(msg) => {
            eprintln!("{}: {msg}", case.name);
            for w in &case.want {
                if !msg.contains(w.as_str()) {
                    problems.push(format!("message lacks {w:?}: {msg:?}"));
                }
            }
            for w in &case.not_want {
                if msg.contains(w.as_str()) {
                    problems.push(format!("message contains {w:?}: {msg:?}"));
                }
            }
            if matches!(case.input, Input::Hook { .. }) {
                let logged = syslog.drain();
                // daemon.err = <3*8+3>; RFC 3164 line "... narwhal[PID]: MSG"
                let found = logged
                    .iter()
                    .any(|l| l.starts_with("<27>") && l.ends_with(&format!("]: {msg}")));
                if !found {
                    problems.push(format!(
                        "message not in syslog at daemon.err; syslog got {logged:?}"
                    ));
                }
                if let Some(w) = logged.iter().find(|l| l.starts_with("<28>")) {
                    problems.push(format!("unexpected warning in syslog: {w:?}"));
                }
            }
        }
    }
    problems.extend(before.changes(ctr));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n  stderr: {:?}",
            problems.join("\n  "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[test]
fn hostile_inputs_are_refused_cleanly() {
    require_root!();
    hostile::private_host();
    let ctr = NsProc::new();
    let scratch = common::temp_dir("hostile");
    let syslog = Syslog::new();
    // A veth in the private host that narwhal did not create (no alias).
    common::run_ok(Command::new("ip").args([
        "link",
        "add",
        "nw-foreign",
        "type",
        "veth",
        "peer",
        "name",
        "nw-foreign-p",
    ]));

    let mut zombie = Command::new("true").spawn().unwrap();
    wait_for_zombie(zombie.id());
    let table = build_table(&ctr, &scratch, &zombie);
    assert!(table.cases.len() >= 40, "only {} cases", table.cases.len());
    let mut failures = Vec::new();
    for case in &table.cases {
        if let Err(e) = check(case, &ctr, &syslog) {
            failures.push(format!("{}:\n  {e}", case.name));
        }
    }
    zombie.wait().unwrap();
    eprintln!(
        "{} hostile inputs checked, {} failed",
        table.cases.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        table.cases.len(),
        failures.join("\n")
    );
}

/// Control characters in a target (PID, netns path, Docker name) must be
/// escaped like every other value, or one error becomes several lines (and
/// an ESC sequence reaches the operator's terminal).
#[test]
fn control_characters_in_targets_are_escaped() {
    require_root!();
    hostile::private_host();
    let ctr = NsProc::new();
    let syslog = Syslog::new();
    let mut t = Table {
        cases: vec![],
        pid: ctr.pid(),
        netns: ctr.netns().display().to_string(),
    };
    t.cli(
        "--pid with a newline",
        os(&["--pid", "1\n2", "-4", "198.51.100.20"]),
        &["invalid PID '1\\n2'"],
    );
    t.cli(
        "remove --pid with a newline",
        os(&["remove", "--pid", "1\n2"]),
        &["invalid PID '1\\n2'"],
    );
    t.cli(
        "--netns with a newline",
        os(&["--netns", "/nonexistent/a\nb", "-4", "198.51.100.20"]),
        &["/nonexistent/a\\nb"],
    );
    t.cli(
        "--netns with an ESC sequence",
        os(&["--netns", "/nonexistent/\u{1b}[2J", "-4", "198.51.100.20"]),
        &["/nonexistent/\\u{1b}[2J"],
    );
    let c = t.cli(
        "Docker name with a newline",
        os(&["-4", "198.51.100.20", "a\nb"]),
        &["invalid Docker container name 'a\\nb'"],
    );
    c.env = vec![("DOCKER_HOST", "unix:///nonexistent")];
    let mut failures = Vec::new();
    for case in &t.cases {
        if let Err(e) = check(case, &ctr, &syslog) {
            failures.push(format!("{}:\n  {e}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A FIFO (or a bundle config.json that is a FIFO) must be refused, not
/// opened for reading: that blocks until some writer shows up, so narwhal
/// would hang forever (and with it the runtime that runs the hook).
#[test]
fn fifos_are_refused_not_waited_on() {
    require_root!();
    hostile::private_host();
    let scratch = common::temp_dir("fifo");
    let fifo = scratch.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let bundle = scratch.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    nix::unistd::mkfifo(
        &bundle.join("config.json"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let ctr = NsProc::new();
    let syslog = Syslog::new();
    let state = oci_state(
        "fifo-ctr",
        "creating",
        Some(ctr.pid() as i64),
        bundle.to_str().unwrap(),
        &[],
    );
    // (name, arguments, stdin)
    type Run<'a> = (&'a str, Vec<OsString>, Option<Vec<u8>>);
    let runs: Vec<Run> = vec![
        (
            "--netns FIFO",
            os(&["--netns", fifo.to_str().unwrap(), "-4", "198.51.100.20"]),
            None,
        ),
        (
            "hook: bundle config.json is a FIFO",
            os(&[
                "hook",
                "createRuntime",
                "--syslog-socket",
                syslog.path().to_str().unwrap(),
            ]),
            Some(state),
        ),
    ];
    let mut failures = Vec::new();
    for (name, args, stdin) in runs {
        let before = host_state();
        // bounded by run_narwhal's timeout, which only a hang reaches
        let out = run_narwhal(&args, stdin.as_deref(), &[]);
        if out.status.code() == Some(124) {
            failures.push(format!(
                "{name}: narwhal hung (killed after {} s)",
                common::LIMIT
            ));
            continue;
        }
        if let Err(e) = one_line_error(&out) {
            failures.push(format!("{name}: {e}"));
        }
        if host_state() != before {
            failures.push(format!("{name}: the host changed"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A syslog daemon that has stopped reading (its datagram queue holds
/// net.unix.max_dgram_qlen = 10 messages) must not hang the hook, and with
/// it the container runtime: narwhal must drop log lines rather than block.
#[test]
fn stuck_syslog_does_not_hang_the_hook() {
    require_root!();
    hostile::private_host();
    let scratch = common::temp_dir("stuck");
    let path = scratch.path().join("log");
    let _never_read = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    let ctr = NsProc::new();
    let id = common::unique("st");
    let state = oci_state(
        &id,
        "creating",
        Some(ctr.pid() as i64),
        "/nonexistent",
        &[
            ("narwhal.ipv4", "198.51.100.40"),
            ("narwhal.ipv6", "2001:db8::40"),
        ],
    );
    // bounded by run_narwhal's timeout, which only a hang reaches
    let out = run_narwhal(
        &[
            "hook",
            "createRuntime",
            "--syslog-socket",
            path.to_str().unwrap(),
        ],
        Some(&state),
        &[],
    );
    let _ = Command::new("ip")
        .args(["link", "del", &narwhal::naming::host_ifname(&id)])
        .output();
    assert_ne!(
        out.status.code(),
        Some(124),
        "narwhal hook hung writing to a syslog socket nobody reads (killed after {} s)",
        common::LIMIT
    );
    assert!(out.status.success(), "{}", out.status);
}
