//! Which of a secured cluster's own certificates to keep and which to (re)issue: its CAs, one
//! certificate per broker pod and the operator's client certificate. The inputs are the
//! Secrets' current data; the outputs their new data and what changed. No I/O; certificates are
//! made with `certs`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::certs::{self, Ca, CertError};
use crate::crd::KafkaClusterSpec;

use super::security::{CA_CERT_KEY, CA_KEY_KEY, TLS_CERT_KEY, TLS_KEY_KEY};

const DAY: Duration = Duration::from_secs(24 * 3600);
/// A CA lives this many times as long as the certificates it issues.
pub const CA_VALIDITY_FACTOR: u32 = 5;

/// Lifetimes from `spec.tls` (defaults without it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// Validity of a leaf.
    pub validity: Duration,
    /// Renew a leaf (or a CA) this long before it expires.
    pub renew_before: Duration,
}

impl Lifetimes {
    /// The lifetimes a spec asks for.
    pub fn of(spec: &KafkaClusterSpec) -> Lifetimes {
        let tls = spec.tls.clone().unwrap_or_default();
        let days = |d: i32| DAY * u32::try_from(d.max(1)).unwrap_or(1);
        Lifetimes {
            validity: days(tls.validity_days),
            renew_before: days(tls.renew_before_days),
        }
    }

    /// Validity of a CA.
    pub fn ca_validity(&self) -> Duration {
        self.validity * CA_VALIDITY_FACTOR
    }
}

/// A CA from a Secret's data, when it has both halves.
pub fn ca_from(data: &BTreeMap<String, String>) -> Option<Ca> {
    Some(Ca {
        cert_pem: data.get(CA_CERT_KEY)?.clone(),
        key_pem: data.get(CA_KEY_KEY)?.clone(),
    })
}

/// A CA's Secret data.
pub fn ca_data(ca: &Ca) -> BTreeMap<String, String> {
    BTreeMap::from([
        (CA_CERT_KEY.to_string(), ca.cert_pem.clone()),
        (CA_KEY_KEY.to_string(), ca.key_pem.clone()),
    ])
}

/// The CA to use: the existing one unless it is missing, unreadable or due for renewal (then a
/// new one, and `true`).
pub fn ensure_ca(
    existing: Option<Ca>,
    common_name: &str,
    life: Lifetimes,
    now: SystemTime,
) -> Result<(Ca, bool), CertError> {
    if let Some(ca) = existing {
        if !certs::needs_renewal(&ca.cert_pem, life.renew_before, now)
            && rcgen::KeyPair::from_pem(&ca.key_pem).is_ok()
        {
            return Ok((ca, false));
        }
    }
    Ok((Ca::generate(common_name, life.ca_validity())?, true))
}

/// One broker pod's certificate to have: the pod and the names it must cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedCert {
    /// Pod name (the certificate's common name and file names).
    pub pod: String,
    /// DNS names.
    pub sans: Vec<String>,
}

/// The broker-certs Secret's new data and what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerCertsPlan {
    /// `<pod>.crt`, `<pod>.key` for every wanted pod, and `ca.crt`.
    pub data: BTreeMap<String, String>,
    /// Pods whose existing certificate was replaced (expiring, names changed, other CA).
    pub reissued: Vec<String>,
    /// Pods that got their first certificate.
    pub issued: Vec<String>,
    /// Pods whose certificates were dropped (no longer wanted).
    pub dropped: Vec<String>,
}

impl BrokerCertsPlan {
    /// Whether the Secret must be written.
    pub fn changed(&self, before: &BTreeMap<String, String>) -> bool {
        &self.data != before
    }
}

/// Keeps each wanted pod's certificate while it is readable, signed by `ca`, covers the pod's
/// names and is not due for renewal; issues the others. `renew_all` (a renewal asked for with
/// the `samsa.dev/renew-certificates` annotation) re-issues every existing one as well.
/// Certificates of pods no longer wanted are dropped.
pub fn plan_broker_certs(
    existing: &BTreeMap<String, String>,
    ca: &Ca,
    wanted: &[WantedCert],
    life: Lifetimes,
    now: SystemTime,
    renew_all: bool,
) -> Result<BrokerCertsPlan, CertError> {
    let mut data = BTreeMap::new();
    let mut reissued = Vec::new();
    let mut issued = Vec::new();
    for w in wanted {
        let crt = format!("{}.crt", w.pod);
        let key = format!("{}.key", w.pod);
        match (existing.get(&crt), existing.get(&key)) {
            (Some(c), Some(k))
                if !renew_all
                    && !certs::needs_renewal(c, life.renew_before, now)
                    && certs::covers(c, &w.sans)
                    && ca.signed(c) =>
            {
                data.insert(crt, c.clone());
                data.insert(key, k.clone());
            }
            (old, _) => {
                let leaf = ca.issue_server(&w.pod, &w.sans, life.validity)?;
                data.insert(crt, leaf.cert_pem);
                data.insert(key, leaf.key_pem);
                if old.is_some() {
                    reissued.push(w.pod.clone());
                } else {
                    issued.push(w.pod.clone());
                }
            }
        }
    }
    data.insert(CA_CERT_KEY.to_string(), ca.cert_pem.clone());
    let dropped = existing
        .keys()
        .filter_map(|k| k.strip_suffix(".crt"))
        .filter(|pod| *pod != "ca" && !wanted.iter().any(|w| w.pod == *pod))
        .map(str::to_string)
        .collect();
    Ok(BrokerCertsPlan {
        data,
        reissued,
        issued,
        dropped,
    })
}

