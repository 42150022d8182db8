//! RPyC's request handlers, by number (rpyc/core/consts.py).

pub(crate) const PING: i64 = 1;
pub(crate) const CLOSE: i64 = 2;
pub(crate) const GETROOT: i64 = 3;
pub(crate) const GETATTR: i64 = 4;
pub(crate) const DELATTR: i64 = 5;
pub(crate) const SETATTR: i64 = 6;
pub(crate) const CALL: i64 = 7;
pub(crate) const CALLATTR: i64 = 8;
pub(crate) const REPR: i64 = 9;
pub(crate) const STR: i64 = 10;
pub(crate) const CMP: i64 = 11;
pub(crate) const HASH: i64 = 12;
pub(crate) const DIR: i64 = 13;
pub(crate) const PICKLE: i64 = 14;
pub(crate) const DEL: i64 = 15;
pub(crate) const INSPECT: i64 = 16;
pub(crate) const BUFFITER: i64 = 17;
pub(crate) const OLDSLICING: i64 = 18;
pub(crate) const CTXEXIT: i64 = 19;
pub(crate) const INSTANCECHECK: i64 = 20;

/// The handler's name, for traces and logs.
pub(crate) fn name(handler: i64) -> &'static str {
    match handler {
        PING => "PING",
        CLOSE => "CLOSE",
        GETROOT => "GETROOT",
        GETATTR => "GETATTR",
        DELATTR => "DELATTR",
        SETATTR => "SETATTR",
        CALL => "CALL",
        CALLATTR => "CALLATTR",
        REPR => "REPR",
        STR => "STR",
        CMP => "CMP",
        HASH => "HASH",
        DIR => "DIR",
        PICKLE => "PICKLE",
        DEL => "DEL",
        INSPECT => "INSPECT",
        BUFFITER => "BUFFITER",
        OLDSLICING => "OLDSLICING",
        CTXEXIT => "CTXEXIT",
        INSTANCECHECK => "INSTANCECHECK",
        _ => "unknown handler",
    }
}
