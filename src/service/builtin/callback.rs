//! Closures as objects: what a client passes so a server can call it back.

use std::future::Future;
use std::marker::PhantomData;

use crate::netref::NetRef;
use crate::service::object::{BoxFuture, CallContext, Object};
use crate::{Args, FromArgs, Result, Value};

/// Turn an async closure into an object a peer can call.
///
/// The closure takes its arguments as one [`FromArgs`] value: a single type
/// for one argument (`|line: String|`), a tuple for several, or [`Args`] for
/// everything as sent. Arguments of the wrong count or type fail on the
/// caller's side with [`ErrorKind::BadArguments`](crate::ErrorKind).
///
/// The callback runs whenever the peer calls it, including while this
/// side's own call to that peer is still pending, at any nesting depth.
///
/// ```
/// let noisy = tether::callback(|line: String| async move {
///     println!("Noisy: {line:?}");
///     Ok(())
/// });
/// assert!(noisy.is_local());
/// ```
pub fn callback<F, A, Fut, R>(f: F) -> NetRef
where
    F: Fn(A) -> Fut + Send + Sync + 'static,
    A: FromArgs + Send + 'static,
    Fut: Future<Output = Result<R>> + Send + 'static,
    R: Into<Value> + 'static,
{
    NetRef::new(AsyncCallback {
        f,
        _args: PhantomData,
    })
}

/// Turn a plain closure into an object a peer can call; like [`callback`]
/// for code that does not await. It runs on the runtime's worker thread, so
/// keep it short.
///
/// ```
/// let double = tether::callback_sync(|n: i64| Ok(n * 2));
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// assert_eq!(double.call((21,)).await.unwrap(), tether::Value::Int(42));
/// # });
/// ```
pub fn callback_sync<F, A, R>(f: F) -> NetRef
where
    F: Fn(A) -> Result<R> + Send + Sync + 'static,
    A: FromArgs + Send + 'static,
    R: Into<Value> + 'static,
{
    NetRef::new(SyncCallback {
        f,
        _args: PhantomData,
    })
}

struct AsyncCallback<F, A> {
    f: F,
    _args: PhantomData<fn(A)>,
}

impl<F, A, Fut, R> Object for AsyncCallback<F, A>
where
    F: Fn(A) -> Fut + Send + Sync + 'static,
    A: FromArgs + Send + 'static,
    Fut: Future<Output = Result<R>> + Send + 'static,
    R: Into<Value> + 'static,
{
    fn type_name(&self) -> &str {
        "callback"
    }

    fn call<'a>(&'a self, args: Args, _cx: &'a CallContext) -> BoxFuture<'a, Result<Value>> {
        let parsed = args.parse::<A>();
        Box::pin(async move { Ok((self.f)(parsed?).await?.into()) })
    }
}

struct SyncCallback<F, A> {
    f: F,
    _args: PhantomData<fn(A)>,
}

impl<F, A, R> Object for SyncCallback<F, A>
where
    F: Fn(A) -> Result<R> + Send + Sync + 'static,
    A: FromArgs + Send + 'static,
    R: Into<Value> + 'static,
{
    fn type_name(&self) -> &str {
        "callback"
    }

    fn call<'a>(&'a self, args: Args, _cx: &'a CallContext) -> BoxFuture<'a, Result<Value>> {
        let result = args.parse::<A>().and_then(|a| (self.f)(a)).map(Into::into);
        Box::pin(async move { result })
    }
}
