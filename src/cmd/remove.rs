//! `narwhal remove (CONTAINER | --pid PID | --netns PATH | --host-interface IFACE | --oci-id ID)`.

use anyhow::Result;

use crate::apply::Outcome;
use crate::cli::{RemoveArgs, TargetArgs};
use crate::docker::DockerError;
use crate::error::Error;
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
                let (key, running) = match target::docker_key(c) {
                    Ok(k) => k,
                    // removed (docker rm -f): its link went with it; a
                    // --paranoid filter is found by the name in its mark
                    Err(Error::Docker(DockerError::NotFound(_))) => {
                        return remove_leftover_filter(c, log);
                    }
                    Err(e) => return Err(anyhow::Error::new(e).context(format!("remove {t}"))),
                };
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
    let removed = engine::down(&ifname, owner, false, &|s| log.info(&s.to_string()))?;
    match gone {
        Some(why) if removed.link == Outcome::Absent && !removed.filter => {
            println!("nothing to remove: {why}")
        }
        _ => println!("{removed}"),
    }
    Ok(())
}

/// `remove NAME` after `docker rm`: the filter marked with the name.
fn remove_leftover_filter(name: &str, log: &Log) -> Result<()> {
    let label = format!("Docker container {name}");
    let Some(ifname) = crate::kernel::nft::marked_for(&label)? else {
        anyhow::bail!(
            "remove Docker container {name}: no such Docker container '{name}', and no \
             filter left for it (a removed container's link goes with it; `narwhal list` shows what is \
             left, `narwhal remove --host-interface IFACE` removes it)"
        );
    };
    let removed = engine::down(&ifname, Owner::AnyNarwhal, false, &|s| {
        log.info(&s.to_string())
    })?;
    println!("{removed}");
    Ok(())
}
