//! The `--paranoid` anti-spoofing filter: one nftables `netdev` table per
//! container, hooked on ingress (and, Linux 5.16+, egress) of the host
//! interface, applied with `nft` (package nftables) as one transaction;
//! and the host-wide source check every narwhal link shares.
//!
//! The ruleset text is built by [`filter_ruleset`], a pure function.

use std::fmt::Write as _;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use crate::naming::filter_table as table_name;
use crate::net::{format_mac, Filter};

/// ICMPv6 types a container may send. Router advertisements, redirects and
/// router solicitations are not among them.
const ICMPV6_ALLOWED: &str =
    "destination-unreachable, packet-too-big, time-exceeded, parameter-problem, \
echo-request, echo-reply, mld-listener-report, mld-listener-done, mld2-listener-report, \
nd-neighbor-solicit, nd-neighbor-advert";

/// The filter for the host interface `ifname` of a container with MAC
/// `mac` and the given addresses: accept IPv4/IPv6 from that MAC with that
/// source only; drop everything else (ARP, other ethertypes, spoofed
/// sources, router advertisements). Any stale table of the same name is
/// replaced in the same transaction.
pub fn filter_ruleset(
    ifname: &str,
    mac: &[u8; 6],
    v4: Option<Ipv4Addr>,
    v6: Option<Ipv6Addr>,
    egress: bool,
) -> String {
    let t = table_name(ifname);
    let mut s = String::new();
    let _ = writeln!(s, "add table netdev {t}");
    let _ = writeln!(s, "delete table netdev {t}");
    let _ = writeln!(s, "table netdev {t} {{");
    let _ = writeln!(s, "  chain ingress {{");
    let _ = writeln!(
        s,
        "    type filter hook ingress device \"{ifname}\" priority -500; policy drop;"
    );
    let _ = writeln!(s, "    ether saddr != {} drop", format_mac(mac));
    if let Some(a) = v4 {
        let _ = writeln!(s, "    ether type ip ip saddr != {a} drop");
        let _ = writeln!(s, "    ether type ip accept");
    }
    if let Some(a) = v6 {
        let _ = writeln!(s, "    ether type ip6 ip6 saddr != {a} drop");
        let _ = writeln!(
            s,
            "    ether type ip6 meta l4proto ipv6-icmp icmpv6 type != {{ {ICMPV6_ALLOWED} }} drop"
        );
        let _ = writeln!(s, "    ether type ip6 accept");
    }
    let _ = writeln!(s, "  }}");
    if egress {
        // what the host sends the container: only IPv4/IPv6 to its own
        // addresses and MAC, nothing else (no broadcast, no other address
        // routed onto this link by mistake)
        let _ = writeln!(s, "  chain egress {{");
        let _ = writeln!(
            s,
            "    type filter hook egress device \"{ifname}\" priority -500; policy drop;"
        );
        let _ = writeln!(s, "    ether daddr != {} drop", format_mac(mac));
        if let Some(a) = v4 {
            let _ = writeln!(s, "    ether type ip ip daddr {a} accept");
        }
        if let Some(a) = v6 {
            let _ = writeln!(s, "    ether type ip6 ip6 daddr {a} accept");
        }
        let _ = writeln!(s, "  }}");
    }
    let _ = writeln!(s, "}}");
    s
}

/// Delete the filter of `ifname`, if there is one.
pub fn delete_ruleset(ifname: &str) -> String {
    let t = table_name(ifname);
    format!("add table netdev {t}\ndelete table netdev {t}\n")
}

/// Where narwhal notes which filters it made: one file per filter, holding the label of the container it is for,
/// named `<netns cookie>-<ifname>`. A filter table outlives its interface
/// (the container may stop without teardown) and would attach to the next
/// interface of that name; the mark lets setup and teardown find such a
/// table with one `stat` instead of running nft every time. The
/// namespace cookie is never reused while the machine runs (unlike an
/// inode number), so a mark never matches a later namespace. /run is
/// emptied at boot, like the ruleset.
pub const MARK_DIR: &str = "/run/narwhal/filters";