/// Whether the KafkaCluster's `samsa.dev/renew-certificates` token (`asked`) asks for a renewal
/// not done yet: it is set, not empty, and differs from the token the broker-certs Secret
/// records as done (`done`).
pub fn renewal_asked(asked: Option<&str>, done: Option<&str>) -> bool {
    match asked.map(str::trim) {
        Some(token) if !token.is_empty() => done.map(str::trim) != Some(token),
        _ => false,
    }
}

/// The operator's client-certificate Secret data (`tls.crt`, `tls.key`, `ca.crt`): the existing
/// one while it is valid and from `ca`, else a new one (`true`).
pub fn plan_operator_cert(
    existing: &BTreeMap<String, String>,
    ca: &Ca,
    common_name: &str,
    life: Lifetimes,
    now: SystemTime,
) -> Result<(BTreeMap<String, String>, bool), CertError> {
    if let (Some(c), Some(_)) = (existing.get(TLS_CERT_KEY), existing.get(TLS_KEY_KEY)) {
        if !certs::needs_renewal(c, life.renew_before, now)
            && ca.signed(c)
            && existing.get(CA_CERT_KEY) == Some(&ca.cert_pem)
        {
            return Ok((existing.clone(), false));
        }
    }
    let leaf = ca.issue_client(common_name, life.validity)?;
    Ok((
        BTreeMap::from([
            (TLS_CERT_KEY.to_string(), leaf.cert_pem),
            (TLS_KEY_KEY.to_string(), leaf.key_pem),
            (CA_CERT_KEY.to_string(), ca.cert_pem.clone()),
        ]),
        true,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn life() -> Lifetimes {
        Lifetimes {
            validity: 30 * DAY,
            renew_before: 5 * DAY,
        }
    }

    fn wanted(pods: &[&str]) -> Vec<WantedCert> {
        pods.iter()
            .map(|p| WantedCert {
                pod: p.to_string(),
                sans: vec![format!("{p}.kc-headless.ns.svc"), "localhost".into()],
            })
            .collect()
    }

    #[test]
    fn lifetimes_follow_the_spec() {
        let mut spec = KafkaClusterSpec::default();
        assert_eq!(Lifetimes::of(&spec).validity, 365 * DAY);
        assert_eq!(Lifetimes::of(&spec).renew_before, 30 * DAY);
        spec.tls = Some(crate::crd::TlsSpec {
            issuer: None,
            validity_days: 10,
            renew_before_days: 2,
        });
        let l = Lifetimes::of(&spec);
        assert_eq!((l.validity, l.renew_before), (10 * DAY, 2 * DAY));
        assert_eq!(l.ca_validity(), 50 * DAY);
    }

    #[test]
    fn a_ca_is_kept_until_due() {
        let now = SystemTime::now();
        let (ca, new) = ensure_ca(None, "kc-cluster-ca", life(), now).unwrap();
        assert!(new);
        let (same, new) = ensure_ca(Some(ca.clone()), "kc-cluster-ca", life(), now).unwrap();
        assert!(!new);
        assert_eq!(same, ca);
        // CA validity is 150 days: due 5 days before.
        let (_, new) = ensure_ca(Some(ca.clone()), "x", life(), now + 146 * DAY).unwrap();
        assert!(new);
        let (_, new) = ensure_ca(Some(ca.clone()), "x", life(), now + 140 * DAY).unwrap();
        assert!(!new);
        assert_eq!(ca_from(&ca_data(&ca)), Some(ca));
    }

    #[test]
    fn broker_certs_are_issued_kept_renewed_and_dropped() {
        let now = SystemTime::now();
        let (ca, _) = ensure_ca(None, "ca", life(), now).unwrap();
        let first = plan_broker_certs(
            &BTreeMap::new(),
            &ca,
            &wanted(&["kc-0", "kc-1"]),
            life(),
            now,
            false,
        )
        .unwrap();
        assert_eq!(first.issued, vec!["kc-0", "kc-1"]);
        assert!(first.reissued.is_empty());
        assert_eq!(
            first.data.keys().collect::<Vec<_>>(),
            vec!["ca.crt", "kc-0.crt", "kc-0.key", "kc-1.crt", "kc-1.key"]
        );
        assert!(certs::covers(
            &first.data["kc-1.crt"],
            &["kc-1.kc-headless.ns.svc".to_string()]
        ));

        // Unchanged: nothing to write.
        let again = plan_broker_certs(
            &first.data,
            &ca,
            &wanted(&["kc-0", "kc-1"]),
            life(),
            now,
            false,
        )
        .unwrap();
        assert!(!again.changed(&first.data));

        // A scale-up issues only the new pod's; a scale-down drops the gone pod's.
        let up = plan_broker_certs(
            &first.data,
            &ca,
            &wanted(&["kc-0", "kc-1", "kc-2"]),
            life(),
            now,
            false,
        )
        .unwrap();
        assert_eq!(
            (up.issued.clone(), up.reissued.clone()),
            (vec!["kc-2".to_string()], vec![])
        );
        assert_eq!(up.data["kc-0.crt"], first.data["kc-0.crt"]);
        let down =
            plan_broker_certs(&up.data, &ca, &wanted(&["kc-0"]), life(), now, false).unwrap();
        assert_eq!(down.dropped, vec!["kc-1", "kc-2"]);
        assert!(!down.data.contains_key("kc-1.crt"));

        // Due for renewal (26 days of 30 gone, 5 before): re-issued.
        let later = plan_broker_certs(
            &first.data,
            &ca,
            &wanted(&["kc-0", "kc-1"]),
            life(),
            now + 26 * DAY,
            false,
        )
        .unwrap();
        assert_eq!(later.reissued, vec!["kc-0", "kc-1"]);
        let early = plan_broker_certs(
            &first.data,
            &ca,
            &wanted(&["kc-0", "kc-1"]),
            life(),
            now + 24 * DAY,
            false,
        )
        .unwrap();
        assert!(early.reissued.is_empty());

        // Names changed: re-issued.
        let mut renamed = wanted(&["kc-0"]);
        renamed[0].sans.push("kc-0.other".into());
        let r = plan_broker_certs(&first.data, &ca, &renamed, life(), now, false).unwrap();
        assert_eq!(r.reissued, vec!["kc-0"]);
        assert!(certs::covers(
            &r.data["kc-0.crt"],
            &["kc-0.other".to_string()]
        ));

        // Another CA: re-issued, and ca.crt follows.
        let (other, _) = ensure_ca(None, "ca2", life(), now).unwrap();
        let moved =
            plan_broker_certs(&first.data, &other, &wanted(&["kc-0"]), life(), now, false).unwrap();
        assert_eq!(moved.reissued, vec!["kc-0"]);
        assert!(other.signed(&moved.data["kc-0.crt"]));
        assert_eq!(moved.data["ca.crt"], other.cert_pem);

        // A renewal asked for re-issues every certificate, still valid or not, from the same CA.
        let forced = plan_broker_certs(
            &first.data,
            &ca,
            &wanted(&["kc-0", "kc-1"]),
            life(),
            now,
            true,
        )
        .unwrap();
        assert_eq!(forced.reissued, vec!["kc-0", "kc-1"]);
        assert!(forced.issued.is_empty());
        assert!(forced.changed(&first.data));
        assert_ne!(forced.data["kc-0.crt"], first.data["kc-0.crt"]);
        assert!(ca.signed(&forced.data["kc-1.crt"]));
        assert_eq!(forced.data["ca.crt"], ca.cert_pem);

        // Garbage in the Secret is replaced, not a panic.
        let mut junk = first.data.clone();
        junk.insert("kc-0.crt".into(), "junk".into());
        let fixed = plan_broker_certs(&junk, &ca, &wanted(&["kc-0"]), life(), now, false).unwrap();
        assert_eq!(fixed.reissued, vec!["kc-0"]);
    }

    #[test]
    fn a_renewal_token_asks_once() {
        assert!(!renewal_asked(None, None));
        assert!(!renewal_asked(Some(""), None));
        assert!(!renewal_asked(Some("  "), Some("a")));
        assert!(renewal_asked(Some("a"), None));
        assert!(renewal_asked(Some("b"), Some("a")));
        assert!(!renewal_asked(Some("a"), Some("a")));
        assert!(!renewal_asked(Some(" a "), Some("a")));
    }

    #[test]
    fn the_operator_cert_is_kept_until_due_or_the_ca_changes() {
        let now = SystemTime::now();
        let (ca, _) = ensure_ca(None, "ca", life(), now).unwrap();
        let (data, new) =
            plan_operator_cert(&BTreeMap::new(), &ca, "samsa-operator", life(), now).unwrap();
        assert!(new);
        assert_eq!(
            certs::subject(&data["tls.crt"]).unwrap(),
            "CN=samsa-operator"
        );
        assert_eq!(data["ca.crt"], ca.cert_pem);
        let (same, new) = plan_operator_cert(&data, &ca, "samsa-operator", life(), now).unwrap();
        assert!(!new);
        assert_eq!(same, data);
        let (_, new) =
            plan_operator_cert(&data, &ca, "samsa-operator", life(), now + 27 * DAY).unwrap();
        assert!(new);
        let (other, _) = ensure_ca(None, "ca2", life(), now).unwrap();
        let (_, new) = plan_operator_cert(&data, &other, "samsa-operator", life(), now).unwrap();
        assert!(new);
    }
}
