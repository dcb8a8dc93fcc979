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
    /// `/proc/sys/net` of this namespace, opened once: each absolute
    /// `/proc/sys/net/...` lookup walks a list with one entry per network
    /// namespace on the machine, which grows with the number of containers.
    dir: OnceCell<OwnedFd>,
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
                    let d = nix::fcntl::open("/proc/sys/net", flags, Mode::empty())?;
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
