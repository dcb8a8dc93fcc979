//! One engine for every mode: open the kernel, plan, apply. The command
//! line, the OCI hook, the CNI plugin and `narwhal runtime` all end here.

use crate::apply::{self, Applier, Finding, Outcome, StepError};
use crate::error::Error;
use crate::kernel::netns::Netns;
use crate::kernel::{Kernel, System};
use crate::net::{Holder, Side};
use crate::plan::{plan_down, plan_up, Owner, Step};
use crate::spec::Spec;
use std::net::IpAddr;

/// Test-only hooks, read from the environment in debug builds only
/// (release builds ignore the variables): `NARWHAL_FAIL_STEP=N` fails a
/// setup before its N-th step; `NARWHAL_PAUSE_STEP=N` stops the process
/// (SIGSTOP) there.
fn test_hook(var: &str) -> Option<usize> {
    if !cfg!(debug_assertions) {
        return None;
    }
    std::env::var(var).ok()?.parse().ok()
}

/// Termination signals held back while a setup runs: the setup stops at
/// the next step and rolls back instead of dying half-configured.
struct HoldSignals {
    set: nix::sys::signal::SigSet,
    old: nix::sys::signal::SigSet,
}

impl HoldSignals {
    fn new() -> HoldSignals {
        use nix::sys::signal::{SigSet, SigmaskHow, Signal};
        let mut set = SigSet::empty();
        for s in [
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGQUIT,
        ] {
            set.add(s);
        }
        let mut old = SigSet::empty();
        let _ =
            nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old));
        HoldSignals { set, old }
    }

    /// The held signal that arrived, if any.
    fn arrived(&self) -> Option<nix::sys::signal::Signal> {
        // SAFETY: sigpending fills a sigset_t we own; sigismember reads it.
        unsafe {
            let mut p: nix::libc::sigset_t = std::mem::zeroed();
            if nix::libc::sigpending(&mut p) != 0 {
                return None;
            }
            self.set
                .iter()
                .find(|s| nix::libc::sigismember(&p, *s as nix::libc::c_int) == 1)
        }
    }
}

impl Drop for HoldSignals {
    /// Take what arrived off the pending set (the setup answered it: it
    /// rolled back, or it was complete), then restore the mask.
    fn drop(&mut self) {
        while self.arrived().is_some() && self.set.wait().is_ok() {}
        use nix::sys::signal::SigmaskHow;
        let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

/// Refuse a container address that is already held: by the host itself
/// (a local address on any interface) or by another narwhal link (its
/// host route; one on its way out is waited for). Exact lookups only; the
/// exclusive route creation at the end of the plan settles races between
/// simultaneous requests.
pub fn check_free(kernel: &mut impl Kernel, spec: &Spec) -> Result<(), Error> {
    for addr in spec.container_addrs() {
        let mut holder = held_by(kernel, addr)?;
        if let Some(Holder::Link { name, .. }) = &holder {
            if *name != spec.host_if && apply::outgoing_gone(kernel, name).unwrap_or(false) {
                holder = held_by(kernel, addr)?;
            }
        }
        match &holder {
            // our own link: setting up twice fails at the link, with a hint
            Some(Holder::Link { name, .. }) if *name == spec.host_if => {}
            None => {}
            Some(h) => {
                return Err(Error::AddressInUse {
                    addr,
                    holder: h.to_string(),
                    side: Side::Host,
                })
            }
        }
    }
    Ok(())
}

/// Who holds `addr` on the host.
fn held_by(kernel: &mut impl Kernel, addr: IpAddr) -> Result<Option<Holder>, Error> {
    kernel
        .holder(Side::Host, addr)
        .map_err(Error::io(format!("look up who holds {addr} (host)")))
}

/// Configure the container namespace of `spec`. On failure, or when a
/// termination signal arrives meanwhile, nothing that this run changed
/// remains (the error carries the rollback report). Returns warnings:
/// problems that did not stop the setup.
pub fn up(spec: &Spec, on_step: &dyn Fn(&Step)) -> Result<Vec<String>, Error> {
    let signals = HoldSignals::new();
    let mut kernel = System::open(Some(Netns::open(&spec.netns)?))?;
    check_free(&mut kernel, spec)?;
    let interrupted = || signals.arrived().map(|s| format!("interrupted by {s}"));
    let mut applier = Applier::new(&mut kernel, on_step);
    applier.fail_at = test_hook("NARWHAL_FAIL_STEP");
    applier.pause_at = test_hook("NARWHAL_PAUSE_STEP");
    applier.interrupted = &interrupted;
    let r = applier.up(&plan_up(spec));
    let warnings = std::mem::take(&mut applier.warnings);
    r?;
    Ok(warnings)
}

/// What [`down`] removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub ifname: String,
    /// The host link: `Done` narwhal deleted it, `ByKernel` it is left to
    /// Linux, which removes it with the container's namespace, `Absent`
    /// there was none.
    pub link: Outcome,
    /// The `--paranoid` filter table was there and is gone now.
    pub filter: bool,
}

impl std::fmt::Display for Removed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let table = crate::naming::filter_table(&self.ifname);
        let name = &self.ifname;
        match (self.link, self.filter) {
            (Outcome::Done, true) => write!(f, "removed {name} and its filter {table}"),
            (Outcome::Done, false) => write!(f, "removed {name}"),
            (Outcome::ByKernel, true) => write!(
                f,
                "{name} goes with the container's namespace; removed its filter {table}"
            ),
            (Outcome::ByKernel, false) => write!(f, "{name} goes with the container's namespace"),
            (Outcome::Absent, true) => {
                write!(f, "removed filter {table} ({name} was already gone)")
            }
            (Outcome::Absent, false) => write!(f, "nothing to remove: no host interface {name}"),
        }
    }
}

