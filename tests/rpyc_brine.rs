//! Brine against the real thing: values dumped by Python's
//! `rpyc.core.brine` decode to the expected [`Brine`], and what tether
//! encodes Python loads back to the same values, tag for tag.

mod support;

use support::python::run_script;
use tether::rpyc::{Brine, BrineError};

/// The values of `VALUES` in `tests/python/rpyc_brine.py`, in order.
fn values() -> Vec<Brine> {
    use Brine::*;
    vec![
        None,
        Bool(true),
        Bool(false),
        NotImplemented,
        Ellipsis,
        Int(0),
        Int(-1),
        Int(-48),
        Int(159),
        Int(160),
        Int(-49),
        Int(123_456_789_012_345),
        Int(-(1i128 << 100)),
        Int(i128::MAX),
        Float(1.5),
        Float(-0.0),
        Float(1e300),
        Complex(1.5, -2.0),
        Bytes(vec![]),
        Bytes(b"x".to_vec()),
        Bytes(b"abcd".to_vec()),
        Bytes(vec![0; 255]),
        Bytes(vec![0xff; 256]),
        Str(String::new()),
        Str("h\u{e9}llo \u{1f600}".into()),
        Tuple(vec![]),
        Tuple(vec![Int(1)]),
        Tuple(vec![Int(1), Int(2), Int(3), Int(4)]),
        Tuple((0..5).map(Int).collect()),
        Tuple((0..300).map(Int).collect()),
        Tuple(vec![
            Tuple(vec![
                Int(1),
                Tuple(vec![Str("deep".into()), Tuple(vec![None])]),
            ]),
            Bytes(b"z".to_vec()),
        ]),
        FrozenSet(vec![Int(7)]),
        Slice(Box::new([Int(1), None, Int(-1)])),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn what_python_dumps_decodes_to_the_same_values_and_bytes() {
    let out = run_script("rpyc_brine.py", &["dump"]);
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let expected = values();
    assert_eq!(lines.len(), expected.len());
    for (i, (line, want)) in lines.iter().zip(&expected).enumerate() {
        let bytes = unhex(line);
        let got = Brine::decode(&bytes).unwrap_or_else(|e| panic!("value {i}: {e}"));
        match (&got, want) {
            // -0.0 == 0.0: compare the bits.
            (Brine::Float(a), Brine::Float(b)) => assert_eq!(a.to_bits(), b.to_bits(), "value {i}"),
            _ => assert_eq!(&got, want, "value {i}"),
        }
        // And tether writes the very same bytes.
        assert_eq!(hex(&want.encode()), *line, "value {i}");
    }
}

#[test]
fn what_tether_encodes_python_loads_to_the_same_values() {
    let hexes: Vec<String> = values().iter().map(|v| hex(&v.encode())).collect();
    let mut args = vec!["load"];
    args.extend(hexes.iter().map(String::as_str));
    let out = run_script("rpyc_brine.py", &args);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.trim(), format!("ok {}", values().len()));
}

#[test]
fn integers_beyond_128_bits_from_python_are_refused_not_wrapped() {
    // brine.dump(2**200): 0x16, 61 digits.
    let digits = "1606938044258990275541962092341162602522202993782792835301376";
    let mut bytes = vec![0x16, digits.len() as u8];
    bytes.extend_from_slice(digits.as_bytes());
    assert_eq!(Brine::decode(&bytes), Err(BrineError::IntTooLarge(61)));
}
