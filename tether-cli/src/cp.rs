//! `tether cp`: copy one file to or from a server through the classic
//! service's `open(path, mode)`, as a [`RemoteFile`] byte stream.
//!
//! - Both directions open the remote file in binary mode (`rb` to read,
//!   `xb` or `wb` to write) and move it with `tokio::io::copy_buf`, 1 MiB
//!   per round trip.
//! - Both directions write a new file beside the destination (a hidden
//!   `.NAME.tether-cp-...`) and rename it over the destination once it is
//!   complete and checked, so a failed copy leaves no partial file, an
//!   existing destination is replaced only by a complete copy, and copying
//!   a file onto itself (a server on this host) cannot truncate it first.
//!   Uploads need the classic service's `rename` for that; with a service
//!   that offers only `open`, the destination is written in place. A
//!   service without `open` is refused before anything is copied, with a
//!   pointer to `tether serve --classic`.
//!   A replaced local file keeps its permissions; a replaced remote one
//!   gets the server's defaults (the classic service has no chmod).
//! - A local directory, a remote path ending in `/`, or (with the classic
//!   service's `stat`) a remote directory receives a file of the source's
//!   name.
//! - After copying, the sizes at both ends must equal the bytes copied;
//!   otherwise the command fails.
//! - The progress bar (on stderr) shows only when stdout is a terminal and
//!   `--quiet` is not given.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tether::{NetRef, RemoteFile};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};

use crate::addr::{Endpoint, Location};
use crate::client::RpycHint;
use crate::{CpArgs, Failure, Outcome};

/// Bytes per remote read or write.
const CHUNK: usize = 1 << 20;

pub async fn run(args: CpArgs) -> Outcome {
    let copied = match (Location::parse(&args.src), Location::parse(&args.dst)) {
        (Location::Remote(endpoint, path), Location::Local(local)) => {
            download(&args, &endpoint, &path, &local).await?
        }
        (Location::Local(local), Location::Remote(endpoint, path)) => {
            upload(&args, &local, &endpoint, &path).await?
        }
        (Location::Remote(..), Location::Remote(..)) => {
            return Err(Failure::usage(
                "both SRC and DST are on a server; one of them must be a local path",
            ))
        }
        (Location::Local(_), Location::Local(_)) => {
            return Err(Failure::usage(
                "neither SRC nor DST is on a server: write one as ADDR:PATH \
                 (HOST:PORT:PATH, PORT:/PATH or unix:SOCKET:PATH)",
            ))
        }
    };
    if !args.quiet {
        println!("copied {copied} bytes");
    }
    Ok(())
}

async fn download(
    args: &CpArgs,
    endpoint: &Endpoint,
    path: &str,
    local: &Path,
) -> Result<u64, Failure> {
    let target = if local.is_dir() {
        local.join(remote_file_name(path)?)
    } else {
        local.to_path_buf()
    };
    let (_conn, root, _) = connect(endpoint, args).await?;
    let file = open(&root, endpoint, path, "rb").await?;
    let size = remote_size(&file).await?;

    let temp = TempFile::beside(&target)?;
    let out = temp.create().await?;
    let bar = progress_bar(size, args.quiet);
    let mut reader = RemoteFile::new(file).with_read_ahead(CHUNK);
    let mut writer = Counted::new(out, bar.clone());
    let copied = tokio::io::copy_buf(&mut reader, &mut writer)
        .await
        .map_err(|e| Failure::failed(format!("copying {endpoint}:{path}: {e}")))?;
    writer
        .flush()
        .await
        .map_err(|e| temp.failed("cannot write", e))?;
    bar.finish_and_clear();
    let remote_now = remote_size(reader.netref()).await?;
    let _ = reader.netref().close().await;

    let local_len = tokio::fs::metadata(&temp.path)
        .await
        .map_err(|e| temp.failed("cannot read back", e))?
        .len();
    check_sizes(copied, local_len, remote_now)?;
    temp.persist()?;
    Ok(copied)
}