/// Remove host interface `ifname` if it is `owner`'s, and its filter.
/// Every step runs whatever fails; a missing link or filter is success
/// (the container may have stopped and taken the link along).
/// `netns_ends`: the container's namespace ends with the container; the
/// pair is left to Linux, which removes it with the namespace (see
/// [`Step::DelLink`]).
pub fn down(
    ifname: &str,
    owner: Owner,
    netns_ends: bool,
    on_step: &dyn Fn(&Step),
) -> Result<Removed, Error> {
    let mut kernel = System::open(None)?;
    down_with(&mut kernel, ifname, owner, netns_ends, on_step)
}

/// [`down`] against any kernel.
pub fn down_with(
    kernel: &mut impl Kernel,
    ifname: &str,
    owner: Owner,
    netns_ends: bool,
    on_step: &dyn Fn(&Step),
) -> Result<Removed, Error> {
    let plan = plan_down(ifname, owner, netns_ends);
    let (outcomes, mut errors) = Applier::new(kernel, on_step).down(&plan);
    if errors.len() == 1 {
        let e = errors.remove(0);
        if let Some(why) = e.not_ours() {
            return Err(Error::NotOurs {
                ifname: ifname.to_string(),
                why: why.0.clone(),
            });
        }
        return Err(Error::Teardown(vec![e]));
    }
    if !errors.is_empty() {
        return Err(Error::Teardown(errors));
    }
    let outcome = |f: fn(&Step) -> bool| {
        (outcomes.iter().find(|(s, _)| f(s))).map_or(Outcome::Absent, |(_, o)| *o)
    };
    Ok(Removed {
        ifname: ifname.to_string(),
        link: outcome(|s| matches!(s, Step::DelLink { .. })),
        filter: outcome(|s| matches!(s, Step::DelFilter { .. })) == Outcome::Done,
    })
}

/// What `check` found, and (with repair) what could not be repaired.
#[derive(Debug)]
pub struct Health {
    pub findings: Vec<Finding>,
    pub unrepaired: Vec<StepError>,
}

/// Compare `spec`'s plan with the kernel, both sides; with `repair`,
/// re-apply what is missing or wrong, leaving what is right untouched.
pub fn check(spec: &Spec, repair: bool, on_step: &dyn Fn(&Step)) -> Result<Health, Error> {
    let mut kernel = System::open(Some(Netns::open(&spec.netns)?))?;
    Ok(check_with(&mut kernel, spec, repair, on_step))
}

/// [`check`] against any kernel.
pub fn check_with(
    kernel: &mut impl Kernel,
    spec: &Spec,
    repair: bool,
    on_step: &dyn Fn(&Step),
) -> Health {
    let mut applier = Applier::new(kernel, on_step);
    let findings = applier.check(&plan_up(spec));
    let unrepaired = if repair {
        applier.repair(&findings)
    } else {
        Vec::new()
    };
    Health {
        findings,
        unrepaired,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::fake::Fake;
    use crate::settings::Settings;

    fn spec(key: &str) -> Spec {
        let s = Settings {
            ipv4: Some("198.51.100.2".into()),
            ipv6: Some("2001:db8::2".into()),
            ..Default::default()
        };
        Spec::new(format!("/proc/{key}/ns/net").into(), key, &s).unwrap()
    }

    /// An address held by another container's pair is refused, unless that
    /// pair is on its way out (its namespace has ended): then the check
    /// waits for Linux to remove it and the address is free.
    #[test]
    fn an_address_of_a_pair_on_its_way_out_is_free_once_it_is_gone() {
        for ended in [true, false] {
            let mut k = Fake::new();
            Applier::new(&mut k, &|_| {})
                .up(&plan_up(&spec("41")))
                .unwrap();
            if ended {
                k.netns_ended.insert("nw-41".into());
            }
            let r = check_free(&mut k, &spec("42"));
            match ended {
                true => {
                    r.unwrap();
                    assert!(k.links.is_empty(), "{k:?}");
                }
                false => assert!(
                    matches!(r, Err(Error::AddressInUse { ref holder, .. }) if holder.contains("nw-41")),
                    "{r:?}"
                ),
            }
        }
    }
}
