//! The command-line grammar (clap derive only; no logic).
//!
//! Compatible with the original `narwhal` shell tool:
//! `narwhal [OPTION]… CONTAINER`, `--pid PID`, `--netns PATH`,
//! `narwhal remove …`; plus `narwhal hook STAGE` for OCI runtimes.

use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgGroup, ArgMatches, Args, FromArgMatches, Parser, Subcommand};

use crate::settings::{self, Kind, Setting, Settings};

const AFTER_HELP: &str = "\
Examples:
  docker run -d --net=none --name web busybox httpd -f
  narwhal -4 198.51.100.2 -6 2001:db8::2 web
  narwhal remove web

  narwhal --netns /run/netns/blue -4 198.51.100.7
  narwhal remove --netns /run/netns/blue

The host interface is named nw-KEY, where KEY is the Docker short id, the
PID, the netns file name or the OCI container id; a key longer than 12
characters or with characters outside [A-Za-z0-9_.-] becomes 12 hex digits
of its hash. As an OCI hook, narwhal reads the narwhal.* annotations; see
narwhal(8).";

#[derive(Debug, Parser)]
#[command(
    name = "narwhal",
    version,
    about = "Give a container its own routed veth link: static IPv4/IPv6 addresses, host routes, no bridge, no ARP",
    after_help = AFTER_HELP,
    subcommand_negates_reqs = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub up: UpArgs,
    /// Print every kernel change as it is made
    #[arg(long, global = true)]
    pub trace: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Remove narwhal's host interface of a container (and with it the container's end)
    Remove(RemoveArgs),
    /// Compare a container's link with what narwhal sets up; with --repair, restore what is missing
    Check(CheckArgs),
    /// List narwhal's links on this host
    List(ListArgs),
    /// Run as an OCI runtime hook: read the container state on stdin
    Hook(HookArgs),
    /// Wrap an OCI runtime (runc) for Docker: add narwhal's hooks to containers that ask for narwhal
    Runtime(RuntimeArgs),
}

/// The container to act on: exactly one of these.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).multiple(false).args(["container", "pid", "netns"])))]
pub struct TargetArgs {
    /// Docker container id or name (started with --net=none)
    #[arg(value_name = "CONTAINER")]
    pub container: Option<String>,
    /// The network namespace of process PID
    #[arg(long, value_name = "PID")]
    pub pid: Option<String>,
    /// The network namespace file PATH, e.g. /run/netns/NAME
    #[arg(long, value_name = "PATH")]
    pub netns: Option<PathBuf>,
}

/// Every per-container setting, made from [`settings::SCHEMA`]: one flag
/// per setting (`--NAME`), the same names as the `narwhal.NAME`
/// annotations and CNI netconf keys.
#[derive(Debug, Clone, Default)]
pub struct SettingArgs(pub Settings);

fn setting_arg(s: &'static Setting) -> Arg {
    let help = match (s.default, s.kind) {
        (Some("false"), Kind::Bool) => s.help.to_string(),
        (Some(d), _) => format!("{} [default: {d}]", s.help),
        (None, _) => s.help.to_string(),
    };
    let mut a = Arg::new(s.name).long(s.name).help(help);
    if let Some(c) = s.short {
        a = a.short(c);
    }
    match s.kind {
        Kind::Bool => a.action(ArgAction::SetTrue),
        k => a.value_name(k.value_name()).action(ArgAction::Set),
    }
}

impl FromArgMatches for SettingArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut out = Settings::default();
        for s in settings::SCHEMA {
            match s.kind {
                Kind::Bool if m.get_flag(s.name) => s.set(&mut out, "true".into()),
                Kind::Bool => {}
                _ => {
                    if let Some(v) = m.get_one::<String>(s.name) {
                        s.set(&mut out, v.clone());
                    }
                }
            }
        }
        Ok(SettingArgs(out))
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl Args for SettingArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        settings::SCHEMA
            .iter()
            .fold(cmd, |c, s| c.arg(setting_arg(s)))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("address").required(true).multiple(true).args(["ipv4", "ipv6"])))]
pub struct UpArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub settings: SettingArgs,
    /// Accepted for compatibility; narwhal needs no temporary interface
    #[arg(long, value_name = "IFACE", hide_short_help = true)]
    pub temp_interface: Option<String>,
    /// Accepted for compatibility; narwhal needs no temporary namespace
    #[arg(long, value_name = "NS", hide_short_help = true)]
    pub temp_namespace: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).multiple(false).args(["container", "pid", "netns", "host_interface", "oci_id"])))]
