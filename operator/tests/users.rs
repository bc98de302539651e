//! KafkaUser against a real kube-apiserver (etcd + kube-apiserver started by the test, no
//! nodes) and the operator binary: the CRD installs, a user gets the finalizer and a Ready=False
//! condition naming what is missing (its cluster; a listener of its authentication; the
//! brokers), a Warning event; a TLS user gets its certificate and Secret; a user that never
//! reached its cluster is deleted at once, one that did when its cluster goes. No broker runs:
//! the Kafka side is unit-tested against a fake (src/reconcile/user_tests.rs). Skipped (with a message) where the Kubernetes
//! binaries are not built and SAMSA_SKIP_K8S_TESTS=1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use samsa_operator::certs::{subject, Ca};
use samsa_operator::crd::{KafkaCluster, KafkaUser};
use serde_json::json;

use common::k8s::{plane_with_crds, Operator};

/// The Ready condition's (status, reason, message).
fn ready(ku: &KafkaUser) -> Option<(String, String, String)> {
    ku.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test]
async fn users_report_what_they_lack_and_delete_cleanly() {
    let Some(plane) = plane_with_crds().await else {
        return;
    };
    let client = plane.client.clone();
    let log = std::fs::File::create(plane.dir.path().join("operator.log")).unwrap();
    // No broker listens here: a request to Kafka would fail (and the test with it).
    let nowhere = format!("127.0.0.1:{}", common::free_port());
    let _operator = Operator(
        Command::new(env!("CARGO_BIN_EXE_samsa-operator"))
            .env("KUBECONFIG", &plane.kubeconfig)
            .args([
                "--metrics-listen",
                &format!("127.0.0.1:{}", common::free_port()),
            ])
            .args(["--kafka-bootstrap", &nowhere])
            .args([
                "--leader-election",
                "false",
                "--metrics-interval-seconds",
                "0",
            ])
            .args(["--log", "samsa_operator=debug,info"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start samsa-operator"),
    );

    let users: Api<KafkaUser> = Api::namespaced(client.clone(), "default");
    let user = |name: &str, cluster: &str| -> KafkaUser {
        serde_json::from_value(json!({
            "apiVersion": "samsa.dev/v1alpha1", "kind": "KafkaUser",
            "metadata": {"name": name},
            "spec": {"clusterRef": {"name": cluster},
                     "authentication": {"type": "scram-sha-512"},
                     "authorization": {"acls": [
                         {"resource": {"type": "topic", "name": "orders"}, "operations": ["Read"]}
                     ]}}
        }))
        .unwrap()
    };

    // The apiserver refuses the operator's own name.
    let refused = users
        .create(&PostParams::default(), &user("samsa-operator", "kc"))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("operator's own principal"),
        "{refused}"
    );

    // No such cluster.
    users
        .create(&PostParams::default(), &user("alice", "kc"))
        .await
        .unwrap();
    common::wait_for(
        "alice is Ready=False ClusterNotFound with the finalizer",
        Duration::from_secs(30),
        async || {
            users.get("alice").await.is_ok_and(|u| {
                u.metadata
                    .finalizers
                    .iter()
                    .flatten()
                    .any(|f| f == "samsa.dev/user")
                    && ready(&u).is_some_and(|(s, r, m)| {
                        s == "False"
                            && r == "ClusterNotFound"
                            && m
                                == "spec.clusterRef.name: KafkaCluster kc does not exist in default"
                    })
            })
        },
    )
    .await;

    // A cluster with only its plaintext listener: nothing a SCRAM user can log in to.
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), "default");
    let kc: KafkaCluster = serde_json::from_value(json!({
        "apiVersion": "samsa.dev/v1alpha1", "kind": "KafkaCluster",
        "metadata": {"name": "kc"}, "spec": {"brokers": 1}
    }))
    .unwrap();
    clusters.create(&PostParams::default(), &kc).await.unwrap();
    // The cluster's arrival does not trigger the user: its next look (30 s) does; a spec
    // change triggers one now.
    users
        .patch(
            "alice",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"authorization": {"acls": []}}})),
        )
        .await
        .unwrap();
    common::wait_for(
        "alice is Ready=False ClusterNotSecured",
        Duration::from_secs(30),
        async || {
            users.get("alice").await.is_ok_and(|u| {
                ready(&u).is_some_and(|(s, r, m)| {
                    s == "False"
                        && r == "ClusterNotSecured"
                        && m.contains(
                            "KafkaCluster kc has no listener with authentication scram-sha-512",
                        )
                }) && u.status.as_ref().unwrap().observed_generation == u.metadata.generation
            })
        },
    )
    .await;
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    common::wait_for(
        "a Warning event says ClusterNotSecured",
        Duration::from_secs(30),
        async || {
            events.list(&ListParams::default()).await.is_ok_and(|l| {
                l.items.iter().any(|e| {
                    e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("alice")
                        && e.type_.as_deref() == Some("Warning")
                        && e.reason.as_deref() == Some("ClusterNotSecured")
                })
            })
        },
    )
    .await;

    // A SCRAM listener (SASL_PLAINTEXT) and an mTLS one make the cluster secured: its
    // reconcile makes the CAs and the operator's certificate.
    clusters
        .patch(
            "kc",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"listeners": {"kafka": [
                {"name": "sasl", "port": 9095, "authentication": {"type": "scram-sha-512"}},
                {"name": "mtls", "port": 9096, "tls": true, "authentication": {"type": "tls"}}
            ]}}})),
        )
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    for name in ["kc-clients-ca", "kc-cluster-ca", "kc-operator-cert"] {
        common::wait_for(
            &format!("Secret {name} exists"),
            Duration::from_secs(60),
            async || secrets.get_opt(name).await.is_ok_and(|s| s.is_some()),
        )
        .await;
    }
    let ca_of = async |name: &str| {
        let data = secrets.get(name).await.unwrap().data.unwrap();
        let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
        Ca {
            cert_pem: text("ca.crt"),
            key_pem: text("ca.key"),
        }
    };
    let clients_ca = ca_of("kc-clients-ca").await;
    let cluster_ca = ca_of("kc-cluster-ca").await;
    users
        .patch(
            "alice",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"authorization": {"acls": [
                {"resource": {"type": "topic", "name": "orders"}, "operations": ["Read"]}
            ]}}})),
        )
        .await
        .unwrap();
    common::wait_for(
        "alice is Ready=False ClusterUnreachable",
        Duration::from_secs(30),
        async || {
            users.get("alice").await.is_ok_and(|u| {
                ready(&u).is_some_and(|(s, r, m)| {
                    s == "False"
                        && r == "ClusterUnreachable"
                        && m.starts_with("cannot reach KafkaCluster kc: cannot connect to any of")
                })
            })
        },
    )
    .await;
    // Its credential never reached the cluster, so it has no Secret yet.
    assert!(secrets.get_opt("alice").await.unwrap().is_none());

    // A TLS user gets its certificate and Secret before the ACLs (which need the brokers).
    let bob: KafkaUser = serde_json::from_value(json!({
        "apiVersion": "samsa.dev/v1alpha1", "kind": "KafkaUser",
        "metadata": {"name": "bob"},
        "spec": {"clusterRef": {"name": "kc"}, "authentication": {"type": "tls"}}
    }))
    .unwrap();
    users.create(&PostParams::default(), &bob).await.unwrap();
    common::wait_for("Secret bob exists", Duration::from_secs(30), async || {
        secrets.get_opt("bob").await.is_ok_and(|s| s.is_some())
    })
    .await;
    let secret = secrets.get("bob").await.unwrap();
    let text = |k: &str| String::from_utf8(secret.data.as_ref().unwrap()[k].0.clone()).unwrap();
    assert!(clients_ca.signed(&text("user.crt")));
    assert_eq!(subject(&text("user.crt")).unwrap(), "CN=bob");
    assert_eq!(text("ca.crt"), cluster_ca.cert_pem);
    assert_eq!(text("bootstrap.servers"), "kc-bootstrap.default.svc:9096");
    assert!(text("client.properties").contains("\nsecurity.protocol=SSL\n"));
    let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("KafkaUser", "bob", Some(true))
    );
    assert_eq!(
        secret.metadata.labels.as_ref().unwrap()["samsa.dev/user"],
        "bob"
    );

    // Never provisioned: deletion needs nothing from Kafka (which is unreachable here).
    users
        .delete("alice", &DeleteParams::default())
        .await
        .unwrap();
    common::wait_for("alice is gone", Duration::from_secs(30), async || {
        users.get_opt("alice").await.is_ok_and(|u| u.is_none())
    })
    .await;
    // Bob reached the cluster: his finalizer waits for the brokers (unreachable), until the
    // cluster itself is deleted.
    users.delete("bob", &DeleteParams::default()).await.unwrap();
    common::wait_for(
        "bob is held by his finalizer and says why",
        Duration::from_secs(30),
        async || {
            events.list(&ListParams::default()).await.is_ok_and(|l| {
                l.items.iter().any(|e| {
                    e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("bob")
                        && e.reason.as_deref() == Some("ClusterUnreachable")
                })
            })
        },
    )
    .await;
    assert!(users.get_opt("bob").await.unwrap().is_some());
    clusters
        .delete("kc", &DeleteParams::default())
        .await
        .unwrap();
    common::wait_for(
        "bob is gone with his cluster",
        Duration::from_secs(60),
        async || users.get_opt("bob").await.is_ok_and(|u| u.is_none()),
    )
    .await;
}
