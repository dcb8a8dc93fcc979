//! The command line as a [`Request`]: raw values, not yet trusted.

use crate::cli::TargetArgs;
use crate::error::Error;
use crate::request::{Request, Settings, Target};
use crate::target::parse_pid;

/// The target named by `CONTAINER | --pid PID | --netns PATH`.
pub fn target(t: TargetArgs) -> Result<Target, Error> {
    Ok(match (t.container, t.pid, t.netns) {
        (Some(c), _, _) => Target::Docker(c),
        (_, Some(p), _) => Target::Pid(parse_pid(&p)?),
        (_, _, Some(n)) => Target::Netns(n),
        _ => {
            return Err(Error::Usage(
                "give a CONTAINER, --pid PID or --netns PATH".into(),
            ))
        }
    })
}

/// A request from the command line; the key comes from the target.
pub fn request(t: TargetArgs, settings: Settings) -> Result<Request, Error> {
    Ok(Request {
        target: Some(target(t)?),
        key: None,
        settings,
    })
}
