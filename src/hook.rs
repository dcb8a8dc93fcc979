//! OCI runtime hook mode: `narwhal hook [createRuntime|poststop]`.
//!
//! Reads the container state on stdin, configures the container's
//! namespace from its `narwhal.*` annotations at createRuntime, and
//! removes narwhal's link at poststop. Prints nothing on stdout; logs every
//! change and error to syslog and errors to stderr. Uses no environment.

use std::path::Path;

use anyhow::{Context, Result};

use crate::allow::AllowList;
use crate::engine;
use crate::input::oci::{self, HookInput, Stage};
use crate::log::Log;
use crate::naming;
use crate::request::Target;
use crate::spec::{self, Spec};

/// Run the hook; returns whether it succeeded. Errors are logged here.
pub fn run(stage: Option<&str>, syslog_socket: &Path, allow: Option<&AllowList>) -> bool {
    let log = Log::hook(syslog_socket);
    let bytes = match oci::read_state(std::io::stdin().lock()) {
        Ok(b) => b,
        Err(e) => {
            log.error(&format!("hook: {:#}", anyhow::Error::from(e)));
            return false;
        }
    };
    let input = match oci::parse_state(&bytes, stage) {
        Ok(i) => i,
        Err(e) => {
            let label = oci::label(&bytes, stage).unwrap_or_else(|| "hook".into());
            log.error(&format!("{label}: {:#}", anyhow::Error::from(e)));
            return false;
        }
    };
    let ctx = format!("{} {}", input.stage, input.container_id);
    match handle(input, &log, allow) {
        Ok(()) => true,
        Err(e) => {
            log.error(&format!("{ctx}: {e:#}"));
            false
        }
    }
}

fn handle(input: HookInput, log: &Log, allow: Option<&AllowList>) -> Result<()> {
    let Some(req) = input.request else {
        return Ok(()); // no narwhal.ipv4/ipv6 annotation: not ours
    };
    let id = &input.container_id;
    match input.stage {
        Stage::CreateRuntime => {
            let target = req.target.context("no target in the OCI state")?;
            let Target::Pid(pid) = target else {
                anyhow::bail!("unexpected hook target {target:?}")
            };
            let r = engine::resolve(&Target::Pid(pid))?;
            let spec = Spec::new(r.netns, id, &req.settings)?;
            if let Some(a) = allow {
                a.check_spec(&spec)?;
            }
            log.info(&format!(
                "createRuntime {id}: configuring {} (pid {pid})",
                spec.host_if
            ));
            engine::up(&spec, &|s| log.info(&format!("createRuntime {id}: {s}")))?;
            log.info(&format!("createRuntime {id}: done"));
        }
        Stage::Poststop => {
            let ifname = match &req.settings.host_interface {
                Some(h) => spec::ifname("host interface name", h)?,
                None => naming::host_ifname(id),
            };
            let removed = engine::down(&ifname, Some(id))?;
            if removed.link {
                log.info(&format!("poststop {id}: host: link del {ifname}"));
            } else {
                log.info(&format!("poststop {id}: {ifname} already gone"));
            }
            if removed.filter {
                let table = crate::nft::table_name(&ifname);
                log.info(&format!(
                    "poststop {id}: host: nft delete table netdev {table}"
                ));
            }
        }
    }
    Ok(())
}
