use std::collections::BTreeMap;

use super::*;
use crate::crd::{
    AuthenticationType, AuthorizationSpec, AuthorizationType, BrokerSet, IssuerKind, IssuerRef,
    KafkaCluster, KafkaListener, ListenerAuthentication, TlsSpec,
};
use crate::plan::cluster::{desired_objects, quorum_voters, ClusterObjects, SetTemplate};

fn listener(name: &str, port: i32, tls: bool, auth: Option<AuthenticationType>) -> KafkaListener {
    KafkaListener {
        name: name.into(),
        port,
        tls,
        authentication: auth.map(|type_| ListenerAuthentication { type_ }),
    }
}

fn secure_spec() -> KafkaClusterSpec {
    let mut spec = KafkaClusterSpec::default();
    spec.listeners.kafka = Some(vec![
        listener("plain", 9092, false, None),
        listener("tls", 9095, true, Some(AuthenticationType::Tls)),
        listener("scram", 9096, true, Some(AuthenticationType::ScramSha512)),
    ]);
    spec.authorization = Some(AuthorizationSpec {
        type_: AuthorizationType::Simple,
        super_users: vec!["User:CN=admin".into()],
        allow_everyone_if_no_acl_found: false,
    });
    spec
}

fn objects(spec: KafkaClusterSpec, set: BrokerSet) -> ClusterObjects {
    let mut kc = KafkaCluster::new("kc", spec);
    kc.metadata.namespace = Some("ns".into());
    kc.metadata.uid = Some("uid-1".into());
    let ctx = PlanContext::default();
    let template = SetTemplate::from_spec(set, &kc.spec, &ctx);
    let voters = quorum_voters("kc", "ns", 3, kc.spec.listeners.controller, &ctx);
    desired_objects(&kc, &template, 3, &voters, &ctx).unwrap()
}

fn env_of(o: &ClusterObjects) -> BTreeMap<String, String> {
    let pod = o
        .stateful_set
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    pod.containers[0]
        .env
        .as_ref()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
        .collect()
}

fn port_names(o: &ClusterObjects) -> Vec<(String, i32)> {
    let pod = o
        .stateful_set
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    pod.containers[0]
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| (p.name.clone().unwrap(), p.container_port))
        .collect()
}

const HOST: &str = "$(POD_NAME).kc-headless.ns.svc.cluster.local";

#[test]
fn a_plain_cluster_keeps_its_single_listener() {
    let o = objects(KafkaClusterSpec::default(), BrokerSet::first("kc"));
    let env = env_of(&o);
    assert_eq!(env["SAMSA_LISTEN"], "0.0.0.0:9092");
    assert_eq!(env["SAMSA_ADVERTISED_LISTENER"], format!("{HOST}:9092"));
    assert!(!env.contains_key("SAMSA_LISTENERS"));
    assert!(!env.keys().any(|k| k.contains("SSL") || k.contains("TLS")));
    let pod = o
        .stateful_set
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    assert!(pod.volumes.is_none());
    assert_eq!(port_names(&o)[0], ("kafka".to_string(), 9092));
}

#[test]
fn plain_typed_listeners_are_listeners_without_tls() {
    let mut spec = KafkaClusterSpec::default();
    spec.listeners.kafka = Some(vec![
        listener("internal", 9092, false, None),
        listener("external", 9192, false, None),
    ]);
    let env = env_of(&objects(spec, BrokerSet::first("kc")));
    assert_eq!(
        env["SAMSA_LISTENERS"],
        "INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:9192"
    );
    assert_eq!(
        env["SAMSA_ADVERTISED_LISTENERS"],
        format!("INTERNAL://{HOST}:9092,EXTERNAL://{HOST}:9192")
    );
    assert_eq!(
        env["SAMSA_LISTENER_SECURITY_PROTOCOL_MAP"],
        "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT"
    );
    assert!(!env.contains_key("SAMSA_LISTEN"));
    assert!(!env.contains_key("SAMSA_INTERNAL_TLS_CA_LOCATION"));
}

