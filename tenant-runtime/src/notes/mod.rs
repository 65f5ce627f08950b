//! Notes: short texts kept in the workspace database. They are the platform's persistence
//! probe — its end-to-end tests write a note through the proxy and read it back, across
//! restarts — so they stay plain: a text, an id that only grows, the time it was written.

pub mod http;

use chrono::Utc;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::schema::notes;

pub const MAX_TEXT_CHARS: usize = 10_000;
pub const MAX_LIMIT: i64 = 100;

#[derive(Debug, Serialize, Queryable, Selectable)]
#[diesel(table_name = notes, check_for_backend(diesel::sqlite::Sqlite))]
pub struct Note {
    pub id: i64,
    pub text: String,
    pub created_at: String,
}

/// What a client sends to write a note.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    pub text: String,
}

/// A note's text: trimmed, 1 to [`MAX_TEXT_CHARS`] characters, no control characters but
/// line breaks and tabs.
struct NoteText(String);

impl NoteText {
    fn parse(raw: &str) -> Result<Self, ApiError> {
        let text = raw.trim();
        let printable = !text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'));
        if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS || !printable {
            return Err(ApiError::validation(
                "text",
                format!("a note is 1 to {MAX_TEXT_CHARS} printable characters"),
            ));
        }
        Ok(NoteText(text.to_owned()))
    }
}

/// Which notes to list: newest first, `limit` of them after skipping `offset`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    limit: i64,
    offset: i64,
}

impl Window {
    pub fn parse(limit: Option<i64>, offset: Option<i64>) -> Result<Self, ApiError> {
        let limit = limit.unwrap_or(MAX_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::validation(
                "limit",
                format!("limit must be 1 to {MAX_LIMIT}"),
            ));
        }
        let offset = offset.unwrap_or(0);
        if offset < 0 {
            return Err(ApiError::validation("offset", "offset must be 0 or more"));
        }
        Ok(Window { limit, offset })
    }
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("there is no note {id}"))
}

pub fn create(conn: &mut SqliteConnection, new: NewNote) -> Result<Note, ApiError> {
    let text = NoteText::parse(&new.text)?;
    let created_at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Ok(diesel::insert_into(notes::table)
        .values((notes::text.eq(text.0), notes::created_at.eq(created_at)))
        .returning(Note::as_returning())
        .get_result(conn)?)
}

pub fn list(conn: &mut SqliteConnection, window: Window) -> Result<Vec<Note>, ApiError> {
    Ok(notes::table
        .order(notes::id.desc())
        .limit(window.limit)
        .offset(window.offset)
        .select(Note::as_select())
        .load(conn)?)
}

pub fn get(conn: &mut SqliteConnection, id: i64) -> Result<Note, ApiError> {
    notes::table
        .find(id)
        .select(Note::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| not_found(id))
}

pub fn delete(conn: &mut SqliteConnection, id: i64) -> Result<(), ApiError> {
    if diesel::delete(notes::table.find(id)).execute(conn)? == 0 {
        return Err(not_found(id));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_is_trimmed_and_bounded() {
        assert_eq!(NoteText::parse("  hello\n").expect("valid").0, "hello");
        assert_eq!(
            NoteText::parse("line one\r\n\tline two").expect("valid").0,
            "line one\r\n\tline two"
        );
        assert!(NoteText::parse(&"é".repeat(MAX_TEXT_CHARS)).is_ok());
        for bad in [
            String::new(),
            " \n\t ".to_owned(),
            "x".repeat(MAX_TEXT_CHARS + 1),
            "bell\u{7}".to_owned(),
        ] {
            assert!(NoteText::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_window_is_within_bounds() {
        assert!(Window::parse(None, None).is_ok());
        assert!(Window::parse(Some(MAX_LIMIT), Some(5)).is_ok());
        for (limit, offset) in [
            (Some(0), None),
            (Some(MAX_LIMIT + 1), None),
            (None, Some(-1)),
        ] {
            assert!(
                Window::parse(limit, offset).is_err(),
                "{limit:?} {offset:?}"
            );
        }
    }
}
