//! Integration tests of the `weir` host: real plugins (built from source by
//! the test run), real pipelines, the real binary.

mod cache;
mod config_errors;
mod inference;
mod kafka;
mod pipeline;
mod plugin_cli;
mod reload;
mod sandbox;
mod shutdown;
mod support;
