//! What the macros understand of a method: parsed once from its signature
//! and attributes, used by both code generators.

use syn::{
    Attribute, Error, FnArg, GenericArgument, Ident, Pat, PathArguments, ReturnType, Signature,
    Type,
};

use crate::sig;

/// What a method becomes on the remote side.
#[derive(Clone, PartialEq)]
pub(crate) enum Kind {
    /// A remote method.
    Method,
    /// Reading the attribute with this name.
    Getter(String),
    /// Writing the attribute with this name.
    Setter(String),
    /// An operation that names no member (`#[op(repr)]`, ...).
    Op(Special),
}

/// The operations `#[op(..)]` can implement.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Special {
    Repr,
    Str,
    Call,
    Next,
    Close,
    Enter,
    Exit,
}

impl Special {
    pub(crate) fn parse(name: &str) -> Option<Special> {
        Some(match name {
            "repr" => Special::Repr,
            "str" => Special::Str,
            "call" => Special::Call,
            "next" => Special::Next,
            "close" => Special::Close,
            "enter" => Special::Enter,
            "exit" => Special::Exit,
            _ => return None,
        })
    }
}

/// Whether `ty` is a Rust function type: `impl Fn(..)`, `&dyn FnMut(..)`,
/// `Box<dyn Fn(..)>`, `fn(..)`.
fn is_function(ty: &Type) -> bool {
    let fn_bound =
        |bounds: &syn::punctuated::Punctuated<syn::TypeParamBound, syn::Token![+]>| {
            bounds.iter().any(|b| match b {
                syn::TypeParamBound::Trait(t) => t.path.segments.last().is_some_and(|s| {
                    ["Fn", "FnMut", "FnOnce"].contains(&s.ident.to_string().as_str())
                }),
                _ => false,
            })
        };
    match ty {
        Type::BareFn(_) => true,
        Type::ImplTrait(t) => fn_bound(&t.bounds),
        Type::TraitObject(t) => fn_bound(&t.bounds),
        Type::Reference(r) => is_function(&r.elem),
        Type::Paren(p) => is_function(&p.elem),
        Type::Path(p) => p
            .path
            .segments
            .last()
            .filter(|s| s.ident == "Box" || s.ident == "Arc")
            .and_then(|s| match &s.arguments {
                syn::PathArguments::AngleBracketed(a) => a.args.first(),
                _ => None,
            })
            .is_some_and(|a| matches!(a, syn::GenericArgument::Type(t) if is_function(t))),
        _ => false,
    }
}

/// How a parameter is taken from the arguments.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Take {
    /// One argument, by position or by name.
    One,
    /// One argument passed on as `&str` (decoded as `String`).
    Str,
    /// One argument passed on as `&[u8]` (decoded as `Vec<u8>`).
    Bytes,
    /// All remaining positional arguments (`#[rest]`).
    Rest,
    /// The call's `&CallContext`, not an argument at all.
    Context,
}

pub(crate) struct Param {
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
    pub(crate) take: Take,
    /// `Option<_>`: may be left out.
    pub(crate) optional: bool,
    /// Its type as shown in signatures (`int`, `str`, `list`).
    pub(crate) shown: String,
}

pub(crate) enum Ret {
    /// No return type: the peer gets `None`.
    Unit,
    /// A value returned as is.
    Plain(Type),
    /// `Result<T, E>`: `?` applies; `T` is the value.
    Result(Type),
}

pub(crate) struct Method {
    pub(crate) ident: Ident,
    pub(crate) kind: Kind,
    pub(crate) is_async: bool,
    pub(crate) params: Vec<Param>,
    pub(crate) ret: Ret,
    pub(crate) doc: String,
}

impl Method {
    /// The remote name: the method's or the attribute's.
    pub(crate) fn remote_name(&self) -> String {
        match &self.kind {
            Kind::Method => name_of(&self.ident),
            Kind::Getter(name) | Kind::Setter(name) => name.clone(),
            Kind::Op(_) => String::new(),
        }
    }

    /// `(a: int, b: int) -> int`, or an attribute's type.
    pub(crate) fn signature(&self) -> String {
        match &self.kind {
            Kind::Getter(_) => self.ret_shown(),
            Kind::Setter(_) => self
                .params
                .iter()
                .find(|p| p.take != Take::Context)
                .map(|p| p.shown.clone())
                .unwrap_or_default(),
            Kind::Method | Kind::Op(_) => {
                let params: Vec<String> = self
                    .params
                    .iter()
                    .filter(|p| p.take != Take::Context)
                    .map(|p| match p.take {
                        Take::Rest if p.shown == "any" => format!("*{}", name_of(&p.ident)),
                        Take::Rest => format!("*{}: {}", name_of(&p.ident), p.shown),
                        _ if p.optional => {
                            format!("{}: {} = None", name_of(&p.ident), p.shown)
                        }
                        _ => format!("{}: {}", name_of(&p.ident), p.shown),
                    })
                    .collect();
                format!("({}) -> {}", params.join(", "), self.ret_shown())
            }
        }
    }

