//! The `tether` command: serve a service, open a shell on one, call it
//! from scripts, copy files to and from it.
//!
//! ```text
//! tether serve [--classic | --demo] [--tcp ADDR | --unix PATH] [--max-connections N] [-v]
//! tether shell [ADDR] | tether shell --rpyc HOST:PORT
//! tether call ADDR PATH [ARGS]... [--named NAME=VALUE]...
//! tether call ADDR --dir [PATH]
//! tether cp SRC DST
//! tether run FILE [ADDR] | tether run FILE --rpyc HOST:PORT
//! ```
//!
//! Every subcommand also takes credentials: TLS certificates and tokens
//! (see [`auth`]). Those that connect share [`client::ClientArgs`]:
//! `--timeout SECONDS` bounds connecting and each call.
//!
//! Each subcommand is parsing plus library calls; the work is in its own
//! module. Exit codes: 0 success, 1 the operation failed (remote error,
//! connection refused, ...), 2 bad usage or a refusal before any work
//! (clap's own errors included).

mod addr;
mod auth;
mod call;
mod client;
mod cp;
mod demo;
mod json;
mod lang;
mod log;
mod run;
mod serve;
mod shell;
mod web;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::addr::Endpoint;
use crate::client::{ClientArgs, RpycHint};

#[derive(Debug, Parser)]
#[command(
    name = "tether",
    version,
    about = "Serve, explore and call tether services; copy files to and from them",
    after_help = "ADDR is HOST:PORT, PORT (on 127.0.0.1), unix:PATH, or nats://HOST:PORT/NAME \
                  (an instance of service NAME found on that NATS server)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the demo service (the default) or the classic service.
    Serve(ServeArgs),
    /// Open an interactive session on a server (none: an in-process demo).
    Shell(ShellArgs),
    /// Call one remote method and print its result as JSON.
    #[command(after_help = CALL_HELP)]
    Call(CallArgs),
    /// Copy a file to or from a server running the classic service.
    #[command(after_help = CP_HELP)]
    Cp(CpArgs),
    /// Run a Python file with `root` bound to a server's root object (none:
    /// an in-process demo).
    Run(run::RunArgs),
}

