//! OCI runtime hook input: the container state on stdin, plus the bundle's
//! `config.json` when the state carries no annotations.
//!
//! The runtime (runc, crun, youki, ...) runs the hook with the OCI state
//! JSON on stdin. narwhal is configured per container through annotations
//! (`narwhal.ipv4`, `narwhal.ipv6`, ...). A container without
//! `narwhal.ipv4` or `narwhal.ipv6` is left alone.
//!
//! Everything here is untrusted input handling only: values are passed
//! through as raw strings into [`Settings`]; their meaning is validated
//! later by `crate::spec`.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::runtime::ContainerState;
use serde::de::{Deserializer, Error as _, MapAccess, Visitor};
use serde::Deserialize;

use crate::request::{Request, Target};
use crate::settings::{self, Settings};

/// The hook stage narwhal runs at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `createRuntime`: the namespace exists, the container process has
    /// not started yet. Set up networking.
    CreateRuntime,
    /// `poststop`: the container is gone. Tear down.
    Poststop,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::CreateRuntime => "createRuntime",
            Stage::Poststop => "poststop",
        })
    }
}

/// What the hook was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookInput {
    pub stage: Stage,
    /// The OCI container id (validated: non-empty, at most
    /// [`MAX_CONTAINER_ID_BYTES`], no control characters).
    pub container_id: String,
    /// `None`: the container has neither `narwhal.ipv4` nor `narwhal.ipv6`;
    /// narwhal is off for it and must do nothing.
    pub request: Option<Request>,
    /// Poststop: the container's network namespace ends with the container
    /// (see [`netns_ends`]).
    pub netns_ends: bool,
}

/// Errors reading the hook input. Messages are one lowercase line naming
/// the object; io/serde causes are attached as `source` (print the chain
/// with `{:#}`).
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("cannot read OCI state from stdin")]
    ReadStdin(#[source] std::io::Error),

    #[error("OCI state on stdin exceeds 1 MiB")]
    StateTooLarge,

    #[error("no OCI state on stdin")]
    EmptyState,

    #[error("invalid OCI state on stdin")]
    InvalidState(#[source] JsonError),

    #[error("unknown hook stage '{0}' (expected createRuntime or poststop)")]
    UnknownStage(String),

    #[error("OCI state has no container id")]
    NoContainerId,

    #[error("OCI container id is too long ({len} bytes, max 1024)")]
    ContainerIdTooLong { len: usize },

    #[error("OCI container id '{0}' contains a control character")]
    ContainerIdControl(String),

    #[error(
        "OCI state for container {0} has no status; \
         cannot infer the hook stage (pass createRuntime or poststop)"
    )]
    NoStatus(String),

    #[error(
        "OCI state for container {0} has status running; \
         cannot infer the hook stage (pass createRuntime or poststop)"
    )]
    RunningStatus(String),

    #[error("OCI state for container {0} has no pid (needed at createRuntime)")]
    NoPid(String),

    #[error("OCI state for container {id} has invalid pid {pid} (needed at createRuntime)")]
    InvalidPid { id: String, pid: i32 },

    #[error("OCI state for container {0} has no bundle path (needed to read config.json)")]
    NoBundle(String),

    #[error("OCI state for container {id} has a relative bundle path '{path}'")]
    RelativeBundle { id: String, path: String },

    #[error("cannot read bundle config '{path}'")]
    ReadConfig {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("bundle config '{path}' exceeds 16 MiB")]
    ConfigTooLarge { path: String },

    #[error("invalid bundle config '{path}'")]
    InvalidConfig {
        path: String,
        #[source]
        source: JsonError,
    },

    #[error("unknown annotation '{key}' (known: {known})")]
    UnknownAnnotation { key: String, known: String },

    #[error("annotation '{0}' value is longer than 256 bytes")]
    ValueTooLong(String),

    #[error("annotation '{0}' value contains a control character")]
    ValueControl(String),
}

/// A JSON syntax or type error. serde_json quotes input verbatim in its
/// messages ("unknown variant `a<LF>b`"); this prints it one-line.
#[derive(Debug)]
pub struct JsonError(pub serde_json::Error);

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::log::one_line(&self.0.to_string()))
    }
}

impl std::error::Error for JsonError {}

/// The largest OCI state accepted on stdin.
pub const MAX_STATE_BYTES: u64 = 1 << 20;
/// The largest bundle `config.json` read for its annotations.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// The longest accepted OCI container id.
pub const MAX_CONTAINER_ID_BYTES: usize = 1024;
/// The longest accepted `narwhal.*` annotation value.
pub const MAX_VALUE_BYTES: usize = 256;
/// Annotations with this prefix belong to narwhal; unknown ones are errors.
pub use crate::settings::ANNOTATION_PREFIX;

/// Reads the OCI state from `stdin` (at most [`MAX_STATE_BYTES`]) and turns
/// it into a [`HookInput`].
///
/// `stage_arg`: the stage given on the hook's command line
/// (`createRuntime`, `poststop`; see [`parse_stage`]), or `None` to infer
/// it from `state.status`: `creating`/`created` -> createRuntime,
/// `stopped` -> poststop, `running` -> error.
pub fn read_hook_input(stdin: impl Read, stage_arg: Option<&str>) -> Result<HookInput, OciError> {
    parse_state(&read_state(stdin)?, stage_arg)
}

/// Read the state from stdin, at most [`MAX_STATE_BYTES`] (+1 to detect
/// more).
pub fn read_state(stdin: impl Read) -> Result<Vec<u8>, OciError> {
    read_capped(stdin, MAX_STATE_BYTES).map_err(OciError::ReadStdin)
}