    fn ret_shown(&self) -> String {
        match &self.ret {
            Ret::Unit => "None".into(),
            Ret::Plain(ty) | Ret::Result(ty) => sig::shown(ty),
        }
    }
}

/// The text of `///` comments, trimmed.
pub(crate) fn doc_of(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let syn::Meta::NameValue(nv) = &attr.meta {
            if let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = &nv.value
            {
                let line = s.value();
                lines.push(
                    line.strip_prefix(' ')
                        .unwrap_or(&line)
                        .trim_end()
                        .to_string(),
                );
            }
        }
    }
    lines.join("\n").trim().to_string()
}

/// Parse a method's signature. `errors` collects every problem found, each
/// with its span, so all are reported at once.
pub(crate) fn parse_method(
    sig: &Signature,
    attrs: &[Attribute],
    kind: Kind,
    errors: &mut Vec<Error>,
) -> Option<Method> {
    let before = errors.len();
    match sig.inputs.first() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() => {}
        Some(FnArg::Receiver(r)) => errors.push(Error::new_spanned(
            r,
            "exposed methods take `&self`: an object is shared by concurrent calls \
             (use interior mutability, e.g. a Mutex, for state)",
        )),
        _ => errors.push(Error::new_spanned(
            &sig.ident,
            "exposed methods take `&self` as their first parameter",
        )),
    }
    if !sig.generics.params.is_empty() {
        errors.push(Error::new_spanned(
            &sig.generics,
            "exposed methods cannot be generic: the peer cannot choose a type",
        ));
    }
    let mut params = Vec::new();
    for input in sig.inputs.iter().skip(1) {
        let FnArg::Typed(pt) = input else { continue };
        let ident = match &*pt.pat {
            Pat::Ident(p) => p.ident.clone(),
            other => {
                errors.push(Error::new_spanned(
                    other,
                    "exposed method parameters must be plain names (they become the signature)",
                ));
                continue;
            }
        };
        let rest = pt.attrs.iter().any(|a| a.path().is_ident("rest"));
        let ty = (*pt.ty).clone();
        let take = if rest {
            Take::Rest
        } else if is_context(&ty) {
            Take::Context
        } else {
            match &ty {
                Type::Reference(r) if r.mutability.is_none() && is_path(&r.elem, "str") => {
                    Take::Str
                }
                Type::Reference(r) if r.mutability.is_none() && is_u8_slice(&r.elem) => Take::Bytes,
                _ if is_function(&ty) => {
                    errors.push(Error::new_spanned(
                        &ty,
                        "a function passed by the peer arrives as a callback: take \
                         `tether::Callback<Arg, Ret>` (call it with `f.call(arg).await`), \
                         or `NetRef` for any callable",
                    ));
                    continue;
                }
                Type::Reference(_)
                | Type::ImplTrait(_)
                | Type::BareFn(_)
                | Type::TraitObject(_)
                | Type::Ptr(_) => {
                    errors.push(Error::new_spanned(
                        &ty,
                        "unsupported argument type: arguments arrive by value and convert \
                         through serde (use an owned type, `&str`, `&[u8]`, or `NetRef` for objects)",
                    ));
                    continue;
                }
                _ => Take::One,
            }
        };
        if rest && !matches!(&ty, Type::Path(p) if last_ident(&p.path).as_deref() == Some("Vec")) {
            errors.push(Error::new_spanned(
                &ty,
                "a `#[rest]` parameter must be a `Vec<T>`",
            ));
        }
        let optional = option_inner(&ty).is_some();
        let shown = match take {
            Take::Rest => vec_inner(&ty)
                .map(|t| sig::shown(&t))
                .unwrap_or_else(|| "any".into()),
            _ => sig::shown(&ty),
        };
        params.push(Param {
            ident,
            ty,
            take,
            optional,
            shown,
        });
    }
    if let Some(pos) = params.iter().position(|p| p.take == Take::Rest) {
        if params[pos + 1..].iter().any(|p| p.take != Take::Context) {
            errors.push(Error::new_spanned(
                &params[pos].ident,
                "a `#[rest]` parameter must be the last argument",
            ));
        }
    }
    let ret = match &sig.output {
        ReturnType::Default => Ret::Unit,
        ReturnType::Type(_, ty) => match result_ok(ty) {
            Some(ok) => Ret::Result(ok),
            None if is_unit(ty) => Ret::Unit,
            None => Ret::Plain((**ty).clone()),
        },
    };
    match &kind {
        Kind::Getter(_) if params.iter().any(|p| p.take != Take::Context) => {
            errors.push(Error::new_spanned(
                &sig.inputs,
                "a `#[getter]` takes no arguments besides `&self`",
            ))
        }
        Kind::Getter(_) if matches!(ret, Ret::Unit) => errors.push(Error::new_spanned(
            &sig.ident,
            "a `#[getter]` must return the attribute's value",
        )),
        Kind::Setter(_) if params.iter().filter(|p| p.take != Take::Context).count() != 1 => errors
            .push(Error::new_spanned(
                &sig.inputs,
                "a `#[setter]` takes exactly one argument besides `&self`: the new value",
            )),
        Kind::Op(Special::Exit)
            if params.iter().filter(|p| p.take != Take::Context).count() != 1 =>
        {
            errors.push(Error::new_spanned(
                &sig.inputs,
                "`#[op(exit)]` takes one argument besides `&self`: the error the block \
                 raised, `Option<tether::Error>`",
            ))
        }
        Kind::Op(op)
            if !matches!(op, Special::Call | Special::Exit)
                && params.iter().any(|p| p.take != Take::Context) =>
        {
            errors.push(Error::new_spanned(
                &sig.inputs,
                "`#[op(repr)]`, `#[op(str)]`, `#[op(next)]`, `#[op(close)]` and `#[op(enter)]` take no arguments besides `&self`",
            ))
        }
        Kind::Op(Special::Repr | Special::Str) if sig.asyncness.is_some() || !returns_string(&ret) => {
            errors.push(Error::new_spanned(
                &sig.ident,
                "`#[op(repr)]` and `#[op(str)]` are plain (not async) methods returning `String`",
            ))
        }
        Kind::Op(Special::Next) if !returns_option(&ret) => errors.push(Error::new_spanned(
            &sig.ident,
            "`#[op(next)]` returns `Option<T>` (or a `Result` of one): `None` ends the iteration",
        )),
        _ => {}
    }
    if errors.len() > before {
        return None;
    }
    Some(Method {
        ident: sig.ident.clone(),
        kind,
        is_async: sig.asyncness.is_some(),
        params,
        ret,
        doc: doc_of(attrs),
    })
}

