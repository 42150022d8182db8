//! How Rust types are shown in signatures, in the vocabulary a peer in
//! any language understands (`int`, `str`, `list[int]`, `object`).

use quote::ToTokens;
use syn::{GenericArgument, PathArguments, Type};

use crate::model::{is_byte_vec, is_unit, last_ident};

/// The signature name of `ty`.
pub(crate) fn shown(ty: &Type) -> String {
    match ty {
        Type::Reference(r) => shown(&r.elem),
        Type::Paren(p) => shown(&p.elem),
        Type::Group(g) => shown(&g.elem),
        Type::Slice(s) if matches!(&*s.elem, Type::Path(p) if p.path.is_ident("u8")) => {
            "bytes".into()
        }
        Type::Slice(s) => format!("list[{}]", shown(&s.elem)),
        Type::Array(a) => format!("list[{}]", shown(&a.elem)),
        Type::Tuple(t) if is_unit(ty) => {
            let _ = t;
            "None".into()
        }
        Type::Tuple(t) => format!(
            "tuple[{}]",
            t.elems.iter().map(shown).collect::<Vec<_>>().join(", ")
        ),
        Type::Path(p) if is_byte_vec(ty) => {
            let _ = p;
            "bytes".into()
        }
        Type::Path(p) => {
            let name = last_ident(&p.path).unwrap_or_default();
            let args = generic_args(p.path.segments.last().map(|s| &s.arguments));
            match name.as_str() {
                "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64"
                | "u128" | "usize" => "int".into(),
                "f32" | "f64" => "float".into(),
                "bool" => "bool".into(),
                "String" | "str" | "char" | "Cow" => "str".into(),
                "ByteBuf" | "Bytes" => "bytes".into(),
                "NetRef" => "object".into(),
                "DateTime" => "datetime".into(),
                "Callback" => match args.first() {
                    Some(arg) => format!("callable[{}]", shown(arg)),
                    None => "callable".into(),
                },
                "Value" => "any".into(),
                "Args" => "*args".into(),
                "Option" => match args.first() {
                    Some(inner) => format!("{} | None", shown(inner)),
                    None => "any | None".into(),
                },
                "Vec" | "VecDeque" | "HashSet" | "BTreeSet" | "ListOf" => match args.first() {
                    Some(inner) => format!("list[{}]", shown(inner)),
                    None => "list".into(),
                },
                "HashMap" | "BTreeMap" => match (args.first(), args.get(1)) {
                    (Some(k), Some(v)) => format!("map[{}, {}]", shown(k), shown(v)),
                    _ => "map".into(),
                },
                "Result" | "Box" | "Arc" | "Rc" => match args.first() {
                    Some(inner) => shown(inner),
                    None => name,
                },
                _ => name,
            }
        }
        other => other.to_token_stream().to_string(),
    }
}

fn generic_args(args: Option<&PathArguments>) -> Vec<Type> {
    match args {
        Some(PathArguments::AngleBracketed(a)) => a
            .args
            .iter()
            .filter_map(|g| match g {
                GenericArgument::Type(t) => Some(t.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}
