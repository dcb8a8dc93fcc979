//! Runs plans against a [`Kernel`]: setup with rollback, teardown that
//! keeps going, and a read-only check (with optional repair).

use std::fmt;
use std::io;

use nix::libc;

use crate::kernel::Kernel;
use crate::naming;
use crate::net::{Family, Side};
use crate::plan::{Owner, Step, NETNS_GRACE};

/// Whether host link `name`, a narwhal pair in the way of a setup, went
/// with its container's namespace: waits up to [`NETNS_GRACE`] for that
/// namespace to end and then for Linux to remove the pair. A stopped
/// container's pair is left to its namespace ([`Step::DelLink`]), which
/// ends a moment after the container (Linux keeps it until an RCU grace
/// period after the last socket opened in it closed, narwhal's own
/// included). `Ok(false)`: no such link, or one that stays.
pub fn outgoing_gone(k: &mut impl Kernel, name: &str) -> io::Result<bool> {
    let Some(link) = k.link(Side::Host, name)? else {
        return Ok(false);
    };
    let ours = owned(&link, &Owner::AnyNarwhal).is_ok();
    Ok(ours && k.netns_ended(&link, NETNS_GRACE)? && k.await_removal(link.index, NETNS_GRACE)?)
}

/// What applying one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The change was made.
    Done,
    /// There was nothing to do (a conditional or teardown step).
    Absent,
    /// Left to Linux: the pair goes with the container's namespace
    /// ([`Step::DelLink`] with `netns_ends`).
    ByKernel,
}

/// A step failed. Everything applied before it has been undone, or the
/// rollback report says what could not be.
#[derive(Debug)]
pub struct StepError {
    pub step: Step,
    pub source: io::Error,
    /// Hints on the likely reason, e.g. which name already exists where.
    pub notes: Vec<String>,
    /// Undo steps that ran successfully, in the order they ran.
    pub rolled_back: Vec<Step>,
    /// Undo steps that failed, with their cause.
    pub rollback_failed: Vec<(Step, io::Error)>,
}

impl StepError {
    fn new(step: &Step, source: io::Error) -> StepError {
        StepError {
            step: step.clone(),
            source,
            notes: Vec::new(),
            rolled_back: Vec::new(),
            rollback_failed: Vec::new(),
        }
    }

    /// A failed step with `source` and nothing to roll back (for tests of
    /// error mapping).
    #[cfg(test)]
    pub fn for_test(source: io::Error) -> StepError {
        StepError::new(
            &Step::DelFilter {
                ifname: "nw-x".into(),
            },
            source,
        )
    }

    /// The notes and the rollback report, as `; note: …; rolled back: …`:
    /// printed after the whole cause chain.
    pub fn tail(&self) -> String {
        let mut s = String::new();
        for n in &self.notes {
            s.push_str(&format!("; note: {n}"));
        }
        let list = |v: Vec<String>| v.join(", ");
        if !self.rolled_back.is_empty() {
            let done = self.rolled_back.iter().map(Step::to_string).collect();
            s.push_str(&format!("; rolled back: {}", list(done)));
        }
        if !self.rollback_failed.is_empty() {
            let failed = self
                .rollback_failed
                .iter()
                .map(|(u, e)| format!("{u}: {e}"))
                .collect();
            s.push_str(&format!("; ROLLBACK INCOMPLETE: {}", list(failed)));
        }
        s
    }

    /// Whether the kernel is left exactly as before the run.
    pub fn clean(&self) -> bool {
        self.rollback_failed.is_empty()
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.step)
    }
}

impl std::error::Error for StepError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// One difference between a plan and the kernel, found by a check.
#[derive(Debug)]
pub struct Finding {
    pub step: Step,
    pub problem: Problem,
}

#[derive(Debug)]
pub enum Problem {
    /// The step's effect is not there.
    Missing,
    /// It is there, but different (`what` says how).
    Wrong(String),
    /// The kernel could not be asked.
    Error(io::Error),
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            Problem::Missing => write!(f, "missing: {}", self.step),
            Problem::Wrong(w) => write!(f, "wrong: {} ({w})", self.step),
            Problem::Error(e) => write!(f, "cannot check: {}: {e}", self.step),
        }
    }
}

