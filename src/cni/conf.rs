//! CNI input: the `CNI_*` environment and the network configuration on
//! stdin, turned into what narwhal needs. Untrusted input handling only:
//! settings stay raw strings for [`crate::spec::Spec::new`] to validate.
//!
//! Netconf keys narwhal reads besides the standard ones (`cniVersion`,
//! `name`, `type`, `ipam`, `prevResult`, `runtimeConfig`, `args`):
//! `addresses` (static container addresses) and the annotation suffixes
//! `host-ipv4`, `host-ipv6`, `host-interface`, `mtu`, `forwarding`,
//! `paranoid`, with the annotations' meaning and validation. The container
//! interface is `CNI_IFNAME`.

use std::net::IpAddr;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::{CniError, Code};
use crate::request::Settings;

/// Spec versions narwhal speaks, oldest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// Largest netconf narwhal reads from stdin.
pub const MAX_STDIN: u64 = 1 << 20;

/// The CNI commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Status,
    Gc,
    Version,
}

impl Command {
    pub fn parse(s: &str) -> Result<Command, CniError> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            "VERSION" => Command::Version,
            other => {
                return Err(CniError::new(
                    Code::InvalidEnv,
                    format!("unknown CNI_COMMAND '{}'", other.escape_debug()),
                ))
            }
        })
    }
}

/// The `CNI_*` environment of one call.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub container_id: String,
    /// Empty: not given (allowed for DEL).
    pub netns: Option<PathBuf>,
    pub ifname: String,
    /// `CNI_ARGS`, `K=V;K=V`.
    pub args: Vec<(String, String)>,
    pub path: Vec<PathBuf>,
}

fn var(get: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    get(name).filter(|v| !v.is_empty())
}

impl Env {
    /// Read the environment `cmd` needs (`get` is `std::env::var` in the
    /// binary). ADD and CHECK need a netns; DEL tolerates its absence.
    pub fn read(cmd: Command, get: &dyn Fn(&str) -> Option<String>) -> Result<Env, CniError> {
        let need = |name: &str| {
            var(get, name).ok_or_else(|| {
                CniError::new(Code::InvalidEnv, format!("{name} is not set or empty"))
            })
        };
        let mut env = Env {
            path: var(get, "CNI_PATH")
                .map(|p| std::env::split_paths(&p).collect())
                .unwrap_or_default(),
            ..Env::default()
        };
        if matches!(cmd, Command::Add | Command::Del | Command::Check) {
            env.container_id = need("CNI_CONTAINERID")?;
            env.ifname = need("CNI_IFNAME")?;
            check_container_id(&env.container_id)?;
            crate::spec::ifname("CNI_IFNAME", &env.ifname)
                .map_err(|e| CniError::new(Code::InvalidEnv, e.to_string()))?;
            env.netns = var(get, "CNI_NETNS").map(PathBuf::from);
            if env.netns.is_none() && cmd != Command::Del {
                need("CNI_NETNS")?;
            }
            if let Some(a) = var(get, "CNI_ARGS") {
                env.args = parse_cni_args(&a)?;
            }
        }
        Ok(env)
    }
}

/// The spec: "alphanumeric, hyphen, underscore, period", not empty.
fn check_container_id(id: &str) -> Result<(), CniError> {
    let ok = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok && id.len() <= 128 {
        return Ok(());
    }
    Err(CniError::new(
        Code::InvalidEnv,
        format!(
            "invalid CNI_CONTAINERID '{}': expected at most 128 of [A-Za-z0-9_.-]",
            id.escape_debug()
        ),
    ))
}

/// `CNI_ARGS`: `K=V` pairs separated by `;`.
pub fn parse_cni_args(s: &str) -> Result<Vec<(String, String)>, CniError> {
    s.split(';')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(CniError::new(
                Code::InvalidEnv,
                format!(
                    "invalid CNI_ARGS item '{}': expected KEY=VALUE",
                    p.escape_debug()
                ),
            )),
        })
        .collect()
}

/// The parts of a network configuration narwhal uses. Everything else is
/// kept in `raw` (it is passed on to IPAM unchanged, as stdin).
#[derive(Debug, Clone)]
pub struct NetConf {
    pub cni_version: String,
    pub name: String,
    pub ipam_type: Option<String>,
    pub prev_result: Option<Value>,
    /// Settings other than the container addresses.
    pub settings: Settings,
    pub raw: Map<String, Value>,
}

fn invalid(msg: impl Into<String>) -> CniError {
    CniError::new(Code::InvalidConfig, msg)
}

/// A setting given as a JSON string, number or boolean, as its text.
fn setting(raw: &Map<String, Value>, key: &str) -> Result<Option<String>, CniError> {
    match raw.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(invalid(format!(
            "invalid \"{key}\" in the network configuration: expected a string, number or boolean, got {other}"
        ))),
    }
}

/// Whether `v` is a version narwhal speaks.
pub fn supported(v: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&v)
}

