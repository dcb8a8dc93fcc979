//! Docker runtime wrapper: `narwhal runtime [--runtime PATH] [--allow
//! PREFIXES] RUNTIME-ARGS…`, registered in `/etc/docker/daemon.json` as
//! `"runtimes": {"narwhal": {"path": "/usr/bin/narwhal", "runtimeArgs":
//! ["runtime"]}}`.
//!
//! Docker has no hooks directory; like NVIDIA's container runtime, narwhal
//! sits between containerd's shim and runc. For `create` it reads the
//! bundle's `config.json`; when the container asks for narwhal (`narwhal.*`
//! annotations, or `NARWHAL_*` variables in `process.env`: the annotation
//! name upper-cased, `.` and `-` → `_`), it checks the settings, writes the
//! annotations and narwhal's createRuntime and poststop hooks into
//! `config.json` and then execs the real runtime with the arguments
//! unchanged. Every other command execs the real runtime at once.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Map, Value};

use crate::allow::{AllowError, AllowList};
use crate::cli::RuntimeArgs;
use crate::error::EXIT_FAILURE;
use crate::input::oci::{self, JsonError, OciError, ANNOTATION_PREFIX};
use crate::log::{one_line, Log};
use crate::settings;
use crate::spec::{Spec, SpecError};

/// Where runc is looked for when `--runtime` is not given, in this order.
pub const DEFAULT_RUNTIMES: &[&str] = &["/usr/sbin/runc", "/usr/bin/runc"];
/// The prefix of the environment variables that stand for annotations.
pub use crate::settings::ENV_PREFIX;

/// runc's global options that take a value (`--root DIR`); the others are
/// flags (`--debug`, `--systemd-cgroup`).
const GLOBAL_VALUE_OPTIONS: &[&str] = &["root", "log", "log-format", "criu", "rootless"];
/// `runc create`'s options that take a value.
const CREATE_VALUE_OPTIONS: &[&str] =
    &["bundle", "b", "console-socket", "pid-file", "preserve-fds"];

/// Why a container that asks for narwhal is refused. One line each.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("invalid bundle config '{path}'")]
    InvalidConfig {
        path: String,
        #[source]
        source: JsonError,
    },
    #[error("bundle config '{path}': {what} is not {expected}")]
    Shape {
        path: String,
        what: &'static str,
        expected: &'static str,
    },
    #[error("unknown environment variable '{var}' (known: {known})")]
    UnknownVariable { var: String, known: String },
    #[error(
        "environment variable '{var}' is not accepted: an image's ENV could set it; \
         give the annotation {annotation} (docker run --annotation, Docker 24+) instead"
    )]
    NotFromEnv { var: String, annotation: String },
    #[error(transparent)]
    Annotation(#[from] OciError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Allow(#[from] AllowError),
    #[error("cannot find narwhal's own executable")]
    OwnPath(#[source] std::io::Error),
    #[error("cannot write bundle config '{path}'")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What the runtime's command line says about a `create`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create {
    /// The bundle directory (`--bundle`/`-b`, else the working directory).
    pub bundle: PathBuf,
    /// The container id, if given.
    pub id: Option<String>,
    /// runc's `--log` file, where containerd's shim looks for the error.
    pub log: Option<PathBuf>,
    /// `--log-format json`.
    pub log_json: bool,
}

/// Run the wrapper. Returns only on failure: on success the process has
/// become the real runtime.
/// `narwhal runtime …` from the raw arguments (`runtime` first): only the
/// wrapper's own grammar is built, so every runc command Docker sends pays
/// as little as possible. Returns only on failure (the exit status):
/// otherwise the runtime replaces this process.
pub fn main(args: impl IntoIterator<Item = std::ffi::OsString>) -> u8 {
    use clap::{Args, FromArgMatches};
    let cmd = RuntimeArgs::augment_args(clap::Command::new("runtime").bin_name("narwhal runtime"));
    match cmd
        .try_get_matches_from(args)
        .and_then(|m| RuntimeArgs::from_arg_matches(&m))
    {
        Ok(a) => run(a),
        Err(e) => {
            let _ = e.print();
            e.exit_code() as u8
        }
    }
}

/// Returns only on failure, with the exit status (see [`main`]).
pub fn run(args: RuntimeArgs) -> u8 {
    let runtime = args.runtime.clone().unwrap_or_else(default_runtime);
    let create = parse_create(&args.args);
    if let Some(c) = &create {
        if let Err(e) = prepare(c, args.allow.as_deref()) {
            let id = c.id.as_deref().unwrap_or("(no id)");
            let msg = format!("runtime create {id}: {:#}", anyhow::Error::from(e));
            report(&syslog(), c, &msg);
            return EXIT_FAILURE;
        }
    }
    let e = Command::new(&runtime).args(&args.args).exec();
    let msg = format!("runtime: cannot run {}: {e}", runtime.display());
    match &create {
        Some(c) => report(&syslog(), c, &msg),
        None => syslog().error(&msg),
    }
    EXIT_FAILURE
}

/// Errors go to syslog too: the shim's message may be cut short.
fn syslog() -> Log {
    Log::hook(Path::new("/dev/log"))
}

/// The first of [`DEFAULT_RUNTIMES`] that exists (the first if none does:
/// exec then names it in its error).
fn default_runtime() -> PathBuf {
    DEFAULT_RUNTIMES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_RUNTIMES[0]))
}

