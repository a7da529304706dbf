//! Issue 12's scale bench: many policies and restore points on one operator, measured.
//!
//! It creates (or reuses, when a previous run left them) `--namespaces` namespaces
//! `scale<policies>-<n>`, `--policies` manual-only BackupPolicies spread over them, and
//! `--restore-points` Completed ArchiveBackups spread over the policies. It then starts the
//! operator (a release build by default) cluster-wide behind [`ApiProxy`], so only the
//! operator's own requests are counted, and prints:
//! - the operator's RSS after sync and after `--idle-minutes` idle minutes;
//! - the time from start to settled (no request other than watches and leases for 10 s);
//! - requests other than watches per idle minute (leases counted apart);
//! - a burst: `--burst` policies triggered at once with `archivist.dev/backup-now`, the time
//!   until every run is Completed, the requests it cost and the operator's CPU seconds;
//! - the API server's RSS and the latency of a LIST of one namespace's ArchiveBackups, beside.
//!
//! Run it after `e2e/local-cluster up`:
//!
//! ```text
//! cargo build --release -p archivist
//! cargo run --release -p archivist-e2e --example scale -- [--policies 1000] [--restore-points 10000]
//! ```
//!
//! Figures are printed, not asserted (they go into `e2e/BENCHMARKS.md`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use archivist::api::{ArchiveBackup, BackupPhase, BackupPolicy};
use archivist_e2e::testing::operator::{ensure_crds, repo_dir};
use archivist_e2e::testing::proxy::{since, writes_by_resource, ApiProxy};
use archivist_e2e::testing::volumes::pvc;
use archivist_e2e::snapshot_api::VolumeSnapshot;
use archivist_e2e::testing::client;
use clap::Parser;
use futures::{stream, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};

/// The label that marks a namespace whose objects are all created.
const COMPLETE: &str = "bench.archivist.dev/complete";
/// How many create requests the setup keeps in flight.
const SETUP_CONCURRENCY: usize = 16;
/// No request (other than watches and leases) for this long: the operator has settled.
const QUIET: Duration = Duration::from_secs(10);

#[derive(Parser, Debug)]
#[command(about = "Archivist's scale bench (issue 12)")]
struct Args {
    /// Namespaces to spread the policies over.
    #[arg(long, default_value_t = 10)]
    namespaces: usize,
    /// Manual-only BackupPolicies, in all.
    #[arg(long, default_value_t = 1000)]
    policies: usize,
    /// Completed ArchiveBackups, in all (spread evenly over the policies).
    #[arg(long, default_value_t = 10000)]
    restore_points: usize,
    /// Idle minutes to measure after the operator settled.
    #[arg(long, default_value_t = 10)]
    idle_minutes: u64,
    /// Policies triggered at once after the idle period (0: no burst).
    #[arg(long, default_value_t = 200)]
    burst: usize,
    /// The operator binary; default `<repo>/target/release/archivist`.
    #[arg(long)]
    operator: Option<PathBuf>,
    /// How long to wait for settling and for the burst, in seconds.
    #[arg(long, default_value_t = 900)]
    timeout_seconds: u64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match bench(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scale bench failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn bench(args: Args) -> anyhow::Result<()> {
    if args.namespaces == 0 || args.policies < args.namespaces || args.burst > args.policies {
        bail!("need 1 <= --namespaces <= --policies and --burst <= --policies");
    }
    let client = client().await?;
    ensure_crds(&client).await?;
    let started = Instant::now();
    setup(&client, &args).await?;
    eprintln!("setup done in {:.0?}", started.elapsed());

    let bin = args.operator.clone().unwrap_or_else(|| repo_dir().join("target").join("release").join("archivist"));
    if !bin.is_file() {
        bail!("no operator binary at {}: run `cargo build --release -p archivist` or pass --operator", bin.display());
    }
    let proxy = ApiProxy::start(client.clone(), Duration::ZERO).await?;
    let dir = repo_dir().join("target").join("e2e-logs");
    std::fs::create_dir_all(&dir)?;
    let kubeconfig = proxy.kubeconfig(&dir.join("scale-proxy.kubeconfig"))?;
    let log = dir.join("scale-operator.log");
    let log_file = std::fs::File::create(&log)?;
    let mut child = tokio::process::Command::new(&bin)
        .args(["run", "--metrics-addr", "127.0.0.1:0", "--leader-election-namespace", "default"])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "info")
        .env("POD_NAME", "scale-bench")
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("failed to start {}", bin.display()))?;
    let pid = child.id().context("the operator has no pid")?;
    let start = Instant::now();
    eprintln!("operator pid {pid}, log {}", log.display());
    let mut table = Table::default();

