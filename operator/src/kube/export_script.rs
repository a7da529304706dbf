//! The export Job's shell script: every item of a restore point backed up with `restic backup`,
//! then the manifest. It names no secret (restic reads the repository and the password from its
//! environment), and every value in it is a single-quoted word.
//!
//! How it spends its time: each restic command derives the repository key from the password
//! (scrypt, about 0.6 s of one core), and a restore point has several items. So the script runs
//! the items in [`EXPORT_LANES`] concurrent lanes, and starts the manifest's `restic backup
//! --stdin` at the same time, reading a FIFO: it opens the repository while the items are backed
//! up, and gets the manifest only once every item succeeded. When an item fails, the manifest's
//! restic is interrupted (SIGINT, then SIGKILL after 10 s) *before* the FIFO is closed, so it
//! never sees the end of its input and never saves a manifest: a manifest in the repository
//! still means that every item of its restore point is there.
//!
//! A repository that does not exist yet is initialised once, after every lane stopped (two
//! concurrent `restic init` would each write a key with its own master key), and the attempt
//! is made again.

use super::export::MANIFEST_ENV;
use crate::plan::export::{ExportItem, MANIFEST_COMPONENT, MANIFEST_FILE, MANIFEST_RESULT, RESULT_PREFIX};
use crate::plan::names::component_word;
use crate::plan::restore::repository::{CLAIM_TAG, VERIFIED_TAG};

use super::labels::{BACKUP, COMPONENT, POLICY, STORE};

/// How many items the export Job backs up at once. Two overlap one item's key derivation and
/// small items with a large one; more would hold more repository indexes in memory for little
/// gain, since one `restic backup` already reads and hashes on every core.
pub const EXPORT_LANES: usize = 2;

