//! Jobs as the state machines see them: running, succeeded, or failed with a reason a person
//! can act on (the Job's condition plus the last lines its pod wrote, e.g. "password
//! authentication failed" or "database ... already exists").

use super::dump::observe_job;
use super::redact::{LazyRedactor, Redactor};
use crate::plan::backup::JobObs;
use super::labels::{owned_by, BACKUP};
use crate::api::ArchiveBackup;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodTemplateSpec, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, LogParams};
use kube::{Api, Client, ResourceExt};
use std::collections::BTreeMap;

/// The `activeDeadlineSeconds` of restore Jobs (post-restore hooks and SQL restores): 24 hours.
/// They have no timeout setting of their own (index rebuilds and large restores take hours), but
/// none may run forever: Kubernetes then fails the Job (`DeadlineExceeded`) and the restore with it.
pub const RESTORE_JOB_DEADLINE_SECONDS: i64 = 24 * 3600;

/// A Job of run `backup` that runs `container` once: one pod, never retried
/// (`backoffLimit` 0, `restartPolicy` Never), stopped by Kubernetes after `deadline_seconds`,
/// labelled `archivist.dev/backup` (the run's children watch wakes the run on its progress)
/// and owned by the run (it goes with it). The verify, export and forget Jobs are all this.
pub fn run_once_job(backup: &ArchiveBackup, name: String, deadline_seconds: Option<i64>, container: Container, volumes: Vec<Volume>) -> Job {
    let labels = BTreeMap::from([(BACKUP.to_string(), backup.name_any())]);
    Job {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: backup.namespace(),
            labels: Some(labels.clone()),
            owner_references: Some(owned_by(backup)),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: deadline_seconds,
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels), ..Default::default() }),
                spec: Some(PodSpec { restart_policy: Some("Never".into()), containers: vec![container], volumes: Some(volumes), ..Default::default() }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// How much of a failed pod's log is quoted.
const LOG_TAIL_LINES: i64 = 3;
const LOG_TAIL_CHARS: usize = 300;

/// The Jobs matching `selector` by name, as [`observe_all`] sees them.
pub async fn list(client: &Client, namespace: &str, selector: &str, redactor: &LazyRedactor) -> Result<BTreeMap<String, JobObs>, kube::Error> {
    let jobs = Api::<Job>::namespaced(client.clone(), namespace).list(&ListParams::default().labels(selector)).await?;
    observe_all(client, namespace, &jobs.items, redactor).await
}

/// `jobs` of `namespace` by name; a failed Job's message ends with its pod's last log lines
/// when they can be read. The whole message goes through `redactor`: it is copied into status,
/// Events and the operator's log. Only a failed Job costs requests (the Secrets, once, and the
/// pod's log); running and succeeded ones are read from the Jobs given.
pub async fn observe_all<'a>(client: &Client, namespace: &str, jobs: impl IntoIterator<Item = &'a Job>, redactor: &LazyRedactor) -> Result<BTreeMap<String, JobObs>, kube::Error> {
    let mut out = BTreeMap::new();
    for job in jobs {
        let mut state = observe_job(job);
        if let JobObs::Failed { message } = &mut state {
            let redactor = redactor.get().await?;
            if let Some(tail) = log_tail(client, namespace, &job.name_any(), redactor).await {
                message.push_str(&format!("; its pod said: {tail}"));
            }
            *message = redactor.redact(message);
        }
        out.insert(job.name_any(), state);
    }
    Ok(out)
}

/// The last lines of the newest pod of Job `job`, redacted and trimmed; `None` when there is
/// none to read.
async fn log_tail(client: &Client, namespace: &str, job: &str, redactor: &Redactor) -> Option<String> {
    let params = LogParams { tail_lines: Some(LOG_TAIL_LINES), ..Default::default() };
    let text = newest_pod_log(client, namespace, job, &params).await.ok()??;
    quote_tail(&text, redactor)
}

/// The most of a Job's log that [`job_log`] reads: 1 MiB.
const JOB_LOG_LIMIT_BYTES: i64 = 1 << 20;

/// The log of the newest pod of Job `job` (at most 1 MiB), for a Job that reports its result
/// there (the export Job); `None` when the Job has no pod left. An error reading it is
/// returned (the caller tries again), never taken for a missing log. Never copy it whole into
/// status, an Event or a log line: parse what is needed.
pub async fn job_log(client: &Client, namespace: &str, job: &str) -> Result<Option<String>, kube::Error> {
    let params = LogParams { limit_bytes: Some(JOB_LOG_LIMIT_BYTES), ..Default::default() };
    newest_pod_log(client, namespace, job, &params).await
}

async fn newest_pod_log(client: &Client, namespace: &str, job: &str, params: &LogParams) -> Result<Option<String>, kube::Error> {
    let pods = Api::<Pod>::namespaced(client.clone(), namespace);
    let list = pods.list(&ListParams::default().labels(&format!("job-name={job}"))).await?;
    let Some(pod) = list.items.iter().max_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0)) else { return Ok(None) };
    pods.logs(&pod.name_any(), params).await.map(Some)
}

/// The end of a log as quoted in a message: secret values replaced (before the text is cut,
/// so no part of one survives at the cut), whitespace collapsed to single spaces, at most
/// [`LOG_TAIL_CHARS`] characters (with `…` when cut); `None` when nothing is left.
pub fn quote_tail(text: &str, redactor: &Redactor) -> Option<String> {
    let text = redactor.redact(text);
    let text = redactor.redact(&text.split_whitespace().collect::<Vec<_>>().join(" "));
    if text.is_empty() {
        return None;
    }
    let mut tail: String = text.chars().rev().take(LOG_TAIL_CHARS).collect::<Vec<_>>().into_iter().rev().collect();
    if tail.len() < text.len() {
        tail.insert(0, '…');
    }
    Some(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_tails_are_redacted_collapsed_and_cut() {
        let r = Redactor::new(["pw-5ecret", "archivist"]);
        let cases: Vec<(String, Option<String>)> = vec![
            ("".into(), None),
            ("  \n ".into(), None),
            (
                "pg_dump: error: FATAL:  password authentication failed for user \"archivist\"\n".into(),
                Some("pg_dump: error: FATAL: password authentication failed for user \"***\"".into()),
            ),
            ("PGPASSWORD=pw-5ecret\nPGUSER=archivist\n".into(), Some("PGPASSWORD=*** PGUSER=***".into())),
            // Redacted before the cut: cutting first would have left "ret" of the password.
            (format!("pw-5ecret{}", "x".repeat(LOG_TAIL_CHARS - 3)), Some(format!("***{}", "x".repeat(LOG_TAIL_CHARS - 3)))),
            (format!("a pw-5ecret{}", "x".repeat(LOG_TAIL_CHARS - 3)), Some(format!("…***{}", "x".repeat(LOG_TAIL_CHARS - 3)))),
        ];
        for (text, want) in cases {
            assert_eq!(quote_tail(&text, &r), want, "{text:?}");
        }
    }
}