/// Compare two `x.y.z` versions.
pub fn version_at_least(v: &str, min: &str) -> bool {
    let parse = |s: &str| -> Vec<u32> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(v) >= parse(min)
}

impl NetConf {
    /// Parse stdin. Not JSON: code 6; wrong shape or values: code 7;
    /// a version narwhal does not speak: code 1.
    pub fn parse(bytes: &[u8]) -> Result<NetConf, CniError> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| {
            CniError::new(
                Code::Decode,
                "cannot decode the network configuration on stdin",
            )
            .details(e.to_string())
        })?;
        let Value::Object(raw) = v else {
            return Err(CniError::new(
                Code::Decode,
                "the network configuration on stdin is not a JSON object",
            ));
        };
        let text = |key: &str| -> Result<Option<String>, CniError> {
            match raw.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(invalid(format!(
                    "invalid \"{key}\" in the network configuration: expected a string, got {other}"
                ))),
            }
        };
        let cni_version = text("cniVersion")?.unwrap_or_else(|| "0.3.0".into());
        if !supported(&cni_version) {
            return Err(CniError::new(
                Code::IncompatibleVersion,
                format!(
                    "incompatible CNI version '{}': narwhal supports {}",
                    cni_version.escape_debug(),
                    SUPPORTED_VERSIONS.join(", ")
                ),
            ));
        }
        let name =
            text("name")?.ok_or_else(|| invalid("the network configuration has no \"name\""))?;
        check_network_name(&name)?;
        if raw.contains_key("interface") {
            return Err(invalid(
                "\"interface\" is not a network configuration key: the runtime names the container interface (CNI_IFNAME)",
            ));
        }
        let ipam_type = match raw.get("ipam") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) if m.is_empty() => None,
            Some(Value::Object(m)) => match m.get("type") {
                Some(Value::String(t)) if is_plugin_name(t) => Some(t.clone()),
                _ => {
                    return Err(invalid(
                        "\"ipam\" needs a \"type\": the name of an IPAM plugin in CNI_PATH",
                    ))
                }
            },
            Some(_) => return Err(invalid("\"ipam\" must be an object")),
        };
        let settings = Settings {
            host_ipv4: setting(&raw, "host-ipv4")?,
            host_ipv6: setting(&raw, "host-ipv6")?,
            host_interface: setting(&raw, "host-interface")?,
            mtu: setting(&raw, "mtu")?,
            forwarding: setting(&raw, "forwarding")?,
            paranoid: setting(&raw, "paranoid")?,
            ..Settings::default()
        };
        let prev_result = raw.get("prevResult").filter(|v| !v.is_null()).cloned();
        Ok(NetConf {
            cni_version,
            name,
            ipam_type,
            prev_result,
            settings,
            raw,
        })
    }

    /// The container addresses the configuration and environment ask for,
    /// in CNI's order of precedence: `runtimeConfig.ips`, `args.cni.ips`,
    /// `CNI_ARGS IP=`, `addresses`. With an IPAM plugin, these go to it
    /// (it reads the same sources) and its answer must match them.
    pub fn addresses(&self, env: &Env) -> Result<Vec<String>, CniError> {
        let list = |v: Option<&Value>, what: &str| -> Result<Vec<String>, CniError> {
            match v {
                None | Some(Value::Null) => Ok(vec![]),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| match x {
                        Value::String(s) => Ok(s.clone()),
                        // {"address": "..."} as in the static IPAM plugin
                        Value::Object(o) => match o.get("address") {
                            Some(Value::String(s)) => Ok(s.clone()),
                            _ => Err(invalid(format!("{what}: an entry lacks \"address\""))),
                        },
                        other => Err(invalid(format!("{what}: unexpected entry {other}"))),
                    })
                    .collect(),
                Some(other) => Err(invalid(format!("{what} must be a list, got {other}"))),
            }
        };
        let rc = self.raw.get("runtimeConfig").and_then(|r| r.get("ips"));
        let args = self
            .raw
            .get("args")
            .and_then(|a| a.get("cni"))
            .and_then(|c| c.get("ips"));
        let from_env: Vec<String> = env
            .args
            .iter()
            .filter(|(k, _)| k == "IP")
            .flat_map(|(_, v)| v.split(',').map(str::to_string))
            .collect();
        for candidate in [
            list(rc, "runtimeConfig.ips")?,
            list(args, "args.cni.ips")?,
            from_env,
            list(self.raw.get("addresses"), "\"addresses\"")?,
        ] {
            if !candidate.is_empty() {
                return Ok(candidate);
            }
        }
        Ok(vec![])
    }
}

/// The spec's network name: `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`. narwhal puts
/// it in the owner alias, so it is also limited in length.
fn check_network_name(name: &str) -> Result<(), CniError> {
    let mut b = name.bytes();
    let ok = b.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
        && name.len() <= 64;
    if ok {
        return Ok(());
    }
    Err(invalid(format!(
        "invalid network name '{}': expected at most 64 of [A-Za-z0-9_.-], starting with a letter or digit",
        name.escape_debug()
    )))
}

