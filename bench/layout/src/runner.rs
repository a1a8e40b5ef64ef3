//! What the harness drives: one layout's host side and guest, behind one trait.

use wasmtime::Result;

use crate::model::{Event, Processed};

/// What the guest does with a batch.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Passthrough,
    Upper,
    DropAll,
}

/// One layout: its host encoder and decoder and its guest instance.
pub trait Runner {
    fn name(&self) -> &'static str;
    /// Host encode only; returns the encoded size.
    fn encode(&mut self, events: &[Event]) -> usize;
    /// Encode + call (wasmtime lifts the output); the output is dropped.
    fn call(&mut self, op: Op, events: &[Event]) -> Result<usize>;
    /// Encode + call + host decode into events.
    fn process(&mut self, op: Op, events: &[Event]) -> Result<Processed>;
}
