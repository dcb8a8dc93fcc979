//! Helpers for the anti-spoofing tests (tests/spoof.rs): raw packet
//! sockets opened inside a chosen network namespace, hand-made Ethernet
//! frames (IPv4/UDP, IPv6/UDP, ARP, ICMPv6 router advertisement) with
//! correct checksums, UDP receivers, and reading the nftables tables back.
//!
//! Only libc (through nix) and std: no packet library.
#![allow(dead_code)]

use std::ffi::CString;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;

use nix::libc;

pub type Mac = [u8; 6];

pub const BROADCAST: Mac = [0xff; 6];
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
/// IEEE 802 local experimental ethertype: no protocol handler in Linux.
pub const ETH_P_ODD: u16 = 0x88b5;

/// `sll_pkttype` of a frame the interface itself sent.
pub const PACKET_OUTGOING: u8 = 4;

pub fn parse_mac(s: &str) -> Mac {
    let v: Vec<u8> = s
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap_or_else(|_| panic!("bad MAC {s}")))
        .collect();
    v.try_into().unwrap_or_else(|_| panic!("bad MAC {s}"))
}

pub fn fmt_mac(m: &Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

// ---------------------------------------------------------------------------
// namespaces

/// Run `f` on a fresh thread that has joined the network namespace of
/// process `pid` (sockets made there stay in that namespace). `None`: the
/// caller's namespace (a thread spawned from the test thread inherits its
/// private host).
///
/// The thread is pinned to the CPU it starts on. The kernel handles a frame
/// sent through a veth on the sender's CPU, in that CPU's queue, first in
/// first out: so whatever a pinned thread sends arrives (or is dropped)
/// in the order it was sent, and a marker sent last is the last to arrive.
pub fn in_netns<T: Send + 'static>(pid: Option<u32>, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        if let Some(pid) = pid {
            let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
                .unwrap_or_else(|e| panic!("open /proc/{pid}/ns/net: {e}"));
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns into the netns of {pid}: {e}"));
        }
        // SAFETY: no arguments; returns the caller's CPU or -1.
        let cpu = unsafe { libc::sched_getcpu() };
        assert!(cpu >= 0, "sched_getcpu: {}", io::Error::last_os_error());
        let mut one = nix::sched::CpuSet::new();
        one.set(cpu as usize).unwrap();
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &one)
            .unwrap_or_else(|e| panic!("pin the sending thread to CPU {cpu}: {e}"));
        f()
    })
    .join()
    .expect("netns thread panicked")
}

// ---------------------------------------------------------------------------
// AF_PACKET

/// One received frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// `sll_pkttype`: PACKET_HOST, _BROADCAST, _MULTICAST, _OTHERHOST, _OUTGOING.
    pub pkttype: u8,
    pub data: Vec<u8>,
}

impl Frame {
    pub fn dst(&self) -> Mac {
        self.data[0..6].try_into().unwrap()
    }
    pub fn src(&self) -> Mac {
        self.data[6..12].try_into().unwrap()
    }
    pub fn ethertype(&self) -> u16 {
        u16::from_be_bytes([self.data[12], self.data[13]])
    }
    pub fn contains(&self, marker: &[u8]) -> bool {
        contains(&self.data, marker)
    }
    pub fn incoming(&self) -> bool {
        self.pkttype != PACKET_OUTGOING
    }
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// An `AF_PACKET`/`SOCK_RAW` socket bound to one interface of the
/// namespace it was opened in.
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
    pub ifname: String,
}

fn cvt(r: libc::c_int, what: &str) -> io::Result<libc::c_int> {
    if r < 0 {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(r)
    }
}

fn sockaddr_ll(ifindex: i32, protocol: u16) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = ifindex;
    sll
}