/// Best effort `"STAGE ID"` label for an error about `bytes`, so that even a
/// state narwhal refuses is logged with the container it belongs to.
pub fn label(bytes: &[u8], stage_arg: Option<&str>) -> Option<String> {
    #[derive(Deserialize)]
    struct Id {
        id: String,
        status: Option<String>,
    }
    let s: Id = serde_json::from_slice(bytes).ok()?;
    if s.id.is_empty() || s.id.len() > MAX_CONTAINER_ID_BYTES || s.id.chars().any(char::is_control)
    {
        return None;
    }
    let stage = match (stage_arg.map(parse_stage), s.status.as_deref()) {
        (Some(Ok(st)), _) => st.to_string(),
        (_, Some("creating" | "created")) => Stage::CreateRuntime.to_string(),
        (_, Some("stopped")) => Stage::Poststop.to_string(),
        _ => "hook".to_string(),
    };
    Some(format!("{stage} {}", s.id))
}

/// The parsing part of [`read_hook_input`], for tests and fuzzing.
///
/// Touches the filesystem only when the state has no annotations: it then
/// reads `<bundle>/config.json`.
pub fn parse_state(bytes: &[u8], stage_arg: Option<&str>) -> Result<HookInput, OciError> {
    if bytes.len() as u64 > MAX_STATE_BYTES {
        return Err(OciError::StateTooLarge);
    }
    if bytes.trim_ascii().is_empty() {
        return Err(OciError::EmptyState);
    }
    // The stage argument is checked first: a bad command line is a
    // configuration error whatever the state says.
    let explicit = stage_arg.map(parse_stage).transpose()?;

    // serde's derived structs also accept a JSON array (fields by
    // position); the state is an object.
    expect_object(bytes).map_err(|e| OciError::InvalidState(JsonError(e)))?;
    // One typed parse: syntax, types, and duplicates of the known
    // top-level fields (serde rejects a field given twice) and of
    // annotation keys.
    let state: HookState =
        serde_json::from_slice(bytes).map_err(|e| OciError::InvalidState(JsonError(e)))?;

    let id = state.id;
    check_container_id(&id)?;

    let stage = match (explicit, state.status) {
        (Some(stage), _) => stage,
        (None, Given::Absent) => return Err(OciError::NoStatus(id)),
        (None, Given::Present(status)) => match status {
            ContainerState::Creating | ContainerState::Created => Stage::CreateRuntime,
            ContainerState::Stopped => Stage::Poststop,
            ContainerState::Running => return Err(OciError::RunningStatus(id)),
        },
    };

    // config.json, when it was read for its annotations: read once
    let mut config = None;
    let annotations = match state.annotations {
        Some(NoDupMap(a)) if !a.is_empty() => a,
        _ => match read_config(&id, &state.bundle)
            .and_then(|(path, bytes)| Ok((bundle_annotations(&path, &bytes)?, bytes)))
        {
            Ok((a, bytes)) => {
                config = Some(bytes);
                a
            }
            // At poststop a vanished or unreadable bundle must not make
            // cleanup fail: tear down with default settings. Teardown only
            // needs the container id (the key) to find the host interface;
            // a `narwhal.host-interface` override cannot be honoured then,
            // and a container that never used narwhal gets a harmless
            // attempt (teardown checks the ownership mark). Invalid
            // config.json content and bad annotations still fail.
            Err(OciError::NoBundle(_) | OciError::ReadConfig { .. })
                if stage == Stage::Poststop =>
            {
                return Ok(HookInput {
                    stage,
                    container_id: id.clone(),
                    request: Some(Request {
                        target: None,
                        key: Some(id),
                        settings: Settings::default(),
                    }),
                    netns_ends: false,
                });
            }
            Err(e) => return Err(e),
        },
    };

    let Some(settings) = settings_from_annotations(&annotations)? else {
        // narwhal is off for this container: nothing else matters.
        return Ok(HookInput {
            stage,
            container_id: id,
            request: None,
            netns_ends: false,
        });
    };
    let target = match stage {
        Stage::CreateRuntime => Some(pid_target(&id, state.pid)?),
        // The container process is gone; teardown works from the key.
        Stage::Poststop => None,
    };
    Ok(HookInput {
        stage,
        container_id: id.clone(),
        request: Some(Request {
            target,
            key: Some(id),
            settings,
        }),
        netns_ends: stage == Stage::Poststop
            && match config {
                Some(bytes) => config_netns_ends(&bytes),
                None => netns_ends(&state.bundle),
            },
    })
}

/// Whether the network namespace of the container of `bundle` ends with
/// the container: `config.json` has the runtime make a new one (a
/// `network` namespace without `path`), and no hook hands it to someone
/// who keeps it (Docker's `libnetwork-setkey` bind-mounts it until the
/// daemon releases the network, after the runtime's poststop). Linux then
/// removes narwhal's pair with the namespace, within an RCU grace period
/// of the container's last process; a namespace given by path (podman's
/// networks, CNI, Kubernetes, shared namespaces) may outlive it. Anything
/// unreadable: `false`.
pub fn netns_ends(bundle: &Path) -> bool {
    read_config("", bundle).is_ok_and(|(_, bytes)| config_netns_ends(&bytes))
}

/// [`netns_ends`] for the bytes of a `config.json`.
fn config_netns_ends(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Config {
        linux: Option<Linux>,
        hooks: Option<HashMap<String, Option<Vec<Hook>>>>,
    }
    #[derive(Deserialize)]
    struct Linux {
        namespaces: Option<Vec<Namespace>>,
    }
    #[derive(Deserialize)]
    struct Namespace {
        #[serde(rename = "type")]
        kind: String,
        path: Option<PathBuf>,
    }
    #[derive(Deserialize)]
    struct Hook {
        path: Option<PathBuf>,
        args: Option<Vec<String>>,
    }
    let Ok(c) = serde_json::from_slice::<Config>(bytes) else {
        return false;
    };
    let own = c
        .linux
        .and_then(|l| l.namespaces)
        .unwrap_or_default()
        .iter()
        .any(|n| n.kind == "network" && n.path.as_ref().is_none_or(|p| p.as_os_str().is_empty()));
    let setkey = |s: &str| s.contains("libnetwork-setkey");
    let kept = c
        .hooks
        .unwrap_or_default()
        .into_values()
        .flatten()
        .flatten()
        .any(|h| {
            h.args.unwrap_or_default().iter().any(|a| setkey(a))
                || h.path.is_some_and(|p| setkey(&p.to_string_lossy()))
        });
    own && !kept
}