/// `SO_NETNS_COOKIE` (Linux 5.14).
const SO_NETNS_COOKIE: nix::libc::c_int = 71;

/// This thread's network namespace, as a number no other namespace gets
/// while the machine runs: its cookie, or its inode on kernels before 5.14.
/// Found once per thread: filters and their marks are only ever handled in
/// the host namespace, never inside `Netns::run`.
fn netns_id() -> io::Result<String> {
    thread_local! {
        static ID: std::cell::OnceCell<String> = const { std::cell::OnceCell::new() };
    }
    ID.with(|c| {
        if let Some(id) = c.get() {
            return Ok(id.clone());
        }
        let id = find_netns_id()?;
        Ok(c.get_or_init(|| id).clone())
    })
}

fn find_netns_id() -> io::Result<String> {
    use nix::libc;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: a datagram socket we own, closed on drop; getsockopt into a
    // properly sized u64.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd >= 0 {
            let sock = OwnedFd::from_raw_fd(fd);
            let mut cookie: u64 = 0;
            let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
            let rc = libc::getsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_NETNS_COOKIE,
                (&mut cookie as *mut u64).cast(),
                &mut len,
            );
            if rc == 0 {
                return Ok(format!("c{cookie}"));
            }
        }
    }
    use std::os::unix::fs::MetadataExt;
    Ok(format!(
        "i{}",
        std::fs::metadata("/proc/thread-self/ns/net")?.ino()
    ))
}

/// An I/O error that names the path it is about.
fn at(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn mark(ifname: &str) -> io::Result<PathBuf> {
    Ok(Path::new(MARK_DIR).join(format!("{}-{ifname}", netns_id()?)))
}

/// Whether narwhal made a filter for `ifname` in this thread's namespace
/// that has not been removed.
pub fn is_marked(ifname: &str) -> io::Result<bool> {
    let m = mark(ifname)?;
    match std::fs::symlink_metadata(&m) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(at(&m)(e)),
    }
}

/// The host interfaces of this namespace with a filter mark.
pub fn marked() -> io::Result<Vec<String>> {
    let prefix = format!("{}-", netns_id()?);
    let dir = Path::new(MARK_DIR);
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        r => r.map_err(at(dir))?,
    };
    let mut out = Vec::new();
    for e in entries {
        let name = e
            .map_err(at(dir))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if let Some(ifname) = name.strip_prefix(&prefix) {
            out.push(ifname.to_string());
        }
    }
    Ok(out)
}

/// The host interface whose filter mark says it is for `label`.
pub fn marked_for(label: &str) -> io::Result<Option<String>> {
    for ifname in marked()? {
        let m = mark(&ifname)?;
        if std::fs::read_to_string(&m).is_ok_and(|l| l == label) {
            return Ok(Some(ifname));
        }
    }
    Ok(None)
}

/// Install the filter (the mark holds its label). The mark is written first, so a crash never leaves
/// an unmarked table; if the table cannot be made, a mark this call wrote
/// is removed again (the transaction changed nothing).
pub fn install(f: &Filter) -> io::Result<()> {
    let m = mark(&f.ifname)?;
    let dir = Path::new(MARK_DIR);
    std::fs::create_dir_all(dir).map_err(at(dir))?;
    let existed = is_marked(&f.ifname)?;
    std::fs::write(&m, f.label.as_bytes()).map_err(at(&m))?;
    let (ifname, mac, v4, v6) = (&f.ifname, &f.mac, f.ipv4, f.ipv6);
    // the egress hook needs Linux 5.16; older kernels get ingress only
    let r = run(&filter_ruleset(ifname, mac, v4, v6, true))
        .or_else(|_| run(&filter_ruleset(ifname, mac, v4, v6, false)));
    if r.is_err() && !existed {
        let _ = std::fs::remove_file(&m);
    }
    r
}

/// Remove the filter of `ifname` if narwhal made one; `Ok(false)` if not.
pub fn remove(ifname: &str) -> io::Result<bool> {
    if !is_marked(ifname)? {
        return Ok(false);
    }
    run(&delete_ruleset(ifname))?;
    let m = mark(ifname)?;
    match std::fs::remove_file(&m) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(at(&m)(e)),
        _ => Ok(true),
    }
}

