//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) on the server side, and PLAIN checked
//! against the same stored credentials. The stored form is Kafka's: salt, StoredKey, ServerKey
//! and the iteration count; the password itself is never kept.

use serde::{Deserialize, Serialize};

/// A SCRAM mechanism, with Kafka's wire code (DescribeUserScramCredentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    /// `SCRAM-SHA-256`, code 1.
    Sha256,
    /// `SCRAM-SHA-512`, code 2.
    Sha512,
}

/// One user's credential for one mechanism.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    /// The salt.
    pub salt: Vec<u8>,
    /// H(HMAC(SaltedPassword, "Client Key")).
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: i32,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys are secrets: never in logs.
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// One SASL authentication in progress on a connection (SCRAM's two round trips, or PLAIN's
/// one).
#[derive(Debug)]
pub struct ServerExchange {
    /// The mechanism's Kafka name.
    pub mechanism: String,
}
