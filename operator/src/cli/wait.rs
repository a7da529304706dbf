//! `create … [--wait]`: creating one object and following it through a watch until its run
//! ends.

use super::error::CliError;
use super::output::{write_structured, OutputFormat};
use super::view::progress::Outcome;
use futures::StreamExt;
use kube::api::Api;
use kube::runtime::{watcher, WatchStreamExt};
use kube::Resource;
use serde::de::DeserializeOwned;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How a `create` command ends: its `-o`, `--wait` and `--timeout`.
#[derive(Debug, Clone, Copy)]
pub struct CreateOptions {
    /// How to print the created object (`table`: `<kind> <namespace>/<name> created`).
    pub output: OutputFormat,
    /// Follow the run until it ends.
    pub wait: bool,
    /// Give up following after this long.
    pub timeout: Duration,
}

/// Creates `object` (named, in its namespace) and prints it; with `wait`, follows it (see
/// [`follow`]) and exits 0 when it completes, 1 when it fails. A taken name is exit 2, naming
/// the object.
pub async fn create_then_follow<K, F>(api: Api<K>, object: &K, options: CreateOptions, out: &mut dyn Write, observe: F) -> Result<ExitCode, CliError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug + Send + 'static,
    F: FnMut(&K, f64) -> (Vec<String>, Option<Outcome>),
{
    let kind = K::kind(&());
    let meta = object.meta();
    let object_name = format!("{}/{}", meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default());
    let started = Instant::now();
    let mut created = api.create(&super::fetch::post_params(), object).await.map_err(|e| match e {
        kube::Error::Api(status) if status.code == 409 => CliError::AlreadyExists { kind: kind.to_string(), object: object_name.clone() },
        other => CliError::Runtime(format!("cannot create {kind} {object_name}: {other}")),
    })?;
    super::fetch::without_managed_fields(&mut created);
    match options.output {
        OutputFormat::Table => writeln!(out, "{} {object_name} created", kind.to_lowercase())?,
        format => write_structured(out, format, &created)?,
    }
    if !options.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let name = meta.name.clone().unwrap_or_default();
    Ok(match follow(api, &name, started, options.timeout, out, observe).await? {
        Outcome::Completed => ExitCode::SUCCESS,
        Outcome::Failed => ExitCode::FAILURE,
    })
}

/// Watches `name` and hands each version seen to `observe`, with the seconds since `started`;
/// prints the lines it returns at once, and returns when it reports an outcome. A deleted
/// object, or `timeout` passing first, is an error (exit 1) that says the run goes on.
pub async fn follow<K, F>(api: Api<K>, name: &str, started: Instant, timeout: Duration, out: &mut dyn Write, mut observe: F) -> Result<Outcome, CliError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    F: FnMut(&K, f64) -> (Vec<String>, Option<Outcome>),
{
    let kind = K::kind(&());
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher(api, config).default_backoff().boxed();
    let deadline = tokio::time::Instant::from_std(started + timeout);
    // Whether the current (re)list has returned the object.
    let mut seen = false;
    loop {
        let event = tokio::time::timeout_at(deadline, events.next()).await.map_err(|_| {
            CliError::Runtime(format!(
                "gave up waiting for {kind} {name} after {} s; it goes on (see `describe`)",
                timeout.as_secs()
            ))
        })?;
        match event {
            Some(Ok(watcher::Event::Init)) => seen = false,
            Some(Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object))) => {
                seen = true;
                let (lines, outcome) = observe(&object, started.elapsed().as_secs_f64());
                for line in lines {
                    writeln!(out, "{line}")?;
                }
                out.flush()?;
                if let Some(outcome) = outcome {
                    return Ok(outcome);
                }
            }
            Some(Ok(watcher::Event::Delete(_))) => return Err(CliError::Runtime(format!("{kind} {name} was deleted while waiting"))),
            // A (re)list without it: it was deleted while the watch was down.
            Some(Ok(watcher::Event::InitDone)) if !seen => return Err(CliError::Runtime(format!("{kind} {name} is gone"))),
            Some(Ok(watcher::Event::InitDone)) => {}
            // The watcher retries with backoff; a lasting failure ends at the timeout.
            Some(Err(e)) => tracing::debug!(error = %e, "watch failed; retrying"),
            None => return Err(CliError::Runtime(format!("the watch of {kind} {name} ended"))),
        }
    }
}