/// The host-wide source check, shared by every narwhal link: a packet that
/// comes in on a link of interface group [`LINK_GROUP`] must have a source
/// address whose route goes back out of that same link (strict reverse
/// path, IPv4 and IPv6), whatever `rp_filter` says. Made once per host
/// namespace (and again if a ruleset flush removed it); never removed.
pub const SOURCE_CHECK_TABLE: &str = "narwhal";
pub const SOURCE_CHECK_CHAIN: &str = "source-check";
/// The interface group of every narwhal host link.
pub use crate::net::LINK_GROUP;

pub fn source_check_ruleset() -> String {
    format!(
        "add table inet {SOURCE_CHECK_TABLE}\n\
         delete table inet {SOURCE_CHECK_TABLE}\n\
         table inet {SOURCE_CHECK_TABLE} {{\n\
         \x20 chain {SOURCE_CHECK_CHAIN} {{\n\
         \x20   type filter hook prerouting priority raw; policy accept;\n\
         \x20   meta iifgroup {LINK_GROUP} fib saddr . iif oif missing counter drop\n\
         \x20 }}\n\
         }}\n"
    )
}

/// Make sure the source check is in place; `Ok(true)` if this call made
/// it. One exact nfnetlink query when it is there (the common case).
pub fn ensure_source_check() -> io::Result<bool> {
    // the common case, without the lock: a rollback that removes the check
    // looks for narwhal links again afterwards and puts it back if one
    // appeared meanwhile (see `System::release_source_check`)
    if has_source_check()? {
        return Ok(false);
    }
    let _lock = source_check_lock()?;
    if has_source_check()? {
        return Ok(false);
    }
    run(&source_check_ruleset())?;
    Ok(true)
}

/// The script that removes the source check.
pub fn delete_source_check() -> String {
    format!("add table inet {SOURCE_CHECK_TABLE}\ndelete table inet {SOURCE_CHECK_TABLE}\n")
}

/// An exclusive lock around making and removing the source check, so two
/// first setups do not both make it and a rollback's removal is one step.
/// A setup that finds the check skips the lock: it created its link first,
/// and a rollback looks for other links again after removing the check.
pub fn source_check_lock() -> io::Result<nix::fcntl::Flock<std::fs::File>> {
    let dir = Path::new("/run/narwhal");
    std::fs::create_dir_all(dir).map_err(at(dir))?;
    let path = dir.join("source-check.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(at(&path))?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| at(&path)(e.into()))
}

/// Whether the source check is in place.
pub fn has_source_check() -> io::Result<bool> {
    super::nfnetlink::chain_exists(1, SOURCE_CHECK_TABLE, SOURCE_CHECK_CHAIN)
}

/// Where `nft` is looked for, in this order (a runtime runs hooks with an
/// empty environment, so PATH is not relied on).
const NFT_PATHS: [&str; 4] = [
    "/usr/sbin/nft",
    "/sbin/nft",
    "/usr/bin/nft",
    "/usr/local/sbin/nft",
];

/// Run an nft script in this thread's network namespace, atomically (one
/// transaction): `nft` from the nftables package, the script as its
/// command buffer (what `nft -f` does with a file). A child process starts
/// in the namespace of the thread that makes it. Errors carry nft's own
/// first line. narwhal itself is linked statically (it starts faster) and
/// so cannot load libnftables in-process.
pub fn run(script: &str) -> io::Result<()> {
    use std::process::{Command, Stdio};
    let Some(nft) = NFT_PATHS.iter().map(Path::new).find(|p| p.exists()) else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "nft not found in {} (install the nftables package)",
                NFT_PATHS.join(", ")
            ),
        ));
    };
    let out = Command::new(nft)
        .arg(script)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot run {}: {e} (install the nftables package)",
                    nft.display()
                ),
            )
        })?;
    if out.status.success() {
        return Ok(());
    }
    let msg = String::from_utf8_lossy(&out.stderr);
    let first = msg
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map_or_else(|| format!("nft failed ({})", out.status), str::to_string);
    Err(io::Error::other(first))
}
