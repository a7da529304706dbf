//! Prometheus metrics, and the HTTP endpoint that serves them with `/healthz` and `/readyz`.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Labels of `archivist_backups_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackupLabels {
    /// `<namespace>/<policy>`.
    pub policy: String,
    /// `completed` or `failed`.
    pub result: String,
}

/// Labels of `archivist_restores_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RestoreLabels {
    /// `completed` or `failed`.
    pub result: String,
}

/// Labels of `archivist_export_bytes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExportLabels {
    /// The policy's namespace.
    pub namespace: String,
    /// The policy.
    pub policy: String,
}

/// Labels of `archivist_exports_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExportResultLabels {
    /// The policy's namespace.
    pub namespace: String,
    /// The policy.
    pub policy: String,
    /// `exported` or `failed`.
    pub result: String,
}

/// Labels of `archivist_drills_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DrillLabels {
    /// `passed` or `failed`.
    pub result: String,
}

/// Every metric the operator exports.
pub struct Metrics {
    /// `archivist_backups_total{policy,result}`: finished backup runs.
    pub backups: Family<BackupLabels, Counter>,
    /// `archivist_quiesce_window_seconds`: how long archives were frozen or stopped.
    pub quiesce_window: Histogram,
    /// `archivist_backup_duration_seconds`: start to Completed/Failed.
    pub backup_duration: Histogram,
    /// `archivist_restores_total{result}`: finished restores.
    pub restores: Family<RestoreLabels, Counter>,
    /// `archivist_restore_duration_seconds`: request accepted to Completed/Failed.
    pub restore_duration: Histogram,
    /// `archivist_exports_total{namespace,policy,result}`: finished exports.
    pub exports: Family<ExportResultLabels, Counter>,
    /// `archivist_export_duration_seconds`: export start to Exported/Failed.
    pub export_duration: Histogram,
    /// `archivist_export_bytes_total{namespace,policy}`: bytes exports added to repositories.
    pub export_bytes: Family<ExportLabels, Counter>,
    /// `archivist_drills_total{result}`: finished restore drills.
    pub drills: Family<DrillLabels, Counter>,
    /// `archivist_leader`: 1 while this process leads (runs the controllers), 0 on a standby.
    pub leader: prometheus_client::metrics::gauge::Gauge,
    /// The gauges computed from the ArchiveBackups at each scrape (see [`crate::gauges`]).
    pub backup_gauges: crate::gauges::BackupGauges,
    registry: Registry,
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        let backups = Family::<BackupLabels, Counter>::default();
        let quiesce_window = Histogram::new([0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0]);
        let backup_duration = Histogram::new([1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0]);
        let restores = Family::<RestoreLabels, Counter>::default();
        let restore_duration = Histogram::new([1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0]);
        let mut registry = Registry::with_prefix("archivist");
        registry.register("backups", "Finished backup runs by policy and result", backups.clone());
        registry.register("quiesce_window_seconds", "How long the archive was frozen or stopped during a backup", quiesce_window.clone());
        registry.register("backup_duration_seconds", "Duration of backup runs from start to Completed or Failed", backup_duration.clone());
        registry.register("restores", "Finished restores by result", restores.clone());
        registry.register("restore_duration_seconds", "Duration of restores from acceptance to Completed or Failed", restore_duration.clone());
        let exports = Family::<ExportResultLabels, Counter>::default();
        let export_duration = Histogram::new([10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4.0 * 3600.0, 12.0 * 3600.0]);
        let export_bytes = Family::<ExportLabels, Counter>::default();
        registry.register("exports", "Finished exports of restore points to restic repositories, by policy and result", exports.clone());
        registry.register("export_duration_seconds", "Duration of exports from start to Exported or Failed", export_duration.clone());
        registry.register("export_bytes", "Bytes that exports added to restic repositories (after deduplication)", export_bytes.clone());
        let drills = Family::<DrillLabels, Counter>::default();
        registry.register("drills", "Finished restore drills by result", drills.clone());
        let leader = prometheus_client::metrics::gauge::Gauge::default();
        registry.register("leader", "1 while this process holds the leader-election Lease and runs the controllers, 0 on a standby", leader.clone());
        let backup_gauges = crate::gauges::BackupGauges::default();
        registry.register_collector(Box::new(backup_gauges.clone()));
        Self { backups, quiesce_window, backup_duration, restores, restore_duration, exports, export_duration, export_bytes, drills, leader, backup_gauges, registry, ready: AtomicBool::new(false) }
    }
}

