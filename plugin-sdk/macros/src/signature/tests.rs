//! The signature checks as a table: each row a function, the attribute it
//! is put on, and what validating it must give.

use syn::ItemFn;

use super::*;

/// What validating a function must give.
enum Want {
    /// Accepted: whether it returns a `Result`, and its params type as
    /// `quote` renders it (`None`: no params).
    Ok(bool, Option<&'static str>),
    /// Refused with exactly this message.
    Is(&'static str),
    /// Refused with a message ending with this.
    EndsWith(&'static str),
    /// Refused with a message starting with this.
    StartsWith(&'static str),
    /// Refused with a message containing this.
    Contains(&'static str),
    /// Refused.
    Refused,
}

use Kind::{Batch, Filter, FlatMap, Map};
use Want::{Contains, EndsWith, Is, Ok as Accepted, Refused, StartsWith};

const WRONG_INPUT: &str = "a #[weir_sdk::map] function must take `Event` and return `weir_sdk::Result<Event>` (with an optional second parameter `params: &P`): this parameter has the wrong type";
const NOT_PARAMS: &str = "the second parameter must be the params, `&P`";

/// Entry points: (attribute, function, outcome).
#[rustfmt::skip]
const ENTRIES: &[(Kind, &str, Want)] = &[
    // Good maps.
    (Map, "fn f(ev: Event) -> Result<Event> { Ok(ev) }", Accepted(true, None)),
    (Map, "pub fn f(mut ev: weir_sdk::Event, p: &Params) -> weir_sdk::Result<::weir_sdk::Event> { Ok(ev) }", Accepted(true, Some("Params"))),
    (Map, "fn f(_: Event) -> Event { todo!() }", Accepted(false, None)),
    (Map, "fn f(ev: Event) -> Result<Event, weir_sdk::Error> { Ok(ev) }", Accepted(true, None)),
    (Map, "fn f(ev: Event, p: &std::collections::HashMap<String, u32>) -> Result<Event> { Ok(ev) }", Accepted(true, Some("std :: collections :: HashMap < String , u32 >"))),
    // Good filters, flat maps, batches.
    (Filter, "fn f(ev: &Event) -> Result<bool> { Ok(true) }", Accepted(true, None)),
    (Filter, "fn f(ev: &Event, p: &P) -> bool { true }", Accepted(false, Some("P"))),
    (FlatMap, "fn f(ev: Event) -> Result<Vec<Output>> { todo!() }", Accepted(true, None)),
    (FlatMap, "fn f(ev: Event) -> Vec<weir_sdk::Output> { todo!() }", Accepted(false, None)),
    (Batch, "fn f(evs: Vec<Event>, p: &P) -> Vec<Result<Vec<Output>>> { todo!() }", Accepted(true, Some("P"))),
    // Wrong input types.
    (Map, "fn f(ev: &Event) -> Result<Event> { todo!() }", Is(WRONG_INPUT)),
    (Filter, "fn f(ev: Event) -> bool { true }", Refused),
    (Filter, "fn f(ev: &mut Event) -> bool { true }", Refused),
    (Batch, "fn f(ev: Event) -> Vec<Result<Vec<Output>>> { todo!() }", Refused),
    (Map, "fn f(ev: Event<u8>) -> Result<Event> { todo!() }", Refused),
    (Map, "fn f(ev: String) -> Result<Event> { todo!() }", Refused),
    // Wrong return types.
    (Map, "fn f(ev: Event) -> Result<String> { todo!() }", EndsWith(": this type is wrong")),
    (Map, "fn f(ev: Event) {}", EndsWith(", but it returns nothing")),
    (Map, "fn f(ev: Event) -> Option<Event> { None }", EndsWith(": this return type is wrong")),
    (Map, "fn f(ev: Event) -> Result<Event, String> { todo!() }", Refused),
    (Filter, "fn f(ev: &Event) -> Result<Event> { todo!() }", Refused),
    (FlatMap, "fn f(ev: Event) -> Result<Vec<Event>> { todo!() }", Refused),
    (FlatMap, "fn f(ev: Event) -> Result<Output> { todo!() }", Refused),
    (Batch, "fn f(evs: Vec<Event>) -> Result<Vec<Output>> { todo!() }", StartsWith("a #[weir_sdk::batch] function must take `Vec<Event>`")),
    (Batch, "fn f(evs: Vec<Event>) -> Vec<Vec<Output>> { todo!() }", Refused),
    // Wrong arity, params not `&P`.
    (Map, "fn f() -> Result<Event> { todo!() }", EndsWith(", but it has 0 parameters")),
    (Map, "fn f(a: Event, b: &P, c: u8) -> Result<Event> { todo!() }", EndsWith(", but it has 3 parameters")),
    (Map, "fn f(ev: Event, p: P) -> Result<Event> { todo!() }", Contains(NOT_PARAMS)),
    (Map, "fn f(ev: Event, p: &mut P) -> Result<Event> { todo!() }", Contains(NOT_PARAMS)),
    (Map, "fn f(ev: Event, p: &'static P) -> Result<Event> { todo!() }", Contains(NOT_PARAMS)),
    (Map, "fn f(ev: Event, p: &impl Sized) -> Result<Event> { todo!() }", Contains(NOT_PARAMS)),
    (Map, "fn f(ev: Event, p: &&P) -> Result<Event> { todo!() }", Contains(NOT_PARAMS)),
    // Not plain functions.
    (Map, "async fn f(ev: Event) -> Result<Event> { todo!() }", Is("a #[weir_sdk::map] function cannot be `async`")),
    (Map, "unsafe fn f(ev: Event) -> Result<Event> { todo!() }", Is("a #[weir_sdk::map] function cannot be `unsafe`")),
    (Map, "extern \"C\" fn f(ev: Event) -> Result<Event> { todo!() }", Is("a #[weir_sdk::map] function cannot have an `extern` ABI")),
    (Map, "fn f<T>(ev: Event) -> Result<Event> { todo!() }", Is("a #[weir_sdk::map] function cannot be generic")),
    (Map, "fn f(ev: Event) -> Result<Event> where Event: Sized { todo!() }", Is("a #[weir_sdk::map] function cannot be generic")),
    (Map, "fn f(self) -> Result<Event> { todo!() }", EndsWith("must be a free function, not take `self`")),
];

/// `#[weir_sdk::init]` functions: (function, outcome); an accepted one is
/// fallible by definition.
#[rustfmt::skip]
const INITS: &[(&str, Want)] = &[
    ("fn setup() -> Result<()> { Ok(()) }", Accepted(true, None)),
    ("fn setup(p: Params) -> weir_sdk::Result<(), Error> { Ok(()) }", Accepted(true, Some("Params"))),
    ("fn setup(p: &Params) -> Result<()> { Ok(()) }", EndsWith("the params are passed by value (`params: P`)")),
    ("fn setup(a: P, b: P) -> Result<()> { Ok(()) }", Refused),
    ("fn setup(p: P) {}", Refused),
    ("fn setup(p: P) -> Result<bool> { Ok(true) }", Refused),
    ("async fn setup(p: P) -> Result<()> { Ok(()) }", Refused),
];

fn parse(src: &str) -> ItemFn {
    syn::parse_str(src).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn params_text(params: Option<&Type>) -> Option<String> {
    params.map(|p| quote::quote!(#p).to_string())
}

/// Checks a refusal's message against `want`.
fn check_refusal(src: &str, err: &str, want: &Want) {
    let ok = match want {
        Is(m) => err == *m,
        EndsWith(m) => err.ends_with(m),
        StartsWith(m) => err.starts_with(m),
        Contains(m) => err.contains(m),
        Refused => true,
        Accepted(..) => panic!("{src}: refused, but should be accepted: {err}"),
    };
    assert!(ok, "{src}: the message does not match: {err}");
}

#[test]
fn entry_points() {
    for (kind, src, want) in ENTRIES {
        match (validate_entry(*kind, &parse(src)), want) {
            (Ok(e), Accepted(fallible, params)) => {
                assert_eq!(e.kind, *kind, "{src}");
                assert_eq!(e.fallible, *fallible, "{src}: fallible");
                let params = params.map(str::to_owned);
                assert_eq!(params_text(e.params.as_ref()), params, "{src}: params");
            }
            (Ok(e), _) => panic!("{src}: accepted as {e:?}, but should be refused"),
            (Err(err), want) => check_refusal(src, &err.to_string(), want),
        }
    }
}

#[test]
fn init_functions() {
    for (src, want) in INITS {
        match (validate_init(&parse(src)), want) {
            (Ok(i), Accepted(_, params)) => {
                let params = params.map(str::to_owned);
                assert_eq!(params_text(i.params.as_ref()), params, "{src}: params");
            }
            (Ok(i), _) => panic!("{src}: accepted as {i:?}, but should be refused"),
            (Err(err), want) => check_refusal(src, &err.to_string(), want),
        }
    }
}
