//! The HTTP side of notes: list, write, show and delete. A note's id in a path is a
//! positive integer, or the note is not found. The routes are declared in `routes`.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::error::ApiError;
use crate::store::Store;

type Data = web::Data<Store>;

/// A note's id from a path: a positive integer, or "not found".
fn note_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::NotFound(format!("there is no note {raw:?}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotesQuery {
    limit: Option<i64>,
    offset: Option<i64>,
}

pub async fn list_notes(store: Data, q: web::Query<NotesQuery>) -> Result<HttpResponse, ApiError> {
    let window = super::Window::parse(q.limit, q.offset)?;
    let items = store.run(move |c| super::list(c, window)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

pub async fn create_note(
    store: Data,
    body: web::Json<super::NewNote>,
) -> Result<HttpResponse, ApiError> {
    let note = store
        .run(move |c| super::create(c, body.into_inner()))
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/notes/{}", note.id)))
        .json(note))
}

pub async fn get_note(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = note_id(&id)?;
    Ok(HttpResponse::Ok().json(store.run(move |c| super::get(c, id)).await?))
}

pub async fn delete_note(store: Data, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = note_id(&id)?;
    store.run(move |c| super::delete(c, id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_id_is_a_positive_integer() {
        assert_eq!(note_id("7").ok(), Some(7));
        for raw in ["0", "-1", "x", ""] {
            assert!(matches!(note_id(raw), Err(ApiError::NotFound(_))), "{raw}");
        }
    }
}
