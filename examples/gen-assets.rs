//! Generates narwhal's man page and shell completions from the clap
//! definitions in `src/cli.rs`:
//!
//! ```text
//! cargo run --example gen-assets -- OUTDIR
//! cargo run --example gen-assets -- --settings-table   # README's table
//! ```
//!
//! writes `OUTDIR/narwhal.8` and `OUTDIR/completions/{narwhal.bash,_narwhal,narwhal.fish}`.
//!
//! The command line parts of the man page (synopsis, options, the options of
//! `narwhal remove` and `narwhal hook`) are rendered by clap_mangen from the
//! clap definitions; the sections clap knows nothing about (hook stages,
//! annotations, naming, logging, files, exit status, examples) are written
//! here with roff.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};
use clap_mangen::Man;
use narwhal::cli::Cli;

const BIN: &str = "narwhal";
/// The hook configuration the packages install, quoted in the man page.
const HOOK_JSON: &str = include_str!("../hooks.d/narwhal.json");

const DESCRIPTION: &str = "\
narwhal gives a Linux container its own routed veth pair: the host end (named nw-KEY, see HOST INTERFACE NAME) and the container end (eth0 by default). No bridge, no NAT and no ARP are involved.

The host end holds 169.254.0.1 with the container's IPv4 address as its /32 peer and fe80::1 with the container's IPv6 address as its /128 peer, and a route to each container address with route protocol 77 (proto narwhal). The container end holds the container's addresses with the host addresses as peers, and default routes via them. ARP is off on both ends and each end has a permanent neighbour entry for the other; IPv6 autoconfiguration and router advertisements are off; IPv6 is disabled on both ends when no IPv6 address is given.

A container can only use its own addresses: every host end is in interface group 77, and one shared nftables rule (table inet narwhal, made by the first setup on a host) drops what comes in on such a link unless its source address is routed back out of it, for IPv4 and IPv6, whatever the host's rp_filter settings. An address is held by one container only, and never by a container and the host.

narwhal runs from the command line on a container started without networking (Docker --net=none, a process, or a named network namespace), or as an OCI runtime hook (narwhal hook) configured per container by annotations. Every change is made by netlink; narwhal needs no external tools. If a step fails, the changes already made are undone. The host interface carries the alias narwhal:KEY, and narwhal never removes a link that does not carry its mark.

narwhal must run as root (CAP_NET_ADMIN and CAP_SYS_ADMIN in the initial namespaces).";

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: cargo run --example gen-assets -- (OUTDIR | --settings-table)");
        std::process::exit(2);
    };
    if out == "--settings-table" {
        print!("{}", narwhal::settings::markdown_table());
        return;
    }
    let out = PathBuf::from(out);
    if let Err(e) = generate(&out) {
        eprintln!("gen-assets: {}: {e}", out.display());
        std::process::exit(1);
    }
}

/// Where the binary is installed (`NARWHAL_BINDIR`, default /usr/bin): the
/// man page quotes the hook file, which names it.
fn bindir() -> String {
    std::env::var("NARWHAL_BINDIR").unwrap_or_else(|_| "/usr/bin".into())
}

fn generate(out: &Path) -> std::io::Result<()> {
    let comp = out.join("completions");
    fs::create_dir_all(&comp)?;

    let mut page = Vec::new();
    man_page(&mut page)?;
    fs::write(out.join("narwhal.8"), dedup_preamble(&page))?;

    for (shell, file) in [
        (Shell::Bash, "narwhal.bash"),
        (Shell::Zsh, "_narwhal"),
        (Shell::Fish, "narwhal.fish"),
    ] {
        let mut cmd = Cli::command();
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd, BIN, &mut buf);
        fs::write(comp.join(file), buf)?;
    }
    Ok(())
}

/// The body of a section rendered by clap_mangen, without its `.SH` line,
/// so that it can be placed under a heading of our own.
fn body(render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    render(&mut buf)?;
    let text = String::from_utf8(buf).expect("roff is UTF-8");
    let mut lines = text.lines().filter(|l| !is_preamble(l)).peekable();
    match lines.next() {
        Some(l) if l.starts_with(".SH ") => {}
        other => {
            return Err(std::io::Error::other(format!(
                "clap_mangen section does not start with .SH: {other:?}"
            )))
        }
    }
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l.as_bytes());
        out.push(b'\n');
    }
    Ok(out)
}

