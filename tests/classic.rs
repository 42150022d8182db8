//! The classic service (`tether::classic::Classic`) served on loopback:
//! each member and its errors, a restricted view narrowing it, and the
//! refusal to listen on non-loopback addresses without an explicit opt-in
//! (checked without ever listening on one).
#![cfg(unix)]

use std::path::Path;
use std::time::Duration;

use tether::classic::{self, Classic};
use tether::{Args, Builder, Connection, ErrorKind, NetRef, RemoteFile, Value};
use tokio::io::AsyncReadExt;

struct Setup {
    conn: Connection,
    host: NetRef,
    dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<tether::Result<()>>,
}

impl Setup {
    /// The classic service on 127.0.0.1 and a client connected to it.
    async fn new() -> Setup {
        let (addr, server) = classic::serve_loopback("127.0.0.1:0").await.unwrap();
        assert!(addr.ip().is_loopback());
        let conn = tether::connect(addr).await.unwrap();
        let host = conn.root().await.unwrap();
        Setup {
            conn,
            host,
            dir: tempfile::tempdir().unwrap(),
            server,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    async fn call(&self, method: &str, args: impl tether::IntoArgs) -> Value {
        self.host
            .call_method(method, args)
            .await
            .unwrap_or_else(|err| panic!("{method}: {err:#}"))
    }

    async fn fails(&self, method: &str, args: impl tether::IntoArgs) -> tether::Error {
        match self.host.call_method(method, args).await {
            Ok(v) => panic!("{method} should fail, returned {v}"),
            Err(err) => err,
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn strs(items: &[&str]) -> Value {
    Value::List(items.iter().map(|s| Value::from(*s)).collect())
}

/// Poll (bounded) until `cond` holds; panics after 10 s so nothing hangs.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn open_writes_and_reads_files_of_the_host() {
    let s = Setup::new().await;
    let path = s.path("notes.txt");
    let file = NetRef::try_from(s.call("open", (path.as_str(), "w")).await).unwrap();
    file.call_method("write", ("one\ntwo\n",)).await.unwrap();
    file.close().await.unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");

    // Mode 'r' by default; iteration by line.
    let file = NetRef::try_from(s.call("open", (path.as_str(),)).await).unwrap();
    assert_eq!(file.getattr("mode").await.unwrap(), Value::from("r"));
    assert_eq!(
        file.iter().collect_all().await.unwrap(),
        vec![Value::from("one\n"), Value::from("two\n")]
    );

    // Binary, as a tokio stream.
    let file = NetRef::try_from(
        s.call("open", Args::new().arg(path.as_str()).named("mode", "rb"))
            .await,
    )
    .unwrap();
    let mut text = String::new();
    RemoteFile::new(file)
        .read_to_string(&mut text)
        .await
        .unwrap();
    assert_eq!(text, "one\ntwo\n");

    let err = s.fails("open", (s.path("missing.txt"),)).await;
    assert_eq!(err.type_name(), Some("FileNotFoundError"), "{err}");
    assert!(err.message().contains("missing.txt"), "{err}");
    let err = s.fails("open", (path.as_str(), "rw")).await;
    assert_eq!(err.type_name(), Some("ValueError"), "{err}");
    let err = s.fails("open", ()).await;
    assert_eq!(err.kind(), ErrorKind::BadArguments, "{err}");
}

#[tokio::test]
async fn listdir_lists_sorted_names() {
    let s = Setup::new().await;
    for name in ["b.txt", "a.txt", "c"] {
        std::fs::write(s.dir.path().join(name), "").unwrap();
    }
    std::fs::create_dir(s.dir.path().join("sub")).unwrap();
    assert_eq!(
        s.call("listdir", (s.path(""),)).await,
        strs(&["a.txt", "b.txt", "c", "sub"])
    );
    assert_eq!(s.call("listdir", (s.path("sub"),)).await, strs(&[]));

    // No argument: the serving process's current directory.
    let mut here: Vec<String> = std::fs::read_dir(".")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    here.sort();
    let here: Vec<&str> = here.iter().map(String::as_str).collect();
    assert_eq!(s.call("listdir", ()).await, strs(&here));

    let err = s.fails("listdir", (s.path("nope"),)).await;
    assert_eq!(err.type_name(), Some("FileNotFoundError"));
    assert_eq!(
        err.message(),
        format!(
            "[Errno 2] No such file or directory: {}",
            Value::from(s.path("nope"))
        )
    );
    let err = s.fails("listdir", (s.path("a.txt"),)).await;
    assert_eq!(err.type_name(), Some("NotADirectoryError"), "{err}");
    assert!(err.message().contains("a.txt"), "{err}");
}

#[tokio::test]
async fn stat_describes_files_directories_and_links() {
    let s = Setup::new().await;
    std::fs::write(s.dir.path().join("f.txt"), "12345").unwrap();
    let st = s.call("stat", (s.path("f.txt"),)).await;
    assert_eq!(st.get("size"), Some(&Value::from(5)));
    assert_eq!(st.get("is_file"), Some(&Value::from(true)));
    assert_eq!(st.get("is_dir"), Some(&Value::from(false)));
    assert_eq!(st.get("is_symlink"), Some(&Value::from(false)));
    assert_eq!(st.get("readonly"), Some(&Value::from(false)));
    let mode = st.get("mode").and_then(Value::as_int).unwrap();
    assert_eq!(mode & 0o170000, 0o100000, "a regular file: {mode:o}");
    let modified = f64::try_from(st.get("modified").cloned().unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - modified).abs() < 60.0,
        "modified {modified}, now {now}"
    );

    let st = s.call("stat", (s.path(""),)).await;
    assert_eq!(st.get("is_dir"), Some(&Value::from(true)));
    let mode = st.get("mode").and_then(Value::as_int).unwrap();
    assert_eq!(mode & 0o170000, 0o040000, "a directory: {mode:o}");

    std::os::unix::fs::symlink(s.dir.path().join("f.txt"), s.dir.path().join("link")).unwrap();
    let st = s.call("stat", (s.path("link"),)).await;
    assert_eq!(st.get("is_symlink"), Some(&Value::from(true)));
    assert_eq!(st.get("size"), Some(&Value::from(5)), "follows the link");

    let err = s.fails("stat", (s.path("nope"),)).await;
    assert_eq!(err.type_name(), Some("FileNotFoundError"));
    assert!(err.message().contains("nope"), "{err}");
}

#[tokio::test]
async fn mkdir_remove_and_rename() {
    let s = Setup::new().await;
    let dir = s.path("d");
    assert_eq!(s.call("mkdir", (dir.as_str(),)).await, Value::None);
    assert!(Path::new(&dir).is_dir());
    let err = s.fails("mkdir", (dir.as_str(),)).await;
    assert_eq!(err.type_name(), Some("FileExistsError"), "{err}");
    s.call(
        "mkdir",
        Args::new().arg(dir.as_str()).named("exist_ok", true),
    )
    .await;

    let deep = s.path("x/y/z");
    let err = s.fails("mkdir", (deep.as_str(),)).await;
    assert_eq!(err.type_name(), Some("FileNotFoundError"), "{err}");
    s.call("mkdir", (deep.as_str(), true)).await;
    assert!(Path::new(&deep).is_dir());
    let err = s
        .fails(
            "mkdir",
            Args::new().arg(deep.as_str()).named("parents", "yes"),
        )
        .await;
    assert_eq!(err.kind(), ErrorKind::BadArguments, "{err}");

    // rename a file, then a directory.
    let a = s.path("a.txt");
    std::fs::write(&a, "data").unwrap();
    let b = s.path("d/b.txt");
    s.call("rename", (a.as_str(), b.as_str())).await;
    assert!(!Path::new(&a).exists());
    assert_eq!(std::fs::read_to_string(&b).unwrap(), "data");
    let err = s.fails("rename", (a.as_str(), b.as_str())).await;
    assert_eq!(err.type_name(), Some("FileNotFoundError"), "{err}");
    assert!(
        err.message().ends_with(&format!(
            "{} -> {}",
            Value::from(a.as_str()),
            Value::from(b.as_str())
        )),
        "{err}"
    );

    // remove: a non-empty directory is refused, files and empty ones go.
    let err = s.fails("remove", (dir.as_str(),)).await;
    assert_eq!(err.type_name(), Some("OSError"), "{err}");
    assert!(err.message().contains("not empty"), "{err}");
    s.call("remove", (b.as_str(),)).await;
    s.call("remove", (dir.as_str(),)).await;
    assert!(!Path::new(&dir).exists());
    let err = s.fails("remove", (dir.as_str(),)).await;
    assert_eq!(err.type_name(), Some("FileNotFoundError"), "{err}");
    assert!(err.message().contains("'"), "names the path: {err}");
}

async fn stdout_of(process: &NetRef) -> String {
    let stdout = NetRef::try_from(process.getattr("stdout").await.unwrap()).unwrap();
    let out = stdout.call_method("read", ()).await.unwrap();
    String::from_utf8(Vec::<u8>::try_from(out).unwrap()).unwrap()
}

#[tokio::test]
async fn spawn_runs_programs_with_args_env_and_cwd() {
    let s = Setup::new().await;
    let p = NetRef::try_from(s.call("spawn", ("echo", strs(&["hello", "world"]))).await).unwrap();
    assert_eq!(stdout_of(&p).await, "hello world\n");
    assert_eq!(p.call_method("wait", ()).await.unwrap(), Value::from(0));

    // env replaces the environment; cwd sets the directory.
    let script = "echo \"$GREETING|${HOME:-unset}|$(pwd)\"; exit 7";
    let p = NetRef::try_from(
        s.call(
            "spawn",
            Args::new()
                .arg("sh")
                .arg(strs(&["-c", script]))
                .named("env", Value::map([("GREETING", "hi")]))
                .named("cwd", s.path("")),
        )
        .await,
    )
    .unwrap();
    let here = s.dir.path().canonicalize().unwrap();
    assert_eq!(
        stdout_of(&p).await,
        format!("hi|unset|{}\n", here.display())
    );
    assert_eq!(p.call_method("wait", ()).await.unwrap(), Value::from(7));

    // No args at all.
    let p = NetRef::try_from(s.call("spawn", ("true",)).await).unwrap();
    assert_eq!(p.call_method("wait", ()).await.unwrap(), Value::from(0));

    let err = s.fails("spawn", ("tether-no-such-program",)).await;
    assert_eq!(err.type_name(), Some("FileNotFoundError"), "{err}");
    assert!(err.message().contains("tether-no-such-program"), "{err}");
    let err = s
        .fails(
            "spawn",
            Args::new().arg("true").named("cwd", s.path("no-such-dir")),
        )
        .await;
    assert_eq!(err.type_name(), Some("FileNotFoundError"), "{err}");
    assert!(err.message().contains("no-such-dir"), "{err}");
    let err = s.fails("spawn", ("echo", "not a list")).await;
    assert_eq!(err.kind(), ErrorKind::BadArguments, "{err}");
}

#[tokio::test]
async fn spawned_processes_die_with_the_connection() {
    let s = Setup::new().await;
    let p = NetRef::try_from(s.call("spawn", ("sleep", strs(&["60"]))).await).unwrap();
    let pid = p.getattr("pid").await.unwrap().as_int().unwrap();
    let proc_dir = format!("/proc/{pid}");
    let alive = || {
        std::process::Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|st| st.success())
    };
    assert!(alive());
    s.conn.close().await;
    eventually("the process is killed and reaped", || !alive()).await;
    if cfg!(target_os = "linux") {
        assert!(!Path::new(&proc_dir).exists());
    }
}

#[tokio::test]
async fn environment_host_information_and_cwd() {
    let s = Setup::new().await;
    let path = std::env::var("PATH").unwrap();
    assert_eq!(
        s.call("getenv", ("PATH",)).await,
        Value::from(path.as_str())
    );
    assert_eq!(
        s.call("getenv", ("TETHER_SURELY_UNSET_VARIABLE",)).await,
        Value::None
    );
    assert_eq!(s.call("getenv", ("A=B",)).await, Value::None);
    let environ = s.call("environ", ()).await;
    assert_eq!(environ.get("PATH"), Some(&Value::from(path.as_str())));

    let cwd = std::env::current_dir().unwrap();
    let cwd = cwd.to_string_lossy();
    assert_eq!(s.call("cwd", ()).await, Value::from(cwd.as_ref()));

    let info = s.call("hostinfo", ()).await;
    assert_eq!(
        info.get("pid"),
        Some(&Value::from(i64::from(std::process::id())))
    );
    assert_eq!(info.get("os"), Some(&Value::from(std::env::consts::OS)));
    assert_eq!(info.get("arch"), Some(&Value::from(std::env::consts::ARCH)));
    assert_eq!(info.get("family"), Some(&Value::from("unix")));
    assert_eq!(info.get("cwd"), Some(&Value::from(cwd.as_ref())));
    for key in ["hostname", "user", "version"] {
        let value = info.get(key).unwrap_or_else(|| panic!("no {key}"));
        assert!(
            matches!(value, Value::Str(_) | Value::None),
            "{key}: {value}"
        );
    }
    if cfg!(target_os = "linux") {
        assert!(info.get("hostname").unwrap().as_str().is_some());
    }
    let err = s.fails("getenv", ()).await;
    assert_eq!(err.kind(), ErrorKind::BadArguments, "{err}");
}

#[tokio::test]
async fn members_are_introspectable() {
    let s = Setup::new().await;
    assert_eq!(
        s.host.dir().await.unwrap(),
        [
            "open", "listdir", "stat", "mkdir", "remove", "rename", "spawn", "getenv", "environ",
            "hostinfo", "cwd"
        ]
    );
    let members = s.host.inspect().await.unwrap();
    let spawn = members.iter().find(|m| m.name == "spawn").unwrap();
    assert_eq!(
        spawn.signature,
        "(program: str, args: list[str] = [], env: map = None, cwd: str = None) -> Process"
    );
    assert!(s.host.repr().await.unwrap().starts_with("<Classic service"));
}

#[tokio::test]
async fn a_restricted_view_is_read_only_ish() {
    let view =
        tether::restrict(&NetRef::new(Classic::new()), &["open", "listdir", "stat"]).unwrap();
    let (client, _server) =
        tether::transport::memory::pair(Builder::default(), Builder::default().root_ref(view))
            .await
            .unwrap();
    let host = client.root().await.unwrap();
    assert_eq!(host.dir().await.unwrap(), ["open", "listdir", "stat"]);

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keep.txt"), "kept").unwrap();
    let path = dir.path().join("keep.txt").to_string_lossy().into_owned();
    let listed = host
        .call_method("listdir", (dir.path().to_string_lossy().as_ref(),))
        .await
        .unwrap();
    assert_eq!(listed, strs(&["keep.txt"]));
    let st = host.call_method("stat", (path.as_str(),)).await.unwrap();
    assert_eq!(st.get("size"), Some(&Value::from(4)));
    let file = NetRef::try_from(host.call_method("open", (path.as_str(),)).await.unwrap()).unwrap();
    assert_eq!(
        file.call_method("read", ()).await.unwrap(),
        Value::from("kept")
    );

    // Everything else is denied, as if it did not exist.
    for (method, args) in [
        ("remove", Args::new().arg(path.as_str())),
        ("rename", Args::new().arg(path.as_str()).arg("elsewhere")),
        ("mkdir", Args::new().arg("newdir")),
        ("spawn", Args::new().arg("true")),
        ("getenv", Args::new().arg("PATH")),
        ("environ", Args::new()),
        ("hostinfo", Args::new()),
    ] {
        let err = host.call_method(method, args).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Denied, "{method}: {err}");
    }
    assert!(host.getattr("spawn").await.unwrap_err().is_denied());
    assert!(Path::new(&path).exists());
}

#[tokio::test]
async fn non_loopback_addresses_are_refused_without_opt_in() {
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let err = classic::serve_loopback(addr).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Denied, "{addr}: {err}");
        let message = err.to_string();
        assert!(message.contains("not a loopback address"), "{message}");
        assert!(message.contains("allow_remote(true)"), "{message}");
        let err = Classic::new().bind(addr).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Denied, "{addr}: {err}");
    }
    // Checked without binding: remote ones refused unless opted in.
    let classic = Classic::new();
    for addr in ["192.0.2.7:18812", "[2001:db8::1]:18812", "0.0.0.0:18812"] {
        let addr = addr.parse().unwrap();
        let err = classic.check_address(addr).unwrap_err();
        assert!(
            err.message().contains(&addr.to_string()),
            "names the address: {err}"
        );
        assert!(Classic::new()
            .allow_remote(true)
            .check_address(addr)
            .is_ok());
    }
    for addr in [
        "127.0.0.1:1",
        "127.1.2.3:1",
        "[::1]:1",
        "[::ffff:127.0.0.1]:1",
    ] {
        assert!(
            classic.check_address(addr.parse().unwrap()).is_ok(),
            "{addr}"
        );
    }
    assert!(!classic.remote_allowed());
    assert!(classic.allow_remote(true).remote_allowed());

    // Names are resolved and checked: localhost is loopback.
    let (addr, task) = classic::serve_loopback("localhost:0").await.unwrap();
    assert!(addr.ip().is_loopback());
    task.abort();
}

#[tokio::test]
async fn bind_and_serve_by_hand() {
    let server = Classic::new().bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let task = tokio::spawn(server.serve(Classic::new()));
    let conn = tether::connect(addr).await.unwrap();
    let host = conn.root().await.unwrap();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        host.call_method("cwd", ()).await.unwrap(),
        Value::from(cwd.to_string_lossy().as_ref())
    );
    task.abort();

    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("classic.sock");
    let server = Classic::new().bind_unix(&socket).await.unwrap();
    let task = tokio::spawn(server.serve(Classic::new()));
    let conn = Builder::default().connect_unix(&socket).await.unwrap();
    let host = conn.root().await.unwrap();
    let info = host.call_method("hostinfo", ()).await.unwrap();
    assert_eq!(
        info.get("pid"),
        Some(&Value::from(i64::from(std::process::id())))
    );
    task.abort();
}
