//! The Fetch response (v4–v12) encoded by hand, so that record data can be sent from segment
//! files instead of being copied into the frame. Everything except the records is the same
//! message kafka-protocol encodes; the tests compare the two byte for byte.

use bytes::BufMut;
use kafka_protocol::messages::FetchResponse;

use super::reply::{Reply, ReplyBuilder};
use crate::log::FileSlice;

/// Lowest and highest Fetch version this encoder writes.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 4..=12;

/// Encodes `response` with the records of partition `p` of topic `t` being
/// `response.responses[t].partitions[p].records` (when set) followed by `files[t][p]`.
/// Records are null only when neither holds anything and `records` is `None`.
pub fn encode(
    version: i16,
    correlation_id: i32,
    response: &FetchResponse,
    files: &[Vec<Vec<FileSlice>>],
) -> std::io::Result<Reply> {
    if !VERSIONS.contains(&version) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("fetch version {version} is not encoded here"),
        ));
    }
    let w = Writer {
        flexible: version >= 12,
    };
    let mut out = ReplyBuilder::new();
    out.buf().put_i32(correlation_id);
    w.tags(out.buf());
    out.buf().put_i32(response.throttle_time_ms);
    if version >= 7 {
        out.buf().put_i16(response.error_code);
        out.buf().put_i32(response.session_id);
    }
    w.len(out.buf(), response.responses.len());
    for (t, topic) in response.responses.iter().enumerate() {
        w.string(out.buf(), topic.topic.as_bytes());
        w.len(out.buf(), topic.partitions.len());
        for (p, part) in topic.partitions.iter().enumerate() {
            let buf = out.buf();
            buf.put_i32(part.partition_index);
            buf.put_i16(part.error_code);
            buf.put_i64(part.high_watermark);
            buf.put_i64(part.last_stable_offset);
            if version >= 5 {
                buf.put_i64(part.log_start_offset);
            }
            match &part.aborted_transactions {
                None => w.null_array(buf),
                Some(aborted) => {
                    w.len(buf, aborted.len());
                    for a in aborted {
                        buf.put_i64(a.producer_id.0);
                        buf.put_i64(a.first_offset);
                        w.tags(buf);
                    }
                }
            }
            if version >= 11 {
                buf.put_i32(part.preferred_read_replica.0);
            }
            let slices = files
                .get(t)
                .and_then(|ps| ps.get(p))
                .map_or(&[][..], Vec::as_slice);
            let inline = part.records.as_ref();
            let file_len: u64 = slices.iter().map(FileSlice::len).sum();
            if inline.is_none() && slices.is_empty() {
                w.null_bytes(buf);
            } else {
                let len = inline.map_or(0, |b| b.len() as u64) + file_len;
                w.bytes_len(buf, len)?;
                if let Some(inline) = inline {
                    buf.put_slice(inline);
                }
                for slice in slices {
                    out.push_file(slice)?;
                }
            }
            w.tags(out.buf());
        }
        w.tags(out.buf());
    }
    w.tags(out.buf());
    out.finish()
}

/// Primitive encodings: the classic ones, or the compact ones of flexible versions.
struct Writer {
    flexible: bool,
}

impl Writer {
    fn uvarint(buf: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            buf.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        buf.put_u8(v as u8);
    }

    fn tags(&self, buf: &mut Vec<u8>) {
        if self.flexible {
            buf.put_u8(0);
        }
    }

    fn len(&self, buf: &mut Vec<u8>, n: usize) {
        if self.flexible {
            Self::uvarint(buf, n as u64 + 1);
        } else {
            buf.put_i32(i32::try_from(n).unwrap_or(i32::MAX));
        }
    }

    fn null_array(&self, buf: &mut Vec<u8>) {
        if self.flexible {
            buf.put_u8(0);
        } else {
            buf.put_i32(-1);
        }
    }

    fn string(&self, buf: &mut Vec<u8>, s: &[u8]) {
        if self.flexible {
            Self::uvarint(buf, s.len() as u64 + 1);
        } else {
            buf.put_i16(i16::try_from(s.len()).unwrap_or(i16::MAX));
        }
        buf.put_slice(s);
    }

