//! Property tests standing in for fuzzing (cargo-fuzz needs nightly): the
//! untrusted-input parsers and the naming function, fed arbitrary and
//! mutated input. No privileges needed.
//!
//! - `input::oci::parse_state` with arbitrary bytes, with generated OCI
//!   states (odd ids, pids, statuses, bundles, annotations, duplicate keys)
//!   and with byte-level mutations of those and of the fixtures: never
//!   panics; an error is one line without control characters; an accepted
//!   state satisfies what the rest of narwhal relies on.
//! - `spec::Spec::new` with arbitrary and near-valid strings for every
//!   setting: never panics; an error is one line; an accepted spec has
//!   valid interface names, an MTU in range, addresses of the right family
//!   that are usable, and a plan whose steps print on one line each.
//! - `naming::host_ifname` (and `alias`, the MACs): always a valid
//!   interface name of at most 15 bytes, deterministic.
//!
//! Case counts are sized for CI (well under 30 s in a debug build). Run
//! longer with e.g. `PROPTEST_CASES=200000 cargo test --test fuzz`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use narwhal::input::oci::{parse_state, HookInput, Stage};
use narwhal::naming;
use narwhal::plan::plan_up;
use narwhal::request::{Settings, Target};
use narwhal::spec::{self, Spec};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// `cases` unless PROPTEST_CASES is set (then that, for every property).
fn config(cases: u32) -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    c.max_shrink_iters = 2048;
    // Failing inputs are saved here (relative to the package root, where
    // cargo runs tests) and replayed first on the next run; commit them.
    c.failure_persistence = Some(Box::new(FileFailurePersistence::Direct(
        "tests/fuzz.proptest-regressions",
    )));
    c
}

// ---------------------------------------------------------------- strings

/// Strings a hostile user might pass: any characters (controls, NUL,
/// non-ASCII), long runs, and near-miss values.
fn messy() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        2 => "[ -~]{0,24}",
        1 => prop::collection::vec(prop::char::range('\0', '\u{a0}'), 0..24).prop_map(String::from_iter),
        1 => "[a-z0-9]{250,300}",
        1 => prop::sample::select(vec![
            "", " ", ".", "..", "/", "\n", "\0", "-", "true", "false", "TRUE", "1", "0", "-1",
            "\u{1b}[2J", "é", "\u{85}", "\u{2028}", "nw-", "eth0", "lo",
        ])
        .prop_map(String::from),
    ]
}

fn v4() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(Ipv4Addr::from),
        prop::sample::select(vec![
            Ipv4Addr::new(198, 51, 100, 2),
            Ipv4Addr::new(198, 18, 0, 9),
            Ipv4Addr::new(169, 254, 0, 1),
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            Ipv4Addr::LOCALHOST,
            Ipv4Addr::new(224, 0, 0, 1),
            Ipv4Addr::new(240, 0, 0, 1),
            Ipv4Addr::new(0, 1, 2, 3),
        ]),
    ]
}

fn v6() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        any::<u128>().prop_map(Ipv6Addr::from),
        any::<[u16; 8]>().prop_map(|s| Ipv6Addr::from(s.map(|x| x % 4))), // many zeros: "::" forms
        prop::sample::select(vec![
            "2001:db8::2".parse::<Ipv6Addr>().unwrap(),
            "fe80::1".parse().unwrap(),
            Ipv6Addr::UNSPECIFIED,
            Ipv6Addr::LOCALHOST,
            "ff02::1".parse().unwrap(),
            "::ffff:198.51.100.2".parse().unwrap(),
            "::198.51.100.2".parse().unwrap(),
        ]),
    ]
}

/// Address text: valid addresses of both families, with prefixes, zones,
/// brackets, padding, or plain garbage.
fn addr_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => v4().prop_map(|a| a.to_string()),
        3 => v6().prop_map(|a| a.to_string()),
        1 => (v4(), 0u8..40).prop_map(|(a, p)| format!("{a}/{p}")),
        1 => (v6(), 0u8..140).prop_map(|(a, p)| format!("{a}/{p}")),
        1 => (v6(), "[a-z0-9]{0,6}").prop_map(|(a, z)| format!("{a}%{z}")),
        1 => v6().prop_map(|a| format!("[{a}]")),
        1 => (v4(), prop::sample::select(vec![" ", "\n", "\t", "0", "."])).prop_map(|(a, p)| format!("{a}{p}")),
        1 => "[0-9]{1,4}(\\.[0-9]{1,4}){0,4}",
        1 => "[0-9a-fA-F:]{0,45}",
        2 => messy(),
    ]
}

