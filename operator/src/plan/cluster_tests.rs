use super::*;
use crate::crd::{KafkaClusterSpec, RackSpec};

fn cluster(spec: KafkaClusterSpec) -> KafkaCluster {
    let mut kc = KafkaCluster::new("kc", spec);
    kc.metadata.namespace = Some("ns".into());
    kc.metadata.uid = Some("uid-1".into());
    kc
}

/// The objects of the first broker set, at the spec's image, with the default voters.
fn objects(kc: &KafkaCluster, controllers: i32) -> Result<ClusterObjects, PlanError> {
    let ctx = PlanContext::default();
    let template = SetTemplate::from_spec(BrokerSet::first("kc"), &kc.spec, &ctx);
    let voters = quorum_voters("kc", "ns", controllers, kc.spec.listeners.controller, &ctx);
    desired_objects(kc, &template, controllers, &voters, &ctx)
}

fn plan(spec: KafkaClusterSpec) -> ClusterObjects {
    let kc = cluster(spec);
    let c = kc.spec.initial_controllers();
    objects(&kc, c).unwrap()
}

fn env_of(o: &ClusterObjects) -> BTreeMap<String, String> {
    let c = &o
        .stateful_set
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    c.env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| {
            let v = match (&e.value, &e.value_from) {
                (Some(v), _) => v.clone(),
                (None, Some(f)) => format!("fieldRef:{}", f.field_ref.as_ref().unwrap().field_path),
                _ => String::new(),
            };
            (e.name.clone(), v)
        })
        .collect()
}

fn pod_spec(o: &ClusterObjects) -> &PodSpec {
    o.stateful_set
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
}

fn restart_hash(o: &ClusterObjects) -> String {
    o.stateful_set
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap()[RESTART_HASH_ANNOTATION]
        .clone()
}

#[test]
fn names_labels_and_owner() {
    let o = plan(KafkaClusterSpec::default());
    assert_eq!(o.config_map.metadata.name.as_deref(), Some("kc-config"));
    assert_eq!(o.headless.metadata.name.as_deref(), Some("kc-headless"));
    assert_eq!(o.bootstrap.metadata.name.as_deref(), Some("kc-bootstrap"));
    assert_eq!(o.stateful_set.metadata.name.as_deref(), Some("kc"));
    assert_eq!(o.pdb.metadata.name.as_deref(), Some("kc"));
    for m in [
        &o.config_map.metadata,
        &o.headless.metadata,
        &o.bootstrap.metadata,
        &o.stateful_set.metadata,
        &o.pdb.metadata,
    ] {
        assert_eq!(m.namespace.as_deref(), Some("ns"));
        let owners = m.owner_references.as_ref().unwrap();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].kind, "KafkaCluster");
        assert_eq!(owners[0].api_version, "samsa.dev/v1alpha1");
        assert_eq!(owners[0].uid, "uid-1");
        assert_eq!(owners[0].controller, Some(true));
        let labels = m.labels.as_ref().unwrap();
        assert_eq!(labels[CLUSTER_LABEL], "kc");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "samsa-operator");
    }
    assert_eq!(
        bootstrap_address("kc", "ns", 9092),
        "kc-bootstrap.ns.svc:9092"
    );
}

#[test]
fn missing_metadata_is_an_error() {
    let mut kc = cluster(KafkaClusterSpec::default());
    kc.metadata.uid = None;
    assert_eq!(
        objects(&kc, 3),
        Err(PlanError::MissingMetadata("metadata.uid"))
    );
    kc.metadata.namespace = None;
    assert_eq!(
        objects(&kc, 3),
        Err(PlanError::MissingMetadata("metadata.namespace"))
    );
}

#[test]
fn invalid_spec_is_refused_naming_fields() {
    let mut spec = KafkaClusterSpec::default();
    spec.config
        .insert("log.retention.minutes".into(), "5".into());
    let kc = cluster(spec);
    let err = objects(&kc, 3).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid spec: spec.config[log.retention.minutes]: is not a setting samsa-broker takes (see samsa-broker --help)"
    );
}

