//! Procedural macros of `weir-sdk`: use them through `weir_sdk::{map, filter,
//! flat_map, batch, init}`, whose documentation they share.
//!
//! Each entry-point attribute leaves the function unchanged and adds a hidden
//! type implementing the plugin's WIT exports (`init`, `process`) on top of the
//! SDK's batch codec, then invokes the SDK's `export!`. The generated code
//! refers to the SDK as `::weir_sdk`, so the dependency must keep that name.

mod expand;
mod keyed;
mod signature;
mod window;

use proc_macro::TokenStream;
use signature::Kind;

/// `#[weir_sdk::map] fn f(ev: Event[, params: &P]) -> Result<Event>`: see `weir_sdk::map`.
#[proc_macro_attribute]
pub fn map(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::entry(Kind::Map, attr.into(), item.into()).into()
}

/// `#[weir_sdk::filter] fn f(ev: &Event[, params: &P]) -> Result<bool>`: see `weir_sdk::filter`.
#[proc_macro_attribute]
pub fn filter(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::entry(Kind::Filter, attr.into(), item.into()).into()
}

/// `#[weir_sdk::flat_map] fn f(ev: Event[, params: &P]) -> Result<Vec<Output>>`: see
/// `weir_sdk::flat_map`.
#[proc_macro_attribute]
pub fn flat_map(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::entry(Kind::FlatMap, attr.into(), item.into()).into()
}

/// `#[weir_sdk::batch] fn f(events: Vec<Event>[, params: &P]) -> Vec<Result<Vec<Output>>>`:
/// see `weir_sdk::batch`.
#[proc_macro_attribute]
pub fn batch(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::entry(Kind::Batch, attr.into(), item.into()).into()
}

/// `#[weir_sdk::init] fn f(params: P) -> Result<()>`: see `weir_sdk::init`.
#[proc_macro_attribute]
pub fn init(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::init(attr.into(), item.into()).into()
}

/// `#[weir_sdk::keyed] fn f(ev: Event, state: &mut State<T>, ctx: &mut Context<P>) ->
/// Result<Vec<Output>>`: see `weir_sdk::keyed`.
#[proc_macro_attribute]
pub fn keyed(attr: TokenStream, item: TokenStream) -> TokenStream {
    keyed::keyed(attr.into(), item.into()).into()
}

/// `#[weir_sdk::on_timer] fn f(key: &[u8], at_ms: i64, state: &mut State<T>, ctx: &mut
/// Context<P>) -> Result<Vec<Output>>`: see `weir_sdk::on_timer`.
#[proc_macro_attribute]
pub fn on_timer(attr: TokenStream, item: TokenStream) -> TokenStream {
    keyed::on_timer(attr.into(), item.into()).into()
}

/// `#[weir_sdk::window(tumbling = "60s", allowed_lateness = "5s")]` on an accumulator type
/// implementing `weir_sdk::window::Aggregate`: see `weir_sdk::window`.
#[proc_macro_attribute]
pub fn window(attr: TokenStream, item: TokenStream) -> TokenStream {
    window::window(attr.into(), item.into()).into()
}
