//! `narwhal check [--repair] (CONTAINER | --pid PID | --netns PATH)`:
//! compare a container's link with its plan, both sides.

use anyhow::{bail, Context, Result};

use crate::cli::CheckArgs;
use crate::kernel::netns::Netns;
use crate::kernel::{Kernel, System};
use crate::log::Log;
use crate::net::Side;
use crate::settings::Settings;
use crate::spec::Config;
use crate::{engine, input, naming, target};

/// Fill in the addresses (and the filter) a container was set up with from
/// its link: the host end's addresses (IPv4 survives a flap of the host
/// end), else the container end's (a flap of the host end does not touch
/// them).
fn derive(k: &mut impl Kernel, settings: &mut Settings, host_if: &str) -> Result<()> {
    if k.link(Side::Host, host_if)?.is_none() {
        bail!("no host interface {host_if}: give the addresses (-4/-6) to check against");
    }
    let ctr_if = settings
        .interface
        .clone()
        .unwrap_or_else(|| crate::spec::DEFAULT_INTERFACE.into());
    let host = k.addrs(Side::Host, host_if)?;
    let ctr = k.addrs(Side::Container, &ctr_if).unwrap_or_default();
    // as (container address, host address)
    let pairs = host.iter().map(|&(h, c)| (c, h)).chain(ctr);
    for (c_addr, h_addr) in pairs {
        let (c, h) = match c_addr {
            std::net::IpAddr::V4(_) => (&mut settings.ipv4, &mut settings.host_ipv4),
            std::net::IpAddr::V6(_) => (&mut settings.ipv6, &mut settings.host_ipv6),
        };
        if c_addr != h_addr && c.is_none() {
            *c = Some(c_addr.to_string());
            *h = Some(h_addr.to_string());
        }
    }
    if settings.paranoid.is_none() && k.has_filter(host_if)? {
        settings.paranoid = Some("true".into());
    }
    if !settings.wants_network() {
        bail!("host interface {host_if} has no addresses: give the addresses (-4/-6) to check against");
    }
    Ok(())
}

pub fn run(a: CheckArgs, log: &Log) -> Result<()> {
    let t = input::args::target(a.target)?;
    let what = format!("check {t}");
    let r = target::resolve(&t).with_context(|| what.clone())?;
    let key = a.oci_id.unwrap_or(r.key);
    let mut k = System::open(Some(Netns::open(&r.netns)?)).with_context(|| what.clone())?;
    let mut settings = a.settings.0;
    if !settings.wants_network() {
        let host_if = settings
            .host_interface
            .clone()
            .unwrap_or_else(|| naming::host_ifname(&key));
        derive(&mut k, &mut settings, &host_if).with_context(|| what.clone())?;
    }
    let spec = Config::new(&settings)?.for_target(r.netns, &key);
    let health = engine::check_with(&mut k, &spec, a.repair, &|s| {
        log.info(&format!("repaired: {s}"))
    });
    let problems: Vec<String> = if a.repair {
        let render =
            |e: &crate::apply::StepError| format!("not repaired: {}", crate::error::render(e));
        health.unrepaired.iter().map(render).collect()
    } else {
        health.findings.iter().map(ToString::to_string).collect()
    };
    for p in &problems {
        println!("{p}");
    }
    if !problems.is_empty() {
        bail!("{what}: {} problem(s) on {}", problems.len(), spec.host_if);
    }
    Ok(())
}