#[test]
fn services() {
    let o = plan(KafkaClusterSpec::default());
    let h = o.headless.spec.as_ref().unwrap();
    assert_eq!(h.cluster_ip.as_deref(), Some("None"));
    assert_eq!(h.publish_not_ready_addresses, Some(true));
    let names: Vec<_> = h
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| (p.name.clone().unwrap(), p.port))
        .collect();
    assert_eq!(
        names,
        vec![
            ("kafka".to_string(), 9092),
            ("controller".to_string(), 9093),
            ("replication".to_string(), 9094),
            ("metrics".to_string(), 9404)
        ]
    );
    let b = o.bootstrap.spec.as_ref().unwrap();
    assert_eq!(b.ports.as_ref().unwrap().len(), 1);
    assert_eq!(b.ports.as_ref().unwrap()[0].port, 9092);
    assert_eq!(b.selector.as_ref().unwrap(), &selector_labels("kc"));
    assert_eq!(h.selector.as_ref().unwrap(), &selector_labels("kc"));
}

#[test]
fn broker_environment() {
    let o = plan(KafkaClusterSpec::default());
    let env = env_of(&o);
    assert_eq!(
        env["SAMSA_NODE_ID"],
        "fieldRef:metadata.labels['apps.kubernetes.io/pod-index']"
    );
    assert_eq!(env["POD_NAME"], "fieldRef:metadata.name");
    assert_eq!(
        env["SAMSA_ADVERTISED_LISTENER"],
        "$(POD_NAME).kc-headless.ns.svc.cluster.local:9092"
    );
    assert!(
        !env.contains_key("SAMSA_CONTROLLER_QUORUM_VOTERS"),
        "the voters are in the ConfigMap, so moving them restarts no pod"
    );
    assert!(!env.contains_key("SAMSA_NODE_ID_OFFSET"));
    assert!(!env.contains_key("SAMSA_CONTROLLER_ORDINALS"));
    assert_eq!(
        o.config_map.data.as_ref().unwrap()["SAMSA_CONTROLLER_QUORUM_VOTERS"],
        "0@kc-0.kc-headless.ns.svc.cluster.local:9093,1@kc-1.kc-headless.ns.svc.cluster.local:9093,2@kc-2.kc-headless.ns.svc.cluster.local:9093"
    );
    assert_eq!(env["SAMSA_LISTEN"], "0.0.0.0:9092");
    assert_eq!(env["SAMSA_CONTROLLER_LISTEN"], "0.0.0.0:9093");
    assert_eq!(env["SAMSA_REPLICATION_LISTEN"], "0.0.0.0:9094");
    assert_eq!(env["SAMSA_METRICS_LISTEN"], "0.0.0.0:9404");
    assert_eq!(env["SAMSA_DATA_DIR"], "/var/lib/samsa/data");
    // POD_NAME comes before its use in $(POD_NAME).
    let c = &pod_spec(&o).containers[0];
    assert_eq!(c.env.as_ref().unwrap()[0].name, "POD_NAME");
    assert_eq!(
        c.image.as_deref(),
        Some(format!("samsa/samsa-broker:{}", env!("CARGO_PKG_VERSION")).as_str())
    );
    assert_eq!(
        c.env_from.as_ref().unwrap()[0]
            .config_map_ref
            .as_ref()
            .unwrap()
            .name,
        "kc-config"
    );
}

#[test]
fn the_controlled_shutdown_fits_in_the_grace_period() {
    let o = plan(KafkaClusterSpec::default());
    let grace = pod_spec(&o).termination_grace_period_seconds.unwrap();
    let timeout: i64 = env_of(&o)["SAMSA_CONTROLLED_SHUTDOWN_TIMEOUT_MS"]
        .parse()
        .unwrap();
    assert!(timeout < grace * 1000, "{timeout} ms within {grace} s");
    assert_eq!(super::controlled_shutdown_ms(120), 110_000);
    assert_eq!(super::controlled_shutdown_ms(30), 22_500);
    // A value in spec.config (through the ConfigMap) is not overridden.
    let mut spec = KafkaClusterSpec::default();
    spec.config
        .insert("controlled.shutdown.timeout.ms".into(), "5000".into());
    let o = plan(spec);
    assert!(!env_of(&o).contains_key("SAMSA_CONTROLLED_SHUTDOWN_TIMEOUT_MS"));
    assert_eq!(
        o.config_map.data.as_ref().unwrap()["SAMSA_CONTROLLED_SHUTDOWN_TIMEOUT_MS"],
        "5000"
    );
}