fn ifname_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9_.-]{1,17}",
        2 => "[ -~]{0,18}",
        1 => "[a-zé]{1,10}",
        2 => messy(),
    ]
}

fn mtu_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (0u64..70_000).prop_map(|m| m.to_string()),
        2 => prop::sample::select(vec![67u64, 68, 1279, 1280, 1500, 65535, 65536, 4294967295, 4294967296])
            .prop_map(|m| m.to_string()),
        1 => "[+-]?[0-9]{0,25}",
        1 => messy(),
    ]
}

/// "true", "false", or something else.
fn boolean_text() -> impl Strategy<Value = String> {
    prop_oneof![3 => Just("true".to_string()), 3 => Just("false".to_string()), 1 => messy()]
}

// `..Settings::default()`: settings added later start out unset here.
#[allow(clippy::needless_update)]
fn settings() -> impl Strategy<Value = Settings> {
    let opt = |s: BoxedStrategy<String>, p: f64| prop::option::weighted(p, s);
    (
        opt(addr_text().boxed(), 0.7),
        opt(addr_text().boxed(), 0.6),
        opt(addr_text().boxed(), 0.2),
        opt(addr_text().boxed(), 0.2),
        opt(ifname_text().boxed(), 0.3),
        opt(ifname_text().boxed(), 0.3),
        opt(mtu_text().boxed(), 0.3),
        opt(boolean_text().boxed(), 0.3),
        opt(boolean_text().boxed(), 0.2),
    )
        .prop_map(
            |(
                ipv4,
                ipv6,
                host_ipv4,
                host_ipv6,
                interface,
                host_interface,
                mtu,
                forwarding,
                paranoid,
            )| Settings {
                ipv4,
                ipv6,
                host_ipv4,
                host_ipv6,
                interface,
                host_interface,
                mtu,
                forwarding,
                paranoid,
                ..Settings::default()
            },
        )
}

// ------------------------------------------------------------- invariants

/// A message meant for one stderr/syslog line.
fn check_one_line(what: &str, msg: &str) -> Result<(), TestCaseError> {
    prop_assert!(!msg.is_empty(), "{what}: empty message");
    prop_assert!(
        !msg.chars().any(char::is_control),
        "{what}: control character in message {msg:?}"
    );
    Ok(())
}

/// What the kernel accepts as an interface name, and narwhal promises.
fn check_ifname(what: &str, n: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        !n.is_empty() && n.len() <= 15,
        "{what} {n:?}: length {}",
        n.len()
    );
    prop_assert!(n != "." && n != "..", "{what} {n:?}");
    prop_assert!(
        !n.chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control()),
        "{what} {n:?}: forbidden character"
    );
    Ok(())
}

fn usable_v4(a: Ipv4Addr) -> bool {
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_multicast()
        || a.is_broadcast()
        || a.octets()[0] == 0
        || a.octets()[0] >= 240)
}

fn usable_v6(a: Ipv6Addr) -> bool {
    !(a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.to_ipv4_mapped().is_some())
}

/// One family of an accepted spec: `pair` is exactly the text given for the
/// container and host addresses (no prefix, zone, padding; the default host
/// address when none was given), both usable and different; no host
/// address without a container address.
fn check_family<A>(
    family: &str,
    pair: Option<spec::Pair<A>>,
    (given, host_given): (&Option<String>, &Option<String>),
    default_host: A,
    usable: fn(A) -> bool,
) -> Result<(), TestCaseError>
where
    A: Copy + PartialEq + std::fmt::Debug + Into<IpAddr>,
{
    let Some(p) = pair else {
        prop_assert!(
            host_given.is_none(),
            "host {family} accepted without {family}"
        );
        return Ok(());
    };
    prop_assert_eq!(
        given.as_deref().unwrap().parse::<IpAddr>().ok(),
        Some(p.container.into())
    );
    prop_assert!(
        usable(p.container) && usable(p.host) && p.container != p.host,
        "{:?} {:?}",
        p.container,
        p.host
    );
    match host_given {
        Some(h) => prop_assert_eq!(h.parse::<IpAddr>().ok(), Some(p.host.into())),
        None => prop_assert_eq!(p.host, default_host),
    }
    Ok(())
}

