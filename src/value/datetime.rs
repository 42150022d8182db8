//! [`DateTime`]: an instant in UTC, the value behind [`Value::DateTime`].
//!
//! Each way in maps its own date form onto it:
//!
//! - native tether (protocol 5): seconds and nanoseconds since the Unix
//!   epoch; a version-4 peer is sent the RFC 3339 text instead;
//! - XML-RPC: `<dateTime.iso8601>` both ways, read as UTC when it names no
//!   offset (Python's client sends none), written as `20261204T15:12:38`
//!   (whole seconds, the form every client parses);
//! - JSON-RPC and NATS requests: RFC 3339 text out (`2026-12-04T15:12:38Z`);
//!   text in stays text, and converts where a `DateTime` is expected;
//! - Cap'n Web: a JavaScript `Date` (`["date", ms]`) both ways;
//! - RPyC: brine has no date, so a Python client gets the RFC 3339 text.
//!
//! Through serde, a `DateTime` field travels as a date; `time` and
//! `chrono` types (which serialize as RFC 3339 text) travel as text and
//! read back from a date.

use std::fmt;
use std::time::SystemTime;

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::Value;
use crate::error::raise;
use crate::Result;

/// An instant in UTC, to the nanosecond, between the years 1 and 9999.
///
/// ```
/// use tether::{DateTime, Value};
/// let t = DateTime::parse("2026-12-04T15:12:38Z").unwrap();
/// assert_eq!(t.unix_seconds(), 1_796_397_158);
/// // XML-RPC's form, read as UTC:
/// assert_eq!(DateTime::parse("20261204T15:12:38").unwrap(), t);
/// let v = Value::from(t);
/// assert_eq!(v.to_string(), "2026-12-04T15:12:38Z");
/// let back: DateTime = v.try_into().unwrap();
/// assert_eq!(back, t);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime(OffsetDateTime);

impl DateTime {
    /// Now, by the system clock.
    pub fn now() -> DateTime {
        DateTime(OffsetDateTime::now_utc())
    }

    /// The instant `seconds` and `nanos` after the Unix epoch; a
    /// [`Type`](crate::ErrorKind::Type) error outside the years 1 to 9999
    /// or with `nanos` of a second or more.
    pub fn from_unix(seconds: i64, nanos: u32) -> Result<DateTime> {
        if nanos >= 1_000_000_000 {
            return Err(raise::type_mismatch(
                "nanoseconds below one second",
                &nanos.to_string(),
            ));
        }
        let whole = OffsetDateTime::from_unix_timestamp(seconds)
            .map_err(|_| out_of_range(&format!("{seconds} seconds since the epoch")))?;
        DateTime(whole + time::Duration::nanoseconds(i64::from(nanos))).in_range()
    }

    /// The instant `millis` milliseconds after the Unix epoch (JavaScript's
    /// `Date` value), to the nanosecond it names; not finite or out of range
    /// is a [`Type`](crate::ErrorKind::Type) error.
    pub fn from_unix_millis(millis: f64) -> Result<DateTime> {
        if !millis.is_finite() {
            return Err(out_of_range(&format!("{millis} milliseconds")));
        }
        let seconds = (millis / 1000.0).floor();
        let nanos = ((millis - seconds * 1000.0) * 1_000_000.0).round();
        if seconds.abs() > 1e15 {
            return Err(out_of_range(&format!("{millis} milliseconds")));
        }
        let (seconds, nanos) = if nanos >= 1e9 {
            (seconds as i64 + 1, 0)
        } else {
            (seconds as i64, nanos as u32)
        };
        DateTime::from_unix(seconds, nanos)
    }

    /// Whole seconds since the Unix epoch (negative before it).
    pub fn unix_seconds(&self) -> i64 {
        self.0.unix_timestamp()
    }

    /// Nanoseconds past [`unix_seconds`](Self::unix_seconds), below one
    /// second.
    pub fn subsec_nanos(&self) -> u32 {
        self.0.nanosecond()
    }

    /// Milliseconds since the Unix epoch, as JavaScript's `Date` counts.
    pub fn unix_millis(&self) -> f64 {
        self.unix_seconds() as f64 * 1000.0 + f64::from(self.subsec_nanos()) / 1_000_000.0
    }

