//! Tests for the SCRAM and PLAIN server: RFC 7677's exchange, full exchanges against a client
//! computed here from the RFC's formulas, every refusal, and random bytes at every step.

use super::*;
use proptest::prelude::*;

fn b64d(s: &str) -> Vec<u8> {
    BASE64.decode(s).unwrap()
}

// The client side, written from RFC 5802 section 3 with the hash crates directly, so the
// server's helpers are not checked against themselves.
fn c_hmac(mech: ScramMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    match mech {
        ScramMechanism::Sha256 => {
            let mut m = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(key).unwrap();
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        ScramMechanism::Sha512 => {
            let mut m = <Hmac<Sha512> as hmac::digest::KeyInit>::new_from_slice(key).unwrap();
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
    }
}

fn c_hash(mech: ScramMechanism, data: &[u8]) -> Vec<u8> {
    match mech {
        ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
        ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
    }
}

fn c_salted(mech: ScramMechanism, password: &str, salt: &[u8], i: u32) -> Vec<u8> {
    match mech {
        ScramMechanism::Sha256 => {
            pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password.as_bytes(), salt, i).to_vec()
        }
        ScramMechanism::Sha512 => {
            pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password.as_bytes(), salt, i).to_vec()
        }
    }
}

/// The client-final message for `server_first`, and the server signature the client expects.
fn client_final_for(
    mech: ScramMechanism,
    password: &str,
    gs2_header: &str,
    client_first_bare: &str,
    server_first: &str,
) -> (String, String) {
    let mut nonce = "";
    let mut salt = Vec::new();
    let mut iterations = 0u32;
    for attr in server_first.split(',') {
        match attr.split_at(2) {
            ("r=", v) => nonce = v,
            ("s=", v) => salt = b64d(v),
            ("i=", v) => iterations = v.parse().unwrap(),
            other => panic!("unexpected server-first attribute {other:?}"),
        }
    }
    let salted = c_salted(mech, password, &salt, iterations);
    let client_key = c_hmac(mech, &salted, b"Client Key");
    let stored_key = c_hash(mech, &client_key);
    let without_proof = format!("c={},r={nonce}", BASE64.encode(gs2_header));
    let auth = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = c_hmac(mech, &stored_key, auth.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(k, s)| k ^ s)
        .collect();
    let server_key = c_hmac(mech, &salted, b"Server Key");
    let server_signature = c_hmac(mech, &server_key, auth.as_bytes());
    (
        format!("{without_proof},p={}", BASE64.encode(proof)),
        format!("v={}", BASE64.encode(server_signature)),
    )
}

fn enabled_all() -> Vec<String> {
    SUPPORTED_MECHANISMS.iter().map(|m| m.to_string()).collect()
}

/// A credential store with `alice` / `secret` for both mechanisms.
fn store(user: &str, mech: ScramMechanism) -> Option<ScramCredential> {
    (user == "alice").then(|| ScramCredential::new(mech, "secret", b"alice-salt".to_vec(), 4096))
}

