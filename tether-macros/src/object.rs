//! Generating `impl tether::Object` from parsed methods; shared by
//! `#[expose]` (calls `self.method(..)`) and `#[service]` (calls the trait
//! method on the wrapped value).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Error, Ident};

use crate::model::{is_byte_vec, is_unit, name_of, vec_inner, Kind, Method, Ret, Special, Take};

/// Everything needed to write the impl.
pub(crate) struct ObjectImpl<'a> {
    /// `impl<..> ::tether::Object for #self_ty #where`
    pub(crate) header: TokenStream,
    pub(crate) type_name: String,
    /// `hash` on the object is a `TypeError` (`#[expose(unhashable)]`).
    pub(crate) unhashable: bool,
    pub(crate) methods: &'a [Method],
    /// Builds the call of `method` on the served value from the argument
    /// expressions.
    pub(crate) call: &'a dyn Fn(&Method, Vec<TokenStream>) -> TokenStream,
}

/// Refuse two members with one name, and setters without getters.
pub(crate) fn check_names(methods: &[Method], errors: &mut Vec<Error>) {
    let mut seen: Vec<(String, &Kind)> = Vec::new();
    let mut ops: Vec<Special> = Vec::new();
    for m in methods {
        if let Kind::Op(op) = m.kind {
            if ops.contains(&op) {
                errors.push(Error::new_spanned(
                    &m.ident,
                    "this #[op(..)] is already implemented by another method",
                ));
            }
            ops.push(op);
            continue;
        }
        let name = m.remote_name();
        for (other, kind) in &seen {
            let clash = *other == name
                && !matches!(
                    (kind, &m.kind),
                    (Kind::Getter(_), Kind::Setter(_)) | (Kind::Setter(_), Kind::Getter(_))
                );
            if clash {
                errors.push(Error::new_spanned(
                    &m.ident,
                    format!("duplicate exposed name '{name}': every member needs its own name"),
                ));
            }
        }
        seen.push((name, &m.kind));
    }
    for m in methods {
        if let Kind::Setter(name) = &m.kind {
            let has_getter = methods
                .iter()
                .any(|g| matches!(&g.kind, Kind::Getter(n) if n == name));
            if !has_getter {
                errors.push(Error::new_spanned(
                    &m.ident,
                    format!("setter for '{name}' has no `#[getter]`: a peer could write it but never read it"),
                ));
            }
        }
    }
}

pub(crate) fn generate(obj: &ObjectImpl<'_>) -> TokenStream {
    let header = &obj.header;
    let type_name = &obj.type_name;
    let hashable = obj.unhashable.then(|| {
        quote!(
            fn hashable(&self) -> bool {
                false
            }
        )
    });
    let members = members(obj.methods);
    let method_arms: Vec<TokenStream> = obj
        .methods
        .iter()
        .filter(|m| m.kind == Kind::Method)
        .map(|m| method_arm(obj, m))
        .collect();
    let getter_arms: Vec<TokenStream> = obj
        .methods
        .iter()
        .filter(|m| matches!(m.kind, Kind::Getter(_)))
        .map(|m| getter_arm(obj, m))
        .collect();
    let setter_arms: Vec<TokenStream> = obj
        .methods
        .iter()
        .filter(|m| matches!(m.kind, Kind::Setter(_)))
        .map(|m| setter_arm(obj, m))
        .collect();
    let ops: Vec<TokenStream> = obj
        .methods
        .iter()
        .filter_map(|m| match m.kind {
            Kind::Op(op) => Some(op_fn(obj, m, op)),
            _ => None,
        })
        .collect();
    quote! {
        #header {
            fn type_name(&self) -> &str {
                #type_name
            }

            #hashable

            #(#ops)*

            fn members(&self) -> &[::tether::Member] {
                const MEMBERS: &[::tether::Member] = &[#(#members),*];
                MEMBERS
            }

            fn call_method<'__a>(
                &'__a self,
                __name: &'__a str,
                __args: ::tether::Args,
                __cx: &'__a ::tether::CallContext,
            ) -> ::tether::BoxFuture<'__a, ::tether::Result<::tether::Value>> {
                let _ = (&__args, __cx);
                // One future per method, boxed in its arm: a future for all
                // of them would be as large as the largest (an async
                // method's), and every call, however small, would allocate
                // and fill that much.
                match __name {
                    #(#method_arms)*
                    _ => ::std::boxed::Box::pin(async move {
                        ::std::result::Result::Err(::tether::__private::no_member(#type_name, __name))
                    }),
                }
            }

            fn get_attr<'__a>(
                &'__a self,
                __name: &'__a str,
                __cx: &'__a ::tether::CallContext,
            ) -> ::tether::BoxFuture<'__a, ::tether::Result<::tether::Value>> {
                let _ = __cx;
                ::std::boxed::Box::pin(async move {
                    match __name {
                        #(#getter_arms)*
                        _ => ::std::result::Result::Err(::tether::__private::no_member(#type_name, __name)),
                    }
                })
            }

            fn set_attr<'__a>(
                &'__a self,
                __name: &'__a str,
                __value: ::tether::Value,
                __cx: &'__a ::tether::CallContext,
            ) -> ::tether::BoxFuture<'__a, ::tether::Result<()>> {
                let _ = (&__value, __cx);
                ::std::boxed::Box::pin(async move {
                    match __name {
                        #(#setter_arms)*
                        _ => ::std::result::Result::Err(::tether::__private::no_member(#type_name, __name)),
                    }
                })
            }
        }
    }
}