/// One option of a runc-style command line: `-x`, `--x`, `--x=v`, or
/// `--x v` when `x` takes a value. Returns the options and the index of
/// the first positional argument (the command, or the container id).
fn options<'a>(
    args: &'a [OsString],
    with_value: &[&str],
) -> (Vec<(&'a str, Option<&'a OsStr>)>, usize) {
    let mut opts = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_bytes();
        if a == b"--" {
            return (opts, i + 1);
        }
        if a.len() < 2 || a[0] != b'-' {
            return (opts, i);
        }
        let body = a.strip_prefix(b"--").unwrap_or(&a[1..]);
        let (name, inline) = match body.iter().position(|&b| b == b'=') {
            Some(p) => (&body[..p], Some(OsStr::from_bytes(&body[p + 1..]))),
            None => (body, None),
        };
        let name = std::str::from_utf8(name).unwrap_or("");
        let value = match inline {
            None if with_value.contains(&name) => {
                i += 1;
                args.get(i).map(OsString::as_os_str)
            }
            v => v,
        };
        opts.push((name, value));
        i += 1;
    }
    (opts, i)
}

/// The `create` (or `run`) in a runtime command line, if it is one.
pub fn parse_create(args: &[OsString]) -> Option<Create> {
    let (global, cmd) = options(args, GLOBAL_VALUE_OPTIONS);
    let command = args.get(cmd)?.as_bytes();
    if command != b"create" && command != b"run" {
        return None;
    }
    let rest = &args[cmd + 1..];
    let (local, id) = options(rest, CREATE_VALUE_OPTIONS);
    let last = |opts: &[(&str, Option<&OsStr>)], names: &[&str]| {
        opts.iter()
            .rev()
            .find(|(n, _)| names.contains(n))
            .and_then(|(_, v)| *v)
            .map(PathBuf::from)
    };
    Some(Create {
        bundle: last(&local, &["bundle", "b"]).unwrap_or_else(|| PathBuf::from(".")),
        id: rest.get(id).map(|s| s.to_string_lossy().into_owned()),
        log: last(&global, &["log"]),
        log_json: last(&global, &["log-format"]).is_some_and(|f| f == Path::new("json")),
    })
}

/// The annotation a `NARWHAL_*` variable stands for (the settings schema:
/// `NARWHAL_HOST_IPV4` is `narwhal.host-ipv4`); `None`: no such setting.
pub fn env_annotation(var: &str) -> Option<String> {
    settings::by_env(var).map(settings::Setting::annotation)
}

