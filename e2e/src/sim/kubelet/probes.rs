//! Readiness and liveness probes: exec (inside the container's sandbox), httpGet and
//! tcpSocket (against the pod's IP), with the spec's delays, periods and thresholds.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerPort, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::sandbox::{self, Sandbox};

/// Where a probe runs.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    /// The pod's IP (default host of httpGet/tcpSocket).
    pub pod_ip: String,
    /// The container's ports, for named ports.
    pub ports: Vec<ContainerPort>,
    /// The container's sandbox, for exec probes.
    pub sandbox: Sandbox,
    /// The probed instance's process group (exec probes run inside it).
    pub pgid: u32,
}

/// Runs `probe` forever, calling `report` with the derived state each time it changes
/// (starting from `initial`): true after `successThreshold` successes in a row, false after
/// `failureThreshold` failures in a row.
pub async fn watch(
    probe: &Probe,
    target: &ProbeTarget,
    initial: bool,
    mut report: impl FnMut(bool),
) {
    let secs = |v: Option<i32>, default: u64| {
        Duration::from_secs(v.map_or(default, |s| u64::try_from(s).unwrap_or(default)))
    };
    let period = secs(probe.period_seconds, 10).max(Duration::from_millis(100));
    let timeout = secs(probe.timeout_seconds, 1).max(Duration::from_millis(100));
    let successes_needed = probe.success_threshold.unwrap_or(1).max(1);
    let failures_needed = probe.failure_threshold.unwrap_or(3).max(1);
    tokio::time::sleep(secs(probe.initial_delay_seconds, 0)).await;
    let (mut state, mut successes, mut failures) = (initial, 0, 0);
    loop {
        let ok = tokio::time::timeout(timeout, probe_once(probe, target))
            .await
            .unwrap_or(false);
        if ok {
            successes += 1;
            failures = 0;
        } else {
            failures += 1;
            successes = 0;
        }
        let next = if successes >= successes_needed {
            true
        } else if failures >= failures_needed {
            false
        } else {
            state
        };
        if next != state {
            state = next;
            report(state);
        }
        tokio::time::sleep(period).await;
    }
}

/// One probe attempt.
pub async fn probe_once(probe: &Probe, target: &ProbeTarget) -> bool {
    if let Some(exec) = &probe.exec {
        let argv = exec.command.clone().unwrap_or_default();
        if argv.is_empty() {
            return false;
        }
        let mut command = match sandbox::namespace_init(target.pgid) {
            Some(init) => target.sandbox.enter_command(init, &argv),
            None => target.sandbox.command(&argv),
        };
        let Ok(mut child) = command.spawn() else {
            return false;
        };
        // If the probe times out (this future is dropped), the whole command goes.
        let _guard = GroupGuard(child.id().unwrap_or(0));
        return child.wait().await.is_ok_and(|status| status.success());
    }
    if let Some(http) = &probe.http_get {
        let Some(port) = resolve_port(&http.port, &target.ports) else {
            return false;
        };
        let host = http
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| target.pod_ip.clone());
        let path = http
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        let headers: Vec<(String, String)> = http
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        return http_get(&host, port, &path, &headers)
            .await
            .is_some_and(|code| (200..400).contains(&code));
    }
    if let Some(tcp) = &probe.tcp_socket {
        let Some(port) = resolve_port(&tcp.port, &target.ports) else {
            return false;
        };
        let host = tcp
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| target.pod_ip.clone());
        return TcpStream::connect((host.as_str(), port)).await.is_ok();
    }
    if let Some(grpc) = &probe.grpc {
        // No gRPC health client here: an open port counts as serving.
        let Ok(port) = u16::try_from(grpc.port) else {
            return false;
        };
        return TcpStream::connect((target.pod_ip.as_str(), port))
            .await
            .is_ok();
    }
    false
}

/// Kills a process group when dropped.
struct GroupGuard(u32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        sandbox::kill_group(self.0);
    }
}

/// A numeric port, or the number of the container port with that name.
pub fn resolve_port(port: &IntOrString, ports: &[ContainerPort]) -> Option<u16> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => match name.parse::<u16>() {
            Ok(n) => Some(n),
            Err(_) => ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name))
                .and_then(|p| u16::try_from(p.container_port).ok()),
        },
    }
}

/// The status code of `GET http://host:port/path` (HTTP/1.1, no TLS).
async fn http_get(host: &str, port: u16, path: &str, headers: &[(String, String)]) -> Option<u16> {
    let mut stream = TcpStream::connect((host, port)).await.ok()?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.20\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        let n = stream.read(&mut head[read..]).await.ok()?;
        if n == 0 {
            break;
        }
        read += n;
    }
    parse_status_line(std::str::from_utf8(&head[..read]).ok()?)
}

/// The code in an HTTP status line such as `HTTP/1.1 200 OK`.
fn parse_status_line(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{HTTPGetAction, TCPSocketAction};

    fn target() -> ProbeTarget {
        ProbeTarget {
            pod_ip: "127.0.0.1".into(),
            ports: vec![ContainerPort {
                name: Some("web".into()),
                container_port: 8080,
                ..Default::default()
            }],
            sandbox: Sandbox {
                rootfs: "/nonexistent".into(),
                mounts: vec![],
                env: vec![],
                working_dir: "/".into(),
                ..Sandbox::default()
            },
            pgid: 0,
        }
    }

    #[test]
    fn resolves_named_ports() {
        let ports = target().ports;
        assert_eq!(
            resolve_port(&IntOrString::String("web".into()), &ports),
            Some(8080)
        );
        assert_eq!(
            resolve_port(&IntOrString::String("81".into()), &ports),
            Some(81)
        );
        assert_eq!(resolve_port(&IntOrString::Int(9), &ports), Some(9));
        assert_eq!(
            resolve_port(&IntOrString::String("nope".into()), &ports),
            None
        );
    }

    #[test]
    fn parses_status_lines() {
        assert_eq!(parse_status_line("HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(parse_status_line("garbage"), None);
    }

    #[tokio::test]
    async fn http_and_tcp_probes_against_a_local_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 512];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let ok = String::from_utf8_lossy(&buf[..n]).starts_with("GET /healthy ");
                let reply = if ok {
                    "HTTP/1.1 200 OK\r\n\r\n"
                } else {
                    "HTTP/1.1 500 Oops\r\n\r\n"
                };
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        });
        let http = |path: &str| Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.into()),
                port: IntOrString::Int(i32::from(port)),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(probe_once(&http("/healthy"), &target()).await);
        assert!(!probe_once(&http("/sick"), &target()).await);
        let tcp = Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(i32::from(port)),
                host: None,
            }),
            ..Default::default()
        };
        assert!(probe_once(&tcp, &target()).await);
    }
}
