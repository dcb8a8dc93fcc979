//! The `--paranoid` anti-spoofing filter: one nftables `netdev` table per
//! container, hooked on ingress of the host interface (what the container
//! sends), applied in-process through libnftables (loaded at run time, so
//! narwhal runs without it unless `--paranoid` is used).
//!
//! The ruleset text is built by [`filter_ruleset`], a pure function.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::fmt::Write as _;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};

use nix::libc;

use crate::naming::format_mac;

/// Name of the table that filters host interface `ifname`.
pub fn table_name(ifname: &str) -> String {
    format!("narwhal-{ifname}")
}

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

/// Where narwhal notes which filters it made: one empty file per filter,
/// named `<netns inode>-<ifname>`. A filter table outlives its interface
/// (the container may stop without teardown) and would attach to the next
/// interface of that name; the mark lets setup and teardown find such a
/// table with one `stat` instead of loading libnftables every time. /run is
/// emptied at boot, like the ruleset.
pub const MARK_DIR: &str = "/run/narwhal/filters";

fn mark(ifname: &str) -> io::Result<std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let ns = std::fs::metadata("/proc/thread-self/ns/net")?.ino();
    Ok(std::path::Path::new(MARK_DIR).join(format!("{ns}-{ifname}")))
}

/// Whether narwhal made a filter for `ifname` in this thread's namespace
/// that has not been removed.
pub fn is_marked(ifname: &str) -> bool {
    mark(ifname).is_ok_and(|m| m.exists())
}

/// Install the filter (mark first, so a crash never leaves an unmarked
/// table).
pub fn install(
    ifname: &str,
    mac: &[u8; 6],
    v4: Option<Ipv4Addr>,
    v6: Option<Ipv6Addr>,
) -> io::Result<()> {
    let m = mark(ifname)?;
    std::fs::create_dir_all(MARK_DIR)?;
    std::fs::write(&m, b"")?;
    // the egress hook needs Linux 5.16; older kernels get ingress only
    run(&filter_ruleset(ifname, mac, v4, v6, true))
        .or_else(|_| run(&filter_ruleset(ifname, mac, v4, v6, false)))
}

/// Remove the filter of `ifname` if narwhal made one; `Ok(false)` if not.
pub fn remove(ifname: &str) -> io::Result<bool> {
    let m = mark(ifname)?;
    if !m.exists() {
        return Ok(false);
    }
    run(&delete_ruleset(ifname))?;
    match std::fs::remove_file(&m) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(true),
    }
}

type CtxNew = unsafe extern "C" fn(u32) -> *mut c_void;
type CtxFree = unsafe extern "C" fn(*mut c_void);
type BufferError = unsafe extern "C" fn(*mut c_void) -> c_int;
type GetErrorBuffer = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type RunCmd = unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int;

const LIBNFTABLES: &CStr = c"libnftables.so.1";

unsafe fn sym<T>(lib: *mut c_void, name: &CStr) -> io::Result<T> {
    let p = libc::dlsym(lib, name.as_ptr());
    if p.is_null() {
        return Err(io::Error::other(format!(
            "libnftables lacks {}",
            name.to_string_lossy()
        )));
    }
    Ok(std::mem::transmute_copy::<*mut c_void, T>(&p))
}

/// Run an nft script in this thread's network namespace, atomically (one
/// transaction). Errors carry nft's own message.
pub fn run(script: &str) -> io::Result<()> {
    let cmd = CString::new(script).map_err(|_| io::Error::other("nft script contains NUL"))?;
    // SAFETY: dlopen/dlsym of libnftables' documented C API, used as
    // documented: a context per call, freed before returning.
    unsafe {
        let lib = libc::dlopen(LIBNFTABLES.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        if lib.is_null() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "cannot load libnftables.so.1 (install the nftables package)",
            ));
        }
        let ctx_new: CtxNew = sym(lib, c"nft_ctx_new")?;
        let ctx_free: CtxFree = sym(lib, c"nft_ctx_free")?;
        let buffer_error: BufferError = sym(lib, c"nft_ctx_buffer_error")?;
        let get_error: GetErrorBuffer = sym(lib, c"nft_ctx_get_error_buffer")?;
        let run_cmd: RunCmd = sym(lib, c"nft_run_cmd_from_buffer")?;
        let ctx = ctx_new(0);
        if ctx.is_null() {
            return Err(io::Error::other("nft_ctx_new failed"));
        }
        buffer_error(ctx);
        let rc = run_cmd(ctx, cmd.as_ptr());
        let res = if rc == 0 {
            Ok(())
        } else {
            let e = get_error(ctx);
            let msg = if e.is_null() {
                String::new()
            } else {
                CStr::from_ptr(e).to_string_lossy().into_owned()
            };
            let first = msg
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("nft command failed")
                .trim()
                .to_string();
            Err(io::Error::other(first))
        };
        ctx_free(ctx);
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_text() {
        let r = filter_ruleset(
            "nw-x",
            &[2, 0, 0, 0, 0, 2],
            Some("198.51.100.2".parse().unwrap()),
            None,
            true,
        );
        assert!(r.contains("hook ingress device \"nw-x\""));
        assert!(r.contains("policy drop"));
        assert!(r.contains("ether saddr != 02:00:00:00:00:02 drop"));
        assert!(r.contains("ip saddr != 198.51.100.2 drop"));
        assert!(
            !r.contains("ip6"),
            "no IPv6 configured: all IPv6 dropped by policy"
        );
        let r6 = filter_ruleset(
            "nw-x",
            &[2, 0, 0, 0, 0, 2],
            None,
            Some("2001:db8::2".parse().unwrap()),
            false,
        );
        assert!(r6.contains("ip6 saddr != 2001:db8::2 drop"));
        assert!(!r6.contains("egress"));
        assert!(r.contains("hook egress device \"nw-x\""));
        assert!(r.contains("ip daddr 198.51.100.2 accept"));
        assert!(!r6.contains("nd-router-advert"));
        assert!(!r6.contains("ether type ip accept"));
    }
}
