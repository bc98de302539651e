//! InitProducerId for idempotent producers: a fresh producer id with epoch 0 each time, as
//! Kafka does for producers without a transactional id. Transactions are not served yet.
//!
//! A single broker hands out ids from its own allocation file; a cluster member from blocks
//! the controllers commit, so two producers never share an id, whichever brokers they ask.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use super::Broker;

impl Broker {
    pub(super) async fn init_producer_id(
        &self,
        request: InitProducerIdRequest,
    ) -> (InitProducerIdResponse, i16) {
        let refuse = |code: ResponseError| {
            let r = InitProducerIdResponse::default()
                .with_error_code(code.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            (r, code.code())
        };
        if request.transactional_id.is_some() {
            return refuse(ResponseError::InvalidRequest);
        }
        let allocated = match &self.cluster {
            Some(manager) => manager.allocate_producer_id().await.map_err(|e| {
                // Retriable for the client, as Kafka answers while it has no block.
                tracing::warn!(error = %e, "cannot get a producer id block from the controllers");
                ResponseError::CoordinatorLoadInProgress
            }),
            None => self.registry.producer_ids.allocate().map_err(|e| {
                tracing::error!(error = %e, "cannot allocate a producer id");
                ResponseError::KafkaStorageError
            }),
        };
        match allocated {
            Ok(id) => {
                tracing::debug!(producer_id = id, "allocated producer id");
                (
                    InitProducerIdResponse::default()
                        .with_producer_id(ProducerId(id))
                        .with_producer_epoch(0),
                    0,
                )
            }
            Err(code) => refuse(code),
        }
    }
}
