//! Security: who a connection is (its principal, from TLS or SASL) and what it may do (ACLs).
//!
//! - `tls`: rustls server and client configurations from PEM files, reloaded when they change.
//! - `scram`: SCRAM-SHA-256/512 (RFC 5802, RFC 7677) and PLAIN against stored SCRAM credentials.
//! - `acl`: Kafka's ACL model (resource, pattern, operation, permission, principal, host) and the
//!   authorizer's decision.
//!
//! A connection's [`Session`] starts as its listener makes it: `User:ANONYMOUS` on PLAINTEXT,
//! the client certificate's subject on SSL with client authentication, unauthenticated on the
//! SASL listeners until SaslAuthenticate succeeds.

pub mod acl;
pub mod scram;

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A Kafka principal, `type:name` (e.g. `User:alice`, `User:CN=broker-0`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Principal {
    /// The principal type, `User` for every principal this broker makes.
    pub principal_type: String,
    /// The name.
    pub name: String,
}

impl Principal {
    /// The principal of an unauthenticated connection (Kafka's `User:ANONYMOUS`).
    pub fn anonymous() -> Principal {
        Principal::user("ANONYMOUS")
    }

    /// `User:<name>`.
    pub fn user(name: impl Into<String>) -> Principal {
        Principal {
            principal_type: "User".to_string(),
            name: name.into(),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

impl FromStr for Principal {
    type Err = String;

    /// Parses `type:name`; the name may contain `:`, the type may not be empty.
    fn from_str(s: &str) -> Result<Principal, String> {
        match s.split_once(':') {
            Some((t, n)) if !t.is_empty() => Ok(Principal {
                principal_type: t.to_string(),
                name: n.to_string(),
            }),
            _ => Err(format!(
                "principal {s:?}: expected TYPE:NAME, e.g. User:alice"
            )),
        }
    }
}

/// Kafka's security protocols (`listener.security.protocol.map` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    /// No TLS, no authentication.
    Plaintext,
    /// TLS, optionally with client certificates.
    Ssl,
    /// SASL over plain TCP.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Whether connections are TLS.
    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether clients authenticate with SASL before any other request.
    pub fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

impl FromStr for SecurityProtocol {
    type Err = String;

    fn from_str(s: &str) -> Result<SecurityProtocol, String> {
        match s.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(SecurityProtocol::Plaintext),
            "SSL" => Ok(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Ok(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Ok(SecurityProtocol::SaslSsl),
            _ => Err(format!(
                "security protocol {s:?}: expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
            )),
        }
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a connection came in, as its listener accepted it.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The listener's name (`PLAINTEXT` for the single `--listen` listener).
    pub listener: String,
    /// The listener's security protocol.
    pub protocol: SecurityProtocol,
    /// The client's address.
    pub peer: SocketAddr,
    /// On SSL with client authentication: the principal of the verified client certificate.
    pub tls_principal: Option<Principal>,
    /// SASL mechanisms enabled on this listener (Kafka names, e.g. `SCRAM-SHA-512`).
    pub sasl_mechanisms: Vec<String>,
}

impl ConnectionInfo {
    /// A PLAINTEXT connection on the default listener (tests, single listener).
    pub fn plaintext(peer: SocketAddr) -> ConnectionInfo {
        ConnectionInfo {
            listener: "PLAINTEXT".to_string(),
            protocol: SecurityProtocol::Plaintext,
            peer,
            tls_principal: None,
            sasl_mechanisms: Vec::new(),
        }
    }
}

/// Where a SASL connection is in its authentication.
#[derive(Debug, Default)]
pub enum SaslState {
    /// Waiting for SaslHandshake.
    #[default]
    Handshake,
    /// The mechanism was chosen; waiting for (more) SaslAuthenticate tokens.
    Authenticating(Box<scram::ServerExchange>),
    /// Authenticated (or not a SASL listener).
    Done,
}

/// One connection's security state: its listener and, once known, its principal.
#[derive(Debug)]
pub struct Session {
    /// Where the connection came in.
    pub info: ConnectionInfo,
    /// Who the connection is: `None` on a SASL listener until authentication succeeds.
    pub principal: Option<Principal>,
    /// SASL progress.
    pub sasl: SaslState,
}

impl Session {
    /// A new connection's session: a SASL listener starts unauthenticated; SSL with a client
    /// certificate is that certificate's principal; everything else is `User:ANONYMOUS`.
    pub fn new(info: ConnectionInfo) -> Session {
        let (principal, sasl) = if info.protocol.sasl() {
            (None, SaslState::Handshake)
        } else {
            (
                Some(
                    info.tls_principal
                        .clone()
                        .unwrap_or_else(Principal::anonymous),
                ),
                SaslState::Done,
            )
        };
        Session {
            info,
            principal,
            sasl,
        }
    }

    /// A PLAINTEXT session for `peer` (tests and in-process callers).
    pub fn plaintext(peer: SocketAddr) -> Session {
        Session::new(ConnectionInfo::plaintext(peer))
    }

    /// Whether requests other than ApiVersions and the SASL ones may be served.
    pub fn authenticated(&self) -> bool {
        self.principal.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_parse_and_print() {
        let p: Principal = "User:CN=broker-0,O=samsa".parse().unwrap();
        assert_eq!(p.principal_type, "User");
        assert_eq!(p.name, "CN=broker-0,O=samsa");
        assert_eq!(p.to_string(), "User:CN=broker-0,O=samsa");
        assert!("alice".parse::<Principal>().is_err());
        assert!(":alice".parse::<Principal>().is_err());
    }

    #[test]
    fn sessions_start_per_listener() {
        let peer = "127.0.0.1:1".parse().unwrap();
        assert_eq!(
            Session::plaintext(peer).principal,
            Some(Principal::anonymous())
        );
        let mut info = ConnectionInfo::plaintext(peer);
        info.protocol = SecurityProtocol::SaslSsl;
        assert!(!Session::new(info.clone()).authenticated());
        info.protocol = SecurityProtocol::Ssl;
        info.tls_principal = Some(Principal::user("CN=alice"));
        assert_eq!(
            Session::new(info).principal,
            Some(Principal::user("CN=alice"))
        );
    }
}
