//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) on the server side, and PLAIN checked
//! against the same stored credentials. The stored form is Kafka's: salt, StoredKey, ServerKey
//! and the iteration count; the password itself is never kept.
//!
//! Pure logic: no sockets, no storage. The caller hands each SaslAuthenticate token to
//! [`ServerExchange::step`] with a credential lookup and sends back what it returns. Nothing here
//! may panic on any bytes a client sends, and no answer may tell an unknown user from a wrong
//! password: an unknown SCRAM user gets a well-formed server-first message (a salt derived from a
//! per-process secret and the name, so it is stable across attempts) and fails at the proof with
//! the same error as a wrong password.

use std::fmt;
use std::sync::OnceLock;

use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// The SASL mechanisms this broker can serve (a listener enables a subset).
pub const SUPPORTED_MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// A SCRAM mechanism, with Kafka's wire code (DescribeUserScramCredentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    /// `SCRAM-SHA-256`, code 1.
    Sha256,
    /// `SCRAM-SHA-512`, code 2.
    Sha512,
}

impl ScramMechanism {
    /// Both mechanisms, in wire-code order.
    pub const VALUES: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name (`SCRAM-SHA-256`, `SCRAM-SHA-512`).
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism with this SASL name (exact, as Kafka matches it).
    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        Self::VALUES.into_iter().find(|m| m.name() == name)
    }

    /// Kafka's wire code (`ScramMechanism`): 1 and 2; 0 is UNKNOWN.
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// The mechanism with this wire code; `None` for 0 (UNKNOWN) and every other code.
    pub fn from_code(code: i8) -> Option<ScramMechanism> {
        Self::VALUES.into_iter().find(|m| m.code() == code)
    }

    /// The fewest PBKDF2 iterations Kafka accepts (4096, RFC 7677's minimum).
    pub fn min_iterations(self) -> i32 {
        4096
    }

    /// The most PBKDF2 iterations Kafka accepts in AlterUserScramCredentials (16384).
    pub fn max_iterations(self) -> i32 {
        16384
    }

    /// Checks an iteration count against [`Self::min_iterations`] and [`Self::max_iterations`],
    /// with a message naming the bound.
    pub fn check_iterations(self, iterations: i32) -> Result<(), String> {
        if iterations < self.min_iterations() {
            Err(format!(
                "Too few iterations: {iterations} is less than the minimum {} for {}",
                self.min_iterations(),
                self.name()
            ))
        } else if iterations > self.max_iterations() {
            Err(format!(
                "Too many iterations: {iterations} is more than the maximum {} for {}",
                self.max_iterations(),
                self.name()
            ))
        } else {
            Ok(())
        }
    }

    /// The hash's output length in bytes (32 or 64): the length of StoredKey, ServerKey,
    /// SaltedPassword and the client proof.
    pub fn hash_len(self) -> usize {
        match self {
            ScramMechanism::Sha256 => 32,
            ScramMechanism::Sha512 => 64,
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// HMAC(key, parts concatenated).
    fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            // HMAC takes keys of every length, so this never fails; were it to, the empty
            // result would fail every comparison closed.
            match <M as hmac::digest::KeyInit>::new_from_slice(key) {
                Ok(mut mac) => {
                    for part in parts {
                        mac.update(part);
                    }
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        }
        match self {
            ScramMechanism::Sha256 => run::<Hmac<Sha256>>(key, parts),
            ScramMechanism::Sha512 => run::<Hmac<Sha512>>(key, parts),
        }
    }

    /// Hi(password, salt, i): PBKDF2-HMAC with this hash; counts below 1 count as 1.
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: i32) -> Vec<u8> {
        let rounds = u32::try_from(iterations).unwrap_or(0).max(1);
        let mut out = vec![0u8; self.hash_len()];
        match self {
            ScramMechanism::Sha256 => {
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, rounds, &mut out)
            }
            ScramMechanism::Sha512 => {
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, rounds, &mut out)
            }
        }
        out
    }
}

impl fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
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

