//! A range of a segment file handed out by a read: the bytes stay in the page cache until a
//! connection sends them (sendfile) or copies them.
//!
//! A slice only covers whole batches that were in the file when it was made. Stored batches
//! are never rewritten in place, and a segment deleted by retention or replaced by cleaning
//! stays readable through the open handle, so the range keeps its content for the slice's
//! whole life.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// `len` bytes of a segment's log file at `position`.
#[derive(Debug, Clone)]
pub struct FileSlice {
    pub(super) file: Arc<File>,
    pub(super) position: u64,
    pub(super) len: u64,
}

impl FileSlice {
    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Where the range starts in the file.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Bytes in the range.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends the range's bytes to `out` (one positional read).
    pub fn read_into(&self, out: &mut Vec<u8>) -> io::Result<()> {
        let len = usize::try_from(self.len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "slice too large"))?;
        let start = out.len();
        out.resize(start + len, 0);
        let target = out.get_mut(start..).unwrap_or_default();
        let result = self.file.read_exact_at(target, self.position);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }
}

#[cfg(test)]
impl FileSlice {
    /// A slice of any open file, for tests of the code that sends slices.
    pub(crate) fn for_tests(file: &Arc<File>, position: u64, len: u64) -> FileSlice {
        FileSlice {
            file: Arc::clone(file),
            position,
            len,
        }
    }
}
