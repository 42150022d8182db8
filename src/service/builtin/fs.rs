//! Directory listing and file metadata, as Python's `os` module offers
//! them: `listdir`, `stat`, `mkdir`, `remove`, `rename`. The classic
//! service ([`crate::classic`]) serves them; they are plain async
//! functions returning [`Value`]s, so any service can reuse them.
//!
//! Each runs its `std::fs` calls as one task on tokio's blocking pool, as
//! [`LocalFile`](crate::LocalFile) does. Errors carry Python's exception
//! names and the path: `FileNotFoundError: [Errno 2] No such file or
//! directory: '/tmp/x'` (see [`os_error`]).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Error, Result, Value};

/// The names in directory `path` (not `.` and `..`), sorted. Names that are
/// not UTF-8 are shown with U+FFFD in place of the bad bytes.
pub(crate) async fn listdir(path: String) -> Result<Value> {
    let shown = path.clone();
    blocking(move || {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&path)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort_unstable();
        Ok(Value::List(names.into_iter().map(Value::Str).collect()))
    })
    .await
    .map_err(|e| os_error(e, &shown))
}

/// Metadata of `path`, following symbolic links (as Python's `os.stat`):
/// a map of `size` (bytes), `modified` and `accessed` (Unix seconds, as
/// floats), `is_file`, `is_dir`, `is_symlink` (whether `path` itself is a
/// link), `readonly` and `mode` (the Unix `st_mode`: type and permission
/// bits; on other systems 0o444 or 0o666 with the type bits).
pub(crate) async fn stat(path: String) -> Result<Value> {
    let shown = path.clone();
    blocking(move || {
        let meta = std::fs::metadata(&path)?;
        let is_symlink = std::fs::symlink_metadata(&path)?.file_type().is_symlink();
        Ok(Value::map([
            ("size", int(meta.len())),
            ("modified", Value::from(unix_seconds(meta.modified()?))),
            ("accessed", Value::from(unix_seconds(meta.accessed()?))),
            ("is_file", Value::from(meta.is_file())),
            ("is_dir", Value::from(meta.is_dir())),
            ("is_symlink", Value::from(is_symlink)),
            ("readonly", Value::from(meta.permissions().readonly())),
            ("mode", Value::Int(mode_bits(&meta))),
        ]))
    })
    .await
    .map_err(|e| os_error(e, &shown))
}

/// Create directory `path`. With `parents`, missing parents are created
/// too (pathlib's `mkdir(parents=True)`); with `exist_ok`, an existing
/// directory is not an error (a file in its place still is).
pub(crate) async fn mkdir(path: String, parents: bool, exist_ok: bool) -> Result<Value> {
    let shown = path.clone();
    blocking(move || {
        let path = PathBuf::from(path);
        if parents {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
        }
        match std::fs::create_dir(&path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && exist_ok && path.is_dir() => {
                Ok(Value::None)
            }
            other => other.map(|()| Value::None),
        }
    })
    .await
    .map_err(|e| os_error(e, &shown))
}

/// Remove a file, a symbolic link (not what it points to) or an empty
/// directory. A directory with entries fails with `OSError: [Errno 39]
/// Directory not empty` (the errno is the OS's).
pub(crate) async fn remove(path: String) -> Result<Value> {
    let shown = path.clone();
    blocking(move || {
        if std::fs::symlink_metadata(&path)?.is_dir() {
            std::fs::remove_dir(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
        Ok(Value::None)
    })
    .await
    .map_err(|e| os_error(e, &shown))
}

/// Rename (move) `src` to `dst`, replacing a file at `dst` (as
/// `os.replace` does on every system). The error names both paths.
pub(crate) async fn rename(src: String, dst: String) -> Result<Value> {
    let shown = format!(
        "{} -> {}",
        Value::from(src.as_str()),
        Value::from(dst.as_str())
    );
    blocking(move || std::fs::rename(&src, &dst).map(|()| Value::None))
        .await
        .map_err(|e| os_error_text(e, &shown))
}

/// The current directory of this process.
pub(crate) fn cwd() -> Result<String> {
    std::env::current_dir()
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| os_error_text(e, "current directory"))
}

/// Run blocking file-system calls on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(format!("did not complete: {e}"))))
}

