//! A minimal Docker Engine API client: resolve a container id or name to its
//! full id and init pid, without running the `docker` CLI.
//!
//! One request is made (`GET /containers/NAME/json`) over the daemon's unix
//! socket, as HTTP/1.0 with no API version prefix, so that old and new
//! daemons alike answer it and close the connection afterwards. The response
//! is read to EOF (capped at [`MAX_RESPONSE`]) and may be plain, sized by
//! `Content-Length`, or chunked.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Socket used when `DOCKER_HOST` is unset or empty.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Longest accepted container name or id, in bytes.
const MAX_NAME: usize = 253;

/// Largest accepted response (headers and body), in bytes.
const MAX_RESPONSE: usize = 4 << 20;

/// Time allowed for the whole exchange with the daemon.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Longest error message taken from a daemon's error response, in characters.
const MAX_MESSAGE: usize = 300;

/// A running Docker container, as resolved through the Engine API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// The full 64-hex-digit container id.
    pub id: String,
    /// The container name, without the leading `/`.
    pub name: String,
    /// The pid of the container's init process, on the host.
    pub pid: i32,
}

impl Container {
    /// Docker's 12-character short id.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }
}

/// Errors resolving a container. Variants that wrap an I/O or JSON error
/// keep it as the source and do not repeat its text in their own message
/// (print the chain, e.g. with anyhow's `{:#}`).
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("invalid Docker container name '{0}'")]
    InvalidName(String),

    #[error("unsupported DOCKER_HOST '{0}': only unix://PATH is supported")]
    UnsupportedHost(String),

    #[error(
        "cannot connect to the Docker daemon at {} ({} \
         set DOCKER_HOST=unix://PATH for another socket)",
        socket.display(),
        connect_hint(source)
    )]
    Connect {
        socket: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("lost connection to the Docker daemon at {}", socket.display())]
    Io {
        socket: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "timed out after {}s waiting for the Docker daemon at {}",
        timeout.as_secs_f32(),
        socket.display()
    )]
    Timeout { socket: PathBuf, timeout: Duration },

    #[error(
        "response from the Docker daemon at {} exceeds {} MiB",
        socket.display(),
        MAX_RESPONSE >> 20
    )]
    ResponseTooLarge { socket: PathBuf },

    #[error("malformed HTTP response from the Docker daemon at {}: {reason}", socket.display())]
    BadResponse { socket: PathBuf, reason: String },

    #[error("no such Docker container '{0}'")]
    NotFound(String),

    #[error("Docker daemon returned HTTP {status} for container '{name}'{}",
        message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Api {
        name: String,
        status: u16,
        message: Option<String>,
    },

    #[error("cannot parse the Docker daemon's description of container '{name}'")]
    Json {
        name: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("Docker daemon returned an invalid id '{id}' for container '{name}'")]
    BadId { name: String, id: String },

    #[error("Docker container '{name}' is not running")]
    NotRunning {
        name: String,
        /// The full id, so that teardown can still derive names.
        id: String,
    },
}

/// The first half of [`DockerError::Connect`]'s hint.
fn connect_hint(source: &io::Error) -> &'static str {
    if source.kind() == io::ErrorKind::PermissionDenied {
        "are you root or in the socket's group?"
    } else {
        "is dockerd running?"
    }
}

/// The Docker daemon socket: from `DOCKER_HOST` (only `unix://PATH` is
/// supported), or [`DEFAULT_SOCKET`].
pub fn socket_path() -> Result<PathBuf, DockerError> {
    let value = std::env::var_os("DOCKER_HOST");
    match value {
        None => parse_docker_host(None),
        Some(v) => match v.to_str() {
            Some(s) => parse_docker_host(Some(s)),
            None => Err(DockerError::UnsupportedHost(
                v.to_string_lossy().into_owned(),
            )),
        },
    }
}

/// Interpret a `DOCKER_HOST` value; `None` or empty means the default socket.
fn parse_docker_host(value: Option<&str>) -> Result<PathBuf, DockerError> {
    let value = match value {
        None => return Ok(PathBuf::from(DEFAULT_SOCKET)),
        Some(v) if v.trim().is_empty() => return Ok(PathBuf::from(DEFAULT_SOCKET)),
        Some(v) => v,
    };
    match value.strip_prefix("unix://") {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => Err(DockerError::UnsupportedHost(value.to_owned())),
    }
}

