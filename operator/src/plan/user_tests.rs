use super::*;

const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n";

fn spec(v: serde_json::Value) -> KafkaUserSpec {
    serde_json::from_value(v).unwrap()
}

fn binding(t: i8, name: &str, pattern: i8, op: i8, perm: i8, host: &str) -> AclBinding {
    AclBinding {
        resource_type: t,
        resource_name: name.into(),
        pattern_type: pattern,
        principal: "User:alice".into(),
        host: host.into(),
        operation: op,
        permission: perm,
    }
}

/// Reads a Java properties value back (the escapes `properties_escape` writes).
fn unescape(v: &str) -> String {
    let mut out = String::new();
    let mut chars = v.chars();
    let mut pending_high: Option<u32> = None;
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next().unwrap() {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'f' => out.push('\u{c}'),
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                let u = u32::from_str_radix(&hex, 16).unwrap();
                if (0xd800..0xdc00).contains(&u) {
                    pending_high = Some(u);
                } else if let Some(h) = pending_high.take() {
                    out.push(
                        char::from_u32(0x10000 + ((h - 0xd800) << 10) + (u - 0xdc00)).unwrap(),
                    );
                } else {
                    out.push(char::from_u32(u).unwrap());
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The `key=value` lines of a properties text, unescaped; comments skipped.
fn props(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), unescape(v))
        })
        .collect()
}

fn listener(tls: bool) -> ClusterListener {
    ClusterListener {
        name: "sasl".into(),
        bootstrap: "kc-bootstrap.ns.svc:9094".into(),
        tls,
        authentication: Some(UserAuthenticationType::ScramSha512),
    }
}

#[test]
fn bindings_of_a_spec_with_all_prefixed_and_deny() {
    let s = spec(serde_json::json!({
        "clusterRef": {"name": "kc"},
        "authentication": {"type": "scram-sha-512"},
        "authorization": {"acls": [
            {"resource": {"type": "topic", "name": "orders"}, "operations": ["Read", "Describe"]},
            {"resource": {"type": "group", "name": "orders-", "patternType": "prefixed"},
             "operations": ["All"]},
            {"resource": {"type": "topic", "name": "secret"}, "operations": ["Read"],
             "type": "deny", "host": "10.0.0.7"},
            {"resource": {"type": "cluster"}, "operations": ["IdempotentWrite"]},
            // A duplicate of the first rule's Read: one binding.
            {"resource": {"type": "topic", "name": "orders"}, "operations": ["Read"]}
        ]}
    }));
    let got: Vec<AclBinding> = desired_bindings(&s, "User:alice").into_iter().collect();
    let allow = acl::PERMISSION_ALLOW;
    let lit = acl::PATTERN_LITERAL;
    let mut want = vec![
        binding(acl::RESOURCE_TOPIC, "orders", lit, 3, allow, "*"),
        binding(acl::RESOURCE_TOPIC, "orders", lit, 8, allow, "*"),
        binding(
            acl::RESOURCE_GROUP,
            "orders-",
            acl::PATTERN_PREFIXED,
            2,
            allow,
            "*",
        ),
        binding(
            acl::RESOURCE_TOPIC,
            "secret",
            lit,
            3,
            acl::PERMISSION_DENY,
            "10.0.0.7",
        ),
        binding(acl::RESOURCE_CLUSTER, "kafka-cluster", lit, 12, allow, "*"),
    ];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        got.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .len(),
        5
    );
}

#[test]
fn names_of_the_clusters_own_secrets_are_refused() {
    for name in [
        "kc-cluster-ca",
        "kc-clients-ca",
        "kc-broker-certs",
        "kc-operator-cert",
        "kc-broker-tls",
    ] {
        let e = reserved_secret_name(name, "kc").unwrap();
        assert_eq!(e.field, "metadata.name");
        assert!(e.message.contains("KafkaCluster kc"), "{e}");
    }
    assert_eq!(reserved_secret_name("kc-clients-ca", "other"), None);
    assert_eq!(reserved_secret_name("alice", "kc"), None);
}

