//! Sans-io request decoding and response encoding.
//!
//! Takes one frame (the bytes after the 4-byte size prefix) and returns a typed request, or says
//! why the frame cannot be served. Encodes responses with the right header version and the size
//! prefix. Knows nothing of sockets and never panics on any input.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::api::{self, PRODUCE_MIN_SERVED};

/// The smallest possible request: api key, api version, correlation id, client id length.
const MIN_REQUEST_LEN: usize = 2 + 2 + 4 + 2;

/// Why a frame cannot be served. Every variant closes the connection, as Kafka does, except
/// that the caller answers [`Request::UnsupportedApiVersions`] and legacy produce itself.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The size prefix is negative or above socket.request.max.bytes.
    #[error("frame size {size} outside 0..={max}")]
    BadSize {
        /// Size read from the prefix.
        size: i32,
        /// Largest size accepted.
        max: i32,
    },
    /// The request header cannot be parsed.
    #[error("unparseable request header: {0}")]
    BadHeader(String),
    /// The API key is not one this broker serves.
    #[error("unsupported API key {api_key} (version {version})")]
    UnknownApi {
        /// Raw API key.
        api_key: i16,
        /// Raw version.
        version: i16,
        /// Correlation id of the request.
        correlation_id: i32,
    },
    /// The API is served but not at this version.
    #[error("unsupported version {version} of {api:?}")]
    UnsupportedVersion {
        /// The API.
        api: ApiKey,
        /// Version asked for.
        version: i16,
    },
    /// The body does not decode at the version given.
    #[error("unparseable {api:?} v{version} body: {reason}")]
    BadBody {
        /// The API.
        api: ApiKey,
        /// Version given.
        version: i16,
        /// Decoder message.
        reason: String,
    },
}

/// Checks the 4-byte size prefix of a frame against the largest frame accepted.
pub fn frame_size(prefix: [u8; 4], max: i32) -> Result<usize, FrameError> {
    let size = i32::from_be_bytes(prefix);
    if size < 0 || size > max {
        return Err(FrameError::BadSize { size, max });
    }
    Ok(size as usize)
}

/// A decoded request.
#[derive(Debug)]
pub enum Request {
    /// A request of a served API at a served version.
    Kafka {
        /// The request header.
        header: RequestHeader,
        /// The decoded body (boxed: the request enum is large).
        body: Box<RequestKind>,
    },
    /// ApiVersions at a version above the highest served: answered in v0 with
    /// UNSUPPORTED_VERSION and the served list (KIP-511).
    UnsupportedApiVersions {
        /// The request header.
        header: RequestHeader,
    },
    /// Produce v0–2, which predate record batch v2: every partition gets UNSUPPORTED_VERSION.
    LegacyProduce {
        /// The request header.
        header: RequestHeader,
        /// acks of the request (0 means no response is sent).
        acks: i16,
        /// Topics and their partition indexes, in request order.
        topics: Vec<(StrBytes, Vec<i32>)>,
    },
}

impl Request {
    /// The header of any request.
    pub fn header(&self) -> &RequestHeader {
        match self {
            Request::Kafka { header, .. }
            | Request::UnsupportedApiVersions { header }
            | Request::LegacyProduce { header, .. } => header,
        }
    }
}

/// Decodes one frame (without its size prefix).
pub fn decode_request(frame: Bytes) -> Result<Request, FrameError> {
    if frame.len() < MIN_REQUEST_LEN {
        return Err(FrameError::BadHeader(format!("{} bytes", frame.len())));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let unknown = FrameError::UnknownApi {
        api_key: raw_key,
        version,
        correlation_id,
    };
    let Ok(key) = ApiKey::try_from(raw_key) else {
        return Err(unknown);
    };
    let Some(range) = api::served_range(key) else {
        return Err(unknown);
    };
    let mut buf = frame;
    if key == ApiKey::ApiVersions && version > range.max {
        // A newer client: its header version is at least what we know; the body is ignored.
        let header = decode_header(&mut buf, key, range.max)?;
        return Ok(Request::UnsupportedApiVersions { header });
    }
    if version < range.min || version > range.max {
        return Err(FrameError::UnsupportedVersion { api: key, version });
    }
    if key == ApiKey::Produce && version < PRODUCE_MIN_SERVED {
        let header = decode_header(&mut buf, key, version)?;
        return decode_legacy_produce(header, &mut buf);
    }
    let header = decode_header(&mut buf, key, version)?;
    let bad_body = |reason: String| FrameError::BadBody {
        api: key,
        version,
        reason,
    };
    // The decoder is third-party code fed by the network: a panic in it must not take the
    // connection task down with an unwinding panic, so it is contained here.
    let body = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        RequestKind::decode(key, &mut buf, version)
    }))
    .map_err(|_| bad_body("decoder panicked".to_string()))?
    .map_err(|e| bad_body(e.to_string()))?;
    Ok(Request::Kafka {
        header,
        body: Box::new(body),
    })
}

