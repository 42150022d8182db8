//! `tether call`: one call (or attribute read, or member listing) and its
//! result as JSON on stdout.

use serde_json::json;
use tether::{Args, ErrorKind, MemberKind, NetRef, Value};

use crate::client::RpycHint;
use crate::json::{parse_literal, parse_named, to_json};
use crate::{CallArgs, Failure, Outcome};

pub async fn run(args: CallArgs) -> Outcome {
    let path: Vec<&str> = match args.path.as_deref() {
        Some(path) => path.split('.').collect(),
        None => Vec::new(),
    };
    if path.iter().any(|part| part.is_empty()) {
        return Err(Failure::usage(format!(
            "bad PATH {:?}: expected names separated by dots, as in notes.add",
            args.path.unwrap_or_default()
        )));
    }
    let mut call_args = Args::new();
    for text in &args.args {
        call_args
            .positional
            .push(parse_literal(text).map_err(Failure::usage)?);
    }
    for text in &args.named {
        call_args
            .named
            .push(parse_named(text).map_err(Failure::usage)?);
    }

    let conn = args.client.connect(&args.addr, RpycHint::Shell).await?;
    let root = conn.root().await?;
    let outcome = if args.dir {
        let object = resolve(root, &path).await?;
        list_members(&object, args.json, args.pretty).await
    } else {
        let (last, parents) = path.split_last().expect("clap requires PATH without --dir");
        let owner = resolve(root, parents).await?;
        let result = if args.get {
            owner.getattr(last).await
        } else {
            owner.call_method(last, call_args).await
        };
        match result {
            Ok(value) => {
                print_json(&to_json(value).await, args.pretty);
                Ok(())
            }
            Err(err)
                if err.kind() == ErrorKind::Unsupported && is_attribute(&owner, last).await =>
            {
                Err(Failure::failed(format!(
                    "{err} (--get reads it: tether call {} --get {})",
                    args.addr,
                    path.join(".")
                )))
            }
            Err(err) => Err(err.into()),
        }
    };
    conn.close().await;
    outcome
}

/// Whether `object` declares `name` as an attribute.
async fn is_attribute(object: &NetRef, name: &str) -> bool {
    let members = object.inspect().await.unwrap_or_default();
    members
        .iter()
        .any(|m| m.name == name && matches!(m.kind, MemberKind::Attribute { .. }))
}

/// Follow `path` from `object` with one getattr per name.
async fn resolve(mut object: NetRef, path: &[&str]) -> Result<NetRef, Failure> {
    for (i, name) in path.iter().enumerate() {
        object = match object.getattr(name).await? {
            Value::Ref(next) => next,
            other => {
                return Err(Failure::failed(format!(
                    "TypeError: {} is {}, not an object",
                    path[..=i].join("."),
                    other.type_name()
                )))
            }
        };
    }
    Ok(object)
}

async fn list_members(object: &NetRef, as_json: bool, pretty: bool) -> Outcome {
    let members = object.inspect().await?;
    if as_json {
        let list: Vec<serde_json::Value> = members
            .iter()
            .map(|m| {
                let (kind, writable) = match m.kind {
                    MemberKind::Method => ("method", false),
                    MemberKind::Attribute { writable } => ("attribute", writable),
                };
                json!({
                    "name": m.name,
                    "kind": kind,
                    "signature": m.signature,
                    "doc": m.doc,
                    "writable": writable,
                })
            })
            .collect();
        print_json(&serde_json::Value::Array(list), pretty);
        return Ok(());
    }
    println!("{}", object.repr().await?);
    for m in &members {
        match m.kind {
            MemberKind::Method => println!("  {}{}", m.name, m.signature),
            MemberKind::Attribute { writable } => {
                let rw = if writable { ", writable" } else { "" };
                println!("  {}: {} (attribute{rw})", m.name, m.signature);
            }
        }
        for line in m.doc.lines().filter(|l| !l.trim().is_empty()) {
            println!("      {}", line.trim());
        }
    }
    Ok(())
}

fn print_json(json: &serde_json::Value, pretty: bool) {
    let text = if pretty {
        serde_json::to_string_pretty(json)
    } else {
        serde_json::to_string(json)
    };
    println!("{}", text.expect("serde_json::Value always serializes"));
}
