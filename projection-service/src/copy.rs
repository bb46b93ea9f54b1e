//! `COPY ... FROM STDIN` (text format) for rows a rebuild writes once into
//! tables it has just created: nothing there to conflict with, so none of
//! an `INSERT ... ON CONFLICT`'s per-row executor work, conflict checks and
//! speculative insertion (about a sixth of a rebuild's CPU, measured with
//! perf; docs/benchmarks.md). The live path keeps its upserts.
//!
//! Values are written in PostgreSQL's text input forms, which give the
//! same stored values as the binary parameters the upserts bind (floats in
//! Rust's shortest round-trip form, timestamps to the microsecond as sqlx
//! sends them, amounts as exact decimals): the determinism tests compare a
//! copied rebuild with live projection row for row.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::postgres::PgCopyIn;
use std::fmt::Write as _;

/// Bytes gathered before they are sent to the server.
const SEND_AT: usize = 1 << 20;

/// One `COPY` in progress: add fields row by row, then [`CopyIn::finish`].
pub struct CopyIn<'c> {
    copy: PgCopyIn<&'c mut PgConnection>,
    buf: String,
    /// No field yet in the current row.
    row_start: bool,
}

impl<'c> CopyIn<'c> {
    /// Starts `COPY {table_and_columns} FROM STDIN`; `table_and_columns` is
    /// a constant of the caller's, e.g. `"velocity_minutes (customer_id, minute)"`.
    pub async fn start(
        conn: &'c mut PgConnection,
        table_and_columns: &'static str,
    ) -> Result<CopyIn<'c>, sqlx::Error> {
        let copy = conn
            .copy_in_raw(&format!("COPY {table_and_columns} FROM STDIN"))
            .await?;
        Ok(CopyIn {
            copy,
            buf: String::with_capacity(SEND_AT + 4096),
            row_start: true,
        })
    }

    fn field(&mut self) -> &mut String {
        if !self.row_start {
            self.buf.push('\t');
        }
        self.row_start = false;
        &mut self.buf
    }

    pub fn null(&mut self) -> &mut Self {
        self.field().push_str("\\N");
        self
    }

    pub fn text(&mut self, value: &str) -> &mut Self {
        escape_into(self.field(), value);
        self
    }

    pub fn opt_text(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.text(v),
            None => self.null(),
        }
    }

    pub fn int(&mut self, value: impl std::fmt::Display) -> &mut Self {
        let _ = write!(self.field(), "{value}");
        self
    }

    pub fn opt_int(&mut self, value: Option<i64>) -> &mut Self {
        match value {
            Some(v) => self.int(v),
            None => self.null(),
        }
    }

    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.field().push(if value { 't' } else { 'f' });
        self
    }

    pub fn float(&mut self, value: f64) -> &mut Self {
        float_into(self.field(), value);
        self
    }

    pub fn opt_float(&mut self, value: Option<f64>) -> &mut Self {
        match value {
            Some(v) => self.float(v),
            None => self.null(),
        }
    }

    /// An amount held in thousandths, as the exact decimal it stands for.
    pub fn thousandths(&mut self, value: i128) -> &mut Self {
        thousandths_into(self.field(), value);
        self
    }

    /// To the microsecond (truncated, as sqlx's binary encoding does), UTC.
    pub fn timestamp(&mut self, value: DateTime<Utc>) -> &mut Self {
        timestamp_into(self.field(), value);
        self
    }

    pub fn uuid(&mut self, value: uuid::Uuid) -> &mut Self {
        let _ = write!(self.field(), "{value}");
        self
    }

    pub fn opt_uuid(&mut self, value: Option<uuid::Uuid>) -> &mut Self {
        match value {
            Some(v) => self.uuid(v),
            None => self.null(),
        }
    }

    /// Ends the row; sends what has gathered once it is big enough.
    pub async fn end_row(&mut self) -> Result<(), sqlx::Error> {
        self.buf.push('\n');
        self.row_start = true;
        if self.buf.len() >= SEND_AT {
            self.copy.send(self.buf.as_bytes()).await?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Sends the rest and ends the `COPY`; the rows it wrote.
    pub async fn finish(mut self) -> Result<u64, sqlx::Error> {
        if !self.buf.is_empty() {
            self.copy.send(self.buf.as_bytes()).await?;
        }
        self.copy.finish().await
    }
}

/// `value` with the text format's escapes (backslash, tab, newline, CR).
fn escape_into(buf: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '\t' => buf.push_str("\\t"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            c => buf.push(c),
        }
    }
}

fn thousandths_into(buf: &mut String, value: i128) {
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    let _ = write!(buf, "{sign}{}.{:03}", abs / 1000, abs % 1000);
}

fn float_into(buf: &mut String, value: f64) {
    if value.is_nan() {
        buf.push_str("NaN");
    } else if value.is_infinite() {
        buf.push_str(if value > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        // Display is the shortest form that reads back to the same f64.
        let _ = write!(buf, "{value}");
    }
}

fn timestamp_into(buf: &mut String, value: DateTime<Utc>) {
    let _ = write!(buf, "{}+00", value.format("%Y-%m-%d %H:%M:%S%.6f"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: impl Fn(&mut String)) -> String {
        let mut buf = String::new();
        f(&mut buf);
        buf
    }

    #[test]
    fn thousandths_are_exact_decimals() {
        let cases: [(i128, &str); 5] = [
            (0, "0.000"),
            (5, "0.005"),
            (12_345, "12.345"),
            (-1_500, "-1.500"),
            (i128::from(i64::MAX) * 10, "92233720368547758.070"),
        ];
        for (value, text) in cases {
            assert_eq!(written(|b| thousandths_into(b, value)), text);
        }
    }

    #[test]
    fn text_escapes_what_the_format_reserves() {
        assert_eq!(
            written(|b| escape_into(b, "a\\b\tc\nd\re \\N")),
            "a\\\\b\\tc\\nd\\re \\\\N"
        );
    }

    #[test]
    fn floats_read_back_exactly_and_name_the_specials() {
        for value in [0.1, 1.0 / 3.0, 1e-300, 1e300, -2.5] {
            let text = written(|b| float_into(b, value));
            assert_eq!(text.parse::<f64>().ok(), Some(value), "{text}");
        }
        assert_eq!(written(|b| float_into(b, f64::NAN)), "NaN");
        assert_eq!(written(|b| float_into(b, f64::INFINITY)), "Infinity");
    }

    #[test]
    fn timestamps_keep_microseconds_and_drop_the_rest() {
        let at = DateTime::from_timestamp(1_767_571_200, 123_456_789).unwrap_or_default();
        assert_eq!(
            written(|b| timestamp_into(b, at)),
            "2026-01-05 00:00:00.123456+00"
        );
    }
}
