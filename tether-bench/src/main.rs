//! tether-bench: being written.
fn main() {}