impl ScramCredential {
    /// The credential for a SaltedPassword computed by the client, as AlterUserScramCredentials
    /// carries it (salt and SaltedPassword; the password never reaches the broker). Validate
    /// `iterations` with [`ScramMechanism::check_iterations`] first.
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salted_password: &[u8],
        salt: Vec<u8>,
        iterations: i32,
    ) -> ScramCredential {
        let client_key = mechanism.hmac(salted_password, &[b"Client Key"]);
        ScramCredential {
            salt,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, &[b"Server Key"]),
            iterations,
        }
    }

    /// The credential for a password (PBKDF2-HMAC over its UTF-8 bytes, as Kafka's
    /// ScramFormatter does: no SASLprep). Costs `iterations` HMAC rounds.
    pub fn new(
        mechanism: ScramMechanism,
        password: &str,
        salt: Vec<u8>,
        iterations: i32,
    ) -> ScramCredential {
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
        ScramCredential::from_salted_password(mechanism, &salted, salt, iterations)
    }

    /// Whether `password` is this credential's password (SASL/PLAIN): derives the StoredKey
    /// and compares it in constant time. Costs `iterations` HMAC rounds.
    pub fn check_password(&self, mechanism: ScramMechanism, password: &str) -> bool {
        let candidate =
            ScramCredential::new(mechanism, password, self.salt.clone(), self.iterations);
        bool::from(candidate.stored_key.ct_eq(&self.stored_key))
    }
}

/// 32 random bytes from the operating system's generator, for a new credential's salt.
pub fn random_salt() -> std::io::Result<Vec<u8>> {
    let mut salt = vec![0u8; 32];
    getrandom::fill(&mut salt)?;
    Ok(salt)
}

/// Kafka's error classes for SASL (the error code of SaslHandshake / SaslAuthenticate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthErrorKind {
    /// UNSUPPORTED_SASL_MECHANISM (33).
    UnsupportedMechanism,
    /// ILLEGAL_SASL_STATE (34).
    IllegalSaslState,
    /// SASL_AUTHENTICATION_FAILED (58).
    AuthenticationFailed,
}

impl AuthErrorKind {
    /// Kafka's error code.
    pub fn error_code(self) -> i16 {
        match self {
            AuthErrorKind::UnsupportedMechanism => 33,
            AuthErrorKind::IllegalSaslState => 34,
            AuthErrorKind::AuthenticationFailed => 58,
        }
    }
}

/// Why a SASL exchange failed; the message is what Kafka clients show the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The mechanism is not enabled on this listener, or not one this broker implements.
    #[error("Unsupported SASL mechanism {0}")]
    UnsupportedMechanism(String),
    /// A token arrived when the exchange expected none.
    #[error("{0}")]
    IllegalSaslState(String),
    /// Bad credentials, or a malformed token (the message says what was wrong).
    #[error("{0}")]
    AuthenticationFailed(String),
}

impl AuthError {
    /// The error's class.
    pub fn kind(&self) -> AuthErrorKind {
        match self {
            AuthError::UnsupportedMechanism(_) => AuthErrorKind::UnsupportedMechanism,
            AuthError::IllegalSaslState(_) => AuthErrorKind::IllegalSaslState,
            AuthError::AuthenticationFailed(_) => AuthErrorKind::AuthenticationFailed,
        }
    }

    /// Kafka's error code for [`Self::kind`].
    pub fn error_code(&self) -> i16 {
        self.kind().error_code()
    }
}

/// Kafka's message for a failed SCRAM proof (also an unknown user, so the two look the same).
fn invalid_scram_credentials(mechanism: ScramMechanism) -> AuthError {
    AuthError::AuthenticationFailed(format!(
        "Authentication failed during authentication due to invalid credentials with SASL \
         mechanism {}",
        mechanism.name()
    ))
}

const PLAIN_INVALID: &str = "Authentication failed: Invalid username or password";
const AUTHZID_MISMATCH: &str =
    "Authentication failed: Client requested an authorization id that is different from username";