impl PacketSocket {
    /// A socket on `ifname` in the calling thread's namespace. `sniff`:
    /// capture every frame in and out of it (ETH_P_ALL); otherwise the
    /// socket only sends.
    pub fn open(ifname: &str, sniff: bool) -> io::Result<PacketSocket> {
        let name = CString::new(ifname).unwrap();
        // SAFETY: plain syscalls on a descriptor we own.
        unsafe {
            let ifindex = libc::if_nametoindex(name.as_ptr());
            if ifindex == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no interface {ifname} here"),
                ));
            }
            // protocol 0: receive nothing until bound to one interface
            let raw = cvt(
                libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0),
                "socket(AF_PACKET)",
            )?;
            let fd = OwnedFd::from_raw_fd(raw);
            let proto = if sniff { libc::ETH_P_ALL as u16 } else { 0 };
            let sll = sockaddr_ll(ifindex as i32, proto);
            cvt(
                libc::bind(
                    fd.as_raw_fd(),
                    &sll as *const _ as *const libc::sockaddr,
                    size_of::<libc::sockaddr_ll>() as u32,
                ),
                &format!("bind AF_PACKET to {ifname}"),
            )?;
            if sniff {
                let size: libc::c_int = 4 << 20;
                let _ = libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    &size as *const _ as *const libc::c_void,
                    size_of::<libc::c_int>() as u32,
                );
            }
            Ok(PacketSocket {
                fd,
                ifindex: ifindex as i32,
                ifname: ifname.to_string(),
            })
        }
    }

    /// Send one complete Ethernet frame as it is.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let mut sll = sockaddr_ll(self.ifindex, u16::from_be_bytes([frame[12], frame[13]]));
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: the buffer and address outlive the call.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
                &sll as *const _ as *const libc::sockaddr,
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        assert_eq!(n as usize, frame.len(), "short send on {}", self.ifname);
        Ok(())
    }

    /// Read captured frames until `done` holds for all read so far (e.g. a
    /// marker sent last has come); panics naming `what` if it never does.
    pub fn read_until(&self, what: &str, done: impl Fn(&[Frame]) -> bool) -> Vec<Frame> {
        let mut got = Vec::new();
        crate::common::wait_until(crate::common::WAIT, what, || {
            self.read_queued(&mut got);
            done(&got)
        });
        got
    }

    /// Append every frame already queued on the socket to `out`.
    fn read_queued(&self, out: &mut Vec<Frame>) {
        let mut buf = vec![0u8; 65536];
        loop {
            let mut sll = sockaddr_ll(0, 0);
            let mut len = size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: buffer and address are ours and large enough.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    &mut sll as *mut _ as *mut libc::sockaddr,
                    &mut len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::WouldBlock => return,
                    io::ErrorKind::Interrupted => continue,
                    _ => panic!("recvfrom on {}: {e}", self.ifname),
                }
            }
            if (n as usize) < 14 {
                continue;
            }
            out.push(Frame {
                pkttype: sll.sll_pkttype,
                data: buf[..n as usize].to_vec(),
            });
        }
    }
}

// ---------------------------------------------------------------------------
// UDP receivers

/// UDP sockets on one port, both families, in the namespace they were
/// opened in: `0.0.0.0:PORT` and `[::]:PORT` (IPv6 only).
pub struct UdpSink {
    pub v4: UdpSocket,
    pub v6: Option<UdpSocket>,
}

impl UdpSink {
    /// Open in the calling thread's namespace.
    pub fn open(port: u16) -> UdpSink {
        let v4 = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))
            .unwrap_or_else(|e| panic!("bind 0.0.0.0:{port}: {e}"));
        let v6 = bind_v6only(port);
        for s in [&v4, &v6] {
            s.set_nonblocking(true).unwrap();
        }
        UdpSink { v4, v6: Some(v6) }
    }

    /// Read payloads (both families) until `done` holds for all read so
    /// far; panics naming `what` if it never does.
    pub fn read_until(&self, what: &str, done: impl Fn(&[Vec<u8>]) -> bool) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        crate::common::wait_until(crate::common::WAIT, what, || {
            for s in std::iter::once(&self.v4).chain(self.v6.as_ref()) {
                while let Ok(n) = s.recv(&mut buf) {
                    got.push(buf[..n].to_vec());
                }
            }
            done(&got)
        });
        got
    }
}

fn bind_v6only(port: u16) -> UdpSocket {
    // SAFETY: plain syscalls; the descriptor is handed to UdpSocket.
    unsafe {
        let fd = libc::socket(libc::AF_INET6, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket(AF_INET6): {}", io::Error::last_os_error());
        let s = UdpSocket::from_raw_fd(fd);
        let one: libc::c_int = 1;
        let r = libc::setsockopt(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_V6ONLY,
            &one as *const _ as *const libc::c_void,
            size_of::<libc::c_int>() as u32,
        );
        assert_eq!(r, 0, "IPV6_V6ONLY: {}", io::Error::last_os_error());
        let mut sa: libc::sockaddr_in6 = zeroed();
        sa.sin6_family = libc::AF_INET6 as u16;
        sa.sin6_port = port.to_be();
        let r = libc::bind(
            fd,
            &sa as *const _ as *const libc::sockaddr,
            size_of::<libc::sockaddr_in6>() as u32,
        );
        assert_eq!(r, 0, "bind [::]:{port}: {}", io::Error::last_os_error());
        s
    }
}

// ---------------------------------------------------------------------------
// frames

/// The Internet checksum (RFC 1071) of `data`, folded, not complemented.
fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u32::from(*b) << 8;
    }
    acc
}

