use std::collections::BTreeSet;
use std::sync::Mutex;

use super::*;
use crate::crd::KafkaUserSpec;
use crate::kafka::{AclBinding, KafkaError, ScramCredentialInfo};

/// An in-memory cluster: ACL bindings and SCRAM credentials, or one error for every request.
#[derive(Default)]
struct FakeCluster {
    acls: Mutex<BTreeSet<AclBinding>>,
    scram: Mutex<BTreeMap<String, ScramCredentialInfo>>,
    upserts: Mutex<u32>,
    fail_with: Option<i16>,
}

impl FakeCluster {
    fn check(&self, api: &'static str) -> Result<(), AdminError> {
        match self.fail_with {
            Some(code) => Err(KafkaError::from_code(api, None, code, None).unwrap().into()),
            None => Ok(()),
        }
    }
}

impl SecurityAdmin for FakeCluster {
    async fn describe_scram_credentials(
        &self,
        user: &str,
    ) -> Result<Vec<ScramCredentialInfo>, AdminError> {
        self.check("DescribeUserScramCredentials")?;
        Ok(self
            .scram
            .lock()
            .unwrap()
            .get(user)
            .copied()
            .into_iter()
            .collect())
    }
    async fn upsert_scram_credential(
        &self,
        user: &str,
        credential: &ScramUpsert,
    ) -> Result<(), AdminError> {
        self.check("AlterUserScramCredentials")?;
        *self.upserts.lock().unwrap() += 1;
        self.scram.lock().unwrap().insert(
            user.into(),
            ScramCredentialInfo {
                mechanism: credential.mechanism,
                iterations: i32::try_from(credential.iterations).unwrap(),
            },
        );
        Ok(())
    }
    async fn delete_scram_credential(&self, user: &str, _: i8) -> Result<(), AdminError> {
        self.check("AlterUserScramCredentials")?;
        self.scram.lock().unwrap().remove(user);
        Ok(())
    }
    async fn describe_acls(&self, principal: &str) -> Result<Vec<AclBinding>, AdminError> {
        self.check("DescribeAcls")?;
        Ok(self
            .acls
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b.principal == principal)
            .cloned()
            .collect())
    }
    async fn create_acls(&self, bindings: &[AclBinding]) -> Result<(), AdminError> {
        self.check("CreateAcls")?;
        self.acls.lock().unwrap().extend(bindings.iter().cloned());
        Ok(())
    }
    async fn delete_acls(&self, bindings: &[AclBinding]) -> Result<usize, AdminError> {
        self.check("DeleteAcls")?;
        let mut acls = self.acls.lock().unwrap();
        Ok(bindings.iter().filter(|b| acls.remove(b)).count())
    }
    async fn delete_principal_acls(&self, principal: &str) -> Result<usize, AdminError> {
        self.check("DeleteAcls")?;
        let mut acls = self.acls.lock().unwrap();
        let before = acls.len();
        acls.retain(|b| b.principal != principal);
        Ok(before - acls.len())
    }
}

fn spec(acls: serde_json::Value) -> KafkaUserSpec {
    serde_json::from_value(serde_json::json!({
        "clusterRef": {"name": "kc"},
        "authentication": {"type": "scram-sha-512"},
        "authorization": {"acls": acls}
    }))
    .unwrap()
}

fn foreign() -> AclBinding {
    AclBinding {
        resource_type: 2,
        resource_name: "orders".into(),
        pattern_type: 3,
        principal: "User:bob".into(),
        host: "*".into(),
        operation: 3,
        permission: 3,
    }
}

async fn converge(fake: &FakeCluster, s: &KafkaUserSpec) -> AclChanges {
    let desired = desired_bindings(s, "User:alice");
    let current = fake.describe_acls("User:alice").await.unwrap();
    let changes = acl_changes(&desired, &current, "User:alice");
    apply_acl_changes(fake, &changes).await.unwrap();
    changes
}