fn check_spec(key: &str, s: &Settings, spec: &Spec) -> Result<(), TestCaseError> {
    check_ifname("host interface", &spec.host_if)?;
    check_ifname("container interface", &spec.container_if)?;
    prop_assert!(
        spec.ipv4.is_some() || spec.ipv6.is_some(),
        "no address family"
    );
    prop_assert_eq!(spec.ipv4.is_some(), s.ipv4.is_some());
    prop_assert_eq!(spec.ipv6.is_some(), s.ipv6.is_some());
    check_family(
        "IPv4",
        spec.ipv4,
        (&s.ipv4, &s.host_ipv4),
        spec::DEFAULT_HOST_IPV4,
        usable_v4,
    )?;
    check_family(
        "IPv6",
        spec.ipv6,
        (&s.ipv6, &s.host_ipv6),
        spec::DEFAULT_HOST_IPV6,
        usable_v6,
    )?;
    match spec.mtu {
        None => prop_assert!(s.mtu.is_none()),
        Some(m) => {
            prop_assert!((spec::MIN_MTU..=spec::MAX_MTU).contains(&m), "MTU {m}");
            prop_assert!(
                spec.ipv6.is_none() || m >= spec::MIN_MTU_IPV6,
                "MTU {m} with IPv6"
            );
            prop_assert_eq!(s.mtu.as_deref().unwrap().parse::<u32>().ok(), Some(m));
        }
    }
    prop_assert_eq!(spec.forwarding, s.forwarding.as_deref() == Some("true"));
    prop_assert_eq!(spec.paranoid, s.paranoid.as_deref() == Some("true"));
    match &s.host_interface {
        None => prop_assert_eq!(&spec.host_if, &naming::host_ifname(key)),
        Some(h) => prop_assert_eq!(&spec.host_if, h),
    }
    prop_assert_eq!(&spec.key, key);
    // The plan never panics and each step prints on one line.
    for step in plan_up(spec) {
        let text = step.to_string();
        prop_assert!(
            !text.contains('\n') && !text.contains('\r'),
            "step {text:?}"
        );
    }
    Ok(())
}

fn check_hook_input(
    _bytes: &[u8],
    stage_arg: Option<&str>,
    h: &HookInput,
) -> Result<(), TestCaseError> {
    let id = &h.container_id;
    prop_assert!(
        !id.is_empty() && id.len() <= 1024,
        "container id of {} bytes",
        id.len()
    );
    prop_assert!(!id.chars().any(char::is_control), "container id {id:?}");
    if let Some(s) = stage_arg {
        let want = if s.eq_ignore_ascii_case("poststop") || s.eq_ignore_ascii_case("post-stop") {
            Stage::Poststop
        } else {
            Stage::CreateRuntime
        };
        prop_assert_eq!(h.stage, want);
    }
    if let Some(r) = &h.request {
        prop_assert_eq!(r.key.as_deref(), Some(id.as_str()));
        match h.stage {
            Stage::CreateRuntime => {
                prop_assert!(
                    matches!(r.target, Some(Target::Pid(p)) if p > 0),
                    "target {:?}",
                    r.target
                );
                prop_assert!(
                    r.settings.ipv4.is_some() || r.settings.ipv6.is_some(),
                    "request without an address"
                );
            }
            Stage::Poststop => prop_assert_eq!(&r.target, &None),
        }
        let s = &r.settings;
        for v in [
            &s.ipv4,
            &s.ipv6,
            &s.host_ipv4,
            &s.host_ipv6,
            &s.interface,
            &s.host_interface,
            &s.mtu,
            &s.forwarding,
            &s.paranoid,
        ]
        .into_iter()
        .flatten()
        {
            prop_assert!(
                v.len() <= 256 && !v.chars().any(char::is_control),
                "annotation value {v:?}"
            );
        }
        // Everything downstream of parsing survives it too.
        if let Ok(spec) = Spec::new("/proc/1/ns/net".into(), id, s) {
            check_spec(id, s, &spec)?;
        }
    }
    Ok(())
}

