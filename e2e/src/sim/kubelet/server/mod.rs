//! The kubelet's HTTPS endpoint on `127.0.0.1:<port>` (self-signed certificate; the API
//! server does not verify it): `/exec/<ns>/<pod>/<container>` over WebSocket and
//! `/containerLogs/<ns>/<pod>/<container>`, which `kubectl exec`/`logs` reach through the
//! API server's node proxy.

mod exec;
mod logs;

use std::convert::Infallible;
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::{ContainerKey, Kubelet};
use crate::sim::node::NODE_IP;

/// The body type of every response.
pub type Body = BoxBody<Bytes, Infallible>;

/// A plain-text response.
pub fn text(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(message.into())).boxed());
    *response.status_mut() = status;
    response
}

/// Accepts TLS connections on `127.0.0.1:port` and serves them until the task ends.
pub async fn serve(kubelet: Arc<Kubelet>, port: u16) -> anyhow::Result<()> {
    let acceptor = TlsAcceptor::from(Arc::new(tls_config()?));
    let listener = TcpListener::bind((NODE_IP, port))
        .await
        .with_context(|| format!("failed to listen on {NODE_IP}:{port} for the kubelet endpoint"))?;
    tracing::info!(%port, "kubelet endpoint listening");
    loop {
        let (tcp, peer) = listener.accept().await.context("kubelet endpoint accept failed")?;
        let (acceptor, kubelet) = (acceptor.clone(), kubelet.clone());
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(err) => return tracing::debug!(%peer, error = %err, "TLS handshake failed"),
            };
            let service = hyper::service::service_fn(move |req| route(kubelet.clone(), req));
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades();
            if let Err(err) = connection.await {
                tracing::debug!(%peer, error = %err, "kubelet endpoint connection ended with an error");
            }
        });
    }
}

/// A self-signed certificate for 127.0.0.1/localhost and an HTTP/1.1-only server config.
fn tls_config() -> anyhow::Result<rustls::ServerConfig> {
    let certified = rcgen::generate_simple_self_signed(vec![NODE_IP.to_string(), "localhost".to_string()])
        .context("failed to generate the kubelet's serving certificate")?;
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .context("invalid kubelet serving certificate")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Dispatches one request.
async fn route(kubelet: Arc<Kubelet>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let response = match segments.as_slice() {
        ["healthz"] => text(StatusCode::OK, "ok"),
        ["exec", ns, pod, container] | ["exec", ns, pod, _, container] => {
            let key = key(ns, pod, container);
            match kubelet.container(&key) {
                Some(handle) if handle.running.borrow().is_some() => exec::handle(req, key, handle),
                Some(_) => text(StatusCode::BAD_REQUEST, format!("container {} is not running", key.container)),
                None => not_found(&key),
            }
        }
        ["containerLogs", ns, pod, container] => {
            let key = key(ns, pod, container);
            match kubelet.container(&key) {
                Some(handle) => logs::handle(req.uri().query().unwrap_or(""), handle).await,
                None => not_found(&key),
            }
        }
        _ => text(StatusCode::NOT_FOUND, format!("archivist-sim kubelet: no handler for {path}")),
    };
    Ok(response)
}

fn key(namespace: &str, pod: &str, container: &str) -> ContainerKey {
    ContainerKey { namespace: namespace.to_string(), pod: pod.to_string(), container: container.to_string() }
}

fn not_found(key: &ContainerKey) -> Response<Body> {
    text(
        StatusCode::NOT_FOUND,
        format!("container {} of pod {}/{} is not running on this node", key.container, key.namespace, key.pod),
    )
}