fn exchange(mech: ScramMechanism) -> ServerExchange {
    ServerExchange::start(mech.name(), &enabled_all()).unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

fn continue_text(step: Result<Step, AuthError>) -> String {
    match step.unwrap() {
        Step::Continue(c) => text(&c),
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn invalid_msg(mech: ScramMechanism) -> String {
    format!(
        "Authentication failed during authentication due to invalid credentials with SASL \
         mechanism {}",
        mech.name()
    )
}

/// Runs a SCRAM exchange for `user`/`password` with a client-first `gs2 + bare`.
fn run_scram(
    mech: ScramMechanism,
    gs2: &str,
    bare: &str,
    password: &str,
    lookup: &dyn Fn(&str, ScramMechanism) -> Option<ScramCredential>,
) -> (Result<Step, AuthError>, String) {
    let mut ex = exchange(mech);
    let server_first = continue_text(ex.step(format!("{gs2}{bare}").as_bytes(), lookup));
    let (final_msg, expected_v) = client_final_for(mech, password, gs2, bare, &server_first);
    (ex.step(final_msg.as_bytes(), lookup), expected_v)
}

#[test]
fn mechanisms_have_kafka_names_and_codes() {
    assert_eq!(ScramMechanism::Sha256.name(), "SCRAM-SHA-256");
    assert_eq!(ScramMechanism::Sha512.name(), "SCRAM-SHA-512");
    assert_eq!(ScramMechanism::Sha256.code(), 1);
    assert_eq!(ScramMechanism::Sha512.code(), 2);
    for m in ScramMechanism::VALUES {
        assert_eq!(ScramMechanism::from_name(m.name()), Some(m));
        assert_eq!(ScramMechanism::from_code(m.code()), Some(m));
        assert_eq!(m.min_iterations(), 4096);
        assert_eq!(m.max_iterations(), 16384);
    }
    assert_eq!(ScramMechanism::from_code(0), None);
    assert_eq!(ScramMechanism::from_code(3), None);
    assert_eq!(ScramMechanism::from_name("scram-sha-256"), None);
    assert_eq!(ScramMechanism::from_name("PLAIN"), None);
    assert!(ScramMechanism::Sha256.check_iterations(4096).is_ok());
    assert!(ScramMechanism::Sha256.check_iterations(16384).is_ok());
    assert_eq!(
        ScramMechanism::Sha512.check_iterations(4095).unwrap_err(),
        "Too few iterations: 4095 is less than the minimum 4096 for SCRAM-SHA-512"
    );
    assert_eq!(
        ScramMechanism::Sha256.check_iterations(16385).unwrap_err(),
        "Too many iterations: 16385 is more than the maximum 16384 for SCRAM-SHA-256"
    );
}

/// RFC 7677 section 3, byte for byte (the server nonce pinned to the RFC's).
#[test]
fn rfc7677_sha256_exchange() {
    let salt = b64d("W22ZaJ0SNY7soEsUEjb6gQ==");
    let cred = ScramCredential::new(ScramMechanism::Sha256, "pencil", salt.clone(), 4096);
    let salted = c_salted(ScramMechanism::Sha256, "pencil", &salt, 4096);
    let client_key = c_hmac(ScramMechanism::Sha256, &salted, b"Client Key");
    assert_eq!(cred.stored_key, c_hash(ScramMechanism::Sha256, &client_key));
    assert_eq!(
        cred.server_key,
        c_hmac(ScramMechanism::Sha256, &salted, b"Server Key")
    );
    assert_eq!(cred.iterations, 4096);
    assert_eq!(cred.salt, salt);

    let lookup = |u: &str, m: ScramMechanism| {
        (u == "user" && m == ScramMechanism::Sha256).then(|| cred.clone())
    };
    let mut ex = exchange(ScramMechanism::Sha256);
    let server_nonce = || Ok("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".to_string());
    let first = ex.step_with_nonce(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", &lookup, &server_nonce);
    assert_eq!(
        continue_text(first),
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    );
    let done = ex.step(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
          p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        &lookup,
    );
    assert_eq!(
        done.unwrap(),
        Step::Done {
            user: "user".to_string(),
            reply: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec(),
        }
    );
}

#[test]
fn full_exchanges_for_both_mechanisms() {
    for mech in ScramMechanism::VALUES {
        let mut ex = exchange(mech);
        let bare = "n=alice,r=fyko+d2lbbFgONRv9qkxdawL";
        let server_first = continue_text(ex.step(format!("n,,{bare}").as_bytes(), &store));
        let nonce = server_first
            .strip_prefix("r=fyko+d2lbbFgONRv9qkxdawL")
            .and_then(|s| s.split_once(','))
            .map(|(n, _)| n)
            .unwrap();
        assert_eq!(nonce.len(), 32, "{server_first}");
        assert!(nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b','));
        assert!(server_first.ends_with(&format!(",s={},i=4096", BASE64.encode(b"alice-salt"))));
        let (final_msg, expected_v) = client_final_for(mech, "secret", "n,,", bare, &server_first);
        assert_eq!(
            ex.step(final_msg.as_bytes(), &store).unwrap(),
            Step::Done {
                user: "alice".to_string(),
                reply: expected_v.into_bytes(),
            }
        );
    }
}

#[test]
fn server_nonces_differ_between_exchanges() {
    let first =
        |_: ()| continue_text(exchange(ScramMechanism::Sha256).step(b"n,,n=alice,r=abc", &store));
    assert_ne!(first(()), first(()));
}

#[test]
fn credentials_from_salted_password_match_password_credentials() {
    for mech in ScramMechanism::VALUES {
        let salted = c_salted(mech, "secret", b"salt", 4096);
        let a = ScramCredential::from_salted_password(mech, &salted, b"salt".to_vec(), 4096);
        let b = ScramCredential::new(mech, "secret", b"salt".to_vec(), 4096);
        assert_eq!(a, b);
        assert_eq!(a.stored_key.len(), mech.hash_len());
        assert!(a.check_password(mech, "secret"));
        assert!(!a.check_password(mech, "Secret"));
        assert!(!a.check_password(mech, ""));
    }
    let debug = format!(
        "{:?}",
        ScramCredential::new(ScramMechanism::Sha256, "p", vec![1], 4096)
    );
    assert_eq!(debug, "ScramCredential { iterations: 4096, .. }");
}

#[test]
fn random_salts_are_32_fresh_bytes() {
    let a = random_salt().unwrap();
    let b = random_salt().unwrap();
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
}

#[test]
fn wrong_password_fails_with_kafkas_message() {
    for mech in ScramMechanism::VALUES {
        let (result, _) = run_scram(mech, "n,,", "n=alice,r=abcdef", "wrong", &store);
        let err = result.unwrap_err();
        assert_eq!(err.kind(), AuthErrorKind::AuthenticationFailed);
        assert_eq!(err.error_code(), 58);
        assert_eq!(err.to_string(), invalid_msg(mech));
    }
}

#[test]
fn unknown_user_looks_like_a_wrong_password() {
    for mech in ScramMechanism::VALUES {
        let server_first = |user: &str| {
            continue_text(exchange(mech).step(format!("n,,n={user},r=abc").as_bytes(), &store))
        };
        let (a, b) = (server_first("mallory"), server_first("mallory"));
        let salt_of = |s: &str| s.split(',').nth(1).unwrap().to_string();
        // Stable salt per unknown name, different between names, and Kafka's default count.
        assert_eq!(salt_of(&a), salt_of(&b));
        assert_ne!(salt_of(&a), salt_of(&server_first("eve")));
        assert_eq!(b64d(&salt_of(&a)[2..]).len(), 32);
        assert!(a.ends_with(",i=4096"), "{a}");

        let (result, _) = run_scram(mech, "n,,", "n=mallory,r=abc", "secret", &store);
        assert_eq!(result.unwrap_err().to_string(), invalid_msg(mech));
    }
}

#[test]
fn credentials_below_the_minimum_iterations_fail_at_the_proof() {
    let weak = |u: &str, m: ScramMechanism| {
        (u == "alice").then(|| ScramCredential::new(m, "secret", b"s".to_vec(), 1000))
    };
    let mut ex = exchange(ScramMechanism::Sha256);
    let first = continue_text(ex.step(b"n,,n=alice,r=abc", &weak));
    assert!(first.ends_with(",i=4096"), "{first}");
    let (result, _) = run_scram(
        ScramMechanism::Sha256,
        "n,,",
        "n=alice,r=abc",
        "secret",
        &weak,
    );
    assert_eq!(
        result.unwrap_err().to_string(),
        invalid_msg(ScramMechanism::Sha256)
    );
}

#[test]
fn altered_or_replayed_nonces_fail() {
    let mech = ScramMechanism::Sha512;
    let bare = "n=alice,r=abc";
    let mut ex = exchange(mech);
    let server_first = continue_text(ex.step(format!("n,,{bare}").as_bytes(), &store));
    let (final_msg, _) = client_final_for(mech, "secret", "n,,", bare, &server_first);
    let altered = final_msg.replacen(",r=abc", ",r=abd", 1);
    let err = ex.step(altered.as_bytes(), &store).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid client nonce in the final client message."
    );
    assert_eq!(err.error_code(), 58);

    // A final message that succeeded once is refused by a new exchange (new server nonce).
    let mut first = exchange(mech);
    let sf = continue_text(first.step(format!("n,,{bare}").as_bytes(), &store));
    let (final_msg, _) = client_final_for(mech, "secret", "n,,", bare, &sf);
    assert!(matches!(
        first.step(final_msg.as_bytes(), &store),
        Ok(Step::Done { .. })
    ));
    let mut second = exchange(mech);
    continue_text(second.step(format!("n,,{bare}").as_bytes(), &store));
    let err = second.step(final_msg.as_bytes(), &store).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid client nonce in the final client message."
    );
}

#[test]
fn channel_binding_flags() {
    let mech = ScramMechanism::Sha256;
    // y,, (client supports binding, thinks the server does not): c= must echo y,,.
    let (result, _) = run_scram(mech, "y,,", "n=alice,r=abc", "secret", &store);
    assert!(matches!(result, Ok(Step::Done { .. })));

    // c= that does not echo the header.
    let mut ex = exchange(mech);
    let sf = continue_text(ex.step(b"n,,n=alice,r=abc", &store));
    let (final_msg, _) = client_final_for(mech, "secret", "y,,", "n=alice,r=abc", &sf);
    assert_eq!(
        ex.step(final_msg.as_bytes(), &store)
            .unwrap_err()
            .to_string(),
        "Invalid SCRAM client final message: the channel binding (c=) does not match the client \
         first message's GS2 header"
    );

    let err = exchange(mech)
        .step(b"p=tls-unique,,n=alice,r=abc", &store)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid SCRAM client first message: channel binding (p=) is not supported; use n,,"
    );
}

