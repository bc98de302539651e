//! Kafka's security admin requests: SCRAM credentials (AlterUserScramCredentials,
//! DescribeUserScramCredentials v0) and ACLs (CreateAcls, DescribeAcls, DeleteAcls v1-3), and
//! the client's half of a SCRAM credential (SaltedPassword, RFC 5802). The [`SecurityAdmin`]
//! trait is the seam the KafkaUser reconcile is tested through. It owns no policy, and never
//! logs a password, salt or key.

use std::future::Future;

use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest,
    DescribeUserScramCredentialsRequest,
};
use sha2::Sha512;

use super::{s, AdminClient, AdminError, KafkaError};

/// ScramMechanism code of SCRAM-SHA-512.
pub const SCRAM_SHA_512: i8 = 2;
/// PBKDF2 iterations of the credentials the operator makes (Kafka's minimum and default).
pub const SCRAM_ITERATIONS: u32 = 4096;
/// Length of the random salt of a credential.
pub const SCRAM_SALT_LEN: usize = 32;
/// RESOURCE_NOT_FOUND: no credential for the user.
pub const RESOURCE_NOT_FOUND: i16 = 91;
/// UNSUPPORTED_SASL_MECHANISM: the brokers do not take this SCRAM mechanism.
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
/// SECURITY_DISABLED: the brokers have no authorizer (or no SCRAM store).
pub const SECURITY_DISABLED: i16 = 54;
/// CLUSTER_AUTHORIZATION_FAILED: the operator's principal may not do this.
pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;

/// Wire codes of Kafka's ACL enums.
pub mod acl {
    /// ResourceType ANY (filters only).
    pub const RESOURCE_ANY: i8 = 1;
    /// ResourceType TOPIC.
    pub const RESOURCE_TOPIC: i8 = 2;
    /// ResourceType GROUP.
    pub const RESOURCE_GROUP: i8 = 3;
    /// ResourceType CLUSTER.
    pub const RESOURCE_CLUSTER: i8 = 4;
    /// ResourceType TRANSACTIONAL_ID.
    pub const RESOURCE_TRANSACTIONAL_ID: i8 = 5;
    /// PatternType ANY (filters only).
    pub const PATTERN_ANY: i8 = 1;
    /// PatternType LITERAL.
    pub const PATTERN_LITERAL: i8 = 3;
    /// PatternType PREFIXED.
    pub const PATTERN_PREFIXED: i8 = 4;
    /// AclOperation ANY (filters only).
    pub const OP_ANY: i8 = 1;
    /// PermissionType ANY (filters only).
    pub const PERMISSION_ANY: i8 = 1;
    /// PermissionType DENY.
    pub const PERMISSION_DENY: i8 = 2;
    /// PermissionType ALLOW.
    pub const PERMISSION_ALLOW: i8 = 3;

    /// The name of a ResourceType code.
    pub fn resource_name(code: i8) -> String {
        match code {
            1 => "any".into(),
            2 => "topic".into(),
            3 => "group".into(),
            4 => "cluster".into(),
            5 => "transactionalId".into(),
            6 => "delegationToken".into(),
            7 => "user".into(),
            c => format!("resourceType{c}"),
        }
    }

    /// The name of a PatternType code.
    pub fn pattern_name(code: i8) -> String {
        match code {
            1 => "any".into(),
            2 => "match".into(),
            3 => "literal".into(),
            4 => "prefixed".into(),
            c => format!("patternType{c}"),
        }
    }

    /// The name of an AclOperation code.
    pub fn operation_name(code: i8) -> String {
        const NAMES: [&str; 15] = [
            "Unknown",
            "Any",
            "All",
            "Read",
            "Write",
            "Create",
            "Delete",
            "Alter",
            "Describe",
            "ClusterAction",
            "DescribeConfigs",
            "AlterConfigs",
            "IdempotentWrite",
            "CreateTokens",
            "DescribeTokens",
        ];
        usize::try_from(code)
            .ok()
            .and_then(|i| NAMES.get(i))
            .map_or_else(|| format!("operation{code}"), |n| (*n).to_string())
    }

    /// The name of a PermissionType code.
    pub fn permission_name(code: i8) -> String {
        match code {
            1 => "any".into(),
            2 => "deny".into(),
            3 => "allow".into(),
            c => format!("permission{c}"),
        }
    }
}