#[test]
fn a_secured_cluster_gets_controlplane_tls_sasl_internal_mtls_and_acls() {
    let o = objects(secure_spec(), BrokerSet::first("kc"));
    let env = env_of(&o);
    let expect = [
        (
            "SAMSA_LISTENERS",
            "CONTROLPLANE://0.0.0.0:9091,PLAIN://0.0.0.0:9092,TLS://0.0.0.0:9095,SCRAM://0.0.0.0:9096".to_string(),
        ),
        (
            "SAMSA_ADVERTISED_LISTENERS",
            format!("CONTROLPLANE://{HOST}:9091,PLAIN://{HOST}:9092,TLS://{HOST}:9095,SCRAM://{HOST}:9096"),
        ),
        (
            "SAMSA_LISTENER_SECURITY_PROTOCOL_MAP",
            "CONTROLPLANE:SSL,PLAIN:PLAINTEXT,TLS:SSL,SCRAM:SASL_SSL".to_string(),
        ),
        ("SAMSA_SSL_CERTIFICATE_LOCATION", "/etc/samsa/tls/$(POD_NAME).crt".to_string()),
        ("SAMSA_SSL_KEY_LOCATION", "/etc/samsa/tls/$(POD_NAME).key".to_string()),
        ("SAMSA_SSL_CLIENT_AUTH", "none".to_string()),
        ("SAMSA_LISTENER_SSL_CLIENT_AUTH", "CONTROLPLANE:required,TLS:required".to_string()),
        (
            "SAMSA_LISTENER_SSL_TRUSTSTORE_LOCATION",
            "CONTROLPLANE:/etc/samsa/tls/ca.crt,TLS:/etc/samsa/tls/clients-ca.crt".to_string(),
        ),
        ("SAMSA_INTERNAL_TLS_CERTIFICATE_LOCATION", "/etc/samsa/tls/$(POD_NAME).crt".to_string()),
        ("SAMSA_INTERNAL_TLS_KEY_LOCATION", "/etc/samsa/tls/$(POD_NAME).key".to_string()),
        ("SAMSA_INTERNAL_TLS_CA_LOCATION", "/etc/samsa/tls/ca.crt".to_string()),
        ("SAMSA_SASL_ENABLED_MECHANISMS", "SCRAM-SHA-512".to_string()),
        ("SAMSA_AUTHORIZER_ENABLE", "true".to_string()),
        ("SAMSA_SUPER_USERS", "User:CN=samsa-operator;User:CN=admin".to_string()),
        ("SAMSA_ALLOW_EVERYONE_IF_NO_ACL_FOUND", "false".to_string()),
    ];
    for (k, v) in expect {
        assert_eq!(env.get(k), Some(&v), "{k}");
    }
    assert!(!env.contains_key("SAMSA_LISTEN"));
    assert!(!env.contains_key("SAMSA_ADVERTISED_LISTENER"));

    // POD_NAME comes first: $(POD_NAME) in later values expands.
    let pod = o
        .stateful_set
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    assert_eq!(pod.containers[0].env.as_ref().unwrap()[0].name, "POD_NAME");

    // The certificate volume: broker certs and the clients CA, read-only.
    let volume = &pod.volumes.as_ref().unwrap()[0];
    assert_eq!(volume.name, "tls");
    let sources = volume.projected.as_ref().unwrap().sources.as_ref().unwrap();
    assert_eq!(sources[0].secret.as_ref().unwrap().name, "kc-broker-certs");
    let clients = sources[1].secret.as_ref().unwrap();
    assert_eq!(clients.name, "kc-clients-ca");
    assert_eq!(clients.items.as_ref().unwrap()[0].path, "clients-ca.crt");
    let mount = pod.containers[0]
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.name == "tls")
        .unwrap();
    assert_eq!(
        (mount.mount_path.as_str(), mount.read_only),
        ("/etc/samsa/tls", Some(true))
    );

    // Ports: every listener on the pod and both Services; probes stay on metrics.
    assert_eq!(
        port_names(&o),
        vec![
            ("controlplane".to_string(), 9091),
            ("plain".to_string(), 9092),
            ("tls".to_string(), 9095),
            ("scram".to_string(), 9096),
            ("controller".to_string(), 9093),
            ("replication".to_string(), 9094),
            ("metrics".to_string(), 9404),
        ]
    );
    let bootstrap_ports: Vec<i32> = o
        .bootstrap
        .spec
        .as_ref()
        .unwrap()
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| p.port)
        .collect();
    assert_eq!(bootstrap_ports, vec![9091, 9092, 9095, 9096]);
    let headless_ports = o
        .headless
        .spec
        .as_ref()
        .unwrap()
        .ports
        .as_ref()
        .unwrap()
        .len();
    assert_eq!(headless_ports, 7);
    let probe = pod.containers[0].readiness_probe.as_ref().unwrap();
    assert_eq!(
        probe.http_get.as_ref().unwrap().port,
        IntOrString::String("metrics".into())
    );
}

