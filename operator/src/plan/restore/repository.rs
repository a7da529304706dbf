//! Restores from a restic repository: the restore points the exports stored there (the
//! catalog), the choice of one by name, the restic commands that read it, and the Secret copy
//! read back from restic's tar. Pure: the commands' output is an argument.
//!
//! The exports' layout (`kube::export_script::export_script`): every item of a restore point is one
//! restic snapshot of its volume's files, tagged `archivist.dev/policy`, `backup`,
//! `component`, `store` and `claim`, with host `<namespace>/<policy>`; the manifest
//! (`manifest.json`, the ArchiveBackup) is one more snapshot, tagged
//! `archivist.dev/component=manifest`, written last, and also `archivist.dev/verified=true`
//! when the restore point's verification had passed.

use crate::api::{
    ArchiveBackup, Component, ExportState, ExportStatus, ExportedSnapshot, RestoreSelect, RestoreSource, VerificationState,
};
use crate::kube::labels::{BACKUP, COMPONENT, POLICY, STORE};
use crate::plan::export::{is_snapshot_id, MANIFEST_COMPONENT, MANIFEST_FILE};
use crate::plan::names::{component_word, fit, MAX_LABEL_NAME};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;

/// The tag of an exported item's source claim.
pub const CLAIM_TAG: &str = "archivist.dev/claim";
/// The tag an export puts on the manifest of a restore point whose verification passed
/// (`select: LatestVerified` chooses among those).
pub const VERIFIED_TAG: &str = "archivist.dev/verified";

/// The pod that reads the repository for a request (`<request>-repository`): restic with the
/// repository Secret as its environment, waiting for the operator's commands (exec).
pub fn reader_pod_name(request: &str) -> String {
    fit(&format!("{request}-repository"), MAX_LABEL_NAME)
}

/// The Job that restores one item's files from the repository into its new PVC.
pub fn fetch_job_name(request: &str, component: Component, store: &str, claim: &str) -> String {
    let store = if store.is_empty() { String::new() } else { format!("-{store}") };
    fit(&format!("{request}-fetch-{}{store}-{claim}", component_word(component)), MAX_LABEL_NAME)
}

/// One snapshot of the repository, as `restic snapshots --json` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogSnapshot {
    /// The snapshot's id.
    pub id: String,
    /// When it was taken.
    pub time: DateTime<Utc>,
    /// Its host: `<namespace>/<policy>` for Archivist's snapshots.
    pub host: String,
    /// Its tags `key=value`, by key.
    pub tags: BTreeMap<String, String>,
}

impl CatalogSnapshot {
    fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    /// The namespace part of the host (`<namespace>/<policy>`).
    fn namespace(&self) -> &str {
        self.host.split_once('/').map_or(self.host.as_str(), |(ns, _)| ns)
    }
}

#[derive(serde::Deserialize)]
struct ListedSnapshot {
    id: String,
    time: DateTime<Utc>,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// Reads `restic snapshots --json`. Tags without `=` are kept with an empty value.
pub fn parse_catalog(json: &[u8]) -> Result<Vec<CatalogSnapshot>, String> {
    let listed: Vec<ListedSnapshot> = serde_json::from_slice(json).map_err(|e| format!("restic snapshots printed no snapshot list: {e}"))?;
    Ok(listed
        .into_iter()
        .map(|s| CatalogSnapshot {
            id: s.id,
            time: s.time,
            host: s.hostname,
            tags: s
                .tags
                .unwrap_or_default()
                .into_iter()
                .map(|t| match t.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (t, String::new()),
                })
                .collect(),
        })
        .collect())
}

/// The command that lists the snapshots a request may restore from: those tagged with its
/// backup, or with its policy.
pub fn catalog_command(source: &RestoreSource) -> Vec<String> {
    let tag = match (&source.backup_name, &source.policy_name) {
        (Some(backup), _) => format!("{BACKUP}={backup}"),
        (None, policy) => format!("{POLICY}={}", policy.clone().unwrap_or_default()),
    };
    ["restic", "snapshots", "--json", "--tag", &tag].iter().map(ToString::to_string).collect()
}