#[test]
fn one_broker_has_one_voter_and_image_override() {
    let o = plan(KafkaClusterSpec {
        brokers: 1,
        image: Some("reg/samsa:dev".into()),
        ..Default::default()
    });
    assert_eq!(
        o.config_map.data.as_ref().unwrap()["SAMSA_CONTROLLER_QUORUM_VOTERS"],
        "0@kc-0.kc-headless.ns.svc.cluster.local:9093"
    );
    assert_eq!(
        pod_spec(&o).containers[0].image.as_deref(),
        Some("reg/samsa:dev")
    );
    assert_eq!(o.stateful_set.spec.as_ref().unwrap().replicas, Some(1));
}

#[test]
fn config_map_holds_settings_as_broker_environment() {
    let mut spec = KafkaClusterSpec::default();
    spec.config.insert("log.retention.ms".into(), "1000".into());
    spec.config.insert("num.partitions".into(), "6".into());
    let o = plan(spec);
    let data = o.config_map.data.as_ref().unwrap();
    assert_eq!(data.len(), 3, "the settings and the voters");
    assert_eq!(data["SAMSA_LOG_RETENTION_MS"], "1000");
    assert_eq!(data["SAMSA_NUM_PARTITIONS"], "6");
}

#[test]
fn statefulset_shape() {
    let mut spec = KafkaClusterSpec {
        brokers: 5,
        ..Default::default()
    };
    spec.storage.storage_class_name = Some("fast".into());
    spec.storage.size = "50Gi".into();
    let o = plan(spec);
    let s = o.stateful_set.spec.as_ref().unwrap();
    assert_eq!(s.replicas, Some(5));
    assert_eq!(s.service_name.as_deref(), Some("kc-headless"));
    assert_eq!(s.pod_management_policy.as_deref(), Some("Parallel"));
    assert_eq!(
        s.selector.match_labels.as_ref().unwrap(),
        &selector_labels("kc")
    );
    let pvc = &s.volume_claim_templates.as_ref().unwrap()[0];
    let pvc_spec = pvc.spec.as_ref().unwrap();
    assert_eq!(pvc.metadata.name.as_deref(), Some("data"));
    assert_eq!(pvc_spec.storage_class_name.as_deref(), Some("fast"));
    assert_eq!(
        pvc_spec
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap()["storage"],
        Quantity("50Gi".into())
    );
    let pod = pod_spec(&o);
    assert_eq!(pod.termination_grace_period_seconds, Some(120));
    let c = &pod.containers[0];
    let mount = &c.volume_mounts.as_ref().unwrap()[0];
    assert_eq!(
        (mount.name.as_str(), mount.mount_path.as_str()),
        ("data", "/var/lib/samsa")
    );
    let ready = c
        .readiness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(ready.path.as_deref(), Some("/readyz"));
    assert_eq!(ready.port, IntOrString::String("metrics".into()));
    let live = c
        .liveness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(live.path.as_deref(), Some("/healthz"));
    // Five brokers, three voters by default.
    assert_eq!(
        o.config_map.data.as_ref().unwrap()["SAMSA_CONTROLLER_QUORUM_VOTERS"]
            .split(',')
            .count(),
        3
    );
    let pdb = o.pdb.spec.as_ref().unwrap();
    assert_eq!(pdb.max_unavailable, Some(IntOrString::Int(1)));
}

#[test]
fn anti_affinity_modes_and_rack_spread() {
    let o = plan(KafkaClusterSpec::default());
    let aff = pod_spec(&o)
        .affinity
        .as_ref()
        .unwrap()
        .pod_anti_affinity
        .as_ref()
        .unwrap();
    let preferred = aff
        .preferred_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap();
    assert_eq!(preferred.len(), 1);
    assert_eq!(
        preferred[0].pod_affinity_term.topology_key,
        "kubernetes.io/hostname"
    );
    assert!(aff
        .required_during_scheduling_ignored_during_execution
        .is_none());
    assert!(pod_spec(&o).topology_spread_constraints.is_none());

    let o = plan(KafkaClusterSpec {
        pod_anti_affinity: AntiAffinity::Required,
        rack: Some(RackSpec {
            topology_key: "topology.kubernetes.io/zone".into(),
        }),
        ..Default::default()
    });
    let aff = pod_spec(&o)
        .affinity
        .as_ref()
        .unwrap()
        .pod_anti_affinity
        .as_ref()
        .unwrap();
    assert_eq!(
        aff.required_during_scheduling_ignored_during_execution
            .as_ref()
            .unwrap()
            .len(),
        1
    );
    let spread = pod_spec(&o).topology_spread_constraints.as_ref().unwrap();
    assert_eq!(spread.len(), 1);
    assert_eq!(spread[0].topology_key, "topology.kubernetes.io/zone");
    assert_eq!(spread[0].max_skew, 1);
    assert_eq!(spread[0].when_unsatisfiable, "DoNotSchedule");

    let o = plan(KafkaClusterSpec {
        pod_anti_affinity: AntiAffinity::None,
        ..Default::default()
    });
    assert!(pod_spec(&o).affinity.is_none());
}