#[test]
fn authorization_alone_secures_the_plain_client_listener() {
    let spec = KafkaClusterSpec {
        authorization: Some(AuthorizationSpec {
            type_: AuthorizationType::Simple,
            super_users: vec![OPERATOR_PRINCIPAL.into()],
            allow_everyone_if_no_acl_found: true,
        }),
        ..Default::default()
    };
    let env = env_of(&objects(spec, BrokerSet::first("kc")));
    assert_eq!(
        env["SAMSA_LISTENERS"],
        "CONTROLPLANE://0.0.0.0:9091,PLAINTEXT://0.0.0.0:9092"
    );
    assert_eq!(
        env["SAMSA_LISTENER_SECURITY_PROTOCOL_MAP"],
        "CONTROLPLANE:SSL,PLAINTEXT:PLAINTEXT"
    );
    // The operator is named once.
    assert_eq!(env["SAMSA_SUPER_USERS"], "User:CN=samsa-operator");
    assert_eq!(env["SAMSA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"], "true");
    assert!(!env.contains_key("SAMSA_SASL_ENABLED_MECHANISMS"));
}

#[test]
fn a_blue_green_set_uses_its_own_pod_names() {
    let o = objects(
        secure_spec(),
        BrokerSet {
            name: "kc-g1".into(),
            id_offset: 3,
        },
    );
    // The pod name (kc-g1-0...) is the file name, through $(POD_NAME).
    let env = env_of(&o);
    assert_eq!(
        env["SAMSA_SSL_CERTIFICATE_LOCATION"],
        "/etc/samsa/tls/$(POD_NAME).crt"
    );
    let sans = broker_sans(
        "kc",
        "ns",
        &BrokerSet {
            name: "kc-g1".into(),
            id_offset: 3,
        }
        .pod(4),
        &PlanContext::default(),
    );
    assert_eq!(
        sans,
        vec![
            "kc-g1-1.kc-headless",
            "kc-g1-1.kc-headless.ns",
            "kc-g1-1.kc-headless.ns.svc",
            "kc-g1-1.kc-headless.ns.svc.cluster.local",
            "kc-bootstrap",
            "kc-bootstrap.ns",
            "kc-bootstrap.ns.svc",
            "kc-bootstrap.ns.svc.cluster.local",
            "localhost",
        ]
    );
}

#[test]
fn an_issuer_mounts_the_cert_manager_secret() {
    let mut spec = secure_spec();
    spec.tls = Some(TlsSpec {
        issuer: Some(IssuerRef {
            name: "ca-issuer".into(),
            kind: IssuerKind::ClusterIssuer,
            group: "cert-manager.io".into(),
        }),
        validity_days: 90,
        renew_before_days: 15,
    });
    let o = objects(spec.clone(), BrokerSet::first("kc"));
    let env = env_of(&o);
    assert_eq!(
        env["SAMSA_SSL_CERTIFICATE_LOCATION"],
        "/etc/samsa/tls/tls.crt"
    );
    assert_eq!(
        env["SAMSA_INTERNAL_TLS_KEY_LOCATION"],
        "/etc/samsa/tls/tls.key"
    );
    assert_eq!(
        env["SAMSA_INTERNAL_TLS_CA_LOCATION"],
        "/etc/samsa/tls/ca.crt"
    );
    let pod = o
        .stateful_set
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    let sources = pod.volumes.as_ref().unwrap()[0]
        .projected
        .as_ref()
        .unwrap()
        .sources
        .clone()
        .unwrap();
    assert_eq!(sources[0].secret.as_ref().unwrap().name, "kc-broker-tls");

    let meta = |name: String| ObjectMeta {
        name: Some(name),
        namespace: Some("ns".into()),
        ..Default::default()
    };
    let certs = certificates(&spec, "kc", "ns", &meta, &PlanContext::default());
    assert_eq!(certs.len(), 2);
    let broker = &certs[0];
    assert_eq!(broker["apiVersion"], "cert-manager.io/v1");
    assert_eq!(broker["kind"], "Certificate");
    assert_eq!(broker["metadata"]["name"], "kc-broker-tls");
    assert_eq!(broker["spec"]["secretName"], "kc-broker-tls");
    assert_eq!(broker["spec"]["duration"], "2160h");
    assert_eq!(broker["spec"]["renewBefore"], "360h");
    assert_eq!(
        broker["spec"]["issuerRef"],
        serde_json::json!({"name": "ca-issuer", "kind": "ClusterIssuer", "group": "cert-manager.io"})
    );
    let names: Vec<&str> = broker["spec"]["dnsNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"*.kc-headless.ns.svc.cluster.local"),
        "{names:?}"
    );
    assert!(names.contains(&"kc-bootstrap.ns.svc"), "{names:?}");
    assert!(names.contains(&"localhost"));
    let usages = broker["spec"]["usages"].as_array().unwrap();
    assert!(
        usages.contains(&serde_json::json!("server auth"))
            && usages.contains(&serde_json::json!("client auth"))
    );
    let operator = &certs[1];
    assert_eq!(operator["spec"]["secretName"], "kc-operator-cert");
    assert_eq!(operator["spec"]["commonName"], "samsa-operator");
    assert_eq!(
        operator["spec"]["usages"],
        serde_json::json!(["digital signature", "client auth"])
    );
    // Without an issuer: none.
    assert!(certificates(&secure_spec(), "kc", "ns", &meta, &PlanContext::default()).is_empty());
}