/// The command that prints a manifest; `None` for an id that is not a snapshot id.
pub fn manifest_command(id: &str) -> Option<Vec<String>> {
    is_snapshot_id(id).then(|| ["restic", "dump", id, &format!("/{MANIFEST_FILE}")].iter().map(ToString::to_string).collect())
}

/// The command that prints the Secret copy's snapshot as a tar archive; `None` for an id
/// that is not a snapshot id.
pub fn secrets_command(id: &str) -> Option<Vec<String>> {
    is_snapshot_id(id).then(|| ["restic", "dump", id, "/"].iter().map(ToString::to_string).collect())
}

/// The command of a fetch Job: restore snapshot `id` into `target`; `None` for an id that is
/// not a snapshot id.
pub fn fetch_command(id: &str, target: &str) -> Option<Vec<String>> {
    is_snapshot_id(id).then(|| ["restic", "restore", id, "--target", target].iter().map(ToString::to_string).collect())
}

/// The restore point a request chose in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    /// The namespace it was exported from.
    pub namespace: String,
    /// The backup's name.
    pub backup: String,
    /// The manifest's snapshot id.
    pub manifest: String,
    /// Every item's snapshot (the newest of each component, store and claim).
    pub items: Vec<ExportedSnapshot>,
}

fn component_of(word: &str) -> Option<Component> {
    [Component::Master, Component::Metadata, Component::Content, Component::Index, Component::Store, Component::Secrets]
        .into_iter()
        .find(|c| component_word(*c) == word)
}

/// Chooses the restore point `source` names among the repository's snapshots: the backup
/// named `backupName`, or the newest manifest of `policyName` (with `select:
/// LatestVerified`, the newest whose manifest is tagged verified). Only manifests count: a
/// restore point without one was not completely exported. When two namespaces exported what
/// the request names, `source.repository.namespace` must say which.
pub fn choose(source: &RestoreSource, catalog: &[CatalogSnapshot]) -> Result<Chosen, String> {
    let wanted_ns = source.repository.as_ref().and_then(|r| r.namespace.as_deref());
    let verified_only = source.backup_name.is_none() && source.select == Some(RestoreSelect::LatestVerified);
    let what = match (&source.backup_name, &source.policy_name) {
        (Some(backup), _) => format!("backup {backup}"),
        (None, policy) => format!("policy {}", policy.clone().unwrap_or_default()),
    };
    let manifests: Vec<&CatalogSnapshot> = catalog
        .iter()
        .filter(|s| s.tag(COMPONENT) == Some(MANIFEST_COMPONENT))
        .filter(|s| match (&source.backup_name, &source.policy_name) {
            (Some(backup), _) => s.tag(BACKUP) == Some(backup.as_str()),
            (None, Some(policy)) => s.tag(POLICY) == Some(policy.as_str()),
            (None, None) => false,
        })
        .filter(|s| !verified_only || s.tag(VERIFIED_TAG) == Some("true"))
        .filter(|s| wanted_ns.is_none_or(|ns| s.namespace() == ns))
        .collect();
    let namespaces: BTreeSet<&str> = manifests.iter().map(|s| s.namespace()).collect();
    if namespaces.len() > 1 {
        let all: Vec<&str> = namespaces.into_iter().collect();
        return Err(format!(
            "spec.source.repository.namespace: {what} was exported from namespaces {}; name the one to restore",
            all.join(", ")
        ));
    }
    let Some(manifest) = manifests.into_iter().max_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id))) else {
        let verified = if verified_only { " whose verification passed" } else { "" };
        let within = wanted_ns.map(|ns| format!(" from namespace {ns}")).unwrap_or_default();
        return Err(format!("spec.source: the repository holds no complete export of {what}{verified}{within} (no manifest)"));
    };
    let backup = manifest.tag(BACKUP).unwrap_or_default().to_string();
    let mut newest: BTreeMap<(Component, String, String), &CatalogSnapshot> = BTreeMap::new();
    for snapshot in catalog.iter().filter(|s| s.host == manifest.host && s.tag(BACKUP) == Some(backup.as_str())) {
        let Some(component) = snapshot.tag(COMPONENT).and_then(component_of) else { continue };
        let key = (component, snapshot.tag(STORE).unwrap_or_default().to_string(), snapshot.tag(CLAIM_TAG).unwrap_or_default().to_string());
        if newest.get(&key).is_none_or(|known| (known.time, &known.id) < (snapshot.time, &snapshot.id)) {
            newest.insert(key, snapshot);
        }
    }
    Ok(Chosen {
        namespace: manifest.namespace().to_string(),
        backup,
        manifest: manifest.id.clone(),
        items: newest
            .into_iter()
            .map(|((component, store, claim), s)| ExportedSnapshot { component, store, claim, id: s.id.clone(), bytes: 0 })
            .collect(),
    })
}