/// Parses a hook stage name: `createRuntime` (also `create-runtime`) or
/// `poststop` (also `post-stop`), ASCII case-insensitively.
pub fn parse_stage(s: &str) -> Result<Stage, OciError> {
    if s.eq_ignore_ascii_case("createRuntime") || s.eq_ignore_ascii_case("create-runtime") {
        Ok(Stage::CreateRuntime)
    } else if s.eq_ignore_ascii_case("poststop") || s.eq_ignore_ascii_case("post-stop") {
        Ok(Stage::Poststop)
    } else {
        Err(OciError::UnknownStage(escape(truncate(s, 64))))
    }
}

/// Extracts narwhal's settings from container annotations.
///
/// Keys not starting with `narwhal.` are ignored. Unknown `narwhal.*` keys
/// are errors, even when the result is `None` (a typo such as
/// `narwhal.ipv44` must not silently start an unconfigured container).
/// Values are kept verbatim (no trimming) but must be at most 256 bytes
/// without control characters. Returns `None` when neither `narwhal.ipv4`
/// nor `narwhal.ipv6` is present.
pub fn settings_from_annotations(
    a: &HashMap<String, String>,
) -> Result<Option<Settings>, OciError> {
    // Sorted, so that which error is reported does not depend on hash order.
    let mut keys: Vec<&String> = a
        .keys()
        .filter(|k| k.starts_with(ANNOTATION_PREFIX))
        .collect();
    keys.sort();

    let mut settings = Settings::default();
    for key in keys {
        let Some(setting) = settings::by_annotation(key) else {
            return Err(OciError::UnknownAnnotation {
                key: escape(truncate(key, 64)),
                known: settings::known_annotations(),
            });
        };
        let value = &a[key];
        if value.len() > MAX_VALUE_BYTES {
            return Err(OciError::ValueTooLong(key.clone()));
        }
        if value.chars().any(char::is_control) {
            return Err(OciError::ValueControl(key.clone()));
        }
        setting.set(&mut settings, value.clone());
    }

    if !settings.wants_network() {
        return Ok(None);
    }
    Ok(Some(settings))
}

/// The namespace target at createRuntime: the container's pid.
fn pid_target(id: &str, pid: Option<i32>) -> Result<Target, OciError> {
    match pid {
        None => Err(OciError::NoPid(id.to_owned())),
        Some(pid) if pid <= 0 => Err(OciError::InvalidPid {
            id: id.to_owned(),
            pid,
        }),
        Some(pid) => Ok(Target::Pid(pid)),
    }
}

fn check_container_id(id: &str) -> Result<(), OciError> {
    if id.is_empty() {
        return Err(OciError::NoContainerId);
    }
    if id.len() > MAX_CONTAINER_ID_BYTES {
        return Err(OciError::ContainerIdTooLong { len: id.len() });
    }
    if id.chars().any(char::is_control) {
        return Err(OciError::ContainerIdControl(escape(truncate(id, 64))));
    }
    Ok(())
}

/// `<bundle>/config.json`: its path and its bytes (at most
/// [`MAX_CONFIG_BYTES`]).
fn read_config(id: &str, bundle: &Path) -> Result<(PathBuf, Vec<u8>), OciError> {
    if bundle.as_os_str().is_empty() {
        return Err(OciError::NoBundle(id.to_owned()));
    }
    if !bundle.is_absolute() {
        return Err(OciError::RelativeBundle {
            id: id.to_owned(),
            path: show_path(bundle),
        });
    }
    let path: PathBuf = bundle.join("config.json");
    let bytes = open_regular(&path)
        .and_then(|f| read_capped(f, MAX_CONFIG_BYTES))
        .map_err(|source| OciError::ReadConfig {
            path: show_path(&path),
            source,
        })?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(OciError::ConfigTooLarge {
            path: show_path(&path),
        });
    }
    Ok((path, bytes))
}

/// The annotations of a bundle's `config.json` (`path`, `bytes`; empty if
/// it has none).
fn bundle_annotations(path: &Path, bytes: &[u8]) -> Result<HashMap<String, String>, OciError> {
    let config: BundleConfig = expect_object(bytes)
        .and_then(|()| serde_json::from_slice(bytes))
        .map_err(|e| OciError::InvalidConfig {
            path: show_path(path),
            source: JsonError(e),
        })?;
    Ok(config.annotations.map(|NoDupMap(a)| a).unwrap_or_default())
}

/// Opens `path` for reading without blocking (a FIFO would wait for a
/// writer forever) and refuses anything but a regular file.
fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(f)
}

/// Refuses JSON documents that are not objects (before serde would take
/// an array as a struct's fields by position).
fn expect_object(bytes: &[u8]) -> Result<(), serde_json::Error> {
    let first = bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    match first {
        Some(b'{') | None => Ok(()),
        Some(_) => Err(serde_json::Error::custom("expected a JSON object")),
    }
}

/// Reads at most `max + 1` bytes, so that the caller can tell "exactly
/// `max`" from "more than `max`".
fn read_capped(r: impl Read, max: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(max + 1).read_to_end(&mut buf)?;
    Ok(buf)
}

/// The OCI state, as `oci_spec::runtime::State` reads it (same fields and
/// types), plus what that type loses: whether `status` was given at all
/// (it defaults to stopped there) and duplicate annotation keys (its
/// HashMap silently keeps the last one).
#[derive(Deserialize)]
struct HookState {
    #[serde(default, rename = "ociVersion")]
    _version: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    status: Given<ContainerState>,
    #[serde(default)]
    pid: Option<i32>,
    #[serde(default)]
    bundle: PathBuf,
    #[serde(default)]
    annotations: Option<NoDupMap>,
}

