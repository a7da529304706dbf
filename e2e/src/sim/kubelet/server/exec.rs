//! `/exec/<ns>/<pod>/<container>?command=..&input=1&output=1&error=1&tty=0` over WebSocket,
//! channel protocols `v5.channel.k8s.io`, `v4.channel.k8s.io` and `channel.k8s.io`: stdin on
//! channel 0, stdout 1, stderr 2, the exit status on 3 (resize, 4, is ignored: no TTYs), and
//! in v5 a close message (255, channel) for the end of stdin. The command runs in the
//! container's sandbox (same mounts, environment and working directory).

use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::process::Stdio;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::{text, Body};
use crate::sim::kubelet::{ContainerHandle, ContainerKey};

/// The channel protocols this endpoint speaks, most preferred first.
pub const PROTOCOLS: [&str; 3] = ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"];

/// An exec request's query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecQuery {
    /// The command and its arguments.
    pub command: Vec<String>,
    /// Attach stdin.
    pub stdin: bool,
    /// Attach stdout.
    pub stdout: bool,
    /// Attach stderr.
    pub stderr: bool,
    /// A TTY was asked for (not available: stderr is sent on stdout's channel).
    pub tty: bool,
}

impl ExecQuery {
    /// Parses the query string (both the kubelet's `input/output/error` and the API's
    /// `stdin/stdout/stderr` names).
    pub fn parse(query: &str) -> Self {
        let mut q = ExecQuery::default();
        for (key, value) in query.split('&').filter_map(|kv| kv.split_once('=')) {
            let value = percent_decode(value);
            let yes = value == "1" || value == "true";
            match key {
                "command" => q.command.push(value),
                "input" | "stdin" => q.stdin = yes,
                "output" | "stdout" => q.stdout = yes,
                "error" | "stderr" => q.stderr = yes,
                "tty" => q.tty = yes,
                _ => {}
            }
        }
        q
    }
}

/// Decodes `%XX` escapes and `+` (a space in a query string).
pub fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Picks the protocol to answer with from the client's `Sec-WebSocket-Protocol` headers.
pub fn choose_protocol<'a>(offered: impl Iterator<Item = &'a str>) -> Option<&'static str> {
    let offered: Vec<&str> = offered.flat_map(|h| h.split(',')).map(str::trim).collect();
    PROTOCOLS.into_iter().find(|p| offered.contains(p))
}

/// The JSON Status sent on channel 3 when the command ended with `exit_code`.
pub fn exit_status(exit_code: i32, command: &[String]) -> serde_json::Value {
    if exit_code == 0 {
        serde_json::json!({ "metadata": {}, "status": "Success" })
    } else {
        serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: error executing command {command:?}: exit code {exit_code}"),
            "reason": "NonZeroExitCode",
            "details": { "causes": [{ "reason": "ExitCode", "message": exit_code.to_string() }] },
        })
    }
}

/// Answers the WebSocket upgrade and runs the session once upgraded.
pub fn handle(mut req: Request<Incoming>, key: ContainerKey, handle: Arc<ContainerHandle>) -> Response<Body> {
    let is_websocket = req
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(ws_key) = req.headers().get(SEC_WEBSOCKET_KEY).cloned().filter(|_| is_websocket) else {
        return text(StatusCode::BAD_REQUEST, "archivist-sim kubelet: exec needs a WebSocket upgrade (SPDY is not supported)");
    };
    let offered = req.headers().get_all(SEC_WEBSOCKET_PROTOCOL).iter().filter_map(|v| v.to_str().ok());
    let Some(protocol) = choose_protocol(offered) else {
        return text(StatusCode::BAD_REQUEST, format!("archivist-sim kubelet: supported protocols are {PROTOCOLS:?}"));
    };
    let query = ExecQuery::parse(req.uri().query().unwrap_or(""));
    if query.command.is_empty() {
        return text(StatusCode::BAD_REQUEST, "exec: no command");
    }
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
                tracing::info!(?key, command = ?query.command, protocol, "exec");
                session(ws, &query, protocol, &handle).await;
            }
            Err(err) => tracing::warn!(error = %err, "exec upgrade failed"),
        }
    });
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(ws_key.as_bytes());
    let mut response = Response::new(http_body_util::BodyExt::boxed(http_body_util::Empty::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    headers.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(protocol));
    response
}

