//! The shell's little language: a tokenizer and a recursive-descent parser.
//!
//! One line is one statement:
//!
//! ```text
//! statement := target '=' expr | expr
//! target    := NAME | postfix '.' NAME           (a variable, or setattr)
//! expr      := '-' expr | postfix
//! postfix   := primary ( '.' NAME | '(' args ')' | '[' expr ']' )*
//! primary   := NAME | INT | FLOAT | STRING | BYTES | None | True | False
//!            | '[' items ']' | '{' pairs '}' | '(' expr ')' | '(' items ')'
//! args      := [ arg (',' arg)* [','] ]           arg := NAME '=' expr | expr
//! ```
//!
//! Strings take single or double quotes and the usual escapes (`\n`, `\t`,
//! `\\`, `\'`, `\"`, `\0`, `\xNN`, `\uNNNN`); `b'..'` is bytes; `#` starts a
//! comment. Tuples `(1, 2)` become lists, as they do on the wire.

use std::fmt;

use tether::Value;

/// A syntax error at a byte offset of the line.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// What is wrong.
    pub message: String,
    /// Where, as a byte offset into the line.
    pub pos: usize,
    /// True when more input could complete the line (an open bracket or
    /// string), so an editor may ask for a continuation line.
    pub incomplete: bool,
}

impl ParseError {
    fn at(pos: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            pos,
            incomplete: false,
        }
    }

    fn eof(pos: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            pos,
            incomplete: true,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at column {})", self.message, self.pos + 1)
    }
}

/// One token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub kind: Tok,
    pub pos: usize,
}

/// Token kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Name(String),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    /// One of `( ) [ ] { } , . = : -`.
    Punct(char),
    End,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Name(n) => write!(f, "name '{n}'"),
            Tok::Int(n) => write!(f, "number {n}"),
            Tok::Float(x) => write!(f, "number {x}"),
            Tok::Str(_) => f.write_str("a string"),
            Tok::Bytes(_) => f.write_str("bytes"),
            Tok::Punct(c) => write!(f, "'{c}'"),
            Tok::End => f.write_str("end of input"),
        }
    }
}

/// Split a line into tokens; the last one is always [`Tok::End`].
pub fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'#' => break,
            b'(' | b')' | b'[' | b']' | b'{' | b'}' | b',' | b'.' | b'=' | b':' | b'-'
                if !(c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                out.push(Token {
                    kind: Tok::Punct(c as char),
                    pos: start,
                });
                i += 1;
            }
            b'b' | b'B' if matches!(bytes.get(i + 1), Some(b'\'' | b'"')) => {
                let (text, end) = string(src, i + 1)?;
                let mut data = Vec::with_capacity(text.len());
                for ch in text.chars() {
                    let code = ch as u32;
                    if code > 0xff {
                        return Err(ParseError::at(
                            start,
                            format!("bytes can only hold characters up to \\xff, not {ch:?}"),
                        ));
                    }
                    data.push(code as u8);
                }
                out.push(Token {
                    kind: Tok::Bytes(data),
                    pos: start,
                });
                i = end;
            }
            b'\'' | b'"' => {
                let (text, end) = string(src, i)?;
                out.push(Token {
                    kind: Tok::Str(text),
                    pos: start,
                });
                i = end;
            }
            b'0'..=b'9' | b'.' => {
                let (kind, end) = number(src, i)?;
                out.push(Token { kind, pos: start });
                i = end;
            }
            c if c == b'_' || c.is_ascii_alphabetic() => {
                while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                out.push(Token {
                    kind: Tok::Name(src[start..i].to_string()),
                    pos: start,
                });
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(ParseError::at(i, format!("unexpected character {ch:?}")));
            }
        }
    }
    out.push(Token {
        kind: Tok::End,
        pos: src.len(),
    });
    Ok(out)
}

