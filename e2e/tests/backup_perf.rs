//! Measurement (printed, not asserted) for issue 4's performance section: 10 volumes with
//! `snapshot-cut-delay: 1s` and `snapshot-ready-delay: 10s`; the quiesce window, the window
//! minus the two serial cuts (metadata, then content: issue 12's target), the run's total
//! time, and the API write requests per run.

mod backup_support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use archivist::api::Component;
use archivist_e2e::snapshot_api::VolumeSnapshot;
use archivist_e2e::testing::operator::apiserver_write_requests;
use futures::StreamExt;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use archivist_e2e::testing::with_namespace;
use backup_support::*;

const VOLUMES: usize = 10;
const CUT_DELAY_S: f64 = 1.0;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn perf_ten_volumes() {
    with_namespace("bk-perf", |client, ns| async move {
        let mut operator = start_operator(&client, &ns).await?;
        let knobs = [("sim.archivist.dev/snapshot-cut-delay", "1s"), ("sim.archivist.dev/snapshot-ready-delay", "10s")];
        let mut claims = Vec::new();
        for n in 0..VOLUMES {
            let name = format!("vol-{n}");
            data_pvc(&client, &ns, &name, &knobs).await?;
            claims.push(name);
        }
        archive_statefulset(&client, &ns, "archive", 1, &[]).await?;
        // One store's metadata (2 volumes), content (8 volumes), frozen by trivial exec hooks.
        policy(&client, &ns, "archive", &format!(r#"
  target: {{kind: StatefulSet, name: archive}}
  quiesce:
    mode: Freeze
    freeze: {{exec: {{container: server, command: ["true"]}}}}
    thaw: {{exec: {{container: server, command: ["true"]}}}}
    timeoutSeconds: 60
  stores:
  - name: s1
    metadata: {{volumeClaims: [{meta}]}}
    content: {{volumeClaims: [{content}]}}
"#, meta = claims[..2].join(", "), content = claims[2..].join(", "))).await?;
        let writes_before = apiserver_write_requests(&client).await?;
        let seen = watch_cuts(&client, &ns);
        // Let the watch start before the first snapshot can exist.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let started = std::time::Instant::now();
        start_backup(&client, &ns, "b1", "archive").await?;
        let backup = wait_completed(&client, &ns, "b1", &mut operator).await?;
        seen.task.abort();
        let total = started.elapsed().as_secs_f64();
        let writes_after = apiserver_write_requests(&client).await?;
        let status = backup.status.clone().unwrap_or_default();
        let window = status.quiesce.as_ref().and_then(|q| q.window_seconds).unwrap_or(f64::NAN);
        let run_seconds = match (status.start_time, status.completion_time) {
            (Some(a), Some(b)) => (b - a).num_milliseconds() as f64 / 1000.0,
            _ => f64::NAN,
        };
        eprintln!("{}", timeline(&backup));
        // The cuts as this test saw them come: a stage's span runs from its first snapshot's
        // creation to its last snapshot's cut. The window minus both spans is the operator's
        // own share (quiescing, deciding, creating, releasing); the spans beyond the 1 s cut
        // delay are the simulated CSI driver's.
        for stage in [Component::Metadata, Component::Content] {
            eprintln!("{stage:?} snapshots (appeared -> cut, ms): {:?}", seen.offsets(&snapshots_of(&backup, stage)));
        }
        let spans = seen.spans(&snapshots_of(&backup, Component::Metadata), &snapshots_of(&backup, Component::Content));
        match spans {
            Some((metadata, content)) => println!(
                "perf_ten_volumes: metadata cut span={metadata:.3}s content cut span={content:.3}s operator_share={:.3}s (window minus both spans)",
                window - metadata - content
            ),
            None => println!("perf_ten_volumes: the watch missed a snapshot's creation or cut; no operator share"),
        }
        println!(
            "perf_ten_volumes: volumes={VOLUMES} window={window:.3}s window_minus_two_serial_cuts={:.3}s (metadata, then content: 2 x the {CUT_DELAY_S}s cut delay) \
             run={run_seconds:.3}s (startTime->completionTime) wall={total:.3}s api_writes={} (whole cluster, incl. the simulator)",
            window - 2.0 * CUT_DELAY_S,
            writes_after - writes_before
        );
        Ok(())
    })
    .await;
}

/// When this test saw each VolumeSnapshot of the namespace appear and get cut
/// (`status.creationTime` set).
struct SeenCuts {
    seen: Arc<Mutex<BTreeMap<String, (Instant, Option<Instant>)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SeenCuts {
    /// The metadata and content stages' spans in seconds: first creation to last cut of each.
    fn spans(&self, metadata: &[String], content: &[String]) -> Option<(f64, f64)> {
        let seen = self.seen.lock().ok()?;
        let span = |names: &[String]| -> Option<f64> {
            let times: Vec<(Instant, Instant)> = names.iter().map(|n| seen.get(n).and_then(|(c, cut)| Some((*c, (*cut)?)))).collect::<Option<_>>()?;
            let first = times.iter().map(|(c, _)| *c).min()?;
            let last = times.iter().map(|(_, cut)| *cut).max()?;
            Some(last.duration_since(first).as_secs_f64())
        };
        Some((span(metadata)?, span(content)?))
    }

    /// Each snapshot of a stage: when it appeared and when it was cut, in milliseconds from the
    /// stage's first appearance (where the span's time beyond the cut delay goes).
    fn offsets(&self, names: &[String]) -> Vec<String> {
        let Ok(seen) = self.seen.lock() else { return Vec::new() };
        let Some(first) = names.iter().filter_map(|n| seen.get(n).map(|(c, _)| *c)).min() else { return Vec::new() };
        let ms = |t: Instant| t.duration_since(first).as_millis();
        names
            .iter()
            .filter_map(|n| seen.get(n).map(|(c, cut)| format!("{n}: +{} -> {}", ms(*c), cut.map_or("-".to_string(), |t| format!("+{}", ms(t))))))
            .collect()
    }
}

/// Watches the namespace's VolumeSnapshots from now on.
fn watch_cuts(client: &Client, namespace: &str) -> SeenCuts {
    let seen: Arc<Mutex<BTreeMap<String, (Instant, Option<Instant>)>>> = Arc::default();
    let api = Api::<VolumeSnapshot>::namespaced(client.clone(), namespace);
    let record = seen.clone();
    let task = tokio::spawn(async move {
        let mut events = watcher(api, watcher::Config::default()).applied_objects().boxed();
        while let Some(Ok(snapshot)) = events.next().await {
            let now = Instant::now();
            let cut = snapshot.status.as_ref().and_then(|s| s.creation_time.as_ref()).is_some();
            if let Ok(mut seen) = record.lock() {
                let entry = seen.entry(snapshot.name_any()).or_insert((now, None));
                if cut && entry.1.is_none() {
                    entry.1 = Some(now);
                }
            }
        }
    });
    SeenCuts { seen, task }
}
