//! Errors of the admin client; Kafka error codes carry their protocol name.

use std::time::Duration;

use kafka_protocol::ResponseError;

/// An error code a broker answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaError {
    /// The API that failed (`CreateTopics`).
    pub api: &'static str,
    /// What it was about (a topic name), when known.
    pub resource: Option<String>,
    /// Kafka error code.
    pub code: i16,
    /// The code's protocol name (`TOPIC_ALREADY_EXISTS`), or `UNKNOWN_CODE_<n>`.
    pub name: String,
    /// The broker's message, when it sent one.
    pub message: Option<String>,
}

impl KafkaError {
    /// An error for `code`, or `None` when `code` is 0.
    pub fn from_code(
        api: &'static str,
        resource: Option<&str>,
        code: i16,
        message: Option<&str>,
    ) -> Option<KafkaError> {
        if code == 0 {
            return None;
        }
        Some(KafkaError {
            api,
            resource: resource.map(str::to_string),
            code,
            name: code_name(code),
            message: message.filter(|m| !m.is_empty()).map(str::to_string),
        })
    }

    /// True when the same request may succeed later (Kafka's retriable errors).
    pub fn is_retriable(&self) -> bool {
        ResponseError::try_from_code(self.code).is_some_and(|e| e.is_retriable())
    }
}

impl std::fmt::Display for KafkaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.api)?;
        if let Some(r) = self.resource.as_deref().filter(|r| !r.is_empty()) {
            write!(f, " {r}")?;
        }
        write!(f, ": {} ({})", self.name, self.code)?;
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        Ok(())
    }
}

/// The protocol name of a Kafka error code: `TopicAlreadyExists` → `TOPIC_ALREADY_EXISTS`.
pub fn code_name(code: i16) -> String {
    let camel = ResponseError::try_from_code(code).map(|e| format!("{e:?}"));
    // Codes the crate does not know come back as `Unknown(<code>)`.
    match camel.filter(|c| c.chars().all(|ch| ch.is_ascii_alphanumeric())) {
        Some(camel) => {
            let mut out = String::with_capacity(camel.len() + 8);
            for (i, c) in camel.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_uppercase());
            }
            out
        }
        None => format!("UNKNOWN_CODE_{code}"),
    }
}

impl std::error::Error for KafkaError {}

/// Everything the admin client can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No bootstrap address answered.
    #[error("cannot connect to any of {addresses}: {reason}")]
    Connect {
        /// The addresses tried.
        addresses: String,
        /// The last failure.
        reason: String,
    },
    /// A request got no answer in time.
    #[error("{api}: no answer within {timeout:?}")]
    Timeout {
        /// The API.
        api: &'static str,
        /// The limit.
        timeout: Duration,
    },
    /// The connection failed mid-request.
    #[error("{api}: connection failed: {source}")]
    Io {
        /// The API.
        api: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// No version both sides speak.
    #[error("{api}: the broker does not serve versions {min}..={max}")]
    UnsupportedVersion {
        /// The API.
        api: &'static str,
        /// Lowest version this client speaks.
        min: i16,
        /// Highest version this client speaks.
        max: i16,
    },
    /// A frame that does not decode, or a request that does not encode.
    #[error("{api}: protocol error: {message}")]
    Protocol {
        /// The API.
        api: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The broker answered with an error code.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
}

impl AdminError {
    /// The Kafka error, when the broker answered with one.
    pub fn kafka(&self) -> Option<&KafkaError> {
        match self {
            AdminError::Kafka(k) => Some(k),
            _ => None,
        }
    }

    /// True when retrying later may help: connection trouble, timeouts, retriable codes.
    pub fn is_transient(&self) -> bool {
        match self {
            AdminError::Connect { .. } | AdminError::Timeout { .. } | AdminError::Io { .. } => true,
            AdminError::Kafka(k) => k.is_retriable(),
            AdminError::UnsupportedVersion { .. } | AdminError::Protocol { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_codes() {
        assert_eq!(code_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(code_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(code_name(37), "INVALID_PARTITIONS");
        assert_eq!(code_name(40), "INVALID_CONFIG");
        assert_eq!(code_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(code_name(9999), "UNKNOWN_CODE_9999");
    }

    #[test]
    fn display_and_retriable() {
        let e = KafkaError::from_code("CreateTopics", Some("orders"), 36, Some("exists")).unwrap();
        assert_eq!(
            e.to_string(),
            "CreateTopics orders: TOPIC_ALREADY_EXISTS (36): exists"
        );
        assert!(!e.is_retriable());
        assert!(KafkaError::from_code("x", None, 0, None).is_none());
        let leader = KafkaError::from_code("Metadata", None, 5, Some("")).unwrap();
        assert_eq!(leader.to_string(), "Metadata: LEADER_NOT_AVAILABLE (5)");
        assert!(leader.is_retriable());
        let cluster = KafkaError::from_code("IncrementalAlterConfigs", Some(""), 42, None).unwrap();
        assert_eq!(
            cluster.to_string(),
            "IncrementalAlterConfigs: INVALID_REQUEST (42)"
        );
        assert!(AdminError::Kafka(leader).is_transient());
    }
}
