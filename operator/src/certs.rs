//! The operator's own certificate authority: generates CAs, issues broker (server) and client
//! leaf certificates from them, and reads certificates back to decide renewals (expiry, SANs,
//! issuer). Pure functions over PEM text; it never touches Kubernetes or the network, and it
//! never decides *when* to renew (callers pass `now` and their thresholds).
//!
//! Keys are ECDSA P-256 in PKCS#8 PEM; certificates are X.509 v3 PEM. Every leaf gets a fresh
//! key, and its serial number is derived from that key, so serials never repeat.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// How far back a new certificate's `notBefore` is set, so a peer whose clock is a little
/// behind still accepts it.
const BACKDATE: Duration = Duration::from_secs(5 * 60);
/// Organization in every subject the operator issues.
const ORGANIZATION: &str = "samsa";

/// Why a certificate could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen refused the parameters or the key.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// The PEM text holds no certificate, or one that does not parse.
    #[error("certificate parse: {0}")]
    Parse(String),
    /// A validity that does not fit a certificate's dates.
    #[error("validity of {0:?} is out of range")]
    Validity(Duration),
}

/// Result of the functions in this module.
pub type Result<T> = std::result::Result<T, CertError>;

/// A certificate authority: its self-signed certificate and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Ca {
    /// The CA certificate (PEM).
    pub cert_pem: String,
    /// The CA private key (PKCS#8 PEM).
    pub key_pem: String,
}

/// A leaf certificate issued by a [`Ca`] and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Leaf {
    /// The leaf certificate (PEM).
    pub cert_pem: String,
    /// The leaf private key (PKCS#8 PEM).
    pub key_pem: String,
}

