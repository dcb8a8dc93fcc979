//! Where messages go. The command line writes to stderr. Hook mode also
//! writes every change and every error to syslog (facility daemon, ident
//! `narwhal`), because runtimes such as crun and daemons such as conmon
//! drop a hook's stderr. Nothing here reads the environment.

use std::cell::{Cell, RefCell};
use std::io::{self, Write};
use std::os::fd::AsFd;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::path::Path;
use std::time::Duration;

use syslog::{Facility, Formatter3164, LogFormat, Logger, LoggerBackend, Severity};

/// `msg` with every control character escaped (`\n`, `\u{1b}`), so that a
/// message stays one line and cannot drive the operator's terminal,
/// whatever hostile value it quotes.
pub fn one_line(msg: &str) -> std::borrow::Cow<'_, str> {
    if !msg.chars().any(char::is_control) {
        return msg.into();
    }
    msg.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// How long one run may wait, in total, for a full syslog socket before it
/// drops messages: a stalled syslog daemon must not stall container start.
const SYSLOG_WAIT_BUDGET: Duration = Duration::from_millis(500);
/// The longest single wait for a full syslog socket (re-checked after).
const SYSLOG_RETRY: Duration = Duration::from_millis(50);

pub struct Log {
    syslog: Option<RefCell<Logger<LoggerBackend, Formatter3164>>>,
    /// Why syslog is unreachable: said on stderr after an error, never
    /// before it (a runtime shows the user the first line).
    no_syslog: Option<String>,
    /// What is left of [`SYSLOG_WAIT_BUDGET`].
    wait_left: Cell<Duration>,
    /// Formatted info messages not sent yet: sent together (one
    /// `sendmmsg`) before a warning or an error and when the run ends, so
    /// a run of thirty steps costs one system call, not thirty.
    pending: RefCell<Vec<Vec<u8>>>,
    /// Print info lines (steps) on stderr too (`--trace`).
    pub trace: bool,
}

fn formatter() -> Formatter3164 {
    Formatter3164 {
        facility: Facility::LOG_DAEMON,
        hostname: None,
        process: "narwhal".into(),
        pid: std::process::id(),
    }
}

impl Log {
    /// Command line: stderr only.
    pub fn stderr(trace: bool) -> Log {
        Log {
            syslog: None,
            no_syslog: None,
            trace,
            wait_left: Cell::new(SYSLOG_WAIT_BUDGET),
            pending: RefCell::default(),
        }
    }

    /// Hook mode: syslog at `socket` (usually /dev/log) and stderr. If
    /// syslog is unreachable, go on; an error line says so after it.
    pub fn hook(socket: &Path) -> Log {
        let mut no_syslog = None;
        let syslog = match syslog::unix_custom(formatter(), socket) {
            Ok(l) => {
                // never block: see `send`
                let _ = match &l.backend {
                    LoggerBackend::Unix(s) => s.set_nonblocking(true),
                    LoggerBackend::UnixStream(s) => s.get_ref().set_nonblocking(true),
                    _ => Ok(()),
                };
                Some(RefCell::new(l))
            }
            Err(e) => {
                no_syslog = Some(format!("no syslog at {}: {e}", socket.display()));
                None
            }
        };
        Log {
            syslog,
            no_syslog,
            pending: RefCell::default(),
            trace: false,
            wait_left: Cell::new(SYSLOG_WAIT_BUDGET),
        }
    }

    /// A change or a result: syslog (sent with the next flush); stderr
    /// with `--trace`.
    pub fn info(&self, msg: &str) {
        let msg = &*one_line(msg);
        if let Some(s) = &self.syslog {
            let mut buf = Vec::new();
            if s.borrow_mut()
                .formatter
                .format(&mut buf, Severity::LOG_INFO, msg)
                .is_ok()
            {
                self.pending.borrow_mut().push(buf);
            }
        }
        if self.trace {
            eprintln!("{msg}");
        }
    }

    /// Something was skipped or found odd, but the run goes on.
    pub fn warn(&self, msg: &str) {
        let msg = &*one_line(msg);
        self.flush();
        if let Some(s) = &self.syslog {
            self.send(s, Severity::LOG_WARNING, msg);
        }
        eprintln!("narwhal: warning: {msg}");
    }