#[test]
fn authzid_must_be_the_user() {
    let mech = ScramMechanism::Sha256;
    let (result, expected_v) = run_scram(mech, "n,a=alice,", "n=alice,r=abc", "secret", &store);
    assert_eq!(
        result.unwrap(),
        Step::Done {
            user: "alice".to_string(),
            reply: expected_v.into_bytes(),
        }
    );
    let err = exchange(mech)
        .step(b"n,a=bob,n=alice,r=abc", &store)
        .unwrap_err();
    assert_eq!(err.to_string(), AUTHZID_MISMATCH);
    assert_eq!(err.error_code(), 58);
}

#[test]
fn extensions_tokenauth_refused_others_ignored() {
    let mech = ScramMechanism::Sha512;
    let err = exchange(mech)
        .step(b"n,,n=alice,r=abc,tokenauth=true", &store)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Authentication failed: delegation tokens (tokenauth=true) are not supported"
    );
    let (result, _) = run_scram(
        mech,
        "n,,",
        "n=alice,r=abc,tokenauth=false,x=1",
        "secret",
        &store,
    );
    assert!(matches!(result, Ok(Step::Done { .. })));
    let err = exchange(mech)
        .step(b"n,,m=ext,n=alice,r=abc", &store)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid SCRAM client first message: mandatory extensions (m=) are not supported"
    );
}

