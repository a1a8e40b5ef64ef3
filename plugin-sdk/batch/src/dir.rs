//! What both directions share: the header and section directory, checked
//! reads of fixed-size entries and spans, and the writer's buffer.

use crate::{FORMAT, FormatError, NONE};

/// Bytes of the header (format, section count).
pub(crate) const HEAD: usize = 8;
/// Bytes of one directory entry (kind, count, offset, stride).
pub(crate) const DIR_ENTRY: usize = 16;

/// The little-endian `u32` at byte `at` of an entry (`at + 4 <= N`).
#[inline(always)]
pub(crate) fn u32_at<const N: usize>(e: &[u8; N], at: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(b) = e.get(at..at + 4) {
        w.copy_from_slice(b);
    }
    u32::from_le_bytes(w)
}

/// The little-endian `i64` at byte `at` of an entry (`at + 8 <= N`).
#[inline(always)]
pub(crate) fn i64_at<const N: usize>(e: &[u8; N], at: usize) -> i64 {
    let mut w = [0u8; 8];
    if let Some(b) = e.get(at..at + 8) {
        w.copy_from_slice(b);
    }
    i64::from_le_bytes(w)
}

/// One section: `len()` entries of `stride` bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Section<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) stride: usize,
}

impl<'a> Section<'a> {
    /// An absent section: empty, with its kind's stride (so that a range
    /// into it is checked like any other).
    pub(crate) fn empty(stride: usize) -> Self {
        Self { bytes: &[], stride }
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes.len() / self.stride.max(1)
    }

    /// The known prefix (`N` bytes) of entry `i`.
    #[inline]
    pub(crate) fn entry<const N: usize>(&self, i: usize) -> Option<&'a [u8; N]> {
        let start = i.checked_mul(self.stride)?;
        let end = start.checked_add(self.stride)?;
        self.bytes.get(start..end)?.first_chunk::<N>()
    }

    /// Entries `first .. first + count`, if all inside the section.
    pub(crate) fn range(&self, first: u32, count: u32) -> Option<Section<'a>> {
        let stride = self.stride as u64;
        let start = u64::from(first).checked_mul(stride)?;
        let end = (u64::from(first) + u64::from(count)).checked_mul(stride)?;
        let (start, end) = (usize::try_from(start).ok()?, usize::try_from(end).ok()?);
        Some(Section {
            bytes: self.bytes.get(start..end)?,
            stride: self.stride,
        })
    }
}

/// `data[offset .. offset + len]`, if inside.
#[inline]
pub(crate) fn span(data: &[u8], offset: u32, len: u32) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    data.get(start..end)
}

/// An optional span: length [`NONE`] is absent.
#[inline]
pub(crate) fn opt_span(data: &[u8], offset: u32, len: u32) -> Option<Option<&[u8]>> {
    if len == NONE {
        Some(None)
    } else {
        span(data, offset, len).map(Some)
    }
}

