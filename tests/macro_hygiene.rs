//! The code `#[expose]` and `#[service]` generate names only absolute paths
//! (`::tether::*`, `::std::*`): it compiles in a module without the prelude,
//! next to local items that shadow the usual names, and still works.

mod hygiene {
    #![no_implicit_prelude]
    #![allow(dead_code, non_camel_case_types)]

    // Local items named like everything the generated code might reach for
    // without a path.
    #[derive(
        ::serde::Serialize,
        ::serde::Deserialize,
        ::std::fmt::Debug,
        ::std::cmp::PartialEq,
        ::std::clone::Clone,
    )]
    pub struct Value(pub i64);
    #[derive(
        ::serde::Serialize,
        ::serde::Deserialize,
        ::std::fmt::Debug,
        ::std::cmp::PartialEq,
        ::std::clone::Clone,
    )]
    pub struct Result {
        pub doubled: i64,
    }
    pub struct Option;
    pub struct Vec;
    pub struct Box;
    pub struct String;
    pub struct Ok;
    pub struct Err;
    pub struct Some;
    pub struct None;
    pub struct Args;
    pub struct Member;
    pub struct NetRef;
    pub struct Error;
    pub struct ArgReader;
    pub trait Send {}
    pub trait Sync {}
    pub trait Clone {}
    pub trait Debug {}
    pub trait Future {}
    pub trait From {}
    pub trait TryFrom {}
    pub trait Into {}
    pub trait Default {}
    pub trait Object {}
    pub trait Serialize {}
    pub trait Deserialize {}
    pub mod tether {}
    pub mod std {}
    pub mod serde {}
    pub mod __private {}

    use ::std::string::String as Text;
    use ::std::vec::Vec as List;

    #[derive(
        ::serde::Serialize,
        ::serde::Deserialize,
        ::std::fmt::Debug,
        ::std::cmp::PartialEq,
        ::std::clone::Clone,
    )]
    pub struct Pair {
        pub left: i64,
        pub right: i64,
    }

    /// A store of texts.
    #[derive(::std::default::Default)]
    pub struct Store {
        items: ::std::sync::Mutex<List<Text>>,
        label: ::std::sync::Mutex<Text>,
        blob: ::std::sync::Mutex<::std::vec::Vec<u8>>,
    }

    #[::tether::expose(name = "HygienicStore")]
    impl Store {
        /// Add an item; returns how many there are.
        #[method]
        fn push(&self, item: ::std::string::String) -> usize {
            let mut items = self.items.lock().unwrap();
            items.push(item);
            items.len()
        }

        /// Every item.
        #[method]
        async fn items(&self) -> List<Text> {
            ::std::clone::Clone::clone(&*self.items.lock().unwrap())
        }

        /// Items containing `needle`, at most `limit` of them.
        #[method]
        fn find(&self, needle: &str, limit: ::std::option::Option<usize>) -> List<Text> {
            let items = self.items.lock().unwrap();
            let limit = limit.unwrap_or(usize::MAX);
            ::std::iter::Iterator::collect(::std::iter::Iterator::take(
                ::std::iter::Iterator::cloned(::std::iter::Iterator::filter(items.iter(), |i| {
                    i.contains(needle)
                })),
                limit,
            ))
        }

        /// The bytes, doubled.
        #[method]
        fn twice(&self, data: &[u8]) -> ::std::vec::Vec<u8> {
            let mut out = data.to_vec();
            out.extend_from_slice(data);
            out
        }

        /// Sum of everything given.
        #[method]
        fn total(&self, #[rest] things: ::std::vec::Vec<i64>) -> i64 {
            ::std::iter::Iterator::sum(things.iter())
        }

        /// Swap the halves.
        #[method]
        fn swap(&self, pair: Pair) -> Pair {
            Pair {
                left: pair.right,
                right: pair.left,
            }
        }

        /// Local types named `Value` and `Result` in and out.
        #[method]
        fn double(&self, v: Value) -> Result {
            Result { doubled: v.0 * 2 }
        }

        /// Always fails.
        #[method]
        fn fail(&self) -> ::tether::Result<()> {
            ::std::result::Result::Err(::tether::Error::app("HygieneError", "on purpose"))
        }

        /// Fails with an I/O error.
        #[method]
        async fn io(&self) -> ::std::io::Result<i64> {
            ::std::result::Result::Err(::std::io::Error::other("disk on fire"))
        }

        /// Whether the call came over a connection.
        #[method]
        fn remote(&self, cx: &::tether::CallContext) -> bool {
            cx.connection().is_some()
        }

        /// A new store.
        #[method]
        fn fork(&self) -> ::tether::NetRef {
            ::tether::NetRef::new(<Store as ::std::default::Default>::default())
        }

        /// How many items there are.
        #[getter]
        fn count(&self) -> usize {
            self.items.lock().unwrap().len()
        }

        /// The label.
        #[getter]
        async fn label(&self) -> Text {
            ::std::clone::Clone::clone(&*self.label.lock().unwrap())
        }

        #[setter]
        async fn set_label(&self, label: &str) {
            *self.label.lock().unwrap() = ::std::string::ToString::to_string(label);
        }

        /// Some bytes.
        #[getter]
        fn blob(&self) -> ::std::vec::Vec<u8> {
            ::std::clone::Clone::clone(&*self.blob.lock().unwrap())
        }

        #[setter(blob)]
        fn replace_blob(&self, data: &[u8]) -> ::tether::Result<()> {
            *self.blob.lock().unwrap() = data.to_vec();
            ::std::result::Result::Ok(())
        }
    }

    /// A shelf, as a service.
    #[::tether::service]
    pub trait Shelf {
        /// Put `count` copies (one when left out); returns the total.
        async fn put(
            &self,
            item: Text,
            count: ::std::option::Option<u32>,
        ) -> ::tether::Result<usize>;

        /// Swap the halves.
        async fn swap(&self, pair: Pair) -> ::tether::Result<Pair>;

        /// Both byte strings, joined.
        async fn join(
            &self,
            a: &[u8],
            b: ::std::vec::Vec<u8>,
        ) -> ::tether::Result<::std::vec::Vec<u8>>;

        /// Sum of everything given.
        async fn total(&self, #[rest] things: ::std::vec::Vec<i64>) -> ::tether::Result<i64>;

        /// Local types named `Value` and `Result` in and out.
        async fn double(&self, v: Value) -> ::tether::Result<Result>;

        /// Greet.
        async fn greet(&self, name: &str) -> ::tether::Result<Text>;

        /// Greet twice (a default body).
        async fn greet_twice(&self, name: &str) -> ::tether::Result<Text> {
            let once = self.greet(name).await?;
            ::std::result::Result::Ok(::std::format!("{once} {once}"))
        }

        /// Always fails.
        async fn fail(&self) -> ::tether::Result<()>;
    }

    pub struct MyShelf {
        pub items: ::std::sync::atomic::AtomicUsize,
    }

    impl Shelf for MyShelf {
        async fn put(
            &self,
            item: Text,
            count: ::std::option::Option<u32>,
        ) -> ::tether::Result<usize> {
            let _ = item;
            let n = count.unwrap_or(1) as usize;
            ::std::result::Result::Ok(
                self.items
                    .fetch_add(n, ::std::sync::atomic::Ordering::SeqCst)
                    + n,
            )
        }

        async fn swap(&self, pair: Pair) -> ::tether::Result<Pair> {
            ::std::result::Result::Ok(Pair {
                left: pair.right,
                right: pair.left,
            })
        }

        async fn join(
            &self,
            a: &[u8],
            b: ::std::vec::Vec<u8>,
        ) -> ::tether::Result<::std::vec::Vec<u8>> {
            let mut out = a.to_vec();
            ::std::iter::Extend::extend(&mut out, b);
            ::std::result::Result::Ok(out)
        }

        async fn total(&self, things: ::std::vec::Vec<i64>) -> ::tether::Result<i64> {
            ::std::result::Result::Ok(::std::iter::Iterator::sum(things.iter()))
        }

        async fn double(&self, v: Value) -> ::tether::Result<Result> {
            ::std::result::Result::Ok(Result { doubled: v.0 * 2 })
        }

        async fn greet(&self, name: &str) -> ::tether::Result<Text> {
            ::std::result::Result::Ok(::std::format!("hi {name}"))
        }

        async fn fail(&self) -> ::tether::Result<()> {
            ::std::result::Result::Err(::tether::Error::app("HygieneError", "on purpose"))
        }
    }
}