/// Applies plans through a [`Kernel`].
pub struct Applier<'a, K: Kernel> {
    pub kernel: &'a mut K,
    /// Called after each step that changed something (trace, logs).
    pub on_step: &'a dyn Fn(&Step),
    /// Test-only failure injection: fail before the N-th (1-based)
    /// unconditional step of a setup.
    pub fail_at: Option<usize>,
    /// Test-only: stop the process (SIGSTOP) before the N-th step, so a
    /// test can signal it mid-setup.
    pub pause_at: Option<usize>,
    /// Asked before each setup step: `Some(why)` stops the setup there and
    /// rolls back (a termination signal arrived).
    pub interrupted: &'a dyn Fn() -> Option<String>,
    /// Problems that did not stop the run (said by the caller).
    pub warnings: Vec<String>,
}

/// Errors that mean "that object is not there".
fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENODEV | libc::ENOENT | libc::ESRCH)
    )
}

impl<'a, K: Kernel> Applier<'a, K> {
    pub fn new(kernel: &'a mut K, on_step: &'a dyn Fn(&Step)) -> Self {
        Applier {
            kernel,
            on_step,
            fail_at: None,
            pause_at: None,
            interrupted: &|| None,
            warnings: Vec::new(),
        }
    }

    /// Apply `steps` in order. On failure, undo what was applied (newest
    /// first) and return the error with the rollback report.
    pub fn up(&mut self, steps: &[Step]) -> Result<(), Box<StepError>> {
        let mut undo = Vec::new();
        let mut counted = 0;
        for step in steps {
            if !step.is_conditional() {
                counted += 1;
            }
            let unconditional = !step.is_conditional();
            if self.pause_at == Some(counted) && unconditional {
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
            }
            let res = if let Some(why) = (self.interrupted)() {
                Err(io::Error::new(io::ErrorKind::Interrupted, why))
            } else if self.fail_at == Some(counted) && unconditional {
                Err(io::Error::other("injected failure (NARWHAL_FAIL_STEP)"))
            } else {
                self.apply(step)
            };
            match res {
                Ok(Outcome::Done) => {
                    (self.on_step)(step);
                    undo.extend(step.undo());
                }
                // (ByKernel is teardown's only)
                Ok(Outcome::Absent | Outcome::ByKernel) => {}
                Err(source) => {
                    let mut e = StepError::new(step, source);
                    e.notes = self.explain(step, &e.source);
                    self.rollback(undo, &mut e);
                    return Err(Box::new(e));
                }
            }
        }
        Ok(())
    }

    /// Run every teardown step, whatever fails; report each step's outcome
    /// and every error. Missing objects are no error.
    pub fn down(&mut self, steps: &[Step]) -> (Vec<(Step, Outcome)>, Vec<StepError>) {
        let (mut outcomes, mut errors) = (Vec::new(), Vec::new());
        for step in steps {
            match self.apply(step) {
                Ok(o) => {
                    if o == Outcome::Done {
                        (self.on_step)(step);
                    }
                    outcomes.push((step.clone(), o));
                }
                Err(e) => errors.push(StepError::new(step, e)),
            }
        }
        (outcomes, errors)
    }

