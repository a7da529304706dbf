//! `--wait`: following one object through a watch until its run ends.

use super::error::CliError;
use super::view::progress::Outcome;
use futures::StreamExt;
use kube::api::Api;
use kube::runtime::{watcher, WatchStreamExt};
use kube::Resource;
use serde::de::DeserializeOwned;
use std::io::Write;
use std::time::{Duration, Instant};

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