use hygiene::{MyShelf, Pair, Shelf, ShelfObject, ShelfProxy, Store};
use tether::{Args, Builder, ErrorKind, NetRef, Object, Value};

async fn connect(root: impl Object) -> (NetRef, tether::Connection, tether::Connection) {
    let config = tether::Config::default().policy(tether::Policy::default().allow_setattr(true));
    let (client, server) = tether::transport::memory::pair(
        Builder::default(),
        Builder::default().root(root).config(config),
    )
    .await
    .unwrap();
    (client.root().await.unwrap(), client, server)
}

#[tokio::test]
async fn exposed_impl_in_a_module_without_prelude_works() {
    let (root, _c, _s) = connect(Store::default()).await;
    assert_eq!(root.repr().await.unwrap(), "<HygienicStore object>");
    assert_eq!(
        root.call_method("push", ("apple",)).await.unwrap(),
        Value::from(1)
    );
    assert_eq!(
        root.call_method("push", ("grape",)).await.unwrap(),
        Value::from(2)
    );
    assert_eq!(
        root.call_method("items", ()).await.unwrap(),
        Value::List(vec![Value::from("apple"), Value::from("grape")])
    );
    assert_eq!(
        root.call_method("find", ("ap",)).await.unwrap(),
        Value::List(vec![Value::from("apple"), Value::from("grape")])
    );
    assert_eq!(
        root.call_method("find", Args::new().arg("ap").named("limit", 1))
            .await
            .unwrap(),
        Value::List(vec![Value::from("apple")])
    );
    assert_eq!(
        root.call_method("twice", (Value::Bytes(vec![1, 2].into()),))
            .await
            .unwrap(),
        Value::Bytes(vec![1, 2, 1, 2].into())
    );
    assert_eq!(
        root.call_method("total", (1, 2, 3)).await.unwrap(),
        Value::from(6)
    );
    let swapped = root
        .call_method(
            "swap",
            (tether::to_value(&Pair { left: 1, right: 2 }).unwrap(),),
        )
        .await
        .unwrap();
    assert_eq!(
        tether::from_value::<Pair>(swapped).unwrap(),
        Pair { left: 2, right: 1 }
    );
    let doubled = root.call_method("double", (21,)).await.unwrap();
    assert_eq!(doubled.get("doubled"), Some(&Value::from(42)));

    let err = root.call_method("fail", ()).await.unwrap_err();
    assert_eq!(err.type_name(), Some("HygieneError"));
    let err = root.call_method("io", ()).await.unwrap_err();
    assert_eq!(err.message(), "disk on fire");
    assert_eq!(
        root.call_method("remote", ()).await.unwrap(),
        Value::Bool(true)
    );
    let fork = NetRef::try_from(root.call_method("fork", ()).await.unwrap()).unwrap();
    assert_eq!(fork.getattr("count").await.unwrap(), Value::from(0));

    assert_eq!(root.getattr("count").await.unwrap(), Value::from(2));
    root.setattr("label", "pantry").await.unwrap();
    assert_eq!(root.getattr("label").await.unwrap(), Value::from("pantry"));
    root.setattr("blob", Value::Bytes(vec![7].into()))
        .await
        .unwrap();
    assert_eq!(
        root.getattr("blob").await.unwrap(),
        Value::Bytes(vec![7].into())
    );

    let err = root.call_method("push", (1,)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments);
    assert_eq!(
        err.message(),
        "HygienicStore.push(): argument 'item': expected str, got int"
    );
    let members = root.inspect().await.unwrap();
    assert_eq!(members[0].signature, "(item: str) -> int");
    assert_eq!(members[0].doc, "Add an item; returns how many there are.");
}

