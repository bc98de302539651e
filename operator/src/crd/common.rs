//! Types shared by both resources: status conditions and validation errors.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A status condition, shaped like `metav1.Condition`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type: `Ready`, `Progressing`, `Degraded`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A CamelCase reason a program can match on.
    pub reason: String,
    /// A sentence for humans.
    #[serde(default)]
    pub message: String,
    /// When `status` last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// The `metadata.generation` this condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl Condition {
    /// A condition without a transition time (set by [`merge_conditions`]).
    pub fn new(type_: &str, status: bool, reason: &str, message: impl Into<String>) -> Self {
        Condition {
            type_: type_.to_string(),
            status: if status { "True" } else { "False" }.to_string(),
            reason: reason.to_string(),
            message: message.into(),
            last_transition_time: None,
            observed_generation: None,
        }
    }

    /// True when `status` is `True`.
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }
}

/// Merges freshly computed conditions into the previous ones: a condition keeps its
/// `lastTransitionTime` while its status does not change; otherwise it takes `now`. The result
/// holds exactly the types of `fresh`, in their order.
pub fn merge_conditions(
    previous: &[Condition],
    fresh: Vec<Condition>,
    now: &str,
    generation: Option<i64>,
) -> Vec<Condition> {
    fresh
        .into_iter()
        .map(|mut c| {
            let kept = previous
                .iter()
                .find(|p| p.type_ == c.type_ && p.status == c.status)
                .and_then(|p| p.last_transition_time.clone());
            c.last_transition_time = Some(kept.unwrap_or_else(|| now.to_string()));
            c.observed_generation = generation;
            c
        })
        .collect()
}

/// A spec that breaks a rule; `field` is the JSON path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// JSON path, e.g. `spec.replicationFactor`.
    pub field: String,
    /// What is wrong, naming the rule.
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(field: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// Joins errors into one message for a condition.
pub fn describe_errors(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Schema of a string-to-string config map: bounded so CEL cost estimation stays within the
/// apiserver's budget.
pub(crate) fn config_map_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "maxProperties": 256,
        "additionalProperties": { "type": "string", "maxLength": 4096 }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_transition_time_while_status_holds() {
        let mut old = Condition::new("Ready", true, "Ok", "fine");
        old.last_transition_time = Some("t0".into());
        let mut old2 = Condition::new("Degraded", false, "Ok", "");
        old2.last_transition_time = Some("t0".into());
        let fresh = vec![
            Condition::new("Ready", true, "Ok", "still fine"),
            Condition::new("Degraded", true, "BrokerDown", "broker 1 down"),
        ];
        let merged = merge_conditions(&[old, old2], fresh, "t1", Some(4));
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].last_transition_time.as_deref(), Some("t0"));
        assert_eq!(merged[0].message, "still fine");
        assert_eq!(merged[1].last_transition_time.as_deref(), Some("t1"));
        assert_eq!(merged[1].observed_generation, Some(4));
    }
}
