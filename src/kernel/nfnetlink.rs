//! One exact nftables query over nfnetlink, without libnftables: does a
//! chain exist? Used on the setup path, where loading libnftables would
//! cost more than the whole setup.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::libc;

const NETLINK_NETFILTER: libc::c_int = 12;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;

fn attr(buf: &mut Vec<u8>, kind: u16, value: &str) {
    let len = 4 + value.len() + 1;
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(value.as_bytes());
    buf.push(0);
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

/// Whether chain `chain` of table `table` in nftables family `family`
/// (e.g. `NFPROTO_INET` = 1) exists in this thread's network namespace.
pub fn chain_exists(family: u8, table: &str, chain: &str) -> io::Result<bool> {
    // SAFETY: a netlink socket we own (closed on drop), plain send/recv of
    // byte buffers of the given lengths.
    let sock = unsafe {
        let fd = libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            NETLINK_NETFILTER,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        OwnedFd::from_raw_fd(fd)
    };
    let mut msg = vec![0u8; 16];
    // nfgenmsg: family, version 0, resource id 0
    msg.extend_from_slice(&[family, 0, 0, 0]);
    attr(&mut msg, NFTA_CHAIN_TABLE, table);
    attr(&mut msg, NFTA_CHAIN_NAME, chain);
    let len = msg.len() as u32;
    let kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETCHAIN;
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    msg[0..4].copy_from_slice(&len.to_ne_bytes());
    msg[4..6].copy_from_slice(&kind.to_ne_bytes());
    msg[6..8].copy_from_slice(&flags.to_ne_bytes());
    msg[8..12].copy_from_slice(&1u32.to_ne_bytes()); // sequence
                                                     // SAFETY: see above.
    let sent = unsafe { libc::send(sock.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 16384];
    let mut found = false;
    loop {
        // SAFETY: see above.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut rest = &buf[..n as usize];
        while rest.len() >= 16 {
            let mlen = u32::from_ne_bytes(rest[0..4].try_into().unwrap()) as usize;
            let mtype = u16::from_ne_bytes(rest[4..6].try_into().unwrap());
            if mlen < 16 || mlen > rest.len() {
                return Err(io::Error::other("malformed nfnetlink reply"));
            }
            if mtype == libc::NLMSG_ERROR as u16 {
                let code = i32::from_ne_bytes(rest[16..20].try_into().unwrap());
                return match -code {
                    0 => Ok(found),
                    libc::ENOENT => Ok(false),
                    e => Err(io::Error::from_raw_os_error(e)),
                };
            }
            if mtype == libc::NLMSG_DONE as u16 {
                return Ok(found);
            }
            found = true; // NEWCHAIN
            let advance = ((mlen + 3) & !3).min(rest.len());
            rest = &rest[advance..];
        }
    }
}