/// A field that may be absent; unlike `Option`, `null` is no way to give
/// it (it is parsed as a `T`, like the field of `State`).
#[derive(Default)]
enum Given<T> {
    #[default]
    Absent,
    Present(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Given<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Given::Present)
    }
}

/// The only part of the bundle's `config.json` narwhal needs. Minimal on
/// purpose: the runtime has already validated the rest.
#[derive(Deserialize)]
struct BundleConfig {
    #[serde(default)]
    annotations: Option<NoDupMap>,
}

/// A string-to-string map that refuses duplicate keys.
struct NoDupMap(HashMap<String, String>);

impl<'de> Deserialize<'de> for NoDupMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NoDupMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of string annotations")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<NoDupMap, A::Error> {
                let mut out = HashMap::new();
                while let Some((k, v)) = m.next_entry::<String, String>()? {
                    match out.entry(k) {
                        Entry::Occupied(e) => {
                            return Err(A::Error::custom(format_args!(
                                "duplicate annotation '{}'",
                                escape(truncate(e.key(), 64))
                            )));
                        }
                        Entry::Vacant(e) => {
                            e.insert(v);
                        }
                    }
                }
                Ok(NoDupMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// At most `max` bytes of `s`, cut at a char boundary, with `...` if cut.
fn truncate(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return s.into();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end]).into()
}

/// Escapes control characters (and quotes) so a message stays one line.
fn escape(s: impl AsRef<str>) -> String {
    s.as_ref().escape_debug().to_string()
}

