//! Where messages go. The command line writes to stderr. Hook mode also
//! writes every change and every error to syslog (facility daemon, ident
//! `narwhal`), because runtimes such as crun and daemons such as conmon
//! drop a hook's stderr. Nothing here reads the environment.

use std::cell::{Cell, RefCell};
use std::io::{self, Write};
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
const SYSLOG_RETRY: Duration = Duration::from_millis(1);

pub struct Log {
    syslog: Option<RefCell<Logger<LoggerBackend, Formatter3164>>>,
    /// Why syslog is unreachable: said on stderr after an error, never
    /// before it (a runtime shows the user the first line).
    no_syslog: Option<String>,
    /// What is left of [`SYSLOG_WAIT_BUDGET`].
    wait_left: Cell<Duration>,
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
            trace: false,
            wait_left: Cell::new(SYSLOG_WAIT_BUDGET),
        }
    }

    /// A change or a result: syslog; stderr with `--trace`.
    pub fn info(&self, msg: &str) {
        let msg = &*one_line(msg);
        if let Some(s) = &self.syslog {
            self.send(s, Severity::LOG_INFO, msg);
        }
        if self.trace {
            eprintln!("{msg}");
        }
    }

    /// Something was skipped or found odd, but the run goes on.
    pub fn warn(&self, msg: &str) {
        let msg = &*one_line(msg);
        if let Some(s) = &self.syslog {
            self.send(s, Severity::LOG_WARNING, msg);
        }
        eprintln!("narwhal: warning: {msg}");
    }

    /// The run failed: one line on stderr and in syslog.
    pub fn error(&self, msg: &str) {
        let msg = &*one_line(msg);
        if let Some(s) = &self.syslog {
            self.send(s, Severity::LOG_ERR, msg);
        }
        eprintln!("narwhal: {msg}");
        if let Some(why) = &self.no_syslog {
            eprintln!("narwhal: warning: {why}");
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
        let mut l = logger.borrow_mut();
        let mut buf = Vec::new();
        if l.formatter.format(&mut buf, sev, msg).is_err() {
            return;
        }
        loop {
            let r = match &mut l.backend {
                LoggerBackend::Unix(s) => s.send(&buf).map(|_| ()),
                LoggerBackend::UnixStream(s) => s.write_all(&buf).and_then(|_| s.flush()),
                _ => Ok(()),
            };
            match r {
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock && !self.wait_left.get().is_zero() =>
                {
                    std::thread::sleep(SYSLOG_RETRY);
                    self.wait_left
                        .set(self.wait_left.get().saturating_sub(SYSLOG_RETRY));
                }
                _ => return,
            }
        }
    }
}