    let settled = wait_settled(&proxy, start, Duration::from_secs(args.timeout_seconds)).await?;
    let after_start = proxy.snapshot();
    table.row("time from start to settled", format!("{:.1} s", settled.as_secs_f64()));
    table.row("operator RSS after sync", mib(rss_kib(pid)?));
    table.row("requests until settled (non-watch, without leases)", non_watch(&after_start).to_string());
    table.row("  of which writes", writes(&after_start).to_string());
    table.row("  by kind", top(&after_start, 8));
    table.row("API server RSS after sync", apiserver_rss().map_or("unknown".into(), mib));
    table.row("LIST of one namespace's ArchiveBackups (bench client)", list_latency(&client, &args).await?);

    let idle_from = proxy.snapshot();
    let idle_start = Instant::now();
    let cpu_before_idle = cpu_seconds(pid)?;
    let mut peak_idle_rss = 0;
    while idle_start.elapsed() < Duration::from_secs(args.idle_minutes * 60) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        peak_idle_rss = peak_idle_rss.max(rss_kib(pid)?);
        if let Some(status) = child.try_wait()? {
            bail!("the operator exited ({status}); see {}", log.display());
        }
    }
    let idle = since(&proxy.snapshot(), &idle_from);
    let minutes = idle_start.elapsed().as_secs_f64() / 60.0;
    table.row(&format!("operator RSS after {} idle min (peak)", args.idle_minutes), format!("{} ({})", mib(rss_kib(pid)?), mib(peak_idle_rss)));
    table.row("non-watch requests per idle minute, without leases", format!("{:.1}", non_watch(&idle) as f64 / minutes.max(1.0 / 60.0)));
    table.row("lease requests per idle minute", format!("{:.1}", leases(&idle) as f64 / minutes.max(1.0 / 60.0)));
    table.row("  idle requests by kind", top(&idle, 8));
    table.row("operator CPU seconds while idle", format!("{:.2}", cpu_seconds(pid)? - cpu_before_idle));

    if args.burst > 0 {
        let burst_from = proxy.snapshot();
        let cpu_before = cpu_seconds(pid)?;
        let burst_start = Instant::now();
        let (done, peak_api_rss, latency) = burst(&client, &args, Duration::from_secs(args.timeout_seconds)).await?;
        let cost = since(&proxy.snapshot(), &burst_from);
        table.row(&format!("burst of {}: every run Completed", args.burst), format!("{done} of {} in {:.1} s", args.burst, burst_start.elapsed().as_secs_f64()));
        table.row("  operator CPU seconds", format!("{:.2}", cpu_seconds(pid)? - cpu_before));
        table.row("  requests (non-watch, without leases)", non_watch(&cost).to_string());
        table.row("  writes", writes(&cost).to_string());
        table.row("  by kind", top(&cost, 10));
        table.row("  operator RSS after the burst", mib(rss_kib(pid)?));
        table.row("  API server peak RSS during the burst", peak_api_rss.map_or("unknown".into(), mib));
        table.row("  LIST of one namespace's ArchiveBackups during the burst", latency);
    }
    let _ = child.start_kill();
    println!(
        "\n## Scale bench: {} namespaces, {} policies, {} restore points, operator {}\n",
        args.namespaces,
        args.policies,
        args.restore_points,
        bin.display()
    );
    table.print();
    Ok(())
}

/// The bench's printed result: measure, value.
#[derive(Default)]
struct Table(Vec<(String, String)>);