#[test]
fn restart_hash_follows_static_settings_only() {
    let base = plan(KafkaClusterSpec::default());
    let mut dynamic = KafkaClusterSpec::default();
    dynamic
        .config
        .insert("log.retention.ms".into(), "5000".into());
    let dynamic = plan(dynamic);
    assert_eq!(restart_hash(&base), restart_hash(&dynamic));
    assert_ne!(base.config_map, dynamic.config_map);

    let mut stat = KafkaClusterSpec::default();
    stat.config.insert("num.partitions".into(), "3".into());
    assert_ne!(restart_hash(&base), restart_hash(&plan(stat)));

    let new_version = plan(KafkaClusterSpec {
        version: "9.9.9".into(),
        ..Default::default()
    });
    assert_ne!(restart_hash(&base), restart_hash(&new_version));
}

#[test]
fn planning_is_deterministic() {
    let mut spec = KafkaClusterSpec::default();
    spec.config.insert("num.partitions".into(), "3".into());
    assert_eq!(plan(spec.clone()), plan(spec));
}

#[test]
fn rack_awareness_gives_brokers_a_rack_file() {
    let plain = plan(KafkaClusterSpec::default());
    assert!(!env_of(&plain).contains_key("SAMSA_BROKER_RACK_FILE"));
    assert!(pod_spec(&plain).volumes.is_none());
    assert_eq!(
        pod_spec(&plain).containers[0]
            .volume_mounts
            .as_ref()
            .unwrap()
            .len(),
        1
    );

    let o = plan(KafkaClusterSpec {
        rack: Some(RackSpec {
            topology_key: "topology.kubernetes.io/zone".into(),
        }),
        ..Default::default()
    });
    assert_eq!(env_of(&o)["SAMSA_BROKER_RACK_FILE"], RACK_FILE);
    let volumes = pod_spec(&o).volumes.as_ref().unwrap();
    assert_eq!(volumes.len(), 1);
    let items = volumes[0]
        .downward_api
        .as_ref()
        .unwrap()
        .items
        .as_ref()
        .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0].field_ref.as_ref().unwrap().field_path,
        "metadata.annotations['samsa.dev/rack']"
    );
    assert_eq!(format!("{RACK_MOUNT}/{}", items[0].path), RACK_FILE);
    let mounts = pod_spec(&o).containers[0].volume_mounts.as_ref().unwrap();
    let rack = mounts.iter().find(|m| m.name == volumes[0].name).unwrap();
    assert_eq!(rack.mount_path, RACK_MOUNT);
    assert_eq!(rack.read_only, Some(true));
    // Turning rack awareness on changes the pod template: the brokers restart with it.
    assert_ne!(plain.stateful_set, o.stateful_set);
}

#[test]
fn node_rack_reads_the_topology_label() {
    let key = "topology.kubernetes.io/zone";
    let labels = BTreeMap::from([
        (key.to_string(), "zone-a".to_string()),
        ("kubernetes.io/hostname".to_string(), "n1".to_string()),
    ]);
    assert_eq!(node_rack(key, "n1", Some(&labels)).unwrap(), "zone-a");
    let err = node_rack("example.com/rack", "n1", Some(&labels)).unwrap_err();
    assert!(
        err.contains("node n1 has no example.com/rack label"),
        "{err}"
    );
    assert!(node_rack(key, "n2", None).unwrap_err().contains("node n2"));
    let empty = BTreeMap::from([(key.to_string(), " ".to_string())]);
    assert!(node_rack(key, "n3", Some(&empty))
        .unwrap_err()
        .contains("empty"));
}

