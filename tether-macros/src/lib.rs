//! Procedural macros of [tether](https://docs.rs/tether). Use them through
//! the re-exports `tether::expose` and `tether::service`, whose docs describe
//! them; generated code names only `::tether::*` paths.
//!
//! - `model`: what a method is (kind, parameters, return, docs), parsed once;
//! - `sig`: Rust types shown in signatures (`int`, `str`, `list[int]`);
//! - `object`: the generated `impl tether::Object`, shared by both macros;
//! - `expose`: `#[expose]` on an impl block;
//! - `service`: `#[service]` on a trait (proxy and serving wrapper).

mod expose;
mod model;
mod object;
mod service;
mod sig;

use proc_macro::TokenStream;

/// See `tether::expose`.
#[proc_macro_attribute]
pub fn expose(attr: TokenStream, item: TokenStream) -> TokenStream {
    let options = match expose::parse_options(attr.into()) {
        Ok(o) => o,
        Err(e) => return e.to_compile_error().into(),
    };
    let item = syn::parse_macro_input!(item as syn::ItemImpl);
    expose::expand(options, item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// See `tether::service`.
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return syn::Error::new_spanned(
            proc_macro2::TokenStream::from(attr),
            "#[tether::service] takes no options",
        )
        .to_compile_error()
        .into();
    }
    let item = syn::parse_macro_input!(item as syn::ItemTrait);
    service::expand(item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
