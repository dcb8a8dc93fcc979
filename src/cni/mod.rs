//! CNI plugin mode (spec 1.1.0): the `narwhal` binary, run by a container
//! runtime with `CNI_COMMAND` set, the network configuration on stdin and
//! the result or error JSON on stdout.
//!
//! - The key of an attachment is `NETWORK/CONTAINERID/IFNAME`: the host
//!   interface name derives from it ([`crate::naming::host_ifname`]) and
//!   the host link's alias `narwhal:NETWORK/CONTAINERID/IFNAME` marks it,
//!   so DEL finds it without state and GC finds a network's attachments.
//! - Container addresses come, in CNI's order of precedence, from
//!   `runtimeConfig.ips`, `args.cni.ips`, `CNI_ARGS IP=`, or the netconf's
//!   `addresses`. With an IPAM plugin (`ipam.type`), IPAM decides (it
//!   reads the same requests, and must grant them) and its lease is
//!   released again when a later step fails.
//! - Errors: the spec's codes, and narwhal's own ([`Code`]) from 100.

pub mod conf;
pub mod engine_glue;
pub mod ipam;
pub mod result;

use std::io::Read;

use serde_json::{json, Value};

use crate::error::Error;
use crate::log::Log;
use crate::request::Settings;
use crate::spec::{self, Spec};
use conf::{Command, Env, NetConf, SUPPORTED_VERSIONS};
use ipam::Ipam;
use result::{Addr, Iface};

/// CNI error codes: the spec's (below 100) and narwhal's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    IncompatibleVersion,
    UnknownContainer,
    InvalidEnv,
    Io,
    Decode,
    InvalidConfig,
    /// STATUS: the plugin cannot add containers now.
    NotAvailable,
    /// 100: a kernel change failed; everything this call did is undone.
    Setup,
    /// 101: the IPAM plugin is missing or gave an unusable answer.
    Ipam,
    /// 102: CHECK found the kernel differing from the previous result.
    Drift,
    /// 103: the host interface exists and is not this attachment's.
    NotOurs,
    /// A code passed on from a delegated plugin.
    Other(u32),
}

impl Code {
    pub fn number(self) -> u32 {
        use crate::error::cni_code::*;
        match self {
            Code::IncompatibleVersion => INCOMPATIBLE_VERSION,
            Code::UnknownContainer => UNKNOWN_CONTAINER,
            Code::InvalidEnv => INVALID_ENV,
            Code::Io => IO,
            Code::Decode => DECODE,
            Code::InvalidConfig => INVALID_CONFIG,
            Code::NotAvailable => NOT_AVAILABLE,
            Code::Setup => KERNEL,
            Code::Ipam => IPAM,
            Code::Drift => DRIFT,
            Code::NotOurs => NOT_OURS,
            Code::Other(n) => n,
        }
    }
}

/// A CNI error: code, one-line message, optional details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniError {
    pub code: Code,
    pub msg: String,
    pub details: Option<String>,
}

impl CniError {
    pub fn new(code: Code, msg: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: None,
        }
    }

    pub fn details(mut self, d: impl Into<String>) -> CniError {
        self.details = Some(d.into());
        self
    }

    /// An engine error, with the code its kind maps to.
    fn engine(context: &str, e: Error) -> CniError {
        use crate::error::cni_code::*;
        let code = match e.cni_code() {
            INVALID_CONFIG => Code::InvalidConfig,
            UNKNOWN_CONTAINER => Code::UnknownContainer,
            INVALID_ENV => Code::InvalidEnv,
            NOT_OURS => Code::NotOurs,
            KERNEL => Code::Setup,
            n => Code::Other(n),
        };
        CniError::new(code, format!("{context}: {}", crate::error::render(&e)))
    }
}

/// Run one CNI command; the JSON answer is on stdout. Returns the exit
/// status.
pub fn run() -> u8 {
    // syslog when there is one (hosts without a syslog daemon: stderr only)
    let dev_log = std::path::Path::new("/dev/log");
    let log = if dev_log.exists() {
        Log::hook(dev_log)
    } else {
        Log::stderr(false)
    };
    let mut version = SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.len() - 1].to_string();
    let res = main(&log, &mut version);
    match res {
        Ok(Some(out)) => {
            println!("{out}");
            0
        }
        Ok(None) => 0,
        Err(e) => {
            log.error(&format!("CNI: {}", e.msg));
            println!("{}", result::error(&e, &version));
            crate::error::EXIT_FAILURE
        }
    }
}

fn read_stdin() -> Result<Vec<u8>, CniError> {
    let mut buf = Vec::new();
    std::io::stdin()
        .take(conf::MAX_STDIN + 1)
        .read_to_end(&mut buf)
        .map_err(|e| CniError::new(Code::Io, format!("read the network configuration: {e}")))?;
    if buf.len() as u64 > conf::MAX_STDIN {
        return Err(CniError::new(
            Code::Decode,
            "network configuration exceeds 1 MiB",
        ));
    }
    Ok(buf)
}

