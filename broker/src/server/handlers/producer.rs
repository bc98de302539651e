//! InitProducerId for idempotent producers: a fresh producer id with epoch 0 each time, as
//! Kafka does for producers without a transactional id. Transactions are not served yet.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use super::Broker;

impl Broker {
    pub(super) fn init_producer_id(
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
        match self.registry.producer_ids.allocate() {
            Ok(id) => {
                tracing::debug!(producer_id = id, "allocated producer id");
                (
                    InitProducerIdResponse::default()
                        .with_producer_id(ProducerId(id))
                        .with_producer_epoch(0),
                    0,
                )
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot allocate a producer id");
                refuse(ResponseError::KafkaStorageError)
            }
        }
    }
}
