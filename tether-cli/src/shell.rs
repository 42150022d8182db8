//! `tether shell`: an interactive session with a peer.
//!
//! A line editor (rustyline) with history and tab completion reads Python
//! statements (a block until an empty line, as at Python's prompt) and
//! runs them in the [`lang`](crate::lang) engine, with `root` bound to the
//! peer's root object: `root.add(1, 2)`, `c = root.counter()`,
//! `root.count_to(3, lambda i: print(i))`, `help(root)`. Values print as
//! their `repr`; a remote object prints as its owner's `repr`. Errors
//! print as `Type: message` and the session goes on; `trace` shows the
//! last remote error's trace. Ctrl-C cancels a running call (on the peer
//! too) and prints `cancelled`; variables stay.
//!
//! [`run`] talks to a connected [`Peer`]: a tether peer, or a Python RPyC
//! server (`tether shell --rpyc`); [`run_embedded`] first starts a
//! server in-process serving the [`demo`](crate::demo) service (the one
//! `tether serve` offers), so a newcomer can try the shell without one.

pub mod peer;

use std::cell::Cell;
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

pub use self::peer::Peer;
use crate::demo::{self, Demo};
use crate::lang::{self, Describe, Engine, Failure};

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
    let root = peer.root().map_err(|e| {
        io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!("cannot get the root object of {name}: {e}"),
        )
    })?;
    let description = peer.describe(&root);
    let extra = peer.extra_vars(&root);
    // The interpreter's calls wait on a runtime of their own; the
    // connection keeps running on the peer's.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tether-shell")
        .enable_all()
        .build()?;
    let peer = Rc::new(peer);
    let engine = Rc::new(Engine::new(rt.handle().clone(), root.as_async().clone()));
    engine.describe_with(Box::new(PeerDescribe(peer.clone())));
    for (var, value) in extra {
        if let Err(e) = engine.set_global(&var, value) {
            eprintln!("({var} is not available: {e:?})");
        }
    }
    let config = rustyline::Config::builder()
        .completion_type(CompletionType::List)
        .max_history_size(HISTORY_LINES)
        .map_err(readline_error)?
        .auto_add_history(false)
        .build();
    let mut editor: Editor<ShellHelper, DefaultHistory> =
        Editor::with_config(config).map_err(readline_error)?;
    editor.set_helper(Some(ShellHelper {
        engine: engine.clone(),
    }));
    let history = history_path();
    if let Some(path) = &history {
        // A missing or unreadable history file just means no history yet.
        let _ = editor.load_history(path);
    }

    println!(
        "tether shell: connected to {description} at {name}.\n\
         `root` is its root object. Type help for how to use the shell, \
         help(root) for what the peer offers.\n\
         Tab completes names; exit or Ctrl-D leaves."
    );

    let result = repl(&mut editor, &engine, &peer);
    if let Some(path) = &history {
        if let Err(e) = editor.save_history(path) {
            eprintln!("(could not save the history to {}: {e})", path.display());
        }
    }
    drop(editor);
    drop(engine);
    rt.shutdown_background();
    result
}

fn repl(
    editor: &mut Editor<ShellHelper, DefaultHistory>,
    engine: &Engine,
    peer: &Peer,
) -> io::Result<()> {
    let interrupted = Cell::new(false);
    loop {
        let line = match editor.readline(PROMPT) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                if interrupted.replace(true) {
                    return Ok(());
                }
                println!("KeyboardInterrupt (Ctrl-C again, exit or Ctrl-D leaves)");
                continue;
            }
            Err(ReadlineError::Eof) => return Ok(()),
            Err(e) => return Err(readline_error(e)),
        };
        interrupted.set(false);
        if !line.trim().is_empty() {
            let _ = editor.add_history_entry(line.as_str());
        }
        match line.trim() {
            "" => continue,
            "exit" | "quit" => return Ok(()),
            "help" => {
                println!("{}", usage());
                continue;
            }
            "trace" => {
                match lang::last_trace() {
                    None => println!("No remote error yet."),
                    Some(lines) => {
                        println!("Remote trace (outermost first):");
                        for l in lines {
                            println!("  {l}");
                        }
                    }
                }
                continue;
            }
            _ => {}
        }
        match engine.run_line(&line) {
            Ok(()) => {}
            Err(Failure::Syntax(text) | Failure::Raised(text)) => {
                eprintln!("{text}");
                if peer.is_closed() {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the connection to the peer is closed",
                    ));
                }
            }
        }
    }
}

/// What `help` alone prints.
fn usage() -> &'static str {
    "\
The shell speaks Python; `root` is the peer's root object:
  root.add(1, 2)                      call a method (keyword arguments too)
  root.name                           read an attribute; root.x = 5 assigns one (if allowed)
  c = root.counter()                  keep a result (a remote object or a value)
  x[0], d['key'], len(x), k in x      items of remote objects, as in Python
  [v * 2 for v in root.squares(4)]    iterate remote objects (in batches)
  root.count_to(3, lambda i: print(i))   pass a function: the peer calls it back
  def f(i): ...                       blocks continue until an empty line
Shell functions and commands:
  help(x)                   members of x with signatures and docs; help(x.name) for one
  dir(x)                    member names of x
  trace                     the full remote trace of the last error
  exit, quit, Ctrl-D        leave (Ctrl-C cancels a running call; twice at the prompt leaves)
Tab completes variable names, and member names after a dot."
}

/// Start a server in-process serving [`Demo`] on 127.0.0.1 (any free
/// port; with [`demo::config`], so `root.label = 'mine'` works) and run
/// the shell on it, connected with `client` (the deadlines of
/// `--timeout`).
pub fn run_embedded(client: tether::Config) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tether-demo-server")
        .enable_all()
        .build()?;
    let addr = rt
        .block_on(demo::serve_on_loopback(Demo::new()))
        .map_err(io::Error::other)?;
    let builder = tether::Builder::default().config(client);
    let conn = tether::blocking::connect_with(builder, addr).map_err(io::Error::other)?;
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

/// Members and docs as the peer lists them (for a Python peer: `dir` and
/// INSPECT).
struct PeerDescribe(Rc<Peer>);

impl Describe for PeerDescribe {
    fn members(&self, object: &tether::NetRef) -> Option<Vec<tether::Member>> {
        self.0.members(&self.0.wrap(object.clone())).ok()
    }

    fn doc(&self, object: &tether::NetRef) -> Option<String> {
        self.0.doc(&self.0.wrap(object.clone()))
    }
}

/// Completion and multi-line input for the editor.
struct ShellHelper {
    engine: Rc<Engine>,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, candidates) = self.engine.complete(line, pos);
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
    /// An open bracket or an unfinished block asks for another line, as
    /// Python's prompt does.
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        if self.engine.needs_more(ctx.input()) {
            Ok(ValidationResult::Incomplete)
        } else {
            Ok(ValidationResult::Valid(None))
        }
    }
}

impl Helper for ShellHelper {}
