//! Compile-fail tests of `#[tether::expose]` and `#[tether::service]`: each
//! misuse in `tests/ui/` must be refused with the macro's own message,
//! pointing at the offending code (the expected output is the `.stderr`
//! next to each case).

#[test]
fn misuses_are_refused_with_clear_messages() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
