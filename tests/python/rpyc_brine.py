"""Brine interoperability with rpyc.core.brine (rpyc 6.0.2).

    rpyc_brine.py dump          print the hex brine of each value in VALUES
    rpyc_brine.py load HEX...   check each HEX loads to the VALUES item at
                                its position; print "ok N"
"""
import sys

from rpyc.core import brine

VALUES = [
    None,
    True,
    False,
    NotImplemented,
    Ellipsis,
    0,
    -1,
    -48,
    159,
    160,
    -49,
    123456789012345,
    -(2**100),
    2**127 - 1,
    1.5,
    -0.0,
    1e300,
    complex(1.5, -2),
    b"",
    b"x",
    b"abcd",
    b"\x00" * 255,
    b"\xff" * 256,
    "",
    "h\u00e9llo \U0001f600",
    (),
    (1,),
    (1, 2, 3, 4),
    tuple(range(5)),
    tuple(range(300)),
    ((1, ("deep", (None,))), b"z"),
    frozenset([7]),
    slice(1, None, -1),
]


def main():
    if sys.argv[1] == "dump":
        for value in VALUES:
            print(brine.dump(value).hex())
    else:
        hexes = sys.argv[2:]
        assert len(hexes) == len(VALUES), (len(hexes), len(VALUES))
        for i, (text, expected) in enumerate(zip(hexes, VALUES)):
            got = brine.load(bytes.fromhex(text))
            assert type(got) is type(expected), (i, got, expected)
            if isinstance(expected, float) and expected == 0:
                assert str(got) == str(expected), (i, got)
            assert got == expected, (i, got, expected)
        print("ok", len(hexes))


main()
