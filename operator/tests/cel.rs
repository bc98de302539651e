//! The CEL rules of the generated CRDs, evaluated client-side (kube's `cel` feature) on the
//! same schema the apiserver gets: each rule compiles, passes valid objects and refuses
//! invalid ones with a message naming the field.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kube::core::cel::Validator;
use kube::CustomResourceExt;
use samsa_operator::crd::{KafkaCluster, KafkaTopic, KafkaUser};
use serde_json::{json, Value};

fn schema<K: CustomResourceExt>() -> Value {
    let crd = K::crd();
    let v = &crd.spec.versions[0];
    serde_json::to_value(
        v.schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap()
}

/// The messages of the failed rules (empty when the object is accepted).
fn check<K: CustomResourceExt>(obj: Value, old: Option<Value>) -> Vec<String> {
    match Validator::new().validate(&schema::<K>(), &obj, old.as_ref()) {
        Ok(()) => vec![],
        Err(errs) => errs.iter().map(|e| e.message.clone()).collect(),
    }
}

fn topic(spec: Value) -> Value {
    json!({"apiVersion": "samsa.dev/v1alpha1", "kind": "KafkaTopic",
           "metadata": {"name": "orders"}, "spec": spec})
}

fn cluster(spec: Value) -> Value {
    json!({"apiVersion": "samsa.dev/v1alpha1", "kind": "KafkaCluster",
           "metadata": {"name": "kc"}, "spec": spec})
}

#[test]
fn topic_minimal_is_accepted() {
    assert_eq!(
        check::<KafkaTopic>(topic(json!({"clusterRef": {"name": "kc"}})), None),
        Vec::<String>::new()
    );
}

#[test]
fn topic_ranges() {
    let errs = check::<KafkaTopic>(
        topic(json!({"clusterRef": {"name": "kc"}, "partitions": 0, "replicationFactor": 0})),
        None,
    );
    assert_eq!(
        errs,
        vec![
            "spec.partitions must be between 1 and 100000",
            "spec.replicationFactor must be between 1 and 32"
        ]
    );
}

#[test]
fn topic_min_isr_below_rf() {
    let spec = |isr: &str| {
        topic(json!({"clusterRef": {"name": "kc"}, "replicationFactor": 3,
                     "config": {"min.insync.replicas": isr}}))
    };
    assert_eq!(
        check::<KafkaTopic>(spec("3"), None),
        vec!["spec.config[min.insync.replicas] must be less than spec.replicationFactor"]
    );
    assert!(check::<KafkaTopic>(spec("2"), None).is_empty());
}

#[test]
fn topic_assignment_shape() {
    let errs = check::<KafkaTopic>(
        topic(
            json!({"clusterRef": {"name": "kc"}, "partitions": 2, "replicationFactor": 2,
                     "assignment": [[0, 1]]}),
        ),
        None,
    );
    assert_eq!(
        errs,
        vec!["spec.assignment must have one entry per partition (spec.partitions)"]
    );
    let errs = check::<KafkaTopic>(
        topic(
            json!({"clusterRef": {"name": "kc"}, "partitions": 2, "replicationFactor": 2,
                     "assignment": [[0, 1], [1]]}),
        ),
        None,
    );
    assert_eq!(
        errs,
        vec!["each spec.assignment entry must list spec.replicationFactor brokers"]
    );
    let ok = topic(
        json!({"clusterRef": {"name": "kc"}, "partitions": 2, "replicationFactor": 2,
                          "assignment": [[0, 1], [1, 2]]}),
    );
    assert!(check::<KafkaTopic>(ok, None).is_empty());
}

#[test]
fn topic_transitions() {
    let old = topic(json!({"clusterRef": {"name": "kc"}, "partitions": 4}));
    let grown = topic(json!({"clusterRef": {"name": "kc"}, "partitions": 6}));
    assert!(check::<KafkaTopic>(grown, Some(old.clone())).is_empty());
    let shrunk = topic(json!({"clusterRef": {"name": "kc"}, "partitions": 2}));
    assert_eq!(
        check::<KafkaTopic>(shrunk, Some(old.clone())),
        vec!["spec.partitions cannot decrease: Kafka cannot remove partitions"]
    );
    let moved = topic(json!({"clusterRef": {"name": "other"}, "partitions": 4}));
    assert_eq!(
        check::<KafkaTopic>(moved, Some(old.clone())),
        vec!["spec.clusterRef is immutable"]
    );
    let renamed = topic(json!({"clusterRef": {"name": "kc"}, "partitions": 4, "topicName": "x"}));
    assert_eq!(
        check::<KafkaTopic>(renamed, Some(old.clone())),
        vec!["spec.topicName is immutable"]
    );
    // The operator moves replicas for a new replication factor.
    let rf = topic(json!({"clusterRef": {"name": "kc"}, "partitions": 4, "replicationFactor": 2}));
    assert!(check::<KafkaTopic>(rf, Some(old)).is_empty());
}

#[test]
fn cluster_minimal_is_accepted() {
    assert_eq!(
        check::<KafkaCluster>(cluster(json!({})), None),
        Vec::<String>::new()
    );
}

#[test]
fn cluster_rules() {
    let errs = check::<KafkaCluster>(
        cluster(json!({"brokers": 1, "controllers": 3,
                       "config": {"node.id": "4", "min.insync.replicas": "2"},
                       "listeners": {"client": 9093}})),
        None,
    );
    let mut errs = errs;
    errs.sort();
    assert_eq!(
        errs,
        vec![
            "spec.config must not set node.id, broker.id, process.roles, listeners, advertised.listeners, controller.quorum.voters, controller.listener.names, log.dirs, log.dir or broker.rack: the operator sets them",
            "spec.config[min.insync.replicas] must not exceed spec.brokers",
            "spec.controllers must not exceed spec.brokers",
            "spec.listeners.client, spec.listeners.controller and spec.listeners.replication must be different ports",
        ]
    );
    let errs = check::<KafkaCluster>(cluster(json!({"storage": {"size": "ten"}})), None);
    assert_eq!(
        errs,
        vec!["spec.storage.size must be a quantity such as 10Gi"]
    );
}

#[test]
fn cluster_transitions() {
    let old = cluster(json!({"brokers": 3, "controllers": 3, "storage": {"size": "10Gi"}}));
    let scaled = cluster(json!({"brokers": 5, "controllers": 3, "storage": {"size": "10Gi"}}));
    assert!(check::<KafkaCluster>(scaled, Some(old.clone())).is_empty());
    let mut errs = check::<KafkaCluster>(
        cluster(json!({"brokers": 5, "controllers": 5, "storage": {"size": "20Gi"}})),
        Some(old),
    );
    errs.sort();
    assert_eq!(
        errs,
        vec![
            "spec.controllers is immutable: the metadata quorum's voters are fixed when the cluster is created",
            "spec.storage is immutable: StatefulSet volume claim templates cannot change",
        ]
    );
}

#[test]
fn cluster_config_keys_must_be_broker_settings() {
    let errs = check::<KafkaCluster>(
        cluster(json!({"config": {"log.retention.minutes": "5"}})),
        None,
    );
    assert_eq!(
        errs,
        vec!["spec.config may only hold settings samsa-broker takes, by their Kafka names (see samsa-broker --help)"]
    );
    let ok = cluster(json!({"config": {"log.retention.ms": "5", "num.partitions": "3"}}));
    assert!(check::<KafkaCluster>(ok, None).is_empty());
}

#[test]
fn cluster_upgrade_settings() {
    let ok = cluster(json!({"upgrade": {"paused": true,
        "rolling": {"maxParallel": 2, "minIsrHeadroom": 1, "minReadySeconds": 30,
                    "brokerReadyTimeout": "1h30m"},
        "consumerHealth": {"enabled": false, "groups": ["billing"], "maxLagSeconds": 60}}}));
    assert_eq!(check::<KafkaCluster>(ok, None), Vec::<String>::new());
    let bad = cluster(json!({"upgrade": {
        "rolling": {"maxParallel": 0, "minIsrHeadroom": -1, "brokerReadyTimeout": "soon"},
        "consumerHealth": {"maxLagSeconds": 0}}}));
    let mut errs = check::<KafkaCluster>(bad, None);
    errs.sort();
    assert_eq!(
        errs,
        vec![
            "spec.upgrade.consumerHealth.maxLagSeconds must be at least 1",
            "spec.upgrade.rolling.brokerReadyTimeout must be a duration such as 5m, 90s or 1h30m",
            "spec.upgrade.rolling.maxParallel must be between 1 and 1000",
            "spec.upgrade.rolling.minIsrHeadroom must be between 0 and 100",
        ]
    );
}

#[test]
fn cluster_security_is_accepted() {
    let ok = cluster(json!({
        "listeners": {"kafka": [
            {"name": "tls", "port": 9093, "tls": true, "authentication": {"type": "tls"}},
            {"name": "scram", "port": 9095, "tls": true, "authentication": {"type": "scram-sha-512"}},
            {"name": "plain", "port": 9092}
        ], "controller": 9193, "replication": 9194},
        "authorization": {"type": "simple", "superUsers": ["User:CN=admin", "User:alice"]},
        "tls": {"issuer": {"name": "ca", "kind": "ClusterIssuer"}, "validityDays": 90, "renewBeforeDays": 10},
        "networkPolicy": {"enabled": false}
    }));
    assert_eq!(check::<KafkaCluster>(ok, None), Vec::<String>::new());
}

#[test]
fn cluster_listener_rules() {
    let mut errs = check::<KafkaCluster>(
        cluster(json!({
            "listeners": {"kafka": [
                {"name": "Bad", "port": 9200},
                {"name": "metrics", "port": 9201},
                {"name": "tls", "port": 9093, "authentication": {"type": "tls"}},
                {"name": "tls", "port": 9091, "tls": true}
            ]},
            "metrics": {"port": 9201}
        })),
        None,
    );
    errs.sort();
    assert_eq!(
        errs,
        vec![
            "spec.listeners.kafka names and ports must be unique",
            "spec.listeners.kafka ports must differ from spec.listeners.controller and spec.listeners.replication",
            "spec.listeners.kafka ports must differ from spec.metrics.port and, when the cluster is secured, from 9091 (the operator's CONTROLPLANE listener)",
            "spec.listeners.kafka[].authentication.type tls needs tls: true (client certificates are a TLS feature)",
            "spec.listeners.kafka[].name must be lower-case letters, digits and single dashes, starting with a letter (at most 15 characters)",
            "spec.listeners.kafka[].name must not be controller, replication, metrics or controlplane",
        ]
    );
    // 9091 is only the operator's on a secured cluster.
    let plain = cluster(json!({"listeners": {"kafka": [{"name": "plain", "port": 9091}]}}));
    assert_eq!(check::<KafkaCluster>(plain, None), Vec::<String>::new());
}

#[test]
fn cluster_authorization_and_tls_rules() {
    let mut errs = check::<KafkaCluster>(
        cluster(json!({
            "authorization": {"type": "simple", "superUsers": ["alice", "User:a;User:b"]},
            "tls": {"validityDays": 30, "renewBeforeDays": 30}
        })),
        None,
    );
    errs.sort();
    assert_eq!(
        errs,
        vec![
            "spec.authorization.superUsers must be principals such as User:alice (no ';')",
            "spec.tls.renewBeforeDays must be less than spec.tls.validityDays",
        ]
    );
}

fn user(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "samsa.dev/v1alpha1", "kind": "KafkaUser",
           "metadata": {"name": name}, "spec": spec})
}

