//! Running statements: variables, remote calls, builtins, printing, errors.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use tether::{Args, Member, MemberKind, Value};

use super::parse::{self, Arg, Expr, ParseError, Stmt};
use super::peer::Peer;
use crate::lang::help::member_help;

/// Shell functions, callable as `help(x)`.
pub const FUNCTIONS: &[&str] = &["dir", "help", "list", "repr", "str"];

/// Shell commands, typed alone (`vars`) or called (`vars()`).
pub const COMMANDS: &[&str] = &["exit", "help", "quit", "trace", "vars"];

/// `list(x)` stops after this many items unless given a limit.
const LIST_LIMIT: usize = 10_000;

/// How many objects' member lists completion remembers.
const CACHE_SIZE: usize = 32;

/// What the shell says about a line.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Nothing to print (an assignment, a blank line, a `None` result).
    Nothing,
    /// Print this.
    Print(String),
    /// Print this error (`Type: message`); the session goes on.
    Error(String),
    /// Leave the shell.
    Exit,
}

/// Why a line failed.
#[derive(Debug, Clone)]
pub enum ShellError {
    /// The line does not parse.
    Syntax { line: String, error: ParseError },
    /// A mistake caught in the shell, named like Python's exceptions
    /// (`NameError`, `TypeError`, `IndexError`, `KeyError`).
    Local {
        type_name: &'static str,
        message: String,
    },
    /// A tether operation failed, here or on the peer.
    Tether(tether::Error),
}

impl ShellError {
    fn local(type_name: &'static str, message: impl Into<String>) -> ShellError {
        ShellError::Local {
            type_name,
            message: message.into(),
        }
    }

    fn type_error(message: impl Into<String>) -> ShellError {
        ShellError::local("TypeError", message)
    }

    /// The full story: for a remote error, every hop of its trace.
    pub fn trace(&self) -> String {
        match self {
            ShellError::Tether(e) => match e.remote() {
                Some(remote) => remote.render_trace(),
                None => format!("{e}\n(raised here in the shell, with no remote trace)"),
            },
            other => format!("{other}\n(raised here in the shell, with no remote trace)"),
        }
    }
}

impl fmt::Display for ShellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShellError::Syntax { line, error } => {
                let column = line[..error.pos.min(line.len())].chars().count();
                writeln!(f, "    {line}")?;
                writeln!(f, "    {}^", " ".repeat(column))?;
                write!(f, "SyntaxError: {}", error.message)
            }
            ShellError::Local { type_name, message } => write!(f, "{type_name}: {message}"),
            ShellError::Tether(e) => write!(f, "{e}"),
        }
    }
}

impl From<tether::Error> for ShellError {
    fn from(e: tether::Error) -> ShellError {
        ShellError::Tether(e)
    }
}

type Res<T> = Result<T, ShellError>;

/// A value and, for a reference read from an attribute (a bound method,
/// say), the object and member it came from, so `help` can describe it.
#[derive(Clone, Debug)]
pub struct Item {
    pub value: Value,
    origin: Option<(tether::NetRef, String)>,
}

impl Item {
    fn plain(value: Value) -> Item {
        Item {
            value,
            origin: None,
        }
    }
}

/// What a call of a builtin produced.
enum Output {
    Value(Item),
    Text(String),
    Exit,
}

/// One completion candidate: what to show and what to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub display: String,
    pub replacement: String,
}