/// `value` as one shell word: single-quoted, with any `'` closed, escaped and reopened.
pub fn shell_word(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// The functions every export script starts with.
///
/// - `backup LABEL ARGS...` runs one `restic backup` and prints its result line; it returns 3
///   when restic finds no repository, else 1 with restic's own words on stderr.
/// - `combine STATUS...` prints 0 when every status is 0, 1 when any is neither 0 nor 3, else 3.
/// - `manifest_status` is the manifest's status once its restic ended: 0 after printing its
///   result line, 3 when there was no repository, else 1 with restic's words on stderr.
const PRELUDE: &str = r#"set -u
trap '' PIPE
work=$(mktemp -d)
backup() {
  label=$1; shift
  if summary=$(restic backup --json --quiet "$@" 2>"$work/err-$label"); then
    echo "RESULT_PREFIX $label $summary"; return 0
  fi
  if grep -q 'Is there a repository' "$work/err-$label"; then return 3; fi
  cat "$work/err-$label" >&2; return 1
}
combine() {
  result=0
  for status in "$@"; do
    if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then echo 1; return; fi
    if [ "$status" -eq 3 ]; then result=3; fi
  done
  echo "$result"
}
"#;

/// The export script of restore point `backup` of `policy` in `namespace`: `items` (each from
/// inside its mount), the manifest from `$ARCHIVIST_MANIFEST` (`--stdin`), each tagged with the
/// policy, backup, component, store and claim, with host `<namespace>/<policy>`; the manifest of
/// a restore point whose verification passed is also tagged `archivist.dev/verified=true` (a
/// restore's `select: LatestVerified` chooses among those). Then, when
/// `check_read_data_percent` is above 0, `restic check --read-data-subset=N%`.
pub fn export_script(namespace: &str, policy: &str, backup: &str, items: &[ExportItem], check_read_data_percent: u8, verified: bool) -> String {
    let host = shell_word(&format!("{namespace}/{policy}"));
    let tags = |component: &str, store: &str, claim: &str| {
        [
            format!("{POLICY}={policy}"),
            format!("{BACKUP}={backup}"),
            format!("{COMPONENT}={component}"),
            format!("{STORE}={store}"),
            format!("{CLAIM_TAG}={claim}"),
        ]
        .iter()
        .map(|t| format!("--tag {}", shell_word(t)))
        .collect::<Vec<_>>()
        .join(" ")
    };
    let mut script = PRELUDE.replace("RESULT_PREFIX", RESULT_PREFIX);

    // The lanes: item i in lane i % lanes, each lane one `&&` chain, so it stops at its first
    // failure and returns its status.
    let lanes = EXPORT_LANES.min(items.len()).max(1);
    for lane in 0..lanes {
        let steps: Vec<String> = items
            .iter()
            .enumerate()
            .filter(|(index, _)| index % lanes == lane)
            .map(|(index, item)| {
                format!(
                    "  cd {} && backup {index} --host {host} {} .",
                    shell_word(&item.path),
                    tags(component_word(item.component), &item.store, &item.claim)
                )
            })
            .collect();
        let body = if steps.is_empty() { "  true".to_string() } else { steps.join(" &&\n") };
        script.push_str(&format!("lane{lane}() {{\n{body}\n}}\n"));
    }

    // The manifest's restic is this subshell itself (`exec`), so that the signals reach it.
    let verified_tag = if verified { format!(" --tag {}", shell_word(&format!("{VERIFIED_TAG}=true"))) } else { String::new() };
    script.push_str(&format!(
        "start_manifest() {{\n\
         \x20 (exec restic backup --json --quiet --host {host} {}{verified_tag} --stdin --stdin-filename {MANIFEST_FILE} \
         <\"$work/fifo\" >\"$work/manifest.json\" 2>\"$work/err-manifest\") &\n\
         \x20 manifest=$!\n\
         \x20 exec 3>\"$work/fifo\"\n\
         }}\n",
        tags(MANIFEST_COMPONENT, "", backup),
    ));
    script.push_str(&format!(
        "manifest_status() {{\n\
         \x20 if [ \"$1\" -eq 0 ]; then echo \"{RESULT_PREFIX} {MANIFEST_RESULT} $(cat \"$work/manifest.json\")\"; return 0; fi\n\
         \x20 if grep -q 'Is there a repository' \"$work/err-manifest\"; then return 3; fi\n\
         \x20 cat \"$work/err-manifest\" >&2; return 1\n\
         }}\n"
    ));

    // One attempt: the manifest waits on the FIFO while the lanes run; it gets its input only
    // when they all succeeded, else it is interrupted before the FIFO closes.
    let starts: String = (0..lanes).map(|lane| format!("  lane{lane} >\"$work/out-{lane}\" & pid{lane}=$!\n")).collect();
    let waits: String = (0..lanes).map(|lane| format!("  s{lane}=0; wait \"$pid{lane}\" || s{lane}=$?\n")).collect();
    let statuses: Vec<String> = (0..lanes).map(|lane| format!("\"$s{lane}\"")).collect();
    script.push_str(&format!(
        "attempt() {{\n\
         \x20 rm -f \"$work\"/*; mkfifo \"$work/fifo\"\n\
         \x20 start_manifest\n\
         {starts}\
         {waits}\
         \x20 items=$(combine {statuses})\n\
         \x20 if [ \"$items\" -eq 0 ]; then\n\
         \x20   printf '%s' \"${MANIFEST_ENV}\" >&3 || true\n\
         \x20   exec 3>&-\n\
         \x20   sm=0; wait \"$manifest\" || sm=$?\n\
         \x20   cat \"$work\"/out-*\n\
         \x20   manifest_status \"$sm\" || return $?\n\
         \x20   return 0\n\
         \x20 fi\n\
         \x20 kill -INT \"$manifest\" 2>/dev/null\n\
         \x20 (sleep 10; kill -KILL \"$manifest\" 2>/dev/null) >/dev/null 2>&1 & watchdog=$!\n\
         \x20 wait \"$manifest\"\n\
         \x20 kill \"$watchdog\" 2>/dev/null\n\
         \x20 exec 3>&-\n\
         \x20 return \"$items\"\n\
         }}\n",
        statuses = statuses.join(" "),
    ));

    // The repository is initialised only when an attempt found none, then tried again once.
    script.push_str(
        "status=0; attempt || status=$?\n\
         if [ \"$status\" -eq 3 ]; then\n\
         \x20 restic init >/dev/null || exit 1\n\
         \x20 status=0; attempt || status=$?\n\
         fi\n\
         if [ \"$status\" -ne 0 ]; then\n\
         \x20 if [ \"$status\" -eq 3 ]; then cat \"$work\"/err-* >&2; fi\n\
         \x20 exit 1\n\
         fi\n",
    );
    if check_read_data_percent > 0 {
        script.push_str(&format!("restic check --read-data-subset={check_read_data_percent}% >/dev/null || exit 1\n"));
    }
    script
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Component;

    fn item(index: usize) -> ExportItem {
        ExportItem { component: Component::Content, store: format!("s{index}"), claim: format!("c{index}"), path: format!("/export/{index}") }
    }

    #[test]
    fn shell_words_survive_quotes() {
        let cases = [("plain", "'plain'"), ("it's", r"'it'\''s'"), ("", "''"), ("$(rm -rf /)", "'$(rm -rf /)'")];
        for (value, want) in cases {
            assert_eq!(shell_word(value), want);
        }
    }

    #[test]
    fn items_go_round_robin_into_at_most_two_lanes() {
        // (items, the lane functions and their items)
        let cases: [(usize, &[&[usize]]); 4] = [(0, &[&[]]), (1, &[&[0]]), (2, &[&[0], &[1]]), (5, &[&[0, 2, 4], &[1, 3]])];
        for (count, lanes) in cases {
            let items: Vec<ExportItem> = (0..count).map(item).collect();
            let script = export_script("ns", "mail", "b1", &items, 0, false);
            for (lane, want) in lanes.iter().enumerate() {
                let body = script.split(&format!("lane{lane}() {{\n")).nth(1).and_then(|b| b.split("\n}").next()).expect("lane body");
                let got: Vec<usize> = (0..count).filter(|i| body.contains(&format!("backup {i} "))).collect();
                assert_eq!(got, want.to_vec(), "{count} items, lane {lane}: {body}");
            }
            assert!(!script.contains(&format!("lane{}()", lanes.len())), "{count} items: too many lanes");
        }
    }
}
