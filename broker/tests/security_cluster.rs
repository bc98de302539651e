//! SCRAM credentials and ACLs in a three-broker cluster: what one broker is given, every broker
//! serves (the controllers' metadata, streamed to the brokers as deltas), also after a restart;
//! and the authorizer answers the Kafka error codes on every broker.

mod common;

use std::time::Duration;

use common::cluster::Cluster;
use common::RawClient;
use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest,
    DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;

const SHA512: i8 = 2;
const TOPIC: i8 = 2;
const LITERAL: i8 = 3;
const READ: i8 = 3;
const ALLOW: i8 = 3;
const ANY: i8 = 1;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// alice's SCRAM-SHA-512 iterations as broker `c` describes them (None: no credential).
async fn iterations(c: &mut RawClient) -> Option<i32> {
    let r = c
        .call(
            0,
            &DescribeUserScramCredentialsRequest::default()
                .with_users(Some(vec![UserName::default().with_name(s("alice"))])),
        )
        .await;
    assert_eq!(r.error_code, 0);
    let user = &r.results[0];
    if user.error_code == 91 {
        return None;
    }
    assert_eq!(user.error_code, 0, "{user:?}");
    user.credential_infos
        .iter()
        .find(|i| i.mechanism == SHA512)
        .map(|i| i.iterations)
}

/// The (principal, resource, operation) of every ACL broker `c` describes.
async fn acls(c: &mut RawClient) -> Vec<(String, String, i8)> {
    let r = c
        .call(
            3,
            &DescribeAclsRequest::default()
                .with_resource_type_filter(ANY)
                .with_resource_name_filter(None)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_pattern_type_filter(ANY)
                .with_operation(ANY)
                .with_permission_type(ANY),
        )
        .await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    r.resources
        .iter()
        .flat_map(|res| {
            res.acls.iter().map(|a| {
                (
                    a.principal.to_string(),
                    res.resource_name.to_string(),
                    a.operation,
                )
            })
        })
        .collect()
}

/// Polls `$cond` (an expression that may await) every 50 ms until it holds, for 20 s at most.
macro_rules! eventually {
    ($what:expr, $cond:expr) => {{
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !$cond {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {}",
                $what
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credentials_and_acls_reach_every_broker_and_survive_restarts() {
    // The plaintext listener's anonymous principal is the super user that manages the rest.
    let mut cluster = Cluster::start_with(&[
        "--authorizer-enable",
        "true",
        "--super-users",
        "User:ANONYMOUS",
    ])
    .await;
    let mut one = cluster.client(1).await;
    let r = one
        .call(
            0,
            &AlterUserScramCredentialsRequest::default().with_upsertions(vec![
                ScramCredentialUpsertion::default()
                    .with_name(s("alice"))
                    .with_mechanism(SHA512)
                    .with_iterations(8192)
                    .with_salt(vec![7u8; 16].into())
                    .with_salted_password(vec![9u8; 64].into()),
            ]),
        )
        .await;
    assert_eq!((r.results.len(), r.results[0].error_code), (1, 0), "{r:?}");
    let r = one
        .call(
            3,
            &CreateAclsRequest::default().with_creations(vec![AclCreation::default()
                .with_resource_type(TOPIC)
                .with_resource_name(s("orders"))
                .with_resource_pattern_type(LITERAL)
                .with_principal(s("User:alice"))
                .with_host(s("*"))
                .with_operation(READ)
                .with_permission_type(ALLOW)]),
        )
        .await;
    assert_eq!(r.results[0].error_code, 0, "{r:?}");
    let want = vec![("User:alice".to_string(), "orders".to_string(), READ)];
    for id in 1..=3 {
        let mut c = cluster.client(id).await;
        eventually!(
            format!("broker {id} to know alice's credential"),
            iterations(&mut c).await == Some(8192)
        );
        eventually!(
            format!("broker {id} to know alice's ACL"),
            acls(&mut c).await == want
        );
    }

    // A broker that was down while a credential changed gets the change from the controllers.
    cluster.stop(3).await;
    let r = one
        .call(
            0,
            &AlterUserScramCredentialsRequest::default().with_upsertions(vec![
                ScramCredentialUpsertion::default()
                    .with_name(s("alice"))
                    .with_mechanism(SHA512)
                    .with_iterations(4096)
                    .with_salt(vec![8u8; 16].into())
                    .with_salted_password(vec![1u8; 64].into()),
            ]),
        )
        .await;
    assert_eq!(r.results[0].error_code, 0, "{r:?}");
    cluster.restart(3).await;
    let mut three = cluster.client(3).await;
    eventually!(
        "restarted broker 3 to know alice's new credential and the ACL",
        iterations(&mut three).await == Some(4096) && acls(&mut three).await == want
    );

    // Deleting on broker 2 removes everywhere; an unknown user is RESOURCE_NOT_FOUND.
    let mut two = cluster.client(2).await;
    let r = two
        .call(
            3,
            &DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
                .with_resource_type_filter(TOPIC)
                .with_resource_name_filter(Some(s("orders")))
                .with_pattern_type_filter(LITERAL)
                .with_principal_filter(Some(s("User:alice")))
                .with_host_filter(None)
                .with_operation(ANY)
                .with_permission_type(ANY)]),
        )
        .await;
    assert_eq!(r.filter_results[0].error_code, 0);
    assert_eq!(r.filter_results[0].matching_acls.len(), 1);
    eventually!("broker 1 to drop the ACL", acls(&mut one).await.is_empty());
    let r = two
        .call(
            0,
            &DescribeUserScramCredentialsRequest::default()
                .with_users(Some(vec![UserName::default().with_name(s("mallory"))])),
        )
        .await;
    assert_eq!(r.results[0].error_code, 91, "{r:?}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_an_authorizer_the_acl_apis_answer_security_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::broker(dir.path()).await;
    let mut c = RawClient::connect(broker.kafka_addr).await;
    let r = c
        .call(
            3,
            &DescribeAclsRequest::default()
                .with_resource_type_filter(ANY)
                .with_resource_name_filter(None)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_pattern_type_filter(ANY)
                .with_operation(ANY)
                .with_permission_type(ANY),
        )
        .await;
    assert_eq!(r.error_code, 54, "{r:?}");
    broker.shutdown().await;
}