// Keys stay out of debug output (and so out of logs).
impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Leaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaf")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// A new self-signed CA valid from now for `validity`.
    pub fn generate(common_name: &str, validity: Duration) -> Result<Ca> {
        let mut params = base_params(common_name, validity)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A server certificate for `dns_sans` (and subject `common_name`), usable for both
    /// serverAuth and clientAuth: brokers present it to clients and to each other (mutual TLS
    /// on the controller and replication ports).
    pub fn issue_server(
        &self,
        common_name: &str,
        dns_sans: &[String],
        validity: Duration,
    ) -> Result<Leaf> {
        let mut params = base_params(common_name, validity)?;
        params.subject_alt_names = dns_sans
            .iter()
            .map(|name| Ok(SanType::DnsName(name.as_str().try_into()?)))
            .collect::<Result<Vec<_>>>()?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.sign(params)
    }

    /// A client certificate whose subject is `CN=<common_name>` only (a Kafka principal
    /// `User:CN=<common_name>`), with the clientAuth extended key usage.
    pub fn issue_client(&self, common_name: &str, validity: Duration) -> Result<Leaf> {
        let mut params = base_params(common_name, validity)?;
        // The principal is the whole subject DN: keep it to the CN alone.
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    /// Whether `cert_pem` was signed by this CA's key (false when either does not parse). A
    /// leaf that fails this was issued by an earlier CA and must be re-issued.
    pub fn signed(&self, cert_pem: &str) -> bool {
        let (Ok(ca_der), Ok(leaf_der)) = (first_der(&self.cert_pem), first_der(cert_pem)) else {
            return false;
        };
        let (Ok((_, ca)), Ok((_, leaf))) = (
            x509_parser::parse_x509_certificate(&ca_der),
            x509_parser::parse_x509_certificate(&leaf_der),
        ) else {
            return false;
        };
        leaf.issuer() == ca.subject() && leaf.verify_signature(Some(ca.public_key())).is_ok()
    }

    fn sign(&self, params: CertificateParams) -> Result<Leaf> {
        let ca_key = KeyPair::from_pem(&self.key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, ca_key)?;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Subject `CN=<common_name>, O=samsa`, valid from a little before now for `validity`.
fn base_params(common_name: &str, validity: Duration) -> Result<CertificateParams> {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, ORGANIZATION);
    params.distinguished_name = dn;
    params.not_before = now - BACKDATE;
    params.not_after = now
        .checked_add(time::Duration::try_from(validity).map_err(|_| CertError::Validity(validity))?)
        .ok_or(CertError::Validity(validity))?;
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// DER of the first certificate in `cert_pem`.
fn first_der(cert_pem: &str) -> Result<CertificateDer<'static>> {
    CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|e| CertError::Parse(format!("no PEM certificate: {e}")))
}

/// Runs `f` on the parsed first certificate of `cert_pem`.
fn with_cert<T>(
    cert_pem: &str,
    f: impl FnOnce(&x509_parser::certificate::X509Certificate<'_>) -> Result<T>,
) -> Result<T> {
    let der = first_der(cert_pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| CertError::Parse(format!("X.509: {e}")))?;
    f(&cert)
}

/// The certificate's `notAfter`.
pub fn not_after(cert_pem: &str) -> Result<SystemTime> {
    with_cert(cert_pem, |cert| {
        let secs = cert.validity().not_after.timestamp();
        let secs = u64::try_from(secs)
            .map_err(|_| CertError::Parse(format!("notAfter {secs} is before 1970")))?;
        Ok(UNIX_EPOCH + Duration::from_secs(secs))
    })
}

/// Whether the certificate should be replaced at `now`: it expires within `renew_before`, or it
/// cannot be read at all.
pub fn needs_renewal(cert_pem: &str, renew_before: Duration, now: SystemTime) -> bool {
    match not_after(cert_pem) {
        Ok(expiry) => match expiry.checked_sub(renew_before) {
            Some(renew_at) => now >= renew_at,
            None => true,
        },
        Err(_) => true,
    }
}

/// Whether the certificate's DNS subject alternative names include every one of `dns_names`
/// (case-insensitive; false when it cannot be read). A broker whose set of names changed gets
/// a new certificate.
pub fn covers(cert_pem: &str, dns_names: &[String]) -> bool {
    dns_sans(cert_pem).is_ok_and(|sans| {
        dns_names
            .iter()
            .all(|name| sans.iter().any(|san| san.eq_ignore_ascii_case(name)))
    })
}

/// The certificate's DNS subject alternative names, in order.
pub fn dns_sans(cert_pem: &str) -> Result<Vec<String>> {
    with_cert(cert_pem, |cert| {
        let ext = cert
            .subject_alternative_name()
            .map_err(|e| CertError::Parse(format!("subjectAltName: {e}")))?;
        Ok(ext
            .map(|ext| {
                ext.value
                    .general_names
                    .iter()
                    .filter_map(|name| match name {
                        x509_parser::extensions::GeneralName::DNSName(dns) => {
                            Some((*dns).to_string())
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default())
    })
}

/// SHA-256 of the certificate's DER, lowercase hex: what a pod-template annotation carries so
/// that a re-issued certificate rolls the pod.
pub fn fingerprint(cert_pem: &str) -> Result<String> {
    let der = first_der(cert_pem)?;
    Ok(Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The subject DN in RFC 4514 form as Kafka prints principals (`CN=samsa-operator`).
pub fn subject(cert_pem: &str) -> Result<String> {
    with_cert(cert_pem, |cert| Ok(cert.subject().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::{ServerName, UnixTime};
    use webpki::{anchor_from_trusted_cert, EndEntityCert, KeyUsage, ALL_VERIFICATION_ALGS};

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn verify(ca: &Ca, leaf_pem: &str, usage: KeyUsage, at: SystemTime) -> bool {
        let ca_der = first_der(&ca.cert_pem).unwrap();
        let anchor = anchor_from_trusted_cert(&ca_der).unwrap();
        let leaf_der = first_der(leaf_pem).unwrap();
        let leaf = EndEntityCert::try_from(&leaf_der).unwrap();
        let time = UnixTime::since_unix_epoch(at.duration_since(UNIX_EPOCH).unwrap());
        leaf.verify_for_usage(
            ALL_VERIFICATION_ALGS,
            &[anchor],
            &[],
            time,
            usage,
            None,
            None,
        )
        .is_ok()
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn server_leaf_verifies_against_its_ca_only() {
        let ca = Ca::generate("c1-cluster-ca", 365 * DAY).unwrap();
        let other = Ca::generate("c2-cluster-ca", 365 * DAY).unwrap();
        let sans = names(&["c1-0.c1-headless.ns.svc", "localhost"]);
        let leaf = ca.issue_server("c1-0", &sans, 30 * DAY).unwrap();
        let now = SystemTime::now();
        assert!(verify(&ca, &leaf.cert_pem, KeyUsage::server_auth(), now));
        // Brokers also dial each other with it (mTLS on the internal ports).
        assert!(verify(&ca, &leaf.cert_pem, KeyUsage::client_auth(), now));
        assert!(!verify(
            &other,
            &leaf.cert_pem,
            KeyUsage::server_auth(),
            now
        ));
        assert!(ca.signed(&leaf.cert_pem));
        assert!(!other.signed(&leaf.cert_pem));

        let der = first_der(&leaf.cert_pem).unwrap();
        let ee = EndEntityCert::try_from(&der).unwrap();
        let name = ServerName::try_from("c1-0.c1-headless.ns.svc").unwrap();
        assert!(ee.verify_is_valid_for_subject_name(&name).is_ok());
        let wrong = ServerName::try_from("c1-1.c1-headless.ns.svc").unwrap();
        assert!(ee.verify_is_valid_for_subject_name(&wrong).is_err());
        // Not valid any more after its validity.
        assert!(!verify(
            &ca,
            &leaf.cert_pem,
            KeyUsage::server_auth(),
            now + 31 * DAY
        ));
    }

    #[test]
    fn client_leaf_is_cn_only_and_client_auth_only() {
        let ca = Ca::generate("c1-clients-ca", 365 * DAY).unwrap();
        let leaf = ca.issue_client("samsa-operator", 30 * DAY).unwrap();
        let now = SystemTime::now();
        assert!(verify(&ca, &leaf.cert_pem, KeyUsage::client_auth(), now));
        assert!(!verify(&ca, &leaf.cert_pem, KeyUsage::server_auth(), now));
        assert_eq!(subject(&leaf.cert_pem).unwrap(), "CN=samsa-operator");
        assert!(dns_sans(&leaf.cert_pem).unwrap().is_empty());
        assert!(leaf.key_pem.contains("BEGIN PRIVATE KEY"));
    }

    #[test]
    fn expiry_and_renewal_math() {
        let ca = Ca::generate("ca", 365 * DAY).unwrap();
        let leaf = ca.issue_client("u", 10 * DAY).unwrap();
        let now = SystemTime::now();
        let expiry = not_after(&leaf.cert_pem).unwrap();
        let left = expiry.duration_since(now).unwrap();
        assert!(
            left > 10 * DAY - Duration::from_secs(60) && left <= 10 * DAY,
            "{left:?}"
        );
        assert!(!needs_renewal(&leaf.cert_pem, 3 * DAY, now));
        assert!(!needs_renewal(&leaf.cert_pem, 3 * DAY, now + 6 * DAY));
        assert!(needs_renewal(&leaf.cert_pem, 3 * DAY, now + 8 * DAY));
        assert!(needs_renewal(&leaf.cert_pem, 11 * DAY, now));
        assert!(needs_renewal(
            &leaf.cert_pem,
            Duration::ZERO,
            now + 11 * DAY
        ));
        assert!(needs_renewal("not a certificate", DAY, now));
        assert!(needs_renewal("", DAY, now));
        let ca_expiry = not_after(&ca.cert_pem).unwrap();
        assert!(ca_expiry.duration_since(now).unwrap() > 364 * DAY);
    }

    #[test]
    fn covers_checks_every_name() {
        let ca = Ca::generate("ca", 365 * DAY).unwrap();
        let sans = names(&["a.ns.svc", "B.ns.svc", "localhost"]);
        let leaf = ca.issue_server("a", &sans, DAY).unwrap();
        assert!(covers(&leaf.cert_pem, &names(&["a.ns.svc", "localhost"])));
        assert!(covers(&leaf.cert_pem, &names(&["b.ns.svc"])));
        assert!(covers(&leaf.cert_pem, &[]));
        assert!(!covers(&leaf.cert_pem, &names(&["a.ns.svc", "c.ns.svc"])));
        assert!(!covers("garbage", &names(&["a.ns.svc"])));
        assert_eq!(dns_sans(&leaf.cert_pem).unwrap(), sans);
    }

    #[test]
    fn fingerprints_differ_per_issue_and_bad_input_is_an_error() {
        let ca = Ca::generate("ca", 365 * DAY).unwrap();
        let a = ca.issue_client("u", DAY).unwrap();
        let b = ca.issue_client("u", DAY).unwrap();
        let fa = fingerprint(&a.cert_pem).unwrap();
        assert_eq!(fa.len(), 64);
        assert_ne!(fa, fingerprint(&b.cert_pem).unwrap());
        assert!(fingerprint("nope").is_err());
        assert!(not_after("nope").is_err());
        assert!(!ca.signed("nope"));
        // A broken CA key is an error, not a panic.
        let broken = Ca {
            cert_pem: ca.cert_pem.clone(),
            key_pem: "junk".into(),
        };
        assert!(broken.issue_client("u", DAY).is_err());
        // An invalid DNS name is refused.
        assert!(ca
            .issue_server("x", &names(&["bad name\u{e9}"]), DAY)
            .is_err());
    }

    #[test]
    fn huge_validity_is_an_error() {
        assert!(matches!(
            Ca::generate("ca", Duration::from_secs(u64::MAX)),
            Err(CertError::Validity(_))
        ));
    }
}
