//! tonic over the internal ports, plaintext or mutual TLS: [`channel`] dials (a tonic custom
//! connector doing the TLS handshake with the current client configuration, so a reloaded
//! certificate is used by the next connection), [`incoming`] turns a listener into the
//! connections a tonic server takes (`serve_with_incoming`). A server connection does its TLS
//! handshake on its own first read or write, inside the task tonic spawns for it, bounded by
//! [`HANDSHAKE_TIMEOUT`]: a slow or silent peer never holds up the accept loop. Each connection
//! reports its TCP addresses ([`TcpConnectInfo`]), so `Request::remote_addr` works either way.
//!
//! This module never reads gRPC messages and never decides more than "the peer's certificate
//! is signed by the cluster CA" (rustls does that).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::{Stream, StreamExt};
use tonic::codegen::http::Uri;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::transport::{Channel, Endpoint};

use super::InternalTls;

/// Longest time an accepted connection may take to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A lazily connecting gRPC channel to `addr` (host:port): plaintext without `tls`, else TLS
/// presenting this node's certificate and accepting only a server certificate that the cluster
/// CA signed for the host of `addr`.
pub fn channel(
    addr: &str,
    tls: Option<&InternalTls>,
    connect_timeout: Duration,
) -> Result<Channel, tonic::transport::Error> {
    let endpoint =
        Endpoint::from_shared(format!("http://{addr}"))?.connect_timeout(connect_timeout);
    Ok(match tls {
        None => endpoint.tcp_nodelay(true).connect_lazy(),
        Some(tls) => endpoint.connect_with_connector_lazy(Connector { tls: tls.clone() }),
    })
}

/// Dials TCP, then TLS, for tonic.
#[derive(Clone)]
struct Connector {
    tls: InternalTls,
}

type ClientStream = tokio_rustls::client::TlsStream<TcpStream>;

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<ClientStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<ClientStream>>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = self.tls.clone();
        Box::pin(async move { connect(&tls, &uri).await.map(TokioIo::new) })
    }
}

pub(super) async fn connect(tls: &InternalTls, uri: &Uri) -> io::Result<ClientStream> {
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
    let host = uri
        .host()
        .ok_or_else(|| invalid(format!("{uri}: no host")))?;
    let port = uri
        .port_u16()
        .ok_or_else(|| invalid(format!("{uri}: no port")))?;
    // An IPv6 literal comes in brackets; the certificate names it without.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(bare.to_string()).map_err(|e| {
        invalid(format!(
            "{host} is not a name to verify a certificate for: {e}"
        ))
    })?;
    let tcp = TcpStream::connect((bare, port)).await?;
    tcp.set_nodelay(true)?;
    let connector = tokio_rustls::TlsConnector::from(tls.client_config());
    connector.connect(name, tcp).await.inspect_err(|e| {
        tls.log_handshake_failure("dialling", &format!("{bare}:{port}"), e);
    })
}

/// The connections `listener` accepts, for `tonic::transport::Server::serve_with_incoming`:
/// plain TCP without `tls`, else TLS requiring a client certificate of the cluster CA.
pub fn incoming(
    listener: TcpListener,
    tls: Option<InternalTls>,
) -> impl Stream<Item = io::Result<InternalConn>> + Send + 'static {
    TcpListenerStream::new(listener)
        .map(move |accepted| accepted.map(|tcp| InternalConn::accept(tcp, tls.as_ref())))
}

/// One accepted connection of an internal listener.
pub struct InternalConn {
    io: Io,
    info: TcpConnectInfo,
    /// For logging a failed handshake.
    tls: Option<InternalTls>,
}

enum Io {
    Plain(TcpStream),
    Handshake(
        Box<(
            tokio_rustls::Accept<TcpStream>,
            Pin<Box<tokio::time::Sleep>>,
        )>,
    ),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    Failed,
}

impl InternalConn {
    fn accept(tcp: TcpStream, tls: Option<&InternalTls>) -> InternalConn {
        let info = TcpConnectInfo {
            local_addr: tcp.local_addr().ok(),
            remote_addr: tcp.peer_addr().ok(),
        };
        let _ = tcp.set_nodelay(true);
        let io = match tls {
            None => Io::Plain(tcp),
            Some(tls) => {
                let accept = tokio_rustls::TlsAcceptor::from(tls.server_config()).accept(tcp);
                let deadline = Box::pin(tokio::time::sleep(HANDSHAKE_TIMEOUT));
                Io::Handshake(Box::new((accept, deadline)))
            }
        };
        InternalConn {
            io,
            info,
            tls: tls.cloned(),
        }
    }

    /// Drives the TLS handshake, if one is under way; Ready(Ok) once the stream carries data.
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Io::Handshake(handshake) = &mut self.io else {
            return match self.io {
                Io::Failed => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the TLS handshake failed",
                ))),
                _ => Poll::Ready(Ok(())),
            };
        };
        let (accept, deadline) = &mut **handshake;
        let result = match Pin::new(accept).poll(cx) {
            Poll::Ready(r) => r,
            Poll::Pending => match deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no TLS handshake within {HANDSHAKE_TIMEOUT:?}"),
                )),
                Poll::Pending => return Poll::Pending,
            },
        };
        match result {
            Ok(stream) => {
                self.io = Io::Tls(Box::new(stream));
                Poll::Ready(Ok(()))
            }
            Err(e) => {
                self.io = Io::Failed;
                let peer = self
                    .info
                    .remote_addr
                    .map_or_else(|| "unknown".to_string(), |a| a.to_string());
                match &self.tls {
                    // A port probe (connect, then close) is not worth a warning.
                    Some(tls) if e.kind() != io::ErrorKind::UnexpectedEof => {
                        tls.log_handshake_failure("accepting", &peer, &e);
                    }
                    _ => tracing::debug!(%peer, "internal TLS handshake (accepting): {e}"),
                }
                Poll::Ready(Err(e))
            }
        }
    }
}

/// Runs `$op` on the connected stream after the handshake.
macro_rules! on_stream {
    ($self:ident, $cx:ident, |$s:ident| $op:expr) => {{
        let this = Pin::into_inner($self);
        match this.poll_handshake($cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        match &mut this.io {
            Io::Plain($s) => {
                let $s = Pin::new($s);
                $op
            }
            Io::Tls($s) => {
                let $s = Pin::new(&mut **$s);
                $op
            }
            Io::Handshake(_) | Io::Failed => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the TLS handshake did not complete",
            ))),
        }
    }};
}

impl AsyncRead for InternalConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        on_stream!(self, cx, |s| s.poll_read(cx, buf))
    }
}

impl AsyncWrite for InternalConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        on_stream!(self, cx, |s| s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        on_stream!(self, cx, |s| s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
            Io::Handshake(_) | Io::Failed => false,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_stream!(self, cx, |s| s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_stream!(self, cx, |s| s.poll_shutdown(cx))
    }
}

impl Connected for InternalConn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.info.clone()
    }
}
