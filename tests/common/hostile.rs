//! Helpers for the hostile-input, fault-injection and concurrency tests:
//! running narwhal with stdin and environment, a private syslog socket,
//! the one-line error contract, a whole-host state snapshot (links,
//! addresses, routes, neighbours, nftables ruleset, /run/netns), OCI state
//! documents, and a small deterministic PRNG.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::common::{self, NsProc};

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(common::unique(&format!("narwhal-{tag}-")));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A syslog socket of our own: hook mode logs here (`--syslog-socket`), so
/// stderr carries only the error line and the test can read what was logged.
/// A thread keeps reading it: an unread datagram socket fills after
/// net.unix.max_dgram_qlen (10) messages, and narwhal then blocks in send.
pub struct Syslog {
    sock: Arc<UnixDatagram>,
    got: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
    dir: TempDir,
}

/// Move every queued datagram into `got` (under its lock, so that a
/// concurrent `drain` never misses one that was received but not stored).
fn pump(sock: &UnixDatagram, got: &Mutex<Vec<String>>) {
    let mut got = got.lock().unwrap();
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = sock.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
}

impl Syslog {
    pub fn new() -> Syslog {
        let dir = TempDir::new("log");
        let sock = UnixDatagram::bind(dir.path().join("log")).expect("bind syslog socket");
        sock.set_nonblocking(true).unwrap();
        let sock = Arc::new(sock);
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (sock, got, stop) = (sock.clone(), got.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    pump(&sock, &got);
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            })
        };
        Syslog {
            sock,
            got,
            stop,
            reader: Some(reader),
            dir,
        }
    }
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("log")
    }
    /// Every datagram received since the last call.
    pub fn drain(&self) -> Vec<String> {
        pump(&self.sock, &self.got);
        std::mem::take(&mut *self.got.lock().unwrap())
    }
}

impl Drop for Syslog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// Run the narwhal binary with `args`, feeding `stdin` (closed at once when
/// `None`) and setting `env`. A writer thread feeds stdin, so a narwhal that
/// stops reading early (oversized input) cannot block the test.
pub fn run_narwhal<S: AsRef<OsStr>>(
    args: &[S],
    stdin: Option<&[u8]>,
    env: &[(&str, &str)],
) -> Output {
    let mut cmd = common::narwhal();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    spawn_feed(cmd, stdin)
}

/// Spawn `cmd` with piped stdout/stderr, feed `stdin`, wait for the output.
pub fn spawn_feed(mut cmd: Command, stdin: Option<&[u8]>) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut pipe = child.stdin.take().unwrap();
    let data = stdin.map(<[u8]>::to_vec).unwrap_or_default();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&data); // EPIPE when narwhal stops reading: fine
    });
    let out = child.wait_with_output().expect("wait for narwhal");
    writer.join().unwrap();
    out
}

/// The one-line error contract: stdout empty, exactly one line on stderr,
/// starting with `narwhal: `. Returns the line without the prefix.
pub fn one_line_error(out: &Output) -> Result<String, String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.stdout.is_empty() {
        return Err(format!(
            "stdout is not empty: {:?}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    let Some(body) = stderr.strip_suffix('\n') else {
        return Err(format!(
            "stderr is not one newline-terminated line: {stderr:?}"
        ));
    };
    if body.contains('\n') || body.contains('\r') {
        return Err(format!("stderr has more than one line: {stderr:?}"));
    }
    match body.strip_prefix("narwhal: ") {
        Some(m) => Ok(m.to_string()),
        None => Err(format!(
            "stderr does not start with 'narwhal: ': {stderr:?}"
        )),
    }
}

/// Everything observable in the calling thread's network namespace and on
/// the machine that narwhal could plausibly change: links, addresses,
/// routes, neighbours, the nftables ruleset, and the names in /run/netns.
pub fn host_state() -> String {
    let mut s = common::snapshot(None);
    let nft = common::run_ok(Command::new("nft").args(["list", "ruleset"]));
    s.push_str(&format!("nft: {nft}\n"));
    let mut names: Vec<String> = match std::fs::read_dir("/run/netns") {
        Ok(d) => d
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) => vec![format!("<{e}>")],
    };
    names.sort();
    s.push_str(&format!("/run/netns: {names:?}\n"));
    s
}

pub use crate::common::first_difference;

/// Names of the links in a namespace (the thread's own with `None`).
pub fn link_names(ns: Option<&NsProc>) -> Vec<String> {
    common::ip_json(ns, &["link", "show"])
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .collect()
}

/// An OCI state document. `pid: None` leaves the field out.
pub fn oci_state(
    id: &str,
    status: &str,
    pid: Option<i64>,
    bundle: &str,
    annotations: &[(&str, &str)],
) -> Vec<u8> {
    let a: serde_json::Map<String, serde_json::Value> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), (*v).into()))
        .collect();
    let mut v = serde_json::json!({
        "ociVersion": "1.0.2", "id": id, "status": status, "bundle": bundle,
    });
    if let Some(p) = pid {
        v["pid"] = p.into();
    }
    if !a.is_empty() {
        v["annotations"] = a.into();
    }
    serde_json::to_vec(&v).unwrap()
}

/// The modified EUI-64 link-local address the kernel gives an interface
/// with MAC `mac` ("02:10:e6:8f:d5:c7" -> "fe80::10:e6ff:fe8f:d5c7").
pub fn eui64_link_local(mac: &str) -> String {
    let b: Vec<u8> = mac
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect();
    let a = std::net::Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([b[0] ^ 0x02, b[1]]),
        u16::from_be_bytes([b[2], 0xff]),
        u16::from_be_bytes([0xfe, b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
    );
    a.to_string()
}

/// The addresses of link `ifname` as a sorted list of "local peer/plen scope".
pub fn addrs_of(addr_dump: &serde_json::Value, ifname: &str) -> Option<Vec<String>> {
    let link = addr_dump
        .as_array()?
        .iter()
        .find(|l| l["ifname"] == ifname)?;
    let mut v: Vec<String> = link["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{} peer {}/{} scope {}",
                a["local"].as_str().unwrap_or("?"),
                a["address"].as_str().unwrap_or("-"),
                a["prefixlen"],
                a["scope"].as_str().unwrap_or("?")
            )
        })
        .collect();
    v.sort();
    Some(v)
}

/// xorshift64*: deterministic, seedable, good enough to spread delays.
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Prng {
        // splitmix64 of the seed, so that small seeds give unrelated streams
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Prng((z ^ (z >> 31)) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The kernel thread id of the caller (its /proc/TID/ns/net is the
/// thread's own namespace, e.g. the private host).
pub fn gettid() -> i32 {
    nix::unistd::gettid().as_raw()
}