/// parse_state must not panic; its result must satisfy the invariants.
fn run_parse(bytes: &[u8], stage: Option<&str>) -> Result<Option<HookInput>, TestCaseError> {
    match parse_state(bytes, stage) {
        Ok(h) => {
            check_hook_input(bytes, stage, &h)?;
            Ok(Some(h))
        }
        Err(e) => {
            let msg = format!("{:#}", anyhow::Error::from(e));
            check_one_line("parse_state error", &msg)?;
            Ok(None)
        }
    }
}

/// serde_json's messages quote parts of the input verbatim ("unknown
/// variant `a<newline>b`"), so an OCI state with a control character in
/// `status` (or a non-string where a string belongs) would yield a
/// multi-line error; src/input/oci.rs escapes them.
#[test]
fn serde_errors_are_one_line() {
    for doc in [
        &br#"{"id":"x","status":"a\nb","pid":1,"bundle":"/"}"#[..],
        br#"{"id":"x","status":"\u001b[2J","pid":1,"bundle":"/"}"#,
        br#"{"id":"x","status":"creating","pid":1,"bundle":"/","annotations":{"narwhal.ipv4":"a\nb","narwhal.ipv4":"y"}}"#,
        br#"{"id":"x","status":"creating","pid":"1\n2","bundle":"/"}"#,
    ] {
        let e = parse_state(doc, None).expect_err("invalid state");
        let msg = format!("{:#}", anyhow::Error::from(e));
        assert!(!msg.chars().any(char::is_control), "{msg:?}");
    }
}

// -------------------------------------------------------------- OCI state

const FIXTURES: &[&[u8]] = &[
    include_bytes!("fixtures/oci/create-runtime.json"),
    include_bytes!("fixtures/oci/poststop.json"),
    include_bytes!("fixtures/oci/no-annotations.json"),
    include_bytes!("fixtures/oci/no-narwhal.json"),
    include_bytes!("fixtures/oci/duplicate-annotation.json"),
];

/// The fixtures stand for real states: the settings in them are ones the
/// validator accepts, so a parse test never passes on a value narwhal
/// would refuse anyway.
#[test]
fn fixture_settings_are_valid() {
    let with_settings = [
        include_bytes!("fixtures/oci/create-runtime.json").as_slice(),
        include_bytes!("fixtures/oci/poststop.json"),
    ];
    for bytes in with_settings {
        let h = parse_state(bytes, None).expect("fixture parses");
        let r = h.request.expect("fixture carries narwhal settings");
        if let Err(e) = Spec::new("/proc/1/ns/net".into(), &h.container_id, &r.settings) {
            panic!("{}: {e}", String::from_utf8_lossy(bytes));
        }
    }
}

const KNOWN: &[&str] = &[
    "narwhal.ipv4",
    "narwhal.ipv6",
    "narwhal.host-ipv4",
    "narwhal.host-ipv6",
    "narwhal.interface",
    "narwhal.host-interface",
    "narwhal.mtu",
    "narwhal.forwarding",
    "narwhal.paranoid",
];

/// A bundle directory whose config.json carries narwhal annotations, for
/// states without annotations of their own. It lives in cargo's per-target
/// temp dir (gone with `cargo clean`); written atomically, so parallel runs
/// only ever read a complete file.
fn bundle_dir() -> &'static str {
    static DIR: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-bundle");
        std::fs::create_dir_all(&d).unwrap();
        let tmp = d.join(format!("config.json.{}", std::process::id()));
        std::fs::write(
            &tmp,
            br#"{"ociVersion":"1.0.2","annotations":{"narwhal.ipv4":"198.51.100.9","narwhal.mtu":"1400","other":"x"}}"#,
        )
        .unwrap();
        std::fs::rename(&tmp, d.join("config.json")).unwrap();
        d.to_string_lossy().into_owned()
    })
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// An annotation key: known, narwhal-prefixed unknown, foreign, or odd.
fn ann_key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(KNOWN.to_vec()).prop_map(String::from),
        1 => "narwhal\\.[a-z0-9.-]{0,10}",
        1 => "[a-z]{1,5}\\.[a-z.]{1,10}",
        1 => messy(),
    ]
}