fn scram_user(acls: Value) -> Value {
    user(
        "alice",
        json!({"clusterRef": {"name": "kc"}, "authentication": {"type": "scram-sha-512"},
               "authorization": {"acls": acls}}),
    )
}

#[test]
fn user_minimal_and_full_are_accepted() {
    assert!(check::<KafkaUser>(scram_user(json!([])), None).is_empty());
    let full = user(
        "orders-app",
        json!({"clusterRef": {"name": "kc"},
        "authentication": {"type": "scram-sha-512",
            "password": {"valueFrom": {"secretKeyRef": {"name": "pw", "key": "password"}}}},
        "authorization": {"acls": [
            {"resource": {"type": "topic", "name": "orders"}, "operations": ["Read", "Write", "Describe"]},
            {"resource": {"type": "group", "name": "orders-", "patternType": "prefixed"}, "operations": ["All"], "type": "deny", "host": "10.0.0.1"},
            {"resource": {"type": "cluster"}, "operations": ["IdempotentWrite"]},
            {"resource": {"type": "cluster", "name": "kafka-cluster"}, "operations": ["Describe"]},
            {"resource": {"type": "transactionalId", "name": "tx"}, "operations": ["Write"]}
        ]}}),
    );
    assert_eq!(check::<KafkaUser>(full, None), Vec::<String>::new());
}

