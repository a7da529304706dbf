//! Restoring from a restic repository: the reader pod (restic with the repository Secret as
//! its environment, waiting for the operator's commands), the commands run in it through
//! Kubernetes exec (their output comes back over the API, never through a log: it may hold
//! the master Secret), and the fetch Job that restores one item's files into its new PVC.

use super::export::{cache_volume, restic_container_of};
use super::redact::Redactor;
use super::restore::{job_object, labels, request_owned};
use crate::api::RestoreRequest;
use crate::plan::restore::repository::{fetch_command, fetch_job_name};
use crate::plan::restore::{ItemKind, RestoreItem};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, Pod, PodSpec, Volume, VolumeMount};
use kube::{Client, ResourceExt};
use std::time::Duration;

/// The reader pod's container.
pub const READER_CONTAINER: &str = "restic";
/// How long the reader pod may live (Kubernetes stops it then); the restore deletes it as
/// soon as it ends.
pub const READER_DEADLINE_SECONDS: i64 = 6 * 3600;
/// Where a fetch Job mounts the PVC it fills.
pub const FETCH_MOUNT: &str = "/restore/data";
/// The most output read back from one command in the reader pod (the catalog of a large
/// repository is the biggest).
pub const MAX_OUTPUT: usize = 64 << 20;
/// How long one command in the reader pod may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// The reader pod `name` of `request`: restic (`image`, default the mover image) with Secret
/// `secret` as its environment, sleeping until the operator deletes it; labelled with and
/// owned by the request.
pub fn reader_pod(request: &RestoreRequest, name: &str, secret: &str, image: Option<&str>) -> Pod {
    let sleep = vec!["sleep".to_string(), READER_DEADLINE_SECONDS.to_string()];
    let container = restic_container_of(image, secret, READER_CONTAINER, sleep, Vec::new(), Vec::new());
    Pod {
        metadata: request_owned(request, name),
        spec: Some(PodSpec {
            restart_policy: Some("Never".into()),
            active_deadline_seconds: Some(READER_DEADLINE_SECONDS),
            containers: vec![container],
            volumes: Some(vec![cache_volume()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The fetch Job of a repository item: its new PVC `claim` mounted at [`FETCH_MOUNT`], and
/// `restic restore <id> --target /restore/data` with no shell. `None` when the item does not
/// come from the repository, or its id is not a snapshot id.
pub fn fetch_job(request: &RestoreRequest, backup: &str, item: &RestoreItem, claim: &str, secret: &str, image: Option<&str>) -> Option<Job> {
    let id = match &item.kind {
        ItemKind::Volume { from: crate::plan::restore::DataSource::Repository(id), .. }
        | ItemKind::Sql { from: crate::plan::restore::DataSource::Repository(id), .. } => id,
        _ => return None,
    };
    let command = fetch_command(id, FETCH_MOUNT)?;
    let mount = VolumeMount { name: "data".into(), mount_path: FETCH_MOUNT.into(), ..Default::default() };
    let container = restic_container_of(image, secret, "fetch", command, Vec::new(), vec![mount]);
    let data = Volume {
        name: "data".into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: claim.to_string(), read_only: None }),
        ..Default::default()
    };
    let name = fetch_job_name(&request.name_any(), item.component, &item.store, claim);
    Some(job_object(request, &name, labels(&request.name_any(), backup, item), container, vec![data, cache_volume()]))
}

/// Runs `command` in the reader pod `pod` and returns its stdout, or, when it fails, its exit
/// reason and the end of its stderr with every value of the repository Secret replaced
/// (`redactor`). `client` must speak HTTP/1.1 (`ApiClients::exec`). An error is a failed
/// exec call (the API or the pod), not a failed command.
pub async fn run(client: &Client, namespace: &str, pod: &str, command: Vec<String>, redactor: &Redactor) -> Result<Result<Vec<u8>, String>, kube::Error> {
    let call = super::exec::capture(client, namespace, pod, Some(READER_CONTAINER), command, MAX_OUTPUT as u64);
    let Ok(captured) = tokio::time::timeout(COMMAND_TIMEOUT, call).await else {
        return Ok(Err(format!("the command did not finish within {}s", COMMAND_TIMEOUT.as_secs())));
    };
    let captured = captured?;
    if captured.stdout.len() > MAX_OUTPUT {
        return Ok(Err(format!("the command printed more than {MAX_OUTPUT} bytes")));
    }
    match captured.status {
        Some(s) if s.status.as_deref() == Some("Success") => Ok(Ok(captured.stdout)),
        Some(s) => {
            let reason = s.message.unwrap_or_else(|| s.reason.unwrap_or_else(|| "non-zero exit".into()));
            Ok(Err(super::exec::failure_message(&reason, &captured.stderr, redactor)))
        }
        None => Ok(Err("no exit status was reported".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Component;
    use crate::kube::restore::tests::request;
    use crate::kube::restore::RESTORE;
    use crate::plan::restore::DataSource;

    fn item(from: DataSource) -> RestoreItem {
        RestoreItem { component: Component::Content, store: "s1".into(), original: "content".into(), restored: "content-r".into(), kind: ItemKind::Volume { from, size: Some("1Gi".into()) } }
    }

    #[test]
    fn the_reader_has_the_repository_only_as_its_environment() {
        let pod = reader_pod(&request(), "req-repository", "archive-repo", None);
        let spec = pod.spec.expect("spec");
        let container = &spec.containers[0];
        assert_eq!(container.name, READER_CONTAINER);
        let from = container.env_from.as_ref().and_then(|e| e[0].secret_ref.as_ref()).map(|s| s.name.as_str());
        assert_eq!(from, Some("archive-repo"));
        assert!(container.command.as_ref().is_some_and(|c| c[0] == "sleep" && !c.join(" ").contains("RESTIC")));
        assert_eq!(pod.metadata.labels.and_then(|l| l.get(RESTORE).cloned()).as_deref(), Some("req"));
        assert_eq!(pod.metadata.owner_references.map(|o| o[0].uid.clone()).as_deref(), Some("uid-1"));
        assert_eq!(spec.active_deadline_seconds, Some(READER_DEADLINE_SECONDS));
    }

    #[test]
    fn a_fetch_job_restores_one_snapshot_into_its_claim() {
        let id = "3f2a9c1d";
        let job = fetch_job(&request(), "b1", &item(DataSource::Repository(id.into())), "content-r", "archive-repo", Some("restic/restic:0.17.3")).expect("job");
        assert_eq!(job.metadata.name.as_deref(), Some("req-fetch-content-s1-content-r"));
        let pod = job.spec.and_then(|s| s.template.spec).expect("pod");
        assert_eq!(pod.containers[0].command.as_ref().map(|c| c.join(" ")), Some(format!("restic restore {id} --target {FETCH_MOUNT}")));
        let claims: Vec<&str> = pod.volumes.iter().flatten().filter_map(|v| v.persistent_volume_claim.as_ref()).map(|c| c.claim_name.as_str()).collect();
        assert_eq!(claims, ["content-r"]);
        assert!(fetch_job(&request(), "b1", &item(DataSource::Cluster("snap".into())), "content-r", "r", None).is_none(), "a snapshot item needs no fetch");
        assert!(fetch_job(&request(), "b1", &item(DataSource::Repository("--help".into())), "content-r", "r", None).is_none(), "only snapshot ids");
    }

    #[test]
    fn a_failure_never_quotes_the_secret() {
        let redactor = Redactor::new(["s3cret-pw", "rest:http://u:s3cret-pw@host/repo"]);
        let message = super::super::exec::failure_message("command terminated with non-zero exit code", b"Fatal: wrong password at rest:http://u:s3cret-pw@host/repo", &redactor);
        assert!(!message.contains("s3cret-pw"), "{message}");
        assert!(message.contains("wrong password"), "{message}");
    }
}
