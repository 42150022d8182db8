//! `#[tether::expose]` on an inherent `impl` block.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::{Error, ImplItem, ItemImpl, LitStr, Type};

use crate::model::{last_ident, name_of, parse_method, Kind, Method, Special};
use crate::object::{self, ObjectImpl};

/// Options of the attribute: `#[expose]`, `#[expose(name = "Calc")]`,
/// `#[expose(unhashable)]`.
pub(crate) struct Options {
    pub(crate) name: Option<String>,
    /// `hash` on the object is a `TypeError`.
    pub(crate) unhashable: bool,
}

pub(crate) fn parse_options(attr: TokenStream) -> syn::Result<Options> {
    let mut options = Options {
        name: None,
        unhashable: false,
    };
    if attr.is_empty() {
        return Ok(options);
    }
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            options.name = Some(meta.value()?.parse::<LitStr>()?.value());
            Ok(())
        } else if meta.path.is_ident("unhashable") {
            options.unhashable = true;
            Ok(())
        } else {
            Err(meta.error("unknown option; expected `name = \"TypeName\"` or `unhashable`"))
        }
    });
    syn::parse::Parser::parse2(parser, attr)?;
    Ok(options)
}

/// Which marker a method carries, if any, and the attribute name it names.
fn marker(item: &syn::ImplItemFn, errors: &mut Vec<Error>) -> Option<Kind> {
    let mut found = None;
    for attr in &item.attrs {
        let kind = if attr.path().is_ident("method") {
            if !matches!(attr.meta, syn::Meta::Path(_)) {
                errors.push(Error::new_spanned(
                    &attr.meta,
                    "#[method] takes no arguments: the remote name is the method's name",
                ));
            }
            Kind::Method
        } else if attr.path().is_ident("getter") || attr.path().is_ident("setter") {
            let explicit = match &attr.meta {
                syn::Meta::List(list) => match list.parse_args::<syn::Ident>() {
                    Ok(ident) => Some(name_of(&ident)),
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                },
                _ => None,
            };
            let ident = name_of(&item.sig.ident);
            if attr.path().is_ident("getter") {
                Kind::Getter(explicit.unwrap_or(ident))
            } else {
                let default = ident.strip_prefix("set_").unwrap_or(&ident).to_string();
                Kind::Setter(explicit.unwrap_or(default))
            }
        } else if attr.path().is_ident("op") {
            let op = attr
                .parse_args::<syn::Ident>()
                .ok()
                .and_then(|i| Special::parse(&i.to_string()));
            match op {
                Some(op) => Kind::Op(op),
                None => {
                    errors.push(Error::new_spanned(
                        attr,
                        "expected #[op(repr)], #[op(str)], #[op(call)], #[op(next)], #[op(close)], \
                         #[op(enter)] or #[op(exit)]",
                    ));
                    continue;
                }
            }
        } else {
            continue;
        };
        if found.is_some() {
            errors.push(Error::new_spanned(
                attr,
                "a method can carry only one of #[method], #[getter], #[setter], #[op(..)]",
            ));
        }
        found = Some(kind);
    }
    found
}

fn is_marker(attr: &syn::Attribute) -> bool {
    ["method", "getter", "setter", "op"]
        .iter()
        .any(|m| attr.path().is_ident(m))
}

pub(crate) fn expand(options: Options, mut item: ItemImpl) -> syn::Result<TokenStream> {
    if let Some((_, path, _)) = &item.trait_ {
        return Err(Error::new_spanned(
            path,
            "#[tether::expose] goes on an inherent impl block (`impl MyType { .. }`); \
             for a trait, put #[tether::service] on the trait itself",
        ));
    }
    let mut errors = Vec::new();
    let mut methods: Vec<Method> = Vec::new();
    for impl_item in &mut item.items {
        let ImplItem::Fn(f) = impl_item else { continue };
        if let Some(kind) = marker(f, &mut errors) {
            if let Some(m) = parse_method(&f.sig, &f.attrs, kind, &mut errors) {
                methods.push(m);
            }
        }
        // The markers and `#[rest]` are ours; the compiler must not see them.
        f.attrs.retain(|a| !is_marker(a));
        for input in f.sig.inputs.iter_mut() {
            if let syn::FnArg::Typed(pt) = input {
                pt.attrs.retain(|a| !a.path().is_ident("rest"));
            }
        }
    }
    object::check_names(&methods, &mut errors);
    // Report every problem at once, in source order.
    if let Some(all) = errors.into_iter().reduce(|mut all, e| {
        all.combine(e);
        all
    }) {
        return Err(all);
    }

    let self_ty = &item.self_ty;
    let type_name = options.name.unwrap_or_else(|| type_name_of(self_ty));
    let (impl_generics, _, where_clause) = item.generics.split_for_impl();
    let header = quote!(impl #impl_generics ::tether::Object for #self_ty #where_clause);
    let call = |m: &Method, args: Vec<TokenStream>| {
        let ident = &m.ident;
        quote!(self.#ident(#(#args),*))
    };
    let generated = object::generate(&ObjectImpl {
        header,
        type_name,
        unhashable: options.unhashable,
        methods: &methods,
        call: &call,
    });
    Ok(quote! {
        #item
        #generated
    })
}

fn type_name_of(ty: &Type) -> String {
    match ty {
        Type::Path(p) => last_ident(&p.path).unwrap_or_default(),
        other => other.to_token_stream().to_string(),
    }
}