impl Table {
    fn row(&mut self, measure: &str, value: String) {
        eprintln!("{measure}: {value}");
        self.0.push((measure.to_string(), value));
    }

    fn print(&self) {
        println!("| measure | value |\n|---|---|");
        for (measure, value) in &self.0 {
            println!("| {measure} | {value} |");
        }
    }
}

/// Namespace `n` of a bench of `policies` policies (benches of other sizes do not share
/// namespaces, so each can be reused as it is).
fn namespace(policies: usize, n: usize) -> String {
    format!("scale{policies}-{n}")
}

/// Policy `j`'s namespace and name.
fn policy_of(args: &Args, j: usize) -> (String, String) {
    (namespace(args.policies, j % args.namespaces), format!("p-{j}"))
}

/// Creates what is missing: namespaces, targets (StatefulSets with no replicas), policies,
/// restore points; the first `--burst` policies also get their two claims.
async fn setup(client: &Client, args: &Args) -> anyhow::Result<()> {
    let namespaces = Api::<Namespace>::all(client.clone());
    for n in 0..args.namespaces {
        let name = namespace(args.policies, n);
        if let Some(ns) = namespaces.get_opt(&name).await? {
            if ns.labels().get(COMPLETE) == Some(&complete_label(args)) {
                continue;
            }
        } else {
            let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
            namespaces.create(&PostParams::default(), &ns).await?;
        }
    }
    let per_policy = args.restore_points / args.policies;
    stream::iter(0..args.policies)
        .map(|j| create_policy(client, args, j, per_policy))
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    for n in 0..args.namespaces {
        let patch = serde_json::json!({"metadata": {"labels": {COMPLETE: complete_label(args)}}});
        namespaces.patch(&namespace(args.policies, n), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    }
    Ok(())
}

/// The value of [`COMPLETE`] on a namespace whose objects were all created for these
/// arguments (`v2`: restore points with the status the operator writes; `v3`: and their two
/// VolumeSnapshots).
fn complete_label(args: &Args) -> String {
    format!("v3-{}-{}-{}", args.policies, args.restore_points, args.burst)
}

/// Creates `object` unless one of its name exists.
async fn create_absent<K>(api: &Api<K>, object: &K) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.create(&PostParams::default(), object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e).context("create"),
    }
}

