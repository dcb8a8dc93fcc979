//! The command line's two commands: set up (default) and `remove`.

use anyhow::{Context, Result};

use crate::cli::{RemoveArgs, UpArgs};
use crate::engine;
use crate::log::Log;
use crate::naming;
use crate::request::{Settings, Target};
use crate::spec::{self, Spec};

fn target(
    container: Option<String>,
    pid: Option<String>,
    netns: Option<std::path::PathBuf>,
) -> Result<Target> {
    Ok(match (container, pid, netns) {
        (Some(c), _, _) => Target::Docker(c),
        (_, Some(p), _) => Target::Pid(engine::parse_pid(&p)?),
        (_, _, Some(n)) => Target::Netns(n),
        _ => anyhow::bail!("give a CONTAINER, --pid PID or --netns PATH"),
    })
}

fn describe(t: &Target) -> String {
    match t {
        Target::Docker(c) => format!("Docker container {c}"),
        Target::Pid(p) => format!("process {p}"),
        Target::Netns(n) => format!("netns {}", n.display()),
    }
}

/// `narwhal [OPTION]… (CONTAINER | --pid PID | --netns PATH)`
pub fn up(a: UpArgs, log: &Log) -> Result<()> {
    let settings = Settings {
        ipv4: a.ipv4,
        ipv6: a.ipv6,
        host_ipv4: a.host_ipv4,
        host_ipv6: a.host_ipv6,
        interface: a.interface,
        host_interface: a.host_interface,
        mtu: a.mtu,
        forwarding: a.forwarding.then(|| "true".to_string()),
        paranoid: a.paranoid.then(|| "true".to_string()),
    };
    // validate before looking anything up
    Spec::new("/".into(), "check", &settings)?;
    let t = target(a.container, a.pid, a.netns)?;
    let what = describe(&t);
    let r = engine::resolve(&t).with_context(|| format!("set up {what}"))?;
    let spec = Spec::new(r.netns, &r.key, &settings)?;
    engine::up(&spec, &|s| log.info(&s.to_string())).with_context(|| format!("set up {what}"))?;
    Ok(())
}

/// `narwhal remove (CONTAINER | --pid PID | --netns PATH | --host-interface IFACE)`
pub fn remove(a: RemoveArgs, log: &Log) -> Result<()> {
    let mut gone = None;
    let (ifname, key) = if let Some(h) = a.host_interface {
        (spec::ifname("host interface name", &h)?, None)
    } else {
        let t = target(a.container, a.pid, a.netns)?;
        let key = match &t {
            Target::Docker(c) => {
                let what = || format!("remove {}", describe(&t));
                let (key, running) = engine::docker_key(c).with_context(what)?;
                if !running {
                    gone = Some(format!(
                        "Docker container {c} is not running (its link ended with it)"
                    ));
                }
                key
            }
            other => engine::resolve(other)?.key,
        };
        (naming::host_ifname(&key), Some(key))
    };
    let removed = engine::down(&ifname, key.as_deref())?;
    if removed.link {
        log.info(&format!("host: link del {ifname}"));
    }
    if removed.filter {
        log.info(&format!(
            "host: nft delete table netdev {}",
            crate::nft::table_name(&ifname)
        ));
    }
    match gone {
        Some(why) if !removed.link && !removed.filter => println!("nothing to remove: {why}"),
        _ => println!("{removed}"),
    }
    Ok(())
}