fn decode_header(buf: &mut Bytes, key: ApiKey, version: i16) -> Result<RequestHeader, FrameError> {
    let header_version = key.request_header_version(version);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        RequestHeader::decode(buf, header_version)
    }))
    .map_err(|_| FrameError::BadHeader("decoder panicked".to_string()))?
    .map_err(|e| FrameError::BadHeader(e.to_string()))
}

/// Produce v0–2 body: acks, timeout, [topic, [partition, message set]].
fn decode_legacy_produce(header: RequestHeader, buf: &mut Bytes) -> Result<Request, FrameError> {
    let bad = |reason: &str| FrameError::BadBody {
        api: ApiKey::Produce,
        version: header.request_api_version,
        reason: reason.to_string(),
    };
    let acks = get_i16(buf).ok_or_else(|| bad("acks"))?;
    get_i32(buf).ok_or_else(|| bad("timeout"))?;
    let n_topics = get_i32(buf).ok_or_else(|| bad("topic count"))?;
    let mut topics = Vec::new();
    for _ in 0..n_topics.max(0) {
        let len = get_i16(buf).ok_or_else(|| bad("topic name"))?;
        let len = usize::try_from(len).map_err(|_| bad("null topic name"))?;
        if buf.remaining() < len {
            return Err(bad("topic name"));
        }
        let name = StrBytes::from_utf8(buf.split_to(len)).map_err(|_| bad("topic name utf-8"))?;
        let n_parts = get_i32(buf).ok_or_else(|| bad("partition count"))?;
        let mut parts = Vec::new();
        for _ in 0..n_parts.max(0) {
            parts.push(get_i32(buf).ok_or_else(|| bad("partition"))?);
            let size = get_i32(buf).ok_or_else(|| bad("message set size"))?;
            let size = usize::try_from(size).unwrap_or(0);
            if buf.remaining() < size {
                return Err(bad("message set"));
            }
            buf.advance(size);
        }
        topics.push((name, parts));
    }
    Ok(Request::LegacyProduce {
        header,
        acks,
        topics,
    })
}

fn get_i16(buf: &mut Bytes) -> Option<i16> {
    (buf.remaining() >= 2).then(|| buf.get_i16())
}

fn get_i32(buf: &mut Bytes) -> Option<i32> {
    (buf.remaining() >= 4).then(|| buf.get_i32())
}