async fn create_policy(client: &Client, args: &Args, j: usize, restore_points: usize) -> anyhow::Result<()> {
    let (ns, name) = policy_of(args, j);
    let target = format!("arch-{j}");
    let (meta, content) = (format!("{name}-meta"), format!("{name}-content"));
    let sts: StatefulSet = serde_json::from_value(serde_json::json!({
        "metadata": {"name": target},
        "spec": {
            "serviceName": target, "replicas": 0,
            "selector": {"matchLabels": {"app": target}},
            "template": {"metadata": {"labels": {"app": target}}, "spec": {"containers": [{"name": "server", "image": "ignored"}]}}
        }
    }))?;
    create_absent(&Api::namespaced(client.clone(), &ns), &sts).await?;
    if j < args.burst {
        let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns);
        create_absent(&claims, &pvc(&meta, "1Gi")).await?;
        create_absent(&claims, &pvc(&content, "1Gi")).await?;
    }
    let policy_spec = serde_json::json!({
        "target": {"kind": "StatefulSet", "name": target},
        "quiesce": {"mode": "None"},
        "retention": {"keepLast": restore_points + args.burst.max(1) + 10},
        "stores": [{"name": "s1", "metadata": {"volumeClaims": [meta]}, "content": {"volumeClaims": [content]}}]
    });
    let policy: BackupPolicy = serde_json::from_value(serde_json::json!({
        "apiVersion": "archivist.dev/v1alpha1", "kind": "BackupPolicy",
        "metadata": {"name": name},
        "spec": policy_spec
    }))?;
    create_absent(&Api::namespaced(client.clone(), &ns), &policy).await?;
    let backups = Api::<ArchiveBackup>::namespaced(client.clone(), &ns);
    let snapshots = Api::<VolumeSnapshot>::namespaced(client.clone(), &ns);
    for k in 0..restore_points {
        let backup_name = format!("{name}-rp-{k}");
        let backup: ArchiveBackup = serde_json::from_value(serde_json::json!({
            "apiVersion": "archivist.dev/v1alpha1", "kind": "ArchiveBackup",
            "metadata": {"name": backup_name, "labels": {"archivist.dev/policy": name}},
            "spec": {"policyName": name, "reason": "Manual"}
        }))?;
        create_absent(&backups, &backup).await?;
        let at = chrono::Utc::now() - chrono::Duration::hours((restore_points - k) as i64);
        let at = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let item = |component: &str, claim: &str| serde_json::json!({
            "component": component, "store": "s1", "sourceClaim": claim,
            "volumeSnapshot": format!("{backup_name}-{component}"), "capturedAt": at, "readyToUse": true, "restoreSize": "1Gi"
        });
        // What the operator itself records for such a run: the policy's copy, the four
        // conditions, the verification result.
        let condition = |kind: &str, reason: &str, message: &str| serde_json::json!({
            "type": kind, "status": "True", "reason": reason, "message": message, "lastTransitionTime": at, "observedGeneration": 1
        });
        let status = serde_json::json!({"status": {
            "observedGeneration": 1,
            "phase": "Completed", "startTime": at, "completionTime": at, "phaseStartTime": at,
            "quiesce": {"mode": "None"},
            "items": [item("metadata", &meta), item("content", &content)],
            "verification": {"state": "Skipped", "finishedAt": at, "message": "verification is not enabled for this policy"},
            "indexesIncluded": false,
            "message": "restore point ready",
            "policySpec": policy_spec,
            "conditions": [
                condition("Quiesced", "NotQuiesced", "quiesce mode None: the archive was not quiesced"),
                condition("Captured", "Captured", "2 item(s) captured, metadata first"),
                condition("Ready", "Completed", "restore point ready"),
                condition("Verified", "Skipped", "verification is not enabled for this policy"),
            ]
        }});
        backups
            .patch_status(&backup_name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .with_context(|| format!("status of {ns}/{backup_name}"))?;
        // Its two snapshots, labelled as the operator labels them: the operator's watch of
        // the runs' children lists them all at start-up (and keeps none: the run is settled).
        // Pre-provisioned (a content name as source), so the simulator leaves them alone.
        for component in ["metadata", "content"] {
            let snapshot: VolumeSnapshot = serde_json::from_value(serde_json::json!({
                "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
                "metadata": {"name": format!("{backup_name}-{component}"), "labels": {
                    "archivist.dev/policy": name, "archivist.dev/backup": backup_name,
                    "archivist.dev/component": component, "archivist.dev/store": "s1"
                }},
                "spec": {"source": {"volumeSnapshotContentName": format!("snapcontent-{backup_name}-{component}")}}
            }))?;
            create_absent(&snapshots, &snapshot).await?;
        }
    }
    Ok(())
}

/// The non-watch requests, leases left out (leader election renews its Lease on a timer of
/// its own, whatever the load).
fn non_watch(counts: &BTreeMap<String, u64>) -> u64 {
    ["GET", "LIST", "POST", "PUT", "PATCH", "DELETE"].iter().map(|v| counts.get(*v).copied().unwrap_or(0)).sum::<u64>() - leases(counts)
}

/// The writes, leases left out.
fn writes(counts: &BTreeMap<String, u64>) -> u64 {
    writes_by_resource(counts).values().sum()
}

fn leases(counts: &BTreeMap<String, u64>) -> u64 {
    counts.iter().filter(|(k, _)| k.ends_with(" leases") && !k.starts_with("WATCH")).map(|(_, v)| v).sum()
}