/// A quoted string starting at `start` (the quote); returns the text and
/// the offset after the closing quote.
fn string(src: &str, start: usize) -> Result<(String, usize), ParseError> {
    let quote = src.as_bytes()[start] as char;
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    let at = |off: usize| start + 1 + off;
    while let Some((off, ch)) = chars.next() {
        match ch {
            c if c == quote => return Ok((out, at(off) + 1)),
            '\\' => {
                let Some((eoff, esc)) = chars.next() else {
                    break;
                };
                match esc {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '0' => out.push('\0'),
                    '\\' => out.push('\\'),
                    '\'' => out.push('\''),
                    '"' => out.push('"'),
                    'x' | 'u' => {
                        let len = if esc == 'x' { 2 } else { 4 };
                        let digits: String = chars.by_ref().take(len).map(|(_, c)| c).collect();
                        let code = (digits.len() == len)
                            .then(|| u32::from_str_radix(&digits, 16).ok())
                            .flatten()
                            .and_then(char::from_u32)
                            .ok_or_else(|| {
                                ParseError::at(
                                    at(eoff) - 1,
                                    format!(
                                        "bad escape \\{esc}{digits}: expected {len} hex digits"
                                    ),
                                )
                            })?;
                        out.push(code);
                    }
                    other => {
                        return Err(ParseError::at(
                            at(eoff) - 1,
                            format!("unknown escape \\{other}"),
                        ))
                    }
                }
            }
            c => out.push(c),
        }
    }
    Err(ParseError::eof(start, "unterminated string"))
}

/// A number starting at `start`: `12`, `1_000`, `2.5`, `.5`, `1e3`, `1.5e-3`.
fn number(src: &str, start: usize) -> Result<(Tok, usize), ParseError> {
    let bytes = src.as_bytes();
    let mut i = start;
    let digits = |i: &mut usize| {
        while *i < bytes.len() && (bytes[*i].is_ascii_digit() || bytes[*i] == b'_') {
            *i += 1;
        }
    };
    digits(&mut i);
    let mut float = false;
    // A dot followed by a name is attribute access (`1 .real` aside), so
    // only take the dot when a digit or the end of the number follows.
    if i < bytes.len()
        && bytes[i] == b'.'
        && !bytes
            .get(i + 1)
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
    {
        float = true;
        i += 1;
        digits(&mut i);
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        let mut j = i + 1;
        if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
            j += 1;
        }
        if j < bytes.len() && bytes[j].is_ascii_digit() {
            float = true;
            i = j;
            digits(&mut i);
        }
    }
    if i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphabetic()) {
        return Err(ParseError::at(start, "invalid number"));
    }
    let text: String = src[start..i].chars().filter(|&c| c != '_').collect();
    let kind = if float {
        Tok::Float(
            text.parse()
                .map_err(|_| ParseError::at(start, "invalid number"))?,
        )
    } else {
        Tok::Int(text.parse().map_err(|_| {
            ParseError::at(start, format!("integer {text} does not fit in 64 bits"))
        })?)
    };
    Ok((kind, i))
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal value.
    Lit(Value),
    /// A variable or builtin.
    Name(String),
    /// `object.name`.
    Attr(Box<Expr>, String),
    /// `callee(args)`.
    Call(Box<Expr>, Vec<Arg>),
    /// `object[index]`.
    Index(Box<Expr>, Box<Expr>),
    /// `[a, b]` (and tuples).
    List(Vec<Expr>),
    /// `{k: v}`.
    Map(Vec<(Expr, Expr)>),
    /// `-x`.
    Neg(Box<Expr>),
}

/// One argument of a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Positional(Expr),
    Named(String, Expr),
}

/// One line of input.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// Nothing (blank or comment).
    Empty,
    /// Evaluate and print.
    Expr(Expr),
    /// `name = expr`.
    Assign(String, Expr),
    /// `object.name = expr` (a remote setattr).
    SetAttr(Expr, String, Expr),
}

