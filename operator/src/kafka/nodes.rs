//! Connections to given brokers by node id, beside the bootstrap connection: requests that
//! Kafka sends to a partition leader, a group coordinator or every broker go here. Addresses
//! come from Metadata (and FindCoordinator); a connection that fails is dropped, and a request
//! whose reused connection turns out broken is sent once more on a fresh one.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::protocol::Request;
use tokio::sync::Mutex;

use super::conn::Conn;
use super::{AdminClient, AdminError};

/// One broker's address and its lazily opened connection.
#[derive(Default)]
pub(super) struct NodeConns {
    /// host:port by node id, as last reported.
    addresses: BTreeMap<i32, String>,
    /// The connection slot of each node.
    conns: BTreeMap<i32, Arc<Mutex<Option<Conn>>>>,
}

impl NodeConns {
    /// Records `id`'s address; a changed address drops the old connection.
    pub(super) fn learn(&mut self, id: i32, address: String) {
        if self.addresses.get(&id) != Some(&address) {
            self.conns.remove(&id);
            self.addresses.insert(id, address);
        }
    }

    fn slot(&mut self, id: i32) -> Option<(String, Arc<Mutex<Option<Conn>>>)> {
        let address = self.addresses.get(&id)?.clone();
        let slot = self.conns.entry(id).or_default().clone();
        Some((address, slot))
    }
}

/// Whether the connection is to be dropped after this outcome.
fn breaks_connection<T>(result: &Result<T, AdminError>) -> bool {
    matches!(
        result,
        Err(AdminError::Io { .. } | AdminError::Timeout { .. } | AdminError::Protocol { .. })
    )
}

impl AdminClient {
    /// Remembers the address of broker `id` (`host:port`).
    pub(super) async fn learn_node(&self, id: i32, host: &str, port: i32) {
        self.nodes.lock().await.learn(id, format!("{host}:{port}"));
    }

    /// Sends `request` to broker `id` at the highest common version in `min..=max`, asking
    /// Metadata for the broker's address when it is not known yet. A reused connection that
    /// fails with an I/O error (the broker restarted) is replaced and the request sent once
    /// more.
    pub(super) async fn call_node<R: Request + Sync>(
        &self,
        id: i32,
        api: &'static str,
        min: i16,
        max: i16,
        request: &R,
    ) -> Result<(R::Response, i16), AdminError> {
        let known = self.nodes.lock().await.slot(id);
        let (address, slot) = match known {
            Some(s) => s,
            None => {
                self.metadata(Some(&[])).await?;
                self.nodes
                    .lock()
                    .await
                    .slot(id)
                    .ok_or_else(|| AdminError::Connect {
                        addresses: format!("node {id}"),
                        reason: "not a live broker in Metadata".into(),
                    })?
            }
        };
        let mut guard = slot.lock().await;
        let mut retried = false;
        loop {
            let reused = guard.is_some();
            if guard.is_none() {
                let conn = Conn::connect(&address, self.timeout, self.tls.as_deref())
                    .await
                    .map_err(|reason| AdminError::Connect {
                        addresses: format!("node {id} at {address}"),
                        reason,
                    })?;
                *guard = Some(conn);
            }
            let Some(conn) = guard.as_mut() else {
                return Err(AdminError::Connect {
                    addresses: format!("node {id} at {address}"),
                    reason: "connection lost".into(),
                });
            };
            let result = conn.call(api, min, max, request).await;
            if breaks_connection(&result) {
                *guard = None;
                if reused && !retried && matches!(result, Err(AdminError::Io { .. })) {
                    retried = true;
                    continue;
                }
            }
            return result;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_address_drops_the_connection_slot() {
        let mut n = NodeConns::default();
        n.learn(1, "a:1".into());
        let (addr, first) = n.slot(1).unwrap();
        assert_eq!(addr, "a:1");
        n.learn(1, "a:1".into());
        assert!(Arc::ptr_eq(&first, &n.slot(1).unwrap().1));
        n.learn(1, "b:2".into());
        let (addr, second) = n.slot(1).unwrap();
        assert_eq!(addr, "b:2");
        assert!(!Arc::ptr_eq(&first, &second));
        assert!(n.slot(2).is_none());
    }
}
