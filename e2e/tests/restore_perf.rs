//! Performance (printed, not asserted): time from RestoreRequest to Completed for a 3-store
//! archive holding 1 GB across its volumes, and how much of it the operator spent versus
//! waiting on storage (restored PVCs from creation to Bound).

mod backup_support;
mod restore_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use archivist::api::RestorePhase;
use archivist_e2e::testing::with_namespace;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use restore_support::*;

/// The union of `[start, end)` intervals, in seconds.
fn union_seconds(mut intervals: Vec<(f64, f64)>) -> f64 {
    intervals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut current: Option<(f64, f64)> = None;
    for (s, e) in intervals {
        match current {
            Some((cs, ce)) if s <= ce => current = Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                current = Some((s, e));
            }
            None => current = Some((s, e)),
        }
    }
    total + current.map_or(0.0, |(s, e)| e - s)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn perf_three_stores_1gb() {
    with_namespace("rs-perf", |client, ns| async move {
        let total_bytes: u64 = 1_000_000_000;
        let options = ArchiveOptions { stores: 3, sql: false, include_indexes: true, content_bytes: total_bytes / 3, master_claim: None, export: None };
        let backup_start = Instant::now();
        let archive = archive_with_backup(&client, &ns, options).await?;
        let backup_took = backup_start.elapsed();
        let mut bytes = 0u64;
        for dir in archive.dirs.values() {
            for line in host_checksums(dir)?.lines() {
                let path = dir.join(line.split_once("  ").map(|x| x.1).unwrap_or_default());
                bytes += std::fs::metadata(path)?.len();
            }
        }

        let api = Api::<archivist::api::RestoreRequest>::namespaced(client.clone(), &ns);
        let pvcs = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);
        let t0 = Instant::now();
        request(&client, &ns, "r1", "  source: {backupName: b1}\n  target: {mode: Volumes, nameSuffix: -p}\n").await?;
        // Poll every 50 ms: when each restored PVC appears and when it is Bound, and phases.
        let mut created: BTreeMap<String, f64> = BTreeMap::new();
        let mut bound: BTreeMap<String, f64> = BTreeMap::new();
        let mut phases: Vec<(RestorePhase, f64)> = Vec::new();
        let lp = ListParams::default().labels(&format!("{RESTORE_LABEL}=r1"));
        let completed_at = loop {
            let now = t0.elapsed().as_secs_f64();
            anyhow::ensure!(now < RESTORE_TIMEOUT.as_secs_f64(), "restore did not complete; operator log:\n{}", archive.operator.log_tail(30));
            for pvc in pvcs.list(&lp).await?.items {
                created.entry(pvc.name_any()).or_insert(now);
                if pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound") {
                    bound.entry(pvc.name_any()).or_insert(now);
                }
            }
            let r = api.get("r1").await?;
            let phase = restore_phase(&r);
            if phases.last().map(|p| p.0) != Some(phase) {
                phases.push((phase, now));
            }
            match phase {
                RestorePhase::Completed => break now,
                RestorePhase::Failed => anyhow::bail!("restore failed: {:?}", r.status),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let r = api.get("r1").await?;
        let status = r.status.clone().unwrap_or_default();
        let created_at = r.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let status_span = match (status.start_time, status.completion_time) {
            (Some(s), Some(c)) => (c - s).num_milliseconds() as f64 / 1000.0,
            _ => f64::NAN,
        };
        let storage: Vec<(f64, f64)> = created.iter().filter_map(|(n, c)| bound.get(n).map(|b| (*c, *b))).collect();
        let storage_wait = union_seconds(storage.clone());
        let first_pvc = created.values().copied().fold(f64::INFINITY, f64::min);
        let last_bound = bound.values().copied().fold(0.0, f64::max);
        eprintln!("=== perf_three_stores_1gb ===");
        eprintln!("archive: 3 stores + master + index, {} volumes, {:.1} MB of files; backup took {:.1} s", archive.dirs.len(), bytes as f64 / 1e6, backup_took.as_secs_f64());
        eprintln!("request -> Completed (observed by polling): {completed_at:.2} s; status startTime -> completionTime: {status_span:.2} s; creationTimestamp {created_at:?}");
        eprintln!("phases (s after the request): {phases:?}");
        eprintln!("first restored PVC seen at {first_pvc:.2} s, last Bound at {last_bound:.2} s");
        for (name, c) in &created {
            eprintln!("  {name}: created {c:.2} s, Bound {:.2} s ({:.2} s waiting)", bound.get(name).copied().unwrap_or(f64::NAN), bound.get(name).copied().unwrap_or(f64::NAN) - c);
        }
        eprintln!(
            "waiting on storage (union of PVC created->Bound): {storage_wait:.2} s = {:.0}%; operator and API (the rest): {:.2} s = {:.0}%",
            100.0 * storage_wait / completed_at,
            completed_at - storage_wait,
            100.0 * (completed_at - storage_wait) / completed_at
        );
        eprintln!("restore throughput: {:.0} MB/s over the whole request", bytes as f64 / 1e6 / completed_at);
        Ok(())
    })
    .await;
}