/// What the server answers a token with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge (SCRAM's server-first-message) and wait for the next token.
    Continue(Vec<u8>),
    /// Authenticated as `user`: send `reply` (SCRAM's server-final-message; empty for PLAIN).
    Done {
        /// The authenticated user name (the principal is `User:<user>`).
        user: String,
        /// The last message to the client.
        reply: Vec<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mechanism {
    Plain,
    Scram(ScramMechanism),
}

/// SCRAM's state between the server-first message and the client's proof.
struct ScramPending {
    user: String,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    credential: ScramCredential,
    /// False for an unknown user (or an unusable credential): the proof fails whatever it is.
    known: bool,
}

enum State {
    Initial,
    ScramFinal(Box<ScramPending>),
    Complete,
    Failed,
}

/// One SASL authentication in progress on a connection (SCRAM's two round trips, or PLAIN's
/// one).
pub struct ServerExchange {
    /// The mechanism's Kafka name.
    pub mechanism: String,
    kind: Mechanism,
    state: State,
}

impl fmt::Debug for ServerExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Nonces and keys stay out of logs.
        let stage = match self.state {
            State::Initial => "initial",
            State::ScramFinal(_) => "awaiting client-final",
            State::Complete => "complete",
            State::Failed => "failed",
        };
        f.debug_struct("ServerExchange")
            .field("mechanism", &self.mechanism)
            .field("stage", &stage)
            .finish()
    }
}

impl ServerExchange {
    /// Starts an exchange for `mechanism` (SaslHandshake): it must be in `enabled` (the
    /// listener's mechanisms) and one of [`SUPPORTED_MECHANISMS`]; names are exact, as in Kafka.
    pub fn start(mechanism: &str, enabled: &[String]) -> Result<ServerExchange, AuthError> {
        let kind = if mechanism == "PLAIN" {
            Some(Mechanism::Plain)
        } else {
            ScramMechanism::from_name(mechanism).map(Mechanism::Scram)
        };
        match kind {
            Some(kind) if enabled.iter().any(|e| e == mechanism) => Ok(ServerExchange {
                mechanism: mechanism.to_string(),
                kind,
                state: State::Initial,
            }),
            _ => Err(AuthError::UnsupportedMechanism(mechanism.to_string())),
        }
    }

    /// Handles the client's next token (SaslAuthenticate's auth_bytes). `lookup` finds a
    /// user's stored credential for a mechanism. After an error the exchange is over: every
    /// further token fails with ILLEGAL_SASL_STATE.
    pub fn step(
        &mut self,
        token: &[u8],
        lookup: &dyn Fn(&str, ScramMechanism) -> Option<ScramCredential>,
    ) -> Result<Step, AuthError> {
        self.step_with_nonce(token, lookup, &random_nonce)
    }

    fn step_with_nonce(
        &mut self,
        token: &[u8],
        lookup: &dyn Fn(&str, ScramMechanism) -> Option<ScramCredential>,
        server_nonce: &dyn Fn() -> Result<String, AuthError>,
    ) -> Result<Step, AuthError> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        let (result, next) = match (self.kind, state) {
            (_, State::Complete) => (
                Err(AuthError::IllegalSaslState(format!(
                    "Unexpected SASL token: {} authentication is already complete",
                    self.mechanism
                ))),
                State::Complete,
            ),
            (_, State::Failed) => (
                Err(AuthError::IllegalSaslState(format!(
                    "Unexpected SASL token: {} authentication has already failed",
                    self.mechanism
                ))),
                State::Failed,
            ),
            (Mechanism::Plain, State::Initial) => match plain(token, lookup) {
                Ok(user) => (
                    Ok(Step::Done {
                        user,
                        reply: Vec::new(),
                    }),
                    State::Complete,
                ),
                Err(e) => (Err(e), State::Failed),
            },
            (Mechanism::Scram(mech), State::Initial) => {
                match client_first(mech, token, lookup, server_nonce) {
                    Ok(pending) => (
                        Ok(Step::Continue(pending.server_first.clone().into_bytes())),
                        State::ScramFinal(Box::new(pending)),
                    ),
                    Err(e) => (Err(e), State::Failed),
                }
            }
            (Mechanism::Scram(mech), State::ScramFinal(pending)) => {
                match client_final(mech, &pending, token) {
                    Ok(reply) => (
                        Ok(Step::Done {
                            user: pending.user,
                            reply,
                        }),
                        State::Complete,
                    ),
                    Err(e) => (Err(e), State::Failed),
                }
            }
            // PLAIN never enters the SCRAM state; treat it as a failed exchange.
            (Mechanism::Plain, State::ScramFinal(_)) => (
                Err(AuthError::IllegalSaslState(
                    "Unexpected SASL token: PLAIN takes a single token".to_string(),
                )),
                State::Failed,
            ),
        };
        self.state = next;
        result
    }
}