fn show_path(p: &Path) -> String {
    escape(p.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    const CREATE_RUNTIME: &[u8] = include_bytes!("../../tests/fixtures/oci/create-runtime.json");
    const POSTSTOP: &[u8] = include_bytes!("../../tests/fixtures/oci/poststop.json");
    const NO_ANNOTATIONS: &[u8] = include_bytes!("../../tests/fixtures/oci/no-annotations.json");
    const NO_NARWHAL: &[u8] = include_bytes!("../../tests/fixtures/oci/no-narwhal.json");
    const DUP_ANNOTATION: &[u8] =
        include_bytes!("../../tests/fixtures/oci/duplicate-annotation.json");
    const BUNDLE_CONFIG: &[u8] = include_bytes!("../../tests/fixtures/oci/bundle-config.json");

    const ID: &str = "3f1c9a2b7d4e";

    /// The error and its sources, `{:#}`-style.
    fn chain(e: &OciError) -> String {
        let mut s = e.to_string();
        let mut src = e.source();
        while let Some(c) = src {
            s.push_str(": ");
            s.push_str(&c.to_string());
            src = c.source();
        }
        s
    }

    fn err(bytes: &[u8], stage: Option<&str>) -> String {
        chain(&parse_state(bytes, stage).expect_err("expected an error"))
    }

    /// A state document with the given fields replaced/added.
    fn with(base: &[u8], edits: &[(&str, serde_json::Value)]) -> Vec<u8> {
        let mut v: serde_json::Value = serde_json::from_slice(base).unwrap();
        let obj = v.as_object_mut().unwrap();
        for (k, val) in edits {
            if val.is_null() {
                obj.remove(*k);
            } else {
                obj.insert(k.to_string(), val.clone());
            }
        }
        serde_json::to_vec(&v).unwrap()
    }

    fn state(status: &str, annotations: &[(&str, &str)]) -> Vec<u8> {
        let a: serde_json::Map<_, _> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), (*v).into()))
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "ociVersion": "1.2.0", "id": ID, "status": status, "pid": 4242,
            "bundle": "/nonexistent/narwhal-test-bundle", "annotations": a,
        }))
        .unwrap()
    }

    /// A bundle directory in the temp dir, removed on drop.
    struct Bundle(PathBuf);
    impl Bundle {
        fn new(tag: &str, config: Option<&[u8]>) -> Bundle {
            let dir =
                std::env::temp_dir().join(format!("narwhal-oci-test-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            if let Some(c) = config {
                std::fs::write(dir.join("config.json"), c).unwrap();
            }
            Bundle(dir)
        }
        fn path(&self) -> serde_json::Value {
            self.0.to_str().unwrap().into()
        }
    }
    impl Drop for Bundle {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn create_runtime_fixture() {
        let h = parse_state(CREATE_RUNTIME, None).unwrap();
        assert_eq!(h.stage, Stage::CreateRuntime);
        assert_eq!(h.container_id, ID);
        let r = h.request.unwrap();
        assert_eq!(r.target, Some(Target::Pid(12345)));
        assert_eq!(r.key.as_deref(), Some(ID));
        assert_eq!(
            r.settings,
            Settings {
                ipv4: Some("198.51.100.2".into()),
                ipv6: Some("2001:db8::2".into()),
                host_ipv4: Some("198.18.0.1".into()),
                host_ipv6: None,
                interface: Some("eth0".into()),
                host_interface: None,
                mtu: Some("1400".into()),
                forwarding: Some("true".into()),
                paranoid: None,
            }
        );
    }

    #[test]
    fn read_hook_input_reads_stdin() {
        let h = read_hook_input(CREATE_RUNTIME, Some("createRuntime")).unwrap();
        assert_eq!(h, parse_state(CREATE_RUNTIME, None).unwrap());
    }

    #[test]
    fn poststop_fixture() {
        let h = parse_state(POSTSTOP, None).unwrap();
        assert_eq!(h.stage, Stage::Poststop);
        let r = h.request.unwrap();
        assert_eq!(r.target, None);
        assert_eq!(r.key.as_deref(), Some(ID));
        assert_eq!(r.settings.ipv4.as_deref(), Some("198.51.100.2"));
        assert_eq!(r.settings.host_interface.as_deref(), Some("nw-custom"));
    }

    #[test]
    fn stage_inference() {
        let a = [("narwhal.ipv4", "10.0.0.2")];
        for (status, stage) in [
            ("creating", Stage::CreateRuntime),
            ("created", Stage::CreateRuntime),
            ("stopped", Stage::Poststop),
        ] {
            assert_eq!(
                parse_state(&state(status, &a), None).unwrap().stage,
                stage,
                "{status}"
            );
        }
        assert_eq!(
            err(&state("running", &a), None),
            format!(
                "OCI state for container {ID} has status running; \
                 cannot infer the hook stage (pass createRuntime or poststop)"
            )
        );
        // A missing status is not taken as "stopped".
        let no_status = with(
            &state("creating", &a),
            &[("status", serde_json::Value::Null)],
        );
        assert_eq!(
            err(&no_status, None),
            format!(
                "OCI state for container {ID} has no status; \
                 cannot infer the hook stage (pass createRuntime or poststop)"
            )
        );
        assert_eq!(
            parse_state(&no_status, Some("poststop")).unwrap().stage,
            Stage::Poststop
        );
        assert!(err(&state("paused", &a), None)
            .starts_with("invalid OCI state on stdin: unknown variant `paused`"));
    }

    #[test]
    fn explicit_stage_overrides_status() {
        let a = [("narwhal.ipv4", "10.0.0.2")];
        let h = parse_state(&state("running", &a), Some("poststop")).unwrap();
        assert_eq!(h.stage, Stage::Poststop);
        assert_eq!(h.request.unwrap().target, None);
        let h = parse_state(&state("stopped", &a), Some("CREATE-RUNTIME")).unwrap();
        assert_eq!(h.stage, Stage::CreateRuntime);
        assert_eq!(h.request.unwrap().target, Some(Target::Pid(4242)));
    }

    #[test]
    fn stage_names() {
        for s in [
            "createRuntime",
            "createruntime",
            "CREATERUNTIME",
            "create-runtime",
            "Create-Runtime",
        ] {
            assert_eq!(parse_stage(s).unwrap(), Stage::CreateRuntime, "{s}");
        }
        for s in ["poststop", "postStop", "POSTSTOP", "post-stop"] {
            assert_eq!(parse_stage(s).unwrap(), Stage::Poststop, "{s}");
        }
        for s in [
            "",
            "prestart",
            "createContainer",
            "create_runtime",
            "poststop ",
        ] {
            assert!(parse_stage(s).is_err(), "{s}");
        }
        assert_eq!(
            parse_stage("prestart").unwrap_err().to_string(),
            "unknown hook stage 'prestart' (expected createRuntime or poststop)"
        );
        assert_eq!(
            parse_stage("x\ny").unwrap_err().to_string(),
            "unknown hook stage 'x\\ny' (expected createRuntime or poststop)"
        );
        // A bad stage argument is reported even with a valid state.
        assert!(err(CREATE_RUNTIME, Some("startContainer")).starts_with("unknown hook stage"));
        assert_eq!(Stage::CreateRuntime.to_string(), "createRuntime");
        assert_eq!(Stage::Poststop.to_string(), "poststop");
    }

    #[test]
    fn empty_state() {
        for b in [&b""[..], b"  \n\t"] {
            assert_eq!(err(b, None), "no OCI state on stdin");
            assert_eq!(
                chain(&read_hook_input(b, None).unwrap_err()),
                "no OCI state on stdin"
            );
        }
    }

    #[test]
    fn invalid_json() {
        assert_eq!(
            err(b"{\"id\": \"abc\"", None),
            "invalid OCI state on stdin: EOF while parsing an object at line 1 column 12"
        );
        for b in [
            &b"[]"[..],
            br#"["1.2.0","a","creating",1,"/b",{"narwhal.ipv4":"x"}]"#,
            b"\"x\"",
            b"1",
        ] {
            assert_eq!(
                err(b, None),
                "invalid OCI state on stdin: expected a JSON object"
            );
        }
        assert!(err(b"{} x", None).starts_with("invalid OCI state on stdin: trailing characters"));
        assert!(err(&with(CREATE_RUNTIME, &[("pid", "12".into())]), None)
            .starts_with("invalid OCI state on stdin: invalid type: string \"12\", expected i32"));
        assert!(err(
            &with(
                CREATE_RUNTIME,
                &[("pid", serde_json::Value::from(1u64 << 40))]
            ),
            None
        )
        .starts_with("invalid OCI state on stdin: invalid value: integer"));
        let e = parse_state(b"{", None).unwrap_err();
        assert!(matches!(e, OciError::InvalidState(_)));
        assert_eq!(e.to_string(), "invalid OCI state on stdin");
    }

    #[test]
    fn huge_state() {
        let mut big = b"{\"id\":\"x\",\"pad\":\"".to_vec();
        big.resize(MAX_STATE_BYTES as usize + 10, b'a');
        assert_eq!(err(&big, None), "OCI state on stdin exceeds 1 MiB");
        assert_eq!(
            chain(&read_hook_input(&big[..], None).unwrap_err()),
            "OCI state on stdin exceeds 1 MiB"
        );
        // An endless stream is cut off, not read to the end.
        let endless = std::io::repeat(b' ');
        assert_eq!(
            chain(&read_hook_input(endless, None).unwrap_err()),
            "OCI state on stdin exceeds 1 MiB"
        );
        // Exactly the limit is fine (padding with whitespace).
        let mut exact = CREATE_RUNTIME.to_vec();
        exact.resize(MAX_STATE_BYTES as usize, b' ');
        assert!(read_hook_input(&exact[..], None).is_ok());
    }

    #[test]
    fn stdin_read_error() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("boom"))
            }
        }
        assert_eq!(
            chain(&read_hook_input(Broken, None).unwrap_err()),
            "cannot read OCI state from stdin: boom"
        );
    }

    #[test]
    fn duplicate_keys() {
        let e = err(DUP_ANNOTATION, None);
        assert!(
            e.starts_with(
                "invalid OCI state on stdin: duplicate annotation 'narwhal.ipv4' at line"
            ),
            "{e}"
        );
        let top = br#"{"ociVersion":"1.2.0","id":"a","id":"b","status":"creating","pid":1,"bundle":"/x"}"#;
        assert!(err(top, None).starts_with("invalid OCI state on stdin: duplicate field `id`"));
        let ann = br#"{"id":"a","status":"creating","pid":1,"bundle":"/x",
            "annotations":{"narwhal.ipv4":"10.0.0.2"},"annotations":{"narwhal.ipv4":"10.0.0.3"}}"#;
        assert!(
            err(ann, None).starts_with("invalid OCI state on stdin: duplicate field `annotations`")
        );
        // Duplicates of any annotation are refused, even identical ones.
        let same = br#"{"id":"a","status":"creating","pid":1,"bundle":"/x",
            "annotations":{"foo":"1","foo":"1","narwhal.ipv4":"10.0.0.2"}}"#;
        assert!(
            err(same, None).starts_with("invalid OCI state on stdin: duplicate annotation 'foo'")
        );
    }

    #[test]
    fn unknown_annotation() {
        let known = "narwhal.ipv4, narwhal.ipv6, narwhal.host-ipv4, narwhal.host-ipv6, \
                     narwhal.interface, narwhal.host-interface, narwhal.mtu, narwhal.forwarding, \
                     narwhal.paranoid";
        assert_eq!(
            err(
                &state(
                    "creating",
                    &[("narwhal.ipv4", "10.0.0.2"), ("narwhal.ipv44", "x")]
                ),
                None
            ),
            format!("unknown annotation 'narwhal.ipv44' (known: {known})")
        );
        // Even without ipv4/ipv6, a typo is an error, not "narwhal off".
        assert_eq!(
            err(&state("creating", &[("narwhal.ipv44", "10.0.0.2")]), None),
            format!("unknown annotation 'narwhal.ipv44' (known: {known})")
        );
        // Case-sensitive keys.
        assert!(
            err(&state("creating", &[("narwhal.IPv4", "10.0.0.2")]), None)
                .starts_with("unknown annotation 'narwhal.IPv4'")
        );
        assert!(err(&state("creating", &[("narwhal.", "")]), None)
            .starts_with("unknown annotation 'narwhal.'"));
        // Control characters in the key are escaped in the message.
        assert!(err(&state("creating", &[("narwhal.a\nb", "")]), None)
            .starts_with("unknown annotation 'narwhal.a\\nb'"));
        // Other prefixes are not narwhal's business.
        let h = parse_state(
            &state(
                "creating",
                &[
                    ("narwhal.ipv4", "10.0.0.2"),
                    ("Narwhal.ipv44", "x"),
                    ("narwhalx", "y"),
                ],
            ),
            None,
        )
        .unwrap();
        assert_eq!(
            h.request.unwrap().settings.ipv4.as_deref(),
            Some("10.0.0.2")
        );
    }

    #[test]
    fn no_narwhal_annotations() {
        let h = parse_state(NO_NARWHAL, None).unwrap();
        assert_eq!(h.stage, Stage::CreateRuntime);
        assert_eq!(h.container_id, ID);
        assert_eq!(h.request, None);
        // Other narwhal settings without an address: still off.
        let h = parse_state(&state("creating", &[("narwhal.mtu", "1400")]), None).unwrap();
        assert_eq!(h.request, None);
        // Only ipv6 is enough.
        let h = parse_state(&state("creating", &[("narwhal.ipv6", "fd00::2")]), None).unwrap();
        assert_eq!(h.request.unwrap().settings.ipv6.as_deref(), Some("fd00::2"));
    }

    #[test]
    fn annotation_values() {
        // Passed through verbatim, untrimmed, even empty.
        let h = parse_state(
            &state(
                "creating",
                &[("narwhal.ipv4", " 10.0.0.2 "), ("narwhal.mtu", "")],
            ),
            None,
        )
        .unwrap();
        let s = h.request.unwrap().settings;
        assert_eq!(s.ipv4.as_deref(), Some(" 10.0.0.2 "));
        assert_eq!(s.mtu.as_deref(), Some(""));

        let long = "1".repeat(257);
        assert_eq!(
            err(
                &state(
                    "creating",
                    &[("narwhal.ipv4", "10.0.0.2"), ("narwhal.mtu", &long)]
                ),
                None
            ),
            "annotation 'narwhal.mtu' value is longer than 256 bytes"
        );
        let ok = "1".repeat(256);
        assert!(parse_state(&state("creating", &[("narwhal.ipv4", &ok)]), None).is_ok());
        for bad in ["10.0.0.2\n", "10.0.0.2\0", "a\u{7f}", "a\u{85}", "\t"] {
            assert_eq!(
                err(&state("creating", &[("narwhal.ipv4", bad)]), None),
                "annotation 'narwhal.ipv4' value contains a control character",
                "{bad:?}"
            );
        }
        // Non-narwhal values are not checked.
        assert!(parse_state(
            &state("creating", &[("narwhal.ipv4", "x"), ("other", "a\nb")]),
            None
        )
        .is_ok());
        // Non-string values are refused by the parser.
        let e = err(
            br#"{"id":"a","status":"creating","pid":1,"annotations":{"narwhal.mtu":1400}}"#,
            None,
        );
        assert!(
            e.starts_with("invalid OCI state on stdin: invalid type: integer `1400`"),
            "{e}"
        );
    }

    #[test]
    fn container_id() {
        let a = [("narwhal.ipv4", "10.0.0.2")];
        let base = state("creating", &a);
        assert_eq!(
            err(&with(&base, &[("id", "".into())]), None),
            "OCI state has no container id"
        );
        assert_eq!(
            err(&with(&base, &[("id", serde_json::Value::Null)]), None),
            "OCI state has no container id"
        );
        assert_eq!(
            err(&with(&base, &[("id", "a".repeat(1025).into())]), None),
            "OCI container id is too long (1025 bytes, max 1024)"
        );
        assert!(parse_state(&with(&base, &[("id", "a".repeat(1024).into())]), None).is_ok());
        assert_eq!(
            err(&with(&base, &[("id", "ab\u{1b}[31m".into())]), None),
            "OCI container id 'ab\\u{1b}[31m' contains a control character"
        );
        assert!(err(&with(&base, &[("id", "a\0".into())]), None)
            .ends_with("contains a control character"));
    }

    #[test]
    fn pid() {
        let a = [("narwhal.ipv4", "10.0.0.2")];
        let base = state("creating", &a);
        assert_eq!(
            err(&with(&base, &[("pid", serde_json::Value::Null)]), None),
            format!("OCI state for container {ID} has no pid (needed at createRuntime)")
        );
        assert_eq!(
            err(&with(&base, &[("pid", 0.into())]), None),
            format!("OCI state for container {ID} has invalid pid 0 (needed at createRuntime)")
        );
        assert_eq!(
            err(&with(&base, &[("pid", (-1).into())]), None),
            format!("OCI state for container {ID} has invalid pid -1 (needed at createRuntime)")
        );
        // Not looked at when narwhal is off for the container.
        let h = parse_state(&with(NO_NARWHAL, &[("pid", serde_json::Value::Null)]), None).unwrap();
        assert_eq!(h.request, None);
        // Not needed at poststop, whatever it is.
        let h = parse_state(&with(&base, &[("pid", 0.into())]), Some("poststop")).unwrap();
        assert_eq!(h.request.unwrap().target, None);
    }

    #[test]
    fn config_json_fallback() {
        let b = Bundle::new("fallback", Some(BUNDLE_CONFIG));
        for empty in [serde_json::Value::Null, serde_json::json!({})] {
            let s = with(
                NO_ANNOTATIONS,
                &[("bundle", b.path()), ("annotations", empty.clone())],
            );
            let h = parse_state(&s, None).unwrap();
            assert_eq!(h.stage, Stage::CreateRuntime);
            let r = h.request.unwrap();
            assert_eq!(r.target, Some(Target::Pid(12345)));
            assert_eq!(r.key.as_deref(), Some(ID));
            assert_eq!(r.settings.ipv4.as_deref(), Some("198.51.100.5"));
            assert_eq!(r.settings.host_interface.as_deref(), Some("nw-from-config"));
        }
        // State annotations win; config.json is not read then.
        let s = with(CREATE_RUNTIME, &[("bundle", b.path())]);
        let h = parse_state(&s, None).unwrap();
        assert_eq!(
            h.request.unwrap().settings.ipv4.as_deref(),
            Some("198.51.100.2")
        );

        // config.json without annotations: narwhal off.
        let b2 = Bundle::new(
            "noann",
            Some(br#"{"ociVersion":"1.2.0","process":{"args":["sh"]}}"#),
        );
        let s = with(NO_ANNOTATIONS, &[("bundle", b2.path())]);
        assert_eq!(parse_state(&s, None).unwrap().request, None);

        // Bad annotations in config.json are errors, at both stages.
        let b3 = Bundle::new("unknown", Some(br#"{"annotations":{"narwhal.ipv44":"x"}}"#));
        let s = with(NO_ANNOTATIONS, &[("bundle", b3.path())]);
        assert!(err(&s, None).starts_with("unknown annotation 'narwhal.ipv44'"));
        assert!(err(&s, Some("poststop")).starts_with("unknown annotation 'narwhal.ipv44'"));

        // Duplicates and invalid JSON in config.json.
        let b4 = Bundle::new(
            "dup",
            Some(br#"{"annotations":{"narwhal.ipv4":"a","narwhal.ipv4":"b"}}"#),
        );
        let s = with(NO_ANNOTATIONS, &[("bundle", b4.path())]);
        let path = b4.0.join("config.json");
        assert!(err(&s, None).starts_with(&format!(
            "invalid bundle config '{}': duplicate annotation 'narwhal.ipv4'",
            path.display()
        )));
        let b5 = Bundle::new("invalid", Some(b"{"));
        let s = with(NO_ANNOTATIONS, &[("bundle", b5.path())]);
        let path = b5.0.join("config.json");
        assert_eq!(
            err(&s, None),
            format!(
                "invalid bundle config '{}': EOF while parsing an object at line 1 column 1",
                path.display()
            )
        );
        // Invalid content is an error even at poststop (only an
        // unreadable bundle falls back).
        assert!(err(&s, Some("poststop")).starts_with("invalid bundle config"));
    }

    #[test]
    fn huge_config_json() {
        let mut big = br#"{"annotations":{"narwhal.ipv4":"10.0.0.2"},"pad":""#.to_vec();
        big.resize(MAX_CONFIG_BYTES as usize + 1, b'a');
        let b = Bundle::new("huge", Some(&big));
        let s = with(NO_ANNOTATIONS, &[("bundle", b.path())]);
        assert_eq!(
            err(&s, None),
            format!(
                "bundle config '{}' exceeds 16 MiB",
                b.0.join("config.json").display()
            )
        );
    }

    #[test]
    fn missing_bundle() {
        let b = Bundle::new("missing", None); // directory without config.json
        let gone = b.0.join("gone");
        for dir in [b.0.clone(), gone] {
            let s = with(NO_ANNOTATIONS, &[("bundle", dir.to_str().unwrap().into())]);
            let path = dir.join("config.json");
            // createRuntime: an error naming the path and the OS error.
            assert_eq!(
                err(&s, None),
                format!(
                    "cannot read bundle config '{}': No such file or directory (os error 2)",
                    path.display()
                )
            );
            // poststop: cleanup proceeds with default settings.
            for stage in [Some("poststop"), None] {
                let s = if stage.is_none() {
                    with(&s, &[("status", "stopped".into())])
                } else {
                    s.clone()
                };
                let h = parse_state(&s, stage).unwrap();
                assert_eq!(h.stage, Stage::Poststop);
                assert_eq!(
                    h.request,
                    Some(Request {
                        target: None,
                        key: Some(ID.into()),
                        settings: Settings::default()
                    })
                );
            }
        }

        // No bundle path at all.
        let s = with(NO_ANNOTATIONS, &[("bundle", serde_json::Value::Null)]);
        assert_eq!(
            err(&s, None),
            format!("OCI state for container {ID} has no bundle path (needed to read config.json)")
        );
        let h = parse_state(&s, Some("poststop")).unwrap();
        assert_eq!(h.request.unwrap().settings, Settings::default());

        // A relative bundle path is refused at both stages.
        let s = with(NO_ANNOTATIONS, &[("bundle", "rel/bundle".into())]);
        let want = format!("OCI state for container {ID} has a relative bundle path 'rel/bundle'");
        assert_eq!(err(&s, None), want);
        assert_eq!(err(&s, Some("poststop")), want);
    }

    #[test]
    fn settings_from_annotations_direct() {
        let mut a = HashMap::new();
        assert_eq!(settings_from_annotations(&a).unwrap(), None);
        a.insert("io.kubernetes.pod.name".to_string(), "x".to_string());
        assert_eq!(settings_from_annotations(&a).unwrap(), None);
        for k in settings::SCHEMA.iter().map(|s| s.annotation()) {
            a.insert(k.clone(), format!("v-{k}"));
        }
        let s = settings_from_annotations(&a).unwrap().unwrap();
        assert_eq!(
            s,
            Settings {
                ipv4: Some("v-narwhal.ipv4".into()),
                ipv6: Some("v-narwhal.ipv6".into()),
                host_ipv4: Some("v-narwhal.host-ipv4".into()),
                host_ipv6: Some("v-narwhal.host-ipv6".into()),
                interface: Some("v-narwhal.interface".into()),
                host_interface: Some("v-narwhal.host-interface".into()),
                mtu: Some("v-narwhal.mtu".into()),
                forwarding: Some("v-narwhal.forwarding".into()),
                paranoid: Some("v-narwhal.paranoid".into()),
            }
        );
        // The first unknown key in sorted order is reported, deterministically.
        a.insert("narwhal.zz".into(), String::new());
        a.insert("narwhal.aa".into(), String::new());
        assert!(settings_from_annotations(&a)
            .unwrap_err()
            .to_string()
            .starts_with("unknown annotation 'narwhal.aa'"));
    }

    #[test]
    fn errors_are_one_line() {
        let long_key = format!("narwhal.{}", "k".repeat(500));
        let e = err(&state("creating", &[(&long_key, "")]), None);
        assert!(!e.contains('\n'));
        assert!(e.len() < 400, "{e}");
        let e = parse_stage(&"s".repeat(10_000)).unwrap_err().to_string();
        assert!(e.len() < 200, "{e}");
    }

    /// Cheap fuzzing of the pure entry point: no panics on mutations of
    /// the fixtures.
    #[test]
    fn no_panics_on_mutations() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for base in [CREATE_RUNTIME, POSTSTOP, NO_NARWHAL, DUP_ANNOTATION] {
            for _ in 0..2000 {
                let mut b = base.to_vec();
                for _ in 0..(rnd() % 4 + 1) {
                    let i = (rnd() as usize) % b.len();
                    match rnd() % 3 {
                        0 => b[i] = rnd() as u8,
                        1 => {
                            b.remove(i);
                        }
                        _ => b.insert(i, b"{}[]\",:\\0"[(rnd() % 9) as usize]),
                    }
                    if b.is_empty() {
                        break;
                    }
                }
                let _ = parse_state(&b, None);
                let _ = parse_state(&b, Some("poststop"));
                if b.is_empty() {
                    break;
                }
            }
        }
    }

    /// Poststop: the namespace ends with the container only when the
    /// runtime made it (no path) and no Docker setkey hook keeps it.
    #[test]
    fn netns_ends_only_for_a_namespace_the_runtime_makes() {
        let dir = tempfile::tempdir().unwrap();
        let ns = |path: Option<&str>| {
            let mut n = serde_json::json!({"type": "network"});
            if let Some(p) = path {
                n["path"] = p.into();
            }
            serde_json::json!({"linux": {"namespaces": [{"type": "pid"}, n]}})
        };
        let setkey = serde_json::json!({"prestart": [{"path": "/usr/bin/dockerd",
            "args": ["libnetwork-setkey", "-exec-root=/run/docker", "abc", "def"]}]});
        let mut docker = ns(None);
        docker["hooks"] = setkey;
        let cases = [
            (Some(ns(None)), true),
            (Some(ns(Some(""))), true),
            (Some(ns(Some("/run/netns/blue"))), false),
            (
                Some(serde_json::json!({"linux": {"namespaces": [{"type": "pid"}]}})),
                false,
            ),
            (Some(docker), false),
            (Some(serde_json::json!({"linux": "not an object"})), false),
            (None, false),
        ];
        for (config, want) in cases {
            let path = dir.path().join("config.json");
            match &config {
                Some(c) => std::fs::write(&path, c.to_string()).unwrap(),
                None => std::fs::remove_file(&path).unwrap(),
            }
            assert_eq!(netns_ends(dir.path()), want, "{config:?}");
        }
        assert!(!netns_ends(Path::new("relative")));
        // parse_state sets it at poststop only
        std::fs::write(dir.path().join("config.json"), ns(None).to_string()).unwrap();
        let b = serde_json::json!(dir.path());
        let post = parse_state(&with(POSTSTOP, &[("bundle", b.clone())]), None).unwrap();
        assert!(post.netns_ends);
        let create = with(CREATE_RUNTIME, &[("bundle", b)]);
        assert!(!parse_state(&create, None).unwrap().netns_ends);
    }
}
