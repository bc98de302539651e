//! Tests for the ACL model and the authorizer: one per Kafka rule.

use super::*;
use proptest::prelude::*;

use AclOperation as Op;
use PatternType as Pt;
use ResourceType as Rt;

fn binding(
    resource_type: Rt,
    name: &str,
    pattern_type: Pt,
    principal: &str,
    host: &str,
    operation: Op,
    permission: AclPermission,
) -> AclBinding {
    AclBinding {
        resource_type,
        resource_name: name.to_string(),
        pattern_type,
        principal: principal.to_string(),
        host: host.to_string(),
        operation,
        permission,
    }
}

fn allow(name: &str, pattern_type: Pt, principal: &str, operation: Op) -> AclBinding {
    binding(
        Rt::Topic,
        name,
        pattern_type,
        principal,
        "*",
        operation,
        AclPermission::Allow,
    )
}

fn deny(name: &str, pattern_type: Pt, principal: &str, operation: Op) -> AclBinding {
    binding(
        Rt::Topic,
        name,
        pattern_type,
        principal,
        "*",
        operation,
        AclPermission::Deny,
    )
}

fn set(acls: impl IntoIterator<Item = AclBinding>) -> AclSet {
    acls.into_iter().collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn alice() -> Principal {
    Principal::user("alice")
}

fn strict() -> AuthorizerConfig {
    AuthorizerConfig::default()
}

fn open() -> AuthorizerConfig {
    AuthorizerConfig {
        allow_everyone_if_no_acl_found: true,
        ..AuthorizerConfig::default()
    }
}

/// Whether alice from 10.0.0.1 may do `op` on the topic `topic`.
fn alice_may(acls: &AclSet, config: &AuthorizerConfig, op: Op, topic: &str) -> bool {
    authorize(
        acls,
        config,
        &alice(),
        ip("10.0.0.1"),
        &Action::new(op, Rt::Topic, topic),
    )
}

#[test]
fn wire_codes_and_names_are_kafkas() {
    fn check<T: Copy + PartialEq + fmt::Debug>(
        values: &[T],
        code: fn(T) -> i8,
        from_code: fn(i8) -> Option<T>,
        name: fn(T) -> &'static str,
        from_name: fn(&str) -> Option<T>,
    ) {
        for (i, v) in values.iter().copied().enumerate() {
            assert_eq!(
                code(v),
                i as i8 + 1,
                "{v:?}: codes start at 1 in declaration order"
            );
            assert_eq!(from_code(code(v)), Some(v));
            assert_eq!(from_name(name(v)), Some(v));
            assert_eq!(from_name(&name(v).to_ascii_lowercase()), Some(v));
        }
        for bad in [0, -1, values.len() as i8 + 1, i8::MAX] {
            assert_eq!(from_code(bad), None, "code {bad}");
        }
        assert_eq!(from_name("UNKNOWN"), None);
    }
    check(Rt::VALUES, Rt::code, Rt::from_code, Rt::name, Rt::from_name);
    check(Pt::VALUES, Pt::code, Pt::from_code, Pt::name, Pt::from_name);
    check(Op::VALUES, Op::code, Op::from_code, Op::name, Op::from_name);
    check(
        AclPermission::VALUES,
        AclPermission::code,
        AclPermission::from_code,
        AclPermission::name,
        AclPermission::from_name,
    );
    assert_eq!(Rt::VALUES.len(), 7);
    assert_eq!(Op::VALUES.len(), 14);
    assert_eq!(
        (Rt::User.code(), Rt::TransactionalId.name()),
        (7, "TRANSACTIONAL_ID")
    );
    assert_eq!(
        (Rt::Topic.name(), Pt::Prefixed.name()),
        ("TOPIC", "PREFIXED")
    );
    assert_eq!(
        (Op::IdempotentWrite.code(), Op::DescribeTokens.code()),
        (12, 14)
    );
    assert_eq!(Op::DescribeConfigs.to_string(), "DESCRIBE_CONFIGS");
    assert_eq!(Op::ClusterAction.name(), "CLUSTER_ACTION");
    assert_eq!(
        (AclPermission::Allow.name(), AclPermission::Deny.code()),
        ("ALLOW", 2)
    );
}

#[test]
fn validate_accepts_what_kafka_accepts() {
    let ok = [
        allow("orders", Pt::Literal, "User:alice", Op::Read),
        allow("*", Pt::Literal, "User:*", Op::All),
        allow("orders-", Pt::Prefixed, "Group:ops", Op::IdempotentWrite),
        binding(
            Rt::Cluster,
            "kafka-cluster",
            Pt::Literal,
            "User:CN=a,O=b",
            "::1",
            Op::Alter,
            AclPermission::Deny,
        ),
        binding(
            Rt::Group,
            "g",
            Pt::Literal,
            "User:bob",
            "192.168.1.7",
            Op::CreateTokens,
            AclPermission::Allow,
        ),
        binding(
            Rt::User,
            "bob",
            Pt::Literal,
            "User:",
            "0:0:0:0:0:0:0:1",
            Op::DescribeTokens,
            AclPermission::Allow,
        ),
    ];
    for b in ok {
        assert_eq!(b.validate(), Ok(()), "{b:?}");
    }
}

#[test]
fn validate_names_the_field() {
    let base = allow("orders", Pt::Literal, "User:alice", Op::Read);
    let cases: Vec<(AclBinding, &str)> = vec![
        (
            AclBinding {
                resource_type: Rt::Any,
                ..base.clone()
            },
            "Invalid resourceType ANY: an ACL names one resource type",
        ),
        (
            AclBinding {
                pattern_type: Pt::Match,
                ..base.clone()
            },
            "Invalid patternType MATCH: an ACL is LITERAL or PREFIXED",
        ),
        (
            AclBinding {
                pattern_type: Pt::Any,
                ..base.clone()
            },
            "Invalid patternType ANY: an ACL is LITERAL or PREFIXED",
        ),
        (
            AclBinding {
                operation: Op::Any,
                ..base.clone()
            },
            "Invalid operation ANY: an ACL names one operation, or ALL",
        ),
        (
            AclBinding {
                permission: AclPermission::Any,
                ..base.clone()
            },
            "Invalid permissionType ANY: an ACL is ALLOW or DENY",
        ),
        (
            AclBinding {
                resource_name: String::new(),
                ..base.clone()
            },
            "Invalid empty resource name",
        ),
        (
            AclBinding {
                resource_type: Rt::Cluster,
                ..base.clone()
            },
            "The only valid name for the CLUSTER resource is kafka-cluster",
        ),
        (
            AclBinding {
                principal: "alice".to_string(),
                ..base.clone()
            },
            "Could not parse principal from `alice` (no colon is present separating the \
             principal type from the principal name)",
        ),
        (
            AclBinding {
                host: "broker.example".to_string(),
                ..base.clone()
            },
            "Invalid host `broker.example`: expected * or an IP address",
        ),
    ];
    for (b, message) in cases {
        assert_eq!(b.validate(), Err(message.to_string()), "{b:?}");
    }
}

#[test]
fn filters_match_as_kafkas() {
    let literal = allow("orders", Pt::Literal, "User:alice", Op::Read);
    let wildcard = allow("*", Pt::Literal, "User:alice", Op::Read);
    let prefixed = allow("ord", Pt::Prefixed, "User:alice", Op::Read);
    let prefixed_same = allow("orders", Pt::Prefixed, "User:alice", Op::Read);
    let other = allow("payments", Pt::Literal, "User:alice", Op::Read);
    let group = binding(
        Rt::Group,
        "orders",
        Pt::Literal,
        "User:alice",
        "*",
        Op::Read,
        AclPermission::Allow,
    );
    let all = [
        &literal,
        &wildcard,
        &prefixed,
        &prefixed_same,
        &other,
        &group,
    ];
    let matching = |f: &AclFilter| -> Vec<&AclBinding> {
        all.iter().copied().filter(|b| f.matches(b)).collect()
    };
    let named = |pattern_type: Pt| AclFilter {
        resource_type: Rt::Topic,
        resource_name: Some("orders".to_string()),
        pattern_type,
        ..AclFilter::any()
    };

    assert_eq!(matching(&AclFilter::any()).len(), all.len());
    assert_eq!(AclFilter::any().validate(), Ok(()));
    // ANY: the exact name, whatever the pattern type.
    assert_eq!(matching(&named(Pt::Any)), vec![&literal, &prefixed_same]);
    // LITERAL / PREFIXED: the exact name with that pattern type.
    assert_eq!(matching(&named(Pt::Literal)), vec![&literal]);
    assert_eq!(matching(&named(Pt::Prefixed)), vec![&prefixed_same]);
    // MATCH: every binding that applies to the name.
    assert_eq!(
        matching(&named(Pt::Match)),
        vec![&literal, &wildcard, &prefixed, &prefixed_same]
    );
    // MATCH without a name: every binding of the type.
    let match_all = AclFilter {
        resource_name: None,
        ..named(Pt::Match)
    };
    assert_eq!(matching(&match_all).len(), 5);
    // Resource type ANY crosses types.
    let any_type = AclFilter {
        resource_type: Rt::Any,
        ..named(Pt::Literal)
    };
    assert_eq!(matching(&any_type), vec![&literal, &group]);

    // Entry fields: exact strings, not wildcard semantics.
    let by = |f: AclFilter, b: &AclBinding| f.matches(b);
    let bob = AclFilter {
        principal: Some("User:bob".into()),
        ..AclFilter::any()
    };
    assert!(!by(bob, &literal));
    let star = AclFilter {
        principal: Some("User:*".into()),
        ..AclFilter::any()
    };
    assert!(!by(star, &literal));
    let host = AclFilter {
        host: Some("*".into()),
        ..AclFilter::any()
    };
    assert!(by(host.clone(), &literal));
    assert!(!by(
        AclFilter {
            host: Some("10.0.0.1".into()),
            ..host
        },
        &literal
    ));
    assert!(!by(
        AclFilter {
            operation: Op::Write,
            ..AclFilter::any()
        },
        &literal
    ));
    assert!(by(
        AclFilter {
            operation: Op::Read,
            ..AclFilter::any()
        },
        &literal
    ));
    assert!(!by(
        AclFilter {
            permission: AclPermission::Deny,
            ..AclFilter::any()
        },
        &literal
    ));
}

#[test]
fn deny_beats_allow() {
    let acls = set([
        allow("orders", Pt::Literal, "User:alice", Op::Read),
        deny("orders", Pt::Literal, "User:alice", Op::Read),
    ]);
    assert!(!alice_may(&acls, &open(), Op::Read, "orders"));

    // A DENY through the wildcard principal, a prefix, or ALL beats a literal ALLOW.
    for d in [
        deny("orders", Pt::Literal, "User:*", Op::Read),
        deny("ord", Pt::Prefixed, "User:alice", Op::Read),
        deny("*", Pt::Literal, "User:alice", Op::All),
    ] {
        let acls = set([
            allow("orders", Pt::Literal, "User:alice", Op::All),
            d.clone(),
        ]);
        assert!(!alice_may(&acls, &strict(), Op::Read, "orders"), "{d:?}");
    }

    // DENY is not implied: DENY READ does not deny DESCRIBE.
    let acls = set([
        allow("orders", Pt::Literal, "User:alice", Op::Describe),
        deny("orders", Pt::Literal, "User:alice", Op::Read),
    ]);
    assert!(alice_may(&acls, &strict(), Op::Describe, "orders"));
}

#[test]
fn wildcard_principal_applies_to_every_principal() {
    let acls = set([allow("orders", Pt::Literal, "User:*", Op::Read)]);
    assert!(alice_may(&acls, &strict(), Op::Read, "orders"));
    let group_principal = Principal {
        principal_type: "Group".to_string(),
        name: "ops".to_string(),
    };
    let read = Action::new(Op::Read, Rt::Topic, "orders");
    assert!(authorize(
        &acls,
        &strict(),
        &group_principal,
        ip("10.0.0.1"),
        &read
    ));

    // Another principal's ALLOW does not apply, and the topic has ACLs, so the default does
    // not either.
    let acls = set([allow("orders", Pt::Literal, "User:bob", Op::Read)]);
    assert!(!alice_may(&acls, &open(), Op::Read, "orders"));
    // `Group:alice` is not `User:alice`.
    let acls = set([allow("orders", Pt::Literal, "Group:alice", Op::Read)]);
    assert!(!alice_may(&acls, &strict(), Op::Read, "orders"));
}

#[test]
fn hosts_are_star_or_the_client_address() {
    let on = |host: &str| {
        set([binding(
            Rt::Topic,
            "orders",
            Pt::Literal,
            "User:alice",
            host,
            Op::Read,
            AclPermission::Allow,
        )])
    };
    let read = Action::new(Op::Read, Rt::Topic, "orders");
    let from =
        |acls: &AclSet, client: &str| authorize(acls, &strict(), &alice(), ip(client), &read);
    assert!(from(&on("10.0.0.1"), "10.0.0.1"));
    assert!(!from(&on("10.0.0.1"), "10.0.0.2"));
    assert!(from(&on("*"), "10.0.0.2"));
    assert!(from(&on("::1"), "0:0:0:0:0:0:0:1"));
    assert!(from(&on("0:0:0:0:0:0:0:1"), "::1"));
    // A dual-stack listener sees an IPv4 client as IPv4-mapped IPv6.
    assert!(from(&on("10.0.0.1"), "::ffff:10.0.0.1"));
    assert!(!from(&on("not-an-address"), "10.0.0.1"));
}

#[test]
fn resource_patterns() {
    let prefixed = set([allow("orders-", Pt::Prefixed, "User:alice", Op::Read)]);
    assert!(alice_may(&prefixed, &strict(), Op::Read, "orders-eu"));
    assert!(alice_may(&prefixed, &strict(), Op::Read, "orders-"));
    assert!(!alice_may(&prefixed, &strict(), Op::Read, "orders"));
    assert!(!alice_may(&prefixed, &strict(), Op::Read, "my-orders-eu"));

    let everything = set([allow("*", Pt::Literal, "User:alice", Op::Read)]);
    assert!(alice_may(&everything, &strict(), Op::Read, "anything"));
    assert!(alice_may(&everything, &strict(), Op::Read, "*"));

    // PREFIXED `*` is a prefix like any other, not a wildcard.
    let star_prefix = set([allow("*", Pt::Prefixed, "User:alice", Op::Read)]);
    assert!(!alice_may(&star_prefix, &strict(), Op::Read, "orders"));
    assert!(alice_may(&star_prefix, &strict(), Op::Read, "*orders"));

    let literal = set([allow("orders", Pt::Literal, "User:alice", Op::Read)]);
    assert!(alice_may(&literal, &strict(), Op::Read, "orders"));
    assert!(!alice_may(&literal, &strict(), Op::Read, "orders-eu"));
    assert!(!alice_may(&literal, &strict(), Op::Read, "order"));

    // Resource types are separate: a GROUP ACL named `orders` says nothing of the topic.
    let group = set([binding(
        Rt::Group,
        "orders",
        Pt::Literal,
        "User:alice",
        "*",
        Op::Read,
        AclPermission::Allow,
    )]);
    assert!(!alice_may(&group, &strict(), Op::Read, "orders"));
    let read_group = Action::new(Op::Read, Rt::Group, "orders");
    assert!(authorize(
        &group,
        &strict(),
        &alice(),
        ip("10.0.0.1"),
        &read_group
    ));
}

#[test]
fn implied_operations_for_allow() {
    for granted in [
        Op::Read,
        Op::Write,
        Op::Delete,
        Op::Alter,
        Op::Describe,
        Op::All,
    ] {
        let acls = set([allow("t", Pt::Literal, "User:alice", granted)]);
        assert!(
            alice_may(&acls, &strict(), Op::Describe, "t"),
            "{granted} implies DESCRIBE"
        );
    }
    for granted in [
        Op::Create,
        Op::AlterConfigs,
        Op::DescribeConfigs,
        Op::ClusterAction,
        Op::IdempotentWrite,
    ] {
        let acls = set([allow("t", Pt::Literal, "User:alice", granted)]);
        assert!(
            !alice_may(&acls, &strict(), Op::Describe, "t"),
            "{granted} does not imply DESCRIBE"
        );
    }
    let alter_configs = set([allow("t", Pt::Literal, "User:alice", Op::AlterConfigs)]);
    assert!(alice_may(
        &alter_configs,
        &strict(),
        Op::DescribeConfigs,
        "t"
    ));
    let describe_configs = set([allow("t", Pt::Literal, "User:alice", Op::DescribeConfigs)]);
    assert!(!alice_may(
        &describe_configs,
        &strict(),
        Op::AlterConfigs,
        "t"
    ));
    let read = set([allow("t", Pt::Literal, "User:alice", Op::Read)]);
    assert!(!alice_may(&read, &strict(), Op::Write, "t"));
    assert!(!alice_may(&read, &strict(), Op::DescribeConfigs, "t"));
    let all = set([allow("t", Pt::Literal, "User:alice", Op::All)]);
    for op in Op::VALUES.iter().copied().filter(|op| *op != Op::Any) {
        assert!(alice_may(&all, &strict(), op, "t"), "ALL allows {op}");
    }
}

#[test]
fn super_users_may_do_everything() {
    let config = AuthorizerConfig {
        super_users: vec![Principal::user("admin")],
        allow_everyone_if_no_acl_found: false,
    };
    let acls = set([deny("*", Pt::Literal, "User:*", Op::All)]);
    let write = Action::new(Op::Write, Rt::Topic, "orders");
    assert!(authorize(
        &acls,
        &config,
        &Principal::user("admin"),
        ip("10.0.0.1"),
        &write
    ));
    assert!(!authorize(&acls, &config, &alice(), ip("10.0.0.1"), &write));
    assert!(config.is_super_user(&Principal::user("admin")));
    // Not even a super user does an `Any` action.
    let any = Action::new(Op::Any, Rt::Topic, "orders");
    assert!(!authorize(
        &acls,
        &config,
        &Principal::user("admin"),
        ip("10.0.0.1"),
        &any
    ));
}

#[test]
fn no_acl_found_follows_the_setting() {
    let empty = AclSet::new();
    assert!(!alice_may(&empty, &strict(), Op::Read, "orders"));
    assert!(alice_may(&empty, &open(), Op::Read, "orders"));
    // ACLs on other resources leave this one without ACLs.
    let elsewhere = set([
        deny("payments", Pt::Literal, "User:alice", Op::All),
        deny("pay", Pt::Prefixed, "User:alice", Op::All),
        binding(
            Rt::Group,
            "orders",
            Pt::Literal,
            "User:alice",
            "*",
            Op::All,
            AclPermission::Deny,
        ),
    ]);
    assert!(alice_may(&elsewhere, &open(), Op::Read, "orders"));
    assert!(!alice_may(&elsewhere, &strict(), Op::Read, "orders"));
    // Any ACL covering the resource, for any principal, host or operation, takes the default
    // away.
    for covering in [
        allow("orders", Pt::Literal, "User:bob", Op::Read),
        allow("*", Pt::Literal, "User:bob", Op::Write),
        binding(
            Rt::Topic,
            "ord",
            Pt::Prefixed,
            "User:alice",
            "10.9.9.9",
            Op::Read,
            AclPermission::Allow,
        ),
    ] {
        assert!(
            !alice_may(&set([covering.clone()]), &open(), Op::Read, "orders"),
            "{covering:?}"
        );
    }
}

#[test]
fn cluster_actions() {
    let acls = set([binding(
        Rt::Cluster,
        CLUSTER_NAME,
        Pt::Literal,
        "User:alice",
        "*",
        Op::IdempotentWrite,
        AclPermission::Allow,
    )]);
    let cluster = |op| Action::cluster(op);
    assert_eq!(cluster(Op::Alter).resource_name, "kafka-cluster");
    assert!(authorize(
        &acls,
        &strict(),
        &alice(),
        ip("10.0.0.1"),
        &cluster(Op::IdempotentWrite)
    ));
    assert!(!authorize(
        &acls,
        &strict(),
        &alice(),
        ip("10.0.0.1"),
        &cluster(Op::Alter)
    ));
}

#[test]
fn authorize_any_follows_kafkas_authorize_by_resource_type() {
    let may = |acls: &AclSet, config: &AuthorizerConfig, op: Op| {
        authorize_any(acls, config, &alice(), ip("10.0.0.1"), op, Rt::Topic)
    };
    let empty = AclSet::new();
    assert!(!may(&empty, &strict(), Op::Write));
    assert!(may(&empty, &open(), Op::Write));

    let write_a = allow("a", Pt::Literal, "User:alice", Op::Write);
    assert!(may(&set([write_a.clone()]), &strict(), Op::Write));
    assert!(!may(&set([write_a.clone()]), &strict(), Op::Read));
    // No implied operations here (Kafka's default implementation has none).
    assert!(!may(&set([write_a.clone()]), &strict(), Op::Describe));
    assert!(may(
        &set([allow("a", Pt::Literal, "User:*", Op::All)]),
        &strict(),
        Op::Write
    ));

    // Dominating DENYs.
    let cases = [
        (
            vec![
                write_a.clone(),
                deny("a", Pt::Literal, "User:alice", Op::Write),
            ],
            false,
        ),
        (
            vec![
                write_a.clone(),
                deny("", Pt::Prefixed, "User:alice", Op::Write),
            ],
            true,
        ),
        (
            vec![
                write_a.clone(),
                deny("a", Pt::Prefixed, "User:alice", Op::Write),
            ],
            false,
        ),
        (
            vec![
                allow("ab", Pt::Prefixed, "User:alice", Op::Write),
                deny("a", Pt::Prefixed, "User:alice", Op::Write),
            ],
            false,
        ),
        (
            vec![
                allow("ab", Pt::Prefixed, "User:alice", Op::Write),
                deny("abc", Pt::Prefixed, "User:alice", Op::Write),
            ],
            true,
        ),
        (
            vec![
                allow("ab", Pt::Prefixed, "User:alice", Op::Write),
                deny("ab", Pt::Literal, "User:alice", Op::Write),
            ],
            true,
        ),
        (vec![allow("*", Pt::Literal, "User:alice", Op::Write)], true),
        (
            vec![
                allow("x", Pt::Literal, "User:alice", Op::Write),
                deny("*", Pt::Literal, "User:*", Op::All),
            ],
            false,
        ),
        (vec![allow("x", Pt::Literal, "User:bob", Op::Write)], false),
        (
            vec![binding(
                Rt::Topic,
                "x",
                Pt::Literal,
                "User:alice",
                "10.0.0.2",
                Op::Write,
                AclPermission::Allow,
            )],
            false,
        ),
        (
            vec![binding(
                Rt::Group,
                "x",
                Pt::Literal,
                "User:alice",
                "*",
                Op::Write,
                AclPermission::Allow,
            )],
            false,
        ),
    ];
    for (acls, expected) in cases {
        assert_eq!(
            may(&set(acls.clone()), &strict(), Op::Write),
            expected,
            "{acls:?}"
        );
    }

    // Kafka's probe on a resource named `hardcode`: with allow_everyone_if_no_acl_found, a DENY
    // on one topic leaves others (that have no ACLs) writable.
    let acls = set([deny("secret", Pt::Literal, "User:alice", Op::Write)]);
    assert!(may(&acls, &open(), Op::Write));
    assert!(!may(&acls, &strict(), Op::Write));

    let admin = AuthorizerConfig {
        super_users: vec![alice()],
        ..strict()
    };
    assert!(may(&acls, &admin, Op::Write));
    assert!(!authorize_any(
        &acls,
        &admin,
        &alice(),
        ip("10.0.0.1"),
        Op::Any,
        Rt::Topic
    ));
    assert!(!authorize_any(
        &acls,
        &admin,
        &alice(),
        ip("10.0.0.1"),
        Op::Write,
        Rt::Any
    ));
}

fn arb_binding() -> impl Strategy<Value = AclBinding> {
    (
        prop::sample::select(vec![Rt::Topic, Rt::Group]),
        prop::sample::select(vec!["a", "ab", "abc", "b", "*"]),
        prop::sample::select(vec![Pt::Literal, Pt::Prefixed]),
        prop::sample::select(vec!["User:alice", "User:bob", "User:*"]),
        prop::sample::select(vec!["*", "10.0.0.1", "10.0.0.2"]),
        prop::sample::select(vec![
            Op::Read,
            Op::Write,
            Op::Describe,
            Op::All,
            Op::AlterConfigs,
        ]),
        prop::sample::select(vec![AclPermission::Allow, AclPermission::Deny]),
    )
        .prop_map(|(rt, name, pt, principal, host, op, perm)| {
            binding(rt, name, pt, principal, host, op, perm)
        })
}

proptest! {
    /// Invariants: the default only ever adds permissions; a DENY ALL for the principal on the
    /// exact resource always refuses; a super user is always allowed; `authorize` allowing a
    /// topic means `authorize_any` allows the type.
    #[test]
    fn authorizer_invariants(
        acls in proptest::collection::vec(arb_binding(), 0..12),
        name in prop::sample::select(vec!["a", "ab", "abc", "b", "c"]),
        op in prop::sample::select(vec![Op::Read, Op::Write, Op::Describe, Op::DescribeConfigs]),
        client in prop::sample::select(vec!["10.0.0.1", "10.0.0.2"]),
    ) {
        let acls = set(acls);
        let action = Action::new(op, Rt::Topic, name);
        let host = ip(client);
        let strict_answer = authorize(&acls, &strict(), &alice(), host, &action);
        prop_assert!(!strict_answer || authorize(&acls, &open(), &alice(), host, &action));
        if strict_answer && !matches!(op, Op::Describe | Op::DescribeConfigs) {
            prop_assert!(authorize_any(&acls, &strict(), &alice(), host, op, Rt::Topic));
        }
        let mut denied = acls.clone();
        denied.insert(deny(name, Pt::Literal, "User:alice", Op::All));
        prop_assert!(!authorize(&denied, &open(), &alice(), host, &action));
        let admin = AuthorizerConfig { super_users: vec![alice()], ..strict() };
        prop_assert!(authorize(&denied, &admin, &alice(), host, &action));
    }
}
