//! Freeze and thaw hooks: a command run in a container of a pod (Kubernetes exec), or an HTTP
//! request to the pod's IP. A failed command's stderr is quoted in the error with every
//! Secret value of the run replaced by `***` (see [`Redactor`]).

use super::exec::failure_message;
use super::redact::Redactor;
use crate::api::{Hook, HttpScheme};
use kube::Client;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Why a hook failed on a pod.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The hook has neither `exec` nor `http` (rejected by validation; kept for safety).
    #[error("the hook has neither exec nor http")]
    Empty,
    /// The exec call itself failed.
    #[error("exec in pod {pod} failed: {source}")]
    Exec {
        /// The pod.
        pod: String,
        /// Why.
        source: kube::Error,
    },
    /// The command ran and failed.
    #[error("hook command in pod {pod} failed: {message}")]
    Command {
        /// The pod.
        pod: String,
        /// Exit status and the end of stderr.
        message: String,
    },
    /// The HTTP request failed or answered with a non-2xx status.
    #[error("HTTP hook on pod {pod} failed: {message}")]
    Http {
        /// The pod.
        pod: String,
        /// What happened.
        message: String,
    },
    /// The hook did not finish in time.
    #[error("hook on pod {pod} did not finish within {seconds}s")]
    Timeout {
        /// The pod.
        pod: String,
        /// The time limit.
        seconds: u64,
    },
}

/// Runs `hook` on one pod, within `timeout`; the stderr quoted when it fails goes through
/// `redactor`. `client` runs exec hooks, so it must speak HTTP/1.1 (`ApiClients::exec`).
pub async fn run(client: &Client, namespace: &str, pod: &str, pod_ip: Option<&str>, hook: &Hook, timeout: Duration, redactor: &Redactor) -> Result<(), HookError> {
    let call = async {
        if let Some(exec) = &hook.exec {
            run_exec(client, namespace, pod, exec.container.as_deref(), &exec.command, redactor).await
        } else if let Some(http) = &hook.http {
            let Some(ip) = pod_ip else {
                return Err(HookError::Http { pod: pod.to_string(), message: "the pod has no IP".into() });
            };
            match http.scheme {
                HttpScheme::HTTP => run_http(pod, ip, http.port, &http.method, &http.path).await,
                HttpScheme::HTTPS => {
                    let err = |message: String| HookError::Http { pod: pod.to_string(), message };
                    let config = super::tls::client_config(client, namespace, http.ca_secret.as_deref()).await.map_err(err)?;
                    let name = http.server_name.as_deref().unwrap_or(ip);
                    run_https(pod, ip, http.port, &http.method, &http.path, config, name).await
                }
            }
        } else {
            Err(HookError::Empty)
        }
    };
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| Err(HookError::Timeout { pod: pod.to_string(), seconds: timeout.as_secs() }))
}

async fn run_exec(client: &Client, namespace: &str, pod: &str, container: Option<&str>, command: &[String], redactor: &Redactor) -> Result<(), HookError> {
    let captured = super::exec::capture(client, namespace, pod, container, command.to_vec(), 0)
        .await
        .map_err(|source| HookError::Exec { pod: pod.to_string(), source })?;
    match captured.status {
        Some(s) if s.status.as_deref() == Some("Success") => Ok(()),
        Some(s) => {
            let reason = s.message.unwrap_or_else(|| s.reason.unwrap_or_else(|| "non-zero exit".into()));
            Err(HookError::Command { pod: pod.to_string(), message: failure_message(&reason, &captured.stderr, redactor) })
        }
        None => Err(HookError::Command { pod: pod.to_string(), message: "no exit status was reported".into() }),
    }
}

/// A minimal HTTP/1.1 request (no body) to `ip:port`; success is a 2xx status.
async fn run_http(pod: &str, ip: &str, port: u16, method: &str, path: &str) -> Result<(), HookError> {
    let err = |message: String| HookError::Http { pod: pod.to_string(), message };
    let stream = tokio::net::TcpStream::connect((ip, port)).await.map_err(|e| err(format!("connect {ip}:{port}: {e}")))?;
    request(pod, stream, ip, port, method, path).await
}

/// The request of [`run_http`] over TLS: the server's certificate must chain to `config`'s
/// roots and carry `server_name` (a DNS name or an IP address, also the SNI).
async fn run_https(pod: &str, ip: &str, port: u16, method: &str, path: &str, config: std::sync::Arc<tokio_rustls::rustls::ClientConfig>, server_name: &str) -> Result<(), HookError> {
    let err = |message: String| HookError::Http { pod: pod.to_string(), message };
    let name = rustls_pki_types::ServerName::try_from(server_name.to_string()).map_err(|e| err(format!("server name {server_name:?}: {e}")))?;
    let tcp = tokio::net::TcpStream::connect((ip, port)).await.map_err(|e| err(format!("connect {ip}:{port}: {e}")))?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| err(format!("TLS handshake with {ip}:{port} (as {server_name}): {e}")))?;
    request(pod, stream, ip, port, method, path).await
}