#[test]
fn user_names() {
    let spec = json!({"clusterRef": {"name": "kc"}, "authentication": {"type": "tls"}});
    assert_eq!(
        check::<KafkaUser>(user("samsa-operator", spec.clone()), None),
        vec!["metadata.name: samsa-operator (the operator's own principal) and ANONYMOUS (every unauthenticated client) are reserved"]
    );
    assert_eq!(
        check::<KafkaUser>(user(&"a".repeat(65), spec.clone()), None),
        vec!["metadata.name is the user name: 1-64 characters of a-z, A-Z, 0-9, '.', '_' or '-'"]
    );
    assert!(check::<KafkaUser>(user(&"a".repeat(64), spec), None).is_empty());
}

#[test]
fn user_acl_rules() {
    let errs = check::<KafkaUser>(
        scram_user(json!([
            {"resource": {"type": "topic"}, "operations": ["Read"]},
            {"resource": {"type": "cluster", "name": "other"}, "operations": ["Alter"]},
            {"resource": {"type": "cluster", "patternType": "prefixed"}, "operations": ["Alter"]},
            {"resource": {"type": "group", "name": ""}, "operations": ["Read"], "host": ""}
        ])),
        None,
    );
    assert_eq!(
        errs,
        vec![
            "spec.authorization.acls[].resource.name is required unless the type is cluster",
            "spec.authorization.acls[].resource.name of the cluster resource can only be kafka-cluster",
            "spec.authorization.acls[].resource.patternType of the cluster resource must be literal",
            "spec.authorization.acls[].host must be * or an IP address",
            "spec.authorization.acls[].resource.name must be 1-255 characters",
        ]
    );
}

