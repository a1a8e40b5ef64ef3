//! Integration tests of the `weir` host: real plugins (built from source by
//! the test run), real pipelines, the real binary.

mod bounds;
mod cache;
mod config_errors;
mod embeddings;
mod fraud;
mod inference;
mod iot;
mod kafka;
mod kafka_faults;
mod kafka_parallel;
mod kafka_swap;
mod keyed;
mod metrics;
mod parallel;
mod pipeline;
mod plugin_cli;
mod polyglot;
mod reload;
mod sandbox;
mod secrets;
mod shutdown;
mod sinks;
mod state;
mod status_page;
mod support;