#[tokio::test]
async fn acls_converge_and_stay_put() {
    let fake = FakeCluster::default();
    fake.acls.lock().unwrap().insert(foreign());
    let v1 = spec(serde_json::json!([
        {"resource": {"type": "topic", "name": "orders"}, "operations": ["Read", "Write"]},
        {"resource": {"type": "group", "name": "orders-", "patternType": "prefixed"},
         "operations": ["Read"]}
    ]));
    let first = converge(&fake, &v1).await;
    assert_eq!((first.create.len(), first.delete.len()), (3, 0));
    // Idempotent: a second pass changes nothing.
    assert!(converge(&fake, &v1).await.is_empty());
    // A narrower spec deletes exactly the binding it dropped.
    let v2 = spec(serde_json::json!([
        {"resource": {"type": "topic", "name": "orders"}, "operations": ["Read"]},
        {"resource": {"type": "group", "name": "orders-", "patternType": "prefixed"},
         "operations": ["Read"]}
    ]));
    let second = converge(&fake, &v2).await;
    assert_eq!(second.create, vec![]);
    assert_eq!(second.delete.len(), 1);
    assert_eq!(second.delete[0].operation, 4);
    let left = fake.acls.lock().unwrap().clone();
    assert_eq!(left.len(), 3);
    // Bob's binding was never touched.
    assert!(left.contains(&foreign()));
    let note = acl_change_note("User:alice", &second);
    assert_eq!(
        note,
        "ACLs of User:alice: deleted 1 (allow User:alice Write topic orders (literal) from *)"
    );
}

#[tokio::test]
async fn scram_written_once_per_password() {
    let fake = FakeCluster::default();
    let mut recorded: Option<String> = None;
    for (password, writes) in [("pw1", 1), ("pw1", 1), ("pw2", 2), ("pw2", 2)] {
        let existing = fake.describe_scram_credentials("alice").await.unwrap();
        if scram_write(&existing, recorded.as_deref(), "alice", password).is_some() {
            let upsert = ScramUpsert::sha512(password, b"salt", SCRAM_ITERATIONS);
            fake.upsert_scram_credential("alice", &upsert)
                .await
                .unwrap();
        }
        recorded = Some(crate::plan::user::password_fingerprint("alice", password));
        assert_eq!(*fake.upserts.lock().unwrap(), writes, "after {password}");
    }
    // The cluster lost it (recreated): written again with the same password.
    fake.scram.lock().unwrap().clear();
    let existing = fake.describe_scram_credentials("alice").await.unwrap();
    assert_eq!(
        scram_write(&existing, recorded.as_deref(), "alice", "pw2"),
        Some(ScramWrite::Missing)
    );
}

#[tokio::test]
async fn deletion_removes_acls_and_credential_of_the_principal_only() {
    let fake = FakeCluster::default();
    fake.acls.lock().unwrap().insert(foreign());
    converge(
        &fake,
        &spec(serde_json::json!([
            {"resource": {"type": "topic", "name": "orders"}, "operations": ["All"]}
        ])),
    )
    .await;
    fake.upsert_scram_credential("alice", &ScramUpsert::sha512("pw", b"s", 4096))
        .await
        .unwrap();
    let what = remove_user(
        &fake,
        "alice",
        "User:alice",
        UserAuthenticationType::ScramSha512,
    )
    .await
    .unwrap();
    assert_eq!(
        what,
        "1 ACL binding of User:alice and its SCRAM-SHA-512 credential"
    );
    assert!(fake.scram.lock().unwrap().is_empty());
    assert_eq!(
        fake.acls
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .collect::<Vec<_>>(),
        vec![foreign()]
    );
    // A TLS user has no credential in the cluster.
    let what = remove_user(&fake, "bob", "User:CN=bob", UserAuthenticationType::Tls)
        .await
        .unwrap();
    assert_eq!(what, "0 ACL bindings of User:CN=bob");
}

#[tokio::test]
async fn deletion_on_a_cluster_without_security_has_nothing_to_remove() {
    let fake = FakeCluster {
        fail_with: Some(SECURITY_DISABLED),
        ..Default::default()
    };
    let what = remove_user(
        &fake,
        "alice",
        "User:alice",
        UserAuthenticationType::ScramSha512,
    )
    .await
    .unwrap();
    assert_eq!(what, "0 ACL bindings of User:alice");
    // Any other refusal is retried.
    let fake = FakeCluster {
        fail_with: Some(CLUSTER_AUTHORIZATION_FAILED),
        ..Default::default()
    };
    assert!(
        remove_user(&fake, "a", "User:a", UserAuthenticationType::Tls)
            .await
            .is_err()
    );
}