impl Metrics {
    /// Counts a finished run.
    pub fn backup_finished(&self, namespace: &str, policy: &str, completed: bool, duration_seconds: Option<f64>) {
        let result = if completed { "completed" } else { "failed" };
        self.backups.get_or_create(&BackupLabels { policy: format!("{namespace}/{policy}"), result: result.into() }).inc();
        if let Some(d) = duration_seconds {
            self.backup_duration.observe(d);
        }
    }

    /// Counts a finished export, and the bytes it added.
    pub fn export_finished(&self, namespace: &str, policy: &str, exported: bool, duration_seconds: Option<f64>, bytes_added: u64) {
        let result = if exported { "exported" } else { "failed" };
        let labels = ExportResultLabels { namespace: namespace.into(), policy: policy.into(), result: result.into() };
        self.exports.get_or_create(&labels).inc();
        self.export_bytes.get_or_create(&ExportLabels { namespace: namespace.into(), policy: policy.into() }).inc_by(bytes_added);
        if let Some(d) = duration_seconds {
            self.export_duration.observe(d);
        }
    }

    /// Counts a finished restore.
    pub fn restore_finished(&self, completed: bool, duration_seconds: Option<f64>) {
        let result = if completed { "completed" } else { "failed" };
        self.restores.get_or_create(&RestoreLabels { result: result.into() }).inc();
        if let Some(d) = duration_seconds {
            self.restore_duration.observe(d);
        }
    }

    /// Counts a finished restore drill.
    pub fn drill_finished(&self, passed: bool) {
        let result = if passed { "passed" } else { "failed" };
        self.drills.get_or_create(&DrillLabels { result: result.into() }).inc();
    }

    /// Marks the operator ready (`/readyz` answers 200).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }

    fn answer(&self, path: &str) -> (StatusCode, String) {
        match path {
            "/metrics" => (StatusCode::OK, self.encode()),
            "/healthz" => (StatusCode::OK, "ok\n".into()),
            "/readyz" if self.ready.load(Ordering::Relaxed) => (StatusCode::OK, "ready\n".into()),
            "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, "not ready: the API server has not answered yet\n".into()),
            _ => (StatusCode::NOT_FOUND, "not found\n".into()),
        }
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` until the task is dropped.
pub async fn serve(metrics: Arc<Metrics>, addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let (status, body) = metrics.answer(req.uri().path());
                async move {
                    Response::builder()
                        .status(status)
                        .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                        .body(Full::new(Bytes::from(body)))
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_encode_and_endpoints_answer() {
        let m = Metrics::default();
        m.backup_finished("mail", "mailstore", true, Some(12.0));
        m.quiesce_window.observe(0.4);
        let text = m.encode();
        assert!(text.contains(r#"archivist_backups_total{policy="mail/mailstore",result="completed"} 1"#), "{text}");
        assert!(text.contains("archivist_quiesce_window_seconds_count 1"), "{text}");
        assert!(text.contains("archivist_backup_duration_seconds_sum 12.0"), "{text}");
        m.restore_finished(false, Some(3.0));
        let text = m.encode();
        assert!(text.contains(r#"archivist_restores_total{result="failed"} 1"#), "{text}");
        assert!(text.contains("archivist_restore_duration_seconds_count 1"), "{text}");
        m.export_finished("mail", "mailstore", true, Some(60.0), 4096);
        m.export_finished("mail", "mailstore", false, Some(5.0), 0);
        let text = m.encode();
        assert!(text.contains(r#"archivist_export_bytes_total{namespace="mail",policy="mailstore"} 4096"#), "{text}");
        assert!(text.contains(r#"archivist_exports_total{namespace="mail",policy="mailstore",result="failed"} 1"#), "{text}");
        assert!(text.contains("archivist_export_duration_seconds_count 2"), "{text}");
        assert_eq!(m.answer("/readyz").0, StatusCode::SERVICE_UNAVAILABLE);
        m.set_ready();
        assert_eq!(m.answer("/readyz").0, StatusCode::OK);
        assert_eq!(m.answer("/healthz").0, StatusCode::OK);
        assert_eq!(m.answer("/nope").0, StatusCode::NOT_FOUND);
    }
}
