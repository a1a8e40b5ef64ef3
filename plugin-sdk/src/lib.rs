//! # weir-sdk: write weir stream-transform plugins as one small function
//!
//! A weir plugin is a WebAssembly component (`wasm32-wasip2`) that transforms
//! batches of events. With this crate you write one function over [`Event`]s
//! and mark it with one attribute; the SDK does the rest (the WIT contract,
//! batch encoding, params, errors).
//!
//! ```ignore
//! use weir_sdk::{Event, Result};
//!
//! #[derive(serde::Deserialize)]
//! struct Params { suffix: String }
//!
//! /// Appends the `suffix` param to every value.
//! #[weir_sdk::map]
//! fn add_suffix(mut ev: Event, params: &Params) -> Result<Event> {
//!     ev.value_mut().extend_from_slice(params.suffix.as_bytes());
//!     Ok(ev)
//! }
//! ```
//!
//! Build with `cargo build --target wasm32-wasip2 --release`; the `.wasm` file
//! in `target/wasm32-wasip2/release/` is the plugin.
//!
//! ## Entry points (exactly one per plugin crate)
//!
//! | attribute | signature |
//! |---|---|
//! | [`map`] | `fn(Event) -> Result<Event>` |
//! | [`filter`] | `fn(&Event) -> Result<bool>` (or `-> bool`) |
//! | [`flat_map`] | `fn(Event) -> Result<Vec<Output>>` |
//! | [`batch`](macro@batch) | `fn(Vec<Event>) -> Vec<Result<Vec<Output>>>` (one result per input, in order) |
//!
//! Each may take a second parameter `params: &P` where
//! `P: serde::de::DeserializeOwned + 'static`: the stage's `params` (a JSON
//! object in the pipeline file) are deserialized into `P` once, in `init`; a
//! bad value refuses the plugin with serde's message and the field's path.
//! `map` also accepts `-> Event`, `flat_map` `-> Vec<Output>`.
//!
//! An optional [`init`](macro@init) function, `fn(params: P) -> Result<()>` or
//! `fn() -> Result<()>`, in the same module as the entry point, runs once at
//! start-up (after the entry point's own params are parsed) to validate params
//! or log; its `Err` refuses the plugin.
//!
//! ## Errors
//!
//! An `Err` returned for an event sends that event to the pipeline's
//! dead-letter output with the error's message; the other events of the batch
//! are not affected. A panic traps the whole call: the host then isolates the
//! event that caused it, at a much higher cost. Prefer `Err`.

#![deny(missing_docs)]

extern crate self as weir_sdk;

mod codec;
mod drivers;
mod error;
mod event;
pub mod infer;
mod keyed;
pub mod log;
mod params;
pub mod window;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use error::{Error, Result};
pub use event::{Event, Output, Position};
pub use keyed::{Context, State};
pub use log::now_ms;

/// Re-exported for plugins that use JSON values (`weir_sdk::serde_json::Value`).
pub use serde_json;

/// Marks the plugin's `map` function: one event in, one event out.
///
/// `fn name(ev: Event) -> Result<Event>`, optionally with a second parameter
/// `params: &P`. Returning `Err` sends the input event to the dead-letter output.
/// A new event you return ([`Event::new`], [`Event::from_json`]) inherits the
/// input's timestamp unless you set one.
pub use weir_sdk_macros::map;

/// Marks the plugin's `filter` function: keep the event (`true`) or drop it.
///
/// `fn name(ev: &Event) -> Result<bool>` (or `-> bool`), optionally with a
/// second parameter `params: &P`.
pub use weir_sdk_macros::filter;

/// Marks the plugin's `flat_map` function: zero or more outputs per event, each
/// to the default output ([`Output::new`]) or a named one ([`Output::to`]).
///
/// `fn name(ev: Event) -> Result<Vec<Output>>`, optionally with a second
/// parameter `params: &P`.
pub use weir_sdk_macros::flat_map;

/// Marks the plugin's `batch` function: sees the whole batch at once.
///
/// `fn name(events: Vec<Event>) -> Vec<Result<Vec<Output>>>`, optionally with a
/// second parameter `params: &P`. It must return exactly one result per input
/// event, in order; otherwise every event of the batch fails.
pub use weir_sdk_macros::batch;

/// Marks an optional start-up function, run once before any batch.
///
/// `fn name(params: P) -> Result<()>` (`P: DeserializeOwned`, its own copy of the
/// stage params) or `fn name() -> Result<()>`. It must be in the same module as
/// the entry point. It runs after the entry point's `&P` params (if any) were
/// parsed; `Err` refuses the plugin with that message.
pub use weir_sdk_macros::init;

/// Marks the plugin's keyed function: per-key state kept by the host.
///
/// `fn name(ev: Event, state: &mut State<T>, ctx: &mut Context<P>) ->
/// Result<Vec<Output>>` (`ctx: &mut Context` without params; `-> Vec<Output>`
/// also works). `T: Serialize + DeserializeOwned` is the state of the
/// event's key (stored as JSON by the host, across batches, restarts and hot
/// swaps); `P` the stage params, read with [`Context::params`]. Events of
/// one key see each other's writes in order; an `Err` sends the event to
/// the dead-letter output and leaves the state as it found it. The stage
/// must say which key the state belongs to (`[stages.state] key = ...`).
pub use weir_sdk_macros::keyed;

/// Marks the keyed plugin's timer function, run when the watermark passes
/// a timer set with [`Context::set_timer`].
///
/// `fn name(key: &[u8], at_ms: i64, state: &mut State<T>, ctx: &mut
/// Context<P>) -> Result<Vec<Output>>`, with the `T` and `P` of the
/// `#[weir_sdk::keyed]` function in the same module. Its outputs have the
/// timer's time as timestamp unless they set one.
pub use weir_sdk_macros::on_timer;

/// Makes the accumulator type it marks an event-time window operator: the
/// plugin's keyed entry point and timer function are generated.
///
/// `#[weir_sdk::window(tumbling = "60s")]`, `(hopping = "60s", hop = "10s")`,
/// `(sliding = "5m")` or `(session = "30m")` (the gap), with optional
/// `allowed_lateness = "5s"` and `late = "late"` (the route of late events,
/// which carry the header `weir.late`; `late = ""` fails them instead, as
/// dead letters with the reason). The type implements
/// [`window::Aggregate`] (`add`, `emit`, and `merge` for session and
/// sliding windows) and serde. See the [`window`] module.
pub use weir_sdk_macros::window;