    fn apply(&mut self, step: &Step) -> io::Result<Outcome> {
        let k = &mut *self.kernel;
        let done = |r: io::Result<()>| r.map(|()| Outcome::Done);
        match step {
            Step::CreateVeth { veth, .. } => match k.create_veth(veth) {
                // the name's last holder is on its way out: wait, once
                Err(e)
                    if e.raw_os_error() == Some(libc::EEXIST)
                        && outgoing_gone(k, &veth.host).unwrap_or(false) =>
                {
                    done(k.create_veth(veth))
                }
                r => done(r),
            },
            Step::SetAlias { ifname, alias } => done(k.set_alias(Side::Host, ifname, alias)),
            // a stale filter never blocks a container: say so and go on
            Step::DelStaleFilter { ifname } => match k.has_filter(ifname).and_then(|there| {
                if there {
                    k.del_filter(ifname)
                } else {
                    Ok(false)
                }
            }) {
                Ok(true) => Ok(Outcome::Done),
                Ok(false) => Ok(Outcome::Absent),
                Err(e) => {
                    self.warnings.push(format!(
                        "{step}: {e} (the link is set up; remove the table by hand: nft delete table netdev {})",
                        naming::filter_table(ifname)
                    ));
                    Ok(Outcome::Absent)
                }
            },
            Step::EnsureSourceCheck { .. } => match k.ensure_source_check()? {
                true => Ok(Outcome::Done),
                false => Ok(Outcome::Absent),
            },
            Step::ReleaseSourceCheck { except } => match k.release_source_check(except)? {
                true => Ok(Outcome::Done),
                false => Ok(Outcome::Absent),
            },
            Step::AddFilter(f) => done(k.add_filter(f)),
            Step::Sysctl { side, sysctl } => match k.set_sysctl(*side, sysctl) {
                // no IPv6 in this kernel: disabling it is already done
                Err(e)
                    if sysctl.family == Family::V6
                        && sysctl.name == "disable_ipv6"
                        && sysctl.value == "1"
                        && e.raw_os_error() == Some(libc::ENOENT)
                        && !k.link(*side, &sysctl.ifname).is_ok_and(|l| l.is_none()) =>
                {
                    Ok(Outcome::Absent)
                }
                r => done(r),
            },
            Step::LinkUp { side, ifname } => done(k.set_up(*side, ifname)),
            Step::AddAddr { side, addr } => done(k.add_addr(*side, addr)),
            Step::AddNeigh { side, neigh } => done(k.add_neigh(*side, neigh)),
            Step::AddRoute { side, route } => done(k.add_route(*side, route)),
            Step::DelLink {
                ifname,
                owner,
                netns_ends,
            } => {
                let Some(link) = k.link(Side::Host, ifname)? else {
                    return Ok(Outcome::Absent);
                };
                if let Err(why) = owned(&link, owner) {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        NotOurs(why),
                    ));
                }
                if *netns_ends {
                    return Ok(Outcome::ByKernel);
                }
                match k.del_link(Side::Host, ifname) {
                    // removed by a concurrent remove/poststop since the lookup
                    Err(e) if is_absent(&e) => Ok(Outcome::Absent),
                    r => done(r),
                }
            }
            Step::DelFilter { ifname } => match k.del_filter(ifname)? {
                true => Ok(Outcome::Done),
                false => Ok(Outcome::Absent),
            },
        }
    }

    /// Hints for the operator: which name exists where, disabled IPv6.
    fn explain(&mut self, step: &Step, cause: &io::Error) -> Vec<String> {
        let mut notes = Vec::new();
        let k = &mut *self.kernel;
        match (step, cause.raw_os_error()) {
            (Step::CreateVeth { veth, .. }, Some(libc::EEXIST)) => {
                match k.link(Side::Host, &veth.host) {
                    Ok(Some(l)) => {
                        let owner = match l
                            .alias
                            .as_deref()
                            .and_then(|a| a.strip_prefix(naming::ALIAS_PREFIX))
                        {
                            Some(key) => format!(
                                "narwhal's, for '{key}'; remove it first: narwhal remove --host-interface {}",
                                veth.host
                            ),
                            None => "not narwhal's; choose another host interface name".to_string(),
                        };
                        notes.push(format!(
                            "host interface {} already exists in the host namespace ({owner})",
                            veth.host
                        ));
                    }
                    _ => {
                        if let Ok(Some(_)) = k.link(Side::Container, &veth.peer) {
                            notes.push(format!(
                                "interface {} already exists in the container namespace \
                                 (start the container without a network: docker --net=none, podman --network none)",
                                veth.peer
                            ));
                        }
                    }
                }
            }
            (Step::Sysctl { sysctl, .. }, Some(libc::ENOENT)) if sysctl.family == Family::V6 => {
                if !std::path::Path::new("/proc/sys/net/ipv6").exists() {
                    notes.push("IPv6 is not available in this kernel (ipv6.disable=1?)".into());
                } else {
                    notes.push(format!(
                        "interface {} vanished (was the container stopped?)",
                        sysctl.ifname
                    ));
                }
            }
            (Step::AddAddr { addr, .. }, Some(libc::EACCES | libc::EPERM))
                if addr.local.is_ipv6() =>
            {
                notes.push(format!(
                    "IPv6 may be disabled on {0} (net.ipv6.conf.{0}.disable_ipv6=1)",
                    addr.ifname
                ));
            }
            (Step::Sysctl { sysctl, .. }, Some(libc::ENOENT))
                if sysctl.name == "force_forwarding" =>
            {
                notes.push(
                    "this kernel has no per-interface IPv6 forwarding (Linux 6.17+): leave \
                     forwarding off for this container and set net.ipv6.conf.all.forwarding=1"
                        .into(),
                );
            }
            (Step::AddRoute { .. }, Some(libc::EEXIST)) => {
                notes.push(
                    "the route exists already (is the address used by another container?)".into(),
                );
            }
            (_, Some(libc::EPERM)) if !nix::unistd::geteuid().is_root() => {
                notes.push("narwhal needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)".into());
            }
            _ => {}
        }
        notes
    }

    fn rollback(&mut self, undo: Vec<Step>, e: &mut StepError) {
        for u in undo.into_iter().rev() {
            match self.apply(&u) {
                Ok(_) => e.rolled_back.push(u),
                Err(err) => e.rollback_failed.push((u, err)),
            }
        }
    }

    /// Verify each step's effect; return what is missing or wrong.
    pub fn check(&mut self, steps: &[Step]) -> Vec<Finding> {
        let mut findings = Vec::new();
        for step in steps {
            let problem = match self.verify(step) {
                Ok(None) => continue,
                Ok(Some(p)) => p,
                Err(e) => Problem::Error(e),
            };
            let fatal = matches!(step, Step::CreateVeth { .. });
            findings.push(Finding {
                step: step.clone(),
                problem,
            });
            if fatal {
                break; // without the link, nothing else can be there
            }
        }
        findings
    }

    fn verify(&mut self, step: &Step) -> io::Result<Option<Problem>> {
        let k = &mut *self.kernel;
        let missing = |there: bool| (!there).then_some(Problem::Missing);
        Ok(match step {
            Step::CreateVeth { veth, .. } => {
                let host = k.link(Side::Host, &veth.host)?;
                let peer = k.link(Side::Container, &veth.peer)?;
                match (host, peer) {
                    (Some(h), Some(p)) => {
                        let mut wrong = Vec::new();
                        if h.mac.as_deref() != Some(&veth.host_mac[..]) {
                            wrong.push(format!("{} (host) has another MAC", veth.host));
                        }
                        if p.mac.as_deref() != Some(&veth.peer_mac[..]) {
                            wrong.push(format!("{} (container) has another MAC", veth.peer));
                        }
                        for (l, side) in [(&h, "host"), (&p, "container")] {
                            if !l.noarp {
                                wrong.push(format!("{} ({side}) answers ARP", l.name));
                            }
                        }
                        (!wrong.is_empty()).then(|| Problem::Wrong(wrong.join(", ")))
                    }
                    _ => Some(Problem::Missing),
                }
            }
            Step::SetAlias { ifname, alias } => {
                let l = k.link(Side::Host, ifname)?;
                missing(l.and_then(|l| l.alias).as_deref() == Some(alias.as_str()))
            }
            Step::DelStaleFilter { .. }
            | Step::DelLink { .. }
            | Step::DelFilter { .. }
            | Step::ReleaseSourceCheck { .. } => None,
            Step::AddFilter(f) => missing(k.has_filter(&f.ifname)?),
            Step::EnsureSourceCheck { .. } => missing(k.has_source_check()?),
            Step::Sysctl { side, sysctl } => match k.sysctl(*side, sysctl) {
                Ok(v) if v == sysctl.value => None,
                Ok(v) => Some(Problem::Wrong(format!("is {v}"))),
                // no IPv6 in the kernel at all: disabled, as asked
                Err(e)
                    if e.raw_os_error() == Some(libc::ENOENT)
                        && sysctl.value == "1"
                        && sysctl.name == "disable_ipv6" =>
                {
                    None
                }
                Err(e) => return Err(e),
            },
            Step::LinkUp { side, ifname } => match k.link(*side, ifname)? {
                Some(l) => missing(l.up),
                None if ifname == "lo" => None,
                None => Some(Problem::Missing),
            },
            Step::AddAddr { side, addr } => missing(k.has_addr(*side, addr)?),
            Step::AddNeigh { side, neigh } => missing(k.has_neigh(*side, neigh)?),
            Step::AddRoute { side, route } => missing(k.has_route(*side, route)?),
        })
    }

    /// Re-apply the steps of `findings` that can be re-applied in place
    /// (everything but the link itself), without touching what is right.
    /// Returns the steps that could not be repaired.
    pub fn repair(&mut self, findings: &[Finding]) -> Vec<StepError> {
        let mut failed = Vec::new();
        for f in findings {
            let r = match (&f.step, &f.problem) {
                (Step::CreateVeth { .. }, _) => Err(io::Error::other(
                    "the link itself is missing or wrong; remove and set up again",
                )),
                (step, _) => self.apply(step),
            };
            match r {
                Ok(_) => (self.on_step)(&f.step),
                Err(e) => failed.push(StepError::new(&f.step, e)),
            }
        }
        failed
    }
}

