//! Syntactic validation of the functions the attributes are put on.
//!
//! The checks are syntactic (a type alias of `Event` is refused) so that a wrong
//! signature gets a clear error pointing at the offending type; the expansion
//! also asserts the exact function type as a backstop.

use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, PathArguments, ReturnType, Type};

/// The shape of an entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Map,
    Filter,
    FlatMap,
    Batch,
}

impl Kind {
    pub(crate) fn attribute(self) -> &'static str {
        match self {
            Kind::Map => "#[weir_sdk::map]",
            Kind::Filter => "#[weir_sdk::filter]",
            Kind::FlatMap => "#[weir_sdk::flat_map]",
            Kind::Batch => "#[weir_sdk::batch]",
        }
    }

    /// The signature, as the error messages state it.
    fn expected(self) -> &'static str {
        match self {
            Kind::Map => "take `Event` and return `weir_sdk::Result<Event>`",
            Kind::Filter => "take `&Event` and return `weir_sdk::Result<bool>` or `bool`",
            Kind::FlatMap => "take `Event` and return `weir_sdk::Result<Vec<Output>>`",
            Kind::Batch => "take `Vec<Event>` and return `Vec<weir_sdk::Result<Vec<Output>>>`",
        }
    }

    fn message(self, detail: &str) -> String {
        format!(
            "a {} function must {} (with an optional second parameter `params: &P`){detail}",
            self.attribute(),
            self.expected()
        )
    }
}

/// A validated entry point.
pub(crate) struct Entry {
    pub(crate) kind: Kind,
    /// Returns a `Result` (else the value itself, wrapped in `Ok`).
    pub(crate) fallible: bool,
    /// `P` of a `params: &P` second parameter.
    pub(crate) params: Option<Type>,
}

/// A validated `#[weir_sdk::init]` function.
pub(crate) struct Init {
    /// `P` of its `params: P` parameter, if it has one.
    pub(crate) params: Option<Type>,
}

fn type_text(ty: Option<&Type>) -> String {
    ty.map_or_else(|| "-".to_owned(), |t| quote::quote!(#t).to_string())
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("kind", &self.kind)
            .field("fallible", &self.fallible)
            .field("params", &type_text(self.params.as_ref()))
            .finish()
    }
}

impl std::fmt::Debug for Init {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Init")
            .field("params", &type_text(self.params.as_ref()))
            .finish()
    }
}

fn strip(ty: &Type) -> &Type {
    match ty {
        Type::Paren(t) => strip(&t.elem),
        Type::Group(t) => strip(&t.elem),
        _ => ty,
    }
}

/// The last segment of a plain path type (`a::b::Name<...>`).
fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match strip(ty) {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        _ => None,
    }
}

/// `[::]path::Name` without generic arguments.
fn is_named(ty: &Type, name: &str) -> bool {
    last_segment(ty).is_some_and(|s| s.ident == name && s.arguments.is_none())
}

/// The type arguments of `path::Name<A, B...>`.
fn type_args<'a>(ty: &'a Type, name: &str) -> Option<Vec<&'a Type>> {
    let segment = last_segment(ty)?;
    if segment.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    args.args
        .iter()
        .map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect()
}

/// `Vec<T>`: `T`.
fn vec_of(ty: &Type) -> Option<&Type> {
    match type_args(ty, "Vec")?.as_slice() {
        [t] => Some(t),
        _ => None,
    }
}

/// `Result<T>` or `Result<T, Error>`: `T`.
fn result_of(ty: &Type) -> Option<&Type> {
    match type_args(ty, "Result")?.as_slice() {
        [t] => Some(t),
        [t, e] if is_named(e, "Error") => Some(t),
        _ => None,
    }
}

fn is_unit(ty: &Type) -> bool {
    matches!(strip(ty), Type::Tuple(t) if t.elems.is_empty())
}

fn is_event(ty: &Type) -> bool {
    is_named(ty, "Event")
}

fn is_event_ref(ty: &Type) -> bool {
    matches!(strip(ty), Type::Reference(r) if r.mutability.is_none() && r.lifetime.is_none() && is_event(&r.elem))
}

fn is_outputs(ty: &Type) -> bool {
    vec_of(ty).is_some_and(|t| is_named(t, "Output"))
}

/// Checks what every attributed function must satisfy: a free, synchronous,
/// safe, non-generic Rust function.
fn check_plain(attribute: &str, f: &ItemFn) -> syn::Result<()> {
    let sig = &f.sig;
    if let Some(token) = &sig.asyncness {
        return Err(syn::Error::new(
            token.span(),
            format!("a {attribute} function cannot be `async`"),
        ));
    }
    if let Some(token) = &sig.unsafety {
        return Err(syn::Error::new(
            token.span(),
            format!("a {attribute} function cannot be `unsafe`"),
        ));
    }
    if let Some(abi) = &sig.abi {
        return Err(syn::Error::new_spanned(
            abi,
            format!("a {attribute} function cannot have an `extern` ABI"),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            format!("a {attribute} function cannot be generic"),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new_spanned(
            variadic,
            format!("a {attribute} function cannot be variadic"),
        ));
    }
    if let Some(FnArg::Receiver(receiver)) = sig.inputs.first() {
        return Err(syn::Error::new_spanned(
            receiver,
            format!("a {attribute} function must be a free function, not take `self`"),
        ));
    }
    Ok(())
}

/// The types of the parameters (receivers were refused by `check_plain`).
fn param_types(f: &ItemFn) -> Vec<&Type> {
    f.sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(t) => Some(&*t.ty),
            FnArg::Receiver(_) => None,
        })
        .collect()
}

