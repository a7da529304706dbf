//! Measurement (printed, not asserted) for issue 4's performance section: 10 volumes with
//! `snapshot-cut-delay: 1s` and `snapshot-ready-delay: 10s`; the quiesce window, the window
//! minus the two serial cuts (metadata, then content: issue 12's target), the run's total
//! time, and the API write requests per run.

mod backup_support;

use archivist_e2e::testing::operator::apiserver_write_requests;
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
        let started = std::time::Instant::now();
        start_backup(&client, &ns, "b1", "archive").await?;
        let backup = wait_completed(&client, &ns, "b1", &mut operator).await?;
        let total = started.elapsed().as_secs_f64();
        let writes_after = apiserver_write_requests(&client).await?;
        let status = backup.status.clone().unwrap_or_default();
        let window = status.quiesce.as_ref().and_then(|q| q.window_seconds).unwrap_or(f64::NAN);
        let run_seconds = match (status.start_time, status.completion_time) {
            (Some(a), Some(b)) => (b - a).num_milliseconds() as f64 / 1000.0,
            _ => f64::NAN,
        };
        eprintln!("{}", timeline(&backup));
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
