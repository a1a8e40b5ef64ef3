//! Code generation: the user's function unchanged, plus the glue that exports it
//! as the `weir:plugin/transformer` interface.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ItemFn;
use syn::spanned::Spanned;

use crate::signature::{self, Entry, Kind};

/// A marker every entry point defines: a second entry point in the module is
/// then an error naming it, and `#[weir_sdk::init]` refers to it so that an init
/// without an entry point in its module is an error naming it.
pub(crate) const ENTRY_POINT_MARKER: &str = "__weir_sdk_entry_point_of_this_plugin";

fn ident(name: &str) -> syn::Ident {
    syn::Ident::new(name, proc_macro2::Span::call_site())
}

pub(crate) fn no_arguments(attribute: &str, attr: TokenStream) -> syn::Result<()> {
    if attr.is_empty() {
        Ok(())
    } else {
        Err(syn::Error::new_spanned(
            attr,
            format!("{attribute} takes no arguments"),
        ))
    }
}

/// Expands `#[weir_sdk::map]` and its siblings. On error: the error plus the
/// function unchanged (so that the error is the only one).
pub(crate) fn entry(kind: Kind, attr: TokenStream, item: TokenStream) -> TokenStream {
    let f: ItemFn = match syn::parse2(item) {
        Ok(f) => f,
        Err(e) => return e.to_compile_error(),
    };
    let validated =
        no_arguments(kind.attribute(), attr).and_then(|()| signature::validate_entry(kind, &f));
    match validated {
        Ok(entry) => entry_glue(&f, &entry),
        Err(e) => {
            let error = e.to_compile_error();
            quote!(#error #f)
        }
    }
}

fn entry_glue(f: &ItemFn, entry: &Entry) -> TokenStream {
    let name = &f.sig.ident;
    let sdk = quote!(::weir_sdk);
    let marker = ident(ENTRY_POINT_MARKER);

    // The exact function type, asserted with the signature's span.
    let input = match entry.kind {
        Kind::Map | Kind::FlatMap => quote!(#sdk::Event),
        Kind::Filter => quote!(&#sdk::Event),
        Kind::Batch => quote!(::std::vec::Vec<#sdk::Event>),
    };
    let output = match entry.kind {
        Kind::Map => quote!(#sdk::Event),
        Kind::Filter => quote!(bool),
        Kind::FlatMap => quote!(::std::vec::Vec<#sdk::Output>),
        Kind::Batch => quote!(::std::vec::Vec<#sdk::Result<::std::vec::Vec<#sdk::Output>>>),
    };
    let output = if entry.fallible && entry.kind != Kind::Batch {
        quote!(#sdk::Result<#output>)
    } else {
        output
    };
    let fn_type = match &entry.params {
        Some(p) => quote!(fn(#input, &#p) -> #output),
        None => quote!(fn(#input) -> #output),
    };
    // (`let _` keeps the function alive for the dead-code lint on native
    // builds, where the exports are not compiled.)
    let assertion = quote_spanned! {f.sig.span()=>
        const __WEIR_FN: #fn_type = #name;
        let _ = __WEIR_FN;
    };

    // The call of the user's function for one event (or the whole batch).
    let arg = match entry.kind {
        Kind::Batch => quote!(__weir_events),
        _ => quote!(__weir_event),
    };
    let call = match &entry.params {
        Some(_) => quote!(__WEIR_FN(#arg, __weir_params)),
        None => quote!(__WEIR_FN(#arg)),
    };
    let call = if entry.fallible {
        call
    } else {
        quote!(#sdk::__private::ok(#call))
    };
    let runner = match entry.kind {
        Kind::Map => quote!(run_map),
        Kind::Filter => quote!(run_filter),
        Kind::FlatMap => quote!(run_flat_map),
        Kind::Batch => quote!(run_batch),
    };
    let run = |batch: TokenStream| quote!(#sdk::__private::#runner(#batch, |#arg| #call));

    let (params_slot, init_params, process) = match &entry.params {
        Some(p) => {
            let run = run(quote!(__weir_batch));
            (
                quote! {
                    ::std::thread_local! {
                        static __WEIR_PARAMS: #sdk::__private::ParamSlot<#p> =
                            const { #sdk::__private::ParamSlot::new() };
                    }
                },
                // The one use of `P: DeserializeOwned`, spanned at `P`: the only
                // error if the params type is not deserializable.
                {
                    let parse = quote_spanned!(p.span()=> #sdk::__private::parse_params::<#p>);
                    quote! {
                        __WEIR_PARAMS.with(|__weir_slot| __weir_slot.init(&__weir_json, #parse))?;
                    }
                },
                quote! {
                    __WEIR_PARAMS.with(|__weir_slot| {
                        __weir_slot.process(__weir_input, |__weir_batch, __weir_params| #run)
                    })
                },
            )
        }
        None => (quote!(), quote!(), run(quote!(__weir_input))),
    };

    quote! {
        #f

        #[doc(hidden)]
        #[allow(non_upper_case_globals, reason = "marker named as an error message")]
        const #marker: () = ();

        #[doc(hidden)]
        #[allow(unused_imports, reason = "shadowed by the `__WeirInit` of a #[weir_sdk::init] function")]
        use #sdk::__private::init_fallback::*;

        const _: () = {
            #assertion
            #params_slot

            #[doc(hidden)]
            #[allow(dead_code, reason = "only exported on wasm32")]
            struct __WeirPlugin;

            impl #sdk::__private::Guest for __WeirPlugin {
                fn init(
                    __weir_json: ::std::string::String,
                ) -> ::core::result::Result<#sdk::__private::PluginInfo, ::std::string::String> {
                    #init_params
                    <__WeirInit as #sdk::__private::InitHook>::run(&__weir_json)?;
                    ::core::result::Result::Ok(#sdk::__private::STATELESS)
                }

                fn process(
                    __weir_input: #sdk::__private::Batch,
                ) -> #sdk::__private::OutputBatch {
                    #process
                }

                fn check_state(
                    _sample: #sdk::__private::Batch,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    ::core::result::Result::Ok(())
                }
            }

            // The exports' symbol names (`weir:plugin/...`) are only valid in a
            // wasm32 module; natively the plugin is a plain library (for tests).
            #[cfg(target_arch = "wasm32")]
            #sdk::__private::bindings::export!(__WeirPlugin);
        };
    }
}

/// Expands `#[weir_sdk::init]`.
pub(crate) fn init(attr: TokenStream, item: TokenStream) -> TokenStream {
    let f: ItemFn = match syn::parse2(item) {
        Ok(f) => f,
        Err(e) => return e.to_compile_error(),
    };
    let validated =
        no_arguments("#[weir_sdk::init]", attr).and_then(|()| signature::validate_init(&f));
    let init = match validated {
        Ok(init) => init,
        Err(e) => {
            let error = e.to_compile_error();
            return quote!(#error #f);
        }
    };
    let name = &f.sig.ident;
    let sdk = quote!(::weir_sdk);
    let (assertion, run) = match &init.params {
        Some(p) => (
            quote_spanned! {f.sig.span()=>
                const __WEIR_INIT_FN: fn(#p) -> #sdk::Result<()> = #name;
                let _ = __WEIR_INIT_FN;
            },
            quote!(#sdk::__private::run_init::<#p>(__weir_json, __WEIR_INIT_FN)),
        ),
        None => (
            quote_spanned! {f.sig.span()=>
                const __WEIR_INIT_FN: fn() -> #sdk::Result<()> = #name;
                let _ = __WEIR_INIT_FN;
            },
            quote!(#sdk::__private::run_init_without_params(__WEIR_INIT_FN)),
        ),
    };
    // Fails to compile, naming the marker, unless an entry point is in this module.
    let needs_entry = syn::Ident::new(ENTRY_POINT_MARKER, name.span());
    quote! {
        #f

        #[doc(hidden)]
        #[allow(dead_code, reason = "only used by the wasm32 exports")]
        struct __WeirInit;

        const _: () = {
            #assertion

            impl #sdk::__private::InitHook for __WeirInit {
                fn run(__weir_json: &str) -> ::core::result::Result<(), ::std::string::String> {
                    #run
                }
            }

            #needs_entry
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(kind: Kind, item: TokenStream) -> String {
        entry(kind, TokenStream::new(), item).to_string()
    }

    fn squash(s: &str) -> String {
        s.chars().filter(|c| !c.is_whitespace()).collect()
    }

    #[test]
    fn map_with_params() {
        let out = expand(
            Kind::Map,
            quote!(
                fn f(ev: Event, p: &Params) -> Result<Event> {
                    Ok(ev)
                }
            ),
        );
        assert!(out.starts_with("fn f (ev : Event , p : & Params)"), "{out}");
        assert!(out.contains("const __WEIR_FN : fn (:: weir_sdk :: Event , & Params) -> :: weir_sdk :: Result < :: weir_sdk :: Event > = f ;"), "{out}");
        assert!(out.contains("ParamSlot < Params >"), "{out}");
        assert!(out.contains(":: weir_sdk :: __private :: run_map (__weir_batch , | __weir_event | __WEIR_FN (__weir_event , __weir_params))"), "{out}");
        assert!(
            out.contains(":: weir_sdk :: __private :: bindings :: export ! (__WeirPlugin)"),
            "{out}"
        );
        assert!(
            out.contains("const __weir_sdk_entry_point_of_this_plugin"),
            "{out}"
        );
        assert!(
            out.contains("__weir_slot . init (& __weir_json , :: weir_sdk :: __private :: parse_params :: < Params >)"),
            "{out}"
        );
    }

    #[test]
    fn infallible_filter_without_params() {
        let out = expand(
            Kind::Filter,
            quote!(
                fn keep(ev: &Event) -> bool {
                    true
                }
            ),
        );
        assert!(
            out.contains("const __WEIR_FN : fn (& :: weir_sdk :: Event) -> bool = keep ;"),
            "{out}"
        );
        assert!(out.contains("run_filter (__weir_input , | __weir_event | :: weir_sdk :: __private :: ok (__WEIR_FN (__weir_event)))"), "{out}");
        assert!(!out.contains("ParamSlot"), "{out}");
    }

    #[test]
    fn batch() {
        let out = expand(
            Kind::Batch,
            quote!(
                fn b(evs: Vec<Event>) -> Vec<Result<Vec<Output>>> {
                    vec![]
                }
            ),
        );
        assert!(squash(&out).contains("fn(::std::vec::Vec<::weir_sdk::Event>)->::std::vec::Vec<::weir_sdk::Result<::std::vec::Vec<::weir_sdk::Output>>>=b;"), "{out}");
        assert!(
            out.contains("run_batch (__weir_input , | __weir_events | __WEIR_FN (__weir_events))"),
            "{out}"
        );
    }

    #[test]
    fn errors_keep_the_function() {
        let out = expand(
            Kind::Map,
            quote!(
                fn f(ev: &Event) -> Result<Event> {
                    todo!()
                }
            ),
        );
        assert!(out.starts_with(":: core :: compile_error !"), "{out}");
        assert!(out.contains("fn f (ev : & Event)"), "{out}");
        assert!(!out.contains("__WeirPlugin"), "{out}");
        let out = entry(
            Kind::Map,
            quote!(x),
            quote!(
                fn f(ev: Event) -> Event {
                    ev
                }
            ),
        )
        .to_string();
        assert!(out.contains("#[weir_sdk::map] takes no arguments"), "{out}");
        let out = expand(
            Kind::Map,
            quote!(
                struct S;
            ),
        );
        assert!(out.contains("compile_error"), "{out}");
    }

    #[test]
    fn init_expansions() {
        let out = init(
            TokenStream::new(),
            quote!(
                fn setup(p: Cfg) -> Result<()> {
                    Ok(())
                }
            ),
        )
        .to_string();
        assert!(out.contains("struct __WeirInit"), "{out}");
        assert!(
            out.contains(
                "const __WEIR_INIT_FN : fn (Cfg) -> :: weir_sdk :: Result < () > = setup ;"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                ":: weir_sdk :: __private :: run_init :: < Cfg > (__weir_json , __WEIR_INIT_FN)"
            ),
            "{out}"
        );
        assert!(
            out.contains("__weir_sdk_entry_point_of_this_plugin } ;"),
            "{out}"
        );
        let out = init(
            TokenStream::new(),
            quote!(
                fn setup() -> Result<()> {
                    Ok(())
                }
            ),
        )
        .to_string();
        assert!(
            out.contains("run_init_without_params (__WEIR_INIT_FN)"),
            "{out}"
        );
        let out = init(
            TokenStream::new(),
            quote!(
                fn setup(p: &Cfg) -> Result<()> {
                    Ok(())
                }
            ),
        )
        .to_string();
        assert!(out.contains("compile_error"), "{out}");
    }
}