/// roff writes its apostrophe preamble (`.ie \n(.g .ds Aq ...`, `.el .ds
/// Aq '`) at the start of every rendering; the page needs it once.
fn is_preamble(line: &str) -> bool {
    line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq")
}

/// Keeps the first apostrophe preamble and drops the repeats.
fn dedup_preamble(page: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(page);
    let mut out = String::new();
    let mut seen = 0;
    for l in text.lines() {
        if is_preamble(l) {
            seen += 1;
            if seen > 2 {
                continue;
            }
        }
        out.push_str(l);
        out.push('\n');
    }
    out.into_bytes()
}

/// The clap command, completed for the man page: its long description, and
/// the help of options hidden from `-h` only (clap_mangen would print them
/// without their text).
fn page_command() -> clap::Command {
    let mut cmd = Cli::command().long_about(DESCRIPTION).bin_name(BIN);
    cmd = cmd.mut_subcommands(|sub| sub.mut_args(long_help_from_help));
    cmd = cmd.mut_args(long_help_from_help);
    cmd.build();
    cmd
}

fn long_help_from_help(a: clap::Arg) -> clap::Arg {
    match (a.get_long_help().is_none(), a.get_help().cloned()) {
        (true, Some(h)) if a.is_hide_short_help_set() => a.long_help(h),
        _ => a,
    }
}

fn br(w: &mut dyn Write) -> std::io::Result<()> {
    w.write_all(b".br\n")
}

fn man_page(w: &mut dyn Write) -> std::io::Result<()> {
    let cmd = page_command();
    let man = Man::new(cmd.clone())
        .section("8")
        .manual("System Administration")
        .source(format!("narwhal {}", env!("CARGO_PKG_VERSION")));
    let subs: Vec<clap::Command> = cmd.get_subcommands().cloned().collect();

    man.render_title(w)?;
    man.render_name_section(w)?;
    // The set-up form alone (the same arguments and groups without the
    // sub-commands, which get a synopsis line each).
    let setup = clap::Command::new(BIN)
        .bin_name(BIN)
        .version(env!("CARGO_PKG_VERSION"))
        .args(cmd.get_arguments().cloned())
        .groups(cmd.get_groups().cloned())
        .disable_help_flag(true)
        .disable_version_flag(true);
    Man::new(setup).render_synopsis_section(w)?;
    for sub in &subs {
        br(w)?;
        let sm = Man::new(sub.clone()).section("8");
        w.write_all(&body(|w| sm.render_synopsis_section(w))?)?;
    }
    man.render_description_section(w)?;
    man.render_options_section(w)?;

    // Sub-commands: clap_mangen's subcommand list would point to
    // narwhal-remove(8) and narwhal-hook(8); narwhal ships one page, so each
    // command's synopsis and options are rendered here instead.
    roff_section(w, "COMMANDS", |r| {
        r.text([roman(
            "Without a command, narwhal sets up the container given as CONTAINER, --pid or --netns.",
        )]);
    })?;
    for sub in &subs {
        let name = format!("{BIN} {}", sub.get_name());
        let sm = Man::new(sub.clone()).section("8");
        let mut r = Roff::new();
        r.control("SS", [name.as_str()]);
        if let Some(about) = sub.get_long_about().or(sub.get_about()) {
            r.text([roman(format!("{about}."))]);
        }
        r.control("PP", []);
        r.to_writer(w)?;
        w.write_all(&body(|w| sm.render_synopsis_section(w))?)?;
        w.write_all(&body(|w| sm.render_options_section(w))?)?;
    }

    roff_section(w, "OCI HOOK", hook_section)?;
    roff_section(w, "ANNOTATIONS", annotations_section)?;
    roff_section(w, "HOST INTERFACE NAME", naming_section)?;
    roff_section(w, "LOGGING", |r| {
        r.text([
            roman("On the command line narwhal writes errors to standard error, and with "),
            bold("--trace"),
            roman(" every change it makes. In hook mode ("),
            bold("narwhal hook"),
            roman(
                ") it writes every change and every error to syslog, facility daemon, ident narwhal, \
                 through the socket given by ",
            ),
            bold("--syslog-socket"),
            roman(" (default "),
            italic("/dev/log"),
            roman(
                "), because runtimes such as crun and conmon drop a hook's standard error; \
                 errors also go to standard error. If the socket cannot be reached, narwhal warns \
                 once on standard error and goes on. To read the log: ",
            ),
        ]);
        r.control("PP", []);
        r.control("RS", ["4"]);
        r.text([bold("journalctl -t narwhal")]);
        r.control("RE", []);
        r.control("PP", []);
        r.text([roman(
            "or look for \"narwhal\" in the daemon log of your syslog daemon.",
        )]);
    })?;
    roff_section(w, "FILES", |r| {
        item(
            r,
            vec![italic("/usr/share/containers/oci/hooks.d/narwhal.json")],
            "The oci-hooks(5) configuration that makes podman, CRI-O and other users of \
             containers/common run narwhal at createRuntime and poststop for containers with \
             narwhal annotations (see OCI HOOK). It names the binary by its absolute path, \
             because hooks run with an empty environment.",
        );
        item(
            r,
            vec![italic("/dev/log")],
            "The syslog socket used in hook mode (see LOGGING).",
        );
        item(
            r,
            vec![italic("/run/netns/NAME")],
            "Named network namespaces (ip-netns(8)) accepted by --netns; NAME is then the key.",
        );
        item(
            r,
            vec![italic("/run/narwhal/filters/")],
            "One empty file per --paranoid filter narwhal made (named after the network namespace \
             and the host interface), so that setup and teardown find a filter left by a container \
             that ended without teardown.",
        );
    })?;
    roff_section(w, "EXIT STATUS", |r| {
        item(r, vec![bold("0")], "Success: the links were set up or removed, or, in hook mode, the container carries no narwhal annotation and was left alone.");
        item(r, vec![bold("1")], "Failure: the one-line message on standard error (and in hook mode in syslog) names the object, the side (host or container) and the cause. Changes made before the failure, or before a SIGTERM, SIGINT, SIGHUP or SIGQUIT, have been undone. narwhal check: a problem was found (or, with --repair, could not be repaired).");
        item(
            r,
            vec![bold("2")],
            "Usage error: the command line could not be parsed, or the hook stage is unknown.",
        );
        item(
            r,
            vec![bold("3")],
            "Failure whose rollback was incomplete: the message lists what is left on the host.",
        );
    })?;
    roff_section(w, "EXAMPLES", examples_section)?;
    roff_section(w, "SEE ALSO", |r| {
        r.text([roman(
            "ip(8), ip-netns(8), veth(4), nft(8), oci-hooks(5), podman-run(1), runc(8), crun(1), docker-run(1), bird(8); docs/isolation.md, docs/cni.md, docs/docker.md, docs/multi-host.md",
        )]);
    })?;
    man.render_version_section(w)?;
    Ok(())
}