fn finish(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

pub fn checksum(data: &[u8]) -> u16 {
    finish(sum16(data, 0))
}

pub fn ether(dst: Mac, src: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len().max(46));
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    if f.len() < 60 {
        f.resize(60, 0); // minimum Ethernet frame (without FCS)
    }
    f
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// An IPv4 packet carrying UDP, header and UDP checksums filled in.
pub fn ipv4_udp(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut u = udp(sport, dport, payload);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(u.len() as u16).to_be_bytes());
    let mut c = finish(sum16(&u, sum16(&pseudo, 0)));
    if c == 0 {
        c = 0xffff;
    }
    u[6..8].copy_from_slice(&c.to_be_bytes());

    let total = 20 + u.len();
    let mut ip = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0x4e,
        0x57, // identification
        0x40,
        0, // DF
        ttl,
        17,
        0,
        0,
    ];
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let hc = checksum(&ip);
    ip[10..12].copy_from_slice(&hc.to_be_bytes());
    ip.extend_from_slice(&u);
    ip
}

fn ipv6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    hop_limit: u8,
    mut l4: Vec<u8>,
    csum_at: usize,
) -> Vec<u8> {
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&(l4.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, next]);
    let mut c = finish(sum16(&l4, sum16(&pseudo, 0)));
    if c == 0 && next == 17 {
        c = 0xffff;
    }
    l4[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    ip.push(next);
    ip.push(hop_limit);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(&l4);
    ip
}

/// An IPv6 packet carrying UDP, checksum filled in.
pub fn ipv6_udp(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    ipv6(src, dst, 17, hop_limit, udp(sport, dport, payload), 6)
}

/// An ARP reply: "`sender_ip` is at `sender_mac`", addressed to
/// `target_mac`/`target_ip`. `trailer` goes into the Ethernet padding
/// (ignored by ARP; lets a sniffer recognise the frame).
pub fn arp_reply(
    sender_mac: Mac,
    sender_ip: Ipv4Addr,
    target_mac: Mac,
    target_ip: Ipv4Addr,
    trailer: &[u8],
) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0, 6, 4, 0, 2];
    a.extend_from_slice(&sender_mac);
    a.extend_from_slice(&sender_ip.octets());
    a.extend_from_slice(&target_mac);
    a.extend_from_slice(&target_ip.octets());
    a.extend_from_slice(trailer);
    a
}

/// An ICMPv6 router advertisement (hop limit 255) from `src` (link-local)
/// to `dst` (ff02::1): router lifetime 1800 s (a default router), source
/// link-layer address `mac`, a prefix information option for
/// `prefix`/64 with on-link and autonomous flags (SLAAC), and an
/// experimental option (type 253, RFC 4727) carrying `marker`.
pub fn router_advert(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    mac: Mac,
    prefix: Ipv6Addr,
    marker: &[u8],
) -> Vec<u8> {
    let mut m = vec![134, 0, 0, 0]; // type, code, checksum
    m.extend_from_slice(&[64, 0]); // cur hop limit, flags
    m.extend_from_slice(&1800u16.to_be_bytes()); // router lifetime
    m.extend_from_slice(&0u32.to_be_bytes()); // reachable time
    m.extend_from_slice(&0u32.to_be_bytes()); // retrans timer
                                              // source link-layer address
    m.extend_from_slice(&[1, 1]);
    m.extend_from_slice(&mac);
    // prefix information
    m.extend_from_slice(&[3, 4, 64, 0xc0]);
    m.extend_from_slice(&86400u32.to_be_bytes());
    m.extend_from_slice(&14400u32.to_be_bytes());
    m.extend_from_slice(&0u32.to_be_bytes());
    m.extend_from_slice(&prefix.octets());
    // experimental option with the marker, padded to 8 octets
    let units = (2 + marker.len()).div_ceil(8);
    m.extend_from_slice(&[253, units as u8]);
    m.extend_from_slice(marker);
    m.resize(m.len() + units * 8 - 2 - marker.len(), 0);
    ipv6(src, dst, 58, 255, m, 2)
}

/// The multicast MAC of an IPv6 multicast address (33:33 + last 32 bits).
pub fn ipv6_multicast_mac(a: Ipv6Addr) -> Mac {
    let o = a.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

// ---------------------------------------------------------------------------
// nftables

/// `(family, name)` of every nftables table of the calling thread's
/// namespace (`nft -j list tables`).
pub fn nft_tables() -> Vec<(String, String)> {
    nft_json(&["list", "tables"])["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get("table"))
        .map(|t| {
            (
                t["family"].as_str().unwrap().to_string(),
                t["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The parsed `nft -j list table FAMILY NAME`.
pub fn nft_table(family: &str, name: &str) -> serde_json::Value {
    nft_json(&["list", "table", family, name])
}

/// `nft -j ARGS` in the calling thread's namespace, parsed.
fn nft_json(args: &[&str]) -> serde_json::Value {
    let out = crate::common::run_ok(Command::new("nft").arg("-j").args(args));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("nft -j {args:?}: {e}: {out}"))
}