    /// Read ISO 8601 text: RFC 3339 (`2026-12-04T15:12:38.5+01:00`), or a
    /// date and time naming no offset, extended (`2026-12-04T15:12:38`) or
    /// basic as XML-RPC writes it (`20261204T15:12:38`), taken as UTC.
    pub fn parse(text: &str) -> Result<DateTime> {
        let text = text.trim();
        let bad = || {
            raise::type_mismatch(
                "an ISO 8601 date and time (2026-12-04T15:12:38Z)",
                &format!("{text:?}"),
            )
        };
        if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
            return DateTime(t.to_offset(UtcOffset::UTC)).in_range();
        }
        let extended = format_description!(
            version = 2,
            "[year]-[month]-[day][first [T] [t] [ ]][hour]:[minute]:[second][optional [.[subsecond]]]"
        );
        let basic = format_description!(
            version = 2,
            "[year][month][day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
        );
        let naive = PrimitiveDateTime::parse(text, &extended)
            .or_else(|_| PrimitiveDateTime::parse(text, &basic))
            .map_err(|_| bad())?;
        DateTime(naive.assume_utc()).in_range()
    }

    /// RFC 3339 text in UTC, with a fraction only when there is one
    /// (`2026-12-04T15:12:38Z`, `2026-12-04T15:12:38.25Z`).
    pub fn to_rfc3339(&self) -> String {
        self.0
            .format(&Rfc3339)
            .expect("a UTC instant in the years 1 to 9999 formats as RFC 3339")
    }

    /// XML-RPC's `dateTime.iso8601` text, whole seconds
    /// (`20261204T15:12:38`).
    pub fn to_xmlrpc(&self) -> String {
        let form = format_description!(version = 2, "[year][month][day]T[hour]:[minute]:[second]");
        self.0
            .format(&form)
            .expect("a UTC instant in the years 1 to 9999 formats as XML-RPC's form")
    }

    /// The `time` crate's value for the same instant, in UTC.
    pub fn to_offset_date_time(self) -> OffsetDateTime {
        self.0
    }

    fn in_range(self) -> Result<DateTime> {
        if (1..=9999).contains(&self.0.year()) {
            Ok(self)
        } else {
            Err(out_of_range(&self.0.year().to_string()))
        }
    }
}

fn out_of_range(what: &str) -> crate::Error {
    raise::type_mismatch("a date and time in the years 1 to 9999", what)
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Debug for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DateTime({self})")
    }
}

impl TryFrom<OffsetDateTime> for DateTime {
    type Error = crate::Error;
    /// The same instant in UTC; outside the years 1 to 9999 a
    /// [`Type`](crate::ErrorKind::Type) error.
    fn try_from(t: OffsetDateTime) -> Result<DateTime> {
        DateTime(t.to_offset(UtcOffset::UTC)).in_range()
    }
}

impl From<DateTime> for OffsetDateTime {
    fn from(t: DateTime) -> OffsetDateTime {
        t.0
    }
}

impl TryFrom<SystemTime> for DateTime {
    type Error = crate::Error;
    /// The same instant; outside the years 1 to 9999 a
    /// [`Type`](crate::ErrorKind::Type) error.
    fn try_from(t: SystemTime) -> Result<DateTime> {
        DateTime::try_from(OffsetDateTime::from(t))
    }
}

impl From<DateTime> for SystemTime {
    fn from(t: DateTime) -> SystemTime {
        t.0.into()
    }
}

impl From<DateTime> for Value {
    fn from(t: DateTime) -> Value {
        Value::DateTime(t)
    }
}

/// The name by which `ser`/`de` recognise a [`DateTime`] passing through
/// serde, so that it stays a date in a [`Value`]; other serializers see
/// the RFC 3339 text.
pub(crate) const SERDE_NAME: &str = "$tether::DateTime";

thread_local! {
    /// The date whose text `de` is handing to a visitor, so that
    /// [`Value`]'s own visitor can take the date back (see [`hand_over`]).
    static HANDED: std::cell::Cell<Option<DateTime>> = const { std::cell::Cell::new(None) };
}

/// Run `visit` (which passes `t`'s RFC 3339 text to a serde visitor)
/// with `t` offered to [`take_handed`]: a `Value` deserialized from a
/// date stays a date, while every other visitor reads the text.
pub(crate) fn hand_over<R>(t: DateTime, visit: impl FnOnce(String) -> R) -> R {
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            HANDED.with(|slot| slot.set(None));
        }
    }
    HANDED.with(|slot| slot.set(Some(t)));
    let _clear = Clear;
    visit(t.to_rfc3339())
}

/// The date being handed over, if `text` is its text.
pub(crate) fn take_handed(text: &str) -> Option<DateTime> {
    HANDED
        .with(|slot| slot.take())
        .filter(|t| t.to_rfc3339() == text)
}

impl serde::Serialize for DateTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(SERDE_NAME, &self.to_rfc3339())
    }
}