#[test]
fn sasl_names_are_decoded() {
    let lookup = |u: &str, m: ScramMechanism| {
        (u == "a,b=c").then(|| ScramCredential::new(m, "pw", b"salt".to_vec(), 4096))
    };
    let (result, _) = run_scram(
        ScramMechanism::Sha256,
        "n,,",
        "n=a=2Cb=3Dc,r=abc",
        "pw",
        &lookup,
    );
    match result.unwrap() {
        Step::Done { user, .. } => assert_eq!(user, "a,b=c"),
        other => panic!("{other:?}"),
    }
    for (token, message) in [
        (
            &b"n,,n=a=41,r=abc"[..],
            "user name: '=' must start =2C or =3D",
        ),
        (b"n,,n=,r=abc", "user name: empty"),
        (
            b"n,,n=alice,r=",
            "the nonce (r=) must be printable ASCII characters other than ','",
        ),
        (b"n,,r=abc,n=alice", "expected the user name (n=) first"),
        (b"n,,n=alice", "expected the nonce (r=) after the user name"),
        (b"n,,n=alice,r=abc,", "extension \"\" is not key=value"),
        (
            b"x,,n=alice,r=abc",
            "the GS2 channel binding flag must be n or y",
        ),
        (
            b"n,b=x,n=alice,r=abc",
            "the GS2 authzid must be a=<name> or empty",
        ),
        (b"n,", "the GS2 header ends without its second comma"),
        (b"", "no GS2 header (expected n,,)"),
        (b"n,,n=al\xffice,r=abc", "not UTF-8"),
    ] {
        let err = exchange(ScramMechanism::Sha256)
            .step(token, &lookup)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Invalid SCRAM client first message: {message}")
        );
        assert_eq!(err.error_code(), 58);
    }
}

