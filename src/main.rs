//! Entry point: parse the command line, dispatch, map errors to exit codes
//! (0 success, 1 failure, 2 usage).

use std::process::ExitCode;

use clap::Parser;
use narwhal::cli::{Cli, Command};
use narwhal::log::Log;
use narwhal::{cmd, hook};

fn main() -> ExitCode {
    if std::env::var_os("CNI_COMMAND").is_some() {
        return narwhal::cni::run();
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    let res = match cli.command {
        Some(Command::Hook(h)) => {
            return match hook::run(h.stage.as_deref(), &h.syslog_socket) {
                true => ExitCode::SUCCESS,
                false => ExitCode::FAILURE,
            }
        }
        Some(Command::Remove(r)) => {
            let log = Log::stderr(r.trace);
            cmd::remove(r, &log).map_err(|e| (e, log))
        }
        None => {
            let log = Log::stderr(cli.up.trace);
            cmd::up(cli.up, &log).map_err(|e| (e, log))
        }
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err((e, log)) => {
            log.error(&format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}