fn int(n: u64) -> Value {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Seconds since the Unix epoch (negative before it).
fn unix_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    }
}

#[cfg(unix)]
fn mode_bits(meta: &std::fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    i64::from(meta.mode())
}

#[cfg(not(unix))]
fn mode_bits(meta: &std::fs::Metadata) -> i64 {
    let kind = if meta.is_dir() { 0o040000 } else { 0o100000 };
    let perm = if meta.permissions().readonly() {
        0o444
    } else {
        0o666
    };
    kind | perm
}

/// An I/O error as Python names it, with the path in the message:
/// `FileNotFoundError: [Errno 2] No such file or directory: 'x.txt'`.
pub(crate) fn os_error(err: io::Error, path: impl AsRef<Path>) -> Error {
    let path = path.as_ref().to_string_lossy();
    os_error_text(err, &Value::from(path.as_ref()).to_string())
}

/// As [`os_error`], with `what` (already quoted) after the colon.
pub(crate) fn os_error_text(err: io::Error, what: &str) -> Error {
    let type_name = match err.kind() {
        io::ErrorKind::NotFound => "FileNotFoundError",
        io::ErrorKind::PermissionDenied => "PermissionError",
        io::ErrorKind::IsADirectory => "IsADirectoryError",
        io::ErrorKind::NotADirectory => "NotADirectoryError",
        io::ErrorKind::AlreadyExists => "FileExistsError",
        io::ErrorKind::BrokenPipe => "BrokenPipeError",
        io::ErrorKind::ConnectionReset => "ConnectionResetError",
        io::ErrorKind::TimedOut => "TimeoutError",
        _ => "OSError",
    };
    let text = err.to_string();
    let message = match err.raw_os_error() {
        Some(code) => {
            let text = text.trim_end_matches(&format!(" (os error {code})"));
            format!("[Errno {code}] {text}: {what}")
        }
        None => format!("{text}: {what}"),
    };
    Error::app(type_name, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(p: &Path) -> String {
        p.to_string_lossy().into_owned()
    }

    #[tokio::test]
    async fn listdir_is_sorted_and_missing_dirs_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b", "a", "c"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        assert_eq!(
            listdir(s(dir.path())).await.unwrap(),
            Value::from(vec![Value::from("a"), Value::from("b"), Value::from("c")])
        );
        let missing = dir.path().join("nope");
        let err = listdir(s(&missing)).await.unwrap_err();
        assert_eq!(err.type_name(), Some("FileNotFoundError"));
        assert!(err.message().contains("nope"), "{err}");
        let err = listdir(s(&dir.path().join("a"))).await.unwrap_err();
        assert_eq!(err.type_name(), Some("NotADirectoryError"), "{err}");
    }

    #[tokio::test]
    async fn mkdir_parents_and_exist_ok() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("x/y/z");
        let err = mkdir(s(&deep), false, false).await.unwrap_err();
        assert_eq!(err.type_name(), Some("FileNotFoundError"));
        mkdir(s(&deep), true, false).await.unwrap();
        assert!(deep.is_dir());
        let err = mkdir(s(&deep), true, false).await.unwrap_err();
        assert_eq!(err.type_name(), Some("FileExistsError"));
        mkdir(s(&deep), true, true).await.unwrap();
        std::fs::write(dir.path().join("f"), "").unwrap();
        let err = mkdir(s(&dir.path().join("f")), false, true)
            .await
            .unwrap_err();
        assert_eq!(err.type_name(), Some("FileExistsError"));
    }
}
