//! JavaScript for tests that drive tether from the real npm packages
//! (capnweb in Node and in headless Chromium).
//!
//! The first test that calls [`node_modules`] runs `npm ci` in `tests/js`,
//! which installs exactly what `tests/js/package-lock.json` names into
//! `tests/js/node_modules` (ignored by git); later calls, in this process
//! or another test binary, reuse it. A file lock keeps two test binaries
//! from installing at once, and a stamp holding the lockfile's text makes
//! a changed lockfile reinstall.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

const LOCKFILE: &str = include_str!("../js/package-lock.json");

/// `tests/js` of the workspace, where the scripts and their packages are
/// (found from any of its crates).
pub fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("tests").join("js"))
        .find(|dir| dir.join("package.json").is_file())
        .expect("tests/js/package.json in the workspace")
}

/// `tests/js/node_modules`, installed on first use.
///
/// Panics with npm's output when it cannot be installed: a test that
/// needs the packages cannot run without them.
pub fn node_modules() -> &'static Path {
    static MODULES: OnceLock<PathBuf> = OnceLock::new();
    MODULES.get_or_init(|| {
        let dir = js_dir();
        let modules = dir.join("node_modules");
        let scratch = super::python::scratch();
        fs::create_dir_all(&scratch).unwrap();
        let lock =
            File::create(scratch.join("node-modules.lock")).expect("create the npm lock file");
        lock.lock().expect("lock the npm install");
        let stamp = modules.join(".tether-lockfile");
        if fs::read_to_string(&stamp).ok().as_deref() != Some(LOCKFILE) {
            let output = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .stdin(Stdio::null())
                .output()
                .expect("run npm (Node.js and npm must be installed)");
            assert!(
                output.status.success(),
                "npm ci failed:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            fs::write(&stamp, LOCKFILE).unwrap();
        }
        modules
    })
}

/// A `node` command running `script` (a file in `tests/js`), its packages
/// installed.
pub fn node(script: &str) -> tokio::process::Command {
    node_modules();
    let mut command = tokio::process::Command::new("node");
    command
        .arg(js_dir().join(script))
        .current_dir(js_dir())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}
