//! The Kafka listeners a broker serves, resolved from --listeners (or --listen),
//! --advertised-listeners (or --advertised-listener), --listener-security-protocol-map and the
//! ssl/sasl flags. Only parsing and checking: files are read when the listeners start.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;

use super::BrokerConfig;
use crate::security::tls::{ClientAuth, ServerTlsFiles};
use crate::security::SecurityProtocol;

/// The SASL mechanisms Samsa can offer.
pub const SUPPORTED_MECHANISMS: [&str; 3] = ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"];

/// SASL mechanism names (Kafka's, upper-case), as --sasl-enabled-mechanisms lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mechanisms(pub Vec<String>);

/// Parses a comma-separated list of mechanism names; duplicates are dropped.
pub(super) fn parse_mechanisms(v: &str) -> Result<Mechanisms, String> {
    let mut out: Vec<String> = Vec::new();
    for m in v.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let m = m.to_ascii_uppercase();
        if !SUPPORTED_MECHANISMS.contains(&m.as_str()) {
            return Err(format!(
                "SASL mechanism {m:?} is not supported: expected {}",
                SUPPORTED_MECHANISMS.join(", ")
            ));
        }
        if !out.contains(&m) {
            out.push(m);
        }
    }
    if out.is_empty() {
        return Err(format!(
            "no SASL mechanism: expected some of {}",
            SUPPORTED_MECHANISMS.join(", ")
        ));
    }
    Ok(Mechanisms(out))
}

/// One Kafka listener, ready to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// Upper-case name (`PLAINTEXT` for --listen).
    pub name: String,
    /// Its security protocol.
    pub protocol: SecurityProtocol,
    /// Host or address to bind (`0.0.0.0` for an empty HOST).
    pub bind_host: String,
    /// Port to bind (0: any free port).
    pub bind_port: u16,
    /// Host clients are told to connect to.
    pub advertised_host: String,
    /// Port clients are told to connect to (0: the bound port).
    pub advertised_port: u16,
    /// TLS files and client authentication (SSL, SASL_SSL).
    pub tls: Option<ServerTlsFiles>,
    /// Mechanisms offered (SASL_PLAINTEXT, SASL_SSL; empty otherwise).
    pub sasl_mechanisms: Vec<String>,
}

/// `NAME://HOST:PORT` split: (upper-case name, host without brackets, port).
fn parse_listener(flag: &str, item: &str) -> Result<(String, String, u16), String> {
    let (name, rest) = item
        .split_once("://")
        .ok_or_else(|| format!("{flag} {item:?}: expected NAME://HOST:PORT"))?;
    let name = listener_name(flag, item, name)?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("{flag} {item:?}: expected NAME://HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{flag} {item:?}: bad port {port:?}"))?;
    let host = if let Some(inner) = host.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| format!("{flag} {item:?}: unclosed [ in the host"))?;
        inner
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("{flag} {item:?}: {inner:?} is not an IPv6 address"))?;
        inner.to_string()
    } else if host.contains(':') {
        return Err(format!(
            "{flag} {item:?}: write an IPv6 address in brackets, e.g. [::1]"
        ));
    } else {
        host.to_string()
    };
    Ok((name, host, port))
}

fn listener_name(flag: &str, item: &str, name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        return Err(format!(
            "{flag} {item:?}: listener name {name:?} must be letters, digits, '_', '-' or '.'"
        ));
    }
    Ok(name.to_ascii_uppercase())
}

/// `NAME:VALUE,...` as an ordered map of upper-case names, each named once.
fn parse_name_map(flag: &str, v: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, value) = item
            .split_once(':')
            .ok_or_else(|| format!("{flag} {item:?}: expected NAME:VALUE"))?;
        let name = listener_name(flag, item, name)?;
        if value.trim().is_empty() {
            return Err(format!("{flag} {item:?}: empty value"));
        }
        if out.insert(name.clone(), value.trim().to_string()).is_some() {
            return Err(format!("{flag}: listener {name} is named twice"));
        }
    }
    Ok(out)
}

