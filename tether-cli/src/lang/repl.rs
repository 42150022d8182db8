//! What an interactive prompt needs of the [`Engine`]: one statement at a
//! time with its value shown, whether the input so far is a whole
//! statement, and completions of names and remote members.

use rustpython_vm::compiler::{CompileErrorType, Mode};
use rustpython_vm::function::FuncArgs;
use rustpython_vm::{PyObjectRef, PyResult, VirtualMachine};

use super::{convert, describe_short, remote, Engine, Failure};

/// One completion: what the menu shows and what replaces the word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The name shown in the menu.
    pub display: String,
    /// The text put in place of the word being completed (a method gets
    /// its opening parenthesis).
    pub replacement: String,
}

impl Engine {
    /// Run one statement typed at the prompt; an expression's value that
    /// is not `None` is printed as its `repr`, and kept as `_`.
    pub fn run_line(&self, source: &str) -> Result<(), Failure> {
        self.interpreter.enter(|vm| {
            let code = vm
                .compile(source, Mode::Single, "<stdin>".to_owned())
                .map_err(|e| Failure::Syntax(format!("SyntaxError: {e}")))?;
            vm.run_code_obj(code, self.scope.clone())
                .map(drop)
                .map_err(|exc| {
                    let shown = describe_short(vm, &exc);
                    // The exception stays for `trace()`; its traceback would
                    // keep the statement's frame, and what the frame held
                    // (pending results, their calls), until the next error.
                    let mut exc = Some(exc);
                    for _ in 0..64 {
                        let Some(e) = exc else { break };
                        e.set_traceback(None);
                        exc = e.context();
                    }
                    Failure::Raised(shown)
                })
        })
    }

    /// Whether `source` needs more lines: an open bracket or string, or a
    /// block (a line ending in `:`) not yet ended by an empty line, as at
    /// Python's prompt.
    pub fn needs_more(&self, source: &str) -> bool {
        let lines: Vec<&str> = source.lines().collect();
        let opens_block = lines
            .iter()
            .any(|l| l.trim_end().ends_with(':') && !l.trim_start().starts_with('#'));
        let ended = source.ends_with('\n') || lines.last().is_none_or(|l| l.trim().is_empty());
        if opens_block && !ended {
            return true;
        }
        self.interpreter.enter(
            |vm| match vm.compile(source, Mode::Single, "<stdin>".to_owned()) {
                Err(e) => matches!(
                    e.error,
                    CompileErrorType::Parse(
                        rustpython_vm::compiler::parser::ParseErrorType::Lexical(
                            rustpython_vm::compiler::parser::lexer::LexicalErrorType::Eof
                        )
                    )
                ),
                Ok(_) => false,
            },
        )
    }

    /// Bind `name` to `value` in the session's globals.
    pub fn set_global(&self, name: &str, value: tether::Value) -> Result<(), Failure> {
        self.interpreter.enter(|vm| {
            let obj =
                convert::to_py(vm, value).map_err(|e| Failure::Raised(describe_short(vm, &e)))?;
            self.scope
                .globals
                .set_item(name, obj, vm)
                .map_err(|e| Failure::Raised(describe_short(vm, &e)))
        })
    }

    /// Completions of the dotted name that ends at `pos` in `line`: the
    /// word's start and the candidates. A name alone completes from the
    /// session's variables and the builtins; `a.b.c` evaluates `a.b` (which
    /// may ask the peer) and completes from its members.
    pub fn complete(&self, line: &str, pos: usize) -> (usize, Vec<Completion>) {
        let before = &line[..pos];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .map_or(0, |i| i + 1);
        let word = &before[start..];
        let (object, prefix, word_start) = match word.rfind('.') {
            Some(dot) => (Some(&word[..dot]), &word[dot + 1..], start + dot + 1),
            None => (None, word, start),
        };
        let names = self
            .interpreter
            .enter(|vm| -> PyResult<Vec<(String, bool)>> {
                match object {
                    None => {
                        let mut names = Vec::new();
                        for (k, _) in &self.scope.globals {
                            names.push((k.str(vm)?.as_str().to_owned(), false));
                        }
                        for (k, _) in &vm.builtins.dict() {
                            names.push((k.str(vm)?.as_str().to_owned(), false));
                        }
                        Ok(names)
                    }
                    Some(expr) if !expr.is_empty() => {
                        let value = vm.run_block_expr(self.scope.clone(), expr)?;
                        members_of(vm, &value)
                    }
                    Some(_) => Ok(Vec::new()),
                }
            });
        let mut out: Vec<Completion> = names
            .unwrap_or_default()
            .into_iter()
            .filter(|(n, _)| {
                n.starts_with(prefix) && (prefix.starts_with('_') || !n.starts_with('_'))
            })
            .map(|(n, method)| Completion {
                replacement: if method { format!("{n}(") } else { n.clone() },
                display: n,
            })
            .collect();
        out.sort_by(|a, b| a.display.cmp(&b.display));
        out.dedup();
        (word_start, out)
    }
}