fn roff_section(
    w: &mut dyn Write,
    title: &str,
    fill: impl FnOnce(&mut Roff),
) -> std::io::Result<()> {
    let mut r = Roff::new();
    r.control("SH", [title]);
    fill(&mut r);
    r.to_writer(w)
}

/// A tagged paragraph: `tag` on its own line, `text` indented below.
fn item(r: &mut Roff, tag: Vec<Inline>, text: &str) {
    r.control("TP", []);
    r.text(tag);
    r.text([roman(text)]);
}

fn hook_section(r: &mut Roff) {
    r.text([
        roman("As an OCI runtime hook, narwhal is run by the container runtime (runc, crun, podman, CRI-O) with the container's state JSON on standard input. It reads the container id, the pid and the annotations from it (or from "),
        italic("config.json"),
        roman(" in the bundle when the state carries no annotations) and prints nothing on standard output. The stage is the first argument; when it is absent it is inferred from the state's status (creating or created: createRuntime; stopped: poststop). Stage names are case-insensitive; create-runtime and post-stop are accepted too."),
    ]);
    item(
        r,
        vec![bold("createRuntime")],
        "Runs after the runtime has created the container's namespaces and before the container \
         process starts. narwhal creates the veth pair in the namespace of the container's pid, \
         moves one end in, and configures addresses, routes, neighbours and sysctls on both ends \
         from the annotations. If this fails the runtime aborts the container, and narwhal has \
         removed what it made.",
    );
    item(
        r,
        vec![bold("poststop")],
        "Runs after the container has stopped. narwhal deletes its host interface (which also \
         deletes the container end), found by name from the container id, or from \
         narwhal.host-interface. A link that is already gone is not an error; a link without \
         narwhal's mark is never deleted. When the runtime made the container's network \
         namespace (config.json gives it no path) and no hook keeps it (Docker's \
         libnetwork-setkey does), the namespace ends with the container and Linux removes the \
         pair with it: narwhal then leaves the pair to the namespace, which Linux ends up to an \
         RCU grace period after the last socket opened in it closed, and a setup that meets such \
         a pair in its way waits up to 200 ms for it to go. Note that podman does not run \
         poststop when createRuntime failed.",
    );
    r.control("PP", []);
    r.text([
        roman("narwhal handles a container only when it has a "),
        bold("narwhal.ipv4"),
        roman(" or "),
        bold("narwhal.ipv6"),
        roman(
            " annotation, and fails on an unknown narwhal.* annotation. Run the container \
             without a network of its own (podman --network none), so that eth0 is narwhal's. \
             The package installs this hook configuration as ",
        ),
        italic("/usr/share/containers/oci/hooks.d/narwhal.json"),
        roman(
            " (one hook per file; without a stage argument narwhal infers the stage from the \
             state):",
        ),
    ]);
    r.control("PP", []);
    r.control("RS", ["4"]);
    r.control("nf", []);
    let hook = HOOK_JSON.replace("\"/usr/bin/narwhal\"", &format!("\"{}/narwhal\"", bindir()));
    for line in hook.lines() {
        r.text([roman(line)]);
    }
    r.control("fi", []);
    r.control("RE", []);
}

