//! SASL authentication (SaslHandshake, SaslAuthenticate), SCRAM credentials
//! (Describe/AlterUserScramCredentials) and ACLs (Create/Describe/DeleteAcls), and the
//! authorizer's checks the other handlers call.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;
use std::sync::Arc;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::DescribeClientQuotasResponse;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, CreateAclsRequest,
    CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest,
    DescribeAclsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{first_error, Broker};
use crate::controller::{MetadataCommand, MetadataImage};
use crate::protocol::errors::ApiError;
use crate::security::acl::{
    self, AclBinding, AclFilter, AclOperation, AclPermission, Action, AuthorizerConfig,
    PatternType, ResourceType,
};
use crate::security::scram::{ScramCredential, ScramMechanism, ServerExchange, Step};
use crate::security::store::{LocalStore, ScramChange, ScramUpsertion, SecurityState};
use crate::security::{SaslState, Session};

/// The broker's security settings and, on a single node, where credentials and ACLs live.
#[derive(Default)]
pub struct SecurityContext {
    /// A single node's store; `None` in a cluster (the metadata image holds the state).
    pub local: Option<LocalStore>,
    /// The authorizer; `None` when --authorizer-enable is off.
    pub authorizer: Option<AuthorizerConfig>,
}

/// The security state, borrowed from the metadata image or the local store.
pub(crate) enum StateRef {
    Image(Arc<MetadataImage>),
    Local(Arc<SecurityState>),
}

impl Deref for StateRef {
    type Target = SecurityState;

    fn deref(&self) -> &SecurityState {
        match self {
            StateRef::Image(i) => &i.security,
            StateRef::Local(s) => s,
        }
    }
}

fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

impl Broker {
    /// SCRAM credentials and ACLs as this broker knows them now.
    pub(crate) fn security_state(&self) -> StateRef {
        match (&self.cluster, &self.security.local) {
            (Some(c), _) => StateRef::Image(c.current_image()),
            (None, Some(local)) => StateRef::Local(local.state()),
            (None, None) => StateRef::Local(Arc::default()),
        }
    }

