//! Runs a plan against the kernel, undoing everything on failure.

use std::fmt;
use std::io;
use std::os::fd::BorrowedFd;

use nix::libc;

use crate::naming::ALIAS_PREFIX;
use crate::netlink::{NetOps, VethSpec};
use crate::plan::{Side, Step};

/// The inverse of an applied step whose effect would outlive the veth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// Delete the host end of the pair: both ends go, with everything on them.
    DelLink { ifname: String },
    /// Delete the `--paranoid` filter table (it outlives the link).
    DelFilter { ifname: String },
}

impl fmt::Display for Undo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Undo::DelLink { ifname } => write!(f, "host: link del {ifname}"),
            Undo::DelFilter { ifname } => {
                write!(
                    f,
                    "host: nft delete table netdev {}",
                    crate::nft::table_name(ifname)
                )
            }
        }
    }
}

/// A step failed. Everything applied before it has been undone (or the
/// rollback says what could not be).
#[derive(Debug)]
pub struct StepError {
    /// The failed step, in `ip`-like words with its side.
    pub step: String,
    pub cause: io::Error,
    /// Hints on the likely reason, e.g. which name already exists where.
    pub notes: Vec<String>,
    /// Undo steps that ran successfully.
    pub rolled_back: Vec<String>,
    /// Undo steps that failed, with their cause.
    pub rollback_failed: Vec<String>,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.step, self.cause)?;
        for n in &self.notes {
            write!(f, "; note: {n}")?;
        }
        if !self.rolled_back.is_empty() {
            write!(f, "; rolled back: {}", self.rolled_back.join(", "))?;
        }
        if !self.rollback_failed.is_empty() {
            write!(
                f,
                "; ROLLBACK INCOMPLETE: {}",
                self.rollback_failed.join(", ")
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for StepError {}

/// Applies steps in the host and container namespaces.
pub struct Applier<'a, H: NetOps, C: NetOps> {
    pub host: &'a H,
    pub container: &'a C,
    /// The container namespace, for creating the veth peer inside it.
    pub container_ns: BorrowedFd<'a>,
    /// Called after each applied step (trace output, logs).
    pub on_step: &'a dyn Fn(&Step),
}

/// Test-only failure injection: `NARWHAL_FAIL_STEP=N` fails before step N
/// (1-based). Compiled into debug builds only.
fn injected_failure(n: usize) -> Option<io::Error> {
    if cfg!(debug_assertions) {
        let want = std::env::var("NARWHAL_FAIL_STEP")
            .ok()?
            .parse::<usize>()
            .ok()?;
        if want == n {
            return Some(io::Error::other("injected failure (NARWHAL_FAIL_STEP)"));
        }
    }
    None
}

impl<'a, H: NetOps, C: NetOps> Applier<'a, H, C> {
    /// Apply `steps` in order. On failure, undo what was applied (newest
    /// first) and return the error with the rollback report.
    pub async fn apply(&self, steps: &[Step]) -> Result<(), StepError> {
        let mut undo = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let res = match injected_failure(i + 1) {
                Some(e) => Err(e),
                None => self.apply_one(step, &mut undo).await,
            };
            match res {
                Ok(()) => (self.on_step)(step),
                Err(cause) => {
                    let notes = self.explain(step, &cause).await;
                    let (rolled_back, rollback_failed) = self.rollback(undo).await;
                    return Err(StepError {
                        step: step.to_string(),
                        cause,
                        notes,
                        rolled_back,
                        rollback_failed,
                    });
                }
            }
        }
        Ok(())
    }

    async fn apply_one(&self, step: &Step, undo: &mut Vec<Undo>) -> io::Result<()> {
        match step {
            Step::CreateVeth {
                host,
                container,
                host_mac,
                container_mac,
                mtu,
                ..
            } => {
                let v = VethSpec {
                    host,
                    host_mac,
                    peer: container,
                    peer_mac: container_mac,
                    mtu: *mtu,
                };
                self.host.create_veth(&v, self.container_ns).await?;
                undo.push(Undo::DelLink {
                    ifname: host.clone(),
                });
                Ok(())
            }
            Step::SetAlias { ifname, alias } => self.host.set_alias(ifname, alias).await,
            Step::DelStaleFilter { ifname } => self.host.del_filter(ifname).map(|_| ()),
            Step::AddFilter {
                ifname,
                mac,
                ipv4,
                ipv6,
            } => {
                self.host.add_filter(ifname, mac, *ipv4, *ipv6)?;
                undo.push(Undo::DelFilter {
                    ifname: ifname.clone(),
                });
                Ok(())
            }
            Step::Sysctl {
                side,
                family,
                ifname,
                name,
                value,
            } => {
                let r = match side {
                    Side::Host => self.host.sysctl(*family, ifname, name, value),
                    Side::Container => self.container.sysctl(*family, ifname, name, value),
                };
                match r {
                    // no IPv6 in this kernel: disabling it is already done
                    Err(e)
                        if *name == "disable_ipv6"
                            && *value == "1"
                            && e.raw_os_error() == Some(libc::ENOENT) =>
                    {
                        Ok(())
                    }
                    r => r,
                }
            }
            Step::LinkUp { side, ifname } => match side {
                Side::Host => self.host.set_up(ifname, true).await,
                Side::Container => self.container.set_up(ifname, true).await,
            },
            Step::AddAddr {
                side,
                ifname,
                local,
                peer,
                scope_link,
                noprefixroute,
            } => {
                let (l, p, s, n) = (*local, *peer, *scope_link, *noprefixroute);
                match side {
                    Side::Host => self.host.add_addr(ifname, l, p, s, n).await,
                    Side::Container => self.container.add_addr(ifname, l, p, s, n).await,
                }
            }
            Step::AddNeigh {
                side,
                ifname,
                ip,
                mac,
            } => match side {
                Side::Host => self.host.add_neigh(ifname, *ip, mac).await,
                Side::Container => self.container.add_neigh(ifname, *ip, mac).await,
            },
            Step::AddRoute {
                side,
                ifname,
                dst,
                via,
                src,
            } => match side {
                Side::Host => self.host.add_route(ifname, *dst, *via, *src).await,
                Side::Container => self.container.add_route(ifname, *dst, *via, *src).await,
            },
        }
    }

    /// Hints for the operator: which name exists where, disabled IPv6.
    async fn explain(&self, step: &Step, cause: &io::Error) -> Vec<String> {
        let mut notes = Vec::new();
        match (step, cause.raw_os_error()) {
            (
                Step::CreateVeth {
                    host, container, ..
                },
                Some(libc::EEXIST),
            ) => match self.host.link(host).await {
                Ok(Some(l)) => {
                    let owner = match l
                        .alias
                        .as_deref()
                        .and_then(|a| a.strip_prefix(ALIAS_PREFIX))
                    {
                        Some(k) => format!("narwhal's, for '{k}'; run 'narwhal remove' first"),
                        None => "not narwhal's; choose another host interface name".to_string(),
                    };
                    notes.push(format!(
                        "host interface {host} already exists in the host namespace ({owner})"
                    ));
                }
                _ => {
                    if let Ok(Some(_)) = self.container.link(container).await {
                        notes.push(format!(
                                "interface {container} already exists in the container namespace \
                                 (start the container without a network: docker --net=none, podman --network none)"
                            ));
                    }
                }
            },
            (
                Step::Sysctl {
                    ifname,
                    family: crate::plan::Family::V6,
                    ..
                },
                Some(libc::ENOENT),
            ) => {
                if !std::path::Path::new("/proc/sys/net/ipv6").exists() {
                    notes.push("IPv6 is not available in this kernel (ipv6.disable=1?)".into());
                } else {
                    notes.push(format!(
                        "interface {ifname} vanished (was the container stopped?)"
                    ));
                }
            }
            (
                Step::AddAddr {
                    ifname,
                    local: std::net::IpAddr::V6(_),
                    ..
                },
                Some(libc::EACCES | libc::EPERM),
            ) => {
                notes.push(format!(
                    "IPv6 may be disabled on {ifname} (net.ipv6.conf.{ifname}.disable_ipv6=1)"
                ));
            }
            (Step::AddRoute { .. }, Some(libc::EEXIST)) => {
                notes.push(
                    "the route exists already (is the address used by another container?)".into(),
                );
            }
            _ => {}
        }
        notes
    }

    async fn rollback(&self, undo: Vec<Undo>) -> (Vec<String>, Vec<String>) {
        let (mut done, mut failed) = (Vec::new(), Vec::new());
        for u in undo.into_iter().rev() {
            let r = match &u {
                Undo::DelLink { ifname } => self.host.del_link(ifname).await,
                Undo::DelFilter { ifname } => self.host.del_filter(ifname).map(|_| ()),
            };
            match r {
                Ok(()) => done.push(u.to_string()),
                Err(e) => failed.push(format!("{u}: {e}")),
            }
        }
        (done, failed)
    }
}