pub struct RemoveArgs {
    /// Docker container id or name (also after `docker rm`: name, id or short id)
    #[arg(value_name = "CONTAINER")]
    pub container: Option<String>,
    /// The container whose init process is PID
    #[arg(long, value_name = "PID")]
    pub pid: Option<String>,
    /// The container whose network namespace file is PATH
    #[arg(long, value_name = "PATH")]
    pub netns: Option<PathBuf>,
    /// Remove this host interface (it must be narwhal's)
    #[arg(long, value_name = "IFACE")]
    pub host_interface: Option<String>,
    /// The container with this OCI container id (set up by the hook)
    #[arg(long = "oci-id", value_name = "ID")]
    pub oci_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The key of a container set up by the hook or CNI (its OCI container id)
    #[arg(long = "oci-id", value_name = "ID")]
    pub oci_id: Option<String>,
    /// The settings it was set up with; addresses not given are read from the host interface
    #[command(flatten)]
    pub settings: SettingArgs,
    /// Restore what is missing or wrong, leaving the rest untouched
    #[arg(long)]
    pub repair: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON (one object per link; see narwhal(8)) instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HookArgs {
    /// createRuntime or poststop; inferred from the state's status when absent
    #[arg(value_name = "STAGE")]
    pub stage: Option<String>,
    /// Syslog socket to log to
    #[arg(long, value_name = "PATH", default_value = "/dev/log")]
    pub syslog_socket: std::path::PathBuf,
    /// Refuse container addresses outside these prefixes (comma-separated)
    #[arg(long, value_name = "PREFIXES")]
    pub allow: Option<crate::allow::AllowList>,
}

/// `narwhal runtime [OPTIONS] RUNTIME-ARGS…`: narwhal's own options come
/// first; everything from the first other argument on is the runtime's.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RuntimeArgs {
    /// The OCI runtime to run [default: /usr/sbin/runc, else /usr/bin/runc]
    #[arg(long, value_name = "PATH")]
    pub runtime: Option<PathBuf>,
    /// Refuse container addresses outside these prefixes (comma-separated)
    #[arg(long, value_name = "PREFIXES")]
    pub allow: Option<String>,
    /// The runtime's arguments, passed on unchanged
    #[arg(
        value_name = "RUNTIME-ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<std::ffi::OsString>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("narwhal").chain(args.iter().copied()))
    }

    #[test]
    fn seed_grammar() {
        let c = parse(&["-4", "198.51.100.2", "-6", "2001:db8::2", "web"]).unwrap();
        assert!(c.command.is_none());
        assert_eq!(c.up.target.container.as_deref(), Some("web"));
        let c = parse(&[
            "--pid",
            "42",
            "-4",
            "198.51.100.2",
            "--forwarding",
            "--trace",
        ])
        .unwrap();
        assert_eq!(c.up.target.pid.as_deref(), Some("42"));
        assert!(c.up.settings.0.forwarding.as_deref() == Some("true") && c.trace);
        let c = parse(&["remove", "web"]).unwrap();
        assert!(
            matches!(c.command, Some(Command::Remove(r)) if r.container.as_deref() == Some("web"))
        );
        let c = parse(&["remove", "--host-interface", "nw-x"]).unwrap();
        assert!(
            matches!(c.command, Some(Command::Remove(r)) if r.host_interface.as_deref() == Some("nw-x"))
        );
        let c = parse(&["hook", "createRuntime"]).unwrap();
        assert!(
            matches!(c.command, Some(Command::Hook(h)) if h.stage.as_deref() == Some("createRuntime"))
        );
        let c = parse(&["hook", "--allow", "198.51.100.0/24", "poststop"]).unwrap();
        assert!(
            matches!(c.command, Some(Command::Hook(h)) if h.allow.as_ref().map(|a| a.to_string()).as_deref() == Some("198.51.100.0/24"))
        );
        assert!(parse(&["hook", "--allow", "198.51.100.1/24", "poststop"]).is_err());
        assert!(parse(&[
            "-4",
            "198.51.100.2",
            "--temp-interface",
            "x",
            "--temp-namespace",
            "y",
            "web"
        ])
        .is_ok());
    }

    #[test]
    fn runtime_takes_the_rest_verbatim() {
        let runtime = |args: &[&str]| match parse(args).unwrap().command {
            Some(Command::Runtime(r)) => r,
            c => panic!("{args:?}: {c:?}"),
        };
        let docker = [
            "--root",
            "/r",
            "--log",
            "/l",
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/b",
            "id",
        ];
        let r = runtime(&[&["runtime"][..], &docker].concat());
        assert_eq!((r.runtime, r.allow), (None, None));
        assert_eq!(r.args, docker.map(std::ffi::OsString::from));
        let r = runtime(&[
            "runtime",
            "--allow",
            "198.51.100.0/24",
            "--runtime",
            "/x",
            "--help",
        ]);
        assert_eq!(r.allow.as_deref(), Some("198.51.100.0/24"));
        assert_eq!(r.runtime, Some("/x".into()));
        assert_eq!(r.args, ["--help"]);
        for pass in [
            &["--version"][..],
            &["-v"],
            &["-h"],
            &["state", "--allow", "x"],
            &[],
        ] {
            let r = runtime(&[&["runtime"][..], pass].concat());
            assert_eq!(r.args, pass, "{pass:?}");
        }
    }

    #[test]
    fn usage_errors() {
        assert!(parse(&["web"]).is_err(), "an address is required");
        assert!(
            parse(&["-4", "198.51.100.2"]).is_err(),
            "a target is required"
        );
        assert!(
            parse(&["-4", "198.51.100.2", "--pid", "1", "web"]).is_err(),
            "one target only"
        );
        assert!(parse(&["remove"]).is_err());
        assert!(parse(&["remove", "--pid", "1", "--netns", "/x"]).is_err());
    }
}
