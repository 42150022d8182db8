//! Arbitrary bytes as everything a client sends to a server: the handshake
//! (with a token challenge for inputs of odd length) and, when the bytes
//! happen to start with a valid hello, the frames after it. The server side
//! must end with Ok or Err, never panic or hang.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        let (mut client, server_end) = tokio::io::duplex(64 * 1024);
        let config = tether::Config::default()
            .handshake_timeout(Duration::from_millis(50))
            .call_timeout(Duration::from_millis(50))
            .max_frame_len(64 * 1024);
        // Inputs of odd length meet a server that requires a token, so the
        // challenge and the parsing of the proof are fuzzed too.
        let mut server = tether::Builder::default().config(config);
        if data.len() % 2 == 1 {
            let tokens = tether::Tokens::new().with("fuzz", "fuzz-secret").expect("a token");
            server = server.tokens(tokens);
        }
        let server = server.accept_io(server_end, None);
        let client = async move {
            // Send everything, then end our side of the stream and drain the
            // server's answers until it closes.
            let _ = client.write_all(data).await;
            let _ = client.shutdown().await;
            let mut sink = Vec::new();
            let _ = client.read_to_end(&mut sink).await;
        };
        let serve = async move {
            // The handshake passed: the rest of the input went to the
            // connection's reader, which must end at the end of the stream
            // (the bound below turns a connection that never does into a
            // crash).
            if let Ok(conn) = server.await {
                conn.closed().await;
            }
        };
        let done = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(client, serve);
        })
        .await;
        assert!(
            done.is_ok(),
            "the server hung on {} input bytes",
            data.len()
        );
    });
});
