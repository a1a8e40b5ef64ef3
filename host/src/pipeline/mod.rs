//! The pipeline: acknowledgement, batches, stages, dead letters, the runner.

pub mod ack;
pub mod batch;
pub mod breaker;
pub mod dlq;
pub mod reload;
pub mod route;
pub mod runner;
pub mod stage;
pub mod swap;

pub use batch::Batch;
pub use dlq::DeadLetter;
pub use runner::{BatchPolicy, Pipeline, RunError, RunSummary};
pub use stage::{Stage, StageSpec};