/// Reads the directory of `buf`: the sections of the kinds in `known`
/// (kind, least stride), each checked to lie inside `buf`, a kind at most
/// once; absent kinds are empty; unknown kinds are skipped. The second
/// array says which kinds were present.
pub(crate) fn directory<'a, const K: usize>(
    buf: &'a [u8],
    known: [(u32, usize); K],
) -> Result<([Section<'a>; K], [bool; K]), FormatError> {
    let Some(head) = buf.first_chunk::<HEAD>() else {
        return Err(FormatError::new(format!(
            "a {}-byte buffer has no header",
            buf.len()
        )));
    };
    if u32_at(head, 0) != FORMAT {
        return Err(FormatError::new(format!(
            "unknown batch format {} (this reader knows {FORMAT})",
            u32_at(head, 0)
        )));
    }
    let count = u64::from(u32_at(head, 4));
    let dir_end = HEAD as u64 + count * DIR_ENTRY as u64;
    let dir = usize::try_from(dir_end)
        .ok()
        .and_then(|end| buf.get(HEAD..end))
        .ok_or_else(|| {
            FormatError::new(format!(
                "a directory of {count} sections does not fit the {}-byte buffer",
                buf.len()
            ))
        })?;
    let mut found = known.map(|(_, stride)| Section::empty(stride));
    let mut seen = [false; K];
    for e in dir.chunks_exact(DIR_ENTRY) {
        let Some(e) = e.first_chunk::<DIR_ENTRY>() else {
            continue;
        };
        let kind = u32_at(e, 0);
        let Some(k) = known.iter().position(|&(known, _)| known == kind) else {
            continue; // a section this reader does not know
        };
        let (count, offset, stride) = (u32_at(e, 4), u32_at(e, 8), u32_at(e, 12));
        if seen[k] {
            return Err(FormatError::new(format!("section {kind} appears twice")));
        }
        let least = known[k].1;
        if (stride as usize) < least || (least == 1 && stride != 1) {
            return Err(FormatError::new(format!(
                "section {kind} has stride {stride}, it needs {}{least}",
                if least == 1 { "" } else { "at least " }
            )));
        }
        // u32 + u32 × u32 < 2^64: no overflow.
        let end = u64::from(offset) + u64::from(count) * u64::from(stride);
        let bytes = usize::try_from(end)
            .ok()
            .and_then(|end| buf.get(offset as usize..end))
            .ok_or_else(|| {
                FormatError::new(format!(
                    "section {kind} ({count} × {stride} bytes at {offset}) is outside the {}-byte buffer",
                    buf.len()
                ))
            })?;
        found[k] = Section {
            bytes,
            stride: stride as usize,
        };
        seen[k] = true;
    }
    Ok((found, seen))
}

/// The buffer a writer fills: room for the header and directory, then the
/// data section, to which the tables are appended (8-aligned) at the end.
#[derive(Debug, Default)]
pub(crate) struct Packer {
    pub(crate) buf: Vec<u8>,
    /// Where the data section starts.
    data_at: usize,
}

impl Packer {
    /// Starts a new buffer with room for `sections` directory entries.
    pub(crate) fn reset(&mut self, sections: usize) {
        self.data_at = HEAD + sections * DIR_ENTRY;
        self.buf.clear();
        self.buf.resize(self.data_at, 0);
    }

    pub(crate) fn data_len(&self) -> usize {
        self.buf.len() - self.data_at
    }

    pub(crate) fn data(&self) -> &[u8] {
        self.buf.get(self.data_at..).unwrap_or(&[])
    }

    /// Appends `bytes` to the data section: its (offset, len) there, or
    /// `None` if the data section would pass 4 GiB.
    #[inline]
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Option<(u32, u32)> {
        let offset = u32::try_from(self.data_len()).ok()?;
        let len = u32::try_from(bytes.len()).ok()?;
        offset.checked_add(len)?;
        self.buf.extend_from_slice(bytes);
        Some((offset, len))
    }

    /// Appends the tables (kind, entries, stride) after the data and writes
    /// the header and directory. The directory has the room `reset` made.
    pub(crate) fn finish(&mut self, tables: &[(u32, &[u8], usize)]) {
        const MAX: usize = 16;
        let mut entries = [(0u32, 0usize, 0usize, 0usize); MAX];
        entries[0] = (crate::kind::DATA, self.data_len(), self.data_at, 1);
        let mut n = 1;
        for &(kind, table, stride) in tables {
            if n == MAX || HEAD + (n + 1) * DIR_ENTRY > self.data_at {
                break; // more tables than `reset` made room for: a bug of this crate
            }
            self.buf.resize(self.buf.len().next_multiple_of(8), 0);
            entries[n] = (kind, table.len() / stride.max(1), self.buf.len(), stride);
            self.buf.extend_from_slice(table);
            n += 1;
        }
        let head = &mut self.buf[..self.data_at];
        head[0..4].copy_from_slice(&FORMAT.to_le_bytes());
        head[4..8].copy_from_slice(&(n as u32).to_le_bytes());
        for (i, &(kind, count, offset, stride)) in entries[..n].iter().enumerate() {
            let at = HEAD + i * DIR_ENTRY;
            for (j, w) in [kind, count as u32, offset as u32, stride as u32]
                .into_iter()
                .enumerate()
            {
                head[at + 4 * j..at + 4 * j + 4].copy_from_slice(&w.to_le_bytes());
            }
        }
    }
}

/// Appends little-endian words to a table.
#[inline]
pub(crate) fn put_u32s(table: &mut Vec<u8>, words: &[u32]) {
    for w in words {
        table.extend_from_slice(&w.to_le_bytes());
    }
}