/// Whether `hay` contains `needle`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Check the container's narwhal settings and, when it asks for narwhal,
/// add the annotations and hooks to its `config.json`.
pub fn prepare(create: &Create, allow: Option<&str>) -> Result<(), RuntimeError> {
    let allow: Option<AllowList> = allow.map(str::parse).transpose()?;
    let path = create.bundle.join("config.json");
    // Unreadable: not ours to judge; the runtime reports it.
    let Ok(bytes) = fs::read(&path) else {
        return Ok(());
    };
    // The fast path for every other container: Docker writes JSON strings
    // unescaped, so a narwhal annotation key or variable starts with these.
    if !contains(&bytes, b"\"narwhal.") && !contains(&bytes, b"\"NARWHAL_") {
        return Ok(());
    }
    let show = path.display().to_string();
    let mut config: Value =
        serde_json::from_slice(&bytes).map_err(|e| RuntimeError::InvalidConfig {
            path: show.clone(),
            source: JsonError(e),
        })?;
    let shape = |what, expected| RuntimeError::Shape {
        path: show.clone(),
        what,
        expected,
    };
    let Some(added) = settings(
        &config,
        &shape,
        create.id.as_deref().unwrap_or("container"),
        allow.as_ref(),
    )?
    else {
        return Ok(());
    };

    let exe = std::env::current_exe().map_err(RuntimeError::OwnPath)?;
    let obj = config
        .as_object_mut()
        .ok_or_else(|| shape("the document", "an object"))?;
    let annotations = member(obj, "annotations", json!({}))
        .as_object_mut()
        .ok_or_else(|| shape("annotations", "an object"))?;
    for (k, v) in added {
        annotations.insert(k, Value::String(v));
    }
    let hooks = member(obj, "hooks", json!({}))
        .as_object_mut()
        .ok_or_else(|| shape("hooks", "an object"))?;
    for stage in ["createRuntime", "poststop"] {
        let mut hook_args = vec!["narwhal".to_string(), "hook".to_string()];
        if let Some(a) = &allow {
            hook_args.extend(["--allow".to_string(), a.to_string()]);
        }
        hook_args.push(stage.to_string());
        let hook = json!({ "path": exe, "args": hook_args });
        let list = member(hooks, stage, json!([]))
            .as_array_mut()
            .ok_or_else(|| shape("a hooks list", "an array"))?;
        if !list.contains(&hook) {
            list.push(hook);
        }
    }
    write_atomically(
        &path,
        &serde_json::to_vec(&config).expect("a Value serialises"),
    )
    .map_err(|source| RuntimeError::Write { path: show, source })
}

/// The member `key` of `obj`, set to `empty` when absent or null.
fn member<'a>(obj: &'a mut Map<String, Value>, key: &str, empty: Value) -> &'a mut Value {
    let v = obj.entry(key).or_insert(Value::Null);
    if v.is_null() {
        *v = empty;
    }
    v
}

/// Validate the narwhal settings of `config`: its `narwhal.*` annotations
/// and `NARWHAL_*` variables (an annotation wins over a variable). `None`:
/// the container does not ask for narwhal (no address). `Some`: the
/// annotations to add, those that came from variables.
fn settings(
    config: &Value,
    shape: &dyn Fn(&'static str, &'static str) -> RuntimeError,
    id: &str,
    allow: Option<&AllowList>,
) -> Result<Option<Vec<(String, String)>>, RuntimeError> {
    let mut merged: HashMap<String, String> = HashMap::new();
    if let Some(a) = config.get("annotations").filter(|a| !a.is_null()) {
        let a = a
            .as_object()
            .ok_or_else(|| shape("annotations", "an object"))?;
        for (k, v) in a.iter().filter(|(k, _)| k.starts_with(ANNOTATION_PREFIX)) {
            let v = v
                .as_str()
                .ok_or_else(|| shape("an annotation value", "a string"))?;
            merged.insert(k.clone(), v.to_string());
        }
    }
    // variable name for each annotation that came from one
    let mut from_env: HashMap<String, String> = HashMap::new();
    let env = config.pointer("/process/env").filter(|e| !e.is_null());
    for entry in env
        .map(|e| e.as_array().ok_or_else(|| shape("process.env", "an array")))
        .transpose()?
        .into_iter()
        .flatten()
    {
        let entry = entry
            .as_str()
            .ok_or_else(|| shape("a process.env entry", "a string"))?;
        if !entry.starts_with(ENV_PREFIX) {
            continue;
        }
        let (var, value) = entry.split_once('=').unwrap_or((entry, ""));
        let key = env_annotation(var).ok_or_else(|| unknown_variable(var))?;
        if merged.contains_key(&key) && !from_env.contains_key(&key) {
            continue; // the annotation wins
        }
        // what widens what the container may do beyond its own addresses
        // (forwarding) or reaches beyond its own link (the host name of
        // another container's link) is the operator's to give
        if NOT_FROM_ENV
            .iter()
            .any(|n| key == format!("{}{n}", settings::ANNOTATION_PREFIX))
        {
            return Err(RuntimeError::NotFromEnv {
                var: var.to_string(),
                annotation: key,
            });
        }
        merged.insert(key.clone(), value.to_string());
        from_env.insert(key, var.to_string());
    }
    let settings = match oci::settings_from_annotations(&merged) {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(None),
        Err(OciError::UnknownAnnotation { key, .. }) if from_env.contains_key(&key) => {
            return Err(unknown_variable(&from_env[&key]))
        }
        Err(e) => return Err(e.into()),
    };
    let spec = Spec::new(PathBuf::from("/proc/self/ns/net"), id, &settings)?;
    if let Some(a) = allow {
        a.check_spec(&spec)?;
    }
    let mut added: Vec<(String, String)> = from_env
        .into_keys()
        .map(|k| {
            let v = merged.remove(&k).unwrap_or_default();
            (k, v)
        })
        .collect();
    added.sort();
    Ok(Some(added))
}