/// A plugin name must not walk out of `CNI_PATH`.
fn is_plugin_name(t: &str) -> bool {
    !t.is_empty() && !t.contains('/') && t != "." && t != ".."
}

/// One container address and the prefix it came with (ignored: the link
/// is point-to-point; the address is always configured as /32 or /128).
pub fn parse_address(s: &str) -> Result<IpAddr, CniError> {
    let bare = match s.split_once('/') {
        Some((a, p)) if p.parse::<u8>().is_ok() => a,
        Some(_) => return Err(invalid(format!("invalid address '{}'", s.escape_debug()))),
        None => s,
    };
    bare.parse().map_err(|_| {
        invalid(format!(
            "invalid address '{}': not an IP address",
            s.escape_debug()
        ))
    })
}

/// Split addresses into at most one IPv4 and one IPv6 (as text, bare).
pub fn split_families(addrs: &[String]) -> Result<(Option<String>, Option<String>), CniError> {
    let (mut v4, mut v6) = (None, None);
    for a in addrs {
        let ip = parse_address(a)?;
        let slot = if ip.is_ipv4() { &mut v4 } else { &mut v6 };
        if let Some(prev) = slot.replace(ip.to_string()) {
            return Err(invalid(format!(
                "two container addresses of one family ({prev} and {ip}): narwhal gives a container one IPv4 and one IPv6 address"
            )));
        }
    }
    Ok((v4, v6))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(extra: &str) -> Result<NetConf, CniError> {
        NetConf::parse(
            format!(r#"{{"cniVersion":"1.0.0","name":"net1","type":"narwhal"{extra}}}"#).as_bytes(),
        )
    }

    #[test]
    fn codes_for_bad_input() {
        let code = |r: Result<NetConf, CniError>| r.unwrap_err().code;
        assert_eq!(code(NetConf::parse(b"{")), Code::Decode);
        assert_eq!(code(NetConf::parse(b"[]")), Code::Decode);
        assert_eq!(
            code(NetConf::parse(br#"{"cniVersion":"9.9.9","name":"n"}"#)),
            Code::IncompatibleVersion
        );
        assert_eq!(
            code(NetConf::parse(br#"{"cniVersion":"1.0.0"}"#)),
            Code::InvalidConfig
        );
        assert_eq!(code(conf(r#","mtu":[1]"#)), Code::InvalidConfig);
        assert!(conf(r#","ipam":{}"#).unwrap().ipam_type.is_none());
        assert_eq!(
            code(conf(r#","ipam":{"type":"../x"}"#)),
            Code::InvalidConfig
        );
        assert_eq!(code(conf(r#","interface":"eth1""#)), Code::InvalidConfig);
    }

    #[test]
    fn address_precedence() {
        let c = conf(
            r#","runtimeConfig":{"ips":["198.51.100.9/24"]},"args":{"cni":{"ips":["198.51.100.8"]}},"addresses":[{"address":"198.51.100.7/32"}]"#,
        )
        .unwrap();
        let env = Env {
            args: parse_cni_args("IgnoreUnknown=1;IP=198.51.100.6").unwrap(),
            ..Env::default()
        };
        assert_eq!(c.addresses(&env).unwrap(), ["198.51.100.9/24"]);
        let c = conf(r#","args":{"cni":{"ips":["198.51.100.8"]}},"addresses":["198.51.100.7"]"#)
            .unwrap();
        assert_eq!(c.addresses(&env).unwrap(), ["198.51.100.8"]);
        let c = conf(r#","addresses":["198.51.100.7"]"#).unwrap();
        assert_eq!(c.addresses(&env).unwrap(), ["198.51.100.6"]);
        assert_eq!(c.addresses(&Env::default()).unwrap(), ["198.51.100.7"]);
        assert!(conf("")
            .unwrap()
            .addresses(&Env::default())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn families() {
        let (a, b) = split_families(&["198.51.100.2/24".into(), "2001:db8::2".into()]).unwrap();
        assert_eq!(a.as_deref(), Some("198.51.100.2"));
        assert_eq!(b.as_deref(), Some("2001:db8::2"));
        assert!(split_families(&["198.51.100.2".into(), "198.51.100.3".into()]).is_err());
        assert!(split_families(&["198.51.100.2/x".into()]).is_err());
    }

    #[test]
    fn settings_keep_annotation_names() {
        let c = conf(r#","mtu":1400,"forwarding":true,"host-ipv4":"198.51.100.1""#).unwrap();
        assert_eq!(c.settings.mtu.as_deref(), Some("1400"));
        assert_eq!(c.settings.forwarding.as_deref(), Some("true"));
        assert_eq!(c.settings.host_ipv4.as_deref(), Some("198.51.100.1"));
    }

    #[test]
    fn versions() {
        assert!(version_at_least("1.1.0", "1.0.0"));
        assert!(version_at_least("0.4.0", "0.4.0"));
        assert!(!version_at_least("0.3.1", "0.4.0"));
    }
}
