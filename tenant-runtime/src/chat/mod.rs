//! Chat sessions about a project: their messages, and the assistant's replies, streamed to
//! the browser over SSE. The built-in assistant answers from the user's own material — the
//! passages of their documents that match the question, and the state of the project — and
//! says plainly that it is template-based, not a language model. A real model answers
//! through the same [`reply`] seam later (through the platform's AI gateway).

pub mod http;

use chrono::Utc;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::documents::SearchIndex;
use crate::error::ApiError;
use crate::schema::{chat_messages, chat_sessions};

pub const ASSISTANT_LABEL: &str = "Offline assistant (template-based, not a language model)";
pub const MAX_MESSAGE_CHARS: usize = 8000;

#[derive(Debug, Serialize, Queryable, Selectable)]
#[diesel(table_name = chat_sessions, check_for_backend(diesel::sqlite::Sqlite))]
pub struct Session {
    pub id: String,
    pub project_id: String,
    pub title: String,
    pub agent_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, Queryable, Selectable)]
#[diesel(table_name = chat_messages, check_for_backend(diesel::sqlite::Sqlite))]
pub struct Message {
    pub id: i64,
    pub session_id: String,
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
    #[serde(serialize_with = "raw_json")]
    pub sources: String,
    pub created_at: String,
}

fn raw_json<S: serde::Serializer>(raw: &str, s: S) -> Result<S::Ok, S::Error> {
    serde_json::from_str::<serde_json::Value>(raw)
        .unwrap_or_default()
        .serialize(s)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    pub title: Option<String>,
    pub agent_id: Option<String>,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn title_of(raw: Option<&str>) -> Result<String, ApiError> {
    let title = raw
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or("New chat");
    if title.chars().count() > 120 || title.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "title",
            "the title must be at most 120 printable characters",
        ));
    }
    Ok(title.to_owned())
}

pub fn create(
    conn: &mut SqliteConnection,
    project_id: &str,
    new: NewSession,
) -> Result<Session, ApiError> {
    let title = title_of(new.title.as_deref())?;
    // One transaction: the agent cannot go between the check and the insert (the database
    // refuses a session naming a missing agent anyway).
    conn.transaction(|conn| {
        crate::projects::get(conn, project_id)?;
        if let Some(agent) = &new.agent_id {
            crate::agents::get(conn, agent)?;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let at = now();
        diesel::insert_into(chat_sessions::table)
            .values((
                chat_sessions::id.eq(&id),
                chat_sessions::project_id.eq(project_id),
                chat_sessions::title.eq(&title),
                chat_sessions::agent_id.eq(&new.agent_id),
                chat_sessions::created_at.eq(&at),
                chat_sessions::updated_at.eq(&at),
            ))
            .execute(conn)?;
        get(conn, &id)
    })
}

pub fn get(conn: &mut SqliteConnection, id: &str) -> Result<Session, ApiError> {
    chat_sessions::table
        .find(id)
        .select(Session::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::NotFound(format!("there is no chat session {id:?}")))
}

pub fn list(
    conn: &mut SqliteConnection,
    project_id: &str,
    page: i64,
    per_page: i64,
) -> Result<serde_json::Value, ApiError> {
    crate::projects::get(conn, project_id)?;
    if page < 1 || !(1..=100).contains(&per_page) {
        return Err(ApiError::validation(
            "per_page",
            "page starts at 1 and per_page is 1 to 100",
        ));
    }
    let total: i64 = chat_sessions::table
        .filter(chat_sessions::project_id.eq(project_id))
        .count()
        .get_result(conn)?;
    let sessions: Vec<Session> = chat_sessions::table
        .filter(chat_sessions::project_id.eq(project_id))
        .order((chat_sessions::updated_at.desc(), chat_sessions::id.asc()))
        .limit(per_page)
        .offset((page - 1) * per_page)
        .select(Session::as_select())
        .load(conn)?;
    Ok(json!({ "sessions": sessions, "page": page, "per_page": per_page, "total": total }))
}

pub fn rename(
    conn: &mut SqliteConnection,
    id: &str,
    title: Option<&str>,
) -> Result<Session, ApiError> {
    let title = title_of(title)?;
    get(conn, id)?;
    diesel::update(chat_sessions::table.find(id))
        .set((
            chat_sessions::title.eq(title),
            chat_sessions::updated_at.eq(now()),
        ))
        .execute(conn)?;
    get(conn, id)
}

pub fn delete(conn: &mut SqliteConnection, id: &str) -> Result<(), ApiError> {
    get(conn, id)?;
    diesel::delete(chat_sessions::table.find(id)).execute(conn)?;
    Ok(())
}

/// A page of messages, oldest first: those before message `before` (or the latest).
pub fn messages(
    conn: &mut SqliteConnection,
    id: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Message>, ApiError> {
    get(conn, id)?;
    if !(1..=200).contains(&limit) {
        return Err(ApiError::validation("limit", "limit must be 1 to 200"));
    }
    let mut query = chat_messages::table
        .filter(chat_messages::session_id.eq(id))
        .select(Message::as_select())
        .order(chat_messages::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(chat_messages::id.lt(before));
    }
    let mut page: Vec<Message> = query.load(conn)?;
    page.reverse();
    Ok(page)
}

fn insert(
    conn: &mut SqliteConnection,
    session: &str,
    role: &str,
    content: &str,
    sources: &serde_json::Value,
) -> Result<Message, ApiError> {
    let at = now();
    let message = diesel::insert_into(chat_messages::table)
        .values((
            chat_messages::session_id.eq(session),
            chat_messages::role.eq(role),
            chat_messages::content.eq(content),
            chat_messages::sources.eq(sources.to_string()),
            chat_messages::created_at.eq(&at),
        ))
        .returning(Message::as_returning())
        .get_result(conn)?;
    diesel::update(chat_sessions::table.find(session))
        .set(chat_sessions::updated_at.eq(&at))
        .execute(conn)?;
    Ok(message)
}

/// Stores the user's message and the assistant's reply; returns both.
pub fn converse(
    conn: &mut SqliteConnection,
    index: &SearchIndex,
    session_id: &str,
    content: &str,
) -> Result<(Message, Message), ApiError> {
    let content = content.trim();
    if content.is_empty() || content.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ApiError::validation(
            "content",
            format!("write 1 to {MAX_MESSAGE_CHARS} characters"),
        ));
    }
    // Both or neither: a reply that fails leaves no unanswered question behind.
    conn.transaction(|conn| {
        let session = get(conn, session_id)?;
        let user = insert(conn, session_id, "user", content, &json!([]))?;
        let (text, sources) = reply(conn, index, &session, content)?;
        let assistant = insert(conn, session_id, "assistant", &text, &sources)?;
        Ok((user, assistant))
    })
}