/// One ACL binding, with Kafka's wire codes. As a DeleteAcls filter it matches exactly itself.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclBinding {
    /// ResourceType code (`acl::RESOURCE_*`).
    pub resource_type: i8,
    /// Resource name (`*` with a literal pattern: every resource of the type).
    pub resource_name: String,
    /// PatternType code (`acl::PATTERN_LITERAL` or `acl::PATTERN_PREFIXED`).
    pub pattern_type: i8,
    /// Principal, `User:alice`.
    pub principal: String,
    /// Host, `*` or an IP address.
    pub host: String,
    /// AclOperation code.
    pub operation: i8,
    /// PermissionType code (`acl::PERMISSION_ALLOW` or `acl::PERMISSION_DENY`).
    pub permission: i8,
}

impl std::fmt::Display for AclBinding {
    /// `allow User:alice Read topic orders (literal) from *`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {} {} ({}) from {}",
            acl::permission_name(self.permission),
            self.principal,
            acl::operation_name(self.operation),
            acl::resource_name(self.resource_type),
            self.resource_name,
            acl::pattern_name(self.pattern_type),
            self.host
        )
    }
}

/// A SCRAM credential as DescribeUserScramCredentials reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScramCredentialInfo {
    /// ScramMechanism code.
    pub mechanism: i8,
    /// PBKDF2 iterations.
    pub iterations: i32,
}

/// The client-computed part of a SCRAM credential that AlterUserScramCredentials carries.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramUpsert {
    /// ScramMechanism code.
    pub mechanism: i8,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// The salt.
    pub salt: Vec<u8>,
    /// SaltedPassword = PBKDF2-HMAC-SHA512(password, salt, iterations).
    pub salted_password: Vec<u8>,
}

impl std::fmt::Debug for ScramUpsert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The salted password is as good as the password: never in logs.
        f.debug_struct("ScramUpsert")
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramUpsert {
    /// A SCRAM-SHA-512 credential of `password` with `salt`.
    pub fn sha512(password: &str, salt: &[u8], iterations: u32) -> ScramUpsert {
        ScramUpsert {
            mechanism: SCRAM_SHA_512,
            iterations,
            salt: salt.to_vec(),
            salted_password: salted_password_sha512(password.as_bytes(), salt, iterations).to_vec(),
        }
    }
}

/// SaltedPassword of SCRAM-SHA-512: PBKDF2-HMAC-SHA512 of the password's UTF-8 bytes (Kafka's
/// clients apply no SASLprep) with `salt` and `iterations`, 64 bytes.
pub fn salted_password_sha512(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 64] {
    let mut out = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
    out
}

/// Random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out)?;
    Ok(out)
}

/// The security requests the KafkaUser reconcile makes, in front of [`AdminClient`].
pub trait SecurityAdmin: Send + Sync {
    /// The SCRAM credentials of `user` (empty when it has none).
    fn describe_scram_credentials(
        &self,
        user: &str,
    ) -> impl Future<Output = Result<Vec<ScramCredentialInfo>, AdminError>> + Send;

    /// Creates or replaces `user`'s credential for `credential.mechanism`.
    fn upsert_scram_credential(
        &self,
        user: &str,
        credential: &ScramUpsert,
    ) -> impl Future<Output = Result<(), AdminError>> + Send;

    /// Deletes `user`'s credential for `mechanism`; an absent one is not an error.
    fn delete_scram_credential(
        &self,
        user: &str,
        mechanism: i8,
    ) -> impl Future<Output = Result<(), AdminError>> + Send;

    /// Every ACL binding of `principal`.
    fn describe_acls(
        &self,
        principal: &str,
    ) -> impl Future<Output = Result<Vec<AclBinding>, AdminError>> + Send;

    /// Creates `bindings`.
    fn create_acls(
        &self,
        bindings: &[AclBinding],
    ) -> impl Future<Output = Result<(), AdminError>> + Send;

    /// Deletes exactly `bindings` (one exact-match filter each); returns how many the brokers
    /// deleted.
    fn delete_acls(
        &self,
        bindings: &[AclBinding],
    ) -> impl Future<Output = Result<usize, AdminError>> + Send;

    /// Deletes every ACL binding of `principal`; returns how many.
    fn delete_principal_acls(
        &self,
        principal: &str,
    ) -> impl Future<Output = Result<usize, AdminError>> + Send;
}

fn filter_of(b: &AclBinding) -> DeleteAclsFilter {
    DeleteAclsFilter::default()
        .with_resource_type_filter(b.resource_type)
        .with_resource_name_filter(Some(s(&b.resource_name)))
        .with_pattern_type_filter(b.pattern_type)
        .with_principal_filter(Some(s(&b.principal)))
        .with_host_filter(Some(s(&b.host)))
        .with_operation(b.operation)
        .with_permission_type(b.permission)
}

