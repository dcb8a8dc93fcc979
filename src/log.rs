//! Where messages go. The command line writes to stderr. Hook mode also
//! writes every change and every error to syslog (facility daemon, ident
//! `narwhal`), because runtimes such as crun and daemons such as conmon
//! drop a hook's stderr. Nothing here reads the environment.

use std::cell::RefCell;
use std::path::Path;

use syslog::{Facility, Formatter3164, Logger, LoggerBackend};

pub struct Log {
    syslog: Option<RefCell<Logger<LoggerBackend, Formatter3164>>>,
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
            trace,
        }
    }

    /// Hook mode: syslog at `socket` (usually /dev/log) and stderr. If
    /// syslog is unreachable, say so once on stderr and go on.
    pub fn hook(socket: &Path) -> Log {
        let syslog = match syslog::unix_custom(formatter(), socket) {
            Ok(l) => Some(RefCell::new(l)),
            Err(e) => {
                eprintln!("narwhal: warning: no syslog at {}: {e}", socket.display());
                None
            }
        };
        Log {
            syslog,
            trace: false,
        }
    }

    /// A change or a result: syslog; stderr with `--trace`.
    pub fn info(&self, msg: &str) {
        if let Some(s) = &self.syslog {
            let _ = s.borrow_mut().info(msg);
        }
        if self.trace {
            eprintln!("{msg}");
        }
    }

    /// Something was skipped or found odd, but the run goes on.
    pub fn warn(&self, msg: &str) {
        if let Some(s) = &self.syslog {
            let _ = s.borrow_mut().warning(msg);
        }
        eprintln!("narwhal: warning: {msg}");
    }

    /// The run failed: one line on stderr and in syslog.
    pub fn error(&self, msg: &str) {
        if let Some(s) = &self.syslog {
            let _ = s.borrow_mut().err(msg);
        }
        eprintln!("narwhal: {msg}");
    }
}
