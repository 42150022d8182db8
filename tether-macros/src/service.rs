//! `#[tether::service]` on a trait: the trait itself (made object-safe for
//! async and `Send`), a typed client proxy over a `NetRef`, and an
//! `Object` wrapper that serves any implementation.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Error, ItemTrait, TraitItem};

use crate::model::{is_byte_vec, parse_method, Kind, Method, Ret, Take};
use crate::object::{self, ObjectImpl};

pub(crate) fn expand(mut item: ItemTrait) -> syn::Result<TokenStream> {
    let mut errors = Vec::new();
    let mut methods = Vec::new();
    for trait_item in &mut item.items {
        let TraitItem::Fn(f) = trait_item else {
            continue;
        };
        if f.sig.asyncness.is_none() {
            errors.push(Error::new_spanned(
                &f.sig,
                "service trait methods must be `async fn`: a proxy's call crosses the network",
            ));
            continue;
        }
        let Some(m) = parse_method(&f.sig, &f.attrs, Kind::Method, &mut errors) else {
            continue;
        };
        if !matches!(m.ret, Ret::Result(_)) {
            errors.push(Error::new_spanned(
                &f.sig.output,
                "service trait methods must return `tether::Result<T>`: a remote call can fail",
            ));
            continue;
        }
        // `async fn` in the trait becomes `fn -> impl Future + Send`, so the
        // served object's futures can be boxed as `Send`; implementations
        // may still write `async fn`.
        let output = match &f.sig.output {
            syn::ReturnType::Type(_, ty) => ty.clone(),
            syn::ReturnType::Default => unreachable!("checked above"),
        };
        f.sig.asyncness = None;
        // A default body becomes the future it used to be.
        if let Some(body) = f.default.take() {
            f.default = Some(syn::parse_quote!({ async move #body }));
        }
        f.sig.output = syn::parse_quote! {
            -> impl ::std::future::Future<Output = #output> + ::std::marker::Send
        };
        for input in f.sig.inputs.iter_mut() {
            if let syn::FnArg::Typed(pt) = input {
                pt.attrs.retain(|a| !a.path().is_ident("rest"));
            }
        }
        methods.push(m);
    }
    object::check_names(&methods, &mut errors);
    // Report every problem at once, in source order.
    if let Some(all) = errors.into_iter().reduce(|mut all, e| {
        all.combine(e);
        all
    }) {
        return Err(all);
    }

    let vis = &item.vis;
    let trait_ident = &item.ident;
    let trait_name = trait_ident.to_string();
    let proxy = format_ident!("{}Proxy", trait_ident);
    let promise = format_ident!("{}Promise", trait_ident);
    let served = format_ident!("{}Object", trait_ident);
    item.supertraits
        .push(syn::parse_quote!(::std::marker::Send));
    item.supertraits
        .push(syn::parse_quote!(::std::marker::Sync));
    item.supertraits.push(syn::parse_quote!('static));
    if item.colon_token.is_none() {
        item.colon_token = Some(Default::default());
    }

    let proxy_methods = methods.iter().map(proxy_method);
    let promise_methods = methods.iter().map(|m| promise_method(m, vis));
    let call = |m: &Method, args: Vec<TokenStream>| {
        let ident = &m.ident;
        quote!(<__T as #trait_ident>::#ident(&self.0, #(#args),*))
    };
    let object_impl = object::generate(&ObjectImpl {
        header: quote!(impl<__T: #trait_ident> ::tether::Object for #served<__T>),
        type_name: trait_name.clone(),
        unhashable: false,
        methods: &methods,
        call: &call,
    });
    let proxy_doc = format!(
        "A client for a remote [`{trait_name}`]: each method is a call on the wrapped `NetRef`."
    );
    let promise_doc = format!(
        "A promised remote [`{trait_name}`]: each method starts its call at once, on the \
         object the promise will resolve to, and returns a promise of its result; on a \
         tether peer the calls are pipelined. Await it for the [`{trait_name}Proxy`]."
    );
    let served_doc = format!(
        "Serves any [`{trait_name}`] implementation as a tether object: `NetRef::new({served}(my_impl))`."
    );
    Ok(quote! {
        #item

        #[doc = #proxy_doc]
        #[derive(::std::clone::Clone, ::std::fmt::Debug)]
        #vis struct #proxy {
            netref: ::tether::NetRef,
        }

        impl #proxy {
            /// Wrap a reference to a remote object serving this trait.
            #vis fn new(netref: ::tether::NetRef) -> Self {
                Self { netref }
            }

            /// The reference the proxy calls.
            #vis fn netref(&self) -> &::tether::NetRef {
                &self.netref
            }

            /// This object as a resolved promise, to start calls on it
            /// without waiting for them (see `tether::Promise`).
            #vis fn promise(&self) -> #promise {
                #promise::new(self.netref.promise())
            }
        }

        // A proxy travels as the reference it wraps, so service methods
        // may take and return other services' proxies.
        impl ::tether::__private::serde::Serialize for #proxy {
            fn serialize<__S: ::tether::__private::serde::Serializer>(
                &self,
                serializer: __S,
            ) -> ::std::result::Result<__S::Ok, __S::Error> {
                ::tether::__private::serde::Serialize::serialize(&self.netref, serializer)
            }
        }

        impl<'de> ::tether::__private::serde::Deserialize<'de> for #proxy {
            fn deserialize<__D: ::tether::__private::serde::Deserializer<'de>>(
                deserializer: __D,
            ) -> ::std::result::Result<Self, __D::Error> {
                <::tether::NetRef as ::tether::__private::serde::Deserialize<'de>>::deserialize(
                    deserializer,
                )
                .map(Self::new)
            }
        }

        #[doc = #promise_doc]
        #[derive(::std::clone::Clone, ::std::fmt::Debug)]
        #vis struct #promise {
            promise: ::tether::Promise,
        }

        impl #promise {
            /// The promised object as this service.
            #vis fn new(promise: ::tether::Promise) -> Self {
                Self { promise }
            }

            /// The untyped promise.
            #vis fn untyped(&self) -> &::tether::Promise {
                &self.promise
            }

            #(#promise_methods)*
        }

        impl ::std::future::IntoFuture for #promise {
            type Output = ::tether::Result<#proxy>;
            type IntoFuture = ::tether::BoxFuture<'static, ::tether::Result<#proxy>>;

            fn into_future(self) -> Self::IntoFuture {
                ::std::boxed::Box::pin(async move {
                    ::std::result::Result::Ok(#proxy::new(self.promise.netref().await?))
                })
            }
        }

        impl ::std::convert::From<::tether::NetRef> for #proxy {
            fn from(netref: ::tether::NetRef) -> Self {
                Self { netref }
            }
        }

        impl ::std::convert::TryFrom<::tether::Value> for #proxy {
            type Error = ::tether::Error;
            fn try_from(value: ::tether::Value) -> ::tether::Result<Self> {
                ::std::result::Result::Ok(Self { netref: ::tether::NetRef::try_from(value)? })
            }
        }

        impl #trait_ident for #proxy {
            #(#proxy_methods)*
        }

        #[doc = #served_doc]
        #[derive(::std::clone::Clone, ::std::fmt::Debug)]
        #vis struct #served<__T>(pub __T);

        #object_impl
    })
}