const CALL_HELP: &str = "\
ARGS are JSON literals when they parse as JSON (42, -1.5, true, null, \"text\",
[1, 2], {\"k\": 1}), plain strings otherwise. The result is printed as JSON:
bytes as arrays of numbers, objects as {\"$ref\": \"<repr>\"}. Errors go to
stderr as `error: <Type>: <message>`, with exit code 1.

Examples:
  tether call 127.0.0.1:18812 add 1 2 3
  tether call 127.0.0.1:18812 greet world --named greeting=hi
  tether call 127.0.0.1:18812 notes.add '\"buy milk\"'
  tether call 127.0.0.1:18812 --get label
  tether call 127.0.0.1:18812 --dir notes";

const CP_HELP: &str = "\
One of SRC and DST is on the server, written ADDR:PATH (HOST:PORT:PATH,
PORT:/PATH on 127.0.0.1, or unix:SOCKET:PATH); the other is a local path
(prefix ./ if it looks like ADDR:PATH). A local directory, or a remote path ending in /, receives a file
of the source's name.

Examples:
  tether cp 127.0.0.1:18812:/var/log/syslog ./syslog
  tether cp build/app.tar.gz 127.0.0.1:18812:/tmp/";

#[derive(Debug, Args)]
struct ServeArgs {
    /// Serve the classic service: this host's files, processes and
    /// environment, to anyone who can connect. Loopback only unless
    /// --allow-remote.
    #[arg(long, conflicts_with = "demo")]
    classic: bool,
    /// Serve the demo service (the default).
    #[arg(long)]
    demo: bool,
    /// Listen on this TCP address [default: 127.0.0.1:18812].
    #[arg(long, value_name = "ADDR", conflicts_with = "unix")]
    tcp: Option<String>,
    /// Listen on a Unix socket at this path.
    #[arg(long, value_name = "PATH")]
    unix: Option<PathBuf>,
    /// Most connections open at once; more are refused.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_connections: usize,
    /// Also register on the NATS server at URL (nats://HOST:PORT) as a
    /// micro service, so clients find this instance by --service name and
    /// can reach it through the broker. Still listens on its own address.
    #[arg(long, value_name = "URL", requires = "service")]
    nats: Option<String>,
    /// The service name to register on NATS (A-Z, a-z, 0-9, - and _).
    #[arg(long, value_name = "NAME", requires = "nats")]
    service: Option<String>,
    /// Serve the service behind a session host, for clients whose calls
    /// must run at most once across reconnects (`tether::session`): the
    /// root then has `open`, `call`, `forget` and `root`.
    #[arg(long)]
    sessions: bool,
    /// Also serve the service to JavaScript and browsers on this HTTP
    /// address: Cap'n Web at ADDR/capnweb, and a console page at ADDR/
    /// to explore it. Loopback only for the classic service unless
    /// --allow-remote; not with tokens (a browser cannot send them).
    #[arg(long, value_name = "ADDR")]
    web: Option<String>,
    /// Let the classic service listen on a non-loopback address: anyone who
    /// can reach it then controls this host.
    #[arg(long, requires = "classic")]
    allow_remote: bool,
    /// Log more on stderr: -v adds refused and cancelled calls, -vv
    /// everything. By default: connections, disconnects, denied clients and
    /// errors raised by objects. RUST_LOG, when set, decides instead.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(flatten)]
    auth: auth::ServeAuth,
}

#[derive(Debug, Args)]
struct ShellArgs {
    /// The server; without one, a demo service is started in-process.
    #[arg(required_if_eq("rpyc", "true"))]
    addr: Option<Endpoint>,
    /// ADDR is a Python RPyC server (rpyc 6.x: `rpyc_classic`, or a
    /// `rpyc.Service` under a rpyc server), over TCP, with TLS given
    /// --tls-ca (`rpyc_classic --ssl-keyfile K --ssl-certfile C`); no
    /// token. On a classic server `modules.NAME` imports NAME there.
    #[arg(long)]
    rpyc: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
struct CallArgs {
    /// The server.
    addr: Endpoint,
    /// Attributes then a method, dotted: `add`, `notes.add`. With --dir or
    /// --get, the object or attribute to show.
    #[arg(required_unless_present = "dir")]
    path: Option<String>,
    /// The arguments, JSON literals or plain strings.
    #[arg(allow_negative_numbers = true, conflicts_with_all = ["dir", "get"])]
    args: Vec<String>,
    /// A named argument (repeatable); VALUE is read as ARGS are.
    #[arg(long = "named", value_name = "NAME=VALUE", conflicts_with_all = ["dir", "get"])]
    named: Vec<String>,
    /// List the members of the root (or of PATH) with signatures and docs.
    #[arg(long, conflicts_with = "get")]
    dir: bool,
    /// Read the attribute PATH instead of calling it.
    #[arg(long)]
    get: bool,
    /// With --dir: print the members as a JSON array.
    #[arg(long, requires = "dir")]
    json: bool,
    /// Indent the JSON result.
    #[arg(long)]
    pretty: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
struct CpArgs {
    /// What to copy: a local path or ADDR:PATH.
    src: String,
    /// Where to: a local path or ADDR:PATH.
    dst: String,
    /// No progress bar and no summary.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    client: ClientArgs,
}

/// Why a command stopped: its message (printed after `error: `) and exit
/// code.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// The operation failed: exit code 1.
    pub fn failed(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    /// Bad usage or a refusal before any work: exit code 2.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<tether::Error> for Failure {
    fn from(err: tether::Error) -> Failure {
        Failure::failed(err.to_string())
    }
}

/// What a subcommand returns.
pub type Outcome = Result<(), Failure>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        // The shell uses the blocking API, which must not run inside a
        // runtime; everything else runs in one.
        Command::Shell(args) => shell(args),
        Command::Run(args) => run::run(args),
        command => match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(async {
                match command {
                    Command::Serve(args) => serve::run(args).await,
                    Command::Call(args) => call::run(args).await,
                    Command::Cp(args) => cp::run(args).await,
                    Command::Shell(_) | Command::Run(_) => unreachable!(),
                }
            }),
            Err(err) => Err(Failure::failed(format!("cannot start a runtime: {err}"))),
        },
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// `tether shell [ADDR]`: the interactive session of [`shell`], on a
/// server or on a demo server started in-process.
fn shell(args: ShellArgs) -> Outcome {
    let finished = match &args.addr {
        None => shell::run_embedded(args.client.config()),
        Some(endpoint) if args.rpyc => {
            let session = args.client.connect_rpyc_blocking(endpoint)?;
            shell::run(shell::Peer::Rpyc(session), &endpoint.to_string())
        }
        Some(endpoint) => {
            let conn = args.client.connect_blocking(endpoint, RpycHint::Flag)?;
            shell::run(shell::Peer::Tether(conn), &endpoint.to_string())
        }
    };
    finished.map_err(|e| Failure::failed(e.to_string()))
}
