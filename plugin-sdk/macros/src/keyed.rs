//! Code generation of `#[weir_sdk::keyed]` and `#[weir_sdk::on_timer]`:
//! the user's functions unchanged, plus the exports of a keyed plugin
//! (`init` says keyed, `process` runs the keyed driver, `check-state`
//! decodes each sample value as the state type).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ItemFn;
use syn::spanned::Spanned;

use crate::expand::{ENTRY_POINT_MARKER, no_arguments};
use crate::signature::{self, Keyed};

/// Marks the keyed entry point: `#[weir_sdk::on_timer]` refers to it.
const KEYED_MARKER: &str = "__weir_sdk_keyed_entry_point_of_this_plugin";

fn ident(name: &str) -> syn::Ident {
    syn::Ident::new(name, proc_macro2::Span::call_site())
}

fn parse(
    attribute: &str,
    timer: bool,
    attr: TokenStream,
    item: TokenStream,
) -> Result<(ItemFn, Keyed), TokenStream> {
    let f: ItemFn = syn::parse2(item).map_err(|e| e.to_compile_error())?;
    match no_arguments(attribute, attr).and_then(|()| signature::validate_keyed(&f, timer)) {
        Ok(keyed) => Ok((f, keyed)),
        Err(e) => {
            let error = e.to_compile_error();
            Err(quote!(#error #f))
        }
    }
}

/// `P` as the generated code names it (`()` without params).
fn params_type(keyed: &Keyed) -> TokenStream {
    match &keyed.params {
        Some(p) => quote!(#p),
        None => quote!(()),
    }
}

/// Expands `#[weir_sdk::keyed]`.
pub(crate) fn keyed(attr: TokenStream, item: TokenStream) -> TokenStream {
    let (f, keyed) = match parse("#[weir_sdk::keyed]", false, attr, item) {
        Ok(parsed) => parsed,
        Err(error) => return error,
    };
    let name = &f.sig.ident;
    let sdk = quote!(::weir_sdk);
    let marker = ident(ENTRY_POINT_MARKER);
    let keyed_marker = ident(KEYED_MARKER);
    let state = &keyed.state;
    let p = params_type(&keyed);
    let outputs = quote!(::std::vec::Vec<#sdk::Output>);
    let output = if keyed.fallible {
        quote!(#sdk::Result<#outputs>)
    } else {
        outputs.clone()
    };
    let assertion = quote_spanned! {f.sig.span()=>
        const __WEIR_FN: fn(#sdk::Event, &mut #sdk::State<#state>, &mut #sdk::Context<#p>) -> #output = #name;
        let _ = __WEIR_FN;
    };
    let call = if keyed.fallible {
        quote!(__WEIR_FN(__weir_event, __weir_state, __weir_ctx))
    } else {
        quote!(#sdk::__private::ok(__WEIR_FN(__weir_event, __weir_state, __weir_ctx)))
    };
    // The one use of `P: DeserializeOwned`, spanned at `P`.
    let parse = match &keyed.params {
        Some(p) => quote_spanned!(p.span()=> #sdk::__private::parse_params::<#p>),
        None => quote!(#sdk::__private::no_params),
    };
    quote! {
        #f

        #[doc(hidden)]
        #[allow(non_upper_case_globals, reason = "marker named as an error message")]
        const #marker: () = ();

        #[doc(hidden)]
        #[allow(non_upper_case_globals, reason = "marker named as an error message")]
        const #keyed_marker: () = ();

        #[doc(hidden)]
        #[allow(unused_imports, reason = "shadowed by the `__WeirInit` of a #[weir_sdk::init] function")]
        use #sdk::__private::init_fallback::*;

        #[doc(hidden)]
        #[allow(unused_imports, reason = "shadowed by the `__WeirTimer` of a #[weir_sdk::on_timer] function")]
        use #sdk::__private::timer_fallback::*;

        const _: () = {
            #assertion

            ::std::thread_local! {
                static __WEIR_PARAMS: #sdk::__private::SharedParams<#p> =
                    const { #sdk::__private::SharedParams::new() };
            }

            #[doc(hidden)]
            #[allow(dead_code, reason = "only exported on wasm32")]
            struct __WeirPlugin;

            impl #sdk::__private::Guest for __WeirPlugin {
                fn init(
                    __weir_json: ::std::string::String,
                ) -> ::core::result::Result<#sdk::__private::PluginInfo, ::std::string::String> {
                    __WEIR_PARAMS.with(|__weir_slot| __weir_slot.init(&__weir_json, #parse))?;
                    <__WeirInit as #sdk::__private::InitHook>::run(&__weir_json)?;
                    ::core::result::Result::Ok(#sdk::__private::KEYED)
                }

                fn process(
                    __weir_input: #sdk::__private::Batch,
                ) -> #sdk::__private::OutputBatch {
                    match __WEIR_PARAMS.with(|__weir_slot| __weir_slot.get()) {
                        ::core::option::Option::Some(__weir_params) => #sdk::__private::run_keyed::<#state, #p>(
                            __weir_input,
                            __weir_params,
                            |__weir_event, __weir_state, __weir_ctx| #call,
                            <__WeirTimer as #sdk::__private::TimerHook<#state, #p>>::run,
                        ),
                        ::core::option::Option::None => #sdk::__private::fail_all(
                            __weir_input,
                            "plugin not initialized: `init` was not called",
                        ),
                    }
                }

                fn check_state(
                    __weir_sample: #sdk::__private::Batch,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    #sdk::__private::run_check_state::<#state>(__weir_sample)
                }
            }

            #[cfg(target_arch = "wasm32")]
            #sdk::__private::bindings::export!(__WeirPlugin);
        };
    }
}

/// Expands `#[weir_sdk::on_timer]`.
pub(crate) fn on_timer(attr: TokenStream, item: TokenStream) -> TokenStream {
    let (f, keyed) = match parse("#[weir_sdk::on_timer]", true, attr, item) {
        Ok(parsed) => parsed,
        Err(error) => return error,
    };
    let name = &f.sig.ident;
    let sdk = quote!(::weir_sdk);
    let state = &keyed.state;
    let p = params_type(&keyed);
    let outputs = quote!(::std::vec::Vec<#sdk::Output>);
    let (output, call) = if keyed.fallible {
        (
            quote!(#sdk::Result<#outputs>),
            quote!(__WEIR_TIMER_FN(
                __weir_key,
                __weir_at,
                __weir_state,
                __weir_ctx
            )),
        )
    } else {
        (
            outputs.clone(),
            quote!(#sdk::__private::ok(__WEIR_TIMER_FN(__weir_key, __weir_at, __weir_state, __weir_ctx))),
        )
    };
    // Fails to compile, naming the marker, unless a keyed entry point is in this module.
    let needs_entry = syn::Ident::new(KEYED_MARKER, name.span());
    quote! {
        #f

        #[doc(hidden)]
        #[allow(dead_code, reason = "only used by the wasm32 exports")]
        struct __WeirTimer;

        const _: () = {
            const __WEIR_TIMER_FN: fn(&[u8], i64, &mut #sdk::State<#state>, &mut #sdk::Context<#p>) -> #output = #name;
            let _ = __WEIR_TIMER_FN;

            impl #sdk::__private::TimerHook<#state, #p> for __WeirTimer {
                fn run(
                    __weir_key: &[u8],
                    __weir_at: i64,
                    __weir_state: &mut #sdk::State<#state>,
                    __weir_ctx: &mut #sdk::Context<#p>,
                ) -> #sdk::Result<#outputs> {
                    #call
                }
            }

            #needs_entry
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_with_params() {
        let out = keyed(
            TokenStream::new(),
            quote!(
                fn count(
                    ev: Event,
                    state: &mut State<Count>,
                    ctx: &mut Context<Params>,
                ) -> Result<Vec<Output>> {
                    Ok(vec![])
                }
            ),
        )
        .to_string();
        assert!(out.contains("const __WEIR_FN : fn (:: weir_sdk :: Event , & mut :: weir_sdk :: State < Count > , & mut :: weir_sdk :: Context < Params >) -> :: weir_sdk :: Result < :: std :: vec :: Vec < :: weir_sdk :: Output > > = count ;"), "{out}");
        assert!(out.contains("run_keyed :: < Count , Params >"), "{out}");
        assert!(out.contains("parse_params :: < Params >"), "{out}");
        assert!(out.contains("run_check_state :: < Count >"), "{out}");
        assert!(out.contains("__private :: KEYED"), "{out}");
        assert!(
            out.contains("const __weir_sdk_keyed_entry_point_of_this_plugin"),
            "{out}"
        );
    }

    #[test]
    fn keyed_without_params_and_infallible() {
        let out = keyed(
            TokenStream::new(),
            quote!(
                fn count(ev: Event, state: &mut State<u64>, ctx: &mut Context) -> Vec<Output> {
                    vec![]
                }
            ),
        )
        .to_string();
        assert!(out.contains("run_keyed :: < u64 , () >"), "{out}");
        assert!(out.contains("__private :: no_params"), "{out}");
        assert!(
            out.contains(":: weir_sdk :: __private :: ok (__WEIR_FN"),
            "{out}"
        );
    }

    #[test]
    fn on_timer_expansion_and_errors() {
        let out = on_timer(
            TokenStream::new(),
            quote!(
                fn expire(
                    key: &[u8],
                    at_ms: i64,
                    state: &mut State<Count>,
                    ctx: &mut Context,
                ) -> Result<Vec<Output>> {
                    Ok(vec![])
                }
            ),
        )
        .to_string();
        assert!(
            out.contains(
                "impl :: weir_sdk :: __private :: TimerHook < Count , () > for __WeirTimer"
            ),
            "{out}"
        );
        assert!(
            out.contains("__weir_sdk_keyed_entry_point_of_this_plugin } ;"),
            "{out}"
        );
        for bad in [
            quote!(
                fn f(ev: Event, state: &State<T>, ctx: &mut Context) -> Result<Vec<Output>> {
                    todo!()
                }
            ),
            quote!(
                fn f(ev: &Event, state: &mut State<T>, ctx: &mut Context) -> Result<Vec<Output>> {
                    todo!()
                }
            ),
            quote!(
                fn f(ev: Event, state: &mut State<T>) -> Result<Vec<Output>> {
                    todo!()
                }
            ),
            quote!(
                fn f(ev: Event, state: &mut State<T>, ctx: &mut Context) -> Result<Event> {
                    todo!()
                }
            ),
        ] {
            let out = keyed(TokenStream::new(), bad).to_string();
            assert!(out.contains("compile_error"), "{out}");
            assert!(!out.contains("__WeirPlugin"), "{out}");
        }
        let out = on_timer(
            TokenStream::new(),
            quote!(
                fn f(
                    key: Vec<u8>,
                    at_ms: i64,
                    state: &mut State<T>,
                    ctx: &mut Context,
                ) -> Result<Vec<Output>> {
                    todo!()
                }
            ),
        )
        .to_string();
        assert!(out.contains("must be `&[u8]`"), "{out}");
    }
}
