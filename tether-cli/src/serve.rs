//! `tether serve`: the demo or the classic service on TCP or a Unix
//! socket, until Ctrl-C (or SIGTERM), logging what happens to stderr
//! ([`log`](crate::log)).

use std::net::SocketAddr;
use std::path::Path;

use tether::classic::Classic;
use tether::{Config, NetRef, Server};

use crate::addr::DEFAULT_PORT;
use crate::demo::{self, Demo};
use crate::{Failure, Outcome, ServeArgs};

pub async fn run(args: ServeArgs) -> Outcome {
    crate::log::init(args.verbose);
    let classic = Classic::new().allow_remote(args.allow_remote);
    let (what, make_root, config) = if args.classic {
        let make_root: RootFn = Box::new(move || NetRef::new(classic));
        ("classic service", make_root, Config::default())
    } else {
        let demo = Demo::new();
        let make_root: RootFn = Box::new(move || NetRef::new(demo.clone()));
        ("demo service", make_root, demo::config())
    };
    let (what, make_root) = if args.sessions {
        // One host for all connections: a session goes on over any of them.
        let host = NetRef::new(tether::session::SessionHost::new(make_root()));
        let make_root: RootFn = Box::new(move || host.clone());
        (format!("{what} with sessions"), make_root)
    } else {
        (what.to_string(), make_root)
    };
    if args.web.is_some() && args.auth.has_tokens() {
        return Err(Failure::usage(
            "--web does not take tokens: a browser cannot send them on a WebSocket",
        ));
    }
    let web = match &args.web {
        Some(addr) => Some(bind_web(addr, &args, &classic).await?),
        None => None,
    };
    let builder = Server::builder()
        .config(config)
        .max_connections(args.max_connections);
    let (mut builder, secured) = args.auth.apply(builder)?;
    if let (Some(url), Some(service)) = (&args.nats, &args.service) {
        let registration = tether::nats::Registration::new(url, service)
            .version(env!("CARGO_PKG_VERSION"))
            .description(format!("tether {what}"));
        builder = builder.nats(registration);
    }

    let (server, shown) = if let Some(path) = &args.unix {
        clear_stale_socket(path)?;
        let server = builder.bind_unix(path).await.map_err(|e| {
            Failure::failed(format!("cannot listen on unix:{}: {e}", path.display()))
        })?;
        (server, format!("unix:{}", path.display()))
    } else {
        let addr = args
            .tcp
            .clone()
            .unwrap_or_else(|| format!("127.0.0.1:{DEFAULT_PORT}"));
        let resolved = resolve(&addr, "address", &args, &classic).await?;
        let bound = if args.classic {
            classic.bind_with(builder, &resolved[..]).await
        } else {
            builder.bind(&resolved[..]).await
        };
        let server = bound.map_err(|e| Failure::failed(format!("cannot listen on {addr}: {e}")))?;
        let bound = server.local_addr()?;
        (server, bound.to_string())
    };

    let signal = shutdown_signal();
    let stop = async {
        signal.await;
        println!("shutting down");
    };
    if secured.is_empty() {
        println!("serving {what} on {shown}");
    } else {
        println!("serving {what} with {secured} on {shown}");
    }
    if let (Some(url), Some(id)) = (&args.nats, server.nats_instance()) {
        let name = args.service.as_deref().unwrap_or_default();
        println!("registered as {name} on {url} (instance {id})");
    }
    let web = web.map(|listener| {
        let shown = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        println!("web console on http://{shown}/ (Cap'n Web at http://{shown}/capnweb)");
        let (stopped, stopping) = tokio::sync::oneshot::channel::<()>();
        let app = crate::web::app(make_root());
        let serving = tokio::spawn(tether::gateway::serve_router(
            app,
            tether::gateway::Config::default(),
            listener,
            async move {
                let _ = stopping.await;
            },
        ));
        (stopped, serving)
    });
    server.serve_fn(make_root, stop).await?;
    if let Some((stopped, serving)) = web {
        drop(stopped);
        let _ = serving.await;
    }
    Ok(())
}

/// The listener of `--web ADDR`, refused for the classic service beyond
/// loopback unless `--allow-remote`.
async fn bind_web(
    addr: &str,
    args: &ServeArgs,
    classic: &Classic,
) -> Result<tokio::net::TcpListener, Failure> {
    let resolved = resolve(addr, "--web address", args, classic).await?;
    tokio::net::TcpListener::bind(&resolved[..])
        .await
        .map_err(|e| Failure::failed(format!("cannot listen on {addr}: {e}")))
}

/// The addresses `addr` (the `what` of the command line) stands for;
/// for the classic service, only loopback ones unless `--allow-remote`.
async fn resolve(
    addr: &str,
    what: &str,
    args: &ServeArgs,
    classic: &Classic,
) -> Result<Vec<SocketAddr>, Failure> {
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| Failure::usage(format!("bad {what} {addr}: {e}")))?
        .collect();
    if args.classic {
        if let Some(open) = resolved
            .iter()
            .find(|a| classic.check_address(**a).is_err())
        {
            return Err(Failure::usage(format!(
                "refusing to serve the classic service on {open}, which is not a loopback \
                 address: whoever connects controls this host. Pass --allow-remote to do \
                 it anyway."
            )));
        }
    }
    Ok(resolved)
}

type RootFn = Box<dyn Fn() -> NetRef + Send + Sync>;

/// A socket file left by a server that was killed: remove it, but only
/// when nothing answers on it. Anything else at `path` is an error.
fn clear_stale_socket(path: &Path) -> Outcome {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return Ok(());
        };
        if !meta.file_type().is_socket() {
            return Err(Failure::usage(format!(
                "{} exists and is not a socket",
                path.display()
            )));
        }
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => Err(Failure::failed(format!(
                "a server is already listening on unix:{}",
                path.display()
            ))),
            Err(_) => std::fs::remove_file(path).map_err(|e| {
                Failure::failed(format!("cannot remove the stale {}: {e}", path.display()))
            }),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Ctrl-C, or on Unix SIGTERM too. The handlers are installed now, before
/// the caller announces it is serving, so a signal sent right after that
/// line is caught rather than killing the process.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        if let (Some(mut int), Some(mut term)) = signals {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