/// Teardown refused to delete a link that is not narwhal's (or not this
/// container's): the cause inside the step's `io::Error`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotOurs(pub String);

impl StepError {
    /// Why teardown refused the link, if that is what failed.
    pub fn not_ours(&self) -> Option<&NotOurs> {
        self.source
            .get_ref()
            .and_then(|e| e.downcast_ref::<NotOurs>())
    }
}

/// Whether `link` may be deleted as `owner`'s link.
fn owned(link: &crate::net::Link, owner: &Owner) -> Result<(), String> {
    if *owner == Owner::ThisRun {
        return Ok(());
    }
    if link.kind.as_deref() != Some("veth") {
        return Err(format!(
            "it is not a veth ({})",
            link.kind.as_deref().unwrap_or("unknown kind")
        ));
    }
    match (owner, link.alias.as_deref()) {
        (Owner::Key(k), Some(a)) if a == naming::alias(k) => Ok(()),
        // killed between creating the link and naming it: the MAC tells
        (Owner::Key(k), None) if link.mac.as_deref() == Some(&naming::host_mac(k)[..]) => Ok(()),
        (Owner::AnyNarwhal, Some(a)) if a.starts_with(naming::ALIAS_PREFIX) => Ok(()),
        (_, Some(a)) if a.starts_with(naming::ALIAS_PREFIX) => {
            Err(format!("it belongs to another container ({a})"))
        }
        _ => Err("narwhal did not create it (no narwhal: alias)".into()),
    }
}