fn ann_value() -> impl Strategy<Value = String> {
    prop_oneof![3 => addr_text(), 1 => ifname_text(), 1 => mtu_text(), 1 => boolean_text(), 1 => messy()]
}

/// The text of a JSON value for one state field (None: field left out).
fn field_value(kind: u8) -> BoxedStrategy<Option<String>> {
    match kind {
        // id
        0 => prop::option::weighted(
            0.95,
            prop_oneof![
                4 => "[a-z0-9]{1,20}".prop_map(|s| json_str(&s)),
                1 => messy().prop_map(|s| json_str(&s)),
                1 => (1019usize..1030).prop_map(|n| json_str(&"i".repeat(n))),
                1 => Just("null".to_string()),
                1 => any::<i64>().prop_map(|n| n.to_string()),
            ],
        )
        .boxed(),
        // status
        1 => prop::option::weighted(
            0.9,
            prop_oneof![
                6 => prop::sample::select(vec!["creating", "created", "running", "stopped"]).prop_map(json_str),
                1 => messy().prop_map(|s| json_str(&s)),
            ],
        )
        .boxed(),
        // pid
        2 => prop::option::weighted(
            0.9,
            prop_oneof![
                4 => (1i64..4_194_304).prop_map(|n| n.to_string()),
                2 => any::<i64>().prop_map(|n| n.to_string()),
                1 => prop::sample::select(vec!["0", "-1", "2147483647", "2147483648", "1.5", "1e3", "null", "\"42\"", "true"])
                    .prop_map(String::from),
            ],
        )
        .boxed(),
        // bundle
        _ => prop::option::weighted(
            0.9,
            prop_oneof![
                3 => Just(json_str(bundle_dir())),
                2 => Just(json_str("/nonexistent/narwhal-fuzz-bundle")),
                1 => prop::sample::select(vec!["", "/", "rel/bundle", "."]).prop_map(json_str),
                1 => messy().prop_map(|s| json_str(&s)),
            ],
        )
        .boxed(),
    }
}

/// A generated state document as text (keys may repeat), plus the
/// annotations it carries, in order, when they are a plain string map.
fn state_text() -> impl Strategy<Value = (String, Option<Vec<(String, String)>>)> {
    let anns = prop::option::weighted(
        0.85,
        prop_oneof![
            8 => prop::collection::vec((ann_key(), ann_value()), 0..8).prop_map(Some),
            1 => Just(None), // "annotations": null
        ],
    );
    (
        field_value(0),
        field_value(1),
        field_value(2),
        field_value(3),
        anns,
        any::<bool>(),
        any::<u8>(),
    )
        .prop_map(|(id, status, pid, bundle, anns, version, odd)| {
            let mut fields = Vec::new();
            if version {
                fields.push(("ociVersion".to_string(), json_str("1.0.2")));
            }
            for (k, v) in [
                ("id", id),
                ("status", status),
                ("pid", pid),
                ("bundle", bundle),
            ] {
                if let Some(v) = v {
                    fields.push((k.to_string(), v));
                }
            }
            let mut plain = None;
            match anns {
                None => {}
                Some(None) => fields.push(("annotations".into(), "null".into())),
                Some(Some(pairs)) => {
                    let body: Vec<String> = pairs
                        .iter()
                        .map(|(k, v)| format!("{}:{}", json_str(k), json_str(v)))
                        .collect();
                    let text = match odd % 16 {
                        0 => format!(
                            "[{}]",
                            pairs
                                .iter()
                                .map(|(k, _)| json_str(k))
                                .collect::<Vec<_>>()
                                .join(",")
                        ),
                        1 => format!("{{\"narwhal.mtu\":{odd}}}"),
                        _ => {
                            plain = Some(pairs);
                            format!("{{{}}}", body.join(","))
                        }
                    };
                    fields.push(("annotations".into(), text));
                }
            }
            if odd % 32 == 2 {
                // an unknown top-level field, and sometimes a repeated one
                fields.push(("extra".into(), "{\"a\":[1,2,{}]}".into()));
            }
            if odd % 32 == 3 && !fields.is_empty() {
                let f = fields[0].clone();
                fields.push(f);
            }
            let text = format!(
                "{{{}}}",
                fields
                    .iter()
                    .map(|(k, v)| format!("{}:{v}", json_str(k)))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            (text, plain)
        })
}

fn stage_arg() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(None),
        2 => Just(Some("createRuntime".to_string())),
        2 => Just(Some("poststop".to_string())),
        1 => prop::sample::select(vec!["create-runtime", "POSTSTOP", "post-stop", "prestart", ""]).prop_map(|s| Some(s.to_string())),
        1 => messy().prop_map(Some),
    ]
}