/// PLAIN: `authzid NUL authcid NUL passwd`, checked against the user's SCRAM-SHA-512
/// credential, else its SCRAM-SHA-256 one. Messages follow Kafka's PlainSaslServer.
fn plain(
    token: &[u8],
    lookup: &dyn Fn(&str, ScramMechanism) -> Option<ScramCredential>,
) -> Result<String, AuthError> {
    let failed = |m: &str| AuthError::AuthenticationFailed(m.to_string());
    let text =
        std::str::from_utf8(token).map_err(|_| failed("Invalid SASL/PLAIN response: not UTF-8"))?;
    let parts: Vec<&str> = text.split('\0').collect();
    let [authzid, user, password] = parts.as_slice() else {
        return Err(AuthError::AuthenticationFailed(format!(
            "Invalid SASL/PLAIN response: expected 3 tokens, got {}",
            parts.len()
        )));
    };
    if user.is_empty() {
        return Err(failed("Authentication failed: username not specified"));
    }
    if password.is_empty() {
        return Err(failed("Authentication failed: password not specified"));
    }
    if !authzid.is_empty() && authzid != user {
        return Err(failed(AUTHZID_MISMATCH));
    }
    let stored = lookup(user, ScramMechanism::Sha512)
        .map(|c| (ScramMechanism::Sha512, c))
        .or_else(|| lookup(user, ScramMechanism::Sha256).map(|c| (ScramMechanism::Sha256, c)));
    let ok = match stored {
        Some((mech, credential)) => credential.check_password(mech, password),
        None => {
            // Spend the same work on an unknown user, so timing does not reveal existence.
            if let Ok(fake) = fake_credential(ScramMechanism::Sha512, user) {
                std::hint::black_box(fake.check_password(ScramMechanism::Sha512, password));
            }
            false
        }
    };
    if ok {
        Ok((*user).to_string())
    } else {
        Err(failed(PLAIN_INVALID))
    }
}

/// The client-first message, parsed.
struct ClientFirst {
    gs2_header: String,
    authzid: Option<String>,
    user: String,
    token_auth: bool,
    nonce: String,
    bare: String,
}

fn client_first(
    mech: ScramMechanism,
    token: &[u8],
    lookup: &dyn Fn(&str, ScramMechanism) -> Option<ScramCredential>,
    server_nonce: &dyn Fn() -> Result<String, AuthError>,
) -> Result<ScramPending, AuthError> {
    let first = parse_client_first(token).map_err(|m| {
        AuthError::AuthenticationFailed(format!("Invalid SCRAM client first message: {m}"))
    })?;
    if first.authzid.as_ref().is_some_and(|a| *a != first.user) {
        return Err(AuthError::AuthenticationFailed(
            AUTHZID_MISMATCH.to_string(),
        ));
    }
    if first.token_auth {
        return Err(AuthError::AuthenticationFailed(
            "Authentication failed: delegation tokens (tokenauth=true) are not supported"
                .to_string(),
        ));
    }
    let stored = lookup(&first.user, mech).filter(|c| c.iterations >= mech.min_iterations());
    let (credential, known) = match stored {
        Some(c) => (c, true),
        None => (fake_credential(mech, &first.user)?, false),
    };
    let nonce = format!("{}{}", first.nonce, server_nonce()?);
    let server_first = format!(
        "r={nonce},s={},i={}",
        BASE64.encode(&credential.salt),
        credential.iterations
    );
    Ok(ScramPending {
        user: first.user,
        gs2_header: first.gs2_header,
        client_first_bare: first.bare,
        server_first,
        nonce,
        credential,
        known,
    })
}

