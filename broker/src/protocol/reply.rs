//! A response frame as the connection writes it: bytes encoded in memory, interleaved with
//! ranges of segment files that are sent straight from the page cache.

use bytes::{Bytes, BytesMut};

use crate::log::FileSlice;

/// Ranges shorter than this are copied into the frame: for small reads one write costs less
/// than a separate sendfile call per range.
pub const INLINE_MAX: u64 = 32 * 1024;

/// One piece of a frame.
#[derive(Debug, Clone)]
pub enum Chunk {
    Bytes(Bytes),
    File(FileSlice),
}

impl Chunk {
    fn len(&self) -> u64 {
        match self {
            Chunk::Bytes(b) => b.len() as u64,
            Chunk::File(s) => s.len(),
        }
    }
}

/// A whole response frame (size prefix included), or nothing for requests that get no
/// response (Produce with acks=0).
#[derive(Debug, Clone, Default)]
pub struct Reply {
    chunks: Vec<Chunk>,
}

impl Reply {
    /// No response at all.
    pub fn none() -> Reply {
        Reply::default()
    }

    /// The pieces, in order.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// Bytes on the wire.
    pub fn len(&self) -> u64 {
        self.chunks.iter().map(Chunk::len).sum()
    }

    /// True when nothing is to be sent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole frame in memory (reads the file ranges); for tests and small replies.
    pub fn to_vec(&self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        for chunk in &self.chunks {
            match chunk {
                Chunk::Bytes(b) => out.extend_from_slice(b),
                Chunk::File(s) => s.read_into(&mut out)?,
            }
        }
        Ok(out)
    }
}

impl From<BytesMut> for Reply {
    fn from(bytes: BytesMut) -> Reply {
        Reply::from(bytes.freeze())
    }
}

impl From<Bytes> for Reply {
    fn from(bytes: Bytes) -> Reply {
        let chunks = if bytes.is_empty() {
            Vec::new()
        } else {
            vec![Chunk::Bytes(bytes)]
        };
        Reply { chunks }
    }
}

/// Builds a frame: encode into [`ReplyBuilder::buf`], add file ranges with
/// [`ReplyBuilder::push_file`], then [`ReplyBuilder::finish`] writes the size prefix.
#[derive(Debug)]
pub struct ReplyBuilder {
    done: Vec<Chunk>,
    first: Option<Vec<u8>>,
    buf: Vec<u8>,
}

impl Default for ReplyBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplyBuilder {
    /// A frame whose first four bytes are the size prefix, filled in by `finish`.
    pub fn new() -> ReplyBuilder {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&[0; 4]);
        ReplyBuilder {
            done: Vec::new(),
            first: None,
            buf,
        }
    }

    /// Where the next encoded bytes go.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Appends a file range: copied in when small, sent from the page cache otherwise.
    pub fn push_file(&mut self, slice: &FileSlice) -> std::io::Result<()> {
        if slice.len() < INLINE_MAX {
            return slice.read_into(&mut self.buf);
        }
        let buf = std::mem::take(&mut self.buf);
        if self.first.is_none() {
            self.first = Some(buf);
        } else if !buf.is_empty() {
            self.done.push(Chunk::Bytes(Bytes::from(buf)));
        }
        self.done.push(Chunk::File(slice.clone()));
        Ok(())
    }

    /// The finished frame; fails when it would exceed the protocol's 2 GiB frame limit.
    pub fn finish(self) -> std::io::Result<Reply> {
        let ReplyBuilder { done, first, buf } = self;
        let body_len = done.iter().map(Chunk::len).sum::<u64>()
            + first.as_ref().map_or(0, |f| f.len() as u64)
            + buf.len() as u64
            - 4;
        let size = i32::try_from(body_len).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "response frame over 2 GiB")
        })?;
        let (mut head, tail) = match first {
            Some(first) => (first, Some(buf)),
            None => (buf, None),
        };
        if let Some(prefix) = head.get_mut(..4) {
            prefix.copy_from_slice(&size.to_be_bytes());
        }
        let mut chunks = Vec::with_capacity(done.len() + 2);
        chunks.push(Chunk::Bytes(Bytes::from(head)));
        chunks.extend(done);
        if let Some(tail) = tail.filter(|t| !t.is_empty()) {
            chunks.push(Chunk::Bytes(Bytes::from(tail)));
        }
        Ok(Reply { chunks })
    }
}