/// The restore point as the repository describes it: the manifest (an ArchiveBackup) with
/// `status.export` naming every item's snapshot. Refused when the manifest is not the chosen
/// backup's.
pub fn backup_from_manifest(manifest: &[u8], chosen: &Chosen, repository: Option<String>) -> Result<ArchiveBackup, String> {
    let mut backup: ArchiveBackup =
        serde_json::from_slice(manifest).map_err(|e| format!("the manifest {} of backup {} is not an ArchiveBackup: {e}", chosen.manifest, chosen.backup))?;
    if backup.metadata.name.as_deref() != Some(chosen.backup.as_str()) {
        return Err(format!("the manifest {} describes {:?}, not backup {}", chosen.manifest, backup.metadata.name, chosen.backup));
    }
    let status = backup.status.get_or_insert_with(Default::default);
    status.export = Some(ExportStatus {
        state: ExportState::Exported,
        repository,
        started_at: None,
        finished_at: None,
        bytes_added: None,
        message: None,
        snapshots: chosen.items.clone(),
        manifest: Some(chosen.manifest.clone()),
        forget_failed_at: None,
    });
    Ok(backup)
}

/// Whether the export tags the manifest of `backup` verified ([`VERIFIED_TAG`]).
pub fn verified(backup: &ArchiveBackup) -> bool {
    backup.status.as_ref().and_then(|s| s.verification.as_ref()).is_some_and(|v| v.state == VerificationState::Passed)
}

/// The repository snapshot of one item of an exported restore point.
pub fn item_snapshot<'a>(backup: &'a ArchiveBackup, component: Component, store: &str, claim: &str) -> Option<&'a str> {
    let export = backup.status.as_ref()?.export.as_ref()?;
    export.snapshots.iter().find(|s| s.component == component && s.store == store && s.claim == claim).map(|s| s.id.as_str())
}

/// Whether a restore point was exported completely (its items can come from the repository).
pub fn exported(backup: &ArchiveBackup) -> bool {
    backup.status.as_ref().and_then(|s| s.export.as_ref()).is_some_and(|e| e.state == ExportState::Exported && !e.snapshots.is_empty())
}

/// The largest Secret copy read back (the API server's own limit on a Secret is 1 MiB).
const MAX_SECRET_BYTES: u64 = 1 << 20;

/// The Secret copy's keys and values from the tar archive `restic dump <id> /` prints. The
/// copy was backed up from a secret volume, whose files are either plain (`<key>`) or, as the
/// kubelet writes them, in a timestamped directory with symbolic links beside it
/// (`..2026_…/<key>`, `<key> -> ..data/<key>`): every regular file is a key, named by its
/// file name; links and directories are skipped.
pub fn secret_data(tar: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut archive = tar::Archive::new(tar);
    let mut data = BTreeMap::new();
    let mut total = 0u64;
    for entry in archive.entries().map_err(|e| format!("the Secret copy is not a tar archive: {e}"))? {
        let mut entry = entry.map_err(|e| format!("the Secret copy's archive is damaged: {e}"))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(|e| format!("the Secret copy's archive has a bad name: {e}"))?.into_owned();
        let Some(key) = path.file_name().and_then(|n| n.to_str()).map(ToString::to_string) else { continue };
        total += entry.size();
        if total > MAX_SECRET_BYTES {
            return Err(format!("the Secret copy holds more than {MAX_SECRET_BYTES} bytes"));
        }
        let mut value = Vec::new();
        entry.read_to_end(&mut value).map_err(|e| format!("the Secret copy's archive is damaged at {key}: {e}"))?;
        if data.insert(key.clone(), value).is_some() {
            return Err(format!("the Secret copy holds key {key} twice"));
        }
    }
    Ok(data)
}

#[cfg(test)]
mod tests;
