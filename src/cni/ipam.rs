//! Delegation to an IPAM plugin, as the reference plugins do it: the
//! plugin named by `ipam.type` is looked up in `CNI_PATH` and run with
//! narwhal's own environment (only `CNI_COMMAND` changed) and the same
//! network configuration on stdin.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::{CniError, Code};

/// An IPAM plugin found in `CNI_PATH`.
pub struct Ipam {
    pub name: String,
    pub path: PathBuf,
}

impl Ipam {
    /// Find `name` in the `CNI_PATH` directories.
    pub fn find(name: &str, cni_path: &[PathBuf]) -> Result<Ipam, CniError> {
        for dir in cni_path {
            let p = dir.join(name);
            if is_executable(&p) {
                return Ok(Ipam {
                    name: name.into(),
                    path: p,
                });
            }
        }
        let dirs: Vec<String> = cni_path.iter().map(|d| d.display().to_string()).collect();
        Err(CniError::new(
            Code::Ipam,
            format!(
                "IPAM plugin {name} not found in CNI_PATH ({})",
                dirs.join(":")
            ),
        ))
    }

    /// Run `command` with `stdin`; the parsed stdout on success. A failure
    /// keeps the plugin's own error code and message.
    pub fn exec(&self, command: &str, stdin: &[u8]) -> Result<Option<Value>, CniError> {
        let what = format!("IPAM plugin {} {command}", self.name);
        let mut child = Command::new(&self.path)
            .env("CNI_COMMAND", command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| CniError::new(Code::Ipam, format!("run {what}: {e}")))?;
        // the plugin may exit before reading everything: not an error here
        let _ = child.stdin.take().map(|mut s| s.write_all(stdin));
        let out = child
            .wait_with_output()
            .map_err(|e| CniError::new(Code::Ipam, format!("run {what}: {e}")))?;
        let parsed: Option<Value> = serde_json::from_slice(&out.stdout).ok();
        if out.status.success() {
            return Ok(parsed);
        }
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let (code, msg) = match &parsed {
            Some(v) => (
                v.get("code").and_then(Value::as_u64).map(|c| c as u32),
                v.get("msg").and_then(Value::as_str).map(str::to_string),
            ),
            None => (None, None),
        };
        let msg = msg.unwrap_or_else(|| format!("{} ({stderr})", out.status));
        let mut e = CniError::new(
            code.map_or(Code::Ipam, Code::Other),
            format!("{what}: {msg}"),
        );
        if let Some(d) = parsed
            .as_ref()
            .and_then(|v| v.get("details"))
            .and_then(Value::as_str)
        {
            e = e.details(d);
        }
        Err(e)
    }

    /// The spec versions the plugin speaks (its `VERSION` answer).
    pub fn versions(&self) -> Vec<String> {
        let stdin = br#"{"cniVersion":"0.4.0"}"#;
        match self.exec("VERSION", stdin) {
            Ok(Some(v)) => v
                .get("supportedVersions")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            _ => vec![],
        }
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
