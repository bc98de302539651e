//! Writes a response frame to a client connection. On plain TCP: memory chunks with `send`
//! (flagged `MSG_MORE` while more of the frame follows, so headers and data share packets) and
//! file ranges with `sendfile`, straight from the page cache. Over TLS, where the kernel cannot
//! encrypt: file ranges are read (`pread`) in bounded chunks and written through the stream.

use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt;

use tokio::io::{AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

use crate::protocol::reply::{Chunk, Reply};

/// The largest piece of a file range read into memory at once for a TLS connection.
const STREAM_CHUNK: usize = 256 * 1024;

/// Where a connection's responses go.
pub(crate) trait ReplySink: Send {
    /// Sends the whole frame or fails; a failure leaves the connection unusable.
    fn send<'a>(&'a mut self, reply: &'a Reply)
        -> impl Future<Output = io::Result<()>> + Send + 'a;
}

impl ReplySink for OwnedWriteHalf {
    fn send<'a>(
        &'a mut self,
        reply: &'a Reply,
    ) -> impl Future<Output = io::Result<()>> + Send + 'a {
        send_reply(self, reply)
    }
}

/// Any byte stream (a TLS stream's write half): file ranges go through memory.
pub(crate) struct StreamSink<W>(pub(crate) W);

impl<W: AsyncWrite + Unpin + Send> ReplySink for StreamSink<W> {
    fn send<'a>(
        &'a mut self,
        reply: &'a Reply,
    ) -> impl Future<Output = io::Result<()>> + Send + 'a {
        write_stream(&mut self.0, reply)
    }
}

/// Writes every chunk through `w`, file ranges `STREAM_CHUNK` bytes at a time, then flushes.
async fn write_stream<W: AsyncWrite + Unpin>(w: &mut W, reply: &Reply) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    for chunk in reply.chunks() {
        match chunk {
            Chunk::Bytes(bytes) => w.write_all(bytes).await?,
            Chunk::File(slice) => {
                let (mut position, end) = (slice.position(), slice.position() + slice.len());
                while position < end {
                    let want = usize::try_from(end - position)
                        .unwrap_or(usize::MAX)
                        .min(STREAM_CHUNK);
                    if buf.len() < want {
                        buf.resize(want, 0);
                    }
                    let piece = buf.get_mut(..want).unwrap_or_default();
                    let n = slice.file().read_at(piece, position)?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "segment file ended inside a fetch response",
                        ));
                    }
                    w.write_all(buf.get(..n).unwrap_or_default()).await?;
                    position += n as u64;
                }
            }
        }
    }
    w.flush().await
}

/// Sends the whole frame or fails; a failure leaves the connection unusable.
async fn send_reply(write_half: &mut OwnedWriteHalf, reply: &Reply) -> io::Result<()> {
    if let [Chunk::Bytes(bytes)] = reply.chunks() {
        return write_half.write_all(bytes).await;
    }
    let stream: &TcpStream = write_half.as_ref();
    let chunks = reply.chunks();
    for (i, chunk) in chunks.iter().enumerate() {
        let more = i + 1 < chunks.len();
        match chunk {
            Chunk::Bytes(bytes) => send_bytes(stream, bytes, more).await?,
            Chunk::File(slice) => {
                send_file(stream, slice.file(), slice.position(), slice.len()).await?
            }
        }
    }
    Ok(())
}

async fn send_bytes(stream: &TcpStream, mut bytes: &[u8], more: bool) -> io::Result<()> {
    let flags = if more {
        rustix::net::SendFlags::MORE
    } else {
        rustix::net::SendFlags::empty()
    };
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_io(Interest::WRITABLE, || {
            rustix::net::send(stream, bytes, flags).map_err(io::Error::from)
        }) {
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn send_file(
    stream: &TcpStream,
    file: &std::fs::File,
    mut position: u64,
    len: u64,
) -> io::Result<()> {
    let end = position + len;
    while position < end {
        stream.writable().await?;
        let count = usize::try_from(end - position).unwrap_or(usize::MAX);
        match stream.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(stream, file, Some(&mut position), count).map_err(io::Error::from)
        }) {
            // The frame's size was announced: a file that ends early cannot be made up for.
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment file ended inside a fetch response",
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
