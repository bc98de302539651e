//! The operator's SCRAM and ACL admin calls (what the KafkaUser reconcile does) against a real
//! `samsa-broker` with its authorizer on: a credential the operator salts is one the broker
//! authenticates with (PLAIN over SASL_PLAINTEXT checks the password against it), ACLs are
//! created, described and deleted exactly, and a principal without rights is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use samsa_operator::kafka::acl::{PATTERN_LITERAL, PATTERN_PREFIXED, PERMISSION_ALLOW};
use samsa_operator::kafka::{
    AclBinding, AdminClient, ScramCredentialInfo, ScramUpsert, SecurityAdmin, SCRAM_ITERATIONS,
};

const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const READ: i8 = 3;
const WRITE: i8 = 4;

/// PLAIN authentication of `user`/`password` on the SASL listener `addr`: the SASL error code
/// (0: authenticated).
async fn plain_login(addr: &str, user: &str, password: &str) -> i16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let hs = common::call_on(
        &mut stream,
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
    )
    .await;
    assert_eq!(hs.error_code, 0, "{hs:?}");
    let token = format!("\0{user}\0{password}");
    let auth = common::call_on(
        &mut stream,
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(token.into_bytes().into()),
    )
    .await;
    auth.error_code
}

fn binding(resource_type: i8, name: &str, pattern: i8, operation: i8) -> AclBinding {
    AclBinding {
        resource_type,
        resource_name: name.into(),
        pattern_type: pattern,
        principal: "User:alice".into(),
        host: "*".into(),
        operation,
        permission: PERMISSION_ALLOW,
    }
}

#[tokio::test]
async fn scram_credentials_and_acls_on_a_real_broker() {
    let sasl_port = common::free_port();
    let broker = common::single_broker_with_args(&[
        "--listeners",
        &format!("PLAINTEXT://127.0.0.1:{{port}},SASL_PLAINTEXT://127.0.0.1:{sasl_port}"),
        "--sasl-enabled-mechanisms",
        "SCRAM-SHA-512,PLAIN",
        "--authorizer-enable",
        "true",
        "--super-users",
        "User:ANONYMOUS",
    ])
    .await;
    let sasl = format!("127.0.0.1:{sasl_port}");
    let admin = AdminClient::new(&broker.addr(), Duration::from_secs(5));

    assert!(admin
        .describe_scram_credentials("alice")
        .await
        .unwrap()
        .is_empty());
    let salt = [5u8; 32];
    admin
        .upsert_scram_credential(
            "alice",
            &ScramUpsert::sha512("alice-secret", &salt, SCRAM_ITERATIONS),
        )
        .await
        .unwrap();
    assert_eq!(
        admin.describe_scram_credentials("alice").await.unwrap(),
        vec![ScramCredentialInfo {
            mechanism: 2,
            iterations: SCRAM_ITERATIONS as i32
        }]
    );
    // The broker takes the operator's salted password for the password it was made from.
    assert_eq!(plain_login(&sasl, "alice", "alice-secret").await, 0);
    assert_eq!(plain_login(&sasl, "alice", "wrong").await, 58);

    let want = vec![
        binding(TOPIC, "orders", PATTERN_LITERAL, READ),
        binding(TOPIC, "orders", PATTERN_LITERAL, WRITE),
        binding(GROUP, "orders-", PATTERN_PREFIXED, READ),
    ];
    admin.create_acls(&want).await.unwrap();
    let mut got = admin.describe_acls("User:alice").await.unwrap();
    got.sort_by_key(|b| (b.resource_type, b.operation));
    assert_eq!(got, want);
    assert!(admin.describe_acls("User:bob").await.unwrap().is_empty());
    assert_eq!(admin.delete_acls(&want[1..2]).await.unwrap(), 1);
    assert_eq!(admin.describe_acls("User:alice").await.unwrap().len(), 2);
    assert_eq!(admin.delete_principal_acls("User:alice").await.unwrap(), 2);
    assert!(admin.describe_acls("User:alice").await.unwrap().is_empty());

    admin.delete_scram_credential("alice", 2).await.unwrap();
    assert!(admin
        .describe_scram_credentials("alice")
        .await
        .unwrap()
        .is_empty());
    // Deleting what is gone is not an error (a KafkaUser deleted twice).
    admin.delete_scram_credential("alice", 2).await.unwrap();
    assert_eq!(plain_login(&sasl, "alice", "alice-secret").await, 58);
}

#[tokio::test]
async fn a_principal_without_rights_gets_cluster_authorization_failed() {
    // Anonymous is no super user here: the operator's calls are refused with Kafka's code.
    let broker = common::single_broker_with_args(&["--authorizer-enable", "true"]).await;
    let admin = AdminClient::new(&broker.addr(), Duration::from_secs(5));
    let e = admin
        .create_acls(&[binding(TOPIC, "orders", PATTERN_LITERAL, READ)])
        .await
        .unwrap_err();
    assert_eq!(
        e.kafka().map(|k| k.name.as_str()),
        Some("CLUSTER_AUTHORIZATION_FAILED"),
        "{e}"
    );
}