fn main(log: &Log, version: &mut String) -> Result<Option<Value>, CniError> {
    let get = |k: &str| std::env::var(k).ok();
    let cmd = Command::parse(&get("CNI_COMMAND").unwrap_or_default())?;
    let stdin = read_stdin()?;
    if cmd == Command::Version {
        let asked: Option<String> = serde_json::from_slice::<Value>(&stdin)
            .ok()
            .and_then(|v| v.get("cniVersion")?.as_str().map(str::to_string))
            .filter(|v| conf::supported(v));
        if let Some(v) = asked {
            *version = v;
        }
        return Ok(Some(
            json!({"cniVersion": version, "supportedVersions": SUPPORTED_VERSIONS}),
        ));
    }
    let conf = NetConf::parse(&stdin)?;
    *version = conf.cni_version.clone();
    let env = Env::read(cmd, &get)?;
    let call = Call {
        conf: &conf,
        env: &env,
        stdin: &stdin,
        log,
    };
    match cmd {
        Command::Add => call.add().map(Some),
        Command::Del => call.del().map(|()| None),
        Command::Check => call.check().map(|()| None),
        Command::Gc => call.gc().map(|()| None),
        Command::Status => call.status().map(|()| None),
        Command::Version => unreachable!("answered above"),
    }
}

type Pair = (Option<String>, Option<String>);

/// What IPAM `got`, if it is what was asked for (when anything was).
fn granted(wanted: &Pair, got: Pair, ipam: Option<&Ipam>) -> Result<Pair, CniError> {
    let name = ipam.map_or("", |i| i.name.as_str());
    for (w, g) in [(&wanted.0, &got.0), (&wanted.1, &got.1)] {
        if w.is_some() && w != g {
            return Err(CniError::new(
                Code::Ipam,
                format!(
                    "IPAM plugin {name} gave {}, not the requested {}",
                    g.as_deref().unwrap_or("no address"),
                    w.as_deref().unwrap_or_default()
                ),
            ));
        }
    }
    Ok(got)
}

struct Call<'a> {
    conf: &'a NetConf,
    env: &'a Env,
    stdin: &'a [u8],
    log: &'a Log,
}