fn members(methods: &[Method]) -> Vec<TokenStream> {
    methods
        .iter()
        .filter_map(|m| {
            let name = m.remote_name();
            let sig = m.signature();
            let doc = &m.doc;
            match &m.kind {
                Kind::Method => Some(quote!(::tether::Member::method(#name, #sig, #doc))),
                Kind::Getter(attr) => {
                    let writable = methods
                        .iter()
                        .any(|s| matches!(&s.kind, Kind::Setter(n) if n == attr));
                    Some(if writable {
                        quote!(::tether::Member::attribute(#name, #sig, #doc).writable())
                    } else {
                        quote!(::tether::Member::attribute(#name, #sig, #doc))
                    })
                }
                Kind::Setter(_) | Kind::Op(_) => None,
            }
        })
        .collect()
}

/// Read the arguments into locals; returns the statements and the
/// expressions to pass to the method.
fn take_args(m: &Method, reader: &Ident) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let mut lets = Vec::new();
    let mut pass = Vec::new();
    for p in &m.params {
        let ident = format_ident!("__arg_{}", p.ident);
        let pname = name_of(&p.ident);
        let optional = p.optional;
        let ty = &p.ty;
        match p.take {
            // The reading function is spanned at the type, so a type that
            // does not deserialize is reported at the parameter rather than
            // at the attribute (the rest stays macro code, out of lints).
            Take::One => {
                let one = quote_spanned!(ty.span()=> ::tether::__private::ArgReader::one::<#ty>);
                lets.push(quote!(let #ident: #ty = #one(&mut #reader, #pname, #optional)?;));
                pass.push(quote!(#ident));
            }
            Take::Str => {
                lets.push(quote!(let #ident: ::std::string::String = #reader.one(#pname, false)?;));
                pass.push(quote!(&#ident));
            }
            Take::Bytes => {
                lets.push(quote!(let #ident: ::std::vec::Vec<u8> = #reader.one(#pname, false)?;));
                pass.push(quote!(&#ident));
            }
            Take::Rest => {
                let rest = match vec_inner(ty) {
                    Some(item) => {
                        quote_spanned!(ty.span()=> ::tether::__private::ArgReader::rest::<#item>)
                    }
                    None => quote!(::tether::__private::ArgReader::rest),
                };
                lets.push(quote!(let #ident: #ty = #rest(&mut #reader)?;));
                pass.push(quote!(#ident));
            }
            Take::Context => pass.push(quote!(__cx)),
        }
    }
    (lets, pass)
}

/// `call` then `.await`, `?` and conversion of the result to a `Value`.
fn finish_call(m: &Method, call: TokenStream) -> TokenStream {
    let awaited = if m.is_async {
        quote!(#call.await)
    } else {
        call
    };
    match &m.ret {
        Ret::Unit => quote! {
            #awaited;
            ::std::result::Result::Ok(::tether::Value::None)
        },
        Ret::Result(ty) if is_unit(ty) => quote! {
            #awaited?;
            ::std::result::Result::Ok(::tether::Value::None)
        },
        Ret::Plain(ty) | Ret::Result(ty) => {
            let value = if matches!(m.ret, Ret::Result(_)) {
                quote!(#awaited?)
            } else {
                awaited
            };
            if is_byte_vec(ty) {
                quote!(::std::result::Result::Ok(<::tether::Value as ::std::convert::From<::std::vec::Vec<u8>>>::from(#value)))
            } else {
                // Spanned at the type, as in `take_args`; an `impl Trait`
                // cannot be named there, so it is left to inference.
                let to_return = if mentions_impl(ty.to_token_stream()) {
                    quote!(::tether::__private::to_return)
                } else {
                    quote_spanned!(ty.span()=> ::tether::__private::to_return::<#ty>)
                };
                quote! {
                    let __out = #value;
                    #to_return(&__out)
                }
            }
        }
    }
}

fn method_arm(obj: &ObjectImpl<'_>, m: &Method) -> TokenStream {
    let name = m.remote_name();
    let reader = format_ident!("__reader");
    let (lets, pass) = take_args(m, &reader);
    let call = (obj.call)(m, pass);
    let body = finish_call(m, call);
    quote! {
        #name => ::std::boxed::Box::pin(async move {
            let mut #reader = ::tether::__private::ArgReader::new(__args);
            #(#lets)*
            #reader.finish()?;
            #body
        }),
    }
}

/// The `Object` method for an `#[op(..)]`.
fn op_fn(obj: &ObjectImpl<'_>, m: &Method, op: Special) -> TokenStream {
    let context_only: Vec<TokenStream> = m.params.iter().map(|_| quote!(__cx)).collect();
    let awaited = |call: TokenStream| {
        if m.is_async {
            quote!(#call.await)
        } else {
            call
        }
    };
    let tried = |value: TokenStream| match m.ret {
        Ret::Result(_) => quote!(#value?),
        _ => value,
    };
    match op {
        Special::Repr | Special::Str => {
            let name = if op == Special::Repr {
                quote!(repr)
            } else {
                quote!(str)
            };
            let call = (obj.call)(m, Vec::new());
            quote! {
                fn #name(&self) -> ::std::string::String {
                    #call
                }
            }
        }
        Special::Close => {
            let done = tried(awaited((obj.call)(m, context_only)));
            quote! {
                fn close<'__a>(
                    &'__a self,
                    __cx: &'__a ::tether::CallContext,
                ) -> ::tether::BoxFuture<'__a, ::tether::Result<()>> {
                    let _ = __cx;
                    ::std::boxed::Box::pin(async move {
                        #done;
                        ::std::result::Result::Ok(())
                    })
                }
            }
        }
        Special::Next => {
            let item = tried(awaited((obj.call)(m, context_only)));
            quote! {
                fn next<'__a>(
                    &'__a self,
                    __cx: &'__a ::tether::CallContext,
                ) -> ::tether::BoxFuture<'__a, ::tether::Result<::std::option::Option<::tether::Value>>> {
                    let _ = __cx;
                    ::std::boxed::Box::pin(async move {
                        match #item {
                            ::std::option::Option::Some(__item) => ::std::result::Result::Ok(
                                ::std::option::Option::Some(::tether::__private::to_return(&__item)?),
                            ),
                            ::std::option::Option::None => ::std::result::Result::Ok(::std::option::Option::None),
                        }
                    })
                }
            }
        }
        Special::Enter => {
            let body = finish_call(m, (obj.call)(m, context_only));
            quote! {
                fn enter<'__a>(
                    &'__a self,
                    __cx: &'__a ::tether::CallContext,
                ) -> ::tether::BoxFuture<'__a, ::tether::Result<::std::option::Option<::tether::Value>>> {
                    let _ = __cx;
                    ::std::boxed::Box::pin(async move {
                        let __value: ::tether::Result<::tether::Value> = async { #body }.await;
                        __value.map(::std::option::Option::Some)
                    })
                }
            }
        }
        Special::Exit => {
            let pass: Vec<TokenStream> = m
                .params
                .iter()
                .map(|p| match p.take {
                    Take::Context => quote!(__cx),
                    _ => quote!(__error),
                })
                .collect();
            let outcome = tried(awaited((obj.call)(m, pass)));
            let suppress = match &m.ret {
                Ret::Unit => quote!({ #outcome; false }),
                Ret::Result(ty) | Ret::Plain(ty) if is_unit(ty) => quote!({ #outcome; false }),
                _ => outcome,
            };
            quote! {
                fn exit<'__a>(
                    &'__a self,
                    __error: ::std::option::Option<::tether::Error>,
                    __cx: &'__a ::tether::CallContext,
                ) -> ::tether::BoxFuture<'__a, ::tether::Result<bool>> {
                    let _ = __cx;
                    ::std::boxed::Box::pin(async move {
                        ::std::result::Result::Ok(#suppress)
                    })
                }
            }
        }
        Special::Call => {
            let reader = format_ident!("__reader");
            let (lets, pass) = take_args(m, &reader);
            let body = finish_call(m, (obj.call)(m, pass));
            quote! {
                fn call<'__a>(
                    &'__a self,
                    __args: ::tether::Args,
                    __cx: &'__a ::tether::CallContext,
                ) -> ::tether::BoxFuture<'__a, ::tether::Result<::tether::Value>> {
                    let _ = __cx;
                    ::std::boxed::Box::pin(async move {
                        let mut #reader = ::tether::__private::ArgReader::new(__args);
                        #(#lets)*
                        #reader.finish()?;
                        #body
                    })
                }
            }
        }
    }
}

fn getter_arm(obj: &ObjectImpl<'_>, m: &Method) -> TokenStream {
    let name = m.remote_name();
    let pass = m.params.iter().map(|_| quote!(__cx)).collect();
    let body = finish_call(m, (obj.call)(m, pass));
    quote!(#name => { #body })
}

fn setter_arm(obj: &ObjectImpl<'_>, m: &Method) -> TokenStream {
    let name = m.remote_name();
    let mut lets = Vec::new();
    let mut pass = Vec::new();
    for p in &m.params {
        let ty = &p.ty;
        match p.take {
            Take::Context => pass.push(quote!(__cx)),
            Take::Str => {
                lets.push(quote!(let __new: ::std::string::String = ::tether::__private::setter_value(__value)?;));
                pass.push(quote!(&__new));
            }
            Take::Bytes => {
                lets.push(quote!(let __new: ::std::vec::Vec<u8> = ::tether::__private::setter_value(__value)?;));
                pass.push(quote!(&__new));
            }
            _ => {
                lets.push(quote!(let __new: #ty = ::tether::__private::setter_value(__value)?;));
                pass.push(quote!(__new));
            }
        }
    }
    let call = (obj.call)(m, pass);
    let awaited = if m.is_async {
        quote!(#call.await)
    } else {
        call
    };
    let done = match m.ret {
        Ret::Result(_) => quote!(#awaited?;),
        _ => quote!(#awaited;),
    };
    quote! {
        #name => {
            #(#lets)*
            #done
            ::std::result::Result::Ok(())
        }
    }
}

/// Whether a type mentions `impl Trait` anywhere (it cannot be written in a
/// turbofish).
fn mentions_impl(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|t| match t {
        proc_macro2::TokenTree::Ident(i) => i == "impl",
        proc_macro2::TokenTree::Group(g) => mentions_impl(g.stream()),
        _ => false,
    })
}
