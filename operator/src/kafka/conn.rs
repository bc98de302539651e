//! One Kafka protocol connection, plain TCP or TLS: framing, correlation ids, version
//! negotiation (ApiVersions).

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{
    encode_request_header_into_buffer, Decodable, HeaderVersion, Request, StrBytes,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::{AdminError, KafkaError};
use super::tls::KafkaTls;

/// A byte stream to a broker: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Largest response frame accepted.
const MAX_FRAME: usize = 64 * 1024 * 1024;
/// Client id sent in every request header.
const CLIENT_ID: &str = "samsa-operator";

pub(crate) struct Conn {
    stream: Box<dyn Io>,
    correlation: i32,
    /// Served version range per API key.
    versions: HashMap<i16, (i16, i16)>,
    timeout: Duration,
}

impl Conn {
    /// Connects (over TLS with `tls`) and learns the served versions.
    pub(crate) async fn connect(
        addr: &str,
        timeout: Duration,
        tls: Option<&KafkaTls>,
    ) -> Result<Conn, String> {
        let tcp = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(format!("{addr}: {e}")),
            Err(_) => return Err(format!("{addr}: no connection within {timeout:?}")),
        };
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Io> = match tls {
            None => Box::new(tcp),
            Some(tls) => match tokio::time::timeout(timeout, tls.connect(addr, tcp)).await {
                Ok(Ok(s)) => Box::new(s),
                Ok(Err(e)) => return Err(format!("{addr}: {e}")),
                Err(_) => return Err(format!("{addr}: no TLS handshake within {timeout:?}")),
            },
        };
        let mut conn = Conn {
            stream,
            correlation: 0,
            versions: HashMap::new(),
            timeout,
        };
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(CLIENT_ID))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        // v3 first; a broker that does not serve it answers in v0 with its ranges (KIP-511).
        let response: ApiVersionsResponse = match conn.call_at("ApiVersions", 3, &request).await {
            Ok(r) => r,
            Err(e) => return Err(format!("{addr}: {e}")),
        };
        let response = if response.error_code == 35 {
            match conn.call_at("ApiVersions", 0, &request).await {
                Ok(r) => r,
                Err(e) => return Err(format!("{addr}: {e}")),
            }
        } else {
            response
        };
        if let Some(e) = KafkaError::from_code("ApiVersions", None, response.error_code, None) {
            return Err(format!("{addr}: {e}"));
        }
        conn.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(conn)
    }

    /// The highest version within `min..=max` the broker serves for `R`.
    pub(crate) fn version<R: Request>(
        &self,
        api: &'static str,
        min: i16,
        max: i16,
    ) -> Result<i16, AdminError> {
        match self.versions.get(&R::KEY) {
            Some((lo, hi)) if *hi >= min && *lo <= max => Ok((*hi).min(max)),
            _ => Err(AdminError::UnsupportedVersion { api, min, max }),
        }
    }

    /// Sends `request` at the highest common version in `min..=max`.
    pub(crate) async fn call<R: Request>(
        &mut self,
        api: &'static str,
        min: i16,
        max: i16,
        request: &R,
    ) -> Result<(R::Response, i16), AdminError> {
        let version = self.version::<R>(api, min, max)?;
        let response = self.call_at(api, version, request).await?;
        Ok((response, version))
    }

    async fn call_at<R: Request>(
        &mut self,
        api: &'static str,
        version: i16,
        request: &R,
    ) -> Result<R::Response, AdminError> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.round_trip(api, version, request)).await {
            Ok(r) => r,
            Err(_) => Err(AdminError::Timeout { api, timeout }),
        }
    }

    async fn round_trip<R: Request>(
        &mut self,
        api: &'static str,
        version: i16,
        request: &R,
    ) -> Result<R::Response, AdminError> {
        let protocol = |message: String| AdminError::Protocol { api, message };
        let io = |source: std::io::Error| AdminError::Io { api, source };
        self.correlation = self.correlation.wrapping_add(1);
        let correlation = self.correlation;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        encode_request_header_into_buffer(&mut buf, &header)
            .map_err(|e| protocol(format!("request header: {e}")))?;
        request
            .encode(&mut buf, version)
            .map_err(|e| protocol(format!("request v{version}: {e}")))?;
        let size =
            i32::try_from(buf.len() - 4).map_err(|_| protocol("request too large".into()))?;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&buf).await.map_err(io)?;

        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).await.map_err(io)?;
        let size = usize::try_from(i32::from_be_bytes(size))
            .map_err(|_| protocol("negative frame size".into()))?;
        if size > MAX_FRAME {
            return Err(protocol(format!("response frame of {size} bytes")));
        }
        let mut body = vec![0u8; size];
        self.stream.read_exact(&mut body).await.map_err(io)?;
        let mut frame = Bytes::from(body);
        // ApiVersions responses always use header v0.
        let header_version = <R::Response as HeaderVersion>::header_version(version);
        let header = ResponseHeader::decode(&mut frame, header_version)
            .map_err(|e| protocol(format!("response header: {e}")))?;
        if header.correlation_id != correlation {
            return Err(protocol(format!(
                "correlation id {} for request {correlation}",
                header.correlation_id
            )));
        }
        let response = R::Response::decode(&mut frame, version)
            .map_err(|e| protocol(format!("response v{version}: {e}")))?;
        if frame.remaining() != 0 {
            return Err(protocol(format!("{} trailing bytes", frame.remaining())));
        }
        Ok(response)
    }
}