/// Encodes a response, size prefix included, at the request's version.
pub fn encode_response(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> anyhow::Result<BytesMut> {
    let mut out = BytesMut::with_capacity(256);
    out.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header.encode(&mut out, api.response_header_version(version))?;
    body.encode(&mut out, version)?;
    let size = i32::try_from(out.len() - 4)?;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(out)
}

/// Encodes the response to Produce v0–2: UNSUPPORTED_VERSION for every partition.
pub fn encode_legacy_produce_response(
    version: i16,
    correlation_id: i32,
    topics: &[(StrBytes, Vec<i32>)],
    error_code: i16,
) -> BytesMut {
    let mut out = BytesMut::with_capacity(64);
    out.put_i32(0);
    out.put_i32(correlation_id);
    out.put_i32(topics.len() as i32);
    for (name, parts) in topics {
        let name = name.as_bytes();
        out.put_i16(name.len() as i16);
        out.put_slice(name);
        out.put_i32(parts.len() as i32);
        for p in parts {
            out.put_i32(*p);
            out.put_i16(error_code);
            out.put_i64(-1); // base offset
            if version >= 2 {
                out.put_i64(-1); // log append time
            }
        }
    }
    if version >= 1 {
        out.put_i32(0); // throttle time
    }
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
    use kafka_protocol::protocol::encode_request_header_into_buffer;

    fn frame<R: Encodable + kafka_protocol::protocol::Request>(version: i16, body: &R) -> Bytes {
        let mut buf = BytesMut::new();
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("t")));
        encode_request_header_into_buffer(&mut buf, &header).unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    #[test]
    fn decodes_served_requests() {
        let req = decode_request(frame(3, &ApiVersionsRequest::default())).unwrap();
        match req {
            Request::Kafka { header, body } if matches!(*body, RequestKind::ApiVersions(_)) => {
                assert_eq!(header.correlation_id, 7);
                assert_eq!(header.client_id.unwrap().as_str(), "t");
            }
            other => panic!("{other:?}"),
        }
        let req = decode_request(frame(1, &MetadataRequest::default())).unwrap();
        assert!(
            matches!(req, Request::Kafka { body, .. } if matches!(*body, RequestKind::Metadata(_)))
        );
    }

    #[test]
    fn refuses_what_is_not_served() {
        let mut f = BytesMut::from(&frame(1, &MetadataRequest::default())[..]);
        f[2..4].copy_from_slice(&13i16.to_be_bytes());
        assert!(matches!(
            decode_request(f.freeze()),
            Err(FrameError::UnsupportedVersion {
                api: ApiKey::Metadata,
                version: 13
            })
        ));
        let mut f = BytesMut::from(&frame(1, &MetadataRequest::default())[..]);
        f[0..2].copy_from_slice(&26i16.to_be_bytes()); // EndTxn: not served
        assert!(matches!(
            decode_request(f.freeze()),
            Err(FrameError::UnknownApi { api_key: 26, .. })
        ));
        let mut f = BytesMut::from(&frame(1, &MetadataRequest::default())[..]);
        f[0..2].copy_from_slice(&i16::MAX.to_be_bytes());
        assert!(matches!(
            decode_request(f.freeze()),
            Err(FrameError::UnknownApi { .. })
        ));
        assert!(matches!(
            decode_request(Bytes::from_static(b"\0\x03")),
            Err(FrameError::BadHeader(_))
        ));
    }

    #[test]
    fn newer_api_versions_gets_the_fallback() {
        let mut f = BytesMut::from(&frame(3, &ApiVersionsRequest::default())[..]);
        f[2..4].copy_from_slice(&9i16.to_be_bytes());
        let req = decode_request(f.freeze()).unwrap();
        assert!(
            matches!(req, Request::UnsupportedApiVersions { ref header } if header.correlation_id == 7)
        );
    }

    #[test]
    fn legacy_produce_is_parsed_for_its_error_response() {
        let mut body = BytesMut::new();
        body.put_i16(0); // api key produce
        body.put_i16(2);
        body.put_i32(42);
        body.put_i16(1);
        body.put_slice(b"c");
        body.put_i16(1); // acks
        body.put_i32(1000);
        body.put_i32(1);
        body.put_i16(3);
        body.put_slice(b"abc");
        body.put_i32(2);
        for p in [0, 5] {
            body.put_i32(p);
            body.put_i32(3);
            body.put_slice(b"xyz");
        }
        let req = decode_request(body.freeze()).unwrap();
        let Request::LegacyProduce {
            header,
            acks,
            topics,
        } = req
        else {
            panic!()
        };
        assert_eq!((header.correlation_id, acks), (42, 1));
        assert_eq!(topics.len(), 1);
        assert_eq!(topics[0].0.as_str(), "abc");
        assert_eq!(topics[0].1, vec![0, 5]);
        let out = encode_legacy_produce_response(2, 42, &topics, 35);
        // size + corr + n + name + n + 2 * (p + err + off + time) + throttle
        assert_eq!(out.len(), 4 + 4 + 4 + 5 + 4 + 2 * (4 + 2 + 8 + 8) + 4);
        assert_eq!(&out[0..4], &((out.len() - 4) as i32).to_be_bytes());
    }

    #[test]
    fn frame_size_limits() {
        assert_eq!(frame_size(10i32.to_be_bytes(), 100).unwrap(), 10);
        assert!(frame_size((-1i32).to_be_bytes(), 100).is_err());
        assert!(frame_size(101i32.to_be_bytes(), 100).is_err());
    }
}