/// Settings an image's environment may not give (see docs/docker.md).
const NOT_FROM_ENV: &[&str] = &["forwarding", "host-interface"];

/// The error for a `NARWHAL_*` variable that stands for no annotation.
fn unknown_variable(var: &str) -> RuntimeError {
    let known: Vec<String> = settings::SCHEMA.iter().map(|s| s.env_var()).collect();
    RuntimeError::UnknownVariable {
        var: one_line(&var.chars().take(64).collect::<String>()).into_owned(),
        known: known.join(", "),
    }
}

/// Replace `path` by `data`: a temporary file next to it with the same
/// permissions, then rename.
fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mode = fs::metadata(path)?.permissions().mode() & 0o7777;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".narwhal-{}", std::process::id()));
    let tmp = path.with_file_name(name);
    let res = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(data)?;
        // no fsync: bundles live on tmpfs (/run) and die with a crash; the
        // rename alone keeps readers from seeing half a file
        fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// Say why `create` failed: stderr and syslog, and runc's `--log` file,
/// whose last error line containerd's shim puts in Docker's message.
fn report(log: &Log, create: &Create, msg: &str) {
    log.error(msg);
    let Some(log) = &create.log else { return };
    let line = format!("narwhal: {}", one_line(msg));
    let entry = if create.log_json {
        json!({ "level": "error", "msg": line }).to_string()
    } else {
        format!("level=error msg={}", Value::String(line))
    };
    if let Ok(mut f) = fs::OpenOptions::new().append(true).create(true).open(log) {
        let _ = writeln!(f, "{entry}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn create_as_the_shim_passes_it() {
        let c = parse_create(&os(&[
            "--root",
            "/var/run/docker/runtime-runc/moby",
            "--log",
            "/run/containerd/x/log.json",
            "--log-format",
            "json",
            "--systemd-cgroup",
            "create",
            "--bundle",
            "/run/containerd/x",
            "--pid-file",
            "/run/containerd/x/init.pid",
            "--console-socket",
            "/tmp/pty.sock",
            "c0ffee",
        ]))
        .unwrap();
        assert_eq!(
            c,
            Create {
                bundle: "/run/containerd/x".into(),
                id: Some("c0ffee".into()),
                log: Some("/run/containerd/x/log.json".into()),
                log_json: true,
            }
        );
    }

    #[test]
    fn create_option_forms() {
        let c = parse_create(&os(&[
            "--debug",
            "-log=/l",
            "create",
            "-b=/b",
            "--no-pivot",
            "id",
        ]))
        .unwrap();
        assert_eq!(
            (c.bundle, c.id, c.log, c.log_json),
            ("/b".into(), Some("id".into()), Some("/l".into()), false)
        );
        let c = parse_create(&os(&["create", "-b", "/b", "--", "id"])).unwrap();
        assert_eq!((c.bundle, c.id), ("/b".into(), Some("id".into())));
        let c = parse_create(&os(&["create", "id"])).unwrap();
        assert_eq!((c.bundle, c.id), (".".into(), Some("id".into())));
        // a global option's value is not the command
        assert!(parse_create(&os(&["--root", "create", "state", "id"])).is_none());
        assert!(parse_create(&os(&["--log-format", "json", "run", "-b", "/b", "x"])).is_some());
        for other in [
            &["state", "x"][..],
            &["--root", "/r", "delete", "--force", "x"],
            &["kill", "x", "KILL"],
            &["start", "x"],
            &["features"],
            &["--version"],
            &[],
        ] {
            assert!(parse_create(&os(other)).is_none(), "{other:?}");
        }
    }

    #[test]
    fn variable_names() {
        for (var, key) in [
            ("NARWHAL_IPV4", Some("narwhal.ipv4")),
            ("NARWHAL_HOST_INTERFACE", Some("narwhal.host-interface")),
            ("NARWHAL_", None),
            ("NARWHAL_ipv4", None),
            ("NARWHAL_IPV4.", None),
            ("NARWHALIPV4", None),
        ] {
            assert_eq!(env_annotation(var).as_deref(), key, "{var}");
            if let Some(k) = key {
                assert_eq!(settings::by_annotation(k).unwrap().env_var(), var);
            }
        }
    }

    #[test]
    fn unknown_variable_lists_the_known_ones() {
        let e = unknown_variable("NARWHAL_IPV44").to_string();
        assert!(e.starts_with("unknown environment variable 'NARWHAL_IPV44' (known: NARWHAL_IPV4, NARWHAL_IPV6, NARWHAL_HOST_IPV4"), "{e}");
        assert!(
            e.contains("NARWHAL_HOST_INTERFACE") && !e.contains("narwhal."),
            "{e}"
        );
    }

    fn check(config: Value, allow: Option<&str>) -> Result<Option<Vec<(String, String)>>, String> {
        let allow = allow.map(|a| a.parse().unwrap());
        let shape = |what, expected| RuntimeError::Shape {
            path: "c".into(),
            what,
            expected,
        };
        settings(&config, &shape, "id", allow.as_ref())
            .map_err(|e| format!("{:#}", anyhow::Error::from(e)))
    }

    #[test]
    fn settings_from_env_and_annotations() {
        let env = |e: &[&str]| json!({ "process": { "env": e } });
        assert_eq!(check(env(&["PATH=/bin"]), None), Ok(None));
        assert_eq!(
            check(env(&["NARWHAL_MTU=1400"]), None),
            Ok(None),
            "no address: not ours"
        );
        assert_eq!(
            check(
                env(&["NARWHAL_IPV4=198.51.100.2", "NARWHAL_MTU=1400"]),
                None
            ),
            Ok(Some(vec![
                ("narwhal.ipv4".into(), "198.51.100.2".into()),
                ("narwhal.mtu".into(), "1400".into())
            ]))
        );
        // an annotation wins over a variable; the variable's value is not checked
        let c = json!({
            "annotations": { "narwhal.ipv4": "198.51.100.3" },
            "process": { "env": ["NARWHAL_IPV4=bad", "NARWHAL_IPV6=2001:db8::3"] }
        });
        assert_eq!(
            check(c, None),
            Ok(Some(vec![("narwhal.ipv6".into(), "2001:db8::3".into())]))
        );
        // annotations only: nothing to add, but narwhal's
        let c = json!({ "annotations": { "narwhal.ipv6": "2001:db8::4", "other": "x" } });
        assert_eq!(check(c, None), Ok(Some(vec![])));
    }

    #[test]
    fn bad_settings_are_one_line_naming_the_cause() {
        let env = |e: &[&str]| json!({ "process": { "env": e } });
        for (config, allow, want) in [
            (env(&["NARWHAL_IPV44=198.51.100.2"]), None, "unknown environment variable 'NARWHAL_IPV44'"),
            (env(&["NARWHAL_ipv4=198.51.100.2"]), None, "unknown environment variable 'NARWHAL_ipv4'"),
            (
                env(&["NARWHAL_IPV4=198.51.100.2", "NARWHAL_FORWARDING=true"]),
                None,
                "environment variable 'NARWHAL_FORWARDING' is not accepted: an image's ENV could set it; give the annotation narwhal.forwarding",
            ),
            (
                env(&["NARWHAL_IPV4=198.51.100.2", "NARWHAL_HOST_INTERFACE=nw-other"]),
                None,
                "environment variable 'NARWHAL_HOST_INTERFACE' is not accepted",
            ),
            (env(&["NARWHAL_IPV4=198.51.100.300"]), None, "invalid IPv4 address '198.51.100.300'"),
            (env(&["NARWHAL_IPV4=198.51.100.2", "NARWHAL_MTU=9"]), None, "MTU"),
            (json!({ "annotations": { "narwhal.ipv44": "x" } }), None, "unknown annotation 'narwhal.ipv44'"),
            (
                env(&["NARWHAL_IPV4=198.18.0.2", "NARWHAL_IPV6=2001:db8::2"]),
                Some("198.51.100.0/24,2001:db8::/32"),
                "address 198.18.0.2 is not allowed (allowed prefixes: 198.51.100.0/24,2001:db8::/32)",
            ),
            (
                env(&["NARWHAL_IPV6=2001:db9::2"]),
                Some("198.51.100.0/24,2001:db8::/32"),
                "address 2001:db9::2 is not allowed",
            ),
            (json!({ "process": { "env": "NARWHAL_IPV4=x" } }), None, "process.env is not an array"),
            (json!({ "annotations": { "narwhal.ipv4": 1 } }), None, "an annotation value is not a string"),
        ] {
            let e = check(config.clone(), allow).unwrap_err();
            assert!(e.contains(want), "{config}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        assert!(check(env(&["NARWHAL_IPV4=198.51.100.2"]), Some("198.51.100.0/24")).is_ok());
    }

    /// A bundle directory with `config`, removed on drop.
    struct Bundle(PathBuf);

    impl Bundle {
        fn new(name: &str, config: &str) -> Bundle {
            let dir =
                std::env::temp_dir().join(format!("narwhal-runtime-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("config.json"), config).unwrap();
            fs::set_permissions(dir.join("config.json"), fs::Permissions::from_mode(0o640))
                .unwrap();
            Bundle(dir)
        }

        fn create(&self) -> Create {
            Create {
                bundle: self.0.clone(),
                id: Some("c1".into()),
                log: None,
                log_json: true,
            }
        }

        fn config(&self) -> Value {
            serde_json::from_slice(&fs::read(self.0.join("config.json")).unwrap()).unwrap()
        }
    }

    impl Drop for Bundle {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn prepare_adds_hooks_and_annotations_and_keeps_the_rest() {
        let original = json!({
            "ociVersion": "1.0.2-dev",
            "process": { "args": ["sh"], "env": ["PATH=/bin", "NARWHAL_IPV4=198.51.100.2"] },
            "annotations": { "other": "x", "narwhal.mtu": "1400" },
            "hooks": { "prestart": [{ "path": "/bin/true" }], "poststop": null },
            "linux": { "resources": { "memory": { "limit": 9223372036854775807u64 } } }
        });
        let b = Bundle::new("add", &original.to_string());
        prepare(&b.create(), Some("198.51.100.0/24")).unwrap();
        let got = b.config();
        let exe = std::env::current_exe().unwrap();
        let hook = |stage: &str| json!({ "path": exe, "args": ["narwhal", "hook", "--allow", "198.51.100.0/24", stage] });
        let mut want = original.clone();
        want["annotations"]["narwhal.ipv4"] = "198.51.100.2".into();
        want["hooks"]["createRuntime"] = json!([hook("createRuntime")]);
        want["hooks"]["poststop"] = json!([hook("poststop")]);
        assert_eq!(got, want);
        let mode = fs::metadata(b.0.join("config.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
        // a second create of the same bundle adds nothing twice
        prepare(&b.create(), Some("198.51.100.0/24")).unwrap();
        assert_eq!(b.config(), want);
        assert_eq!(
            fs::read_dir(&b.0).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn prepare_leaves_other_containers_alone() {
        for (name, config) in [
            (
                "plain",
                r#"{"process":{"env":["PATH=/bin"]},"root":{"path":"/narwhal-data"}}"#,
            ),
            (
                "mention",
                r#"{"process":{"args":["echo","narwhal.ipv4"],"env":["NOT_NARWHAL_IPV4=1"]}}"#,
            ),
            ("noaddr", r#"{"process":{"env":["NARWHAL_MTU=1400"]}}"#),
        ] {
            let b = Bundle::new(name, config);
            prepare(&b.create(), None).unwrap();
            assert_eq!(
                fs::read_to_string(b.0.join("config.json")).unwrap(),
                config,
                "{name}"
            );
        }
        // no bundle at all: the runtime reports that
        let gone = Create {
            bundle: "/nonexistent/narwhal".into(),
            id: None,
            log: None,
            log_json: false,
        };
        assert!(prepare(&gone, None).is_ok());
        // a bad allow-list fails every create
        let b = Bundle::new("badallow", "{}");
        let e = prepare(&b.create(), Some("198.51.100.1/24")).unwrap_err();
        assert!(e.to_string().contains("host bits set"), "{e}");
    }

    #[test]
    fn report_writes_the_shim_s_log_line() {
        let b = Bundle::new("log", "{}");
        let log = b.0.join("log.json");
        fs::write(&log, "{\"level\":\"info\",\"msg\":\"before\"}\n").unwrap();
        let c = Create {
            log: Some(log.clone()),
            ..b.create()
        };
        report(&Log::stderr(false), &c, "runtime create c1: bad\nthing");
        let text = fs::read_to_string(&log).unwrap();
        let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(
            last,
            json!({ "level": "error", "msg": "narwhal: runtime create c1: bad\\nthing" })
        );
    }
}
