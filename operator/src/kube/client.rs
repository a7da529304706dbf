//! The operator's connections to the API server.
//!
//! kube's default client speaks HTTP/1.1: every request in flight needs a connection of its
//! own, and the ones beyond the idle pool pay a TCP and TLS handshake first. A backup run
//! creates its content snapshots concurrently inside the quiesce window, so that handshake
//! time lands in the window. client-go talks HTTP/2 instead: one multiplexed connection for
//! every request and watch. [`connect`] gives the operator the same, and keeps a second,
//! HTTP/1.1 client for exec, whose WebSocket upgrade HTTP/2 cannot carry.

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::retry::RetryPolicy;
use kube::client::{ClientBuilder, ConfigExt};
use tower::retry::RetryLayer;
use kube::{Client, Config};
use std::time::Duration;
use tower::{BoxError, ServiceBuilder};

/// How often an idle HTTP/2 connection is pinged, as client-go's `ReadIdleTimeout` (30 s):
/// a connection that died silently would otherwise stall every watch on it.
pub const PING_EVERY: Duration = Duration::from_secs(30);
/// How long a ping may go unanswered before the connection is dropped and redialled
/// (client-go's `PingTimeout`, 15 s).
pub const PING_TIMEOUT: Duration = Duration::from_secs(15);
/// Flow-control window of one stream. hyper's default (64 KiB) would make a paginated LIST
/// of thousands of snapshots wait on window updates; the connection's window is 4 times
/// this, so one large response leaves room for the others.
pub const STREAM_WINDOW_BYTES: u32 = 4 * 1024 * 1024;

/// The operator's two clients.
#[derive(Clone)]
pub struct ApiClients {
    /// Every request and watch, over one multiplexed HTTP/2 connection when the server
    /// offers it (ALPN `h2`), else HTTP/1.1.
    pub api: Client,
    /// `pods/exec` only (freeze and thaw hooks): HTTP/1.1, because exec upgrades the
    /// connection to a WebSocket.
    pub exec: Client,
}

/// Connects with the usual kubeconfig or in-cluster configuration (`Config::infer`).
pub async fn connect() -> Result<ApiClients, kube::Error> {
    let config = Config::infer().await.map_err(kube::Error::InferConfig)?;
    clients(config)
}

/// Set to a non-empty value, HTTP/2 is not offered and every request uses HTTP/1.1, as with
/// client-go (for proxies in front of the API server that break HTTP/2).
pub const DISABLE_HTTP2_ENV: &str = "DISABLE_HTTP2";

/// The two clients for `config`.
pub fn clients(config: Config) -> Result<ApiClients, kube::Error> {
    let exec = Client::try_from(config.clone())?;
    let http2_disabled = std::env::var_os(DISABLE_HTTP2_ENV).is_some_and(|v| !v.is_empty());
    // A kubeconfig `proxy-url` goes through kube's own stack, which tunnels through it.
    let api = if http2_disabled || config.proxy_url.is_some() { exec.clone() } else { multiplexed(config)? };
    Ok(ApiClients { api, exec })
}

/// A client that offers HTTP/2 and HTTP/1.1 (in that order) in the TLS handshake, with the
/// configuration's credentials, default namespace, extra headers and (unless disabled) kube's
/// retry of throttled requests (429, 503, 504, honouring `Retry-After`), as kube's own stack.
/// It does not tunnel through a `proxy-url` ([`clients`] uses kube's client then).
pub fn multiplexed(config: Config) -> Result<Client, kube::Error> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(config.connect_timeout);
    http.set_nodelay(true);
    let tls = config.rustls_client_config()?;
    let mut https = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http();
    if let Some(name) = config.tls_server_name.as_ref() {
        let name = rustls_pki_types::ServerName::try_from(name.clone())
            .map_err(|e| kube::Error::Service(format!("invalid tls-server-name {name}: {e}").into()))?;
        https = https.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name));
    }
    let connector = https.enable_all_versions().wrap_connector(http);
    let hyper_client = hyper_util::client::legacy::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .http2_keep_alive_interval(PING_EVERY)
        .http2_keep_alive_timeout(PING_TIMEOUT)
        .http2_keep_alive_while_idle(true)
        .http2_initial_stream_window_size(STREAM_WINDOW_BYTES)
        .http2_initial_connection_window_size(STREAM_WINDOW_BYTES * 4)
        .build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.default_retry.then(|| RetryLayer::new(RetryPolicy::server_retry())))
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(hyper_client);
    Ok(ClientBuilder::new(service, config.default_namespace).build())
}
