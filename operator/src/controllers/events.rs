//! Publishing Events on Archivist's objects. Event notes never contain Secret data.

use super::Context;
use k8s_openapi::api::core::v1::{Event as CoreEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, PostParams};
use kube::runtime::events::{Event, EventType};
use kube::Resource;
use std::hash::{Hash, Hasher};

/// Publishes an Event about `object`; a failure to publish is logged, never fatal.
///
/// Repeats of one Event (same reason and note) fold into one Event object whose series counts
/// them; Events of one reason with different notes stay separate objects, so each note is seen.
/// An Event about a cluster-scoped object (a ClusterRetentionPolicy) goes through the core API
/// instead ([`publish_cluster_scoped`]).
pub async fn publish<K: Resource<DynamicType = ()>>(ctx: &Context, object: &K, type_: EventType, reason: &str, note: String) {
    if object.meta().namespace.is_none() {
        publish_cluster_scoped(ctx, object.object_ref(&()), type_, reason, note).await;
        return;
    }
    let action = event_action(reason, &note);
    let event = Event { type_, reason: reason.into(), note: Some(note), action, secondary: None };
    if let Err(e) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(reason, error = %e, "failed to publish Event");
    }
}

/// Publishes an Event about the cluster-scoped object `involved` through the core API, in
/// namespace `default`: events.k8s.io refuses an Event about a cluster-scoped object outside
/// `kube-system`, where the operator may not write. Not folded into series.
async fn publish_cluster_scoped(ctx: &Context, involved: ObjectReference, type_: EventType, reason: &str, note: String) {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let name = involved.name.clone().unwrap_or_default();
    let event = CoreEvent {
        metadata: ObjectMeta { generate_name: Some(format!("{name}.")), namespace: Some(CLUSTER_EVENTS_NAMESPACE.into()), ..ObjectMeta::default() },
        involved_object: involved,
        reason: Some(reason.into()),
        message: Some(note),
        type_: Some(match type_ {
            EventType::Normal => "Normal".into(),
            EventType::Warning => "Warning".into(),
        }),
        count: Some(1),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        source: Some(EventSource { component: Some("archivist".into()), host: None }),
        reporting_component: Some("archivist".into()),
        ..CoreEvent::default()
    };
    if let Err(e) = Api::<CoreEvent>::namespaced(ctx.client.clone(), CLUSTER_EVENTS_NAMESPACE).create(&PostParams::default(), &event).await {
        tracing::warn!(reason, error = %e, "failed to publish Event");
    }
}

/// Where Events about cluster-scoped objects go.
pub const CLUSTER_EVENTS_NAMESPACE: &str = "default";

/// The Event's `action`: its reason plus a short digest of its note.
///
/// kube's recorder folds Events that share type, reason, action and object into one series and
/// keeps the *first* note, so with the reason alone as the action a second "Pruned" Event about
/// another backup would only bump the count of the first and never name the second backup.
/// The digest is computed in this process only (the recorder's cache is per process too).
fn event_action(reason: &str, note: &str) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    note.hash(&mut hasher);
    format!("{reason}-{:08x}", hasher.finish() as u32)
}

#[cfg(test)]
mod tests {
    use super::event_action;

    #[test]
    fn one_action_per_reason_and_note() {
        let cases = [
            // (first, second, same action)
            (("Pruned", "retention pruned b1"), ("Pruned", "retention pruned b1"), true),
            (("Pruned", "retention pruned b1"), ("Pruned", "retention pruned b2"), false),
            (("Pruned", "x"), ("Forgotten", "x"), false),
        ];
        for ((reason_a, note_a), (reason_b, note_b), same) in cases {
            let (a, b) = (event_action(reason_a, note_a), event_action(reason_b, note_b));
            assert_eq!(a == b, same, "{a} vs {b}");
            assert!(a.starts_with(reason_a) && a.len() <= 128, "{a}: the API caps action at 128 bytes");
        }
    }
}
