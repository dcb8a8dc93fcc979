//! OCI runtime hook mode: `narwhal hook [createRuntime|poststop]`.
//!
//! Reads the container state on stdin, configures the container's
//! namespace from its `narwhal.*` annotations at createRuntime, and
//! removes narwhal's link at poststop. Prints nothing on stdout; every
//! change goes to syslog, and an error to stderr and syslog. Uses no
//! environment.

use anyhow::{Context, Result};

use crate::allow::AllowList;
use crate::apply::Outcome;
use crate::input::oci::{self, Stage};
use crate::log::Log;
use crate::plan::Owner;
use crate::request::Target;
use crate::spec::{self, Config};
use crate::{engine, naming, target};

pub fn run(stage: Option<&str>, log: &Log, allow: Option<&AllowList>) -> Result<()> {
    let bytes = oci::read_state(std::io::stdin().lock()).context("hook")?;
    let input = oci::parse_state(&bytes, stage)
        .with_context(|| oci::label(&bytes, stage).unwrap_or_else(|| "hook".into()))?;
    let ctx = format!("{} {}", input.stage, input.container_id);
    let Some(req) = input.request else {
        return Ok(()); // no narwhal.ipv4/ipv6 annotation: not ours
    };
    let id = &input.container_id;
    let info = |s: &dyn std::fmt::Display| log.info(&format!("{ctx}: {s}"));
    match input.stage {
        Stage::CreateRuntime => {
            let config = Config::new(&req.settings).with_context(|| ctx.clone())?;
            let spec = target::spec(config, &req).with_context(|| ctx.clone())?;
            if let Some(a) = allow {
                a.check_spec(&spec).with_context(|| ctx.clone())?;
            }
            if let Some(Target::Pid(pid)) = req.target {
                info(&format_args!("configuring {} (pid {pid})", spec.host_if));
            }
            for w in engine::up(&spec, &|s| info(s)).with_context(|| ctx.clone())? {
                log.warn(&format!("{ctx}: {w}"));
            }
            info(&"done");
        }
        Stage::Poststop => {
            let ifname = match &req.settings.host_interface {
                Some(h) => spec::ifname("host interface name", h).with_context(|| ctx.clone())?,
                None => naming::host_ifname(id),
            };
            let owner = Owner::Key(id.clone());
            let removed = engine::down(&ifname, owner, input.netns_ends, &|s| info(s))
                .with_context(|| ctx.clone())?;
            match removed.link {
                Outcome::ByKernel => info(&format_args!(
                    "{ifname} goes with the container's namespace"
                )),
                Outcome::Absent => info(&format_args!("{ifname} already gone")),
                Outcome::Done => {}
            }
        }
    }
    Ok(())
}