/// Resolve `name_or_id` through the daemon at [`socket_path`].
pub fn resolve(name_or_id: &str) -> Result<Container, DockerError> {
    inspect(&socket_path()?, name_or_id)
}

/// Resolve `name_or_id` (a name, a full id or an unambiguous id prefix)
/// through the daemon listening on `socket`. Fails unless the container is
/// running.
pub fn inspect(socket: &Path, name_or_id: &str) -> Result<Container, DockerError> {
    inspect_with_timeout(socket, name_or_id, TIMEOUT)
}

fn inspect_with_timeout(
    socket: &Path,
    name_or_id: &str,
    timeout: Duration,
) -> Result<Container, DockerError> {
    validate_name(name_or_id)?;
    let request = format!("GET /containers/{name_or_id}/json HTTP/1.0\r\nHost: docker\r\n\r\n");
    let raw = exchange(socket, request.as_bytes(), timeout)?;
    let response = parse_response(&raw).map_err(|reason| DockerError::BadResponse {
        socket: socket.to_owned(),
        reason,
    })?;
    match response.status {
        200 => parse_container(name_or_id, &response.body),
        404 => Err(DockerError::NotFound(name_or_id.to_owned())),
        status => Err(DockerError::Api {
            name: name_or_id.to_owned(),
            status,
            message: error_message(&response.body),
        }),
    }
}

/// Docker names and ids: `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 253 bytes.
/// This also makes the name safe to put in a URL path.
fn validate_name(name: &str) -> Result<(), DockerError> {
    let bytes = name.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= MAX_NAME
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(DockerError::InvalidName(name.to_owned()))
    }
}

/// Send `request` and read the whole response, within `timeout` overall.
fn exchange(socket: &Path, request: &[u8], timeout: Duration) -> Result<Vec<u8>, DockerError> {
    let deadline = Instant::now() + timeout;
    let io_err = |source: io::Error| {
        if matches!(
            source.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            DockerError::Timeout {
                socket: socket.to_owned(),
                timeout,
            }
        } else {
            DockerError::Io {
                socket: socket.to_owned(),
                source,
            }
        }
    };
    let remaining = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| DockerError::Timeout {
                socket: socket.to_owned(),
                timeout,
            })
    };

    let mut stream = UnixStream::connect(socket).map_err(|source| DockerError::Connect {
        socket: socket.to_owned(),
        source,
    })?;
    stream
        .set_write_timeout(Some(remaining()?))
        .map_err(io_err)?;
    stream.write_all(request).map_err(io_err)?;

    let mut response = Vec::with_capacity(16 * 1024);
    let mut buf = [0u8; 16 * 1024];
    loop {
        stream
            .set_read_timeout(Some(remaining()?))
            .map_err(io_err)?;
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A server that answers and closes before reading everything we
            // sent can make the kernel report a reset after a full response;
            // keep what we have and let the parser judge it.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !response.is_empty() => break,
            Err(e) => return Err(io_err(e)),
        };
        if response.len() + n > MAX_RESPONSE {
            return Err(DockerError::ResponseTooLarge {
                socket: socket.to_owned(),
            });
        }
        response.extend_from_slice(&buf[..n]);
    }
    Ok(response)
}

#[derive(Debug)]
struct Response {
    status: u16,
    body: Vec<u8>,
}

/// Parse a complete HTTP/1.x response. Errors are short descriptions.
fn parse_response(raw: &[u8]) -> Result<Response, String> {
    if raw.is_empty() {
        return Err("empty response".into());
    }
    let head_end = find(raw, b"\r\n\r\n").ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| "headers are not UTF-8")?;
    let rest = &raw[head_end + 4..];

    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = parse_status_line(status_line)
        .ok_or_else(|| format!("bad status line '{}'", printable(status_line, 80)))?;

    let mut chunked = false;
    let mut content_length = None;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line '{}'", printable(line, 80)))?;
        let value = value.trim();
        if name.trim().eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|coding| coding.trim().eq_ignore_ascii_case("chunked"));
        } else if name.trim().eq_ignore_ascii_case("content-length") {
            let len = value
                .parse::<usize>()
                .map_err(|_| format!("bad Content-Length '{}'", printable(value, 40)))?;
            content_length = Some(len);
        }
    }

    let body = if chunked {
        decode_chunked(rest)?
    } else if let Some(len) = content_length {
        if rest.len() < len {
            return Err(format!("body truncated: {} of {len} bytes", rest.len()));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response { status, body })
}

