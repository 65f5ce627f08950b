//! A project's history: the versions newest first, undo and redo (which move `head` along
//! the history without writing a version), restoring an old version (which commits a copy of
//! it), and the differences between two versions, file by file. Nothing here rewrites a
//! version: history only grows.

use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use serde::Serialize;

use super::{Project, blob, commit, get, manifest, now, row, settings_of};
use crate::error::ApiError;
use crate::schema::{projects, versions};

#[derive(Debug, Serialize, Queryable)]
pub struct VersionInfo {
    pub number: i64,
    pub parent: Option<i64>,
    pub message: String,
    pub created_at: String,
}

#[derive(Debug, Serialize)]
pub struct History {
    pub head: i64,
    pub versions: Vec<VersionInfo>,
}

#[derive(Debug, Serialize)]
pub struct FileDiff {
    pub path: String,
    /// `added`, `removed` or `modified`.
    pub change: &'static str,
    /// A unified diff, for text files.
    pub diff: String,
}

pub fn history(conn: &mut SqliteConnection, id: &str) -> Result<History, ApiError> {
    let project = row(conn, id)?;
    let versions = versions::table
        .filter(versions::project_id.eq(id))
        .order(versions::number.desc())
        .select((
            versions::number,
            versions::parent,
            versions::message,
            versions::created_at,
        ))
        .load::<VersionInfo>(conn)?;
    Ok(History {
        head: project.head_version,
        versions,
    })
}

/// Moves head back to the version it was made from.
pub fn undo(conn: &mut SqliteConnection, id: &str) -> Result<Project, ApiError> {
    conn.transaction(|conn| {
        let project = row(conn, id)?;
        let parent: Option<i64> = versions::table
            .find((id, project.head_version))
            .select(versions::parent)
            .first(conn)?;
        let parent =
            parent.ok_or_else(|| ApiError::Conflict("there is nothing to undo".to_owned()))?;
        let mut redo = project.redo();
        redo.push(project.head_version);
        diesel::update(projects::table.find(id))
            .set((
                projects::head_version.eq(parent),
                projects::redo_stack.eq(serde_json::to_string(&redo).map_err(ApiError::internal)?),
                projects::updated_at.eq(now()),
            ))
            .execute(conn)?;
        Ok::<_, ApiError>(())
    })?;
    get(conn, id)
}

/// Moves head forward to the version last undone.
pub fn redo(conn: &mut SqliteConnection, id: &str) -> Result<Project, ApiError> {
    conn.transaction(|conn| {
        let project = row(conn, id)?;
        let mut redo = project.redo();
        let next = redo
            .pop()
            .ok_or_else(|| ApiError::Conflict("there is nothing to redo".to_owned()))?;
        diesel::update(projects::table.find(id))
            .set((
                projects::head_version.eq(next),
                projects::redo_stack.eq(serde_json::to_string(&redo).map_err(ApiError::internal)?),
                projects::updated_at.eq(now()),
            ))
            .execute(conn)?;
        Ok::<_, ApiError>(())
    })?;
    get(conn, id)
}

fn version_exists(conn: &mut SqliteConnection, id: &str, number: i64) -> Result<(), ApiError> {
    let found: i64 = versions::table
        .filter(versions::project_id.eq(id))
        .filter(versions::number.eq(number))
        .count()
        .get_result(conn)?;
    if found == 0 {
        return Err(ApiError::NotFound(format!(
            "project {id:?} has no version {number}"
        )));
    }
    Ok(())
}

/// Commits a copy of an old version as the new head.
pub fn restore(conn: &mut SqliteConnection, id: &str, number: i64) -> Result<Project, ApiError> {
    conn.transaction(|conn| {
        let project = row(conn, id)?;
        version_exists(conn, id, number)?;
        let settings = settings_of(conn, id, number)?;
        let files = manifest(conn, id, number)?;
        commit(
            conn,
            &project,
            &format!("restored version {number}"),
            &settings,
            &files,
        )?;
        Ok::<_, ApiError>(())
    })?;
    get(conn, id)
}

/// What changed from one version to another, file by file.
pub fn diff(
    conn: &mut SqliteConnection,
    id: &str,
    from: i64,
    to: i64,
) -> Result<Vec<FileDiff>, ApiError> {
    row(conn, id)?;
    version_exists(conn, id, from)?;
    version_exists(conn, id, to)?;
    let old = manifest(conn, id, from)?;
    let new = manifest(conn, id, to)?;
    let mut paths: Vec<&String> = old.iter().chain(new.iter()).map(|(p, _)| p).collect();
    paths.sort();
    paths.dedup();
    let mut out = Vec::new();
    for path in paths {
        let before = old.iter().find(|(p, _)| p == path).map(|(_, b)| b.clone());
        let after = new.iter().find(|(p, _)| p == path).map(|(_, b)| b.clone());
        let change = match (&before, &after) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(_), Some(_)) => "modified",
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            (None, None) => continue,
        };
        let text =
            |hash: &Option<String>, conn: &mut SqliteConnection| -> Result<String, ApiError> {
                match hash {
                    Some(h) => Ok(String::from_utf8_lossy(&blob(conn, h)?).into_owned()),
                    None => Ok(String::new()),
                }
            };
        let (a, b) = (text(&before, conn)?, text(&after, conn)?);
        let diff = similar::TextDiff::from_lines(&a, &b)
            .unified_diff()
            .header(
                &format!("a/{path} (version {from})"),
                &format!("b/{path} (version {to})"),
            )
            .to_string();
        out.push(FileDiff {
            path: path.clone(),
            change,
            diff,
        });
    }
    Ok(out)
}
