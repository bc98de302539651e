//! Fuzzes the RecordBatch v2 decoders fed by producers and by segment files at recovery:
//! `validate_produce_batch`, `parse_header`, the batch iterator and the header patches.
//! None may panic; a batch that validates must stay valid after the broker's patches.

#![no_main]

use libfuzzer_sys::fuzz_target;
use samsa_broker::log::batch::{
    log_append_time_header, parse_header, validate_produce_batch, write_offset_and_epoch,
    BatchIter, CRC_START, HEADER_LEN,
};

fuzz_target!(|data: &[u8]| {
    let _ = parse_header(data);

    // Most mutations break the CRC; re-seal a copy so the record walker sees them too.
    if data.len() > CRC_START {
        let mut sealed = data.to_vec();
        let crc = crc32c::crc32c(&sealed[CRC_START..]);
        sealed[17..21].copy_from_slice(&crc.to_be_bytes());
        let _ = validate_produce_batch(&sealed);
    }

    if let Ok(header) = validate_produce_batch(data) {
        assert_eq!(header.total_len(), data.len());

        let mut patched = data.to_vec();
        write_offset_and_epoch(&mut patched, 42, 7);
        let stored = validate_produce_batch(&patched).expect("offset/epoch patch broke the batch");
        assert_eq!((stored.base_offset, stored.partition_leader_epoch), (42, 7));

        let header = log_append_time_header(data, 1_700_000_000_000).expect("valid batch");
        let mut stamped = header.to_vec();
        stamped.extend_from_slice(&data[HEADER_LEN..]);
        let stamped = validate_produce_batch(&stamped).expect("LogAppendTime broke the batch");
        assert!(stamped.timestamp_type_is_log_append());
    }

    for verify_crc in [false, true] {
        let mut iter = BatchIter::new(data).verify_crc(verify_crc);
        let mut end = 0;
        for item in iter.by_ref() {
            match item {
                Ok((position, header)) => {
                    assert_eq!(position, end);
                    end = position + header.total_len();
                    assert!(end <= data.len());
                }
                Err(_) => break,
            }
        }
        assert_eq!(iter.valid_len(), end);
    }
});
