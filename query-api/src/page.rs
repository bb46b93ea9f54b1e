//! Relay-style pagination: `PageInfo`, and the cursors of keyset pages.
//!
//! Pages are keyset pages (`WHERE (sort key) < (cursor) ORDER BY sort key
//! DESC LIMIT first + 1`), never `OFFSET`, so page 1,000 costs what page 1
//! costs and rows arriving meanwhile do not shift the pages. A cursor is the
//! sort key of a row, hex-encoded so clients treat it as opaque. The log's
//! own pages (`events`, `history`) use the plain position or stream version
//! as their cursor, so an auditor can start from any point.

use crate::error::bad_input;
use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Where a page sits in the whole list.
#[derive(SimpleObject, Debug, Clone, Default)]
pub struct PageInfo {
    /// Whether rows follow this page (ask again with `after: endCursor`).
    pub has_next_page: bool,
    /// Whether rows precede it (true when the page started after a cursor).
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

impl PageInfo {
    pub fn of(cursors: &[String], has_next_page: bool, had_cursor: bool) -> PageInfo {
        PageInfo {
            has_next_page,
            has_previous_page: had_cursor,
            start_cursor: cursors.first().cloned(),
            end_cursor: cursors.last().cloned(),
        }
    }
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<String> {
    if !text.len().is_multiple_of(2) || text.len() > 1024 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// A cursor over `(time, id)`, newest first; `kind` keeps one list's
/// cursors from being used on another.
pub fn time_cursor(kind: char, at: DateTime<Utc>, id: &str) -> String {
    hex(&format!("{kind}|{}|{id}", at.timestamp_micros()))
}

/// Reads a cursor made by [`time_cursor`] with the same `kind`.
pub fn parse_time_cursor(
    kind: char,
    cursor: &str,
) -> async_graphql::Result<(DateTime<Utc>, String)> {
    let invalid = || bad_input("the cursor is not one this list gave out");
    let text = unhex(cursor).ok_or_else(invalid)?;
    let mut parts = text.splitn(3, '|');
    let (Some(k), Some(micros), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    if k != kind.to_string() {
        return Err(invalid());
    }
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(invalid)?;
    Ok((at, id.to_owned()))
}

/// Reads a `(time, uuid)` cursor.
pub fn parse_time_uuid_cursor(
    kind: char,
    cursor: &str,
) -> async_graphql::Result<(DateTime<Utc>, Uuid)> {
    let (at, id) = parse_time_cursor(kind, cursor)?;
    let id =
        Uuid::parse_str(&id).map_err(|_| bad_input("the cursor is not one this list gave out"))?;
    Ok((at, id))
}

/// A cursor over a number (a log position), newest first.
pub fn number_cursor(kind: char, n: i64) -> String {
    hex(&format!("{kind}|{n}"))
}

pub fn parse_number_cursor(kind: char, cursor: &str) -> async_graphql::Result<i64> {
    let invalid = || bad_input("the cursor is not one this list gave out");
    let text = unhex(cursor).ok_or_else(invalid)?;
    let (k, n) = text.split_once('|').ok_or_else(invalid)?;
    if k != kind.to_string() {
        return Err(invalid());
    }
    n.parse().map_err(|_| invalid())
}

/// A plain non-negative number as a cursor (`events`, `history`).
pub fn parse_plain_cursor(cursor: &str) -> async_graphql::Result<u64> {
    cursor
        .trim()
        .parse()
        .map_err(|_| bad_input("this cursor is a position: a non-negative integer as a string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_cursors_round_trip_and_refuse_strangers() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let c = time_cursor('t', at, "tx|with|bars");
        assert_eq!(
            parse_time_cursor('t', &c).unwrap(),
            (at, "tx|with|bars".to_owned())
        );
        assert!(parse_time_cursor('a', &c).is_err());
        assert!(parse_time_cursor('t', "zz").is_err());
        assert!(parse_time_cursor('t', "abc").is_err());
        let id = Uuid::now_v7();
        let c = time_cursor('a', at, &id.to_string());
        assert_eq!(parse_time_uuid_cursor('a', &c).unwrap(), (at, id));
    }

    #[test]
    fn number_cursors_round_trip() {
        assert_eq!(
            parse_number_cursor('q', &number_cursor('q', 42)).unwrap(),
            42
        );
        assert!(parse_number_cursor('x', &number_cursor('q', 42)).is_err());
        assert_eq!(parse_plain_cursor(" 17 ").unwrap(), 17);
        assert!(parse_plain_cursor("-1").is_err());
    }
}
