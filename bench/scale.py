#!/usr/bin/env python3
"""narwhal scaling benchmark (issue #15): one setup with 0 / 1,000 / 3,000
narwhal containers already on the host, next to the bare veth floor; and
`runc run` of busybox `true` with and without the narwhal hook.

Started by bench/scale.sh inside a private network + mount namespace that
acts as the host (do not run it directly). Every variant of one level runs in
interleaved rounds; each sample is one whole command: wall time
(perf_counter_ns around fork/exec/wait) and CPU time (user + system of the
child, from wait4's rusage; kernel work done later in a kernel worker is not
in it).

Prototype variants: `--variant LABEL=PROTO` runs the same levels with
NARWHAL_PROTO=PROTO in the environment of every narwhal process, the
existing containers included (their layout is what later setups pay for).
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

NETNS_DIR = "/run/netns"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Test addresses: 198.18.0.0/15 for the existing containers, 198.51.100.0/24
# and 2001:db8::/32 for the measured ones. Nothing else.
V4, V6 = "198.51.100.2", "2001:db8::2"


class BenchError(Exception):
    pass


def log(msg):
    print(f"[scale] {msg}", file=sys.stderr, flush=True)


def existing_v4(i):
    return f"198.18.{i // 250}.{i % 250 + 2}"


def existing_v6(i):
    return f"2001:db8:1::{i + 1:x}"


def run(argv, env, stdin=None, check=True):
    """Run argv; return (wall ns, cpu ns)."""
    t0 = time.perf_counter_ns()
    p = subprocess.Popen(argv, stdin=stdin or subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    t1 = time.perf_counter_ns()
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace").strip()
    p.stderr.close()
    if check and p.returncode != 0:
        raise BenchError(f"{' '.join(argv)}: exit {p.returncode}: {err}")
    return t1 - t0, int((ru.ru_utime + ru.ru_stime) * 1e9)


def out(argv, input=None):
    p = subprocess.run(argv, input=input, capture_output=True, env={"PATH": PATH})
    if p.returncode != 0:
        raise BenchError(f"{' '.join(argv)}: {p.stderr.decode(errors='replace').strip()}")
    return p.stdout


def host_links(prefix):
    return sum(1 for l in json.loads(out(["ip", "-j", "link", "show"]) or b"[]")
               if l["ifname"].startswith(prefix))


def wait_until(what, cond, timeout=300):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise BenchError(f"timed out waiting for {what}")
        time.sleep(0.2)


class Scale:
    def __init__(self, args):
        self.a = args
        self.tmp = tempfile.mkdtemp(prefix="narwhal-scale-")
        self.netns = set()
        self.runc_ids = []
        self.results = []  # (variant, level, row, [(wall, cpu)])
        self.runc = []  # (label, [(wall, cpu)])
        self.podman_rows = []
        self.left = {}  # runc case: times the host link outlived `runc run`
        self.runc_b2b = []  # (label, samples): runs of a case 5 in a row

    def env(self, proto):
        e = {"PATH": PATH}
        if proto:
            e["NARWHAL_PROTO"] = proto
        return e

    def ns_add(self, names):
        out(["ip", "-batch", "-"], input="".join(f"netns add {n}\n" for n in names).encode())
        self.netns.update(names)

    def ns_del(self, names):
        subprocess.run(["ip", "-force", "-batch", "-"],
                       input="".join(f"netns del {n}\n" for n in names).encode(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={"PATH": PATH})
        self.netns.difference_update(names)

    def populate(self, proto, have, want):
        names = [f"nws{i:04d}" for i in range(have, want)]
        self.ns_add(names)
        nw, env = self.a.narwhal, self.env(proto)
        jobs = [[nw, "--netns", f"{NETNS_DIR}/{n}", "-4", existing_v4(i), "-6", existing_v6(i)]
                for i, n in zip(range(have, want), names)]
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(self.a.jobs) as ex:
            list(ex.map(lambda j: run(j, env), jobs))
        log(f"  created {want - have} containers in {time.monotonic() - t0:.1f} s")

    def depopulate(self):
        names = sorted(n for n in self.netns if n.startswith("nws"))
        t0 = time.monotonic()
        self.ns_del(names)
        # deleting a namespace deletes its veth pair (in a kernel worker)
        wait_until("the existing containers' links to go", lambda: host_links("nw-nws") == 0)
        log(f"  removed {len(names)} containers in {time.monotonic() - t0:.1f} s")

    def measure_level(self, label, proto, level):
        nw, env = self.a.narwhal, self.env(proto)
        cases = [
            ("dual-stack setup", "narwhal remove",
             [nw, "--netns", f"{NETNS_DIR}/nwm-ds", "-4", V4, "-6", V6],
             [nw, "remove", "--netns", f"{NETNS_DIR}/nwm-ds"]),
            ("IPv4-only setup", "narwhal remove (IPv4-only)",
             [nw, "--netns", f"{NETNS_DIR}/nwm-v4", "-4", V4],
             [nw, "remove", "--netns", f"{NETNS_DIR}/nwm-v4"]),
            ("floor: ip link add … netns", "floor: ip link del",
             ["ip", "link", "add", "nwf-0", "type", "veth", "peer", "name", "eth0",
              "netns", f"{NETNS_DIR}/nwm-fl"],
             ["ip", "link", "del", "nwf-0"]),
        ]
        samples = {c[0]: [] for c in cases}
        samples.update({c[1]: [] for c in cases})
        for r in range(self.a.warmup + self.a.n):
            for up_name, down_name, up, down in cases:
                s_up = run(up, env)
                if r == 0 and up[0] == nw:
                    os.environ["NARWHAL_PROTO_CHECK"] = proto
                    self.check(up)
                s_down = run(down, env)
                if r >= self.a.warmup:
                    samples[up_name].append(s_up)
                    samples[down_name].append(s_down)
        for name, xs in samples.items():
            self.results.append((label, level, name, xs))
        ds, fl = samples["dual-stack setup"], samples["floor: ip link add … netns"]
        log(f"  {label} @ {level}: dual-stack CPU {med(ds, 1):.2f} ms, wall {med(ds, 0):.2f} ms; "
            f"IPv4-only CPU {med(samples['IPv4-only setup'], 1):.2f} ms; "
            f"floor CPU {med(fl, 1):.2f} ms")

    def check(self, argv):
        """After the first setup of a level: the container has its addresses
        and default routes, and IPv6 autoconfiguration and RAs are off."""
        ns = argv[2].rsplit("/", 1)[1]
        v6 = "-6" in argv
        got = {a["local"] for i in json.loads(out(["ip", "-j", "-n", ns, "addr", "show", "dev", "eth0"]))
               for a in i.get("addr_info", [])}
        want = {V4, V6} if v6 else {V4}
        if got != want:
            raise BenchError(f"{ns}: eth0 has {sorted(got)}, want {sorted(want)}")
        for fam in ("-4", "-6") if v6 else ("-4",):
            routes = json.loads(out(["ip", "-j", fam, "-n", ns, "route", "show", "default"]))
            if len(routes) != 1:
                raise BenchError(f"{ns}: {fam} default routes: {routes}")
        if v6 and "no-ctr-ra" not in os.environ.get("NARWHAL_PROTO_CHECK", ""):
            for k in ("autoconf", "accept_ra"):
                v = out(["ip", "netns", "exec", ns, "sysctl", "-n", f"net.ipv6.conf.eth0.{k}"])
                if v.strip() != b"0":
                    raise BenchError(f"{ns}: net.ipv6.conf.eth0.{k} = {v.strip().decode()}")

    def section_scaling(self):
        self.ns_add(["nwm-ds", "nwm-v4", "nwm-fl"])
        for label, proto in self.a.variant:
            log(f"variant {label} (NARWHAL_PROTO={proto or '-'})")
            have = 0
            for level in self.a.levels:
                if level > have:
                    self.populate(proto, have, level)
                    have = level
                got = host_links("nw-nws")
                if got != level:
                    raise BenchError(f"expected {level} existing narwhal links, found {got}")
                self.measure_level(label, proto, level)
            if have:
                self.depopulate()

    # ---------- runc ----------

    def bundle(self, name, hook_proto):
        b = os.path.join(self.tmp, name)
        rootfs = os.path.join(self.tmp, "rootfs")
        if not os.path.exists(rootfs):
            os.makedirs(os.path.join(rootfs, "bin"))
            for d in ("proc", "sys", "dev", "etc", "tmp"):
                os.makedirs(os.path.join(rootfs, d))
            shutil.copy("/bin/busybox", os.path.join(rootfs, "bin/busybox"))
            os.symlink("busybox", os.path.join(rootfs, "bin/true"))
        os.makedirs(b)
        out(["sh", "-c", f"cd {b} && runc spec"])
        with open(os.path.join(b, "config.json")) as f:
            c = json.load(f)
        c["process"]["terminal"] = False
        c["process"]["args"] = ["/bin/true"]
        c["root"] = {"path": rootfs, "readonly": True}
        if hook_proto is not None:
            c["annotations"] = {"narwhal.ipv4": V4, "narwhal.ipv6": V6}
            h = {"path": self.a.narwhal,
                 "args": ["narwhal", "hook", "--syslog-socket", self.syslog]}
            if hook_proto:
                h["env"] = [f"NARWHAL_PROTO={hook_proto}"]
            c["hooks"] = {"createRuntime": [h], "poststop": [h]}
        with open(os.path.join(b, "config.json"), "w") as f:
            json.dump(c, f)
        return b

    def start_syslog(self):
        self.syslog = os.path.join(self.tmp, "log")
        # counts the hook's poststop outcomes: SIGUSR1 prints them
        code = ("import signal,socket,collections,sys\nsignal.signal(signal.SIGINT,signal.SIG_IGN)\n"
                "n=collections.Counter()\n"
                "signal.signal(signal.SIGUSR1,lambda *a:print(dict(n),flush=True))\n"
                "s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\n"
                f"s.bind({self.syslog!r})\nprint('ok',flush=True)\n"
                "while True:\n"
                "  try: m=s.recv(65536)\n"
                "  except InterruptedError: continue\n"
                "  for k in (b'link del',b'already gone',b'goes with'):\n"
                "    if b'poststop' in m and k in m: n[k.decode()]+=1\n")
        self.sink = subprocess.Popen(["setpriv", "--pdeathsig", "KILL", sys.executable, "-c", code],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        if self.sink.stdout.readline().strip() != b"ok":
            raise BenchError("syslog sink did not start")

    def poststop_counts(self):
        self.sink.send_signal(signal.SIGUSR1)
        return self.sink.stdout.readline().decode().strip()

    def quiet_netns_cleanup(self):
        """Wait until Linux's namespace cleanup has caught up: after the
        scaling section it still tears down thousands of namespaces in one
        ordered work queue, and a container's pair, removed with its
        namespace in that queue, would wait behind them. A probe namespace
        with a veth in it is deleted until its pair goes within 100 ms."""
        t0 = time.monotonic()
        while True:
            self.ns_add(["nwm-probe"])
            out(["ip", "link", "add", "nwm-q", "type", "veth", "peer", "name", "q",
                 "netns", "nwm-probe"])
            t = time.monotonic()
            self.ns_del(["nwm-probe"])
            while host_links("nwm-q"):
                if time.monotonic() - t > 60:
                    raise BenchError("the probe pair did not go within 60 s")
                time.sleep(0.005)
            if time.monotonic() - t < 0.1:
                break
        log(f"  namespace cleanup quiet after {time.monotonic() - t0:.1f} s")

    def section_runc(self):
        if not shutil.which("runc"):
            log("runc not installed: runc section skipped")
            return
        self.quiet_netns_cleanup()
        log("runc run busybox true, with and without the hook (empty host)")
        root = os.path.join(self.tmp, "runc")
        cases = [("runc run true (no hook)", self.bundle("b-bare", None))]
        cases += [(f"runc run true + narwhal hook ({label})", self.bundle(f"b-{label}", proto))
                  for label, proto in self.a.variant]
        def one(b, cid):
            self.runc_ids.append(cid)
            s = run(["runc", "--root", root, "run", "--bundle", b, cid], {"PATH": PATH})
            self.runc_ids.remove(cid)
            return s

        def gone():
            t = time.monotonic()
            while host_links("nw-") and time.monotonic() - t < 10:
                time.sleep(0.005)

        # In turn: one run per case, then the next case. A host link left to
        # the kernel (the pair goes with the container's namespace) is
        # counted and waited for before the next run, untimed.
        samples = {c[0]: [] for c in cases}
        for r in range(self.a.warmup + self.a.runc):
            for i, (name, b) in enumerate(cases):
                s = one(b, f"nwscale{i}")
                if r >= self.a.warmup:
                    samples[name].append(s)
                if host_links("nw-") != 0:
                    self.left[name] = self.left.get(name, 0) + 1
                    gone()
        for name, xs in samples.items():
            self.runc.append((name, xs))
            log(f"  {name}: wall {med(xs, 0):.2f} ms; link still there when runc returned: "
                f"{self.left.get(name, 0)} times")
        # In short runs: 5 runs of a case in a row under one container id
        # (as a supervisor restarting a job), the cases taking turns. What
        # the kernel still does after a run (the pair's removal with its
        # namespace) falls on the next run of the same case, and a setup
        # that meets the previous pair waits for it: the whole cost, timed.
        samples = {c[0]: [] for c in cases}
        blocks = -(-(self.a.warmup + self.a.runc) // 5)
        for r in range(blocks):
            for i, (name, b) in enumerate(cases):
                for k in range(5):
                    s = one(b, f"nwscaleb{i}")
                    if r * 5 + k >= self.a.warmup:
                        samples[name].append(s)
        for name, xs in samples.items():
            self.runc_b2b.append((name, xs))
            log(f"  in short runs: {name}: wall {med(xs, 0):.2f} ms")
        wait_until("the last host link to go", lambda: host_links("nw-") == 0, 10)
        self.outcomes = self.poststop_counts()
        log(f"  poststop outcomes (hook log): {self.outcomes}")

    def podman(self, hooks_dir=None):
        d = os.path.join(self.tmp, "podman")
        argv = ["podman", "--root", f"{d}/storage", "--runroot", f"{d}/run", "--tmpdir", f"{d}/tmp",
                "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
                "--events-backend", "file", "--hooks-dir", hooks_dir or f"{d}/no-hooks"]
        return argv

    def section_podman(self):
        """`podman run --rm --network none --rootfs R true`, bare and with
        the shipped hooks.d file (pointed at this binary) per variant."""
        if not shutil.which("podman"):
            log("podman not installed: podman section skipped")
            return
        log("podman run --rm true, with and without the hook (empty host)")
        self.bundle("b-podman-rootfs", None)  # makes the rootfs
        rootfs = os.path.join(self.tmp, "rootfs")
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "..", "hooks.d", "narwhal.json")) as f:
            shipped = json.load(f)
        os.makedirs(os.path.join(self.tmp, "podman", "no-hooks"), exist_ok=True)
        cases = [("podman run true (no hook)", None, [])]
        for label, proto in self.a.variant:
            hd = os.path.join(self.tmp, "podman", f"hooks-{label}")
            os.makedirs(hd)
            h = json.loads(json.dumps(shipped))
            h["hook"]["path"] = self.a.narwhal
            h["hook"]["args"] = ["narwhal", "hook", "--syslog-socket", self.syslog]
            if proto:
                h["hook"]["env"] = [f"NARWHAL_PROTO={proto}"]
            with open(os.path.join(hd, "narwhal.json"), "w") as f:
                json.dump(h, f)
            cases.append((f"podman run true + narwhal hook ({label})", hd,
                          ["--annotation", f"narwhal.ipv4={V4}", "--annotation", f"narwhal.ipv6={V6}"]))
        samples = {c[0]: [] for c in cases}
        for r in range(self.a.warmup + self.a.podman):
            for name, hd, ann in cases:
                argv = self.podman(hd) + ["run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024",
                                        "--ulimit", "nproc=4096:4096"] + ann + \
                    ["--rootfs", rootfs, "/bin/true"]
                s = run(argv, {"PATH": PATH})
                if r >= self.a.warmup:
                    samples[name].append(s)
                if host_links("nw-") != 0:
                    self.left[name] = self.left.get(name, 0) + 1
                    wait_until(f"{name}: the host link to go", lambda: host_links("nw-") == 0, 10)
        self.outcomes_podman = self.poststop_counts()
        for name, xs in samples.items():
            self.podman_rows.append((name, xs))
            log(f"  {name}: wall {med(xs, 0):.2f} ms")

    # ---------- report ----------

    def report(self):
        L = ["| variant | existing | command | CPU ms (median) | wall ms (median) | CPU × its 0 | n |",
             "|---|---:|---|---:|---:|---:|---:|"]
        base = {}
        for label, level, name, xs in self.results:
            if level == self.a.levels[0]:
                base[(label, name)] = med(xs, 1)
            ratio = med(xs, 1) / base[(label, name)] if base.get((label, name)) else float("nan")
            L.append(f"| {label} | {level} | {name} | {med(xs, 1):.2f} | {med(xs, 0):.2f} | "
                     f"{ratio:.2f}× | {len(xs)} |")
        def overhead(title, rows):
            """A runtime's rows against its first (bare) row, wall time."""
            bare = med(rows[0][1], 0)
            L.extend(["", f"| {title} | wall ms (median) | + over bare | n |",
                      "|---|---:|---:|---:|"])
            for name, xs in rows:
                m = med(xs, 0)
                L.append(f"| {name} | {m:.2f} | +{m - bare:.2f} ms ({(m - bare) / bare:+.0%}) "
                         f"| {len(xs)} |")
        if self.runc:
            overhead("`runc run` of busybox `true`, empty host", self.runc)
            L += ["", f"(one run per case in turn; the host link still there when `runc run` "
                  f"returned, then waited for, untimed: {self.left or 'never'})"]
        if self.runc_b2b:
            overhead("`runc run` of `true`, in short runs (5 in a row per case, one id)",
                     self.runc_b2b)
            L += ["", f"poststop outcomes over all hook runs (warm-up included): {self.outcomes}"]
        if self.podman_rows:
            overhead("`podman run --rm --network none` of `true`, empty host", self.podman_rows)
            L += ["", f"poststop outcomes, cumulative after podman: {self.outcomes_podman}"]
        return "\n".join(L) + "\n"

    def cleanup(self):
        if os.path.isdir(os.path.join(self.tmp, "podman", "storage")):
            # containers run with --rm; this only catches an interrupted run
            subprocess.run(self.podman() + ["rm", "--all", "--force"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            subprocess.run(self.podman() + ["system", "reset", "--force"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        root = os.path.join(self.tmp, "runc")
        for cid in self.runc_ids:
            subprocess.run(["runc", "--root", root, "delete", "--force", cid],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if getattr(self, "sink", None):
            self.sink.kill()
            self.sink.wait()
        if self.netns:
            self.ns_del(sorted(self.netns))
        shutil.rmtree(self.tmp, ignore_errors=True)


def med(xs, i):
    return statistics.median(x[i] for x in xs) / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("narwhal")
    ap.add_argument("--levels", default="0,1000,3000",
                    type=lambda s: sorted({int(x) for x in s.split(",")}))
    ap.add_argument("--n", type=int, default=40, help="runs per command and level")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--runc", type=int, default=30, help="runc runs per case (0: skip)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel narwhal runs when populating")
    ap.add_argument("--variant", action="append", default=[],
                    type=lambda s: tuple(s.split("=", 1)) if "=" in s else (s, s),
                    help="LABEL=PROTO (NARWHAL_PROTO value); repeatable; default: main=")
    ap.add_argument("--podman", type=int, default=20, help="podman runs per case (0: skip)")
    ap.add_argument("--only", default="scaling,runc,podman")
    ap.add_argument("--time-limit", type=int, default=1800, help="seconds, then stop")
    a = ap.parse_args()
    a.narwhal = os.path.abspath(a.narwhal)
    a.variant = a.variant or [("main", "")]

    def stop(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    signal.signal(signal.SIGALRM, stop)
    signal.alarm(a.time_limit)
    s = Scale(a)
    try:
        s.start_syslog()
        # the runtimes first: after the scaling section Linux is still
        # freeing thousands of namespaces' objects (RCU callbacks, its
        # namespace cleanup queue) for a while, which slows what a
        # container's pair waits for
        if "runc" in a.only and a.runc:
            s.section_runc()
        if "podman" in a.only and a.podman:
            s.section_podman()
        if "scaling" in a.only:
            s.section_scaling()
    except BenchError as e:
        log(f"error: {e}")
        return 1
    except KeyboardInterrupt as e:
        log(f"stopped ({e}); cleaning up")
        return 130
    finally:
        signal.alarm(0)
        s.cleanup()
    print(s.report(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
