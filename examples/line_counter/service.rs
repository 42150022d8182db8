//! The service of the source document's RPyC example, shared by
//! `line_counter_server` and `tests/line_counter.rs`.
//!
//! ```python
//! class LineCounterService(rpyc.Service):
//!     def exposed_line_counter(self, fileobj, function):
//!         for linenum, line in enumerate(fileobj.readlines()):
//!             function(line)
//!         return linenum + 1
//! ```

use tether::{ErrorKind, NetRef, Result, Value};

/// Counts the lines of a file object that lives on the *client*, calling
/// the client's callback once per line.
#[derive(Clone, Debug, Default)]
pub struct LineCounterService;

#[tether::expose]
impl LineCounterService {
    /// Call function(line) for each line of fileobj (iterated, or read with
    /// readline until '') and return the number of lines.
    #[method]
    async fn line_counter(&self, fileobj: NetRef, function: NetRef) -> Result<i64> {
        line_counter(&fileobj, &function).await
    }
}

/// Iterate `fileobj` (batched: a few round trips for the whole file) and
/// call `function(line)` per line; fall back to `readline()` until `''` for
/// file objects that are not iterable.
pub async fn line_counter(fileobj: &NetRef, function: &NetRef) -> Result<i64> {
    let mut count = 0;
    let mut lines = fileobj.iter();
    while let Some(line) = lines.next().await {
        let line = match line {
            Ok(line) => line,
            Err(err) if count == 0 && err.kind() == ErrorKind::Unsupported => {
                return count_by_readline(fileobj, function).await;
            }
            Err(err) => return Err(err),
        };
        function.call((line,)).await?;
        count += 1;
    }
    Ok(count)
}

async fn count_by_readline(fileobj: &NetRef, function: &NetRef) -> Result<i64> {
    let mut count = 0;
    loop {
        let line = fileobj.call_method("readline", ()).await?;
        if line == Value::from("") || line == Value::Bytes(Default::default()) {
            return Ok(count);
        }
        function.call((line,)).await?;
        count += 1;
    }
}