/// The state of a session: the peer, variables, the last error and the
/// member lists completion has seen.
pub struct Session {
    peer: Peer,
    /// What the banner calls the peer.
    description: String,
    vars: BTreeMap<String, Item>,
    last_error: Option<ShellError>,
    members: RefCell<Vec<(tether::NetRef, Rc<[Member]>)>>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.peer)
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Session {
    /// A session on `peer`, with `root` bound to the peer's root (and,
    /// on a classic RPyC server, `modules` to its module namespace).
    pub fn new(peer: Peer) -> tether::Result<Session> {
        let root = peer.root()?;
        let description = peer.describe(&root);
        let mut vars: BTreeMap<String, Item> = peer
            .extra_vars(&root)
            .into_iter()
            .map(|(name, value)| (name, Item::plain(value)))
            .collect();
        vars.insert("root".to_string(), Item::plain(root.into()));
        Ok(Session {
            peer,
            description,
            vars,
            last_error: None,
            members: RefCell::new(Vec::new()),
        })
    }

    /// What the peer is: a tether peer's service name (from the
    /// handshake), or which Python RPyC service.
    pub fn describe_peer(&self) -> &str {
        &self.description
    }

    /// True once the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.peer.is_closed()
    }

    /// Run one line.
    pub fn execute(&mut self, line: &str) -> Step {
        match self.statement(line) {
            Ok(Output::Value(item)) => {
                if item.value.is_none() {
                    return Step::Nothing;
                }
                let text = self.render(&item.value);
                self.vars.insert("_".to_string(), item);
                Step::Print(text)
            }
            Ok(Output::Text(text)) if text.is_empty() => Step::Nothing,
            Ok(Output::Text(text)) => Step::Print(text),
            Ok(Output::Exit) => Step::Exit,
            Err(e) => {
                let shown = e.to_string();
                self.last_error = Some(e);
                Step::Error(shown)
            }
        }
    }

    fn statement(&mut self, line: &str) -> Res<Output> {
        let stmt = parse::parse(line).map_err(|error| ShellError::Syntax {
            line: line.trim_end().to_string(),
            error,
        })?;
        match stmt {
            Stmt::Empty => Ok(Output::Text(String::new())),
            // A command typed alone, unless a variable has its name.
            Stmt::Expr(Expr::Name(n))
                if COMMANDS.contains(&n.as_str()) && !self.vars.contains_key(&n) =>
            {
                self.builtin(&n, &[])
            }
            Stmt::Expr(e) => self.output(&e),
            Stmt::Assign(name, e) => match self.output(&e)? {
                Output::Value(item) => {
                    self.vars.insert(name, item);
                    Ok(Output::Text(String::new()))
                }
                Output::Exit => Ok(Output::Exit),
                Output::Text(_) => Err(ShellError::type_error(
                    "that prints text and has no value to assign",
                )),
            },
            Stmt::SetAttr(object, name, e) => {
                let target = self.eval_ref(&object, "attribute assignment")?;
                let value = self.eval(&e)?.value;
                self.peer.wrap(target).setattr(&name, value)?;
                Ok(Output::Text(String::new()))
            }
        }
    }

    /// An expression, where builtins may print text or end the session.
    fn output(&self, e: &Expr) -> Res<Output> {
        if let Expr::Call(callee, args) = e {
            if let Some(name) = self.builtin_name(callee) {
                return self.builtin(&name, args);
            }
        }
        self.eval(e).map(Output::Value)
    }

    /// The builtin a callee names, unless a variable shadows it.
    fn builtin_name(&self, callee: &Expr) -> Option<String> {
        match callee {
            Expr::Name(n)
                if (FUNCTIONS.contains(&n.as_str()) || COMMANDS.contains(&n.as_str()))
                    && !self.vars.contains_key(n) =>
            {
                Some(n.clone())
            }
            _ => None,
        }
    }

    fn eval(&self, e: &Expr) -> Res<Item> {
        match e {
            Expr::Lit(v) => Ok(Item::plain(v.clone())),
            Expr::Name(n) => match self.vars.get(n) {
                Some(item) => Ok(item.clone()),
                None if FUNCTIONS.contains(&n.as_str()) || COMMANDS.contains(&n.as_str()) => Err(
                    ShellError::type_error(format!("'{n}' is a shell command: use it as {n}(...)")),
                ),
                None => Err(ShellError::local(
                    "NameError",
                    format!("name '{n}' is not defined (vars lists the variables)"),
                )),
            },
            Expr::Attr(object, name) => {
                let target = self.eval_ref(object, &format!("attribute '{name}'"))?;
                let value = self.peer.wrap(target.clone()).getattr(name)?;
                let origin = matches!(value, Value::Ref(_)).then(|| (target, name.clone()));
                Ok(Item { value, origin })
            }
            Expr::Call(callee, args) => {
                if let Some(name) = self.builtin_name(callee) {
                    return match self.builtin(&name, args)? {
                        Output::Value(item) => Ok(item),
                        _ => Err(ShellError::type_error(format!(
                            "{name}() prints text; use it on its own"
                        ))),
                    };
                }
                let args = self.args(args)?;
                let value = match &**callee {
                    // One round trip: call the method by name.
                    Expr::Attr(object, name) => {
                        let target = self.eval_ref(object, &format!("attribute '{name}'"))?;
                        self.peer.wrap(target).call_method(name, args)?
                    }
                    other => {
                        let f = self.eval(other)?.value;
                        match f {
                            Value::Ref(r) => self.peer.wrap(r).call(args)?,
                            v => {
                                return Err(ShellError::type_error(format!(
                                    "'{}' value is not callable",
                                    v.type_name()
                                )))
                            }
                        }
                    }
                };
                Ok(Item::plain(value))
            }
            Expr::Index(object, index) => {
                let object = self.eval(object)?.value;
                let index = self.eval(index)?.value;
                index_value(&object, &index).map(Item::plain)
            }
            Expr::List(items) => Ok(Item::plain(Value::List(
                items
                    .iter()
                    .map(|e| self.eval(e).map(|i| i.value))
                    .collect::<Res<_>>()?,
            ))),
            Expr::Map(pairs) => Ok(Item::plain(Value::Map(
                pairs
                    .iter()
                    .map(|(k, v)| Ok((self.eval(k)?.value, self.eval(v)?.value)))
                    .collect::<Res<_>>()?,
            ))),
            Expr::Neg(inner) => match self.eval(inner)?.value {
                Value::Int(n) => n
                    .checked_neg()
                    .map(|n| Item::plain(Value::Int(n)))
                    .ok_or_else(|| ShellError::local("OverflowError", "integer overflow")),
                Value::Float(x) => Ok(Item::plain(Value::Float(-x))),
                v => Err(ShellError::type_error(format!(
                    "bad operand for unary -: '{}'",
                    v.type_name()
                ))),
            },
        }
    }

    /// Evaluate to a reference, or say why `what` needs one.
    fn eval_ref(&self, e: &Expr, what: &str) -> Res<tether::NetRef> {
        match self.eval(e)?.value {
            Value::Ref(r) => Ok(r),
            v => Err(ShellError::type_error(format!(
                "{what}: '{}' value {} is data, not a remote object",
                v.type_name(),
                self.render(&v)
            ))),
        }
    }

    fn args(&self, args: &[Arg]) -> Res<Args> {
        let mut out = Args::new();
        for arg in args {
            match arg {
                Arg::Positional(e) => out.positional.push(self.eval(e)?.value),
                Arg::Named(n, e) => out.named.push((n.clone(), self.eval(e)?.value)),
            }
        }
        Ok(out)
    }

    fn builtin(&self, name: &str, args: &[Arg]) -> Res<Output> {
        let positional = || -> Res<Vec<&Expr>> {
            args.iter()
                .map(|a| match a {
                    Arg::Positional(e) => Ok(e),
                    Arg::Named(n, _) => Err(ShellError::type_error(format!(
                        "{name}() takes no named argument '{n}'"
                    ))),
                })
                .collect()
        };
        let args = positional()?;
        let arity = |min: usize, max: usize| -> Res<()> {
            if args.len() < min || args.len() > max {
                let wanted = match (min, max) {
                    (0, 0) => "no arguments".to_string(),
                    (a, b) if a == b => format!("{a} argument{}", if a == 1 { "" } else { "s" }),
                    (a, b) => format!("{a} to {b} arguments"),
                };
                return Err(ShellError::type_error(format!(
                    "{name}() takes {wanted} ({} given)",
                    args.len()
                )));
            }
            Ok(())
        };
        match name {
            "exit" | "quit" => {
                arity(0, 0)?;
                Ok(Output::Exit)
            }
            "vars" => {
                arity(0, 0)?;
                Ok(Output::Text(self.vars_text()))
            }
            "trace" => {
                arity(0, 0)?;
                Ok(Output::Text(match &self.last_error {
                    Some(e) => e.trace(),
                    None => "No error yet.".to_string(),
                }))
            }
            "help" => {
                arity(0, 1)?;
                match args.first() {
                    None => Ok(Output::Text(usage())),
                    Some(e) => self.help(e).map(Output::Text),
                }
            }
            "dir" => {
                arity(1, 1)?;
                let names: Vec<Value> = match self.eval(args[0])?.value {
                    Value::Ref(r) => self
                        .peer
                        .wrap(r)
                        .dir()?
                        .into_iter()
                        .map(Value::Str)
                        .collect(),
                    Value::Map(pairs) => pairs.into_iter().map(|(k, _)| k).collect(),
                    v => {
                        return Err(ShellError::type_error(format!(
                            "dir() lists the members of a remote object, not of a '{}' value",
                            v.type_name()
                        )))
                    }
                };
                Ok(Output::Value(Item::plain(Value::List(names))))
            }
            "list" => {
                arity(1, 2)?;
                let limit = match args.get(1) {
                    None => LIST_LIMIT,
                    Some(e) => match self.eval(e)?.value {
                        Value::Int(n) if n >= 0 => n as usize,
                        v => {
                            return Err(ShellError::type_error(format!(
                                "list()'s limit must be a count, not {}",
                                self.render(&v)
                            )))
                        }
                    },
                };
                let items = self.list(self.eval(args[0])?.value, limit)?;
                Ok(Output::Value(Item::plain(Value::List(items))))
            }
            "repr" | "str" => {
                arity(1, 1)?;
                let text = match self.eval(args[0])?.value {
                    Value::Ref(r) if name == "repr" => self.peer.wrap(r).repr()?,
                    Value::Ref(r) => self.peer.wrap(r).str()?,
                    Value::Str(s) if name == "str" => s,
                    v => self.render(&v),
                };
                Ok(Output::Value(Item::plain(Value::Str(text))))
            }
            _ => unreachable!("not a builtin: {name}"),
        }
    }

    /// The items of a remote iterable (fetched in batches) or of a value.
    fn list(&self, value: Value, limit: usize) -> Res<Vec<Value>> {
        match value {
            Value::Ref(r) => {
                let mut items = Vec::new();
                for item in self.peer.wrap(r).iter() {
                    if items.len() == limit {
                        eprintln!("(stopped after {limit} items; list(x, n) takes up to n items)");
                        break;
                    }
                    items.push(item?);
                }
                Ok(items)
            }
            Value::List(items) => Ok(items.into_iter().take(limit).collect()),
            Value::Map(pairs) => Ok(pairs.into_iter().map(|(k, _)| k).take(limit).collect()),
            Value::Str(s) => Ok(s
                .chars()
                .take(limit)
                .map(|c| Value::Str(c.to_string()))
                .collect()),
            Value::Bytes(b) => Ok(b
                .into_iter()
                .take(limit)
                .map(|b| Value::Int(b.into()))
                .collect()),
            v => Err(ShellError::type_error(format!(
                "'{}' value is not iterable",
                v.type_name()
            ))),
        }
    }

    fn vars_text(&self) -> String {
        self.vars
            .iter()
            .filter(|(name, _)| name.as_str() != "_")
            .map(|(name, item)| format!("{name} = {}", self.render(&item.value)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `help(e)`: a member's signature and doc, or all of an object's.
    fn help(&self, e: &Expr) -> Res<String> {
        // `help(obj.member)`: describe the member without reading it.
        if let Expr::Attr(object, name) = e {
            if let Value::Ref(owner) = self.eval(object)?.value {
                if let Some(m) = self.members(&owner)?.iter().find(|m| m.name == *name) {
                    // A Python attribute may be a function with a
                    // docstring: described below, from its value.
                    if m.kind == MemberKind::Method || !self.peer.is_python() {
                        return Ok(member_help(m));
                    }
                }
            }
        }
        let item = self.eval(e)?;
        let r = match &item.value {
            Value::Ref(r) => r.clone(),
            v => {
                return Ok(format!(
                    "{} is a plain {} value: data copied by value, with no remote members.",
                    self.render(v),
                    v.type_name()
                ))
            }
        };
        if let Some((owner, name)) = &item.origin {
            if let Some(m) = self.members(owner)?.iter().find(|m| m.name == *name) {
                if m.kind == MemberKind::Method {
                    return Ok(member_help(m));
                }
            }
        }
        let repr = self.peer.wrap(r.clone()).repr()?;
        let members = self.members(&r)?;
        let doc = self.peer.doc(&self.peer.wrap(r.clone()));
        if members.is_empty() && doc.is_none() {
            return Ok(format!("{repr} exposes no members."));
        }
        let mut out = format!("Help on {repr}:\n");
        for line in doc.iter().flat_map(|doc| doc.lines()) {
            out.push_str(&format!("    {}\n", line.trim_end()).replace("    \n", "\n"));
        }
        for (title, methods) in [("Methods", true), ("Attributes", false)] {
            let group: Vec<&Member> = members
                .iter()
                .filter(|m| (m.kind == MemberKind::Method) == methods)
                .collect();
            if group.is_empty() {
                continue;
            }
            out.push_str(&format!("\n{title}:\n"));
            for m in group {
                for line in member_help(m).lines() {
                    if !line.is_empty() {
                        out.push_str("  ");
                        out.push_str(line);
                    }
                    out.push('\n');
                }
            }
        }
        Ok(out.trim_end().to_string())
    }

    /// The members of `r`, remembered per object.
    fn members(&self, r: &tether::NetRef) -> Res<Rc<[Member]>> {
        if let Some((_, m)) = self.members.borrow().iter().find(|(o, _)| o == r) {
            return Ok(m.clone());
        }
        let members: Rc<[Member]> = self.peer.members(&self.peer.wrap(r.clone()))?.into();
        let mut cache = self.members.borrow_mut();
        if cache.len() == CACHE_SIZE {
            cache.remove(0);
        }
        cache.push((r.clone(), members.clone()));
        Ok(members)
    }

    /// Python-like text of a value; references show their remote `repr`.
    pub fn render(&self, v: &Value) -> String {
        match v {
            Value::Ref(r) => self
                .peer
                .wrap(r.clone())
                .repr()
                .unwrap_or_else(|_| format!("{r:?}")),
            Value::List(items) if items.iter().any(has_ref) => format!(
                "[{}]",
                items
                    .iter()
                    .map(|i| self.render(i))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Value::Map(pairs) if pairs.iter().any(|(k, v)| has_ref(k) || has_ref(v)) => format!(
                "{{{}}}",
                pairs
                    .iter()
                    .map(|(k, v)| format!("{}: {}", self.render(k), self.render(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            v => v.to_string(),
        }
    }

    /// Completions for the text before the cursor: remote member names
    /// after `expr.`, otherwise variables, builtins and keywords. Only
    /// chains of names are followed (no calls), so completing never runs
    /// a remote method.
    pub fn complete(&self, line: &str, pos: usize) -> (usize, Vec<Candidate>) {
        let before = &line[..pos];
        let start = before
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            .last()
            .map_or(pos, |(i, _)| i);
        let word = &before[start..];
        // Inside a string: nothing to complete.
        if before[..start]
            .chars()
            .filter(|&c| c == '\'' || c == '"')
            .count()
            % 2
            == 1
        {
            return (pos, Vec::new());
        }
        match word.rfind('.') {
            Some(dot) => {
                let partial = &word[dot + 1..];
                let candidates = self
                    .chain_members(&word[..dot])
                    .map(|members| {
                        members
                            .iter()
                            .filter(|m| m.name.starts_with(partial))
                            .map(|m| Candidate {
                                display: m.name.to_string(),
                                replacement: match m.kind {
                                    MemberKind::Method => format!("{}(", m.name),
                                    MemberKind::Attribute { .. } => m.name.to_string(),
                                },
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (start + dot + 1, candidates)
            }
            None => {
                if word.starts_with(|c: char| c.is_ascii_digit()) {
                    return (pos, Vec::new());
                }
                let mut names: Vec<(String, String)> = self
                    .vars
                    .keys()
                    .filter(|n| n.as_str() != "_")
                    .map(|n| (n.clone(), n.clone()))
                    .collect();
                for f in FUNCTIONS {
                    names.push((f.to_string(), format!("{f}(")));
                }
                for c in COMMANDS.iter().filter(|c| !FUNCTIONS.contains(c)) {
                    names.push((c.to_string(), c.to_string()));
                }
                for k in ["None", "True", "False"] {
                    names.push((k.to_string(), k.to_string()));
                }
                names.sort();
                names.dedup_by(|a, b| a.0 == b.0);
                let candidates = names
                    .into_iter()
                    .filter(|(n, _)| n.starts_with(word))
                    .map(|(display, replacement)| Candidate {
                        display,
                        replacement,
                    })
                    .collect();
                (start, candidates)
            }
        }
    }

    /// The members of the object a chain like `root.child` names, reading
    /// only attributes (never calling).
    fn chain_members(&self, chain: &str) -> Option<Rc<[Member]>> {
        let mut parts = chain.split('.');
        let first = parts.next()?;
        let mut current = match &self.vars.get(first)?.value {
            Value::Ref(r) => r.clone(),
            _ => return None,
        };
        for part in parts {
            let members = self.members(&current).ok()?;
            match members.iter().find(|m| m.name == part) {
                Some(m) if m.kind == MemberKind::Method => return None,
                Some(_) => {}
                None if self.peer.is_python() => {}
                None => return None,
            }
            current = match self.peer.wrap(current).getattr(part).ok()? {
                Value::Ref(r) => r,
                _ => return None,
            };
        }
        self.members(&current).ok()
    }
}

fn has_ref(v: &Value) -> bool {
    match v {
        Value::Ref(_) => true,
        Value::List(items) => items.iter().any(has_ref),
        Value::Map(pairs) => pairs.iter().any(|(k, v)| has_ref(k) || has_ref(v)),
        _ => false,
    }
}

fn index_value(object: &Value, index: &Value) -> Res<Value> {
    let position = |len: usize| -> Res<usize> {
        let Value::Int(i) = index else {
            return Err(ShellError::type_error(format!(
                "indices must be integers, not '{}'",
                index.type_name()
            )));
        };
        let at = if *i < 0 { len as i64 + i } else { *i };
        if at < 0 || at >= len as i64 {
            return Err(ShellError::local(
                "IndexError",
                format!("index {i} out of range for length {len}"),
            ));
        }
        Ok(at as usize)
    };
    match object {
        Value::List(items) => Ok(items[position(items.len())?].clone()),
        Value::Bytes(b) => Ok(Value::Int(b[position(b.len())?].into())),
        Value::Str(s) => {
            let chars: Vec<char> = s.chars().collect();
            Ok(Value::Str(chars[position(chars.len())?].to_string()))
        }
        Value::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| k == index)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| ShellError::local("KeyError", index.to_string())),
        Value::Ref(_) => Err(ShellError::type_error(
            "remote objects cannot be indexed; call one of their methods",
        )),
        v => Err(ShellError::type_error(format!(
            "'{}' value cannot be indexed",
            v.type_name()
        ))),
    }
}

/// What `help` alone prints.
pub fn usage() -> String {
    "\
Type an expression to evaluate it on the peer and print the result:
  root                      the peer's root object
  root.add(1, 2)            call a method (literal arguments: numbers, 'strings',
                            b'bytes', [lists], {'maps': 1}, None, True, False)
  root.greet('ann', greeting='hi')   named arguments
  root.name                 read an attribute; root.x = 5 assigns one (if allowed)
  x = root.counter()        keep a result (a remote object or a value) in x
  xs[0], m['key']           index lists and maps (local values)
Shell functions and commands:
  help(x)                   members of x with signatures and docs; help(x.name) for one
  dir(x)                    member names of x
  list(x)                   iterate x (in batches) and show its items; list(x, n) for n
  repr(x), str(x)           the owner's text for x
  vars                      the variables of this session (_ is the last result)
  trace                     the full remote trace of the last error
  exit, quit, Ctrl-D        leave
Tab completes variable names, and member names after a dot."
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session on the demo service, over a real loopback connection.
    fn session() -> (Session, tokio::runtime::Runtime) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let demo = crate::demo::serve_on_loopback(crate::demo::Demo::new());
        let addr = rt.block_on(demo).unwrap();
        let conn = tether::blocking::connect(addr).unwrap();
        (Session::new(Peer::Tether(conn)).unwrap(), rt)
    }

    fn print(s: &mut Session, line: &str) -> String {
        match s.execute(line) {
            Step::Print(text) => text,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn error(s: &mut Session, line: &str) -> String {
        match s.execute(line) {
            Step::Error(text) => text,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn names(candidates: (usize, Vec<Candidate>)) -> (usize, Vec<String>) {
        (
            candidates.0,
            candidates.1.into_iter().map(|c| c.replacement).collect(),
        )
    }

    #[test]
    fn calls_attributes_and_values() {
        let (mut s, _rt) = session();
        assert_eq!(print(&mut s, "root.add(1, 2)"), "3");
        assert_eq!(print(&mut s, "root.label"), "'demo'");
        assert_eq!(print(&mut s, "root.divide(1, 4)"), "0.25");
        assert_eq!(
            print(&mut s, "root.greet('ann', greeting='hi')"),
            "'hi, ann!'"
        );
        assert_eq!(
            print(&mut s, "root.echo({'k': [None, True, b'x', -1.5]})"),
            "{'k': [None, True, b'x', -1.5]}"
        );
        assert_eq!(print(&mut s, "root.echo([1, 2, 3])[-1]"), "3");
        assert_eq!(print(&mut s, "root.echo({'a': 7})['a']"), "7");
        assert_eq!(s.execute("   "), Step::Nothing);
        assert_eq!(s.execute("root.echo(None)"), Step::Nothing);
    }

    #[test]
    fn variables_and_remote_objects() {
        let (mut s, _rt) = session();
        assert_eq!(s.execute("c = root.counter(5)"), Step::Nothing);
        assert_eq!(print(&mut s, "c"), "<Counter value=5>");
        assert_eq!(print(&mut s, "c.increment()"), "6");
        assert_eq!(s.execute("c.step = 10"), Step::Nothing);
        assert_eq!(print(&mut s, "c.increment()"), "16");
        assert_eq!(print(&mut s, "[c, c.value]"), "[<Counter value=16>, 16]");
        assert_eq!(print(&mut s, "_[1]"), "16");
        assert_eq!(
            print(&mut s, "vars"),
            "c = <Counter value=16>\nroot = <Demo service \"demo\">"
        );
        assert_eq!(s.execute("inc = c.increment"), Step::Nothing);
        assert_eq!(print(&mut s, "inc(by=4)"), "20");
        assert_eq!(s.execute("exit"), Step::Exit);
        assert_eq!(s.execute("quit()"), Step::Exit);
    }

    #[test]
    fn builtins() {
        let (mut s, _rt) = session();
        assert_eq!(print(&mut s, "list(root.squares(4))"), "[0, 1, 4, 9]");
        assert_eq!(print(&mut s, "list(root.squares(100), 3)"), "[0, 1, 4]");
        assert_eq!(print(&mut s, "list('ab')"), "['a', 'b']");
        assert!(print(&mut s, "dir(root)").starts_with("['add', 'greet', 'divide',"));
        assert_eq!(print(&mut s, "repr(root)"), "'<Demo service \"demo\">'");
        assert_eq!(print(&mut s, "str(12)"), "'12'");
        assert_eq!(print(&mut s, "list(dir(root))[2]"), "'divide'");
        let help = print(&mut s, "help(root)");
        assert!(help.starts_with("Help on <Demo service \"demo\">:\n\nMethods:\n  add(*numbers: int) -> int\n      Add any number of integers: add(1, 2, 3) is 6, add() is 0.\n"), "{help}");
        assert!(
            help.contains(
                "Attributes:\n  label: str  (writable attribute)\n      A label anyone connected may change: root.label = 'mine'."
            ),
            "{help}"
        );
        assert_eq!(
            print(&mut s, "help(root.add)"),
            "add(*numbers: int) -> int\n    Add any number of integers: add(1, 2, 3) is 6, add() is 0."
        );
        assert_eq!(s.execute("m = root.add"), Step::Nothing);
        assert_eq!(
            print(&mut s, "help(m)"),
            "add(*numbers: int) -> int\n    Add any number of integers: add(1, 2, 3) is 6, add() is 0."
        );
        assert!(print(&mut s, "help(root.counter(1))").contains("step: int  (writable attribute)"));
        assert!(print(&mut s, "help(3)").contains("plain int value"));
        assert!(print(&mut s, "help").contains("Tab completes"));
    }

    #[test]
    fn errors_keep_the_session_going() {
        let (mut s, _rt) = session();
        assert_eq!(
            error(&mut s, "root.nope()"),
            "tether::DeniedError: 'Demo' object has no exposed member 'nope'"
        );
        assert!(print(&mut s, "trace").contains("Remote trace"));
        assert_eq!(
            error(&mut s, "root.divide(1, 0)"),
            "ZeroDivisionError: division by zero"
        );
        let e = error(&mut s, "root.add('x', 1)");
        assert!(e.starts_with("tether::BadArgumentsError"), "{e}");
        assert!(error(&mut s, "y").starts_with("NameError: name 'y' is not defined"));
        assert_eq!(
            error(&mut s, "root.add(1))"),
            "    root.add(1))\n               ^\nSyntaxError: unexpected ')'"
        );
        assert!(print(&mut s, "trace").contains("no remote trace"));
        assert!(error(&mut s, "3(1)").starts_with("TypeError: 'int' value is not callable"));
        assert!(error(&mut s, "(1).x").starts_with("TypeError: attribute 'x'"));
        assert!(error(&mut s, "[1][5]").starts_with("IndexError"));
        assert!(error(&mut s, "x = help(root)").starts_with("TypeError"));
        assert!(error(&mut s, "list(root)").contains("not iterable"));
        assert!(error(&mut s, "dir(1, 2)").contains("takes 1 argument (2 given)"));
        assert_eq!(print(&mut s, "root.add(1, 1)"), "2");
    }

    #[test]
    fn completion() {
        let (mut s, _rt) = session();
        assert_eq!(
            names(s.complete("root.ad", 7)),
            (5, vec!["add(".to_string()])
        );
        assert_eq!(names(s.complete("root.", 5)).1.len(), 14);
        assert_eq!(names(s.complete("root.la", 7)).1, vec!["label"]);
        assert_eq!(
            names(s.complete("x = ro", 6)),
            (4, vec!["root".to_string()])
        );
        assert_eq!(names(s.complete("he", 2)).1, vec!["help("]);
        assert_eq!(names(s.complete("ex", 2)).1, vec!["exit"]);
        assert_eq!(names(s.complete("Tr", 2)).1, vec!["True"]);
        assert_eq!(
            names(s.complete("help(root.gr", 12)),
            (10, vec!["greet(".to_string()])
        );
        // Methods are not followed, literals and strings are not completed.
        assert!(names(s.complete("root.add.", 9)).1.is_empty());
        assert!(names(s.complete("1.", 2)).1.is_empty());
        assert!(names(s.complete("'root.", 6)).1.is_empty());
        assert!(names(s.complete("nothing.", 8)).1.is_empty());
        s.execute("cnt = root.counter()");
        assert_eq!(names(s.complete("cn", 2)).1, vec!["cnt"]);
        assert_eq!(names(s.complete("cnt.st", 6)).1, vec!["step"]);
        assert_eq!(names(s.complete("cnt.re", 6)).1, vec!["reset("]);
    }
}
