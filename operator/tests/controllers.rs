//! The operator binary against a real kube-apiserver (etcd + kube-apiserver started by the
//! test, no nodes) and a real `samsa-broker`: CRDs install, a KafkaCluster gets its objects
//! and status, a KafkaTopic is created, grown, altered and deleted in the broker, the Lease
//! is held, and /metrics counts the reconciles. Skipped (with a message) where the Kubernetes
//! binaries are not built.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Service, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use samsa_operator::crd::{KafkaCluster, KafkaTopic};
use samsa_operator::kafka::AdminClient;
use serde_json::json;

use common::k8s::{plane_with_crds, Operator};

fn ready(conditions: Option<&Vec<samsa_operator::crd::Condition>>) -> Option<(String, String)> {
    conditions?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.message.clone()))
}

/// A real control plane with the CRDs installed and established; `None` (the test returns)
/// where the Kubernetes binaries are not built and SAMSA_SKIP_K8S_TESTS=1 says to skip.

#[tokio::test]
async fn operator_reconciles_against_a_real_api_server() {
    let Some(plane) = plane_with_crds().await else {
        return;
    };
    let client = plane.client.clone();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());

    // Node id 2, so that a scale-down below three brokers would remove the broker holding
    // the test's topics.
    let broker = common::single_broker_with_id(2).await;
    let metrics_port = common::free_port();
    let log = std::fs::File::create(plane.dir.path().join("operator.log")).unwrap();
    let _operator = Operator(
        Command::new(env!("CARGO_BIN_EXE_samsa-operator"))
            .env("KUBECONFIG", &plane.kubeconfig)
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
            .args(["--kafka-bootstrap", &broker.addr()])
            .args([
                "--identity",
                "test-operator",
                "--lease-namespace",
                "default",
            ])
            .args(["--log-format", "json", "--log", "samsa_operator=debug,info"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start samsa-operator"),
    );

    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), "default");
    let topics: Api<KafkaTopic> = Api::namespaced(client.clone(), "default");
    let kc: KafkaCluster = serde_json::from_value(json!({
        "apiVersion": "samsa.dev/v1alpha1", "kind": "KafkaCluster",
        "metadata": {"name": "kc"},
        "spec": {"brokers": 1, "config": {"log.retention.ms": "3600000"}}
    }))
    .unwrap();
    clusters.create(&PostParams::default(), &kc).await.unwrap();

    // The cluster's objects appear, owned by the KafkaCluster, with its status.
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    common::wait_for(
        "StatefulSet kc exists",
        Duration::from_secs(30),
        async || sets.get_opt("kc").await.is_ok_and(|s| s.is_some()),
    )
    .await;
    let sts = sets.get("kc").await.unwrap();
    assert_eq!(sts.spec.as_ref().unwrap().replicas, Some(1));
    let owner = &sts.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("KafkaCluster", "kc")
    );
    let managers: Vec<String> = sts
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        managers.contains(&"samsa-operator".to_string()),
        "{managers:?}"
    );
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    assert!(services.get_opt("kc-headless").await.unwrap().is_some());
    assert!(services.get_opt("kc-bootstrap").await.unwrap().is_some());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = cms.get("kc-config").await.unwrap();
    assert_eq!(cm.data.unwrap()["SAMSA_LOG_RETENTION_MS"], "3600000");
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    assert!(pdbs.get_opt("kc").await.unwrap().is_some());
    common::wait_for(
        "KafkaCluster status reports broker 0",
        Duration::from_secs(30),
        async || {
            clusters.get_status("kc").await.is_ok_and(|k| {
                k.status.is_some_and(|s| {
                    s.observed_generation == Some(1)
                        && s.brokers.len() == 1
                        && s.controllers == Some(1)
                        && s.conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "False")
                })
            })
        },
    )
    .await;

    // Rack awareness: the brokers get a rack file, and each scheduled broker pod the rack
    // annotation from its node's label. No kubelet or StatefulSet controller runs here, so the
    // test makes the nodes and two broker pods itself (as scheduled pods look).
    clusters
        .patch(
            "kc",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"rack": {"topologyKey": "topology.kubernetes.io/zone"}}}),
            ),
        )
        .await
        .unwrap();
    common::wait_for(
        "the StatefulSet's brokers read a rack file",
        Duration::from_secs(30),
        async || {
            sets.get("kc").await.is_ok_and(|s| {
                s.spec.unwrap().template.spec.unwrap().containers[0]
                    .env
                    .iter()
                    .flatten()
                    .any(|e| {
                        e.name == "SAMSA_BROKER_RACK_FILE"
                            && e.value.as_deref() == Some("/etc/samsa/rack/rack")
                    })
            })
        },
    )
    .await;
    let nodes: Api<Node> = Api::all(client.clone());
    for (node, zone) in [("n1", Some("zone-a")), ("n2", None)] {
        let labels = match zone {
            Some(z) => json!({"kubernetes.io/hostname": node, "topology.kubernetes.io/zone": z}),
            None => json!({"kubernetes.io/hostname": node}),
        };
        let n: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": node, "labels": labels}
        }))
        .unwrap();
        nodes.create(&PostParams::default(), &n).await.unwrap();
    }
    // Pods need their namespace's default ServiceAccount (no controller-manager makes it here).
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    let account: ServiceAccount = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}
    }))
    .unwrap();
    accounts
        .create(&PostParams::default(), &account)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for (i, node) in [(0, "n1"), (1, "n2")] {
        let p: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("kc-{i}"), "labels": {
                "app.kubernetes.io/name": "samsa", "app.kubernetes.io/component": "broker",
                "app.kubernetes.io/managed-by": "samsa-operator", "samsa.dev/cluster": "kc",
                "apps.kubernetes.io/pod-index": i.to_string()}},
            "spec": {"nodeName": node, "containers": [{"name": "broker", "image": "samsa-broker:test"}]}
        }))
        .unwrap();
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    let rack_of = async |pod: &str| {
        pods.get(pod)
            .await
            .ok()
            .and_then(|p| p.metadata.annotations)
            .and_then(|a| a.get("samsa.dev/rack").cloned())
    };
    common::wait_for(
        "broker pod kc-0 on node n1 has rack zone-a",
        Duration::from_secs(30),
        async || rack_of("kc-0").await.as_deref() == Some("zone-a"),
    )
    .await;
    common::wait_for(
        "KafkaCluster status shows broker 0's rack",
        Duration::from_secs(30),
        async || {
            clusters.get_status("kc").await.is_ok_and(|k| {
                k.status.is_some_and(|s| {
                    s.brokers.first().and_then(|b| b.rack.as_deref()) == Some("zone-a")
                })
            })
        },
    )
    .await;
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let has_event = async |reason: &str, text: &str| {
        events.list(&Default::default()).await.is_ok_and(|l| {
            l.items.iter().any(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.note.as_deref().is_some_and(|n| n.contains(text))
            })
        })
    };
    common::wait_for(
        "a RackUnknown Warning names node n2 and the label",
        Duration::from_secs(30),
        async || {
            has_event(
                "RackUnknown",
                "node n2 has no topology.kubernetes.io/zone label (spec.rack.topologyKey): broker pod kc-1",
            )
            .await
        },
    )
    .await;
    assert_eq!(rack_of("kc-1").await, None, "kc-1's node has no rack label");
    assert!(has_event("RackAssigned", "broker pod kc-0 on node n1: rack zone-a").await);
    // Once the node has the label, the pod gets its rack (a pod change triggers a reconcile).
    nodes
        .patch(
            "n2",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {"topology.kubernetes.io/zone": "zone-b"}}}),
            ),
        )
        .await
        .unwrap();
    pods.patch(
        "kc-1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"touched": "1"}}})),
    )
    .await
    .unwrap();
    common::wait_for(
        "broker pod kc-1 on node n2 has rack zone-b",
        Duration::from_secs(30),
        async || rack_of("kc-1").await.as_deref() == Some("zone-b"),
    )
    .await;
    assert_eq!(rack_of("kc-0").await.as_deref(), Some("zone-a"));

    // A topic: created in the broker with its partitions and config; status lists partitions.
    let kt: KafkaTopic = serde_json::from_value(json!({
        "apiVersion": "samsa.dev/v1alpha1", "kind": "KafkaTopic",
        "metadata": {"name": "orders"},
        "spec": {"clusterRef": {"name": "kc"}, "partitions": 3, "replicationFactor": 1,
                 "config": {"retention.ms": "86400000"}}
    }))
    .unwrap();
    topics.create(&PostParams::default(), &kt).await.unwrap();
    common::wait_for(
        "KafkaTopic orders is Ready with 3 partitions",
        Duration::from_secs(30),
        async || {
            topics.get_status("orders").await.is_ok_and(|t| {
                t.status.is_some_and(|s| {
                    ready(Some(&s.conditions)).is_some_and(|(st, _)| st == "True")
                        && s.partitions.len() == 3
                })
            })
        },
    )
    .await;
    let admin = AdminClient::new(&broker.addr(), Duration::from_secs(10));
    let observed = admin.describe_topic("orders").await.unwrap().unwrap();
    assert_eq!(observed.partitions.len(), 3);
    assert_eq!(observed.config["retention.ms"], "86400000");

    // Grow it and change its config.
    topics
        .patch(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"partitions": 5, "config": {"retention.ms": null, "segment.bytes": "1048576"}}})),
        )
        .await
        .unwrap();
    common::wait_for(
        "the broker has 5 partitions and the new config",
        Duration::from_secs(30),
        async || {
            admin.describe_topic("orders").await.is_ok_and(|o| {
                o.is_some_and(|o| {
                    o.partitions.len() == 5
                        && o.config.get("segment.bytes").map(String::as_str) == Some("1048576")
                        && !o.config.contains_key("retention.ms")
                })
            })
        },
    )
    .await;

    // A second KafkaTopic naming the same topic: refused in its status, changes nothing, and
    // deleting it leaves the topic to the first.
    let dup: KafkaTopic = serde_json::from_value(json!({
        "apiVersion": "samsa.dev/v1alpha1", "kind": "KafkaTopic",
        "metadata": {"name": "orders-again"},
        "spec": {"clusterRef": {"name": "kc"}, "topicName": "orders", "partitions": 7,
                 "replicationFactor": 1}
    }))
    .unwrap();
    topics.create(&PostParams::default(), &dup).await.unwrap();
    common::wait_for(
        "KafkaTopic orders-again reports the duplicate",
        Duration::from_secs(30),
        async || {
            topics.get_status("orders-again").await.is_ok_and(|t| {
                t.status.is_some_and(|s| {
                    ready(Some(&s.conditions)).is_some_and(|(st, m)| {
                        st == "False"
                            && m.starts_with("spec.topicName: topic orders of KafkaCluster kc is already managed by KafkaTopic orders;")
                    })
                })
            })
        },
    )
    .await;
    topics
        .delete("orders-again", &DeleteParams::default())
        .await
        .unwrap();
    common::wait_for(
        "KafkaTopic orders-again is gone",
        Duration::from_secs(30),
        async || {
            topics
                .get_opt("orders-again")
                .await
                .is_ok_and(|t| t.is_none())
        },
    )
    .await;
    let after = admin.describe_topic("orders").await.unwrap().unwrap();
    assert_eq!(after.partitions.len(), 5, "the duplicate changed nothing");

    // The API server refuses a decrease with a message naming the field.
    let err = topics
        .patch(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"partitions": 2}})),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("spec.partitions cannot decrease"),
        "{err}"
    );

    // RF above the cluster's brokers: a condition naming spec.replicationFactor.
    let wide: KafkaTopic = serde_json::from_value(json!({
        "apiVersion": "samsa.dev/v1alpha1", "kind": "KafkaTopic",
        "metadata": {"name": "wide"},
        "spec": {"clusterRef": {"name": "kc"}, "replicationFactor": 3}
    }))
    .unwrap();
    topics.create(&PostParams::default(), &wide).await.unwrap();
    common::wait_for("KafkaTopic wide reports its replication factor", Duration::from_secs(30), async || {
        topics.get_status("wide").await.is_ok_and(|t| {
            t.status.is_some_and(|s| {
                ready(Some(&s.conditions)).is_some_and(|(st, m)| {
                    st == "False" && m.contains("spec.replicationFactor: must not exceed the cluster's brokers (3 > 1)")
                })
            })
        })
    })
    .await;

    // A dynamic broker setting changed in spec.config reaches the running broker at once
    // (IncrementalAlterConfigs on BROKER ""), without a pod-template change.
    let hash_before = sets
        .get("kc")
        .await
        .unwrap()
        .spec
        .unwrap()
        .template
        .metadata
        .unwrap()
        .annotations;
    clusters
        .patch(
            "kc",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"config": {"log.retention.ms": "7200000"}}})),
        )
        .await
        .unwrap();
    let admin_live = AdminClient::new(&broker.addr(), Duration::from_secs(10));
    common::wait_for(
        "the broker's log.retention.ms is 7200000, a dynamic default",
        Duration::from_secs(30),
        async || {
            admin_live
                .describe_configs(samsa_operator::kafka::RESOURCE_BROKER, "2")
                .await
                .is_ok_and(|entries| {
                    entries.iter().any(|e| {
                        e.name == "log.retention.ms"
                            && e.value.as_deref() == Some("7200000")
                            && e.source == 3
                    })
                })
        },
    )
    .await;
    assert!(
        has_event(
            "ConfigUpdated",
            "applied log.retention.ms to the running brokers without a restart"
        )
        .await
    );
    let hash_after = sets
        .get("kc")
        .await
        .unwrap()
        .spec
        .unwrap()
        .template
        .metadata
        .unwrap()
        .annotations;
    assert_eq!(
        hash_before, hash_after,
        "a dynamic change must not restart the brokers"
    );

    // spec.metrics.serviceMonitor: without the ServiceMonitor kind a Warning says so; with it
    // (a stand-in CRD of that group and kind, schema-less, as no Prometheus Operator runs here)
    // the operator applies one; turned off, it deletes its own.
    clusters
        .patch(
            "kc",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"metrics": {"serviceMonitor": true}}})),
        )
        .await
        .unwrap();
    common::wait_for(
        "a ServiceMonitorUnavailable Warning",
        Duration::from_secs(30),
        async || {
            has_event(
                "ServiceMonitorUnavailable",
                "spec.metrics.serviceMonitor is true but the cluster has no ServiceMonitor kind",
            )
            .await
        },
    )
    .await;
    let sm_crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
        "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
                 "names": {"plural": "servicemonitors", "singular": "servicemonitor",
                           "kind": "ServiceMonitor", "listKind": "ServiceMonitorList"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                   "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .unwrap();
    crds.create(&PostParams::default(), &sm_crd).await.unwrap();
    let monitors: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"),
            "servicemonitors",
        ),
    );
    let mut nudge = 0;
    common::wait_for(
        "ServiceMonitor kc scrapes the brokers' metrics port",
        Duration::from_secs(60),
        async || {
            // A change of the KafkaCluster makes the operator look again.
            nudge += 1;
            let _ = clusters
                .patch(
                    "kc",
                    &PatchParams::default(),
                    &Patch::Merge(
                        json!({"metadata": {"annotations": {"test/nudge": nudge.to_string()}}}),
                    ),
                )
                .await;
            monitors
                .get_opt("kc")
                .await
                .ok()
                .flatten()
                .is_some_and(|sm| {
                    sm.data["spec"]["endpoints"][0]["port"] == "metrics"
                        && sm.data["spec"]["selector"]["matchLabels"]["samsa.dev/cluster"] == "kc"
                        && sm
                            .metadata
                            .owner_references
                            .as_ref()
                            .is_some_and(|o| o[0].name == "kc")
                })
        },
    )
    .await;
    clusters
        .patch(
            "kc",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"metrics": {"serviceMonitor": false}}})),
        )
        .await
        .unwrap();
    common::wait_for(
        "ServiceMonitor kc is deleted once turned off",
        Duration::from_secs(30),
        async || monitors.get_opt("kc").await.is_ok_and(|sm| sm.is_none()),
    )
    .await;

    // Scale-down safety: removing brokers that hold no replica goes ahead; removing the broker
    // that holds the topics' replicas (id 2) waits, with the reason in the status.
    let big: KafkaCluster = serde_json::from_value(json!({
        "apiVersion": "samsa.dev/v1alpha1", "kind": "KafkaCluster",
        "metadata": {"name": "big"},
        "spec": {"brokers": 4, "controllers": 1}
    }))
    .unwrap();
    clusters.create(&PostParams::default(), &big).await.unwrap();
    let replicas_of = async |name: &str| {
        sets.get_opt(name)
            .await
            .ok()
            .flatten()
            .and_then(|s| s.spec.and_then(|s| s.replicas))
    };
    common::wait_for(
        "StatefulSet big has 4 replicas",
        Duration::from_secs(30),
        async || replicas_of("big").await == Some(4),
    )
    .await;
    let brokers = |n: i32| Patch::Merge(json!({"spec": {"brokers": n}}));
    clusters
        .patch("big", &PatchParams::default(), &brokers(3))
        .await
        .unwrap();
    common::wait_for(
        "StatefulSet big scales down to 3 (broker 3 holds no replica)",
        Duration::from_secs(30),
        async || replicas_of("big").await == Some(3),
    )
    .await;
    clusters
        .patch("big", &PatchParams::default(), &brokers(2))
        .await
        .unwrap();
    common::wait_for(
        "KafkaCluster big says why broker 2 stays",
        Duration::from_secs(30),
        async || {
            clusters.get_status("big").await.is_ok_and(|k| {
                k.status.is_some_and(|s| {
                    s.conditions.iter().any(|c| {
                        c.type_ == "Ready"
                            && c.status == "False"
                            && c.reason == "ScaleDownBlocked"
                            && c.message.starts_with(
                                "spec.brokers: cannot go from 3 to 2 brokers yet: broker 2 holds replicas of orders-0, orders-1, orders-2, orders-3, orders-4",
                            )
                    })
                })
            })
        },
    )
    .await;
    assert_eq!(replicas_of("big").await, Some(3), "broker 2 must stay");
    assert!(
        events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("ScaleDownBlocked")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("big")
            }),
        "a ScaleDownBlocked Warning on big"
    );
    clusters
        .delete("big", &DeleteParams::default())
        .await
        .unwrap();

    // A topic made outside any KafkaTopic is left alone.
    admin
        .create_topic(&samsa_operator::kafka::NewTopic {
            name: "outside".into(),
            partitions: 1,
            replication_factor: 1,
            assignment: None,
            config: Default::default(),
        })
        .await
        .unwrap();

    // Deleting the KafkaTopic deletes the Kafka topic (policy Delete), then the finalizer goes.
    topics
        .delete("orders", &DeleteParams::default())
        .await
        .unwrap();
    common::wait_for(
        "KafkaTopic orders is gone",
        Duration::from_secs(30),
        async || topics.get_opt("orders").await.is_ok_and(|t| t.is_none()),
    )
    .await;
    assert_eq!(admin.describe_topic("orders").await.unwrap(), None);
    assert!(admin.describe_topic("outside").await.unwrap().is_some());

    // The Lease names this replica; /metrics counts reconciles of both kinds.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let lease = leases.get("samsa-operator").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("test-operator")
    );
    let body = http_get(metrics_port, "/metrics").await;
    for kind in ["KafkaCluster", "KafkaTopic"] {
        let line = body
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "samsa_operator_reconciles_total{{kind=\"{kind}\",result=\"ok\"}}"
                ))
            })
            .unwrap_or_else(|| panic!("no ok reconciles of {kind} in\n{body}"));
        let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n >= 1, "{line}");
    }
    assert!(http_get(metrics_port, "/healthz").await.ends_with("ok\n"));
}

