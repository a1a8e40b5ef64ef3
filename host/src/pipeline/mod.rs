//! The pipeline: acknowledgement, batches, stages, dead letters, the runner.

mod ack;
mod batch;
mod breaker;
mod commit;
mod dlq;
mod keyed;
mod partitions;
mod reload;
mod route;
mod runner;
mod stage;
mod swap;

pub use ack::{Ack, AckSet, AckStatus, Finalizer, ack_channel};
pub use batch::Batch;
pub use breaker::{BreakerAction, CircuitBreakerConfig};
pub use commit::PipelineState;
pub use dlq::DeadLetter;
pub use keyed::KeyedState;
pub use partitions::StateAssignments;
pub use reload::{Reloader, StageHandle};
pub use route::{Routed, Routes};
pub use runner::{BatchPolicy, Pipeline, RunError, RunSummary};
pub use stage::{Stage, StageSpec};
pub use swap::{Prepared, SwapSlot};