impl<'de> serde::Deserialize<'de> for DateTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<DateTime, D::Error> {
        struct Text;
        impl<'de> serde::de::Visitor<'de> for Text {
            type Value = DateTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an ISO 8601 date and time")
            }
            fn visit_str<E: serde::de::Error>(
                self,
                text: &str,
            ) -> std::result::Result<DateTime, E> {
                DateTime::parse(text).map_err(|e| E::custom(e.message()))
            }
            fn visit_newtype_struct<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> std::result::Result<DateTime, D::Error> {
                d.deserialize_str(self)
            }
        }
        d.deserialize_newtype_struct(SERDE_NAME, Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_clients_send_read_as_one_instant() {
        let t = DateTime::from_unix(1_796_397_158, 0).unwrap();
        for text in [
            "2026-12-04T15:12:38Z",
            "2026-12-04T16:12:38+01:00",
            "2026-12-04T15:12:38",
            "2026-12-04 15:12:38",
            "20261204T15:12:38",
            " 20261204T15:12:38\n",
        ] {
            assert_eq!(DateTime::parse(text).unwrap(), t, "{text}");
        }
        let half = DateTime::parse("2026-12-04T15:12:38.5Z").unwrap();
        assert_eq!(half.subsec_nanos(), 500_000_000);
        assert_eq!(half.to_rfc3339(), "2026-12-04T15:12:38.5Z");
        assert_eq!(half.to_xmlrpc(), "20261204T15:12:38");
        assert_eq!(
            DateTime::parse("20261204T15:12:38.25")
                .unwrap()
                .subsec_nanos(),
            250_000_000
        );
    }

    #[test]
    fn bad_text_and_out_of_range_instants_are_type_errors() {
        for text in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "20261204",
            "2026-12-04T25:00:00",
        ] {
            let err = DateTime::parse(text).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Type, "{text}: {err}");
        }
        assert!(DateTime::from_unix(i64::MAX, 0).is_err());
        assert!(DateTime::from_unix(0, 1_000_000_000).is_err());
        assert!(DateTime::from_unix(-62_135_596_801, 0).is_err(), "year 0");
        assert!(DateTime::from_unix(-62_135_596_800, 0).is_ok(), "year 1");
        assert!(DateTime::from_unix_millis(f64::NAN).is_err());
        assert!(DateTime::from_unix_millis(1e300).is_err());
    }

    #[test]
    fn milliseconds_round_trip_as_javascript_counts_them() {
        for ms in [
            0.0,
            1_796_397_158_123.0,
            -1.0,
            -86_400_000.5,
            253_402_300_799_999.0,
        ] {
            let t = DateTime::from_unix_millis(ms).unwrap();
            assert_eq!(t.unix_millis(), ms, "{ms}");
        }
        let before = DateTime::from_unix_millis(-1.0).unwrap();
        assert_eq!(
            (before.unix_seconds(), before.subsec_nanos()),
            (-1, 999_000_000)
        );
    }

    #[test]
    fn through_serde_a_date_stays_a_date_and_reads_as_text_elsewhere() {
        let t = DateTime::from_unix(1_796_397_158, 7).unwrap();
        assert_eq!(crate::to_value(&t).unwrap(), Value::DateTime(t));
        let back: DateTime = crate::from_value(Value::DateTime(t)).unwrap();
        assert_eq!(back, t);
        let parsed: DateTime =
            crate::from_value(Value::from("2026-12-04T15:12:38.000000007Z")).unwrap();
        assert_eq!(parsed, t);
        // A `Value` field keeps the date; a `String` field gets its text.
        let kept: Vec<Value> = crate::from_value(Value::List(vec![Value::DateTime(t)])).unwrap();
        assert_eq!(kept, [Value::DateTime(t)]);
        let text: String = crate::from_value(Value::DateTime(t)).unwrap();
        assert_eq!(text, "2026-12-04T15:12:38.000000007Z");
        // Text that merely looks like it is not taken for a date.
        let plain: Value = crate::from_value(Value::from(text.clone())).unwrap();
        assert_eq!(plain, Value::Str(text));
        // Other serializers see the RFC 3339 text.
        assert_eq!(
            serde_json::to_string(&Value::DateTime(t)).unwrap(),
            "\"2026-12-04T15:12:38.000000007Z\""
        );
        let bad = crate::from_value::<DateTime>(Value::from("noon")).unwrap_err();
        assert!(bad.message().contains("ISO 8601"), "{bad}");
        let bad = crate::from_value::<DateTime>(Value::from(3)).unwrap_err();
        assert_eq!(bad.kind(), crate::ErrorKind::Type, "{bad}");
    }

    #[test]
    fn system_time_and_time_convert_both_ways() {
        let now = DateTime::now();
        let back = DateTime::try_from(SystemTime::from(now)).unwrap();
        assert_eq!(back, now);
        let odt: OffsetDateTime = now.into();
        assert_eq!(DateTime::try_from(odt).unwrap(), now);
    }
}
