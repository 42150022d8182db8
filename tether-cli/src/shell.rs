//! `tether shell`: an interactive session with a peer.
//!
//! A line editor (rustyline) with history and tab completion reads one
//! statement per line in a tiny Python-like language ([`parse`]) and runs it
//! on the peer ([`eval`]): `root.add(1, 2)`, `x = root.counter()`,
//! `help(root)`, `list(root.squares(5))`. Results print like Python's
//! `repr`; a remote object prints as its owner's `repr`. Errors print as
//! `Type: message` and the session goes on; `trace` shows the last error's
//! remote trace.
//!
//! [`run`] talks to a connected [`Peer`]: a tether peer, or a Python RPyC
//! server (`tether shell --rpyc`); [`run_embedded`] first starts a
//! server in-process serving the [`demo`](crate::demo) service (the one
//! `tether serve` offers), so a newcomer can try the shell without one.

pub mod eval;
pub mod parse;
pub mod peer;

use std::cell::RefCell;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{CompletionType, Context, Editor, Helper};

use self::eval::{Session, Step};
use self::parse::Tok;
pub use self::peer::Peer;
use crate::demo::{self, Demo};

/// The prompt.
pub const PROMPT: &str = "tether> ";

/// History kept in memory, and in `$HOME/.tether_history` when `HOME` is set.
const HISTORY_LINES: usize = 1000;

/// Run an interactive session on `peer` (a tether peer or a Python RPyC
/// server) until `exit`, `quit` or Ctrl-D. `name` says in the banner where
/// the peer is (the address).
///
/// Blocking: call it from a plain thread, not from inside an async runtime.
pub fn run(peer: Peer, name: &str) -> io::Result<()> {
    let session = Session::new(peer).map_err(|e| {
        io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!("cannot get the root object of {name}: {e}"),
        )
    })?;
    let session = Rc::new(RefCell::new(session));
    let config = rustyline::Config::builder()
        .completion_type(CompletionType::List)
        .max_history_size(HISTORY_LINES)
        .map_err(readline_error)?
        .auto_add_history(false)
        .build();
    let mut editor: Editor<ShellHelper, DefaultHistory> =
        Editor::with_config(config).map_err(readline_error)?;
    editor.set_helper(Some(ShellHelper {
        session: session.clone(),
    }));
    let history = history_path();
    if let Some(path) = &history {
        // A missing or unreadable history file just means no history yet.
        let _ = editor.load_history(path);
    }

    println!(
        "tether shell: connected to {} at {name}.\n\
         `root` is its root object. Type help for how to use the shell, \
         help(root) for what the peer offers.\n\
         Tab completes names; exit or Ctrl-D leaves.",
        session.borrow().describe_peer()
    );

    let result = repl(&mut editor, &session);
    if let Some(path) = &history {
        if let Err(e) = editor.save_history(path) {
            eprintln!("(could not save the history to {}: {e})", path.display());
        }
    }
    result
}

fn repl(
    editor: &mut Editor<ShellHelper, DefaultHistory>,
    session: &RefCell<Session>,
) -> io::Result<()> {
    loop {
        let line = match editor.readline(PROMPT) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                println!("KeyboardInterrupt (exit or Ctrl-D leaves)");
                continue;
            }
            Err(ReadlineError::Eof) => return Ok(()),
            Err(e) => return Err(readline_error(e)),
        };
        if !line.trim().is_empty() {
            let _ = editor.add_history_entry(line.as_str());
        }
        let step = session.borrow_mut().execute(&line);
        match step {
            Step::Nothing => {}
            Step::Print(text) => println!("{text}"),
            Step::Error(text) => {
                eprintln!("{text}");
                if session.borrow().is_closed() {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the connection to the peer is closed",
                    ));
                }
            }
            Step::Exit => return Ok(()),
        }
    }
}

/// Start a server in-process serving [`Demo`] on 127.0.0.1 (any free
/// port; with [`demo::config`], so `root.label = 'mine'` works) and run
/// the shell on it.
pub fn run_embedded() -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tether-demo-server")
        .enable_all()
        .build()?;
    let addr = rt
        .block_on(demo::serve_on_loopback(Demo::new()))
        .map_err(io::Error::other)?;
    let conn = tether::blocking::connect(addr).map_err(io::Error::other)?;
    let result = run(
        Peer::Tether(conn),
        &format!("{addr} (an embedded demo server)"),
    );
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| PathBuf::from(home).join(".tether_history"))
}

fn readline_error(e: ReadlineError) -> io::Error {
    match e {
        ReadlineError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// Completion and multi-line input for the editor.
struct ShellHelper {
    session: Rc<RefCell<Session>>,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let Ok(session) = self.session.try_borrow() else {
            return Ok((pos, Vec::new()));
        };
        let (start, candidates) = session.complete(line, pos);
        Ok((
            start,
            candidates
                .into_iter()
                .map(|c| Pair {
                    display: c.display,
                    replacement: c.replacement,
                })
                .collect(),
        ))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {}

impl Validator for ShellHelper {
    /// An open bracket asks for another line, as Python's prompt does.
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        let input = ctx.input();
        let open = parse::tokenize(input).is_ok_and(|tokens| {
            let depth: i64 = tokens
                .iter()
                .map(|t| match t.kind {
                    Tok::Punct('(' | '[' | '{') => 1,
                    Tok::Punct(')' | ']' | '}') => -1,
                    _ => 0,
                })
                .sum();
            depth > 0
        });
        if open && parse::parse(input).is_err_and(|e| e.incomplete) {
            Ok(ValidationResult::Incomplete)
        } else {
            Ok(ValidationResult::Valid(None))
        }
    }
}

impl Helper for ShellHelper {}
