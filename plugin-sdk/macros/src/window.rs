//! `#[weir_sdk::window(...)]` on an accumulator type (which implements
//! `weir_sdk::window::Aggregate`): generates the keyed entry point and the
//! timer function of an event-time window operator over that type.

use proc_macro2::TokenStream;
use quote::quote;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Item, Lit, MetaNameValue, Token};

/// `500ms`, `5s`, `1m`, `2h`, `1d` in milliseconds (as the SDK's
/// `window::parse_duration_ms`).
fn duration_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: i64 = n.parse().ok()?;
    let scale = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(scale).filter(|ms| *ms > 0 || scale == 0)
}

const USAGE: &str = "#[weir_sdk::window(...)] takes one of `tumbling = \"60s\"`, `hopping = \"60s\", hop = \"10s\"`, `sliding = \"5m\"`, `session = \"30m\"` (the gap), and optionally `allowed_lateness = \"5s\"` and `late = \"late\"` (the route of late events; `\"\"`: they fail, as dead letters)";

struct Args {
    kind: TokenStream,
    lateness: i64,
    late: Option<String>,
}

fn parse_args(attr: TokenStream) -> syn::Result<Args> {
    let span = proc_macro2::Span::call_site();
    let pairs = syn::parse::Parser::parse2(
        Punctuated::<MetaNameValue, Token![,]>::parse_terminated,
        attr,
    )?;
    let mut kind: Option<(String, i64)> = None;
    let (mut hop, mut lateness, mut late) = (None, 0, Some("late".to_owned()));
    for pair in pairs {
        let name = pair
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        let Expr::Lit(ExprLit {
            lit: Lit::Str(value),
            ..
        }) = &pair.value
        else {
            return Err(syn::Error::new_spanned(&pair.value, USAGE));
        };
        let text = value.value();
        if name == "late" {
            late = (!text.is_empty()).then_some(text);
            continue;
        }
        let ms = duration_ms(&text).ok_or_else(|| {
            syn::Error::new_spanned(
                value,
                format!("`{text}` is not a duration (like `500ms`, `5s`, `1m`, `2h`, `1d`)"),
            )
        })?;
        match name.as_str() {
            "tumbling" | "hopping" | "sliding" | "session" => {
                if kind.is_some() {
                    return Err(syn::Error::new_spanned(&pair.path, USAGE));
                }
                if ms <= 0 {
                    return Err(syn::Error::new_spanned(
                        value,
                        "a window size must be positive",
                    ));
                }
                kind = Some((name, ms));
            }
            "hop" if ms > 0 => hop = Some(ms),
            "allowed_lateness" => lateness = ms,
            _ => return Err(syn::Error::new_spanned(&pair.path, USAGE)),
        }
    }
    let kind = match (kind, hop) {
        (Some((k, size)), None) if k == "tumbling" => {
            quote!(::weir_sdk::window::WindowKind::Tumbling { size_ms: #size })
        }
        (Some((k, size)), Some(hop)) if k == "hopping" => {
            if hop > size {
                return Err(syn::Error::new(
                    span,
                    "`hop` must not exceed the window size",
                ));
            }
            quote!(::weir_sdk::window::WindowKind::Hopping { size_ms: #size, hop_ms: #hop })
        }
        (Some((k, size)), None) if k == "sliding" => {
            quote!(::weir_sdk::window::WindowKind::Sliding { size_ms: #size })
        }
        (Some((k, gap)), None) if k == "session" => {
            quote!(::weir_sdk::window::WindowKind::Session { gap_ms: #gap })
        }
        _ => return Err(syn::Error::new(span, USAGE)),
    };
    Ok(Args {
        kind,
        lateness,
        late,
    })
}

/// Expands `#[weir_sdk::window(...)]`.
pub(crate) fn window(attr: TokenStream, item: TokenStream) -> TokenStream {
    let parsed: Item = match syn::parse2(item.clone()) {
        Ok(item) => item,
        Err(e) => return e.to_compile_error(),
    };
    let name = match &parsed {
        Item::Struct(s) if s.generics.params.is_empty() => &s.ident,
        Item::Enum(e) if e.generics.params.is_empty() => &e.ident,
        _ => {
            let error = syn::Error::new_spanned(
                &parsed,
                "#[weir_sdk::window] goes on the accumulator type (a struct or enum without generics that implements weir_sdk::window::Aggregate)",
            )
            .to_compile_error();
            return quote!(#error #item);
        }
    };
    let args = match parse_args(attr) {
        Ok(args) => args,
        Err(e) => {
            let error = e.to_compile_error();
            return quote!(#error #item);
        }
    };
    let (kind, lateness) = (args.kind, args.lateness);
    let late = match args.late {
        Some(route) => quote!(::core::option::Option::Some(#route)),
        None => quote!(::core::option::Option::None),
    };
    let sdk = quote!(::weir_sdk);
    quote! {
        #item

        #[doc(hidden)]
        const __WEIR_WINDOW: #sdk::window::WindowSpec = #sdk::window::WindowSpec {
            kind: #kind,
            allowed_lateness_ms: #lateness,
            late_route: #late,
        };

        #[doc(hidden)]
        #[#sdk::keyed]
        fn __weir_window_event(
            ev: #sdk::Event,
            state: &mut #sdk::State<#sdk::window::WindowState<#name>>,
            ctx: &mut #sdk::Context,
        ) -> #sdk::Result<::std::vec::Vec<#sdk::Output>> {
            #sdk::window::on_event::<#name, ()>(&__WEIR_WINDOW, ev, state, ctx)
        }

        #[doc(hidden)]
        #[#sdk::on_timer]
        fn __weir_window_timer(
            key: &[u8],
            at_ms: i64,
            state: &mut #sdk::State<#sdk::window::WindowState<#name>>,
            ctx: &mut #sdk::Context,
        ) -> #sdk::Result<::std::vec::Vec<#sdk::Output>> {
            #sdk::window::on_timer::<#name, ()>(&__WEIR_WINDOW, key, at_ms, state, ctx)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(attr: TokenStream) -> String {
        window(
            attr,
            quote!(
                struct Stats {
                    n: u64,
                }
            ),
        )
        .to_string()
    }

    #[test]
    fn kinds_and_options() {
        let out = expand(quote!(tumbling = "60s", allowed_lateness = "5s"));
        assert!(
            out.contains("WindowKind :: Tumbling { size_ms : 60000i64 }"),
            "{out}"
        );
        assert!(out.contains("allowed_lateness_ms : 5000i64"), "{out}");
        assert!(out.contains("Some (\"late\")"), "{out}");
        assert!(out.contains("# [:: weir_sdk :: keyed]"), "{out}");
        assert!(out.contains("on_timer :: < Stats , () >"), "{out}");
        let out = expand(quote!(hopping = "1m", hop = "10s", late = ""));
        assert!(
            out.contains("Hopping { size_ms : 60000i64 , hop_ms : 10000i64 }"),
            "{out}"
        );
        assert!(
            out.contains("late_route : :: core :: option :: Option :: None"),
            "{out}"
        );
        assert!(expand(quote!(sliding = "500ms")).contains("Sliding { size_ms : 500i64 }"));
        assert!(expand(quote!(session = "30m")).contains("Session { gap_ms : 1800000i64 }"));
    }

    #[test]
    fn bad_arguments_are_errors() {
        for bad in [
            quote!(),
            quote!(tumbling = "60s", session = "1m"),
            quote!(hopping = "1m"),
            quote!(hopping = "10s", hop = "1m"),
            quote!(tumbling = "sixty"),
            quote!(tumbling = 60),
            quote!(width = "1m"),
        ] {
            let out = expand(bad);
            assert!(out.contains("compile_error"), "{out}");
            assert!(!out.contains("__weir_window_event"), "{out}");
        }
        let out = window(
            quote!(tumbling = "1s"),
            quote!(
                fn f() {}
            ),
        )
        .to_string();
        assert!(out.contains("goes on the accumulator type"), "{out}");
    }
}