    /// The run failed: one line on stderr and in syslog.
    pub fn error(&self, msg: &str) {
        let msg = &*one_line(msg);
        self.flush();
        if let Some(s) = &self.syslog {
            self.send(s, Severity::LOG_ERR, msg);
        }
        eprintln!("narwhal: {msg}");
        if let Some(why) = &self.no_syslog {
            eprintln!("narwhal: warning: {why}");
        }
    }

    /// Send the pending info messages, in order: on a datagram socket
    /// with `sendmmsg` (as many as fit at once), else one by one.
    pub fn flush(&self) {
        let msgs = std::mem::take(&mut *self.pending.borrow_mut());
        let Some(logger) = &self.syslog else { return };
        let mut rest: &[Vec<u8>] = &msgs;
        while !rest.is_empty() {
            let sent = {
                let l = logger.borrow();
                match &l.backend {
                    LoggerBackend::Unix(s) => send_many(s, rest),
                    _ => Err(io::Error::from(io::ErrorKind::Unsupported)),
                }
            };
            match sent {
                Ok(n) if n > 0 => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // full: `send` waits within the budget for the first
                    self.send_formatted(logger, &rest[0]);
                    rest = &rest[1..];
                }
                _ => {
                    for m in rest {
                        self.send_formatted(logger, m);
                    }
                    return;
                }
            }
        }
    }

    /// Send one message on the non-blocking socket; while the socket is
    /// full, retry until this run's wait budget is spent, then drop.
    fn send(
        &self,
        logger: &RefCell<Logger<LoggerBackend, Formatter3164>>,
        sev: Severity,
        msg: &str,
    ) {
        let mut buf = Vec::new();
        if logger
            .borrow_mut()
            .formatter
            .format(&mut buf, sev, msg)
            .is_err()
        {
            return;
        }
        self.send_formatted(logger, &buf);
    }

    fn send_formatted(&self, logger: &RefCell<Logger<LoggerBackend, Formatter3164>>, buf: &[u8]) {
        let mut l = logger.borrow_mut();
        loop {
            let r = match &mut l.backend {
                LoggerBackend::Unix(s) => s.send(buf).map(|_| ()),
                LoggerBackend::UnixStream(s) => s.write_all(buf).and_then(|_| s.flush()),
                _ => Ok(()),
            };
            match r {
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock && !self.wait_left.get().is_zero() =>
                {
                    // wait until the reader has made room (a connected
                    // datagram socket polls writable then), at most what
                    // is left of the budget
                    let start = std::time::Instant::now();
                    let fd = match &l.backend {
                        LoggerBackend::Unix(s) => Some(s.as_fd()),
                        LoggerBackend::UnixStream(s) => Some(s.get_ref().as_fd()),
                        _ => None,
                    };
                    let wait = self.wait_left.get().min(SYSLOG_RETRY);
                    match fd {
                        Some(fd) => {
                            let mut pfd = [PollFd::new(fd, PollFlags::POLLOUT)];
                            let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
                            let _ = poll(&mut pfd, PollTimeout::from(ms));
                        }
                        None => std::thread::sleep(wait),
                    }
                    let spent = start.elapsed().max(Duration::from_micros(1));
                    self.wait_left
                        .set(self.wait_left.get().saturating_sub(spent));
                }
                _ => return,
            }
        }
    }
}

impl Drop for Log {
    /// The run is over: send what is pending.
    fn drop(&mut self) {
        self.flush();
    }
}

/// `sendmmsg` of `msgs` on a connected datagram socket; how many were sent.
fn send_many(s: &std::os::unix::net::UnixDatagram, msgs: &[Vec<u8>]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let n = msgs.len().min(64);
    let mut iov: Vec<nix::libc::iovec> = msgs[..n]
        .iter()
        .map(|m| nix::libc::iovec {
            iov_base: m.as_ptr() as *mut nix::libc::c_void,
            iov_len: m.len(),
        })
        .collect();
    // SAFETY: zeroed msghdrs pointing at iovecs that outlive the call.
    let mut hdrs: Vec<nix::libc::mmsghdr> = iov
        .iter_mut()
        .map(|v| {
            let mut h: nix::libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_iov = v;
            h.msg_hdr.msg_iovlen = 1;
            h
        })
        .collect();
    // SAFETY: a socket we own, `n` valid headers.
    let r = unsafe {
        nix::libc::sendmmsg(
            s.as_raw_fd(),
            hdrs.as_mut_ptr(),
            n as nix::libc::c_uint,
            nix::libc::MSG_DONTWAIT,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}
