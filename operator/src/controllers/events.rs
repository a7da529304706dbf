//! Publishing Events on Archivist's objects. Event notes never contain Secret data.

use super::Context;
use kube::runtime::events::{Event, EventType};
use kube::Resource;

/// Publishes an Event about `object`; a failure to publish is logged, never fatal.
pub async fn publish<K: Resource<DynamicType = ()>>(ctx: &Context, object: &K, type_: EventType, reason: &str, note: String) {
    let event = Event { type_, reason: reason.into(), note: Some(note), action: reason.into(), secondary: None };
    if let Err(e) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(reason, error = %e, "failed to publish Event");
    }
}
