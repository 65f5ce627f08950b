//! The HTTP side of chat: a project's sessions, their messages, and sending a message, whose
//! reply streams back as server-sent events — `message` (yours, stored), `token`s of the
//! reply, then `done` (the stored reply). The conversation itself lives in `chat`. The
//! routes are declared in `routes`.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::{Message, NewSession};
use crate::documents::SearchIndex;
use crate::error::ApiError;
use crate::extract::{ListQuery, parse_id, project_id};
use crate::store::Store;

type Data = web::Data<Store>;

/// What a session's id is called when it is not found.
const SESSION: &str = "chat session";

pub async fn create_session(
    store: Data,
    id: web::Path<String>,
    body: web::Json<NewSession>,
) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let session = store
        .run(move |c| super::create(c, &id, body.into_inner()))
        .await?;
    Ok(HttpResponse::Created().json(session))
}

pub async fn list_sessions(
    store: Data,
    id: web::Path<String>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = project_id(&id)?;
    let (page, per_page) = q.window();
    Ok(HttpResponse::Ok().json(
        store
            .run(move |c| super::list(c, &id, page, per_page))
            .await?,
    ))
}

pub async fn get_session(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, SESSION)?;
    Ok(HttpResponse::Ok().json(store.run(move |c| super::get(c, &id)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionPatch {
    title: Option<String>,
}

pub async fn rename_session(
    store: Data,
    id: web::Path<String>,
    body: web::Json<SessionPatch>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, SESSION)?;
    let title = body.into_inner().title;
    Ok(HttpResponse::Ok().json(
        store
            .run(move |c| super::rename(c, &id, title.as_deref()))
            .await?,
    ))
}

pub async fn delete_session(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, SESSION)?;
    store.run(move |c| super::delete(c, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesQuery {
    before: Option<i64>,
    limit: Option<i64>,
}

pub async fn list_messages(
    store: Data,
    id: web::Path<String>,
    q: web::Query<MessagesQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, SESSION)?;
    let (before, limit) = (q.before, q.limit.unwrap_or(50));
    let messages = store
        .run(move |c| super::messages(c, &id, before, limit))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "messages": messages })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    content: String,
}

/// The server-sent events of one exchange: the user's message, the reply in tokens of four
/// words, then the stored reply.
fn frames(user: &Message, assistant: &Message) -> Vec<web::Bytes> {
    let event = |name: &str, data: &serde_json::Value| {
        web::Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
    };
    let mut frames = vec![event("message", &serde_json::json!(user))];
    let words: Vec<&str> = assistant.content.split_inclusive(' ').collect();
    for chunk in words.chunks(4) {
        frames.push(event(
            "token",
            &serde_json::json!({ "text": chunk.concat() }),
        ));
    }
    frames.push(event("done", &serde_json::json!(assistant)));
    frames
}

/// Sends a message; the reply streams back as server-sent events.
pub async fn send_message(
    store: Data,
    index: web::Data<SearchIndex>,
    id: web::Path<String>,
    body: web::Json<NewMessage>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, SESSION)?;
    let content = body.into_inner().content;
    let index = index.into_inner();
    let (user, assistant) = store
        .run(move |c| super::converse(c, &index, &id, &content))
        .await?;
    let stream = futures_util::stream::iter(
        frames(&user, &assistant)
            .into_iter()
            .map(Ok::<_, actix_web::Error>),
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .streaming(stream))
}
