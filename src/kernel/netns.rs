//! Network namespace handles: open, verify, and run code inside one.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::libc;
use nix::sched::{setns, CloneFlags};

/// `NS_GET_NSTYPE` ioctl from linux/nsfs.h: `_IO(0xb7, 0x3)`.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("open network namespace {path}")]
    Open { path: PathBuf, source: io::Error },
    #[error("process {pid} has exited (it is a zombie): its network namespace {path} is gone")]
    Exited { pid: String, path: PathBuf },
    #[error("{path} is not a network namespace")]
    NotNetns { path: PathBuf },
    #[error("{path} is the host's own network namespace; give a container's namespace")]
    IsHost { path: PathBuf },
    #[error("enter network namespace {path}")]
    Enter { path: PathBuf, source: io::Error },
}

/// For `/proc/PID/ns/net` that cannot be opened while `/proc/PID` is
/// there: the process is a zombie.
fn exited(path: &Path) -> Option<NetnsError> {
    let s = path.to_str()?;
    let pid = s.strip_prefix("/proc/")?.strip_suffix("/ns/net")?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
    (state == "Z").then(|| NetnsError::Exited {
        pid: pid.to_string(),
        path: path.into(),
    })
}

impl NetnsError {
    /// The namespace does not exist (any more).
    pub fn is_missing(&self) -> bool {
        matches!(self, NetnsError::Exited { .. })
            || matches!(self, NetnsError::Open { source, .. }
            if matches!(source.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH)))
    }
}

/// An open network namespace.
#[derive(Debug)]
pub struct Netns {
    file: File,
    path: PathBuf,
    /// The namespace of the thread that opened this handle.
    home: File,
}

impl Netns {
    /// Open `path` and check that it is a network namespace other than the
    /// one this thread is in.
    pub fn open(path: &Path) -> Result<Netns, NetnsError> {
        // O_NONBLOCK: a FIFO must not make us wait for a writer forever
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .map_err(|source| {
                exited(path).unwrap_or(NetnsError::Open {
                    path: path.into(),
                    source,
                })
            })?;
        use nix::sys::statfs::{fstatfs, NSFS_MAGIC};
        let is_nsfs = fstatfs(&file).is_ok_and(|st| st.filesystem_type() == NSFS_MAGIC);
        // SAFETY: an ioctl without arguments on an fd we own.
        let is_netns = is_nsfs
            && unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE as _) } == libc::CLONE_NEWNET;
        if !is_netns {
            return Err(NetnsError::NotNetns { path: path.into() });
        }
        let home = File::open("/proc/thread-self/ns/net").map_err(|source| NetnsError::Open {
            path: "/proc/thread-self/ns/net".into(),
            source,
        })?;
        let own = home.metadata().map_err(|source| NetnsError::Open {
            path: "/proc/thread-self/ns/net".into(),
            source,
        })?;
        let ns = Netns {
            file,
            path: path.into(),
            home,
        };
        let meta = ns.file.metadata().map_err(|source| NetnsError::Open {
            path: path.into(),
            source,
        })?;
        if meta.dev() == own.dev() && meta.ino() == own.ino() {
            return Err(NetnsError::IsHost { path: path.into() });
        }
        Ok(ns)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Run `f` with the calling thread inside this namespace, then return
    /// the thread to the namespace it was in when this handle was opened
    /// (call it from that thread). Sockets opened by `f` stay in this
    /// namespace; `/proc/sys/net` paths opened by `f` are this namespace's.
    /// If the way back fails, the process aborts rather than go on in the
    /// wrong namespace. (A thread per call would be cleaner, but costs a
    /// context switch each time, which a busy host makes expensive.)
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> Result<T, NetnsError> {
        setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| NetnsError::Enter {
            path: self.path.clone(),
            source: e.into(),
        })?;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        if let Err(e) = setns(self.home.as_fd(), CloneFlags::CLONE_NEWNET) {
            eprintln!("narwhal: cannot return to the host network namespace: {e}");
            std::process::abort();
        }
        r.map_err(|p| std::panic::resume_unwind(p))
    }
}