#[tokio::test]
async fn service_in_a_module_without_prelude_works() {
    let served = ShelfObject(MyShelf {
        items: Default::default(),
    });
    let (root, _c, _s) = connect(served).await;
    let shelf = ShelfProxy::new(root);
    assert_eq!(shelf.put("jam".into(), None).await.unwrap(), 1);
    assert_eq!(shelf.put("jam".into(), Some(4)).await.unwrap(), 5);
    assert_eq!(
        shelf.swap(Pair { left: 1, right: 2 }).await.unwrap(),
        Pair { left: 2, right: 1 }
    );
    assert_eq!(shelf.join(&[1], vec![2, 3]).await.unwrap(), [1, 2, 3]);
    assert_eq!(shelf.total(vec![4, 5]).await.unwrap(), 9);
    assert_eq!(
        shelf.double(hygiene::Value(21)).await.unwrap(),
        hygiene::Result { doubled: 42 }
    );
    assert_eq!(shelf.greet("jo").await.unwrap(), "hi jo");
    assert_eq!(shelf.greet_twice("jo").await.unwrap(), "hi jo hi jo");
    let err = shelf.fail().await.unwrap_err();
    assert_eq!(err.type_name(), Some("HygieneError"));
    assert_eq!(shelf.netref().repr().await.unwrap(), "<Shelf object>");
}