/// `&P` of a params parameter: `P`.
fn params_type(kind: Kind, ty: &Type) -> syn::Result<Type> {
    let error = || {
        syn::Error::new_spanned(
            ty,
            kind.message(": the second parameter must be the params, `&P` where `P: serde::de::DeserializeOwned + 'static`"),
        )
    };
    let Type::Reference(r) = strip(ty) else {
        return Err(error());
    };
    if r.mutability.is_some() || r.lifetime.is_some() {
        return Err(error());
    }
    match strip(&r.elem) {
        Type::ImplTrait(_) | Type::Infer(_) | Type::Never(_) | Type::Reference(_) => Err(error()),
        elem => Ok(elem.clone()),
    }
}

/// Validates an entry point (`map`, `filter`, `flat_map`, `batch`).
pub(crate) fn validate_entry(kind: Kind, f: &ItemFn) -> syn::Result<Entry> {
    check_plain(kind.attribute(), f)?;
    let params = param_types(f);
    let (input, params) = match params.as_slice() {
        [input] => (*input, None),
        [input, params] => (*input, Some(params_type(kind, params)?)),
        _ => {
            let message = kind.message(&format!(", but it has {} parameters", params.len()));
            return Err(if f.sig.inputs.is_empty() {
                syn::Error::new(f.sig.paren_token.span.join(), message)
            } else {
                syn::Error::new_spanned(&f.sig.inputs, message)
            });
        }
    };
    let input_ok = match kind {
        Kind::Map | Kind::FlatMap => is_event(input),
        Kind::Filter => is_event_ref(input),
        Kind::Batch => vec_of(input).is_some_and(is_event),
    };
    if !input_ok {
        return Err(syn::Error::new_spanned(
            input,
            kind.message(": this parameter has the wrong type"),
        ));
    }

    let ReturnType::Type(_, output) = &f.sig.output else {
        return Err(syn::Error::new_spanned(
            &f.sig,
            kind.message(", but it returns nothing"),
        ));
    };
    let plain_ok = |ty: &Type| match kind {
        Kind::Map => is_event(ty),
        Kind::Filter => is_named(ty, "bool"),
        Kind::FlatMap => is_outputs(ty),
        Kind::Batch => false,
    };
    let fallible = match kind {
        Kind::Batch => {
            let ok = vec_of(output).and_then(result_of).is_some_and(is_outputs);
            if !ok {
                return Err(syn::Error::new_spanned(
                    output,
                    kind.message(": this return type is wrong"),
                ));
            }
            true
        }
        _ => match result_of(output) {
            Some(inner) if plain_ok(inner) => true,
            Some(inner) => {
                return Err(syn::Error::new_spanned(
                    inner,
                    kind.message(": this type is wrong"),
                ));
            }
            None if plain_ok(output) => false,
            None => {
                return Err(syn::Error::new_spanned(
                    output,
                    kind.message(": this return type is wrong"),
                ));
            }
        },
    };
    Ok(Entry {
        kind,
        fallible,
        params,
    })
}

/// A validated `#[weir_sdk::keyed]` or `#[weir_sdk::on_timer]` function.
pub(crate) struct Keyed {
    /// Returns a `Result` (else the outputs themselves).
    pub(crate) fallible: bool,
    /// `T` of `state: &mut State<T>`.
    pub(crate) state: Type,
    /// `P` of `ctx: &mut Context<P>` (`None`: `Context`, no params).
    pub(crate) params: Option<Type>,
}

impl std::fmt::Debug for Keyed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyed")
            .field("fallible", &self.fallible)
            .field("state", &type_text(Some(&self.state)))
            .field("params", &type_text(self.params.as_ref()))
            .finish()
    }
}

/// `&mut Name<...>`: the type inside the reference, if it is `Name`.
fn mut_ref_named<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    match strip(ty) {
        Type::Reference(r) if r.mutability.is_some() && r.lifetime.is_none() => {
            let inner = &*r.elem;
            last_segment(inner)
                .is_some_and(|s| s.ident == name)
                .then_some(inner)
        }
        _ => None,
    }
}

