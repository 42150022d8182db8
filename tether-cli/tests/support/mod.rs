//! What the CLI's tests share: the main crate's Python test environment
//! and its `nats-server` (tests/support at the repository root; the venv
//! lands in the workspace's target/tmp, shared with the main crate's
//! tests), Python RPyC servers, and `tether serve` instances on NATS.

#![allow(dead_code)]

#[path = "../../../tests/support/python.rs"]
pub mod python;

#[path = "../../../tests/support/node.rs"]
pub mod node;

#[path = "../../../tests/support/nats.rs"]
pub mod nats;

#[path = "../../../tests/support/nats_client.rs"]
pub mod nats_client;

pub mod brokers;
pub mod rpyc_server;
