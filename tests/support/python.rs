//! A Python virtual environment for tests that drive tether from real Python
//! programs (xmlrpc.client, jsonrpclib, rpyc).
//!
//! The first test that calls [`python`] creates `python-venv` in the build
//! directory's scratch space (`target/tmp`, see [`scratch`]) and installs
//! `tests/python/requirements.txt` into it with pip; later calls, in this
//! process or another test binary, reuse it. A file lock keeps two test
//! binaries from building it at once, and a stamp holding the requirements
//! text makes a changed requirements file reinstall. Nothing is installed
//! outside the build directory.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const REQUIREMENTS: &str = include_str!("../python/requirements.txt");

/// The Python interpreter of the test environment, created on first use.
///
/// Panics with pip's output when the environment cannot be made: a test
/// that needs Python cannot run without it.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let dir = scratch().join("python-venv");
        fs::create_dir_all(dir.parent().unwrap()).unwrap();
        let lock = File::create(dir.with_extension("lock")).unwrap();
        lock.lock().expect("lock the Python environment");
        let stamp = dir.join("tether-requirements.txt");
        let python = dir.join("bin").join("python");
        if fs::read_to_string(&stamp).ok().as_deref() != Some(REQUIREMENTS) {
            let base = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
            run(Command::new(&base)
                .args(["-m", "venv", "--clear"])
                .arg(&dir));
            let requirements = dir.join("requirements.txt");
            fs::write(&requirements, REQUIREMENTS).unwrap();
            run(Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                ])
                .arg(&requirements));
            fs::write(&stamp, REQUIREMENTS).unwrap();
        }
        python
    })
}

/// The build directory's scratch space, `target/tmp`.
///
/// Cargo names it (`CARGO_TARGET_TMPDIR`) only to integration tests and
/// benches, which get exactly that. A binary that includes this file
/// (tether-bench, with `#[path]`) gets the one of the target directory it
/// was built into: the nearest ancestor of its executable holding cargo's
/// `CACHEDIR.TAG` (`target/release/tether-bench` → `target/tmp`), else
/// the `CARGO_TARGET_DIR` it was built with (if absolute), else `target`
/// beside the workspace's `Cargo.lock` above its manifest.
pub fn scratch() -> PathBuf {
    if let Some(dir) = option_env!("CARGO_TARGET_TMPDIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().ok();
    let built_in = exe
        .iter()
        .flat_map(|exe| exe.ancestors().skip(1))
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf);
    let target = built_in.unwrap_or_else(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        match option_env!("CARGO_TARGET_DIR").map(Path::new) {
            Some(dir) if dir.is_absolute() => dir.to_path_buf(),
            _ => manifest
                .ancestors()
                .find(|dir| dir.join("Cargo.lock").is_file())
                .unwrap_or(manifest)
                .join("target"),
        }
    });
    target.join("tmp")
}

/// The command line of the stock `rpyc_classic` server serving one
/// client on a free loopback port, with `options` added; it prints the
/// port on a line [`rpyc_classic_port`] reads.
pub fn rpyc_classic(options: &[&str]) -> Vec<String> {
    let classic = python().parent().unwrap().join("rpyc_classic");
    let mut args = vec![classic.to_str().unwrap().to_string()];
    args.extend(
        [
            "--mode",
            "oneshot",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "-q",
        ]
        .iter()
        .chain(options)
        .map(|a| a.to_string()),
    );
    args
}

/// The port on `rpyc_classic`'s `HOST<tab>PORT` line.
pub fn rpyc_classic_port(line: &str) -> Option<u16> {
    line.split('\t').nth(1).and_then(|p| p.trim().parse().ok())
}

/// The path of a script under `tests/python/`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("python")
        .join(name)
}

/// Runs `tests/python/{name}` with `args` in the test environment and
/// returns its output; panics with stdout and stderr unless it exits 0.
///
/// Run it from async tests with `tokio::task::spawn_blocking`, so the
/// tether side keeps serving while Python waits on it.
pub fn run_script(name: &str, args: &[&str]) -> Output {
    let mut command = Command::new(python());
    command.arg(script(name)).args(args);
    run(&mut command)
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("cannot start {command:?}: {err}"));
    if !output.status.success() {
        panic!(
            "{command:?} failed with {}\n--- stdout\n{}\n--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}
