//! Durable keyed state (data-path layer): the fjall store under the
//! pipeline's `state_dir`, the state tables of the pipeline file, state keys
//! and event-time watermarks. The keyed stage (`crate::pipeline`) reads
//! through a [`StateStore`] and hands its writes, with the source progress
//! they cover, to one atomic [`Commit`] per batch once the batch's outputs
//! were accepted; see `docs/state.md` for the guarantees.

mod changelog;
mod config;
mod key;
mod store;
mod watermark;

pub use changelog::{
    Changelog, ChangelogError, Restored, changelog_client, changelog_topic, partition_counts,
};
pub use config::{
    ChangelogMode, Durability, MAX_KEY_BYTES, MAX_VALUE_BYTES, StageStateConfig, StateConfig,
    WatermarkConfig,
};
pub use key::KeySpec;
pub use store::{
    Commit, Entry, Progress, Slot, StateError, StateSize, StateStore, StateWrite, TimerWrite,
};
pub use watermark::Watermarks;
