//! A syslog socket of the test's own: hook mode logs there
//! (`--syslog-socket PATH`), so stderr carries only the error line and the
//! test can read what was logged.
//!
//! A thread keeps reading it: an unread datagram socket fills after
//! net.unix.max_dgram_qlen (10) messages, and narwhal then drops lines.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use nix::libc;

/// One syslog message as narwhal sends it (RFC 3164 over a unix datagram
/// socket): `<PRI>Mmm dd hh:mm:ss narwhal[PID]: TEXT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub facility: u8,
    pub severity: u8,
    pub ident: String,
    pub text: String,
    pub raw: String,
}

/// syslog(3) facility LOG_DAEMON.
pub const LOG_DAEMON: u8 = 3;
pub const LOG_ERR: u8 = 3;
pub const LOG_WARNING: u8 = 4;
pub const LOG_INFO: u8 = 6;

/// Parse one RFC 3164 datagram; None if it is not one.
pub fn parse(raw: &str) -> Option<Msg> {
    let rest = raw.strip_prefix('<')?;
    let (pri, rest) = rest.split_once('>')?;
    let pri: u8 = pri.parse().ok()?;
    // "Mmm dd hh:mm:ss " is 16 bytes; then "IDENT[PID]: TEXT".
    let rest = rest.get(16..)?;
    let (tag, text) = rest.split_once(": ")?;
    let ident = tag.split_once('[').map_or(tag, |(i, _)| i);
    Some(Msg {
        facility: pri >> 3,
        severity: pri & 7,
        ident: ident.to_string(),
        text: text.to_string(),
        raw: raw.to_string(),
    })
}

/// The raw lines of `msgs`, one per line, for failure messages.
pub fn texts(msgs: &[Msg]) -> String {
    msgs.iter().map(|m| format!("  {}\n", m.raw)).collect()
}

pub struct Syslog {
    sock: Arc<UnixDatagram>,
    /// Received and not yet taken by `drain`/`wait_for`.
    got: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

/// Move every queued datagram into `got`, under its lock: a concurrent
/// `drain` never misses one that was received but not yet stored.
fn pump(sock: &UnixDatagram, got: &Mutex<Vec<String>>) {
    let mut got = got.lock().unwrap();
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = sock.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
}

impl Syslog {
    pub fn new() -> Syslog {
        let dir = super::temp_dir("log");
        let path = dir.path().join("log");
        let sock =
            UnixDatagram::bind(&path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
        sock.set_nonblocking(true).unwrap();
        let sock = Arc::new(sock);
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (sock, got, stop) = (sock.clone(), got.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    pump(&sock, &got);
                    // sleep until a datagram comes (or 50 ms, to see `stop`)
                    let mut pfd = libc::pollfd {
                        fd: sock.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(&mut pfd, 1, 50) };
                }
            })
        };
        Syslog {
            sock,
            got,
            stop,
            reader: Some(reader),
            path,
            _dir: dir,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every datagram received since the last `drain`/`wait_for`, raw.
    pub fn drain(&self) -> Vec<String> {
        pump(&self.sock, &self.got);
        std::mem::take(&mut *self.got.lock().unwrap())
    }

    /// The messages received since the last `drain`/`wait_for`, parsed,
    /// without taking them. Panics on a message that is not RFC 3164.
    pub fn messages(&self) -> Vec<Msg> {
        pump(&self.sock, &self.got);
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|m| parse_or_panic(m))
            .collect()
    }

    /// Wait until a message whose text satisfies `pred` has arrived, then
    /// take and return every message since the last `drain`/`wait_for`.
    /// Panics naming `what` (with what did arrive) if none comes.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> Vec<Msg> {
        super::wait_until(super::WAIT, &format!("a syslog message {what}"), || {
            let m = self.messages();
            if m.iter().any(|m| pred(&m.text)) {
                Ok(())
            } else {
                Err(format!("got:\n{}", texts(&m)))
            }
        });
        self.drain().iter().map(|m| parse_or_panic(m)).collect()
    }
}

fn parse_or_panic(raw: &str) -> Msg {
    parse(raw).unwrap_or_else(|| panic!("not a syslog message: {raw:?}"))
}

impl Drop for Syslog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}
