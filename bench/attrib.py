#!/usr/bin/env python3
"""Per-step attribution of one narwhal run from `strace -f -T -tt` output:
the time spent inside the syscalls that do the kernel work, by kind.
rtnetlink handles a request inside the sending `sendto`, so a request's
syscall time is its kernel time; `/proc/sys` opens (path lookup) and writes
are counted apart; pauses of narwhal's settle loops are `clock_nanosleep`.

Usage: attrib.py TRACE [TRACE...]   (one file per run; prints medians)
"""
import collections
import re
import statistics
import sys

NL = {"16": "RTM_NEWLINK", "17": "RTM_DELLINK", "18": "RTM_GETLINK", "19": "RTM_SETLINK",
      "20": "RTM_NEWADDR", "24": "RTM_NEWROUTE", "26": "RTM_GETROUTE", "28": "RTM_NEWNEIGH"}
NLX = {"0x10": "RTM_NEWLINK", "0x11": "RTM_DELLINK", "0x12": "RTM_GETLINK", "0x13": "RTM_SETLINK",
       "0x14": "RTM_NEWADDR", "0x18": "RTM_NEWROUTE", "0x1a": "RTM_GETROUTE", "0x1c": "RTM_NEWNEIGH"}
T = re.compile(r"<(\d+\.\d+)>\s*$")


def classify(line, sysfds):
    m = re.search(r"nlmsg_type=(\w+)", line)
    if " sendto(" in line or " sendmsg(" in line:
        t = m.group(1) if m else "?"
        return "netlink " + NL.get(t, NLX.get(t, t))
    if " openat(" in line and '"/proc/sys' in line or re.search(r'openat\(\d+, "ipv[46]/', line):
        fd = re.search(r"= (\d+)", line.rsplit(")", 1)[1] if ")" in line else "")
        if fd:
            sysfds.add(fd.group(1))
        return "/proc/sys open (path lookup)"
    w = re.search(r" write\((\d+),", line)
    if w and w.group(1) in sysfds:
        return "/proc/sys write"
    if " clock_nanosleep(" in line or " nanosleep(" in line:
        return "settle pauses (sleep)"
    if re.search(r" (recvfrom|recvmsg|epoll_wait)\(", line):
        return "netlink replies / event loop"
    if re.search(r" (setns|unshare|clone3?|execve)\(", line):
        return "setns / process"
    return "other syscalls"


def one(path):
    sums = collections.Counter()
    sysfds = set()
    for line in open(path):
        m = T.search(line)
        if not m:
            continue
        sums[classify(line, sysfds)] += float(m.group(1)) * 1e3
    return sums


runs = [one(p) for p in sys.argv[1:]]
keys = sorted({k for r in runs for k in r}, key=lambda k: -statistics.median(r[k] for r in runs))
print("| syscall time by kind (strace -T, ms) | median |")
print("|---|---:|")
for k in keys:
    print(f"| {k} | {statistics.median(r[k] for r in runs):.3f} |")
print(f"| **total in syscalls** | {statistics.median(sum(r.values()) for r in runs):.3f} |")