#[cfg(test)]
mod tests {
    //! The applier against the recording fake kernel: no root needed.
    use super::*;
    use crate::kernel::fake::Fake;
    use crate::net::Link;
    use crate::plan::{plan_down, plan_up};
    use crate::settings::Settings;
    use crate::spec::Spec;
    use std::time::Duration;

    fn spec(paranoid: bool) -> Spec {
        let s = Settings {
            ipv4: Some("198.51.100.2".into()),
            ipv6: Some("2001:db8::2".into()),
            paranoid: paranoid.then(|| "true".into()),
            ..Default::default()
        };
        Spec::new("/proc/42/ns/net".into(), "42", &s).unwrap()
    }

    fn up(k: &mut Fake, spec: &Spec) -> Result<(), Box<StepError>> {
        Applier::new(k, &|_| {}).up(&plan_up(spec))
    }

    #[test]
    fn setup_then_check_finds_nothing_and_teardown_leaves_nothing() {
        let mut k = Fake::new();
        up(&mut k, &spec(true)).unwrap();
        assert!(k.links.len() == 2 && k.filters.len() == 1, "{k:?}");
        let findings = Applier::new(&mut k, &|_| {}).check(&plan_up(&spec(true)));
        assert!(findings.is_empty(), "{findings:?}");
        let (outcomes, errors) =
            Applier::new(&mut k, &|_| {}).down(&plan_down("nw-42", Owner::Key("42".into()), false));
        assert!(errors.is_empty());
        assert!(outcomes.iter().all(|(_, o)| *o == Outcome::Done));
        assert_eq!(
            k.links.len() + k.objects.len() + k.filters.len(),
            0,
            "{k:?}"
        );
    }

