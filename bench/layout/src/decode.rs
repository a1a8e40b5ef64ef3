//! What the three host decoders share: span and index checks that turn a
//! hostile guest's out-of-range numbers into an error (weir sends the batch to
//! the dead-letter output with it), never a panic.

use std::sync::Arc;

use bytes::Bytes;

/// "No key" in a key length, "default output" in a route.
pub const NONE: u32 = u32::MAX;

/// Largest output a call may return (weir's `max_output_mib` default is 64).
pub const MAX_OUTPUT_BYTES: usize = 64 << 20;

/// Why an output batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed output batch: {0}")]
    Malformed(String),
    #[error("output batch of {bytes} bytes is over the {limit}-byte limit")]
    TooLarge { bytes: usize, limit: usize },
}

pub fn malformed(message: impl Into<String>) -> DecodeError {
    DecodeError::Malformed(message.into())
}

pub fn check_size(bytes: usize) -> Result<(), DecodeError> {
    if bytes > MAX_OUTPUT_BYTES {
        return Err(DecodeError::TooLarge {
            bytes,
            limit: MAX_OUTPUT_BYTES,
        });
    }
    Ok(())
}

/// `data[offset..offset + len]` as a shared slice, or an error naming `what`.
#[inline]
pub fn slice(data: &Bytes, offset: u32, len: u32, what: &str) -> Result<Bytes, DecodeError> {
    let start = offset as usize;
    let end = start + len as usize; // two u32s: cannot overflow a 64-bit usize
    if end > data.len() {
        return Err(malformed(format!(
            "{what} span {start}..{end} is outside the {}-byte data buffer",
            data.len()
        )));
    }
    Ok(data.slice(start..end))
}

/// Entries `first..first + count` of a table of `stride`-word entries, checked.
#[inline]
pub fn range<'a, T>(
    table: &'a [T],
    first: u32,
    count: u32,
    stride: usize,
    what: &str,
) -> Result<&'a [T], DecodeError> {
    // Two u32s times a small stride: cannot overflow a 64-bit usize.
    let (start, end) = (first as usize, first as usize + count as usize);
    table.get(start * stride..end * stride).ok_or_else(|| {
        malformed(format!(
            "{what} range {start}..{end} is outside its {}-entry table",
            table.len() / stride
        ))
    })
}

/// The input an output refers to.
#[inline]
pub fn input<T>(inputs: &[T], index: u32) -> Result<&T, DecodeError> {
    inputs.get(index as usize).ok_or_else(|| {
        malformed(format!(
            "output refers to input {index} of a {}-event batch",
            inputs.len()
        ))
    })
}

/// A route index (`NONE`: the default output).
#[inline]
pub fn route(routes: &[Arc<str>], index: u32) -> Result<Option<Arc<str>>, DecodeError> {
    if index == NONE {
        return Ok(None);
    }
    routes
        .get(index as usize)
        .cloned()
        .map(Some)
        .ok_or_else(|| malformed(format!("route index {index} of {} routes", routes.len())))
}

/// Interns header names within one output batch: most batches repeat a few.
#[derive(Default)]
pub struct Names(Vec<(Bytes, Arc<str>)>);

impl Names {
    #[inline]
    pub fn get(&mut self, raw: Bytes) -> Result<Arc<str>, DecodeError> {
        if let Some((_, name)) = self.0.iter().find(|(b, _)| *b == raw) {
            return Ok(name.clone());
        }
        let name: Arc<str> = std::str::from_utf8(&raw)
            .map_err(|_| malformed("a header name is not UTF-8"))?
            .into();
        self.0.push((raw, name.clone()));
        Ok(name)
    }
}

/// Checks the error list's input indexes.
pub fn errors(
    list: impl IntoIterator<Item = (u32, String)>,
    inputs: usize,
) -> Result<Vec<(u32, String)>, DecodeError> {
    list.into_iter()
        .map(|(input, message)| {
            if input as usize >= inputs {
                return Err(malformed(format!(
                    "error refers to input {input} of a {inputs}-event batch"
                )));
            }
            Ok((input, message))
        })
        .collect()
}

/// Test support: a deterministic generator of hostile numbers.
#[cfg(test)]
pub mod hostile {
    /// xorshift64*: small, deterministic, good enough to shake a decoder.
    pub struct Rng(pub u64);

    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        /// Mostly small numbers (in or near range), sometimes huge ones.
        pub fn word(&mut self) -> u32 {
            match self.next() % 8 {
                0 => u32::MAX,
                1 => u32::MAX - (self.next() % 4) as u32,
                2 => self.next() as u32,
                _ => (self.next() % 300) as u32,
            }
        }
    }
}