#[test]
fn rack_annotation_changes_only_when_different() {
    assert_eq!(
        rack_annotation_change(None, "zone-a").as_deref(),
        Some("zone-a")
    );
    let set = BTreeMap::from([(RACK_ANNOTATION.to_string(), "zone-a".to_string())]);
    assert_eq!(rack_annotation_change(Some(&set), "zone-a"), None);
    assert_eq!(
        rack_annotation_change(Some(&set), "zone-b").as_deref(),
        Some("zone-b")
    );
    let other = BTreeMap::from([("x".to_string(), "y".to_string())]);
    assert_eq!(
        rack_annotation_change(Some(&other), "zone-a").as_deref(),
        Some("zone-a")
    );
}

#[test]
fn service_monitor_scrapes_the_brokers_metrics_port() {
    let kc = cluster(KafkaClusterSpec::default());
    let sm = service_monitor(&kc).unwrap();
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(sm["kind"], "ServiceMonitor");
    assert_eq!(sm["metadata"]["name"], "kc");
    assert_eq!(sm["metadata"]["namespace"], "ns");
    assert_eq!(sm["metadata"]["ownerReferences"][0]["kind"], "KafkaCluster");
    assert_eq!(
        sm["spec"]["selector"]["matchLabels"]["samsa.dev/cluster"],
        "kc"
    );
    assert_eq!(sm["spec"]["namespaceSelector"]["matchNames"][0], "ns");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    let relabel = &sm["spec"]["endpoints"][0]["relabelings"][0];
    assert_eq!(
        relabel["sourceLabels"][0],
        "__meta_kubernetes_service_label_samsa_dev_cluster"
    );
    assert_eq!(relabel["targetLabel"], "cluster");
    // The headless Service has that port, selected by those labels; the bootstrap has not.
    let o = plan(KafkaClusterSpec::default());
    let port_names = |svc: &Service| {
        svc.spec
            .as_ref()
            .unwrap()
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .filter_map(|p| p.name.clone())
            .collect::<Vec<_>>()
    };
    assert!(port_names(&o.headless).contains(&"metrics".to_string()));
    assert!(!port_names(&o.bootstrap).contains(&"metrics".to_string()));
    let labels = o.headless.metadata.labels.as_ref().unwrap();
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(labels.get(k).map(String::as_str), v.as_str(), "label {k}");
    }
}

#[test]
fn a_second_broker_set_has_ids_of_its_own_and_its_own_selector() {
    let kc = cluster(KafkaClusterSpec::default());
    let ctx = PlanContext::default();
    let green = SetTemplate {
        set: BrokerSet {
            name: "kc-g1".into(),
            id_offset: 1000,
        },
        image: "reg/samsa:2".into(),
        version: "2".into(),
    };
    let o = desired_objects(&kc, &green, 3, "0@a:9093", &ctx).unwrap();
    let sts = &o.stateful_set;
    assert_eq!(sts.metadata.name.as_deref(), Some("kc-g1"));
    let selector = sts
        .spec
        .as_ref()
        .unwrap()
        .selector
        .match_labels
        .clone()
        .unwrap();
    assert_eq!(selector[BROKER_SET_LABEL], "kc-g1");
    assert_eq!(selector[CLUSTER_LABEL], "kc");
    let env = env_of(&o);
    assert_eq!(env["SAMSA_NODE_ID_OFFSET"], "1000");
    assert_eq!(env["SAMSA_CONTROLLER_ORDINALS"], "3");
    assert_eq!(
        pod_spec(&o).containers[0].image.as_deref(),
        Some("reg/samsa:2")
    );
    let labels = sts
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap();
    assert_eq!(labels["app.kubernetes.io/version"], "2");
    assert_eq!(labels[BROKER_SET_LABEL], "kc-g1");
    // The first set keeps the cluster's selector (immutable), its pods carry the set label too.
    let blue = objects(&kc, 3).unwrap();
    let selector = blue
        .stateful_set
        .spec
        .as_ref()
        .unwrap()
        .selector
        .match_labels
        .clone()
        .unwrap();
    assert!(!selector.contains_key(BROKER_SET_LABEL));
    // Moving the voters changes the ConfigMap, never the pod template.
    let ctx = PlanContext::default();
    let t = SetTemplate::from_spec(BrokerSet::first("kc"), &kc.spec, &ctx);
    let other = desired_objects(&kc, &t, 3, "1000@x:9093", &ctx).unwrap();
    assert_eq!(other.stateful_set, blue.stateful_set);
    assert_ne!(other.config_map, blue.config_map);
}
