//! Kubernetes exec: run a command in a pod's container and capture what it printed and how it
//! ended. Used by freeze/thaw hooks and by the repository reader of a restore.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::AttachParams;
use super::redact::Redactor;
use kube::{Api, Client};
use tokio::io::{AsyncRead, AsyncReadExt};

/// What an exec'd command printed and how it ended.
#[derive(Debug, Default)]
pub struct Captured {
    /// Its stdout, at most `stdout_limit` + 1 bytes of it (more means it printed too much).
    pub stdout: Vec<u8>,
    /// Its stderr.
    pub stderr: Vec<u8>,
    /// The exit status the API reported (`status: Success`, or the failure's reason and
    /// message); `None` when none was reported.
    pub status: Option<Status>,
}

/// Runs `command` in `container` (default: the pod's only one) of `pod` and waits for it to
/// end, keeping at most `stdout_limit` + 1 bytes of its stdout (the rest is read and dropped,
/// so the command never blocks on a full stream). `client` must speak HTTP/1.1
/// (`ApiClients::exec`). An error is a failed exec call, not a failed command.
pub async fn capture(client: &Client, namespace: &str, pod: &str, container: Option<&str>, command: Vec<String>, stdout_limit: u64) -> Result<Captured, kube::Error> {
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    let mut params = AttachParams::default().stdin(false).stdout(true).stderr(true);
    if let Some(container) = container {
        params = params.container(container);
    }
    let mut process = api.exec(pod, command, &params).await?;
    let stdout = process.stdout();
    let stderr = process.stderr();
    let status = process.take_status();
    let (stdout, stderr, status) = tokio::join!(read_kept(stdout, stdout_limit + 1), read_kept(stderr, u64::MAX), async {
        match status {
            Some(s) => s.await,
            None => None,
        }
    });
    let _ = process.join().await;
    Ok(Captured { stdout, stderr, status })
}

/// Reads `stream` to its end, keeping its first `keep` bytes.
async fn read_kept(stream: Option<impl AsyncRead + Unpin>, keep: u64) -> Vec<u8> {
    let mut kept = Vec::new();
    if let Some(mut stream) = stream {
        let _ = (&mut stream).take(keep).read_to_end(&mut kept).await;
        let _ = tokio::io::copy(&mut stream, &mut tokio::io::sink()).await;
    }
    kept
}

/// How much of a failed command's stderr is quoted.
const STDERR_TAIL_CHARS: usize = 300;

/// The message of a failed command (a hook, a restic command of a restore): the exit reason and the end of its stderr, with
/// every secret value replaced (before the stderr is cut, so no part of one survives the cut).
pub fn failure_message(reason: &str, stderr: &[u8], redactor: &Redactor) -> String {
    let stderr = redactor.redact(String::from_utf8_lossy(stderr).trim());
    let tail: String = stderr.chars().rev().take(STDERR_TAIL_CHARS).collect::<Vec<_>>().into_iter().rev().collect();
    let message = if tail.is_empty() { reason.to_string() } else { format!("{reason}; stderr: {tail}") };
    redactor.redact(&message)
}
