//! The static voter set, parsed from Kafka's `controller.quorum.voters` format
//! (`id@host:port,id@host:port`). Parsing only; never resolves or connects.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Controller voters: node id → gRPC address (host:port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voters(pub BTreeMap<u64, String>);

impl Voters {
    /// The voter that initializes a never-initialized cluster: the lowest id.
    pub fn initializer(&self) -> Option<u64> {
        self.0.keys().next().copied()
    }

    /// The address of voter `id`.
    pub fn address(&self, id: u64) -> Option<&str> {
        self.0.get(&id).map(String::as_str)
    }

    /// Whether `id` is a voter.
    pub fn contains(&self, id: u64) -> bool {
        self.0.contains_key(&id)
    }
}

impl FromStr for Voters {
    type Err = String;

    fn from_str(s: &str) -> Result<Voters, String> {
        let mut voters = BTreeMap::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (id, addr) = part
                .split_once('@')
                .ok_or_else(|| format!("voter {part:?}: expected ID@HOST:PORT"))?;
            let id: u64 = id
                .trim()
                .parse()
                .map_err(|_| format!("voter {part:?}: bad id {id:?}"))?;
            let (host, port) = addr
                .rsplit_once(':')
                .ok_or_else(|| format!("voter {part:?}: expected ID@HOST:PORT"))?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(format!("voter {part:?}: bad address {addr:?}"));
            }
            if voters.insert(id, addr.to_string()).is_some() {
                return Err(format!("voter id {id} is listed twice"));
            }
        }
        if voters.is_empty() {
            return Err("no voters".to_string());
        }
        Ok(Voters(voters))
    }
}

impl fmt::Display for Voters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(id, a)| format!("{id}@{a}")).collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafka_voter_lists() {
        let v: Voters = "1@127.0.0.1:9093, 2@b2:9094,3@[::1]:9095".parse().unwrap();
        assert_eq!(v.0.len(), 3);
        assert_eq!(v.address(2), Some("b2:9094"));
        assert_eq!(v.address(3), Some("[::1]:9095"));
        assert_eq!(v.initializer(), Some(1));
        assert_eq!(v.to_string(), "1@127.0.0.1:9093,2@b2:9094,3@[::1]:9095");
        for bad in ["", "1", "x@h:1", "1@h", "1@h:99999", "1@h:1,1@h:2", "1@:9"] {
            assert!(bad.parse::<Voters>().is_err(), "{bad:?} should be refused");
        }
    }
}
