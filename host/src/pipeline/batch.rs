//! The unit of work that flows through the stages.

use super::ack::AckSet;
use super::dlq::DeadLetter;
use super::route::Routed;
use crate::event::Event;

/// A micro-batch on its way through the stage chain. Outputs routed to named
/// outputs and dead letters travel with the batch to the end of the chain, so
/// every sink receives them in batch order (per-partition order holds on
/// every output, not only the default one).
#[derive(Default)]
pub struct Batch {
    /// Sequence number, for logs.
    pub seq: u64,
    /// Events for the next stage (after the last stage: the default output).
    pub events: Vec<Event>,
    /// Events sent to a named output by some stage, in emission order.
    pub routed: Routed,
    pub dead: Vec<DeadLetter>,
    /// The source chunks this batch holds events of.
    pub acks: AckSet,
    /// What the keyed stages wrote for this batch: committed with the source
    /// progress once its outputs are acknowledged.
    pub state: crate::state::Commit,
    /// The last batch of a finite input (no events): keyed stages fire every
    /// timer left.
    pub end_of_input: bool,
    /// The state keys of `events` for the keyed stage about to take the
    /// batch, found by the thread before it (empty: not found yet).
    pub state_keys: Vec<Result<bytes::Bytes, String>>,
}