async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// `status` is written by server-side apply: a field a later status leaves out is gone from
/// the stored object (a JSON merge patch of the same struct, which skips absent fields, would
/// leave it).
#[tokio::test]
async fn status_apply_clears_fields_it_no_longer_has() {
    let Some(plane) = plane_with_crds().await else {
        return;
    };
    let client = plane.client.clone();
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), "default");
    common::wait_for(
        "the KafkaCluster kind is served",
        Duration::from_secs(60),
        async || {
            let kc = KafkaCluster::new("st", Default::default());
            clusters.create(&PostParams::default(), &kc).await.is_ok()
                || clusters.get_opt("st").await.ok().flatten().is_some()
        },
    )
    .await;

    let mut status = samsa_operator::crd::KafkaClusterStatus {
        target_version: Some("0.2.0".into()),
        current_version: Some("0.1.0".into()),
        rollout: Some(samsa_operator::crd::RolloutStatus {
            blocked_reason: Some("ConsumerLagging".into()),
            in_progress: vec![1],
            ..Default::default()
        }),
        ..Default::default()
    };
    samsa_operator::reconcile::apply_status(&clusters, "st", &status)
        .await
        .unwrap();
    let stored = clusters.get_status("st").await.unwrap().status.unwrap();
    assert_eq!(stored.target_version.as_deref(), Some("0.2.0"));
    assert_eq!(
        stored.rollout.as_ref().unwrap().blocked_reason.as_deref(),
        Some("ConsumerLagging")
    );

    // The roll is over: the target and the block are cleared.
    status.target_version = None;
    status.current_version = Some("0.2.0".into());
    if let Some(r) = status.rollout.as_mut() {
        r.blocked_reason = None;
        r.in_progress.clear();
    }
    samsa_operator::reconcile::apply_status(&clusters, "st", &status)
        .await
        .unwrap();
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &kube::api::ApiResource::erase::<KafkaCluster>(&()),
    );
    let stored = raw.get_status("st").await.unwrap();
    let st = &stored.data["status"];
    assert!(st.get("targetVersion").is_none(), "{st}");
    assert_eq!(st["currentVersion"], "0.2.0");
    assert!(st["rollout"].get("blockedReason").is_none(), "{st}");
    assert_eq!(st["rollout"]["inProgress"], json!([]));
}