async fn upload(
    args: &CpArgs,
    local: &Path,
    endpoint: &Endpoint,
    path: &str,
) -> Result<u64, Failure> {
    let source = tokio::fs::File::open(local)
        .await
        .map_err(|e| Failure::failed(format!("cannot open {}: {e}", local.display())))?;
    let meta = source
        .metadata()
        .await
        .map_err(|e| Failure::failed(format!("{}: {e}", local.display())))?;
    if meta.is_dir() {
        return Err(Failure::failed(format!(
            "{} is a directory; tether cp copies one file",
            local.display()
        )));
    }
    let name = local
        .file_name()
        .ok_or_else(|| Failure::usage(format!("{} has no file name", local.display())))?
        .to_string_lossy()
        .into_owned();

    let (_conn, root, members) = connect(endpoint, args).await?;
    let offers = |member: &str| members.iter().any(|m| m == member);
    let target = if path.ends_with('/') {
        format!("{path}{name}")
    } else if offers("stat") && remote_is_dir(&root, path).await {
        format!("{path}/{name}")
    } else {
        path.to_string()
    };
    if !offers("rename") {
        // A service with `open` only: write the destination in place.
        let file = open(&root, endpoint, &target, "wb").await?;
        return send(args, source, meta.len(), file, endpoint, &target, local).await;
    }
    // Write a new file beside the destination, then rename it over.
    let temp = temp_name(&target);
    let file = root
        .call_method("open", (temp.as_str(), "xb"))
        .await
        .and_then(NetRef::try_from)
        .map_err(|e| Failure::failed(format!("cannot write {endpoint}:{target}: {e}")))?;
    let sent = send(args, source, meta.len(), file, endpoint, &target, local).await;
    let renamed = match sent {
        Ok(copied) => root
            .call_method("rename", (temp.as_str(), target.as_str()))
            .await
            .map(|_| copied)
            .map_err(|e| Failure::failed(format!("{endpoint}:{target}: {e}"))),
        Err(failure) => Err(failure),
    };
    if renamed.is_err() {
        let _ = root.call_method("remove", (temp.as_str(),)).await;
    }
    renamed
}

/// Copy `source` into the remote `file`, close it, and check the sizes.
async fn send(
    args: &CpArgs,
    source: tokio::fs::File,
    len: u64,
    file: NetRef,
    endpoint: &Endpoint,
    target: &str,
    local: &Path,
) -> Result<u64, Failure> {
    let bar = progress_bar(len, args.quiet);
    let mut reader = BufReader::with_capacity(CHUNK, Counted::new(source, bar.clone()));
    let mut writer = RemoteFile::new(file).with_write_behind(CHUNK);
    let failed =
        |e: std::io::Error| Failure::failed(format!("copying to {endpoint}:{target}: {e}"));
    let copied = tokio::io::copy_buf(&mut reader, &mut writer)
        .await
        .map_err(failed)?;
    writer.flush().await.map_err(failed)?;
    bar.finish_and_clear();
    let remote_len = remote_size(writer.netref()).await?;
    writer.shutdown().await.map_err(failed)?;
    let local_now = tokio::fs::metadata(local)
        .await
        .map_err(|e| Failure::failed(format!("{}: {e}", local.display())))?
        .len();
    check_sizes(copied, local_now, remote_len)?;
    if copied != len {
        return Err(Failure::failed(format!(
            "{} had {len} bytes when the copy started and {copied} were copied",
            local.display()
        )));
    }
    Ok(copied)
}

/// Whether `path` is a directory on the server (false when it does not
/// exist or cannot be examined).
async fn remote_is_dir(root: &NetRef, path: &str) -> bool {
    match root.call_method("stat", (path,)).await {
        Ok(stat) => stat.get("is_dir") == Some(&tether::Value::from(true)),
        Err(_) => false,
    }
}