/// The expression building a call's `Args` from the method's parameters,
/// as a `tether::Result<tether::Args>`: converted at once, so what uses
/// them borrows nothing.
fn args_of(m: &Method) -> TokenStream {
    let mut pushes = Vec::new();
    for p in &m.params {
        let pident = &p.ident;
        // Spanned at the type, so a type that does not serialize is
        // reported at the parameter rather than at the attribute.
        let ty = &p.ty;
        let to_arg = quote_spanned!(ty.span()=> ::tether::__private::to_arg::<#ty>);
        match p.take {
            Take::Context => {}
            Take::Rest => pushes.push(quote! {
                for __item in &#pident {
                    __positional.push(::tether::__private::to_arg(__item)?);
                }
            }),
            Take::Bytes => pushes.push(quote! {
                __positional.push(<::tether::Value as ::std::convert::From<&[u8]>>::from(&#pident[..]));
            }),
            Take::One if is_byte_vec(&p.ty) => pushes.push(quote! {
                __positional.push(<::tether::Value as ::std::convert::From<::std::vec::Vec<u8>>>::from(::std::clone::Clone::clone(&#pident)));
            }),
            Take::One | Take::Str => pushes.push(quote! {
                __positional.push(#to_arg(&#pident)?);
            }),
        }
    }
    let unused: Vec<_> = m
        .params
        .iter()
        .filter(|p| p.take == Take::Context)
        .map(|p| &p.ident)
        .collect();
    quote! {{
        let _ = (#(&#unused,)*);
        (|| -> ::tether::Result<::tether::Args> {
            let mut __positional = ::std::vec::Vec::new();
            #(#pushes)*
            ::std::result::Result::Ok(::tether::Args { positional: __positional, named: ::std::vec::Vec::new() })
        })()
    }}
}

fn params_of(m: &Method) -> Vec<TokenStream> {
    m.params
        .iter()
        .map(|p| {
            let pident = &p.ident;
            let ty = &p.ty;
            quote!(#pident: #ty)
        })
        .collect()
}

fn proxy_method(m: &Method) -> TokenStream {
    let ident = &m.ident;
    let name = m.remote_name();
    let params = params_of(m);
    let args = args_of(m);
    let Ret::Result(ok) = &m.ret else {
        unreachable!("service methods return Result")
    };
    let from_return = quote_spanned!(ok.span()=> ::tether::__private::from_return::<#ok>);
    quote! {
        fn #ident(&self, #(#params),*)
            -> impl ::std::future::Future<Output = ::tether::Result<#ok>> + ::std::marker::Send
        {
            let __args = #args;
            let __netref = ::std::clone::Clone::clone(&self.netref);
            async move {
                let __value = __netref.call_method(#name, __args?).await?;
                #from_return(__value)
            }
        }
    }
}

/// What a promise of `ok` is: another service's `XPromise` for its
/// `XProxy`, a plain `Promise` for a `NetRef`, a `TypedPromise` for any
/// other value; and how one is made from a `tether::Promise`.
fn promise_of(ok: &syn::Type) -> (TokenStream, TokenStream) {
    if let syn::Type::Path(p) = ok {
        if let Some(last) = p.path.segments.last() {
            let name = last.ident.to_string();
            if name == "NetRef" {
                return (quote!(::tether::Promise), quote!(|p| p));
            }
            if let Some(stem) = name.strip_suffix("Proxy").filter(|s| !s.is_empty()) {
                let mut path = p.path.clone();
                let last = path.segments.last_mut().expect("a last segment");
                last.ident = format_ident!("{}Promise", stem, span = last.ident.span());
                return (quote!(#path), quote!(#path::new));
            }
        }
    }
    (
        quote!(::tether::TypedPromise<#ok>),
        quote!(::tether::TypedPromise::new),
    )
}

fn promise_method(m: &Method, vis: &syn::Visibility) -> TokenStream {
    let ident = &m.ident;
    let name = m.remote_name();
    let params = params_of(m);
    let args = args_of(m);
    let Ret::Result(ok) = &m.ret else {
        unreachable!("service methods return Result")
    };
    let (promise, make) = promise_of(ok);
    let doc = format!(
        "`{name}` on the promised object, sent without waiting (pipelined on a tether peer)."
    );
    quote! {
        #[doc = #doc]
        #vis fn #ident(&self, #(#params),*) -> #promise {
            let __promise = match #args {
                ::std::result::Result::Ok(__args) => self.promise.call_method(#name, __args),
                ::std::result::Result::Err(__err) => ::tether::Promise::rejected(__err),
            };
            (#make)(__promise)
        }
    }
}