/// Names of `value`'s members, and whether each is a method: a remote
/// object's declared ones, otherwise Python's `dir`.
fn members_of(vm: &VirtualMachine, value: &PyObjectRef) -> PyResult<Vec<(String, bool)>> {
    if let Some(members) = remote::declared_members(vm, value)? {
        return Ok(members
            .into_iter()
            .map(|m| (m.name.to_string(), m.kind == tether::MemberKind::Method))
            .collect());
    }
    let dir = vm.builtins.get_attr("dir", vm)?;
    let names = dir.call(FuncArgs::from(vec![value.clone()]), vm)?;
    let list: Vec<PyObjectRef> = names.try_to_value(vm)?;
    list.iter()
        .map(|n| Ok((n.str(vm)?.as_str().to_owned(), false)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Calc;

    #[tether::expose]
    impl Calc {
        /// Add two integers.
        #[method]
        fn add(&self, a: i64, b: i64) -> i64 {
            a + b
        }

        #[getter]
        fn answer(&self) -> i64 {
            42
        }
    }

    /// An engine whose root is a local `Calc`, on a runtime of its own.
    fn engine() -> (tokio::runtime::Runtime, Engine) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let engine = Engine::new(rt.handle().clone(), tether::NetRef::new(Calc));
        (rt, engine)
    }

    #[test]
    fn a_statement_runs_and_variables_stay() {
        let (_rt, engine) = engine();
        engine.run_line("x = root.add(1, 2)").unwrap();
        engine.run_line("y = x * 10 + root.answer").unwrap();
        engine.run("assert y == 72, y", "<check>").unwrap();
        match engine.run_line("root.add(1,, 2)") {
            Err(Failure::Syntax(m)) => assert!(m.starts_with("SyntaxError: "), "{m}"),
            other => panic!("{other:?}"),
        }
        match engine.run_line("nothing_here") {
            Err(Failure::Raised(m)) => {
                assert_eq!(m, "NameError: name 'nothing_here' is not defined")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn open_brackets_and_blocks_ask_for_more_lines() {
        let (_rt, engine) = engine();
        assert!(engine.needs_more("root.add(1,"));
        assert!(engine.needs_more("x = [1,\n2"));
        assert!(engine.needs_more("def f(i):"));
        assert!(engine.needs_more("for i in range(3):\n    print(i)"));
        assert!(!engine.needs_more("for i in range(3):\n    print(i)\n"));
        assert!(!engine.needs_more("root.add(1, 2)"));
        assert!(
            !engine.needs_more("print(x +)"),
            "an error is not more input"
        );
    }

    #[test]
    fn names_and_remote_members_complete() {
        let (_rt, engine) = engine();
        engine.run_line("counter_one = 1").unwrap();
        let (start, found) = engine.complete("counter_o", 9);
        assert_eq!(start, 0);
        assert_eq!(
            found,
            vec![Completion {
                display: "counter_one".into(),
                replacement: "counter_one".into()
            }]
        );
        let (start, found) = engine.complete("x = root.ad", 11);
        assert_eq!(start, 9);
        assert_eq!(
            found,
            vec![Completion {
                display: "add".into(),
                replacement: "add(".into()
            }]
        );
        let (_, found) = engine.complete("root.ans", 8);
        assert_eq!(
            found[0].replacement, "answer",
            "an attribute gets no bracket"
        );
    }
}
