//! `narwhal [OPTION]… (CONTAINER | --pid PID | --netns PATH)`: set up.

use anyhow::{Context, Result};

use crate::cli::UpArgs;
use crate::log::Log;
use crate::spec::Config;
use crate::{engine, input, target};

pub fn run(a: UpArgs, log: &Log) -> Result<()> {
    let req = input::args::request(a.target, a.settings.0)?;
    let config = Config::new(&req.settings)?;
    let what = format!(
        "set up {}",
        req.target
            .as_ref()
            .expect("the command line names a target")
    );
    let spec = target::spec(config, &req).with_context(|| what.clone())?;
    for w in engine::up(&spec, &|s| log.info(&s.to_string())).with_context(|| what)? {
        log.warn(&w);
    }
    Ok(())
}
