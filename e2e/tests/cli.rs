//! The `archivist` command line on a live cluster, as a person uses it: `backup create --wait`
//! follows a Freeze backup phase by phase, `backup list|describe`, `status`, `restore create
//! --wait` of a SideBySide restore and `restore describe`; a failing run exits 1; a missing
//! object or a bad flag exits 2 with one line naming it; and the same binary answers as
//! `kubectl archivist`.
//!
//! ```sh
//! cargo test -p archivist-e2e --test cli -- --ignored --nocapture
//! ```

mod backup_support;

use std::path::Path;
use std::process::Output;

use anyhow::{ensure, Context as _};
use archivist_e2e::testing::kubeconfig_path;
use archivist_e2e::testing::operator::archivist_bin;
use archivist_e2e::testing::with_namespace;
use backup_support::*;

/// Runs `program args… -n ns --kubeconfig …` and returns what it did.
async fn run(program: &Path, args: &[&str], ns: &str, path_prefix: Option<&Path>) -> anyhow::Result<Output> {
    let kubeconfig = kubeconfig_path();
    let mut command = tokio::process::Command::new(program);
    command.args(args).arg("-n").arg(ns).arg("--kubeconfig").arg(&kubeconfig);
    if let Some(dir) = path_prefix {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![dir.to_path_buf()];
        paths.extend(std::env::split_paths(&path));
        command.env("PATH", std::env::join_paths(paths)?);
    }
    let output = command.output().await.with_context(|| format!("cannot run {}", program.display()))?;
    eprintln!(
        "$ {} {}\n{}{}exit {:?}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        output.status.code()
    );
    Ok(output)
}