/// Parse one line.
pub fn parse(src: &str) -> Result<Stmt, ParseError> {
    let tokens = tokenize(src)?;
    let mut p = Parser { tokens, at: 0 };
    if p.peek() == &Tok::End {
        return Ok(Stmt::Empty);
    }
    let target_pos = p.pos();
    let expr = p.expr()?;
    let stmt = if p.eat('=') {
        let value = p.expr()?;
        match expr {
            Expr::Name(name) => Stmt::Assign(name, value),
            Expr::Attr(object, name) => Stmt::SetAttr(*object, name, value),
            _ => {
                return Err(ParseError::at(
                    target_pos,
                    "can only assign to a name or an attribute",
                ))
            }
        }
    } else {
        Stmt::Expr(expr)
    };
    match p.peek() {
        Tok::End => Ok(stmt),
        other => Err(ParseError::at(p.pos(), format!("unexpected {other}"))),
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.tokens[self.at].kind
    }

    fn peek2(&self) -> &Tok {
        &self.tokens[(self.at + 1).min(self.tokens.len() - 1)].kind
    }

    fn pos(&self) -> usize {
        self.tokens[self.at].pos
    }

    fn bump(&mut self) -> Tok {
        let tok = self.tokens[self.at].kind.clone();
        if self.at + 1 < self.tokens.len() {
            self.at += 1;
        }
        tok
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == &Tok::Punct(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn unexpected(&self, wanted: &str) -> ParseError {
        let message = format!("expected {wanted}, found {}", self.peek());
        if self.peek() == &Tok::End {
            ParseError::eof(self.pos(), message)
        } else {
            ParseError::at(self.pos(), message)
        }
    }

    fn expect(&mut self, c: char) -> Result<(), ParseError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{c}'")))
        }
    }

    fn name(&mut self) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Name(n) => {
                self.bump();
                Ok(n)
            }
            _ => Err(self.unexpected("a name")),
        }
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        if self.eat('-') {
            // Fold `-3` into a literal so `-9223372036854775808` still fits.
            return Ok(match self.peek().clone() {
                Tok::Int(n) if !matches!(self.peek2(), Tok::Punct('.' | '(' | '[')) => {
                    self.bump();
                    Expr::Lit(Value::Int(-n))
                }
                Tok::Float(x) if !matches!(self.peek2(), Tok::Punct('.' | '(' | '[')) => {
                    self.bump();
                    Expr::Lit(Value::Float(-x))
                }
                _ => Expr::Neg(Box::new(self.expr()?)),
            });
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut expr = self.primary()?;
        loop {
            if self.eat('.') {
                let name = self.name()?;
                expr = Expr::Attr(Box::new(expr), name);
            } else if self.eat('(') {
                let args = self.args()?;
                expr = Expr::Call(Box::new(expr), args);
            } else if self.eat('[') {
                let index = self.expr()?;
                self.expect(']')?;
                expr = Expr::Index(Box::new(expr), Box::new(index));
            } else {
                return Ok(expr);
            }
        }
    }

    fn args(&mut self) -> Result<Vec<Arg>, ParseError> {
        let mut args = Vec::new();
        let mut named_seen = false;
        while !self.eat(')') {
            let pos = self.pos();
            let arg = match (self.peek().clone(), self.peek2()) {
                (Tok::Name(name), Tok::Punct('=')) => {
                    self.bump();
                    self.bump();
                    named_seen = true;
                    Arg::Named(name, self.expr()?)
                }
                _ => {
                    let expr = self.expr()?;
                    if named_seen {
                        return Err(ParseError::at(
                            pos,
                            "positional argument after a named argument",
                        ));
                    }
                    Arg::Positional(expr)
                }
            };
            args.push(arg);
            if !self.eat(',') {
                self.expect(')')?;
                break;
            }
        }
        Ok(args)
    }

    fn items(&mut self, close: char) -> Result<Vec<Expr>, ParseError> {
        let mut items = Vec::new();
        while !self.eat(close) {
            items.push(self.expr()?);
            if !self.eat(',') {
                self.expect(close)?;
                break;
            }
        }
        Ok(items)
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let pos = self.pos();
        match self.bump() {
            Tok::Name(n) => Ok(match n.as_str() {
                "None" => Expr::Lit(Value::None),
                "True" => Expr::Lit(Value::Bool(true)),
                "False" => Expr::Lit(Value::Bool(false)),
                _ => Expr::Name(n),
            }),
            Tok::Int(n) => Ok(Expr::Lit(Value::Int(n))),
            Tok::Float(x) => Ok(Expr::Lit(Value::Float(x))),
            Tok::Str(s) => Ok(Expr::Lit(Value::Str(s))),
            Tok::Bytes(b) => Ok(Expr::Lit(Value::Bytes(b))),
            Tok::Punct('[') => Ok(Expr::List(self.items(']')?)),
            Tok::Punct('{') => {
                let mut pairs = Vec::new();
                while !self.eat('}') {
                    let key = self.expr()?;
                    self.expect(':')?;
                    let value = self.expr()?;
                    pairs.push((key, value));
                    if !self.eat(',') {
                        self.expect('}')?;
                        break;
                    }
                }
                Ok(Expr::Map(pairs))
            }
            Tok::Punct('(') => {
                if self.eat(')') {
                    return Ok(Expr::List(Vec::new()));
                }
                let first = self.expr()?;
                if self.eat(')') {
                    return Ok(first);
                }
                self.expect(',')?;
                let mut items = vec![first];
                items.extend(self.items(')')?);
                Ok(Expr::List(items))
            }
            tok => {
                self.at -= usize::from(tok != Tok::End);
                let message = format!("expected an expression, found {tok}");
                Err(if tok == Tok::End {
                    ParseError::eof(pos, message)
                } else {
                    ParseError::at(pos, message)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> Expr {
        Expr::Name(n.to_string())
    }

    fn attr(e: Expr, n: &str) -> Expr {
        Expr::Attr(Box::new(e), n.to_string())
    }

    fn call(e: Expr, args: Vec<Arg>) -> Expr {
        Expr::Call(Box::new(e), args)
    }

    fn lit(v: impl Into<Value>) -> Expr {
        Expr::Lit(v.into())
    }

    fn pos(e: Expr) -> Arg {
        Arg::Positional(e)
    }

    fn expr(src: &str) -> Expr {
        match parse(src) {
            Ok(Stmt::Expr(e)) => e,
            other => panic!("{src:?} parsed as {other:?}"),
        }
    }

    fn err(src: &str) -> ParseError {
        parse(src).expect_err(src)
    }

    #[test]
    fn tokens_of_a_call() {
        let kinds: Vec<Tok> = tokenize("root.add(1, 2.5)")
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect();
        assert_eq!(
            kinds,
            vec![
                Tok::Name("root".into()),
                Tok::Punct('.'),
                Tok::Name("add".into()),
                Tok::Punct('('),
                Tok::Int(1),
                Tok::Punct(','),
                Tok::Float(2.5),
                Tok::Punct(')'),
                Tok::End,
            ]
        );
    }

    #[test]
    fn token_positions_are_byte_offsets() {
        let toks = tokenize("  x = 'é' #c").unwrap();
        let at: Vec<usize> = toks.iter().map(|t| t.pos).collect();
        assert_eq!(at, vec![2, 4, 6, 13]);
    }

    #[test]
    fn numbers() {
        assert_eq!(expr("12"), lit(12));
        assert_eq!(expr("1_000"), lit(1000));
        assert_eq!(expr("2.5"), lit(2.5));
        assert_eq!(expr(".5"), lit(0.5));
        assert_eq!(expr("3."), lit(3.0));
        assert_eq!(expr("1e3"), lit(1000.0));
        assert_eq!(expr("1.5E-3"), lit(0.0015));
        assert_eq!(expr("-7"), lit(-7));
        assert_eq!(expr("-2.5"), lit(-2.5));
        assert_eq!(expr("-9223372036854775807"), lit(-9223372036854775807i64));
        assert!(err("99999999999999999999").message.contains("64 bits"));
        assert!(err("12abc").message.contains("invalid number"));
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(expr("'ann'"), lit("ann"));
        assert_eq!(expr("\"it's\""), lit("it's"));
        assert_eq!(expr(r"'a\nb\t\\\'\x41\u00e9'"), lit("a\nb\t\\'Aé"));
        assert_eq!(
            expr(r"b'\x00ab'"),
            Expr::Lit(Value::Bytes(vec![0, b'a', b'b']))
        );
        let e = err("'open");
        assert!(e.incomplete, "{e:?}");
        assert_eq!(e.message, "unterminated string");
        assert!(err(r"'\q'").message.contains("unknown escape"));
        assert!(err(r"'\x4'").message.contains("hex digits"));
    }

    #[test]
    fn keywords_are_literals() {
        assert_eq!(expr("None"), lit(Value::None));
        assert_eq!(expr("True"), lit(true));
        assert_eq!(expr("False"), lit(false));
        assert_eq!(expr("none"), name("none"));
    }

    #[test]
    fn attribute_chains_and_calls() {
        assert_eq!(expr("root.name"), attr(name("root"), "name"));
        assert_eq!(
            expr("root.add(1, 2)"),
            call(attr(name("root"), "add"), vec![pos(lit(1)), pos(lit(2))])
        );
        assert_eq!(
            expr("root.counter().increment()"),
            call(
                attr(call(attr(name("root"), "counter"), vec![]), "increment"),
                vec![]
            )
        );
        assert_eq!(
            expr("xs[0]"),
            Expr::Index(Box::new(name("xs")), Box::new(lit(0)))
        );
    }

    #[test]
    fn named_arguments() {
        assert_eq!(
            expr("f(x, scale=2,)"),
            call(
                name("f"),
                vec![pos(name("x")), Arg::Named("scale".into(), lit(2))]
            )
        );
        let e = err("f(a=1, 2)");
        assert_eq!(e.message, "positional argument after a named argument");
        assert_eq!(e.pos, 7);
    }

    #[test]
    fn lists_maps_and_tuples() {
        assert_eq!(expr("[1, 'two']"), Expr::List(vec![lit(1), lit("two")]));
        assert_eq!(expr("[]"), Expr::List(vec![]));
        assert_eq!(expr("[1,]"), Expr::List(vec![lit(1)]));
        assert_eq!(
            expr("{'a': 1, \"b\": [None]}"),
            Expr::Map(vec![
                (lit("a"), lit(1)),
                (lit("b"), Expr::List(vec![lit(Value::None)]))
            ])
        );
        assert_eq!(expr("(1, 2)"), Expr::List(vec![lit(1), lit(2)]));
        assert_eq!(expr("(1,)"), Expr::List(vec![lit(1)]));
        assert_eq!(expr("(1)"), lit(1));
        assert_eq!(expr("()"), Expr::List(vec![]));
    }

    #[test]
    fn negation_of_expressions() {
        assert_eq!(expr("-x"), Expr::Neg(Box::new(name("x"))));
        assert_eq!(
            expr("-root.n"),
            Expr::Neg(Box::new(attr(name("root"), "n")))
        );
    }

    #[test]
    fn statements() {
        assert_eq!(parse("").unwrap(), Stmt::Empty);
        assert_eq!(parse("   # just a comment").unwrap(), Stmt::Empty);
        assert_eq!(
            parse("x = root.numbers(5)").unwrap(),
            Stmt::Assign(
                "x".into(),
                call(attr(name("root"), "numbers"), vec![pos(lit(5))])
            )
        );
        assert_eq!(
            parse("c.step = 3").unwrap(),
            Stmt::SetAttr(name("c"), "step".into(), lit(3))
        );
        assert!(err("f() = 1").message.contains("can only assign"));
        assert!(err("1 2").message.contains("unexpected number 2"));
    }

    #[test]
    fn errors_say_where_and_whether_more_input_helps() {
        let e = err("root.add(1,");
        assert!(e.incomplete);
        assert_eq!(e.pos, 11);
        let e = err("root.add(1))");
        assert!(!e.incomplete);
        assert_eq!(e.pos, 11);
        assert_eq!(e.message, "unexpected ')'");
        let e = err("root.");
        assert!(e.incomplete);
        assert_eq!(e.message, "expected a name, found end of input");
        let e = err("x = $");
        assert_eq!(e.pos, 4);
        assert!(e.message.contains("unexpected character '$'"));
        let e = err("[1, 2");
        assert!(e.incomplete);
        let e = err("{'a' 1}");
        assert_eq!(e.message, "expected ':', found number 1");
        assert_eq!(e.pos, 5);
    }
}