#[test]
fn every_operation_has_its_wire_code() {
    use AclOperation::*;
    let codes: Vec<i8> = [
        All,
        Read,
        Write,
        Create,
        Delete,
        Alter,
        Describe,
        ClusterAction,
        DescribeConfigs,
        AlterConfigs,
        IdempotentWrite,
    ]
    .into_iter()
    .map(operation_code)
    .collect();
    assert_eq!(codes, (2..=12).collect::<Vec<i8>>());
    assert_eq!(
        acl::operation_name(operation_code(IdempotentWrite)),
        "IdempotentWrite"
    );
}

#[test]
fn no_acls_no_bindings() {
    let s = spec(serde_json::json!({
        "clusterRef": {"name": "kc"}, "authentication": {"type": "tls"}
    }));
    assert!(desired_bindings(&s, "User:CN=alice").is_empty());
}

#[test]
fn changes_create_the_missing_and_delete_the_extra() {
    let allow = acl::PERMISSION_ALLOW;
    let lit = acl::PATTERN_LITERAL;
    let read = binding(acl::RESOURCE_TOPIC, "orders", lit, 3, allow, "*");
    let write = binding(acl::RESOURCE_TOPIC, "orders", lit, 4, allow, "*");
    let old = binding(acl::RESOURCE_TOPIC, "legacy", lit, 3, allow, "*");
    // Same resource and operation, other host: a different binding.
    let other_host = binding(acl::RESOURCE_TOPIC, "orders", lit, 3, allow, "10.0.0.1");
    let mut foreign = read.clone();
    foreign.principal = "User:bob".into();
    let desired = BTreeSet::from([read.clone(), write.clone()]);
    let current = vec![read.clone(), old.clone(), other_host.clone(), foreign];
    let c = acl_changes(&desired, &current, "User:alice");
    assert_eq!(c.create, vec![write.clone()]);
    let mut delete = vec![old, other_host];
    delete.sort();
    assert_eq!(c.delete, delete);
    // Once applied: nothing to do.
    let applied = acl_changes(&desired, &[write, read], "User:alice");
    assert!(applied.is_empty(), "{applied:?}");
    // Empty desired: every binding of the principal goes.
    assert_eq!(
        acl_changes(&BTreeSet::new(), &current, "User:alice")
            .delete
            .len(),
        3
    );
}

#[test]
fn scram_written_only_when_missing_or_changed() {
    let sha512 = ScramCredentialInfo {
        mechanism: SCRAM_SHA_512,
        iterations: 4096,
    };
    let sha256 = ScramCredentialInfo {
        mechanism: 1,
        iterations: 4096,
    };
    let fp = password_fingerprint("alice", "pw1");
    assert_eq!(
        scram_write(&[], Some(&fp), "alice", "pw1"),
        Some(ScramWrite::Missing)
    );
    assert_eq!(
        scram_write(&[sha256], Some(&fp), "alice", "pw1"),
        Some(ScramWrite::Missing)
    );
    assert_eq!(scram_write(&[sha512], Some(&fp), "alice", "pw1"), None);
    assert_eq!(
        scram_write(&[sha512], Some(&fp), "alice", "pw2"),
        Some(ScramWrite::PasswordChanged)
    );
    assert_eq!(
        scram_write(&[sha512], None, "alice", "pw1"),
        Some(ScramWrite::PasswordChanged)
    );
    // The fingerprint binds the user too.
    assert_ne!(password_fingerprint("bob", "pw1"), fp);
    assert_eq!(fp.len(), 64);
    assert!(!fp.contains("pw1"));
}

