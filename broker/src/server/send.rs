//! Writes a response frame to a client socket: memory chunks with `send` (flagged
//! `MSG_MORE` while more of the frame follows, so headers and data share packets) and file
//! ranges with `sendfile`, straight from the page cache.

use std::io;

use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

use crate::protocol::reply::{Chunk, Reply};

/// Sends the whole frame or fails; a failure leaves the connection unusable.
pub(crate) async fn send_reply(write_half: &mut OwnedWriteHalf, reply: &Reply) -> io::Result<()> {
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