fn client_final(
    mech: ScramMechanism,
    pending: &ScramPending,
    token: &[u8],
) -> Result<Vec<u8>, AuthError> {
    let malformed = |m: String| {
        AuthError::AuthenticationFailed(format!("Invalid SCRAM client final message: {m}"))
    };
    let text = std::str::from_utf8(token).map_err(|_| malformed("not UTF-8".to_string()))?;
    let (without_proof, proof_b64) = text
        .rsplit_once(",p=")
        .ok_or_else(|| malformed("no proof (p=) at the end".to_string()))?;
    let proof = BASE64
        .decode(proof_b64)
        .map_err(|_| malformed("the proof (p=) is not base64".to_string()))?;
    let mut attrs = without_proof.split(',');
    let binding = attrs
        .next()
        .and_then(|a| a.strip_prefix("c="))
        .ok_or_else(|| malformed("expected the channel binding (c=) first".to_string()))?;
    let binding = BASE64
        .decode(binding)
        .map_err(|_| malformed("the channel binding (c=) is not base64".to_string()))?;
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or_else(|| {
            malformed("expected the nonce (r=) after the channel binding".to_string())
        })?;
    for ext in attrs {
        check_extension(ext).map_err(malformed)?;
    }
    if binding != pending.gs2_header.as_bytes() {
        return Err(malformed(
            "the channel binding (c=) does not match the client first message's GS2 header"
                .to_string(),
        ));
    }
    // Kafka checks that the final nonce ends with the one it sent (librdkafka before 2.1
    // repeats the client nonce in front of it), and so does this.
    if !nonce.ends_with(&pending.nonce) {
        return Err(AuthError::AuthenticationFailed(
            "Invalid client nonce in the final client message.".to_string(),
        ));
    }
    if proof.len() != mech.hash_len() {
        return Err(malformed(format!(
            "the proof is {} bytes, {} takes {}",
            proof.len(),
            mech.name(),
            mech.hash_len()
        )));
    }
    let auth_message = format!(
        "{},{},{}",
        pending.client_first_bare, pending.server_first, without_proof
    );
    let credential = &pending.credential;
    let client_signature = mech.hmac(&credential.stored_key, &[auth_message.as_bytes()]);
    let client_key: Vec<u8> = proof
        .iter()
        .zip(&client_signature)
        .map(|(p, s)| p ^ s)
        .collect();
    let matches = bool::from(mech.hash(&client_key).ct_eq(&credential.stored_key));
    if !(matches && pending.known) {
        return Err(invalid_scram_credentials(mech));
    }
    let server_signature = mech.hmac(&credential.server_key, &[auth_message.as_bytes()]);
    Ok(format!("v={}", BASE64.encode(server_signature)).into_bytes())
}