#[test]
fn generated_passwords() {
    let bytes: Vec<u8> = (0..=255u8).cycle().take(64).collect();
    let p = password_from_bytes(&bytes).unwrap();
    assert_eq!(p.len(), GENERATED_PASSWORD_LEN);
    assert!(p.chars().all(|c| c.is_ascii_alphanumeric()), "{p}");
    assert!(p.starts_with("ABCDEFGHIJ"), "{p}");
    // Bytes of 248 and above are skipped (uniform characters).
    let high = [250u8; 64];
    assert_eq!(password_from_bytes(&high), None);
    assert_eq!(password_from_bytes(&[0u8; 31]), None);
    assert_eq!(password_problem(&p), None);
}

#[test]
fn passwords_from_secrets() {
    assert_eq!(password_problem("s3cret pass"), None);
    assert_eq!(password_problem("pässwörd\"\\"), None);
    assert!(password_problem("").unwrap().contains("empty"));
    assert!(password_problem("a\nb").unwrap().contains("control"));
    assert!(password_problem(" a").unwrap().contains("white space"));
    assert!(password_problem(&"x".repeat(1025)).is_some());
}

#[test]
fn listener_of_each_mechanism() {
    let plain = ClusterListener {
        name: "plain".into(),
        bootstrap: "b:9092".into(),
        tls: false,
        authentication: None,
    };
    let mtls = ClusterListener {
        name: "mtls".into(),
        bootstrap: "b:9093".into(),
        tls: true,
        authentication: Some(UserAuthenticationType::Tls),
    };
    let all = vec![plain.clone(), listener(true), mtls.clone()];
    assert_eq!(
        listener_for(&all, UserAuthenticationType::ScramSha512).map(|l| l.name.as_str()),
        Some("sasl")
    );
    assert_eq!(listener_for(&all, UserAuthenticationType::Tls), Some(&mtls));
    assert_eq!(listener_for(&[plain], UserAuthenticationType::Tls), None);
}

#[test]
fn properties_escaping() {
    assert_eq!(properties_escape("a=b:c"), "a=b:c");
    assert_eq!(properties_escape("x\\y\nz"), "x\\\\y\\nz");
    assert_eq!(properties_escape(" lead"), "\\ lead");
    assert_eq!(properties_escape("é😀"), "\\u00e9\\ud83d\\ude00");
    for v in [
        "pässwörd \"q\" \\ 😀",
        "-----BEGIN X-----\nab\n-----END X-----\n",
        " x",
    ] {
        assert_eq!(unescape(&properties_escape(v)), v);
    }
}

#[test]
fn jaas_quotes_its_values() {
    assert_eq!(
        jaas_config("alice", "p\"w\\"),
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"p\\\"w\\\\\";"
    );
}

#[test]
fn scram_secret_over_tls() {
    let l = listener(true);
    let ctx = SecretContext {
        user: "alice",
        cluster: "kc",
        listener: Some(&l),
        ca_cert: Some(CA),
    };
    let pw = "Zx9\"quote";
    let data = scram_secret_data(&ctx, pw);
    assert_eq!(
        data.keys().map(String::as_str).collect::<Vec<_>>(),
        vec![
            "bootstrap.servers",
            "ca.crt",
            "client.properties",
            "librdkafka.properties",
            "password",
            "sasl.jaas.config"
        ]
    );
    assert_eq!(data["password"], pw);
    assert_eq!(data["ca.crt"], CA);
    assert_eq!(data["bootstrap.servers"], "kc-bootstrap.ns.svc:9094");
    assert_eq!(data["sasl.jaas.config"], jaas_config("alice", pw));
    let java = props(&data["client.properties"]);
    assert_eq!(
        java,
        BTreeMap::from([
            (
                "bootstrap.servers".into(),
                "kc-bootstrap.ns.svc:9094".into()
            ),
            ("security.protocol".into(), "SASL_SSL".into()),
            ("sasl.mechanism".into(), "SCRAM-SHA-512".into()),
            ("sasl.jaas.config".into(), jaas_config("alice", pw)),
            ("ssl.truststore.type".into(), "PEM".into()),
            ("ssl.truststore.certificates".into(), CA.into()),
        ])
    );
    assert!(
        data["client.properties"].starts_with("# Kafka Java client settings of KafkaUser alice")
    );
    // The certificate stays on one line.
    assert_eq!(
        data["client.properties"]
            .lines()
            .filter(|l| l.contains("BEGIN"))
            .count(),
        1
    );
    let rd = props(&data["librdkafka.properties"]);
    assert_eq!(
        rd,
        BTreeMap::from([
            (
                "bootstrap.servers".into(),
                "kc-bootstrap.ns.svc:9094".into()
            ),
            ("security.protocol".into(), "sasl_ssl".into()),
            ("sasl.mechanisms".into(), "SCRAM-SHA-512".into()),
            ("sasl.username".into(), "alice".into()),
            ("sasl.password".into(), pw.into()),
            ("ssl.ca.location".into(), "/etc/samsa/user/ca.crt".into()),
        ])
    );
    assert!(data["librdkafka.properties"].contains("mounted at /etc/samsa/user"));
}