fn annotations_section(r: &mut Roff) {
    r.text([roman(
        "In hook mode narwhal is configured by annotations on the container \
         (podman run --annotation KEY=VALUE). Each corresponds to the command line option of the \
         same name. Values are taken verbatim, must be at most 256 bytes and contain no control \
         characters. An unknown annotation starting with \"narwhal.\" is an error, so that a typo \
         never starts a container without its network.",
    )]);
    for s in narwhal::settings::SCHEMA {
        let key = s.annotation();
        item(
            r,
            vec![bold(key.as_str()), roman("="), italic(s.kind.value_name())],
            s.doc,
        );
    }
}

fn naming_section(r: &mut Roff) {
    r.text([roman(
        "The host interface is named nw-KEY, where KEY identifies the container: the Docker short \
         id (12 hex digits) for CONTAINER, the PID for --pid, the file name of the namespace for \
         --netns (the PID for /proc/PID/ns/net), and the container id in hook mode. A KEY longer \
         than 12 characters, or with a character outside [A-Za-z0-9_.-], is replaced by 12 hex \
         digits of a stable 64-bit hash of it, so the name always fits the kernel's 15-byte \
         limit. Because the name follows from the key, narwhal remove and the poststop hook find \
         the link without stored state. --host-interface (narwhal.host-interface) overrides the \
         name; give the same value when removing.",
    )]);
    r.control("PP", []);
    r.text([roman(
        "The host end also carries the alias narwhal:KEY and MAC addresses derived from KEY; \
         narwhal removes only links so marked.",
    )]);
}

fn example(r: &mut Roff, what: &str, lines: &[&str]) {
    r.control("PP", []);
    r.text([roman(what)]);
    r.control("PP", []);
    r.control("RS", ["4"]);
    r.control("nf", []);
    for l in lines {
        r.text([bold(*l)]);
    }
    r.control("fi", []);
    r.control("RE", []);
}

fn examples_section(r: &mut Roff) {
    example(
        r,
        "Give a Docker container an IPv4 and an IPv6 address, then remove its link:",
        &[
            "docker run -d --net=none --name web busybox httpd -f",
            "narwhal -4 198.51.100.2 -6 2001:db8::2 web",
            "narwhal remove web",
        ],
    );
    example(
        r,
        "Configure a named network namespace, printing every change:",
        &[
            "ip netns add blue",
            "narwhal --trace --netns /run/netns/blue -4 198.51.100.7",
            "narwhal remove --netns /run/netns/blue",
        ],
    );
    example(
        r,
        "With the hook installed in /usr/share/containers/oci/hooks.d, podman runs narwhal for containers that ask for it:",
        &[
            "podman run -d --network none --name web \\",
            "    --annotation narwhal.ipv4=198.51.100.2 \\",
            "    --annotation narwhal.ipv6=2001:db8::2 \\",
            "    busybox httpd -f",
            "ping -c1 198.51.100.2",
            "podman rm -f web    # poststop removes the link",
        ],
    );
    example(
        r,
        "Run the hook by hand with a saved OCI state:",
        &["narwhal hook createRuntime < state.json"],
    );
}