#[test]
fn malformed_client_final_messages_name_the_problem() {
    let mech = ScramMechanism::Sha256;
    for (token, message) in [
        (&b"c=biws,r=abc"[..], "no proof (p=) at the end"),
        (b"c=biws,r=abc,p=!!!", "the proof (p=) is not base64"),
        (
            b"r=abc,c=biws,p=AAAA",
            "expected the channel binding (c=) first",
        ),
        (
            b"c=biws,p=AAAA",
            "expected the nonce (r=) after the channel binding",
        ),
        (
            b"c=!!,r=abc,p=AAAA",
            "the channel binding (c=) is not base64",
        ),
        (b"\xff", "not UTF-8"),
    ] {
        let mut ex = exchange(mech);
        continue_text(ex.step(b"n,,n=alice,r=abc", &store));
        let err = ex.step(token, &store).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Invalid SCRAM client final message: {message}")
        );
    }
    // A right-nonce message with a short proof.
    let mut ex = exchange(mech);
    let sf = continue_text(ex.step(b"n,,n=alice,r=abc", &store));
    let nonce = sf.split(',').next().unwrap();
    let err = ex
        .step(format!("c=biws,{nonce},p=AAAA").as_bytes(), &store)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid SCRAM client final message: the proof is 3 bytes, SCRAM-SHA-256 takes 32"
    );
}

#[test]
fn tokens_after_the_end_are_illegal() {
    let mech = ScramMechanism::Sha256;
    let mut ex = exchange(mech);
    let sf = continue_text(ex.step(b"n,,n=alice,r=abc", &store));
    let (final_msg, _) = client_final_for(mech, "secret", "n,,", "n=alice,r=abc", &sf);
    assert!(ex.step(final_msg.as_bytes(), &store).is_ok());
    let err = ex.step(b"more", &store).unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::IllegalSaslState);
    assert_eq!(err.error_code(), 34);
    assert_eq!(
        err.to_string(),
        "Unexpected SASL token: SCRAM-SHA-256 authentication is already complete"
    );

    let mut ex = exchange(mech);
    assert!(ex.step(b"garbage", &store).is_err());
    let err = ex.step(b"n,,n=alice,r=abc", &store).unwrap_err();
    assert_eq!(err.error_code(), 34);
    assert_eq!(
        err.to_string(),
        "Unexpected SASL token: SCRAM-SHA-256 authentication has already failed"
    );
    assert_eq!(
        format!("{ex:?}"),
        "ServerExchange { mechanism: \"SCRAM-SHA-256\", stage: \"failed\" }"
    );
}

fn plain_step(
    token: &[u8],
    lookup: &dyn Fn(&str, ScramMechanism) -> Option<ScramCredential>,
) -> Result<Step, AuthError> {
    ServerExchange::start("PLAIN", &enabled_all())
        .unwrap()
        .step(token, lookup)
}