#[test]
fn scram_secret_over_plaintext() {
    let l = listener(false);
    let ctx = SecretContext {
        user: "alice",
        cluster: "kc",
        listener: Some(&l),
        ca_cert: None,
    };
    let data = scram_secret_data(&ctx, "pw");
    assert!(!data.contains_key("ca.crt"));
    let java = props(&data["client.properties"]);
    assert_eq!(java["security.protocol"], "SASL_PLAINTEXT");
    assert!(!java.contains_key("ssl.truststore.certificates"));
    let rd = props(&data["librdkafka.properties"]);
    assert_eq!(rd["security.protocol"], "sasl_plaintext");
    assert!(!rd.contains_key("ssl.ca.location"));
}

#[test]
fn tls_secret() {
    let l = ClusterListener {
        name: "mtls".into(),
        bootstrap: "kc-bootstrap.ns.svc:9093".into(),
        tls: true,
        authentication: Some(UserAuthenticationType::Tls),
    };
    let ctx = SecretContext {
        user: "bob",
        cluster: "kc",
        listener: Some(&l),
        ca_cert: Some(CA),
    };
    let cert = "-----BEGIN CERTIFICATE-----\nleaf\n-----END CERTIFICATE-----\n";
    let key = "-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n";
    let data = tls_secret_data(&ctx, cert, key);
    assert_eq!(
        data.keys().map(String::as_str).collect::<Vec<_>>(),
        vec![
            "bootstrap.servers",
            "ca.crt",
            "client.properties",
            "librdkafka.properties",
            "user.crt",
            "user.key"
        ]
    );
    assert_eq!(data["user.crt"], cert);
    assert_eq!(data["user.key"], key);
    let java = props(&data["client.properties"]);
    assert_eq!(
        java,
        BTreeMap::from([
            (
                "bootstrap.servers".into(),
                "kc-bootstrap.ns.svc:9093".into()
            ),
            ("security.protocol".into(), "SSL".into()),
            ("ssl.keystore.type".into(), "PEM".into()),
            ("ssl.keystore.certificate.chain".into(), cert.into()),
            ("ssl.keystore.key".into(), key.into()),
            ("ssl.truststore.type".into(), "PEM".into()),
            ("ssl.truststore.certificates".into(), CA.into()),
        ])
    );
    let rd = props(&data["librdkafka.properties"]);
    assert_eq!(
        rd,
        BTreeMap::from([
            (
                "bootstrap.servers".into(),
                "kc-bootstrap.ns.svc:9093".into()
            ),
            ("security.protocol".into(), "ssl".into()),
            (
                "ssl.certificate.location".into(),
                "/etc/samsa/user/user.crt".into()
            ),
            ("ssl.key.location".into(), "/etc/samsa/user/user.key".into()),
            ("ssl.ca.location".into(), "/etc/samsa/user/ca.crt".into()),
        ])
    );
}