/// `HTTP/1.x NNN reason` -> NNN.
fn parse_status_line(line: &str) -> Option<u16> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    let code = parts.next()?;
    if !version.starts_with("HTTP/1.")
        || code.len() != 3
        || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    code.parse().ok().filter(|c| (100..600).contains(c))
}

/// Decode a chunked body (RFC 9112 §7.1); trailers are ignored.
fn decode_chunked(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = find(data, b"\r\n").ok_or("chunked body truncated")?;
        let line = std::str::from_utf8(&data[..line_end]).map_err(|_| "bad chunk size line")?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size '{}'", printable(size_text, 40)))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if data.len() < size + 2 {
            return Err("chunked body truncated".into());
        }
        if &data[size..size + 2] != b"\r\n" {
            return Err("chunk not terminated by CRLF".into());
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `text` on one line, control characters replaced, at most `max` chars.
fn printable(text: &str, max: usize) -> String {
    let mut out: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.trim().chars().count() > max {
        out.push_str("...");
    }
    out
}

/// The daemon's explanation in an error response: the JSON `message` field,
/// or else the first line of a short plain-text body.
fn error_message(body: &[u8]) -> Option<String> {
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => value.get("message")?.as_str()?.to_owned(),
        Err(_) => std::str::from_utf8(body).ok()?.lines().next()?.to_owned(),
    };
    let text = printable(&text, MAX_MESSAGE);
    (!text.is_empty()).then_some(text)
}

#[derive(Deserialize)]
struct InspectBody {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "State")]
    state: InspectState,
}

#[derive(Deserialize)]
struct InspectState {
    #[serde(rename = "Running", default)]
    running: bool,
    #[serde(rename = "Pid", default)]
    pid: i64,
}

