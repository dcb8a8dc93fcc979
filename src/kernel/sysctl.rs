//! Per-interface settings under `/proc/sys/net/ipv{4,6}/conf/IFNAME/`, in
//! one network namespace.

use std::cell::OnceCell;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::sync::Arc;

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

use super::netns::Netns;
use crate::net::Sysctl;

/// The sysctls of one namespace: this thread's (`netns: None`) or another.
pub struct Sysctls {
    netns: Option<Arc<Netns>>,
    /// `sys/net` of this namespace, opened once (see [`private_proc`]).
    dir: OnceCell<OwnedFd>,
}

/// A proc instance of narwhal's own: a new superblock (fsopen, fsconfig,
/// fsmount), attached to no mount tree, gone when narwhal exits.
///
/// Every network namespace that has ever looked up `sys/net` through one
/// proc superblock leaves an entry in one dentry hash chain, and every
/// later lookup there walks them all: through the host's `/proc`, a setup
/// on a host with 3,000 containers spent ~11 ms on these lookups alone
/// (BENCHMARKS.md, "Scaling"). A fresh superblock has a fresh chain, and
/// narwhal adds nothing to the host's. `None` where the kernel has no new
/// mount API (before Linux 5.2) or refuses it: then `/proc` is used.
fn private_proc() -> Option<&'static OwnedFd> {
    use nix::libc::{c_char, c_int, syscall, SYS_fsconfig, SYS_fsmount, SYS_fsopen};
    use std::os::fd::{AsRawFd, FromRawFd};
    static MOUNT: std::sync::OnceLock<Option<OwnedFd>> = std::sync::OnceLock::new();
    MOUNT
        .get_or_init(|| {
            const FSOPEN_CLOEXEC: c_int = 1;
            const FSCONFIG_CMD_CREATE: c_int = 6;
            const FSMOUNT_CLOEXEC: c_int = 1;
            let fd = |r: nix::libc::c_long| {
                // SAFETY: a new file descriptor the kernel just returned
                (r >= 0).then(|| unsafe { OwnedFd::from_raw_fd(r as c_int) })
            };
            // SAFETY: plain syscalls with a valid C string and null pointers
            let fs = fd(unsafe { syscall(SYS_fsopen, c"proc".as_ptr(), FSOPEN_CLOEXEC) })?;
            let null: *const c_char = std::ptr::null();
            // SAFETY: as above, on the descriptor fsopen returned
            let created = unsafe {
                syscall(
                    SYS_fsconfig,
                    fs.as_raw_fd(),
                    FSCONFIG_CMD_CREATE,
                    null,
                    null,
                    0,
                )
            };
            if created < 0 {
                return None;
            }
            // SAFETY: as above
            fd(unsafe { syscall(SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0) })
        })
        .as_ref()
}

impl Sysctls {
    pub fn new(netns: Option<Arc<Netns>>) -> Sysctls {
        Sysctls {
            netns,
            dir: OnceCell::new(),
        }
    }

    /// Run `f` with this thread in the namespace: `/proc/sys` resolves in
    /// the calling thread's namespace.
    fn in_ns<T>(&self, f: impl FnOnce(&OwnedFd) -> io::Result<T>) -> io::Result<T> {
        let body = || {
            let dir = match self.dir.get() {
                Some(d) => d,
                None => {
                    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
                    let d = match private_proc() {
                        Some(m) => openat(m, "sys/net", flags, Mode::empty())?,
                        None => nix::fcntl::open("/proc/sys/net", flags, Mode::empty())?,
                    };
                    self.dir.get_or_init(|| d)
                }
            };
            f(dir)
        };
        match &self.netns {
            None => body(),
            Some(ns) => ns.run(body).map_err(|e| io::Error::other(e.to_string()))?,
        }
    }

    fn open(&self, s: &Sysctl, flags: OFlag) -> io::Result<std::fs::File> {
        let path = format!("ipv{}/conf/{}/{}", s.family.number(), s.ifname, s.name);
        self.in_ns(|dir| {
            let fd = openat(dir, path.as_str(), flags | OFlag::O_CLOEXEC, Mode::empty())?;
            Ok(std::fs::File::from(fd))
        })
    }

    pub fn write(&self, s: &Sysctl) -> io::Result<()> {
        self.open(s, OFlag::O_WRONLY)?.write_all(s.value.as_bytes())
    }

    pub fn read(&self, s: &Sysctl) -> io::Result<String> {
        let mut v = String::new();
        self.open(s, OFlag::O_RDONLY)?.read_to_string(&mut v)?;
        Ok(v.trim().to_string())
    }
}
