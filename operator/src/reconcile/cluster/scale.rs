//! Step "scale guard": brokers a smaller `spec.brokers` removes must hold no replica first.

use super::super::Context;
use crate::crd::KafkaCluster;
use crate::plan::scale::{blocked_message, replicas_on_removed};

/// Why removing brokers `spec.brokers..old` must wait: some hold partition replicas (or the
/// replicas cannot be read). `None`: the scale-down may go ahead.
pub(super) async fn scale_down_blocked(
    ctx: &Context,
    bootstrap: &str,
    old: i32,
    kc: &KafkaCluster,
) -> Option<String> {
    let to = kc.spec.brokers;
    match ctx.admin(bootstrap).metadata(None).await {
        Ok(meta) => {
            let blocking = replicas_on_removed(
                meta.topics
                    .iter()
                    .map(|(name, t)| (name.as_str(), t.partitions.as_slice())),
                to,
            );
            (!blocking.is_empty()).then(|| blocked_message(old, to, &blocking))
        }
        Err(e) => Some(format!(
            "spec.brokers: cannot go from {old} to {to} brokers yet: the brokers' partition replicas cannot be read ({e}); the brokers stay at {old} until they can"
        )),
    }
}
