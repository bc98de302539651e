//! SASL on a single broker, byte by byte: what a SASL listener serves before authentication,
//! PLAIN and refusals with their Kafka codes, SaslHandshake v0's bare tokens, and ACLs taking
//! effect for the authenticated principal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::RawClient;
use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, ApiVersionsRequest, CreateAclsRequest, MetadataRequest,
    SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use samsa_broker::config::Mechanisms;
use samsa_broker::security::scram::{ScramCredential, ScramMechanism};
use samsa_broker::server::RunningBroker;

const PASSWORD: &str = "alice-secret";

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A broker with a PLAINTEXT listener (anonymous super user) and a SASL_PLAINTEXT one with
/// PLAIN and SCRAM-SHA-512, the authorizer on, and alice's SCRAM-SHA-512 credential.
async fn broker(dir: &std::path::Path) -> (RunningBroker, std::net::SocketAddr) {
    let broker = common::broker_with(dir, |c| {
        c.listen = "127.0.0.1:0".parse().unwrap();
        c.listeners = Some("PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0".into());
        c.sasl_enabled_mechanisms = Mechanisms(vec!["PLAIN".into(), "SCRAM-SHA-512".into()]);
        c.authorizer_enable = true;
        c.super_users = "User:ANONYMOUS".into();
    })
    .await;
    let sasl = broker.listener_addrs[1].1;
    // What kafka-configs sends: salt and SaltedPassword; the broker derives its keys.
    let salt = vec![3u8; 24];
    let salted = salted_password(PASSWORD, &salt, 4096);
    let mut admin = RawClient::connect(broker.kafka_addr).await;
    let r = admin
        .call(
            0,
            &AlterUserScramCredentialsRequest::default().with_upsertions(vec![
                ScramCredentialUpsertion::default()
                    .with_name(s("alice"))
                    .with_mechanism(2)
                    .with_iterations(4096)
                    .with_salt(salt.into())
                    .with_salted_password(salted.into()),
            ]),
        )
        .await;
    assert_eq!(r.results[0].error_code, 0, "{r:?}");
    (broker, sasl)
}

/// SaltedPassword = Hi(password, salt, i) of RFC 5802, by way of the broker's own credential
/// maker: the credential from the password must equal the one from the salted password.
fn salted_password(password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    use hmac::Hmac;
    use sha2::Sha512;
    let mut out = vec![0u8; 64];
    pbkdf2::pbkdf2::<Hmac<Sha512>>(password.as_bytes(), salt, iterations, &mut out).unwrap();
    let from_password = ScramCredential::new(ScramMechanism::Sha512, password, salt.to_vec(), 4096);
    let from_salted =
        ScramCredential::from_salted_password(ScramMechanism::Sha512, &out, salt.to_vec(), 4096);
    assert!(from_password == from_salted);
    out
}

async fn plain(c: &mut RawClient, user: &str, password: &str) -> i16 {
    let hs = c
        .call(
            1,
            &SaslHandshakeRequest::default().with_mechanism(s("PLAIN")),
        )
        .await;
    assert_eq!(hs.error_code, 0, "{hs:?}");
    let token = format!("\0{user}\0{password}");
    let r = c
        .call(
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(token.into_bytes().into()),
        )
        .await;
    if r.error_code != 0 {
        assert!(
            r.error_message
                .as_ref()
                .is_some_and(|m| m.contains("Authentication failed")),
            "{r:?}"
        );
    }
    r.error_code
}

fn metadata_of(topic: &str) -> MetadataRequest {
    MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(s(topic).into()))
        ]))
        .with_allow_auto_topic_creation(false)
}

