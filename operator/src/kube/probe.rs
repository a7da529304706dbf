//! The check a restore drill runs against the restored copy (`verification.drillProbe`): a
//! command through the exec API, an HTTP GET or a TCP connection to the copy's pod IP.

use super::exec;
use super::redact::Redactor;
use crate::api::{DrillProbe, ExecHook};
use kube::Client;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// How a probe ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// Whether it passed.
    pub passed: bool,
    /// What happened, in words (secret values replaced).
    pub message: String,
    /// The start of what it printed or answered (secret values replaced).
    pub output: Option<String>,
}

/// Where the probe runs: the copy's pod.
#[derive(Debug, Clone, Copy)]
pub struct ProbeTarget<'a> {
    /// The namespace.
    pub namespace: &'a str,
    /// The pod.
    pub pod: &'a str,
    /// Its IP.
    pub ip: Option<&'a str>,
}

/// Runs `probe` (none: the pod's being Ready passed already) against `target` within its
/// timeout. `exec_client` must speak HTTP/1.1 (`ApiClients::exec`); `limit` bytes of output
/// are kept.
pub async fn run(exec_client: &Client, target: ProbeTarget<'_>, probe: Option<&DrillProbe>, limit: usize, redactor: &Redactor) -> ProbeResult {
    let Some(probe) = probe else {
        return ProbeResult { passed: true, message: format!("pod {} of the restored copy is Ready (no drillProbe)", target.pod), output: None };
    };
    let timeout = Duration::from_secs(u64::from(probe.timeout_seconds.max(1)));
    let checked = async {
        if let Some(exec) = &probe.exec {
            run_exec(exec_client, target, exec, limit, redactor).await
        } else if let Some(http) = &probe.http {
            let ip = target.ip.ok_or_else(|| format!("pod {} has no IP yet", target.pod))?;
            http_get(ip, http.port, &http.path, limit).await
        } else if let Some(tcp) = &probe.tcp {
            let ip = target.ip.ok_or_else(|| format!("pod {} has no IP yet", target.pod))?;
            TcpStream::connect((ip, tcp.port)).await.map_err(|e| format!("TCP connect to {ip}:{}: {e}", tcp.port))?;
            Ok((format!("TCP port {} of pod {} accepted a connection", tcp.port, target.pod), None))
        } else {
            Err("drillProbe has none of exec, http or tcp".to_string())
        }
    };
    match tokio::time::timeout(timeout, checked).await {
        Ok(Ok((message, output))) => ProbeResult { passed: true, message, output: output.map(|o| redactor.redact(&o)) },
        Ok(Err(message)) => ProbeResult { passed: false, message: redactor.redact(&message), output: None },
        Err(_) => ProbeResult { passed: false, message: format!("the probe did not answer within {}s", timeout.as_secs()), output: None },
    }
}

type Checked = Result<(String, Option<String>), String>;

async fn run_exec(client: &Client, target: ProbeTarget<'_>, exec: &ExecHook, limit: usize, redactor: &Redactor) -> Checked {
    let captured = exec::capture(client, target.namespace, target.pod, exec.container.as_deref(), exec.command.clone(), limit as u64)
        .await
        .map_err(|e| format!("exec in pod {} failed: {e}", target.pod))?;
    let mut stdout = captured.stdout;
    stdout.truncate(limit);
    let output = String::from_utf8_lossy(&stdout).into_owned();
    match captured.status {
        Some(status) if status.status.as_deref() == Some("Success") => Ok((format!("the probe command succeeded in pod {}", target.pod), Some(output))),
        Some(status) => {
            let reason = status.message.unwrap_or_else(|| status.reason.unwrap_or_else(|| "failed".into()));
            let mut message = exec::failure_message(&format!("the probe command failed in pod {}: {reason}", target.pod), &captured.stderr, redactor);
            if !output.trim().is_empty() {
                message = format!("{message}; stdout: {}", redactor.redact(output.trim()));
            }
            Err(message)
        }
        None => Err(format!("the probe command in pod {} ended without an exit status", target.pod)),
    }
}

