//! Entry point: parse the command line, set up logging, dispatch, and map
//! every mode's error to one exit status (see `narwhal::error`).
//!
//! narwhal provides the C `main` itself (`no_main`) and so skips std's
//! runtime set-up, which reads `/proc/self/maps` and installs a stack
//! overflow handler for the main thread: ~0.13 ms of every start here, and
//! narwhal is started once per container event (BENCHMARKS.md). What of
//! that set-up it relies on, it does itself: SIGPIPE ignored (a closed pipe
//! is an error, not death) and stdout flushed before exit. A stack
//! overflow in the main thread is then a plain SIGSEGV.

#![no_main]

use std::ffi::{c_char, c_int};
use std::io::Write;

use clap::Parser;
use narwhal::cli::{Cli, Command};
use narwhal::cmd;
use narwhal::error::{exit_code, privilege_note, render_anyhow, EXIT_FAILURE};
use narwhal::log::Log;

/// Report a panic like any other error: one line on stderr (and syslog in
/// hook mode), exit status 1.
fn on_panic(syslog: Option<std::path::PathBuf>) {
    std::panic::set_hook(Box::new(move |info| {
        let msg = format!("internal error (a bug in narwhal; please report it): {info}");
        match &syslog {
            Some(sock) => Log::hook(sock).error(&msg),
            None => Log::stderr(false).error(&msg),
        }
        std::process::exit(i32::from(EXIT_FAILURE));
    }));
}

#[unsafe(no_mangle)]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    // SAFETY: setting a signal's disposition to "ignore" before any other
    // thread exists
    unsafe { nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_IGN) };
    let status = run();
    let _ = std::io::stdout().flush();
    c_int::from(status)
}

/// The exit status of one run (std::env::args works without std's
/// runtime: glibc hands the arguments to std at load time).
fn run() -> u8 {
    if std::env::var_os("CNI_COMMAND").is_some() {
        return narwhal::cni::run();
    }
    // `narwhal runtime` runs before every command Docker gives runc: parse
    // only its own grammar, not the whole command line's
    if std::env::args_os().nth(1).is_some_and(|a| a == "runtime") {
        return cmd::runtime::main(std::env::args_os().skip(1));
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return e.exit_code() as u8;
        }
    };
    let (log, res) = match cli.command {
        Some(Command::Hook(h)) => {
            on_panic(Some(h.syslog_socket.clone()));
            let log = Log::hook(&h.syslog_socket);
            let r = cmd::hook::run(h.stage.as_deref(), &log, h.allow.as_ref());
            (log, r)
        }
        other => {
            on_panic(None);
            let log = Log::stderr(cli.trace);
            let r = match other {
                Some(Command::Remove(r)) => cmd::remove::run(r, &log),
                Some(Command::Check(c)) => cmd::check::run(c, &log),
                Some(Command::List(l)) => cmd::list::run(l),
                Some(Command::Hook(_)) => unreachable!("handled above"),
                // returns only on failure: it execs the runtime
                Some(Command::Runtime(r)) => return cmd::runtime::run(r),
                None => cmd::up::run(cli.up, &log),
            };
            (log, r)
        }
    };
    match res {
        Ok(()) => 0,
        Err(e) => {
            let mut msg = render_anyhow(&e);
            if let Some(note) = privilege_note(&e) {
                if !msg.contains(note) {
                    msg.push_str(&format!("; note: {note}"));
                }
            }
            log.error(&msg);
            exit_code(&e)
        }
    }
}