/// Validates a keyed function: `fn(ev: Event, state: &mut State<T>, ctx:
/// &mut Context[<P>]) -> Result<Vec<Output>>` (`timer`: `fn(key: &[u8],
/// at_ms: i64, state, ctx)`).
pub(crate) fn validate_keyed(f: &ItemFn, timer: bool) -> syn::Result<Keyed> {
    let (attribute, expected) = if timer {
        (
            "#[weir_sdk::on_timer]",
            "a #[weir_sdk::on_timer] function must be `fn(key: &[u8], at_ms: i64, state: &mut State<T>, ctx: &mut Context<P>) -> weir_sdk::Result<Vec<Output>>` (`ctx: &mut Context` without params)",
        )
    } else {
        (
            "#[weir_sdk::keyed]",
            "a #[weir_sdk::keyed] function must be `fn(ev: Event, state: &mut State<T>, ctx: &mut Context<P>) -> weir_sdk::Result<Vec<Output>>` (`ctx: &mut Context` without params)",
        )
    };
    check_plain(attribute, f)?;
    let params = param_types(f);
    let wrong = |ty: &Type, what: &str| syn::Error::new_spanned(ty, format!("{expected}: {what}"));
    let (state, ctx) = match (timer, params.as_slice()) {
        (false, [ev, state, ctx]) => {
            if !is_event(ev) {
                return Err(wrong(ev, "the first parameter must be `Event`"));
            }
            (*state, *ctx)
        }
        (true, [key, at, state, ctx]) => {
            let is_bytes = matches!(strip(key), Type::Reference(r) if r.mutability.is_none()
                && matches!(strip(&r.elem), Type::Slice(s) if is_named(&s.elem, "u8")));
            if !is_bytes {
                return Err(wrong(key, "the first parameter must be `&[u8]`"));
            }
            if !is_named(at, "i64") {
                return Err(wrong(at, "the second parameter must be `i64`"));
            }
            (*state, *ctx)
        }
        _ => {
            let message = format!("{expected}, but it has {} parameters", params.len());
            return Err(if f.sig.inputs.is_empty() {
                syn::Error::new(f.sig.paren_token.span.join(), message)
            } else {
                syn::Error::new_spanned(&f.sig.inputs, message)
            });
        }
    };
    let state = mut_ref_named(state, "State")
        .and_then(|s| match type_args(s, "State")?.as_slice() {
            [t] => Some((*t).clone()),
            _ => None,
        })
        .ok_or_else(|| wrong(state, "the state parameter must be `&mut State<T>`"))?;
    let context = mut_ref_named(ctx, "Context")
        .ok_or_else(|| wrong(ctx, "the context parameter must be `&mut Context<P>`"))?;
    let params = if is_named(context, "Context") {
        None
    } else {
        match type_args(context, "Context").as_deref() {
            Some([p]) if is_unit(p) => None,
            Some([p]) => Some((*p).clone()),
            _ => {
                return Err(wrong(
                    ctx,
                    "the context parameter must be `&mut Context<P>`",
                ));
            }
        }
    };
    let ReturnType::Type(_, output) = &f.sig.output else {
        return Err(syn::Error::new_spanned(
            &f.sig,
            format!("{expected}, but it returns nothing"),
        ));
    };
    let fallible = match result_of(output) {
        Some(inner) if is_outputs(inner) => true,
        Some(inner) => return Err(wrong(inner, "this type is wrong")),
        None if is_outputs(output) => false,
        None => return Err(wrong(output, "this return type is wrong")),
    };
    Ok(Keyed {
        fallible,
        state,
        params,
    })
}

/// Validates a `#[weir_sdk::init]` function: `fn(params: P) -> Result<()>` or
/// `fn() -> Result<()>`.
pub(crate) fn validate_init(f: &ItemFn) -> syn::Result<Init> {
    const ATTRIBUTE: &str = "#[weir_sdk::init]";
    const EXPECTED: &str = "a #[weir_sdk::init] function must be `fn(params: P) -> weir_sdk::Result<()>` (P: serde::de::DeserializeOwned) or `fn() -> weir_sdk::Result<()>`";
    check_plain(ATTRIBUTE, f)?;
    let params = match param_types(f).as_slice() {
        [] => None,
        [ty] => match strip(ty) {
            Type::Reference(_) | Type::ImplTrait(_) | Type::Infer(_) | Type::Never(_) => {
                return Err(syn::Error::new_spanned(
                    ty,
                    format!("{EXPECTED}: the params are passed by value (`params: P`)"),
                ));
            }
            ty => Some(ty.clone()),
        },
        _ => {
            return Err(syn::Error::new_spanned(
                &f.sig.inputs,
                format!("{EXPECTED}: too many parameters"),
            ));
        }
    };
    let ok = match &f.sig.output {
        ReturnType::Type(_, ty) => result_of(ty).is_some_and(is_unit),
        ReturnType::Default => false,
    };
    if !ok {
        let error = match &f.sig.output {
            ReturnType::Type(_, ty) => syn::Error::new_spanned(ty, EXPECTED),
            ReturnType::Default => syn::Error::new_spanned(&f.sig, EXPECTED),
        };
        return Err(error);
    }
    Ok(Init { params })
}

#[cfg(test)]
mod tests;
