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

/// A typed reference to a callable taking one `A` and returning an `R`,
/// for service signatures: `noisy: Callback<String>` on both sides.
///
/// The side that passes a closure wraps it with [`Callback::new`]; the side
/// that receives it calls it with [`Callback::call`]. On the wire it is an
/// ordinary object reference, so an untyped peer can call it too (with one
/// argument). Arguments and results convert through serde.
///
/// ```
/// #[tether::service]
/// pub trait Counter {
///     /// Call `report` for each of `items`; return how many there were.
///     async fn count(&self, items: Vec<String>, report: tether::Callback<String>) -> tether::Result<i64>;
/// }
///
/// struct Impl;
/// impl Counter for Impl {
///     async fn count(&self, items: Vec<String>, report: tether::Callback<String>) -> tether::Result<i64> {
///         for item in &items {
///             report.call(item.clone()).await?;
///         }
///         Ok(items.len() as i64)
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let (client, _server) = tether::transport::memory::pair(
///     tether::Builder::default(),
///     tether::Builder::default().root(CounterObject(Impl)),
/// ).await.unwrap();
/// let counter = CounterProxy::new(client.root().await.unwrap());
/// let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let report = tether::Callback::new(move |item: String| {
///     let log = log.clone();
///     async move { log.lock().unwrap().push(item); Ok(()) }
/// });
/// let n = counter.count(vec!["a".into(), "b".into()], report).await.unwrap();
/// assert_eq!(n, 2);
/// assert_eq!(*seen.lock().unwrap(), vec!["a", "b"]);
/// # });
/// ```
pub struct Callback<A, R = ()> {
    netref: NetRef,
    _types: PhantomData<fn(A) -> R>,
}

impl<A, R> Callback<A, R> {
    /// Wrap an async closure as a callback object of ours.
    pub fn new<F, Fut>(f: F) -> Callback<A, R>
    where
        F: Fn(A) -> Fut + Send + Sync + 'static,
        A: serde::de::DeserializeOwned + Send + 'static,
        Fut: Future<Output = Result<R>> + Send + 'static,
        R: serde::Serialize + 'static,
    {
        Callback::from_netref(NetRef::new(TypedCallback {
            f,
            _types: PhantomData,
        }))
    }

    /// Treat any reference to a callable as a typed callback.
    pub fn from_netref(netref: NetRef) -> Callback<A, R> {
        Callback {
            netref,
            _types: PhantomData,
        }
    }

    /// The reference underneath.
    pub fn netref(&self) -> &NetRef {
        &self.netref
    }
}

impl<A: serde::Serialize, R: serde::de::DeserializeOwned> Callback<A, R> {
    /// Call it with `arg`, wherever it lives.
    pub async fn call(&self, arg: A) -> Result<R> {
        let arg = crate::__private::to_arg(&arg)?;
        let value = self.netref.call((arg,)).await?;
        crate::__private::from_return(value)
    }
}

impl<A, R> Clone for Callback<A, R> {
    fn clone(&self) -> Self {
        Callback::from_netref(self.netref.clone())
    }
}

impl<A, R> std::fmt::Debug for Callback<A, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Callback").field(&self.netref).finish()
    }
}

impl<A, R> serde::Serialize for Callback<A, R> {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        self.netref.serialize(serializer)
    }
}

impl<'de, A, R> serde::Deserialize<'de> for Callback<A, R> {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        NetRef::deserialize(deserializer).map(Callback::from_netref)
    }
}

impl<A, R> From<Callback<A, R>> for Value {
    fn from(cb: Callback<A, R>) -> Value {
        Value::Ref(cb.netref)
    }
}

struct TypedCallback<F, A> {
    f: F,
    _types: PhantomData<fn(A)>,
}

impl<F, A, Fut, R> Object for TypedCallback<F, A>
where
    F: Fn(A) -> Fut + Send + Sync + 'static,
    A: serde::de::DeserializeOwned + Send + 'static,
    Fut: Future<Output = Result<R>> + Send + 'static,
    R: serde::Serialize + 'static,
{
    fn type_name(&self) -> &str {
        "callback"
    }

    fn call<'a>(&'a self, args: Args, _cx: &'a CallContext) -> BoxFuture<'a, Result<Value>> {
        let arg = args.parse::<Value>().and_then(|v| {
            crate::from_value::<A>(v)
                .map_err(|e| crate::error::raise::bad_args(format!("argument 1: {}", e.message())))
        });
        Box::pin(async move {
            let out = (self.f)(arg?).await?;
            crate::__private::to_return(&out)
        })
    }
}