fn default_advertised_host(bind_host: &str) -> String {
    match bind_host.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => "localhost".to_string(),
        _ if bind_host.is_empty() => "localhost".to_string(),
        _ => bind_host.to_string(),
    }
}

/// Parses `--advertised-listener HOST:PORT`.
fn parse_host_port(flag: &str, s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{flag} {s:?}: expected HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{flag} {s:?}: bad port {port:?}"))?;
    if host.is_empty() {
        return Err(format!("{flag} {s:?}: empty host"));
    }
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

impl BrokerConfig {
    /// The Kafka listeners, checked: names unique and mapped to a protocol, ports unique, TLS
    /// listeners with a certificate and key, client authentication with a truststore.
    pub fn listener_specs(&self) -> Result<Vec<ListenerSpec>, String> {
        // (name, bind host, bind port), in the order given.
        let bound: Vec<(String, String, u16)> = match &self.listeners {
            None => vec![(
                "PLAINTEXT".to_string(),
                self.listen.ip().to_string(),
                self.listen.port(),
            )],
            Some(list) => {
                let mut out: Vec<(String, String, u16)> = Vec::new();
                for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                    let (name, host, port) = parse_listener("--listeners", item)?;
                    if out.iter().any(|(n, _, _)| *n == name) {
                        return Err(format!("--listeners: listener {name} is named twice"));
                    }
                    if port != 0 && out.iter().any(|(_, _, p)| *p == port) {
                        return Err(format!("--listeners: port {port} is used twice"));
                    }
                    let host = if host.is_empty() {
                        "0.0.0.0".to_string()
                    } else {
                        host
                    };
                    out.push((name, host, port));
                }
                if out.is_empty() {
                    return Err("--listeners: no listener given".to_string());
                }
                out
            }
        };
        let names: BTreeSet<&str> = bound.iter().map(|(n, _, _)| n.as_str()).collect();
        let check_names = |flag: &str, map: &BTreeMap<String, String>| -> Result<(), String> {
            match map.keys().find(|n| !names.contains(n.as_str())) {
                Some(n) => Err(format!("{flag}: {n} is not a listener of --listeners")),
                None => Ok(()),
            }
        };
        let mut advertised: BTreeMap<String, (String, u16)> = BTreeMap::new();
        if let Some(list) = &self.advertised_listeners {
            for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                let (name, host, port) = parse_listener("--advertised-listeners", item)?;
                if host.is_empty() {
                    return Err(format!("--advertised-listeners {item:?}: empty host"));
                }
                if !names.contains(name.as_str()) {
                    return Err(format!(
                        "--advertised-listeners: {name} is not a listener of --listeners"
                    ));
                }
                if advertised.insert(name.clone(), (host, port)).is_some() {
                    return Err(format!(
                        "--advertised-listeners: listener {name} is named twice"
                    ));
                }
            }
        }
        if let (Some(single), Some((first, _, _))) = (&self.advertised_listener, bound.first()) {
            advertised.insert(
                first.clone(),
                parse_host_port("--advertised-listener", single)?,
            );
        }
        let protocols = parse_name_map(
            "--listener-security-protocol-map",
            &self.listener_security_protocol_map,
        )?;
        let client_auth = parse_name_map(
            "--listener-ssl-client-auth",
            self.listener_ssl_client_auth.as_deref().unwrap_or_default(),
        )?;
        check_names("--listener-ssl-client-auth", &client_auth)?;
        let truststores = parse_name_map(
            "--listener-ssl-truststore-location",
            self.listener_ssl_truststore_location
                .as_deref()
                .unwrap_or_default(),
        )?;
        check_names("--listener-ssl-truststore-location", &truststores)?;
        let mut specs = Vec::with_capacity(bound.len());
        for (name, bind_host, bind_port) in bound {
            let protocol: SecurityProtocol = protocols
                .get(&name)
                .ok_or_else(|| {
                    format!(
                        "listener {name} has no security protocol: add {name}:<PLAINTEXT|SSL|\
                         SASL_PLAINTEXT|SASL_SSL> to --listener-security-protocol-map"
                    )
                })?
                .parse()
                .map_err(|e| format!("--listener-security-protocol-map: {e}"))?;
            let auth = match client_auth.get(&name) {
                Some(v) => v
                    .parse::<ClientAuth>()
                    .map_err(|e| format!("--listener-ssl-client-auth: {e}"))?,
                None => self.ssl_client_auth,
            };
            let truststore = truststores
                .get(&name)
                .map(PathBuf::from)
                .or_else(|| self.ssl_truststore_location.clone());
            let tls = if protocol.tls() {
                let (Some(certificate), Some(key)) =
                    (&self.ssl_certificate_location, &self.ssl_key_location)
                else {
                    return Err(format!(
                        "listener {name} is {protocol}: it needs --ssl-certificate-location and \
                         --ssl-key-location"
                    ));
                };
                if auth != ClientAuth::None && truststore.is_none() {
                    return Err(format!(
                        "listener {name}: ssl client auth {auth} needs --ssl-truststore-location \
                         or --listener-ssl-truststore-location {name}:<path>"
                    ));
                }
                Some(ServerTlsFiles {
                    certificate: certificate.clone(),
                    key: key.clone(),
                    truststore,
                    client_auth: auth,
                })
            } else {
                for (flag, map) in [
                    ("--listener-ssl-client-auth", &client_auth),
                    ("--listener-ssl-truststore-location", &truststores),
                ] {
                    if map.contains_key(&name) {
                        return Err(format!(
                            "{flag}: listener {name} is {protocol}, not SSL or SASL_SSL"
                        ));
                    }
                }
                None
            };
            let (advertised_host, advertised_port) = advertised
                .remove(&name)
                .unwrap_or_else(|| (default_advertised_host(&bind_host), bind_port));
            specs.push(ListenerSpec {
                sasl_mechanisms: if protocol.sasl() {
                    self.sasl_enabled_mechanisms.0.clone()
                } else {
                    Vec::new()
                },
                name,
                protocol,
                bind_host,
                bind_port,
                advertised_host,
                advertised_port,
                tls,
            });
        }
        Ok(specs)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn specs(args: &[&str]) -> Result<Vec<ListenerSpec>, String> {
        let mut all = vec!["samsa-broker"];
        all.extend_from_slice(args);
        BrokerConfig::try_parse_from(all)
            .map_err(|e| e.to_string())?
            .listener_specs()
    }

    const TLS: [&str; 4] = [
        "--ssl-certificate-location",
        "/c.pem",
        "--ssl-key-location",
        "/k.pem",
    ];

    #[test]
    fn listen_alone_is_one_plaintext_listener() {
        let s = specs(&[]).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "PLAINTEXT");
        assert_eq!(s[0].protocol, SecurityProtocol::Plaintext);
        assert_eq!((s[0].bind_host.as_str(), s[0].bind_port), ("0.0.0.0", 9092));
        assert_eq!(
            (s[0].advertised_host.as_str(), s[0].advertised_port),
            ("localhost", 9092)
        );
        let s = specs(&[
            "--listen",
            "127.0.0.1:9000",
            "--advertised-listener",
            "b1:19092",
        ])
        .unwrap();
        assert_eq!(s[0].bind_host, "127.0.0.1");
        assert_eq!(
            (s[0].advertised_host.as_str(), s[0].advertised_port),
            ("b1", 19092)
        );
    }

    #[test]
    fn listeners_parse_with_protocols_tls_and_advertised_endpoints() {
        let mut args = vec![
            "--listeners",
            "plaintext://:9092,SSL://127.0.0.1:9093,INTERNAL://[::]:9095,sasl_ssl://host-a:9096",
            "--advertised-listeners",
            "SSL://broker-0.example:19093,internal://[fd00::1]:19095",
            "--listener-security-protocol-map",
            "PLAINTEXT:PLAINTEXT,SSL:SSL,INTERNAL:SSL,SASL_SSL:SASL_SSL",
            "--ssl-truststore-location",
            "/ca.pem",
            "--listener-ssl-client-auth",
            "INTERNAL:required",
            "--listener-ssl-truststore-location",
            "internal:/cluster-ca.pem",
            "--sasl-enabled-mechanisms",
            "scram-sha-512,PLAIN",
        ];
        args.extend(TLS);
        let s = specs(&args).unwrap();
        let names: Vec<_> = s.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["PLAINTEXT", "SSL", "INTERNAL", "SASL_SSL"]);
        assert_eq!(s[0].bind_host, "0.0.0.0");
        assert_eq!(s[0].advertised_host, "localhost");
        assert!(s[0].tls.is_none() && s[0].sasl_mechanisms.is_empty());
        assert_eq!(
            (s[1].advertised_host.as_str(), s[1].advertised_port),
            ("broker-0.example", 19093)
        );
        let tls = s[1].tls.as_ref().unwrap();
        assert_eq!(tls.client_auth, ClientAuth::None);
        assert_eq!(tls.truststore, Some(PathBuf::from("/ca.pem")));
        assert_eq!(s[2].bind_host, "::");
        assert_eq!(s[2].advertised_host, "fd00::1");
        let tls = s[2].tls.as_ref().unwrap();
        assert_eq!(tls.client_auth, ClientAuth::Required);
        assert_eq!(tls.truststore, Some(PathBuf::from("/cluster-ca.pem")));
        assert_eq!(s[3].protocol, SecurityProtocol::SaslSsl);
        assert_eq!(s[3].advertised_host, "host-a");
        assert_eq!(s[3].sasl_mechanisms, ["SCRAM-SHA-512", "PLAIN"]);
    }

    #[test]
    fn bad_listener_settings_name_their_flag() {
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (
                vec!["--listen", "0.0.0.0:1", "--listeners", "PLAINTEXT://:2"],
                "--listen",
            ),
            (vec!["--listeners", "PLAINTEXT:9092"], "NAME://HOST:PORT"),
            (vec!["--listeners", "PLAINTEXT://:x"], "bad port"),
            (vec!["--listeners", "PLAINTEXT://::1:9092"], "brackets"),
            (vec!["--listeners", "A://:1,a://:2"], "named twice"),
            (
                vec!["--listeners", "PLAINTEXT://:1,SSL://h:1"],
                "port 1 is used twice",
            ),
            (
                vec!["--listeners", "WEIRD://:1"],
                "WEIRD has no security protocol",
            ),
            (
                vec!["--listeners", "SSL://:1"],
                "--ssl-certificate-location",
            ),
            (
                vec![
                    "--listeners",
                    "PLAINTEXT://:1",
                    "--advertised-listeners",
                    "SSL://h:1",
                ],
                "--advertised-listeners: SSL is not a listener",
            ),
            (
                vec![
                    "--advertised-listener",
                    "h:1",
                    "--advertised-listeners",
                    "PLAINTEXT://h:1",
                ],
                "--advertised-listener",
            ),
            (
                vec!["--listener-security-protocol-map", "PLAINTEXT:TLS"],
                "expected PLAINTEXT, SSL",
            ),
            (
                vec!["--listener-ssl-client-auth", "SSL:required"],
                "SSL is not a listener",
            ),
            (
                vec!["--listener-ssl-client-auth", "PLAINTEXT:required"],
                "not SSL or SASL_SSL",
            ),
            (
                vec!["--ssl-client-auth", "maybe"],
                "expected none, requested or required",
            ),
            (vec!["--sasl-enabled-mechanisms", "GSSAPI"], "GSSAPI"),
            (
                vec!["--ssl-reload-interval-ms", "0"],
                "ssl-reload-interval-ms",
            ),
        ];
        for (args, expected) in cases {
            let e = specs(&args).unwrap_err();
            assert!(e.contains(expected), "{args:?}: {e}");
        }
        let mut args = vec!["--listeners", "SSL://:1", "--ssl-client-auth", "required"];
        args.extend(TLS);
        let e = specs(&args).unwrap_err();
        assert!(
            e.contains("listener SSL") && e.contains("--ssl-truststore-location"),
            "{e}"
        );
    }
}
