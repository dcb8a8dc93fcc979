//! `narwhal remove (CONTAINER | --pid PID | --netns PATH | --host-interface IFACE | --oci-id ID)`.

use anyhow::{Context, Result};

use crate::cli::{RemoveArgs, TargetArgs};
use crate::log::Log;
use crate::plan::Owner;
use crate::request::Target;
use crate::{engine, input, naming, spec, target};

pub fn run(a: RemoveArgs, log: &Log) -> Result<()> {
    let mut gone = None;
    let (ifname, owner) = if let Some(h) = a.host_interface {
        (spec::ifname("host interface name", &h)?, Owner::AnyNarwhal)
    } else if let Some(id) = a.oci_id {
        (naming::host_ifname(&id), Owner::Key(id))
    } else {
        let t = input::args::target(TargetArgs {
            container: a.container,
            pid: a.pid,
            netns: a.netns,
        })?;
        let key = match &t {
            Target::Docker(c) => {
                let (key, running) =
                    target::docker_key(c).with_context(|| format!("remove {t}"))?;
                if !running {
                    gone = Some(format!(
                        "Docker container {c} is not running (its link ended with it)"
                    ));
                }
                key
            }
            other => target::resolve(other)?.key,
        };
        (naming::host_ifname(&key), Owner::Key(key))
    };
    let removed = engine::down(&ifname, owner, &|s| log.info(&s.to_string()))?;
    match gone {
        Some(why) if !removed.link && !removed.filter => println!("nothing to remove: {why}"),
        _ => println!("{removed}"),
    }
    Ok(())
}