/// A byte-level mutation: overwrite, insert, delete, truncate, duplicate.
#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
    Splice(usize, usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte =
        prop_oneof![3 => any::<u8>(), 2 => prop::sample::select(b"{}[]\",:\\0 -.e\n".to_vec())];
    prop_oneof![
        3 => (any::<usize>(), byte.clone()).prop_map(|(i, b)| Mutation::Set(i, b)),
        3 => (any::<usize>(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
        3 => any::<usize>().prop_map(Mutation::Delete),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), any::<usize>(), 1usize..64).prop_map(|(a, b, n)| Mutation::Splice(a, b, n)),
    ]
}

fn mutate(mut b: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        let n = b.len();
        match *m {
            Mutation::Set(i, x) if n > 0 => b[i % n] = x,
            Mutation::Insert(i, x) => b.insert(i % (n + 1), x),
            Mutation::Delete(i) if n > 0 => {
                b.remove(i % n);
            }
            Mutation::Truncate(i) => b.truncate(i % (n + 1)),
            Mutation::Splice(from, to, len) if n > 0 => {
                // copy a piece of the document elsewhere (duplicate keys, nesting)
                let from = from % n;
                let piece: Vec<u8> = b[from..(from + len).min(n)].to_vec();
                let to = to % (n + 1);
                b.splice(to..to, piece);
            }
            _ => {}
        }
    }
    b
}

proptest! {
    #![proptest_config(config(3000))]

    /// Arbitrary bytes, any stage argument.
    #[test]
    fn parse_state_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048), stage in stage_arg()) {
        run_parse(&bytes, stage.as_deref())?;
    }

    /// Arbitrary text that starts like an object (gets past the first check).
    #[test]
    fn parse_state_object_like_text(body in "\\{[ -~]{0,200}", stage in stage_arg()) {
        run_parse(body.as_bytes(), stage.as_deref())?;
    }

    /// Generated states, unmutated: the invariants, plus an oracle for the
    /// annotation values when the state carries a plain string map.
    #[test]
    fn parse_state_generated((text, anns) in state_text(), stage in stage_arg()) {
        let res = run_parse(text.as_bytes(), stage.as_deref())?;
        if let (Some(h), Some(pairs)) = (res, anns) {
            if let Some(r) = h.request.filter(|_| !pairs.is_empty()) {
                // Accepted: no duplicates, so each known key maps to its value.
                for (k, v) in &pairs {
                    let got = match k.as_str() {
                        "narwhal.ipv4" => &r.settings.ipv4,
                        "narwhal.ipv6" => &r.settings.ipv6,
                        "narwhal.host-ipv4" => &r.settings.host_ipv4,
                        "narwhal.host-ipv6" => &r.settings.host_ipv6,
                        "narwhal.interface" => &r.settings.interface,
                        "narwhal.host-interface" => &r.settings.host_interface,
                        "narwhal.mtu" => &r.settings.mtu,
                        "narwhal.forwarding" => &r.settings.forwarding,
                        "narwhal.paranoid" => &r.settings.paranoid,
                        other => {
                            // (a new annotation? add it to KNOWN and here)
                            prop_assert!(!other.starts_with("narwhal."), "unknown key {other:?} accepted");
                            continue;
                        }
                    };
                    prop_assert_eq!(got.as_deref(), Some(v.as_str()), "annotation {}", k);
                }
            }
        }
    }

    /// Generated states and fixtures, mutated byte by byte.
    #[test]
    fn parse_state_mutated(
        (text, _) in state_text(),
        fixture in 0..FIXTURES.len() + 2,
        ms in prop::collection::vec(mutation(), 1..6),
        stage in stage_arg(),
    ) {
        let base = if fixture < FIXTURES.len() { FIXTURES[fixture].to_vec() } else { text.into_bytes() };
        run_parse(&mutate(base, &ms), stage.as_deref())?;
    }
}

