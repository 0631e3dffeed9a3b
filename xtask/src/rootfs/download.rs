//! Downloads with a `curl` subprocess: https and a progress bar without
//! pulling an HTTP/TLS stack into the build. curl's own error line (e.g.
//! "curl: (6) Could not resolve host: ...") becomes the error message.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use super::RootfsError;

/// How long a whole download may take.
pub struct Limits {
    pub connect_secs: u32,
    pub max_secs: u32,
}

/// Downloads `url` to `dest` (overwriting it). With `progress`, curl's
/// progress bar is shown on stderr.
pub fn download(url: &str, dest: &Path, progress: bool, limits: &Limits) -> Result<(), RootfsError> {
    let mut cmd = Command::new("curl");
    cmd.arg("-fL")
        .arg(if progress { "--progress-bar" } else { "-sS" })
        .args(["--connect-timeout", &limits.connect_secs.to_string()])
        .args(["--max-time", &limits.max_secs.to_string()])
        .arg("-o")
        .arg(dest)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(RootfsError::CurlMissing(url.to_string())),
        Err(e) => {
            return Err(RootfsError::Download {
                url: url.to_string(),
                msg: format!("cannot run curl: {e}"),
            })
        }
    };
    let stderr = child.stderr.take().expect("stderr is piped");
    let captured = forward_and_capture(stderr, progress);
    let status = child.wait().map_err(|e| RootfsError::Download {
        url: url.to_string(),
        msg: format!("waiting for curl: {e}"),
    })?;
    if status.success() {
        return Ok(());
    }
    let _ = std::fs::remove_file(dest);
    Err(RootfsError::Download {
        url: url.to_string(),
        msg: curl_error_line(&captured)
            .unwrap_or_else(|| format!("curl {}", crate::util::process::describe_status(status))),
    })
}

/// Copies curl's stderr to ours (when showing progress) and returns it.
fn forward_and_capture(mut stderr: impl Read, forward: bool) -> String {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let mut err = std::io::stderr();
    while let Ok(n) = stderr.read(&mut buf) {
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
        if forward {
            let _ = err.write_all(&buf[..n]);
        }
    }
    String::from_utf8_lossy(&all).into_owned()
}

/// "curl: (6) Could not resolve host: x" -> "curl: could not resolve host: x".
fn curl_error_line(stderr: &str) -> Option<String> {
    let line = stderr.split(['\n', '\r']).rfind(|l| l.contains("curl: ("))?;
    let line = &line[line.find("curl: (")?..];
    let rest = line.split_once(") ").map(|(_, r)| r).unwrap_or(line);
    let mut chars = rest.chars();
    let first = chars.next().map(|c| c.to_lowercase().to_string()).unwrap_or_default();
    Some(format!("curl: {first}{}", chars.as_str().trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_error_line_is_shortened() {
        let err = "####   12%\rcurl: (6) Could not resolve host: dl-cdn.alpinelinux.org\n";
        assert_eq!(
            curl_error_line(err).unwrap(),
            "curl: could not resolve host: dl-cdn.alpinelinux.org"
        );
        assert_eq!(curl_error_line("nothing"), None);
    }
}