#[test]
fn plain_checks_the_scram_credential() {
    let done = |user: &str| Step::Done {
        user: user.to_string(),
        reply: Vec::new(),
    };
    assert_eq!(
        plain_step(b"\0alice\0secret", &store).unwrap(),
        done("alice")
    );
    assert_eq!(
        plain_step(b"alice\0alice\0secret", &store).unwrap(),
        done("alice")
    );
    // Only a SCRAM-SHA-256 credential.
    let only256 = |u: &str, m: ScramMechanism| store(u, m).filter(|_| m == ScramMechanism::Sha256);
    assert_eq!(
        plain_step(b"\0alice\0secret", &only256).unwrap(),
        done("alice")
    );
    // SHA-512 is preferred: a stale SHA-256 credential with another password does not count.
    let both = |u: &str, m: ScramMechanism| match m {
        ScramMechanism::Sha512 => store(u, m),
        ScramMechanism::Sha256 => {
            (u == "alice").then(|| ScramCredential::new(m, "old", b"s".to_vec(), 4096))
        }
    };
    assert!(plain_step(b"\0alice\0old", &both).is_err());

    for (token, message) in [
        (&b"\0alice\0wrong"[..], PLAIN_INVALID),
        (b"\0mallory\0secret", PLAIN_INVALID),
        (b"bob\0alice\0secret", AUTHZID_MISMATCH),
        (
            b"\0\0secret",
            "Authentication failed: username not specified",
        ),
        (
            b"\0alice\0",
            "Authentication failed: password not specified",
        ),
        (
            b"alice\0secret",
            "Invalid SASL/PLAIN response: expected 3 tokens, got 2",
        ),
        (
            b"\0alice\0secret\0",
            "Invalid SASL/PLAIN response: expected 3 tokens, got 4",
        ),
        (
            b"\0al\xffice\0secret",
            "Invalid SASL/PLAIN response: not UTF-8",
        ),
    ] {
        let err = plain_step(token, &store).unwrap_err();
        assert_eq!(err.to_string(), message);
        assert_eq!(err.error_code(), 58);
    }
    assert_eq!(
        PLAIN_INVALID,
        "Authentication failed: Invalid username or password"
    );
}

#[test]
fn mechanisms_must_be_enabled_and_supported() {
    let enabled = vec!["SCRAM-SHA-512".to_string(), "GSSAPI".to_string()];
    assert!(ServerExchange::start("SCRAM-SHA-512", &enabled).is_ok());
    for name in ["SCRAM-SHA-256", "PLAIN", "GSSAPI", "scram-sha-512", ""] {
        let err = ServerExchange::start(name, &enabled).unwrap_err();
        assert_eq!(err.kind(), AuthErrorKind::UnsupportedMechanism);
        assert_eq!(err.error_code(), 33);
        assert_eq!(
            err.to_string(),
            format!("Unsupported SASL mechanism {name}")
        );
    }
    let ex = ServerExchange::start("PLAIN", &enabled_all()).unwrap();
    assert_eq!(ex.mechanism, "PLAIN");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_bytes_never_panic(
        first in proptest::collection::vec(any::<u8>(), 0..96),
        second in proptest::collection::vec(any::<u8>(), 0..96),
    ) {
        for mech in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
            let mut ex = ServerExchange::start(mech, &enabled_all()).unwrap();
            let _ = ex.step(&first, &store);
            let _ = ex.step(&second, &store);
        }
        // The final step after a valid first step.
        let mut ex = exchange(ScramMechanism::Sha256);
        prop_assert!(ex.step(b"n,,n=alice,r=abc", &store).is_ok());
        prop_assert!(ex.step(&second, &store).is_err());
    }

    #[test]
    fn near_valid_messages_never_panic(
        first in "[nyp]=?[a-z]{0,2},(a=[a-z=23CD]{0,4})?,(m=x,)?n=[a-z=,23CD]{0,6},r=[!-~]{0,6}(,[a-z]{0,3}=[!-~]{0,3}){0,2}",
        last in "c=[a-zA-Z0-9+/=]{0,8},r=[!-~]{0,12}(,[a-z]=[a-z]{0,2})?,p=[a-zA-Z0-9+/=]{0,48}",
    ) {
        for mech in ScramMechanism::VALUES {
            let mut ex = exchange(mech);
            if ex.step(first.as_bytes(), &store).is_ok() {
                prop_assert!(ex.step(last.as_bytes(), &store).is_err());
            }
        }
    }
}