fn returns_string(ret: &Ret) -> bool {
    matches!(ret, Ret::Plain(Type::Path(p)) if p.path.is_ident("String"))
}

fn returns_option(ret: &Ret) -> bool {
    matches!(ret, Ret::Plain(t) | Ret::Result(t) if option_inner(t).is_some())
}

/// The name a peer uses for a Rust identifier: `r#type` is `type`.
pub(crate) fn name_of(ident: &Ident) -> String {
    syn::ext::IdentExt::unraw(ident).to_string()
}

pub(crate) fn last_ident(path: &syn::Path) -> Option<String> {
    path.segments.last().map(|s| s.ident.to_string())
}

fn is_path(ty: &Type, name: &str) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.is_ident(name))
}

fn is_u8_slice(ty: &Type) -> bool {
    matches!(ty, Type::Slice(s) if is_path(&s.elem, "u8"))
}

fn is_context(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) => {
            matches!(&*r.elem, Type::Path(p) if last_ident(&p.path).as_deref() == Some("CallContext"))
        }
        _ => false,
    }
}

pub(crate) fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}

/// The first generic argument of a path type whose last segment is `name`.
pub(crate) fn generic_of(ty: &Type, name: &str) -> Option<Type> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    if seg.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    })
}

pub(crate) fn option_inner(ty: &Type) -> Option<Type> {
    generic_of(ty, "Option")
}

pub(crate) fn vec_inner(ty: &Type) -> Option<Type> {
    generic_of(ty, "Vec")
}

/// `T` of `Result<T, _>` (any path ending in `Result`, so `tether::Result<T>`
/// and `std::io::Result<T>` both count).
pub(crate) fn result_ok(ty: &Type) -> Option<Type> {
    generic_of(ty, "Result")
}

/// `Vec<u8>`, which travels as bytes rather than a list of ints.
pub(crate) fn is_byte_vec(ty: &Type) -> bool {
    vec_inner(ty).is_some_and(|t| is_path(&t, "u8"))
}