/// The built-in assistant's answer: matching passages from the user's documents, and what
/// the project needs next.
fn reply(
    conn: &mut SqliteConnection,
    index: &SearchIndex,
    session: &Session,
    question: &str,
) -> Result<(String, serde_json::Value), ApiError> {
    let mut text = format!("({ASSISTANT_LABEL})\n\n");
    let query: String = question.chars().take(500).collect();
    let hits = index.search(&query, 3, true).unwrap_or_default();
    let mut sources = Vec::new();
    if hits.is_empty() {
        text.push_str("I found nothing about that in your documents. Upload documents under Documents and I will quote them here.\n");
    } else {
        text.push_str("From your documents:\n");
        for hit in &hits {
            let passage: String = hit
                .passage
                .clone()
                .unwrap_or_default()
                .chars()
                .take(280)
                .collect();
            text.push_str(&format!(
                "- \"{}\" ({}, page {})\n",
                passage.trim(),
                hit.document_name,
                hit.page
            ));
            sources.push(json!({ "document_id": hit.document_id, "document_name": hit.document_name, "page": hit.page, "offset": hit.offset }));
        }
    }
    let project = crate::projects::get(conn, &session.project_id)?;
    let report = crate::projects::seo(conn, &session.project_id, None)?;
    text.push_str(&format!(
        "\nYour site \"{}\" has {} file(s) at version {}; its SEO score is {}.",
        project.name,
        project.files.len(),
        project.head_version,
        report.score
    ));
    let advice = report
        .pages
        .iter()
        .flat_map(|p| p.findings.iter().map(move |f| (p, f)))
        .find(|(_, f)| f.severity != crate::projects::seo::Severity::Info);
    if let Some((page, finding)) = advice {
        text.push_str(&format!(
            " Next step for {}: {} — {}",
            page.path, finding.message, finding.advice
        ));
    }
    text.push('\n');
    Ok((text, serde_json::Value::Array(sources)))
}