impl Call<'_> {
    fn key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.conf.name, self.env.container_id, self.env.ifname
        )
    }

    fn ipam(&self) -> Result<Option<Ipam>, CniError> {
        self.conf
            .ipam_type
            .as_deref()
            .map(|t| Ipam::find(t, &self.env.path))
            .transpose()
    }

    fn spec(&self, v4: Option<String>, v6: Option<String>) -> Result<Spec, CniError> {
        let settings = Settings {
            ipv4: v4,
            ipv6: v6,
            interface: Some(self.env.ifname.clone()),
            ..self.conf.settings.clone()
        };
        let netns = self.env.netns.clone().unwrap_or_default();
        let spec = Spec::new(netns, &self.key(), &settings)
            .map_err(|e| CniError::new(Code::InvalidConfig, e.to_string()))?;
        // the operator's bound: "allow" in the network configuration
        if let Some(allow) = self.allow()? {
            allow
                .check_spec(&spec)
                .map_err(|e| CniError::new(Code::InvalidConfig, e.to_string()))?;
        }
        Ok(spec)
    }

    /// The network configuration's `allow`: prefixes container (and host)
    /// addresses must lie in, as a list or a comma-separated string.
    fn allow(&self) -> Result<Option<crate::allow::AllowList>, CniError> {
        let text = match self.conf.raw.get("allow") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    CniError::new(
                        Code::InvalidConfig,
                        "invalid \"allow\": expected prefixes as strings",
                    )
                })?
                .join(","),
            Some(other) => {
                return Err(CniError::new(
                    Code::InvalidConfig,
                    format!("invalid \"allow\": expected a list of prefixes, got {other}"),
                ))
            }
        };
        text.parse()
            .map(Some)
            .map_err(|e: crate::allow::AllowError| {
                CniError::new(Code::InvalidConfig, format!("invalid \"allow\": {e}"))
            })
    }

    fn add(&self) -> Result<Value, CniError> {
        let key = self.key();
        let wanted = conf::split_families(&self.conf.addresses(self.env)?)?;
        let (mut v4, mut v6) = wanted.clone();
        let mut lease = None;
        let mut dns = None;
        if let Some(ipam) = self.ipam()? {
            // IPAM reads the requested addresses itself (host-local and
            // static honour the same sources) and keeps one holder per lease
            if self.conf.raw.contains_key("addresses") {
                return Err(CniError::new(
                    Code::InvalidConfig,
                    "give container addresses either in \"addresses\" or through \"ipam\", not both",
                ));
            }
            let r = ipam.exec("ADD", self.stdin)?.ok_or_else(|| {
                CniError::new(
                    Code::Ipam,
                    format!("IPAM plugin {} ADD: no result", ipam.name),
                )
            });
            lease = Some(ipam);
            let got = r
                .and_then(|r| {
                    dns = r.get("dns").cloned();
                    result::ipam_addresses(&r)
                })
                .and_then(|a| conf::split_families(&a))
                .and_then(|got| granted(&wanted, got, lease.as_ref()));
            match got {
                Ok((a, b)) => (v4, v6) = (a, b),
                Err(e) => return Err(self.release(lease.as_ref(), e)),
            }
        } else if v4.is_none() && v6.is_none() {
            return Err(CniError::new(
                Code::InvalidConfig,
                "no container address: give runtimeConfig.ips, args.cni.ips, CNI_ARGS IP=, \"addresses\" or an \"ipam\" plugin",
            ));
        }
        let res = self.spec(v4, v6).and_then(|spec| {
            self.log
                .info(&format!("CNI ADD {key}: configuring {}", spec.host_if));
            let ends = engine_glue::up(&spec, self.log)
                .map_err(|e| CniError::engine(&format!("add {key}"), e))?;
            Ok((spec, ends))
        });
        let (spec, ends) = match res {
            Ok(x) => x,
            Err(e) => return Err(self.release(lease.as_ref(), e)),
        };
        let mut addrs = Vec::new();
        if let Some(p) = spec.ipv4 {
            addrs.push(Addr {
                container: p.container.into(),
                gateway: p.host.into(),
            });
        }
        if let Some(p) = spec.ipv6 {
            addrs.push(Addr {
                container: p.container.into(),
                gateway: p.host.into(),
            });
        }
        let host = Iface {
            name: spec.host_if.clone(),
            mac: ends.host_mac,
            sandbox: None,
        };
        let container = Iface {
            name: spec.container_if.clone(),
            mac: ends.container_mac,
            sandbox: Some(spec.netns.display().to_string()),
        };
        let r = result::merge(
            self.conf.prev_result.as_ref(),
            &host,
            &container,
            &addrs,
            dns.as_ref(),
        );
        self.log.info(&format!("CNI ADD {key}: done"));
        Ok(result::render(&r, &self.conf.cni_version))
    }

    /// Give a lease back after a failed ADD; `e` is what failed.
    fn release(&self, lease: Option<&Ipam>, e: CniError) -> CniError {
        let Some(ipam) = lease else { return e };
        match ipam.exec("DEL", self.stdin) {
            Ok(_) => e,
            Err(r) => CniError {
                msg: format!("{}; release incomplete: {}", e.msg, r.msg),
                ..e
            },
        }
    }

    fn host_if(&self) -> Result<String, CniError> {
        match &self.conf.settings.host_interface {
            Some(h) => spec::ifname("host interface name", h)
                .map_err(|e| CniError::new(Code::InvalidConfig, e.to_string())),
            None => Ok(crate::naming::host_ifname(&self.key())),
        }
    }

    fn del(&self) -> Result<(), CniError> {
        let key = self.key();
        let host_if = self.host_if()?;
        let link = engine_glue::down(&host_if, &key)
            .map_err(|e| CniError::engine(&format!("delete {key}"), e));
        match &link {
            Ok(r) => self.log.info(&format!("CNI DEL {key}: {r}")),
            Err(e) => self.log.warn(&format!("CNI DEL {key}: {}", e.msg)),
        }
        let lease = match self.ipam() {
            Ok(Some(ipam)) => ipam.exec("DEL", self.stdin).map(|_| ()),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        link.and(lease)
    }

    fn check(&self) -> Result<(), CniError> {
        if !conf::version_at_least(&self.conf.cni_version, "0.4.0") {
            return Err(CniError::new(
                Code::IncompatibleVersion,
                format!(
                    "CHECK needs cniVersion 0.4.0 or later, not {}",
                    self.conf.cni_version
                ),
            ));
        }
        let key = self.key();
        let prev = self.conf.prev_result.as_ref().ok_or_else(|| {
            CniError::new(
                Code::InvalidConfig,
                "CHECK needs a prevResult in the network configuration",
            )
        })?;
        let netns = self.env.netns.clone().unwrap_or_default();
        let sandbox = netns.display().to_string();
        let (iface, ips) = result::own_entries(prev, &self.env.ifname, &sandbox);
        let Some(iface) = iface else {
            return Err(CniError::new(
                Code::InvalidConfig,
                format!(
                    "prevResult has no interface {} in {sandbox}",
                    self.env.ifname
                ),
            ));
        };
        let addrs: Vec<String> = ips
            .iter()
            .filter_map(|ip| ip.get("address")?.as_str().map(str::to_string))
            .collect();
        let parsed = addrs
            .iter()
            .map(|a| conf::parse_address(a))
            .collect::<Result<Vec<_>, _>>()?;
        let (v4, v6) = conf::split_families(&addrs)?;
        let spec = self.spec(v4, v6)?;
        let want = engine_glue::Expected {
            spec: &spec,
            container_mac: iface.get("mac").and_then(Value::as_str).map(str::to_string),
            addresses: parsed,
        };
        let diff =
            engine_glue::check(&want).map_err(|e| CniError::engine(&format!("check {key}"), e))?;
        if !diff.is_empty() {
            return Err(CniError::new(
                Code::Drift,
                format!("check {key}: {}", diff.join("; ")),
            ));
        }
        if let Some(ipam) = self.ipam()? {
            ipam.exec("CHECK", self.stdin)?;
        }
        Ok(())
    }

    fn gc(&self) -> Result<(), CniError> {
        let valid =
            match self.conf.raw.get("cni.dev/valid-attachments") {
                Some(Value::Array(a)) => a.clone(),
                // without the list, every attachment would look stale
                _ => return Err(CniError::new(
                    Code::InvalidConfig,
                    "GC needs \"cni.dev/valid-attachments\" (a list) in the network configuration",
                )),
            };
        let keep: Vec<String> = valid
            .iter()
            .filter_map(|a| {
                let id = a.get("containerID")?.as_str()?;
                let ifname = a.get("ifname")?.as_str()?;
                Some(format!("{}/{id}/{ifname}", self.conf.name))
            })
            .collect();
        let prefix = format!("{}/", self.conf.name);
        let found = engine_glue::attachments(&prefix)
            .map_err(|e| CniError::engine("garbage-collect", e))?;
        let mut failed = Vec::new();
        for (ifname, key) in found.into_iter().filter(|(_, k)| !keep.contains(k)) {
            match engine_glue::down(&ifname, &key) {
                Ok(r) => self.log.info(&format!("CNI GC {key}: {r}")),
                Err(e) => failed.push(format!("{ifname}: {:#}", anyhow::Error::from(e))),
            }
        }
        if let Some(ipam) = self.ipam()? {
            if ipam.versions().iter().any(|v| v == "1.1.0") {
                ipam.exec("GC", self.stdin)?;
            } else {
                self.log.info(&format!(
                    "CNI GC {}: IPAM plugin {} predates GC; its leases are left alone",
                    self.conf.name, ipam.name
                ));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(CniError::new(
                Code::Setup,
                format!("garbage-collect {}: {}", self.conf.name, failed.join("; ")),
            ))
        }
    }

    fn status(&self) -> Result<(), CniError> {
        engine_glue::usable().map_err(|m| CniError::new(Code::NotAvailable, m))?;
        if let Some(ipam) = self.ipam().map_err(|e| CniError {
            code: Code::NotAvailable,
            ..e
        })? {
            if ipam.versions().iter().any(|v| v == "1.1.0") {
                ipam.exec("STATUS", self.stdin)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_cni_codes() {
        let spec = Spec::new("/x".into(), "k", &Settings::default()).unwrap_err();
        assert_eq!(
            CniError::engine("add", spec.into()).code,
            Code::InvalidConfig
        );
        let gone = crate::kernel::netns::NetnsError::Open {
            path: "/proc/1/ns/net".into(),
            source: std::io::Error::from_raw_os_error(nix::libc::ENOENT),
        };
        assert_eq!(
            CniError::engine("add", gone.into()).code,
            Code::UnknownContainer
        );
        let not_ours = Error::NotOurs {
            ifname: "nw-x".into(),
            why: "no alias".into(),
        };
        let e = CniError::engine("add k", not_ours);
        assert_eq!((e.code.number(), e.msg.starts_with("add k: ")), (103, true));
        let step = crate::apply::StepError::for_test(std::io::Error::from_raw_os_error(17));
        assert_eq!(
            CniError::engine("add", Box::new(step).into()).code.number(),
            100
        );
    }

    #[test]
    fn ipam_must_grant_what_was_asked() {
        let want: Pair = (Some("198.51.100.7".into()), None);
        let got: Pair = (Some("198.51.100.7".into()), Some("2001:db8::7".into()));
        assert_eq!(granted(&want, got.clone(), None).unwrap(), got);
        let other: Pair = (Some("198.51.100.8".into()), None);
        let e = granted(&want, other, None).unwrap_err();
        assert_eq!(e.code, Code::Ipam);
        assert!(
            e.msg.contains("198.51.100.8") && e.msg.contains("198.51.100.7"),
            "{}",
            e.msg
        );
        assert!(granted(&(None, None), (None, None), None).is_ok());
    }
}