/// The biggest "VERB resource" counts, watches and leases left out.
fn top(counts: &BTreeMap<String, u64>, n: usize) -> String {
    let mut rows: Vec<(&String, &u64)> = counts
        .iter()
        .filter(|(k, v)| **v > 0 && k.contains(' ') && !k.contains(" by ") && !k.starts_with("WATCH") && !k.ends_with(" leases"))
        .collect();
    rows.sort_by(|a, b| b.1.cmp(a.1));
    let shown: Vec<String> = rows.iter().take(n).map(|(k, v)| format!("{k}: {v}")).collect();
    if shown.is_empty() { "none".into() } else { shown.join(", ") }
}

/// Waits until no request other than watches and leases has been made for [`QUIET`]; returns
/// the time from `start` to the last such request.
async fn wait_settled(proxy: &ApiProxy, start: Instant, timeout: Duration) -> anyhow::Result<Duration> {
    let mut last = non_watch(&proxy.snapshot());
    let mut last_change = start.elapsed();
    while start.elapsed() < timeout {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = non_watch(&proxy.snapshot());
        if now != last {
            last = now;
            last_change = start.elapsed();
        } else if start.elapsed() - last_change >= QUIET && now > 0 {
            return Ok(last_change);
        }
    }
    bail!("the operator did not settle within {timeout:?} ({last} requests so far)")
}

/// Triggers the first `--burst` policies at once and waits until each has a Completed run;
/// returns how many completed, the API server's peak RSS, and a LIST latency taken meanwhile.
async fn burst(client: &Client, args: &Args, timeout: Duration) -> anyhow::Result<(usize, Option<u64>, String)> {
    let triggered = chrono::Utc::now() - chrono::Duration::seconds(1);
    let request = chrono::Utc::now().to_rfc3339();
    stream::iter(0..args.burst)
        .map(|j| {
            let (ns, name) = policy_of(args, j);
            let patch = serde_json::json!({"metadata": {"annotations": {"archivist.dev/backup-now": request}}});
            let api = Api::<BackupPolicy>::namespaced(client.clone(), &ns);
            async move { api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.map(|_| ()) }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    let started = Instant::now();
    let mut peak = apiserver_rss();
    let mut latency = String::new();
    loop {
        let mut done = 0;
        for n in 0..args.namespaces {
            let all = Api::<ArchiveBackup>::namespaced(client.clone(), &namespace(args.policies, n)).list(&ListParams::default()).await?;
            done += all
                .items
                .iter()
                .filter(|b| !b.name_any().contains("-rp-"))
                // Only this burst's runs: a previous bench's are still there.
                .filter(|b| b.metadata.creation_timestamp.as_ref().is_some_and(|t| t.0.as_second() >= triggered.timestamp()))
                .filter(|b| b.status.as_ref().and_then(|s| s.phase) == Some(BackupPhase::Completed))
                .count();
        }
        peak = peak.max(apiserver_rss());
        if latency.is_empty() && started.elapsed() > Duration::from_secs(5) {
            latency = list_latency(client, args).await?;
        }
        if done >= args.burst || started.elapsed() > timeout {
            return Ok((done, peak, latency));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The median and the slowest of 5 LISTs of the first namespace's ArchiveBackups.
async fn list_latency(client: &Client, args: &Args) -> anyhow::Result<String> {
    let api = Api::<ArchiveBackup>::namespaced(client.clone(), &namespace(args.policies, 0));
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let n = api.list(&ListParams::default()).await?.items.len();
        times.push((t.elapsed(), n));
    }
    times.sort();
    Ok(format!("median {:.0?}, max {:.0?} ({} objects)", times[2].0, times[4].0, times[0].1))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

/// User plus system CPU seconds of a process.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).context("utime")?.parse::<f64>()? + fields.get(12).context("stime")?.parse::<f64>()?;
    // SAFETY: sysconf with a valid name has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / hz)
}

/// The RSS of this machine's kube-apiserver, in KiB, when one is found in /proc.
fn apiserver_rss() -> Option<u64> {
    let entries = std::fs::read_dir("/proc").ok()?;
    entries.filter_map(Result::ok).find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).ok()?;
        let program = cmd.split('\0').next()?;
        if program.ends_with("kube-apiserver") { rss_kib(pid).ok() } else { None }
    })
}