/// Runs the command and shuttles its streams over the WebSocket.
async fn session<S>(ws: WebSocketStream<S>, query: &ExecQuery, protocol: &str, handle: &ContainerHandle)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(32);
    let writer = tokio::spawn(async move {
        while let Some(message) = out_rx.recv().await {
            if ws_tx.send(message).await.is_err() {
                return;
            }
        }
        // A normal closure (1000) is EOF for client-go; a bare close (1005) is an error.
        let normal = CloseFrame { code: CloseCode::Normal, reason: "".into() };
        let _ = ws_tx.send(Message::Close(Some(normal))).await;
        let _ = ws_tx.close().await;
    });

    let mut command = handle.sandbox.command(&query.command);
    let piped = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    command.stdin(piped(query.stdin)).stdout(piped(query.stdout)).stderr(piped(query.stderr || query.tty));
    let exit_code = match command.spawn() {
        Err(err) => {
            let _ = out_tx.send(Message::binary(channel(2, format!("failed to start: {err}\n").as_bytes()))).await;
            126
        }
        Ok(mut child) => {
            let stderr_channel = if query.tty { 1 } else { 2 };
            let pumps: Vec<_> = [
                child.stdout.take().map(|out| tokio::spawn(pump(out, 1, out_tx.clone()))),
                child.stderr.take().map(|err| tokio::spawn(pump(err, stderr_channel, out_tx.clone()))),
            ]
            .into_iter()
            .flatten()
            .collect();
            let mut stdin = child.stdin.take();
            let mut client_open = true;
            let code = loop {
                tokio::select! {
                    status = child.wait() => {
                        use std::os::unix::process::ExitStatusExt as _;
                        break status.ok().and_then(|s| s.code().or_else(|| s.signal().map(|n| 128 + n))).unwrap_or(255);
                    }
                    message = ws_rx.next(), if client_open => match message {
                        Some(Ok(Message::Binary(data))) => match (data.first(), data.get(1)) {
                            (Some(0), _) => {
                                if let Some(pipe) = stdin.as_mut() {
                                    if pipe.write_all(&data[1..]).await.is_err() {
                                        stdin = None;
                                    }
                                }
                            }
                            (Some(255), Some(0)) => stdin = None,
                            _ => {}
                        },
                        Some(Ok(_)) => {}
                        // The client went away: end the command.
                        Some(Err(_)) | None => {
                            client_open = false;
                            let _ = child.start_kill();
                        }
                    }
                }
            };
            for pump in pumps {
                let _ = pump.await;
            }
            code
        }
    };
    let status = match protocol {
        "channel.k8s.io" if exit_code == 0 => None,
        "channel.k8s.io" => Some(Bytes::from(format!("command terminated with exit code {exit_code}"))),
        _ => serde_json::to_vec(&exit_status(exit_code, &query.command)).ok().map(Bytes::from),
    };
    if let Some(status) = status {
        let _ = out_tx.send(Message::binary(channel(3, &status))).await;
    }
    drop(out_tx);
    let _ = writer.await;
}

/// Forwards a process's output as channel messages.
async fn pump(mut reader: impl AsyncRead + Unpin, channel_id: u8, out: mpsc::Sender<Message>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if out.send(Message::binary(channel(channel_id, &buf[..n]))).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// `channel_id` followed by `data`.
fn channel(channel_id: u8, data: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(data.len() + 1);
    message.push(channel_id);
    message.extend_from_slice(data);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_queries_in_both_spellings() {
        let q = ExecQuery::parse("command=sh&command=-c&command=echo+hi%20there%3B&input=1&output=1&error=0&tty=false");
        assert_eq!(q.command, vec!["sh", "-c", "echo hi there;"]);
        assert!(q.stdin && q.stdout && !q.stderr && !q.tty);
        let q = ExecQuery::parse("command=ls&stdout=true&stderr=true");
        assert!(q.stdout && q.stderr && !q.stdin);
    }

    #[test]
    fn decodes_broken_escapes_literally() {
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }

    #[test]
    fn prefers_v5_then_v4() {
        assert_eq!(choose_protocol(["v4.channel.k8s.io, v5.channel.k8s.io"].into_iter()), Some("v5.channel.k8s.io"));
        assert_eq!(choose_protocol(["v4.channel.k8s.io", "base64.channel.k8s.io"].into_iter()), Some("v4.channel.k8s.io"));
        assert_eq!(choose_protocol(["v3.channel.k8s.io"].into_iter()), None);
    }

    #[test]
    fn non_zero_exit_is_a_failure_with_the_code_as_cause() {
        let status = exit_status(3, &["false".into()]);
        assert_eq!(status["status"], "Failure");
        assert_eq!(status["reason"], "NonZeroExitCode");
        assert_eq!(status["details"]["causes"][0]["message"], "3");
        assert_eq!(exit_status(0, &[])["status"], "Success");
    }
}