impl AdminClient {
    async fn delete_acl_filters(
        &self,
        filters: Vec<DeleteAclsFilter>,
        what: &str,
    ) -> Result<usize, AdminError> {
        if filters.is_empty() {
            return Ok(0);
        }
        let request = DeleteAclsRequest::default().with_filters(filters);
        let (response, _) = self
            .with_conn(async |c| c.call("DeleteAcls", 1, 3, &request).await)
            .await?;
        let mut deleted = 0;
        for r in response.filter_results {
            if let Some(e) = KafkaError::from_code(
                "DeleteAcls",
                Some(what),
                r.error_code,
                r.error_message.as_deref(),
            ) {
                return Err(e.into());
            }
            for m in r.matching_acls {
                if let Some(e) = KafkaError::from_code(
                    "DeleteAcls",
                    Some(what),
                    m.error_code,
                    m.error_message.as_deref(),
                ) {
                    return Err(e.into());
                }
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

impl SecurityAdmin for AdminClient {
    async fn describe_scram_credentials(
        &self,
        user: &str,
    ) -> Result<Vec<ScramCredentialInfo>, AdminError> {
        let request = DescribeUserScramCredentialsRequest::default()
            .with_users(Some(vec![UserName::default().with_name(s(user))]));
        let (response, _) = self
            .with_conn(async |c| c.call("DescribeUserScramCredentials", 0, 0, &request).await)
            .await?;
        // Kafka answers an unknown user in its result; a broker may answer it at the top.
        if response.error_code == RESOURCE_NOT_FOUND {
            return Ok(Vec::new());
        }
        if let Some(e) = KafkaError::from_code(
            "DescribeUserScramCredentials",
            Some(user),
            response.error_code,
            response.error_message.as_deref(),
        ) {
            return Err(e.into());
        }
        let mut out = Vec::new();
        for r in response
            .results
            .into_iter()
            .filter(|r| r.user.as_str() == user)
        {
            if r.error_code == RESOURCE_NOT_FOUND {
                continue;
            }
            if let Some(e) = KafkaError::from_code(
                "DescribeUserScramCredentials",
                Some(user),
                r.error_code,
                r.error_message.as_deref(),
            ) {
                return Err(e.into());
            }
            out.extend(r.credential_infos.iter().map(|c| ScramCredentialInfo {
                mechanism: c.mechanism,
                iterations: c.iterations,
            }));
        }
        Ok(out)
    }

    async fn upsert_scram_credential(
        &self,
        user: &str,
        credential: &ScramUpsert,
    ) -> Result<(), AdminError> {
        let request = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
            ScramCredentialUpsertion::default()
                .with_name(s(user))
                .with_mechanism(credential.mechanism)
                .with_iterations(i32::try_from(credential.iterations).unwrap_or(i32::MAX))
                .with_salt(Bytes::copy_from_slice(&credential.salt))
                .with_salted_password(Bytes::copy_from_slice(&credential.salted_password)),
        ]);
        let (response, _) = self
            .with_conn(async |c| c.call("AlterUserScramCredentials", 0, 0, &request).await)
            .await?;
        for r in response.results {
            if let Some(e) = KafkaError::from_code(
                "AlterUserScramCredentials",
                Some(user),
                r.error_code,
                r.error_message.as_deref(),
            ) {
                return Err(e.into());
            }
        }
        Ok(())
    }

    async fn delete_scram_credential(&self, user: &str, mechanism: i8) -> Result<(), AdminError> {
        let request = AlterUserScramCredentialsRequest::default().with_deletions(vec![
            ScramCredentialDeletion::default()
                .with_name(s(user))
                .with_mechanism(mechanism),
        ]);
        let (response, _) = self
            .with_conn(async |c| c.call("AlterUserScramCredentials", 0, 0, &request).await)
            .await?;
        for r in response.results {
            if r.error_code == RESOURCE_NOT_FOUND {
                continue;
            }
            if let Some(e) = KafkaError::from_code(
                "AlterUserScramCredentials",
                Some(user),
                r.error_code,
                r.error_message.as_deref(),
            ) {
                return Err(e.into());
            }
        }
        Ok(())
    }

    async fn describe_acls(&self, principal: &str) -> Result<Vec<AclBinding>, AdminError> {
        let request = DescribeAclsRequest::default()
            .with_resource_type_filter(acl::RESOURCE_ANY)
            .with_resource_name_filter(None)
            .with_pattern_type_filter(acl::PATTERN_ANY)
            .with_principal_filter(Some(s(principal)))
            .with_host_filter(None)
            .with_operation(acl::OP_ANY)
            .with_permission_type(acl::PERMISSION_ANY);
        let (response, _) = self
            .with_conn(async |c| c.call("DescribeAcls", 1, 3, &request).await)
            .await?;
        if let Some(e) = KafkaError::from_code(
            "DescribeAcls",
            Some(principal),
            response.error_code,
            response.error_message.as_deref(),
        ) {
            return Err(e.into());
        }
        let mut out = Vec::new();
        for r in response.resources {
            for a in r.acls {
                out.push(AclBinding {
                    resource_type: r.resource_type,
                    resource_name: r.resource_name.to_string(),
                    pattern_type: r.pattern_type,
                    principal: a.principal.to_string(),
                    host: a.host.to_string(),
                    operation: a.operation,
                    permission: a.permission_type,
                });
            }
        }
        // The filter is the brokers' to honour; never act on another principal's bindings.
        out.retain(|b| b.principal == principal);
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn create_acls(&self, bindings: &[AclBinding]) -> Result<(), AdminError> {
        if bindings.is_empty() {
            return Ok(());
        }
        let request = CreateAclsRequest::default().with_creations(
            bindings
                .iter()
                .map(|b| {
                    AclCreation::default()
                        .with_resource_type(b.resource_type)
                        .with_resource_name(s(&b.resource_name))
                        .with_resource_pattern_type(b.pattern_type)
                        .with_principal(s(&b.principal))
                        .with_host(s(&b.host))
                        .with_operation(b.operation)
                        .with_permission_type(b.permission)
                })
                .collect(),
        );
        let (response, _) = self
            .with_conn(async |c| c.call("CreateAcls", 1, 3, &request).await)
            .await?;
        if response.results.len() != bindings.len() {
            return Err(AdminError::Protocol {
                api: "CreateAcls",
                message: format!(
                    "{} results for {} creations",
                    response.results.len(),
                    bindings.len()
                ),
            });
        }
        for (r, b) in response.results.iter().zip(bindings) {
            if let Some(e) = KafkaError::from_code(
                "CreateAcls",
                Some(&b.to_string()),
                r.error_code,
                r.error_message.as_deref(),
            ) {
                return Err(e.into());
            }
        }
        Ok(())
    }

    async fn delete_acls(&self, bindings: &[AclBinding]) -> Result<usize, AdminError> {
        let what = bindings
            .first()
            .map(|b| b.principal.clone())
            .unwrap_or_default();
        self.delete_acl_filters(bindings.iter().map(filter_of).collect(), &what)
            .await
    }

    async fn delete_principal_acls(&self, principal: &str) -> Result<usize, AdminError> {
        let filter = DeleteAclsFilter::default()
            .with_resource_type_filter(acl::RESOURCE_ANY)
            .with_resource_name_filter(None)
            .with_pattern_type_filter(acl::PATTERN_ANY)
            .with_principal_filter(Some(s(principal)))
            .with_host_filter(None)
            .with_operation(acl::OP_ANY)
            .with_permission_type(acl::PERMISSION_ANY);
        self.delete_acl_filters(vec![filter], principal).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// PBKDF2-HMAC-SHA512 test vectors (password "password", salt "salt"), as published for
    /// RFC 6070's inputs with SHA-512 and checked with Python's hashlib.pbkdf2_hmac.
    #[test]
    fn salted_password_matches_known_vectors() {
        assert_eq!(
            hex(&salted_password_sha512(b"password", b"salt", 1)),
            "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252\
             c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce"
        );
        assert_eq!(
            hex(&salted_password_sha512(b"password", b"salt", 4096)),
            "d197b1b33db0143e018b12f3d1d1479e6cdebdcc97c5c0f87f6902e072f457b5\
             143f30602641b3d55cd335988cb36b84376060ecd532e039b742a239434af2d5"
        );
    }

    #[test]
    fn upsert_is_sha512_with_its_salt_and_never_prints_secrets() {
        let u = ScramUpsert::sha512("password", b"salt", 4096);
        assert_eq!(u.mechanism, SCRAM_SHA_512);
        assert_eq!(u.salt, b"salt");
        assert_eq!(u.salted_password.len(), 64);
        let shown = format!("{u:?}");
        assert!(!shown.contains("salt:"), "{shown}");
        assert!(shown.contains("iterations: 4096"), "{shown}");
    }

    #[test]
    fn random_bytes_differ() {
        let a = random_bytes::<32>().unwrap();
        let b = random_bytes::<32>().unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn bindings_read_as_sentences() {
        let b = AclBinding {
            resource_type: acl::RESOURCE_TOPIC,
            resource_name: "orders".into(),
            pattern_type: acl::PATTERN_LITERAL,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: 3,
            permission: acl::PERMISSION_ALLOW,
        };
        assert_eq!(
            b.to_string(),
            "allow User:alice Read topic orders (literal) from *"
        );
        assert_eq!(acl::operation_name(99), "operation99");
        assert_eq!(acl::operation_name(-1), "operation-1");
    }
}