    /// Teardown of a container whose namespace ends with it: narwhal
    /// leaves the pair to Linux (deleting nothing, waiting for nothing) once
    /// the link is known to be its own; otherwise it deletes the link. The
    /// filter goes either way.
    #[test]
    fn teardown_leaves_the_pair_to_the_kernel_when_the_namespace_ends() {
        let owner = || Owner::Key("42".into());
        for (netns_ends, want) in [(true, Outcome::ByKernel), (false, Outcome::Done)] {
            let mut k = Fake::new();
            up(&mut k, &spec(true)).unwrap();
            let index = k.links[&(0, "nw-42".into())].index;
            k.calls.clear();
            let (outcomes, errors) =
                Applier::new(&mut k, &|_| {}).down(&plan_down("nw-42", owner(), netns_ends));
            let what = format!("netns_ends {netns_ends}: {:?}", k.calls);
            assert!(errors.is_empty(), "{what}");
            assert_eq!(outcomes[0].1, want, "{what}");
            assert_eq!(outcomes[1].1, Outcome::Done, "the filter goes: {what}");
            let deleted = k.calls.iter().any(|c| c.contains("link del"));
            assert_eq!(deleted, !netns_ends, "{what}");
            assert!(!k.calls.iter().any(|c| c.contains("await")), "{what}");
            if netns_ends {
                // what Linux then does when the namespace ends
                assert_eq!(k.links.len(), 2, "the pair is Linux's to remove: {what}");
                k.netns_ended.insert("nw-42".into());
                assert!(k.await_removal(index, Duration::ZERO).unwrap());
            }
            assert_eq!(
                k.links.len() + k.objects.len() + k.filters.len(),
                0,
                "{what}"
            );
        }
        // someone else's link of that name is refused, not left to Linux
        let mut k = Fake::new();
        up(&mut k, &spec(false)).unwrap();
        let (_, errors) =
            Applier::new(&mut k, &|_| {}).down(&plan_down("nw-42", Owner::Key("43".into()), true));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].source.kind(), io::ErrorKind::PermissionDenied);
    }

    /// A setup whose host interface name is held by a narwhal pair that
    /// goes with its namespace (a stopped container's) waits for it and
    /// succeeds; a pair whose namespace lives on still stops it, after the
    /// grace, with nothing changed.
    #[test]
    fn setup_waits_for_a_pair_that_goes_with_its_namespace() {
        for ended in [true, false] {
            let mut k = Fake::new();
            up(&mut k, &spec(false)).unwrap();
            if ended {
                k.netns_ended.insert("nw-42".into());
            }
            k.calls.clear();
            let r = up(&mut k, &spec(false));
            let what = format!("ended {ended}: {:?}", k.calls);
            assert!(
                k.calls.iter().any(|c| c.contains("await the end")),
                "{what}"
            );
            if ended {
                r.unwrap();
                let adds = k.calls.iter().filter(|c| c.contains("link add")).count();
                assert_eq!(adds, 2, "created again once the old pair went: {what}");
            } else {
                let e = r.unwrap_err();
                assert_eq!(e.source.raw_os_error(), Some(libc::EEXIST), "{what}");
                assert!(!k.calls.iter().any(|c| c.contains("del")), "{what}");
            }
            assert_eq!(k.links.len(), 2, "one pair: {what}");
        }
    }

    #[test]
    fn a_failure_at_any_step_rolls_back_newest_first_to_an_empty_kernel() {
        let steps = plan_up(&spec(true));
        let n = steps.iter().filter(|s| !s.is_conditional()).count();
        for i in 1..=n {
            let mut k = Fake::new();
            let mut a = Applier::new(&mut k, &|_| {});
            a.fail_at = Some(i);
            let e = a.up(&steps).expect_err("injected");
            assert!(e.clean(), "step {i}: {}", e.tail());
            let undone: Vec<String> = e.rolled_back.iter().map(Step::to_string).collect();
            let release =
                "host: nft delete table inet narwhal (unless another narwhal link uses it)";
            let want: &[&str] = match i {
                1 => &[],
                2 => &["host: link del nw-42"],
                // the source check was made by this run: released too
                3 => &[release, "host: link del nw-42"],
                // newest first
                _ => &[
                    "host: nft delete table netdev narwhal-nw-42",
                    release,
                    "host: link del nw-42",
                ],
            };
            assert_eq!(undone, want, "step {i}");
            assert_eq!(
                k.links.len() + k.objects.len() + k.filters.len(),
                0,
                "step {i}: {k:?}"
            );
        }
    }

    #[test]
    fn a_kernel_error_names_the_step_and_keeps_the_os_error_as_source() {
        let mut k = Fake::failing("container: route add", libc::ENETUNREACH);
        let e = up(&mut k, &spec(false)).unwrap_err();
        assert!(e
            .step
            .to_string()
            .starts_with("container: route add default via 169.254.0.1"));
        let src = std::error::Error::source(&e).unwrap();
        assert_eq!(
            src.to_string(),
            io::Error::from_raw_os_error(libc::ENETUNREACH).to_string()
        );
        assert_eq!(
            e.tail(),
            "; rolled back: host: nft delete table inet narwhal (unless another narwhal link uses it), host: link del nw-42"
        );
        assert!(k.links.is_empty());
    }

    #[test]
    fn an_existing_host_name_is_explained_and_nothing_else_is_touched() {
        let mut k = Fake::new();
        let alias = Some("narwhal:other".to_string());
        k.add_link(
            Side::Host,
            "nw-42",
            Link {
                kind: Some("veth".into()),
                alias,
                ..Link::default()
            },
        );
        k.filters.insert("nw-42".into()); // the running container's filter
        let before = k.clone();
        let e = up(&mut k, &spec(false)).unwrap_err();
        assert_eq!(e.source.raw_os_error(), Some(libc::EEXIST));
        assert_eq!(
            e.notes,
            ["host interface nw-42 already exists in the host namespace (narwhal's, for 'other'; \
              remove it first: narwhal remove --host-interface nw-42)"]
        );
        assert!(e.rolled_back.is_empty());
        // a failed run changes nothing, not even the other container's filter
        assert_eq!(
            (k.links, k.filters, k.objects),
            (before.links, before.filters, before.objects)
        );
    }

    #[test]
    fn teardown_keeps_going_and_reports_every_error() {
        let mut k = Fake::new();
        up(&mut k, &spec(true)).unwrap();
        k.fail = Some(("host: link del".into(), libc::EBUSY));
        let (outcomes, errors) =
            Applier::new(&mut k, &|_| {}).down(&plan_down("nw-42", Owner::Key("42".into()), false));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].step.to_string(), "host: link del nw-42");
        // the filter went although the link could not be deleted
        assert_eq!(outcomes.len(), 1);
        assert!(k.filters.is_empty());
    }

    #[test]
    fn teardown_tolerates_what_is_already_gone_and_refuses_foreign_links() {
        let mut k = Fake::new();
        let (outcomes, errors) =
            Applier::new(&mut k, &|_| {}).down(&plan_down("nw-42", Owner::Key("42".into()), false));
        assert!(errors.is_empty());
        assert!(outcomes.iter().all(|(_, o)| *o == Outcome::Absent));

        k.add_link(
            Side::Host,
            "nw-42",
            Link {
                kind: Some("veth".into()),
                ..Link::default()
            },
        );
        let (_, errors) =
            Applier::new(&mut k, &|_| {}).down(&plan_down("nw-42", Owner::Key("42".into()), false));
        assert_eq!(
            errors[0].not_ours().unwrap().0,
            "narwhal did not create it (no narwhal: alias)"
        );
        assert!(k.links.contains_key(&(0, "nw-42".into())));

        // killed before the alias was written: the key's MAC is proof enough
        let mac = Some(naming::host_mac("42").to_vec());
        k.add_link(
            Side::Host,
            "nw-42",
            Link {
                kind: Some("veth".into()),
                mac,
                ..Link::default()
            },
        );
        let (_, errors) =
            Applier::new(&mut k, &|_| {}).down(&plan_down("nw-42", Owner::Key("42".into()), false));
        assert!(errors.is_empty());
        assert!(k.links.is_empty());
    }

    #[test]
    fn check_reports_what_a_flap_removed_and_repair_restores_only_that() {
        let mut k = Fake::new();
        let s = spec(false);
        up(&mut k, &s).unwrap();
        // a flap: routes and neighbours of the host end are gone
        k.objects
            .retain(|(side, l, t)| !(*side == 0 && l == "nw-42" && !t.starts_with("addr")));
        let steps = plan_up(&s);
        let findings = Applier::new(&mut k, &|_| {}).check(&steps);
        let text: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
        assert_eq!(
            text,
            [
                format!(
                    "missing: host: neigh add 2001:db8::2 lladdr {} nud permanent dev nw-42",
                    crate::net::format_mac(&naming::container_mac("42"))
                ),
                format!(
                    "missing: host: neigh add 198.51.100.2 lladdr {} nud permanent dev nw-42",
                    crate::net::format_mac(&naming::container_mac("42"))
                ),
                "missing: host: route add 198.51.100.2/32 dev nw-42 src 169.254.0.1".to_string(),
                "missing: host: route add 2001:db8::2/128 dev nw-42".to_string(),
            ]
        );
        let calls_before = k.calls.len();
        let failed = Applier::new(&mut k, &|_| {}).repair(&findings);
        assert!(failed.is_empty());
        assert_eq!(
            k.calls.len() - calls_before,
            4,
            "only the missing items were re-applied"
        );
        assert!(Applier::new(&mut k, &|_| {}).check(&steps).is_empty());
    }
}
