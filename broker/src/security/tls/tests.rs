use super::*;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, IsCa, Issuer, KeyPair,
};

fn dn(parts: &[(DnType, &str)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (t, v) in parts {
        dn.push(t.clone(), *v);
    }
    dn
}

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = dn(&[(DnType::CommonName, name)]);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    Ca { params, key, pem }
}

/// A leaf signed by `ca`: (certificate PEM, key PEM, DER).
fn leaf(ca: &Ca, subject: DistinguishedName) -> (String, String, Vec<u8>) {
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.distinguished_name = subject;
    let key = KeyPair::generate().unwrap();
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

fn principal(der: Vec<u8>) -> String {
    principal_of(&CertificateDer::from(der))
        .unwrap()
        .to_string()
}

#[test]
fn principals_print_the_subject_as_kafka_does() {
    let ca = ca("test-ca");
    let (_, _, der) = leaf(
        &ca,
        dn(&[
            (DnType::CountryName, "US"),
            (DnType::OrganizationName, "acme"),
            (DnType::OrganizationalUnitName, "eng"),
            (DnType::CommonName, "alice"),
        ]),
    );
    assert_eq!(principal(der), "User:CN=alice,OU=eng,O=acme,C=US");
    let (_, _, der) = leaf(&ca, dn(&[(DnType::CommonName, "alice")]));
    assert_eq!(principal(der), "User:CN=alice");
    // Special characters are escaped; leading and trailing spaces too.
    let (_, _, der) = leaf(
        &ca,
        dn(&[
            (DnType::OrganizationName, " a+b "),
            (DnType::CommonName, "smith, john"),
        ]),
    );
    assert_eq!(principal(der), r"User:CN=smith\, john,O=\ a\+b\ ");
    // An attribute type without an RFC 2253 keyword: OID=#<DER of the value>.
    let mut email = DistinguishedName::new();
    email.push(
        DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
        DnValue::Ia5String("a@b.c".try_into().unwrap()),
    );
    email.push(DnType::CommonName, "bob");
    let (_, _, der) = leaf(&ca, email);
    assert_eq!(
        principal(der),
        "User:CN=bob,1.2.840.113549.1.9.1=#16056140622e63"
    );
    assert!(principal_of(&CertificateDer::from(vec![1, 2, 3])).is_err());
}

#[test]
fn der_lengths_and_tags_are_encoded() {
    assert_eq!(
        der_of(Class::Universal, false, Tag(12), b"ab"),
        [12, 2, b'a', b'b']
    );
    let long = vec![0u8; 300];
    let enc = der_of(Class::Universal, false, Tag(4), &long);
    assert_eq!(&enc[..4], &[4, 0x82, 0x01, 0x2c]);
    assert_eq!(
        der_of(Class::ContextSpecific, true, Tag(40), b""),
        [0xbf, 40, 0]
    );
    assert_eq!(escape("#x "), r"\#x\ ");
}

#[test]
fn client_auth_parses() {
    assert_eq!("none".parse::<ClientAuth>().unwrap(), ClientAuth::None);
    assert_eq!(
        "REQUESTED".parse::<ClientAuth>().unwrap(),
        ClientAuth::Requested
    );
    assert_eq!(
        "required".parse::<ClientAuth>().unwrap(),
        ClientAuth::Required
    );
    assert!("want"
        .parse::<ClientAuth>()
        .unwrap_err()
        .contains("required"));
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path(name);
        fs::write(&p, content).unwrap();
        p
    }
}

#[test]
fn server_configs_are_checked() {
    let ca = ca("test-ca");
    let (cert, key, _) = leaf(&ca, dn(&[(DnType::CommonName, "broker")]));
    let (_, other_key, _) = leaf(&ca, dn(&[(DnType::CommonName, "other")]));
    let f = Files::new();
    let mut files = ServerTlsFiles {
        certificate: f.write("cert.pem", &cert),
        key: f.write("key.pem", &key),
        truststore: None,
        client_auth: ClientAuth::None,
    };
    let (_, summary) = server_config(&files).unwrap();
    assert_eq!(summary.subject, "CN=broker");
    files.client_auth = ClientAuth::Required;
    let e = server_config(&files).unwrap_err().0;
    assert!(e.contains("--ssl-truststore-location"), "{e}");
    files.truststore = Some(f.write("ca.pem", &ca.pem));
    server_config(&files).unwrap();
    files.key = f.write("other.pem", &other_key);
    let e = server_config(&files).unwrap_err().0;
    assert!(
        e.contains("do not make a usable certificate and key"),
        "{e}"
    );
    files.key = f.path("missing.pem");
    let e = server_config(&files).unwrap_err().0;
    assert!(e.contains("missing.pem"), "{e}");
    files.key = f.write("garbage.pem", "not a key");
    let e = server_config(&files).unwrap_err().0;
    assert!(e.contains("no usable private key"), "{e}");
    let e = client_config(&f.path("nope.pem"), None).unwrap_err().0;
    assert!(e.contains("nope.pem"), "{e}");
    client_config(&f.path("ca.pem"), None).unwrap();
}

#[test]
fn reloads_install_new_files_and_keep_old_ones_on_errors() {
    let ca = ca("test-ca");
    let (cert, key, _) = leaf(&ca, dn(&[(DnType::CommonName, "one")]));
    let f = Files::new();
    let files = ServerTlsFiles {
        certificate: f.write("cert.pem", &cert),
        key: f.write("key.pem", &key),
        truststore: None,
        client_auth: ClientAuth::None,
    };
    let e = ReloadingServerConfig::load(
        "SSL",
        ServerTlsFiles {
            key: f.path("missing"),
            ..files.clone()
        },
    )
    .unwrap_err()
    .0;
    assert!(e.starts_with("listener SSL:"), "{e}");
    let r = ReloadingServerConfig::load("SSL", files).unwrap();
    let first = r.current();
    assert!(!r.check(), "nothing changed");
    // A half-written pair (new certificate, old key) is refused; the old config stays.
    let (cert2, key2, _) = leaf(&ca, dn(&[(DnType::CommonName, "two")]));
    f.write("cert.pem", &cert2);
    assert!(!r.check());
    assert!(Arc::ptr_eq(&first, &r.current()));
    f.write("key.pem", &key2);
    assert!(r.check());
    assert!(!Arc::ptr_eq(&first, &r.current()));
    f.write("cert.pem", "garbage");
    assert!(!r.check());
}
