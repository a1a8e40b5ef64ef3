//! Moving batches across the boundary, one codec per contract version:
//! `records` for 0.1.x (typed WIT records), `packed` for 0.2.0 (one byte
//! buffer each way, the `weir-batch` format). Both decode into the same
//! [`Output`]s, whose bytes share the one buffer the plugin returned.

use std::sync::Arc;

use bytes::Bytes;

use super::error::CallError;
use crate::event::Event;

pub(crate) mod packed;
pub(crate) mod records;

/// One output of a plugin call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// Index of the input event it derives from (of the fired timer, for
    /// [`KeyedOutput::timer_outputs`](super::KeyedOutput)).
    pub input: u32,
    /// `None`: the default output.
    pub route: Option<Arc<str>>,
    pub event: Event,
}

/// The decoded result of one call.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Processed {
    pub outputs: Vec<Output>,
    /// (input index, message): events the plugin refused.
    pub errors: Vec<(u32, String)>,
}

/// An event's index in a batch's stream table. A batch's events mostly
/// share one stream, so the last one found is remembered.
pub(crate) struct StreamIndex<'a>(Option<(&'a Arc<str>, u32)>);

impl<'a> StreamIndex<'a> {
    pub(crate) fn new() -> Self {
        Self(None)
    }

    /// The index of `stream` in `table`; `add` appends a new one and says
    /// its index.
    pub(crate) fn get<T: std::ops::Deref<Target = str>>(
        &mut self,
        stream: &'a Arc<str>,
        table: &mut Vec<T>,
        add: impl FnOnce(&mut Vec<T>) -> u32,
    ) -> u32 {
        if let Some((s, index)) = self.0
            && Arc::ptr_eq(s, stream)
        {
            return index;
        }
        let index = match table.iter().position(|s| **s == **stream) {
            Some(index) => index as u32,
            None => add(table),
        };
        self.0 = Some((stream, index));
        index
    }
}

/// Interns header names within one output batch: most batches repeat a few.
#[derive(Default)]
pub(crate) struct Names(Vec<(Bytes, Arc<str>)>);

impl Names {
    pub(crate) fn get(&mut self, raw: Bytes) -> Result<Arc<str>, CallError> {
        if let Some((_, name)) = self.0.iter().find(|(b, _)| *b == raw) {
            return Ok(name.clone());
        }
        let name: Arc<str> = std::str::from_utf8(&raw)
            .map_err(|_| CallError::Malformed("a header name is not UTF-8".into()))?
            .into();
        self.0.push((raw, name.clone()));
        Ok(name)
    }
}