/// Parses `gs2-header client-first-message-bare` (RFC 5802 section 7).
fn parse_client_first(token: &[u8]) -> Result<ClientFirst, String> {
    let text = std::str::from_utf8(token).map_err(|_| "not UTF-8".to_string())?;
    let (flag, rest) = text
        .split_once(',')
        .ok_or_else(|| "no GS2 header (expected n,,)".to_string())?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => {
            return Err("channel binding (p=) is not supported; use n,,".to_string());
        }
        _ => return Err("the GS2 channel binding flag must be n or y".to_string()),
    }
    let (authzid, bare) = rest
        .split_once(',')
        .ok_or_else(|| "the GS2 header ends without its second comma".to_string())?;
    let authzid = match authzid {
        "" => None,
        a => match a.strip_prefix("a=") {
            Some(name) => Some(decode_saslname(name).map_err(|m| format!("authzid: {m}"))?),
            None => return Err("the GS2 authzid must be a=<name> or empty".to_string()),
        },
    };
    let gs2_header = text[..text.len() - bare.len()].to_string();
    let mut attrs = bare.split(',');
    let user = match attrs.next() {
        Some(a) if a.starts_with("m=") => {
            return Err("mandatory extensions (m=) are not supported".to_string());
        }
        Some(a) => a
            .strip_prefix("n=")
            .ok_or_else(|| "expected the user name (n=) first".to_string())?,
        None => return Err("expected the user name (n=) first".to_string()),
    };
    let user = decode_saslname(user).map_err(|m| format!("user name: {m}"))?;
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or_else(|| "expected the nonce (r=) after the user name".to_string())?;
    if nonce.is_empty()
        || !nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
    {
        return Err("the nonce (r=) must be printable ASCII characters other than ','".to_string());
    }
    let mut token_auth = false;
    for ext in attrs {
        check_extension(ext)?;
        if let Some(("tokenauth", value)) = ext.split_once('=') {
            token_auth |= value.eq_ignore_ascii_case("true");
        }
    }
    Ok(ClientFirst {
        gs2_header,
        authzid,
        user,
        token_auth,
        nonce: nonce.to_string(),
        bare: bare.to_string(),
    })
}

/// An extension attribute: `key=value`, key not empty. Unknown extensions are ignored, as in
/// Kafka.
fn check_extension(ext: &str) -> Result<(), String> {
    match ext.split_once('=') {
        Some((key, _)) if !key.is_empty() => Ok(()),
        _ => Err(format!("extension {ext:?} is not key=value")),
    }
}

/// RFC 5802 saslname: `=2C` is `,`, `=3D` is `=`; any other `=` (and NUL) is invalid.
fn decode_saslname(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("empty".to_string());
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        match c {
            '=' => {
                if let Some(r) = rest.strip_prefix("=2C") {
                    out.push(',');
                    rest = r;
                } else if let Some(r) = rest.strip_prefix("=3D") {
                    out.push('=');
                    rest = r;
                } else {
                    return Err("'=' must start =2C or =3D".to_string());
                }
            }
            '\0' => return Err("contains NUL".to_string()),
            _ => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    Ok(out)
}

/// Fills `buf` from the OS generator.
fn fill_random(buf: &mut [u8]) -> Result<(), AuthError> {
    getrandom::fill(buf).map_err(|e| {
        AuthError::AuthenticationFailed(format!(
            "Authentication failed: the server could not get random bytes ({e})"
        ))
    })
}

/// 32 random printable characters (base64url of 24 random bytes: no `,`).
fn random_nonce() -> Result<String, AuthError> {
    let mut bytes = [0u8; 24];
    fill_random(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A random secret for this process, behind the fake credentials of unknown users.
fn process_secret() -> Result<&'static [u8; 32], AuthError> {
    static SECRET: OnceLock<[u8; 32]> = OnceLock::new();
    if let Some(secret) = SECRET.get() {
        return Ok(secret);
    }
    let mut secret = [0u8; 32];
    fill_random(&mut secret)?;
    Ok(SECRET.get_or_init(|| secret))
}

/// A credential for a user that does not exist: the same salt for the same name (within this
/// process), so repeated attempts do not reveal that the user is unknown; keys no password has.
fn fake_credential(mech: ScramMechanism, user: &str) -> Result<ScramCredential, AuthError> {
    let secret = process_secret()?;
    let derive = |label: &[u8]| {
        mech.hmac(
            secret,
            &[label, mech.name().as_bytes(), b"\0", user.as_bytes()],
        )
    };
    let mut salt = derive(b"salt");
    salt.truncate(32);
    Ok(ScramCredential {
        salt,
        stored_key: derive(b"stored"),
        server_key: derive(b"server"),
        iterations: mech.min_iterations(),
    })
}

#[cfg(test)]
mod tests;