    /// Whether the session may do `operation` on the resource; denials are logged. Always
    /// true without an authorizer.
    pub(crate) fn authorized(
        &self,
        session: &Session,
        operation: AclOperation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> bool {
        self.check(session, operation, resource_type, resource_name, true)
    }

    /// [`Broker::authorized`] without logging or counting a denial: for checks that have a
    /// fallback (CREATE on the cluster, else on the topic).
    pub(crate) fn authorized_quietly(
        &self,
        session: &Session,
        operation: AclOperation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> bool {
        self.check(session, operation, resource_type, resource_name, false)
    }

    fn check(
        &self,
        session: &Session,
        operation: AclOperation,
        resource_type: ResourceType,
        resource_name: &str,
        log: bool,
    ) -> bool {
        let Some(config) = &self.security.authorizer else {
            return true;
        };
        let Some(principal) = &session.principal else {
            return false;
        };
        let state = self.security_state();
        let action = Action {
            operation,
            resource_type,
            resource_name: resource_name.to_string(),
        };
        let allowed = acl::authorize(
            &state.acls,
            config,
            principal,
            session.info.peer.ip(),
            &action,
        );
        if !allowed && log {
            self.metrics
                .authorization_denials
                .with_label_values(&[operation.name(), resource_type.name()])
                .inc();
            tracing::info!(
                principal = %principal, host = %session.info.peer.ip(),
                operation = operation.name(), resource_type = resource_type.name(),
                resource = resource_name, "authorization denied"
            );
        }
        allowed
    }

    /// Whether the session may do `operation` on some resource of the type (Kafka's
    /// authorizeByResourceType, e.g. IDEMPOTENT_WRITE implied by WRITE on any topic).
    pub(crate) fn authorized_any(
        &self,
        session: &Session,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        let Some(config) = &self.security.authorizer else {
            return true;
        };
        let Some(principal) = &session.principal else {
            return false;
        };
        let state = self.security_state();
        acl::authorize_any(
            &state.acls,
            config,
            principal,
            session.info.peer.ip(),
            operation,
            resource_type,
        )
    }

    /// The CLUSTER resource.
    pub(crate) fn cluster_authorized(&self, session: &Session, operation: AclOperation) -> bool {
        self.authorized(session, operation, ResourceType::Cluster, acl::CLUSTER_NAME)
    }

    pub(super) fn sasl_handshake(
        &self,
        request: SaslHandshakeRequest,
        version: i16,
        session: &mut Session,
    ) -> (SaslHandshakeResponse, i16) {
        let enabled = &session.info.sasl_mechanisms;
        let mechanisms = enabled.iter().map(|m| str_bytes(m.clone())).collect();
        let response = SaslHandshakeResponse::default().with_mechanisms(mechanisms);
        if !session.info.protocol.sasl() || !matches!(session.sasl, SaslState::Handshake) {
            let code = ResponseError::IllegalSaslState.code();
            session.close_after_reply = true;
            return (response.with_error_code(code), code);
        }
        match ServerExchange::start(request.mechanism.as_str(), enabled) {
            Ok(exchange) => {
                session.sasl = SaslState::Authenticating(Box::new(exchange));
                session.sasl_raw = version == 0;
                (response, 0)
            }
            Err(e) => {
                tracing::info!(peer = %session.info.peer, mechanism = request.mechanism.as_str(),
                    error = %e, "SASL handshake refused");
                let code = ResponseError::UnsupportedSaslMechanism.code();
                (response.with_error_code(code), code)
            }
        }
    }

    pub(super) fn sasl_authenticate(
        &self,
        request: SaslAuthenticateRequest,
        session: &mut Session,
    ) -> (SaslAuthenticateResponse, i16) {
        let response = SaslAuthenticateResponse::default();
        match self.sasl_step(&request.auth_bytes, session) {
            Ok(bytes) => (response.with_auth_bytes(bytes.into()), 0),
            Err((code, message)) => {
                session.close_after_reply = true;
                (
                    response
                        .with_error_code(code)
                        .with_error_message(Some(str_bytes(message))),
                    code,
                )
            }
        }
    }

    /// One SASL token after SaslHandshake v0, sent bare: the answer to send bare, or `None`
    /// to close the connection (Kafka closes without an answer when v0 authentication fails).
    pub fn sasl_raw_token(&self, token: &[u8], session: &mut Session) -> Option<Vec<u8>> {
        self.sasl_step(token, session).ok()
    }

    /// Feeds one token to the connection's exchange: the bytes to answer, or the error code
    /// and message. Success makes the connection the user's.
    fn sasl_step(&self, token: &[u8], session: &mut Session) -> Result<Vec<u8>, (i16, String)> {
        let SaslState::Authenticating(exchange) = &mut session.sasl else {
            return Err((
                ResponseError::IllegalSaslState.code(),
                "SaslAuthenticate before a successful SaslHandshake".to_string(),
            ));
        };
        let mechanism = exchange.mechanism.clone();
        let state = self.security_state();
        let lookup = |user: &str, m: ScramMechanism| -> Option<ScramCredential> {
            state.credential(user, m).cloned()
        };
        match exchange.step(token, &lookup) {
            Ok(Step::Continue(bytes)) => Ok(bytes),
            Ok(Step::Done { user, reply }) => {
                let principal = crate::security::Principal::user(user);
                tracing::debug!(peer = %session.info.peer, %principal, mechanism, "authenticated");
                self.metrics
                    .sasl_authentications
                    .with_label_values(&[mechanism.as_str(), "success"])
                    .inc();
                session.principal = Some(principal);
                session.sasl = SaslState::Done;
                Ok(reply)
            }
            Err(e) => {
                self.metrics
                    .sasl_authentications
                    .with_label_values(&[mechanism.as_str(), "failure"])
                    .inc();
                tracing::info!(peer = %session.info.peer, mechanism, error = %e,
                    "SASL authentication failed");
                session.sasl = SaslState::Done;
                Err((e.error_code(), e.to_string()))
            }
        }
    }

    /// Client quotas are not implemented: no entity has one (kafka-configs --describe of users
    /// asks before it lists SCRAM credentials).
    pub(super) fn describe_client_quotas(
        &self,
        session: &Session,
    ) -> (DescribeClientQuotasResponse, i16) {
        let response = DescribeClientQuotasResponse::default();
        if !self.cluster_authorized(session, AclOperation::DescribeConfigs) {
            let code = ResponseError::ClusterAuthorizationFailed.code();
            return (
                response
                    .with_error_code(code)
                    .with_error_message(Some(str_bytes("Cluster authorization failed"))),
                code,
            );
        }
        (response.with_entries(Some(Vec::new())), 0)
    }

    pub(super) fn describe_user_scram_credentials(
        &self,
        request: DescribeUserScramCredentialsRequest,
        session: &Session,
    ) -> (DescribeUserScramCredentialsResponse, i16) {
        let response = DescribeUserScramCredentialsResponse::default();
        if !self.cluster_authorized(session, AclOperation::Describe) {
            let code = ResponseError::ClusterAuthorizationFailed.code();
            return (response.with_error_code(code), code);
        }
        let state = self.security_state();
        let describe = |user: &str| -> DescribeUserScramCredentialsResult {
            let result = DescribeUserScramCredentialsResult::default().with_user(str_bytes(user));
            match state.scram.get(user) {
                Some(m) => result.with_credential_infos(
                    m.iter()
                        .map(|(mech, c)| {
                            CredentialInfo::default()
                                .with_mechanism(mech.code())
                                .with_iterations(c.iterations)
                        })
                        .collect(),
                ),
                None => result
                    .with_error_code(ResponseError::ResourceNotFound.code())
                    .with_error_message(Some(str_bytes(format!(
                        "Attempt to describe a user credential that does not exist: {user}"
                    )))),
            }
        };
        let results: Vec<_> = match request.users {
            None => state.scram.keys().map(|u| describe(u)).collect(),
            Some(users) => {
                let mut count = BTreeMap::new();
                for u in &users {
                    *count.entry(u.name.as_str()).or_insert(0) += 1;
                }
                let mut seen = BTreeSet::new();
                users
                    .iter()
                    .filter(|u| seen.insert(u.name.as_str()))
                    .map(|u| {
                        let name = u.name.as_str();
                        if count[name] > 1 {
                            DescribeUserScramCredentialsResult::default()
                                .with_user(str_bytes(name))
                                .with_error_code(ResponseError::DuplicateResource.code())
                                .with_error_message(Some(str_bytes(format!(
                                    "Cannot describe SCRAM credentials for the same user twice in a single request: {name}"
                                ))))
                        } else {
                            describe(name)
                        }
                    })
                    .collect()
            }
        };
        let code = first_error(results.iter().map(|r| r.error_code));
        (response.with_results(results), code)
    }

    pub(super) async fn alter_user_scram_credentials(
        &self,
        request: AlterUserScramCredentialsRequest,
        session: &Session,
    ) -> (AlterUserScramCredentialsResponse, i16) {
        let response = AlterUserScramCredentialsResponse::default();
        // Every user named, in order of first mention; each gets one result.
        let mut users: Vec<String> = Vec::new();
        for name in request
            .deletions
            .iter()
            .map(|d| &d.name)
            .chain(request.upsertions.iter().map(|u| &u.name))
        {
            if !users.iter().any(|u| u == name.as_str()) {
                users.push(name.to_string());
            }
        }
        let result_for = |user: &str, e: &ApiError| {
            AlterUserScramCredentialsResult::default()
                .with_user(str_bytes(user))
                .with_error_code(e.code())
                .with_error_message(Some(str_bytes(e.message.clone())))
        };
        if !self.cluster_authorized(session, AclOperation::Alter) {
            let e = ApiError::new(
                ResponseError::ClusterAuthorizationFailed,
                "Cluster authorization failed",
            );
            let results: Vec<_> = users.iter().map(|u| result_for(u, &e)).collect();
            return (response.with_results(results), e.code());
        }
        let state = self.security_state();
        let mut errors: BTreeMap<String, ApiError> = BTreeMap::new();
        let mut seen: BTreeSet<(String, i8)> = BTreeSet::new();
        let mut change = ScramChange::default();
        for d in &request.deletions {
            let user = d.name.to_string();
            let checked = check_scram_target(&user, d.mechanism, &mut seen).and_then(|m| {
                if state.credential(&user, m).is_none() {
                    return Err(ApiError::new(
                        ResponseError::ResourceNotFound,
                        format!(
                            "Attempt to delete a user credential that does not exist: {user} {}",
                            m.name()
                        ),
                    ));
                }
                Ok(m)
            });
            match checked {
                Ok(m) => change.deletions.push((user, m)),
                Err(e) => {
                    errors.entry(user).or_insert(e);
                }
            }
        }
        for u in &request.upsertions {
            let user = u.name.to_string();
            let checked = check_scram_target(&user, u.mechanism, &mut seen).and_then(|m| {
                m.check_iterations(u.iterations)
                    .map_err(|e| ApiError::new(ResponseError::UnacceptableCredential, e))?;
                if u.salt.is_empty() || u.salted_password.is_empty() {
                    return Err(ApiError::new(
                        ResponseError::UnacceptableCredential,
                        "salt and salted password must not be empty",
                    ));
                }
                Ok(m)
            });
            match checked {
                Ok(m) => change.upsertions.push(ScramUpsertion {
                    user: user.clone(),
                    mechanism: m,
                    credential: ScramCredential::from_salted_password(
                        m,
                        &u.salted_password,
                        u.salt.to_vec(),
                        u.iterations,
                    ),
                }),
                Err(e) => {
                    errors.entry(user).or_insert(e);
                }
            }
        }
        drop(state);
        // A user with any error changes nothing (Kafka validates per user).
        change.deletions.retain(|(u, _)| !errors.contains_key(u));
        change.upsertions.retain(|u| !errors.contains_key(&u.user));
        if !change.deletions.is_empty() || !change.upsertions.is_empty() {
            if let Err(e) = self.store_scram(change).await {
                for u in &users {
                    errors.entry(u.clone()).or_insert_with(|| e.clone());
                }
            }
        }
        let results: Vec<_> = users
            .iter()
            .map(|u| match errors.get(u) {
                Some(e) => result_for(u, e),
                None => AlterUserScramCredentialsResult::default().with_user(str_bytes(u.clone())),
            })
            .collect();
        let code = first_error(results.iter().map(|r| r.error_code));
        (response.with_results(results), code)
    }

    async fn store_scram(&self, change: ScramChange) -> Result<(), ApiError> {
        match (&self.cluster, &self.security.local) {
            (Some(cluster), _) => {
                cluster
                    .propose(MetadataCommand::AlterScramCredentials(change))
                    .await?;
                Ok(())
            }
            (None, Some(local)) => local.update(|s| s.alter_scram(&change)).map_err(|e| {
                ApiError::new(
                    ResponseError::UnknownServerError,
                    format!("storing credentials: {e}"),
                )
            }),
            (None, None) => Err(ApiError::new(
                ResponseError::UnknownServerError,
                "no credential store",
            )),
        }
    }

    async fn store_acls(&self, command: MetadataCommand) -> Result<(), ApiError> {
        match (&self.cluster, &self.security.local) {
            (Some(cluster), _) => {
                cluster.propose(command).await?;
                Ok(())
            }
            (None, Some(local)) => local
                .update(|s| match &command {
                    MetadataCommand::CreateAcls { bindings } => s.create_acls(bindings),
                    MetadataCommand::DeleteAcls { bindings } => s.delete_acls(bindings),
                    _ => {}
                })
                .map_err(|e| {
                    ApiError::new(
                        ResponseError::UnknownServerError,
                        format!("storing ACLs: {e}"),
                    )
                }),
            (None, None) => Err(ApiError::new(
                ResponseError::UnknownServerError,
                "no ACL store",
            )),
        }
    }

    /// Kafka answers the ACL APIs with SECURITY_DISABLED without an authorizer.
    fn acl_precheck(&self, session: &Session, operation: AclOperation) -> Result<(), ApiError> {
        if self.security.authorizer.is_none() {
            return Err(ApiError::new(
                ResponseError::SecurityDisabled,
                "No Authorizer is configured (--authorizer-enable false)",
            ));
        }
        if !self.cluster_authorized(session, operation) {
            return Err(ApiError::new(
                ResponseError::ClusterAuthorizationFailed,
                "Cluster authorization failed",
            ));
        }
        Ok(())
    }

    pub(super) async fn create_acls(
        &self,
        request: CreateAclsRequest,
        session: &Session,
    ) -> (CreateAclsResponse, i16) {
        let response = CreateAclsResponse::default();
        let n = request.creations.len();
        let fail_all = |e: &ApiError| {
            (0..n)
                .map(|_| {
                    AclCreationResult::default()
                        .with_error_code(e.code())
                        .with_error_message(Some(str_bytes(e.message.clone())))
                })
                .collect::<Vec<_>>()
        };
        if let Err(e) = self.acl_precheck(session, AclOperation::Alter) {
            return (response.with_results(fail_all(&e)), e.code());
        }
        let mut results = Vec::with_capacity(n);
        let mut bindings = Vec::new();
        for c in &request.creations {
            let binding = binding_from_wire(
                c.resource_type,
                c.resource_name.as_str(),
                c.resource_pattern_type,
                c.principal.as_str(),
                c.host.as_str(),
                c.operation,
                c.permission_type,
            )
            .and_then(|b| b.validate().map(|()| b));
            match binding {
                Ok(b) => {
                    bindings.push(b);
                    results.push(AclCreationResult::default());
                }
                Err(msg) => results.push(
                    AclCreationResult::default()
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(str_bytes(msg))),
                ),
            }
        }
        if !bindings.is_empty() {
            let created: Vec<String> = bindings.iter().map(describe_binding).collect();
            if let Err(e) = self
                .store_acls(MetadataCommand::CreateAcls { bindings })
                .await
            {
                for r in results.iter_mut().filter(|r| r.error_code == 0) {
                    r.error_code = e.code();
                    r.error_message = Some(str_bytes(e.message.clone()));
                }
            } else {
                tracing::info!(principal = ?session.principal.as_ref().map(ToString::to_string),
                    acls = ?created, "ACLs created");
            }
        }
        let code = first_error(results.iter().map(|r| r.error_code));
        (response.with_results(results), code)
    }

    pub(super) fn describe_acls(
        &self,
        request: DescribeAclsRequest,
        session: &Session,
    ) -> (DescribeAclsResponse, i16) {
        let response = DescribeAclsResponse::default();
        if let Err(e) = self.acl_precheck(session, AclOperation::Describe) {
            return (
                response
                    .with_error_code(e.code())
                    .with_error_message(Some(str_bytes(e.message.clone()))),
                e.code(),
            );
        }
        let filter = match filter_from_wire(
            request.resource_type_filter,
            request.resource_name_filter.as_ref().map(|s| s.as_str()),
            request.pattern_type_filter,
            request.principal_filter.as_ref().map(|s| s.as_str()),
            request.host_filter.as_ref().map(|s| s.as_str()),
            request.operation,
            request.permission_type,
        ) {
            Ok(f) => f,
            Err(msg) => {
                let code = ResponseError::InvalidRequest.code();
                return (
                    response
                        .with_error_code(code)
                        .with_error_message(Some(str_bytes(msg))),
                    code,
                );
            }
        };
        let state = self.security_state();
        let mut by_resource: BTreeMap<(ResourceType, String, PatternType), Vec<AclDescription>> =
            BTreeMap::new();
        for b in state.acls.iter().filter(|b| filter.matches(b)) {
            by_resource
                .entry((b.resource_type, b.resource_name.clone(), b.pattern_type))
                .or_default()
                .push(
                    AclDescription::default()
                        .with_principal(str_bytes(b.principal.clone()))
                        .with_host(str_bytes(b.host.clone()))
                        .with_operation(b.operation.code())
                        .with_permission_type(b.permission.code()),
                );
        }
        let resources = by_resource
            .into_iter()
            .map(|((t, name, p), acls)| {
                DescribeAclsResource::default()
                    .with_resource_type(t.code())
                    .with_resource_name(str_bytes(name))
                    .with_pattern_type(p.code())
                    .with_acls(acls)
            })
            .collect();
        (response.with_resources(resources), 0)
    }

    pub(super) async fn delete_acls(
        &self,
        request: DeleteAclsRequest,
        session: &Session,
    ) -> (DeleteAclsResponse, i16) {
        let response = DeleteAclsResponse::default();
        let fail = |e: &ApiError| {
            DeleteAclsFilterResult::default()
                .with_error_code(e.code())
                .with_error_message(Some(str_bytes(e.message.clone())))
        };
        if let Err(e) = self.acl_precheck(session, AclOperation::Alter) {
            let results = request.filters.iter().map(|_| fail(&e)).collect();
            return (response.with_filter_results(results), e.code());
        }
        let state = self.security_state();
        let mut results = Vec::with_capacity(request.filters.len());
        let mut doomed: BTreeSet<AclBinding> = BTreeSet::new();
        for f in &request.filters {
            let filter = filter_from_wire(
                f.resource_type_filter,
                f.resource_name_filter.as_ref().map(|s| s.as_str()),
                f.pattern_type_filter,
                f.principal_filter.as_ref().map(|s| s.as_str()),
                f.host_filter.as_ref().map(|s| s.as_str()),
                f.operation,
                f.permission_type,
            );
            match filter {
                Err(msg) => results.push(fail(&ApiError::new(ResponseError::InvalidRequest, msg))),
                Ok(filter) => {
                    let matched: Vec<&AclBinding> =
                        state.acls.iter().filter(|b| filter.matches(b)).collect();
                    doomed.extend(matched.iter().map(|b| (*b).clone()));
                    results.push(
                        DeleteAclsFilterResult::default().with_matching_acls(
                            matched
                                .into_iter()
                                .map(|b| {
                                    DeleteAclsMatchingAcl::default()
                                        .with_resource_type(b.resource_type.code())
                                        .with_resource_name(str_bytes(b.resource_name.clone()))
                                        .with_pattern_type(b.pattern_type.code())
                                        .with_principal(str_bytes(b.principal.clone()))
                                        .with_host(str_bytes(b.host.clone()))
                                        .with_operation(b.operation.code())
                                        .with_permission_type(b.permission.code())
                                })
                                .collect(),
                        ),
                    );
                }
            }
        }
        drop(state);
        if !doomed.is_empty() {
            let bindings: Vec<AclBinding> = doomed.into_iter().collect();
            let deleted: Vec<String> = bindings.iter().map(describe_binding).collect();
            if let Err(e) = self
                .store_acls(MetadataCommand::DeleteAcls { bindings })
                .await
            {
                for r in results.iter_mut().filter(|r| r.error_code == 0) {
                    *r = fail(&e);
                }
            } else {
                tracing::info!(principal = ?session.principal.as_ref().map(ToString::to_string),
                    acls = ?deleted, "ACLs deleted");
            }
        }
        let code = first_error(results.iter().map(|r| r.error_code));
        (response.with_filter_results(results), code)
    }
}

/// The mechanism of one deletion or upsertion, refusing an empty user, an unknown mechanism
/// and a (user, mechanism) named twice in the request.
fn check_scram_target(
    user: &str,
    mechanism: i8,
    seen: &mut BTreeSet<(String, i8)>,
) -> Result<ScramMechanism, ApiError> {
    if user.is_empty() {
        return Err(ApiError::new(
            ResponseError::UnacceptableCredential,
            "Username must not be empty",
        ));
    }
    let Some(m) = ScramMechanism::from_code(mechanism) else {
        return Err(ApiError::new(
            ResponseError::UnsupportedSaslMechanism,
            format!("Unknown SCRAM mechanism {mechanism}"),
        ));
    };
    if !seen.insert((user.to_string(), mechanism)) {
        return Err(ApiError::new(
            ResponseError::DuplicateResource,
            format!(
                "A user credential cannot be altered twice in the same request: {user} {}",
                m.name()
            ),
        ));
    }
    Ok(m)
}

#[allow(clippy::too_many_arguments)]
fn binding_from_wire(
    resource_type: i8,
    resource_name: &str,
    pattern_type: i8,
    principal: &str,
    host: &str,
    operation: i8,
    permission: i8,
) -> Result<AclBinding, String> {
    Ok(AclBinding {
        resource_type: ResourceType::from_code(resource_type)
            .ok_or_else(|| format!("unknown resource type {resource_type}"))?,
        resource_name: resource_name.to_string(),
        pattern_type: PatternType::from_code(pattern_type)
            .ok_or_else(|| format!("unknown pattern type {pattern_type}"))?,
        principal: principal.to_string(),
        host: host.to_string(),
        operation: AclOperation::from_code(operation)
            .ok_or_else(|| format!("unknown operation {operation}"))?,
        permission: AclPermission::from_code(permission)
            .ok_or_else(|| format!("unknown permission type {permission}"))?,
    })
}

#[allow(clippy::too_many_arguments)]
fn filter_from_wire(
    resource_type: i8,
    resource_name: Option<&str>,
    pattern_type: i8,
    principal: Option<&str>,
    host: Option<&str>,
    operation: i8,
    permission: i8,
) -> Result<AclFilter, String> {
    let filter = AclFilter {
        resource_type: ResourceType::from_code(resource_type)
            .ok_or_else(|| format!("unknown resource type {resource_type}"))?,
        resource_name: resource_name.map(str::to_string),
        pattern_type: PatternType::from_code(pattern_type)
            .ok_or_else(|| format!("unknown pattern type {pattern_type}"))?,
        principal: principal.map(str::to_string),
        host: host.map(str::to_string),
        operation: AclOperation::from_code(operation)
            .ok_or_else(|| format!("unknown operation {operation}"))?,
        permission: AclPermission::from_code(permission)
            .ok_or_else(|| format!("unknown permission type {permission}"))?,
    };
    filter.validate()?;
    Ok(filter)
}

fn describe_binding(b: &AclBinding) -> String {
    format!(
        "{} {} {} on {}:{}:{} from {}",
        b.principal,
        b.permission.name(),
        b.operation.name(),
        b.resource_type.name(),
        b.pattern_type.name(),
        b.resource_name,
        b.host
    )
}