/// `archivist args…` in namespace `ns`.
async fn archivist(args: &[&str], ns: &str) -> anyhow::Result<Output> {
    run(&archivist_bin(), args, ns, None).await
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A Freeze policy of the StatefulSet `archive` with one store; `freeze` is the freeze hook's
/// shell command.
fn freeze_policy(freeze: &str) -> String {
    format!(
        r#"
  target: {{kind: StatefulSet, name: archive}}
  quiesce:
    mode: Freeze
    freeze: {{exec: {{container: server, command: ["sh", "-c", "{freeze}"]}}}}
    thaw: {{exec: {{container: server, command: ["sh", "-c", "rm -f /meta/frozen"]}}}}
    timeoutSeconds: 60
  stores:
  - name: s1
    metadata: {{volumeClaims: [meta]}}
    content: {{volumeClaims: [content]}}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_person_backs_up_and_restores_with_the_cli() {
    with_namespace("cli", |client, ns| async move {
        let _operator = start_operator(&client, &ns).await?;
        data_pvc(&client, &ns, "meta", &[]).await?;
        let content = data_pvc(&client, &ns, "content", &[]).await?;
        std::fs::write(content.join("msg-1.eml"), "message 1\n")?;
        archive_statefulset(&client, &ns, "archive", 1, &["meta", "content"]).await?;
        policy(&client, &ns, "archive", &freeze_policy("echo frozen > /meta/frozen")).await?;

        // A backup followed to the end: a line per phase, the release, the outcome.
        let out = archivist(&["backup", "create", "archive", "--name", "b1", "--wait", "--timeout", "120"], &ns).await?;
        let text = stdout(&out);
        ensure!(out.status.code() == Some(0), "backup create --wait exited {:?}:\n{text}{}", out.status.code(), stderr(&out));
        let lines: Vec<&str> = text.lines().collect();
        ensure!(lines.first() == Some(&format!("archivebackup {ns}/b1 created").as_str()), "first line: {lines:?}");
        let position = |needle: &str| lines.iter().position(|l| l.contains(needle));
        let order = ["Quiescing (Freeze)", "Released after", "Completed: 2 items"].map(position);
        ensure!(order.iter().all(Option::is_some), "missing phase lines in {lines:?}");
        ensure!(order.windows(2).all(|w| w[0] < w[1]), "phase lines out of order: {lines:?}");

        // The list, as a table and as JSON.
        let out = archivist(&["backup", "list"], &ns).await?;
        let row = stdout(&out).lines().find(|l| l.starts_with("b1 ")).map(str::to_string).context("no b1 row")?;
        ensure!(row.contains("archive") && row.contains("Manual") && row.contains("Completed") && row.contains(" s "), "row: {row}");
        let out = archivist(&["backup", "list", "-o", "json"], &ns).await?;
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).context("backup list -o json")?;
        ensure!(list["kind"] == "List" && list["items"][0]["metadata"]["name"] == "b1", "{list}");

        // Describe: the window, the items in capture order, and the run's Events.
        run_event_reasons_through(&client, &ns, "b1", "BackupCompleted").await?;
        let text = stdout(&archivist(&["backup", "describe", "b1"], &ns).await?);
        for want in ["Phase:", "Quiesce:", "Freeze,", "Items:", "Events:", "Quiesced", "BackupCompleted"] {
            ensure!(text.contains(want), "describe lacks {want:?}:\n{text}");
        }
        let (meta, content) = (text.find("metadata").context("no metadata item")?, text.find("content ").context("no content item")?);
        ensure!(meta < content, "items not in capture order:\n{text}");

        // Status: one line for the policy with its last success and restore points.
        let out = archivist(&["status"], &ns).await?;
        let row = stdout(&out).lines().find(|l| l.starts_with("archive ")).map(str::to_string).context("no status row")?;
        ensure!(row.contains("b1 (") && row.contains("manual") && row.split_whitespace().any(|w| w == "1"), "status row: {row}");
        let out = archivist(&["status", "-o", "json"], &ns).await?;
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).context("status -o json")?;
        ensure!(rows[0]["restorePoints"] == 1 && rows[0]["failing"] == serde_json::json!([]), "{rows}");

        // A SideBySide restore followed to the end, with where each item went.
        let out = archivist(&["restore", "create", "--from", "b1", "--mode", "SideBySide", "--name-suffix", "-cli", "--name", "r1", "--wait", "--timeout", "120"], &ns).await?;
        let text = stdout(&out);
        ensure!(out.status.code() == Some(0), "restore create --wait exited {:?}:\n{text}{}", out.status.code(), stderr(&out));
        ensure!(text.contains("Restoring from b1") && text.contains("Completed: 2 items restored") && text.contains("content s1: content -> content-cli"), "{text}");
        let text = stdout(&archivist(&["restore", "describe", "r1"], &ns).await?);
        ensure!(text.contains("SideBySide") && text.contains("meta-cli") && text.contains("content-cli"), "{text}");

        // The same binary as a kubectl plugin.
        let plugins = tempfile::tempdir()?;
        std::os::unix::fs::symlink(archivist_bin(), plugins.path().join("kubectl-archivist"))?;
        let out = run(Path::new("kubectl"), &["archivist", "backup", "list"], &ns, Some(plugins.path())).await?;
        ensure!(out.status.code() == Some(0) && stdout(&out).lines().any(|l| l.starts_with("b1 ")), "kubectl archivist: {}{}", stdout(&out), stderr(&out));
        let out = run(Path::new("kubectl"), &["archivist", "--help"], &ns, Some(plugins.path())).await?;
        ensure!(stdout(&out).contains("kubectl archivist"), "plugin help: {}", stdout(&out));
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the local cluster: e2e/local-cluster up"]
async fn a_failed_run_exits_1_and_bad_input_exits_2_naming_it() {
    with_namespace("cli-bad", |client, ns| async move {
        let _operator = start_operator(&client, &ns).await?;
        data_pvc(&client, &ns, "meta", &[]).await?;
        data_pvc(&client, &ns, "content", &[]).await?;
        archive_statefulset(&client, &ns, "archive", 1, &["meta", "content"]).await?;
        policy(&client, &ns, "archive", &freeze_policy("echo cannot freeze >&2; exit 3")).await?;

        // The freeze hook fails: the waited-for run fails, exit 1, and says why.
        let out = archivist(&["backup", "create", "archive", "--name", "b1", "--wait", "--timeout", "120"], &ns).await?;
        ensure!(out.status.code() == Some(1), "a failed run exited {:?}", out.status.code());
        let failed = stdout(&out).lines().last().unwrap_or_default().to_string();
        ensure!(failed.contains("Failed:"), "last line: {failed}");
        let out = archivist(&["status"], &ns).await?;
        ensure!(stdout(&out).contains("last run b1 failed"), "status: {}", stdout(&out));

        // Each bad input: exit 2, one line on stderr naming the object or flag.
        let cases: Vec<(Vec<&str>, String)> = vec![
            (vec!["backup", "describe", "nope"], format!("archivist: ArchiveBackup {ns}/nope not found")),
            (vec!["backup", "create", "nope"], format!("archivist: BackupPolicy {ns}/nope not found")),
            (vec!["backup", "create", "archive", "--name", "b1"], format!("archivist: ArchiveBackup {ns}/b1 already exists")),
            (vec!["backup", "create", "archive", "--name", "Bad'Name"], format!("archivist: ArchiveBackup {ns}/Bad'Name: --name: ")),
            (vec!["restore", "create", "--from", "nope"], format!("archivist: ArchiveBackup {ns}/nope not found")),
            (vec!["restore", "create", "--from", "b1", "--name-suffix", "x'y"], "--name-suffix: ".to_string()),
            (vec!["restore", "create", "--from", "b1", "--select", "Latest"], "archivist: --select: ".to_string()),
            (vec!["restore", "describe", "nope"], format!("archivist: RestoreRequest {ns}/nope not found")),
            (vec!["backup", "list", "--output", "xml"], "invalid value 'xml'".to_string()),
        ];
        for (args, want) in cases {
            let out = archivist(&args, &ns).await?;
            let err = stderr(&out);
            ensure!(out.status.code() == Some(2), "{args:?} exited {:?}: {err}", out.status.code());
            ensure!(err.contains(&want), "{args:?}: stderr {err:?} lacks {want:?}");
            if !want.starts_with("invalid value") {
                ensure!(err.lines().count() == 1, "{args:?}: more than one line: {err:?}");
            }
        }
        Ok(())
    })
    .await;
}