/// `GET path` to `ip:port` (HTTP/1.0, so the answer is not chunked): passed on 2xx, with the
/// answer's first `limit` bytes of body.
async fn http_get(ip: &str, port: u16, path: &str, limit: usize) -> Checked {
    let mut stream = TcpStream::connect((ip, port)).await.map_err(|e| format!("connect {ip}:{port}: {e}"))?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {ip}:{port}\r\nUser-Agent: archivist-drill\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|e| format!("send to {ip}:{port}: {e}"))?;
    let mut answer = Vec::new();
    // The head and `limit` bytes of body at most; the rest is not read.
    (&mut stream).take((limit + 16 * 1024) as u64).read_to_end(&mut answer).await.map_err(|e| format!("read from {ip}:{port}: {e}"))?;
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, body) = match split {
        Some(at) => (&answer[..at], &answer[at + 4..]),
        None => (&answer[..], &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let code = head.lines().next().and_then(|line| line.split_whitespace().nth(1)).and_then(|c| c.parse::<u16>().ok());
    let body = String::from_utf8_lossy(&body[..body.len().min(limit)]).into_owned();
    match code {
        Some(code) if (200..300).contains(&code) => Ok((format!("GET {path} answered {code}"), Some(body))),
        Some(code) => Err(format!("GET {path} answered {code}: {}", body.chars().take(300).collect::<String>())),
        None => Err(format!("GET {path}: not an HTTP answer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{HttpProbe, TcpProbe};
    use super::super::test_server::serve_once;
    use tokio::net::TcpListener;


    fn probe(http: Option<HttpProbe>, tcp: Option<TcpProbe>, timeout: u32) -> DrillProbe {
        DrillProbe { exec: None, http, tcp, timeout_seconds: timeout }
    }

    async fn client() -> Client {
        // Never contacted by the HTTP and TCP probes.
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("url"));
        Client::try_from(config).expect("client")
    }

    #[tokio::test]
    async fn http_tcp_and_no_probe_pass_or_fail_as_the_copy_answers() {
        let client = client().await;
        let redactor = Redactor::new(["s3cret"]);
        let target = |port_ip: &'static str| ProbeTarget { namespace: "ns", pod: "copy-0", ip: Some(port_ip) };
        let http = |port, path: &str| probe(Some(HttpProbe { port, path: path.into() }), None, 5);

        let ok = serve_once("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n42 messages; key s3cret").await;
        let result = run(&client, target("127.0.0.1"), Some(&http(ok, "/health")), 4096, &redactor).await;
        assert!(result.passed, "{result:?}");
        assert_eq!(result.output.as_deref(), Some("42 messages; key ***"));

        let bad = serve_once("HTTP/1.0 503 Service Unavailable\r\n\r\nstore not mounted").await;
        let result = run(&client, target("127.0.0.1"), Some(&http(bad, "/")), 4096, &redactor).await;
        assert!(!result.passed && result.message.contains("503") && result.message.contains("store not mounted"), "{result:?}");

        let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr").port();
        let result = run(&client, target("127.0.0.1"), Some(&probe(None, Some(TcpProbe { port: closed }), 5)), 4096, &redactor).await;
        assert!(!result.passed, "{result:?}");
        let open = serve_once("").await;
        let result = run(&client, target("127.0.0.1"), Some(&probe(None, Some(TcpProbe { port: open }), 5)), 4096, &redactor).await;
        assert!(result.passed, "{result:?}");

        // A server that never answers fails at the timeout.
        let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = silent.local_addr().expect("addr").port();
        let impatient = probe(Some(HttpProbe { port, path: "/".into() }), None, 1);
        let result = run(&client, target("127.0.0.1"), Some(&impatient), 4096, &redactor).await;
        assert!(!result.passed && result.message.contains("within 1s"), "{result:?}");
        drop(silent);

        let result = run(&client, ProbeTarget { namespace: "ns", pod: "copy-0", ip: None }, Some(&http(ok, "/")), 4096, &redactor).await;
        assert!(!result.passed && result.message.contains("no IP"), "{result:?}");
        assert!(run(&client, target("127.0.0.1"), None, 4096, &redactor).await.passed);
    }
}
