//! Timestamps. The store keeps microseconds since the Unix epoch (portable across SQLite and
//! PostgreSQL); the wire uses ISO 8601 in the spellings each service expects.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> i64 {
    let now = OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000) as i64
}

fn from_micros(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Keystone's token timestamp spelling: `2026-11-21T15:04:05.000000Z`.
pub fn iso_micros_z(us: i64) -> String {
    let t = from_micros(us);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Seconds-precision spelling without zone: `2026-11-21T15:04:05` (Keystone resource
/// `created_at` style, Nova's `updated`).
pub fn iso_seconds(us: i64) -> String {
    let t = from_micros(us);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Seconds-precision with a `Z`: `2026-11-21T15:04:05Z`.
pub fn iso_seconds_z(us: i64) -> String {
    format!("{}Z", iso_seconds(us))
}

/// Parses the ISO 8601 forms clients send (`2026-11-21T15:04:05Z`, with fractions or an
/// offset, or without a zone meaning UTC) into microseconds.
pub fn parse_iso(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some((t.unix_timestamp_nanos() / 1_000) as i64);
    }
    // No zone: treat as UTC. Accept a missing seconds field too, as oslo's parser does.
    let with_z = if s.len() == 16 {
        format!("{s}:00Z")
    } else {
        format!("{s}Z")
    };
    OffsetDateTime::parse(&with_z, &Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        let us = 1_700_000_000_123_456;
        assert_eq!(iso_micros_z(us), "2023-11-14T22:13:20.123456Z");
        assert_eq!(iso_seconds(us), "2023-11-14T22:13:20");
        assert_eq!(parse_iso("2023-11-14T22:13:20.123456Z"), Some(us));
        assert_eq!(parse_iso("2023-11-14T22:13:20"), Some(us - 123_456));
        assert_eq!(parse_iso("2023-11-14T23:13:20+01:00"), Some(us - 123_456));
        assert_eq!(parse_iso("not a date"), None);
    }
}