#[test]
fn user_authentication_rules() {
    let tls_with_password = user(
        "alice",
        json!({"clusterRef": {"name": "kc"},
               "authentication": {"type": "tls",
                   "password": {"valueFrom": {"secretKeyRef": {"name": "pw", "key": "p"}}}}}),
    );
    assert_eq!(
        check::<KafkaUser>(tls_with_password, None),
        vec!["spec.authentication.password is only for type scram-sha-512"]
    );
    let old = scram_user(json!([]));
    let mut new = old.clone();
    new["spec"]["authentication"]["type"] = json!("tls");
    new["spec"]["clusterRef"]["name"] = json!("other");
    let mut errs = check::<KafkaUser>(new, Some(old));
    errs.sort();
    assert_eq!(
        errs,
        vec![
            "spec.authentication.type is immutable: delete the KafkaUser and create it again",
            "spec.clusterRef is immutable",
        ]
    );
}

#[test]
fn user_example_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/kafkauser.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let obj: Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(check::<KafkaUser>(obj.clone(), None), Vec::<String>::new());
    let ku: KafkaUser = serde_json::from_value(obj).unwrap();
    assert_eq!(ku.spec.validate(&ku.user_name()), vec![]);
    assert_eq!(ku.spec.principal(&ku.user_name()), "User:orders-app");
    assert_eq!(ku.spec.authorization.acls.len(), 3);
}
