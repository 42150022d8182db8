//! `tether run FILE [ADDR]`: run a Python file with `root` bound to a
//! peer's root object (none: an embedded demo server), as the shell would.
//!
//! Exit codes: 0 when the file ran to its end; 1 when it raised an
//! exception nothing caught (the peer's error and its remote trace, or
//! Python's traceback, on stderr) or does not parse; 2 for bad usage.

use std::path::PathBuf;

use clap::Args;

use crate::addr::Endpoint;
use crate::client::{ClientArgs, RpycHint};
use crate::demo::{self, Demo};
use crate::lang::{Engine, Failure as LangFailure};
use crate::{Failure, Outcome};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The Python file to run.
    file: PathBuf,
    /// The server: HOST:PORT, PORT or unix:PATH (none: an embedded demo
    /// server).
    addr: Option<Endpoint>,
    /// The server is a Python RPyC server (HOST:PORT).
    #[arg(long, requires = "addr")]
    rpyc: bool,
    #[command(flatten)]
    client: ClientArgs,
}

/// Run the file; blocking (the interpreter runs on this thread, the
/// connection on a runtime of its own).
pub fn run(args: RunArgs) -> Outcome {
    let source = std::fs::read_to_string(&args.file)
        .map_err(|e| Failure::failed(format!("cannot read {}: {e}", args.file.display())))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tether-run")
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("cannot start a runtime: {e}")))?;
    let (root, _connection) = rt.block_on(connect(&args))?;
    let engine = Engine::new(rt.handle().clone(), root);
    let name = args.file.display().to_string();
    let outcome = match engine.run(&source, &name) {
        Ok(()) => Ok(()),
        Err(LangFailure::Syntax(message) | LangFailure::Raised(message)) => {
            Err(Failure::failed(message))
        }
    };
    drop(engine);
    rt.shutdown_background();
    outcome
}

/// What keeps a connection open.
type Keep = Box<dyn std::any::Any>;

/// The root object of the server `args` names, or of a demo server
/// started on this runtime, and its connection.
async fn connect(args: &RunArgs) -> Result<(tether::NetRef, Keep), Failure> {
    let Some(endpoint) = &args.addr else {
        let addr = demo::serve_on_loopback(Demo::new())
            .await
            .map_err(|e| Failure::failed(format!("cannot start the demo server: {e}")))?;
        let builder = tether::Builder::default().config(args.client.config());
        let conn = builder.connect(addr).await?;
        return Ok((conn.root().await?, Box::new(conn)));
    };
    if args.rpyc {
        let session = args.client.connect_rpyc(endpoint).await?;
        return Ok((session.root().await?, Box::new(session)));
    }
    let conn = args.client.connect(endpoint, RpycHint::Flag).await?;
    Ok((conn.root().await?, Box::new(conn)))
}
