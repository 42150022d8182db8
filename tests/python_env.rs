//! The Python environment the Python-driven tests share is built from
//! tests/python/requirements.txt by the tests themselves.

mod support;

#[test]
fn python_environment_has_the_pinned_packages() {
    let output = support::python::run_script("versions.py", &[]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("rpyc 6.0.2"), "{text}");
    assert!(text.contains("jsonrpclib"), "{text}");
}