#[test]
fn the_network_policy_closes_the_internal_ports() {
    let operator = OperatorPeer {
        namespace: Some("samsa-system".into()),
        pod_labels: BTreeMap::from([("app.kubernetes.io/name".into(), "samsa-operator".into())]),
    };
    let np = network_policy(&secure_spec(), "kc", ObjectMeta::default(), &operator);
    let spec = np.spec.unwrap();
    assert_eq!(spec.policy_types, Some(vec!["Ingress".to_string()]));
    assert_eq!(
        spec.pod_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap()["samsa.dev/cluster"],
        "kc"
    );
    let rules = spec.ingress.unwrap();
    let ports = |r: &NetworkPolicyIngressRule| -> Vec<i32> {
        r.ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| match p.port {
                Some(IntOrString::Int(n)) => n,
                _ => 0,
            })
            .collect()
    };
    assert_eq!(rules.len(), 3);
    // Internal ports: the cluster's brokers only.
    assert_eq!(ports(&rules[0]), vec![9093, 9094]);
    let peer = &rules[0].from.as_ref().unwrap()[0];
    assert_eq!(
        peer.pod_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap()["samsa.dev/cluster"],
        "kc"
    );
    assert!(peer.namespace_selector.is_none());
    // CONTROLPLANE: the operator's pods in its namespace only.
    assert_eq!(ports(&rules[1]), vec![9091]);
    let peer = &rules[1].from.as_ref().unwrap()[0];
    assert_eq!(
        peer.namespace_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap()["kubernetes.io/metadata.name"],
        "samsa-system"
    );
    assert_eq!(
        peer.pod_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap()["app.kubernetes.io/name"],
        "samsa-operator"
    );
    // Kafka listeners and metrics: open.
    assert_eq!(ports(&rules[2]), vec![9092, 9095, 9096, 9404]);
    assert!(rules[2].from.is_none());

    // A plain cluster: no CONTROLPLANE rule, the internal ports still closed.
    let plain = network_policy(
        &KafkaClusterSpec::default(),
        "kc",
        ObjectMeta::default(),
        &operator,
    );
    let rules = plain.spec.unwrap().ingress.unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(ports(&rules[0]), vec![9093, 9094]);
    assert_eq!(ports(&rules[1]), vec![9092, 9404]);

    // Operator namespace unknown: any namespace, still the operator's labels.
    let anywhere = OperatorPeer {
        namespace: None,
        ..operator
    };
    let np = network_policy(&secure_spec(), "kc", ObjectMeta::default(), &anywhere);
    let rules = np.spec.unwrap().ingress.unwrap();
    let peer = &rules[1].from.as_ref().unwrap()[0];
    assert_eq!(peer.namespace_selector, Some(LabelSelector::default()));
}

#[test]
fn the_tls_hash_moves_with_the_generation_and_the_cas() {
    let a = tls_hash(0, &["ca1", "clients1"]);
    assert_eq!(a.len(), 16);
    assert_eq!(a, tls_hash(0, &["ca1", "clients1"]));
    assert_ne!(a, tls_hash(1, &["ca1", "clients1"]));
    assert_ne!(a, tls_hash(0, &["ca2", "clients1"]));
    assert_ne!(a, tls_hash(0, &["ca1clients1", ""]));
}

#[test]
fn the_operator_follows_the_running_template() {
    let plain = objects(KafkaClusterSpec::default(), BrokerSet::first("kc"));
    assert_eq!(running_endpoint(&plain.stateful_set), Some((9092, false)));
    let secured = objects(secure_spec(), BrokerSet::first("kc"));
    assert_eq!(
        running_endpoint(&secured.stateful_set),
        Some((CONTROLPLANE_PORT, true))
    );
    assert_eq!(running_endpoint(&Default::default()), None);
}
