//! Fuzzes request-frame decoding: the size-prefix check and `decode_request` over arbitrary
//! bytes. Neither may panic or abort, whatever the API key, version, header or body.
//!
//! The broker's allocator (mimalloc, the default feature) is used here too, because
//! kafka-protocol reserves capacity for a claimed array length before reading the elements:
//! the target checks the process the broker actually runs.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use samsa_broker::protocol::codec::{decode_request, frame_size, Request};

fuzz_target!(|data: &[u8]| {
    if data.len() >= 4 {
        let _ = frame_size([data[0], data[1], data[2], data[3]], 100 * 1024 * 1024);
    }
    if let Ok(request) = decode_request(Bytes::copy_from_slice(data)) {
        // Whatever decodes carries the correlation id of the frame's first header bytes.
        let correlation = i32::from_be_bytes([data[4], data[5], data[6], data[7]]);
        assert_eq!(request.header().correlation_id, correlation);
        if let Request::LegacyProduce { topics, .. } = &request {
            assert!(topics.len() <= data.len());
        }
    }
});