proptest! {
    #![proptest_config(config(6000))]

    /// Spec::new with arbitrary and near-valid values for every setting.
    #[test]
    fn spec_new_never_panics_and_keeps_invariants(s in settings(), key in prop_oneof![3 => "[0-9]{1,7}", 1 => "[a-f0-9]{12,64}", 2 => messy()]) {
        match Spec::new("/proc/1/ns/net".into(), &key, &s) {
            Ok(spec) => check_spec(&key, &s, &spec)?,
            Err(e) => {
                check_one_line("Spec::new error", &e.to_string())?;
            }
        }
    }

    /// spec::ifname agrees with the kernel's rules, as narwhal states them.
    #[test]
    fn ifname_validation(n in ifname_text()) {
        match spec::ifname("interface name", &n) {
            Ok(v) => {
                prop_assert_eq!(&v, &n);
                check_ifname("accepted", &v)?;
            }
            Err(e) => check_one_line("ifname error", &e.to_string())?,
        }
    }

    /// host_ifname: a valid name of at most 15 bytes, `nw-KEY` for plain
    /// keys, deterministic; alias and MACs well-formed.
    #[test]
    fn host_ifname_is_always_valid(key in prop_oneof![3 => messy(), 2 => "[A-Za-z0-9_.-]{0,16}", 1 => "[0-9]{1,10}"]) {
        let n = naming::host_ifname(&key);
        check_ifname("host_ifname", &n)?;
        prop_assert!(n.starts_with("nw-"), "{n}");
        prop_assert!(n.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)), "{n:?}");
        prop_assert!(spec::ifname("host interface name", &n).is_ok());
        prop_assert_eq!(&n, &naming::host_ifname(&key.clone()));
        let plain = !key.is_empty() && key.len() <= 12 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if plain {
            prop_assert_eq!(&n, &format!("nw-{key}"));
        } else {
            prop_assert_eq!(n.len(), 15);
            prop_assert!(n[3..].bytes().all(|b| b.is_ascii_hexdigit()), "{n}");
        }
        let a = naming::alias(&key);
        prop_assert!(a.starts_with(naming::ALIAS_PREFIX) && a.len() <= 255, "{a:?}");
        prop_assert!(!a.chars().any(char::is_control), "{a:?}");
        prop_assert_eq!(&a, &naming::alias(&key));
        let (h, c) = (naming::host_mac(&key), naming::container_mac(&key));
        prop_assert_eq!(h[0] & 0x03, 0x02);
        prop_assert_eq!(c[0] & 0x03, 0x02);
        prop_assert_ne!(h, c);
        prop_assert_eq!(h, naming::host_mac(&key));
    }
}

proptest! {
    #![proptest_config(config(300))]

    /// Distinct keys that are hashed get distinct names (64 keys at a time).
    #[test]
    fn hashed_names_do_not_collide(keys in prop::collection::vec(prop::collection::vec(any::<u8>(), 13..64), 64)) {
        let keys: std::collections::HashSet<String> =
            keys.into_iter().map(|k| k.iter().map(|b| format!("{b:02x}")).collect()).collect();
        let names: std::collections::HashSet<String> = keys.iter().map(|k| naming::host_ifname(k)).collect();
        prop_assert_eq!(names.len(), keys.len());
    }
}