fn parse_container(name_or_id: &str, body: &[u8]) -> Result<Container, DockerError> {
    let inspect: InspectBody =
        serde_json::from_slice(body).map_err(|source| DockerError::Json {
            name: name_or_id.to_owned(),
            source,
        })?;
    let id = inspect.id;
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DockerError::BadId {
            name: name_or_id.to_owned(),
            id: printable(&id, 80),
        });
    }
    let pid = i32::try_from(inspect.state.pid).unwrap_or(0);
    if !inspect.state.running || pid <= 0 {
        return Err(DockerError::NotRunning {
            name: name_or_id.to_owned(),
            id,
        });
    }
    let name = inspect
        .name
        .strip_prefix('/')
        .unwrap_or(&inspect.name)
        .to_owned();
    Ok(Container { id, name, pid })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use std::os::unix::net::UnixListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread::JoinHandle;

    const ID: &str = "3f4e1b2c5d6a7980aabbccddeeff00112233445566778899aabbccddeeff0011";

    /// A private directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("narwhal-docker-test-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir(&path).unwrap();
            TempDir(path)
        }
        fn socket(&self) -> PathBuf {
            self.0.join("docker.sock")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A fake daemon serving one connection with `response`; the thread
    /// returns the request it received.
    fn serve(response: Vec<u8>) -> (TempDir, JoinHandle<String>) {
        let dir = TempDir::new();
        let listener = UnixListener::bind(dir.socket()).unwrap();
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while find(&request, b"\r\n\r\n").is_none() {
                let n = conn.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            // The client may stop reading early (oversized responses).
            let _ = conn.write_all(&response);
            String::from_utf8(request).unwrap()
        });
        (dir, handle)
    }

    fn http(status: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.0 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn inspect_json(running: bool, pid: i64) -> String {
        format!(
            r#"{{"Id":"{ID}","Created":"2024-01-01T00:00:00Z","Name":"/web-1",
               "State":{{"Status":"running","Running":{running},"Paused":false,"Pid":{pid},"ExitCode":0}},
               "Config":{{"Hostname":"3f4e1b2c5d6a"}}}}"#
        )
    }

    fn run(response: Vec<u8>, name: &str) -> (Result<Container, DockerError>, String) {
        let (dir, server) = serve(response);
        let result = inspect(&dir.socket(), name);
        (result, server.join().unwrap())
    }

    #[test]
    fn running_container() {
        let (result, request) = run(http("200 OK", &inspect_json(true, 4242)), "web-1");
        assert_eq!(
            request,
            "GET /containers/web-1/json HTTP/1.0\r\nHost: docker\r\n\r\n"
        );
        let c = result.unwrap();
        assert_eq!(c.id, ID);
        assert_eq!(c.name, "web-1");
        assert_eq!(c.pid, 4242);
        assert_eq!(c.short_id(), "3f4e1b2c5d6a");
    }

    #[test]
    fn no_content_length_reads_to_eof() {
        let body = inspect_json(true, 7);
        let response = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{body}");
        let c = run(response.into_bytes(), "3f4e1b2c5d6a").0.unwrap();
        assert_eq!(c.pid, 7);
    }

    #[test]
    fn chunked_response() {
        let body = inspect_json(true, 99);
        let (a, b) = body.split_at(17);
        let response = format!(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n{:x}\r\n{a}\r\n{:X};ext=1\r\n{b}\r\n0\r\nX-Trailer: y\r\n\r\n",
            a.len(),
            b.len()
        );
        let c = run(response.into_bytes(), "web-1").0.unwrap();
        assert_eq!((c.id.as_str(), c.pid), (ID, 99));
    }

    #[test]
    fn not_found() {
        let body = r#"{"message":"No such container: nope"}"#;
        let err = run(http("404 Not Found", body), "nope").0.unwrap_err();
        assert!(matches!(err, DockerError::NotFound(_)), "{err:?}");
        assert_eq!(err.to_string(), "no such Docker container 'nope'");
    }

    #[test]
    fn server_error_with_message() {
        let body = "{\"message\":\"something\\nbroke\"}\n";
        let err = run(http("500 Internal Server Error", body), "web-1")
            .0
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Docker daemon returned HTTP 500 for container 'web-1': something broke"
        );
    }

    #[test]
    fn server_error_without_message() {
        let err = run(http("502 Bad Gateway", ""), "web-1").0.unwrap_err();
        assert_eq!(
            err.to_string(),
            "Docker daemon returned HTTP 502 for container 'web-1'"
        );
    }

    #[test]
    fn not_running() {
        for (running, pid) in [
            (false, 0),
            (false, 123),
            (true, 0),
            (true, -1),
            (true, 1 << 40),
        ] {
            let err = run(http("200 OK", &inspect_json(running, pid)), "web-1")
                .0
                .unwrap_err();
            assert!(matches!(err, DockerError::NotRunning { .. }), "{err:?}");
            assert_eq!(err.to_string(), "Docker container 'web-1' is not running");
        }
    }

    #[test]
    fn malformed_json() {
        let err = run(http("200 OK", "{\"Id\": "), "web-1").0.unwrap_err();
        assert!(matches!(err, DockerError::Json { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "cannot parse the Docker daemon's description of container 'web-1'"
        );
        assert!(err.source().is_some());

        let err = run(http("200 OK", r#"{"Id":"abc"}"#), "web-1")
            .0
            .unwrap_err();
        assert!(matches!(err, DockerError::Json { .. }), "{err:?}");

        let body = r#"{"Id":"abc","Name":"/x","State":{"Running":true,"Pid":5}}"#;
        let err = run(http("200 OK", body), "web-1").0.unwrap_err();
        assert!(matches!(err, DockerError::BadId { .. }), "{err:?}");
    }

    #[test]
    fn malformed_http() {
        let cases: [&[u8]; 5] = [
            b"",
            b"garbage\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{}",
            b"HTTP/1.1 200 OK\r\nContent-Type: x",
        ];
        for case in cases {
            let err = run(case.to_vec(), "web-1").0.unwrap_err();
            assert!(matches!(err, DockerError::BadResponse { .. }), "{err:?}");
            assert!(err
                .to_string()
                .starts_with("malformed HTTP response from the Docker daemon at /"));
        }
    }

    #[test]
    fn oversized_response() {
        let mut response = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        response.resize(MAX_RESPONSE + 1, b' ');
        let err = run(response, "web-1").0.unwrap_err();
        assert!(
            matches!(err, DockerError::ResponseTooLarge { .. }),
            "{err:?}"
        );
        assert!(err.to_string().ends_with("exceeds 4 MiB"), "{err}");
    }

    #[test]
    fn silent_daemon_times_out() {
        let dir = TempDir::new();
        let listener = UnixListener::bind(dir.socket()).unwrap();
        let start = Instant::now();
        let err =
            inspect_with_timeout(&dir.socket(), "web-1", Duration::from_millis(200)).unwrap_err();
        drop(listener);
        assert!(matches!(err, DockerError::Timeout { .. }), "{err:?}");
        assert!(start.elapsed() < Duration::from_secs(3));
        assert!(err
            .to_string()
            .starts_with("timed out after 0.2s waiting for the Docker daemon at /"));
    }

    #[test]
    fn invalid_names_rejected_without_connecting() {
        let dir = TempDir::new();
        let listener = UnixListener::bind(dir.socket()).unwrap();
        listener.set_nonblocking(true).unwrap();
        let long = "a".repeat(254);
        for name in [
            "",
            "-x",
            "_x",
            ".x",
            "..",
            "a/b",
            "../../info",
            "a b",
            "a?b",
            "a%2f",
            "a\nb",
            "/web",
            "名前",
            long.as_str(),
        ] {
            let err = inspect(&dir.socket(), name).unwrap_err();
            assert!(
                matches!(err, DockerError::InvalidName(_)),
                "{name:?}: {err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!("invalid Docker container name '{name}'")
            );
        }
        let err = listener.accept().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);

        for name in ["a", "web-1", "my_app.v2", ID, &"a".repeat(253)] {
            validate_name(name).unwrap();
        }
    }

    #[test]
    fn missing_socket() {
        let dir = TempDir::new();
        let socket = dir.socket();
        let err = inspect(&socket, "web-1").unwrap_err();
        assert!(matches!(err, DockerError::Connect { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot connect to the Docker daemon at {} (is dockerd running? \
                 set DOCKER_HOST=unix://PATH for another socket)",
                socket.display()
            )
        );
        let source = err.source().unwrap().downcast_ref::<io::Error>().unwrap();
        assert_eq!(source.kind(), io::ErrorKind::NotFound);

        let err = DockerError::Connect {
            socket: socket.clone(),
            source: io::Error::from_raw_os_error(13),
        };
        assert_eq!(
            err.to_string(),
            format!(
                "cannot connect to the Docker daemon at {} (are you root or in the socket's group? \
                 set DOCKER_HOST=unix://PATH for another socket)",
                socket.display()
            )
        );
    }

    #[test]
    fn docker_host() {
        let default = PathBuf::from("/var/run/docker.sock");
        assert_eq!(parse_docker_host(None).unwrap(), default);
        assert_eq!(parse_docker_host(Some("")).unwrap(), default);
        assert_eq!(
            parse_docker_host(Some("unix:///run/user/1000/docker.sock")).unwrap(),
            PathBuf::from("/run/user/1000/docker.sock")
        );
        for bad in [
            "tcp://127.0.0.1:2375",
            "ssh://me@host",
            "unix://",
            "/var/run/docker.sock",
            "npipe:////./pipe/docker_engine",
        ] {
            let err = parse_docker_host(Some(bad)).unwrap_err();
            assert!(
                matches!(err, DockerError::UnsupportedHost(_)),
                "{bad}: {err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!("unsupported DOCKER_HOST '{bad}': only unix://PATH is supported")
            );
        }
    }

    #[test]
    fn short_id_of_short_string() {
        let c = Container {
            id: "abc".into(),
            name: "x".into(),
            pid: 1,
        };
        assert_eq!(c.short_id(), "abc");
    }
}
