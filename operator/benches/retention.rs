//! Retention planning over 100,000 backups of one policy with every rule set (issue 2's goal:
//! under 50 ms on a 2-core machine).
//!
//! `cargo bench -p archivist --bench retention`

use archivist::api::{ClusterRetentionPolicySpec, RetentionRules};
use archivist::plan::retention::cluster::plan_with_cluster;
use archivist::plan::retention::{plan, RetentionCandidate, RunState};
use chrono::{DateTime, TimeDelta, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

const BACKUPS: usize = 100_000;

/// Hourly backups going back about eleven years, shuffled: every 50th failed, every 24th
/// verified, every 1000th held, the newest three still running.
fn backups(now: DateTime<Utc>) -> Vec<RetentionCandidate> {
    let mut out: Vec<RetentionCandidate> = (0..BACKUPS)
        .map(|i| RetentionCandidate {
            name: format!("mailstore-{i:06}"),
            time: now - TimeDelta::minutes(60 * i as i64 + (i as i64 * 7) % 50),
            state: match i {
                0..=2 => RunState::InProgress,
                _ if i % 50 == 0 => RunState::Failed,
                _ => RunState::Completed,
            },
            hold: i % 1000 == 999,
            verified: i % 24 == 5,
            pre_restore: false,
            restore_source: false,
        })
        .collect();
    // A deterministic shuffle (xorshift), so planning has to sort.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..out.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.swap(i, (state % (i as u64 + 1)) as usize);
    }
    out
}

fn bench(c: &mut Criterion) {
    let now = DateTime::parse_from_rfc3339("2027-01-01T00:00:00Z").expect("now").with_timezone(&Utc);
    let tz = chrono_tz::Europe::Berlin;
    let candidates = backups(now);
    let typical = RetentionRules {
        keep_last: Some(24),
        keep_hourly: Some(48),
        keep_daily: Some(30),
        keep_weekly: Some(52),
        keep_monthly: Some(24),
        keep_yearly: Some(10),
        keep_verified: Some(7),
        keep_failed: Some(5),
    };
    // Counts so large that no rule ever stops early: every backup is bucketed five times.
    let unbounded = RetentionRules {
        keep_last: Some(50_000),
        keep_hourly: Some(u32::MAX),
        keep_daily: Some(u32::MAX),
        keep_weekly: Some(u32::MAX),
        keep_monthly: Some(u32::MAX),
        keep_yearly: Some(u32::MAX),
        keep_verified: Some(u32::MAX),
        keep_failed: Some(u32::MAX),
    };
    let cluster = [ClusterRetentionPolicySpec {
        min_keep_daily: Some(60),
        min_keep_verified: Some(3),
        min_retention_days: Some(7),
        max_retention_days: Some(3650),
        max_restore_points_per_policy: Some(500),
        ..Default::default()
    }];

    let mut group = c.benchmark_group("retention_100k");
    group.sample_size(30);
    group.bench_function("plan_typical_rules", |b| {
        b.iter(|| plan(black_box(&typical), tz, black_box(&candidates), now))
    });
    group.bench_function("plan_unbounded_rules", |b| {
        b.iter(|| plan(black_box(&unbounded), tz, black_box(&candidates), now))
    });
    group.bench_function("plan_with_cluster_typical", |b| {
        b.iter(|| plan_with_cluster(black_box(&typical), tz, black_box(&candidates), now, &cluster))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