#[test]
fn failures_become_reasons() {
    let kafka = |code| {
        Error::Kafka(
            KafkaError::from_code("AlterUserScramCredentials", Some("alice"), code, None)
                .unwrap()
                .into(),
        )
    };
    let cases = [
        (
            kafka(UNSUPPORTED_SASL_MECHANISM),
            "UnsupportedMechanism",
            "do not take SCRAM-SHA-512",
        ),
        (
            kafka(SECURITY_DISABLED),
            "SecurityDisabled",
            "KafkaCluster kc is not secured",
        ),
        (
            kafka(CLUSTER_AUTHORIZATION_FAILED),
            "NotAuthorized",
            "may not manage users",
        ),
        (kafka(42), "KafkaError", "INVALID_REQUEST"),
        (
            Error::Kafka(AdminError::Connect {
                addresses: "kc-bootstrap:9092".into(),
                reason: "refused".into(),
            }),
            "ClusterUnreachable",
            "cannot reach KafkaCluster kc: cannot connect to any of kc-bootstrap:9092: refused",
        ),
        (
            Error::Waiting("Secret kc-operator-cert does not exist yet".into()),
            "OperatorCertificateNotReady",
            "cannot connect to KafkaCluster kc yet: Secret kc-operator-cert does not exist yet",
        ),
        (
            Error::Kafka(AdminError::UnsupportedVersion {
                api: "DescribeAcls",
                min: 1,
                max: 3,
            }),
            "UnsupportedVersion",
            "DescribeAcls: the broker does not serve versions 1..=3",
        ),
    ];
    for (e, reason, text) in cases {
        let (r, m) = classify(&e, "kc");
        assert_eq!(r, reason, "{m}");
        assert!(m.contains(text), "{m}");
    }
}

#[test]
fn clusters_without_typed_listeners_have_no_authenticated_listener() {
    let kc: KafkaCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "samsa.dev/v1alpha1", "kind": "KafkaCluster",
        "metadata": {"name": "kc", "namespace": "ns"},
        "spec": {"brokers": 3, "version": "0.1.0"}
    }))
    .unwrap();
    let l = cluster_listeners(&kc, "kc", "ns");
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].bootstrap, "kc-bootstrap.ns.svc:9092");
    assert_eq!(listener_for(&l, UserAuthenticationType::ScramSha512), None);
    assert_eq!(listener_for(&l, UserAuthenticationType::Tls), None);
}

#[test]
fn typed_listeners_name_the_users_listener() {
    let kc: KafkaCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "samsa.dev/v1alpha1", "kind": "KafkaCluster",
        "metadata": {"name": "kc", "namespace": "ns"},
        "spec": {"brokers": 3, "listeners": {"kafka": [
            {"name": "plain", "port": 9092},
            {"name": "sasl", "port": 9094, "tls": true,
             "authentication": {"type": "scram-sha-512"}},
            {"name": "mtls", "port": 9093, "tls": true, "authentication": {"type": "tls"}}
        ]}, "tls": {"issuer": {"name": "letsencrypt"}}}
    }))
    .unwrap();
    let l = cluster_listeners(&kc, "kc", "ns");
    let scram = listener_for(&l, UserAuthenticationType::ScramSha512).unwrap();
    assert_eq!(
        (scram.name.as_str(), scram.bootstrap.as_str(), scram.tls),
        ("sasl", "kc-bootstrap.ns.svc:9094", true)
    );
    let tls = listener_for(&l, UserAuthenticationType::Tls).unwrap();
    assert_eq!(tls.bootstrap, "kc-bootstrap.ns.svc:9093");
    // The brokers' certificates come from cert-manager: its Secret has their CA.
    assert_eq!(broker_ca_secret(&kc, "kc"), "kc-broker-tls");
    let mut own = kc.clone();
    own.spec.tls = None;
    assert_eq!(broker_ca_secret(&own, "kc"), "kc-cluster-ca");
}

#[test]
fn the_refused_name_is_the_operators_certificate_name() {
    assert_eq!(
        crate::crd::OPERATOR_USER,
        crate::plan::security::OPERATOR_CN
    );
    assert_eq!(
        crate::plan::security::OPERATOR_PRINCIPAL,
        format!("User:CN={}", crate::crd::OPERATOR_USER)
    );
}