    fn null_bytes(&self, buf: &mut Vec<u8>) {
        self.null_array(buf);
    }

    fn bytes_len(&self, buf: &mut Vec<u8>, len: u64) -> std::io::Result<()> {
        let n = i32::try_from(len).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "records over 2 GiB")
        })?;
        self.len(buf, n as usize);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::{ApiKey, BrokerId, ProducerId, ResponseKind, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use super::*;
    use crate::protocol::codec::encode_response;

    fn sample() -> FetchResponse {
        let part = |i: i32, records: Option<&'static [u8]>, aborted| {
            PartitionData::default()
                .with_partition_index(i)
                .with_error_code(if i == 2 { 1 } else { 0 })
                .with_high_watermark(1000 + i64::from(i))
                .with_last_stable_offset(900)
                .with_log_start_offset(7)
                .with_aborted_transactions(aborted)
                .with_preferred_read_replica(BrokerId(-1))
                .with_records(records.map(Bytes::from_static))
        };
        let long_name = "t".repeat(200);
        FetchResponse::default()
            .with_throttle_time_ms(3)
            .with_session_id(0)
            .with_responses(vec![
                FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_static_str("orders")))
                    .with_partitions(vec![
                        part(0, Some(b"batch-bytes-0"), None),
                        part(1, Some(b""), Some(vec![])),
                        part(2, None, None),
                    ]),
                FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_string(long_name)))
                    .with_partitions(vec![part(
                        5,
                        Some(b"x"),
                        Some(vec![AbortedTransaction::default()
                            .with_producer_id(ProducerId(42))
                            .with_first_offset(17)]),
                    )]),
            ])
    }

    #[test]
    fn matches_kafka_protocol_byte_for_byte_in_every_version() {
        let response = sample();
        for version in VERSIONS {
            let expected = encode_response(
                ApiKey::Fetch,
                version,
                77,
                &ResponseKind::Fetch(response.clone()),
            )
            .unwrap();
            let got = encode(version, 77, &response, &[])
                .unwrap()
                .to_vec()
                .unwrap();
            assert_eq!(got, expected.to_vec(), "fetch v{version}");
        }
    }

    #[test]
    fn file_ranges_are_spliced_into_the_records_field() {
        use std::io::Write;
        let mut file = tempfile::tempfile().unwrap();
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        file.write_all(b"..small..").unwrap();
        file.write_all(&big).unwrap();
        let file = std::sync::Arc::new(file);
        let small = FileSlice::for_tests(&file, 2, 5);
        let large = FileSlice::for_tests(&file, 9, big.len() as u64);
        // The same response with the bytes in memory is what kafka-protocol would send.
        let mut in_memory = sample();
        let mut with_files = sample();
        let mut joined = b"batch-bytes-0".to_vec();
        joined.extend_from_slice(b"small");
        joined.extend_from_slice(&big);
        in_memory.responses[0].partitions[0].records = Some(Bytes::from(joined));
        in_memory.responses[0].partitions[2].records = Some(Bytes::from(big.clone()));
        with_files.responses[0].partitions[2].records = None;
        let files = vec![vec![
            vec![small.clone(), large.clone()],
            vec![],
            vec![large.clone()],
        ]];
        for version in VERSIONS {
            let expected = encode_response(
                ApiKey::Fetch,
                version,
                9,
                &ResponseKind::Fetch(in_memory.clone()),
            )
            .unwrap();
            let reply = encode(version, 9, &with_files, &files).unwrap();
            let file_chunks = reply
                .chunks()
                .iter()
                .filter(|c| matches!(c, crate::protocol::reply::Chunk::File(_)))
                .count();
            assert_eq!(file_chunks, 2, "large ranges are sent from the file");
            assert_eq!(reply.len(), expected.len() as u64);
            assert_eq!(
                reply.to_vec().unwrap(),
                expected.to_vec(),
                "fetch v{version}"
            );
        }
    }

    #[test]
    fn refuses_versions_it_does_not_encode() {
        assert!(encode(3, 1, &sample(), &[]).is_err());
        assert!(encode(13, 1, &sample(), &[]).is_err());
    }
}