/// A name beside remote `target` for the file being uploaded.
fn temp_name(target: &str) -> String {
    let (dir, name) = match target.rsplit_once('/') {
        Some((dir, name)) => (format!("{dir}/"), name),
        None => (String::new(), target),
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{dir}.{name}.tether-cp-{}-{nanos:x}", std::process::id())
}

/// Connect to the server, which must offer `open`: its connection, root
/// object and the root's members.
async fn connect(
    endpoint: &Endpoint,
    args: &CpArgs,
) -> Result<(tether::Connection, NetRef, Vec<String>), Failure> {
    let conn = args.client.connect(endpoint, RpycHint::Shell).await?;
    let root = conn.root().await?;
    let members = root.dir().await?;
    if !members.iter().any(|m| m == "open") {
        return Err(Failure::failed(format!(
            "{endpoint} serves no files: its service ({}) has no open(); \
             tether cp needs a server started with tether serve --classic",
            conn.peer_service()
        )));
    }
    Ok((conn, root, members))
}

async fn open(
    root: &NetRef,
    endpoint: &Endpoint,
    path: &str,
    mode: &str,
) -> Result<NetRef, Failure> {
    let opened = root
        .call_method("open", (path, mode))
        .await
        .and_then(NetRef::try_from);
    opened.map_err(|e| Failure::failed(format!("{endpoint}:{path}: {e}")))
}

async fn remote_size(file: &NetRef) -> Result<u64, Failure> {
    let meta = file.call_method("metadata", ()).await?;
    meta.get("size")
        .and_then(|v| v.as_int())
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| Failure::failed(format!("the server's metadata() has no size: {meta}")))
}

/// The last name of a remote path, for a download into a directory.
fn remote_file_name(path: &str) -> Result<&str, Failure> {
    match path.rsplit('/').next() {
        Some(name) if !name.is_empty() && name != "." && name != ".." => Ok(name),
        _ => Err(Failure::usage(format!(
            "{path:?} names no file to copy into a directory"
        ))),
    }
}

fn check_sizes(copied: u64, local: u64, remote: u64) -> Outcome {
    if copied == local && copied == remote {
        Ok(())
    } else {
        Err(Failure::failed(format!(
            "sizes differ after copying {copied} bytes: {local} here, {remote} on the server \
             (did the file change during the copy?)"
        )))
    }
}

fn progress_bar(len: u64, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{bytes:>10}/{total_bytes:<10} [{wide_bar}] {binary_bytes_per_sec:>12} {eta:>4}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// A file in the destination's directory that becomes the destination when
/// persisted, and is removed if dropped before. Its failures name the
/// destination, the path the user gave: the file is ours.
struct TempFile {
    path: PathBuf,
    target: PathBuf,
    keep: bool,
}

impl TempFile {
    fn beside(target: &Path) -> Result<TempFile, Failure> {
        let name = target
            .file_name()
            .ok_or_else(|| Failure::usage(format!("{} has no file name", target.display())))?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".tether-cp-{}", std::process::id()));
        Ok(TempFile {
            path: target.with_file_name(temp_name),
            target: target.to_path_buf(),
            keep: false,
        })
    }

    /// Create the file.
    async fn create(&self) -> Result<tokio::fs::File, Failure> {
        tokio::fs::File::create(&self.path)
            .await
            .map_err(|e| self.failed("cannot write", e))
    }

    /// A failure to `what` the destination, for `err`.
    fn failed(&self, what: &str, err: std::io::Error) -> Failure {
        Failure::failed(format!("{what} {}: {err}", self.target.display()))
    }

    /// Rename over the destination, keeping its permissions if it existed.
    fn persist(mut self) -> Outcome {
        if let Ok(meta) = std::fs::metadata(&self.target) {
            let _ = std::fs::set_permissions(&self.path, meta.permissions());
        }
        std::fs::rename(&self.path, &self.target).map_err(|e| self.failed("cannot replace", e))?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A reader or writer that advances a progress bar by the bytes through it.
struct Counted<T> {
    inner: T,
    bar: ProgressBar,
}

impl<T> Counted<T> {
    fn new(inner: T, bar: ProgressBar) -> Counted<T> {
        Counted { inner, bar }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.bar.inc((buf.filled().len() - before) as u64);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.bar.inc(n as u64);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
