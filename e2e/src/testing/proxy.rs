//! A proxy in front of the local API server for one operator process: it forwards every
//! request with the test's own credentials, holds back each chunk of every watch response by
//! a fixed delay (a late watch, as on a loaded control plane), and counts the requests it
//! forwarded by verb, so a test sees the operator's own traffic apart from everyone else's.
//!
//! The operator talks plain HTTP to `127.0.0.1:<port>` through the kubeconfig that
//! [`ApiProxy::kubeconfig`] writes. Upgrades (exec, attach) are not proxied: tests behind the
//! proxy use HTTP hooks, which go straight to the pod.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use kube::Client;
use tokio::net::TcpListener;

/// Requests forwarded, by verb (`GET`, `LIST`, `WATCH`, `POST`, `PATCH`, `PUT`, `DELETE`),
/// by verb and resource (`POST persistentvolumeclaims`, `PATCH archivebackups/status`), and
/// for requests with a label selector also by its keys (`LIST jobs by archivist.dev/backup=`).
pub type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

/// A running proxy; it stops when dropped.
pub struct ApiProxy {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// The requests it forwarded, by verb.
    pub counts: Counts,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ApiProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ApiProxy {
    /// Starts a proxy that forwards through `client` and delays every chunk of a watch
    /// response by `watch_delay`.
    pub async fn start(client: Client, watch_delay: Duration) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("bind the API proxy")?;
        let addr = listener.local_addr()?;
        let counts: Counts = Arc::default();
        let task_counts = counts.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let client = client.clone();
                let counts = task_counts.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| forward(client.clone(), counts.clone(), watch_delay, request));
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Ok(Self { addr, counts, task })
    }

    /// Writes a kubeconfig that points at the proxy (no credentials: the proxy adds them) to
    /// `path`, and returns the path.
    pub fn kubeconfig(&self, path: &Path) -> anyhow::Result<PathBuf> {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: proxy\n  cluster: {{server: \"http://{}\"}}\n\
             users:\n- name: proxy\n  user: {{}}\ncontexts:\n- name: proxy\n  context: {{cluster: proxy, user: proxy}}\n\
             current-context: proxy\n",
            self.addr
        );
        std::fs::write(path, text).with_context(|| format!("{}", path.display()))?;
        Ok(path.to_path_buf())
    }

    /// The number of requests forwarded so far, by verb, and by verb and resource
    /// ([`resource`]).
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The number of `verb` requests on `resource` (a resource's plural, with `/subresource`
    /// when one was addressed) forwarded so far.
    pub fn requests(&self, verb: &str, resource: &str) -> u64 {
        self.snapshot().get(&format!("{verb} {resource}")).copied().unwrap_or(0)
    }
}

/// The writes in `counts` (an [`ApiProxy::snapshot`]) by `VERB resource`, Lease renewals
/// left out (leader election renews its Lease on a timer of its own, whatever the load).
pub fn writes_by_resource(counts: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    counts
        .iter()
        .filter(|(key, _)| {
            let words: Vec<&str> = key.split(' ').collect();
            words.len() == 2 && ["POST", "PUT", "PATCH", "DELETE"].contains(&words[0]) && words[1] != "leases"
        })
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

/// The counts of `now` minus those of `before` (two [`ApiProxy::snapshot`]s); keys that did
/// not change are left out.
pub fn since(now: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    now.iter()
        .map(|(k, v)| (k.clone(), v.saturating_sub(before.get(k).copied().unwrap_or(0))))
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// The resource a request addresses, as the API server's metrics name it: the plural, and
/// `/subresource` when one is addressed (`archivebackups/status`, `pods/log`).
pub fn resource(path: &str) -> String {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let after_version = if segments.first() == Some(&"api") { 2 } else { 3 };
    let namespaced = segments.get(after_version) == Some(&"namespaces") && segments.len() > after_version + 2;
    let at = if namespaced { after_version + 2 } else { after_version };
    let plural = segments.get(at).copied().unwrap_or_default();
    match segments.get(at + 2) {
        Some(sub) => format!("{plural}/{sub}"),
        None => plural.to_string(),
    }
}

/// The label keys of a request's `labelSelector`, sorted and joined by `,`, each with `=` when
/// the selector asks for a value (`archivist.dev/backup=` for
/// `labelSelector=archivist.dev%2Fbackup%3Db1`, `archivist.dev/backup` for the bare key);
/// `None` without one. Tells an observation's LIST of one object's children from a watcher's
/// LIST of every labelled object.
pub fn selector_keys(query: &str) -> Option<String> {
    let selector = query.split('&').find_map(|kv| kv.strip_prefix("labelSelector="))?;
    let decoded = percent_decoded(selector);
    let mut keys: Vec<String> = decoded
        .split(',')
        .filter_map(|term| {
            let key = term.split(['=', '!', ' ']).next().unwrap_or_default().trim();
            let equals = term.contains('=') && !term.contains("!=");
            (!key.is_empty()).then(|| if equals { format!("{key}=") } else { key.to_string() })
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    (!keys.is_empty()).then(|| keys.join(","))
}

/// A query value with `+` as space and every `%XX` as its byte.
fn percent_decoded(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The verb of a request as the API server's metrics name it: a GET is `WATCH` with
/// `watch=true`/`watch=1`, `LIST` on a collection, else `GET`.
pub fn verb(method: &str, path: &str, query: &str) -> String {
    let watch = query.split('&').any(|kv| kv == "watch=true" || kv == "watch=1");
    if method != "GET" {
        return method.to_string();
    }
    if watch {
        return "WATCH".into();
    }
    // /api/v1/namespaces/ns/pods (collection) vs /api/v1/namespaces/ns/pods/name (object).
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let core = segments.first() == Some(&"api");
    let after_version = if core { 2 } else { 3 };
    let rest = segments.len().saturating_sub(after_version);
    let namespaced = segments.get(after_version) == Some(&"namespaces");
    let is_collection = if namespaced { rest == 1 || rest == 3 } else { rest == 1 };
    if is_collection { "LIST".into() } else { "GET".into() }
}

async fn forward(
    client: Client,
    counts: Counts,
    watch_delay: Duration,
    request: Request<Incoming>,
) -> Result<Response<UnsyncBoxBody<Bytes, std::io::Error>>, Infallible> {
    let (parts, body) = request.into_parts();
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let verb = verb(parts.method.as_str(), parts.uri.path(), parts.uri.query().unwrap_or_default());
    if let Ok(mut c) = counts.lock() {
        *c.entry(verb.clone()).or_insert(0) += 1;
        *c.entry(format!("{verb} {}", resource(parts.uri.path()))).or_insert(0) += 1;
        if let Some(keys) = selector_keys(parts.uri.query().unwrap_or_default()) {
            *c.entry(format!("{verb} {} by {keys}", resource(parts.uri.path()))).or_insert(0) += 1;
        }
    }
    let body = match body.collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(e) => return Ok(error_response(502, format!("reading the request body: {e}"))),
    };
    let mut upstream = http::Request::builder().method(parts.method.clone()).uri(path_and_query);
    for (name, value) in &parts.headers {
        if !matches!(name.as_str(), "host" | "authorization" | "connection" | "content-length" | "transfer-encoding") {
            upstream = upstream.header(name, value);
        }
    }
    let upstream = match upstream.body(kube::client::Body::from(body)) {
        Ok(r) => r,
        Err(e) => return Ok(error_response(400, format!("rebuilding the request: {e}"))),
    };
    let response = match client.send(upstream).await {
        Ok(r) => r,
        Err(e) => return Ok(error_response(502, format!("forwarding: {e}"))),
    };
    let (parts, body) = response.into_parts();
    let delay = if verb == "WATCH" { watch_delay } else { Duration::ZERO };
    let frames = body.into_data_stream().then(move |chunk| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        chunk.map(Frame::data).map_err(|e| std::io::Error::other(e.to_string()))
    });
    Ok(Response::from_parts(parts, BodyExt::boxed_unsync(StreamBody::new(frames))))
}

fn error_response(code: u16, message: String) -> Response<UnsyncBoxBody<Bytes, std::io::Error>> {
    let body = http_body_util::Full::new(Bytes::from(message)).map_err(|never| match never {});
    let mut response = Response::new(BodyExt::boxed_unsync(body));
    *response.status_mut() = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::BAD_GATEWAY);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_leave_out_reads_watches_verb_totals_and_leases() {
        let counts: BTreeMap<String, u64> = [
            ("PATCH", 9),
            ("PATCH archivebackups/status", 5),
            ("PATCH leases", 3),
            ("POST events", 1),
            ("GET statefulsets", 7),
            ("LIST jobs by archivist.dev/backup=", 2),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let want: BTreeMap<String, u64> = [("PATCH archivebackups/status".to_string(), 5), ("POST events".to_string(), 1)].into();
        assert_eq!(writes_by_resource(&counts), want);
        let before: BTreeMap<String, u64> = [("PATCH archivebackups/status".to_string(), 5), ("POST events".to_string(), 0)].into();
        assert_eq!(since(&want, &before), [("POST events".to_string(), 1)].into());
    }

    #[test]
    fn verbs_as_the_api_server_counts_them() {
        let cases = [
            ("GET", "/api/v1/namespaces/ns/pods", "", "LIST"),
            ("GET", "/api/v1/namespaces/ns/pods", "watch=true&resourceVersion=1", "WATCH"),
            ("GET", "/api/v1/namespaces/ns/pods/p-0", "", "GET"),
            ("GET", "/api/v1/namespaces/ns/pods/p-0/log", "tailLines=3", "GET"),
            ("GET", "/apis/archivist.dev/v1alpha1/archivebackups", "", "LIST"),
            ("GET", "/apis/archivist.dev/v1alpha1/namespaces/ns/archivebackups", "", "LIST"),
            ("GET", "/apis/archivist.dev/v1alpha1/namespaces/ns/archivebackups/b1", "", "GET"),
            ("GET", "/api/v1/namespaces/ns", "", "GET"),
            ("PATCH", "/apis/archivist.dev/v1alpha1/namespaces/ns/archivebackups/b1/status", "", "PATCH"),
        ];
        for (method, path, query, want) in cases {
            assert_eq!(verb(method, path, query), want, "{method} {path}?{query}");
        }
    }

    #[test]
    fn selector_keys_name_the_labels_selected_by() {
        let cases = [
            ("labelSelector=archivist.dev%2Fbackup%3Db1", Some("archivist.dev/backup=")),
            ("watch=true&labelSelector=archivist.dev%2Frestore", Some("archivist.dev/restore")),
            ("labelSelector=b%3D1%2Ca%3D2&limit=500", Some("a=,b=")),
            ("labelSelector=a%21%3D1", Some("a")),
            ("labelSelector=a%3", Some("a%3")),
            ("labelSelector=app+in+%28x%29", Some("app")),
            ("limit=500", None),
            ("", None),
        ];
        for (query, want) in cases {
            assert_eq!(selector_keys(query).as_deref(), want, "{query}");
        }
    }

    #[test]
    fn resources_as_the_api_server_counts_them() {
        let cases = [
            ("/api/v1/namespaces/ns/pods", "pods"),
            ("/api/v1/namespaces/ns/pods/p-0", "pods"),
            ("/api/v1/namespaces/ns/pods/p-0/log", "pods/log"),
            ("/api/v1/persistentvolumes/pv-1", "persistentvolumes"),
            ("/api/v1/namespaces/ns", "namespaces"),
            ("/api/v1/namespaces", "namespaces"),
            ("/apis/apps/v1/namespaces/ns/statefulsets", "statefulsets"),
            ("/apis/archivist.dev/v1alpha1/archivebackups", "archivebackups"),
            ("/apis/archivist.dev/v1alpha1/namespaces/ns/archivebackups/b1/status", "archivebackups/status"),
            ("/apis/coordination.k8s.io/v1/namespaces/ns/leases/l", "leases"),
        ];
        for (path, want) in cases {
            assert_eq!(resource(path), want, "{path}");
        }
    }
}