#[tokio::test]
async fn sasl_listener_serves_nothing_before_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, sasl) = broker(dir.path()).await;

    // ApiVersions is served, and lists the SASL APIs.
    let mut c = RawClient::connect(sasl).await;
    let v = c.call(3, &ApiVersionsRequest::default()).await;
    assert!(v
        .api_keys
        .iter()
        .any(|k| k.api_key == 17 && k.min_version == 0));
    assert!(v.api_keys.iter().any(|k| k.api_key == 36));
    // Metadata before authenticating closes the connection.
    c.send(9, &MetadataRequest::default()).await;
    assert!(
        c.is_closed().await,
        "a request before authentication must close"
    );

    // An unknown mechanism: UNSUPPORTED_SASL_MECHANISM with the enabled ones.
    let mut c = RawClient::connect(sasl).await;
    let hs = c
        .call(
            1,
            &SaslHandshakeRequest::default().with_mechanism(s("GSSAPI")),
        )
        .await;
    assert_eq!(hs.error_code, 33);
    let mechanisms: Vec<&str> = hs.mechanisms.iter().map(|m| m.as_str()).collect();
    assert_eq!(mechanisms, ["PLAIN", "SCRAM-SHA-512"]);

    // A wrong password: SASL_AUTHENTICATION_FAILED, then the connection closes.
    let mut c = RawClient::connect(sasl).await;
    assert_eq!(plain(&mut c, "alice", "nope").await, 58);
    assert!(c.is_closed().await);
    // An unknown user: the same code and message.
    let mut c = RawClient::connect(sasl).await;
    assert_eq!(plain(&mut c, "mallory", PASSWORD).await, 58);

    // SaslHandshake on a PLAINTEXT listener: ILLEGAL_SASL_STATE.
    let mut c = RawClient::connect(broker.kafka_addr).await;
    let hs = c
        .call(
            1,
            &SaslHandshakeRequest::default().with_mechanism(s("PLAIN")),
        )
        .await;
    assert_eq!(hs.error_code, 34);
    broker.shutdown().await;
}

#[tokio::test]
async fn the_authenticated_principal_gets_what_its_acls_allow() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, sasl) = broker(dir.path()).await;
    let mut admin = RawClient::connect(broker.kafka_addr).await;
    common::create_topic(&mut admin, "orders", &[]).await;
    common::create_topic(&mut admin, "secret", &[]).await;
    let r = admin
        .call(
            3,
            &CreateAclsRequest::default().with_creations(vec![AclCreation::default()
                .with_resource_type(2)
                .with_resource_name(s("orders"))
                .with_resource_pattern_type(3)
                .with_principal(s("User:alice"))
                .with_host(s("*"))
                .with_operation(8)
                .with_permission_type(3)]),
        )
        .await;
    assert_eq!(r.results[0].error_code, 0);

    let mut c = RawClient::connect(sasl).await;
    assert_eq!(plain(&mut c, "alice", PASSWORD).await, 0);
    let m = c.call(9, &metadata_of("orders")).await;
    assert_eq!(m.topics[0].error_code, 0, "{m:?}");
    let m = c.call(9, &metadata_of("secret")).await;
    assert_eq!(m.topics[0].error_code, 29, "{m:?}");
    // A listing shows only what alice may describe.
    let all = c
        .call(9, &MetadataRequest::default().with_topics(None))
        .await;
    let names: Vec<String> = all
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect();
    assert_eq!(names, ["orders"]);

    // SaslHandshake v0: the PLAIN token goes as a bare frame, the answer is a bare (empty) one.
    let mut c = RawClient::connect(sasl).await;
    let hs = c
        .call(
            0,
            &SaslHandshakeRequest::default().with_mechanism(s("PLAIN")),
        )
        .await;
    assert_eq!(hs.error_code, 0);
    let token = format!("\0alice\0{PASSWORD}").into_bytes();
    let mut frame = (token.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&token);
    c.write_raw(&frame).await.unwrap();
    let reply = c.read_frame().await.expect("a bare reply");
    assert!(reply.is_empty());
    let m = c.call(9, &metadata_of("orders")).await;
    assert_eq!(m.topics[0].error_code, 0);
    broker.shutdown().await;
}