/// Sends `method path` on `stream` and reads the answer to its end; success is a 2xx status.
async fn request<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(pod: &str, mut stream: S, ip: &str, port: u16, method: &str, path: &str) -> Result<(), HookError> {
    let err = |message: String| HookError::Http { pod: pod.to_string(), message };
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {ip}:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|e| err(format!("send: {e}")))?;
    let mut response = Vec::new();
    match stream.read_to_end(&mut response).await {
        Ok(_) => {}
        // A TLS server that closes without close_notify: its answer is complete all the same
        // (`Connection: close`), and only its status line is read.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {}
        Err(e) => return Err(err(format!("read: {e}"))),
    }
    let text = String::from_utf8_lossy(&response);
    let status_line = text.lines().next().unwrap_or_default();
    let code = status_line.split_whitespace().nth(1).and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(code) if (200..300).contains(&code) => Ok(()),
        Some(code) => Err(err(format!("{method} {path} answered {code}"))),
        None => Err(err(format!("{method} {path}: not an HTTP answer"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::test_server::serve_once;
    use tokio::net::TcpListener;


    #[test]
    fn failed_commands_quote_their_stderr_redacted() {
        let r = Redactor::new(["pw-77aa", "ab"]);
        let cases: Vec<(&str, Vec<u8>, String)> = vec![
            ("exit 1", b"".to_vec(), "exit 1".into()),
            ("exit 1", b"  \n".to_vec(), "exit 1".into()),
            ("exit 1", b"leaking pw-77aa\n".to_vec(), "exit 1; stderr: leaking ***".into()),
            ("exit 1", b"PW=pw-77aa USER=ab\n".to_vec(), "exit 1; stderr: PW=*** USER=***".into()),
            ("exit 1", [b"pw-77aa".as_slice(), &[b'y'; 297]].concat(), format!("exit 1; stderr: ***{}", "y".repeat(297))),
            // Redacted before the cut: cutting first would have left "7aa" of the password.
            ("exit 1", [b"pw-77aa".as_slice(), &[b'y'; 299]].concat(), format!("exit 1; stderr: *{}", "y".repeat(299))),
        ];
        for (reason, stderr, want) in cases {
            assert_eq!(failure_message(reason, &stderr, &r), want, "{:?}", String::from_utf8_lossy(&stderr));
        }
    }

    #[tokio::test]
    async fn http_hook_succeeds_on_2xx_and_fails_otherwise() {
        let ok = serve_once("HTTP/1.1 204 No Content\r\n\r\n").await;
        assert!(run_http("p", "127.0.0.1", ok, "POST", "/freeze").await.is_ok());
        let bad = serve_once("HTTP/1.1 503 Busy\r\n\r\n").await;
        let e = run_http("p", "127.0.0.1", bad, "POST", "/freeze").await.expect_err("503");
        assert!(e.to_string().contains("answered 503"), "{e}");
        let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr").port();
        assert!(run_http("p", "127.0.0.1", closed, "POST", "/").await.is_err());
    }

    /// A CA, and a server certificate it signed for `names`, as (CA PEM, server cert DER, key DER).
    fn pki(names: &[&str]) -> (String, Vec<u8>, Vec<u8>) {
        let ca_key = rcgen::KeyPair::generate().expect("ca key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "archive hooks CA");
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("params");
        let cert = params.signed_by(&key, &issuer).expect("cert");
        (ca.pem(), cert.der().to_vec(), key.serialize_der())
    }

    /// Serves one TLS connection with `cert`/`key`, answering `answer`; closes without
    /// close_notify when `abrupt`.
    async fn serve_tls_once(cert: Vec<u8>, key: Vec<u8>, answer: &'static str, abrupt: bool) -> u16 {
        use tokio_rustls::rustls;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.into()], rustls_pki_types::PrivateKeyDer::Pkcs8(key.into()))
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let Ok((sock, _)) = listener.accept().await else { return };
            let Ok(mut tls) = acceptor.accept(sock).await else { return };
            let mut buf = [0u8; 1024];
            let _ = tls.read(&mut buf).await;
            let _ = tls.write_all(answer.as_bytes()).await;
            let _ = tls.flush().await;
            if !abrupt {
                let _ = tls.shutdown().await;
            }
        });
        port
    }

    #[tokio::test]
    async fn https_hooks_verify_the_server_certificate_and_its_name() {
        let (ca, cert, key) = pki(&["127.0.0.1", "mailstore-0.mailstore.mail.svc"]);
        let (other_ca, _, _) = pki(&["127.0.0.1"]);
        let trusting = |pem: &str| super::super::tls::config(super::super::tls::roots_from_pem(pem.as_bytes()).expect("roots")).expect("config");
        type Case = (&'static str, String, &'static str, &'static str, bool, Result<(), &'static str>);
        let cases: Vec<Case> = vec![
            ("signed by the CA, for the pod IP", ca.clone(), "127.0.0.1", "HTTP/1.1 204 No Content\r\n\r\n", false, Ok(())),
            ("signed by the CA, for the server name", ca.clone(), "mailstore-0.mailstore.mail.svc", "HTTP/1.1 200 OK\r\n\r\n", false, Ok(())),
            ("closed without close_notify", ca.clone(), "127.0.0.1", "HTTP/1.1 204 No Content\r\n\r\n", true, Ok(())),
            ("an answer that is not 2xx", ca.clone(), "127.0.0.1", "HTTP/1.1 409 Conflict\r\n\r\n", false, Err("answered 409")),
            ("another CA", other_ca.clone(), "127.0.0.1", "HTTP/1.1 204 No Content\r\n\r\n", false, Err("TLS handshake")),
            ("a name the certificate does not carry", ca.clone(), "mailstore-1.mailstore.mail.svc", "HTTP/1.1 204 No Content\r\n\r\n", false, Err("TLS handshake")),
        ];
        for (name, trusted, server_name, answer, abrupt, want) in cases {
            let port = serve_tls_once(cert.clone(), key.clone(), answer, abrupt).await;
            let got = run_https("p", "127.0.0.1", port, "POST", "/thaw", trusting(&trusted), server_name).await;
            match (got, want) {
                (Ok(()), Ok(())) => {}
                (Err(e), Err(part)) => assert!(e.to_string().contains(part), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
        assert!(super::super::tls::roots_from_pem(b"not a certificate").is_err());
        assert!(super::super::tls::roots_from_pem(b"").expect_err("empty").contains("no PEM certificate"));
    }
}
